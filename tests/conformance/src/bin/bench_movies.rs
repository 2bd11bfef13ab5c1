//! Benchmark of the movies API (API.md §4) on every host, on loopback: the time to
//! import the whole sample `../shared/data/moviedata.json` in one request (into an
//! empty table, then again over the stored copy, which merges every year), and
//! requests/s with p50/p99 latency of `GET /api/movies?year=Y` (one year's first page
//! of 50, cycling over every year of the file) and `GET /api/movies/{year}/{title}`
//! (cycling over every movie), under a bounded closed-loop load.
//!
//! Build what is measured first (`make components worker spin-host`), then
//! `cargo run --release -p conformance --bin bench_movies`. Knobs: `BENCH_HOSTS`
//! (default `native,spin-host,workerd,spin`), `BENCH_REQUESTS` (default 3000 per host
//! and endpoint), `BENCH_SECONDS` (default 20, the cap per host and endpoint),
//! `BENCH_CONCURRENCY` (default 8).

use anyhow::{ensure, Context, Result};
use conformance::{Api, Host};
use reqwest::Method;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Percent-encodes one path segment (everything but RFC 3986's unreserved characters).
fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

struct Measured {
    host: Host,
    endpoint: &'static str,
    requests: usize,
    errors: usize,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

struct Imported {
    host: Host,
    first: Duration,
    again: Duration,
}

async fn import(api: &Api, body: &[u8]) -> Result<Duration> {
    let auth = format!("Bearer {}", api.admin_token);
    let started = Instant::now();
    let reply = api
        .send(
            Method::POST,
            "/api/movies/import",
            &[("authorization", &auth)],
            Some(body.to_vec()),
        )
        .await?;
    let elapsed = started.elapsed();
    ensure!(
        reply.status == 200,
        "import: {} {}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    Ok(elapsed)
}

async fn measure(
    host: Host,
    api: Api,
    endpoint: &'static str,
    paths: Arc<Vec<String>>,
) -> Result<Measured> {
    let total = env_number("BENCH_REQUESTS", 3000);
    let cap = Duration::from_secs(env_number("BENCH_SECONDS", 20) as u64);
    let workers = env_number("BENCH_CONCURRENCY", 8).max(1);
    // Warm-up: first requests compile and cache on some hosts.
    for path in paths.iter().take(20) {
        api.get(path, &[]).await?;
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let api = api.clone();
        let paths = paths.clone();
        let share = total / workers + usize::from(w < total % workers);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(share);
            let mut errors = 0usize;
            for i in 0..share {
                if started.elapsed() > cap {
                    break;
                }
                let path = &paths[(w * 7919 + i * 31) % paths.len()];
                let t = Instant::now();
                match api.get(path, &[]).await {
                    Ok(reply) if reply.status == 200 => latencies.push(t.elapsed()),
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    Ok(Measured {
        host,
        endpoint,
        requests: latencies.len(),
        errors,
        per_second: latencies.len() as f64 / elapsed,
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
    })
}

fn main() -> Result<()> {
    let hosts: Vec<Host> = match std::env::var("BENCH_HOSTS") {
        Ok(list) => list
            .split(',')
            .filter_map(|h| Host::parse(h.trim()))
            .collect(),
        Err(_) => Host::ALL.to_vec(),
    };
    let file = conformance::root().join("../shared/data/moviedata.json");
    let body = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let items: Vec<Value> = serde_json::from_slice(&body)?;
    let mut years: Vec<u64> = items.iter().filter_map(|i| i["year"].as_u64()).collect();
    years.sort_unstable();
    years.dedup();
    let year_paths: Arc<Vec<String>> = Arc::new(
        years
            .iter()
            .map(|y| format!("/api/movies?year={y}"))
            .collect(),
    );
    let key_paths: Arc<Vec<String>> = Arc::new(
        items
            .iter()
            .map(|i| {
                format!(
                    "/api/movies/{}/{}",
                    i["year"],
                    encode(i["title"].as_str().unwrap_or_default())
                )
            })
            .collect(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let vars = vec![("admin_token".to_owned(), "bench".to_owned())];
    let mut imports = Vec::new();
    let mut results = Vec::new();
    for host in hosts {
        let Some(running) = conformance::start(host, &vars)? else {
            println!("{}: not installed here, skipped", host.name());
            continue;
        };
        println!("measuring {} ...", running.describe());
        let api = Api::new(&running.base, "bench")?;
        let first = runtime.block_on(import(&api, &body))?;
        let again = runtime.block_on(import(&api, &body))?;
        imports.push(Imported { host, first, again });
        results.push(runtime.block_on(measure(
            host,
            api.clone(),
            "GET /api/movies?year=Y",
            year_paths.clone(),
        ))?);
        results.push(runtime.block_on(measure(
            host,
            api,
            "GET /api/movies/{year}/{title}",
            key_paths.clone(),
        ))?);
    }
    println!(
        "\nimport of moviedata.json ({} items, {:.1} MiB, {} years) in one request:",
        items.len(),
        body.len() as f64 / (1024.0 * 1024.0),
        years.len()
    );
    println!("  {:<10} {:>14} {:>14}", "host", "empty table", "re-import");
    for i in &imports {
        println!(
            "  {:<10} {:>12.0}ms {:>12.0}ms",
            i.host.name(),
            i.first.as_secs_f64() * 1000.0,
            i.again.as_secs_f64() * 1000.0
        );
    }
    println!(
        "\nreads, {} concurrent clients, loopback:",
        env_number("BENCH_CONCURRENCY", 8)
    );
    println!(
        "  {:<32} {:<10} {:>9} {:>7} {:>10} {:>9} {:>9} {:>10}",
        "endpoint", "host", "requests", "errors", "req/s", "p50 ms", "p99 ms", "vs native"
    );
    for m in &results {
        let native = results
            .iter()
            .find(|n| n.host == Host::Native && n.endpoint == m.endpoint)
            .map(|n| n.per_second);
        let ratio = native.map_or(String::from("-"), |n| format!("{:.3}", m.per_second / n));
        println!(
            "  {:<32} {:<10} {:>9} {:>7} {:>10.0} {:>9.2} {:>9.2} {:>10}",
            m.endpoint,
            m.host.name(),
            m.requests,
            m.errors,
            m.per_second,
            m.p50_ms,
            m.p99_ms,
            ratio
        );
    }
    Ok(())
}
