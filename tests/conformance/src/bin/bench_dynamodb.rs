//! Benchmark of the DynamoDB-compatible endpoint (OpenAPI tag `dynamodb`) on every host and on
//! dynalite (npm, a DynamoDB implementation in Node) in the same run, on loopback:
//! requests/s with p50/p99 latency of PutItem (movies of `../shared/data/moviedata.json`
//! in DynamoDB's typed JSON, each once), GetItem (those movies by key) and Query (one
//! year of them, cycling over the years), each under a bounded closed-loop load of
//! SigV4-signed requests, printed as ratios to dynalite's figures; and on the hosts,
//! TransactWriteItems of two of those puts (dynalite has no transactions), printed as
//! a ratio to the same host's PutItem; the same puts into a table with a GSI (dynalite
//! too), and one put at a time, how long until a GSI Query finds the
//! item written. Then, one request at
//! a time, the storage round trips of each operation (the `x-storage-round-trips`
//! header) and, on the Spin-compatible host, the SQL reads and writes behind them.
//!
//! Build what is measured first (`make components worker spin-host`), then
//! `cargo run --release -p conformance --features bench --bin bench_dynamodb`. Knobs: `BENCH_HOSTS`
//! (default `native,spin-host,workerd,spin`), `BENCH_REQUESTS` (default 2000 per
//! server and operation), `BENCH_SECONDS` (default 20, the cap per server and
//! operation), `BENCH_CONCURRENCY` (default 8).

use anyhow::{ensure, Context, Result};
use conformance::{bench, Host};
use ddb_model::value::item_to_json;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

use bench::DynamoServer as Server;

const ROUND_TRIPS: &str = "x-storage-round-trips";

/// One operation's figures on one server.
struct Measured {
    server: String,
    operation: &'static str,
    figures: bench::Figures,
}

/// Sends the prepared `bodies` (each at most once, in order across the clients) with
/// [`bench::concurrency`] clients until they run out or [`bench::cap`] has passed.
async fn measure(
    server: &Server,
    label: &'static str,
    operation: &'static str,
    bodies: Arc<Vec<Vec<u8>>>,
) -> Result<Measured> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = Arc::new(AtomicUsize::new(0));
    let cap = bench::cap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..bench::concurrency() {
        let (server, bodies, next) = (server.clone(), bodies.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0usize);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= bodies.len() || started.elapsed() > cap {
                    return (latencies, errors);
                }
                let t = Instant::now();
                match server.call(operation, &bodies[i]).await {
                    Ok(reply) if reply.status == 200 => latencies.push(t.elapsed()),
                    other => {
                        if errors == 0 {
                            let what = match &other {
                                Ok(reply) => format!(
                                    "{} {}",
                                    reply.status,
                                    String::from_utf8_lossy(&reply.body)
                                ),
                                Err(e) => format!("{e:#}"),
                            };
                            eprintln!("{operation} on {}: {what}", server.name);
                        }
                        errors += 1;
                    }
                }
            }
        }));
    }
    let figures = bench::collect(tasks, started).await?;
    Ok(Measured {
        server: server.name.clone(),
        operation: label,
        figures,
    })
}

/// The request bodies of one server's run: the movies typed as boto3 types them.
struct Workload {
    puts: Vec<Vec<u8>>,
    gets: Vec<Vec<u8>>,
    queries: Vec<Vec<u8>>,
    /// TransactWriteItems of two puts each (no two touching one item: no conflicts).
    transactions: Vec<Vec<u8>>,
}

fn workload(table: &str, movies: &[Value]) -> Result<Workload> {
    let mut puts = Vec::new();
    let mut gets = Vec::new();
    let mut years = Vec::new();
    let mut items = Vec::new();
    for movie in movies {
        let fields = movie.as_object().context("a movie that is not an object")?;
        let item =
            ddb_model::plain::to_item(fields).map_err(|e| anyhow::anyhow!("{}", e.message))?;
        let item = item_to_json(&item);
        items.push(item.clone());
        puts.push(
            json!({"TableName": table, "Item": item})
                .to_string()
                .into_bytes(),
        );
        gets.push(
            json!({"TableName": table, "Key": {"year": item["year"], "title": item["title"]}})
                .to_string()
                .into_bytes(),
        );
        if !years.contains(&item["year"]) {
            years.push(item["year"].clone());
        }
    }
    // As many queries as puts, cycling over the years loaded.
    let queries = (0..puts.len())
        .map(|i| {
            json!({"TableName": table, "KeyConditionExpression": "#y = :y",
                "ExpressionAttributeNames": {"#y": "year"},
                "ExpressionAttributeValues": {":y": years[(i * 7) % years.len()]}})
            .to_string()
            .into_bytes()
        })
        .collect();
    let transactions = items
        .chunks_exact(2)
        .map(|pair| {
            let put = |item: &Value| json!({"Put": {"TableName": table, "Item": item}});
            json!({"TransactItems": [put(&pair[0]), put(&pair[1])]})
                .to_string()
                .into_bytes()
        })
        .collect();
    Ok(Workload {
        puts,
        gets,
        queries,
        transactions,
    })
}

