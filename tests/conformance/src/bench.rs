//! What the benchmark binaries (`src/bin/bench*.rs`) share: their knobs from the
//! environment, a bounded closed-loop load of GETs on one host, percentiles, the
//! results table with wasm/native ratios, and file sizes raw and gzipped.

use crate::{Api, Host};
use anyhow::{Context, Result};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A numeric knob from the environment, `default` when unset or unparsable.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The hosts named in `BENCH_HOSTS` (comma-separated), else every host.
pub fn hosts() -> Vec<Host> {
    match std::env::var("BENCH_HOSTS") {
        Ok(list) => list
            .split(',')
            .filter_map(|h| Host::parse(h.trim()))
            .collect(),
        Err(_) => Host::ALL.to_vec(),
    }
}

/// The `i`th of a benchmark's user names: `prefix` and `i` in base-26 letters, since
/// the birthday API takes letters only.
pub fn user_name(prefix: &str, i: usize) -> String {
    let mut name = String::from(prefix);
    let mut n = i;
    loop {
        name.push(char::from(b'a' + (n % 26) as u8));
        n /= 26;
        if n == 0 {
            return name;
        }
    }
}

/// Saves the birthdays of 50 users (`PUT /hello/{user}`, each answered 204) and
/// answers their `/hello/{user}` paths, the read the benchmarks load.
pub async fn seed_hello(api: &Api) -> Result<Vec<String>> {
    let mut paths = Vec::new();
    for i in 0..50usize {
        let path = format!("/hello/{}", user_name("bench", i));
        let body = serde_json::json!({
            "dateOfBirth": format!("1990-{:02}-{:02}", i % 12 + 1, i % 28 + 1)
        });
        let reply = api.put_json(&path, &body, &[]).await?;
        anyhow::ensure!(reply.status == 204, "seeding {path}: {}", reply.status);
        paths.push(path);
    }
    Ok(paths)
}

/// Concurrent clients of a load (`BENCH_CONCURRENCY`, default 8).
pub fn concurrency() -> usize {
    env_number("BENCH_CONCURRENCY", 8).max(1)
}

/// The cap on one load's wall time (`BENCH_SECONDS`, default 20).
pub fn cap() -> Duration {
    Duration::from_secs(env_number("BENCH_SECONDS", 20) as u64)
}

