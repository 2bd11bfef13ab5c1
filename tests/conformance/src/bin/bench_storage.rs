//! Storage round trips per request, for every endpoint on every host: what each request
//! costs its backend, which on Spin is the floor of its latency (Spin's store is one
//! SQLite connection behind a lock).
//!
//! Two counts: every host's own, from the `x-storage-round-trips` header that `kit`
//! adds when the deployment sets `storage_stats_header = "true"` (calls to the backend:
//! `wasi:keyvalue` calls on Spin, Durable Object fetches and KV calls on Workers,
//! store calls natively), and on the Spin-compatible host also the host's count of the
//! SQL statements it ran for the component (`GET /.spin-host/kv-stats`), split into
//! reads and writes. Each endpoint gets `BENCH_STORAGE_REQUESTS` (default 20) requests,
//! one at a time, after its setup.
//!
//! Build what is measured first (`make components worker spin-host`), then
//! `cargo run --release -p conformance --features bench --bin bench_storage`. `BENCH_HOSTS` picks hosts.

use anyhow::{ensure, Context, Result};
use conformance::{bench, encode_segment, Api, Host, Reply};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const ROUND_TRIPS: &str = "x-storage-round-trips";

/// One request of an endpoint's measurement: method, path, body.
type Req = (Method, String, Option<Value>);

/// An endpoint: its name, the component that serves it on Spin, and request `i`.
struct Endpoint {
    name: &'static str,
    component: &'static str,
    /// Request `i`, given the ids of the stored shows.
    request: fn(usize, &[u64]) -> Req,
    /// The status every measured request must get.
    status: u16,
}

fn get(path: String) -> Req {
    (Method::GET, path, None)
}

fn user(i: usize) -> String {
    conformance::bench::user_name("storage", i)
}

fn ip(i: usize) -> String {
    format!("10.9.{}.{}", i / 250, i % 250 + 1)
}

const YEAR: u32 = 1999;

fn title(i: usize) -> String {
    format!("Storage Bench {i:03}")
}

fn movie_path(i: usize) -> String {
    format!("/api/movies/{YEAR}/{}", encode_segment(&title(i)))
}

fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint {
            name: "GET /healthz",
            component: "health",
            request: |_, _| get("/healthz".into()),
            status: 200,
        },
        Endpoint {
            name: "PUT /hello/{user} (new user)",
            component: "hello",
            request: |i, _| {
                (
                    Method::PUT,
                    format!("/hello/{}", user(i)),
                    Some(json!({"dateOfBirth": "1990-05-17"})),
                )
            },
            status: 204,
        },
        Endpoint {
            name: "PUT /hello/{user} (2nd)",
            component: "hello",
            request: |i, _| {
                (
                    Method::PUT,
                    format!("/hello/{}", user(i)),
                    Some(json!({"dateOfBirth": "1991-06-18"})),
                )
            },
            status: 204,
        },
        Endpoint {
            name: "PUT /hello/{user} (3rd)",
            component: "hello",
            request: |i, _| {
                (
                    Method::PUT,
                    format!("/hello/{}", user(i)),
                    Some(json!({"dateOfBirth": "1992-07-19"})),
                )
            },
            status: 204,
        },
        Endpoint {
            name: "GET /hello/{user}",
            component: "hello",
            request: |i, _| get(format!("/hello/{}", user(i))),
            status: 200,
        },
        Endpoint {
            name: "GET /api/shows?size=25",
            component: "shows",
            request: |i, _| get(format!("/api/shows?page={}&size=25", i % 4)),
            status: 200,
        },
        Endpoint {
            name: "GET /api/shows/{id}",
            component: "shows",
            request: |i, ids| get(format!("/api/shows/{}", ids[i % ids.len()])),
            status: 200,
        },
        Endpoint {
            name: "GET /api/shows/scrape/status",
            component: "shows",
            request: |_, _| get("/api/shows/scrape/status".into()),
            status: 200,
        },
        Endpoint {
            name: "POST /api/v1/streams (new user)",
            component: "streams",
            request: |i, _| (Method::POST, format!("/api/v1/streams#{}", ip(i)), None),
            status: 201,
        },
        Endpoint {
            name: "POST /api/v1/streams (2nd of a user)",
            component: "streams",
            request: |i, _| (Method::POST, format!("/api/v1/streams#{}", ip(i)), None),
            status: 201,
        },
        Endpoint {
            name: "POST /api/v1/streams (3rd of a user)",
            component: "streams",
            request: |i, _| (Method::POST, format!("/api/v1/streams#{}", ip(i)), None),
            status: 201,
        },
        Endpoint {
            name: "GET /api/v1/streams",
            component: "streams",
            request: |i, _| get(format!("/api/v1/streams#{}", ip(i))),
            status: 200,
        },
        Endpoint {
            name: "PUT /api/movies/{year}/{title} (new)",
            component: "movies",
            request: |i, _| {
                (
                    Method::PUT,
                    movie_path(i),
                    Some(json!({"info": {"rating": 7.5, "genres": ["Drama"]}})),
                )
            },
            status: 200,
        },
        Endpoint {
            name: "GET /api/movies?year=Y",
            component: "movies",
            request: |_, _| get(format!("/api/movies?year={YEAR}")),
            status: 200,
        },
        Endpoint {
            name: "GET /api/movies/{year}/{title}",
            component: "movies",
            request: |i, _| get(movie_path(i)),
            status: 200,
        },
        Endpoint {
            name: "DELETE /api/movies/{year}/{title}",
            component: "movies",
            request: |i, _| (Method::DELETE, movie_path(i), None),
            status: 204,
        },
        Endpoint {
            name: "GET /api/movies/openapi.json",
            component: "movies",
            request: |_, _| get("/api/movies/openapi.json".into()),
            status: 200,
        },
    ]
}

