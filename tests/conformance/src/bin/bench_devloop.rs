//! The dev loop: how long `make run` takes, on an already built tree, from the command
//! to the first `200` from `GET /healthz` — what a developer waits for after every
//! restart. Runs `make run` itself (setup checks included) on a free port, three times,
//! then stops it.
//!
//! `cargo run -p conformance --features bench --bin bench_devloop` after `make test` (or `make components
//! worker`; it only times a subprocess, so a debug build measures the same). Knob:
//! `BENCH_RUNS` (default 3).

use anyhow::{Context, Result};
use conformance::bench;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Seconds from `make run` to the first 200 of `/healthz`.
fn time_to_serve() -> Result<f64> {
    let port = free_port()?;
    let started = Instant::now();
    let mut child = Command::new("make")
        .arg("run")
        .current_dir(conformance::root())
        .env("PORT", port.to_string())
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting make run")?;
    let url = format!("http://127.0.0.1:{port}/healthz");
    let deadline = started + Duration::from_secs(600);
    let outcome = loop {
        if matches!(conformance::client::blocking_get(&url), Ok(200)) {
            break Ok(started.elapsed().as_secs_f64());
        }
        if let Some(status) = child.try_wait()? {
            break Err(anyhow::anyhow!("make run exited: {status}"));
        }
        if Instant::now() > deadline {
            break Err(anyhow::anyhow!("{url} did not answer within 600 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let group = format!("-{}", child.id());
    for signal in ["-TERM", "-KILL"] {
        let _ = Command::new("kill").args([signal, "--", &group]).status();
        std::thread::sleep(Duration::from_millis(500));
        if child.try_wait()?.is_some() {
            break;
        }
    }
    outcome
}

fn main() -> Result<()> {
    let runs = bench::env_number("BENCH_RUNS", 3).max(1);
    let mut times = Vec::with_capacity(runs);
    for run in 1..=runs {
        let seconds = time_to_serve()?;
        println!("make run #{run}: serving after {seconds:.1} s");
        times.push(seconds);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!("make run, built tree: median {median:.1} s to serve (target 10 s)");
    Ok(())
}
