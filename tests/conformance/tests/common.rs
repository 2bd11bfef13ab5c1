//! Cross-cutting rules of the OpenAPI document every host must follow: health, JSON errors, 404/405,
//! request ids, admin auth, and the storage backend suite on the host's own storage.

use anyhow::{ensure, Context, Result};
use conformance::{Api, Host};
use reqwest::Method;
use std::future::Future;
use std::pin::Pin;

pub type CaseFuture = Pin<Box<dyn Future<Output = Result<()>>>>;
pub type Case = (&'static str, fn(Api, Host) -> CaseFuture);

/// Lists async case functions `fn(Api, Host) -> Result<()>` as named [`Case`]s.
#[macro_export]
macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        vec![$((stringify!($name), (|api, host| Box::pin($name(api, host))) as fn(conformance::Api, conformance::Host) -> $crate::common::CaseFuture)),*]
    };
}

pub fn cases() -> Vec<Case> {
    cases![
        healthz_returns_ok_json,
        unknown_route_returns_404_not_found_json,
        request_id_is_echoed_or_generated,
        storage_suite_passes_on_every_backend_of_the_host,
        storage_suite_returns_401_without_the_admin_token,
        deployed_worker_returns_404_for_the_storage_selftest,
        concurrent_puts_if_absent_from_40_requests_admit_one_per_fresh_partition,
        concurrent_creations_and_increments_from_40_requests_lose_no_update_per_partition,
        concurrent_updates_from_40_requests_lose_no_update_per_partition,
        concurrent_writers_filling_one_partition_lose_nothing,
        concurrent_writers_filling_and_draining_one_partition_keep_exactly_what_stays,
        hostile_requests_get_json_errors_and_never_a_5xx,
        responses_carry_their_length_and_arrive_whole,
        bodies_past_16_mib_get_413_before_they_are_read,
    ]
}

/// The cases that call the storage self-test (`POST /healthz/storage` and its race
/// routes). The Worker that is deployed leaves it out, so on workerd these run on its
/// self-test build (`tests/selftest-worker`); every other host has one build, with it.
pub fn needs_selftest(suite: &str, name: &str) -> bool {
    suite == "common" && (name.starts_with("storage_suite_") || name.starts_with("concurrent_"))
}

/// The cases about what the deployed Worker leaves out, run on workerd only.
pub fn deployed_worker_only(suite: &str, name: &str) -> bool {
    suite == "common" && name == "deployed_worker_returns_404_for_the_storage_selftest"
}

/// Checks status, JSON content type and `error.code` of an error reply in the OpenAPI document's shape.
pub fn expect_error(reply: &conformance::Reply, status: u16, code: &str) -> Result<()> {
    ensure!(
        reply.status == status && reply.error_code().as_deref() == Some(code),
        "expected {status} {code}, got {} {:?}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    ensure!(
        reply.header("content-type") == Some("application/json"),
        "error without JSON content type: {:?}",
        reply.header("content-type")
    );
    let message = reply.json()?;
    let message = message.pointer("/error/message").and_then(|m| m.as_str());
    ensure!(
        message.is_some_and(|m| !m.is_empty()),
        "error without a message"
    );
    Ok(())
}

async fn healthz_returns_ok_json(api: Api, _: Host) -> Result<()> {
    let reply = api.get("/healthz", &[]).await?;
    ensure!(reply.status == 200, "status {}", reply.status);
    ensure!(
        reply.json()? == serde_json::json!({"status": "ok"}),
        "body {:?}",
        reply.body
    );
    ensure!(reply.header("content-type") == Some("application/json"));
    Ok(())
}

async fn unknown_route_returns_404_not_found_json(api: Api, _: Host) -> Result<()> {
    for path in [
        "/",
        "/nope",
        "/api/unknown/thing",
        "/healthzz",
        "/hello",
        "/hello/a/b",
    ] {
        let reply = api.get(path, &[]).await?;
        expect_error(&reply, 404, "not_found").map_err(|e| e.context(path))?;
    }
    let reply = api.send(Method::DELETE, "/nope", &[], None).await?;
    expect_error(&reply, 404, "not_found")
}

