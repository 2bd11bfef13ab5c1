//! TransactWriteItems and TransactGetItems in-process: all or nothing, DynamoDB's
//! answers, idempotency tokens, and a coordinator that dies at every step.

use super::*;

/// `Accounts` (`id` S alone: every account a partition of its own) holding `balances`.
fn accounts(kv: &MemoryKv, balances: &[(&str, i64)]) {
    let (status, _, made) = op(
        kv,
        "CreateTable",
        json!({
            "TableName": "Accounts",
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        }),
    );
    assert_eq!(status, 200, "{made}");
    for (id, balance) in balances {
        let (status, _, put) = op(
            kv,
            "PutItem",
            json!({"TableName": "Accounts", "Item": {"id": {"S": id}, "balance": {"N": balance.to_string()}}}),
        );
        assert_eq!(status, 200, "{put}");
    }
}

/// The balance of account `id` as GetItem reads it at `at` (`None`: no account).
fn balance_at(kv: &MemoryKv, at: DateTime<Utc>, id: &str) -> Option<i64> {
    let (status, _, got) = op_at(
        kv,
        at,
        "GetItem",
        json!({"TableName": "Accounts", "Key": {"id": {"S": id}}}),
    );
    assert_eq!(status, 200, "{got}");
    got["Item"]["balance"]["N"]
        .as_str()
        .map(|n| n.parse().unwrap())
}

fn balance(kv: &MemoryKv, id: &str) -> Option<i64> {
    balance_at(kv, now(), id)
}

