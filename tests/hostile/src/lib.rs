//! Hostile input for every parser the project runs on what a client sends or a store
//! hands back: one function per target, each taking arbitrary bytes and panicking
//! exactly when the code under it breaks a rule — a panic of its own, a 5xx, an error
//! outside the documented shape, a misread of stored bytes, or an expression that
//! evaluates differently from a deliberately simple reference evaluator.
//!
//! The coverage-guided fuzzer (`make fuzz`, crate `fuzz/`, nightly) drives these
//! functions; `cargo test -p hostile` (part of `make test`) replays every input kept in
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through them on stable.

mod reference;

use bytes::Bytes;
use ddb_model::value::AttrValue;
use dynamodb::expr::{self, Substitutions};
use kit::table::memory::MemoryKv;
use kit::table::{Cond, StoreError, Table};
use kit::{Env, Files, FilesError, MapConfig};
use serde_json::{json, Value};

pub use reference::expression_differential;

/// A fuzz target: the name of its `fuzz/fuzz_targets/<name>.rs` and corpus folder, and
/// its function.
pub type Target = (&'static str, fn(&[u8]));

pub const TARGETS: [Target; 6] = [
    ("expression", expression),
    ("expression_differential", expression_differential),
    ("dynamodb_request", dynamodb_request),
    ("sigv4", sigv4),
    ("http_request", http_request),
    ("stored_bytes", stored_bytes),
];

const KEY_ID: &str = "AKIDHOSTILE";
const SECRET: &str = "hostile/secret";
const ADMIN: &str = "hostile-admin-token-nobody-sends";

/// The instant every target runs at (a fixed clock keeps each input's outcome the same
/// on every run, as a fuzzer needs): 2026-12-01T00:00:00Z.
fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_764_547_200, 0).unwrap_or_default()
}

/// The items expressions are evaluated against: absent attributes, every type, nesting.
fn items() -> Vec<ddb_model::value::Item> {
    let docs = [
        json!({}),
        json!({"a": {"N": "5"}, "b": {"S": "text"}, "l": {"L": [{"N": "1"}, {"S": "x"}]}}),
        json!({"a": {"S": "5"}, "m": {"M": {"k": {"L": [{"M": {"z": {"BOOL": true}}}]}}},
               "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]}, "bs": {"BS": ["AAE="]},
               "n": {"NULL": true}, "bin": {"B": "AQID"}}),
    ];
    docs.iter()
        .filter_map(|d| ddb_model::value::item_from_json(d).ok())
        .collect()
}

/// The substitutions every expression may use (unused ones make a parse error, which is
/// fine: that path is hostile input too).
fn substitutions() -> Option<Substitutions> {
    Substitutions::from_request(&json!({
        "ExpressionAttributeNames": {"#a": "a", "#b": "b", "#l": "l", "#m": "m", "#k": "k"},
        "ExpressionAttributeValues": {
            ":n": {"N": "5"}, ":s": {"S": "x"}, ":l": {"L": [{"N": "1"}]},
            ":m": {"M": {"z": {"N": "0"}}}, ":ss": {"SS": ["a"]}, ":ns": {"NS": ["1"]},
            ":b": {"B": "AQ=="}, ":t": {"BOOL": true}, ":z": {"NULL": true},
        },
    }))
    .ok()
}

