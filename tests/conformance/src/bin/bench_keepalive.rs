//! Requests on a kept-alive connection against the same requests on a fresh connection
//! each, per host: the p50 of `BENCH_REQUESTS` (default 200) sequential requests of
//! `GET /healthz`, `GET /hello/{user}` and a DynamoDB `GetItem`, one client with
//! `TCP_NODELAY` on (as browsers and SDKs set it). A response whose head and body leave
//! the server in two writes waits, on a kept-alive connection, for the client's delayed
//! ACK (Nagle's algorithm on a socket without `TCP_NODELAY`, as Spin's HTTP trigger
//! accepts them): ~40 ms on Linux, which the fresh connection, still in quick-ACK mode,
//! never pays. The target is a kept-alive p50 and p90 within 1.5× (+ 2 ms) of the
//! fresh ones; `stalled` is the share of kept-alive requests 20 ms slower than the
//! fresh p90.
//! Then `GET /hello/{user}` from 8 kept-alive connections at once (what `wrk -c 8`
//! measures), p50 and p99.
//!
//! Build what is measured first (`make components worker spin-host`), then
//! `cargo run --release -p conformance --features bench --bin bench_keepalive`. Knobs:
//! `BENCH_HOSTS` (default every host), `BENCH_REQUESTS`.

use anyhow::{bail, ensure, Context, Result};
use conformance::{bench, Api, Host};
use dynamodb::sigv4::Credentials;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const KEY_ID: &str = "AKIDBENCH";
const SECRET: &str = "bench/secret";
const USER: &str = "keepalive";
const HELLO: &str = "/hello/keepalive";
const TABLE: &str = "KeepAliveBench";

/// One request as bytes on the wire, made afresh for each send (a signature dates).
type MakeRequest = Box<dyn Fn(&str) -> Vec<u8>>;

fn get(path: &'static str) -> MakeRequest {
    Box::new(move |authority| {
        format!("GET {path} HTTP/1.1\r\nhost: {authority}\r\naccept: */*\r\n\r\n").into_bytes()
    })
}

