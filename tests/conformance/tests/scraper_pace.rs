//! A tick paces its TvMaze requests to the configured rate limit, so it spends its
//! whole budget without a 429; back-to-back ticks pace across the tick boundary; a tick
//! ends at its time limit rather than wait past it; and `tvmaze_scraper::chained_tick` (what
//! the Worker's scraper Durable Object runs on its alarm) schedules a whole pass at the
//! limit and stops when it is done. Runs the real tick natively against the fake TvMaze
//! enforcing a tight limit (5 calls per 300 ms) on the real clock.

use anyhow::{ensure, Result};
use conformance::native::HyperFetch;
use fake_tvmaze::{Cause, FakeTvMaze, Faults, LoggedRequest};
use kit::table::memory::MemoryKv;
use kit::{Env, MapConfig};
use std::time::Duration;

const CALLS: u32 = 5;
const WINDOW_MS: u64 = 300;

fn fake(shows: usize) -> Result<FakeTvMaze> {
    FakeTvMaze::start(fake_tvmaze::Config {
        shows,
        faults: Faults {
            rate_limit_calls: CALLS,
            rate_limit_window: Duration::from_millis(WINDOW_MS),
            ..Faults::none()
        },
        ..fake_tvmaze::Config::default()
    })
}

/// A native environment scraping `fake`, paced at `rate_calls` per window.
fn env(fake: &FakeTvMaze, budget: u32, rate_calls: u32, tick_max_ms: u64) -> Env {
    let config = [
        ("tvmaze_base_url", fake.base_url().to_owned()),
        ("scraper_fetch_budget", budget.to_string()),
        ("scraper_rate_calls", rate_calls.to_string()),
        ("scraper_rate_window_ms", WINDOW_MS.to_string()),
        ("scraper_tick_max_ms", tick_max_ms.to_string()),
        ("scraper_backoff_ms", "10".to_owned()),
        ("scraper_backoff_max_ms", "1000".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut env = kit::host::native::env(MemoryKv::new(), MapConfig(config));
    env.fetch = Box::new(HyperFetch::new());
    env.log = kit::host::discard_log;
    env
}

fn run<T>(f: impl std::future::Future<Output = T>) -> Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(tokio::task::LocalSet::new().block_on(&runtime, f))
}

fn refused(log: &[LoggedRequest]) -> usize {
    log.iter().filter(|r| r.cause == Cause::RateLimited).count()
}

#[test]
fn a_paced_tick_spends_its_whole_budget_without_a_429() -> Result<()> {
    let fake = fake(100)?;
    let env = env(&fake, 18, CALLS, 60_000);
    let status = run(tvmaze_scraper::tick(&env, env.clock.now()))??;
    let log = fake.take_log();
    ensure!(
        status.fetches_last_run == 18 && status.last_error.is_none(),
        "{status:?}"
    );
    ensure!(
        log.len() == 18 && refused(&log) == 0,
        "{} requests, {} refused",
        log.len(),
        refused(&log)
    );
    Ok(())
}

#[test]
fn an_unpaced_tick_is_refused_by_the_same_limit() -> Result<()> {
    let fake = fake(100)?;
    let env = env(&fake, 18, 0, 60_000);
    let status = run(tvmaze_scraper::tick(&env, env.clock.now()))??;
    let log = fake.take_log();
    ensure!(refused(&log) == 1, "{} refused", refused(&log));
    ensure!(
        status.backoff_until.is_some() && status.fetches_last_run == CALLS + 1,
        "{status:?}"
    );
    Ok(())
}

#[test]
fn the_next_tick_paces_on_from_the_last_ones_requests() -> Result<()> {
    let fake = fake(100)?;
    // Each tick may burst its whole budget (= the limit) if it forgot the last one's.
    let env = env(&fake, CALLS, CALLS, 60_000);
    for _ in 0..3 {
        let status = run(tvmaze_scraper::tick(&env, env.clock.now()))??;
        ensure!(status.last_error.is_none(), "{status:?}");
    }
    let log = fake.take_log();
    ensure!(
        log.len() == 3 * CALLS as usize && refused(&log) == 0,
        "{} requests, {} refused",
        log.len(),
        refused(&log)
    );
    Ok(())
}

#[test]
fn a_tick_ends_at_its_time_limit_instead_of_waiting_past_it() -> Result<()> {
    let fake = fake(100)?;
    // The sixth request could start only a window after the first: past the limit.
    let env = env(&fake, 18, CALLS, WINDOW_MS / 3);
    let status = run(tvmaze_scraper::tick(&env, env.clock.now()))??;
    ensure!(
        status.fetches_last_run == CALLS
            && status.last_error.is_none()
            && status.backoff_until.is_none(),
        "{status:?}"
    );
    Ok(())
}

#[test]
fn chained_ticks_run_a_whole_pass_at_the_limit_and_then_stop() -> Result<()> {
    let fake = fake(60)?;
    let env = env(&fake, 7, CALLS, 60_000);
    let ticks = run(async {
        let mut ticks = 0;
        while let Some(at) = tvmaze_scraper::chained_tick(&env).await {
            ticks += 1;
            anyhow::ensure!(ticks < 200, "the chain does not end");
            let wait = at - env.clock.now().timestamp_millis();
            tokio::time::sleep(Duration::from_millis(wait.max(0).unsigned_abs())).await;
        }
        Ok(ticks + 1)
    })??;
    let log = fake.take_log();
    let status = run(tvmaze_scraper::status(&env))??;
    ensure!(
        status.shows_stored == fake.catalog().len() && refused(&log) == 0,
        "{ticks} ticks: {status:?}, {} refused",
        refused(&log)
    );
    ensure!(
        status.phase == tvmaze_scraper::Phase::Incremental,
        "{status:?}"
    );
    Ok(())
}
