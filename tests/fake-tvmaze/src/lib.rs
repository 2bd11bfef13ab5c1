//! A fake TvMaze API server on loopback, for testing the scraper against a real HTTP
//! peer rather than a stub inside the code under test. [`FakeTvMaze::start`] binds
//! `127.0.0.1:0` (by default) and serves on its own thread and Tokio runtime, so sync
//! tests, async tests and other processes (through the `fake-tvmaze` binary) can all
//! use it. Its catalogue is generated from a seed: ids ascending with gaps (and whole
//! empty index pages), realistic show JSON, casts in TvMaze's exact shape including the
//! awkward cases (a person listed twice, missing and equal birthdays, empty casts,
//! names outside ASCII). Tests read the truth with [`FakeTvMaze::shows`], change it
//! with [`FakeTvMaze::update_show`] / [`FakeTvMaze::add_show`] /
//! [`FakeTvMaze::delete_show`], make the server misbehave with
//! [`FakeTvMaze::set_faults`], and count requests with [`FakeTvMaze::request_log`].
//!
//! Endpoints, as TvMaze's (all `GET`; anything else 405):
//!
//! | path | answer |
//! | --- | --- |
//! | `/shows?page=N` | the shows with ids `N·P … N·P+P−1` (P = [`Config::page_size`], 250), possibly `[]`; 404 past the page of the highest live id; 400 if `N` is not a number |
//! | `/shows/{id}` | one show; with `?embed=cast` (or `embed[]=cast`) also `_embedded.cast` |
//! | `/shows/{id}/cast` | the cast: `[{"person", "character", "self", "voice"}]` |
//! | `/updates/shows` | `{"<id>": updated, …}` for every show ever, deleted ones included; `?since=day\|week\|month` keeps those updated within the last 1/7/30 days of the wall clock |
//! | anything else, unknown or deleted ids | 404 `{"name":"Not Found","message":"","code":0,"status":404}` |
//!
//! Time: generated `updated` stamps lie in the three years before [`GENERATED_BEFORE`]
//! (November 2023); each mutation stamps the show with the wall clock's unix seconds,
//! or one second after the previous mutation's stamp if that is later, so every change
//! gets a distinct, increasing timestamp. A deleted show answers 404 from then on and
//! stays in `/updates/shows` with the timestamp of its deletion: a scraper that
//! re-fetches every show whose timestamp moved sees the 404 and drops it.
//!
//! Misbehaviour ([`Faults`], changeable while running): at most
//! [`Faults::rate_limit_calls`] admitted requests per [`Faults::rate_limit_window`] per
//! client IP address (a sliding window; refused requests do not count), else 429 with
//! `Retry-After`; a "429 storm" answering the next N requests 429 whatever the limit;
//! injected 500/502/503 with probability [`Faults::fault_rate`]; and a sleep of
//! [`Faults::slow_delay`] before answering with probability [`Faults::slow_rate`].
//! Faults and slowness are a hash of the seed and the request's number (0, 1, 2, … in
//! arrival order), so a client sending the same requests one at a time meets the same
//! faults on every run. Every request is logged, refused or not.

mod data;
mod server;

pub use data::{
    cast_json, show_json, show_with_cast_json, Character, Country, Credit, Network, Person, Show,
    GENERATED_BEFORE,
};

use anyhow::{Context, Result};
use serde_json::Value;
use server::{lock, Control, Shared};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// What to generate and how to behave. `Config::default()` is TvMaze-like: 600 shows,
/// pages of 250 ids, page 1 empty, 20 calls per 10 s.
#[derive(Debug, Clone)]
pub struct Config {
    /// Number of shows generated (600).
    pub shows: usize,
    /// Seeds the catalogue and the fault pattern (1).
    pub seed: u64,
    /// Up to this many ids are skipped between consecutive shows, uniformly (3).
    pub max_id_gap: u64,
    /// Ids per `/shows?page=N` page (250, as TvMaze).
    pub page_size: u64,
    /// Index pages left without shows when the ids reach past them (`[1]`).
    pub empty_pages: Vec<u64>,
    pub faults: Faults,
    /// Where to listen (`127.0.0.1:0`: a free loopback port).
    pub listen: SocketAddr,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            shows: 600,
            seed: 1,
            max_id_gap: 3,
            page_size: 250,
            empty_pages: vec![1],
            faults: Faults::default(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

/// How the server misbehaves. `Faults::default()` is TvMaze's rate limit and nothing
/// else; [`Faults::none`] turns the limit off too.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Admitted requests per window per client IP; 0 = unlimited (20).
    pub rate_limit_calls: u32,
    /// The sliding window of the rate limit (10 s; e.g. 200 ms for fast tests).
    pub rate_limit_window: Duration,
    /// Probability (0.0–1.0) that an admitted request gets a 500, 502 or 503 (0.0).
    pub fault_rate: f64,
    /// Probability (0.0–1.0) that a request is answered only after `slow_delay` (0.0).
    pub slow_rate: f64,
    /// (2 s)
    pub slow_delay: Duration,
    /// The next this many requests get 429, counting down (0).
    pub storm_429: u32,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            rate_limit_calls: 20,
            rate_limit_window: Duration::from_secs(10),
            fault_rate: 0.0,
            slow_rate: 0.0,
            slow_delay: Duration::from_secs(2),
            storm_429: 0,
        }
    }
}

