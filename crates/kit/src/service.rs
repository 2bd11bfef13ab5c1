//! What every request goes through, whatever the endpoint: request id, body limit,
//! the test clock, admin auth, the headers every response carries, the request's log
//! line, and the one mapping of [`ApiError`] to a response.

use crate::cache::{self, EdgeCaching};
use crate::log::{self, ErrorCode, ErrorDetail};
use crate::{ApiError, Bytes, Ctx, Env, Request, Response};
use chrono::{DateTime, Utc};
use http::{header, HeaderValue, Method, StatusCode};
use serde::Serialize;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

pub const REQUEST_ID: &str = "x-request-id";
/// Test deployments only (config `test_clock_header = "true"`): the instant to serve at,
/// RFC 3339 or a bare `YYYY-MM-DD` (read as 12:00 UTC).
pub const TEST_NOW: &str = "x-test-now";
/// Test deployments only (config `storage_stats_header = "true"`): the request's round
/// trips to storage, on the response.
pub const ROUND_TRIPS: &str = "x-storage-round-trips";

/// The most body a route accepts (the OpenAPI document: 64 KiB, bulk imports 8 MiB).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl BodyLimit {
    pub const DEFAULT: Self = Self(64 * 1024);
    pub const BULK: Self = Self(8 * 1024 * 1024);
    /// The most any route accepts (DynamoDB's 16 MiB): what a host reads of a body at
    /// most before answering 413, whatever length the client declared or streams, so
    /// that no request can make a component buffer more.
    pub const HOST: Self = Self(16 * 1024 * 1024);
}

/// Whether a request's declared `content-length` already exceeds [`BodyLimit::HOST`],
/// so the host can answer 413 without reading any of the body.
pub fn declared_too_large(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > BodyLimit::HOST.0 as u64)
}

/// Marks a request whose body a host stopped reading past [`BodyLimit::HOST`]: it
/// arrives with an empty body and this extension, and [`serve`] answers 413 as for any
/// body over the route's limit (request id, log line and all).
#[derive(Debug, Clone, Copy)]
pub struct BodyTooLarge;

