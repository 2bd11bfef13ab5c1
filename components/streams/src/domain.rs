//! Stream-lease domain: the types requests are parsed into at the boundary, the
//! service's configuration, and the pure state transitions of one user's leases.
//!
//! Nothing here does I/O or reads a clock: every transition takes `now` as an argument,
//! so lease expiry, the limit and idempotency are unit-tested without sleeping.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use http::{HeaderMap, HeaderName, StatusCode};
use kit::table::StoreError;
use kit::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::fmt;

/// Everything that can go wrong in the streams API; mapped to HTTP once, below.
#[derive(Debug, thiserror::Error)]
pub enum StreamsError {
    #[error("no client identity: send an `x-forwarded-for` (or `cf-connecting-ip`) header")]
    MissingIdentity,
    #[error("idempotency-key must be 1-255 printable ASCII characters")]
    InvalidIdempotencyKey,
    #[error("{0}")]
    InvalidBody(String),
    #[error("stream metadata must be at most {METADATA_MAX_BYTES} bytes of JSON")]
    MetadataTooLarge,
    #[error("this user already has the maximum of {0} active streams")]
    LimitReached(usize),
    #[error("this idempotency-key already started a stream with different metadata")]
    IdempotencyKeyReused,
    #[error("no active stream with this id")]
    NotFound,
    #[error("misconfigured deployment: {0}")]
    Config(String),
    #[error("stored streams are unreadable: {0}")]
    Corrupt(String),
    #[error("the request's instant is out of the supported range")]
    ClockOutOfRange,
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<StreamsError> for ApiError {
    fn from(err: StreamsError) -> Self {
        let message = err.to_string();
        match err {
            StreamsError::MissingIdentity => {
                ApiError::new(StatusCode::BAD_REQUEST, "missing_identity", message)
            }
            StreamsError::InvalidIdempotencyKey => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_idempotency_key", message)
            }
            StreamsError::InvalidBody(detail) => ApiError::invalid_body(detail),
            StreamsError::MetadataTooLarge => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
            }
            StreamsError::LimitReached(_) => {
                ApiError::new(StatusCode::CONFLICT, "stream_limit_reached", message)
            }
            StreamsError::IdempotencyKeyReused => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                message,
            ),
            StreamsError::NotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "stream_not_found", message)
            }
            StreamsError::Config(_) | StreamsError::Corrupt(_) | StreamsError::ClockOutOfRange => {
                ApiError::internal(message)
            }
            StreamsError::Api(api) => api,
            StreamsError::Store(store) => store.into(),
        }
    }
}

/// Default number of streams a user may have active at once.
pub const DEFAULT_LIMIT: usize = 3;
/// Default lease: a stream is active this long after its start or last heartbeat.
pub const DEFAULT_LEASE_SECONDS: i64 = 60;
/// Default header naming the user.
pub const DEFAULT_IDENTITY_HEADER: &str = "x-forwarded-for";
/// The Workers platform's client address header, used when the identity header is absent.
pub const FALLBACK_IDENTITY_HEADER: &str = "cf-connecting-ip";
/// The largest configurable limit: with [`METADATA_MAX_BYTES`] it bounds one user's
/// stored item to well under a Durable Object value's 2 MB.
pub const MAX_LIMIT: usize = 100;
/// The longest configurable lease (one day).
pub const MAX_LEASE_SECONDS: i64 = 86_400;
/// The most serialised metadata one stream keeps.
pub const METADATA_MAX_BYTES: usize = 8 * 1024;
/// The longest identity kept (it becomes a storage partition key).
pub const IDENTITY_MAX_BYTES: usize = 256;

/// The deployment's configuration of this service, read per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub limit: usize,
    pub lease: Duration,
    pub identity_header: HeaderName,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
            lease: Duration::seconds(DEFAULT_LEASE_SECONDS),
            identity_header: HeaderName::from_static(DEFAULT_IDENTITY_HEADER),
        }
    }
}

