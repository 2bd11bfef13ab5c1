//! The TvMaze scraper: one **tick** reads its cursor, spends at most the configured
//! budget of outbound requests on TvMaze, saves progress after every request, and stops.
//!
//! A first full pass walks the show index (`/shows?page=N`), fetches each show's cast
//! and writes each index page's shows as one chunk of the `shows` table (see
//! [`store`]). After it, ticks keep the data fresh from `/updates/shows`: changed shows
//! are re-fetched with `?embed=cast`, deleted ones dropped, and the changes written in
//! batches grouped by chunk. 429/5xx or no response → the tick stops and records an
//! exponential `backoff_until`; nothing fetched before is lost. The cursor lives in table
//! `scraper` (strongly consistent: a Durable Object on Workers) and every save is a
//! conditional write, so two overlapping ticks cannot both advance it.
//!
//! Hosts: the Spin cron component (`components/scraper`), the Worker's scheduled
//! handler, and `POST /api/shows/scrape` in the shows service.

pub mod pace;
pub mod store;
mod tvmaze;

use chrono::{DateTime, Utc};
use kit::table::{Cond, StoreError, Table};
use kit::{ApiError, Env};
use pace::{Pacer, Rate};
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::collections::BTreeMap;
use store::{ShowStore, StoredShow, SHOWS_TABLE};
use tvmaze::{Outcome, TvMaze};

/// The scraper's own table: one item, its state.
pub const STATE_TABLE: &str = "scraper";
/// The state item's partition key: the whole table is this one partition (on Workers,
/// one Durable Object, which also runs the scraper on its alarm).
pub const STATE_PARTITION: &str = "state";
/// Staged updates are written out at least this often, so the state item stays small.
const FLUSH_AT: usize = 100;
/// Clock skew allowed between us and TvMaze when deciding what changed during a pass.
const WATERMARK_SLACK_S: i64 = 300;

