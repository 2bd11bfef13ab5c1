//! Benchmark of reads on every host: `GET /healthz` (the storage-free reference),
//! `GET /hello/{user}` and `GET /api/shows` (after a
//! scrape of the fake TvMaze server; also revalidated with its `ETag`, answered 304),
//! requests/s and p50/p99 latency under a bounded
//! closed-loop load on loopback, the wasm/native ratios, and the sizes of the Spin
//! components and the Worker (raw and gzip).
//!
//! Run with `make bench` (it builds what is measured). Knobs: `BENCH_HOSTS`
//! (default `native,spin-host,workerd,spin`), `BENCH_REQUESTS` (default 4000 per host),
//! `BENCH_SECONDS` (default 20, the cap per host), `BENCH_CONCURRENCY` (default 8).

use anyhow::Result;
use conformance::{bench, Api, Host};
use std::sync::Arc;

/// Scrapes the fake until the full pass is done.
async fn seed_shows(api: &Api, host: Host) -> Result<()> {
    for _ in 0..2_000 {
        conformance::fire_cron(api, host).await?;
        let status = api.get("/api/shows/scrape/status", &[]).await?.json()?;
        if status["phase"] == "incremental" && status["shows_in_flight"] == 0 {
            return Ok(());
        }
    }
    let status = api.get("/api/shows/scrape/status", &[]).await?.json()?;
    anyhow::bail!("the scrape did not finish: {status}")
}

fn print_sizes() -> Result<()> {
    let root = conformance::root();
    println!("\nsizes (raw / gzip -9):");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("build/components"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    files.sort();
    // The Worker as deployed, then with the backend suite the conformance suite runs.
    files.push(root.join("crates/worker/build/index_bg.wasm"));
    files.push(root.join("crates/worker/build-selftest/index_bg.wasm"));
    for path in files {
        bench::print_size(&path)?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let fake = fake_tvmaze::FakeTvMaze::start(fake_tvmaze::Config {
        faults: fake_tvmaze::Faults::none(),
        ..fake_tvmaze::Config::default()
    })?;
    let vars: Vec<(String, String)> = [
        ("admin_token", "bench"),
        ("tvmaze_base_url", fake.base_url()),
        ("scraper_fetch_budget", "200"),
        ("scraper_rate_calls", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let shows_paths: Arc<Vec<String>> = Arc::new(
        (0..20)
            .map(|p| format!("/api/shows?page={p}&size=25"))
            .collect(),
    );
    let mut results = Vec::new();
    let healthz: Arc<Vec<String>> = Arc::new(vec!["/healthz".to_owned()]);
    bench::on_each_host(&vars, |host, api| {
        // The reference: the same host's storage-free route, in the same run.
        results.push(runtime.block_on(bench::measure_gets(
            host,
            &api,
            "GET /healthz",
            healthz.clone(),
            4000,
        ))?);
        let hello_paths = Arc::new(runtime.block_on(bench::seed_hello(&api))?);
        results.push(runtime.block_on(bench::measure_gets(
            host,
            &api,
            "GET /hello/{user}",
            hello_paths,
            4000,
        ))?);
        runtime.block_on(seed_shows(&api, host))?;
        results.push(runtime.block_on(bench::measure_gets(
            host,
            &api,
            "GET /api/shows?size=25",
            shows_paths.clone(),
            4000,
        ))?);
        results.push(runtime.block_on(bench::measure_revalidations(
            host,
            &api,
            "GET /api/shows?size=25, 304",
            "/api/shows?page=0&size=25",
            4000,
        ))?);
        Ok(())
    })?;
    bench::print_table("reads", &results);
    println!("\nthroughput / the same host's GET /healthz:");
    for host in bench::hosts() {
        let rate = |endpoint: &str| {
            results
                .iter()
                .find(|m| m.host == host && m.endpoint == endpoint)
                .map(|m| m.per_second)
        };
        let Some(reference) = rate("GET /healthz") else {
            continue;
        };
        for endpoint in ["GET /hello/{user}", "GET /api/shows?size=25"] {
            if let Some(r) = rate(endpoint) {
                println!(
                    "  {:<10} {:<24} {:>7.3}",
                    host.name(),
                    endpoint,
                    r / reference
                );
            }
        }
    }
    print_sizes()
}