impl Settings {
    /// Reads `stream_limit`, `stream_lease_seconds` and `identity_header` through `get`
    /// (unset → default). A set but invalid value is a deployment error, reported
    /// rather than silently replaced by the default.
    pub fn from_config(get: impl Fn(&str) -> Option<String>) -> Result<Self, StreamsError> {
        let defaults = Self::default();
        let limit = match get("stream_limit") {
            None => defaults.limit,
            Some(raw) => raw
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    StreamsError::Config(format!("stream_limit must be 1-{MAX_LIMIT}"))
                })?,
        };
        let lease = match get("stream_lease_seconds") {
            None => defaults.lease,
            Some(raw) => raw
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_LEASE_SECONDS).contains(n))
                .map(Duration::seconds)
                .ok_or_else(|| {
                    StreamsError::Config(format!(
                        "stream_lease_seconds must be 1-{MAX_LEASE_SECONDS}"
                    ))
                })?,
        };
        let identity_header = match get("identity_header") {
            None => defaults.identity_header,
            Some(raw) => HeaderName::try_from(raw.trim().to_ascii_lowercase())
                .map_err(|_| StreamsError::Config("identity_header is not a header name".into()))?,
        };
        Ok(Self {
            limit,
            lease,
            identity_header,
        })
    }
}

/// Who is streaming: the first comma-separated value of the configured identity header
/// (by default `x-forwarded-for`, whose first address is the original client), else
/// `cf-connecting-ip`. Both are client-controlled unless a gateway sets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity(String);

impl Identity {
    pub fn from_headers(headers: &HeaderMap, header: &HeaderName) -> Result<Self, StreamsError> {
        let usable = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.len() <= IDENTITY_MAX_BYTES)
                .map(|v| Self(v.to_owned()))
        };
        usable(header.as_str())
            .or_else(|| usable(FALLBACK_IDENTITY_HEADER))
            .ok_or(StreamsError::MissingIdentity)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stream id: 32 lowercase hex digits (128 random bits). Anything else in a path is
/// an id no stream has, so it parses to [`StreamsError::NotFound`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamId(String);

impl StreamId {
    /// A fresh id from two draws of the host's randomness.
    pub fn random(random: fn() -> u64) -> Self {
        Self(format!("{:016x}{:016x}", random(), random()))
    }