/// Round trips per request (and on spin-host SQL reads + writes) of each operation,
/// over 20 requests one at a time.
struct Storage {
    server: String,
    operation: &'static str,
    round_trips: f64,
    sql: Option<(f64, f64)>,
}

async fn storage(server: &Server, work: &Workload) -> Result<Vec<Storage>> {
    let mut rows = Vec::new();
    // Fresh keys for the puts: the first put of a year creates its partition, the
    // rest write into it, as in a load.
    let n = 20;
    for (operation, bodies) in [
        ("PutItem", &work.puts[work.puts.len() - n..]),
        ("GetItem", &work.gets[..n]),
        ("Query", &work.queries[..n]),
        ("TransactWriteItems", &work.transactions[..n]),
    ] {
        let before = match server.host {
            Some(Host::SpinHost) => Some(bench::kv_stats(&server.api).await?),
            _ => None,
        };
        let mut trips = 0u64;
        for body in bodies {
            let reply = server.call(operation, body).await?;
            ensure!(reply.status == 200, "{operation}: {}", reply.status);
            trips += reply
                .header(ROUND_TRIPS)
                .and_then(|v| v.parse::<u64>().ok())
                .context("no round-trip header")?;
        }
        let sql = match before {
            Some(before) => {
                let after = bench::kv_stats(&server.api).await?;
                let zero = (0, 0, 0);
                let (_, r0, w0) = before.get("dynamodb").copied().unwrap_or(zero);
                let (_, r1, w1) = after.get("dynamodb").copied().unwrap_or(zero);
                Some(((r1 - r0) as f64 / n as f64, (w1 - w0) as f64 / n as f64))
            }
            None => None,
        };
        rows.push(Storage {
            server: server.name.clone(),
            operation,
            round_trips: trips as f64 / n as f64,
            sql,
        });
    }
    Ok(rows)
}