async fn request_id_is_echoed_or_generated(api: Api, _: Host) -> Result<()> {
    let given = "conformance-req-42";
    for path in ["/healthz", "/nope", "/hello/requestid"] {
        let reply = api.get(path, &[("x-request-id", given)]).await?;
        ensure!(
            reply.header("x-request-id") == Some(given),
            "{path}: not echoed: {:?}",
            reply.header("x-request-id")
        );
    }
    let one = api.get("/healthz", &[]).await?;
    let two = api.get("/nope", &[]).await?;
    let (one, two) = (one.header("x-request-id"), two.header("x-request-id"));
    ensure!(
        one.is_some_and(|id| id.len() >= 16) && two.is_some_and(|id| id.len() >= 16) && one != two,
        "generated ids {one:?} {two:?}"
    );
    Ok(())
}

async fn storage_suite_passes_on_every_backend_of_the_host(api: Api, host: Host) -> Result<()> {
    // On Spin one request per part, and the default backend's concurrency cases in
    // one of their own: an instance may open 256 compare-and-swaps.
    let parts: &[(&str, &str)] = match host {
        Host::SpinHost | Host::Spin => &[
            ("default", "plain"),
            ("default", "races"),
            ("whole", "all"),
            ("move", "all"),
        ],
        _ => &[("", "")],
    };
    let mut report = serde_json::json!({"backends": []});
    for (part, cases) in parts {
        let body = (!part.is_empty())
            .then(|| serde_json::json!({"part": part, "cases": cases}).to_string());
        let reply = api
            .admin_post("/healthz/storage", body.map(String::into_bytes))
            .await?;
        let one = reply.json()?;
        ensure!(
            reply.status == 200 && one["passed"] == serde_json::json!(true),
            "storage suite {part} on {}: {one:#}",
            host.name()
        );
        if let (Some(all), Some(these)) = (
            report["backends"].as_array_mut(),
            one["backends"].as_array(),
        ) {
            // One backend's parts together, as one request would have reported them.
            for backend in these {
                let same = all.iter_mut().find(|b| b["backend"] == backend["backend"]);
                match (same, backend["cases"].as_array()) {
                    (Some(earlier), Some(cases)) => {
                        if let Some(list) = earlier["cases"].as_array_mut() {
                            list.extend(cases.iter().cloned());
                        }
                    }
                    _ => all.push(backend.clone()),
                }
            }
        }
    }
    let backends = report["backends"].as_array().map_or(0, Vec::len);
    let cases: usize = report["backends"]
        .as_array()
        .map(|b| {
            b.iter()
                .map(|b| b["cases"].as_array().map_or(0, Vec::len))
                .sum()
        })
        .unwrap_or(0);
    ensure!(
        backends >= 1 && cases >= 12 * backends,
        "too few cases ran: {report}"
    );
    // A backend that stores items one by one has no partition wall, and proves it.
    let item_backends: Vec<&serde_json::Value> = report["backends"]
        .as_array()
        .map(|b| {
            b.iter()
                .filter(|b| b["whole_partitions"] == false)
                .collect()
        })
        .unwrap_or_default();
    for backend in &item_backends {
        let held = backend["cases"].as_array().is_some_and(|cases| {
            cases.iter().any(|c| {
                c["name"] == "a_partition_holds_megabytes_and_reads_back_in_order"
                    && c["failure"].is_null()
            })
        });
        ensure!(held, "no megabytes partition case: {backend}");
    }
    if host == Host::Workerd {
        ensure!(
            item_backends
                .iter()
                .any(|b| b["backend"] == "durable_object"),
            "Durable Objects keep whole partitions: {report}"
        );
        let moved = report["backends"].as_array().is_some_and(|b| {
            b.iter().any(|b| {
                b["backend"] == "durable_object_whole -> durable_object" && b["passed"] == true
            })
        });
        ensure!(moved, "no move from whole partitions into rows: {report}");
    }
    Ok(())
}

/// The Worker that `wrangler deploy` uploads has no storage self-test: even the admin
/// gets the 404 of an unknown route from each of its routes.
async fn deployed_worker_returns_404_for_the_storage_selftest(api: Api, _: Host) -> Result<()> {
    let race = serde_json::json!({"table": "t", "race": "put_if_absent", "writer": 0});
    for (path, body) in [
        ("/healthz/storage", None),
        ("/healthz/storage/race", Some(serde_json::to_vec(&race)?)),
        ("/healthz/storage/race/check", Some(b"{}".to_vec())),
    ] {
        let reply = api.admin_post(path, body).await?;
        expect_error(&reply, 404, "not_found").with_context(|| format!("POST {path}"))?;
    }
    Ok(())
}