/// Runs `handler` of `service` with the cross-cutting rules of the OpenAPI document applied, turns
/// its error, if any, into the JSON error body, adds the headers every response
/// carries, and writes the request's log line. Hosts call endpoint crates' `handle`,
/// which call this.
pub async fn serve<'e, F, Fut>(
    req: Request,
    env: &'e Env,
    service: &'static str,
    limit: BodyLimit,
    handler: F,
) -> Response
where
    F: FnOnce(Request, Ctx<'e>) -> Fut + 'e,
    Fut: Future<Output = Result<Response, ApiError>> + 'e,
{
    serve_cached(req, env, service, limit, None, handler).await
}

/// [`serve`] with the host's edge cache in front of the service's public reads (see
/// [`crate::cache`]): a `GET` is answered from the cache when the table's current
/// generation has it, and a [`revalidated`] `200` is stored. The service's writes start
/// a new generation of `caching.table` themselves ([`crate::cache::invalidate`]).
pub async fn serve_cached<'e, F, Fut>(
    req: Request,
    env: &'e Env,
    service: &'static str,
    limit: BodyLimit,
    caching: Option<EdgeCaching>,
    handler: F,
) -> Response
where
    F: FnOnce(Request, Ctx<'e>) -> Fut + 'e,
    Fut: Future<Output = Result<Response, ApiError>> + 'e,
{
    let handler: BoxedHandler<'e> = Box::new(move |req, ctx| Box::pin(handler(req, ctx)));
    serve_boxed(req, env, service, limit, caching, handler).await
}

/// A handler behind a box, so that [`serve_cached`]'s body is compiled once however
/// many services a binary links (the Worker links nine; generic, it was a copy of the
/// whole wrapper per service), for one allocation per request.
type BoxedHandler<'e> = Box<
    dyn FnOnce(Request, Ctx<'e>) -> Pin<Box<dyn Future<Output = Result<Response, ApiError>> + 'e>>
        + 'e,
>;

async fn serve_boxed<'e>(
    req: Request,
    env: &'e Env,
    service: &'static str,
    limit: BodyLimit,
    caching: Option<EdgeCaching>,
    handler: BoxedHandler<'e>,
) -> Response {
    let started = env.clock.now();
    let request_id = request_id(&req, env);
    let method = req.method().clone();
    // A list header: several lines mean what one comma-joined line means (RFC 9110
    // §5.3), which is how workerd hands them over anyway.
    let if_none_match: Vec<HeaderValue> = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .cloned()
        .collect();
    let route = Rc::new(Cell::new(None));
    let caching = caching.filter(|c| cache::enabled(env) && c.covers(req.uri().path()));
    let cache_key = match caching {
        Some(caching) if method == Method::GET => Some(cache_key(env, caching, &req).await),
        _ => None,
    };
    let mut cache_status = None;
    let result = match prepare(&req, env, limit, route.clone()) {
        Ok(ctx) => match cached_answer(env, cache_key.as_deref()).await {
            Some(hit) => {
                cache_status = Some("hit");
                Ok(hit)
            }
            None => handler(req, ctx).await,
        },
        Err(err) => Err(err),
    };
    let mut response = result.unwrap_or_else(error_response);
    if let Some(caching) = caching {
        if cache_status.is_none() {
            cache_status = after_handler(env, caching, cache_key.as_deref(), &response).await;
        }
    }
    if response.extensions().get::<Revalidate>().is_some()
        && response.status() == StatusCode::OK
        && (method == Method::GET || method == Method::HEAD)
    {
        response = with_etag(response, &if_none_match);
    }
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // API answers change with every write and may be a user's own data: not stored by
    // browsers or shared caches unless a route says otherwise.
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if env.config("storage_stats_header").as_deref() == Some("true") {
        headers.insert(ROUND_TRIPS, HeaderValue::from(env.tables.round_trips()));
    }
    let status = response.status().as_u16();
    log::write(
        env,
        &log::RequestLine {
            time: log::timestamp(started),
            level: log::level(status),
            kind: "request",
            request_id: &request_id,
            service,
            method: method.as_str(),
            route: route.get(),
            status,
            latency_ms: log::millis_between(started, env.clock.now()),
            error: response.extensions().get::<ErrorCode>().map(|c| c.0),
            cache: cache_status,
            detail: response
                .extensions()
                .get::<ErrorDetail>()
                .map(|d| d.0.as_str()),
        },
    );
    response
}

// The edge cache's steps, apart from `serve_cached` and not generic, so that they are
// compiled once however many handlers a binary serves (the Worker links them all).

/// The cache key of a `GET` under the current generation of `caching.table`.
async fn cache_key(env: &Env, caching: EdgeCaching, req: &Request) -> String {
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    cache::entry_key(env, caching.table, target).await
}

/// The answer stored under `key`, ready for [`serve_cached`]'s ETag step.
async fn cached_answer(env: &Env, key: Option<&str>) -> Option<Response> {
    let mut hit = cache::decode(&env.cache.get(key?).await?)?;
    hit.extensions_mut().insert(Revalidate);
    Some(hit)
}

/// After a handler ran: stores a cacheable read's answer (and says `miss`). Writes
/// start the table's new generation where they write (the DynamoDB-modelled tables'
/// door, the scraper), not here: only the writer knows what it stored.
async fn after_handler(
    env: &Env,
    caching: EdgeCaching,
    key: Option<&str>,
    response: &Response,
) -> Option<&'static str> {
    let key = key?;
    if response.status() == StatusCode::OK && response.extensions().get::<Revalidate>().is_some() {
        env.cache
            .put(key, cache::encode(response), caching.ttl_secs)
            .await;
    }
    Some("miss")
}

