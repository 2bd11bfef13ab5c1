//! Cost against partition size, and writers into one partition, through the
//! DynamoDB-compatible endpoint on every host and on dynalite in the same run.
//!
//! **Flat cost.** One partition is filled with 1 KB items (10, 1,000, 20,000 by
//! default), and at each size PutItem (over an existing item), GetItem, Query
//! (`Limit` 25 from a random key with 25 items after it, all 10 at 10 items) and
//! UpdateItem (`ADD n :one`) each run `BENCH_PARTITION_REQUESTS` times (default 200,
//! after a tenth as many unmeasured), one at a time, on random items:
//! p50/p99 latency, its ratio to the same figure at the smallest size (dynalite's are
//! the reference, ~1.0), and per request the storage round trips (`x-storage-round-trips`)
//! and, on the Spin-compatible host, the bytes its key-value reads returned.
//!
//! Then the largest partition (20 MB by default) is read back whole, in order.
//!
//! **One partition under writers.** 8 clients put 25 distinct new items each into one
//! partition at once, then the same load spread over 8 partitions: puts/s of each,
//! their ratio, and errors (every put must succeed).
//!
//! Build what is measured first (`make components worker spin-host`), then
//! `cargo run --release -p conformance --features bench --bin bench_partition`. Knobs:
//! `BENCH_HOSTS`, `BENCH_PARTITION_SIZES` (comma-separated item counts),
//! `BENCH_PARTITION_REQUESTS`.

use anyhow::{ensure, Context, Result};
use conformance::bench::{self, DynamoServer as Server};
use conformance::Host;
use serde_json::{json, Value};
use std::time::Instant;

const ROUND_TRIPS: &str = "x-storage-round-trips";
/// `Query10` is a Query with `Limit` 10: the same 10 items returned at every size,
/// where `Query` (`Limit` 25) returns 10 at 10 items and 25 past that.
const OPERATIONS: [&str; 5] = ["PutItem", "GetItem", "Query", "Query10", "UpdateItem"];

/// One operation at one partition size on one server.
struct Cost {
    server: String,
    operation: &'static str,
    size: usize,
    p50_ms: f64,
    p99_ms: f64,
    round_trips: Option<f64>,
    read_bytes: Option<f64>,
}

/// The writers-into-one-partition figures of one server.
struct Writers {
    server: String,
    one: f64,
    spread: f64,
    errors: usize,
}

fn sizes() -> Vec<usize> {
    match std::env::var("BENCH_PARTITION_SIZES") {
        Ok(list) => list
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect(),
        Err(_) => vec![10, 1000, 20_000],
    }
}

fn sk(i: usize) -> String {
    format!("item{i:06}")
}

fn item(pk: &str, i: usize) -> Value {
    json!({"pk": {"S": pk}, "sk": {"S": sk(i)}, "n": {"N": "0"}, "fill": {"S": "x".repeat(1000)}})
}

/// A small, repeatable generator: the same random items on every server.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

/// Fills partition `pk` with items `from..to` in batches of 25, 8 batches at once.
async fn fill(server: &Server, table: &str, pk: &str, from: usize, to: usize) -> Result<()> {
    let batches: Vec<Value> = (from..to)
        .collect::<Vec<_>>()
        .chunks(25)
        .map(|chunk| {
            let puts: Vec<Value> = chunk
                .iter()
                .map(|&i| json!({"PutRequest": {"Item": item(pk, i)}}))
                .collect();
            json!({"RequestItems": {table: puts}})
        })
        .collect();
    for group in batches.chunks(8) {
        let calls = group.iter().map(|body| server.ok("BatchWriteItem", body));
        for reply in futures::future::join_all(calls).await {
            let reply = reply?;
            let unprocessed = reply.json()?["UnprocessedItems"].clone();
            ensure!(
                unprocessed.as_object().is_none_or(|m| m.is_empty()),
                "unprocessed items on {}: {unprocessed}",
                server.name
            );
        }
    }
    Ok(())
}

