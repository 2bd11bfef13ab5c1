//! An upgrade as it happens, with real builds: the app of an earlier commit (a checkout
//! at `OLD_ROOT`, built there) writes through the API, is stopped, and this checkout's
//! app starts on the same storage, reads everything back and writes over it. On
//! workerd (`wrangler dev`, the Durable Objects' SQLite files and KV kept) that is what a
//! deploy does to each Durable Object, which runs one version at a time; on the
//! Spin-compatible host (its SQLite key-value store kept) what `spin deploy` of a new
//! version does. `UPGRADE_HOSTS` picks them (default `workerd,spin-host`).
//!
//! ```sh
//! git worktree add ../old 7a0084b0        # the commit before storage v2, say
//! ln -s "$PWD/node_modules" ../old/node_modules
//! (cd ../old && bash scripts/build-worker.sh && bash scripts/build-components.sh)
//! make worker components && cargo build -p spin-host
//! OLD_ROOT=../old cargo run -p conformance --features bench --bin upgrade_check
//! ```
//!
//! Written by the old build: birthdays, a DynamoDB table with one partition of 60
//! items (~1 KB each) counted up with `UpdateItem ADD`, and stream leases. Then the new
//! build must read them all alike, update the old items in place (the first touch moves
//! a partition stored whole into rows), add items beside them, and read the whole
//! partition back in order.

use anyhow::{ensure, Context, Result};
use conformance::bench::DynamoServer;
use conformance::{Api, Host};
use serde_json::{json, Value};
use std::path::PathBuf;

const ITEMS: usize = 60;
const PEOPLE: usize = 20;

fn sk(i: usize) -> String {
    format!("item{i:03}")
}

fn person(i: usize) -> String {
    // The birthday API takes letters only.
    conformance::bench::user_name("upgrade", i)
}

fn date(i: usize) -> String {
    format!("19{:02}-0{}-1{}", 50 + i % 40, 1 + i % 9, i % 10)
}

async fn write_old(api: &Api, db: &DynamoServer) -> Result<()> {
    for i in 0..PEOPLE {
        let reply = api
            .put_json(
                &format!("/hello/{}", person(i)),
                &json!({"dateOfBirth": date(i)}),
                &[],
            )
            .await?;
        ensure!(
            reply.status == 204,
            "old build, birthday {i}: {}",
            reply.status
        );
    }
    db.create_table("Upgrade", ("pk", "S"), ("sk", "S")).await?;
    for i in 0..ITEMS {
        db.ok(
            "PutItem",
            &json!({"TableName": "Upgrade", "Item": {"pk": {"S": "p"}, "sk": {"S": sk(i)},
                "n": {"N": "1"}, "fill": {"S": "x".repeat(1000)}}}),
        )
        .await?;
    }
    for i in (0..ITEMS).step_by(3) {
        add(db, i).await?;
    }
    for user in ["alice", "bob"] {
        let reply = api
            .send(
                reqwest::Method::POST,
                "/api/v1/streams",
                &[("x-forwarded-for", user)],
                None,
            )
            .await?;
        ensure!(
            reply.status == 201,
            "old build, stream of {user}: {}",
            reply.status
        );
    }
    Ok(())
}

async fn add(db: &DynamoServer, i: usize) -> Result<()> {
    db.ok(
        "UpdateItem",
        &json!({"TableName": "Upgrade", "Key": {"pk": {"S": "p"}, "sk": {"S": sk(i)}},
            "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}),
    )
    .await?;
    Ok(())
}

/// The partition's items in order, as `(sort key, n)`, through Query pages.
async fn partition(db: &DynamoServer) -> Result<Vec<(String, u64)>> {
    let (mut out, mut start) = (Vec::new(), None::<Value>);
    loop {
        let mut body = json!({"TableName": "Upgrade", "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": "p"}}, "Limit": 25});
        if let Some(start) = start.take() {
            body["ExclusiveStartKey"] = start;
        }
        let page = db.ok("Query", &body).await?.json()?;
        for item in page["Items"].as_array().context("no Items")? {
            let n = item["n"]["N"].as_str().and_then(|n| n.parse().ok());
            out.push((
                item["sk"]["S"].as_str().unwrap_or_default().to_owned(),
                n.context("no n")?,
            ));
        }
        match page.get("LastEvaluatedKey") {
            Some(key) => start = Some(key.clone()),
            None => return Ok(out),
        }
    }
}

