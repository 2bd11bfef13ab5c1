//! The conformance suite: the OpenAPI document's contract, written once, run on every host.
//!
//! Run through the README's test command, or alone with `cargo test -p conformance`
//! once the components, the Worker and the Spin-compatible host are built.
//! `CONFORMANCE_HOSTS=native,spin-host` picks hosts; `CONFORMANCE_ONLY=streams::concurrent`
//! picks cases by substring of `suite::name`, `CONFORMANCE_REPEAT=N` runs each N times;
//! `CONFORMANCE_VERBOSE=1` shows host logs.
//! Prints each case per host and ends with `N passed, M failed`.

mod birthdays;
mod caching;
mod common;
mod dynamodb;
mod graph;
mod logs;
mod movies;
mod shows;
mod smoke;
mod streams;

use common::Case;
use conformance::{Api, Host};
use std::process::ExitCode;
use std::time::Instant;

const ADMIN_TOKEN: &str = "conformance-admin-token";

fn suites() -> Vec<(&'static str, Vec<Case>)> {
    vec![
        ("common", common::cases()),
        ("logs", logs::cases()),
        ("birthdays", birthdays::cases()),
        ("shows", shows::cases()),
        ("streams", streams::cases()),
        ("movies", movies::cases()),
        ("dynamodb", dynamodb::cases()),
        ("graph", graph::cases()),
        ("smoke", smoke::cases()),
        ("caching", caching::cases()),
    ]
}

/// `CONFORMANCE_ONLY=streams,birthdays::put` runs only the cases whose
/// `suite::name` contains one of the comma-separated filters; unset runs everything.
fn selected(suite: &str, name: &str) -> bool {
    match std::env::var("CONFORMANCE_ONLY") {
        Ok(filters) if !filters.trim().is_empty() => {
            let full = format!("{suite}::{name}");
            filters
                .split(',')
                .any(|f| !f.trim().is_empty() && full.contains(f.trim()))
        }
        _ => true,
    }
}

/// `CONFORMANCE_REPEAT=20` runs each selected case 20 times in a row on each host
/// (default once), e.g. to check that concurrency cases pass repeatedly.
fn repeat() -> usize {
    std::env::var("CONFORMANCE_REPEAT")
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(1)
}

fn selected_hosts() -> Vec<Host> {
    match std::env::var("CONFORMANCE_HOSTS") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .filter_map(|name| {
                let host = Host::parse(name.trim());
                if host.is_none() {
                    eprintln!("unknown host {name:?} in CONFORMANCE_HOSTS");
                }
                host
            })
            .collect(),
        _ => Host::DEFAULT.to_vec(),
    }
}

/// Runs every selected case that `runs_here(suite, name)` admits on one started host,
/// printing each; returns (passed, failed).
fn run_cases(
    runtime: &tokio::runtime::Runtime,
    api: &Api,
    host: Host,
    runs_here: impl Fn(&str, &str) -> bool,
) -> (usize, usize) {
    let (mut host_passed, mut host_failed) = (0, 0);
    for (suite, cases) in suites() {
        for (name, case) in cases {
            if !selected(suite, name) || !runs_here(suite, name) {
                continue;
            }
            for _ in 0..repeat() {
                let started = Instant::now();
                let result = runtime.block_on(case(api.clone(), host));
                let took = started.elapsed().as_secs_f64();
                match result {
                    Ok(()) => {
                        host_passed += 1;
                        println!("   ok   {suite}::{name} ({took:.1}s)");
                    }
                    Err(e) => {
                        host_failed += 1;
                        println!("   FAIL {suite}::{name} ({took:.1}s): {e:#}");
                    }
                }
            }
        }
    }
    (host_passed, host_failed)
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot build a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let fake = match fake_tvmaze::FakeTvMaze::start(shows::fake_config()) {
        Ok(fake) => std::sync::Arc::new(fake),
        Err(e) => {
            eprintln!("cannot start the fake TvMaze server: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let mut vars = vec![
        ("admin_token".to_owned(), ADMIN_TOKEN.to_owned()),
        ("test_clock_header".to_owned(), "true".to_owned()),
        (
            "stream_lease_seconds".to_owned(),
            streams::LEASE_SECONDS.to_string(),
        ),
    ];
    vars.extend(shows::vars(&fake));
    vars.extend(dynamodb::vars());
    if let Ok(mut slot) = shows::FAKE.lock() {
        *slot = Some(fake);
    }
    let (mut passed, mut failed, mut skipped) = (0usize, 0usize, 0usize);
    let mut summary = Vec::new();
    for host in selected_hosts() {
        let started = Instant::now();
        let running = match conformance::start(host, &vars) {
            Ok(Some(running)) => running,
            Ok(None) => {
                println!(
                    "== {}: not installed here, skipped (install `spin` to run it)",
                    host.name()
                );
                summary.push(format!("{:<10} skipped: not installed", host.name()));
                skipped += 1;
                continue;
            }
            Err(e) => {
                println!("== {}: FAILED TO START: {e:#}", host.name());
                summary.push(format!("{:<10} failed to start", host.name()));
                failed += 1;
                continue;
            }
        };
        println!(
            "== {} (started in {:.1}s)",
            running.describe(),
            started.elapsed().as_secs_f64()
        );
        *logs::HOST_LOGS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(running.logs.clone());
        let api = match Api::new(&running.base, ADMIN_TOKEN) {
            Ok(api) => api,
            Err(e) => {
                println!("   cannot build a client: {e:#}");
                failed += 1;
                continue;
            }
        };
        let (mut host_passed, mut host_failed) = run_cases(&runtime, &api, host, |suite, name| {
            if host == Host::Workerd {
                !common::needs_selftest(suite, name)
            } else {
                !common::deployed_worker_only(suite, name)
            }
        });
        drop(running);
        // The deployed Worker leaves the storage self-test out (scripts/build-worker.sh):
        // the cases that call it run on its self-test build, started only when one is
        // selected.
        let selftest_cases = suites().iter().any(|(suite, cases)| {
            cases
                .iter()
                .any(|(name, _)| selected(suite, name) && common::needs_selftest(suite, name))
        });
        if host == Host::Workerd && selftest_cases {
            let started = Instant::now();
            match conformance::start_workerd_selftest(&vars)
                .and_then(|running| Ok((Api::new(&running.base, ADMIN_TOKEN)?, running)))
            {
                Ok((api, running)) => {
                    println!(
                        "== {}, self-test build (started in {:.1}s)",
                        running.describe(),
                        started.elapsed().as_secs_f64()
                    );
                    let (p, f) = run_cases(&runtime, &api, host, common::needs_selftest);
                    host_passed += p;
                    host_failed += f;
                }
                Err(e) => {
                    println!(
                        "== {}, self-test build: FAILED TO START: {e:#}",
                        host.name()
                    );
                    host_failed += 1;
                }
            }
        }
        summary.push(format!(
            "{:<10} {host_passed} passed, {host_failed} failed",
            host.name()
        ));
        passed += host_passed;
        failed += host_failed;
    }
    if let Ok(mut slot) = shows::FAKE.lock() {
        slot.take();
    }
    println!("\nper host:");
    for line in &summary {
        println!("  {line}");
    }
    if skipped > 0 {
        println!("conformance: {passed} passed, {failed} failed, {skipped} skipped");
    } else {
        println!("conformance: {passed} passed, {failed} failed");
    }
    if failed == 0 && passed > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