/// Everything that can stop a tick before it starts or mid-way.
#[derive(Debug, thiserror::Error)]
pub enum ScraperError {
    #[error("configuration `{0}` is not a valid number")]
    BadConfig(&'static str),
    #[error("another tick saved the cursor first; this one stopped")]
    Concurrent,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ScraperError> for ApiError {
    fn from(err: ScraperError) -> Self {
        match err {
            ScraperError::Concurrent => ApiError::new(
                http::StatusCode::CONFLICT,
                "scrape_in_progress",
                err.to_string(),
            ),
            ScraperError::BadConfig(_) => ApiError::internal(err),
            ScraperError::Store(e) => e.into(),
        }
    }
}

/// Deployment settings (Spin variables / Workers vars), read per tick.
#[derive(Debug, Clone)]
pub struct Config {
    pub base_url: String,
    /// Outbound requests per tick. The default fits Cloudflare's free plan, whose 50
    /// subrequests per invocation also pay for the cursor saves.
    pub budget: u32,
    /// Ids per TvMaze index page (250).
    pub page_size: u64,
    pub backoff_base_ms: i64,
    pub backoff_max_ms: i64,
    /// Seconds between `/updates/shows` polls once the full pass is done.
    pub updates_interval_s: i64,
    /// TvMaze's rate limit, which the tick paces its requests to.
    pub rate: Rate,
    /// The longest a tick runs: it stops before a request whose paced start falls
    /// later, so it ends inside its host's limits and before the next scheduled tick.
    pub tick_max_ms: i64,
}

fn number<T: std::str::FromStr>(
    env: &Env,
    key: &'static str,
    default: T,
) -> Result<T, ScraperError> {
    match env.config(key) {
        Some(v) => v.trim().parse().map_err(|_| ScraperError::BadConfig(key)),
        None => Ok(default),
    }
}

/// Conditional writes a tick may make per TvMaze fetch, at most: the cursor save, and in
/// the updates phase a chunk and the directory.
const WRITES_PER_FETCH: u32 = 3;
/// Conditional writes kept back from a host's limit for the tick's other writes and
/// lost races.
const WRITE_RESERVE: u32 = 16;

impl Config {
    /// The configured budget, capped where the host limits a request's conditional
    /// writes (on Spin: 80 fetches a tick).
    pub fn from_env(env: &Env) -> Result<Self, ScraperError> {
        let mut budget: u32 = number(env, "scraper_fetch_budget", 20)?;
        if let Some(limit) = env.tables.conditional_write_limit() {
            budget = budget.min(limit.saturating_sub(WRITE_RESERVE) / WRITES_PER_FETCH);
        }
        Ok(Self {
            base_url: env
                .config("tvmaze_base_url")
                .unwrap_or_else(|| "https://api.tvmaze.com".to_owned()),
            budget,
            page_size: number(env, "tvmaze_page_size", 250u64)?.max(1),
            backoff_base_ms: number(env, "scraper_backoff_ms", 10_000)?,
            backoff_max_ms: number(env, "scraper_backoff_max_ms", 600_000)?,
            updates_interval_s: number(env, "scraper_updates_interval_s", 3600)?,
            rate: Rate {
                calls: number(env, "scraper_rate_calls", Rate::TVMAZE.calls)?,
                window_ms: number(env, "scraper_rate_window_ms", Rate::TVMAZE.window_ms)?.max(0),
            },
            tick_max_ms: number(env, "scraper_tick_max_ms", 25_000)?,
        })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    FullPass,
    Incremental,
}

/// The index page being scraped: its shows, and the casts fetched so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Inflight {
    page: u64,
    /// `(id, name, updated)` from the index page.
    index: Vec<(u64, String, i64)>,
    /// Index position of the next show whose cast to fetch.
    next: usize,
    done: Vec<StoredShow>,
}

/// The cursor and the status the API reports.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    phase: Phase,
    next_page: u64,
    inflight: Option<Inflight>,
    pass_started_at: Option<i64>,
    full_pass_completed_at: Option<i64>,
    /// Updates stamped at or before this (unix s) are already applied.
    watermark: Option<i64>,
    next_watermark: Option<i64>,
    last_updates_check: Option<i64>,
    /// Ids `/updates/shows` reported as changed, not fetched yet.
    pending: Vec<u64>,
    /// Fetched changes not yet written: id → new show, or `None` when deleted.
    staged: BTreeMap<u64, Option<StoredShow>>,
    backoff_until: Option<i64>,
    backoff_level: u32,
    last_run_at: Option<i64>,
    fetches_last_run: u32,
    last_error: Option<String>,
    ticks: u64,
    total_fetches: u64,
    /// When (host clock, unix ms) the latest requests were answered, for pacing
    /// ([`pace`]); absent in cursors saved before pacing existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    recent_fetches: Vec<i64>,
}

/// `GET /api/shows/scrape/status`.
#[derive(Debug, Serialize)]
pub struct Status {
    pub shows_stored: usize,
    pub phase: Phase,
    pub last_run_at: Option<String>,
    pub fetches_last_run: u32,
    pub backoff_until: Option<String>,
    pub fetch_budget: u32,
    pub next_index_page: u64,
    pub shows_in_flight: usize,
    pub pending_updates: usize,
    pub full_pass_completed_at: Option<String>,
    pub last_error: Option<String>,
    pub ticks: u64,
    pub total_fetches: u64,
}

fn rfc3339_ms(ms: Option<i64>) -> Option<String> {
    ms.and_then(DateTime::<Utc>::from_timestamp_millis)
        .map(kit::log::timestamp)
}

/// The saved state and the version a save must match.
struct Cursor<'a> {
    table: &'a dyn Table,
    state: State,
    version: Option<u64>,
}

impl<'a> Cursor<'a> {
    async fn load(table: &'a dyn Table) -> Result<Self, ScraperError> {
        let (state, version) = match table.get(STATE_PARTITION, "").await? {
            Some(item) => (
                kit::json::from_value(&item.value)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                Some(item.version),
            ),
            None => (State::default(), None),
        };
        Ok(Self {
            table,
            state,
            version,
        })
    }

