//! The endpoint in-process on the memory backend, with requests signed as an SDK signs
//! them. (Real clients — boto3, the aws CLI — drive it on every host in the conformance
//! suite.)

use super::*;
use chrono::{DateTime, Utc};
use futures::executor::block_on;
use kit::table::memory::MemoryKv;
use kit::{Bytes, FixedClock, MapConfig};
use serde_json::{json, Value};

const KEY_ID: &str = "AKIDTEST";
const SECRET: &str = "secret/test+key";

fn now() -> DateTime<Utc> {
    "2026-12-01T12:00:00Z".parse().unwrap()
}

mod indexes;
mod transactions;

fn env(kv: &MemoryKv) -> kit::Env {
    env_at(kv, now())
}

/// The endpoint's environment on `kv` with its clock at `at`.
fn env_at(kv: &MemoryKv, at: DateTime<Utc>) -> kit::Env {
    let config = [
        ("dynamodb_access_key_id", KEY_ID),
        ("dynamodb_secret_access_key", SECRET),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut env = kit::host::native::env(kv.clone(), MapConfig(config));
    env.clock = Box::new(FixedClock(at));
    env
}

/// A request signed with `secret` at `at`, the way botocore signs DynamoDB calls.
fn signed(op: &str, body: &Value, secret: &str, at: DateTime<Utc>) -> Request {
    let body = body.to_string();
    let credentials = sigv4::Credentials {
        access_key_id: KEY_ID.to_owned(),
        secret_access_key: secret.to_owned(),
    };
    let target = format!("{TARGET_PREFIX}{op}");
    let headers = signed_headers(&credentials, "127.0.0.1:8000", &target, body.as_bytes(), at);
    let mut builder = http::Request::builder().method("POST").uri("/dynamodb");
    for (n, v) in &headers {
        builder = builder.header(n, v);
    }
    builder.body(Bytes::from(body)).unwrap()
}

/// (status, `__type` suffix or "", body)
fn call(kv: &MemoryKv, req: Request) -> (u16, String, Value) {
    call_in(&env(kv), req)
}

fn call_in(env: &kit::Env, req: Request) -> (u16, String, Value) {
    let resp = block_on(handle(req, env));
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        CONTENT_TYPE,
        "{resp:?}"
    );
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    let kind = body["__type"]
        .as_str()
        .and_then(|t| t.split('#').nth(1))
        .unwrap_or("")
        .to_owned();
    (resp.status().as_u16(), kind, body)
}

fn op(kv: &MemoryKv, name: &str, body: Value) -> (u16, String, Value) {
    call(kv, signed(name, &body, SECRET, now()))
}

/// [`op`] at `at`, on `kv` (which may be a [dying](MemoryKv::dying_after) view).
fn op_at(kv: &MemoryKv, at: DateTime<Utc>, name: &str, body: Value) -> (u16, String, Value) {
    call_in(&env_at(kv, at), signed(name, &body, SECRET, at))
}

fn films_table() -> Value {
    json!({
        "TableName": "Films",
        "KeySchema": [{"AttributeName": "year", "KeyType": "HASH"}, {"AttributeName": "title", "KeyType": "RANGE"}],
        "AttributeDefinitions": [{"AttributeName": "year", "AttributeType": "N"}, {"AttributeName": "title", "AttributeType": "S"}],
        "ProvisionedThroughput": {"ReadCapacityUnits": 10, "WriteCapacityUnits": 10},
    })
}

/// [`films_table`] on demand: a `BillingMode` and no units.
fn on_demand_films_table() -> Value {
    let mut table = films_table();
    if let Some(fields) = table.as_object_mut() {
        fields.remove("ProvisionedThroughput");
    }
    table["BillingMode"] = json!("PAY_PER_REQUEST");
    table
}

#[test]
fn tables_are_created_described_listed_and_deleted() {
    let kv = MemoryKv::new();
    let (status, _, created) = op(&kv, "CreateTable", films_table());
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["TableDescription"]["TableStatus"], "ACTIVE");
    assert_eq!(
        op(&kv, "CreateTable", films_table()).1,
        "ResourceInUseException"
    );
    let (_, _, described) = op(&kv, "DescribeTable", json!({"TableName": "Films"}));
    assert_eq!(described["Table"]["KeySchema"], films_table()["KeySchema"]);
    let mut other = films_table();
    other["TableName"] = json!("Actors");
    op(&kv, "CreateTable", other);
    let (_, _, listed) = op(&kv, "ListTables", json!({}));
    assert_eq!(listed, json!({"TableNames": ["Actors", "Films", "Movies"]}));
    let (_, _, first) = op(&kv, "ListTables", json!({"Limit": 1}));
    assert_eq!(
        first,
        json!({"TableNames": ["Actors"], "LastEvaluatedTableName": "Actors"})
    );
    let (_, _, rest) = op(
        &kv,
        "ListTables",
        json!({"ExclusiveStartTableName": "Actors"}),
    );
    assert_eq!(rest, json!({"TableNames": ["Films", "Movies"]}));
    let (status, _, deleted) = op(&kv, "DeleteTable", json!({"TableName": "Films"}));
    assert_eq!(
        (status, &deleted["TableDescription"]["TableStatus"]),
        (200, &json!("DELETING"))
    );
    assert_eq!(
        op(&kv, "DescribeTable", json!({"TableName": "Films"})).1,
        "ResourceNotFoundException"
    );
}

#[test]
fn the_builtin_movies_table_is_listed_described_and_never_deleted_or_recreated() {
    let kv = MemoryKv::new();
    let (_, _, listed) = op(&kv, "ListTables", json!({}));
    assert_eq!(listed, json!({"TableNames": ["Movies"]}));
    let (status, _, described) = op(&kv, "DescribeTable", json!({"TableName": "Movies"}));
    assert_eq!(status, 200, "{described}");
    assert_eq!(described["Table"]["KeySchema"], films_table()["KeySchema"]);
    assert_eq!(described["Table"]["DeletionProtectionEnabled"], true);
    let mut again = films_table();
    again["TableName"] = json!("Movies");
    assert_eq!(op(&kv, "CreateTable", again).1, "ResourceInUseException");
    assert_eq!(
        op(&kv, "DeleteTable", json!({"TableName": "Movies"})).1,
        "ValidationException"
    );
    for name in ["Aa1", "Movies0", "Mov"] {
        let mut table = films_table();
        table["TableName"] = json!(name);
        assert_eq!(op(&kv, "CreateTable", table).0, 200);
    }
    let (_, _, first) = op(&kv, "ListTables", json!({"Limit": 2}));
    assert_eq!(
        first,
        json!({"TableNames": ["Aa1", "Mov"], "LastEvaluatedTableName": "Mov"})
    );
    let (_, _, rest) = op(
        &kv,
        "ListTables",
        json!({"ExclusiveStartTableName": "Mov", "Limit": 1}),
    );
    assert_eq!(
        rest,
        json!({"TableNames": ["Movies"], "LastEvaluatedTableName": "Movies"})
    );
    let (_, _, last) = op(
        &kv,
        "ListTables",
        json!({"ExclusiveStartTableName": "Movies"}),
    );
    assert_eq!(last, json!({"TableNames": ["Movies0"]}));
}

