//! The conformance suite: API.md's contract, written once, run on every host.
//!
//! Run through the README's test command, or alone with `cargo test -p conformance`
//! once the components, the Worker and the Spin-compatible host are built.
//! `CONFORMANCE_HOSTS=native,spin-host` picks hosts; `CONFORMANCE_VERBOSE=1` shows
//! host logs. Prints each case per host and ends with `N passed, M failed`.

mod birthdays;
mod common;

use common::Case;
use conformance::{Api, Host};
use std::process::ExitCode;
use std::time::Instant;

const ADMIN_TOKEN: &str = "conformance-admin-token";

fn suites() -> Vec<(&'static str, Vec<Case>)> {
    vec![
        ("common", common::cases()),
        ("birthdays", birthdays::cases()),
    ]
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
        _ => Host::ALL.to_vec(),
    }
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
    let vars = vec![
        ("admin_token".to_owned(), ADMIN_TOKEN.to_owned()),
        ("test_clock_header".to_owned(), "true".to_owned()),
    ];
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
        let api = match Api::new(&running.base, ADMIN_TOKEN) {
            Ok(api) => api,
            Err(e) => {
                println!("   cannot build a client: {e:#}");
                failed += 1;
                continue;
            }
        };
        let (mut host_passed, mut host_failed) = (0, 0);
        for (suite, cases) in suites() {
            for (name, case) in cases {
                let result = runtime.block_on(case(api.clone(), host));
                match result {
                    Ok(()) => {
                        host_passed += 1;
                        println!("   ok   {suite}::{name}");
                    }
                    Err(e) => {
                        host_failed += 1;
                        println!("   FAIL {suite}::{name}: {e:#}");
                    }
                }
            }
        }
        drop(running);
        summary.push(format!(
            "{:<10} {host_passed} passed, {host_failed} failed",
            host.name()
        ));
        passed += host_passed;
        failed += host_failed;
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
