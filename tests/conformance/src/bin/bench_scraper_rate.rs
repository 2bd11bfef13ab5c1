//! The scraper at TvMaze's rate floor: one full first pass per host against the fake
//! TvMaze enforcing TvMaze's limit time-compressed (20 calls per `BENCH_WINDOW_MS`,
//! default 100 ms, instead of per 10 s), with its generated page and cast sizes. The
//! scraper is configured with the same limit and paces itself to it. Prints the pass's
//! wall time as a ratio to the rate floor — the time the requests it needed take at
//! exactly 20 per window — and the 429s it earned (a paced scraper earns none).
//!
//! How each host is driven, as it is deployed:
//! - native and spin-host: a cron tick every window (Spin's `*/10 * * * * *` with
//!   `scraper_tick_max_ms` at 0.9 of it, compressed); a tick that overruns delays the
//!   next, as a cron that does not overlap its runs.
//! - workerd: the cron fires once; the scraper's Durable Object then runs the pass on
//!   its own alarm chain, each alarm one tick of `BENCH_DO_BUDGET` requests (default
//!   20, the deployed default), until it has nothing left.
//!
//! `cargo run --profile bench-host -p conformance --features bench --bin bench_scraper_rate` after
//! `make components worker spin-host`. Knobs: `BENCH_HOSTS`, `BENCH_SHOWS` (default
//! 1295), `BENCH_WINDOW_MS` (1000), `BENCH_DO_BUDGET` (20).

use anyhow::{bail, ensure, Result};
use conformance::{bench, Api, Host};
use fake_tvmaze::{Cause, FakeTvMaze, Faults};
use serde_json::Value;
use std::time::{Duration, Instant};

const CALLS: u64 = 20;

/// Real TvMaze, for the model: ~85,000 shows, ids up to ~86,000 (index pages of 250).
const REAL_SHOWS: f64 = 85_000.0;
const REAL_INDEX_PAGES: f64 = 345.0;
const REAL_WINDOW_S: f64 = 10.0;

struct Pass {
    host: Host,
    wall: Duration,
    served: usize,
    limited: usize,
    other_errors: usize,
    ticks: u64,
}

impl Pass {
    fn floor(&self, window: Duration) -> Duration {
        window.mul_f64(self.served as f64 / CALLS as f64)
    }
}

