//! Benchmark of the movies API (OpenAPI tag `movies`) on every host, on loopback: the time to
//! import the whole sample `../shared/data/moviedata.json` in one request (into an
//! empty table, then again over the stored copy, which merges every year), and
//! requests/s with p50/p99 latency of `GET /api/movies?year=Y` (one year's first page
//! of 50, cycling over every year of the file) and `GET /api/movies/{year}/{title}`
//! (cycling over a hot set of 200 movies), under a bounded closed-loop load, each
//! host deployed without the edge cache and with it (`edge_cache`, kit::cache), beside
//! the storage-free `GET /healthz` of the same deployment as the reference.
//!
//! Build what is measured first (`make components worker spin-host`), then
//! `cargo run --release -p conformance --features bench --bin bench_movies`. Knobs: `BENCH_HOSTS`
//! (default `native,spin-host,workerd,spin`), `BENCH_REQUESTS` (default 3000 per host
//! and endpoint), `BENCH_SECONDS` (default 20, the cap per host and endpoint),
//! `BENCH_CONCURRENCY` (default 8).

use anyhow::{ensure, Context, Result};
use conformance::{bench, Api, Host};
use reqwest::Method;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

fn main() -> Result<()> {
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
    // A hot set of 200 items, as a real read load has: cycling over all 4,609 would read
    // each once in a run, which no cache helps.
    let key_paths: Arc<Vec<String>> = Arc::new(
        items
            .iter()
            .take(200)
            .map(|i| {
                format!(
                    "/api/movies/{}/{}",
                    i["year"],
                    conformance::encode_segment(i["title"].as_str().unwrap_or_default())
                )
            })
            .collect(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Each host twice: without the edge cache (every read goes to storage), then with it
    // (kit::cache; it serves repeated reads on workerd and natively, Spin has none).
    let healthz: Arc<Vec<String>> = Arc::new(vec!["/healthz".to_owned()]);
    let mut imports = Vec::new();
    let mut results = Vec::new();
    for cached in [false, true] {
        for host in bench::hosts() {
            // Spin has no edge cache, nor the variable: measured once, as "off".
            let spin = matches!(host, Host::SpinHost | Host::Spin);
            if cached && spin {
                continue;
            }
            let mut vars = vec![("admin_token".to_owned(), "bench".to_owned())];
            if !cached && !spin {
                vars.push(("edge_cache".to_owned(), "false".to_owned()));
            }
            let Some(running) = conformance::start(host, &vars)? else {
                println!("{}: not installed here, skipped", host.name());
                continue;
            };
            println!("measuring {} ...", running.describe());
            let api = Api::new(&running.base, "bench")?;
            let first = runtime.block_on(import(&api, &body))?;
            if !cached {
                let again = runtime.block_on(import(&api, &body))?;
                imports.push(Imported { host, first, again });
            }
            let labels = if cached {
                [
                    "GET /healthz (cache on)",
                    "GET /api/movies?year=Y (cache on)",
                    "GET /api/movies/{y}/{t} (cache on)",
                ]
            } else {
                [
                    "GET /healthz",
                    "GET /api/movies?year=Y",
                    "GET /api/movies/{year}/{title}",
                ]
            };
            for (label, paths) in
                labels
                    .into_iter()
                    .zip([healthz.clone(), year_paths.clone(), key_paths.clone()])
            {
                results
                    .push(runtime.block_on(bench::measure_gets(host, &api, label, paths, 3000))?);
            }
        }
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
    bench::print_table("reads", &results);
    print_cache_ratios(&results);
    Ok(())
}

/// Per host: each read's throughput with the edge cache over without it, and both over
/// the host's storage-free `/healthz` measured in the same deployment.
fn print_cache_ratios(results: &[bench::Measured]) {
    let rate = |host: Host, endpoint: &str| {
        results
            .iter()
            .find(|m| m.host == host && m.endpoint == endpoint)
            .map(|m| m.per_second)
    };
    println!(
        "
edge cache, throughput ratios (same run):"
    );
    println!(
        "  {:<10} {:<18} {:>12} {:>14} {:>14}",
        "host", "read", "on / off", "off / healthz", "on / healthz"
    );
    for host in bench::hosts() {
        for (read, off, on) in [
            (
                "year page",
                "GET /api/movies?year=Y",
                "GET /api/movies?year=Y (cache on)",
            ),
            (
                "item",
                "GET /api/movies/{year}/{title}",
                "GET /api/movies/{y}/{t} (cache on)",
            ),
        ] {
            let (Some(off), Some(on), Some(h_off), Some(h_on)) = (
                rate(host, off),
                rate(host, on),
                rate(host, "GET /healthz"),
                rate(host, "GET /healthz (cache on)"),
            ) else {
                continue;
            };
            println!(
                "  {:<10} {:<18} {:>12.3} {:>14.3} {:>14.3}",
                host.name(),
                read,
                on / off,
                off / h_off,
                on / h_on
            );
        }
    }
}
