//! Partitions as bounded pages: items in sort-key order over any key-value store with
//! compare-and-swap ([`RawKv`]) — the layout of the Spin and memory backends. No
//! operation reads or writes more than the directory and the pages its keys fall in,
//! so its cost does not grow with its partition, and a partition has no cap of its own.
//!
//! # Layout
//!
//! A partition starts as one value under its storage key `table/pk`, in the format a
//! whole partition has always had ([`super::PartitionTable`]'s: a JSON object of
//! stored items), so small partitions read and write exactly as before. Once a write
//! would take it past [`PAGE_BYTES`], its items move to **pages**, each a sort-key range
//! of at most `PAGE_BYTES` (an item larger than that alone on its page), under keys
//! `table~<id>/pk` with random ids (table names never contain `~` or `/`, so no page key
//! is another partition's key), and `table/pk` becomes the partition's **directory**:
//! `D`, then the JSON list of `[lowest sort key, page id]` in order. A page keeps its
//! items, the upper bound of its range (`h`, exclusive) and the page holding the range
//! after it (`n`): the pages form a list in order, linked left to right like a B-link
//! tree's leaves.
//!
//! # Writes
//!
//! A write reads the directory, loads the one page its sort key falls in and
//! compare-and-swaps that page: writers of different pages never meet, and writers of
//! one page retry only against each other. A page past `PAGE_BYTES` splits: its upper
//! items go to new pages, written whole under fresh keys first; then the page is
//! swapped to its lower items, its bound and link now pointing at them (the step that
//! publishes them); then the directory gains their entries (a compare-and-swap retried
//! until it lands). A directory that misses entries — between those two steps, or for
//! good if the writer dies there — is stale but never wrong: a page reached through it
//! whose bound is at or below the key sought is followed along its link, and a writer
//! that had to follow a link puts the missing entry in. Pages only ever split, and to
//! the right, so a link always leads on to the rest of the range. Pages are not merged:
//! deleting items leaves pages smaller, never gone (a query passes over empty ones).
//!
//! A split that loses its swap deletes the pages it wrote, which nobody else could
//! have reached; a writer killed before its swap leaves them behind, unreachable.
//!
//! # Cost, in store round trips
//!
//! While a partition is one value: a read 1, a write 2 (load, swap). Once paged: a get
//! 2 (directory, page), a write 3 (directory, page, swap), a query 1 plus one per page
//! its items span, a batched get 2 for any number of keys and partitions; a link
//! followed adds 1, a split adds the new pages' writes and the directory's load and
//! swap.

use super::partition::{
    check, decode, insert, item, read_partitions, readable, BorrowedPartition, Partition, Stored,
    MAX_SWAPS,
};
use super::{Change, Cond, Item, Page, RawKv, StoreError, Table, Token, Updated, FORMAT};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::HashMap;

/// The most a page holds, in stored bytes, before it splits.
pub const PAGE_BYTES: usize = 64 * 1024;

/// The marker byte of a directory (a whole partition's JSON starts with `{`).
const DIRECTORY: u8 = b'D';

/// One page: items of the sort keys from its directory entry's up to `high`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct PageData {
    /// The page's exclusive upper bound; `None` for the last page.
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    high: Option<String>,
    /// The id of the page after this one; `None` for the last page.
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    #[serde(rename = "i")]
    items: Partition,
}

impl PageData {
    fn holds(&self, sk: &str) -> bool {
        self.high.as_deref().is_none_or(|high| sk < high)
    }
}

/// A page as read, borrowing its items from the bytes.
#[derive(Deserialize)]
struct PageRef<'a> {
    #[serde(rename = "h", default, borrow)]
    high: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "i", borrow)]
    items: BorrowedPartition<'a>,
}

/// A page's bound and link alone (its items skipped unread).
#[derive(Deserialize)]
struct PageLinks<'a> {
    #[serde(rename = "h", default, borrow)]
    high: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "n", default, borrow)]
    next: Option<std::borrow::Cow<'a, str>>,
}