#[test]
fn reserved_words_in_expressions_are_refused_unless_aliased() {
    let kv = MemoryKv::new();
    op(&kv, "CreateTable", films_table());
    let get = |projection: &str, names: Value| {
        let mut body = json!({"TableName": "Films", "Key": {"year": {"N": "1"}, "title": {"S": "t"}},
            "ProjectionExpression": projection});
        if !names.is_null() {
            body["ExpressionAttributeNames"] = names;
        }
        op(&kv, "GetItem", body)
    };
    let (status, kind, body) = get("year, title", Value::Null);
    assert_eq!((status, kind.as_str()), (400, "ValidationException"));
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("reserved keyword: year"),
        "{body}"
    );
    assert_eq!(get("info.Data", Value::Null).1, "ValidationException");
    assert_eq!(get("#y, title", json!({"#y": "year"})).0, 200);
}

#[test]
fn items_are_put_got_and_deleted_with_their_types_kept() {
    let kv = MemoryKv::new();
    op(&kv, "CreateTable", films_table());
    let item = json!({
        "year": {"N": "2013"}, "title": {"S": "Rush"},
        "info": {"M": {"rating": {"N": "8.30"}, "genres": {"SS": ["Drama", "Action"]},
                        "poster": {"B": "AAEC"}, "actors": {"L": [{"S": "Daniel Bruhl"}]}}},
    });
    let (status, _, put) = op(&kv, "PutItem", json!({"TableName": "Films", "Item": item}));
    assert_eq!((status, put), (200, json!({})));
    let key = json!({"year": {"N": "2013.0"}, "title": {"S": "Rush"}});
    let (_, _, got) = op(&kv, "GetItem", json!({"TableName": "Films", "Key": key}));
    let mut want = item.clone();
    want["year"] = json!({"N": "2013"});
    want["info"]["M"]["rating"] = json!({"N": "8.3"});
    assert_eq!(got, json!({ "Item": want }));
    let (_, _, replaced) = op(
        &kv,
        "PutItem",
        json!({"TableName": "Films", "Item": {"year": {"N": "2013"}, "title": {"S": "Rush"}}, "ReturnValues": "ALL_OLD"}),
    );
    assert_eq!(replaced, json!({ "Attributes": want }));
    let (_, _, deleted) = op(
        &kv,
        "DeleteItem",
        json!({"TableName": "Films", "Key": key, "ReturnValues": "ALL_OLD"}),
    );
    assert_eq!(
        deleted,
        json!({"Attributes": {"year": {"N": "2013"}, "title": {"S": "Rush"}}})
    );
    let (_, _, gone) = op(&kv, "GetItem", json!({"TableName": "Films", "Key": key}));
    assert_eq!(gone, json!({}));
}

#[test]
fn bad_requests_get_dynamodbs_errors_and_change_nothing() {
    let kv = MemoryKv::new();
    op(&kv, "CreateTable", films_table());
    let kind = |name: &str, body: Value| op(&kv, name, body).1;
    assert_eq!(
        kind(
            "PutItem",
            json!({"TableName": "Films", "Item": {"year": {"S": "x"}, "title": {"S": "t"}}})
        ),
        "ValidationException"
    );
    assert_eq!(
        kind(
            "PutItem",
            json!({"TableName": "Films", "Item": {"title": {"S": "t"}}})
        ),
        "ValidationException"
    );
    assert_eq!(
        kind(
            "GetItem",
            json!({"TableName": "Films", "Key": {"year": {"N": "1"}}})
        ),
        "ValidationException"
    );
    assert_eq!(
        kind(
            "PutItem",
            json!({"TableName": "Films", "Item": {"year": {"N": 1}, "title": {"S": "t"}}})
        ),
        "SerializationException"
    );
    assert_eq!(
        kind("GetItem", json!({"TableName": "Nope", "Key": {}})),
        "ResourceNotFoundException"
    );
    assert_eq!(
        kind("ExecuteStatement", json!({})),
        "UnknownOperationException"
    );
    assert_eq!(
        kind(
            "PutItem",
            json!({"TableName": "Films", "Item": {}, "Expected": {}})
        ),
        "ValidationException"
    );
    let big = "x".repeat(401 * 1024);
    assert_eq!(
        kind(
            "PutItem",
            json!({"TableName": "Films", "Item": {"year": {"N": "1"}, "title": {"S": "t"}, "b": {"S": big}}})
        ),
        "ValidationException"
    );
    let (_, _, listed) = op(
        &kv,
        "GetItem",
        json!({"TableName": "Films", "Key": {"year": {"N": "1"}, "title": {"S": "t"}}}),
    );
    assert_eq!(listed, json!({}), "a refused put wrote something");
}

#[test]
fn requests_without_a_valid_signature_are_refused() {
    let kv = MemoryKv::new();
    let body = json!({});
    let mut unsigned = signed("ListTables", &body, SECRET, now());
    unsigned.headers_mut().remove("authorization");
    assert_eq!(call(&kv, unsigned).1, "MissingAuthenticationTokenException");
    assert_eq!(
        call(&kv, signed("ListTables", &body, "wrong", now())).1,
        "InvalidSignatureException"
    );
    let stale = now() - chrono::Duration::minutes(20);
    assert_eq!(
        call(&kv, signed("ListTables", &body, SECRET, stale)).1,
        "InvalidSignatureException"
    );
    let mut tampered = signed("ListTables", &body, SECRET, now());
    *tampered.body_mut() = Bytes::from_static(b"{\"Limit\":1}");
    assert_eq!(call(&kv, tampered).1, "InvalidSignatureException");
    // No credentials configured: refused, never open.
    let open = kit::host::native::env(kv.clone(), MapConfig::default());
    let resp = block_on(handle(
        signed("ListTables", &body, SECRET, Utc::now()),
        &open,
    ));
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(
        (resp.status().as_u16(), body["__type"].as_str()),
        (
            400,
            Some("com.amazon.coral.service#UnrecognizedClientException")
        )
    );
}

