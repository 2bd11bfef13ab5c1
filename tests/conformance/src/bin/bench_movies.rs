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
    let key_paths: Arc<Vec<String>> = Arc::new(
        items
            .iter()
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
    let vars = vec![("admin_token".to_owned(), "bench".to_owned())];
    let mut imports = Vec::new();
    let mut results = Vec::new();
    bench::on_each_host(&vars, |host, api| {
        let first = runtime.block_on(import(&api, &body))?;
        let again = runtime.block_on(import(&api, &body))?;
        imports.push(Imported { host, first, again });
        results.push(runtime.block_on(bench::measure_gets(
            host,
            &api,
            "GET /api/movies?year=Y",
            year_paths.clone(),
            3000,
        ))?);
        results.push(runtime.block_on(bench::measure_gets(
            host,
            &api,
            "GET /api/movies/{year}/{title}",
            key_paths.clone(),
            3000,
        ))?);
        Ok(())
    })?;
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
    Ok(())
}
