//! The parts of TvMaze's JSON the scraper reads, and its client over the host's fetch.

use crate::pace::Pacer;
use crate::store::{order_cast, CastMember, StoredShow};
use bytes::Bytes;
use kit::{Env, FetchError};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct IndexShow {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub updated: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct Person {
    id: u64,
    name: String,
    #[serde(default)]
    birthday: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CastEntry {
    person: Person,
}

#[derive(Debug, Deserialize)]
struct Embedded {
    #[serde(default)]
    cast: Vec<CastEntry>,
}

#[derive(Debug, Deserialize)]
struct ShowWithCast {
    id: u64,
    name: String,
    #[serde(default)]
    updated: Option<i64>,
    #[serde(rename = "_embedded")]
    embedded: Option<Embedded>,
}

fn members(entries: Vec<CastEntry>) -> Vec<CastMember> {
    order_cast(
        entries
            .into_iter()
            .map(|e| CastMember {
                id: e.person.id,
                name: e.person.name,
                birthday: e.person.birthday.filter(|b| !b.is_empty()),
            })
            .collect(),
    )
}

/// What one TvMaze request came back with, as far as the scraper cares.
#[derive(Debug)]
pub enum Outcome<T> {
    Ok(T),
    /// 404: past the last index page, or a show that no longer exists.
    NotFound,
    /// 429 or 5xx, or no response at all: back off and retry later.
    Retry(String),
}

/// TvMaze at `base` through the host's outbound fetch; counts every request and paces
/// them to the rate limit.
pub struct TvMaze<'a> {
    env: &'a Env,
    base: String,
    pub pacer: Pacer,
    pub fetches: u32,
    /// What the last refusal's `Retry-After` asked for, in milliseconds.
    pub retry_after_ms: Option<i64>,
}

/// Bounds what `Retry-After` is read as (the tick caps the wait itself, at
/// `scraper_backoff_max_ms`).
const MAX_RETRY_AFTER_S: i64 = 86_400;

/// `Retry-After` in delay-seconds (TvMaze's form); an HTTP date is not honoured (the
/// scraper's own backoff applies).
fn retry_after_ms(headers: &http::HeaderMap) -> Option<i64> {
    let secs: i64 = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(secs.clamp(0, MAX_RETRY_AFTER_S) * 1000)
}

/// TvMaze asks API users to identify themselves.
const USER_AGENT: &str = "edge-backends-scraper/0.1 (TvMaze show and cast mirror; rust, wasm)";

impl<'a> TvMaze<'a> {
    pub fn new(env: &'a Env, base: &str, pacer: Pacer) -> Self {
        Self {
            env,
            base: base.trim_end_matches('/').to_owned(),
            pacer,
            fetches: 0,
            retry_after_ms: None,
        }
    }

    fn clock_ms(&self) -> i64 {
        self.env.clock.now().timestamp_millis()
    }

    /// When the next request may start (host clock, unix ms).
    pub fn next_slot(&self) -> i64 {
        self.pacer.next_slot(self.clock_ms())
    }

    async fn get(&mut self, path: &str) -> Outcome<Bytes> {
        let slot = self.next_slot();
        let wait = slot - self.clock_ms();
        if wait > 0 {
            self.env.clock.sleep(wait.unsigned_abs()).await;
        }
        self.fetches += 1;
        let req = http::Request::builder()
            .method("GET")
            .uri(format!("{}{path}", self.base))
            .header("user-agent", USER_AGENT)
            .header("accept", "application/json")
            .body(Bytes::new());
        let req = match req {
            Ok(req) => req,
            Err(e) => return Outcome::Retry(format!("bad request for {path}: {e}")),
        };
        let response = self.env.fetch.fetch(req).await;
        // Paced by when each answer came back, not when its request left: TvMaze saw
        // the request before that, so a window counted from it never overlaps its own
        // count there, whatever the network's jitter (costs one round trip per window).
        // Rounded up: the clock reads whole milliseconds, and an answer noted early
        // would let a request start inside the window it ended.
        let done = (self.clock_ms() + 1).max(slot);
        self.pacer.record(done);
        match response {
            Ok(resp) if resp.status().is_success() => Outcome::Ok(resp.into_body()),
            Ok(resp) if resp.status() == http::StatusCode::NOT_FOUND => Outcome::NotFound,
            Ok(resp) => {
                self.retry_after_ms = retry_after_ms(resp.headers());
                Outcome::Retry(format!("GET {path}: HTTP {}", resp.status()))
            }
            Err(FetchError::Denied(e)) | Err(FetchError::Network(e)) => {
                Outcome::Retry(format!("GET {path}: {e}"))
            }
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(path: &str, body: &[u8]) -> Outcome<T> {
        match kit::json::from_bytes(body) {
            Ok(value) => Outcome::Ok(value),
            Err(e) => Outcome::Retry(format!("GET {path}: unexpected JSON: {e}")),
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&mut self, path: &str) -> Outcome<T> {
        match self.get(path).await {
            Outcome::Ok(body) => Self::parse(path, &body),
            Outcome::NotFound => Outcome::NotFound,
            Outcome::Retry(why) => Outcome::Retry(why),
        }
    }

    /// `GET /shows?page=n`: up to 250 shows, ids `n·250 …`; 404 past the last page.
    pub async fn index_page(&mut self, page: u64) -> Outcome<Vec<IndexShow>> {
        self.get_json(&format!("/shows?page={page}")).await
    }

    /// `GET /shows/{id}/cast`, ordered for the API.
    pub async fn cast(&mut self, id: u64) -> Outcome<Vec<CastMember>> {
        match self
            .get_json::<Vec<CastEntry>>(&format!("/shows/{id}/cast"))
            .await
        {
            Outcome::Ok(entries) => Outcome::Ok(members(entries)),
            Outcome::NotFound => Outcome::NotFound,
            Outcome::Retry(why) => Outcome::Retry(why),
        }
    }

    /// `GET /shows/{id}?embed=cast`: name, stamp and cast in one request.
    pub async fn show_with_cast(&mut self, id: u64) -> Outcome<StoredShow> {
        match self
            .get_json::<ShowWithCast>(&format!("/shows/{id}?embed=cast"))
            .await
        {
            Outcome::Ok(show) => Outcome::Ok(StoredShow {
                id: show.id,
                name: show.name,
                updated: show.updated.unwrap_or_default(),
                cast: members(show.embedded.map(|e| e.cast).unwrap_or_default()),
            }),
            Outcome::NotFound => Outcome::NotFound,
            Outcome::Retry(why) => Outcome::Retry(why),
        }
    }

    /// `GET /updates/shows?since=…`: (show id, last-updated stamp), by id. Read through
    /// `serde_json::Map`, whose code every service has, rather than a map of its own.
    pub async fn updates(&mut self, since: &str) -> Outcome<Vec<(u64, i64)>> {
        let path = format!("/updates/shows?since={since}");
        match self
            .get_json::<serde_json::Map<String, serde_json::Value>>(&path)
            .await
        {
            Outcome::Ok(map) => {
                let mut stamps = Vec::with_capacity(map.len());
                for (id, stamp) in map {
                    let Some(stamp) = stamp.as_i64() else {
                        return Outcome::Retry(format!(
                            "GET {path}: unexpected JSON: stamp of show {id} is not an integer"
                        ));
                    };
                    if let Ok(id) = id.parse() {
                        stamps.push((id, stamp));
                    }
                }
                Outcome::Ok(kit::sorted::last_of_each(stamps))
            }
            Outcome::NotFound => Outcome::Ok(Vec::new()),
            Outcome::Retry(why) => Outcome::Retry(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::retry_after_ms;
    use http::{HeaderMap, HeaderValue};

    fn with(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn retry_after_is_read_in_seconds_and_bounded() {
        assert_eq!(retry_after_ms(&with("7")), Some(7_000));
        assert_eq!(retry_after_ms(&with(" 0 ")), Some(0));
        assert_eq!(retry_after_ms(&with("999999")), Some(86_400_000));
        assert_eq!(retry_after_ms(&with("-5")), Some(0));
        assert_eq!(retry_after_ms(&with("Wed, 21 Oct 2026 07:28:00 GMT")), None);
        assert_eq!(retry_after_ms(&HeaderMap::new()), None);
    }
}