#[test]
fn query_refuses_a_starting_key_outside_its_conditions_and_pages_at_the_limit() {
    let kv = MemoryKv::new();
    op(&kv, "CreateTable", films_table());
    for title in ["a", "b", "c"] {
        let item = json!({"year": {"N": "2000"}, "title": {"S": title}});
        op(&kv, "PutItem", json!({"TableName": "Films", "Item": item}));
    }
    let query = |start: Value, limit: u64| {
        let mut body = json!({"TableName": "Films", "Limit": limit,
            "KeyConditionExpression": "#y = :y AND title < :t",
            "ExpressionAttributeNames": {"#y": "year"},
            "ExpressionAttributeValues": {":y": {"N": "2000"}, ":t": {"S": "c"}}});
        if !start.is_null() {
            body["ExclusiveStartKey"] = start;
        }
        op(&kv, "Query", body)
    };
    let (status, _, page) = query(Value::Null, 2);
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["Count"], 2);
    assert_eq!(
        page["LastEvaluatedKey"],
        json!({"year": {"N": "2000"}, "title": {"S": "b"}}),
        "a page that reaches Limit carries LastEvaluatedKey"
    );
    let (_, _, rest) = query(page["LastEvaluatedKey"].clone(), 2);
    assert_eq!(rest, json!({"Count": 0, "ScannedCount": 0, "Items": []}));
    let elsewhere = json!({"year": {"N": "1999"}, "title": {"S": "a"}});
    assert_eq!(query(elsewhere, 2).1, "ValidationException");
    let outside = json!({"year": {"N": "2000"}, "title": {"S": "z"}});
    assert_eq!(query(outside, 2).1, "ValidationException");
}

#[test]
fn delete_table_clears_the_items_of_its_partitions() {
    let kv = MemoryKv::new();
    let (_, _, created) = op(&kv, "CreateTable", films_table());
    let id = created["TableDescription"]["TableId"].as_str().unwrap();
    let generation = u64::from_str_radix(id.split('-').next().unwrap(), 16).unwrap();
    for year in ["1999", "2000", "2001"] {
        let item = json!({"year": {"N": year}, "title": {"S": "t"}});
        op(&kv, "PutItem", json!({"TableName": "Films", "Item": item}));
    }
    let stored = kv.table(&format!("ddb.Films.{generation}"));
    let count = |pk: &str| {
        block_on(kit::table::Table::query(&stored, pk, None, usize::MAX))
            .unwrap()
            .items
            .len()
    };
    assert_eq!(count("N2000"), 1);
    assert_eq!(op(&kv, "DeleteTable", json!({"TableName": "Films"})).0, 200);
    for pk in ["N1999", "N2000", "N2001"] {
        assert_eq!(count(pk), 0, "{pk} left behind");
    }
    let directory = kv.table(&format!("ddbdir.Films.{generation}"));
    let listed = block_on(kit::table::Table::query(
        &directory,
        "partitions",
        None,
        usize::MAX,
    ))
    .unwrap();
    assert!(listed.items.is_empty());
}

#[test]
fn items_of_one_partition_key_are_not_capped_in_total() {
    let kv = MemoryKv::new();
    op(&kv, "CreateTable", films_table());
    let plot = "p".repeat(390 * 1024);
    let put = |title: &str| {
        let item = json!({"year": {"N": "1999"}, "title": {"S": title}, "plot": {"S": plot}});
        op(&kv, "PutItem", json!({"TableName": "Films", "Item": item}))
    };
    // DynamoDB caps an item at 400 KB and an item collection (without a local
    // secondary index) not at all: 12 items of 390 KiB, 4.8 MB, under one key.
    let titles: Vec<String> = (0..12).map(|i| format!("t{i:02}")).collect();
    for title in &titles {
        assert_eq!(put(title).0, 200, "{title}");
    }
    let (status, _, got) = op(
        &kv,
        "Query",
        json!({"TableName": "Films", "KeyConditionExpression": "#y = :y",
            "ExpressionAttributeNames": {"#y": "year"},
            "ExpressionAttributeValues": {":y": {"N": "1999"}},
            "ProjectionExpression": "title"}),
    );
    assert_eq!(status, 200);
    let read: Vec<&str> = got["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"]["S"].as_str().unwrap())
        .collect();
    // A Query page stops at 1 MB read: three of the items, in order, and a resume key.
    assert_eq!(
        read,
        titles[..3].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(got["LastEvaluatedKey"]["title"]["S"], "t02");
}

#[test]
fn on_demand_tables_are_described_with_zero_throughput_and_their_mode() {
    let kv = MemoryKv::new();
    let on_demand = on_demand_films_table();
    let zero =
        json!({"NumberOfDecreasesToday": 0, "ReadCapacityUnits": 0, "WriteCapacityUnits": 0});
    let (status, _, created) = op(&kv, "CreateTable", on_demand);
    assert_eq!(status, 200, "{created}");
    let (_, _, described) = op(&kv, "DescribeTable", json!({"TableName": "Films"}));
    let (_, _, deleted) = op(&kv, "DeleteTable", json!({"TableName": "Films"}));
    for desc in [
        &created["TableDescription"],
        &described["Table"],
        &deleted["TableDescription"],
    ] {
        assert_eq!(desc["ProvisionedThroughput"], zero, "{desc}");
        assert_eq!(desc["BillingModeSummary"]["BillingMode"], "PAY_PER_REQUEST");
        assert!(desc["BillingModeSummary"]["LastUpdateToPayPerRequestDateTime"].is_number());
    }
    let (_, _, movies) = op(&kv, "DescribeTable", json!({"TableName": "Movies"}));
    assert_eq!(movies["Table"]["ProvisionedThroughput"], zero);
    op(&kv, "CreateTable", films_table());
    let (_, _, provisioned) = op(&kv, "DescribeTable", json!({"TableName": "Films"}));
    assert_eq!(
        provisioned["Table"]["ProvisionedThroughput"],
        json!({"NumberOfDecreasesToday": 0, "ReadCapacityUnits": 10, "WriteCapacityUnits": 10})
    );
    assert!(provisioned["Table"].get("BillingModeSummary").is_none());
}