/// A transfer of `amount` from `from` to `to`, refused when `from` would go negative.
fn transfer(from: &str, to: &str, amount: i64) -> Value {
    json!({"TransactItems": [
        {"Update": {
            "TableName": "Accounts",
            "Key": {"id": {"S": from}},
            "UpdateExpression": "SET balance = balance - :x",
            "ConditionExpression": "balance >= :x",
            "ExpressionAttributeValues": {":x": {"N": amount.to_string()}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }},
        {"Update": {
            "TableName": "Accounts",
            "Key": {"id": {"S": to}},
            "UpdateExpression": "SET balance = balance + :x",
            "ExpressionAttributeValues": {":x": {"N": amount.to_string()}},
        }},
    ]})
}

/// The item as stored at `id` of `Accounts`, lock and all.
fn stored(kv: &MemoryKv, id: &str) -> Option<Value> {
    let env = env(kv);
    let catalog = env.table(schema::CATALOG).unwrap();
    let def = block_on(catalog.get(schema::CATALOG_PK, "Accounts"))
        .unwrap()
        .unwrap();
    let def: schema::TableDef = serde_json::from_value(def.value).unwrap();
    let items = env.table(&def.storage_name()).unwrap();
    block_on(items.get(&format!("S{id}"), ""))
        .unwrap()
        .map(|i| i.value)
}

#[test]
fn a_transaction_writes_all_its_items_or_none_and_says_why_in_order() {
    let kv = MemoryKv::new();
    accounts(&kv, &[("a", 100), ("b", 0)]);
    let mut body = transfer("a", "b", 30);
    body["TransactItems"].as_array_mut().unwrap().extend([
        json!({"Put": {"TableName": "Accounts", "Item": {"id": {"S": "c"}, "balance": {"N": "5"}},
                           "ConditionExpression": "attribute_not_exists(id)"}}),
        json!({"ConditionCheck": {"TableName": "Accounts", "Key": {"id": {"S": "d"}},
                                      "ConditionExpression": "attribute_not_exists(id)"}}),
    ]);
    let (status, _, answer) = op(&kv, "TransactWriteItems", body.clone());
    assert_eq!((status, answer), (200, json!({})));
    assert_eq!(
        [
            balance(&kv, "a"),
            balance(&kv, "b"),
            balance(&kv, "c"),
            balance(&kv, "d")
        ],
        [Some(70), Some(30), Some(5), None]
    );
    // Again: `c` exists now, so nothing happens, and the reasons say which failed.
    let (status, kind, answer) = op(&kv, "TransactWriteItems", body);
    assert_eq!(
        (status, kind.as_str()),
        (400, "TransactionCanceledException")
    );
    assert_eq!(
        answer["message"],
        "Transaction cancelled, please refer cancellation reasons for specific reasons [None, None, ConditionalCheckFailed, None]"
    );
    assert_eq!(
        answer["CancellationReasons"],
        json!([{"Code": "None"}, {"Code": "None"}, {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}, {"Code": "None"}])
    );
    assert_eq!([balance(&kv, "a"), balance(&kv, "b")], [Some(70), Some(30)]);
    // A failed condition that asked for the item gets it in its reason.
    let (_, kind, answer) = op(&kv, "TransactWriteItems", transfer("a", "b", 71));
    assert_eq!(kind, "TransactionCanceledException");
    assert_eq!(
        answer["CancellationReasons"][0]["Item"],
        json!({"id": {"S": "a"}, "balance": {"N": "70"}})
    );
    assert_eq!(answer["CancellationReasons"][1], json!({"Code": "None"}));
    // An update that cannot apply is the action's validation error.
    let (_, kind, answer) = op(
        &kv,
        "TransactWriteItems",
        json!({"TransactItems": [
            {"Update": {"TableName": "Accounts", "Key": {"id": {"S": "a"}},
                        "UpdateExpression": "SET balance = id + :x", "ExpressionAttributeValues": {":x": {"N": "1"}}}},
            {"Delete": {"TableName": "Accounts", "Key": {"id": {"S": "b"}}}},
        ]}),
    );
    assert_eq!(kind, "TransactionCanceledException");
    assert_eq!(answer["CancellationReasons"][0]["Code"], "ValidationError");
    assert_eq!([balance(&kv, "a"), balance(&kv, "b")], [Some(70), Some(30)]);
    // No lock is left behind, and no record.
    for id in ["a", "b", "c", "d"] {
        assert!(
            stored(&kv, id).is_none_or(|v| v.get("").is_none()),
            "{id}: {:?}",
            stored(&kv, id)
        );
    }
    // (Deleting a partition's last item may leave its empty page behind.)
    let records: Vec<String> = kv
        .snapshot()
        .into_iter()
        .filter(|(k, v)| k.contains(txn::RECORDS) && String::from_utf8_lossy(v).contains("state"))
        .map(|(k, _)| k)
        .collect();
    assert!(records.is_empty(), "{records:?}");
}

#[test]
fn bad_transactions_are_refused_before_anything_is_written() {
    let kv = MemoryKv::new();
    accounts(&kv, &[("a", 100), ("b", 0)]);
    let check = json!({"ConditionCheck": {"TableName": "Accounts", "Key": {"id": {"S": "a"}}, "ConditionExpression": "balance > :z", "ExpressionAttributeValues": {":z": {"N": "0"}}}});
    let put_b = json!({"Put": {"TableName": "Accounts", "Item": {"id": {"S": "b"}, "balance": {"N": "999"}}}});
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"Put": {"TableName": "Accounts", "Item": {"id": {"S": format!("n{i}")}}}}))
        .collect();
    for (body, wanted, says) in [
        (
            json!({}),
            "ValidationException",
            "Value null at 'transactItems'",
        ),
        (
            json!({"TransactItems": []}),
            "ValidationException",
            "greater than or equal to 1",
        ),
        (
            json!({"TransactItems": many}),
            "ValidationException",
            "less than or equal to 100",
        ),
        (
            json!({"TransactItems": [put_b.clone(), {"Delete": {"TableName": "Accounts", "Key": {"id": {"S": "b"}}}}]}),
            "ValidationException",
            "multiple operations on one item",
        ),
        (
            json!({"TransactItems": [put_b.clone(), {"Put": put_b["Put"], "Delete": {"TableName": "Accounts", "Key": {"id": {"S": "a"}}}}]}),
            "ValidationException",
            "can only contain one of",
        ),
        (
            json!({"TransactItems": [put_b.clone(), {"ConditionCheck": {"TableName": "Accounts", "Key": {"id": {"S": "a"}}}}]}),
            "ValidationException",
            "transactItems.2.member.conditionCheck.conditionExpression",
        ),
        (
            json!({"TransactItems": [put_b.clone(), {"Delete": {"TableName": "Nope", "Key": {"id": {"S": "a"}}}}]}),
            "ResourceNotFoundException",
            "",
        ),
        (
            json!({"TransactItems": [put_b.clone(), {"Delete": {"TableName": "Movies", "Key": {"year": {"N": "1"}, "title": {"S": "t"}}}}]}),
            "ValidationException",
            "built in",
        ),
        (
            json!({"TransactItems": [put_b.clone(), check.clone()], "ClientRequestToken": ""}),
            "ValidationException",
            "clientRequestToken",
        ),
        (json!({"TransactItems": {}}), "SerializationException", ""),
    ] {
        let (status, kind, answer) = op(&kv, "TransactWriteItems", body.clone());
        assert_eq!((status, kind.as_str()), (400, wanted), "{body}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{body}: {answer}");
    }
    assert_eq!([balance(&kv, "a"), balance(&kv, "b")], [Some(100), Some(0)]);
    let (status, kind, _) = op(
        &kv,
        "TransactGetItems",
        json!({"TransactItems": [{"Get": {"TableName": "Accounts", "Key": {"id": {"S": "a"}}, "ProjectionExpression": "#n"}}]}),
    );
    assert_eq!((status, kind.as_str()), (400, "ValidationException"));
}