/// A movies table with a GSI on `title` (KEYS_ONLY).
fn indexed_table(name: &str) -> Value {
    json!({
        "TableName": name,
        "KeySchema": [{"AttributeName": "year", "KeyType": "HASH"}, {"AttributeName": "title", "KeyType": "RANGE"}],
        "AttributeDefinitions": [
            {"AttributeName": "year", "AttributeType": "N"},
            {"AttributeName": "title", "AttributeType": "S"},
        ],
        "GlobalSecondaryIndexes": [{"IndexName": "by_title",
            "KeySchema": [{"AttributeName": "title", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"}}],
        "BillingMode": "PAY_PER_REQUEST",
    })
}

/// Index propagation, one write at a time: for each of 50 puts of a new title, the
/// time from the put's answer until a GSI Query finds it (polled back to back), and how
/// many of them the first Query already found.
struct Propagation {
    p50_ms: f64,
    p99_ms: f64,
    first_read: usize,
    writes: usize,
}

async fn propagation_delay(server: &Server, table: &str) -> Result<Propagation> {
    let mut delays = Vec::new();
    let mut first_read = 0;
    for i in 0..50 {
        let title = format!("propagation {i} {}", std::process::id());
        server
            .ok("PutItem", &json!({"TableName": table, "Item": {"year": {"N": "3000"}, "title": {"S": title}}}))
            .await?;
        let acked = Instant::now();
        let query = json!({"TableName": table, "IndexName": "by_title", "KeyConditionExpression": "title = :t",
            "ExpressionAttributeValues": {":t": {"S": title}}});
        for attempt in 0..1000 {
            let reply = server.ok("Query", &query).await?;
            let found: Value = serde_json::from_slice(&reply.body)?;
            if found["Count"] == 1 {
                delays.push(acked.elapsed().as_secs_f64() * 1000.0);
                first_read += usize::from(attempt == 0);
                break;
            }
        }
    }
    ensure!(
        delays.len() == 50,
        "{} of 50 writes never reached the index",
        50 - delays.len()
    );
    delays.sort_by(f64::total_cmp);
    Ok(Propagation {
        p50_ms: delays[delays.len() / 2],
        p99_ms: delays[delays.len() * 99 / 100],
        first_read,
        writes: delays.len(),
    })
}

async fn run(
    server: &Server,
    movies: &[Value],
    results: &mut Vec<Measured>,
    rows: &mut Vec<Storage>,
    propagation: &mut Vec<(String, Propagation)>,
) -> Result<()> {
    let table = format!("Bench-{}", std::process::id());
    server
        .create_table(&table, ("year", "N"), ("title", "S"))
        .await?;
    let work = workload(&table, movies)?;
    let last = work.puts.len() - 20;
    // The puts measured leave the last 20 movies for the storage count.
    let puts = Arc::new(work.puts[..last].to_vec());
    results.push(measure(server, "PutItem", "PutItem", puts).await?);
    let gets = Arc::new(work.gets[..last].to_vec());
    results.push(measure(server, "GetItem", "GetItem", gets).await?);
    let queries = Arc::new(work.queries.clone());
    results.push(measure(server, "Query (one year)", "Query", queries).await?);
    // The same puts into a table with a GSI (`title`, KEYS_ONLY), dynalite included:
    // what keeping an index costs a write.
    let indexed = format!("{table}-ix");
    server.ok("CreateTable", &indexed_table(&indexed)).await?;
    let indexed_work = workload(&indexed, movies)?;
    let indexed_puts = Arc::new(indexed_work.puts[..last].to_vec());
    results.push(measure(server, "PutItem (indexed)", "PutItem", indexed_puts).await?);
    propagation.push((
        server.name.clone(),
        propagation_delay(server, &indexed).await?,
    ));
    if server.host.is_some() {
        let transactions = Arc::new(work.transactions.clone());
        results.push(
            measure(
                server,
                "Transact (2 puts)",
                "TransactWriteItems",
                transactions,
            )
            .await?,
        );
        rows.extend(storage(server, &work).await?);
    }
    Ok(())
}

fn print(results: &[Measured], rows: &[Storage], propagation: &[(String, Propagation)]) {
    println!(
        "\nDynamoDB API, {} concurrent clients, loopback, as ratios to dynalite:",
        bench::concurrency()
    );
    println!(
        "  {:<18} {:<10} {:>9} {:>7} {:>10} {:>9} {:>9} {:>12}",
        "operation", "server", "requests", "errors", "req/s", "p50 ms", "p99 ms", "vs dynalite"
    );
    for m in results {
        let reference = results
            .iter()
            .find(|r| r.server == "dynalite" && r.operation == m.operation)
            .map(|r| r.figures.per_second);
        // What dynalite lacks is set beside the same server's PutItem.
        let own_put = results
            .iter()
            .find(|r| r.server == m.server && r.operation == "PutItem")
            .map(|r| r.figures.per_second);
        let f = &m.figures;
        let ratio = match (reference, own_put) {
            (Some(r), _) => format!("{:.2}", f.per_second / r),
            (None, Some(p)) => format!("{:.2} PutItem", f.per_second / p),
            (None, None) => "-".to_owned(),
        };
        println!(
            "  {:<18} {:<10} {:>9} {:>7} {:>10.0} {:>9.2} {:>9.2} {:>12}",
            m.operation, m.server, f.requests, f.errors, f.per_second, f.p50_ms, f.p99_ms, ratio
        );
    }
    println!("\nGSI propagation, one put at a time: put answered -> a GSI Query finds it (includes that Query):");
    for (server, p) in propagation {
        println!(
            "  {:<10} p50 {:>7.2} ms  p99 {:>7.2} ms  found by the first Query: {}/{}",
            server, p.p50_ms, p.p99_ms, p.first_read, p.writes
        );
    }
    println!("\nstorage round trips per request (one at a time; spin-host: SQL reads + writes):");
    for r in rows {
        let sql = r
            .sql
            .map_or(String::new(), |(rd, wr)| format!("  ({rd:.2} + {wr:.2})"));
        println!(
            "  {:<18} {:<10} {:>6.2}{sql}",
            r.operation, r.server, r.round_trips
        );
    }
}

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let file = conformance::root().join("../shared/data/moviedata.json");
    let text = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let all: Vec<Value> = serde_json::from_slice(&text)?;
    let n = bench::env_number("BENCH_REQUESTS", 2000).clamp(40, all.len());
    let movies = &all[..n];
    let (mut results, mut rows, mut propagation) = (Vec::new(), Vec::new(), Vec::new());
    bench::on_dynalite_and_each_host(|server| {
        runtime.block_on(run(
            server,
            movies,
            &mut results,
            &mut rows,
            &mut propagation,
        ))
    })?;
    print(&results, &rows, &propagation);
    Ok(())
}