/// Sends `req`: a `#<address>` suffix on the path becomes the streams identity, and
/// every request carries the admin token (harmless where unused).
async fn send(api: &Api, (method, path, body): Req) -> Result<Reply> {
    let auth = format!("Bearer {}", api.admin_token);
    let (path, who) = match path.split_once('#') {
        Some((path, who)) => (path.to_owned(), Some(who.to_owned())),
        None => (path, None),
    };
    let mut headers = vec![("authorization", auth.as_str())];
    if let Some(who) = &who {
        headers.push(("x-forwarded-for", who.as_str()));
    }
    let body = body.map(|b| serde_json::to_vec(&b)).transpose()?;
    api.send(method, &path, &headers, body).await
}

/// The Spin-compatible host's per-component counters.
/// What one endpoint cost on one host, per request.
struct Row {
    endpoint: &'static str,
    host: Host,
    round_trips: f64,
    /// Spin-compatible host only: SQL reads and writes per request.
    sql: Option<(f64, f64)>,
}

/// Scrapes the fake to the end with admin ticks (the same tick as cron's, on every
/// host, with the round-trip header); returns round trips per TvMaze fetch and, on the
/// Spin-compatible host, SQL reads and writes per fetch.
async fn scrape(api: &Api, host: Host) -> Result<(f64, Option<(f64, f64)>)> {
    let before = if host == Host::SpinHost {
        Some(bench::kv_stats(api).await?)
    } else {
        None
    };
    let (mut trips, mut fetches) = (0u64, 0u64);
    for _ in 0..200 {
        let reply = send(api, (Method::POST, "/api/shows/scrape".into(), None)).await?;
        ensure!(reply.status == 202, "tick: {}", reply.status);
        trips += reply
            .header(ROUND_TRIPS)
            .and_then(|v| v.parse::<u64>().ok())
            .context("tick without the round-trip header")?;
        let status = reply.json()?;
        fetches += status["fetches_last_run"].as_u64().unwrap_or(0);
        if status["phase"] == "incremental" && status["shows_in_flight"] == 0 {
            let per_fetch = |n: u64| n as f64 / fetches.max(1) as f64;
            let sql = match before {
                Some(before) => {
                    let after = bench::kv_stats(api).await?;
                    let delta = |i: usize| {
                        let pick = |m: &BTreeMap<String, (u64, u64, u64)>| {
                            m.get("shows").map_or(0, |s| [s.0, s.1, s.2][i])
                        };
                        pick(&after) - pick(&before)
                    };
                    Some((per_fetch(delta(1)), per_fetch(delta(2))))
                }
                None => None,
            };
            return Ok((per_fetch(trips), sql));
        }
    }
    anyhow::bail!("the scrape did not finish")
}

