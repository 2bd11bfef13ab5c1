//! The OpenAPI tag `dynamodb`, the DynamoDB-compatible API, driven by the real clients: boto3 and the
//! aws CLI v1 from the project's virtual environment (`.venv`, made by
//! `scripts/setup.sh` from `tests/clients/requirements.txt`), running
//! the scripts of `tests/clients` against the host: the endpoint's basics and auth, a
//! differential run against dynalite (npm, a reference DynamoDB, on loopback), and
//! `Movies` as the movies API's data.

use crate::cases;
use crate::common::{junk_body, Case, Rng};
use anyhow::{ensure, Context, Result};
use conformance::{Api, Host};
use dynamodb::sigv4;
use reqwest::Method;

/// The credentials every host is started with (`dynamodb_access_key_id` / `…_secret_…`).
pub const ACCESS_KEY_ID: &str = "AKIDCONFORMANCE";
pub const SECRET_ACCESS_KEY: &str = "conformance/secret+key";

pub fn vars() -> Vec<(String, String)> {
    vec![
        (
            "dynamodb_access_key_id".to_owned(),
            ACCESS_KEY_ID.to_owned(),
        ),
        (
            "dynamodb_secret_access_key".to_owned(),
            SECRET_ACCESS_KEY.to_owned(),
        ),
    ]
}

pub fn cases() -> Vec<Case> {
    cases![
        boto3_and_the_aws_cli_run_tables_items_updates_queries_and_batches,
        boto3_answers_match_dynalite_on_getting_started_and_generated_cases,
        boto3_transactions_time_to_live_and_indexes_match_moto_on_generated_cases,
        concurrent_boto3_increments_puts_and_index_moves_lose_nothing,
        movies_written_through_dynamodb_are_the_movies_api_data,
        hostile_signed_requests_get_dynamodb_errors_and_never_a_5xx,
        limits_refuse_deep_items_long_keys_long_in_lists_and_paths_with_validation_errors,
        request_signed_for_another_service_is_refused_and_deletes_nothing,
        expired_items_are_read_until_the_scheduler_deletes_them_and_others_stay,
        concurrent_transfers_conserve_the_total_and_never_overdraw_an_account,
    ]
}

/// The project's Python with boto3 and the aws CLI.
fn python() -> Result<std::path::PathBuf> {
    let python = conformance::root().join(".venv/bin/python");
    ensure!(
        python.exists(),
        "{} is missing: run scripts/setup.sh",
        python.display()
    );
    Ok(python)
}

