//! A tick refused by TvMaze's rate limit waits as long as its `Retry-After` says (within
//! the deployment's `scraper_backoff_max_ms`), not just the exponential backoff, which
//! would only earn another 429. Runs the real tick natively against the fake TvMaze
//! with a tight limit (3 calls per 30 s).

use anyhow::{ensure, Result};
use chrono::{DateTime, Utc};
use conformance::native::HyperFetch;
use fake_tvmaze::{FakeTvMaze, Faults};
use kit::table::memory::MemoryKv;
use kit::{FixedClock, MapConfig};
use std::time::Duration;

/// Runs one tick at a fixed instant; returns how long it set the backoff for, in ms.
fn backoff_after_one_tick(backoff_max_ms: &str) -> Result<i64> {
    let fake = FakeTvMaze::start(fake_tvmaze::Config {
        shows: 30,
        faults: Faults {
            rate_limit_calls: 3,
            rate_limit_window: Duration::from_secs(30),
            ..Faults::none()
        },
        ..fake_tvmaze::Config::default()
    })?;
    let config = [
        ("tvmaze_base_url", fake.base_url()),
        ("scraper_fetch_budget", "10"),
        ("scraper_backoff_ms", "10"),
        ("scraper_backoff_max_ms", backoff_max_ms),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let now: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-12-02T12:00:00Z")?.into();
    let mut env = kit::host::native::env(MemoryKv::new(), MapConfig(config));
    env.fetch = Box::new(HyperFetch::new());
    env.clock = Box::new(FixedClock(now));
    env.log = kit::host::discard_log;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let status = tokio::task::LocalSet::new()
        .block_on(&runtime, async { tvmaze_scraper::tick(&env, now).await })?;
    ensure!(
        status.fetches_last_run == 4 && status.last_error.is_some(),
        "expected 3 answers and a 429: {status:?}"
    );
    let until = status
        .backoff_until
        .as_deref()
        .map(DateTime::parse_from_rfc3339)
        .transpose()?;
    let Some(until) = until else {
        anyhow::bail!("no backoff after a 429: {status:?}");
    };
    Ok((until.with_timezone(&Utc) - now).num_milliseconds())
}

#[test]
fn a_429_backs_off_for_its_retry_after_not_the_shorter_exponential_delay() -> Result<()> {
    let waited = backoff_after_one_tick("600000")?;
    // The fake asks for the rest of its 30 s window, rounded up to whole seconds.
    ensure!(
        (29_000..=30_000).contains(&waited),
        "backed off {waited} ms, not the ~30 s Retry-After (exponential alone: 10 ms)"
    );
    Ok(())
}

#[test]
fn a_retry_after_past_the_backoff_cap_waits_only_the_cap() -> Result<()> {
    let waited = backoff_after_one_tick("5000")?;
    ensure!(
        waited == 5_000,
        "backed off {waited} ms, not the 5,000 ms cap"
    );
    Ok(())
}
