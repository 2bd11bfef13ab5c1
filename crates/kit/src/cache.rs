//! An edge cache in front of public reads, kept correct by table generations.
//!
//! A service that serves public reads of a table passes an [`EdgeCaching`] to
//! [`crate::service::serve_cached`]: its `GET` answers marked
//! [`revalidated`](crate::revalidated) are stored in the host's [`EdgeCache`] (the
//! Workers Cache API of the data centre; an in-process map natively; nothing on Spin,
//! which has no such cache) for `ttl_secs`, under a key that names the table's current
//! **generation**. A write to the table ([`invalidate`], called by the writer: every
//! write to a DynamoDB-modelled table through `ddb_writes::Door`, `Movies` included, and
//! a scraper tick that stored shows) puts a fresh generation into the same cache before the write is acknowledged, so every later
//! read there misses and reads storage again, whatever its query string. Purging keys
//! could not do that: a year's list has unboundedly many query variants.
//!
//! The bound a reader sees: in the data centre that took the write, none (read-your-
//! writes); in any other one (the Cache API is per data centre), at most the entry's
//! `ttl_secs`, after which it is read again from storage.

use crate::{Bytes, Env, Response};
use http::{HeaderName, HeaderValue, StatusCode};

/// A cache of opaque byte strings by key, each kept for at most its TTL. Best effort:
/// a cache may forget anything at any time, and a failed `put` is not an error.
#[async_trait::async_trait(?Send)]
pub trait EdgeCache {
    async fn get(&self, key: &str) -> Option<Bytes>;
    async fn put(&self, key: &str, value: Bytes, ttl_secs: u32);

    /// Whether anything is kept at all: a host without a cache skips the lookups, the
    /// generations (and the randomness they draw) and the log line's `cache` field.
    fn active(&self) -> bool {
        true
    }
}

/// For hosts without an edge cache (Spin): every read is a miss, nothing is kept.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCache;

#[async_trait::async_trait(?Send)]
impl EdgeCache for NoCache {
    async fn get(&self, _key: &str) -> Option<Bytes> {
        None
    }
    async fn put(&self, _key: &str, _value: Bytes, _ttl_secs: u32) {}

    fn active(&self) -> bool {
        false
    }
}

/// How a service's public reads are cached: the table they read, and how long an entry
/// may serve other data centres after a write (the staleness bound docs/SERVICES.md states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeCaching {
    pub table: &'static str,
    pub ttl_secs: u32,
    /// Path prefixes the cache stays out of: an answer that is never stored would pay
    /// for the lookups on every request.
    pub uncached: &'static [&'static str],
}

impl EdgeCaching {
    /// Whether requests for `path` go through the cache.
    pub fn covers(&self, path: &str) -> bool {
        !self.uncached.iter().any(|prefix| path.starts_with(prefix))
    }
}

/// How long a generation is kept: far longer than any entry it keys, so an entry can
/// never outlive the generation that made it current. A generation the cache forgot
/// reads as `0`, which only entries made under `0` within their TTL match.
const GENERATION_TTL_SECS: u32 = 7 * 24 * 3600;

/// Keys live under a host name of their own, apart from any URL the deployment serves.
const KEY_ORIGIN: &str = "https://edge-cache.invalid";

/// Whether the host has an edge cache and config `edge_cache = "false"` does not turn it
/// off (the caching benchmark compares).
pub fn enabled(env: &Env) -> bool {
    env.cache.active() && env.config("edge_cache").as_deref() != Some("false")
}

fn generation_key(table: &str) -> String {
    format!("{KEY_ORIGIN}/.generation/{}", encode_segment(table))
}

/// The key of a read of `path_and_query` under `table`'s current generation.
pub(crate) async fn entry_key(env: &Env, table: &str, path_and_query: &str) -> String {
    let generation = env.cache.get(&generation_key(table)).await;
    let generation = generation
        .as_deref()
        .and_then(|g| std::str::from_utf8(g).ok())
        .unwrap_or("0");
    format!(
        "{KEY_ORIGIN}/{}/{generation}{path_and_query}",
        encode_segment(table)
    )
}

/// Makes every cached read of `table` in this data centre a miss from now on. Call it
/// after the write is stored and before it is acknowledged.
pub async fn invalidate(env: &Env, table: &str) {
    if !enabled(env) {
        return;
    }
    let generation = format!("{:016x}", (env.random)());
    env.cache
        .put(
            &generation_key(table),
            Bytes::from(generation),
            GENERATION_TTL_SECS,
        )
        .await;
}

/// Table names are `[A-Za-z0-9_.-]` (DynamoDB's rule); anything else is escaped so a
/// key's path cannot be confused.
fn encode_segment(raw: &str) -> String {
    raw.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"_.-".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A `200` answer as stored: `name: value` lines, an empty line, the body. Header
/// values cannot hold a newline (RFC 9110), so the first empty line ends them.
pub(crate) fn encode(response: &Response) -> Bytes {
    let mut out = Vec::with_capacity(response.body().len() + 128);
    for (name, value) in response.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(response.body());
    Bytes::from(out)
}

/// The answer [`encode`] stored, or `None` for bytes it did not make (a cache is
/// untrusted input: a corrupt entry is a miss, never a panic).
pub(crate) fn decode(stored: &Bytes) -> Option<Response> {
    // A header line is never empty, so a leading newline means no headers.
    let (head, body) = if stored.first() == Some(&b'\n') {
        (&stored[..0], stored.slice(1..))
    } else {
        let at = stored.windows(2).position(|w| w == b"\n\n")?;
        (&stored[..=at], stored.slice(at + 2..))
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    for line in head.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let colon = line.iter().position(|&b| b == b':')?;
        let name = HeaderName::from_bytes(&line[..colon]).ok()?;
        let value = line[colon + 1..]
            .strip_prefix(b" ")
            .unwrap_or(&line[colon + 1..]);
        let value = HeaderValue::from_bytes(value).ok()?;
        response.headers_mut().append(name, value);
    }
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_returns_what_encode_stored() {
        let response = http::Response::builder()
            .header("content-type", "application/json")
            .header("link", "</api/shows?page=1>; rel=\"next\"")
            .body(Bytes::from_static(b"[{\"id\":1}]\n\nafter a blank line"))
            .unwrap();
        let back = decode(&encode(&response)).unwrap();
        assert_eq!(back.status(), StatusCode::OK);
        assert_eq!(back.headers(), response.headers());
        assert_eq!(back.body(), response.body());
    }

    #[test]
    fn decode_returns_an_empty_answer_when_nothing_but_a_body_was_stored() {
        let response = Response::new(Bytes::from_static(b"[]\n\n[]"));
        let back = decode(&encode(&response)).unwrap();
        assert!(back.headers().is_empty());
        assert_eq!(back.body().as_ref(), b"[]\n\n[]");
    }

    #[test]
    fn decode_returns_none_when_the_bytes_are_not_an_entry() {
        assert!(decode(&Bytes::from_static(b"no blank line")).is_none());
        assert!(decode(&Bytes::from_static(b"bad header\n\nbody")).is_none());
        assert!(decode(&Bytes::from_static(b"na me: v\n\nbody")).is_none());
    }

    #[test]
    fn memory_cache_forgets_an_entry_when_its_ttl_ends() {
        let cache = crate::host::native::MemoryCache::default();
        futures::executor::block_on(async {
            cache.put("k", Bytes::from_static(b"v"), 0).await;
            assert_eq!(cache.get("k").await, None);
            cache.put("k", Bytes::from_static(b"v"), 60).await;
            assert_eq!(cache.get("k").await.as_deref(), Some(&b"v"[..]));
        });
    }
}