async fn storage_suite_returns_401_without_the_admin_token(api: Api, _: Host) -> Result<()> {
    let none = api
        .send(Method::POST, "/healthz/storage", &[], None)
        .await?;
    expect_error(&none, 401, "unauthorized")?;
    let wrong = api
        .send(
            Method::POST,
            "/healthz/storage",
            &[("authorization", "Bearer nope")],
            None,
        )
        .await?;
    expect_error(&wrong, 401, "unauthorized")?;
    let get = api.get("/healthz/storage", &[]).await?;
    expect_error(&get, 405, "method_not_allowed")?;
    ensure!(
        get.header("allow") == Some("POST"),
        "allow {:?}",
        get.header("allow")
    );
    Ok(())
}

/// A table suffix no earlier race of this process used, even across repeats.
fn fresh_race_table() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "t{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Requests in flight at once through `wrangler dev`. Its dev proxy (wrangler 4.86's
/// ProxyWorker) forwards each request to the Worker over loopback HTTP; with both cores
/// saturated, a burst of 40 loses some of those connections before the Worker sees the
/// request (workerd logs `disconnected: stream disconnected prematurely`; the Worker
/// logs nothing for them), and the ProxyWorker answers any such network error on a
/// non-GET to a path other than `/` with 503 "Your worker restarted mid-request" (its
/// check for a replaced worker compares the request's URL, path included, with the
/// worker's base URL, so it always concludes "restarted"). Measured 2026-12-07: at 40
/// in flight 200 of 200 races passed with one core busy, 99 of 100 with both saturated
/// (the failing burst: 33 requests logged by the Worker, 7 disconnected). A
/// local-tooling limit, not the Worker's (production has no such chain); 10 at a time
/// still race on one key: each write is a read and a conditional put, so ten
/// interleave.
pub const WORKERD_IN_FLIGHT: usize = 10;

/// [`WORKERD_IN_FLIGHT`], or `WORKERD_IN_FLIGHT` from the environment (to study the
/// proxy's limit: `WORKERD_IN_FLIGHT=40`).
pub fn workerd_in_flight() -> usize {
    conformance::bench::env_number("WORKERD_IN_FLIGHT", WORKERD_IN_FLIGHT)
}

/// Races `writers` simultaneous requests (on Spin: component instances) through the
/// health component's race routes on one fresh key, then asks the host whether the
/// table held. The writers wait at one barrier, then all send (on workerd,
/// [`WORKERD_IN_FLIGHT`] at a time).
async fn race(api: &Api, host: Host, race: &str, writers: u32) -> Result<()> {
    let table = fresh_race_table();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(writers as usize));
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(if host == Host::Workerd {
        workerd_in_flight()
    } else {
        writers as usize
    }));
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let (api, barrier) = (api.clone(), barrier.clone());
        let in_flight = in_flight.clone();
        let body = serde_json::json!({"table": table, "race": race, "writer": writer});
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let _slot = in_flight.acquire().await?;
            let reply = api
                .admin_post("/healthz/storage/race", Some(serde_json::to_vec(&body)?))
                .await?;
            ensure!(
                reply.status == 200,
                "writer {writer}: {} {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            );
            Ok::<serde_json::Value, anyhow::Error>(reply.json()?["won"].clone())
        }));
    }
    let mut won = Vec::new();
    for task in tasks {
        won.push(task.await??);
    }
    let body = serde_json::json!({"table": table, "race": race, "won": won});
    let check = api
        .admin_post(
            "/healthz/storage/race/check",
            Some(serde_json::to_vec(&body)?),
        )
        .await?;
    ensure!(
        check.status == 200,
        "{race} with {writers} writers: {} {}",
        check.status,
        String::from_utf8_lossy(&check.body)
    );
    Ok(())
}

async fn concurrent_puts_if_absent_from_40_requests_admit_one_per_fresh_partition(
    api: Api,
    host: Host,
) -> Result<()> {
    race(&api, host, "put_if_absent", 40).await
}

async fn concurrent_creations_and_increments_from_40_requests_lose_no_update_per_partition(
    api: Api,
    host: Host,
) -> Result<()> {
    race(&api, host, "create_or_increment", 40).await
}

async fn concurrent_updates_from_40_requests_lose_no_update_per_partition(
    api: Api,
    host: Host,
) -> Result<()> {
    race(&api, host, "update", 40).await
}

/// 40 requests put 4 items of 8 KB each into one partition at once: pages split (on
/// Spin) while others write into them, and every item is there, in order.
async fn concurrent_writers_filling_one_partition_lose_nothing(api: Api, host: Host) -> Result<()> {
    race(&api, host, "fill", 40).await
}