#[test]
fn a_client_request_token_stands_for_its_transaction_for_ten_minutes() {
    let kv = MemoryKv::new();
    accounts(&kv, &[("a", 100), ("b", 0)]);
    let mut body = transfer("a", "b", 10);
    body["ClientRequestToken"] = json!("transfer-1");
    for _ in 0..3 {
        let (status, _, answer) = op(&kv, "TransactWriteItems", body.clone());
        assert_eq!(status, 200, "{answer}");
    }
    assert_eq!([balance(&kv, "a"), balance(&kv, "b")], [Some(90), Some(10)]);
    let mut other = transfer("a", "b", 20);
    other["ClientRequestToken"] = json!("transfer-1");
    let (status, kind, _) = op(&kv, "TransactWriteItems", other.clone());
    assert_eq!(
        (status, kind.as_str()),
        (400, "IdempotentParameterMismatchException")
    );
    // Ten minutes on, the token is free again.
    let later = now() + chrono::Duration::minutes(11);
    let (status, _, answer) = op_at(&kv, later, "TransactWriteItems", other);
    assert_eq!(status, 200, "{answer}");
    assert_eq!([balance(&kv, "a"), balance(&kv, "b")], [Some(70), Some(30)]);
    // A cancelled transaction used no token: the same request runs once it can.
    let mut big = transfer("a", "b", 100);
    big["ClientRequestToken"] = json!("transfer-2");
    let (_, kind, _) = op(&kv, "TransactWriteItems", big.clone());
    assert_eq!(kind, "TransactionCanceledException");
    op(
        &kv,
        "PutItem",
        json!({"TableName": "Accounts", "Item": {"id": {"S": "a"}, "balance": {"N": "100"}}}),
    );
    let (status, _, answer) = op(&kv, "TransactWriteItems", big);
    assert_eq!(status, 200, "{answer}");
    assert_eq!([balance(&kv, "a"), balance(&kv, "b")], [Some(0), Some(130)]);
}

#[test]
fn transact_get_items_reads_every_item_in_request_order_with_projections() {
    let kv = MemoryKv::new();
    accounts(&kv, &[("a", 100), ("b", 0)]);
    let (status, _, answer) = op(
        &kv,
        "TransactGetItems",
        json!({"TransactItems": [
            {"Get": {"TableName": "Accounts", "Key": {"id": {"S": "b"}}}},
            {"Get": {"TableName": "Accounts", "Key": {"id": {"S": "nobody"}}}},
            {"Get": {"TableName": "Accounts", "Key": {"id": {"S": "a"}}, "ProjectionExpression": "#b", "ExpressionAttributeNames": {"#b": "balance"}}},
        ], "ReturnConsumedCapacity": "TOTAL"}),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["Responses"],
        json!([{"Item": {"id": {"S": "b"}, "balance": {"N": "0"}}}, {}, {"Item": {"balance": {"N": "100"}}}])
    );
    assert_eq!(
        answer["ConsumedCapacity"],
        json!([{"TableName": "Accounts", "CapacityUnits": 6.0}])
    );
}