impl Faults {
    /// A perfectly behaved server: no rate limit, no faults.
    pub fn none() -> Self {
        Faults {
            rate_limit_calls: 0,
            ..Faults::default()
        }
    }

    /// TvMaze's 20 calls per window, with the window scaled to `window`.
    pub fn rate_limited(window: Duration) -> Self {
        Faults {
            rate_limit_window: window,
            ..Faults::default()
        }
    }
}

/// Why a request got the answer it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Answered from the catalogue (200, or 400/404/405 as TvMaze would).
    Served,
    /// 429 from a storm ([`Faults::storm_429`]).
    Storm,
    /// 429 from the rate limit.
    RateLimited,
    /// An injected 500/502/503.
    Fault,
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    /// Arrival number since start (not reset by [`FakeTvMaze::reset_log`]); also sent
    /// back as the `x-fake-tvmaze-seq` response header.
    pub seq: u64,
    pub method: String,
    /// Path and query, e.g. `/shows?page=2`.
    pub path: String,
    pub status: u16,
    pub cause: Cause,
    /// Whether the answer was delayed by `slow_delay`.
    pub slow: bool,
    /// When it arrived.
    pub at: Instant,
}

/// A running fake; dropping it stops the server.
#[derive(Debug)]
pub struct FakeTvMaze {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeTvMaze {
    /// Generates the catalogue, binds `config.listen` and starts serving.
    pub fn start(config: Config) -> Result<Self> {
        let listener = std::net::TcpListener::bind(config.listen)
            .with_context(|| format!("binding {}", config.listen))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let catalog = data::Catalog::generate(
            config.shows,
            config.seed,
            config.max_id_gap,
            config.page_size,
            &config.empty_pages,
        );
        let shared = Arc::new(Shared {
            base_url: format!("http://{addr}"),
            seed: config.seed,
            catalog: Mutex::new(catalog),
            control: Mutex::new(Control::new(config.faults)),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the fake's runtime")?;
        let (shutdown, stopped) = oneshot::channel();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fake-tvmaze {addr}"))
            .spawn(move || runtime.block_on(server::serve(listener, serving, stopped)))
            .context("starting the fake's thread")?;
        Ok(FakeTvMaze {
            addr,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`, no trailing slash: the scraper's TvMaze base URL.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Ids per index page.
    pub fn page_size(&self) -> u64 {
        lock(&self.shared.catalog).page_size()
    }

    /// The truth: every live show in id order, each as `/shows/{id}?embed=cast`
    /// serves it (show JSON with `_embedded.cast`).
    pub fn shows(&self) -> Vec<Value> {
        let catalog = lock(&self.shared.catalog);
        catalog
            .shows()
            .map(|s| show_with_cast_json(s, self.base_url()))
            .collect()
    }

    /// The truth as typed values, in id order.
    pub fn catalog(&self) -> Vec<Show> {
        lock(&self.shared.catalog).shows().cloned().collect()
    }

    pub fn show(&self, id: u64) -> Option<Show> {
        lock(&self.shared.catalog).show(id).cloned()
    }

    /// Changes a live show with `f` and stamps it as updated now. `f` cannot change
    /// the id or the stamp. `false` if there is no such live show.
    pub fn update_show(&self, id: u64, f: impl FnOnce(&mut Show)) -> bool {
        lock(&self.shared.catalog).update_show(id, f)
    }

    /// Adds a generated show, adjusted by `f`, with an id above every id used so far;
    /// stamped as updated now. Returns its id.
    pub fn add_show(&self, f: impl FnOnce(&mut Show)) -> u64 {
        lock(&self.shared.catalog).add_show(f)
    }

    /// Deletes a live show: 404 from now on, and in `/updates/shows` with the time
    /// of its deletion. `false` if there is no such live show.
    pub fn delete_show(&self, id: u64) -> bool {
        lock(&self.shared.catalog).delete_show(id)
    }

    /// Every request since start or the last [`reset_log`](Self::reset_log), in
    /// arrival order.
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        let mut log = lock(&self.shared.control).log.clone();
        log.sort_by_key(|r| r.seq);
        log
    }

    pub fn reset_log(&self) {
        lock(&self.shared.control).log.clear();
    }

    /// The log so far, emptied in the same step: no request is missed or seen twice
    /// by successive calls.
    pub fn take_log(&self) -> Vec<LoggedRequest> {
        let mut log = std::mem::take(&mut lock(&self.shared.control).log);
        log.sort_by_key(|r| r.seq);
        log
    }

    /// The current settings (`storm_429` counts down as the storm passes).
    pub fn faults(&self) -> Faults {
        lock(&self.shared.control).faults.clone()
    }

    /// Replaces the settings; requests already in flight are unaffected.
    pub fn set_faults(&self, faults: Faults) {
        lock(&self.shared.control).faults = faults;
    }

    /// Answers the next `n` requests with 429.
    pub fn storm_429(&self, n: u32) {
        lock(&self.shared.control).faults.storm_429 = n;
    }

    /// Stops serving and waits for the server thread; open connections are closed.
    /// Idempotent; also done on drop.
    pub fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for FakeTvMaze {
    fn drop(&mut self) {
        self.stop();
    }
}