/// 40 requests put 4 items of 8 KB each into one partition, then delete them (every
/// fourth keeps one): pages split, empty and merge (on Spin) while others write into
/// them, every delete finds its item, and exactly the items kept are there, in order.
async fn concurrent_writers_filling_and_draining_one_partition_keep_exactly_what_stays(
    api: Api,
    host: Host,
) -> Result<()> {
    race(&api, host, "drain", 40).await
}

/// A small deterministic generator (xorshift64*), so a failure names a reproducible
/// request.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Path segments and query values no route expects; `~` marks one to percent-encode.
const JUNK: &[&str] = &[
    "",
    "0",
    "-1",
    "1e309",
    "18446744073709551616",
    "%FF%FE",
    "%",
    "%zz",
    "%00",
    "%2F",
    "%2e%2e",
    "null",
    "~[]",
    "~💥",
    "~a b",
    "~Ω≈ç√",
    "0x10",
    "NaN",
    "~\"'<>",
    "9999",
];

/// Bodies no route accepts: broken, mistyped or hostile JSON, and raw bytes.
pub fn junk_body(rng: &mut Rng) -> Option<Vec<u8>> {
    let fixed: &[&str] = &[
        "{",
        "[]",
        "null",
        "123",
        "\"text\"",
        "{\"dateOfBirth\": 5}",
        "{\"dateOfBirth\": \"2001-02-29\"}",
        "{\"info\": []}",
        "{\"info\": null}",
        "{\"video_name\": \"\\ud800\"}",
        "{\"year\": 1e400, \"title\": \"x\"}",
        "[1, \"x\", {\"year\": -5, \"title\": \"\"}]",
        "[{\"year\": 9901}]",
        "{\"a\": 1, \"a\": 2",
        "\u{feff}{}",
        "{\"size\": 18446744073709551616}",
    ];
    match rng.below(5) {
        0 => None,
        1 => Some((0..rng.below(2000)).map(|_| rng.next() as u8).collect()),
        2 => {
            let depth = 1 + rng.below(6000);
            Some(format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes())
        }
        _ => Some(rng.pick(fixed).as_bytes().to_vec()),
    }
}

