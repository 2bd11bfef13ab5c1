//! Stored formats across a gradual deploy (docs/OPERATIONS.md, "Stored formats and deploys").
//!
//! While `wrangler versions deploy` shifts traffic, the current version and the one
//! before it serve at once over the same Durable Objects and KV, so each must read what
//! the other writes. `fixtures/stored-v1.json` holds the bytes today's code stores for
//! a fixed set of writes on every service (birthdays, streams, movies and the graph, a
//! DynamoDB table, a scraper tick, the Durable Object operation envelope):
//!
//! - the current code writes **exactly** those bytes, so what it writes is what the
//!   previous commit's code (whose format the fixture is) reads — a failure here means
//!   the stored format changed; follow docs/OPERATIONS.md's rules before regenerating;
//! - the current code **reads** those bytes and answers as it did when they were
//!   written.
//!
//! `UPDATE_FIXTURES=1 cargo test -p conformance --test stored_format` rewrites the
//! fixture, for a deliberate, compatible change.

use anyhow::{ensure, Context, Result};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use kit::table::memory::MemoryKv;
use kit::table::{Cond, TableOp, TableOpResult};
use kit::{Env, FixedClock, MapConfig};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

const FIXTURE: &str = "tests/fixtures/stored-v1.json";
const ADMIN: &str = "fixture-admin";
const KEY_ID: &str = "AKIDFIXTURE";
const SECRET: &str = "fixture-secret";

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-02T12:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// Randomness that repeats: ids and request ids come out the same on every run.
static NEXT: AtomicU64 = AtomicU64::new(1);
fn counting_random() -> u64 {
    NEXT.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
}

