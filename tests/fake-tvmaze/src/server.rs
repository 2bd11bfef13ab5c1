//! The HTTP side: TvMaze's endpoints over the catalogue, behind the rate
//! limiter and the fault injector, with every request logged.

use crate::data::{
    cast_json, mix, show_json, show_with_cast_json, unit, unix_now, updates_json, Catalog,
};
use crate::{Cause, Faults, LoggedRequest};
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

pub(crate) type Body = Full<Bytes>;

/// A poisoned lock only means a test closure panicked; the data is still usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the server and the test-facing handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) base_url: String,
    pub(crate) seed: u64,
    pub(crate) catalog: Mutex<Catalog>,
    pub(crate) control: Mutex<Control>,
}

#[derive(Debug)]
pub(crate) struct Control {
    pub(crate) faults: Faults,
    /// Requests received so far; the next request's number.
    seq: u64,
    pub(crate) log: Vec<LoggedRequest>,
    /// Per client address: when its admitted requests of the current window arrived.
    windows: HashMap<IpAddr, VecDeque<Instant>>,
}

impl Control {
    pub(crate) fn new(faults: Faults) -> Self {
        Control {
            faults,
            seq: 0,
            log: Vec::new(),
            windows: HashMap::new(),
        }
    }
}

enum Verdict {
    Storm,
    /// Over the rate limit; the window frees a slot after this long.
    Limited(Duration),
    Fault(StatusCode),
    Serve,
}

const SALT_FAULT: u64 = 0xFA01;
const SALT_STATUS: u64 = 0x5747;
const SALT_SLOW: u64 = 0x510E;

/// A hash of (seed, request number, purpose): the same run of requests gets
/// the same faults every time.
fn roll(seed: u64, seq: u64, salt: u64) -> u64 {
    mix(mix(seed ^ salt).wrapping_add(seq))
}

impl Shared {
    /// Numbers the request and decides its fate, in this order: a pending
    /// 429 storm, the rate limit (only admitted requests count), an injected
    /// 5xx. Slowness is decided independently and applies to any answer.
    fn admit(&self, client: IpAddr) -> (u64, Instant, Verdict, Option<Duration>) {
        let mut control = lock(&self.control);
        let now = Instant::now();
        let seq = control.seq;
        control.seq += 1;
        let f = control.faults.clone();
        let slow = (unit(roll(self.seed, seq, SALT_SLOW)) < f.slow_rate).then_some(f.slow_delay);
        if control.faults.storm_429 > 0 {
            control.faults.storm_429 -= 1;
            return (seq, now, Verdict::Storm, slow);
        }
        if f.rate_limit_calls > 0 {
            let window = control.windows.entry(client).or_default();
            while window
                .front()
                .is_some_and(|t| now.duration_since(*t) >= f.rate_limit_window)
            {
                window.pop_front();
            }
            if window.len() >= f.rate_limit_calls as usize {
                let wait = window.front().map_or(Duration::ZERO, |first| {
                    f.rate_limit_window
                        .saturating_sub(now.duration_since(*first))
                });
                return (seq, now, Verdict::Limited(wait), slow);
            }
            window.push_back(now);
        }
        if unit(roll(self.seed, seq, SALT_FAULT)) < f.fault_rate {
            let status = match roll(self.seed, seq, SALT_STATUS) % 3 {
                0 => StatusCode::INTERNAL_SERVER_ERROR,
                1 => StatusCode::BAD_GATEWAY,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            return (seq, now, Verdict::Fault(status), slow);
        }
        (seq, now, Verdict::Serve, slow)
    }

    async fn handle(&self, req: Request<Incoming>, client: SocketAddr) -> Response<Body> {
        let (seq, at, verdict, slow) = self.admit(client.ip());
        let (mut response, cause) = match verdict {
            Verdict::Storm => (too_many_requests(None), Cause::Storm),
            Verdict::Limited(wait) => (too_many_requests(Some(wait)), Cause::RateLimited),
            Verdict::Fault(status) => (fault(status), Cause::Fault),
            Verdict::Serve => (self.route(req.method(), req.uri()), Cause::Served),
        };
        response
            .headers_mut()
            .insert("x-fake-tvmaze-seq", HeaderValue::from(seq));
        lock(&self.control).log.push(LoggedRequest {
            seq,
            method: req.method().to_string(),
            path: req
                .uri()
                .path_and_query()
                .map_or_else(|| req.uri().path().to_string(), |pq| pq.to_string()),
            status: response.status().as_u16(),
            cause,
            slow: slow.is_some(),
            at,
        });
        if let Some(delay) = slow {
            tokio::time::sleep(delay).await;
        }
        response
    }

    fn route(&self, method: &Method, uri: &Uri) -> Response<Body> {
        if method != Method::GET {
            return error(StatusCode::METHOD_NOT_ALLOWED, "");
        }
        let query = parse_query(uri.query().unwrap_or(""));
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let api = self.base_url.as_str();
        let catalog = lock(&self.catalog);
        let segments: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
        match segments.as_slice() {
            ["shows"] => {
                let page = match param("page").map(str::parse::<u64>) {
                    None => 0,
                    Some(Ok(page)) => page,
                    Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "Invalid page"),
                };
                match catalog.page(page) {
                    Some(shows) => json(Value::Array(
                        shows.into_iter().map(|s| show_json(s, api)).collect(),
                    )),
                    None => not_found(),
                }
            }
            ["shows", id] => {
                let embed_cast = query
                    .iter()
                    .any(|(k, v)| (k == "embed" || k == "embed[]") && v == "cast");
                match id.parse().ok().and_then(|id| catalog.show(id)) {
                    Some(show) if embed_cast => json(show_with_cast_json(show, api)),
                    Some(show) => json(show_json(show, api)),
                    None => not_found(),
                }
            }
            ["shows", id, "cast"] => match id.parse().ok().and_then(|id| catalog.show(id)) {
                Some(show) => json(cast_json(show, api)),
                None => not_found(),
            },
            ["updates", "shows"] => {
                let horizon = match param("since") {
                    None => None,
                    Some("day") => Some(86_400),
                    Some("week") => Some(7 * 86_400),
                    Some("month") => Some(30 * 86_400),
                    Some(_) => return error(StatusCode::BAD_REQUEST, "Invalid since"),
                };
                let since = horizon.map(|h| unix_now() - h);
                json_text(StatusCode::OK, updates_json(&catalog.updates(since)))
            }
            _ => not_found(),
        }
    }
}