/// What a partition's own key holds.
enum Root {
    /// The whole partition, not (yet) paged.
    Whole(Partition),
    /// `(lowest sort key, page id)` of every page, in order; the first low is `""`.
    Directory(Vec<(String, String)>),
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn decode_root(raw: Option<Vec<u8>>) -> Result<Root, StoreError> {
    match raw {
        Some(bytes) if bytes.first() == Some(&DIRECTORY) => {
            let entries: Vec<(String, String)> =
                crate::json::from_bytes(&bytes[1..]).map_err(corrupt)?;
            if entries.first().is_none_or(|(low, _)| !low.is_empty()) {
                return Err(corrupt("a partition directory without its first page"));
            }
            Ok(Root::Directory(entries))
        }
        raw => decode(raw).map(Root::Whole),
    }
}

fn encode_directory(entries: &[(String, String)]) -> Result<Vec<u8>, StoreError> {
    let mut bytes = vec![DIRECTORY];
    serde_json::to_writer(&mut bytes, entries).map_err(corrupt)?;
    Ok(bytes)
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(corrupt)
}

/// The items of a page's bytes, as (sort key, version, value as JSON text): for tools
/// and tests that check what a page holds.
pub fn page_items(bytes: &[u8]) -> Result<Vec<(String, u64, String)>, StoreError> {
    Ok(decode_page(bytes)?
        .items
        .0
        .into_iter()
        .map(|(sk, stored)| (sk, stored.version, stored.value.get().to_owned()))
        .collect())
}

fn decode_page(bytes: &[u8]) -> Result<PageData, StoreError> {
    let page: PageData = crate::json::from_bytes(bytes).map_err(corrupt)?;
    for (_, stored) in &page.items.0 {
        readable(stored.format)?;
    }
    Ok(page)
}

/// The entry of `entries` whose page holds `sk`: the last whose low is at most `sk`.
fn entry_for<'e>(entries: &'e [(String, String)], sk: &str) -> Option<&'e (String, String)> {
    let after = entries.partition_point(|(low, _)| low.as_str() <= sk);
    entries.get(after.checked_sub(1)?)
}

/// About what an item adds to its page's stored bytes.
fn stored_size(sk: &str, stored: &Stored) -> usize {
    sk.len() + stored.value.get().len() + 24
}

/// `items` cut into runs of at most about [`PAGE_BYTES`] each, in order; one run when
/// they fit one page. Runs are cut evenly, so that a page that just split has room.
fn split(items: Partition) -> Vec<Partition> {
    let total: usize = items.0.iter().map(|(sk, s)| stored_size(sk, s)).sum();
    if total <= PAGE_BYTES || items.0.len() < 2 {
        return vec![items];
    }
    let runs = total.div_ceil(PAGE_BYTES * 3 / 4).max(2);
    let target = total / runs;
    let mut out = Vec::new();
    let mut run = Vec::new();
    let mut size = 0;
    for (sk, stored) in items.0 {
        let add = stored_size(&sk, &stored);
        if !run.is_empty() && size + add > target.max(1) && size >= target / 2 {
            out.push(Partition(std::mem::take(&mut run)));
            size = 0;
        }
        size += add;
        run.push((sk, stored));
    }
    if !run.is_empty() {
        out.push(Partition(run));
    }
    out
}

/// What a change of some items of one page decided.
type Edit<'f> = dyn FnMut(&mut Partition, &[&str]) -> Result<bool, StoreError> + 'f;

/// A [`Table`] of pages over any [`RawKv`].
pub struct PagedTable {
    kv: Box<dyn RawKv>,
    table: String,
    random: fn() -> u64,
}