    /// Saves the state if nobody else saved since we loaded it.
    async fn save(&mut self) -> Result<(), ScraperError> {
        let value =
            serde_json::to_value(&self.state).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let cond = self.version.map_or(Cond::Absent, Cond::Version);
        match self.table.put(STATE_PARTITION, "", value, cond).await {
            Ok(version) => {
                self.version = Some(version);
                Ok(())
            }
            Err(StoreError::ConditionFailed) => Err(ScraperError::Concurrent),
            Err(e) => Err(e.into()),
        }
    }
}

/// The status as of now, without scraping.
pub async fn status(env: &Env) -> Result<Status, ScraperError> {
    let config = Config::from_env(env)?;
    let state_table = env.table(STATE_TABLE)?;
    let cursor = Cursor::load(state_table.as_ref()).await?;
    status_of(env, &config, &cursor.state).await
}

/// The status of cursor state `s`, with the shows stored now.
async fn status_of(env: &Env, config: &Config, s: &State) -> Result<Status, ScraperError> {
    let shows_table = env.table(SHOWS_TABLE)?;
    let stored = ShowStore::new(shows_table.as_ref(), config.page_size)
        .directory()
        .await?
        .total();
    Ok(Status {
        shows_stored: stored,
        phase: s.phase,
        last_run_at: rfc3339_ms(s.last_run_at),
        fetches_last_run: s.fetches_last_run,
        backoff_until: rfc3339_ms(s.backoff_until),
        fetch_budget: config.budget,
        next_index_page: s.next_page,
        shows_in_flight: s.inflight.as_ref().map_or(0, |i| i.done.len()),
        pending_updates: s.pending.len() + s.staged.len(),
        full_pass_completed_at: rfc3339_ms(s.full_pass_completed_at),
        last_error: s.last_error.clone(),
        ticks: s.ticks,
        total_fetches: s.total_fetches,
    })
}

/// What a tick did, for its log line, whether it ended well or not.
#[derive(Debug, Default)]
struct Report {
    fetches: u32,
    shows_written: usize,
    /// The tick did nothing: a backoff was in force.
    backed_off: bool,
}

/// The log line of one tick (see `kit::log`).
#[derive(Debug, Serialize)]
struct TickLine<'a> {
    time: String,
    level: &'static str,
    kind: &'static str,
    fetches: u32,
    shows_written: usize,
    shows_stored: Option<usize>,
    phase: Option<Phase>,
    backed_off: bool,
    backoff_until: Option<&'a str>,
    duration_ms: f64,
    error: Option<String>,
}

/// Runs one tick at `now`; returns the status after it. Writes the tick's log line.
pub async fn tick(env: &Env, now: DateTime<Utc>) -> Result<Status, ScraperError> {
    tick_with_state(env, now).await.map(|(status, _)| status)
}

/// [`tick`], also answering the cursor state it saved.
async fn tick_with_state(env: &Env, now: DateTime<Utc>) -> Result<(Status, State), ScraperError> {
    let started = env.clock.now();
    let mut report = Report::default();
    let result = run_tick(env, now, &mut report).await;
    let status = result.as_ref().ok().map(|(status, _)| status);
    let error = match &result {
        Err(e) => Some(e.to_string()),
        Ok((status, _)) => status.last_error.clone(),
    };
    kit::log::write(
        env,
        &TickLine {
            time: kit::log::timestamp(started),
            level: if error.is_some() { "warn" } else { "info" },
            kind: "scraper_tick",
            fetches: report.fetches,
            shows_written: report.shows_written,
            shows_stored: status.map(|s| s.shows_stored),
            phase: status.map(|s| s.phase),
            backed_off: report.backed_off,
            backoff_until: status.and_then(|s| s.backoff_until.as_deref()),
            duration_ms: kit::log::millis_between(started, env.clock.now()),
            error,
        },
    );
    result
}