fn main() -> Result<()> {
    let shows = bench::env_number("BENCH_SHOWS", 1295);
    let window = Duration::from_millis(bench::env_number("BENCH_WINDOW_MS", 1000) as u64);
    let do_budget = bench::env_number("BENCH_DO_BUDGET", 20);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut passes = Vec::new();
    for host in bench::hosts() {
        let fake = FakeTvMaze::start(fake_tvmaze::Config {
            shows,
            faults: Faults::rate_limited(window),
            ..fake_tvmaze::Config::default()
        })?;
        let budget = if host == Host::Workerd {
            do_budget
        } else {
            CALLS as usize
        };
        let tick_max = if host == Host::Workerd {
            // Bounded by the budget; the wall limit only guards a stuck pass.
            window * 50
        } else {
            window.mul_f64(0.9)
        };
        let vars: conformance::Vars = [
            ("admin_token", "bench".to_owned()),
            ("tvmaze_base_url", fake.base_url().to_owned()),
            ("scraper_fetch_budget", budget.to_string()),
            ("scraper_rate_calls", CALLS.to_string()),
            ("scraper_rate_window_ms", window.as_millis().to_string()),
            ("scraper_tick_max_ms", tick_max.as_millis().to_string()),
            ("scraper_backoff_ms", window.as_millis().to_string()),
            (
                "scraper_backoff_max_ms",
                (window * 20).as_millis().to_string(),
            ),
            ("scraper_updates_interval_s", "3600".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let Some(running) = conformance::start(host, &vars)? else {
            println!("{}: not installed here, skipped", host.name());
            continue;
        };
        println!("measuring {} ...", running.describe());
        let api = Api::new(&running.base, "bench")?;
        fake.reset_log();
        let started = Instant::now();
        let ticks = runtime.block_on(drive(&api, host, window))?;
        let wall = started.elapsed();
        let log = fake.take_log();
        let pass = Pass {
            host,
            wall,
            served: log.iter().filter(|r| r.cause == Cause::Served).count(),
            limited: log.iter().filter(|r| r.cause == Cause::RateLimited).count(),
            other_errors: log
                .iter()
                .filter(|r| !matches!(r.cause, Cause::Served | Cause::RateLimited))
                .count(),
            ticks,
        };
        let status = runtime.block_on(status(&api))?;
        ensure!(
            status["shows_stored"].as_u64() == Some(fake.catalog().len() as u64),
            "{}: stored {} of {}",
            host.name(),
            status["shows_stored"],
            fake.catalog().len()
        );
        passes.push(pass);
    }
    print_results(shows, window, &passes);
    Ok(())
}

async fn status(api: &Api) -> Result<Value> {
    let reply = api.get("/api/shows/scrape/status", &[]).await?;
    ensure!(reply.status == 200, "status {}", reply.status);
    reply.json()
}

fn done(status: &Value) -> bool {
    status["phase"] == "incremental"
        && status["shows_in_flight"] == 0
        && status["pending_updates"] == 0
}

/// Runs the first pass to its end the way the host schedules ticks; returns the ticks.
async fn drive(api: &Api, host: Host, window: Duration) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(1800);
    if host == Host::Workerd {
        conformance::fire_cron(api, host).await?;
        loop {
            let s = status(api).await?;
            if done(&s) {
                return Ok(s["ticks"].as_u64().unwrap_or(0));
            }
            if Instant::now() > deadline {
                bail!("workerd: no end to the pass: {s}");
            }
            tokio::time::sleep(window / 2).await;
        }
    }
    let mut next = Instant::now();
    let mut ticks = 0;
    loop {
        tokio::time::sleep_until(next.into()).await;
        next += window;
        conformance::fire_cron(api, host).await?;
        ticks += 1;
        // A cron that does not overlap its runs: missed firings are skipped.
        while next < Instant::now() {
            next += window;
        }
        if done(&status(api).await?) {
            return Ok(ticks);
        }
        if Instant::now() > deadline {
            bail!("{}: no end to the pass after {ticks} ticks", host.name());
        }
    }
}

fn print_results(shows: usize, window: Duration, passes: &[Pass]) {
    println!();
    println!(
        "Full first pass of {shows} shows, fake TvMaze at {CALLS} calls per {} ms (TvMaze's limit, {}x compressed)",
        window.as_millis(),
        (REAL_WINDOW_S / window.as_secs_f64()).round()
    );
    println!(
        "{:<10} {:>9} {:>6} {:>6} {:>8} {:>10} {:>10} {:>8}",
        "host", "requests", "429s", "faults", "ticks", "wall s", "floor s", "ratio"
    );
    for p in passes {
        let floor = p.floor(window);
        println!(
            "{:<10} {:>9} {:>6} {:>6} {:>8} {:>10.2} {:>10.2} {:>8.3}",
            p.host.name(),
            p.served,
            p.limited,
            p.other_errors,
            p.ticks,
            p.wall.as_secs_f64(),
            floor.as_secs_f64(),
            p.wall.as_secs_f64() / floor.as_secs_f64()
        );
    }
    let floor_h = (REAL_SHOWS + REAL_INDEX_PAGES + 1.0) / CALLS as f64 * REAL_WINDOW_S / 3600.0;
    println!();
    println!(
        "Model, real TvMaze (~{REAL_SHOWS:.0} shows, {REAL_INDEX_PAGES:.0} index pages): rate floor {floor_h:.1} h"
    );
    for p in passes {
        let ratio = p.wall.as_secs_f64() / p.floor(window).as_secs_f64();
        println!(
            "  {:<10} x{ratio:.3} -> {:.1} h",
            p.host.name(),
            floor_h * ratio
        );
    }
}