    pub fn parse(raw: &str) -> Result<Self, StreamsError> {
        let valid = raw.len() == 32 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(StreamsError::NotFound)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `idempotency-key` of a start: 1–255 printable ASCII characters (spaces inside
/// allowed, surrounding ones trimmed). Scoped to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

impl IdempotencyKey {
    /// `None` when the header is absent.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, StreamsError> {
        let Some(value) = headers.get(IDEMPOTENCY_HEADER) else {
            return Ok(None);
        };
        let text = value
            .to_str()
            .map_err(|_| StreamsError::InvalidIdempotencyKey)?
            .trim();
        let valid =
            (1..=255).contains(&text.len()) && text.bytes().all(|b| (b' '..=b'~').contains(&b));
        if valid {
            Ok(Some(Self(text.to_owned())))
        } else {
            Err(StreamsError::InvalidIdempotencyKey)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A key as a shipped transition carries it (checked when the request came in).
    pub(crate) fn stored(key: String) -> Self {
        Self(key)
    }
}

/// A start's metadata: a JSON object kept as given. An empty (or all-whitespace) body
/// means none, `{}`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metadata(Map<String, Value>);

impl Metadata {
    /// Metadata as a shipped transition carries it (checked when the request came in).
    pub(crate) fn stored(map: Map<String, Value>) -> Self {
        Self(map)
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn parse(body: &[u8]) -> Result<Self, StreamsError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let value: Value = kit::json::from_bytes(body)
            .map_err(|e| StreamsError::InvalidBody(format!("not JSON ({e})")))?;
        let Value::Object(map) = value else {
            return Err(StreamsError::InvalidBody(
                "stream metadata must be a JSON object".into(),
            ));
        };
        let size = serde_json::to_vec(&map)
            .map_err(|e| StreamsError::InvalidBody(e.to_string()))?
            .len();
        if size > METADATA_MAX_BYTES {
            return Err(StreamsError::MetadataTooLarge);
        }
        Ok(Self(map))
    }
}

/// One stream's lease as stored. Instants are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub id: String,
    pub started_ms: i64,
    pub expires_ms: i64,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// The start's `idempotency-key`; forgotten with the lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl Lease {
    /// Active strictly before its expiry instant.
    pub fn is_active(&self, now_ms: i64) -> bool {
        now_ms < self.expires_ms
    }

    /// The stream as the OpenAPI document shows it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "started_at": rfc3339(self.started_ms),
            "expires_at": rfc3339(self.expires_ms),
            "metadata": self.metadata,
        })
    }
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-22T12:00:00.000Z`.
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// How a start went.
#[derive(Debug, Clone, PartialEq)]
pub enum Started {
    /// A new lease took a slot; the state changed and must be written.
    New(Lease),
    /// An active lease with the same idempotency key already exists; nothing changed.
    Replayed(Lease),
}

/// One user's leases: the value of the user's single item in the `streams` table.
///
/// Expired leases are pruned by every transition that writes and skipped by every
/// read, so no cleanup job is needed for correctness.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Leases {
    #[serde(default)]
    pub leases: Vec<Lease>,
}

impl Leases {
    pub fn from_value(value: &Value) -> Result<Self, StreamsError> {
        kit::json::from_value(value).map_err(|e| StreamsError::Corrupt(e.to_string()))
    }

    pub fn to_value(&self) -> Result<Value, StreamsError> {
        serde_json::to_value(self).map_err(|e| StreamsError::Corrupt(e.to_string()))
    }

    /// Active leases in start order (oldest first; leases started at the same instant
    /// in the order they were admitted).
    pub fn active(&self, now_ms: i64) -> Vec<&Lease> {
        let mut active: Vec<&Lease> = self.leases.iter().filter(|l| l.is_active(now_ms)).collect();
        kit::sorted::sort_by_key(&mut active, |l| l.started_ms);
        active
    }

    fn prune(&mut self, now_ms: i64) {
        self.leases.retain(|l| l.is_active(now_ms));
    }

    fn find_active(&self, id: &StreamId, now_ms: i64) -> Option<usize> {
        self.leases
            .iter()
            .position(|l| l.id == id.as_str() && l.is_active(now_ms))
    }

    /// Starts stream `id` at `now` unless `key` names an active lease (replayed) or the
    /// user already has `settings.limit` active leases (refused, nothing changed).
    pub fn start(
        &mut self,
        now: DateTime<Utc>,
        settings: &Settings,
        key: Option<&IdempotencyKey>,
        metadata: &Metadata,
        id: &StreamId,
    ) -> Result<Started, StreamsError> {
        let now_ms = now.timestamp_millis();
        self.prune(now_ms);
        if let Some(key) = key {
            let existing = self
                .leases
                .iter()
                .find(|l| l.idempotency_key.as_deref() == Some(key.as_str()));
            if let Some(existing) = existing {
                return if existing.metadata == metadata.0 {
                    Ok(Started::Replayed(existing.clone()))
                } else {
                    Err(StreamsError::IdempotencyKeyReused)
                };
            }
        }
        if self.leases.len() >= settings.limit {
            return Err(StreamsError::LimitReached(settings.limit));
        }
        let lease = Lease {
            id: id.as_str().to_owned(),
            started_ms: now_ms,
            expires_ms: expiry(now, settings)?,
            metadata: metadata.0.clone(),
            idempotency_key: key.map(|k| k.as_str().to_owned()),
        };
        self.leases.push(lease.clone());
        Ok(Started::New(lease))
    }

    /// Extends active lease `id` to a full lease from `now` (never shortening it).
    pub fn heartbeat(
        &mut self,
        now: DateTime<Utc>,
        settings: &Settings,
        id: &StreamId,
    ) -> Result<Lease, StreamsError> {
        let now_ms = now.timestamp_millis();
        self.prune(now_ms);
        let index = self.find_active(id, now_ms).ok_or(StreamsError::NotFound)?;
        let expires_ms = expiry(now, settings)?;
        let lease = &mut self.leases[index];
        lease.expires_ms = lease.expires_ms.max(expires_ms);
        Ok(lease.clone())
    }

    /// Ends active lease `id`, freeing its slot (and its idempotency key).
    pub fn end(&mut self, now: DateTime<Utc>, id: &StreamId) -> Result<Lease, StreamsError> {
        let now_ms = now.timestamp_millis();
        self.prune(now_ms);
        let index = self.find_active(id, now_ms).ok_or(StreamsError::NotFound)?;
        Ok(self.leases.remove(index))
    }
}

fn expiry(now: DateTime<Utc>, settings: &Settings) -> Result<i64, StreamsError> {
    now.checked_add_signed(settings.lease)
        .map(|t| t.timestamp_millis())
        .ok_or(StreamsError::ClockOutOfRange)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn id(n: u64) -> StreamId {
        StreamId::parse(&format!("{n:032x}")).unwrap()
    }

    fn key(k: &str) -> IdempotencyKey {
        let mut headers = HeaderMap::new();
        headers.insert(IDEMPOTENCY_HEADER, HeaderValue::from_str(k).unwrap());
        IdempotencyKey::from_headers(&headers).unwrap().unwrap()
    }

    fn meta(body: &str) -> Metadata {
        Metadata::parse(body.as_bytes()).unwrap()
    }

    fn started(result: Result<Started, StreamsError>) -> Lease {
        match result {
            Ok(Started::New(lease)) => lease,
            other => panic!("expected a new stream, got {other:?}"),
        }
    }

    const T0: &str = "2026-11-22T12:00:00Z";

    #[test]
    fn start_admits_up_to_the_limit_then_refuses_without_changing_anything() {
        let settings = Settings::default();
        let mut leases = Leases::default();
        for n in 0..3 {
            started(leases.start(at(T0), &settings, None, &meta(""), &id(n)));
        }
        let before = leases.clone();
        let err = leases.start(at(T0), &settings, None, &meta(""), &id(9));
        assert!(matches!(err, Err(StreamsError::LimitReached(3))), "{err:?}");
        assert_eq!(leases, before);
        let order: Vec<&str> = leases
            .active(at(T0).timestamp_millis())
            .iter()
            .map(|l| l.id.as_str())
            .collect();
        assert_eq!(
            order,
            [id(0).as_str(), id(1).as_str(), id(2).as_str()],
            "admission order"
        );
    }

    #[test]
    fn start_sets_expiry_one_lease_after_start_and_keeps_metadata() {
        let settings = Settings {
            lease: Duration::seconds(30),
            ..Settings::default()
        };
        let mut leases = Leases::default();
        let lease = started(leases.start(
            at(T0),
            &settings,
            None,
            &meta(r#"{"video_name":"a.mp4","size":12,"nested":{"x":[1,null]}}"#),
            &id(1),
        ));
        let shown = lease.to_json();
        assert_eq!(shown["started_at"], "2026-11-22T12:00:00.000Z");
        assert_eq!(shown["expires_at"], "2026-11-22T12:00:30.000Z");
        assert_eq!(shown["metadata"]["nested"]["x"][1], Value::Null);
        assert_eq!(shown["id"], id(1).as_str());
    }

    #[test]
    fn expired_lease_is_inactive_from_its_expiry_instant_and_frees_its_slot() {
        let settings = Settings::default();
        let mut leases = Leases::default();
        for n in 0..3 {
            started(leases.start(at(T0), &settings, None, &meta(""), &id(n)));
        }
        let just_before = at("2026-11-22T12:00:59.999Z").timestamp_millis();
        let expiry = at("2026-11-22T12:01:00Z").timestamp_millis();
        assert_eq!(leases.active(just_before).len(), 3);
        assert_eq!(leases.active(expiry).len(), 0);
        let lease = started(leases.start(
            at("2026-11-22T12:01:00Z"),
            &settings,
            None,
            &meta(""),
            &id(7),
        ));
        assert_eq!(
            leases.leases,
            vec![lease],
            "expired leases are pruned on write"
        );
    }

    #[test]
    fn heartbeat_extends_from_now_and_keeps_the_stream_past_its_first_expiry() {
        let settings = Settings::default();
        let mut leases = Leases::default();
        started(leases.start(at(T0), &settings, None, &meta(""), &id(1)));
        let lease = leases
            .heartbeat(at("2026-11-22T12:00:50Z"), &settings, &id(1))
            .unwrap();
        assert_eq!(rfc3339(lease.expires_ms), "2026-11-22T12:01:50.000Z");
        assert_eq!(rfc3339(lease.started_ms), "2026-11-22T12:00:00.000Z");
        assert_eq!(
            leases
                .active(at("2026-11-22T12:01:30Z").timestamp_millis())
                .len(),
            1
        );
        let late = leases.heartbeat(at("2026-11-22T12:01:50Z"), &settings, &id(1));
        assert!(matches!(late, Err(StreamsError::NotFound)), "{late:?}");
    }

    #[test]
    fn heartbeat_never_shortens_a_lease_when_the_clock_steps_back() {
        let settings = Settings::default();
        let mut leases = Leases::default();
        started(leases.start(at(T0), &settings, None, &meta(""), &id(1)));
        let lease = leases
            .heartbeat(at("2026-11-22T11:59:00Z"), &settings, &id(1))
            .unwrap();
        assert_eq!(rfc3339(lease.expires_ms), "2026-11-22T12:01:00.000Z");
    }

    #[test]
    fn end_frees_the_slot_and_unknown_ids_are_not_found() {
        let settings = Settings {
            limit: 1,
            ..Settings::default()
        };
        let mut leases = Leases::default();
        started(leases.start(at(T0), &settings, None, &meta(""), &id(1)));
        assert!(matches!(
            leases.end(at(T0), &id(2)),
            Err(StreamsError::NotFound)
        ));
        leases.end(at(T0), &id(1)).unwrap();
        assert!(matches!(
            leases.end(at(T0), &id(1)),
            Err(StreamsError::NotFound)
        ));
        assert!(matches!(
            leases.heartbeat(at(T0), &settings, &id(1)),
            Err(StreamsError::NotFound)
        ));
        started(leases.start(at(T0), &settings, None, &meta(""), &id(3)));
    }

    #[test]
    fn start_with_a_known_idempotency_key_replays_even_at_the_limit() {
        let settings = Settings::default();
        let mut leases = Leases::default();
        let first = started(leases.start(
            at(T0),
            &settings,
            Some(&key("k1")),
            &meta(r#"{"a":1}"#),
            &id(1),
        ));
        started(leases.start(at(T0), &settings, None, &meta(""), &id(2)));
        started(leases.start(at(T0), &settings, None, &meta(""), &id(3)));
        let before = leases.clone();
        let again = leases.start(
            at("2026-11-22T12:00:10Z"),
            &settings,
            Some(&key("k1")),
            &meta(r#"{"a":1}"#),
            &id(4),
        );
        assert_eq!(again.unwrap(), Started::Replayed(first));
        assert_eq!(leases, before);
        let other = leases.start(at(T0), &settings, Some(&key("k2")), &meta(""), &id(5));
        assert!(matches!(other, Err(StreamsError::LimitReached(3))));
    }

    #[test]
    fn idempotency_key_with_other_metadata_is_refused() {
        let settings = Settings::default();
        let mut leases = Leases::default();
        started(leases.start(
            at(T0),
            &settings,
            Some(&key("k")),
            &meta(r#"{"a":1}"#),
            &id(1),
        ));
        let err = leases.start(
            at(T0),
            &settings,
            Some(&key("k")),
            &meta(r#"{"a":2}"#),
            &id(2),
        );
        assert!(
            matches!(err, Err(StreamsError::IdempotencyKeyReused)),
            "{err:?}"
        );
    }

    #[test]
    fn idempotency_key_is_forgotten_with_its_lease() {
        let settings = Settings::default();
        let mut leases = Leases::default();
        started(leases.start(at(T0), &settings, Some(&key("k")), &meta(""), &id(1)));
        leases.end(at(T0), &id(1)).unwrap();
        started(leases.start(at(T0), &settings, Some(&key("k")), &meta(""), &id(2)));
        let later = at("2026-11-22T12:05:00Z");
        let lease = started(leases.start(later, &settings, Some(&key("k")), &meta(""), &id(3)));
        assert_eq!(lease.id, id(3).as_str());
    }

    #[test]
    fn identity_is_the_first_forwarded_address_else_cf_connecting_ip() {
        let header = HeaderName::from_static(DEFAULT_IDENTITY_HEADER);
        let identity = |pairs: &[(&str, &str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.append(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            Identity::from_headers(&headers, &header).map(|i| i.as_str().to_owned())
        };
        let ok = |pairs: &[(&str, &str)]| identity(pairs).unwrap();
        assert_eq!(ok(&[("x-forwarded-for", "10.0.0.1")]), "10.0.0.1");
        assert_eq!(
            ok(&[("x-forwarded-for", " 10.0.0.1 , 10.0.0.2")]),
            "10.0.0.1"
        );
        assert_eq!(
            ok(&[("x-forwarded-for", "2001:db8::1,10.0.0.2")]),
            "2001:db8::1"
        );
        assert_eq!(
            ok(&[
                ("x-forwarded-for", "10.0.0.1"),
                ("cf-connecting-ip", "10.9.9.9")
            ]),
            "10.0.0.1"
        );
        assert_eq!(ok(&[("cf-connecting-ip", " 10.9.9.9 ")]), "10.9.9.9");
        assert_eq!(
            ok(&[
                ("x-forwarded-for", " , 10.0.0.2"),
                ("cf-connecting-ip", "10.9.9.9")
            ]),
            "10.9.9.9",
            "an unusable forwarded-for falls back"
        );
        for missing in [
            vec![],
            vec![("x-forwarded-for", "")],
            vec![("x-forwarded-for", " ,10.0.0.1")],
            vec![("cf-connecting-ip", "  ")],
            vec![("x-real-ip", "10.0.0.1")],
        ] {
            assert!(
                matches!(identity(&missing), Err(StreamsError::MissingIdentity)),
                "{missing:?}"
            );
        }
        let long = "a".repeat(IDENTITY_MAX_BYTES + 1);
        assert!(identity(&[("x-forwarded-for", &long)]).is_err());
    }

    #[test]
    fn identity_header_name_is_configurable() {
        let settings =
            Settings::from_config(|k| (k == "identity_header").then(|| "X-User-Id".into()))
                .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        headers.insert("x-user-id", HeaderValue::from_static("alice"));
        let identity = Identity::from_headers(&headers, &settings.identity_header).unwrap();
        assert_eq!(identity.as_str(), "alice");
    }

    #[test]
    fn settings_default_when_unset_and_refuse_invalid_values() {
        assert_eq!(
            Settings::from_config(|_| None).unwrap(),
            Settings::default()
        );
        let set =
            |k: &'static str, v: &'static str| move |key: &str| (key == k).then(|| v.to_owned());
        let s = Settings::from_config(set("stream_limit", "5")).unwrap();
        assert_eq!(s.limit, 5);
        let s = Settings::from_config(set("stream_lease_seconds", " 2 ")).unwrap();
        assert_eq!(s.lease, Duration::seconds(2));
        for (k, v) in [
            ("stream_limit", "0"),
            ("stream_limit", "-1"),
            ("stream_limit", "101"),
            ("stream_limit", "three"),
            ("stream_lease_seconds", "0"),
            ("stream_lease_seconds", "86401"),
            ("stream_lease_seconds", "1.5"),
            ("identity_header", "bad header"),
        ] {
            assert!(
                matches!(
                    Settings::from_config(set(k, v)),
                    Err(StreamsError::Config(_))
                ),
                "{k}={v}"
            );
        }
    }

    #[test]
    fn metadata_must_be_a_json_object_and_empty_means_none() {
        assert_eq!(meta(""), Metadata::default());
        assert_eq!(meta(" \n"), Metadata::default());
        assert_eq!(meta("{}"), Metadata::default());
        for bad in [
            "{",
            "null",
            "[]",
            "[{}]",
            "\"x\"",
            "3",
            "true",
            "{\"a\":1}x",
        ] {
            assert!(
                matches!(
                    Metadata::parse(bad.as_bytes()),
                    Err(StreamsError::InvalidBody(_))
                ),
                "{bad:?}"
            );
        }
        let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(METADATA_MAX_BYTES));
        assert!(matches!(
            Metadata::parse(big.as_bytes()),
            Err(StreamsError::MetadataTooLarge)
        ));
    }

    #[test]
    fn idempotency_key_must_be_printable_ascii_up_to_255() {
        let parse = |v: &[u8]| {
            let mut headers = HeaderMap::new();
            headers.insert(IDEMPOTENCY_HEADER, HeaderValue::from_bytes(v).unwrap());
            IdempotencyKey::from_headers(&headers)
        };
        assert_eq!(parse(b" a b ").unwrap().unwrap().as_str(), "a b");
        assert!(parse(&[b'k'; 255]).is_ok());
        for bad in [&b""[..], b"  ", &[b'k'; 256], b"caf\xc3\xa9", b"a\tb"] {
            assert!(
                matches!(parse(bad), Err(StreamsError::InvalidIdempotencyKey)),
                "{bad:?}"
            );
        }
        assert!(IdempotencyKey::from_headers(&HeaderMap::new())
            .unwrap()
            .is_none());
    }

    #[test]
    fn stream_id_is_32_lowercase_hex() {
        let fresh = StreamId::random(|| 0xfeed);
        assert_eq!(fresh.as_str(), "000000000000feed000000000000feed");
        assert!(StreamId::parse(fresh.as_str()).is_ok());
        for bad in ["", "abc", &"A".repeat(32), &"g".repeat(32), &"a".repeat(33)] {
            assert!(
                matches!(StreamId::parse(bad), Err(StreamsError::NotFound)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn stored_leases_round_trip_and_corrupt_values_are_reported() {
        let settings = Settings::default();
        let mut leases = Leases::default();
        started(leases.start(
            at(T0),
            &settings,
            Some(&key("k")),
            &meta(r#"{"a":[1]}"#),
            &id(1),
        ));
        started(leases.start(at(T0), &settings, None, &meta(""), &id(2)));
        let value = leases.to_value().unwrap();
        assert_eq!(Leases::from_value(&value).unwrap(), leases);
        assert!(matches!(
            Leases::from_value(&json!({"leases": 3})),
            Err(StreamsError::Corrupt(_))
        ));
    }
}
