//! The backend suite every [`Table`] backend must pass.
//!
//! It is ordinary async code over the trait, so it runs natively on the memory backend
//! (`cargo test -p kit`) and, through the health component's admin route
//! `POST /healthz/storage`, on the backends of each wasm host.

use super::{Change, Cond, StoreError, Table};
use crate::Backend;
use serde::Serialize;
use serde_json::{json, Value};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

/// Opens a fresh table by name on the backend under test.
pub type Open<'a> = &'a dyn Fn(&str) -> Result<Rc<dyn Table>, StoreError>;

#[derive(Debug, Serialize)]
pub struct Case {
    pub name: &'static str,
    /// `None` when the case passed, else what went wrong.
    pub failure: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub cases: Vec<Case>,
}

impl Report {
    pub fn all_passed(&self) -> bool {
        self.cases.iter().all(|c| c.failure.is_none())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for case in &self.cases {
            match &case.failure {
                None => writeln!(f, "ok   {}", case.name)?,
                Some(why) => writeln!(f, "FAIL {}: {why}", case.name)?,
            }
        }
        Ok(())
    }
}

pub type CaseResult = Result<(), String>;

fn ensure(cond: bool, what: impl FnOnce() -> String) -> CaseResult {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

fn err(e: StoreError) -> String {
    format!("unexpected store error: {e}")
}

/// One case: a future over the table it is given, boxed so that each case is compiled
/// as its own function rather than inlined into one state machine of every case (which
/// cost the health component, the only wasm that runs the suite, ~7 KB).
type CaseFn = for<'t> fn(&'t dyn Table) -> Pin<Box<dyn Future<Output = CaseResult> + 't>>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), |t| Box::pin($name(t)))),*]
    };
}

/// The cases every backend runs.
const CASES: &[(&str, CaseFn)] = cases![
    get_returns_none_when_item_is_missing,
    put_then_get_returns_value_at_version_one,
    put_again_replaces_value_and_bumps_version,
    put_if_absent_fails_when_item_exists,
    put_at_version_fails_when_version_is_stale,
    delete_reports_whether_item_existed,
    delete_at_version_fails_when_version_is_stale,
    query_returns_sort_key_byte_order,
    query_pages_reassemble_the_partition_exactly,
    query_back_pages_reassemble_the_partition_backwards,
    partitions_and_tables_are_isolated,
    keys_with_unicode_and_slashes_round_trip,
    put_partition_replaces_the_whole_partition,
    get_json_returns_the_value_as_json_text,
    update_writes_what_the_change_decides_and_keeps_when_asked,
    put_items_merges_into_the_partition_and_keeps_other_items,
    get_many_returns_items_in_the_order_asked_across_partitions,
    update_items_changes_several_items_of_a_partition_together,
];

/// The cases of a backend that keeps each partition as one stored value.
const WHOLE_PARTITION_CASES: &[(&str, CaseFn)] =
    cases![writes_past_the_partition_limit_are_refused_and_change_nothing];

/// The cases of a backend that stores items one by one.
const ITEM_CASES: &[(&str, CaseFn)] = cases![a_partition_holds_megabytes_and_reads_back_in_order];

/// The cases only a backend that claims atomic conditional writes runs.
const ATOMIC_CASES: &[(&str, CaseFn)] = cases![
    concurrent_update_items_lose_no_update,
    concurrent_conditional_increments_lose_no_update,
    concurrent_puts_if_absent_on_fresh_partitions_admit_exactly_one,
    concurrent_creations_and_increments_of_fresh_partitions_lose_no_update,
    concurrent_updates_of_fresh_partitions_lose_no_update,
    concurrent_writers_filling_one_partition_lose_nothing,
    concurrent_writers_filling_and_draining_one_partition_keep_exactly_what_stays,
];

/// Which of a backend's cases one run takes: on Spin a request may open 256
/// compare-and-swaps, so the concurrency cases run in a request of their own there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cases {
    #[default]
    All,
    /// Every case but the concurrency ones.
    Plain,
    /// The concurrency cases alone.
    Races,
}

/// Runs the cases of `which` that `backend` claims, each on its own table named
/// `{prefix}{case}` so that a persistent backend can run the suite again with a new
/// prefix: the concurrency cases only where it claims atomic conditional writes, and
/// the cases of its storage layout (partitions whole or items one by one).
pub async fn run_with_prefix(
    open: Open<'_>,
    prefix: &str,
    backend: Backend,
    which: Cases,
) -> Report {
    let atomic_cases: &[(&str, CaseFn)] = if backend.atomic && which != Cases::Plain {
        ATOMIC_CASES
    } else {
        &[]
    };
    let (plain, layout_cases): (&[(&str, CaseFn)], _) = match which {
        Cases::Races => (&[], &[][..]),
        _ if backend.whole_partitions => (CASES, WHOLE_PARTITION_CASES),
        _ => (CASES, ITEM_CASES),
    };
    let mut cases = Vec::new();
    for &(name, case) in plain.iter().chain(layout_cases).chain(atomic_cases) {
        let failure = match open(&format!("{prefix}{name}")) {
            Ok(table) => case(table.as_ref()).await.err(),
            Err(e) => Some(err(e)),
        };
        cases.push(Case { name, failure });
    }
    Report { cases }
}