async fn measure(host: Host, api: &Api, rows: &mut Vec<Row>) -> Result<()> {
    let n = bench::env_number("BENCH_STORAGE_REQUESTS", 20);
    let (round_trips, sql) = scrape(api, host).await?;
    rows.push(Row {
        endpoint: "scraper tick, per TvMaze fetch",
        host,
        round_trips,
        sql,
    });
    let first_page = api.get("/api/shows?size=250", &[]).await?.json()?;
    let ids: Vec<u64> = first_page
        .as_array()
        .context("shows page")?
        .iter()
        .filter_map(|show| show["id"].as_u64())
        .collect();
    ensure!(!ids.is_empty(), "no shows stored");
    for endpoint in endpoints() {
        let before = if host == Host::SpinHost {
            Some(bench::kv_stats(api).await?)
        } else {
            None
        };
        let mut trips = 0u64;
        for i in 0..n {
            let reply = send(api, (endpoint.request)(i, &ids)).await?;
            ensure!(
                reply.status == endpoint.status,
                "{} #{i} on {}: {} {}",
                endpoint.name,
                host.name(),
                reply.status,
                String::from_utf8_lossy(&reply.body)
            );
            trips += reply
                .header(ROUND_TRIPS)
                .and_then(|v| v.parse::<u64>().ok())
                .with_context(|| format!("{}: no {ROUND_TRIPS} header", endpoint.name))?;
        }
        let sql = match before {
            Some(before) => {
                let after = bench::kv_stats(api).await?;
                let zero = (0, 0, 0);
                let (r0, rd0, w0) = before.get(endpoint.component).copied().unwrap_or(zero);
                let (r1, rd1, w1) = after.get(endpoint.component).copied().unwrap_or(zero);
                let requests = (r1 - r0).max(1) as f64;
                Some(((rd1 - rd0) as f64 / requests, (w1 - w0) as f64 / requests))
            }
            None => None,
        };
        rows.push(Row {
            endpoint: endpoint.name,
            host,
            round_trips: trips as f64 / n as f64,
            sql,
        });
    }
    Ok(())
}

fn print(rows: &[Row], hosts: &[Host]) {
    println!("\nstorage round trips per request (one request at a time):");
    print!("  {:<38}", "endpoint");
    for host in hosts {
        print!(" {:>10}", host.name());
    }
    println!(" {:>22}", "spin-host SQL r + w");
    let mut names: Vec<&str> = Vec::new();
    for row in rows {
        if !names.contains(&row.endpoint) {
            names.push(row.endpoint);
        }
    }
    for name in names {
        print!("  {name:<38}");
        for host in hosts {
            match rows.iter().find(|r| r.endpoint == name && r.host == *host) {
                Some(row) => print!(" {:>10.2}", row.round_trips),
                None => print!(" {:>10}", "-"),
            }
        }
        match rows
            .iter()
            .find(|r| r.endpoint == name && r.sql.is_some())
            .and_then(|r| r.sql)
        {
            Some((reads, writes)) => println!(" {:>10.2} + {:<9.2}", reads, writes),
            None => println!(" {:>22}", "-"),
        }
    }
}

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let fake = fake_tvmaze::FakeTvMaze::start(fake_tvmaze::Config {
        shows: 150,
        faults: fake_tvmaze::Faults::none(),
        ..fake_tvmaze::Config::default()
    })?;
    let vars: Vec<(String, String)> = [
        ("admin_token", "bench"),
        ("storage_stats_header", "true"),
        ("tvmaze_base_url", fake.base_url()),
        ("scraper_fetch_budget", "50"),
        ("scraper_rate_calls", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut rows = Vec::new();
    let mut measured = Vec::new();
    bench::on_each_host(&vars, |host, api| {
        measured.push(host);
        runtime.block_on(measure(host, &api, &mut rows))
    })?;
    print(&rows, &measured);
    Ok(())
}