/// Accepts connections until `shutdown` fires; each connection is served on
/// its own task (HTTP/1.1, keep-alive).
pub(crate) async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("fake-tvmaze: cannot listen: {e}");
            return;
        }
    };
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, client) = match accepted {
            Ok(conn) => conn,
            Err(_) => {
                // Out of file descriptors, typically: back off, keep serving.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(shared.handle(req, client).await) }
            });
            // A client hanging up mid-request is its business.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// `a=1&b=x%20y` → pairs, percent-decoded (`+` stays `+`).
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn json_text(status: StatusCode, body: String) -> Response<Body> {
    respond(status, "application/json; charset=UTF-8", body)
}

fn json(value: Value) -> Response<Body> {
    json_text(StatusCode::OK, value.to_string())
}

/// TvMaze's error body, e.g. `{"name":"Not Found","message":"","code":0,"status":404}`.
fn error(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({
        "name": status.canonical_reason().unwrap_or("Error"),
        "message": message,
        "code": 0,
        "status": status.as_u16(),
    });
    json_text(status, body.to_string())
}

fn not_found() -> Response<Body> {
    error(StatusCode::NOT_FOUND, "")
}

fn too_many_requests(wait: Option<Duration>) -> Response<Body> {
    let mut response = error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded");
    if let Some(wait) = wait {
        // Whole seconds, rounded up: `Retry-After` has no finer unit.
        let secs = wait.as_millis().div_ceil(1000).max(1);
        let secs = u64::try_from(secs).unwrap_or(u64::MAX);
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// 500 as TvMaze's JSON; 502/503 as the HTML a proxy in front would send.
fn fault(status: StatusCode) -> Response<Body> {
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        return error(status, "An internal server error occurred.");
    }
    let line = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    respond(
        status,
        "text/html",
        format!(
            "<html><head><title>{line}</title></head><body><center><h1>{line}</h1></center>\
             <hr><center>nginx</center></body></html>\n"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode() {
        assert_eq!(
            parse_query("embed%5B%5D=cast&page=2&x"),
            [
                ("embed[]".to_string(), "cast".to_string()),
                ("page".to_string(), "2".to_string()),
                ("x".to_string(), String::new()),
            ]
        );
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("caf%C3%A9"), "café");
    }
}
