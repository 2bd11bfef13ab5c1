//! Structured logs: one JSON line per request ([`RequestLine`], written by
//! [`crate::serve`]) and one per scraper tick, through the host's sink ([`Env::log`]):
//! stdout on Spin (where `spin up` keeps component output), the console on Workers
//! (Workers Logs, `wrangler tail`), stdout or a test's buffer natively. A line carries
//! what identifies and measures the work — never a body, a header value, a path (which
//! may hold a user name) or a secret.

use crate::Env;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// The line of one request.
#[derive(Debug, Serialize)]
pub struct RequestLine<'a> {
    /// When the request arrived, RFC 3339 UTC with milliseconds.
    pub time: String,
    /// `error` for a 5xx, `warn` for a 4xx, else `info`.
    pub level: &'static str,
    /// Always `request`; a tick's line says `scraper_tick`.
    pub kind: &'static str,
    pub request_id: &'a str,
    /// The endpoint crate that answered (`hello`, `shows`, …).
    pub service: &'static str,
    pub method: &'a str,
    /// The pattern of the route that matched (`/hello/{username}`), `null` when none did.
    pub route: Option<&'static str>,
    pub status: u16,
    pub latency_ms: f64,
    /// The error code of the OpenAPI document's error body (or DynamoDB's error name), `null` on success.
    pub error: Option<&'static str>,
    /// `hit` when the edge cache answered (no route ran, so `route` is `null`), `miss`
    /// when a cacheable read went to storage; absent where no edge cache applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<&'static str>,
    /// An internal error's detail, which its response body leaves out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'a str>,
}

/// The error code a response carries, set where the error body is made, so that the
/// log line names it whichever way the response was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub &'static str);

/// An internal error's detail, set where the error response is made, for the log line
/// alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorDetail(pub String);

/// Marks an error response with what its request's log line says of it: the error's
/// `code`, and the internal `detail` its body leaves out. Every error body, the OpenAPI document's
/// or DynamoDB's, is marked here.
pub fn mark_error(response: &mut crate::Response, code: &'static str, detail: Option<String>) {
    response.extensions_mut().insert(ErrorCode(code));
    if let Some(detail) = detail {
        response.extensions_mut().insert(ErrorDetail(detail));
    }
}

/// The level of a response status.
pub fn level(status: u16) -> &'static str {
    match status {
        500.. => "error",
        400..=499 => "warn",
        _ => "info",
    }
}

/// An instant as log lines write it.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Milliseconds from `from` to `to`, to the microsecond.
pub fn millis_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
}

/// Writes `line` as one JSON line through the host's sink.
pub fn write<T: Serialize>(env: &Env, line: &T) {
    // A line that cannot be encoded is dropped rather than failing the request.
    if let Ok(text) = serde_json::to_string(line) {
        (env.log)(&text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_follows_the_status_class() {
        assert_eq!(
            [200, 304, 401, 404, 500, 503].map(level),
            ["info", "info", "warn", "warn", "error", "error"]
        );
    }

    #[test]
    fn timestamp_is_rfc3339_utc_with_millis() {
        let at = DateTime::parse_from_rfc3339("2026-12-02T15:04:05.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(timestamp(at), "2026-12-02T15:04:05.123Z");
        let later = at + chrono::Duration::microseconds(2_500);
        assert_eq!(millis_between(at, later), 2.5);
    }
}
