//! The request log line every host writes (docs/OPERATIONS.md, "Observability"): one JSON line per
//! request with time, level, request id, service, method, route template, status,
//! latency and error code — and nothing a client sent that could be private: no body,
//! no header value, no path.

use anyhow::{ensure, Context, Result};
use conformance::{Api, Host, Logs};
use reqwest::Method;
use serde_json::Value;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The running host's log lines; the harness sets them before a host's cases run.
pub static HOST_LOGS: Mutex<Option<Logs>> = Mutex::new(None);

pub fn cases() -> Vec<crate::common::Case> {
    crate::cases![
        request_log_lines_carry_route_status_and_error_but_no_client_data,
        scraper_tick_writes_one_log_line_with_its_work,
    ]
}

pub fn host_logs() -> Result<Logs> {
    HOST_LOGS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .context("the harness gave no host logs")
}

/// Our JSON lines of `kind` among `lines`, parsed.
pub fn lines_of_kind(lines: &[String], kind: &str) -> Vec<Value> {
    let needle = format!("\"kind\":\"{kind}\"");
    lines
        .iter()
        .filter(|l| l.contains(&needle))
        .filter_map(|l| serde_json::from_str(&l[l.find('{')?..]).ok())
        .collect()
}

/// A scheduled tick (Spin's cron component, the Worker's scheduled handler, the admin
/// endpoint natively) writes one `scraper_tick` line saying what it did.
async fn scraper_tick_writes_one_log_line_with_its_work(api: Api, host: Host) -> Result<()> {
    let logs = host_logs()?;
    let before = lines_of_kind(&logs.lines(), "scraper_tick").len();
    conformance::fire_cron(&api, host).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let ticks = loop {
        let ticks = lines_of_kind(&logs.lines(), "scraper_tick");
        if ticks.len() > before || Instant::now() > deadline {
            break ticks;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // A host that chains ticks (Workers) may have run more than the one woken.
    ensure!(
        ticks.len() == before + 1 || (host.chains_scraper_ticks() && ticks.len() > before),
        "{}: {} tick lines after one tick, {before} before",
        host.name(),
        ticks.len()
    );
    let line = &ticks[before];
    for field in ["fetches", "shows_written", "duration_ms"] {
        ensure!(line[field].is_number(), "{field}: {line}");
    }
    ensure!(
        line["level"].is_string() && line["time"].is_string(),
        "{line}"
    );
    ensure!(line["backed_off"].is_boolean(), "backed_off: {line}");
    for field in ["shows_stored", "phase", "backoff_until", "error"] {
        ensure!(line.get(field).is_some(), "{field} missing: {line}");
    }
    // A tick that ran (no backoff) fetched within its budget and says where it is.
    if line["backed_off"] == false && line["error"].is_null() {
        ensure!(
            line["fetches"].as_u64().is_some_and(|n| n > 0),
            "no fetches: {line}"
        );
        ensure!(line["phase"].is_string(), "phase: {line}");
    }
    Ok(())
}

/// Letters only (a valid username), different on every call.
fn fresh_letters() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut n =
        nanos ^ (u64::from(std::process::id()) << 40) ^ NEXT.fetch_add(1, Ordering::Relaxed);
    (0..12)
        .map(|_| {
            let c = char::from(b'a' + (n % 26) as u8);
            n /= 26;
            c
        })
        .collect()
}

/// One request of the case and what its log line must say.
struct Probe<'a> {
    method: Method,
    path: &'a str,
    headers: &'a [(&'a str, &'a str)],
    body: Option<&'a str>,
    status: u16,
    service: &'a str,
    route: Option<&'a str>,
    error: Option<&'a str>,
}

/// Our JSON line for `request_id` among `lines`, parsed (hosts may prefix a line).
fn line_of(lines: &[String], request_id: &str) -> Option<Value> {
    let needle = format!("\"request_id\":\"{request_id}\"");
    lines.iter().find(|l| l.contains(&needle)).and_then(|l| {
        let start = l.find('{')?;
        serde_json::from_str(&l[start..]).ok()
    })
}