/// 1,200 malformed requests to every service, with odd methods, paths, queries,
/// headers and bodies: the OpenAPI document says nothing a client sends may crash a component, and
/// every error is a JSON body. A wasm panic shows up as a 5xx, so any 5xx fails; so
/// does an error without the JSON body, and a host that stops answering afterwards.
/// Admin calls reach only movie years no other case uses (9900+), and never the
/// scraper, so nothing else in the suite is disturbed.
async fn hostile_requests_get_json_errors_and_never_a_5xx(api: Api, _: Host) -> Result<()> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let methods = [
        Method::GET,
        Method::PUT,
        Method::POST,
        Method::DELETE,
        Method::PATCH,
    ];
    let auth = format!("Bearer {}", api.admin_token);
    let long_key = "0".repeat(286);
    // Data written before the run, which nothing in it may change.
    let guard = serde_json::json!({"dateOfBirth": "1984-02-29"});
    let put = api.put_json("/hello/hostileguard", &guard, &[]).await?;
    ensure!(put.status == 204, "guard birthday: {}", put.status);
    // Read at one fixed instant, so that the greeting cannot change with the day.
    let at = [("x-test-now", "2026-06-01")];
    let before = api.get("/hello/hostileguard", &at).await?;
    for i in 0..1200 {
        let mut junk = || {
            let j = rng.pick(JUNK);
            match j.strip_prefix('~') {
                Some(raw) => conformance::encode_segment(raw),
                None => j.to_owned(),
            }
        };
        let (a, b, c) = (junk(), junk(), junk());
        let year = 9900 + rng.below(99);
        let (path, admin) = match rng.below(13) {
            0 => (format!("/hello/{a}"), false),
            1 => (format!("/hello/fuzz{}", "q".repeat(rng.below(70))), false),
            2 => (format!("/api/shows?page={a}&size={b}"), false),
            3 => (format!("/api/shows/{a}"), false),
            4 => ("/api/v1/streams".to_owned(), false),
            5 => ("/api/v1/stream".to_owned(), false),
            6 => (format!("/api/v1/streams/{a}"), false),
            7 => (format!("/api/v1/streams/{a}/heartbeat"), false),
            8 => (
                format!("/api/movies?year={a}&limit={b}&cursor={c}&genre={a}&min_rating={b}"),
                false,
            ),
            9 => (format!("/api/movies/{year}/{a}x"), true),
            10 => ("/api/movies/import".to_owned(), true),
            11 => (format!("/docs/{a}"), false),
            _ => (format!("/{a}/{b}"), false),
        };
        let method = methods[rng.below(methods.len())].clone();
        let forwarded = format!("198.18.{}.{}", rng.below(256), rng.below(256));
        let mut headers: Vec<(&str, &str)> = vec![
            (
                "content-type",
                rng.pick(&["application/json", "text/plain", "x/garbage;;"]),
            ),
            (
                "x-forwarded-for",
                match rng.below(4) {
                    0 => rng.pick(&["", ",,,", "not an address", " 1.2.3.4 , 5.6.7.8"]),
                    _ => &forwarded,
                },
            ),
        ];
        if rng.below(3) == 0 {
            headers.push((
                "idempotency-key",
                rng.pick(&["", "k", "~!@#$%^&*()", &long_key]),
            ));
        }
        if rng.below(4) == 0 {
            headers.push(("x-test-now", rng.pick(&["garbage", "2024-02-30", "-1", ""])));
        }
        if rng.below(6) == 0 {
            headers.push(("x-request-id", rng.pick(&["", "r", "~{}[]"])));
        }
        if admin {
            headers.push(("authorization", &auth));
        }
        let body = junk_body(&mut rng);
        let what = format!("request {i}: {method} {path} {headers:?}");
        let reply = api
            .send(method, &path, &headers, body)
            .await
            .map_err(|e| e.context(what.clone()))?;
        ensure!(
            reply.status < 500,
            "{what}: status {} {:?}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
        ensure!(
            reply.header("x-request-id").is_some(),
            "{what}: no x-request-id"
        );
        if reply.status >= 400 {
            ensure!(
                reply.header("content-type") == Some("application/json")
                    && reply.error_code().is_some_and(|c| !c.is_empty()),
                "{what}: error {} without an error body in the OpenAPI document's shape: {:?}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            );
        }
    }
    let reply = api.get("/healthz", &[]).await?;
    ensure!(
        reply.status == 200,
        "after the hostile requests: {}",
        reply.status
    );
    let after = api.get("/hello/hostileguard", &at).await?;
    ensure!(
        after.status == 200 && after.body == before.body,
        "the guard birthday changed: {:?} then {:?}",
        String::from_utf8_lossy(&before.body),
        String::from_utf8_lossy(&after.body)
    );
    Ok(())
}

/// Every answer with a body says how long it is (`content-length`, not chunked
/// framing), from a 15-byte `/healthz` to the 1.7 MB `/docs` bundle, which is larger
/// than what a Spin host buffers at once and so leaves in parts: what a client reads
/// is all of it. (A Spin response whose head and body left in two writes stalled ~40 ms
/// on a kept-alive connection; `bench_keepalive` measures that.)
async fn responses_carry_their_length_and_arrive_whole(api: Api, _: Host) -> Result<()> {
    let put = api
        .put_json(
            "/hello/lengthcheck",
            &serde_json::json!({"dateOfBirth": "1990-05-17"}),
            &[],
        )
        .await?;
    ensure!(put.status == 204, "PUT: {}", put.status);
    let bundle = std::fs::read(
        conformance::root().join("node_modules/swagger-ui-dist/swagger-ui-bundle.js"),
    )?;
    for path in [
        "/healthz",
        "/hello/lengthcheck",
        "/nope",
        "/docs/swagger-ui-bundle.js",
    ] {
        let reply = api.get(path, &[]).await?;
        ensure!(
            reply.header("transfer-encoding").is_none(),
            "{path}: transfer-encoding {:?}",
            reply.header("transfer-encoding")
        );
        ensure!(
            reply.header("content-length") == Some(reply.body.len().to_string().as_str())
                && !reply.body.is_empty(),
            "{path}: content-length {:?} for {} bytes",
            reply.header("content-length"),
            reply.body.len()
        );
        if path.starts_with("/docs/") {
            ensure!(
                reply.body.as_ref() == bundle.as_slice(),
                "{path}: not the bundle"
            );
        }
    }
    Ok(())
}

/// A response read off a socket: status, headers (lower-cased names), body.
type RawResponse = (u16, Vec<(String, String)>, Vec<u8>);

/// Reads one HTTP/1.1 response off `stream`: status, headers (lower-cased names) and
/// body (by `content-length`).
fn read_raw_response(stream: &mut std::io::BufReader<std::net::TcpStream>) -> Result<RawResponse> {
    use std::io::{BufRead, Read};
    let mut line = String::new();
    stream.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("status line {line:?}"))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        stream.read_line(&mut line)?;
        let Some((name, value)) = line.trim_end().split_once(':') else {
            break;
        };
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .context("no content-length")?;
    let mut body = vec![0; length];
    stream.read_exact(&mut body)?;
    Ok((status, headers, body))
}