/// [`run_with_prefix`] with the prefix `suite_`, for `backend`.
pub async fn run(open: Open<'_>, backend: Backend) -> Report {
    run_with_prefix(open, "suite_", backend, Cases::All).await
}

async fn get_returns_none_when_item_is_missing(t: &dyn Table) -> CaseResult {
    let got = t.get("p", "missing").await.map_err(err)?;
    ensure(got.is_none(), || format!("expected none, got {got:?}"))
}

async fn put_then_get_returns_value_at_version_one(t: &dyn Table) -> CaseResult {
    let v = t
        .put("p", "a", json!({"n": 1}), Cond::Any)
        .await
        .map_err(err)?;
    ensure(v == 1, || format!("first version {v}"))?;
    let got = t.get("p", "a").await.map_err(err)?.ok_or("item missing")?;
    ensure(
        got.value == json!({"n": 1}) && got.version == 1 && got.sk == "a",
        || format!("got {got:?}"),
    )
}

async fn put_again_replaces_value_and_bumps_version(t: &dyn Table) -> CaseResult {
    t.put("p", "a", json!(1), Cond::Any).await.map_err(err)?;
    let v = t.put("p", "a", json!(2), Cond::Any).await.map_err(err)?;
    let got = t.get("p", "a").await.map_err(err)?.ok_or("item missing")?;
    ensure(v == 2 && got.version == 2 && got.value == json!(2), || {
        format!("version {v}, got {got:?}")
    })
}

async fn put_if_absent_fails_when_item_exists(t: &dyn Table) -> CaseResult {
    t.put("p", "a", json!("first"), Cond::Absent)
        .await
        .map_err(err)?;
    let second = t.put("p", "a", json!("second"), Cond::Absent).await;
    ensure(second == Err(StoreError::ConditionFailed), || {
        format!("second put-if-absent gave {second:?}")
    })?;
    let got = t.get("p", "a").await.map_err(err)?.ok_or("item missing")?;
    ensure(got.value == json!("first"), || {
        format!("value changed: {got:?}")
    })
}

async fn put_at_version_fails_when_version_is_stale(t: &dyn Table) -> CaseResult {
    let v1 = t.put("p", "a", json!(1), Cond::Any).await.map_err(err)?;
    let v2 = t
        .put("p", "a", json!(2), Cond::Version(v1))
        .await
        .map_err(err)?;
    let stale = t.put("p", "a", json!(3), Cond::Version(v1)).await;
    ensure(stale == Err(StoreError::ConditionFailed), || {
        format!("stale put gave {stale:?}")
    })?;
    let missing = t.put("p", "nope", json!(3), Cond::Version(1)).await;
    ensure(missing == Err(StoreError::ConditionFailed), || {
        format!("versioned put of a missing item gave {missing:?}")
    })?;
    let got = t.get("p", "a").await.map_err(err)?.ok_or("item missing")?;
    ensure(got.version == v2 && got.value == json!(2), || {
        format!("got {got:?}")
    })?;
    let absent = t.get("p", "nope").await.map_err(err)?;
    ensure(absent.is_none(), || format!("failed put wrote {absent:?}"))
}

async fn delete_reports_whether_item_existed(t: &dyn Table) -> CaseResult {
    t.put("p", "a", json!(1), Cond::Any).await.map_err(err)?;
    let first = t.delete("p", "a", Cond::Any).await.map_err(err)?;
    let second = t.delete("p", "a", Cond::Any).await.map_err(err)?;
    ensure(first && !second, || {
        format!("existed: {first}, then {second}")
    })?;
    let got = t.get("p", "a").await.map_err(err)?;
    ensure(got.is_none(), || {
        format!("deleted item still there: {got:?}")
    })
}

async fn delete_at_version_fails_when_version_is_stale(t: &dyn Table) -> CaseResult {
    t.put("p", "a", json!(1), Cond::Any).await.map_err(err)?;
    let v2 = t.put("p", "a", json!(2), Cond::Any).await.map_err(err)?;
    let stale = t.delete("p", "a", Cond::Version(v2 - 1)).await;
    ensure(stale == Err(StoreError::ConditionFailed), || {
        format!("stale delete gave {stale:?}")
    })?;
    let current = t.delete("p", "a", Cond::Version(v2)).await.map_err(err)?;
    ensure(current, || {
        "delete at the current version found nothing".into()
    })
}

async fn query_returns_sort_key_byte_order(t: &dyn Table) -> CaseResult {
    let keys = ["b", "B", "a", "é", "aa", "Z", "10", "9"];
    for k in keys {
        t.put("p", k, json!(k), Cond::Any).await.map_err(err)?;
    }
    let page = t.query("p", None, 100).await.map_err(err)?;
    let got: Vec<&str> = page.items.iter().map(|i| i.sk.as_str()).collect();
    let mut want = keys.to_vec();
    want.sort_unstable();
    ensure(got == want && page.next.is_none(), || {
        format!("got {got:?} next {:?}, want {want:?}", page.next)
    })
}

