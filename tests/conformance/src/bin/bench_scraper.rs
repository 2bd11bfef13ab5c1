//! Scraper cost benchmark: for a generated source of N shows, the outbound requests and
//! ticks a complete scrape takes at budget B, against the floor (one cast request per
//! show + one index request per 250 ids + the final 404), and the wall time that costs
//! on each schedule against TvMaze's rate-limit floor (20 calls / 10 s).
//!
//! Runs the real tick natively (memory tables, hyper client) against the fake TvMaze
//! server with no rate limit, so it measures the scraper's own request count and CPU.
//! `cargo run --release -p conformance --features bench --bin bench_scraper`; knobs `BENCH_SHOWS`
//! (default `1000,10000,100000`) and `BENCH_BUDGET` (default 20).

use anyhow::Result;
use conformance::native::HyperFetch;
use fake_tvmaze::{FakeTvMaze, Faults};
use kit::table::memory::MemoryKv;
use kit::MapConfig;
use std::time::Instant;

fn main() -> Result<()> {
    let sizes: Vec<usize> = std::env::var("BENCH_SHOWS")
        .unwrap_or_else(|_| "1000,10000,100000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let budget: usize = std::env::var("BENCH_BUDGET")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(20);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    println!(
        "{:>8} {:>9} {:>9} {:>8} {:>7} {:>9} {:>10} {:>12} {:>12} {:>12}",
        "shows",
        "requests",
        "floor",
        "req/show",
        "ticks",
        "cpu s",
        "ms/fetch",
        "floor time",
        "spin 15s",
        "workers 1m"
    );
    for n in sizes {
        let fake = FakeTvMaze::start(fake_tvmaze::Config {
            shows: n,
            faults: Faults::none(),
            ..fake_tvmaze::Config::default()
        })?;
        let config = [
            ("tvmaze_base_url", fake.base_url().to_owned()),
            ("scraper_fetch_budget", budget.to_string()),
            ("scraper_updates_interval_s", "3600".to_owned()),
            // No limit at the fake: this measures request count and CPU, not pacing.
            ("scraper_rate_calls", "0".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut env = kit::host::native::env(MemoryKv::new(), MapConfig(config));
        env.fetch = Box::new(HyperFetch::new());
        let started = Instant::now();
        let (ticks, requests) = runtime.block_on(async {
            let mut ticks = 0u64;
            let mut requests = 0u64;
            loop {
                ticks += 1;
                let status = tvmaze_scraper::tick(&env, env.clock.now()).await?;
                requests += u64::from(status.fetches_last_run);
                if status.phase == tvmaze_scraper::Phase::Incremental && status.shows_in_flight == 0
                {
                    anyhow::ensure!(status.shows_stored == n, "stored {}", status.shows_stored);
                    return Ok::<_, anyhow::Error>((ticks, requests));
                }
                anyhow::ensure!(ticks < 1_000_000, "never finished");
            }
        })?;
        let cpu = started.elapsed().as_secs_f64();
        let last_id = fake.catalog().last().map_or(0, |s| s.id);
        let floor = n as u64 + last_id / 250 + 2;
        let hours = |seconds: f64| format!("{:.1} h", seconds / 3600.0);
        println!(
            "{:>8} {:>9} {:>9} {:>8.3} {:>7} {:>9.1} {:>10.3} {:>12} {:>12} {:>12}",
            n,
            requests,
            floor,
            requests as f64 / n as f64,
            ticks,
            cpu,
            cpu * 1000.0 / requests as f64,
            hours(floor as f64 / 2.0),
            hours(ticks as f64 * 15.0),
            hours(ticks as f64 * 60.0),
        );
    }
    println!("\nfloor time: the floor's requests at TvMaze's 20 calls / 10 s; spin 15s / workers 1m: ticks × the cron interval in spin.toml / wrangler.toml.");
    Ok(())
}