#[test]
fn capacity_settings_dynamodb_refuses_are_refused_and_create_nothing() {
    let kv = MemoryKv::new();
    let mut both = films_table();
    both["BillingMode"] = json!("PAY_PER_REQUEST");
    let mut neither = films_table();
    neither
        .as_object_mut()
        .unwrap()
        .remove("ProvisionedThroughput");
    let mut zero = films_table();
    zero["ProvisionedThroughput"]["ReadCapacityUnits"] = json!(0);
    for (body, wanted) in [
        (both, "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST"),
        (neither, "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED"),
        (zero, "Value '0' at 'provisionedThroughput.readCapacityUnits' failed to satisfy constraint"),
    ] {
        let (status, kind, answer) = op(&kv, "CreateTable", body);
        assert_eq!((status, kind.as_str()), (400, "ValidationException"), "{answer}");
        assert!(answer["message"].as_str().unwrap().contains(wanted), "{answer}");
    }
    let (_, _, listed) = op(&kv, "ListTables", json!({}));
    assert_eq!(listed, json!({"TableNames": ["Movies"]}));
}

#[test]
fn parameters_of_the_wrong_json_type_are_serialization_exceptions() {
    let kv = MemoryKv::new();
    op(&kv, "CreateTable", films_table());
    for (name, body, wanted) in [
        (
            "DescribeTable",
            json!({"TableName": 5}),
            "NUMBER_VALUE cannot be converted to String",
        ),
        (
            "DescribeTable",
            json!({"TableName": true}),
            "TRUE_VALUE cannot be converted to String",
        ),
        (
            "DescribeTable",
            json!({"TableName": ["Films"]}),
            "Unrecognized collection type class java.lang.String",
        ),
        (
            "ListTables",
            json!({"Limit": "2"}),
            "STRING_VALUE cannot be converted to Integer",
        ),
        (
            "Query",
            json!({"TableName": "Films", "ConsistentRead": 1}),
            "NUMBER_VALUE cannot be converted to Boolean",
        ),
        (
            "GetItem",
            json!({"TableName": "Films", "Key": "k"}),
            "Unexpected field type",
        ),
        (
            "CreateTable",
            json!({"TableName": "T", "KeySchema": {}}),
            "Start of structure or map found where not expected",
        ),
    ] {
        let (status, kind, answer) = op(&kv, name, body.clone());
        assert_eq!(
            (status, kind.as_str()),
            (400, "SerializationException"),
            "{name} {body}: {answer}"
        );
        assert_eq!(answer["message"], wanted, "{name} {body}");
    }
}

#[test]
fn describe_limits_and_describe_endpoints_answer_as_dynamodb_does() {
    let kv = MemoryKv::new();
    let (status, _, limits) = op(&kv, "DescribeLimits", json!({}));
    assert_eq!(status, 200, "{limits}");
    assert_eq!(
        limits,
        json!({
            "AccountMaxReadCapacityUnits": 80000,
            "AccountMaxWriteCapacityUnits": 80000,
            "TableMaxReadCapacityUnits": 40000,
            "TableMaxWriteCapacityUnits": 40000,
        })
    );
    let (status, _, endpoints) = op(&kv, "DescribeEndpoints", json!({}));
    assert_eq!(status, 200, "{endpoints}");
    assert_eq!(
        endpoints,
        json!({"Endpoints": [{"Address": "127.0.0.1:8000", "CachePeriodInMinutes": 1440}]})
    );
}

#[test]
fn consumed_capacity_is_reported_by_dynamodbs_arithmetic_when_asked() {
    let kv = MemoryKv::new();
    op(&kv, "CreateTable", films_table());
    let key = json!({"year": {"N": "1"}, "title": {"S": "t"}});
    let units = |answer: &Value| answer["ConsumedCapacity"]["CapacityUnits"].as_f64();
    // A missing item reads as an empty one: 1 unit, half when eventually consistent.
    let (_, _, got) = op(
        &kv,
        "GetItem",
        json!({"TableName": "Films", "Key": key, "ReturnConsumedCapacity": "TOTAL", "ConsistentRead": true}),
    );
    assert_eq!(units(&got), Some(1.0), "{got}");
    assert_eq!(got["ConsumedCapacity"]["TableName"], "Films");
    let (_, _, got) = op(
        &kv,
        "GetItem",
        json!({"TableName": "Films", "Key": key, "ReturnConsumedCapacity": "TOTAL"}),
    );
    assert_eq!(units(&got), Some(0.5), "{got}");
    // A 2 KB item: 2 write units, 1 read unit.
    let mut item = key.clone();
    item["fill"] = json!({"S": "x".repeat(2000)});
    let (_, _, put) = op(
        &kv,
        "PutItem",
        json!({"TableName": "Films", "Item": item, "ReturnConsumedCapacity": "INDEXES"}),
    );
    assert_eq!(units(&put), Some(2.0), "{put}");
    assert_eq!(put["ConsumedCapacity"]["Table"]["CapacityUnits"], 2.0);
    // Replacing it with a small one is charged by the larger of the two.
    let (_, _, small) = op(
        &kv,
        "PutItem",
        json!({"TableName": "Films", "Item": key, "ReturnConsumedCapacity": "TOTAL"}),
    );
    assert_eq!(units(&small), Some(2.0), "{small}");
    let (_, _, update) = op(
        &kv,
        "UpdateItem",
        json!({"TableName": "Films", "Key": key, "UpdateExpression": "SET fill = :f", "ExpressionAttributeValues": {":f": {"S": "y".repeat(5000)}}, "ReturnConsumedCapacity": "TOTAL"}),
    );
    assert_eq!(units(&update), Some(5.0), "{update}");
    let (_, _, read) = op(
        &kv,
        "GetItem",
        json!({"TableName": "Films", "Key": key, "ReturnConsumedCapacity": "TOTAL", "ConsistentRead": true, "ProjectionExpression": "title"}),
    );
    assert_eq!(
        units(&read),
        Some(2.0),
        "a projection is charged the whole item: {read}"
    );
    let (_, _, query) = op(
        &kv,
        "Query",
        json!({"TableName": "Films", "KeyConditionExpression": "#y = :y", "ExpressionAttributeNames": {"#y": "year"}, "ExpressionAttributeValues": {":y": {"N": "1"}}, "ReturnConsumedCapacity": "TOTAL"}),
    );
    assert_eq!(units(&query), Some(1.0), "{query}");
    let (_, _, batch) = op(
        &kv,
        "BatchGetItem",
        json!({"RequestItems": {"Films": {"Keys": [key, {"year": {"N": "2"}, "title": {"S": "u"}}], "ConsistentRead": true}}, "ReturnConsumedCapacity": "TOTAL"}),
    );
    assert_eq!(
        batch["ConsumedCapacity"],
        json!([{"TableName": "Films", "CapacityUnits": 3.0}]),
        "{batch}"
    );
    let (_, _, writes) = op(
        &kv,
        "BatchWriteItem",
        json!({"RequestItems": {"Films": [{"PutRequest": {"Item": {"year": {"N": "3"}, "title": {"S": "v"}}}}, {"DeleteRequest": {"Key": key}}]}, "ReturnConsumedCapacity": "TOTAL"}),
    );
    assert_eq!(
        writes["ConsumedCapacity"],
        json!([{"TableName": "Films", "CapacityUnits": 2.0}]),
        "{writes}"
    );
    let (_, _, deleted) = op(
        &kv,
        "DeleteItem",
        json!({"TableName": "Films", "Key": key, "ReturnConsumedCapacity": "TOTAL"}),
    );
    assert_eq!(units(&deleted), Some(1.0), "{deleted}");
    // Not asked, not reported; a value DynamoDB does not know is refused.
    let (_, _, quiet) = op(&kv, "GetItem", json!({"TableName": "Films", "Key": key}));
    assert!(quiet.get("ConsumedCapacity").is_none(), "{quiet}");
    let (status, kind, _) = op(
        &kv,
        "GetItem",
        json!({"TableName": "Films", "Key": key, "ReturnConsumedCapacity": "DUMMY"}),
    );
    assert_eq!((status, kind.as_str()), (400, "ValidationException"));
}

