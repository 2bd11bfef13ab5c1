//! Secondary indexes: created and described as DynamoDB does, kept in step with every
//! write path, read with DynamoDB's rules, and never left behind by a crash.

use super::*;

/// `Orders`: partition `customer`, sort `id`; LSI `by_total` (sort `total`, KEYS_ONLY),
/// GSI `by_status` (`status` / `placed`, INCLUDE `total`), GSI `by_sku` (`sku`, ALL).
fn orders_table() -> Value {
    json!({
        "TableName": "Orders",
        "KeySchema": [
            {"AttributeName": "customer", "KeyType": "HASH"},
            {"AttributeName": "id", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": "customer", "AttributeType": "S"},
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "total", "AttributeType": "N"},
            {"AttributeName": "status", "AttributeType": "S"},
            {"AttributeName": "placed", "AttributeType": "N"},
            {"AttributeName": "sku", "AttributeType": "S"},
        ],
        "LocalSecondaryIndexes": [{
            "IndexName": "by_total",
            "KeySchema": [
                {"AttributeName": "customer", "KeyType": "HASH"},
                {"AttributeName": "total", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "by_status",
                "KeySchema": [
                    {"AttributeName": "status", "KeyType": "HASH"},
                    {"AttributeName": "placed", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["total"]},
            },
            {
                "IndexName": "by_sku",
                "KeySchema": [{"AttributeName": "sku", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
        "BillingMode": "PAY_PER_REQUEST",
    })
}

fn order(customer: &str, id: &str, status: &str, placed: i64, total: i64) -> Value {
    json!({
        "customer": {"S": customer}, "id": {"S": id}, "status": {"S": status},
        "placed": {"N": placed.to_string()}, "total": {"N": total.to_string()},
        "sku": {"S": format!("sku-{id}")}, "note": {"S": "not projected"},
    })
}

fn put(kv: &MemoryKv, item: Value) {
    let (status, _, body) = op(kv, "PutItem", json!({"TableName": "Orders", "Item": item}));
    assert_eq!(status, 200, "{body}");
}

/// Every item of a Query (all pages), the index's answer as given.
fn query_all(kv: &MemoryKv, mut body: Value) -> Vec<Value> {
    body["TableName"] = json!("Orders");
    let mut items = Vec::new();
    loop {
        let (status, _, answer) = op(kv, "Query", body.clone());
        assert_eq!(status, 200, "{answer}");
        items.extend(answer["Items"].as_array().cloned().unwrap_or_default());
        match answer.get("LastEvaluatedKey") {
            Some(key) => body["ExclusiveStartKey"] = key.clone(),
            None => return items,
        }
    }
}

fn by_status(kv: &MemoryKv, status: &str) -> Vec<Value> {
    query_all(
        kv,
        json!({"IndexName": "by_status", "KeyConditionExpression": "#s = :s",
               "ExpressionAttributeNames": {"#s": "status"},
               "ExpressionAttributeValues": {":s": {"S": status}}}),
    )
}

/// Asserts that `got` is DynamoDB's `ValidationException` saying `message`.
fn assert_invalid((status, kind, body): (u16, String, Value), message: &str) {
    assert_eq!(
        (status, kind.as_str()),
        (400, "ValidationException"),
        "{body}"
    );
    let said = body["message"].as_str().unwrap_or_default();
    assert!(said.contains(message), "{body} does not say {message}");
}

fn ids(items: &[Value]) -> Vec<&str> {
    items
        .iter()
        .map(|i| i["id"]["S"].as_str().unwrap())
        .collect()
}

#[test]
fn indexes_are_created_and_described_as_dynamodb_describes_them() {
    let kv = MemoryKv::new();
    let (status, _, created) = op(&kv, "CreateTable", orders_table());
    assert_eq!(status, 200, "{created}");
    let (_, _, described) = op(&kv, "DescribeTable", json!({"TableName": "Orders"}));
    let table = &described["Table"];
    assert_eq!(
        created["TableDescription"]["GlobalSecondaryIndexes"],
        table["GlobalSecondaryIndexes"]
    );
    assert_eq!(table["AttributeDefinitions"].as_array().unwrap().len(), 6);
    assert_eq!(
        table["LocalSecondaryIndexes"],
        json!([{
            "IndexName": "by_total",
            "KeySchema": [{"AttributeName": "customer", "KeyType": "HASH"}, {"AttributeName": "total", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
            "IndexSizeBytes": 0, "ItemCount": 0,
            "IndexArn": "arn:aws:dynamodb:local:000000000000:table/Orders/index/by_total",
        }])
    );
    assert_eq!(
        table["GlobalSecondaryIndexes"][0],
        json!({
            "IndexName": "by_status",
            "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}, {"AttributeName": "placed", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["total"]},
            "IndexStatus": "ACTIVE",
            "ProvisionedThroughput": {"NumberOfDecreasesToday": 0, "ReadCapacityUnits": 0, "WriteCapacityUnits": 0},
            "IndexSizeBytes": 0, "ItemCount": 0,
            "IndexArn": "arn:aws:dynamodb:local:000000000000:table/Orders/index/by_status",
        })
    );
}

#[test]
fn create_table_refuses_indexes_dynamodb_refuses_and_creates_nothing() {
    let kv = MemoryKv::new();
    type Change = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Change, &str)> = vec![
        (
            Box::new(|t| t["GlobalSecondaryIndexes"][1]["IndexName"] = json!("by_status")),
            "Duplicate index name: by_status",
        ),
        (
            Box::new(|t| {
                t["LocalSecondaryIndexes"][0]["KeySchema"][0]["AttributeName"] = json!("sku")
            }),
            "does not have the same leading hash key",
        ),
        (
            Box::new(|t| t["GlobalSecondaryIndexes"][1]["Projection"] = json!({})),
            "Unknown ProjectionType: null",
        ),
        (
            Box::new(|t| {
                t["GlobalSecondaryIndexes"][1]["Projection"]["NonKeyAttributes"] = json!(["a"])
            }),
            "ProjectionType is ALL, but NonKeyAttributes is specified",
        ),
        (
            Box::new(|t| {
                t["GlobalSecondaryIndexes"][1]["KeySchema"][0]["AttributeName"] = json!("nope")
            }),
            "Some index key attributes are not defined",
        ),
        (
            Box::new(|t| t["GlobalSecondaryIndexes"][1]["IndexName"] = json!("n")),
            "indexName",
        ),
        (
            Box::new(|t| {
                t["AttributeDefinitions"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"AttributeName": "spare", "AttributeType": "S"}))
            }),
            "Some AttributeDefinitions are not used",
        ),
        (
            Box::new(|t| {
                t["GlobalSecondaryIndexes"][1]["ProvisionedThroughput"] =
                    json!({"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})
            }),
            "should not be specified for index: by_sku",
        ),
        (
            Box::new(|t| t["GlobalSecondaryIndexes"] = json!([])),
            "List of GlobalSecondaryIndexes is empty",
        ),
    ];
    for (change, message) in cases {
        let mut table = orders_table();
        change(&mut table);
        assert_invalid(op(&kv, "CreateTable", table), message);
    }
    let mut hash_only = orders_table();
    hash_only["KeySchema"] = json!([{"AttributeName": "customer", "KeyType": "HASH"}]);
    hash_only["AttributeDefinitions"]
        .as_array_mut()
        .unwrap()
        .remove(1);
    assert_invalid(
        op(&kv, "CreateTable", hash_only),
        "Table KeySchema does not have a range key",
    );
    let (_, _, listed) = op(&kv, "ListTables", json!({}));
    assert_eq!(listed["TableNames"], json!(["Movies"]));
}

#[test]
fn every_write_path_keeps_the_indexes_in_step() {
    let kv = MemoryKv::new();
    op(&kv, "CreateTable", orders_table());
    put(&kv, order("ann", "o1", "open", 3, 30));
    put(&kv, order("ann", "o2", "open", 1, 10));
    put(&kv, order("bob", "o3", "shipped", 2, 20));
    // A GSI with a sort key: in its order, with the projection it was given.
    let open = by_status(&kv, "open");
    assert_eq!(ids(&open), ["o2", "o1"]);
    assert_eq!(
        open[0],
        json!({"customer": {"S": "ann"}, "id": {"S": "o2"}, "status": {"S": "open"}, "placed": {"N": "1"}, "total": {"N": "10"}})
    );
    // UpdateItem moving an item between index keys.
    let (status, _, _) = op(
        &kv,
        "UpdateItem",
        json!({"TableName": "Orders", "Key": {"customer": {"S": "ann"}, "id": {"S": "o1"}},
        "UpdateExpression": "SET #s = :s", "ExpressionAttributeNames": {"#s": "status"}, "ExpressionAttributeValues": {":s": {"S": "shipped"}}}),
    );
    assert_eq!(status, 200);
    assert_eq!(ids(&by_status(&kv, "open")), ["o2"]);
    assert_eq!(ids(&by_status(&kv, "shipped")), ["o3", "o1"]);
    // Removing the index key makes the item leave the (sparse) index.
    op(
        &kv,
        "UpdateItem",
        json!({"TableName": "Orders", "Key": {"customer": {"S": "bob"}, "id": {"S": "o3"}}, "UpdateExpression": "REMOVE placed"}),
    );
    assert_eq!(ids(&by_status(&kv, "shipped")), ["o1"]);
    // DeleteItem, BatchWriteItem and a transaction.
    op(
        &kv,
        "DeleteItem",
        json!({"TableName": "Orders", "Key": {"customer": {"S": "ann"}, "id": {"S": "o1"}}}),
    );
    assert!(by_status(&kv, "shipped").is_empty());
    let (status, _, _) = op(
        &kv,
        "BatchWriteItem",
        json!({"RequestItems": {"Orders": [
            {"PutRequest": {"Item": order("cat", "o4", "open", 5, 50)}},
            {"DeleteRequest": {"Key": {"customer": {"S": "ann"}, "id": {"S": "o2"}}}},
        ]}}),
    );
    assert_eq!(status, 200);
    assert_eq!(ids(&by_status(&kv, "open")), ["o4"]);
    let (status, _, body) = op(
        &kv,
        "TransactWriteItems",
        json!({"TransactItems": [
            {"Put": {"TableName": "Orders", "Item": order("dan", "o5", "open", 4, 40)}},
            {"Update": {"TableName": "Orders", "Key": {"customer": {"S": "cat"}, "id": {"S": "o4"}},
                        "UpdateExpression": "SET #s = :s", "ExpressionAttributeNames": {"#s": "status"}, "ExpressionAttributeValues": {":s": {"S": "paid"}}}},
        ]}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&by_status(&kv, "open")), ["o5"]);
    assert_eq!(ids(&by_status(&kv, "paid")), ["o4"]);
    // A hash-only GSI with every attribute, and its Scan.
    let sku = query_all(
        &kv,
        json!({"IndexName": "by_sku", "KeyConditionExpression": "sku = :k",
        "ExpressionAttributeValues": {":k": {"S": "sku-o5"}}}),
    );
    assert_eq!(sku, [order("dan", "o5", "open", 4, 40)]);
    let (_, _, scanned) = op(
        &kv,
        "Scan",
        json!({"TableName": "Orders", "IndexName": "by_sku"}),
    );
    let mut scanned = ids(scanned["Items"].as_array().unwrap());
    scanned.sort();
    assert_eq!(scanned, ["o3", "o4", "o5"]);
    // The LSI, strongly consistent, in `total` order within the partition.
    put(&kv, order("dan", "o6", "open", 6, 5));
    let by_total = query_all(
        &kv,
        json!({"IndexName": "by_total", "ConsistentRead": true,
        "KeyConditionExpression": "customer = :c AND #t > :t", "ExpressionAttributeNames": {"#t": "total"},
        "ExpressionAttributeValues": {":c": {"S": "dan"}, ":t": {"N": "1"}}}),
    );
    assert_eq!(
        by_total,
        [
            json!({"customer": {"S": "dan"}, "id": {"S": "o6"}, "total": {"N": "5"}}),
            json!({"customer": {"S": "dan"}, "id": {"S": "o5"}, "total": {"N": "40"}}),
        ]
    );
}

#[test]
fn index_pages_resume_from_the_index_and_table_keys() {
    let kv = MemoryKv::new();
    op(&kv, "CreateTable", orders_table());
    for n in 0..7 {
        // Two items per `placed`: entries tie on the index key.
        put(
            &kv,
            order(&format!("c{n}"), &format!("o{n}"), "open", n / 2, n),
        );
    }
    let (_, _, first) = op(
        &kv,
        "Query",
        json!({"TableName": "Orders", "IndexName": "by_status", "Limit": 3,
        "KeyConditionExpression": "#s = :s", "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":s": {"S": "open"}}}),
    );
    let last = &first["LastEvaluatedKey"];
    let mut names: Vec<&str> = last
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort();
    assert_eq!(names, ["customer", "id", "placed", "status"]);
    let all = by_status(&kv, "open");
    assert_eq!(all.len(), 7);
    let placed: Vec<&str> = all
        .iter()
        .map(|i| i["placed"]["N"].as_str().unwrap())
        .collect();
    assert_eq!(placed, ["0", "0", "1", "1", "2", "2", "3"]);
    let backwards = query_all(
        &kv,
        json!({"IndexName": "by_status", "ScanIndexForward": false, "Limit": 2,
        "KeyConditionExpression": "#s = :s AND placed <= :p", "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":s": {"S": "open"}, ":p": {"N": "1"}}}),
    );
    assert_eq!(backwards.len(), 4);
    assert!(backwards.iter().all(|i| i["placed"]["N"] != "2"));
}

#[test]
fn index_reads_and_writes_are_refused_where_dynamodb_refuses_them() {
    let kv = MemoryKv::new();
    op(&kv, "CreateTable", orders_table());
    put(&kv, order("ann", "o1", "open", 1, 10));
    let query = |extra: Value| {
        let mut body = json!({"TableName": "Orders", "IndexName": "by_status",
            "KeyConditionExpression": "#s = :s", "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":s": {"S": "open"}}});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        op(&kv, "Query", body)
    };
    for (extra, message) in [
        (
            json!({"ConsistentRead": true}),
            "Consistent reads are not supported on global secondary indexes",
        ),
        (
            json!({"IndexName": "nope"}),
            "The table does not have the specified index: nope",
        ),
        (
            json!({"Select": "ALL_ATTRIBUTES"}),
            "Select type ALL_ATTRIBUTES is not supported for global secondary index by_status",
        ),
        (json!({"ProjectionExpression": "note"}), "does not project"),
    ] {
        assert_invalid(query(extra), message);
    }
    // A local index reads what it does not hold from the table.
    let (status, _, body) = op(
        &kv,
        "Query",
        json!({"TableName": "Orders", "IndexName": "by_total",
        "Select": "ALL_ATTRIBUTES", "KeyConditionExpression": "customer = :c",
        "ExpressionAttributeValues": {":c": {"S": "ann"}}}),
    );
    assert_eq!(
        (status, body["Items"].clone()),
        (200, json!([order("ann", "o1", "open", 1, 10)]))
    );
    // Index keys of the wrong type or empty: refused on every write path, nothing written.
    let mut wrong = order("ann", "o9", "open", 1, 10);
    wrong["status"] = json!({"N": "3"});
    let mut empty = order("ann", "o9", "open", 1, 10);
    empty["sku"] = json!({"S": ""});
    for (bad, message) in [
        (
            wrong,
            "Type mismatch for Index Key status Expected: S Actual: N IndexName: by_status",
        ),
        (empty, "IndexName: by_sku, IndexKey: sku"),
    ] {
        for (operation, body) in [
            ("PutItem", json!({"TableName": "Orders", "Item": bad})),
            (
                "BatchWriteItem",
                json!({"RequestItems": {"Orders": [{"PutRequest": {"Item": order("ann", "o8", "open", 1, 1)}}, {"PutRequest": {"Item": bad}}]}}),
            ),
            (
                "TransactWriteItems",
                json!({"TransactItems": [{"Put": {"TableName": "Orders", "Item": bad}}]}),
            ),
        ] {
            assert_invalid(op(&kv, operation, body), message);
        }
    }
    let (status, kind, answer) = op(
        &kv,
        "UpdateItem",
        json!({"TableName": "Orders", "Key": {"customer": {"S": "ann"}, "id": {"S": "o1"}},
        "UpdateExpression": "SET placed = :p", "ExpressionAttributeValues": {":p": {"S": "soon"}}}),
    );
    assert_eq!(
        (status, kind.as_str()),
        (400, "ValidationException"),
        "{answer}"
    );
    let (_, _, scanned) = op(&kv, "Scan", json!({"TableName": "Orders"}));
    assert_eq!(scanned["Items"], json!([order("ann", "o1", "open", 1, 10)]));
}

/// Every index entry of `Orders` as (index, item), and what the items say they should
/// be, for comparing after a crash.
type Entries = Vec<(String, Value)>;

fn entries_and_expected(kv: &MemoryKv) -> (Entries, Entries) {
    let (_, _, scanned) = op(kv, "Scan", json!({"TableName": "Orders"}));
    let items = scanned["Items"].as_array().unwrap().clone();
    let mut expected = Vec::new();
    let mut found = Vec::new();
    // Every index key the writes can make, each read by a Query of the index's own
    // entries (a Scan of an index reads the table).
    let keys = [
        ("by_status", "status", vec!["open", "paid", "shipped"]),
        (
            "by_sku",
            "sku",
            vec!["sku-o1", "sku-o2", "sku-o3", "sku-o4", "sku-o9", "other"],
        ),
    ];
    for (index, attribute, values) in keys {
        for value in values {
            let entries = query_all(
                kv,
                json!({"IndexName": index, "KeyConditionExpression": "#k = :v",
                       "ExpressionAttributeNames": {"#k": attribute},
                       "ExpressionAttributeValues": {":v": {"S": value}}}),
            );
            found.extend(entries.into_iter().map(|e| (index.to_owned(), e)));
        }
        for item in &items {
            let entry = match index {
                "by_status" if item.get("placed").is_some() => {
                    let mut e = item.clone();
                    e.as_object_mut().unwrap().retain(|k, _| {
                        ["customer", "id", "status", "placed", "total"].contains(&k.as_str())
                    });
                    e
                }
                "by_sku" => item.clone(),
                _ => continue,
            };
            expected.push((index.to_owned(), entry));
        }
    }
    let key = |(i, v): &(String, Value)| format!("{i}{v}");
    found.sort_by_key(key);
    expected.sort_by_key(key);
    (found, expected)
}

#[test]
fn index_entries_agree_with_the_items_after_a_crash_at_any_step() {
    let writes = |kv: &MemoryKv| {
        op(
            kv,
            "PutItem",
            json!({"TableName": "Orders", "Item": order("ann", "o1", "open", 1, 10)}),
        );
        op(
            kv,
            "UpdateItem",
            json!({"TableName": "Orders", "Key": {"customer": {"S": "ann"}, "id": {"S": "o1"}},
            "UpdateExpression": "SET #s = :s, sku = :k", "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":s": {"S": "paid"}, ":k": {"S": "other"}}}),
        );
        op(
            kv,
            "UpdateItem",
            json!({"TableName": "Orders", "Key": {"customer": {"S": "bob"}, "id": {"S": "o2"}}, "UpdateExpression": "REMOVE placed"}),
        );
        op(
            kv,
            "DeleteItem",
            json!({"TableName": "Orders", "Key": {"customer": {"S": "cat"}, "id": {"S": "o3"}}}),
        );
        op(
            kv,
            "TransactWriteItems",
            json!({"TransactItems": [
                {"Put": {"TableName": "Orders", "Item": order("dan", "o4", "open", 4, 40)}},
                {"Delete": {"TableName": "Orders", "Key": {"customer": {"S": "bob"}, "id": {"S": "o2"}}}},
            ]}),
        );
    };
    let mut crashed_at = 0;
    for changes in 0.. {
        let kv = MemoryKv::new();
        op(&kv, "CreateTable", orders_table());
        put(&kv, order("bob", "o2", "shipped", 2, 20));
        put(&kv, order("cat", "o3", "open", 3, 30));
        let dying = kv.dying_after(changes);
        writes(&dying);
        // The process died (or not) somewhere; the background pass runs later.
        let later = now() + chrono::Duration::seconds(31);
        block_on(crate::ttl::sweep(
            &env_at(&kv, later),
            crate::ttl::Budget {
                items: 1000,
                partitions: 100,
            },
        ))
        .unwrap();
        let (found, expected) = entries_and_expected(&kv);
        assert_eq!(found, expected, "after a crash at change {changes}");
        // A run that never died has nothing left to redrive.
        let (status, _, _) = op(&dying, "DescribeTable", json!({"TableName": "Orders"}));
        if status == 200
            && op(
                &dying,
                "PutItem",
                json!({"TableName": "Orders", "Item": order("eve", "o9", "open", 9, 9)}),
            )
            .0 == 200
        {
            crashed_at = changes;
            break;
        }
    }
    // The writes make dozens of changes: every one of them was a crash point.
    assert!(crashed_at > 40, "only {crashed_at} crash points");
}

#[test]
fn update_table_creates_a_gsi_filled_with_the_items_before_and_deletes_one() {
    let kv = MemoryKv::new();
    op(&kv, "CreateTable", orders_table());
    for n in 0..30 {
        put(&kv, order(&format!("c{n}"), &format!("o{n}"), "open", n, n));
    }
    let create = json!({"TableName": "Orders",
        "AttributeDefinitions": [{"AttributeName": "note", "AttributeType": "S"}],
        "GlobalSecondaryIndexUpdates": [{"Create": {"IndexName": "by_note",
            "KeySchema": [{"AttributeName": "note", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"}}}]});
    let (status, _, answer) = op(&kv, "UpdateTable", create.clone());
    assert_eq!(status, 200, "{answer}");
    let created = &answer["TableDescription"]["GlobalSecondaryIndexes"][2];
    assert_eq!(
        (
            created["IndexStatus"].clone(),
            created["Backfilling"].clone()
        ),
        (json!("CREATING"), json!(true))
    );
    assert_invalid(op(&kv, "UpdateTable", create), "already exists");
    // Not readable while it fills; a write meanwhile is in it at once.
    let note_query = json!({"TableName": "Orders", "IndexName": "by_note", "KeyConditionExpression": "note = :n",
        "ExpressionAttributeValues": {":n": {"S": "not projected"}}});
    assert_invalid(op(&kv, "Query", note_query.clone()), "backfilling");
    put(&kv, order("late", "o99", "open", 99, 99));
    // DescribeTable within the grace period leaves it filling; after it, each one
    // fills 20 partitions until the index is ACTIVE.
    let describe = |at: DateTime<Utc>| {
        op_at(&kv, at, "DescribeTable", json!({"TableName": "Orders"})).2["Table"]
            ["GlobalSecondaryIndexes"][2]["IndexStatus"]
            .clone()
    };
    assert_eq!(describe(now()), "CREATING");
    let later = now() + chrono::Duration::seconds(11);
    assert_eq!(describe(later), "CREATING");
    assert_eq!(describe(later), "ACTIVE");
    let found = query_all(&kv, note_query.clone()).len();
    assert_eq!(found, 31);
    // Deleted: gone from the description and from reads; created again, it starts empty.
    let (status, _, _) = op(
        &kv,
        "UpdateTable",
        json!({"TableName": "Orders",
        "GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": "by_note"}}]}),
    );
    assert_eq!(status, 200);
    assert_invalid(
        op(&kv, "Query", note_query),
        "does not have the specified index",
    );
    let (_, _, described) = op(&kv, "DescribeTable", json!({"TableName": "Orders"}));
    assert_eq!(
        described["Table"]["GlobalSecondaryIndexes"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn writes_to_a_table_with_a_local_index_report_item_collection_metrics_when_asked() {
    let kv = MemoryKv::new();
    op(&kv, "CreateTable", orders_table());
    let metrics =
        json!({"ItemCollectionKey": {"customer": {"S": "ann"}}, "SizeEstimateRangeGB": [0.0, 1.0]});
    let key = json!({"customer": {"S": "ann"}, "id": {"S": "o1"}});
    for (operation, body) in [
        (
            "PutItem",
            json!({"TableName": "Orders", "Item": order("ann", "o1", "open", 1, 1), "ReturnItemCollectionMetrics": "SIZE"}),
        ),
        (
            "UpdateItem",
            json!({"TableName": "Orders", "Key": key, "UpdateExpression": "SET x = :x",
            "ExpressionAttributeValues": {":x": {"N": "1"}}, "ReturnItemCollectionMetrics": "SIZE"}),
        ),
        (
            "DeleteItem",
            json!({"TableName": "Orders", "Key": key, "ReturnItemCollectionMetrics": "SIZE"}),
        ),
    ] {
        let (status, _, answer) = op(&kv, operation, body);
        assert_eq!(
            (status, &answer["ItemCollectionMetrics"]),
            (200, &metrics),
            "{operation}"
        );
    }
    let (_, _, batch) = op(
        &kv,
        "BatchWriteItem",
        json!({"ReturnItemCollectionMetrics": "SIZE", "RequestItems": {"Orders": [
            {"PutRequest": {"Item": order("ann", "o2", "open", 1, 1)}},
            {"PutRequest": {"Item": order("ann", "o3", "open", 1, 1)}},
        ]}}),
    );
    assert_eq!(batch["ItemCollectionMetrics"], json!({"Orders": [metrics]}));
    let (_, _, unasked) = op(
        &kv,
        "PutItem",
        json!({"TableName": "Orders", "Item": order("ann", "o4", "open", 1, 1)}),
    );
    assert_eq!(unasked.get("ItemCollectionMetrics"), None);
}

#[test]
fn consumed_capacity_counts_the_index_writes_and_reads_by_dynamodbs_arithmetic() {
    let kv = MemoryKv::new();
    op(&kv, "CreateTable", orders_table());
    let (_, _, put) = op(
        &kv,
        "PutItem",
        json!({"TableName": "Orders", "Item": order("ann", "o1", "open", 1, 10),
        "ReturnConsumedCapacity": "INDEXES"}),
    );
    assert_eq!(
        put["ConsumedCapacity"],
        json!({"TableName": "Orders", "CapacityUnits": 4.0, "Table": {"CapacityUnits": 1.0},
               "GlobalSecondaryIndexes": {"by_status": {"CapacityUnits": 1.0}, "by_sku": {"CapacityUnits": 1.0}},
               "LocalSecondaryIndexes": {"by_total": {"CapacityUnits": 1.0}}})
    );
    // Moving the by_status entry is a delete and a put; by_sku holds every attribute and
    // changes; by_total's projection (keys only) does not.
    let (_, _, update) = op(
        &kv,
        "UpdateItem",
        json!({"TableName": "Orders", "Key": {"customer": {"S": "ann"}, "id": {"S": "o1"}},
        "UpdateExpression": "SET #s = :s", "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":s": {"S": "paid"}}, "ReturnConsumedCapacity": "TOTAL"}),
    );
    assert_eq!(
        update["ConsumedCapacity"],
        json!({"TableName": "Orders", "CapacityUnits": 4.0})
    );
    let (_, _, query) = op(
        &kv,
        "Query",
        json!({"TableName": "Orders", "IndexName": "by_sku",
        "KeyConditionExpression": "sku = :k", "ExpressionAttributeValues": {":k": {"S": "sku-o1"}},
        "ReturnConsumedCapacity": "INDEXES"}),
    );
    assert_eq!(
        query["ConsumedCapacity"],
        json!({"TableName": "Orders", "CapacityUnits": 0.5, "Table": {"CapacityUnits": 0.0},
               "GlobalSecondaryIndexes": {"by_sku": {"CapacityUnits": 0.5}}})
    );
}