async fn run_tick(
    env: &Env,
    now: DateTime<Utc>,
    report: &mut Report,
) -> Result<(Status, State), ScraperError> {
    let config = Config::from_env(env)?;
    let state_table = env.table(STATE_TABLE)?;
    let shows_table = env.table(SHOWS_TABLE)?;
    let store = ShowStore::new(shows_table.as_ref(), config.page_size);
    let mut cursor = Cursor::load(state_table.as_ref()).await?;
    let now_ms = now.timestamp_millis();
    if cursor
        .state
        .backoff_until
        .is_some_and(|until| until > now_ms)
    {
        report.backed_off = true;
        return Ok((status_of(env, &config, &cursor.state).await?, cursor.state));
    }
    let pacer = Pacer::new(config.rate, &cursor.state.recent_fetches);
    let mut api = TvMaze::new(env, &config.base_url, pacer);
    let deadline_ms = env
        .clock
        .now()
        .timestamp_millis()
        .saturating_add(config.tick_max_ms);
    {
        let s = &mut cursor.state;
        s.ticks += 1;
        s.last_run_at = Some(now_ms);
        s.fetches_last_run = 0;
        s.last_error = None;
        s.backoff_until = None;
    }
    cursor.save().await?;
    let mut tick = Tick {
        config: &config,
        store: &store,
        now_ms,
        deadline_ms,
        polled_updates: false,
        shows_written: Cell::new(0),
    };
    let result = tick.run(&mut cursor, &mut api).await;
    report.fetches = api.fetches;
    report.shows_written = tick.shows_written.get();
    if report.shows_written > 0 {
        // The shows API's edge-cached reads (kit::cache) must not hide these.
        kit::cache::invalidate(env, SHOWS_TABLE).await;
    }
    // Count what was spent even when the tick stopped on an error.
    cursor.state.fetches_last_run = api.fetches;
    cursor.state.total_fetches += u64::from(api.fetches);
    if let Err(e) = &result {
        cursor.state.last_error = Some(e.to_string());
    }
    match result {
        Err(ScraperError::Concurrent) => return Err(ScraperError::Concurrent),
        _ => cursor.save().await?,
    }
    result?;
    Ok((status_of(env, &config, &cursor.state).await?, cursor.state))
}

/// One tick for a host that schedules the next one itself (the Worker's scraper
/// Durable Object, on its alarm); returns when (host clock, unix ms) the next should
/// start, if there is work left: when the pacer next allows a request while the full
/// pass or fetched updates are unfinished, at `backoff_until` during a backoff, one
/// backoff step later after a failed tick (never a tight loop). `None` when caught up:
/// the host's cron wakes the chain again for the next `/updates` poll.
pub async fn chained_tick(env: &Env) -> Option<i64> {
    let result = tick_with_state(env, env.clock.now()).await;
    let clock_ms = env.clock.now().timestamp_millis();
    let Ok(config) = Config::from_env(env) else {
        return None;
    };
    let retry_later = Some(clock_ms + config.backoff_base_ms.max(1_000));
    let Ok((status, s)) = result else {
        return retry_later;
    };
    if let Some(until) = s.backoff_until.filter(|&until| until > clock_ms) {
        return Some(until);
    }
    let busy = s.phase == Phase::FullPass
        || s.inflight.is_some()
        || !s.pending.is_empty()
        || !s.staged.is_empty();
    match (busy, status.fetches_last_run) {
        (false, _) => None,
        // Work left but nothing fetched (a zero budget): do not spin.
        (true, 0) => retry_later,
        (true, _) => Some(Pacer::new(config.rate, &s.recent_fetches).next_slot(clock_ms)),
    }
}

struct Tick<'a> {
    config: &'a Config,
    store: &'a ShowStore<'a>,
    now_ms: i64,
    /// Host-clock instant (unix ms) after which no request starts.
    deadline_ms: i64,
    /// Shows written to (or removed from) the shows table so far.
    shows_written: Cell<usize>,
    /// `/updates/shows` is polled at most once per tick, whatever the interval.
    polled_updates: bool,
}