#[test]
fn tables_are_tagged_untagged_and_listed_by_their_arn() {
    let kv = MemoryKv::new();
    let mut tagged = films_table();
    tagged["Tags"] = json!([{"Key": "team", "Value": "edge"}]);
    assert_eq!(op(&kv, "CreateTable", tagged).0, 200);
    let (_, _, described) = op(&kv, "DescribeTable", json!({"TableName": "Films"}));
    let arn = described["Table"]["TableArn"].as_str().unwrap().to_owned();
    let list =
        |kv: &MemoryKv| op(kv, "ListTagsOfResource", json!({"ResourceArn": arn})).2["Tags"].clone();
    assert_eq!(list(&kv), json!([{"Key": "team", "Value": "edge"}]));
    let tags = json!([{"Key": "team", "Value": "core"}, {"Key": "env", "Value": " "}]);
    assert_eq!(
        op(
            &kv,
            "TagResource",
            json!({"ResourceArn": arn, "Tags": tags})
        ),
        (200, String::new(), json!({}))
    );
    assert_eq!(list(&kv), tags);
    let untag = json!({"ResourceArn": arn, "TagKeys": ["team", "not-there"]});
    assert_eq!(op(&kv, "UntagResource", untag).0, 200);
    assert_eq!(list(&kv), json!([{"Key": "env", "Value": " "}]));
    let many: Vec<Value> = (0..50)
        .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
        .collect();
    for (name, body, wanted) in [
        (
            "TagResource",
            json!({"ResourceArn": "I_do_not_exist", "Tags": [{"Key": "7", "Value": "8"}]}),
            "ValidationException",
        ),
        (
            "TagResource",
            json!({"ResourceArn": format!("{arn}x"), "Tags": [{"Key": "7", "Value": "8"}]}),
            "ResourceNotFoundException",
        ),
        (
            "TagResource",
            json!({"ResourceArn": "arn:not/a/good/format", "Tags": [{"Key": "7", "Value": "8"}]}),
            "ValidationException",
        ),
        (
            "TagResource",
            json!({"ResourceArn": arn, "Tags": []}),
            "ValidationException",
        ),
        (
            "TagResource",
            json!({"ResourceArn": arn, "Tags": many}),
            "ValidationException",
        ),
        (
            "TagResource",
            json!({"ResourceArn": arn, "Tags": [{"Key": "->>;-)])", "Value": "ok"}]}),
            "ValidationException",
        ),
        (
            "TagResource",
            json!({"ResourceArn": arn}),
            "ValidationException",
        ),
    ] {
        let (status, kind, answer) = op(&kv, name, body.clone());
        assert_eq!((status, kind.as_str()), (400, wanted), "{body}: {answer}");
    }
    assert_eq!(
        list(&kv),
        json!([{"Key": "env", "Value": " "}]),
        "a refused change changed tags"
    );
    // A table created again under the name starts untagged; one with too many tags
    // is not created at all.
    op(&kv, "DeleteTable", json!({"TableName": "Films"}));
    op(&kv, "CreateTable", films_table());
    assert_eq!(list(&kv), json!([]));
    let mut crowded = films_table();
    crowded["TableName"] = json!("Crowded");
    crowded["Tags"] = json!((0..100)
        .map(|i| json!({"Key": format!("{i}"), "Value": "v"}))
        .collect::<Vec<_>>());
    assert_eq!(op(&kv, "CreateTable", crowded).1, "ValidationException");
    assert_eq!(
        op(&kv, "DescribeTable", json!({"TableName": "Crowded"})).1,
        "ResourceNotFoundException"
    );
}

