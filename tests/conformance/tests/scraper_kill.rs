//! A scraper tick killed at any point — before a request, after a request whose answer
//! it never saw, or in the middle of its storage writes — loses and duplicates nothing:
//! ticks that follow finish the scrape and the stored shows equal the source exactly.
//!
//! Runs the real tick natively (memory tables, hyper client) against the fake TvMaze
//! server; a tick is "killed" by dropping its future where the wrapper makes it hang.

use anyhow::Result;
use async_trait::async_trait;
use conformance::native::HyperFetch;
use fake_tvmaze::{FakeTvMaze, Faults};
use kit::table::memory::MemoryKv;
use kit::table::{Cond, Item, Page, StoreError, Table};
use kit::{Env, Fetch, FetchError, MapConfig, Request, Response, Tables};
use serde_json::Value;
use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;
use tvmaze_scraper::store::{ShowStore, SHOWS_TABLE};

/// Where the next kill happens, counted down by fetches and writes.
#[derive(Default)]
struct Kill {
    fetches_left: Cell<Option<usize>>,
    /// Send the fatal request, then hang: TvMaze answered, the tick never knew.
    after_send: Cell<bool>,
    writes_left: Cell<Option<usize>>,
    /// Set when the tick reached its kill point and hangs there.
    hung: Cell<bool>,
}

impl Kill {
    fn plan(&self, plan: Plan) {
        self.fetches_left.set(plan.fetches);
        self.after_send.set(plan.after_send);
        self.writes_left.set(plan.writes);
        self.hung.set(false);
    }

    async fn hang(&self) {
        self.hung.set(true);
        std::future::pending::<()>().await;
    }

    async fn until_hung(&self) {
        while !self.hung.get() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn take(counter: &Cell<Option<usize>>) -> bool {
        match counter.get() {
            Some(0) => true,
            Some(n) => {
                counter.set(Some(n - 1));
                false
            }
            None => false,
        }
    }
}

struct KillingFetch {
    inner: HyperFetch,
    kill: Rc<Kill>,
}

#[async_trait(?Send)]
impl Fetch for KillingFetch {
    async fn fetch(&self, req: Request) -> Result<Response, FetchError> {
        if Kill::take(&self.kill.fetches_left) {
            if self.kill.after_send.get() {
                let _ = self.inner.fetch(req).await;
            }
            self.kill.hang().await;
            return Err(FetchError::Network("unreachable: the tick hangs".into()));
        }
        self.inner.fetch(req).await
    }
}

struct KillingTable {
    inner: Rc<dyn Table>,
    kill: Rc<Kill>,
}

impl KillingTable {
    async fn write_gate(&self) {
        if Kill::take(&self.kill.writes_left) {
            self.kill.hang().await;
        }
    }
}

#[async_trait(?Send)]
impl Table for KillingTable {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.inner.get(pk, sk).await
    }
    async fn put(&self, pk: &str, sk: &str, value: Value, cond: Cond) -> Result<u64, StoreError> {
        self.write_gate().await;
        self.inner.put(pk, sk, value, cond).await
    }
    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<bool, StoreError> {
        self.write_gate().await;
        self.inner.delete(pk, sk, cond).await
    }
    async fn query(&self, pk: &str, after: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        self.inner.query(pk, after, limit).await
    }
    async fn put_partition(&self, pk: &str, items: Vec<(String, Value)>) -> Result<(), StoreError> {
        self.write_gate().await;
        self.inner.put_partition(pk, items).await
    }
    async fn put_items(&self, pk: &str, items: Vec<(String, Value)>) -> Result<(), StoreError> {
        self.write_gate().await;
        self.inner.put_items(pk, items).await
    }
}

struct KillingTables {
    kv: MemoryKv,
    kill: Rc<Kill>,
}

impl Tables for KillingTables {
    fn open(&self, name: &str) -> Result<Rc<dyn Table>, StoreError> {
        Ok(Rc::new(KillingTable {
            inner: Rc::new(self.kv.table(name)),
            kill: self.kill.clone(),
        }))
    }
}

const BUDGET: usize = 9;