/// Marks a public read: any cache may keep it under `cache_control` (a `no-cache` one
/// revalidates every time), [`serve`] gives it a strong `ETag`, and a request whose
/// `If-None-Match` names that tag gets 304 with no body. The tag covers the body and the
/// headers that shape what a client makes of it (`content-type`, `link`), so it changes
/// exactly when the answer does: a write is never hidden behind a stale 304.
pub fn revalidated(mut response: Response, cache_control: &'static str) -> Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    response.extensions_mut().insert(Revalidate);
    response
}

/// `cache-control` of public reads that change with writes: stored, always revalidated.
pub const REVALIDATE_ALWAYS: &str = "public, no-cache";

/// The marker [`revalidated`] leaves for [`serve`].
#[derive(Debug, Clone, Copy)]
struct Revalidate;

/// The strong entity tag of `response`: 128 bits of SHA-256 over its body and the
/// headers that shape it.
fn entity_tag(response: &Response) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for name in [header::CONTENT_TYPE, header::LINK] {
        if let Some(value) = response.headers().get(&name) {
            hash.update(name.as_str());
            hash.update(b":");
            hash.update(value.as_bytes());
            hash.update(b"\n");
        }
    }
    hash.update(b"\n");
    hash.update(response.body());
    let digest = hash.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Whether an `If-None-Match` value names `tag` (RFC 9110 §13.1.2: `*`, or a list of
/// tags compared weakly, so `W/"x"` matches `"x"`).
fn none_match_hits(value: &HeaderValue, tag: &str) -> bool {
    let Ok(value) = value.to_str() else {
        return false;
    };
    value.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == tag
    })
}

/// Adds the `ETag`, and turns the answer into 304 when the client already has it.
fn with_etag(mut response: Response, if_none_match: &[HeaderValue]) -> Response {
    let tag = entity_tag(&response);
    if if_none_match.iter().any(|v| none_match_hits(v, &tag)) {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        *response.body_mut() = Bytes::new();
        let headers = response.headers_mut();
        headers.remove(header::CONTENT_TYPE);
        headers.remove(header::CONTENT_LENGTH);
    }
    if let Ok(value) = HeaderValue::from_str(&tag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

fn prepare<'e>(
    req: &Request,
    env: &'e Env,
    limit: BodyLimit,
    route: Rc<Cell<Option<&'static str>>>,
) -> Result<Ctx<'e>, ApiError> {
    if req.body().len() > limit.0 || req.extensions().get::<BodyTooLarge>().is_some() {
        return Err(ApiError::payload_too_large(limit.0));
    }
    let now = match req.headers().get(TEST_NOW) {
        Some(value) if env.config("test_clock_header").as_deref() == Some("true") => {
            parse_test_now(value)?
        }
        _ => env.clock.now(),
    };
    Ok(Ctx { env, now, route })
}

fn parse_test_now(value: &HeaderValue) -> Result<DateTime<Utc>, ApiError> {
    let bad = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_test_clock",
            "x-test-now must be an RFC 3339 instant or a YYYY-MM-DD date.",
        )
    };
    let text = value.to_str().map_err(|_| bad())?;
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Ok(instant.with_timezone(&Utc));
    }
    let date = crate::time::parse_date(text).ok_or_else(bad)?;
    Ok(date.and_hms_opt(12, 0, 0).ok_or_else(bad)?.and_utc())
}

/// The client's `x-request-id` when it is a sane token, else a fresh random one.
fn request_id(req: &Request, env: &Env) -> String {
    let given = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200);
    match given {
        Some(id) => id.to_owned(),
        None => format!("{:016x}{:016x}", (env.random)(), (env.random)()),
    }
}

/// Admin writes need `authorization: Bearer <admin_token>`; with no token configured
/// they are refused outright rather than left open.
pub fn require_admin(req: &Request, env: &Env) -> Result<(), ApiError> {
    let Some(token) = env.config("admin_token") else {
        return Err(ApiError::admin_disabled());
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if constant_time_eq(given.as_bytes(), token.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::unauthorized())
    }
}

/// Compares without an early exit, so response time does not leak the token's prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
    }
    diff == 0
}