#[test]
fn legacy_parameters_act_as_the_expressions_they_stand_for() {
    let kv = MemoryKv::new();
    op(&kv, "CreateTable", films_table());
    let item = |title: &str, n: u32| json!({"year": {"N": "1"}, "title": {"S": title}, "n": {"N": n.to_string()}, "tags": {"SS": ["x", "y"]}});
    for (i, title) in ["a", "b1", "b2", "c", "d"].iter().enumerate() {
        op(
            &kv,
            "PutItem",
            json!({"TableName": "Films", "Item": item(title, i as u32 + 1)}),
        );
    }
    let put = |item: Value, expected: Value| {
        op(
            &kv,
            "PutItem",
            json!({"TableName": "Films", "Item": item, "Expected": expected}),
        )
        .1
    };
    // Expected: Exists / Value, and comparison operators joined by ConditionalOperator.
    assert_eq!(
        put(item("a", 1), json!({"title": {"Exists": false}})),
        "ConditionalCheckFailedException"
    );
    assert_eq!(put(item("e", 9), json!({"title": {"Exists": false}})), "");
    assert_eq!(put(item("a", 1), json!({"n": {"Value": {"N": "1"}}})), "");
    assert_eq!(
        put(item("a", 1), json!({"n": {"Value": {"N": "2"}}})),
        "ConditionalCheckFailedException"
    );
    let either = json!({"TableName": "Films", "Item": item("a", 1), "ConditionalOperator": "OR",
        "Expected": {"n": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "5"}]},
                     "tags": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [{"S": "x"}]}}});
    assert_eq!(op(&kv, "PutItem", either).0, 200);
    // AttributesToGet on GetItem and BatchGetItem.
    let key = json!({"year": {"N": "1"}, "title": {"S": "c"}});
    let (_, _, got) = op(
        &kv,
        "GetItem",
        json!({"TableName": "Films", "Key": key, "AttributesToGet": ["n"]}),
    );
    assert_eq!(got["Item"], json!({"n": {"N": "4"}}));
    let (_, _, batch) = op(
        &kv,
        "BatchGetItem",
        json!({"RequestItems": {"Films": {"Keys": [key], "AttributesToGet": ["title"]}}}),
    );
    assert_eq!(batch["Responses"]["Films"], json!([{"title": {"S": "c"}}]));
    // KeyConditions, QueryFilter; ScanFilter.
    let (_, _, query) = op(
        &kv,
        "Query",
        json!({"TableName": "Films",
        "KeyConditions": {"year": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "1"}]},
                          "title": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "b"}]}},
        "QueryFilter": {"n": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "2"}]}}}),
    );
    assert_eq!(
        (query["Count"].as_u64(), query["ScannedCount"].as_u64()),
        (Some(1), Some(2)),
        "{query}"
    );
    assert_eq!(query["Items"][0]["title"], json!({"S": "b2"}));
    let (_, _, scan) = op(
        &kv,
        "Scan",
        json!({"TableName": "Films",
        "ScanFilter": {"n": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "2"}, {"N": "4"}]}}}),
    );
    assert_eq!(scan["Count"], 3, "{scan}");
    // KeyConditions may go with a filter expression.
    let (status, _, mixed) = op(
        &kv,
        "Query",
        json!({"TableName": "Films",
        "KeyConditions": {"year": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "1"}]}},
        "FilterExpression": "n < :n", "ExpressionAttributeValues": {":n": {"N": "3"}}}),
    );
    assert_eq!((status, mixed["Count"].as_u64()), (200, Some(2)), "{mixed}");
    // AttributeUpdates: PUT, ADD, DELETE of an attribute and of set members.
    let updates = json!({"TableName": "Films", "Key": key, "ReturnValues": "ALL_NEW", "AttributeUpdates": {
        "n": {"Action": "ADD", "Value": {"N": "10"}}, "note": {"Value": {"S": "hi"}},
        "tags": {"Action": "DELETE", "Value": {"SS": ["x"]}}, "gone": {"Action": "DELETE"}}});
    let (status, _, updated) = op(&kv, "UpdateItem", updates);
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["Attributes"]["n"], json!({"N": "14"}));
    assert_eq!(updated["Attributes"]["note"], json!({"S": "hi"}));
    assert_eq!(updated["Attributes"]["tags"], json!({"SS": ["y"]}));
    // DynamoDB's refusals: mixing forms, placeholders without expressions, arity.
    for (name, body, wanted) in [
        ("GetItem", json!({"TableName": "Films", "Key": key, "AttributesToGet": ["n"], "ProjectionExpression": "n"}),
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}"),
        ("GetItem", json!({"TableName": "Films", "Key": key, "ExpressionAttributeNames": {"#n": "n"}}),
            "ExpressionAttributeNames can only be specified when using expressions"),
        ("PutItem", json!({"TableName": "Films", "Item": item("a", 1), "ExpressionAttributeValues": {":n": {"N": "1"}}}),
            "ExpressionAttributeValues can only be specified when using expressions: ConditionExpression is null"),
        ("PutItem", json!({"TableName": "Films", "Item": item("a", 1), "Expected": {"n": {"ComparisonOperator": "EQ", "AttributeValueList": []}}}),
            "One or more parameter values were invalid: Invalid number of argument(s) for the EQ ComparisonOperator"),
        ("PutItem", json!({"TableName": "Films", "Item": item("a", 1), "Expected": {"n": {"Exists": false, "Value": {"N": "1"}}}}),
            "One or more parameter values were invalid: Value cannot be used when Exists is false for Attribute: n"),
    ] {
        let (status, kind, answer) = op(&kv, name, body.clone());
        assert_eq!((status, kind.as_str()), (400, "ValidationException"), "{body}: {answer}");
        assert_eq!(answer["message"], wanted, "{body}");
    }
}

#[test]
fn item_collection_metrics_are_checked_and_none_reported_for_a_table_without_local_indexes() {
    let kv = MemoryKv::new();
    op(&kv, "CreateTable", films_table());
    let key = json!({"year": {"N": "1"}, "title": {"S": "t"}});
    let (status, _, sized) = op(
        &kv,
        "PutItem",
        json!({"TableName": "Films", "Item": key, "ReturnItemCollectionMetrics": "SIZE"}),
    );
    assert_eq!(
        (status, sized.get("ItemCollectionMetrics")),
        (200, None),
        "{sized}"
    );
    let (status, kind, _) = op(
        &kv,
        "PutItem",
        json!({"TableName": "Films", "Item": key, "ReturnItemCollectionMetrics": "ALL"}),
    );
    assert_eq!((status, kind.as_str()), (400, "ValidationException"));
}

#[test]
fn update_table_changes_the_capacity_mode_and_refuses_what_dynamodb_refuses() {
    let kv = MemoryKv::new();
    let on_demand = on_demand_films_table();
    op(&kv, "CreateTable", on_demand);
    let units = json!({"ReadCapacityUnits": 5, "WriteCapacityUnits": 7});
    // Units on an on-demand table that stays on demand: refused.
    let (_, kind, _) = op(
        &kv,
        "UpdateTable",
        json!({"TableName": "Films", "ProvisionedThroughput": units}),
    );
    assert_eq!(kind, "ValidationException");
    let (status, _, updated) = op(
        &kv,
        "UpdateTable",
        json!({"TableName": "Films", "BillingMode": "PROVISIONED", "ProvisionedThroughput": units}),
    );
    assert_eq!(status, 200, "{updated}");
    let (_, _, described) = op(&kv, "DescribeTable", json!({"TableName": "Films"}));
    assert_eq!(
        described["Table"]["ProvisionedThroughput"],
        json!({"NumberOfDecreasesToday": 0, "ReadCapacityUnits": 5, "WriteCapacityUnits": 7})
    );
    assert!(
        described["Table"].get("BillingModeSummary").is_none(),
        "{described}"
    );
    for (body, wanted) in [
        (
            json!({"TableName": "Films", "ProvisionedThroughput": units}),
            "ValidationException",
        ),
        (json!({"TableName": "Films"}), "ValidationException"),
        (
            json!({"TableName": "Movies", "BillingMode": "PROVISIONED", "ProvisionedThroughput": units}),
            "ValidationException",
        ),
        (
            json!({"TableName": "Films", "GlobalSecondaryIndexUpdates": []}),
            "ValidationException",
        ),
        (
            json!({"TableName": "Nope", "BillingMode": "PAY_PER_REQUEST"}),
            "ResourceNotFoundException",
        ),
    ] {
        let (status, kind, answer) = op(&kv, "UpdateTable", body.clone());
        assert_eq!((status, kind.as_str()), (400, wanted), "{body}: {answer}");
    }
    let (status, _, back) = op(
        &kv,
        "UpdateTable",
        json!({"TableName": "Films", "BillingMode": "PAY_PER_REQUEST"}),
    );
    assert_eq!(status, 200, "{back}");
    assert_eq!(
        back["TableDescription"]["BillingModeSummary"]["BillingMode"],
        "PAY_PER_REQUEST"
    );
    assert_eq!(
        back["TableDescription"]["ProvisionedThroughput"]["ReadCapacityUnits"],
        0
    );
}