async fn check_new(api: &Api, db: &DynamoServer) -> Result<()> {
    for i in 0..PEOPLE {
        let reply = api.get(&format!("/hello/{}", person(i)), &[]).await?;
        ensure!(
            reply.status == 200,
            "new build, birthday {i}: {}",
            reply.status
        );
    }
    let expected = |extra: u64| -> Vec<(String, u64)> {
        (0..ITEMS)
            .map(|i| (sk(i), 1 + u64::from(i % 3 == 0) + extra))
            .collect()
    };
    ensure!(
        partition(db).await? == expected(0),
        "new build read the old partition differently"
    );
    for user in ["alice", "bob"] {
        let reply = api
            .get("/api/v1/streams", &[("x-forwarded-for", user)])
            .await?;
        let active = reply.json()?["active"].as_array().map_or(0, Vec::len);
        ensure!(active == 1, "new build, streams of {user}: {active}");
    }
    // Writes over the old data: every old item counted up, new items beside them.
    for i in 0..ITEMS {
        add(db, i).await?;
    }
    for i in ITEMS..ITEMS + 20 {
        db.ok(
            "PutItem",
            &json!({"TableName": "Upgrade", "Item": {"pk": {"S": "p"}, "sk": {"S": sk(i)},
                "n": {"N": "7"}}}),
        )
        .await?;
    }
    let mut wanted = expected(1);
    wanted.extend((ITEMS..ITEMS + 20).map(|i| (sk(i), 7)));
    ensure!(
        partition(db).await? == wanted,
        "new build's writes over the old partition"
    );
    Ok(())
}

fn main() -> Result<()> {
    let old = PathBuf::from(std::env::var_os("OLD_ROOT").context(
        "OLD_ROOT must name a checkout of an earlier commit, built (see the doc comment)",
    )?);
    let vars: conformance::Vars = vec![
        ("admin_token".to_owned(), "upgrade".to_owned()),
        (
            "dynamodb_access_key_id".to_owned(),
            conformance::bench::KEY_ID.to_owned(),
        ),
        (
            "dynamodb_secret_access_key".to_owned(),
            conformance::bench::SECRET.to_owned(),
        ),
    ];
    let hosts = std::env::var("UPGRADE_HOSTS").unwrap_or_else(|_| "workerd,spin-host".into());
    let runtime = tokio::runtime::Runtime::new()?;
    for host in hosts.split(',').map(str::trim) {
        let state = tempfile::tempdir()?;
        let start = |root: &std::path::Path| match host {
            "workerd" => conformance::start_wrangler_dev_at(root, &vars, state.path()),
            "spin-host" => {
                conformance::start_spin_host_at(&root.join("spin.toml"), &vars, state.path())
            }
            other => anyhow::bail!("UPGRADE_HOSTS: no host {other:?} (workerd, spin-host)"),
        };
        let host_kind = if host == "workerd" {
            Host::Workerd
        } else {
            Host::SpinHost
        };
        {
            let running = start(&old).with_context(|| format!("the old build on {host}"))?;
            let api = Api::new(&running.base, "upgrade")?;
            let db = DynamoServer::host(host_kind, api.clone());
            runtime.block_on(write_old(&api, &db))?;
        }
        let running = start(&conformance::root())?;
        let api = Api::new(&running.base, "upgrade")?;
        let db = DynamoServer::host(host_kind, api.clone());
        runtime.block_on(check_new(&api, &db))?;
        println!(
            "{host}: the old build ({}) wrote; the new build read {PEOPLE} birthdays, {ITEMS} DynamoDB items and 2 streams as written, updated the {ITEMS} items and added 20 beside them, read back in order",
            old.display()
        );
    }
    Ok(())
}
