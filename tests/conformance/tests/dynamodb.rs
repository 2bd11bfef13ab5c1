//! API.md §6, the DynamoDB-compatible API, driven by the real clients: boto3 and the
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
        concurrent_boto3_increments_and_puts_into_one_partition_lose_nothing,
        movies_written_through_dynamodb_are_the_movies_api_data,
        hostile_signed_requests_get_dynamodb_errors_and_never_a_5xx,
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
/// at 40, 40 simultaneous puts into one partition all survive.
async fn concurrent_boto3_increments_and_puts_into_one_partition_lose_nothing(
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
    if host == Host::Workerd {
        crate::common::WORKERD_IN_FLIGHT
    } else {
        40
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
    let ops = [
        "PutItem",
        "GetItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "BatchWriteItem",
        "BatchGetItem",
        "CreateTable",
        "DescribeTable",
        "ListTables",
        "DeleteTable",
        "Scan",
        "TransactWriteItems",
        "",
    ];
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
        .send(Method::POST, "/dynamodb", &refs, Some(create.into_bytes()))
        .await?;
    ensure!(
        made.status == 200,
        "creating {table}: {} {:?}",
        made.status,
        made.body
    );
    for i in 0..300 {
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
    Ok(())
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