fn fixture_env(kv: &MemoryKv, tvmaze: &str) -> Env {
    let config: std::collections::HashMap<String, String> = [
        ("admin_token", ADMIN),
        ("dynamodb_access_key_id", KEY_ID),
        ("dynamodb_secret_access_key", SECRET),
        ("tvmaze_base_url", tvmaze),
        ("scraper_fetch_budget", "20"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut env = kit::host::native::env(kv.clone(), MapConfig(config));
    env.clock = Box::new(FixedClock(at()));
    env.random = counting_random;
    env.fetch = Box::new(conformance::native::HyperFetch::new());
    env.log = kit::host::discard_log;
    env
}

async fn call(
    env: &Env,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Result<(u16, Value)> {
    let mut req = http::Request::builder().method(method).uri(path);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    let response = edge_app::handle(req.body(body)?, env).await;
    let status = response.status().as_u16();
    let body = response.into_body();
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };
    Ok((status, json))
}

async fn dynamodb(env: &Env, target: &str, body: Value) -> Result<(u16, Value)> {
    let body_bytes = body.to_string().into_bytes();
    let credentials = dynamodb::sigv4::Credentials {
        access_key_id: KEY_ID.to_owned(),
        secret_access_key: SECRET.to_owned(),
    };
    let target = format!("DynamoDB_20120810.{target}");
    let headers = dynamodb::signed_headers(&credentials, "localhost", &target, &body_bytes, at());
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    call(env, "POST", "/dynamodb", &headers, Some(body)).await
}

/// A request of the scenario: method, path, headers, body, the status it must get.
type Step<'a> = (
    &'a str,
    &'a str,
    Vec<(&'a str, &'a str)>,
    Option<Value>,
    u16,
);

/// The writes whose stored bytes the fixture pins, one or more per service.
async fn write_everything(env: &Env) -> Result<()> {
    let admin = format!("Bearer {ADMIN}");
    let admin = [("authorization", admin.as_str())];
    let alice = [("x-forwarded-for", "alice"), ("idempotency-key", "k1")];
    let steps: Vec<Step> = vec![
        (
            "PUT",
            "/hello/alice",
            vec![],
            Some(json!({"dateOfBirth": "1990-05-17"})),
            204,
        ),
        (
            "POST",
            "/api/v1/streams",
            alice.to_vec(),
            Some(json!({"video_name": "a.mp4"})),
            201,
        ),
        (
            "PUT",
            "/api/movies/2013/Rush",
            admin.to_vec(),
            Some(
                json!({"info": {"actors": ["Daniel Bruhl", "Chris Hemsworth"], "directors": ["Ron Howard"], "rating": 8.3, "genres": ["Action"]}}),
            ),
            200,
        ),
        (
            "POST",
            "/api/movies/import",
            admin.to_vec(),
            Some(
                json!([{"year": 2013, "title": "Prisoners", "info": {"actors": ["Hugh Jackman"], "rank": 2}}]),
            ),
            200,
        ),
        (
            "PUT",
            "/api/graph/users/alice/friends/bob",
            vec![],
            None,
            204,
        ),
        (
            "PUT",
            "/api/graph/users/bob/watched/2013/Rush",
            vec![],
            None,
            204,
        ),
        (
            "PUT",
            "/api/graph/users/alice/favorite-actors/Hugh%20Jackman",
            vec![],
            None,
            204,
        ),
        ("POST", "/api/shows/scrape", admin.to_vec(), None, 202),
    ];
    for (method, path, headers, body, status) in steps {
        let (got, answer) = call(env, method, path, &headers, body).await?;
        ensure!(got == status, "{method} {path}: {got} {answer}");
    }
    let (status, answer) = dynamodb(
        env,
        "CreateTable",
        json!({
            "TableName": "Music",
            "KeySchema": [{"AttributeName": "Artist", "KeyType": "HASH"}, {"AttributeName": "Song", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": "Artist", "AttributeType": "S"}, {"AttributeName": "Song", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        }),
    )
    .await?;
    ensure!(status == 200, "CreateTable: {answer}");
    let (status, answer) = dynamodb(
        env,
        "PutItem",
        json!({"TableName": "Music", "Item": {
            "Artist": {"S": "No One You Know"}, "Song": {"S": "Call Me Today"},
            "Year": {"N": "2015"}, "Tags": {"SS": ["a", "b"]}, "Blob": {"B": "AAEC"},
            "Nested": {"M": {"L": {"L": [{"BOOL": true}, {"NULL": true}]}}},
        }}),
    )
    .await?;
    ensure!(status == 200, "PutItem: {answer}");
    Ok(())
}

/// What a Durable Object and the Worker send each other, in both directions.
fn envelopes() -> Result<Value> {
    let ops = vec![
        TableOp::Get {
            pk: "p".into(),
            sk: "s".into(),
        },
        TableOp::GetMany {
            pk: "p".into(),
            sks: vec!["a".into(), "b".into()],
        },
        TableOp::Put {
            pk: "p".into(),
            sk: "s".into(),
            value: json!({"x": 1}),
            cond: Cond::Version(3),
        },
        TableOp::Delete {
            pk: "p".into(),
            sk: "s".into(),
            cond: Cond::Absent,
        },
        TableOp::Query {
            pk: "p".into(),
            after: Some("a".into()),
            limit: 10,
        },
        TableOp::PutPartition {
            pk: "p".into(),
            items: vec![("a".into(), json!(1))],
        },
        TableOp::PutItems {
            pk: "p".into(),
            items: vec![("b".into(), json!(2))],
        },
    ];
    let results = vec![
        TableOpResult::Version { version: 4 },
        TableOpResult::Existed { existed: true },
        TableOpResult::Done,
    ];
    Ok(json!({"ops": serde_json::to_value(ops)?, "results": serde_json::to_value(results)?}))
}

fn fixture_of(kv: &MemoryKv) -> Result<Value> {
    let mut store = BTreeMap::new();
    for (key, bytes) in kv.snapshot() {
        let text = String::from_utf8(bytes).with_context(|| format!("{key} is not UTF-8"))?;
        store.insert(key, text);
    }
    Ok(json!({"store": store, "envelopes": envelopes()?}))
}

#[test]
fn current_code_writes_and_reads_the_stored_format_of_the_fixture() -> Result<()> {
    let fake = fake_tvmaze::FakeTvMaze::start(fake_tvmaze::Config {
        shows: 12,
        faults: fake_tvmaze::Faults::none(),
        ..fake_tvmaze::Config::default()
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let path = conformance::root().join("tests/conformance").join(FIXTURE);
    local.block_on(&runtime, async {
        let kv = MemoryKv::new();
        let env = fixture_env(&kv, fake.base_url());
        write_everything(&env).await?;
        let written = fixture_of(&kv)?;
        if std::env::var_os("UPDATE_FIXTURES").is_some() {
            std::fs::write(&path, serde_json::to_string_pretty(&written)? + "\n")?;
        }
        let fixture: Value = serde_json::from_slice(
            &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
        )?;
        for (key, want) in fixture["store"].as_object().context("no store")? {
            let got = &written["store"][key];
            ensure!(
                got == want,
                "the stored format changed at {key}: the previous version reads {want}, \
                 this code writes {got}. Make the change readable by the previous version \
                 first (docs/OPERATIONS.md, \"Stored formats and deploys\"), then UPDATE_FIXTURES=1."
            );
        }
        ensure!(
            written["store"].as_object().map(|m| m.len())
                == fixture["store"].as_object().map(|m| m.len()),
            "this code stores keys the fixture does not have: {:?}",
            written["store"].as_object().map(|m| m.keys().collect::<Vec<_>>())
        );
        ensure!(
            written["envelopes"] == fixture["envelopes"],
            "the Durable Object envelope changed: {} vs {}",
            written["envelopes"],
            fixture["envelopes"]
        );
        let ops: Vec<TableOp> = serde_json::from_value(fixture["envelopes"]["ops"].clone())?;
        ensure!(ops.len() == 7, "envelope ops do not read back");
        let results: Vec<TableOpResult> =
            serde_json::from_value(fixture["envelopes"]["results"].clone())?;
        ensure!(results.len() == 3, "envelope results do not read back");

        // Today's bytes, read by this code, answer as they did when written.
        let stored = fixture["store"].as_object().context("no store")?;
        let kv = MemoryKv::from_snapshot(
            stored
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().as_bytes().to_vec())),
        );
        let env = fixture_env(&kv, fake.base_url());
        let expect = |what: &str, got: (u16, Value), status: u16, check: &dyn Fn(&Value) -> bool| {
            ensure!(
                got.0 == status && check(&got.1),
                "{what} from the fixture: {} {}",
                got.0,
                got.1
            );
            Ok(())
        };
        expect(
            "birthday",
            call(&env, "GET", "/hello/alice", &[], None).await?,
            200,
            &|b| b["message"].as_str().is_some_and(|m| m.contains("alice")),
        )?;
        expect(
            "stream",
            call(&env, "GET", "/api/v1/streams", &[("x-forwarded-for", "alice")], None).await?,
            200,
            &|b| b["active"][0]["metadata"]["video_name"] == "a.mp4",
        )?;
        expect(
            "movie",
            call(&env, "GET", "/api/movies/2013/Rush", &[], None).await?,
            200,
            &|b| b["info"]["rating"] == 8.3 && b["info"]["directors"][0] == "Ron Howard",
        )?;
        expect(
            "graph",
            call(&env, "GET", "/api/graph/actors/Ron%20Howard", &[], None).await?,
            200,
            &|b| b["movies"][0]["title"] == "Rush",
        )?;
        expect(
            "graph user",
            call(&env, "GET", "/api/graph/users/alice/recommendations", &[], None).await?,
            200,
            &|b| b.to_string().contains("Rush") && b.to_string().contains("Prisoners"),
        )?;
        expect(
            "shows",
            call(&env, "GET", "/api/shows?size=250", &[], None).await?,
            200,
            &|b| b.as_array().is_some_and(|a| !a.is_empty()),
        )?;
        expect(
            "scraper cursor",
            call(&env, "GET", "/api/shows/scrape/status", &[], None).await?,
            200,
            &|b| b["ticks"] == 1 && b["total_fetches"].as_u64().is_some_and(|n| n > 0),
        )?;
        expect(
            "DynamoDB item",
            dynamodb(
                &env,
                "GetItem",
                json!({"TableName": "Music", "Key": {"Artist": {"S": "No One You Know"}, "Song": {"S": "Call Me Today"}}}),
            )
            .await?,
            200,
            &|b| b["Item"]["Year"]["N"] == "2015" && b["Item"]["Blob"]["B"] == "AAEC",
        )?;
        Ok(())
    })
}