fn body(operation: &str, table: &str, pk: &str, i: usize) -> Value {
    let key = json!({"pk": {"S": pk}, "sk": {"S": sk(i)}});
    match operation {
        "PutItem" => json!({"TableName": table, "Item": item(pk, i)}),
        "GetItem" => json!({"TableName": table, "Key": key}),
        "Query" | "Query10" => json!({"TableName": table,
            "Limit": if operation == "Query" { 25 } else { 10 },
            "KeyConditionExpression": "pk = :p AND sk >= :s",
            "ExpressionAttributeValues": {":p": {"S": pk}, ":s": {"S": sk(i)}}}),
        _ => json!({"TableName": table, "Key": key, "UpdateExpression": "ADD n :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}}}),
    }
}

/// The DynamoDB operation a measured one sends.
fn target(operation: &str) -> &str {
    match operation {
        "Query10" => "Query",
        other => other,
    }
}

/// The item an operation starts at: any, except that a query starts where its `Limit`
/// of items follow (all of them in a partition of fewer), so that every query returns
/// a full page.
fn start(operation: &str, random: &mut Lcg, size: usize) -> usize {
    match operation {
        "Query" => random.below(size.saturating_sub(24)),
        "Query10" => random.below(size.saturating_sub(9)),
        _ => random.below(size),
    }
}

async fn costs(server: &Server, table: &str, out: &mut Vec<Cost>) -> Result<()> {
    let requests = bench::env_number("BENCH_PARTITION_REQUESTS", 200).max(10);
    let mut filled = 0;
    let pk = "flat";
    for size in sizes() {
        fill(server, table, pk, filled, size).await?;
        filled = size;
        for operation in OPERATIONS {
            let mut random = Lcg(size as u64);
            let before = match server.host {
                Some(Host::SpinHost) => Some(bench::kv_read_bytes(&server.api, "dynamodb").await?),
                _ => None,
            };
            // Unmeasured first: the first size measured must not pay for caches and
            // JIT that later sizes find warm (dynalite's p50 fell 40% without this).
            for _ in 0..requests / 10 {
                let body = body(operation, table, pk, start(operation, &mut random, size));
                server.ok(target(operation), &body).await?;
            }
            let (mut latencies, mut trips) = (Vec::new(), None::<u64>);
            for _ in 0..requests {
                let body = body(operation, table, pk, start(operation, &mut random, size));
                let started = Instant::now();
                let reply = server.ok(target(operation), &body).await?;
                latencies.push(started.elapsed());
                if let Some(n) = reply
                    .header(ROUND_TRIPS)
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    *trips.get_or_insert(0) += n;
                }
            }
            let read_bytes = match before {
                Some(before) => {
                    let after = bench::kv_read_bytes(&server.api, "dynamodb").await?;
                    Some((after - before) as f64 / requests as f64)
                }
                None => None,
            };
            latencies.sort_unstable();
            out.push(Cost {
                server: server.name.clone(),
                operation,
                size,
                p50_ms: bench::percentile(&latencies, 0.50),
                p99_ms: bench::percentile(&latencies, 0.99),
                round_trips: trips.map(|t| t as f64 / requests as f64),
                read_bytes,
            });
        }
    }
    Ok(())
}

/// 8 clients × 25 distinct new items, into partition(s) chosen by `partition(client)`;
/// puts/s and errors.
async fn put_load(
    server: &Server,
    table: &str,
    partition: impl Fn(usize) -> String,
) -> Result<(f64, usize)> {
    let started = Instant::now();
    let mut clients = Vec::new();
    for client in 0..8 {
        let (server, table, pk) = (server.clone(), table.to_owned(), partition(client));
        clients.push(tokio::spawn(async move {
            let mut errors = 0;
            for i in 0..25 {
                let body = json!({"TableName": table, "Item": item(&pk, client * 100 + i),
                    "ConditionExpression": "attribute_not_exists(pk)"});
                match server.ok("PutItem", &body).await {
                    Ok(_) => {}
                    Err(e) => {
                        if errors == 0 {
                            eprintln!("{e:#}");
                        }
                        errors += 1;
                    }
                }
            }
            errors
        }));
    }
    let mut errors = 0;
    for client in clients {
        errors += client.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok((200.0 / elapsed, errors))
}

async fn writers(server: &Server, table: &str) -> Result<Writers> {
    let (one, e1) = put_load(server, table, |_| "writers-one".to_owned()).await?;
    let (spread, e2) = put_load(server, table, |c| format!("writers-{c}")).await?;
    // Every acknowledged put is there.
    let reply = server
        .ok(
            "Query",
            &json!({"TableName": table, "Select": "COUNT",
                "KeyConditionExpression": "pk = :p",
                "ExpressionAttributeValues": {":p": {"S": "writers-one"}}}),
        )
        .await?;
    let stored = reply.json()?["Count"].as_u64().context("no Count")?;
    ensure!(
        stored as usize + e1 == 200,
        "{}: {stored} stored of {} acknowledged",
        server.name,
        200 - e1
    );
    Ok(Writers {
        server: server.name.clone(),
        one,
        spread,
        errors: e1 + e2,
    })
}

/// Reads partition `pk` back whole through Query pages (1 MB each, resumed with
/// `ExclusiveStartKey`) and checks it holds items `0..n` in order; returns the bytes.
async fn read_back(server: &Server, table: &str, pk: &str, n: usize) -> Result<usize> {
    let (mut next, mut start, mut bytes) = (0usize, None::<Value>, 0usize);
    loop {
        let mut body = json!({"TableName": table, "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": pk}}});
        if let Some(start) = start.take() {
            body["ExclusiveStartKey"] = start;
        }
        let reply = server.ok("Query", &body).await?;
        bytes += reply.body.len();
        let page = reply.json()?;
        for item in page["Items"].as_array().context("no Items")? {
            ensure!(
                item["sk"]["S"] == sk(next).as_str(),
                "{}: item {next} read back as {}",
                server.name,
                item["sk"]
            );
            next += 1;
        }
        match page.get("LastEvaluatedKey") {
            Some(key) => start = Some(key.clone()),
            None => break,
        }
    }
    ensure!(next == n, "{}: read back {next} of {n} items", server.name);
    Ok(bytes)
}