/// The `p` quantile of sorted latencies, in milliseconds.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// One endpoint's figures on one host.
pub struct Measured {
    pub host: Host,
    pub endpoint: &'static str,
    pub requests: usize,
    pub errors: usize,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// GETs `paths` (cycled, each client from its own offset) with [`concurrency`]
/// clients until `BENCH_REQUESTS` (default `default_total`) have been sent or [`cap`]
/// has passed; anything but 200 counts as an error.
pub async fn measure_gets(
    host: Host,
    api: &Api,
    endpoint: &'static str,
    paths: Arc<Vec<String>>,
    default_total: usize,
) -> Result<Measured> {
    measure(host, api, endpoint, paths, None, default_total).await
}

/// As [`measure_gets`] for one path, each GET revalidating the path's own `ETag`
/// (`If-None-Match`): what a cache that already holds the answer costs the host; only
/// 304 counts as success.
pub async fn measure_revalidations(
    host: Host,
    api: &Api,
    endpoint: &'static str,
    path: &str,
    default_total: usize,
) -> Result<Measured> {
    let first = api.get(path, &[]).await?;
    let tag = first
        .header("etag")
        .with_context(|| format!("{path} has no etag"))?
        .to_owned();
    let paths = Arc::new(vec![path.to_owned()]);
    measure(host, api, endpoint, paths, Some(tag), default_total).await
}

async fn measure(
    host: Host,
    api: &Api,
    endpoint: &'static str,
    paths: Arc<Vec<String>>,
    if_none_match: Option<String>,
    default_total: usize,
) -> Result<Measured> {
    anyhow::ensure!(!paths.is_empty(), "no paths to measure");
    let expect = if if_none_match.is_some() { 304 } else { 200 };
    let if_none_match = Arc::new(if_none_match);
    let total = env_number("BENCH_REQUESTS", default_total);
    let cap = cap();
    let workers = concurrency();
    // Warm-up: first requests compile and cache on some hosts.
    for path in paths.iter().take(20) {
        api.get(path, &[]).await?;
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let api = api.clone();
        let paths = paths.clone();
        let if_none_match = if_none_match.clone();
        let share = total / workers + usize::from(w < total % workers);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(share);
            let mut errors = 0usize;
            for i in 0..share {
                if started.elapsed() > cap {
                    break;
                }
                let path = &paths[(w * 7919 + i * 31) % paths.len()];
                let headers: Vec<(&str, &str)> = match if_none_match.as_deref() {
                    Some(tag) => vec![("if-none-match", tag)],
                    None => vec![],
                };
                let t = Instant::now();
                match api.get(path, &headers).await {
                    Ok(reply) if reply.status == expect => latencies.push(t.elapsed()),
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let figures = collect(tasks, started).await?;
    Ok(Measured {
        host,
        endpoint,
        requests: figures.requests,
        errors: figures.errors,
        per_second: figures.per_second,
        p50_ms: figures.p50_ms,
        p99_ms: figures.p99_ms,
    })
}

/// What a closed-loop load measured.
pub struct Figures {
    pub requests: usize,
    pub errors: usize,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Waits for a load's clients — each answering its successful requests' latencies and
/// its error count — and sums them up over the time since `started`.
pub async fn collect(
    tasks: Vec<tokio::task::JoinHandle<(Vec<Duration>, usize)>>,
    started: Instant,
) -> Result<Figures> {
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    Ok(Figures {
        requests: latencies.len(),
        errors,
        per_second: latencies.len() as f64 / elapsed,
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
    })
}

/// Prints the results table, each row's throughput also as a ratio to native's.
pub fn print_table(title: &str, results: &[Measured]) {
    println!("\n{title}, {} concurrent clients, loopback:", concurrency());
    println!(
        "  {:<32} {:<10} {:>9} {:>7} {:>10} {:>9} {:>9} {:>10}",
        "endpoint", "host", "requests", "errors", "req/s", "p50 ms", "p99 ms", "vs native"
    );
    for m in results {
        let native = results
            .iter()
            .find(|n| n.host == Host::Native && n.endpoint == m.endpoint)
            .map(|n| n.per_second);
        let ratio = native.map_or(String::from("-"), |n| format!("{:.3}", m.per_second / n));
        println!(
            "  {:<32} {:<10} {:>9} {:>7} {:>10.0} {:>9.2} {:>9.2} {:>10}",
            m.endpoint,
            m.host.name(),
            m.requests,
            m.errors,
            m.per_second,
            m.p50_ms,
            m.p99_ms,
            ratio
        );
    }
}

/// The size of `path` compressed with `gzip -9`.
pub fn gzip_size(path: &Path) -> Result<u64> {
    let out = std::process::Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .output()
        .context("running gzip")?;
    Ok(out.stdout.len() as u64)
}

/// Prints one file's size raw and gzipped, named relative to the workspace; nothing
/// when it has not been built.
pub fn print_size(path: &Path) -> Result<()> {
    if let Ok(meta) = std::fs::metadata(path) {
        let root = crate::root();
        let name = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string();
        println!(
            "  {name:<52} {:>8.1} KiB / {:>7.1} KiB",
            meta.len() as f64 / 1024.0,
            gzip_size(path)? as f64 / 1024.0
        );
    }
    Ok(())
}

/// The Spin-compatible host's per-component key-value counts
/// (`GET /.spin-host/kv-stats`): component id → (requests, reads, writes).
pub async fn kv_stats(api: &Api) -> Result<std::collections::BTreeMap<String, (u64, u64, u64)>> {
    let stats = api.get("/.spin-host/kv-stats", &[]).await?.json()?;
    let components = stats["components"]
        .as_object()
        .context("kv-stats without components")?;
    Ok(components
        .iter()
        .map(|(id, s)| {
            let n = |k: &str| s[k].as_u64().unwrap_or(0);
            (id.clone(), (n("requests"), n("reads"), n("writes")))
        })
        .collect())
}

/// The bytes of stored values the Spin-compatible host's key-value reads have returned
/// to `component` so far (`read_bytes` of `GET /.spin-host/kv-stats`).
pub async fn kv_read_bytes(api: &Api, component: &str) -> Result<u64> {
    let stats = api.get("/.spin-host/kv-stats", &[]).await?.json()?;
    Ok(stats["components"][component]["read_bytes"]
        .as_u64()
        .unwrap_or(0))
}

/// Starts each host of [`hosts`] in turn with `vars` (skipping, with a notice, one not
/// installed here), runs `measure` on it with an admin client, and stops it.
pub fn on_each_host(
    vars: &crate::Vars,
    mut measure: impl FnMut(Host, Api) -> Result<()>,
) -> Result<()> {
    for host in hosts() {
        let Some(running) = crate::start(host, vars)? else {
            println!("{}: not installed here, skipped", host.name());
            continue;
        };
        println!("measuring {} ...", running.describe());
        measure(host, Api::new(&running.base, "bench")?)?;
    }
    Ok(())
}

/// The access key the DynamoDB benchmarks sign with (the hosts get it as config).
pub const KEY_ID: &str = "AKIDBENCH";
/// Its secret.
pub const SECRET: &str = "bench/secret";

/// One DynamoDB server a benchmark measures: a host's `/dynamodb`, or dynalite's `/`.
#[derive(Clone)]
pub struct DynamoServer {
    pub name: String,
    pub host: Option<Host>,
    pub api: Api,
    pub path: &'static str,
}

impl DynamoServer {
    pub fn host(host: Host, api: Api) -> Self {
        Self {
            name: host.name().into(),
            host: Some(host),
            api,
            path: "/dynamodb",
        }
    }

    pub fn dynalite(dynalite: &crate::Dynalite) -> Result<Self> {
        Ok(Self {
            name: "dynalite".into(),
            host: None,
            api: Api::new(&dynalite.url, "bench")?,
            path: "/",
        })
    }

    /// One call of `operation`, signed as an SDK signs it (for `/dynamodb`; dynalite
    /// checks that a request is signed, not how).
    pub async fn call(&self, operation: &str, body: &[u8]) -> Result<crate::Reply> {
        let credentials = dynamodb::sigv4::Credentials {
            access_key_id: KEY_ID.to_owned(),
            secret_access_key: SECRET.to_owned(),
        };
        let headers = dynamodb::signed_headers(
            &credentials,
            self.api.base.trim_start_matches("http://"),
            &format!("DynamoDB_20120810.{operation}"),
            body,
            chrono::Utc::now(),
        );
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        self.api
            .send(reqwest::Method::POST, self.path, &refs, Some(body.to_vec()))
            .await
    }

    /// [`DynamoServer::call`], which must answer 200.
    pub async fn ok(&self, operation: &str, body: &serde_json::Value) -> Result<crate::Reply> {
        let reply = self.call(operation, body.to_string().as_bytes()).await?;
        anyhow::ensure!(
            reply.status == 200,
            "{operation} on {}: {} {}",
            self.name,
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
        Ok(reply)
    }

    /// Creates `table` with key `(hash, range)`, each `(name, type)`, and waits for it
    /// to be ACTIVE (dynalite flips the state asynchronously).
    pub async fn create_table(
        &self,
        table: &str,
        hash: (&str, &str),
        range: (&str, &str),
    ) -> Result<()> {
        self.ok(
            "CreateTable",
            &serde_json::json!({"TableName": table,
                "KeySchema": [{"AttributeName": hash.0, "KeyType": "HASH"}, {"AttributeName": range.0, "KeyType": "RANGE"}],
                "AttributeDefinitions": [{"AttributeName": hash.0, "AttributeType": hash.1}, {"AttributeName": range.0, "AttributeType": range.1}],
                "BillingMode": "PAY_PER_REQUEST"}),
        )
        .await?;
        for _ in 0..50 {
            let reply = self
                .ok("DescribeTable", &serde_json::json!({"TableName": table}))
                .await?;
            if reply.json()?["Table"]["TableStatus"] == "ACTIVE" {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("{table} did not become ACTIVE on {}", self.name)
    }
}

/// Runs `measure` on dynalite (started here, stopped after), then on each host of
/// [`hosts`] configured for the DynamoDB benchmarks: their credentials, an admin token,
/// and the `x-storage-round-trips` header on.
pub fn on_dynalite_and_each_host(
    mut measure: impl FnMut(&DynamoServer) -> Result<()>,
) -> Result<()> {
    {
        let dynalite = crate::Dynalite::start()?;
        println!("measuring dynalite at {} ...", dynalite.url);
        measure(&DynamoServer::dynalite(&dynalite)?)?;
    }
    let vars: Vec<(String, String)> = [
        ("admin_token", "bench"),
        ("storage_stats_header", "true"),
        ("dynamodb_access_key_id", KEY_ID),
        ("dynamodb_secret_access_key", SECRET),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    on_each_host(&vars, |host, api| measure(&DynamoServer::host(host, api)))
}