fn set_ttl(kv: &MemoryKv, table: &str, enabled: bool, attribute: &str) -> (u16, String, Value) {
    op(
        kv,
        "UpdateTimeToLive",
        json!({"TableName": table, "TimeToLiveSpecification": {"Enabled": enabled, "AttributeName": attribute}}),
    )
}

#[test]
fn time_to_live_is_enabled_described_and_disabled_as_dynamodb_allows() {
    let kv = MemoryKv::new();
    op(&kv, "CreateTable", on_demand_films_table());
    let describe = |kv: &MemoryKv| op(kv, "DescribeTimeToLive", json!({"TableName": "Films"})).2;
    assert_eq!(
        describe(&kv),
        json!({"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}})
    );
    let (status, _, spec) = set_ttl(&kv, "Films", false, "expires");
    assert_eq!(status, 400);
    assert_eq!(spec["message"], "TimeToLive is already disabled");
    let (status, _, spec) = set_ttl(&kv, "Films", true, "expires");
    assert_eq!(status, 200, "{spec}");
    assert_eq!(
        spec,
        json!({"TimeToLiveSpecification": {"Enabled": true, "AttributeName": "expires"}})
    );
    let enabled = json!({"TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}});
    assert_eq!(describe(&kv), enabled);
    for (on, attribute, says) in [
        (true, "expires", "TimeToLive is already enabled"),
        (
            true,
            "other",
            "TimeToLive is active on a different AttributeName: current AttributeName is expires",
        ),
        (
            false,
            "other",
            "TimeToLive is active on a different AttributeName: current AttributeName is expires",
        ),
    ] {
        let (status, kind, answer) = set_ttl(&kv, "Films", on, attribute);
        assert_eq!((status, kind.as_str()), (400, "ValidationException"));
        assert_eq!(answer["message"], says);
        assert_eq!(describe(&kv), enabled);
    }
    let (status, _, spec) = set_ttl(&kv, "Films", false, "expires");
    assert_eq!(status, 200, "{spec}");
    assert_eq!(spec["TimeToLiveSpecification"]["Enabled"], false);
    assert_eq!(
        describe(&kv),
        json!({"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}})
    );
    // A table created again under the name starts without.
    set_ttl(&kv, "Films", true, "expires");
    op(&kv, "DeleteTable", json!({"TableName": "Films"}));
    op(&kv, "CreateTable", on_demand_films_table());
    assert_eq!(
        describe(&kv),
        json!({"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}})
    );
}

#[test]
fn bad_time_to_live_requests_are_refused_as_dynamodb_refuses_them_and_change_nothing() {
    let kv = MemoryKv::new();
    op(&kv, "CreateTable", on_demand_films_table());
    let long = "x".repeat(256);
    for (spec, wanted, says) in [
        (None, "ValidationException", "Value null at 'timeToLiveSpecification'"),
        (
            Some(json!({"Enabled": true})),
            "ValidationException",
            "Value null at 'timeToLiveSpecification.attributeName'",
        ),
        (
            Some(json!({"AttributeName": "expires"})),
            "ValidationException",
            "Value null at 'timeToLiveSpecification.enabled'",
        ),
        (
            Some(json!({"Enabled": true, "AttributeName": ""})),
            "ValidationException",
            "Member must have length greater than or equal to 1",
        ),
        (
            Some(json!({"Enabled": true, "AttributeName": long})),
            "ValidationException",
            "Member must have length less than or equal to 255",
        ),
        (
            Some(json!({"Enabled": "dog", "AttributeName": "expires"})),
            "SerializationException",
            "Unexpected token",
        ),
        (
            Some(json!({"Enabled": true, "AttributeName": 3})),
            "SerializationException",
            "cannot be converted to String",
        ),
        (Some(json!("on")), "SerializationException", "Unexpected field type"),
        (
            Some(json!([])),
            "SerializationException",
            "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.TimeToLiveSpecification",
        ),
    ] {
        let mut body = json!({"TableName": "Films"});
        if let Some(spec) = spec.clone() {
            body["TimeToLiveSpecification"] = spec;
        }
        let (status, kind, answer) = op(&kv, "UpdateTimeToLive", body);
        assert_eq!((status, kind.as_str()), (400, wanted), "{spec:?}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{spec:?}: {answer}");
    }
    for (table, wanted) in [
        ("Nope", "ResourceNotFoundException"),
        ("Movies", "ValidationException"),
    ] {
        let (status, kind, answer) = set_ttl(&kv, table, true, "expires");
        assert_eq!((status, kind.as_str()), (400, wanted), "{table}: {answer}");
    }
    let (status, kind, _) = op(&kv, "DescribeTimeToLive", json!({"TableName": "Nope"}));
    assert_eq!((status, kind.as_str()), (400, "ResourceNotFoundException"));
    let (_, _, described) = op(&kv, "DescribeTimeToLive", json!({"TableName": "Films"}));
    assert_eq!(
        described["TimeToLiveDescription"]["TimeToLiveStatus"],
        "DISABLED"
    );
}

/// `Sessions`, keyed by `id` alone: every item a partition of its own.
fn sessions(kv: &MemoryKv, expiring: usize, staying: usize) {
    op(
        kv,
        "CreateTable",
        json!({
            "TableName": "Sessions",
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        }),
    );
    let at = now().timestamp();
    for i in 0..expiring + staying {
        let expires = if i < expiring { at - 60 } else { at + 60 };
        let (status, _, answer) = op(
            kv,
            "PutItem",
            json!({"TableName": "Sessions", "Item": {"id": {"S": format!("s{i:03}")}, "expires": {"N": expires.to_string()}}}),
        );
        assert_eq!(status, 200, "{answer}");
    }
}

fn count(kv: &MemoryKv, table: &str) -> u64 {
    let (status, _, answer) = op(kv, "Scan", json!({"TableName": table, "Select": "COUNT"}));
    assert_eq!(status, 200, "{answer}");
    answer["Count"].as_u64().unwrap()
}

#[test]
fn the_sweep_deletes_expired_items_within_its_budget_and_resumes_where_it_stopped() {
    let kv = MemoryKv::new();
    sessions(&kv, 20, 10);
    let budget = ttl::Budget {
        items: 1_000,
        partitions: 7,
    };
    // Until time to live is enabled, expired items are items like any other.
    let swept = block_on(ttl::sweep(&env(&kv), budget)).unwrap();
    assert_eq!(swept, ttl::Swept::default());
    set_ttl(&kv, "Sessions", true, "expires");
    let mut deleted = 0;
    for run in 1..=5 {
        let swept = block_on(ttl::sweep(&env(&kv), budget)).unwrap();
        assert_eq!(swept.partitions, if run < 5 { 7 } else { 2 }, "{swept:?}");
        assert_eq!(swept.examined, swept.partitions);
        // The pass ends with the last partition: no sweep is owed until the next.
        assert_eq!(swept.more, run < 5, "{swept:?}");
        deleted += swept.deleted;
        assert_eq!(count(&kv, "Sessions"), 30 - deleted as u64);
    }
    assert_eq!(deleted, 20);
    // The next pass starts again from the first partition, and finds nothing to delete.
    let swept = block_on(ttl::sweep(&env(&kv), budget)).unwrap();
    assert_eq!(
        (swept.partitions, swept.deleted, swept.more),
        (7, 0, true),
        "{swept:?}"
    );
    assert_eq!(count(&kv, "Sessions"), 10);
}

#[test]
fn the_sweep_stops_inside_a_partition_at_its_item_budget_and_goes_on_from_there() {
    let kv = MemoryKv::new();
    op(&kv, "CreateTable", on_demand_films_table());
    let at = now().timestamp();
    for i in 0..25 {
        let expires = if i % 2 == 0 { at - 1 } else { at + 3600 };
        op(
            &kv,
            "PutItem",
            json!({"TableName": "Films", "Item": {"year": {"N": "2001"}, "title": {"S": format!("t{i:02}")}, "ends": {"N": expires.to_string()}}}),
        );
    }
    set_ttl(&kv, "Films", true, "ends");
    let budget = ttl::Budget {
        items: 10,
        partitions: 100,
    };
    let runs: Vec<ttl::Swept> = (0..3)
        .map(|_| block_on(ttl::sweep(&env(&kv), budget)).unwrap())
        .collect();
    let examined: Vec<usize> = runs.iter().map(|s| s.examined).collect();
    assert_eq!(examined, [10, 10, 5]);
    assert_eq!(runs.iter().map(|s| s.deleted).sum::<usize>(), 13);
    assert_eq!(count(&kv, "Films"), 12);
}

#[test]
fn an_item_renewed_before_its_expiry_is_applied_is_kept() {
    let at = now().timestamp() as f64;
    let expire = ttl::Expire {
        attribute: "expires".to_owned(),
        now: at,
    };
    let item = |expires: Value| kit::table::Item {
        sk: String::new(),
        value: json!({"id": {"S": "a"}, "expires": expires}),
        version: 1,
    };
    let five_years = 5.0 * 365.0 * 24.0 * 3600.0;
    for (expires, gone) in [
        (json!({"N": (at - 1.0).to_string()}), true),
        (json!({"N": at.to_string()}), true),
        (json!({"N": (at + 1.0).to_string()}), false),
        (json!({"N": (at - five_years + 10.0).to_string()}), true),
        (json!({"N": (at - five_years - 10.0).to_string()}), false),
        (json!({"S": (at - 1.0).to_string()}), false),
        (json!({"NS": [(at - 1.0).to_string()]}), false),
    ] {
        let (change, note) =
            kit::table::Mutation::decide(&expire, Some(&item(expires.clone()))).unwrap();
        let deleted = change == kit::table::Change::Delete;
        assert_eq!((deleted, note == json!(true)), (gone, gone), "{expires}");
    }
    let (change, _) = kit::table::Mutation::decide(&expire, None).unwrap();
    assert_eq!(change, kit::table::Change::Keep);
    // Shipped to where the item lives and rebuilt there, it decides the same.
    let shipped = mutation::mutations(ttl::KIND, kit::table::Mutation::args(&expire)).unwrap();
    assert_eq!(shipped.args(), kit::table::Mutation::args(&expire));
}

#[test]
fn lowered_and_raised_units_are_described_with_their_times_and_todays_decreases() {
    let kv = MemoryKv::new();
    op(&kv, "CreateTable", films_table());
    let units = |read: u64, write: u64| json!({"TableName": "Films", "ProvisionedThroughput": {"ReadCapacityUnits": read, "WriteCapacityUnits": write}});
    let at = now().timestamp_millis() as f64 / 1000.0;
    let (status, _, lowered) = op(&kv, "UpdateTable", units(5, 10));
    assert_eq!(status, 200, "{lowered}");
    assert_eq!(
        lowered["TableDescription"]["ProvisionedThroughput"],
        json!({"NumberOfDecreasesToday": 1, "ReadCapacityUnits": 5, "WriteCapacityUnits": 10, "LastDecreaseDateTime": at})
    );
    op(&kv, "UpdateTable", units(5, 20));
    op(&kv, "UpdateTable", units(4, 20));
    let (_, _, described) = op(&kv, "DescribeTable", json!({"TableName": "Films"}));
    assert_eq!(
        described["Table"]["ProvisionedThroughput"],
        json!({"NumberOfDecreasesToday": 2, "ReadCapacityUnits": 4, "WriteCapacityUnits": 20,
               "LastIncreaseDateTime": at, "LastDecreaseDateTime": at})
    );
    // The next UTC day starts the count again; the times stay.
    let tomorrow = now() + chrono::Duration::days(1);
    let (_, _, described) = op_at(
        &kv,
        tomorrow,
        "DescribeTable",
        json!({"TableName": "Films"}),
    );
    assert_eq!(
        described["Table"]["ProvisionedThroughput"]["NumberOfDecreasesToday"],
        0
    );
    let (_, _, lowered) = op_at(&kv, tomorrow, "UpdateTable", units(3, 20));
    assert_eq!(
        lowered["TableDescription"]["ProvisionedThroughput"]["NumberOfDecreasesToday"],
        1
    );
}