async fn query_pages_reassemble_the_partition_exactly(t: &dyn Table) -> CaseResult {
    let want: Vec<String> = (0..23).map(|i| format!("k{i:03}")).collect();
    let items = want.iter().map(|k| (k.clone(), json!({"k": k}))).collect();
    t.put_partition("p", items).await.map_err(err)?;
    // `usize::MAX`: "all of it", as the movies API asks for a year.
    for limit in [1, 2, 5, 22, 23, 50, usize::MAX] {
        let mut got = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = t.query("p", after.as_deref(), limit).await.map_err(err)?;
            pages += 1;
            ensure(page.items.len() <= limit, || {
                format!("page over limit {limit}")
            })?;
            got.extend(page.items.iter().map(|i| i.sk.clone()));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
            ensure(pages <= want.len() + 1, || "query never ends".into())?;
        }
        ensure(got == want, || format!("limit {limit}: got {got:?}"))?;
    }
    let empty = t.query("nobody", None, 10).await.map_err(err)?;
    ensure(empty.items.is_empty() && empty.next.is_none(), || {
        format!("empty partition gave {empty:?}")
    })
}

/// Every key of partition `pk` below `before`, read backwards in pages of `limit`.
async fn read_back(
    t: &dyn Table,
    pk: &str,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<String>, String> {
    let mut keys = Vec::new();
    let mut before = before.map(str::to_owned);
    loop {
        let page = t
            .query_back(pk, before.as_deref(), limit)
            .await
            .map_err(err)?;
        if page.items.len() > limit {
            return Err(format!(
                "a page of {} items for limit {limit}",
                page.items.len()
            ));
        }
        keys.extend(page.items.into_iter().map(|i| i.sk));
        match page.next {
            Some(next) => before = Some(next),
            None => return Ok(keys),
        }
    }
}

async fn query_back_pages_reassemble_the_partition_backwards(t: &dyn Table) -> CaseResult {
    let keys: Vec<String> = (0..23).map(|i| format!("k{i:02}")).collect();
    for (i, sk) in keys.iter().enumerate() {
        t.put("p", sk, json!(i), Cond::Any).await.map_err(err)?;
    }
    t.put("other", "k05", json!("x"), Cond::Any)
        .await
        .map_err(err)?;
    let all: Vec<String> = keys.iter().rev().cloned().collect();
    for limit in [1, 4, 23, 100, usize::MAX] {
        let got = read_back(t, "p", None, limit).await?;
        ensure(got == all, || format!("limit {limit}: {got:?}"))?;
    }
    let below = read_back(t, "p", Some("k10"), 3).await?;
    ensure(below == all[13..], || format!("below k10: {below:?}"))?;
    let page = t.query_back("p", Some("k00"), 5).await.map_err(err)?;
    ensure(page.items.is_empty() && page.next.is_none(), || {
        format!("below the first key: {page:?}")
    })?;
    let none = t.query_back("missing", None, 5).await.map_err(err)?;
    ensure(none.items.is_empty() && none.next.is_none(), || {
        format!("an empty partition: {none:?}")
    })
}

async fn partitions_and_tables_are_isolated(t: &dyn Table) -> CaseResult {
    t.put("p1", "a", json!(1), Cond::Any).await.map_err(err)?;
    t.put("p2", "a", json!(2), Cond::Any).await.map_err(err)?;
    let one = t.get("p1", "a").await.map_err(err)?.ok_or("p1 missing")?;
    let two = t.get("p2", "a").await.map_err(err)?.ok_or("p2 missing")?;
    ensure(one.value == json!(1) && two.value == json!(2), || {
        format!("p1 {one:?}, p2 {two:?}")
    })?;
    let page = t.query("p1", None, 10).await.map_err(err)?;
    ensure(page.items.len() == 1, || format!("p1 query saw {page:?}"))
}

async fn keys_with_unicode_and_slashes_round_trip(t: &dyn Table) -> CaseResult {
    let value: Value = json!({"title": "Amélie / 東京 \"quoted\" \\ end", "n": [1, 2.5, null]});
    for (pk, sk) in [("a/b", "c/d"), ("東京", "Amélie"), ("", ""), ("p p", "%20")] {
        t.put(pk, sk, value.clone(), Cond::Any).await.map_err(err)?;
        let got = t.get(pk, sk).await.map_err(err)?.ok_or("item missing")?;
        ensure(got.value == value && got.sk == sk, || {
            format!("({pk:?}, {sk:?}) gave {got:?}")
        })?;
    }
    let split = t.get("a", "b/c/d").await.map_err(err)?;
    ensure(split.is_none(), || {
        "key parts leaked across the separator".into()
    })
}

async fn get_json_returns_the_value_as_json_text(t: &dyn Table) -> CaseResult {
    let value: Value = json!({"s": "Amélie \"q\" \\ \u{1}", "n": [1, 2.5, null], "o": {}});
    t.put("p", "a", value.clone(), Cond::Any)
        .await
        .map_err(err)?;
    t.put("p", "b", json!("neighbour"), Cond::Any)
        .await
        .map_err(err)?;
    let text = t
        .get_json("p", "a")
        .await
        .map_err(err)?
        .ok_or("item missing")?;
    let parsed: Value = crate::json::from_text(text.get()).map_err(|e| e.to_string())?;
    ensure(parsed == value, || format!("got {}", text.get()))?;
    let missing = t.get_json("p", "c").await.map_err(err)?;
    ensure(missing.is_none(), || "a missing item has text".into())?;
    let other = t.get_json("q", "a").await.map_err(err)?;
    ensure(other.is_none(), || "a missing partition has text".into())
}

async fn put_partition_replaces_the_whole_partition(t: &dyn Table) -> CaseResult {
    t.put("p", "old", json!(0), Cond::Any).await.map_err(err)?;
    let items = vec![("x".to_owned(), json!(1)), ("y".to_owned(), json!(2))];
    t.put_partition("p", items).await.map_err(err)?;
    let page = t.query("p", None, 10).await.map_err(err)?;
    let got: Vec<(&str, &Value)> = page
        .items
        .iter()
        .map(|i| (i.sk.as_str(), &i.value))
        .collect();
    ensure(got == vec![("x", &json!(1)), ("y", &json!(2))], || {
        format!("got {got:?}")
    })
}

/// Many writers each add one to a counter with read + put-at-version, retrying when
/// they lose: the count must come out exact. Interleaving happens wherever the backend
/// awaits real I/O.
async fn concurrent_conditional_increments_lose_no_update(t: &dyn Table) -> CaseResult {
    const WRITERS: u64 = 12;
    t.put("p", "n", json!(0), Cond::Any).await.map_err(err)?;
    let one = |_| async move {
        for _ in 0..200 {
            let current = t
                .get("p", "n")
                .await
                .map_err(err)?
                .ok_or("counter missing")?;
            let n = current.value.as_u64().ok_or("counter not a number")?;
            match t
                .put("p", "n", json!(n + 1), Cond::Version(current.version))
                .await
            {
                Ok(_) => return Ok(()),
                Err(StoreError::ConditionFailed) => continue,
                Err(e) => return Err(err(e)),
            }
        }
        Err("writer starved".to_owned())
    };
    let results = join_all((0..WRITERS).map(one)).await;
    results.into_iter().collect::<Result<Vec<()>, String>>()?;
    let got = t
        .get("p", "n")
        .await
        .map_err(err)?
        .ok_or("counter missing")?;
    ensure(got.value == json!(WRITERS), || {
        format!("counter {:?}", got.value)
    })
}

/// In-process interleaving of a [`Race`]: real wherever the backend awaits I/O (a
/// Durable Object round trip); the cross-request version is [`race_write`] called
/// from concurrent requests.
async fn run_race(t: &dyn Table, race: Race) -> CaseResult {
    const WRITERS: u32 = 8;
    // Few partitions: the concurrency cases run in one request, and on Spin a request
    // can make at most 256 swaps (each swapped `cas` keeps its slot in Spin's table).
    const KEYS: u32 = 4;
    let won = join_all((0..WRITERS).map(|w| race_write(t, race, w, KEYS))).await;
    let won = won.into_iter().collect::<Result<Vec<_>, String>>()?;
    race_check(t, race, KEYS, &won).await
}

async fn concurrent_puts_if_absent_on_fresh_partitions_admit_exactly_one(
    t: &dyn Table,
) -> CaseResult {
    run_race(t, Race::PutIfAbsent).await
}

async fn concurrent_creations_and_increments_of_fresh_partitions_lose_no_update(
    t: &dyn Table,
) -> CaseResult {
    run_race(t, Race::CreateOrIncrement).await
}

async fn concurrent_updates_of_fresh_partitions_lose_no_update(t: &dyn Table) -> CaseResult {
    run_race(t, Race::Update).await
}

async fn concurrent_writers_filling_one_partition_lose_nothing(t: &dyn Table) -> CaseResult {
    run_race(t, Race::Fill).await
}

async fn concurrent_writers_filling_and_draining_one_partition_keep_exactly_what_stays(
    t: &dyn Table,
) -> CaseResult {
    run_race(t, Race::Drain).await
}

async fn update_writes_what_the_change_decides_and_keeps_when_asked(t: &dyn Table) -> CaseResult {
    let mut seen = Vec::new();
    let created = t
        .update("p", "a", 4, &mut |item| {
            seen.push(item.cloned());
            Ok(Change::Put(json!(1)))
        })
        .await
        .map_err(err)?;
    ensure(created.version == Some(1) && seen == vec![None], || {
        format!("create gave {created:?}, change saw {seen:?}")
    })?;
    let bumped = t
        .update("p", "a", 4, &mut |item| {
            let n = item.and_then(|i| i.value.as_u64()).unwrap_or(0);
            Ok(Change::Put(json!(n + 1)))
        })
        .await
        .map_err(err)?;
    let kept = t
        .update("p", "a", 4, &mut |_| Ok(Change::Keep))
        .await
        .map_err(err)?;
    let got = t.get("p", "a").await.map_err(err)?.ok_or("item missing")?;
    ensure(
        bumped.version == Some(2)
            && kept.version.is_none()
            && got.value == json!(2)
            && got.version == 2,
        || format!("bumped {bumped:?}, kept {kept:?}, stored {got:?}"),
    )?;
    let absent = t
        .update("p", "never", 4, &mut |_| Ok(Change::Keep))
        .await
        .map_err(err)?;
    let never = t.get("p", "never").await.map_err(err)?;
    ensure(absent.version.is_none() && never.is_none(), || {
        format!("a kept absent item gave {absent:?}, stored {never:?}")
    })?;
    let mut deleted = None;
    t.update("p", "a", 4, &mut |item| {
        deleted = item.map(|i| i.value.clone());
        Ok(Change::Delete)
    })
    .await
    .map_err(err)?;
    let gone = t.get("p", "a").await.map_err(err)?;
    ensure(deleted == Some(json!(2)) && gone.is_none(), || {
        format!("delete saw {deleted:?}, left {gone:?}")
    })?;
    t.put("p", "a", json!(3), Cond::Any).await.map_err(err)?;
    let refused = t
        .update("p", "a", 4, &mut |_| Err(StoreError::ConditionFailed))
        .await;
    ensure(refused == Err(StoreError::ConditionFailed), || {
        format!("a failing change gave {refused:?}")
    })
}

async fn get_many_returns_items_in_the_order_asked_across_partitions(t: &dyn Table) -> CaseResult {
    t.put("p1", "a", json!("p1a"), Cond::Any)
        .await
        .map_err(err)?;
    t.put("p1", "b", json!("p1b"), Cond::Any)
        .await
        .map_err(err)?;
    t.put("p2", "a", json!("p2a"), Cond::Any)
        .await
        .map_err(err)?;
    t.put("p2", "a", json!("p2a again"), Cond::Any)
        .await
        .map_err(err)?;
    let keys: Vec<(String, String)> = [
        ("p2", "a"),
        ("p1", "missing"),
        ("nowhere", "a"),
        ("p1", "b"),
        ("p1", "a"),
        ("p2", "a"),
    ]
    .iter()
    .map(|(pk, sk)| (pk.to_string(), sk.to_string()))
    .collect();
    let got: Vec<Option<(Value, u64)>> = t
        .get_many(&keys)
        .await
        .map_err(err)?
        .into_iter()
        .map(|i| i.map(|i| (i.value, i.version)))
        .collect();
    let want = vec![
        Some((json!("p2a again"), 2)),
        None,
        None,
        Some((json!("p1b"), 1)),
        Some((json!("p1a"), 1)),
        Some((json!("p2a again"), 2)),
    ];
    ensure(got == want, || format!("got {got:?}"))?;
    let none = t.get_many(&[]).await.map_err(err)?;
    ensure(none.is_empty(), || format!("empty read got {none:?}"))
}

async fn update_items_changes_several_items_of_a_partition_together(t: &dyn Table) -> CaseResult {
    t.put("p", "inc", json!(1), Cond::Any).await.map_err(err)?;
    t.put("p", "gone", json!("x"), Cond::Any)
        .await
        .map_err(err)?;
    t.put("p", "same", json!("s"), Cond::Any)
        .await
        .map_err(err)?;
    let sks: Vec<String> = ["inc", "gone", "new", "same", "absent"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut seen = Vec::new();
    t.update_items("p", &sks, 8, &mut |sk, item| {
        seen.push((sk.to_owned(), item.map(|i| i.value.clone())));
        Ok(match sk {
            "inc" => Change::Put(json!(item.and_then(|i| i.value.as_u64()).unwrap_or(0) + 1)),
            "gone" | "absent" => Change::Delete,
            "new" => Change::Put(json!("fresh")),
            _ => Change::Keep,
        })
    })
    .await
    .map_err(err)?;
    let shown: Vec<(String, Option<Value>)> = seen.into_iter().take(5).collect();
    ensure(
        shown
            == vec![
                ("inc".into(), Some(json!(1))),
                ("gone".into(), Some(json!("x"))),
                ("new".into(), None),
                ("same".into(), Some(json!("s"))),
                ("absent".into(), None),
            ],
        || format!("change was shown {shown:?}"),
    )?;
    let page = t.query("p", None, 10).await.map_err(err)?;
    let got: Vec<(&str, &Value, u64)> = page
        .items
        .iter()
        .map(|i| (i.sk.as_str(), &i.value, i.version))
        .collect();
    ensure(
        got == vec![
            ("inc", &json!(2), 2),
            ("new", &json!("fresh"), 1),
            ("same", &json!("s"), 1),
        ],
        || format!("got {got:?}"),
    )?;
    // Keeping everything writes nothing: versions stay.
    t.update_items("p", &sks, 8, &mut |_, _| Ok(Change::Keep))
        .await
        .map_err(err)?;
    let after = t.get("p", "inc").await.map_err(err)?.ok_or("inc missing")?;
    ensure(after.version == 2, || {
        format!("inc at version {}", after.version)
    })
}

/// Writers each add one to two counters of one partition in one `update_items`:
/// both must come out exact.
async fn concurrent_update_items_lose_no_update(t: &dyn Table) -> CaseResult {
    const WRITERS: u64 = 6;
    let sks = vec!["x".to_owned(), "y".to_owned()];
    let one = |_| {
        let sks = sks.clone();
        async move {
            t.update_items("p", &sks, 64, &mut |_, item| {
                let n = item.and_then(|i| i.value.as_u64()).unwrap_or(0);
                Ok(Change::Put(json!(n + 1)))
            })
            .await
            .map_err(err)
        }
    };
    let results = join_all((0..WRITERS).map(one)).await;
    results.into_iter().collect::<Result<Vec<u32>, String>>()?;
    for sk in ["x", "y"] {
        let got = t
            .get("p", sk)
            .await
            .map_err(err)?
            .ok_or("counter missing")?;
        ensure(got.value == json!(WRITERS), || {
            format!("counter {sk} is {:?}", got.value)
        })?;
    }
    Ok(())
}

async fn put_items_merges_into_the_partition_and_keeps_other_items(t: &dyn Table) -> CaseResult {
    t.put("p", "keep", json!("kept"), Cond::Any)
        .await
        .map_err(err)?;
    t.put("p", "b", json!("old"), Cond::Any)
        .await
        .map_err(err)?;
    let items = vec![("a".to_owned(), json!(1)), ("b".to_owned(), json!(2))];
    t.put_items("p", items).await.map_err(err)?;
    let page = t.query("p", None, 10).await.map_err(err)?;
    let got: Vec<(&str, &Value, u64)> = page
        .items
        .iter()
        .map(|i| (i.sk.as_str(), &i.value, i.version))
        .collect();
    ensure(
        got == vec![
            ("a", &json!(1), 1),
            ("b", &json!(2), 2),
            ("keep", &json!("kept"), 1),
        ],
        || format!("got {got:?}"),
    )
}

async fn writes_past_the_partition_limit_are_refused_and_change_nothing(
    t: &dyn Table,
) -> CaseResult {
    t.put("p", "small", json!("kept"), Cond::Any)
        .await
        .map_err(err)?;
    // Two items of 0.4 of the limit fit; a third would pass it.
    let big = json!("x".repeat(super::MAX_PARTITION_BYTES * 2 / 5));
    for sk in ["a", "b"] {
        t.put("p", sk, big.clone(), Cond::Any).await.map_err(err)?;
    }
    let refused = t.put("p", "c", big.clone(), Cond::Any).await;
    ensure(matches!(refused, Err(StoreError::PartitionFull(_))), || {
        format!("a put past the limit: {refused:?}")
    })?;
    let merged = t
        .put_items(
            "p",
            vec![("d".to_owned(), big.clone()), ("e".to_owned(), big)],
        )
        .await;
    ensure(matches!(merged, Err(StoreError::PartitionFull(_))), || {
        format!("a merge past the limit: {merged:?}")
    })?;
    let page = t.query("p", None, 10).await.map_err(err)?;
    let keys: Vec<&str> = page.items.iter().map(|i| i.sk.as_str()).collect();
    ensure(keys == ["a", "b", "small"], || format!("left {keys:?}"))?;
    // Room again once an item goes.
    t.delete("p", "a", Cond::Any).await.map_err(err)?;
    t.put("p", "c", json!("fits"), Cond::Any)
        .await
        .map_err(err)?;
    Ok(())
}

/// Past the 2 MB a partition stored whole may hold: 3 MB under one partition key, read
/// back in order through pages whose edges fall between the large items.
async fn a_partition_holds_megabytes_and_reads_back_in_order(t: &dyn Table) -> CaseResult {
    const ITEMS: usize = 24;
    let value = |i: usize| json!({"i": i, "fill": "x".repeat(128 * 1024)});
    for i in 0..ITEMS {
        // Written out of order, so order on reading is the table's doing.
        let i = (i * 7) % ITEMS;
        t.put("big", &format!("{i:03}"), value(i), Cond::Absent)
            .await
            .map_err(err)?;
    }
    let mut after = None;
    let mut seen = Vec::new();
    loop {
        let page = t.query("big", after.as_deref(), 5).await.map_err(err)?;
        for item in &page.items {
            let i = seen.len();
            ensure(
                item.sk == format!("{i:03}") && item.value == value(i),
                || format!("item {i} read back as {:?}", item.sk),
            )?;
            seen.push(item.sk.clone());
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    ensure(seen.len() == ITEMS, || {
        format!("read back {} items", seen.len())
    })?;
    let backwards = read_back(t, "big", None, 5).await?;
    let wanted: Vec<String> = seen.iter().rev().cloned().collect();
    ensure(backwards == wanted, || {
        format!("read backwards as {backwards:?}")
    })?;
    let last = t
        .get("big", &format!("{:03}", ITEMS - 1))
        .await
        .map_err(err)?;
    ensure(last.is_some_and(|i| i.value == value(ITEMS - 1)), || {
        "the last item by get".to_owned()
    })
}

/// Partitions written whole by the older layout (`whole`) read and write through the
/// layout that keeps items one by one (`items`) over the same storage: values and
/// versions kept, order kept, conditional writes on the old versions honoured, and a
/// partition larger than one page of the new layout (200 KB) read back whole and in
/// order after a write through the new layout.
pub async fn whole_partitions_move_into_items(whole: &dyn Table, items: &dyn Table) -> CaseResult {
    whole
        .put("p", "a", json!(1), Cond::Absent)
        .await
        .map_err(err)?;
    whole
        .put("p", "a", json!({"n": 2}), Cond::Version(1))
        .await
        .map_err(err)?;
    whole
        .put("p", "b", json!("x"), Cond::Any)
        .await
        .map_err(err)?;
    whole
        .put("p", "c", Value::Null, Cond::Any)
        .await
        .map_err(err)?;
    whole.delete("p", "c", Cond::Any).await.map_err(err)?;
    let fill = |i: usize| json!({"i": i, "fill": "y".repeat(10_000)});
    let big: Vec<(String, Value)> = (0..20).map(|i| (format!("k{i:02}"), fill(i))).collect();
    whole.put_items("q", big).await.map_err(err)?;
    let a = items.get("p", "a").await.map_err(err)?;
    ensure(
        a.as_ref()
            .is_some_and(|a| a.value == json!({"n": 2}) && a.version == 2),
        || format!("moved a: {a:?}"),
    )?;
    let page = items.query("p", None, 10).await.map_err(err)?;
    let keys: Vec<&str> = page.items.iter().map(|i| i.sk.as_str()).collect();
    ensure(keys == ["a", "b"], || {
        format!("moved partition holds {keys:?}")
    })?;
    let stale = items.put("p", "a", json!(3), Cond::Version(1)).await;
    ensure(stale == Err(StoreError::ConditionFailed), || {
        format!("a put at a stale old version: {stale:?}")
    })?;
    let v = items
        .put("p", "a", json!(3), Cond::Version(2))
        .await
        .map_err(err)?;
    ensure(v == 3, || format!("version after the move: {v}"))?;
    items
        .put("q", "k20", fill(20), Cond::Absent)
        .await
        .map_err(err)?;
    let page = items.query("q", None, 100).await.map_err(err)?;
    let got: Vec<(String, Value)> = page.items.into_iter().map(|i| (i.sk, i.value)).collect();
    let wanted: Vec<(String, Value)> = (0..21).map(|i| (format!("k{i:02}"), fill(i))).collect();
    ensure(got == wanted && page.next.is_none(), || {
        format!(
            "the large moved partition reads back as {} items",
            got.len()
        )
    })
}

/// A race among writers of fresh partitions, each writer one call of [`race_write`],
/// so that the writers can be separate requests (on Spin, separate component
/// instances: the only way to race there). [`race_check`] then says whether the table
/// held.
///
/// Each writer works through the same fresh partitions in the same order, one conditional write each. That keeps concurrent writers in step: a writer
/// that loses on one partition is quicker than the winner (it writes nothing), so it
/// catches up and races the winner on the next — every partition is a first write
/// raced by whichever writers are at it together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Race {
    /// Each writer puts its own value with [`Cond::Absent`]: exactly one may win per
    /// partition, and its value is what stays.
    PutIfAbsent,
    /// Each writer adds one to a counter per partition that does not exist yet —
    /// creating it with `Absent` when it reads nothing, else put-at-version — retrying
    /// lost races: every count comes out exact.
    CreateOrIncrement,
    /// The same count through [`Table::update`], the read-modify-write of one item.
    Update,
    /// Each writer puts [`FILL_ITEMS`] items of its own, 8 KB each, into one partition:
    /// together past many pages, so pages split while others write into them. Every
    /// item must be there afterwards, in order.
    Fill,
    /// Each writer puts its items as in [`Race::Fill`], then deletes them again (every
    /// fourth writer keeps its first): pages split, empty and merge while others write
    /// into them. Every delete must find its item, and exactly the items kept must be
    /// there afterwards, in order.
    Drain,
}

/// Whether writer `writer` of a [`Race::Drain`] keeps its item `i`.
fn drain_keeps(writer: u32, i: u32) -> bool {
    writer.is_multiple_of(4) && i == 0
}

/// The items each writer of a [`Race::Fill`] puts.
pub const FILL_ITEMS: u32 = 4;

fn fill_sk(writer: u32, i: u32) -> String {
    format!("w{writer:03}-{i}")
}

fn fill_value(writer: u32, i: u32) -> Value {
    json!({"writer": writer, "i": i, "fill": "f".repeat(8000)})
}

/// The fresh partitions every writer of a race across requests goes through: enough
/// for writers to meet, and few enough that one writer's swaps stay well within
/// Spin's 256 per request under contention.
pub const RACE_KEYS: u32 = 16;

fn race_pk(key: u32) -> String {
    format!("race{key:02}")
}

/// One writer's pass over the race's first `keys` partitions; returns those where its
/// conditional write won.
pub async fn race_write(
    t: &dyn Table,
    race: Race,
    writer: u32,
    keys: u32,
) -> Result<Vec<u32>, String> {
    let mut won = Vec::new();
    if matches!(race, Race::Fill | Race::Drain) {
        for i in 0..FILL_ITEMS {
            t.put(
                &race_pk(0),
                &fill_sk(writer, i),
                fill_value(writer, i),
                Cond::Absent,
            )
            .await
            .map_err(err)?;
            won.push(i);
        }
        if race == Race::Drain {
            for i in (0..FILL_ITEMS).filter(|&i| !drain_keeps(writer, i)) {
                let sk = fill_sk(writer, i);
                if !t.delete(&race_pk(0), &sk, Cond::Any).await.map_err(err)? {
                    return Err(format!("{sk} was gone before its writer deleted it"));
                }
            }
        }
        return Ok(won);
    }
    for key in 0..keys {
        let pk = race_pk(key);
        let wins = match race {
            Race::Fill | Race::Drain => false,
            Race::PutIfAbsent => {
                match t
                    .put(&pk, "k", json!({ "writer": writer }), Cond::Absent)
                    .await
                {
                    Ok(_) => true,
                    Err(StoreError::ConditionFailed) => false,
                    Err(e) => return Err(err(e)),
                }
            }
            Race::CreateOrIncrement => increment(t, &pk).await?,
            Race::Update => {
                t.update(&pk, "n", 500, &mut |item| {
                    let n = item.and_then(|i| i.value.as_u64()).unwrap_or(0);
                    Ok(Change::Put(json!(n + 1)))
                })
                .await
                .map_err(err)?;
                true
            }
        };
        if wins {
            won.push(key);
        }
    }
    Ok(won)
}

/// Adds one to the counter at `(pk, "n")`, creating it at 1; `Ok(true)` once done.
async fn increment(t: &dyn Table, pk: &str) -> Result<bool, String> {
    for _ in 0..500 {
        let (next, cond) = match t.get(pk, "n").await.map_err(err)? {
            None => (1, Cond::Absent),
            Some(item) => {
                let n = item.value.as_u64().ok_or("counter not a number")?;
                (n + 1, Cond::Version(item.version))
            }
        };
        match t.put(pk, "n", json!(next), cond).await {
            Ok(_) => return Ok(true),
            Err(StoreError::ConditionFailed) => continue,
            Err(e) => return Err(err(e)),
        }
    }
    Err(format!("writer starved on {pk}"))
}

/// Whether the table holds what racing writers must leave behind; `won[w]` is what
/// [`race_write`] returned to writer `w`.
pub async fn race_check(t: &dyn Table, race: Race, keys: u32, won: &[Vec<u32>]) -> CaseResult {
    let writers = u32::try_from(won.len()).map_err(|e| e.to_string())?;
    if matches!(race, Race::Fill | Race::Drain) {
        return fill_check(t, race, writers, won).await;
    }
    let mut broken = Vec::new();
    for key in 0..keys {
        let pk = race_pk(key);
        let winners: Vec<u32> = (0..writers)
            .filter(|&w| won[w as usize].contains(&key))
            .collect();
        match race {
            Race::PutIfAbsent => {
                let got = t.get(&pk, "k").await.map_err(err)?;
                let held = winners.len() == 1
                    && got.as_ref().is_some_and(|item| {
                        item.value == json!({ "writer": winners[0] }) && item.version == 1
                    });
                if !held {
                    broken.push(format!("{pk}: winners {winners:?}, stored {got:?}"));
                }
            }
            Race::Fill | Race::Drain => {}
            Race::CreateOrIncrement | Race::Update => {
                let got = t.get(&pk, "n").await.map_err(err)?;
                let held = winners.len() as u32 == writers
                    && got.as_ref().is_some_and(|item| {
                        item.value == json!(writers) && item.version == u64::from(writers)
                    });
                if !held {
                    broken.push(format!(
                        "{pk}: {} of {writers} finished, stored {got:?}",
                        winners.len()
                    ));
                }
            }
        }
    }
    ensure(broken.is_empty(), || {
        format!(
            "{} of {keys} partitions broke under {writers} writers: {}",
            broken.len(),
            broken.join("; ")
        )
    })
}

/// Every writer's every item of a [`Race::Fill`] (of a [`Race::Drain`], those kept),
/// in order, through query pages.
async fn fill_check(t: &dyn Table, race: Race, writers: u32, won: &[Vec<u32>]) -> CaseResult {
    let everyone = (0..FILL_ITEMS).collect::<Vec<_>>();
    let unfinished: Vec<usize> = (0..won.len()).filter(|&w| won[w] != everyone).collect();
    ensure(unfinished.is_empty(), || {
        format!("writers {unfinished:?} did not put all their items")
    })?;
    let kept = |w: u32, i: u32| race == Race::Fill || drain_keeps(w, i);
    let wanted: Vec<(String, Value)> = (0..writers)
        .flat_map(|w| (0..FILL_ITEMS).map(move |i| (w, i)))
        .filter(|&(w, i)| kept(w, i))
        .map(|(w, i)| (fill_sk(w, i), fill_value(w, i)))
        .collect();
    let mut got = Vec::new();
    let mut after = None;
    loop {
        let page = t
            .query(&race_pk(0), after.as_deref(), 17)
            .await
            .map_err(err)?;
        got.extend(page.items.into_iter().map(|i| (i.sk, i.value)));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|w| !got.contains(w))
        .map(|(sk, _)| sk)
        .collect();
    ensure(got == wanted, || {
        format!(
            "{} items read back of {}; missing {missing:?}",
            got.len(),
            wanted.len()
        )
    })
}

/// Polls every future until all finish; a small stand-in for `futures::join_all` so
/// that wasm builds need no executor crate.
async fn join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    use std::pin::Pin;
    use std::task::Poll;
    let mut pending: Vec<Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        let mut all = true;
        for (fut, slot) in pending.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(out) => *slot = Some(out),
                    Poll::Pending => all = false,
                }
            }
        }
        if all {
            Poll::Ready(done.iter_mut().filter_map(Option::take).collect())
        } else {
            Poll::Pending
        }
    })
    .await
}
