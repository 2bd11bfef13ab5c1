//! Benchmark of the concurrent streams API (OpenAPI tag `streams`) on every host: latency p50/p99
//! of a start (`POST /api/v1/streams`) and an end (`DELETE /api/v1/streams/{id}`),
//! throughput, and the conditional-write retries per admitted start (the service's
//! `x-cas-retries` header), under a bounded closed-loop load on loopback.
//!
//! Two loads per host: **spread** (clients cycle start → end over many users, rarely
//! meeting on one) and **hot** (every client on one user, so writes race on one item
//! and starts beyond the limit are refused with 409). On Workers every attempt of the
//! read → conditional put loop is two Durable Object round trips (get, put).
//!
//! Build what is measured first (`make components worker spin-host`), then
//! `cargo run --release -p conformance --features bench --bin bench_streams`. Knobs: `BENCH_HOSTS`
//! (default `native,spin-host,workerd,spin`), `BENCH_REQUESTS` (default 2000 per host
//! and load), `BENCH_SECONDS` (default 20, the cap per host and load),
//! `BENCH_CONCURRENCY` (default 8), `BENCH_USERS` (default 50, the spread load's users).

use anyhow::Result;
use conformance::{bench, Api, Host, Reply};
use reqwest::Method;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
enum Load {
    Spread,
    Hot,
}

impl Load {
    fn name(self) -> &'static str {
        match self {
            Load::Spread => "spread",
            Load::Hot => "hot",
        }
    }
}

/// What one client saw.
#[derive(Default)]
struct Tally {
    starts: Vec<Duration>,
    ends: Vec<Duration>,
    admitted: usize,
    refused: usize,
    errors: usize,
    start_retries: u64,
    end_retries: u64,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.starts.extend(other.starts);
        self.ends.extend(other.ends);
        self.admitted += other.admitted;
        self.refused += other.refused;
        self.errors += other.errors;
        self.start_retries += other.start_retries;
        self.end_retries += other.end_retries;
    }
}

struct Measured {
    host: Host,
    load: Load,
    tally: Tally,
    per_second: f64,
}

fn retries(reply: &Reply) -> u64 {
    reply
        .header("x-cas-retries")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// One client: start a stream for a user, end it, next user; until its share of
/// requests is done or the cap has passed.
async fn client(
    api: Api,
    load: Load,
    w: usize,
    share: usize,
    started: Instant,
    cap: Duration,
) -> Tally {
    let users = bench::env_number("BENCH_USERS", 50).max(1);
    let mut tally = Tally::default();
    let mut i = 0;
    while tally.starts.len() + tally.ends.len() + tally.refused + tally.errors < share {
        if started.elapsed() > cap {
            break;
        }
        let n = (w * 7919 + i) % users;
        let user = match load {
            Load::Spread => format!("10.1.{}.{}", n / 256, n % 256),
            Load::Hot => "10.2.0.1".to_owned(),
        };
        i += 1;
        let headers = [("x-forwarded-for", user.as_str())];
        let t = Instant::now();
        let reply = api
            .send(
                Method::POST,
                "/api/v1/streams",
                &headers,
                Some(br#"{"video_name":"bench.mp4"}"#.to_vec()),
            )
            .await;
        let id = match reply {
            Ok(reply) if reply.status == 201 => {
                tally.starts.push(t.elapsed());
                tally.admitted += 1;
                tally.start_retries += retries(&reply);
                reply
                    .json()
                    .ok()
                    .and_then(|b| b["id"].as_str().map(str::to_owned))
            }
            Ok(reply) if reply.status == 409 => {
                tally.refused += 1;
                None
            }
            _ => {
                tally.errors += 1;
                None
            }
        };
        let Some(id) = id else { continue };
        let t = Instant::now();
        match api
            .send(
                Method::DELETE,
                &format!("/api/v1/streams/{id}"),
                &headers,
                None,
            )
            .await
        {
            Ok(reply) if reply.status == 204 => {
                tally.ends.push(t.elapsed());
                tally.end_retries += retries(&reply);
            }
            _ => tally.errors += 1,
        }
    }
    tally
}

async fn measure(host: Host, api: &Api, load: Load) -> Result<Measured> {
    let total = bench::env_number("BENCH_REQUESTS", 2000);
    let cap = bench::cap();
    let workers = bench::concurrency();
    // Warm-up: first requests compile and cache on some hosts.
    for _ in 0..10 {
        let reply = api
            .send(
                Method::POST,
                "/api/v1/streams",
                &[("x-forwarded-for", "10.3.0.1")],
                None,
            )
            .await?;
        anyhow::ensure!(reply.status == 201, "warm-up start: {}", reply.status);
        let id = reply.json()?["id"].as_str().unwrap_or_default().to_owned();
        api.send(
            Method::DELETE,
            &format!("/api/v1/streams/{id}"),
            &[("x-forwarded-for", "10.3.0.1")],
            None,
        )
        .await?;
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let share = total / workers + usize::from(w < total % workers);
        tasks.push(tokio::spawn(client(
            api.clone(),
            load,
            w,
            share,
            started,
            cap,
        )));
    }
    let mut tally = Tally::default();
    for task in tasks {
        tally.merge(task.await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    tally.starts.sort_unstable();
    tally.ends.sort_unstable();
    let requests = tally.starts.len() + tally.ends.len() + tally.refused;
    Ok(Measured {
        host,
        load,
        per_second: requests as f64 / elapsed,
        tally,
    })
}

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let vars = vec![("admin_token".to_owned(), "bench".to_owned())];
    let mut results = Vec::new();
    bench::on_each_host(&vars, |host, api| {
        for load in [Load::Spread, Load::Hot] {
            results.push(runtime.block_on(measure(host, &api, load))?);
        }
        Ok(())
    })?;
    println!(
        "\nstreams: start + end cycles, {} concurrent clients, loopback; \
         retries = x-cas-retries per admitted start / per end",
        bench::concurrency()
    );
    println!(
        "  {:<10} {:<7} {:>8} {:>6} {:>6} {:>5} {:>8} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8}",
        "host",
        "load",
        "admitted",
        "409s",
        "ends",
        "err",
        "req/s",
        "start p50",
        "start p99",
        "end p50",
        "end p99",
        "retry/s",
        "retry/e"
    );
    for m in &results {
        let t = &m.tally;
        let per = |n: u64, d: usize| {
            if d == 0 {
                f64::NAN
            } else {
                n as f64 / d as f64
            }
        };
        println!(
            "  {:<10} {:<7} {:>8} {:>6} {:>6} {:>5} {:>8.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>8.3} {:>8.3}",
            m.host.name(),
            m.load.name(),
            t.admitted,
            t.refused,
            t.ends.len(),
            t.errors,
            m.per_second,
            bench::percentile(&t.starts, 0.50),
            bench::percentile(&t.starts, 0.99),
            bench::percentile(&t.ends, 0.50),
            bench::percentile(&t.ends, 0.99),
            per(t.start_retries, t.admitted),
            per(t.end_retries, t.ends.len()),
        );
    }
    println!("  (latencies in ms; on workerd each attempt is 2 Durable Object round trips)");
    println!("\nsize (raw / gzip -9):");
    bench::print_size(&conformance::root().join("build/components/streams.wasm"))
}