/// What one step of a tick did.
enum Step {
    /// Did some work; go on.
    Progress,
    /// Nothing left to do in this tick.
    Idle,
    /// TvMaze said wait.
    Backoff(String),
}

impl Tick<'_> {
    async fn run(
        &mut self,
        cursor: &mut Cursor<'_>,
        api: &mut TvMaze<'_>,
    ) -> Result<(), ScraperError> {
        loop {
            // Storage-only steps first: they cost no fetch and free up state.
            let step = if let Some(step) = self.write_step(&mut cursor.state).await? {
                step
            } else if api.fetches >= self.config.budget || api.next_slot() > self.deadline_ms {
                Step::Idle
            } else {
                let before = api.fetches;
                let step = self.fetch_step(&mut cursor.state, api).await;
                if api.fetches > before && !matches!(step, Step::Backoff(_)) {
                    cursor.state.backoff_level = 0;
                }
                cursor.state.fetches_last_run = api.fetches;
                cursor.state.recent_fetches = api.pacer.recent();
                step
            };
            match step {
                Step::Progress => cursor.save().await?,
                Step::Idle => return Ok(()),
                Step::Backoff(why) => {
                    let s = &mut cursor.state;
                    s.backoff_level = s.backoff_level.saturating_add(1);
                    let factor = 1i64 << s.backoff_level.saturating_sub(1).min(20);
                    let delay = self
                        .config
                        .backoff_base_ms
                        .saturating_mul(factor)
                        .min(self.config.backoff_max_ms);
                    // TvMaze says how long its rate limit lasts (waiting less only earns
                    // another 429), within the deployment's own cap on any wait.
                    let delay = delay
                        .max(api.retry_after_ms.unwrap_or(0))
                        .min(self.config.backoff_max_ms);
                    s.backoff_until = Some(self.now_ms + delay);
                    s.last_error = Some(why);
                    cursor.save().await?;
                    return Ok(());
                }
            }
        }
    }

    /// Writes finished work out of the state: a complete index page becomes its chunk;
    /// staged updates are flushed when all pending ones are fetched or too many wait.
    async fn write_step(&self, s: &mut State) -> Result<Option<Step>, ScraperError> {
        if let Some(inflight) = s.inflight.as_ref().filter(|i| i.next >= i.index.len()) {
            self.store
                .write_chunk(inflight.page, inflight.done.clone())
                .await?;
            self.count_written(inflight.done.len());
            s.next_page = inflight.page + 1;
            s.inflight = None;
            return Ok(Some(Step::Progress));
        }
        let all_fetched = s.pending.is_empty() && !s.staged.is_empty();
        if all_fetched || s.staged.len() >= FLUSH_AT {
            self.flush(std::mem::take(&mut s.staged)).await?;
            if s.pending.is_empty() {
                s.watermark = s.next_watermark.or(s.watermark);
            }
            return Ok(Some(Step::Progress));
        }
        Ok(None)
    }

    /// Applies staged changes chunk by chunk: one read and one write per chunk touched.
    async fn flush(&self, staged: BTreeMap<u64, Option<StoredShow>>) -> Result<(), ScraperError> {
        let by_chunk = kit::sorted::group(
            staged
                .into_iter()
                .map(|(id, change)| (self.store.chunk_of(id), (id, change)))
                .collect(),
        );
        for (n, changes) in by_chunk {
            let written = changes.len();
            // The chunk's shows, then the changes: of one id, the change is last and wins.
            let mut shows: Vec<(u64, Option<StoredShow>)> = self
                .store
                .chunk(n)
                .await?
                .into_iter()
                .map(|s| (s.id, Some(s)))
                .collect();
            shows.extend(changes);
            let shows = kit::sorted::last_of_each(shows);
            self.store
                .write_chunk(n, shows.into_iter().filter_map(|(_, s)| s).collect())
                .await?;
            self.count_written(written);
        }
        Ok(())
    }

    fn count_written(&self, n: usize) {
        self.shows_written.set(self.shows_written.get() + n);
    }

    /// Spends one fetch on the next thing to do.
    async fn fetch_step(&mut self, s: &mut State, api: &mut TvMaze<'_>) -> Step {
        match s.phase {
            Phase::FullPass => self.full_pass_step(s, api).await,
            Phase::Incremental => self.incremental_step(s, api).await,
        }
    }

    async fn full_pass_step(&self, s: &mut State, api: &mut TvMaze<'_>) -> Step {
        let Some(inflight) = s.inflight.as_mut() else {
            if s.pass_started_at.is_none() {
                s.pass_started_at = Some(self.now_ms / 1000);
            }
            return match api.index_page(s.next_page).await {
                Outcome::Ok(shows) => {
                    s.inflight = Some(Inflight {
                        page: s.next_page,
                        index: shows
                            .into_iter()
                            .map(|i| (i.id, i.name, i.updated.unwrap_or_default()))
                            .collect(),
                        next: 0,
                        done: Vec::new(),
                    });
                    Step::Progress
                }
                Outcome::NotFound => {
                    s.phase = Phase::Incremental;
                    s.full_pass_completed_at = Some(self.now_ms);
                    s.watermark = s.pass_started_at.map(|t| t - WATERMARK_SLACK_S);
                    s.pass_started_at = None;
                    s.last_updates_check = None;
                    Step::Progress
                }
                Outcome::Retry(why) => Step::Backoff(why),
            };
        };
        let Some((id, name, updated)) = inflight.index.get(inflight.next).cloned() else {
            return Step::Progress;
        };
        match api.cast(id).await {
            Outcome::Ok(cast) => {
                inflight.done.push(StoredShow {
                    id,
                    name,
                    cast,
                    updated,
                });
                inflight.next += 1;
                Step::Progress
            }
            // Deleted since the index was read: the updates phase has nothing to add.
            Outcome::NotFound => {
                inflight.next += 1;
                Step::Progress
            }
            Outcome::Retry(why) => Step::Backoff(why),
        }
    }

    async fn incremental_step(&mut self, s: &mut State, api: &mut TvMaze<'_>) -> Step {
        if let Some(&id) = s.pending.first() {
            return match api.show_with_cast(id).await {
                Outcome::Ok(show) => {
                    s.staged.insert(id, Some(show));
                    s.pending.remove(0);
                    Step::Progress
                }
                Outcome::NotFound => {
                    s.staged.insert(id, None);
                    s.pending.remove(0);
                    Step::Progress
                }
                Outcome::Retry(why) => Step::Backoff(why),
            };
        }
        let now_s = self.now_ms / 1000;
        let due = s
            .last_updates_check
            .is_none_or(|last| now_s - last >= self.config.updates_interval_s);
        if !due || self.polled_updates {
            return Step::Idle;
        }
        self.polled_updates = true;
        let watermark = s.watermark.unwrap_or(0);
        let age = now_s - watermark;
        let since = match age {
            a if a <= 86_400 => "day",
            a if a <= 7 * 86_400 => "week",
            a if a <= 30 * 86_400 => "month",
            // Too stale for /updates: walk the whole index again.
            _ => {
                s.phase = Phase::FullPass;
                s.next_page = 0;
                return Step::Progress;
            }
        };
        match api.updates(since).await {
            Outcome::Ok(stamps) => {
                s.last_updates_check = Some(now_s);
                s.pending = stamps
                    .iter()
                    .filter(|&&(_, stamp)| stamp > watermark)
                    .map(|&(id, _)| id)
                    .collect();
                let newest = stamps
                    .iter()
                    .map(|&(_, stamp)| stamp)
                    .max()
                    .unwrap_or(watermark);
                s.next_watermark = Some(newest.max(watermark));
                if s.pending.is_empty() {
                    s.watermark = s.next_watermark;
                }
                Step::Progress
            }
            Outcome::NotFound => Step::Idle,
            Outcome::Retry(why) => Step::Backoff(why),
        }
    }
}