/// Sends `PUT /hello/toolarge` with `framing` (its `content-length` or
/// `transfer-encoding` header) and `chunks` of body (each in chunked framing when
/// `chunked`), reading the answer meanwhile: a host may answer before the rest is sent
/// and stop reading, so a failed send is expected.
fn send_oversized(
    authority: &str,
    target: &str,
    framing: &str,
    chunks: usize,
    chunked: bool,
) -> Result<RawResponse> {
    use std::io::Write;
    let stream = std::net::TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(60)))?;
    stream.set_write_timeout(Some(std::time::Duration::from_secs(60)))?;
    let mut writer = stream.try_clone()?;
    let head = format!(
        "{target} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\n{framing}\r\n\r\n"
    );
    let sender = std::thread::spawn(move || -> std::io::Result<()> {
        writer.write_all(head.as_bytes())?;
        let chunk = vec![b' '; 1024 * 1024];
        for _ in 0..chunks {
            if chunked {
                write!(writer, "{:x}\r\n", chunk.len())?;
            }
            writer.write_all(&chunk)?;
            if chunked {
                writer.write_all(b"\r\n")?;
            }
        }
        if chunked {
            writer.write_all(b"0\r\n\r\n")?;
        }
        Ok(())
    });
    let answer = read_raw_response(&mut std::io::BufReader::new(stream));
    let _ = sender.join();
    answer
}

/// The OpenAPI document: a body over a route's limit is 413. No route takes more than 16 MiB, so no
/// host reads more of any body: one that declares more is refused on its declaration,
/// one streamed without a length is read no further than 16 MiB, and a client cannot
/// make a host buffer gigabytes (a 1.5 GiB body used to crash the component). Each
/// answer is the OpenAPI document's JSON 413 with a request id, and the host serves on. Where the
/// host sees the request as it arrives, the answer to a body declared as 1 GiB comes
/// without any of it sent; `wrangler dev`'s local proxy instead holds the Worker's
/// 413 until the client has sent the whole body (measured: the Worker logs its 413 at
/// once, the proxy answers 503 when the client gives up), so there that case is left
/// out.
async fn bodies_past_16_mib_get_413_before_they_are_read(api: Api, host: Host) -> Result<()> {
    let authority = api.base.trim_start_matches("http://").to_owned();
    let mut cases = vec![
        (
            "declared and sent, 17 MiB",
            "content-length: 17825792",
            17,
            false,
        ),
        ("streamed, 17 MiB", "transfer-encoding: chunked", 17, true),
    ];
    if host != Host::Workerd {
        cases.push((
            "declared as 1 GiB, none sent",
            "content-length: 1073741824",
            0,
            false,
        ));
    }
    for (what, framing, chunks, chunked) in cases {
        let authority = authority.clone();
        let (status, headers, body) = tokio::task::spawn_blocking(move || {
            send_oversized(&authority, "PUT /hello/toolarge", framing, chunks, chunked)
        })
        .await?
        .with_context(|| what.to_owned())?;
        let json: serde_json::Value = serde_json::from_slice(&body)
            .with_context(|| format!("{what}: {:?}", String::from_utf8_lossy(&body)))?;
        ensure!(
            status == 413 && json["error"]["code"] == "payload_too_large",
            "{what}: {status} {json}"
        );
        ensure!(
            headers.iter().any(|(n, _)| n == "x-request-id"),
            "{what}: no x-request-id"
        );
    }
    // The DynamoDB endpoint refuses as DynamoDB's front end does (dynalite's model of
    // it): 413, no body; its request id still points at the log line.
    let (status, headers, body) = tokio::task::spawn_blocking(move || {
        send_oversized(
            &authority,
            "POST /dynamodb",
            "content-length: 17825792",
            17,
            false,
        )
    })
    .await??;
    ensure!(
        status == 413 && body.is_empty(),
        "/dynamodb: {status} {:?}",
        String::from_utf8_lossy(&body)
    );
    ensure!(
        headers.iter().any(|(n, _)| n == "x-request-id"),
        "/dynamodb: no x-request-id"
    );
    let after = api.get("/healthz", &[]).await?;
    ensure!(after.status == 200, "after: {}", after.status);
    Ok(())
}