impl std::fmt::Debug for PagedTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagedTable")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl PagedTable {
    /// A table `table` over `kv`, naming new pages with `random`.
    pub fn new(kv: impl RawKv + 'static, table: &str, random: fn() -> u64) -> Self {
        Self {
            kv: Box::new(kv),
            table: table.to_owned(),
            random,
        }
    }

    /// The store key partition `pk` is kept under (its directory, once paged).
    pub fn storage_key(&self, pk: &str) -> String {
        super::partition::storage_key(&self.table, pk)
    }

    fn page_key(&self, pk: &str, id: &str) -> String {
        format!("{}~{}/{}", self.table, id, pk)
    }

    fn new_id(&self) -> String {
        format!("{:016x}", (self.random)())
    }

    async fn read_page(&self, pk: &str, id: &str) -> Result<Vec<u8>, StoreError> {
        self.kv
            .read(&self.page_key(pk, id))
            .await?
            .ok_or_else(|| corrupt(format!("page {id} of partition {pk:?} is missing")))
    }

    /// Writes `runs` as new pages linked in order, the last linked to `then` (bound,
    /// page); returns their `(low, id)` entries.
    async fn write_pages(
        &self,
        pk: &str,
        runs: Vec<Partition>,
        then: (Option<String>, Option<String>),
    ) -> Result<Vec<(String, String)>, StoreError> {
        let ids: Vec<String> = runs.iter().map(|_| self.new_id()).collect();
        let lows: Vec<String> = runs
            .iter()
            .map(|run| run.0.first().map(|(sk, _)| sk.clone()).unwrap_or_default())
            .collect();
        let mut written = Vec::new();
        for (i, items) in runs.into_iter().enumerate() {
            let (high, next) = match (lows.get(i + 1), ids.get(i + 1)) {
                (Some(low), Some(id)) => (Some(low.clone()), Some(id.clone())),
                _ => then.clone(),
            };
            let page = PageData { high, next, items };
            let key = self.page_key(pk, &ids[i]);
            if let Err(e) = self.kv.write_new(&key, encode(&page)?).await {
                self.forget(pk, &written).await;
                return Err(e);
            }
            written.push(ids[i].clone());
        }
        Ok(lows.into_iter().zip(ids).collect())
    }

    /// Deletes pages this writer wrote and could not publish (nobody else can have
    /// reached them). Best effort: a page left behind is only unreachable bytes.
    async fn forget(&self, pk: &str, ids: &[String]) {
        for id in ids {
            let _ = self.kv.delete(&self.page_key(pk, id)).await;
        }
    }

    /// Puts `entries` into the directory of `pk` (those it already has are kept).
    async fn add_entries(&self, pk: &str, entries: &[(String, String)]) -> Result<(), StoreError> {
        let key = self.storage_key(pk);
        for _ in 0..MAX_SWAPS {
            let (raw, token) = self.kv.load(&key).await?;
            let Root::Directory(mut dir) = decode_root(raw)? else {
                return Err(corrupt(format!("partition {pk:?} lost its directory")));
            };
            let mut changed = false;
            for (low, id) in entries {
                if let Err(at) = dir.binary_search_by(|(l, _)| l.as_str().cmp(low)) {
                    dir.insert(at, (low.clone(), id.clone()));
                    changed = true;
                }
            }
            if !changed || self.kv.swap(&key, token, encode_directory(&dir)?).await? {
                return Ok(());
            }
        }
        Err(StoreError::Contention)
    }

    /// Applies `edit` to the items of `sks` (sorted, distinct), page by page: the
    /// items of one page change together in one compare-and-swap, retried with fresh
    /// state on a lost race up to `max_attempts` times per page. Returns the races lost.
    async fn edit(
        &self,
        pk: &str,
        sks: &[&str],
        max_attempts: u32,
        edit: &mut Edit<'_>,
    ) -> Result<u32, StoreError> {
        let key = self.storage_key(pk);
        let mut retries = 0;
        let mut rest = sks;
        'page: while let Some(first) = rest.first().copied() {
            for _ in 0..max_attempts.max(1) {
                let (raw, token) = self.kv.load(&key).await?;
                let entries = match decode_root(raw)? {
                    Root::Whole(mut items) => {
                        if !edit(&mut items, rest)? {
                            return Ok(retries);
                        }
                        if self.store_root(pk, &key, token, items).await? {
                            return Ok(retries);
                        }
                        retries += 1;
                        continue;
                    }
                    Root::Directory(entries) => entries,
                };
                drop(token);
                let Some((_, start)) = entry_for(&entries, first) else {
                    return Err(corrupt("a partition directory without its first page"));
                };
                // Along the links from the page the directory names to the one that
                // holds `first`, noting the entries the directory misses.
                let mut id = start.clone();
                let mut missed = Vec::new();
                let (mut page, token) = loop {
                    let (raw, token) = self.kv.load(&self.page_key(pk, &id)).await?;
                    let raw = raw.ok_or_else(|| corrupt(format!("page {id} is missing")))?;
                    let page = decode_page(&raw)?;
                    if page.holds(first) {
                        break (page, token);
                    }
                    match (page.high, page.next) {
                        (Some(high), Some(next)) => {
                            if missed.last().is_some_and(|(prev, _)| *prev >= high) {
                                return Err(unordered(&id));
                            }
                            missed.push((high, next.clone()));
                            id = next;
                        }
                        _ => return Err(corrupt(format!("page {id} ends without a link"))),
                    }
                };
                let here = rest.partition_point(|sk| page.holds(sk));
                let (mine, later) = rest.split_at(here);
                if edit(&mut page.items, mine)? {
                    let stored = self.store_page(pk, &id, token, page).await?;
                    let Some(new_entries) = stored else {
                        retries += 1;
                        continue;
                    };
                    missed.extend(new_entries);
                }
                if !missed.is_empty() {
                    self.add_entries(pk, &missed).await?;
                }
                rest = later;
                continue 'page;
            }
            return Err(StoreError::Contention);
        }
        Ok(retries)
    }

    /// Swaps the partition's own value to `items`, or — past one page — to a directory
    /// of new pages holding them. `Ok(false)` when the value changed since `token`.
    async fn store_root(
        &self,
        pk: &str,
        key: &str,
        token: Token,
        items: Partition,
    ) -> Result<bool, StoreError> {
        let runs = split(items);
        if runs.len() == 1 {
            let items = runs.into_iter().next().unwrap_or_default();
            return self.kv.swap(key, token, encode(&items)?).await;
        }
        let mut entries = self.write_pages(pk, runs, (None, None)).await?;
        if let Some(first) = entries.first_mut() {
            first.0 = String::new();
        }
        let swapped = self.kv.swap(key, token, encode_directory(&entries)?).await;
        if !matches!(swapped, Ok(true)) {
            let ids: Vec<String> = entries.into_iter().map(|(_, id)| id).collect();
            self.forget(pk, &ids).await;
        }
        swapped
    }

    /// Swaps page `id` to `page`, splitting it when past one page; returns the
    /// directory entries of the pages the split added, `None` when the page changed
    /// since `token`.
    async fn store_page(
        &self,
        pk: &str,
        id: &str,
        token: Token,
        mut page: PageData,
    ) -> Result<Option<Vec<(String, String)>>, StoreError> {
        let key = self.page_key(pk, id);
        let mut runs = split(std::mem::take(&mut page.items)).into_iter();
        page.items = runs.next().unwrap_or_default();
        let upper: Vec<Partition> = runs.collect();
        if upper.is_empty() {
            return Ok(self
                .kv
                .swap(&key, token, encode(&page)?)
                .await?
                .then(Vec::new));
        }
        let entries = self
            .write_pages(pk, upper, (page.high.take(), page.next.take()))
            .await?;
        page.high = entries.first().map(|(low, _)| low.clone());
        page.next = entries.first().map(|(_, id)| id.clone());
        let swapped = self.kv.swap(&key, token, encode(&page)?).await;
        if !matches!(swapped, Ok(true)) {
            let ids: Vec<String> = entries.iter().map(|(_, id)| id.clone()).collect();
            self.forget(pk, &ids).await;
        }
        Ok(swapped?.then_some(entries))
    }

    /// Every item of partition `pk` from the page holding `from` on, page by page
    /// along the links, until `enough` says stop; returns the items kept.
    async fn scan(
        &self,
        pk: &str,
        after: Option<&str>,
        wanted: usize,
    ) -> Result<Vec<(String, Stored)>, StoreError> {
        let past = |sk: &str| after.is_none_or(|a| sk > a);
        let raw = self.kv.read(&self.storage_key(pk)).await?;
        let entries = match decode_root(raw)? {
            Root::Whole(items) => {
                return Ok(items
                    .0
                    .into_iter()
                    .filter(|(sk, _)| past(sk))
                    .take(wanted)
                    .collect())
            }
            Root::Directory(entries) => entries,
        };
        let start = match after {
            Some(a) => entry_for(&entries, a),
            None => entries.first(),
        };
        let mut next = start.map(|(_, id)| id.clone());
        let mut out = Vec::new();
        let mut bound: Option<String> = None;
        while let Some(id) = next.take() {
            let page = decode_page(&self.read_page(pk, &id).await?)?;
            bound = ordered(&id, bound, &page)?;
            for (sk, stored) in page.items.0 {
                if out.len() == wanted {
                    return Ok(out);
                }
                if past(&sk) {
                    out.push((sk, stored));
                }
            }
            if out.len() == wanted {
                return Ok(out);
            }
            next = page.next;
        }
        Ok(out)
    }

    /// Items of partition `pk` below `before`, in descending order, up to `wanted`:
    /// the directory's entries from the one holding `before` back to the first, each
    /// entry's pages (its page, and any a split put after it that the directory misses,
    /// found along the links) read as one run.
    async fn scan_back(
        &self,
        pk: &str,
        before: Option<&str>,
        wanted: usize,
    ) -> Result<Vec<(String, Stored)>, StoreError> {
        let below = |sk: &str| before.is_none_or(|b| sk < b);
        let raw = self.kv.read(&self.storage_key(pk)).await?;
        let entries = match decode_root(raw)? {
            Root::Whole(items) => {
                return Ok(items
                    .0
                    .into_iter()
                    .rev()
                    .filter(|(sk, _)| below(sk))
                    .take(wanted)
                    .collect())
            }
            Root::Directory(entries) => entries,
        };
        let last = match before {
            Some(b) => entries.partition_point(|(low, _)| low.as_str() < b),
            None => entries.len(),
        };
        let mut out = Vec::new();
        for e in (0..last).rev() {
            let Some((_, id)) = entries.get(e) else {
                break;
            };
            let until = entries.get(e + 1).map(|(low, _)| low.as_str());
            // The run of pages from this entry's up to the next entry's.
            let mut run: Vec<(String, Stored)> = Vec::new();
            let mut next = Some(id.clone());
            let mut bound: Option<String> = None;
            while let Some(id) = next.take() {
                let page = decode_page(&self.read_page(pk, &id).await?)?;
                bound = ordered(&id, bound, &page)?;
                run.extend(page.items.0);
                let more = match (&page.high, until) {
                    (Some(high), Some(until)) => high.as_str() < until,
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                if more && before.is_none_or(|b| page.high.as_deref().is_some_and(|h| h < b)) {
                    next = page.next;
                }
            }
            for (sk, stored) in run.into_iter().rev() {
                if below(&sk) {
                    out.push((sk, stored));
                    if out.len() == wanted {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The stored item at `(pk, sk)` as its page's bytes and where in them.
    async fn find(&self, pk: &str, sk: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let raw = self.kv.read(&self.storage_key(pk)).await?;
        let Some(bytes) = raw else {
            return Ok(None);
        };
        if bytes.first() != Some(&DIRECTORY) {
            // A whole partition: its bytes read as a page without bound or link.
            return Ok(Some(page_of_whole(bytes)));
        }
        let Root::Directory(entries) = decode_root(Some(bytes))? else {
            return Ok(None);
        };
        let mut id = entry_for(&entries, sk)
            .map(|(_, id)| id.clone())
            .ok_or_else(|| corrupt("a partition directory without its first page"))?;
        let mut bound: Option<String> = None;
        loop {
            let bytes = self.read_page(pk, &id).await?;
            // Only the bound and link: the caller reads the item from these bytes.
            let page: PageLinks<'_> = crate::json::from_bytes(&bytes).map_err(corrupt)?;
            let Some(high) = page.high.as_deref() else {
                return Ok(Some(bytes));
            };
            if sk < high {
                return Ok(Some(bytes));
            }
            if bound.as_deref().is_some_and(|prev| prev >= high) {
                return Err(unordered(&id));
            }
            bound = Some(high.to_owned());
            match page.next {
                Some(next) => id = next.into_owned(),
                None => return Err(corrupt(format!("page {id} ends without a link"))),
            }
        }
    }
}

/// A link chain whose bounds do not grow: corrupt, and never-ending if followed.
fn unordered(id: &str) -> StoreError {
    corrupt(format!(
        "page {id} does not lie past the page linking to it"
    ))
}

/// Checks that `page` (reached along the links, after pages up to `bound`) lies past
/// them and that only the last page has no bound; returns its bound.
fn ordered(id: &str, bound: Option<String>, page: &PageData) -> Result<Option<String>, StoreError> {
    match (&page.high, &page.next) {
        (Some(high), Some(_)) if bound.as_ref().is_none_or(|b| b < high) => Ok(Some(high.clone())),
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(unordered(id)),
        _ => Err(corrupt(format!(
            "page {id} has a bound without a link or a link without one"
        ))),
    }
}

/// A whole partition's bytes as a page's: `{"i":<partition>}`.
fn page_of_whole(bytes: Vec<u8>) -> Vec<u8> {
    let mut page = Vec::with_capacity(bytes.len() + 6);
    page.extend_from_slice(br#"{"i":"#);
    page.extend_from_slice(&bytes);
    page.push(b'}');
    page
}

/// The item `sk` of a page's bytes, borrowed.
fn lookup<'b>(bytes: &'b [u8], sk: &str) -> Result<Option<(u64, &'b RawValue)>, StoreError> {
    found_in(&parse_page(bytes)?, sk)
}

fn parse_page(bytes: &[u8]) -> Result<PageRef<'_>, StoreError> {
    crate::json::from_bytes(bytes).map_err(corrupt)
}

/// The item `sk` of a page read, borrowed.
fn found_in<'b>(page: &PageRef<'b>, sk: &str) -> Result<Option<(u64, &'b RawValue)>, StoreError> {
    match page.items.get(sk) {
        Some(stored) => {
            readable(stored.format)?;
            Ok(Some((stored.version, stored.value)))
        }
        None => Ok(None),
    }
}

fn item_of(sk: &str, version: u64, value: &RawValue) -> Result<Item, StoreError> {
    Ok(Item {
        sk: sk.to_owned(),
        value: crate::json::from_text(value.get()).map_err(corrupt)?,
        version,
    })
}

#[async_trait(?Send)]
impl Table for PagedTable {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let Some(bytes) = self.find(pk, sk).await? else {
            return Ok(None);
        };
        lookup(&bytes, sk)?
            .map(|(version, value)| item_of(sk, version, value))
            .transpose()
    }

    async fn get_json(&self, pk: &str, sk: &str) -> Result<Option<Box<RawValue>>, StoreError> {
        let Some(bytes) = self.find(pk, sk).await? else {
            return Ok(None);
        };
        Ok(lookup(&bytes, sk)?.map(|(_, value)| value.to_owned()))
    }

    /// The partitions' own values in one batched read, then every page wanted in one
    /// more; a key whose page split since its directory was written costs a read more.
    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Option<Item>>, StoreError> {
        let (pks, roots) = read_partitions(self.kv.as_ref(), &self.table, keys).await?;
        // Each key's page bytes: a whole partition's are its own.
        let mut whole: HashMap<&str, Vec<u8>> = HashMap::new();
        let mut dirs: HashMap<&str, Vec<(String, String)>> = HashMap::new();
        for (pk, raw) in pks.iter().zip(roots) {
            match raw {
                Some(bytes) if bytes.first() == Some(&DIRECTORY) => {
                    if let Root::Directory(entries) = decode_root(Some(bytes))? {
                        dirs.insert(pk, entries);
                    }
                }
                Some(bytes) => {
                    whole.insert(pk, page_of_whole(bytes));
                }
                None => {}
            }
        }
        let mut page_keys: Vec<String> = Vec::new();
        let mut slot_of: HashMap<String, usize> = HashMap::new();
        for (pk, sk) in keys {
            if let Some((_, id)) = dirs.get(pk.as_str()).and_then(|d| entry_for(d, sk)) {
                let key = self.page_key(pk, id);
                if !slot_of.contains_key(&key) {
                    slot_of.insert(key.clone(), page_keys.len());
                    page_keys.push(key);
                }
            }
        }
        let pages = self.kv.read_many(&page_keys).await?;
        // Each page and whole partition parsed once, however many keys it serves.
        let whole: HashMap<&str, PageRef<'_>> = whole
            .iter()
            .map(|(pk, bytes)| Ok((*pk, parse_page(bytes)?)))
            .collect::<Result<_, StoreError>>()?;
        let pages: Vec<Option<PageRef<'_>>> = pages
            .iter()
            .map(|bytes| bytes.as_deref().map(parse_page).transpose())
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(keys.len());
        for (pk, sk) in keys {
            let found = if let Some(page) = whole.get(pk.as_str()) {
                found_in(page, sk)?
                    .map(|(v, value)| item_of(sk, v, value))
                    .transpose()?
            } else if let Some(dir) = dirs.get(pk.as_str()) {
                let id = entry_for(dir, sk)
                    .map(|(_, id)| id.as_str())
                    .unwrap_or_default();
                let page = slot_of
                    .get(&self.page_key(pk, id))
                    .and_then(|&i| pages.get(i))
                    .and_then(Option::as_ref)
                    .ok_or_else(|| corrupt(format!("page {id} is missing")))?;
                if page.high.as_deref().is_none_or(|high| sk.as_str() < high) {
                    found_in(page, sk)?
                        .map(|(v, value)| item_of(sk, v, value))
                        .transpose()?
                } else {
                    self.get(pk, sk).await?
                }
            } else {
                None
            };
            out.push(found);
        }
        Ok(out)
    }

    async fn put(&self, pk: &str, sk: &str, value: Value, cond: Cond) -> Result<u64, StoreError> {
        let mut version = 0;
        self.edit(pk, &[sk], MAX_SWAPS, &mut |items, _| {
            check(items.get(sk), cond)?;
            version = insert(items, sk, &value)?;
            Ok(true)
        })
        .await?;
        Ok(version)
    }

    /// Deleting an item that is not there writes nothing.
    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<bool, StoreError> {
        let mut existed = false;
        self.edit(pk, &[sk], MAX_SWAPS, &mut |items, _| {
            check(items.get(sk), cond)?;
            existed = items.remove(sk).is_some();
            Ok(existed)
        })
        .await?;
        Ok(existed)
    }

    async fn query(&self, pk: &str, after: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        // One item past the page says whether more remain.
        let mut found = self.scan(pk, after, limit.saturating_add(1)).await?;
        let more = found.len() > limit;
        found.truncate(limit);
        let items = found
            .iter()
            .map(|(sk, stored)| item(sk, stored))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(super::forward_page(items, more))
    }

    async fn query_back(
        &self,
        pk: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let found = self.scan_back(pk, before, limit.saturating_add(1)).await?;
        let items = found
            .iter()
            .map(|(sk, stored)| item(sk, stored))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(super::back_page(items.into_iter(), limit))
    }

    /// Writes new pages for the whole partition, swaps them in, then deletes the old
    /// ones.
    async fn put_partition(&self, pk: &str, items: Vec<(String, Value)>) -> Result<(), StoreError> {
        let key = self.storage_key(pk);
        let current = self.scan(pk, None, usize::MAX).await?;
        let versions: HashMap<&str, u64> = current
            .iter()
            .map(|(sk, stored)| (sk.as_str(), stored.version))
            .collect();
        let pairs = items
            .into_iter()
            .map(|(sk, value)| {
                let version = versions.get(sk.as_str()).map_or(1, |v| v + 1);
                let stored = Stored {
                    version,
                    value: super::partition::raw(&value)?,
                    format: FORMAT,
                };
                Ok((sk, stored))
            })
            .collect::<Result<_, StoreError>>()?;
        let partition = Partition::from_pairs(pairs);
        for _ in 0..MAX_SWAPS {
            let (raw, token) = self.kv.load(&key).await?;
            let old = match decode_root(raw)? {
                Root::Directory(entries) => entries.into_iter().map(|(_, id)| id).collect(),
                Root::Whole(_) => Vec::new(),
            };
            let replacement = Partition(partition.0.clone());
            if self.store_root(pk, &key, token, replacement).await? {
                // Pages split off after the directory was written are left behind.
                self.forget(pk, &old).await;
                return Ok(());
            }
        }
        Err(StoreError::Contention)
    }

    /// Page by page: the items of one page are written together, each item atomically.
    async fn put_items(&self, pk: &str, items: Vec<(String, Value)>) -> Result<(), StoreError> {
        let items = crate::sorted::last_of_each(items);
        let sks: Vec<&str> = items.iter().map(|(sk, _)| sk.as_str()).collect();
        let values: HashMap<&str, &Value> = items.iter().map(|(sk, v)| (sk.as_str(), v)).collect();
        self.edit(pk, &sks, MAX_SWAPS, &mut |page, mine| {
            for sk in mine {
                if let Some(value) = values.get(sk) {
                    insert(page, sk, value)?;
                }
            }
            Ok(!mine.is_empty())
        })
        .await
        .map(|_| ())
    }

    async fn update(
        &self,
        pk: &str,
        sk: &str,
        max_attempts: u32,
        change: &mut dyn for<'i> FnMut(Option<&'i Item>) -> Result<Change, StoreError>,
    ) -> Result<Updated, StoreError> {
        let mut version = None;
        let retries = self
            .edit(pk, &[sk], max_attempts, &mut |items, _| {
                let current = items.get(sk).map(|s| item(sk, s)).transpose()?;
                version = None;
                Ok(match change(current.as_ref())? {
                    Change::Keep => false,
                    Change::Delete => items.remove(sk).is_some(),
                    Change::Put(value) => {
                        version = Some(insert(items, sk, &value)?);
                        true
                    }
                })
            })
            .await?;
        Ok(Updated { version, retries })
    }

    /// Page by page: the items of one page change together, each item atomically.
    async fn update_items(
        &self,
        pk: &str,
        sks: &[String],
        max_attempts: u32,
        change: &mut dyn for<'s, 'i> FnMut(&'s str, Option<&'i Item>) -> Result<Change, StoreError>,
    ) -> Result<u32, StoreError> {
        let mut sorted: Vec<&str> = sks.iter().map(String::as_str).collect();
        crate::sorted::sort(&mut sorted);
        sorted.dedup();
        self.edit(pk, &sorted, max_attempts, &mut |items, mine| {
            let mut changed = false;
            // In the order asked, as the change may expect.
            let mine: std::collections::HashSet<&str> = mine.iter().copied().collect();
            for sk in sks
                .iter()
                .map(String::as_str)
                .filter(|sk| mine.contains(sk))
            {
                let current = items.get(sk).map(|s| item(sk, s)).transpose()?;
                match change(sk, current.as_ref())? {
                    Change::Keep => {}
                    Change::Delete => changed |= items.remove(sk).is_some(),
                    Change::Put(value) => {
                        insert(items, sk, &value)?;
                        changed = true;
                    }
                }
            }
            Ok(changed)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::{decode_root, encode_directory, Root, PAGE_BYTES};
    use crate::table::memory::MemoryKv;
    use crate::table::{Cond, RawKv, StoreError, Table};
    use futures::executor::block_on;
    use serde_json::{json, Value};

    fn value(i: usize) -> Value {
        json!({"i": i, "fill": "z".repeat(1000)})
    }

    fn key(i: usize) -> String {
        format!("{i:05}")
    }

    /// `n` items of ~1 KB in partition `p` of table `t`, written in batches.
    fn filled(n: usize) -> MemoryKv {
        let kv = MemoryKv::new();
        let table = kv.table("t");
        let items: Vec<(String, Value)> = (0..n).map(|i| (key(i), value(i))).collect();
        for batch in items.chunks(500) {
            block_on(table.put_items("p", batch.to_vec())).unwrap();
        }
        kv
    }

    fn directory(kv: &MemoryKv) -> Vec<(String, String)> {
        match decode_root(block_on(kv.read("t/p")).unwrap()).unwrap() {
            Root::Directory(entries) => entries,
            Root::Whole(_) => panic!("not paged"),
        }
    }

    fn all(kv: &MemoryKv, limit: usize) -> Vec<String> {
        let table = kv.table("t");
        let mut after: Option<String> = None;
        let mut keys = Vec::new();
        loop {
            let page = block_on(table.query("p", after.as_deref(), limit)).unwrap();
            keys.extend(page.items.into_iter().map(|i| i.sk));
            match page.next {
                Some(next) => after = Some(next),
                None => return keys,
            }
        }
    }

    fn all_back(kv: &MemoryKv, limit: usize) -> Vec<String> {
        let table = kv.table("t");
        let mut before: Option<String> = None;
        let mut keys = Vec::new();
        loop {
            let page = block_on(table.query_back("p", before.as_deref(), limit)).unwrap();
            keys.extend(page.items.into_iter().map(|i| i.sk));
            match page.next {
                Some(next) => before = Some(next),
                None => return keys,
            }
        }
    }

    #[test]
    fn a_partition_past_one_page_splits_into_bounded_pages_read_in_order() {
        let kv = filled(1000);
        let pages = directory(&kv);
        assert!(
            pages.len() >= 1000 * 1000 / PAGE_BYTES,
            "{} pages",
            pages.len()
        );
        for (_, bytes) in kv.snapshot() {
            assert!(
                bytes.len() <= PAGE_BYTES + 1100,
                "a page of {} bytes",
                bytes.len()
            );
        }
        let wanted: Vec<String> = (0..1000).map(key).collect();
        let backwards: Vec<String> = wanted.iter().rev().cloned().collect();
        for limit in [1, 7, 64, 1000] {
            assert_eq!(all(&kv, limit), wanted, "limit {limit}");
            assert_eq!(all_back(&kv, limit), backwards, "limit {limit} backwards");
        }
    }

    #[test]
    fn a_directory_missing_a_split_is_followed_and_then_repaired() {
        let kv = filled(400);
        let mut entries = directory(&kv);
        // A writer that died between swapping a split page and updating the directory.
        let (lost_low, _) = entries.pop().unwrap();
        block_on(kv.write("t/p", encode_directory(&entries).unwrap())).unwrap();
        let table = kv.table("t");
        let last = block_on(table.get("p", &key(399))).unwrap().unwrap();
        assert_eq!(last.value, value(399));
        let wanted: Vec<String> = (0..400).map(key).collect();
        assert_eq!(all(&kv, 50), wanted);
        let backwards: Vec<String> = wanted.iter().rev().cloned().collect();
        assert_eq!(all_back(&kv, 33), backwards);
        let got =
            block_on(table.get_many(&[("p".into(), key(399)), ("p".into(), key(0))])).unwrap();
        assert!(got.iter().all(Option::is_some));
        // A write that had to follow the link puts the entry back.
        block_on(table.put("p", &key(399), json!(1), Cond::Any)).unwrap();
        assert!(directory(&kv).iter().any(|(low, _)| *low == lost_low));
    }

    #[test]
    fn writers_on_threads_split_pages_of_one_partition_and_lose_nothing() {
        const WRITERS: usize = 8;
        const EACH: usize = 100;
        let kv = MemoryKv::new();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(WRITERS));
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (kv, barrier) = (kv.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let table = kv.table("t");
                    barrier.wait();
                    for i in 0..EACH {
                        let n = i * WRITERS + w;
                        block_on(table.put("p", &key(n), value(n), Cond::Absent)).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let wanted: Vec<String> = (0..WRITERS * EACH).map(key).collect();
        assert_eq!(all(&kv, 100), wanted);
        assert!(directory(&kv).len() > 4);
    }

    #[test]
    fn round_trips_of_one_item_stay_flat_as_the_partition_grows() {
        let mut seen = Vec::new();
        for n in [10, 3000] {
            let kv = filled(n);
            let counted = kv.counted();
            let table = counted.table("t");
            block_on(table.get("p", &key(n / 2))).unwrap();
            let get = counted.round_trips();
            block_on(table.put("p", &key(n / 2), json!(1), Cond::Any)).unwrap();
            let put = counted.round_trips() - get;
            seen.push((get, put));
        }
        // One value while small; the directory and one page once paged.
        assert_eq!(seen, [(1, 2), (2, 3)]);
    }

    #[test]
    fn twenty_megabytes_fit_in_one_partition_and_read_back_in_order() {
        let kv = filled(20_000);
        let wanted: Vec<String> = (0..20_000).map(key).collect();
        assert_eq!(all(&kv, 1000), wanted);
        let table = kv.table("t");
        let item = block_on(table.get("p", &key(12_345))).unwrap().unwrap();
        assert_eq!(item.value, value(12_345));
    }

    #[test]
    fn corrupt_link_chains_are_refused_not_followed_forever() {
        for page in [
            // Linked to itself.
            r#"{"h":"a","n":"0000000000000001","i":{}}"#,
            // A bound without a link.
            r#"{"h":"a","i":{}}"#,
        ] {
            let kv = MemoryKv::from_snapshot([
                ("t/p".to_owned(), br#"D[["","0000000000000001"]]"#.to_vec()),
                ("t~0000000000000001/p".to_owned(), page.as_bytes().to_vec()),
            ]);
            let table = kv.table("t");
            let corrupt = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Corrupt(_)));
            assert!(corrupt(block_on(table.get("p", "x")).map(|_| ())), "{page}");
            assert!(
                corrupt(block_on(table.query("p", None, 10)).map(|_| ())),
                "{page}"
            );
            assert!(corrupt(
                block_on(table.put("p", "x", json!(1), Cond::Any)).map(|_| ())
            ));
        }
    }

    #[test]
    fn put_partition_replaces_a_paged_partition_and_drops_its_pages() {
        let kv = filled(300);
        let table = kv.table("t");
        block_on(table.put_partition("p", vec![("only".into(), json!(1))])).unwrap();
        assert_eq!(all(&kv, 10), ["only"]);
        assert_eq!(kv.snapshot().len(), 1, "pages left behind");
    }
}