fn env(fake: &FakeTvMaze, kv: &MemoryKv, kill: &Rc<Kill>) -> Env {
    let config: HashMap<String, String> = [
        ("tvmaze_base_url", fake.base_url()),
        ("scraper_fetch_budget", &BUDGET.to_string()),
        ("scraper_backoff_ms", "1"),
        ("scraper_backoff_max_ms", "5"),
        ("scraper_updates_interval_s", "0"),
        // The fake has no rate limit here: no pacing.
        ("scraper_rate_calls", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut env = kit::host::native::env(kv.clone(), MapConfig(config));
    env.tables = Box::new(KillingTables {
        kv: kv.clone(),
        kill: kill.clone(),
    });
    env.fetch = Box::new(KillingFetch {
        inner: HyperFetch::new(),
        kill: kill.clone(),
    });
    env
}

/// The API view of what is stored: `(id, name, cast ids in order)` for every show.
async fn stored(kv: &MemoryKv) -> Result<Vec<(u64, String, Vec<u64>)>> {
    let table = kv.table(SHOWS_TABLE);
    let (shows, _) = ShowStore::new(&table, 250).page(0, u64::MAX).await?;
    Ok(shows
        .into_iter()
        .map(|s| (s.id, s.name, s.cast.iter().map(|c| c.id).collect()))
        .collect())
}

fn truth(fake: &FakeTvMaze) -> Vec<(u64, String, usize)> {
    fake.catalog()
        .into_iter()
        .map(|s| {
            let mut ids: Vec<u64> = s.cast.iter().map(|c| c.person.id).collect();
            ids.sort_unstable();
            ids.dedup();
            (s.id, s.name, ids.len())
        })
        .collect()
}

/// Where one tick is killed: after `fetches` fetches (then, with `after_send`, once
/// the next request has reached TvMaze) or after `writes` storage writes; `None` = never.
#[derive(Debug, Clone, Copy, Default)]
struct Plan {
    fetches: Option<usize>,
    after_send: bool,
    writes: Option<usize>,
}

/// Runs ticks, each killed as the next plan (cyclically) says, until two ticks in a row
/// complete with nothing left to do. Returns (ticks, killed).
async fn scrape_with_kills(env: &Env, kill: &Kill, plans: &[Plan]) -> Result<(usize, usize)> {
    let mut killed = 0;
    let mut idle_in_a_row = 0;
    for round in 0..20_000 {
        kill.plan(plans[round % plans.len()]);
        let now = env.clock.now();
        tokio::select! {
            result = tvmaze_scraper::tick(env, now) => {
                let status = result?;
                let idle = status.phase == tvmaze_scraper::Phase::Incremental
                    && status.pending_updates == 0
                    && status.shows_in_flight == 0
                    && status.last_error.is_none();
                idle_in_a_row = if idle { idle_in_a_row + 1 } else { 0 };
                if idle_in_a_row >= 2 {
                    return Ok((round + 1, killed));
                }
            }
            _ = kill.until_hung() => {
                killed += 1;
                idle_in_a_row = 0;
            }
        }
    }
    anyhow::bail!("the scrape never settled")
}

async fn assert_store_equals_source(fake: &FakeTvMaze, kv: &MemoryKv) -> Result<()> {
    let got = stored(kv).await?;
    for (id, _, cast) in &got {
        let mut unique = cast.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), cast.len(), "show {id}: a person listed twice");
    }
    let got: Vec<(u64, String, usize)> = got
        .into_iter()
        .map(|(id, name, cast)| (id, name, cast.len()))
        .collect();
    let want = truth(fake);
    assert_eq!(got.len(), want.len(), "number of stored shows");
    assert_eq!(got, want, "stored shows differ from the source");
    Ok(())
}

fn fake() -> Result<FakeTvMaze> {
    FakeTvMaze::start(fake_tvmaze::Config {
        shows: 300,
        faults: Faults::none(),
        ..fake_tvmaze::Config::default()
    })
}

fn fetch_plans() -> Vec<Plan> {
    let mut plans = Vec::new();
    for k in 0..=BUDGET {
        plans.push(Plan {
            fetches: Some(k),
            ..Plan::default()
        });
        plans.push(Plan {
            fetches: Some(k),
            after_send: true,
            ..Plan::default()
        });
        if k % 3 == 0 {
            plans.push(Plan::default());
        }
    }
    plans
}

#[tokio::test]
async fn tick_killed_before_or_after_any_fetch_loses_and_duplicates_nothing() -> Result<()> {
    let fake = fake()?;
    let kv = MemoryKv::new();
    let kill = Rc::new(Kill::default());
    let env = env(&fake, &kv, &kill);
    let (ticks, killed) = scrape_with_kills(&env, &kill, &fetch_plans()).await?;
    println!("fetch kills: settled after {ticks} ticks, {killed} killed");
    assert!(
        killed * 2 >= ticks,
        "only {killed} of {ticks} ticks were killed"
    );
    assert_store_equals_source(&fake, &kv).await?;

    // Changes at the source arrive through /updates, kills or not.
    let catalog = fake.catalog();
    assert!(fake.update_show(catalog[2].id, |s| s.name = "Renamed".into()));
    assert!(fake.update_show(catalog[7].id, |s| s.cast.clear()));
    assert!(fake.delete_show(catalog[4].id));
    fake.add_show(|s| s.name = "Added".into());
    scrape_with_kills(&env, &kill, &fetch_plans()).await?;
    assert_store_equals_source(&fake, &kv).await
}

#[tokio::test]
async fn tick_killed_during_any_storage_write_loses_and_duplicates_nothing() -> Result<()> {
    let fake = fake()?;
    let kv = MemoryKv::new();
    let kill = Rc::new(Kill::default());
    let env = env(&fake, &kv, &kill);
    let plans: Vec<Plan> = (0..=BUDGET + 4)
        .map(|w| Plan {
            writes: Some(w),
            ..Plan::default()
        })
        .chain([Plan::default()])
        .collect();
    let (ticks, killed) = scrape_with_kills(&env, &kill, &plans).await?;
    println!("write kills: settled after {ticks} ticks, {killed} killed");
    assert!(
        killed * 2 >= ticks,
        "only {killed} of {ticks} ticks were killed"
    );
    assert_store_equals_source(&fake, &kv).await?;
    assert!(fake.delete_show(fake.catalog()[0].id));
    fake.add_show(|s| s.name = "Added".into());
    scrape_with_kills(&env, &kill, &plans).await?;
    assert_store_equals_source(&fake, &kv).await
}
