//! Benchmark of reads on every host: `GET /hello/{user}` and `GET /api/shows` (after a
//! scrape of the fake TvMaze server), requests/s and p50/p99 latency under a bounded
//! closed-loop load on loopback, the wasm/native ratios, and the sizes of the Spin
//! components and the Worker (raw and gzip).
//!
//! Run with `make bench` (it builds what is measured). Knobs: `BENCH_HOSTS`
//! (default `native,spin-host,workerd,spin`), `BENCH_REQUESTS` (default 4000 per host),
//! `BENCH_SECONDS` (default 20, the cap per host), `BENCH_CONCURRENCY` (default 8).

use anyhow::{Context, Result};
use conformance::{Api, Host};
use std::time::{Duration, Instant};

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

const USERS: usize = 50;

fn user(i: usize) -> String {
    let mut name = String::from("bench");
    let mut n = i;
    loop {
        name.push(char::from(b'a' + (n % 26) as u8));
        n /= 26;
        if n == 0 {
            return name;
        }
    }
}

async fn seed_hello(api: &Api) -> Result<()> {
    for i in 0..USERS {
        let reply = api
            .put_json(
                &format!("/hello/{}", user(i)),
                &serde_json::json!({"dateOfBirth": format!("1990-{:02}-{:02}", i % 12 + 1, i % 28 + 1)}),
                &[],
            )
            .await?;
        anyhow::ensure!(reply.status == 204, "seeding: {}", reply.status);
    }
    Ok(())
}

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

fn hello_path(i: usize) -> String {
    format!("/hello/{}", user(i % USERS))
}

fn shows_path(i: usize) -> String {
    format!("/api/shows?page={}&size=25", i % 20)
}

async fn measure(
    host: Host,
    api: Api,
    endpoint: &'static str,
    path: fn(usize) -> String,
) -> Result<Measured> {
    let total = env_number("BENCH_REQUESTS", 4000);
    let cap = Duration::from_secs(env_number("BENCH_SECONDS", 20) as u64);
    let workers = env_number("BENCH_CONCURRENCY", 8).max(1);
    // Warm-up: first requests compile and cache on some hosts.
    for i in 0..20 {
        api.get(&path(i), &[]).await?;
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let api = api.clone();
        let share = total / workers + usize::from(w < total % workers);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(share);
            let mut errors = 0usize;
            for i in 0..share {
                if started.elapsed() > cap {
                    break;
                }
                let path = path(w * 7919 + i);
                let t = Instant::now();
                match api.get(&path, &[]).await {
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

fn gzip_size(path: &std::path::Path) -> Result<u64> {
    let out = std::process::Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .output()
        .context("running gzip")?;
    Ok(out.stdout.len() as u64)
}

fn print_sizes() -> Result<()> {
    let root = conformance::root();
    println!("\nsizes (raw / gzip -9):");
    let mut files: Vec<std::path::PathBuf> =
        std::fs::read_dir(root.join("target/wasm32-wasip2/release"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect();
    files.sort();
    files.push(root.join("components/worker/build/index_bg.wasm"));
    for path in files {
        if let Ok(meta) = std::fs::metadata(&path) {
            let name = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .display()
                .to_string();
            println!(
                "  {name:<52} {:>8.1} KiB / {:>7.1} KiB",
                meta.len() as f64 / 1024.0,
                gzip_size(&path)? as f64 / 1024.0
            );
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let hosts: Vec<Host> = match std::env::var("BENCH_HOSTS") {
        Ok(list) => list
            .split(',')
            .filter_map(|h| Host::parse(h.trim()))
            .collect(),
        Err(_) => Host::ALL.to_vec(),
    };
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
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut results = Vec::new();
    for host in hosts {
        let Some(running) = conformance::start(host, &vars)? else {
            println!("{}: not installed here, skipped", host.name());
            continue;
        };
        println!("measuring {} ...", running.describe());
        let api = Api::new(&running.base, "bench")?;
        runtime.block_on(seed_hello(&api))?;
        results.push(runtime.block_on(measure(
            host,
            api.clone(),
            "GET /hello/{user}",
            hello_path,
        ))?);
        runtime.block_on(seed_shows(&api, host))?;
        results.push(runtime.block_on(measure(host, api, "GET /api/shows?size=25", shows_path))?);
    }
    println!(
        "\n{} concurrent clients, loopback:",
        env_number("BENCH_CONCURRENCY", 8)
    );
    println!(
        "  {:<24} {:<10} {:>9} {:>7} {:>10} {:>9} {:>9} {:>10}",
        "endpoint", "host", "requests", "errors", "req/s", "p50 ms", "p99 ms", "vs native"
    );
    for m in &results {
        let native = results
            .iter()
            .find(|n| n.host == Host::Native && n.endpoint == m.endpoint)
            .map(|n| n.per_second);
        let ratio = native.map_or(String::from("-"), |n| format!("{:.3}", m.per_second / n));
        println!(
            "  {:<24} {:<10} {:>9} {:>7} {:>10.0} {:>9.2} {:>9.2} {:>10}",
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
    print_sizes()
}