/// Where a coordinator that died after `changes` storage changes left transfer `a` →
/// `b` of 30, as `(a, b)` read at `at`.
fn after_death(changes: u64, at: DateTime<Utc>) -> (u16, (Option<i64>, Option<i64>), MemoryKv) {
    let kv = MemoryKv::new();
    accounts(&kv, &[("a", 100), ("b", 0)]);
    let (status, _, _) = op_at(
        &kv.dying_after(changes),
        now(),
        "TransactWriteItems",
        transfer("a", "b", 30),
    );
    let read = (balance_at(&kv, at, "a"), balance_at(&kv, at, "b"));
    (status, read, kv)
}

#[test]
fn a_coordinator_dying_at_any_step_leaves_all_or_nothing_for_readers_and_writers() {
    let stale = now() + chrono::Duration::milliseconds(txn::STALE_MS + 1_000);
    let (mut committed, mut undone, mut survived) = (0, 0, None);
    for changes in 0..40 {
        // Read at once, the transfer has happened or not, whatever step it died at.
        let (status, fresh, _) = after_death(changes, now());
        assert!(
            fresh == (Some(100), Some(0)) || fresh == (Some(70), Some(30)),
            "died after {changes} changes: read {fresh:?} at once"
        );
        if status == 200 {
            survived = Some(changes);
            assert_eq!(fresh, (Some(70), Some(30)));
            break;
        }
        let (_, read, kv) = after_death(changes, stale);
        assert_eq!(
            read, fresh,
            "died after {changes}: readers changed their minds"
        );
        // A writer meeting a lock finishes or undoes the transaction, then writes.
        for id in ["a", "b"] {
            let (status, _, answer) = op_at(
                &kv,
                stale,
                "UpdateItem",
                json!({"TableName": "Accounts", "Key": {"id": {"S": id}}, "UpdateExpression": "SET seen = :t", "ExpressionAttributeValues": {":t": {"BOOL": true}}}),
            );
            assert_eq!(status, 200, "died after {changes}: {answer}");
            assert!(
                stored(&kv, id).unwrap().get("").is_none(),
                "died after {changes}"
            );
        }
        let settled = (balance_at(&kv, stale, "a"), balance_at(&kv, stale, "b"));
        assert_eq!(settled, read, "died after {changes}");
        if read == (Some(70), Some(30)) {
            committed += 1;
        } else {
            undone += 1;
        }
    }
    assert!(survived.is_some(), "the transaction never completed");
    // Deaths before the commit point and after it were both met.
    assert!(
        committed > 0 && undone > 0,
        "{committed} committed, {undone} undone"
    );
}