/// The DynamoDB expression language: any text as a condition, update, projection or
/// key condition; what parses is evaluated, applied and projected on every test item.
/// Nothing may panic; an update either applies or is a DynamoDB error.
pub fn expression(data: &[u8]) {
    let Some((&kind, text)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(text);
    // Built once per thread: a fuzzer calls this millions of times.
    thread_local! {
        static FIXTURES: Option<(Substitutions, Vec<ddb_model::value::Item>)> =
            substitutions().map(|subs| (subs, items()));
    }
    FIXTURES.with(|fixtures| {
        if let Some((subs, items)) = fixtures {
            evaluate_expression(kind, &text, subs, items);
        }
    });
}

fn evaluate_expression(
    kind: u8,
    text: &str,
    subs: &Substitutions,
    items: &[ddb_model::value::Item],
) {
    match kind % 4 {
        0 | 1 => {
            let what = if kind.is_multiple_of(4) {
                "ConditionExpression"
            } else {
                "KeyConditionExpression"
            };
            if let Ok(cond) = expr::parse_condition(text, subs, what) {
                for item in items {
                    let _ = cond.holds(item);
                }
            }
        }
        2 => {
            if let Ok(actions) = expr::parse_update(text, subs) {
                for item in items {
                    if let Ok(updated) = expr::apply(item, &actions) {
                        // What an update wrote reads back as DynamoDB JSON and parses again.
                        let back = ddb_model::value::item_to_json(&updated);
                        assert!(
                            ddb_model::value::item_from_json(&back).is_ok(),
                            "{text:?} wrote an item that does not parse back: {back}"
                        );
                    }
                }
            }
        }
        _ => {
            if let Ok(paths) = expr::parse_projection(text, subs) {
                for item in items {
                    let _ = expr::project(item, &paths);
                }
            }
        }
    }
}

/// An environment over fresh memory tables with DynamoDB credentials and an admin token
/// no input carries, and every static file present.
fn env() -> Env {
    env_over(MemoryKv::new())
}

fn env_over(kv: MemoryKv) -> Env {
    let config: MapConfig = MapConfig(
        [
            ("dynamodb_access_key_id", KEY_ID),
            ("dynamodb_secret_access_key", SECRET),
            ("admin_token", ADMIN),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    );
    let mut env = kit::host::native::env(kv, config);
    env.clock = Box::new(kit::FixedClock(now()));
    env.files = Box::new(EveryFile);
    env.log = kit::host::discard_log;
    env
}

/// Static files as a deployment ships them: every path the hosts' check allows exists.
struct EveryFile;

#[async_trait::async_trait(?Send)]
impl Files for EveryFile {
    async fn read(&self, path: &str) -> Result<Option<Bytes>, FilesError> {
        kit::files::check_path(path)?;
        Ok(Some(Bytes::from_static(b"{}")))
    }
}

/// A DynamoDB call signed as an SDK signs it.
fn signed_call(env: &Env, operation: &str, body: Vec<u8>) -> Option<kit::Response> {
    let credentials = dynamodb::sigv4::Credentials {
        access_key_id: KEY_ID.to_owned(),
        secret_access_key: SECRET.to_owned(),
    };
    let target = format!("{}{operation}", dynamodb::TARGET_PREFIX);
    let headers = dynamodb::signed_headers(&credentials, "hostile.test", &target, &body, now());
    let mut builder = http::Request::builder()
        .method("POST")
        .uri("http://hostile.test/dynamodb");
    for (name, value) in &headers {
        builder = builder.header(name, value);
    }
    let req = builder.body(Bytes::from(body)).ok()?;
    Some(futures::executor::block_on(dynamodb::handle(req, env)))
}

/// Checks a DynamoDB answer: never a 5xx, and every error in DynamoDB's shape.
fn dynamodb_answer_is_sound(response: &kit::Response, what: &str) {
    let status = response.status().as_u16();
    assert!(
        status < 500,
        "{what}: {status} {}",
        String::from_utf8_lossy(response.body())
    );
    if status >= 400 {
        let error: Value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        assert!(
            error["__type"].as_str().is_some_and(|t| t.contains('#')),
            "{what}: {status} not a DynamoDB error: {}",
            String::from_utf8_lossy(response.body())
        );
    }
}

/// The stored bytes of a deployment with table `Tab` (a GSI and an LSI) and one item in it.
fn prepared_store() -> Vec<(String, Vec<u8>)> {
    let kv = MemoryKv::new();
    let env = env_over(kv.clone());
    let setup = [
        (
            "CreateTable",
            json!({
                "TableName": "Tab",
                "KeySchema": [{"AttributeName": "p", "KeyType": "HASH"},
                              {"AttributeName": "s", "KeyType": "RANGE"}],
                "AttributeDefinitions": [{"AttributeName": "p", "AttributeType": "S"},
                                         {"AttributeName": "s", "AttributeType": "N"},
                                         {"AttributeName": "g", "AttributeType": "S"},
                                         {"AttributeName": "n", "AttributeType": "N"}],
                "GlobalSecondaryIndexes": [{"IndexName": "gsi",
                    "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "s", "KeyType": "RANGE"}],
                    "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["v"]}}],
                "LocalSecondaryIndexes": [{"IndexName": "lsi",
                    "KeySchema": [{"AttributeName": "p", "KeyType": "HASH"}, {"AttributeName": "n", "KeyType": "RANGE"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"}}],
                "BillingMode": "PAY_PER_REQUEST",
            }),
        ),
        (
            "PutItem",
            json!({"TableName": "Tab", "Item": {"p": {"S": "a"}, "s": {"N": "1"}, "g": {"S": "x"}, "n": {"N": "2"},
                   "v": {"L": [{"N": "1"}, {"M": {"x": {"S": "y"}}}]}}}),
        ),
    ];
    for (operation, body) in setup {
        let made = signed_call(&env, operation, body.to_string().into_bytes());
        let status = made.as_ref().map(|r| r.status().as_u16());
        assert_eq!(status, Some(200), "setup {operation}");
    }
    kv.snapshot().into_iter().collect()
}

/// One signed call of any operation with any body, on a deployment that has a table
/// `Tab` (partition `p` S, sort `s` N; GSI `gsi` on `g`, `s`; LSI `lsi` on `n`) with an item: every answer is a success or a
/// DynamoDB error, never a 5xx or a panic.
pub fn dynamodb_request(data: &[u8]) {
    let Some((&op, body)) = data.split_first() else {
        return;
    };
    let ops = dynamodb::Operation::ALL;
    let operation = ops[usize::from(op) % ops.len()].name();
    // The table and its item are made once per thread; each input runs on a copy.
    thread_local! {
        static PREPARED: Vec<(String, Vec<u8>)> = prepared_store();
    }
    let env = env_over(MemoryKv::from_snapshot(PREPARED.with(Clone::clone)));
    let Some(response) = signed_call(&env, operation, body.to_vec()) else {
        return;
    };
    dynamodb_answer_is_sound(&response, operation);
    // The deployment still serves: a Scan of the table answers as DynamoDB would.
    let Some(read) = signed_call(
        &env,
        "Scan",
        json!({"TableName": "Tab", "Limit": 5})
            .to_string()
            .into_bytes(),
    ) else {
        return;
    };
    dynamodb_answer_is_sound(&read, "Scan after");
}

/// The SigV4 verifier on any request: lines `METHOD`, `PATH`, `QUERY`, then `name:
/// value` headers, then the body. It must refuse or accept without panicking, and it
/// must never accept a request it did not see signed with the deployment's secret.
pub fn sigv4(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let method = lines.next().unwrap_or_default();
    let path = lines.next().unwrap_or_default();
    let query = lines.next().unwrap_or_default();
    let mut headers = Vec::new();
    let mut body = String::new();
    for line in lines.by_ref() {
        match line.split_once(':') {
            Some((name, value)) if !line.is_empty() => {
                headers.push((name.to_owned(), value.trim().to_owned()));
            }
            _ => break,
        }
    }
    for line in lines {
        body.push_str(line);
    }
    let credentials = dynamodb::sigv4::Credentials {
        access_key_id: KEY_ID.to_owned(),
        secret_access_key: SECRET.to_owned(),
    };
    let request = dynamodb::sigv4::SignedRequest {
        method,
        path,
        query,
        headers: &headers,
        body: body.as_bytes(),
    };
    let verified = dynamodb::sigv4::verify(&request, Some(&credentials), now());
    // Random bytes cannot carry the HMAC of the secret: an acceptance means the
    // verifier skipped the check.
    assert!(verified.is_err(), "accepted an unsigned request: {text:?}");
}

/// Any HTTP request to the whole deployment (every service, through the router): a
/// first line `METHOD TARGET`, header lines, a blank line, the body. Every answer is a
/// success or an error in the OpenAPI document's shape (DynamoDB's under `/dynamodb`), never a 5xx,
/// always with a request id.
pub fn http_request(data: &[u8]) {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split('\n');
    let first = lines.next().unwrap_or_default();
    let (method, target) = first.split_once(' ').unwrap_or((first, "/"));
    let mut builder = http::Request::builder().method(method).uri(target);
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            builder = builder.header(name.trim(), value.trim());
        }
    }
    let Ok(req) = builder.body(Bytes::copy_from_slice(body)) else {
        // What `http` cannot hold, no host hands to a service.
        return;
    };
    let path = req.uri().path().to_owned();
    let env = env();
    let response = futures::executor::block_on(edge_app::handle(req, &env));
    let status = response.status().as_u16();
    assert!(
        status < 500,
        "{first}: {status} {}",
        String::from_utf8_lossy(response.body())
    );
    assert!(
        response.headers().contains_key("x-request-id"),
        "{first}: no x-request-id"
    );
    if status >= 400 {
        let error: Value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        let dynamodb = path.starts_with("/dynamodb") && error["__type"].is_string();
        assert!(
            dynamodb
                || error["error"]["code"]
                    .as_str()
                    .is_some_and(|c| !c.is_empty()),
            "{first}: {status} without an error body: {}",
            String::from_utf8_lossy(response.body())
        );
    }
}

/// Arbitrary bytes where a stored value is expected: a partition of the table layer (a
/// whole partition, a page directory or an index), a page that a directory names, a
/// directory page that an index names, a Spin
/// register or data value, a Durable Object's answer. Each decodes or is `Corrupt` —
/// never a panic, a hang, another error, or a write over what could not be read.
pub fn stored_bytes(data: &[u8]) {
    stored_at(data, Vec::new(), "t/p");
    // The same bytes as the one page of a paged partition.
    let page = "t~0000000000000001/p";
    stored_at(
        data,
        vec![("t/p".to_owned(), br#"D[["","0000000000000001"]]"#.to_vec())],
        page,
    );
    // The same bytes as the one directory page of an indexed partition.
    stored_at(
        data,
        vec![("t/p".to_owned(), br#"I[["","0000000000000002"]]"#.to_vec())],
        "t~0000000000000002/p",
    );
    let _ = kit::table::spin_keys::Register::decode(data);
    let _ = kit::table::spin_keys::Data::decode(data.to_vec());
    let _ = kit::table::wire::decode_answer::<kit::table::TableOpResult>(data);
    let _ = kit::json::from_bytes::<kit::table::TableOp>(data);
    let _ = AttrValue::from_json(&serde_json::from_slice(data).unwrap_or(Value::Null));
}

/// `data` stored at `key` beside `others`, read and written through the table layer.
fn stored_at(data: &[u8], mut others: Vec<(String, Vec<u8>)>, key: &str) {
    others.push((key.to_owned(), data.to_vec()));
    let kv = MemoryKv::from_snapshot(others);
    let table = kv.table("t");
    let corrupt_or_ok = |what: &str, result: Result<(), StoreError>| {
        assert!(
            matches!(result, Ok(()) | Err(StoreError::Corrupt(_))),
            "{what}: {result:?}"
        );
    };
    let read = futures::executor::block_on(table.get("p", "x"));
    corrupt_or_ok("get", read.as_ref().map(|_| ()).map_err(Clone::clone));
    let page = futures::executor::block_on(table.query("p", None, 10));
    corrupt_or_ok("query", page.map(|_| ()));
    let put = futures::executor::block_on(table.put("p", "y", json!(1), Cond::Any));
    corrupt_or_ok("put", put.map(|_| ()));
    if read.is_err() {
        // What could not be read is never lost: bytes that do not decode stay as they
        // are; an item whose value cannot be read (a number past f64, say) is kept
        // verbatim beside what the write added.
        let items = |bytes: &[u8]| {
            if key.contains('~') {
                kit::table::page_items(bytes)
            } else {
                kit::table::v1_items(bytes.to_vec())
            }
        };
        let after = kv.snapshot().get(key).cloned();
        match items(data) {
            Ok(before) => {
                let after = after
                    .as_deref()
                    .map(items)
                    .and_then(Result::ok)
                    .unwrap_or_default();
                for item in before.iter().filter(|(sk, _, _)| sk != "y") {
                    assert!(after.contains(item), "{item:?} was lost");
                }
            }
            Err(_) => assert_eq!(
                after.as_deref(),
                Some(data),
                "corrupt stored bytes were rewritten"
            ),
        }
    }
}