async fn request_log_lines_carry_route_status_and_error_but_no_client_data(
    api: Api,
    host: Host,
) -> Result<()> {
    let logs = host_logs()?;
    let tag = fresh_letters();
    let user = format!("Logcheck{tag}");
    let body_secret = format!("bodysecret{tag}");
    let bad_token = format!("wrongtoken{tag}");
    let id = |n: u32| format!("logcheck-{tag}-{n}");
    let auth = format!("Bearer {bad_token}");
    let body = format!(r#"{{"dateOfBirth":"1990-05-17","note":"{body_secret}"}}"#);
    let hello = format!("/hello/{user}");
    let unknown = format!("/nope{tag}");
    let json_body = [("content-type", "application/json")];
    let bad_auth = [("authorization", auth.as_str())];
    let probes = [
        Probe {
            method: Method::GET,
            path: &hello,
            headers: &[],
            body: None,
            status: 404,
            service: "hello",
            route: Some("/hello/{username}"),
            error: Some("user_not_found"),
        },
        Probe {
            method: Method::PUT,
            path: &hello,
            headers: &json_body,
            body: Some(&body),
            status: 204,
            service: "hello",
            route: Some("/hello/{username}"),
            error: None,
        },
        Probe {
            method: Method::POST,
            path: "/api/shows/scrape",
            headers: &bad_auth,
            body: None,
            status: 401,
            service: "shows",
            route: Some("/api/shows/scrape"),
            error: Some("unauthorized"),
        },
        Probe {
            method: Method::GET,
            path: &unknown,
            headers: &[],
            body: None,
            status: 404,
            service: "health",
            route: None,
            error: Some("not_found"),
        },
        Probe {
            method: Method::GET,
            path: "/healthz",
            headers: &[],
            body: None,
            status: 200,
            service: "health",
            route: Some("/healthz"),
            error: None,
        },
    ];
    for (n, probe) in (1..).zip(&probes) {
        let rid = id(n);
        let mut headers = probe.headers.to_vec();
        headers.push(("x-request-id", rid.as_str()));
        let body = probe.body.map(|b| b.as_bytes().to_vec());
        let reply = api
            .send(probe.method.clone(), probe.path, &headers, body)
            .await?;
        ensure!(
            reply.status == probe.status,
            "{} {}: {}",
            probe.method,
            probe.path,
            reply.status
        );
    }
    // Hosts write logs asynchronously (a pipe, wrangler's console relay): wait for them.
    let deadline = Instant::now() + Duration::from_secs(30);
    let lines = loop {
        let lines = logs.lines();
        if (1..=5).all(|n| line_of(&lines, &id(n)).is_some()) || Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for (n, probe) in (1..).zip(&probes) {
        let line = line_of(&lines, &id(n))
            .with_context(|| format!("{}: no log line for request {}", host.name(), id(n)))?;
        ensure!(line["kind"] == "request", "kind: {line}");
        ensure!(line["status"] == probe.status, "status: {line}");
        ensure!(line["service"] == probe.service, "service: {line}");
        ensure!(line["method"] == probe.method.as_str(), "method: {line}");
        ensure!(
            line["route"] == serde_json::json!(probe.route),
            "route: {line}"
        );
        ensure!(
            line["error"] == serde_json::json!(probe.error),
            "error: {line}"
        );
        let level = match probe.status {
            500.. => "error",
            400..=499 => "warn",
            _ => "info",
        };
        ensure!(line["level"] == level, "level: {line}");
        ensure!(
            line["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
            "latency_ms: {line}"
        );
        let time = line["time"].as_str().unwrap_or_default();
        ensure!(
            chrono::DateTime::parse_from_rfc3339(time).is_ok() && time.ends_with('Z'),
            "time: {line}"
        );
    }
    // Nothing private anywhere the host logged; and our own lines name routes, never
    // paths (a path can carry a user's name).
    for line in &lines {
        ensure!(
            !line.contains(&body_secret) && !line.contains(&bad_token),
            "a log line holds what the client sent: {line}"
        );
        if line.contains(&format!("logcheck-{tag}-")) {
            ensure!(!line.contains(&user), "a log line names the path: {line}");
        }
    }
    Ok(())
}