async fn run(
    server: &Server,
    costs_out: &mut Vec<Cost>,
    writers_out: &mut Vec<Writers>,
) -> Result<()> {
    let table = format!("Partition-{}", std::process::id());
    server
        .create_table(&table, ("pk", "S"), ("sk", "S"))
        .await?;
    costs(server, &table, costs_out).await?;
    let largest = sizes().into_iter().max().unwrap_or(0);
    let started = Instant::now();
    let bytes = read_back(server, &table, "flat", largest).await?;
    println!(
        "  {}: {largest} items ({:.1} MB) read back in order in {:.1?}",
        server.name,
        bytes as f64 / 1e6,
        started.elapsed()
    );
    writers_out.push(writers(server, &table).await?);
    Ok(())
}

fn print(costs: &[Cost], writers: &[Writers]) {
    println!("\nCost against partition size (1 KB items, one request at a time; ratio to the smallest size):");
    println!(
        "  {:<11} {:<10} {:>7} {:>8} {:>8} {:>7} {:>7} {:>7} {:>10}",
        "operation", "server", "items", "p50 ms", "p99 ms", "p50 ×", "p99 ×", "trips", "read B"
    );
    for c in costs {
        let base = costs
            .iter()
            .find(|b| b.server == c.server && b.operation == c.operation);
        let ratio = |f: fn(&Cost) -> f64| {
            base.map_or("-".to_owned(), |b| format!("{:.2}", f(c) / f(b).max(1e-9)))
        };
        let trips = c.round_trips.map_or("-".to_owned(), |t| format!("{t:.2}"));
        let bytes = c.read_bytes.map_or("-".to_owned(), |b| format!("{b:.0}"));
        println!(
            "  {:<11} {:<10} {:>7} {:>8.2} {:>8.2} {:>7} {:>7} {:>7} {:>10}",
            c.operation,
            c.server,
            c.size,
            c.p50_ms,
            c.p99_ms,
            ratio(|c| c.p50_ms),
            ratio(|c| c.p99_ms),
            trips,
            bytes
        );
    }
    println!("\n8 clients × 25 new items: one partition against 8 partitions:");
    println!(
        "  {:<10} {:>14} {:>14} {:>7} {:>7}",
        "server", "one puts/s", "8 puts/s", "ratio", "errors"
    );
    for w in writers {
        println!(
            "  {:<10} {:>14.0} {:>14.0} {:>7.2} {:>7}",
            w.server,
            w.one,
            w.spread,
            w.one / w.spread.max(1e-9),
            w.errors
        );
    }
}

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (mut costs, mut writers) = (Vec::new(), Vec::new());
    bench::on_dynalite_and_each_host(|server| {
        let started = Instant::now();
        let result = runtime.block_on(run(server, &mut costs, &mut writers));
        println!("  {} in {:.0?}", server.name, started.elapsed());
        result
    })?;
    print(&costs, &writers);
    Ok(())
}