/// Runs `tests/clients/<script>` with `args`; its last line of output on success.
async fn run_client(script: &str, args: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new(python()?)
        .arg(conformance::root().join("tests/clients").join(script))
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("running {script}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "{script} failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    Ok(stdout.lines().last().unwrap_or_default().to_owned())
}

/// Generated operations per host (`DIFFERENTIAL_CASES` overrides), from a fixed seed
/// (`DIFFERENTIAL_SEED` overrides) so that a failure reproduces.
fn differential_setting(name: &str, default: u64) -> String {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(default)
        .to_string()
}

/// `tests/clients/dynamodb_moto.py`: transactions, time to live and indexes, which dynalite
/// lacks, on the host and on moto (started here, on loopback) in lockstep.
async fn boto3_transactions_time_to_live_and_indexes_match_moto_on_generated_cases(
    api: Api,
    host: Host,
) -> Result<()> {
    let moto = conformance::Moto::start()?;
    let summary = run_client(
        "dynamodb_moto.py",
        &[
            &api.base,
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            &moto.url,
            &fresh_table(),
            &differential_setting("DIFFERENTIAL_SEED", 20_120_810),
            &differential_setting("MOTO_CASES", 300),
        ],
    )
    .await?;
    println!("        {}: {summary}", host.name());
    Ok(())
}

/// `tests/clients/dynamodb_differential.py`: every step on the host and on dynalite
/// (started here, on loopback) in lockstep, answers compared.
async fn boto3_answers_match_dynalite_on_getting_started_and_generated_cases(
    api: Api,
    host: Host,
) -> Result<()> {
    let dynalite = conformance::Dynalite::start()?;
    let movies = conformance::root().join("../shared/data/moviedata.json");
    let summary = run_client(
        "dynamodb_differential.py",
        &[
            &api.base,
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            &dynalite.url,
            &fresh_table(),
            &differential_setting("DIFFERENTIAL_SEED", 20_120_810),
            &differential_setting("DIFFERENTIAL_CASES", 400),
            &movies.to_string_lossy(),
        ],
    )
    .await?;
    println!("        {}: {summary}", host.name());
    Ok(())
}

/// `tests/clients/dynamodb_concurrency.py`: 40 conditional increments of one item end
/// at 40, 40 simultaneous puts into one partition all survive, 40 simultaneous `ADD`
/// updates of one item with no client retries all succeed and count 40, 40 updates
/// moving one item between GSI keys leave its one final entry.
async fn concurrent_boto3_increments_puts_and_index_moves_lose_nothing(
    api: Api,
    host: Host,
) -> Result<()> {
    run_client(
        "dynamodb_concurrency.py",
        &[
            &api.base,
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            &fresh_table(),
            &in_flight(host).to_string(),
        ],
    )
    .await?;
    Ok(())
}

/// Racing boto3 writers at once on `host`: 40, or 10 under `wrangler dev`, whose proxy
/// drops connections under a 40-request burst (`common::WORKERD_IN_FLIGHT`).
fn in_flight(host: Host) -> usize {
    match host {
        Host::Workerd => crate::common::workerd_in_flight(),
        // Known gap: on the table layer's DynamoDB backend a table operation is an HTTP
        // call (~0.5 s for a whole transaction under this load), and 40 transfers over 10
        // accounts at once each lock one account and meet another's lock: every one was
        // cancelled (3 rounds of 40, measured 2026-12-08). Atomicity and the totals held;
        // progress under that contention needs ordered locking (issue 28's note).
        Host::SpinHostDynamodb => 8,
        _ => 40,
    }
}

/// `tests/clients/movies_table.py`: `Movies` through boto3 and through `/api/movies`
/// is one table, and concurrent writers through both lose nothing. Each run gets three
/// years of its own from 3000–4999, which no sample movie and no movies case uses
/// (those are 1920–2018, 5000 and up).
async fn movies_written_through_dynamodb_are_the_movies_api_data(
    api: Api,
    host: Host,
) -> Result<()> {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(3000);
    let year = NEXT.fetch_add(3, Ordering::Relaxed);
    ensure!(year + 2 < 5000, "out of years for movies_table.py");
    run_client(
        "movies_table.py",
        &[
            &api.base,
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            crate::ADMIN_TOKEN,
            &year.to_string(),
            &in_flight(host).to_string(),
        ],
    )
    .await?;
    Ok(())
}

/// A table name no earlier run of this process used.
fn fresh_table() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "Movies-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

async fn boto3_and_the_aws_cli_run_tables_items_updates_queries_and_batches(
    api: Api,
    _: Host,
) -> Result<()> {
    run_client(
        "dynamodb_basics.py",
        &[&api.base, ACCESS_KEY_ID, SECRET_ACCESS_KEY, &fresh_table()],
    )
    .await?;
    Ok(())
}

/// Headers of a request signed as an SDK signs it, for `body` to `target` on `base`.
fn signed_headers(base: &str, target: &str, body: &[u8]) -> Vec<(String, String)> {
    let credentials = sigv4::Credentials {
        access_key_id: ACCESS_KEY_ID.to_owned(),
        secret_access_key: SECRET_ACCESS_KEY.to_owned(),
    };
    dynamodb::signed_headers(
        &credentials,
        base.trim_start_matches("http://"),
        target,
        body,
        chrono::Utc::now(),
    )
}

/// Validly signed requests whose bodies are junk, or DynamoDB requests with junk in
/// them (expressions, attribute values, keys, limits): every answer is a DynamoDB error
/// or a success, never a 5xx (a wasm panic is one), and the endpoint still serves.
async fn hostile_signed_requests_get_dynamodb_errors_and_never_a_5xx(
    api: Api,
    _: Host,
) -> Result<()> {
    let mut rng = Rng(0xD1A6_0DB5_2012_0810);
    let table = fresh_table();
    let create = serde_json::json!({
        "TableName": table,
        "KeySchema": [{"AttributeName": "p", "KeyType": "HASH"}, {"AttributeName": "s", "KeyType": "RANGE"}],
        "AttributeDefinitions": [{"AttributeName": "p", "AttributeType": "S"}, {"AttributeName": "s", "AttributeType": "N"}],
        "BillingMode": "PAY_PER_REQUEST",
    })
    .to_string();
    // Every served operation, one DynamoDB has that is not served, and no name at all.
    let ops: Vec<&str> = dynamodb::Operation::ALL
        .iter()
        .map(|op| op.name())
        .chain(["ExecuteStatement", ""])
        .collect();
    let expressions = [
        "",
        "#",
        ":",
        "a =",
        "a = :v",
        "#n = :v",
        "(a",
        "a) = :v",
        "size(",
        "size(a) > :v",
        "attribute_type(a, :v)",
        "a BETWEEN :v",
        "a IN ()",
        "NOT",
        "SET",
        "SET a = :v +",
        "SET a = list_append(:v)",
        "REMOVE a[99999999999999999999]",
        "ADD a :v",
        "DELETE a :v",
        "SET a[1].b.c = if_not_exists(a, :v) - :v",
        "p = :v AND s > :v",
        "💥",
        "a.b.c, d[0]",
    ];
    let values = [
        r#"{":v": {"N": "1e400"}}"#,
        r#"{":v": {"S": ""}}"#,
        r#"{":v": {"N": "-0"}}"#,
        r#"{":v": {"SS": []}}"#,
        r#"{":v": {"B": "%%%"}}"#,
        r#"{":v": {"L": [{"M": {}}]}}"#,
        r#"{":v": 5}"#,
        r#"{"v": {"S": "x"}}"#,
        r#"{":v": {"N": "99999999999999999999999999999999999999"}}"#,
    ];
    let items = [
        r#"{"p": {"S": "a"}, "s": {"N": "1"}}"#,
        r#"{"p": {"S": ""}, "s": {"N": "1"}}"#,
        r#"{"p": {"N": "1"}, "s": {"N": "1"}}"#,
        r#"{"p": {"S": "a"}}"#,
        r#"{}"#,
        r#"[]"#,
        r#"{"p": {"S": "a"}, "s": {"N": "1e126"}}"#,
        r#"{"p": {"S": "a", "N": "1"}, "s": {"N": "1"}}"#,
    ];
    let create_headers = signed_headers(
        &api.base,
        "DynamoDB_20120810.CreateTable",
        create.as_bytes(),
    );
    let refs: Vec<(&str, &str)> = create_headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let made = api
        .send(
            Method::POST,
            "/dynamodb",
            &refs,
            Some(create.clone().into_bytes()),
        )
        .await?;
    ensure!(
        made.status == 200,
        "creating {table}: {} {:?}",
        made.status,
        made.body
    );
    // Data written before the run in a table it never names, which must stay as it is.
    let guard_table = fresh_table();
    let guard_key = serde_json::json!({"p": {"S": "guard"}, "s": {"N": "1"}});
    let guard_item =
        serde_json::json!({"p": {"S": "guard"}, "s": {"N": "1"}, "v": {"SS": ["x", "y"]}});
    let create_guard = create.replace(&table, &guard_table);
    let made = call(&api, "CreateTable", &serde_json::from_str(&create_guard)?).await?;
    ensure!(made.status == 200, "guard table: {}", made.status);
    let put = call(
        &api,
        "PutItem",
        &serde_json::json!({"TableName": guard_table, "Item": guard_item}),
    )
    .await?;
    ensure!(put.status == 200, "guard item: {}", put.status);
    for i in 0..600 {
        let op = rng.pick(&ops);
        let body = match rng.below(3) {
            0 => junk_body(&mut rng).unwrap_or_default(),
            _ => {
                let expr = rng.pick(&expressions);
                let key_name = rng.pick(&[
                    "ConditionExpression",
                    "UpdateExpression",
                    "KeyConditionExpression",
                    "FilterExpression",
                    "ProjectionExpression",
                    "Expected",
                    "Limit",
                ]);
                format!(
                    r##"{{"TableName": "{}", "Item": {item}, "Key": {item}, "{key_name}": "{expr}", "ExpressionAttributeNames": {{"#n": "p"}}, "ExpressionAttributeValues": {values}, "Limit": {limit}, "RequestItems": {{"{table}": [{{"PutRequest": {{"Item": {item}}}}}]}}}}"##,
                    rng.pick(&[table.as_str(), "x", "Nope-table", ""]),
                    item = rng.pick(&items),
                    values = rng.pick(&values),
                    limit = rng.pick(&["0", "-1", "1", "1e9", "\"x\""]),
                )
                .into_bytes()
            }
        };
        let target = format!("DynamoDB_20120810.{op}");
        let headers = signed_headers(&api.base, &target, &body);
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let what = format!(
            "request {i}: {op} {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(300)
                .collect::<String>()
        );
        let reply = api
            .send(Method::POST, "/dynamodb", &refs, Some(body))
            .await?;
        ensure!(
            reply.status < 500,
            "{what}: status {} {:?}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
        if reply.status >= 400 {
            let error = reply.json().with_context(|| what.clone())?;
            ensure!(
                error["__type"].as_str().is_some_and(|t| t.contains('#')),
                "{what}: not a DynamoDB error: {error}"
            );
        }
    }
    let list = signed_headers(&api.base, "DynamoDB_20120810.ListTables", b"{}");
    let refs: Vec<(&str, &str)> = list.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let after = api
        .send(Method::POST, "/dynamodb", &refs, Some(b"{}".to_vec()))
        .await?;
    ensure!(
        after.status == 200,
        "after the hostile requests: {}",
        after.status
    );
    expect_item(&api, &guard_table, &guard_key, &guard_item).await
}

/// One signed DynamoDB call `op` with `body`, as an SDK sends it.
pub async fn call(api: &Api, op: &str, body: &serde_json::Value) -> Result<conformance::Reply> {
    let body = serde_json::to_vec(body)?;
    let headers = signed_headers(&api.base, &format!("DynamoDB_20120810.{op}"), &body);
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    api.send(Method::POST, "/dynamodb", &refs, Some(body)).await
}

/// One signed call that must answer 200: its answer.
async fn call_ok(api: &Api, op: &str, body: &serde_json::Value) -> Result<serde_json::Value> {
    let reply = call(api, op, body).await?;
    ensure!(
        reply.status == 200,
        "{op}: {} {:?}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

/// Expects DynamoDB's `__type` (after its `#`) and a message containing `says`.
fn expect_dynamo_error(reply: &conformance::Reply, kind: &str, says: &str) -> Result<()> {
    let body = reply.json()?;
    let got = body["__type"].as_str().unwrap_or_default();
    ensure!(
        reply.status == 400
            && got.rsplit_once('#').map(|(_, k)| k) == Some(kind)
            && body["message"].as_str().is_some_and(|m| m.contains(says)),
        "expected 400 {kind} saying {says:?}, got {} {body}",
        reply.status
    );
    Ok(())
}

/// A table `p` (S) + `s` (S) for one case, created and waited for.
async fn limits_table(api: &Api) -> Result<String> {
    let table = fresh_table();
    on_demand_table(api, &table, &[("p", "S"), ("s", "S")]).await?;
    Ok(table)
}

/// Creates on-demand table `table` keyed by `keys` (the partition key, then the sort
/// key if any: `(name, type)`).
async fn on_demand_table(api: &Api, table: &str, keys: &[(&str, &str)]) -> Result<()> {
    let roles = ["HASH", "RANGE"];
    let schema: Vec<_> = keys
        .iter()
        .zip(roles)
        .map(|((name, _), role)| serde_json::json!({"AttributeName": name, "KeyType": role}))
        .collect();
    let types: Vec<_> = keys
        .iter()
        .map(|(name, kind)| serde_json::json!({"AttributeName": name, "AttributeType": kind}))
        .collect();
    call_ok(
        api,
        "CreateTable",
        &serde_json::json!({
            "TableName": table,
            "KeySchema": schema,
            "AttributeDefinitions": types,
            "BillingMode": "PAY_PER_REQUEST",
        }),
    )
    .await?;
    Ok(())
}

/// DynamoDB's limits, checked before any work and answered with its errors: maps and
/// lists nest at most 32 deep, a partition key holds at most 2,048 bytes and a sort
/// key 1,024, an `IN` takes at most 100 operands and a document path 32 steps. What
/// is at a limit is accepted; nothing refused is stored.
async fn limits_refuse_deep_items_long_keys_long_in_lists_and_paths_with_validation_errors(
    api: Api,
    host: Host,
) -> Result<()> {
    let table = limits_table(&api).await?;
    let nested = |depth: usize| {
        let mut value = serde_json::json!({"S": "leaf"});
        for _ in 0..depth {
            value = serde_json::json!({"L": [value]});
        }
        value
    };
    let put = |p: String, s: String, deep: serde_json::Value| serde_json::json!({"TableName": table, "Item": {"p": {"S": p}, "s": {"S": s}, "deep": deep}});
    call_ok(&api, "PutItem", &put("a".into(), "b".into(), nested(20)))
        .await
        .context("20 levels")?;
    let deep = call(&api, "PutItem", &put("deep".into(), "b".into(), nested(40))).await?;
    expect_dynamo_error(&deep, "ValidationException", "Nesting Levels have exceeded")?;

    // Known gap: on the table layer's DynamoDB backend a sort key at DynamoDB's own
    // 1,024 bytes no longer fits once typed (docs/STORAGE.md, *The backends at a
    // glance*); the rest of the case holds there too.
    if host != Host::SpinHostDynamodb {
        call_ok(
            &api,
            "PutItem",
            &put("k".repeat(2048), "s".repeat(1024), nested(0)),
        )
        .await
        .context("keys at the limits")?;
    }
    let long_pk = call(
        &api,
        "PutItem",
        &put("k".repeat(2049), "b".into(), nested(0)),
    )
    .await?;
    expect_dynamo_error(
        &long_pk,
        "ValidationException",
        "Size of hashkey has exceeded",
    )?;
    let long_sk = call(
        &api,
        "PutItem",
        &put("a".into(), "s".repeat(1025), nested(0)),
    )
    .await?;
    expect_dynamo_error(&long_sk, "ValidationException", "range keys has exceeded")?;
    let get_long = call(
        &api,
        "GetItem",
        &serde_json::json!({"TableName": table, "Key": {"p": {"S": "k".repeat(2049)}, "s": {"S": "b"}}}),
    )
    .await?;
    expect_dynamo_error(
        &get_long,
        "ValidationException",
        "Size of hashkey has exceeded",
    )?;

    let in_list = |n: usize| {
        let names: Vec<String> = (0..n).map(|i| format!(":v{i}")).collect();
        let values: serde_json::Map<String, serde_json::Value> = (0..n)
            .map(|i| (format!(":v{i}"), serde_json::json!({"S": i.to_string()})))
            .collect();
        serde_json::json!({
            "TableName": table,
            "FilterExpression": format!("s IN ({})", names.join(", ")),
            "ExpressionAttributeValues": values,
        })
    };
    call_ok(&api, "Scan", &in_list(100))
        .await
        .context("IN with 100")?;
    let too_many = call(&api, "Scan", &in_list(101)).await?;
    expect_dynamo_error(&too_many, "ValidationException", "too many operands")?;

    let path = |steps: usize| vec!["a"; steps].join(".");
    let long_path = call(
        &api,
        "Scan",
        &serde_json::json!({"TableName": table, "ProjectionExpression": path(33)}),
    )
    .await?;
    expect_dynamo_error(&long_path, "ValidationException", "nesting levels")?;
    call_ok(
        &api,
        "Scan",
        &serde_json::json!({"TableName": table, "ProjectionExpression": path(32)}),
    )
    .await
    .context("32-step path")?;

    let scan = call(&api, "Scan", &serde_json::json!({"TableName": table})).await?;
    let accepted = if host == Host::SpinHostDynamodb { 1 } else { 2 };
    ensure!(
        scan.json()?["Count"] == accepted,
        "only the {accepted} accepted items are stored: {:?}",
        scan.body
    );
    Ok(())
}

/// SigV4 binds a signature to its service: a request signed with the right secret for
/// S3 is DynamoDB's `InvalidSignatureException`, and the item it names survives.
async fn request_signed_for_another_service_is_refused_and_deletes_nothing(
    api: Api,
    _: Host,
) -> Result<()> {
    let table = limits_table(&api).await?;
    let key = serde_json::json!({"p": {"S": "kept"}, "s": {"S": "1"}});
    call_ok(
        &api,
        "PutItem",
        &serde_json::json!({"TableName": table, "Item": key}),
    )
    .await?;

    let body = serde_json::to_vec(&serde_json::json!({"TableName": table, "Key": key}))?;
    let authority = api.base.trim_start_matches("http://");
    let at = chrono::Utc::now();
    let mut headers = vec![
        ("content-type".to_owned(), dynamodb::CONTENT_TYPE.to_owned()),
        ("host".to_owned(), authority.to_owned()),
        ("x-amz-date".to_owned(), kit::time::format_amz_date(at)),
        (
            "x-amz-target".to_owned(),
            "DynamoDB_20120810.DeleteItem".to_owned(),
        ),
    ];
    let credentials = sigv4::Credentials {
        access_key_id: ACCESS_KEY_ID.to_owned(),
        secret_access_key: SECRET_ACCESS_KEY.to_owned(),
    };
    let authorization = sigv4::authorization(
        &credentials,
        "us-east-1",
        "s3",
        "POST",
        "/dynamodb",
        &headers,
        &body,
        at,
    );
    headers.push(("authorization".to_owned(), authorization));
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let refused = api
        .send(Method::POST, "/dynamodb", &refs, Some(body))
        .await?;
    expect_dynamo_error(
        &refused,
        "InvalidSignatureException",
        "scoped to correct service",
    )?;

    expect_item(&api, &table, &key, &key).await
}

/// Time to live as DynamoDB's: an item whose expiry attribute (a number of epoch
/// seconds) has passed is still read until the host's scheduler sweeps it away; an
/// item without the attribute, with it in the future, with it more than five years
/// back, with a string there, or renewed before the sweep, stays. The scheduler runs
/// until the expired items are gone, at most [`SWEEPS`] times (other cases' tables may
/// take a sweep's budget first).
async fn expired_items_are_read_until_the_scheduler_deletes_them_and_others_stay(
    api: Api,
    host: Host,
) -> Result<()> {
    const SWEEPS: usize = 10;
    let table = limits_table(&api).await?;
    let now = chrono::Utc::now().timestamp();
    let item = |p: &str, s: &str, expires: Option<serde_json::Value>| {
        let mut item = serde_json::json!({"p": {"S": p}, "s": {"S": s}});
        if let Some(expires) = expires {
            item["expires"] = expires;
        }
        item
    };
    let n = |at: i64| Some(serde_json::json!({"N": at.to_string()}));
    let expiring = [
        item("gone", "1", n(now - 60)),
        item(
            "gone",
            "2",
            Some(serde_json::json!({"N": format!("{}.5", now - 3600)})),
        ),
        item("gone too", "1", n(now - 1)),
    ];
    let staying = [
        item("gone", "3", None),
        item("future", "1", n(now + 3600)),
        item("ancient", "1", n(now - 6 * 365 * 24 * 3600)),
        item(
            "string",
            "1",
            Some(serde_json::json!({"S": (now - 60).to_string()})),
        ),
        item("renewed", "1", n(now + 3600)),
    ];
    for it in expiring
        .iter()
        .chain(&staying)
        .chain([&item("renewed", "1", n(now - 60))])
    {
        call_ok(
            &api,
            "PutItem",
            &serde_json::json!({"TableName": table, "Item": it}),
        )
        .await?;
    }
    // Enabled after the items were written: they expire all the same.
    call_ok(&api, "UpdateTimeToLive", &serde_json::json!({"TableName": table, "TimeToLiveSpecification": {"Enabled": true, "AttributeName": "expires"}})).await?;
    let key = |it: &serde_json::Value| serde_json::json!({"p": it["p"], "s": it["s"]});
    expect_item(&api, &table, &key(&expiring[0]), &expiring[0]).await?;
    let renewed = item("renewed", "1", n(now + 3600));
    call_ok(
        &api,
        "PutItem",
        &serde_json::json!({"TableName": table, "Item": renewed}),
    )
    .await?;

    let mut left = expiring.len();
    for _ in 0..SWEEPS {
        if !conformance::fire_ttl_sweep(&api, host).await? {
            // Real Spin sweeps on its own schedule, once a minute.
            tokio::time::sleep(std::time::Duration::from_secs(15)).await;
        } else if host == Host::Workerd {
            // The cron wakes the sweeper's object, whose alarm sweeps.
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        left = 0;
        for it in &expiring {
            let read = call_ok(
                &api,
                "GetItem",
                &serde_json::json!({"TableName": table, "Key": key(it)}),
            )
            .await?;
            left += usize::from(read.get("Item").is_some());
        }
        if left == 0 {
            break;
        }
    }
    ensure!(left == 0, "{left} expired items outlived {SWEEPS} sweeps");
    for it in &staying {
        expect_item(&api, &table, &key(it), it).await?;
    }
    Ok(())
}

/// 40 transfers at once between 10 accounts of 100, each a TransactWriteItems that
/// takes from one account only if it holds enough: every transfer either happens
/// whole or is cancelled with DynamoDB's reasons (a failed condition, a conflict with
/// another transfer), and after each round the balances, read in one
/// TransactGetItems, are exactly the starting ones plus the transfers that happened —
/// so the total is kept and no account is ever below zero. Three rounds.
async fn concurrent_transfers_conserve_the_total_and_never_overdraw_an_account(
    api: Api,
    host: Host,
) -> Result<()> {
    use futures::StreamExt;
    const ACCOUNTS: usize = 10;
    const TRANSFERS: usize = 40;
    let table = fresh_table();
    on_demand_table(&api, &table, &[("id", "S")]).await?;
    let id = |i: usize| serde_json::json!({"S": format!("acct{i}")});
    let mut expected = [100i64; ACCOUNTS];
    for (i, balance) in expected.iter().enumerate() {
        let item = serde_json::json!({"id": id(i), "balance": {"N": balance.to_string()}});
        call_ok(
            &api,
            "PutItem",
            &serde_json::json!({"TableName": table, "Item": item}),
        )
        .await?;
    }
    let mut rng = Rng(0x7a11_5fe2 ^ chrono::Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64);
    let (mut happened, mut conflicts) = (0, 0);
    for round in 0..3 {
        let transfers: Vec<(usize, usize, i64)> = (0..TRANSFERS)
            .map(|_| {
                let from = rng.below(ACCOUNTS);
                let to = (from + 1 + rng.below(ACCOUNTS - 1)) % ACCOUNTS;
                (from, to, 1 + rng.below(80) as i64)
            })
            .collect();
        let replies: Vec<Result<conformance::Reply>> = futures::stream::iter(transfers.iter().map(|&(from, to, amount)| {
            let body = serde_json::json!({"TransactItems": [
                {"Update": {"TableName": table, "Key": {"id": id(from)},
                            "UpdateExpression": "SET balance = balance - :x", "ConditionExpression": "balance >= :x",
                            "ExpressionAttributeValues": {":x": {"N": amount.to_string()}}}},
                {"Update": {"TableName": table, "Key": {"id": id(to)},
                            "UpdateExpression": "SET balance = balance + :x",
                            "ExpressionAttributeValues": {":x": {"N": amount.to_string()}}}},
            ]});
            let api = api.clone();
            async move { call(&api, "TransactWriteItems", &body).await }
        }))
        // In request order, so that each reply is known to be its transfer's.
        .buffered(in_flight(host))
        .collect()
        .await;
        for (&(from, to, amount), reply) in transfers.iter().zip(replies) {
            let reply = reply?;
            match reply.status {
                200 => {
                    expected[from] -= amount;
                    expected[to] += amount;
                    happened += 1;
                }
                400 => {
                    let body = reply.json()?;
                    let kind = body["__type"].as_str().unwrap_or_default();
                    ensure!(
                        kind.ends_with("#TransactionCanceledException"),
                        "round {round}: {body}"
                    );
                    let reasons = body["CancellationReasons"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    ensure!(reasons.len() == 2, "round {round}: {body}");
                    conflicts +=
                        usize::from(reasons.iter().any(|r| r["Code"] == "TransactionConflict"));
                    for reason in &reasons {
                        let code = reason["Code"].as_str().unwrap_or_default();
                        ensure!(
                            ["None", "ConditionalCheckFailed", "TransactionConflict"]
                                .contains(&code),
                            "round {round}: {body}"
                        );
                    }
                }
                status => anyhow::bail!(
                    "round {round}: {status} {}",
                    String::from_utf8_lossy(&reply.body)
                ),
            }
        }
        let gets: Vec<serde_json::Value> = (0..ACCOUNTS)
            .map(|i| serde_json::json!({"Get": {"TableName": table, "Key": {"id": id(i)}}}))
            .collect();
        let read = call_ok(
            &api,
            "TransactGetItems",
            &serde_json::json!({"TransactItems": gets}),
        )
        .await?;
        let balances: Vec<i64> = (0..ACCOUNTS)
            .map(|i| {
                read["Responses"][i]["Item"]["balance"]["N"]
                    .as_str()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(i64::MIN)
            })
            .collect();
        ensure!(
            balances == expected,
            "round {round}: read {balances:?}, the transfers that happened make {expected:?}"
        );
        ensure!(
            balances.iter().sum::<i64>() == 100 * ACCOUNTS as i64,
            "round {round}: {balances:?}"
        );
        ensure!(
            balances.iter().all(|b| *b >= 0),
            "round {round}: {balances:?}"
        );
    }
    ensure!(happened > 0, "no transfer went through");
    println!(
        "        {}: {happened} of {} transfers happened, {conflicts} cancelled by a conflict, the rest by their condition",
        host.name(),
        3 * TRANSFERS
    );
    Ok(())
}

/// Expects `GetItem` of `key` in `table` to answer exactly `item`.
async fn expect_item(
    api: &Api,
    table: &str,
    key: &serde_json::Value,
    item: &serde_json::Value,
) -> Result<()> {
    let read = call(
        api,
        "GetItem",
        &serde_json::json!({"TableName": table, "Key": key}),
    )
    .await?;
    ensure!(
        read.status == 200 && read.json()?["Item"] == *item,
        "{table}: expected {item}, read {} {:?}",
        read.status,
        String::from_utf8_lossy(&read.body)
    );
    Ok(())
}