/// A JSON response with `status`.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => with_body(status, Bytes::from(bytes)),
        Err(err) => error_response(ApiError::internal(err)),
    }
}

/// A response with no body (204 and friends).
pub fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = status;
    response
}

fn with_body(status: StatusCode, body: Bytes) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The one place an [`ApiError`] becomes the OpenAPI document's `{"error": {"code", "message"}}`.
pub fn error_response(err: ApiError) -> Response {
    let body = serde_json::json!({"error": {"code": err.code, "message": err.message}});
    let mut response = with_body(err.status, Bytes::from(body.to_string()));
    if let Some(allow) = err.allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    log::mark_error(&mut response, err.code, err.detail);
    response
}

/// Parses a JSON body into `T`; malformed JSON, wrong types and missing fields are all
/// 400 `invalid_body`.
pub fn parse_json<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    crate::json::from_bytes(req.body()).map_err(ApiError::invalid_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_json(body: &'static str) -> Response {
        let mut response = Response::new(Bytes::from_static(body.as_bytes()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }

    #[test]
    fn entity_tag_changes_with_the_body_and_the_link_header() {
        let a = entity_tag(&ok_json("[1]"));
        assert_eq!(a, entity_tag(&ok_json("[1]")));
        assert_ne!(a, entity_tag(&ok_json("[2]")));
        let mut linked = ok_json("[1]");
        linked.headers_mut().insert(
            header::LINK,
            HeaderValue::from_static("</next>; rel=\"next\""),
        );
        assert_ne!(a, entity_tag(&linked));
        assert!(
            a.starts_with('"') && a.ends_with('"') && a.len() == 34,
            "{a}"
        );
    }

    #[test]
    fn if_none_match_hits_a_listed_weak_or_star_tag_only() {
        let hit = |v: &'static str| none_match_hits(&HeaderValue::from_static(v), "\"ab\"");
        assert!(hit("\"ab\""));
        assert!(hit("\"x\", W/\"ab\""));
        assert!(hit("*"));
        assert!(!hit("\"abc\""));
        assert!(!hit("ab"));
        assert!(!hit(""));
    }

    #[test]
    fn with_etag_answers_304_without_a_body_when_the_tag_matches() {
        let tag = entity_tag(&ok_json("{}"));
        let value = HeaderValue::from_str(&tag).unwrap();
        let response = with_etag(ok_json("{}"), std::slice::from_ref(&value));
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert!(response.body().is_empty());
        assert!(response.headers().get(header::CONTENT_TYPE).is_none());
        assert_eq!(response.headers()[header::ETAG], tag.as_str());
        let fresh = with_etag(ok_json("{\"a\":1}"), std::slice::from_ref(&value));
        assert_eq!(fresh.status(), StatusCode::OK);
        assert_ne!(fresh.headers()[header::ETAG], tag.as_str());
    }

    #[test]
    fn internal_errors_keep_their_detail_to_the_log_line() {
        let mut env = crate::host::native::env(
            crate::table::memory::MemoryKv::default(),
            crate::MapConfig::default(),
        );
        env.log = crate::host::native::capture_log;
        let req = http::Request::builder()
            .uri("/x")
            .header(REQUEST_ID, "leak-check")
            .body(Bytes::new())
            .unwrap();
        let response = futures::executor::block_on(serve(
            req,
            &env,
            "test",
            BodyLimit::DEFAULT,
            |_, _| async { Err(ApiError::internal("disk at /var/secret on fire")) },
        ));
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = String::from_utf8_lossy(response.body()).into_owned();
        assert!(!body.contains("secret"), "{body}");
        assert!(body.contains("x-request-id"), "{body}");
        assert_eq!(response.headers()[REQUEST_ID], "leak-check");
        let line = crate::host::native::captured_log().pop().unwrap();
        assert!(
            line.contains("disk at /var/secret on fire") && line.contains("leak-check"),
            "{line}"
        );
    }

    #[test]
    fn constant_time_eq_matches_only_equal_bytes() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }
}