fn dynamodb(operation: &'static str, body: String) -> MakeRequest {
    Box::new(move |authority| {
        let credentials = Credentials {
            access_key_id: KEY_ID.to_owned(),
            secret_access_key: SECRET.to_owned(),
        };
        let target = format!("DynamoDB_20120810.{operation}");
        let headers = dynamodb::signed_headers(
            &credentials,
            authority,
            &target,
            body.as_bytes(),
            chrono::Utc::now(),
        );
        let mut request = format!("POST /dynamodb HTTP/1.1\r\nhost: {authority}\r\n");
        for (name, value) in headers {
            if !name.eq_ignore_ascii_case("host") {
                request.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        request.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
        request.into_bytes()
    })
}

/// Reads one response off `conn`: its status and body length, the body read whole
/// (by `content-length` or chunked framing) so the next request can follow.
fn read_response(conn: &mut BufReader<TcpStream>) -> Result<(u16, usize)> {
    let mut line = String::new();
    conn.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {line:?}"))?;
    let (mut length, mut chunked) = (None, false);
    loop {
        line.clear();
        conn.read_line(&mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').context("bad header line")?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>()?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let mut read = 0;
    if chunked {
        loop {
            line.clear();
            conn.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim_end(), 16)?;
            let mut chunk = vec![0; size + 2];
            conn.read_exact(&mut chunk)?;
            read += size;
            if size == 0 {
                break;
            }
        }
    } else if let Some(length) = length {
        let mut body = vec![0; length];
        conn.read_exact(&mut body)?;
        read = length;
    } else if status != 204 && status != 304 {
        bail!("a {status} response with neither content-length nor chunked framing");
    }
    Ok((status, read))
}

fn connect(authority: &str) -> Result<BufReader<TcpStream>> {
    let stream = TcpStream::connect(authority)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    Ok(BufReader::new(stream))
}

/// `n` sequential requests, on one connection when `keep_alive`, else each on its own;
/// their latencies, sorted. Anything but 200 fails the run.
fn sequential(
    authority: &str,
    make: &MakeRequest,
    n: usize,
    keep_alive: bool,
) -> Result<Vec<Duration>> {
    let mut conn = connect(authority)?;
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        if !keep_alive && i > 0 {
            conn = connect(authority)?;
        }
        let request = make(authority);
        // A fresh connection's connect is left out: what is compared is the answer.
        let t = Instant::now();
        conn.get_mut().write_all(&request)?;
        let (status, _) = read_response(&mut conn)?;
        latencies.push(t.elapsed());
        ensure!(status == 200, "request {i} answered {status}");
    }
    latencies.sort_unstable();
    Ok(latencies)
}

struct Row {
    endpoint: &'static str,
    host: Host,
    kept: Vec<Duration>,
    fresh: Vec<Duration>,
}

fn measure(
    host: Host,
    api: &Api,
    rows: &mut Vec<Row>,
    loads: &mut Vec<(Host, Vec<Duration>)>,
) -> Result<()> {
    let authority = api.base.trim_start_matches("http://").to_owned();
    let n = bench::env_number("BENCH_REQUESTS", 200).max(10);
    let key = serde_json::json!({"pk": {"S": "one"}});
    let setup: [(&str, MakeRequest); 3] = [
        (
            "put birthday",
            Box::new(|authority: &str| {
                let body = r#"{"dateOfBirth":"1990-05-17"}"#;
                format!(
                    "PUT /hello/{USER} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes()
            }),
        ),
        (
            "create table",
            dynamodb(
                "CreateTable",
                serde_json::json!({
                    "TableName": TABLE,
                    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                    "BillingMode": "PAY_PER_REQUEST",
                })
                .to_string(),
            ),
        ),
        (
            "put item",
            dynamodb(
                "PutItem",
                serde_json::json!({
                    "TableName": TABLE,
                    "Item": {"pk": {"S": "one"}, "note": {"S": "x".repeat(200)}},
                })
                .to_string(),
            ),
        ),
    ];
    for (what, make) in &setup {
        let mut conn = connect(&authority)?;
        conn.get_mut().write_all(&make(&authority))?;
        let (status, _) = read_response(&mut conn)?;
        ensure!(
            status == 204 || status == 200,
            "{what} on {}: {status}",
            host.name()
        );
    }
    let endpoints: [(&'static str, MakeRequest); 3] = [
        ("GET /healthz", get("/healthz")),
        ("GET /hello/{user}", get(HELLO)),
        (
            "DynamoDB GetItem",
            dynamodb(
                "GetItem",
                serde_json::json!({"TableName": TABLE, "Key": key}).to_string(),
            ),
        ),
    ];
    for (endpoint, make) in &endpoints {
        // Warm-up: the first requests compile and cache on some hosts.
        sequential(&authority, make, 10, true)?;
        let kept = sequential(&authority, make, n, true)?;
        let fresh = sequential(&authority, make, n, false)?;
        rows.push(Row {
            endpoint,
            host,
            kept,
            fresh,
        });
    }
    // Eight kept-alive connections at once, each sending its share of 8 × n.
    let mut threads = Vec::new();
    for _ in 0..8 {
        let authority = authority.clone();
        threads.push(std::thread::spawn(move || {
            sequential(&authority, &get(HELLO), n, true)
        }));
    }
    let mut all = Vec::new();
    for thread in threads {
        let latencies = thread
            .join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))??;
        all.extend(latencies);
    }
    all.sort_unstable();
    loads.push((host, all));
    Ok(())
}

fn ms(d: &[Duration], p: f64) -> f64 {
    bench::percentile(d, p)
}

fn main() -> Result<()> {
    let vars: Vec<(String, String)> = [
        ("admin_token", "bench"),
        ("dynamodb_access_key_id", KEY_ID),
        ("dynamodb_secret_access_key", SECRET),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let (mut rows, mut loads) = (Vec::new(), Vec::new());
    bench::on_each_host(&vars, |host, api| {
        measure(host, &api, &mut rows, &mut loads)
    })?;

    println!("\nOne client, sequential requests, p50 (p90) in ms:");
    println!(
        "  {:<20} {:<10} {:>16} {:>16} {:>10} {:>8} {:>8}",
        "endpoint", "host", "kept-alive", "fresh", "kept/fresh", "stalled", "target"
    );
    for r in &rows {
        let (kept, fresh) = (ms(&r.kept, 0.5), ms(&r.fresh, 0.5));
        let (kept90, fresh90) = (ms(&r.kept, 0.9), ms(&r.fresh, 0.9));
        // A delayed-ACK stall adds ~40 ms: count what took 20 ms more than fresh p90.
        let stalled = r
            .kept
            .iter()
            .filter(|d| d.as_secs_f64() * 1000.0 > fresh90 + 20.0)
            .count();
        let met = kept <= 1.5 * fresh + 2.0 && kept90 <= 1.5 * fresh90 + 2.0;
        println!(
            "  {:<20} {:<10} {:>7.2} ({:>6.2}) {:>7.2} ({:>6.2}) {:>10.2} {:>7.1}% {:>8}",
            r.endpoint,
            r.host.name(),
            kept,
            kept90,
            fresh,
            fresh90,
            kept / fresh,
            100.0 * stalled as f64 / r.kept.len() as f64,
            if met { "met" } else { "STALL" }
        );
    }
    println!("\nGET /hello/{{user}} from 8 kept-alive connections at once, ms:");
    for (host, latencies) in &loads {
        println!(
            "  {:<10} p50 {:>7.2}  p99 {:>7.2}  ({} requests)",
            host.name(),
            ms(latencies, 0.5),
            ms(latencies, 0.99),
            latencies.len()
        );
    }
    Ok(())
}