#[test]
fn writes_meeting_a_live_transaction_conflict_and_batches_leave_its_items_unprocessed() {
    // A coordinator that died once it had locked both items (record, two prepares).
    let (status, read, kv) = after_death(3, now());
    assert_eq!((status, read), (500, (Some(100), Some(0))));
    assert!(stored(&kv, "a").unwrap().get("").is_some());
    let (status, kind, _) = op(
        &kv,
        "PutItem",
        json!({"TableName": "Accounts", "Item": {"id": {"S": "a"}, "balance": {"N": "1"}}}),
    );
    assert_eq!(
        (status, kind.as_str()),
        (400, "TransactionConflictException")
    );
    let (status, _, answer) = op(
        &kv,
        "BatchWriteItem",
        json!({"RequestItems": {"Accounts": [
            {"PutRequest": {"Item": {"id": {"S": "a"}, "balance": {"N": "1"}}}},
            {"PutRequest": {"Item": {"id": {"S": "z"}, "balance": {"N": "1"}}}},
        ]}}),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["UnprocessedItems"],
        json!({"Accounts": [{"PutRequest": {"Item": {"id": {"S": "a"}, "balance": {"N": "1"}}}}]})
    );
    assert_eq!(balance(&kv, "z"), Some(1));
    let (status, kind, answer) = op(
        &kv,
        "TransactGetItems",
        json!({"TransactItems": [{"Get": {"TableName": "Accounts", "Key": {"id": {"S": "b"}}}}]}),
    );
    assert_eq!(
        (status, kind.as_str()),
        (400, "TransactionCanceledException")
    );
    assert_eq!(
        answer["CancellationReasons"][0]["Code"],
        "TransactionConflict"
    );
    let (_, _, scanned) = op(&kv, "Scan", json!({"TableName": "Accounts"}));
    assert_eq!(scanned["Count"], 3, "{scanned}");
    // Once the coordinator is taken for dead, the write goes through.
    let stale = now() + chrono::Duration::milliseconds(txn::STALE_MS + 1);
    let (status, _, answer) = op_at(
        &kv,
        stale,
        "PutItem",
        json!({"TableName": "Accounts", "Item": {"id": {"S": "a"}, "balance": {"N": "1"}}}),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(balance_at(&kv, stale, "a"), Some(1));
}

#[test]
fn transaction_steps_rebuild_where_the_items_live_and_decide_the_same() {
    let write = mutation::Write::new(
        &json!({"ConditionExpression": "attribute_not_exists(id)"}),
        Some(
            expr::parse_condition(
                "attribute_not_exists(id)",
                &expr::Substitutions::from_request(&json!({})).unwrap(),
                "c",
            )
            .unwrap(),
        ),
        mutation::What::Put(json!({"id": {"S": "a"}})),
    );
    let held = kit::table::Item {
        sk: String::new(),
        value: json!({"": {"txn": "t1", "then": {"id": {"S": "a"}, "n": {"N": "2"}}}, "id": {"S": "a"}, "n": {"N": "1"}}),
        version: 3,
    };
    let free = kit::table::Item {
        sk: String::new(),
        value: json!({"id": {"S": "a"}}),
        version: 1,
    };
    for txn in ["t1", "t2"] {
        for step in [
            txn::Step::Prepare(write.clone()),
            txn::Step::Apply,
            txn::Step::Release,
        ] {
            let here = txn::TxnStep {
                txn: txn.to_owned(),
                step,
            };
            let there = mutation::mutations(txn::KIND, kit::table::Mutation::args(&here)).unwrap();
            for item in [None, Some(&held), Some(&free)] {
                assert_eq!(
                    kit::table::Mutation::decide(&here, item).unwrap(),
                    there.decide(item).unwrap(),
                    "{here:?} on {item:?}"
                );
            }
        }
    }
    let apply = txn::TxnStep {
        txn: "t1".to_owned(),
        step: txn::Step::Apply,
    };
    assert_eq!(
        kit::table::Mutation::decide(&apply, Some(&held)).unwrap().0,
        kit::table::Change::Put(json!({"id": {"S": "a"}, "n": {"N": "2"}}))
    );
    let release = txn::TxnStep {
        txn: "t1".to_owned(),
        step: txn::Step::Release,
    };
    assert_eq!(
        kit::table::Mutation::decide(&release, Some(&held))
            .unwrap()
            .0,
        kit::table::Change::Put(json!({"id": {"S": "a"}, "n": {"N": "1"}}))
    );
}

#[test]
fn a_token_sent_again_after_its_coordinator_died_runs_the_transaction_exactly_once() {
    let stale = now() + chrono::Duration::milliseconds(txn::STALE_MS + 1_000);
    let mut body = transfer("a", "b", 30);
    body["ClientRequestToken"] = json!("once");
    for changes in 0..40 {
        let kv = MemoryKv::new();
        accounts(&kv, &[("a", 100), ("b", 0)]);
        let (first, _, _) = op_at(
            &kv.dying_after(changes),
            now(),
            "TransactWriteItems",
            body.clone(),
        );
        // Sent again once the first coordinator is taken for dead: it happened once.
        let (again, _, answer) = op_at(&kv, stale, "TransactWriteItems", body.clone());
        assert_eq!(again, 200, "died after {changes}: {answer}");
        let read = (balance_at(&kv, stale, "a"), balance_at(&kv, stale, "b"));
        assert_eq!(read, (Some(70), Some(30)), "died after {changes}");
        if first == 200 {
            break;
        }
    }
}
