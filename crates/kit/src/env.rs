//! What a handler may use of its host: tables, configuration, the clock, randomness.

use crate::router::{Params, Router};
use crate::table::{StoreError, Table};
use chrono::{DateTime, Utc};
use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

/// Configuration and secrets by snake_case name (Spin variables; Workers vars and
/// secrets, upper-cased by the Worker).
pub trait Config {
    fn get(&self, key: &str) -> Option<String>;
}

/// The host's wall clock. Hosts supply it because `SystemTime::now()` panics on
/// wasm32-unknown-unknown inside Workers.
#[async_trait::async_trait(?Send)]
pub trait Clock {
    fn now(&self) -> DateTime<Utc>;

    /// Waits `ms` milliseconds of this clock's time (the scraper paces its requests to
    /// TvMaze's rate limit with it). A clock that never moves returns at once.
    async fn sleep(&self, ms: u64);
}

/// Why an outbound request got no HTTP response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The host refused the destination (Spin's `allowed_outbound_hosts`).
    #[error("outbound request denied: {0}")]
    Denied(String),
    /// DNS, connect, TLS, timeout or a broken body.
    #[error("outbound request failed: {0}")]
    Network(String),
}

/// Outbound HTTP through the host: Spin's `wasi:http` outgoing handler, the Workers
/// `fetch`, a hyper client natively. Any HTTP status is a successful fetch.
#[async_trait::async_trait(?Send)]
pub trait Fetch {
    async fn fetch(&self, req: crate::Request) -> Result<crate::Response, FetchError>;
}

/// For hosts and tests with no outbound network.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFetch;

#[async_trait::async_trait(?Send)]
impl Fetch for NoFetch {
    async fn fetch(&self, req: crate::Request) -> Result<crate::Response, FetchError> {
        Err(FetchError::Denied(format!(
            "no outbound HTTP here: {}",
            req.uri()
        )))
    }
}

/// Opens a named table on whichever backend the host binds that name to.
pub trait Tables {
    fn open(&self, name: &str) -> Result<Rc<dyn Table>, StoreError>;

    /// Every backend this host can bind a table to, for the storage self-test.
    fn backends(&self) -> Vec<Backend> {
        vec![Backend {
            name: "default",
            atomic: true,
            whole_partitions: false,
        }]
    }

    /// Opens `name` on backend `backend` (one of [`Tables::backends`]).
    fn open_on(&self, backend: &str, name: &str) -> Result<Rc<dyn Table>, StoreError> {
        let _ = backend;
        self.open(name)
    }

    /// Pairs of a backend keeping partitions whole as older versions did and the
    /// backend of this version that moves them into items one by one, over the same
    /// storage: the storage self-test writes through the first and reads through the
    /// second.
    fn layout_moves(&self) -> Vec<(&'static str, &'static str)> {
        Vec::new()
    }

    /// The most conditional writes one request may make, where the host limits it. On
    /// Spin that is 256 compare-and-swaps per component instance: Spin frees a swapped
    /// `cas` resource only when the instance ends. Work that writes in a loop (a
    /// scraper tick) sizes itself by this.
    fn conditional_write_limit(&self) -> Option<u32> {
        None
    }

    /// Round trips to the backends so far, for hosts that build one `Tables` per
    /// request (see [`crate::table::RoundTrips`]).
    fn round_trips(&self) -> u64 {
        0
    }
}

/// A storage backend a host offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    pub name: &'static str,
    /// Whether its conditional writes are atomic under concurrent writers.
    pub atomic: bool,
    /// Whether it keeps each partition as one stored value, and so refuses writes past
    /// [`crate::table::MAX_PARTITION_BYTES`]; a backend that stores items one by one
    /// has no cap of its own on a partition.
    pub whole_partitions: bool,
}

impl Backend {
    /// The backends of a host that keeps tables in pages over its key-value store
    /// (`default`), with the layout of whole partitions over the same store beside it
    /// (`whole`) for the storage self-test's move between them.
    pub fn pages_and_whole() -> Vec<Backend> {
        vec![
            Backend {
                name: "default",
                atomic: true,
                whole_partitions: false,
            },
            Backend {
                name: "whole",
                atomic: true,
                whole_partitions: true,
            },
        ]
    }
}

/// Everything a request handler may touch outside its own code.
pub struct Env {
    pub tables: Box<dyn Tables>,
    pub config: Box<dyn Config>,
    pub clock: Box<dyn Clock>,
    pub fetch: Box<dyn Fetch>,
    /// The deployment's static files (the `/docs` page's assets): Spin's `files`
    /// mounts, a folder natively, the `ASSETS` binding on Workers; see [`crate::files`].
    pub files: Box<dyn crate::Files>,
    /// The data centre's cache for public reads (the Workers Cache API; an in-process
    /// map natively; [`crate::NoCache`] on Spin); see [`crate::cache`].
    pub cache: Box<dyn crate::EdgeCache>,
    /// A random u64 from the host (WASI random, `crypto`/`Math.random` on Workers).
    pub random: fn() -> u64,
    /// Writes one log line where the host keeps logs (stdout on Spin, the console on
    /// Workers); see [`crate::log`].
    pub log: fn(&str),
}

impl Env {
    pub fn table(&self, name: &str) -> Result<Rc<dyn Table>, StoreError> {
        self.tables.open(name)
    }

    /// A config value, treating an empty string as unset (Spin variables cannot be
    /// absent once declared, so "" is how a manifest leaves one unset).
    pub fn config(&self, key: &str) -> Option<String> {
        self.config.get(key).filter(|v| !v.is_empty())
    }
}

/// What one request's handler gets: the environment and the instant the request is
/// served at, read once so that every check within a request agrees on "today".
pub struct Ctx<'a> {
    pub env: &'a Env,
    pub now: DateTime<Utc>,
    /// The pattern of the route [`Ctx::resolve`] matched, for the request's log line.
    pub(crate) route: Rc<Cell<Option<&'static str>>>,
}

impl Ctx<'_> {
    /// Resolves `req` on `router` and notes the route that matched for the log line.
    pub fn resolve<R: Copy>(
        &self,
        router: &Router<R>,
        req: &crate::Request,
    ) -> Result<(R, Params), crate::ApiError> {
        let (target, params) = router.resolve(req.method(), req.uri().path())?;
        self.route.set(Some(params.route()));
        Ok((target, params))
    }
}

/// A clock that always says the same instant: tests and the native benchmark host.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

#[async_trait::async_trait(?Send)]
impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }

    /// Its time does not pass, so no wait is ever owed.
    async fn sleep(&self, _ms: u64) {}
}

/// Configuration from a map: native hosts and tests.
#[derive(Debug, Clone, Default)]
pub struct MapConfig(pub HashMap<String, String>);

impl Config for MapConfig {
    fn get(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
}
