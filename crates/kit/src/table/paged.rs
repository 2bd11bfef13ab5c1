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
//! A directory larger than [`DIRECTORY_BYTES`] moves the same way, one level up: its
//! entries go to **directory pages** (`{"h","n","i":[[low, page id],…]}`, bounded and
//! linked like pages, under the same kind of keys) and `table/pk` becomes an **index**:
//! `I`, then the list of `[lowest sort key, directory page id]`. A get then reads the
//! index, one directory page (≤ 16 KB) and one page (≤ 32 KB), whatever the size of the
//! partition (the index grows by one entry of ~40 bytes per directory page, which
//! names up to ~450 pages: about 10 MB of items).
//!
//! # Writes
//!
//! A write reads the directory, loads the one page its sort key falls in and
//! compare-and-swaps that page: writers of different pages never meet, and writers of
//! one page retry only against each other. A page past `PAGE_BYTES` splits: its upper
//! items go to new pages, written whole under fresh keys first; then the page is
//! swapped to its lower items, its bound and link now pointing at them (the step that
//! publishes them); then the directory gains their entries (a compare-and-swap retried
//! until it lands; a directory page that outgrows its bound splits the same way, and
//! the index gains its new pages). A directory that misses entries — between those two
//! steps, or for
//! good if the writer dies there — is stale but never wrong: a page reached through it
//! whose bound is at or below the key sought is followed along its link, and a writer
//! that had to follow a link puts the missing entry in (one seen along a link names
//! the page that starts exactly there, so it replaces an entry of that low).
//!
//! A split that loses its swap deletes the pages it wrote, which nobody else could
//! have reached; a writer killed before its swap leaves them behind, unreachable.
//!
//! # Merges
//!
//! A write that leaves its page under a quarter of [`PAGE_BYTES`] folds it into the
//! page before it, or the page after it into it, when the two fit one page, so that
//! deleting items gives their pages back and a query never walks over empty ones:
//!
//! 1. the right page is **frozen**: swapped to `F{"l":<its low>,"p":<the page>}`, the
//!    same items marked so that no writer changes them any more (a version that
//!    predates merges cannot parse it either);
//! 2. the left page **absorbs** it: swapped to both pages' items, with the right
//!    page's bound and link (split again if writes since made that too much);
//! 3. the directory entries naming the right page are **re-pointed** at the left one
//!    (each entry still leads to its keys: the left page starts below them), and
//!    entries then naming the page the entry before names are dropped;
//! 4. the right page is **deleted**.
//!
//! Any operation that meets a frozen page runs the steps left (each can be run again
//! by anyone: a left page whose range already reaches past the frozen page's low has
//! absorbed it), then starts over, so a merge cut short stalls nobody. One that meets a
//! page gone (a directory read before step 3, or an entry a stale writer put back)
//! starts over too, first re-pointing such an entry at the page that now holds its
//! low. A writer killed between steps 3 and 4 leaves the frozen page behind,
//! unreachable. Directory pages are not merged: a partition that shrinks keeps its
//! index and directory pages (their entries then name fewer, fuller pages).
//!
//! # Cost, in store round trips
//!
//! While a partition is one value: a read 1, a write 2 (load, swap). Once paged: a get
//! 2 (directory, page), a write 3 (directory, page, swap), a query 1 plus one per page
//! its items span, a batched get 2 for any number of keys and partitions; under an
//! index each of these 1 more (the directory page). A link followed adds 1, a split
//! adds the new pages' writes and the directory's (or directory page's) load and swap;
//! a write that leaves its page small reads its neighbour (1), and a merge adds about
//! 6 (freeze, the left page's load and swap, the directory's load and swap, delete).

use super::partition::{
    check, decode, insert, item, read_partitions, readable, BorrowedPartition, Partition, Stored,
    MAX_SWAPS,
};
use super::{Change, Cond, Item, Page, RawKv, StoreError, Table, Token, Updated, FORMAT};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;

/// The most a page holds, in stored bytes, before it splits; also the most a
/// partition keeps in one value before it moves into pages.
pub const PAGE_BYTES: usize = 32 * 1024;

/// The most a directory keeps in the partition's own value before it moves into
/// directory pages under an index, and the most a directory page holds before it
/// splits: what a get reads besides its page stays this small at any partition size.
pub const DIRECTORY_BYTES: usize = 16 * 1024;

/// How large pages and directories grow before they split.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// The most a page (or a partition kept in one value) holds.
    pub page: usize,
    /// The most a directory in one value, or a directory page, holds.
    pub directory: usize,
}

impl Sizes {
    /// [`PAGE_BYTES`] and [`DIRECTORY_BYTES`].
    pub const DEFAULT: Sizes = Sizes {
        page: PAGE_BYTES,
        directory: DIRECTORY_BYTES,
    };
}

/// The marker byte of a directory (a whole partition's JSON starts with `{`).
const DIRECTORY: u8 = b'D';

/// The marker byte of an index: a directory of directory pages.
const INDEX: u8 = b'I';

/// The marker byte of a frozen page: one being merged into the page before it. A
/// version that predates merges cannot parse it, so it never writes over one.
const FROZEN: u8 = b'F';

/// Restarts one operation makes after meeting pages being merged, or merged away,
/// before it gives up with [`StoreError::Contention`]: each is another writer's merge.
const MAX_DETOURS: u32 = 16;

/// A page being merged away: what it held when frozen, and the low of its range (the
/// bound of the page before it, which absorbs it).
#[derive(Debug, Serialize, Deserialize)]
struct Frozen {
    #[serde(rename = "l")]
    low: String,
    #[serde(rename = "p")]
    page: PageData,
}

/// Why an operation must start over: what it read of a page is no longer where the
/// partition's items are.
#[derive(Debug)]
enum Detour {
    /// Page `id` is frozen: its items are moving into the page before it. Whoever
    /// meets it finishes the merge, so a writer that died half-way stalls nobody.
    Frozen { id: String, frozen: Frozen },
    /// Page `id` is gone, merged away. `entry` is the low of the directory entry that
    /// named it, if one did (a stale writer can put an entry back for a page that has
    /// gone since); reached along a link read before the merge, a fresh read will
    /// not meet it.
    Gone { id: String, entry: Option<String> },
}

/// The page last found gone along a link. A link read is stale when the page it names
/// has gone, and reading again finds the link changed; the same page gone again is a
/// link to a page that never was: corrupt.
#[derive(Default)]
struct Gone(Option<String>);

impl Gone {
    fn again(&mut self, detour: &Detour) -> Result<(), StoreError> {
        if let Detour::Gone { id, entry: None } = detour {
            if self.0.as_ref() == Some(id) {
                return Err(corrupt(format!("page {id} is missing")));
            }
            self.0 = Some(id.clone());
        }
        Ok(())
    }
}

/// A store error, or a detour to take before trying again.
#[derive(Debug)]
enum Fault {
    Store(StoreError),
    Detour(Box<Detour>),
}

impl From<StoreError> for Fault {
    fn from(e: StoreError) -> Self {
        Fault::Store(e)
    }
}

impl Fault {
    /// For levels where pages are never merged (directory pages): a detour there is
    /// corrupt data.
    fn on_directory(self) -> StoreError {
        match self {
            Fault::Store(e) => e,
            Fault::Detour(d) => corrupt(format!("a directory page is frozen or gone: {d:?}")),
        }
    }
}

/// `raw`, the bytes of page `id` (reached through the directory entry `entry`, or a
/// link), if they are a live page's; otherwise the detour to take.
fn live(raw: Option<Vec<u8>>, id: &str, entry: Option<&str>) -> Result<Vec<u8>, Fault> {
    let Some(bytes) = raw else {
        return Err(Fault::Detour(Box::new(Detour::Gone {
            id: id.to_owned(),
            entry: entry.map(str::to_owned),
        })));
    };
    if bytes.first() != Some(&FROZEN) {
        return Ok(bytes);
    }
    let frozen: Frozen =
        crate::json::from_bytes(bytes.get(1..).unwrap_or_default()).map_err(corrupt)?;
    if frozen.low.is_empty() {
        return Err(corrupt(format!("page {id} is frozen but starts the partition")).into());
    }
    Err(Fault::Detour(Box::new(Detour::Frozen {
        id: id.to_owned(),
        frozen,
    })))
}

fn encode_frozen(frozen: &Frozen) -> Result<Vec<u8>, StoreError> {
    let mut bytes = vec![FROZEN];
    serde_json::to_writer(&mut bytes, frozen).map_err(corrupt)?;
    Ok(bytes)
}

/// One page: items (or, on a directory page, entries) from its directory entry's low
/// up to `high`, linked to the page after it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Linked<T> {
    /// The page's exclusive upper bound; `None` for the last page.
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    high: Option<String>,
    /// The id of the page after this one; `None` for the last page.
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    #[serde(rename = "i")]
    items: T,
}

/// A page of items.
type PageData = Linked<Partition>;

/// A page of a directory: `(lowest sort key, page id)` entries, in order.
type DirPage = Linked<Entries>;

impl<T> Linked<T> {
    fn holds(&self, sk: &str) -> bool {
        within(self.high.as_deref(), sk)
    }
}

/// Whether `sk` lies below a page's bound `high` (a last page has none).
fn within(high: Option<&str>, sk: &str) -> bool {
    high.is_none_or(|high| sk < high)
}

/// Directory entries, owned: `(lowest sort key, page id)`, in order.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
struct Entries(Vec<(String, String)>);

/// What a page holds, as pages of either kind split it.
trait Items: Serialize + Default {
    /// `self` cut into runs that each fit one page of `sizes`, in order.
    fn split(self, sizes: Sizes) -> Vec<Self>;
    /// The lowest key held.
    fn low(&self) -> String;
}

/// About what an item takes in a page's bytes.
fn item_bytes(sk: &str, stored: &Stored) -> usize {
    sk.len() + stored.value.get().len() + 24
}

impl Partition {
    /// About what the items take in a page's bytes.
    fn bytes(&self) -> usize {
        self.0
            .iter()
            .map(|(sk, stored)| item_bytes(sk, stored))
            .sum()
    }
}

impl Items for Partition {
    fn split(self, sizes: Sizes) -> Vec<Self> {
        cut(self.0, sizes.page, item_bytes)
            .into_iter()
            .map(Partition)
            .collect()
    }
    fn low(&self) -> String {
        self.0.first().map(|(sk, _)| sk.clone()).unwrap_or_default()
    }
}

impl Items for Entries {
    fn split(self, sizes: Sizes) -> Vec<Self> {
        cut(self.0, sizes.directory, |low, id| low.len() + id.len() + 8)
            .into_iter()
            .map(Entries)
            .collect()
    }
    fn low(&self) -> String {
        self.0
            .first()
            .map(|(low, _)| low.clone())
            .unwrap_or_default()
    }
}

impl Entries {
    /// Puts in the entries it lacks (one seen along a link names the page that starts
    /// exactly at its low, so it replaces an entry of that low naming another);
    /// whether any changed.
    fn add(&mut self, entries: &[(String, String)]) -> bool {
        let mut changed = false;
        for (low, id) in entries {
            match self.0.binary_search_by(|(l, _)| l.as_str().cmp(low)) {
                Err(at) => self.0.insert(at, (low.clone(), id.clone())),
                Ok(at) => match self.0.get_mut(at) {
                    Some(entry) if entry.1 != *id => entry.1.clone_from(id),
                    _ => continue,
                },
            }
            changed = true;
        }
        changed
    }

    /// Names page `live` wherever page `dead` was named from `low` up, then drops each
    /// entry that names the same page as the one before it (a list's first entry
    /// stays, so a directory page keeps its low); whether any changed. `live` starts
    /// at or below `low`, so each entry changed still leads to its keys; one below
    /// `low` naming `dead` is left for the reader it strands to mend.
    fn retarget(&mut self, low: &str, dead: &str, live: &str) -> bool {
        let mut changed = false;
        for entry in &mut self.0 {
            if entry.1 == dead && entry.0.as_str() >= low {
                entry.1 = live.to_owned();
                changed = true;
            }
        }
        if changed {
            self.0.dedup_by(|later, earlier| later.1 == earlier.1);
        }
        changed
    }
}

/// A directory page as read, borrowing its entries from the bytes.
#[derive(Deserialize)]
struct DirRef<'a> {
    #[serde(rename = "h", default, borrow)]
    high: Option<Cow<'a, str>>,
    #[serde(rename = "n", default, borrow)]
    next: Option<Cow<'a, str>>,
    #[serde(rename = "i", borrow)]
    items: Vec<Entry<'a>>,
}

/// A page as read, borrowing its items from the bytes.
#[derive(Deserialize)]
struct PageRef<'a> {
    #[serde(rename = "h", default, borrow)]
    high: Option<Cow<'a, str>>,
    #[serde(rename = "i", borrow)]
    items: BorrowedPartition<'a>,
}

/// A page's bound and link alone (its items skipped unread).
#[derive(Deserialize)]
struct PageLinks<'a> {
    #[serde(rename = "h", default, borrow)]
    high: Option<Cow<'a, str>>,
    #[serde(rename = "n", default, borrow)]
    next: Option<Cow<'a, str>>,
}

/// The keys of one batched read, each once, in the order first asked.
#[derive(Default)]
struct Batch {
    keys: Vec<String>,
    slot: HashMap<String, usize>,
}

impl Batch {
    fn add(&mut self, key: String) {
        if !self.slot.contains_key(&key) {
            self.slot.insert(key.clone(), self.keys.len());
            self.keys.push(key);
        }
    }

    /// What the batched read returned for `key`, from `read` (in the keys' order).
    fn get<'r, T>(&self, key: &str, read: &'r [Option<T>]) -> Option<&'r T> {
        read.get(*self.slot.get(key)?)?.as_ref()
    }
}

/// Where the directory says a key's page is.
struct Located {
    /// The page whose range holds the key (unless it split since).
    id: String,
    /// The low of the entry naming it.
    low: String,
    /// The page the entry before names, if the same list has one: the page a merge
    /// would fold `id` into.
    before: Option<String>,
    /// The page the same directory names next, if it names one: read along with `id`
    /// by a query, which will most likely want it too.
    then: Option<String>,
    /// Index entries found missing on the way (directory pages reached along links),
    /// for a writer to add.
    missed: Vec<(String, String)>,
}

/// The entry of `entries` for `sk` (with `below`, for the keys just below it), with
/// the entries around it.
fn located(
    entries: &[Entry<'_>],
    sk: &str,
    below: bool,
    missed: Vec<(String, String)>,
) -> Option<Located> {
    let at = entries
        .partition_point(|e| e.low() < sk || (!below && e.low() == sk))
        .checked_sub(1)?;
    let entry = entries.get(at)?;
    Some(Located {
        id: entry.id().to_owned(),
        low: entry.low().to_owned(),
        before: at
            .checked_sub(1)
            .and_then(|b| entries.get(b))
            .map(|e| e.id().to_owned()),
        then: entries.get(at + 1).map(|e| e.id().to_owned()),
        missed,
    })
}

/// What a partition's own key holds.
enum Root {
    /// The whole partition, not (yet) paged (and readable).
    Whole,
    /// `(lowest sort key, page id)` of every page, in order; the first low is `""`.
    Directory(Entries),
    /// The same of every directory page, once the directory outgrew one value.
    Index(Entries),
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// One directory entry as read, `(lowest sort key, page id)`, borrowed from the
/// directory's bytes: a get or a query parses a directory of hundreds of entries to
/// use one, and owned strings made that parse most of a get's cost.
#[derive(Deserialize)]
struct Entry<'a>(#[serde(borrow)] Cow<'a, str>, #[serde(borrow)] Cow<'a, str>);

/// A directory entry, as read or as a write holds it.
trait Low {
    fn low(&self) -> &str;
    fn id(&self) -> &str;
}

impl Low for Entry<'_> {
    fn low(&self) -> &str {
        &self.0
    }
    fn id(&self) -> &str {
        &self.1
    }
}

impl Low for (String, String) {
    fn low(&self) -> &str {
        &self.0
    }
    fn id(&self) -> &str {
        &self.1
    }
}

/// Whether a partition's own value is a directory or an index (not the whole
/// partition).
fn is_directory(raw: Option<&[u8]>) -> bool {
    matches!(raw.and_then(<[u8]>::first), Some(&DIRECTORY | &INDEX))
}

fn is_index(root: &[u8]) -> bool {
    root.first() == Some(&INDEX)
}

/// The entries of a directory's or an index's bytes (marker included), borrowed.
fn directory(bytes: &[u8]) -> Result<Vec<Entry<'_>>, StoreError> {
    let entries: Vec<Entry<'_>> =
        crate::json::from_bytes(bytes.get(1..).unwrap_or_default()).map_err(corrupt)?;
    if entries.first().is_none_or(|e| !e.low().is_empty()) {
        return Err(corrupt("a partition directory without its first page"));
    }
    Ok(entries)
}

/// Entries read borrowed, as a write holds them.
fn owned(entries: Vec<Entry<'_>>) -> Vec<(String, String)> {
    entries
        .into_iter()
        .map(|Entry(low, id)| (low.into_owned(), id.into_owned()))
        .collect()
}

fn decode_root(raw: Option<Vec<u8>>) -> Result<Root, StoreError> {
    if !is_directory(raw.as_deref()) {
        return decode(raw).map(|_| Root::Whole);
    }
    let bytes = raw.as_deref().unwrap_or_default();
    let entries = Entries(owned(directory(bytes)?));
    Ok(if is_index(bytes) {
        Root::Index(entries)
    } else {
        Root::Directory(entries)
    })
}

fn encode_directory(entries: &[(String, String)]) -> Result<Vec<u8>, StoreError> {
    encode_root(DIRECTORY, entries)
}

fn encode_root(marker: u8, entries: &[(String, String)]) -> Result<Vec<u8>, StoreError> {
    let mut bytes = vec![marker];
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

fn decode_directory_page(bytes: &[u8]) -> Result<DirPage, StoreError> {
    crate::json::from_bytes(bytes).map_err(corrupt)
}

fn decode_page(bytes: &[u8]) -> Result<PageData, StoreError> {
    let page: PageData = crate::json::from_bytes(bytes).map_err(corrupt)?;
    for (_, stored) in &page.items.0 {
        readable(stored.format)?;
    }
    Ok(page)
}

/// The entry of `entries` whose page holds `sk`: the last whose low is at most `sk`.
fn entry_for<'e, E: Low>(entries: &'e [E], sk: &str) -> Option<&'e E> {
    let after = entries.partition_point(|e| e.low() <= sk);
    entries.get(after.checked_sub(1)?)
}

/// `items` cut into runs of at most about `max` bytes each (by `size`), in order; one
/// run when they fit. Runs are cut evenly — each where the running total passes the
/// next of as many equal shares — so that a page that just split has room and none of
/// the runs is a sliver (which the next write to it would merge straight back).
fn cut<X>(
    items: Vec<(String, X)>,
    max: usize,
    size: impl Fn(&str, &X) -> usize,
) -> Vec<Vec<(String, X)>> {
    let total: usize = items.iter().map(|(k, x)| size(k, x)).sum();
    if total <= max || items.len() < 2 {
        return vec![items];
    }
    let runs = total.div_ceil((max * 3 / 4).max(1)).max(2);
    let mut out = Vec::new();
    let mut run = Vec::new();
    let mut before = 0;
    for (key, x) in items {
        let add = size(&key, &x);
        // A cut before this item when its middle lies past the next share's end.
        let share_end = total * (out.len() + 1) / runs;
        if !run.is_empty() && out.len() + 1 < runs && before + add / 2 > share_end {
            out.push(std::mem::take(&mut run));
        }
        before += add;
        run.push((key, x));
    }
    if !run.is_empty() {
        out.push(run);
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
    sizes: Sizes,
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
            sizes: Sizes::DEFAULT,
        }
    }

    /// The same table splitting at `sizes`: small sizes let tests reach every level of
    /// the layout with little data. Every size reads every layout; only when a value
    /// splits depends on it.
    pub fn with_sizes(mut self, sizes: Sizes) -> Self {
        self.sizes = sizes;
        self
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

    async fn read_directory_page(&self, pk: &str, id: &str) -> Result<Vec<u8>, StoreError> {
        self.kv
            .read(&self.page_key(pk, id))
            .await?
            .ok_or_else(|| corrupt(format!("page {id} of partition {pk:?} is missing")))
    }

    /// Writes `runs` as new pages linked in order, the last linked to `then` (bound,
    /// page); returns their `(low, id)` entries.
    async fn write_pages<T: Items>(
        &self,
        pk: &str,
        runs: Vec<T>,
        then: (Option<String>, Option<String>),
    ) -> Result<Vec<(String, String)>, StoreError> {
        let ids: Vec<String> = runs.iter().map(|_| self.new_id()).collect();
        let lows: Vec<String> = runs.iter().map(Items::low).collect();
        let mut written = Vec::new();
        for (i, items) in runs.into_iter().enumerate() {
            let (high, next) = match (lows.get(i + 1), ids.get(i + 1)) {
                (Some(low), Some(id)) => (Some(low.clone()), Some(id.clone())),
                _ => then.clone(),
            };
            let page = Linked { high, next, items };
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

    /// The root value naming the pages of `entries` (the first low `""`): a directory
    /// while it fits [`DIRECTORY_BYTES`], else an index of new directory pages holding
    /// them; with the ids of the directory pages written.
    async fn root_of(
        &self,
        pk: &str,
        mut entries: Vec<(String, String)>,
    ) -> Result<(Vec<u8>, Vec<String>), StoreError> {
        if let Some(first) = entries.first_mut() {
            first.0 = String::new();
        }
        let bytes = encode_directory(&entries)?;
        let runs = Entries(entries).split(self.sizes);
        if bytes.len() <= self.sizes.directory || runs.len() < 2 {
            return Ok((bytes, Vec::new()));
        }
        let index = self.write_pages(pk, runs, (None, None)).await?;
        let ids = index.iter().map(|(_, id)| id.clone()).collect();
        Ok((encode_root(INDEX, &index)?, ids))
    }

    /// The page whose range the directory says holds `sk` — with `below`, the keys
    /// just below `sk` — from the partition's root value (a directory or an index).
    async fn page_for(
        &self,
        pk: &str,
        root: &[u8],
        sk: &str,
        below: bool,
    ) -> Result<Located, StoreError> {
        let no_first = || corrupt("a partition directory without its first page");
        let entries = directory(root)?;
        let mut missed: Vec<(String, String)> = Vec::new();
        if !is_index(root) {
            return located(&entries, sk, below, missed).ok_or_else(no_first);
        }
        let mut id = located(&entries, sk, below, Vec::new())
            .map(|e| e.id)
            .ok_or_else(no_first)?;
        loop {
            let bytes = self.read_directory_page(pk, &id).await?;
            let page: DirRef<'_> = crate::json::from_bytes(&bytes).map_err(corrupt)?;
            match (page.high, page.next) {
                (Some(high), Some(next)) if sk > high.as_ref() || (!below && sk == high) => {
                    if missed
                        .last()
                        .is_some_and(|(prev, _)| prev.as_str() >= high.as_ref())
                    {
                        return Err(unordered(&id));
                    }
                    missed.push((high.into_owned(), next.to_string()));
                    id = next.into_owned();
                }
                (None, Some(_)) | (Some(_), None) => {
                    return Err(corrupt(format!(
                        "page {id} has a bound without a link or a link without one"
                    )))
                }
                _ => return located(&page.items, sk, below, missed).ok_or_else(no_first),
            }
        }
    }

    /// The entries of the directory pages from `id` along the links up to `until` (the
    /// next index entry's low; `None`: to the end), in order.
    async fn directory_run(
        &self,
        pk: &str,
        id: &str,
        until: Option<&str>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        let mut next = Some(id.to_owned());
        let mut bound: Option<String> = None;
        while let Some(id) = next.take() {
            let page = decode_directory_page(&self.read_directory_page(pk, &id).await?)?;
            bound = ordered(&id, bound, &page)?;
            out.extend(page.items.0);
            if page.high.is_some() && until.is_none_or(|u| page.high.as_deref() < Some(u)) {
                next = page.next;
            }
        }
        Ok(out)
    }

    /// Puts `entries` into the directory of `pk` (those it already has are kept).
    async fn add_entries(&self, pk: &str, entries: &[(String, String)]) -> Result<(), StoreError> {
        let key = self.storage_key(pk);
        for _ in 0..MAX_SWAPS {
            let (raw, token) = self.kv.load(&key).await?;
            let mut dir = match decode_root(raw)? {
                Root::Directory(dir) => dir,
                Root::Index(index) => {
                    drop(token);
                    return self.add_to_index(pk, index, entries).await;
                }
                Root::Whole => return Err(corrupt(format!("partition {pk:?} lost its directory"))),
            };
            if !dir.add(entries) {
                return Ok(());
            }
            let (bytes, written) = self.root_of(pk, dir.0).await?;
            match self.kv.swap(&key, token, bytes).await {
                Ok(true) => return Ok(()),
                lost => {
                    self.forget(pk, &written).await;
                    lost?;
                }
            }
        }
        Err(StoreError::Contention)
    }

    /// Puts `entries` into the directory pages of `pk` under `index`, each page's share
    /// in one compare-and-swap (split when full, its new pages then added to the index).
    async fn add_to_index(
        &self,
        pk: &str,
        mut index: Entries,
        entries: &[(String, String)],
    ) -> Result<(), StoreError> {
        let mut rest: Vec<(String, String)> = entries.to_vec();
        crate::sorted::sort(&mut rest);
        let mut rest = rest.as_slice();
        'page: while let Some((first, _)) = rest.first() {
            for attempt in 0..MAX_SWAPS {
                if attempt > 0 {
                    index = match decode_root(self.kv.read(&self.storage_key(pk)).await?)? {
                        Root::Index(index) => index,
                        _ => return Err(corrupt(format!("partition {pk:?} lost its index"))),
                    };
                }
                let start = entry_for(&index.0, first)
                    .map(|(_, id)| id.clone())
                    .ok_or_else(|| corrupt("a partition index without its first page"))?;
                let (id, mut page, token, mut missed) = self
                    .load_holding(pk, start, None, (first, false), decode_directory_page)
                    .await
                    .map_err(Fault::on_directory)?;
                let here = rest.partition_point(|(low, _)| page.holds(low));
                let (mine, later) = rest.split_at(here);
                if page.items.add(mine) {
                    match self.store_page(pk, &id, token, page).await? {
                        Some(added) => missed.extend(added),
                        None => continue,
                    }
                }
                if !missed.is_empty() {
                    self.add_to_root(pk, &missed).await?;
                }
                rest = later;
                continue 'page;
            }
            return Err(StoreError::Contention);
        }
        Ok(())
    }

    /// Page `id` of `pk` loaded for a compare-and-swap — or, where splits since moved
    /// `key` further right, the page along the links that holds it — with the entries
    /// `(bound, page)` of the pages passed on the way, which the directory misses.
    ///
    /// `entry` is the low of the directory entry that named page `id`; with `below`,
    /// the page sought is the one holding the keys just below `key`.
    async fn load_holding<T>(
        &self,
        pk: &str,
        mut id: String,
        entry: Option<&str>,
        (key, below): (&str, bool),
        decode: fn(&[u8]) -> Result<Linked<T>, StoreError>,
    ) -> Result<(String, Linked<T>, Token, Vec<(String, String)>), Fault> {
        let mut missed: Vec<(String, String)> = Vec::new();
        loop {
            let (raw, token) = self.kv.load(&self.page_key(pk, &id)).await?;
            let via = if missed.is_empty() { entry } else { None };
            let raw = live(raw, &id, via)?;
            let page = decode(&raw)?;
            if page.holds(key) || (below && page.high.as_deref() == Some(key)) {
                return Ok((id, page, token, missed));
            }
            match (page.high, page.next) {
                (Some(high), Some(next)) => {
                    if missed.last().is_some_and(|(prev, _)| *prev >= high) {
                        return Err(unordered(&id).into());
                    }
                    missed.push((high, next.clone()));
                    id = next;
                }
                _ => return Err(corrupt(format!("page {id} ends without a link")).into()),
            }
        }
    }

    /// Puts `entries` (of directory pages) into the index of `pk`.
    async fn add_to_root(&self, pk: &str, entries: &[(String, String)]) -> Result<(), StoreError> {
        let key = self.storage_key(pk);
        for _ in 0..MAX_SWAPS {
            let (raw, token) = self.kv.load(&key).await?;
            let Root::Index(mut index) = decode_root(raw)? else {
                return Err(corrupt(format!("partition {pk:?} lost its index")));
            };
            if !index.add(entries)
                || self
                    .kv
                    .swap(&key, token, encode_root(INDEX, &index.0)?)
                    .await?
            {
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
        let mut gone = Gone::default();
        let mut rest = sks;
        'page: while let Some(first) = rest.first().copied() {
            for _ in 0..max_attempts.max(1) {
                let (raw, token) = self.kv.load(&key).await?;
                if !is_directory(raw.as_deref()) {
                    let mut items = decode(raw)?;
                    if !edit(&mut items, rest)? {
                        return Ok(retries);
                    }
                    if self.store_root(pk, &key, token, items).await? {
                        return Ok(retries);
                    }
                    retries += 1;
                    continue;
                }
                drop(token);
                let root = raw.unwrap_or_default();
                // Along the links from the page the directory names to the one that
                // holds `first`, noting the entries the directory misses.
                let Located {
                    id: start,
                    low,
                    before,
                    missed: missed_pages,
                    ..
                } = self.page_for(pk, &root, first, false).await?;
                let named = start.clone();
                let loaded = self
                    .load_holding(pk, start, Some(&low), (first, false), decode_page)
                    .await;
                let (id, mut page, token, mut missed) = match loaded {
                    Ok(loaded) => loaded,
                    Err(Fault::Store(e)) => return Err(e),
                    Err(Fault::Detour(detour)) => {
                        gone.again(&detour)?;
                        self.clear(pk, *detour).await?;
                        retries += 1;
                        continue;
                    }
                };
                let here = rest.partition_point(|sk| page.holds(sk));
                let (mine, later) = rest.split_at(here);
                if edit(&mut page.items, mine)? {
                    let small = page.items.bytes() < self.sizes.page / 4;
                    let after = page.next.clone();
                    let stored = self.store_page(pk, &id, token, page).await?;
                    let Some(new_entries) = stored else {
                        retries += 1;
                        continue;
                    };
                    if small && id == named {
                        // Upkeep after the write landed: a merge that stops half-way
                        // is finished by whoever meets its frozen page next, so its
                        // failure is not this write's.
                        let _ = self.fold(pk, &root, (&low, before), &id, after).await;
                    }
                    missed.extend(new_entries);
                }
                if !missed_pages.is_empty() {
                    self.add_to_root(pk, &missed_pages).await?;
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

    /// Takes `detour`: finishes the merge of a frozen page, or mends the directory
    /// entry that named a page now gone. What it meets on the way (the page before a
    /// frozen one frozen too, say) is taken first.
    async fn clear(&self, pk: &str, detour: Detour) -> Result<(), StoreError> {
        let mut pending = vec![detour];
        let mut gone = Gone::default();
        for _ in 0..MAX_SWAPS {
            let Some(detour) = pending.pop() else {
                return Ok(());
            };
            gone.again(&detour)?;
            let cleared = match &detour {
                Detour::Frozen { id, frozen } => self.finish_merge(pk, id, frozen, None).await,
                Detour::Gone {
                    id,
                    entry: Some(low),
                } => self.retarget(pk, low, id, None).await,
                Detour::Gone { entry: None, .. } => Ok(()),
            };
            match cleared {
                Ok(()) => {}
                Err(Fault::Store(e)) => return Err(e),
                Err(Fault::Detour(first)) => {
                    pending.push(detour);
                    pending.push(*first);
                }
            }
        }
        if pending.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Contention)
        }
    }

    /// After a write left page `id` small: folds it into the page before it, or else
    /// the page after it (`after`) into it, where the two fit one page. `low` is the
    /// low of the directory entry naming `id` in `root`, `before` the page the entry
    /// before it names, if its list has one.
    async fn fold(
        &self,
        pk: &str,
        root: &[u8],
        (low, before): (&str, Option<String>),
        id: &str,
        after: Option<String>,
    ) -> Result<(), Fault> {
        let before = match before {
            Some(before) => Some(before),
            // The first entry of a directory page: the page before is another's.
            None if !low.is_empty() => Some(self.page_for(pk, root, low, true).await?.id),
            None => None,
        };
        if let Some(before) = before {
            if self.merge(pk, &before, id).await? {
                return Ok(());
            }
        }
        if let Some(after) = after {
            self.merge(pk, id, &after).await?;
        }
        Ok(())
    }

    /// Merges page `right` into page `left` when `left` links to it and both fit one
    /// page: freezes `right`, then [`PagedTable::finish_merge`]. Whether it did; not
    /// when the pages are not (or no longer) neighbours of that size, or a writer
    /// changed `right` meanwhile.
    async fn merge(&self, pk: &str, left: &str, right: &str) -> Result<bool, Fault> {
        let Some(left_bytes) = self.kv.read(&self.page_key(pk, left)).await? else {
            return Ok(false);
        };
        if left_bytes.first() == Some(&FROZEN) {
            return Ok(false);
        }
        let links: PageLinks<'_> = crate::json::from_bytes(&left_bytes).map_err(corrupt)?;
        let (Some(low), Some(next)) = (links.high, links.next) else {
            return Ok(false);
        };
        if next != right {
            return Ok(false);
        }
        // Sized by a plain read first: on Spin each load arms a compare-and-swap, of
        // which a request may hold 256, and most neighbours are too full to merge.
        let key = self.page_key(pk, right);
        let fits = |raw: &[u8]| {
            raw.first() != Some(&FROZEN) && left_bytes.len() + raw.len() <= self.sizes.page
        };
        if !self.kv.read(&key).await?.is_some_and(|raw| fits(&raw)) {
            return Ok(false);
        }
        let (raw, token) = self.kv.load(&key).await?;
        let Some(raw) = raw.filter(|raw| fits(raw)) else {
            return Ok(false);
        };
        let frozen = Frozen {
            low: low.into_owned(),
            page: decode_page(&raw)?,
        };
        if !self.kv.swap(&key, token, encode_frozen(&frozen)?).await? {
            return Ok(false);
        }
        self.finish_merge(pk, right, &frozen, Some(left.to_owned()))
            .await?;
        Ok(true)
    }

    /// Finishes the merge of frozen page `id`: the page before it takes its items,
    /// bound and link in one compare-and-swap (splitting if writes since made that too
    /// much for one page), the directory names that page instead, and `id` is deleted.
    /// Every step can be run again by anyone, so a merge is finished whoever dies
    /// when. `start` is a page at or before the one sought, if known.
    async fn finish_merge(
        &self,
        pk: &str,
        id: &str,
        frozen: &Frozen,
        mut start: Option<String>,
    ) -> Result<(), Fault> {
        let low = frozen.low.as_str();
        for _ in 0..MAX_SWAPS {
            let (from, entry) = match start.take() {
                Some(from) => (from, None),
                None => {
                    let root = self.kv.read(&self.storage_key(pk)).await?;
                    if !is_directory(root.as_deref()) {
                        // The partition was replaced whole: nothing names the page.
                        return Ok(());
                    }
                    let at = self
                        .page_for(pk, &root.unwrap_or_default(), low, true)
                        .await?;
                    (at.id, Some(at.low))
                }
            };
            // The page whose range reaches up to `low`.
            let loaded = self
                .load_holding(pk, from, entry.as_deref(), (low, true), decode_page)
                .await;
            let (left, mut page, token, _) = match loaded {
                Err(Fault::Detour(met)) if matches!(&*met, Detour::Frozen { id: m, .. } if m == id) => {
                    return Err(corrupt(format!("frozen page {id} lies before itself")).into())
                }
                loaded => loaded?,
            };
            let absorber = match (&page.high, &page.next) {
                (Some(high), Some(next)) if high == low && next == id => {
                    page.items.0.extend(frozen.page.items.0.iter().cloned());
                    page.high.clone_from(&frozen.page.high);
                    page.next.clone_from(&frozen.page.next);
                    let Some(added) = self.store_page(pk, &left, token, page).await? else {
                        continue;
                    };
                    if !added.is_empty() {
                        self.add_entries(pk, &added).await?;
                    }
                    left
                }
                // Absorbed already, and split since exactly where the frozen page began.
                (Some(high), Some(next)) if high == low => next.clone(),
                // Absorbed already.
                _ => left,
            };
            self.retarget(pk, low, id, Some(&absorber)).await?;
            self.kv.delete(&self.page_key(pk, id)).await?;
            return Ok(());
        }
        Err(StoreError::Contention.into())
    }

    /// Makes the directory entries naming page `dead` (the one of low `low` among them)
    /// name `live` instead — or, when `None`, the page that holds `low` now.
    async fn retarget(
        &self,
        pk: &str,
        low: &str,
        dead: &str,
        live: Option<&str>,
    ) -> Result<(), Fault> {
        let key = self.storage_key(pk);
        let live = match live {
            Some(live) => live.to_owned(),
            None => {
                let root = self.kv.read(&key).await?;
                if !is_directory(root.as_deref()) {
                    return Ok(());
                }
                let at = self
                    .page_for(pk, &root.unwrap_or_default(), low, true)
                    .await?;
                let (holder, ..) = self
                    .load_holding(pk, at.id, Some(&at.low), (low, false), decode_page)
                    .await?;
                holder
            }
        };
        for _ in 0..MAX_SWAPS {
            let (raw, token) = self.kv.load(&key).await?;
            match decode_root(raw)? {
                Root::Directory(mut dir) => {
                    if !dir.retarget(low, dead, &live)
                        || self.kv.swap(&key, token, encode_directory(&dir.0)?).await?
                    {
                        return Ok(());
                    }
                }
                Root::Index(index) => {
                    drop(token);
                    let start = entry_for(&index.0, low)
                        .map(|(_, id)| id.clone())
                        .ok_or_else(|| corrupt("a partition index without its first page"))?;
                    let (id, mut page, token, _) = self
                        .load_holding(pk, start, None, (low, false), decode_directory_page)
                        .await
                        .map_err(Fault::on_directory)?;
                    if !page.items.retarget(low, dead, &live)
                        || self
                            .kv
                            .swap(&self.page_key(pk, &id), token, encode(&page)?)
                            .await?
                    {
                        return Ok(());
                    }
                }
                Root::Whole => return Ok(()),
            }
        }
        Err(StoreError::Contention.into())
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
        let runs = items.split(self.sizes);
        if runs.len() == 1 {
            let items = runs.into_iter().next().unwrap_or_default();
            return self.kv.swap(key, token, encode(&items)?).await;
        }
        let entries = self.write_pages(pk, runs, (None, None)).await?;
        let mut ids: Vec<String> = entries.iter().map(|(_, id)| id.clone()).collect();
        let (root, directory_pages) = match self.root_of(pk, entries).await {
            Ok(root) => root,
            Err(e) => {
                self.forget(pk, &ids).await;
                return Err(e);
            }
        };
        let swapped = self.kv.swap(key, token, root).await;
        if !matches!(swapped, Ok(true)) {
            ids.extend(directory_pages);
            self.forget(pk, &ids).await;
        }
        swapped
    }

    /// Swaps page `id` to `page`, splitting it when past one page; returns the
    /// directory entries of the pages the split added, `None` when the page changed
    /// since `token`.
    async fn store_page<T: Items>(
        &self,
        pk: &str,
        id: &str,
        token: Token,
        mut page: Linked<T>,
    ) -> Result<Option<Vec<(String, String)>>, StoreError> {
        let key = self.page_key(pk, id);
        let mut runs = std::mem::take(&mut page.items)
            .split(self.sizes)
            .into_iter();
        page.items = runs.next().unwrap_or_default();
        let upper: Vec<T> = runs.collect();
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
        self.detoured(pk, async || self.scan_once(pk, after, wanted).await)
            .await
    }

    async fn scan_once(
        &self,
        pk: &str,
        after: Option<&str>,
        wanted: usize,
    ) -> Result<Vec<(String, Stored)>, Fault> {
        let past = |sk: &str| after.is_none_or(|a| sk > a);
        let raw = self.kv.read(&self.storage_key(pk)).await?;
        if !is_directory(raw.as_deref()) {
            return Ok(decode(raw)?
                .0
                .into_iter()
                .filter(|(sk, _)| past(sk))
                .take(wanted)
                .collect());
        }
        let root = raw.unwrap_or_default();
        let start = self
            .page_for(pk, &root, after.unwrap_or_default(), false)
            .await?;
        // The first page and the one the directory names after it in one read: a
        // query of more than a few items mostly runs on into it.
        let mut ahead: Vec<(String, Vec<u8>)> = Vec::new();
        if let Some(then) = start.then.filter(|_| wanted > 1) {
            let keys = [self.page_key(pk, &start.id), self.page_key(pk, &then)];
            let pages = self.kv.read_many(&keys).await?;
            for (id, bytes) in [start.id.clone(), then].into_iter().zip(pages) {
                if let Some(bytes) = bytes {
                    ahead.push((id, bytes));
                }
            }
        }
        let mut next = Some(start.id);
        let mut entry = Some(start.low);
        let mut out = Vec::new();
        let mut bound: Option<String> = None;
        while let Some(id) = next.take() {
            // A page named next by a stale directory is not the one linked: read anew.
            let raw = match ahead.iter().position(|(read, _)| *read == id) {
                Some(at) => Some(ahead.swap_remove(at).1),
                None => self.kv.read(&self.page_key(pk, &id)).await?,
            };
            let page = decode_page(&live(raw, &id, entry.take().as_deref())?)?;
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
        self.detoured(pk, async || self.scan_back_once(pk, before, wanted).await)
            .await
    }

    async fn scan_back_once(
        &self,
        pk: &str,
        before: Option<&str>,
        wanted: usize,
    ) -> Result<Vec<(String, Stored)>, Fault> {
        let below = |sk: &str| before.is_none_or(|b| sk < b);
        let raw = self.kv.read(&self.storage_key(pk)).await?;
        if !is_directory(raw.as_deref()) {
            return Ok(decode(raw)?
                .0
                .into_iter()
                .rev()
                .filter(|(sk, _)| below(sk))
                .take(wanted)
                .collect());
        }
        let root = raw.unwrap_or_default();
        let entries = owned(directory(&root)?);
        let mut out = Vec::new();
        if !is_index(&root) {
            self.back_over(pk, &entries, None, before, wanted, &mut out)
                .await?;
            return Ok(out);
        }
        // An index: each of its entries' run of directory pages, last first.
        for (_, id, until) in backwards(&entries, before, None) {
            let run = self.directory_run(pk, id, until).await?;
            self.back_over(pk, &run, until, before, wanted, &mut out)
                .await?;
            if out.len() == wanted {
                break;
            }
        }
        Ok(out)
    }

    /// Items of the pages of `entries` (directory entries in order, the range after
    /// them starting at `until`) below `before`, in descending order, onto `out` until
    /// it holds `wanted`: each entry's pages (its page, and any a split put after it
    /// that the directory misses, found along the links) read as one run.
    async fn back_over(
        &self,
        pk: &str,
        entries: &[(String, String)],
        until: Option<&str>,
        before: Option<&str>,
        wanted: usize,
        out: &mut Vec<(String, Stored)>,
    ) -> Result<(), Fault> {
        let below = |sk: &str| before.is_none_or(|b| sk < b);
        for (low, id, until) in backwards(entries, before, until) {
            // The run of pages from this entry's up to the next entry's.
            let mut run: Vec<(String, Stored)> = Vec::new();
            let mut next = Some(id.to_owned());
            let mut entry = Some(low);
            let mut bound: Option<String> = None;
            while let Some(id) = next.take() {
                let raw = self.kv.read(&self.page_key(pk, &id)).await?;
                let page = decode_page(&live(raw, &id, entry.take())?)?;
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
            // An entry a merge re-pointed names a page that starts below it (and
            // its run's last page can reach past the next entry's low).
            for (sk, stored) in run.into_iter().rev() {
                if sk.as_str() < low {
                    break;
                }
                if below(&sk) && until.is_none_or(|u| sk.as_str() < u) {
                    out.push((sk, stored));
                    if out.len() == wanted {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    /// Runs `op` again after each detour it meets, once that is taken.
    async fn detoured<T>(
        &self,
        pk: &str,
        op: impl AsyncFn() -> Result<T, Fault>,
    ) -> Result<T, StoreError> {
        let mut gone = Gone::default();
        for _ in 0..MAX_DETOURS {
            match op().await {
                Ok(done) => return Ok(done),
                Err(Fault::Store(e)) => return Err(e),
                Err(Fault::Detour(detour)) => {
                    gone.again(&detour)?;
                    self.clear(pk, *detour).await?;
                }
            }
        }
        Err(StoreError::Contention)
    }

    /// The bytes of the page holding `(pk, sk)` (a whole partition's as a page's).
    async fn find(&self, pk: &str, sk: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.detoured(pk, async || self.find_once(pk, sk).await)
            .await
    }

    async fn find_once(&self, pk: &str, sk: &str) -> Result<Option<Vec<u8>>, Fault> {
        let raw = self.kv.read(&self.storage_key(pk)).await?;
        let Some(bytes) = raw else {
            return Ok(None);
        };
        if !is_directory(Some(&bytes)) {
            // A whole partition: its bytes read as a page without bound or link.
            return Ok(Some(page_of_whole(bytes)));
        }
        let at = self.page_for(pk, &bytes, sk, false).await?;
        let mut id = at.id;
        let mut entry = Some(at.low);
        let mut bound: Option<String> = None;
        loop {
            let raw = self.kv.read(&self.page_key(pk, &id)).await?;
            let bytes = live(raw, &id, entry.take().as_deref())?;
            // Only the bound and link: the caller reads the item from these bytes.
            let page: PageLinks<'_> = crate::json::from_bytes(&bytes).map_err(corrupt)?;
            let Some(high) = page.high.as_deref() else {
                return Ok(Some(bytes));
            };
            if sk < high {
                return Ok(Some(bytes));
            }
            if bound.as_deref().is_some_and(|prev| prev >= high) {
                return Err(unordered(&id).into());
            }
            bound = Some(high.to_owned());
            match page.next {
                Some(next) => id = next.into_owned(),
                None => return Err(corrupt(format!("page {id} ends without a link")).into()),
            }
        }
    }
}

/// The `(low, page id, low of the entry after it)` of the entries of `entries` whose
/// ranges start below `before`, last first; `then` stands after the last entry.
fn backwards<'e>(
    entries: &'e [(String, String)],
    before: Option<&str>,
    then: Option<&'e str>,
) -> impl Iterator<Item = (&'e str, &'e str, Option<&'e str>)> {
    let last = match before {
        Some(b) => entries.partition_point(|(low, _)| low.as_str() < b),
        None => entries.len(),
    };
    (0..last).rev().filter_map(move |e| {
        let (low, id) = entries.get(e)?;
        let until = entries.get(e + 1).map(|(low, _)| low.as_str()).or(then);
        Some((low.as_str(), id.as_str(), until))
    })
}

/// A link chain whose bounds do not grow: corrupt, and never-ending if followed.
fn unordered(id: &str) -> StoreError {
    corrupt(format!(
        "page {id} does not lie past the page linking to it"
    ))
}

/// Checks that `page` (reached along the links, after pages up to `bound`) lies past
/// them and that only the last page has no bound; returns its bound.
fn ordered<T>(
    id: &str,
    bound: Option<String>,
    page: &Linked<T>,
) -> Result<Option<String>, StoreError> {
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
        let mut dir_bytes: Vec<(&str, Vec<u8>)> = Vec::new();
        for (pk, raw) in pks.iter().zip(roots) {
            match raw {
                Some(bytes) if is_directory(Some(&bytes)) => dir_bytes.push((pk, bytes)),
                Some(bytes) => {
                    whole.insert(pk, page_of_whole(bytes));
                }
                None => {}
            }
        }
        let dirs: HashMap<&str, (bool, Vec<Entry<'_>>)> = dir_bytes
            .iter()
            .map(|(pk, bytes)| Ok((*pk, (is_index(bytes), directory(bytes)?))))
            .collect::<Result<_, StoreError>>()?;
        // Under an index, the directory pages it names, in one batched read more.
        let mut dir_keys = Batch::default();
        for (pk, sk) in keys {
            if let Some((true, index)) = dirs.get(pk.as_str()) {
                if let Some(entry) = entry_for(index, sk) {
                    dir_keys.add(self.page_key(pk, entry.id()));
                }
            }
        }
        let dir_pages = if dir_keys.keys.is_empty() {
            Vec::new()
        } else {
            self.kv.read_many(&dir_keys.keys).await?
        };
        let dir_pages: Vec<Option<DirRef<'_>>> = dir_pages
            .iter()
            .map(|bytes| {
                let parse = |b| crate::json::from_bytes(b).map_err(corrupt);
                bytes.as_deref().map(parse).transpose()
            })
            .collect::<Result<_, _>>()?;
        // Each key's page as its directory names it; `None` where a directory page
        // split since the index was written (that key is read alone).
        let page_ids: Vec<Option<&str>> = keys
            .iter()
            .map(|(pk, sk)| match dirs.get(pk.as_str()) {
                Some((false, dir)) => entry_for(dir, sk).map(Low::id),
                Some((true, index)) => {
                    let key = self.page_key(pk, entry_for(index, sk)?.id());
                    let page = dir_keys.get(&key, &dir_pages)?;
                    within(page.high.as_deref(), sk)
                        .then(|| entry_for(&page.items, sk).map(Low::id))?
                }
                None => None,
            })
            .collect();
        let mut page_keys = Batch::default();
        for ((pk, _), id) in keys.iter().zip(&page_ids) {
            if let Some(id) = id {
                page_keys.add(self.page_key(pk, id));
            }
        }
        let pages = self.kv.read_many(&page_keys.keys).await?;
        // Each page and whole partition parsed once, however many keys it serves.
        let whole: HashMap<&str, PageRef<'_>> = whole
            .iter()
            .map(|(pk, bytes)| Ok((*pk, parse_page(bytes)?)))
            .collect::<Result<_, StoreError>>()?;
        // A page frozen or gone since its directory was read: its keys are read alone.
        let pages: Vec<Option<PageRef<'_>>> = pages
            .iter()
            .map(|bytes| {
                let bytes = bytes.as_deref().filter(|b| b.first() != Some(&FROZEN));
                bytes.map(parse_page).transpose()
            })
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(keys.len());
        for ((pk, sk), id) in keys.iter().zip(page_ids) {
            let found = if let Some(page) = whole.get(pk.as_str()) {
                found_in(page, sk)?
                    .map(|(v, value)| item_of(sk, v, value))
                    .transpose()?
            } else if !dirs.contains_key(pk.as_str()) {
                None
            } else if let Some(page) =
                id.and_then(|id| page_keys.get(&self.page_key(pk, id), &pages))
            {
                if within(page.high.as_deref(), sk) {
                    found_in(page, sk)?
                        .map(|(v, value)| item_of(sk, v, value))
                        .transpose()?
                } else {
                    self.get(pk, sk).await?
                }
            } else {
                self.get(pk, sk).await?
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
                Root::Directory(entries) => entries.0.into_iter().map(|(_, id)| id).collect(),
                Root::Index(index) => {
                    let mut ids: Vec<String> = index.0.iter().map(|(_, id)| id.clone()).collect();
                    if let Some((_, first)) = index.0.first() {
                        let pages = self.directory_run(pk, first, None).await?;
                        ids.extend(pages.into_iter().map(|(_, id)| id));
                    }
                    ids
                }
                Root::Whole => Vec::new(),
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
    use super::{
        decode_root, encode_directory, encode_root, PagedTable, Root, Sizes, FROZEN, INDEX,
        PAGE_BYTES,
    };
    use crate::table::memory::MemoryKv;
    use crate::table::{Cond, RawKv, StoreError, Table, Token};
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

    /// Sizes small enough that a few hundred small items reach an index.
    const SMALL: Sizes = Sizes {
        page: 2048,
        directory: 256,
    };

    fn small_value(i: usize) -> Value {
        json!({"i": i, "fill": "z".repeat(100)})
    }

    /// `n` small items in partition `p` of table `t`, written with [`SMALL`] sizes.
    fn small_filled(n: usize) -> MemoryKv {
        let kv = MemoryKv::new();
        let table = kv.table("t").with_sizes(SMALL);
        let items: Vec<(String, Value)> = (0..n).map(|i| (key(i), small_value(i))).collect();
        for batch in items.chunks(50) {
            block_on(table.put_items("p", batch.to_vec())).unwrap();
        }
        kv
    }

    fn index(kv: &MemoryKv) -> Vec<(String, String)> {
        match decode_root(block_on(kv.read("t/p")).unwrap()).unwrap() {
            Root::Index(entries) => entries.0,
            _ => panic!("no index"),
        }
    }

    /// The entry of every page, through the index's directory pages where it has one.
    fn directory(kv: &MemoryKv) -> Vec<(String, String)> {
        match decode_root(block_on(kv.read("t/p")).unwrap()).unwrap() {
            Root::Directory(entries) => entries.0,
            Root::Index(index) => {
                block_on(kv.table("t").directory_run("p", &index.0[0].1, None)).unwrap()
            }
            Root::Whole => panic!("not paged"),
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
        bounded_and_in_order(&kv, 1000, PAGE_BYTES + 1100);
    }

    /// Every value of `kv` at most `max` bytes, and partition `p` holding items
    /// `0..n`, read in order both ways at several page sizes.
    fn bounded_and_in_order(kv: &MemoryKv, n: usize, max: usize) {
        for (key, bytes) in kv.snapshot() {
            assert!(bytes.len() <= max, "{key}: {} bytes", bytes.len());
        }
        let wanted: Vec<String> = (0..n).map(key).collect();
        let backwards: Vec<String> = wanted.iter().rev().cloned().collect();
        for limit in [1, 7, 64, 1000] {
            assert_eq!(all(kv, limit), wanted, "limit {limit}");
            assert_eq!(all_back(kv, limit), backwards, "limit {limit} backwards");
        }
    }

    /// Reads the `n` items of partition `p` through a root that lost the entry
    /// `lost_low` (a writer died between a split and its entry), then checks that a
    /// write that had to follow the link puts the entry back where `listed` finds it.
    fn followed_then_repaired(
        kv: &MemoryKv,
        sizes: Sizes,
        n: usize,
        value_of: fn(usize) -> Value,
        lost_low: &str,
        listed: fn(&MemoryKv) -> Vec<(String, String)>,
    ) {
        let table = kv.table("t").with_sizes(sizes);
        let last = block_on(table.get("p", &key(n - 1))).unwrap().unwrap();
        assert_eq!(last.value, value_of(n - 1));
        let wanted: Vec<String> = (0..n).map(key).collect();
        assert_eq!(all(kv, 50), wanted);
        let backwards: Vec<String> = wanted.iter().rev().cloned().collect();
        assert_eq!(all_back(kv, 33), backwards);
        let got =
            block_on(table.get_many(&[("p".into(), key(n - 1)), ("p".into(), key(0))])).unwrap();
        assert!(got.iter().all(Option::is_some));
        block_on(table.put("p", &key(n - 1), json!(1), Cond::Any)).unwrap();
        assert!(listed(kv).iter().any(|(low, _)| *low == lost_low));
    }

    #[test]
    fn a_directory_missing_a_split_is_followed_and_then_repaired() {
        let kv = filled(400);
        let mut entries = directory(&kv);
        let (lost_low, _) = entries.pop().unwrap();
        block_on(kv.write("t/p", encode_directory(&entries).unwrap())).unwrap();
        followed_then_repaired(&kv, Sizes::DEFAULT, 400, value, &lost_low, directory);
    }

    /// 8 threads putting `each` new items apiece into partition `p` at once, with
    /// `sizes`: every item is there afterwards, in order both ways.
    fn written_from_threads(each: usize, sizes: Sizes, value_of: fn(usize) -> Value) -> MemoryKv {
        const WRITERS: usize = 8;
        let kv = MemoryKv::new();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(WRITERS));
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (kv, barrier) = (kv.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let table = kv.table("t").with_sizes(sizes);
                    barrier.wait();
                    for i in 0..each {
                        let n = i * WRITERS + w;
                        block_on(table.put("p", &key(n), value_of(n), Cond::Absent)).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let wanted: Vec<String> = (0..WRITERS * each).map(key).collect();
        assert_eq!(all(&kv, 100), wanted);
        assert_eq!(all_back(&kv, 70).len(), wanted.len());
        kv
    }

    #[test]
    fn writers_on_threads_split_pages_of_one_partition_and_lose_nothing() {
        let kv = written_from_threads(100, Sizes::DEFAULT, value);
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
        // A query of two pages' items reads them in one round trip after the directory.
        let kv = filled(3000);
        let counted = kv.counted();
        let page = block_on(counted.table("t").query("p", None, 25)).unwrap();
        assert_eq!(page.items.len(), 25);
        assert_eq!(counted.round_trips(), 2);
        // The index's round trip more once the directory outgrows one value.
        let kv = small_filled(600);
        let counted = kv.counted();
        let table = counted.table("t").with_sizes(SMALL);
        block_on(table.get("p", &key(300))).unwrap();
        let get = counted.round_trips();
        block_on(table.put("p", &key(300), json!(1), Cond::Any)).unwrap();
        seen.push((get, counted.round_trips() - get));
        // One value while small; the directory and one page once paged; the index,
        // a directory page and one page past that.
        assert_eq!(seen, [(1, 2), (2, 3), (3, 4)]);
    }

    #[test]
    fn a_directory_past_its_limit_moves_into_directory_pages_under_an_index() {
        let kv = small_filled(600);
        let root = block_on(kv.read("t/p")).unwrap().unwrap();
        assert_eq!(root.first(), Some(&INDEX));
        assert!(
            index(&kv).len() >= 2,
            "{} directory pages",
            index(&kv).len()
        );
        bounded_and_in_order(&kv, 600, SMALL.page + 200);
        let table = kv.table("t");
        for i in [0, 1, 299, 599] {
            let item = block_on(table.get("p", &key(i))).unwrap().unwrap();
            assert_eq!(item.value, small_value(i));
        }
        let keys: Vec<(String, String)> = [0, 450, 9999, 17, 599]
            .iter()
            .map(|&i| ("p".to_owned(), key(i)))
            .collect();
        let got = block_on(table.get_many(&keys)).unwrap();
        let found: Vec<Option<Value>> = got.into_iter().map(|i| i.map(|i| i.value)).collect();
        assert_eq!(
            found,
            [0, 450, 9999, 17, 599].map(|i| (i < 600).then(|| small_value(i)))
        );
    }

    #[test]
    fn an_index_missing_a_directory_page_is_followed_and_then_repaired() {
        let kv = small_filled(600);
        let mut entries = index(&kv);
        let (lost_low, _) = entries.pop().unwrap();
        block_on(kv.write("t/p", encode_root(INDEX, &entries).unwrap())).unwrap();
        followed_then_repaired(&kv, SMALL, 600, small_value, &lost_low, index);
    }

    #[test]
    fn writers_on_threads_split_directory_pages_and_lose_nothing() {
        let kv = written_from_threads(80, SMALL, small_value);
        let pages = index(&kv).len();
        assert!(pages >= 2, "{pages} directory pages");
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
            // A link to a page that is not there.
            r#"{"h":"a","n":"0000000000000009","i":{}}"#,
            // Frozen, with nothing before it to absorb it.
            r#"F{"l":"a","p":{"i":{}}}"#,
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

    /// The pages the directory of `p` names (each directory page keeps its first
    /// entry, so after merges several entries can name one page).
    fn pages(kv: &MemoryKv) -> usize {
        let mut ids: Vec<String> = directory(kv).into_iter().map(|(_, id)| id).collect();
        ids.sort();
        ids.dedup();
        ids.len()
    }

    /// The page keys of `kv` and whether any is frozen.
    fn page_keys(kv: &MemoryKv) -> (Vec<String>, bool) {
        let snapshot = kv.snapshot();
        let frozen = snapshot.values().any(|v| v.first() == Some(&FROZEN));
        (
            snapshot.into_keys().filter(|k| k.contains('~')).collect(),
            frozen,
        )
    }

    /// Partition `p` of `kv` holds exactly the items `kept` (of [`small_value`]), read
    /// in order both ways, one by one and batched; its directory names only live pages.
    fn holds_exactly(kv: &MemoryKv, kept: &[usize]) {
        let wanted: Vec<String> = kept.iter().map(|&i| key(i)).collect();
        let backwards: Vec<String> = wanted.iter().rev().cloned().collect();
        for limit in [1, 5, 100] {
            assert_eq!(all(kv, limit), wanted, "limit {limit}");
            assert_eq!(all_back(kv, limit), backwards, "limit {limit} backwards");
        }
        let table = kv.table("t").with_sizes(SMALL);
        let keys: Vec<(String, String)> = (0..kept.last().map_or(1, |l| l + 2))
            .map(|i| ("p".to_owned(), key(i)))
            .collect();
        let got = block_on(table.get_many(&keys)).unwrap();
        for (i, item) in got.into_iter().enumerate() {
            let expected = kept.binary_search(&i).is_ok().then(|| small_value(i));
            assert_eq!(item.map(|item| item.value), expected, "get_many {i}");
            let one = block_on(table.get("p", &key(i))).unwrap();
            assert_eq!(one.map(|item| item.value), expected, "get {i}");
        }
        let snapshot = kv.snapshot();
        for (_, id) in directory(kv) {
            let page = snapshot
                .get(&format!("t~{id}/p"))
                .expect("a page named is there");
            assert_ne!(page.first(), Some(&FROZEN), "page {id} named and frozen");
        }
    }

    #[test]
    fn deleting_items_merges_their_pages_and_drops_the_merged_ones() {
        let kv = small_filled(400);
        let table = kv.table("t").with_sizes(SMALL);
        let (before, _) = page_keys(&kv);
        let pages_before = pages(&kv);
        for i in (0..400).filter(|i| i % 10 != 0) {
            assert!(block_on(table.delete("p", &key(i), Cond::Any)).unwrap());
        }
        let kept: Vec<usize> = (0..400).step_by(10).collect();
        holds_exactly(&kv, &kept);
        let (after, frozen) = page_keys(&kv);
        let pages_after = pages(&kv);
        assert!(!frozen);
        // 40 items of ~140 bytes fit ~4 pages of 2 KB; merges stop short of full pages.
        assert!(
            pages_after <= pages_before / 3,
            "{pages_before} pages, {pages_after} after deleting 90%"
        );
        assert!(
            after.len() < before.len() / 2,
            "{} of {} page keys left",
            after.len(),
            before.len()
        );
        for i in kept.iter().copied() {
            assert!(block_on(table.delete("p", &key(i), Cond::Any)).unwrap());
        }
        holds_exactly(&kv, &[]);
        assert_eq!(pages(&kv), 1, "an empty partition keeps one page");
        block_on(table.put_items("p", (0..50).map(|i| (key(i), small_value(i))).collect()))
            .unwrap();
        holds_exactly(&kv, &(0..50).collect::<Vec<_>>());
    }

    /// A store that fails every change after the first `left`: a process that dies
    /// there, its later steps never run.
    #[derive(Clone)]
    struct Dying {
        kv: MemoryKv,
        left: std::rc::Rc<std::cell::Cell<usize>>,
    }

    impl Dying {
        fn step(&self) -> Result<(), StoreError> {
            match self.left.get() {
                0 => Err(StoreError::Backend("died".into())),
                n => {
                    self.left.set(n - 1);
                    Ok(())
                }
            }
        }
    }

    #[async_trait::async_trait(?Send)]
    impl RawKv for Dying {
        async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.kv.read(key).await
        }
        async fn load(&self, key: &str) -> Result<(Option<Vec<u8>>, Token), StoreError> {
            self.kv.load(key).await
        }
        async fn swap(&self, key: &str, token: Token, value: Vec<u8>) -> Result<bool, StoreError> {
            self.step()?;
            self.kv.swap(key, token, value).await
        }
        async fn write(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
            self.step()?;
            self.kv.write(key, value).await
        }
        async fn delete(&self, key: &str) -> Result<(), StoreError> {
            self.step()?;
            self.kv.delete(key).await
        }
    }

    #[test]
    fn a_merge_cut_short_at_any_step_is_finished_by_whoever_meets_it() {
        // Deletes from the front of the third page until one of them merges it.
        let setup = || {
            let kv = small_filled(60);
            let third = directory(&kv)[2].0.clone();
            let first: usize = third.parse().unwrap();
            (kv, first)
        };
        let (kv, first) = setup();
        let table = kv.table("t").with_sizes(SMALL);
        let pages = directory(&kv).len();
        let mut merging = first;
        while directory(&kv).len() == pages {
            block_on(table.delete("p", &key(merging), Cond::Any)).unwrap();
            merging += 1;
        }
        let merging = merging - 1;
        // Its steps: the delete's swap, the freeze, the absorbing swap, the directory's
        // swap, the frozen page's deletion.
        for steps in 0..6 {
            let (kv, _) = setup();
            let table = kv.table("t").with_sizes(SMALL);
            for i in first..merging {
                block_on(table.delete("p", &key(i), Cond::Any)).unwrap();
            }
            let dying = Dying {
                kv: kv.clone(),
                left: std::rc::Rc::new(std::cell::Cell::new(steps)),
            };
            let cut_short = PagedTable::new(dying, "t", crate::host::os_random).with_sizes(SMALL);
            let deleted = block_on(cut_short.delete("p", &key(merging), Cond::Any));
            assert_eq!(deleted.is_ok(), steps > 0, "{steps} steps: {deleted:?}");
            let kept: Vec<usize> = (0..60)
                .filter(|&i| i < first || i > merging || (i == merging && steps == 0))
                .collect();
            holds_exactly(&kv, &kept);
            let (_, frozen) = page_keys(&kv);
            // Only a merge that died after the directory stopped naming its page leaves
            // that page behind, frozen and unreachable.
            assert_eq!(frozen, steps == 4, "{steps} steps");
            let absent = if steps == 0 { Cond::Any } else { Cond::Absent };
            block_on(table.put("p", &key(merging), small_value(merging), absent)).unwrap();
            let kept: Vec<usize> = (0..60).filter(|&i| i < first || i >= merging).collect();
            holds_exactly(&kv, &kept);
        }
    }

    /// 8 threads putting 60 items apiece into partition `p`, then deleting three in
    /// four of them, then the rest, all at once with small pages: splits and merges
    /// race, and every write is there (or gone) as acknowledged.
    #[test]
    fn writers_on_threads_split_and_merge_pages_and_lose_nothing() {
        const WRITERS: usize = 8;
        const EACH: usize = 60;
        let kv = MemoryKv::new();
        let run = |phase: fn(&PagedTable, usize)| {
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(WRITERS));
            let handles: Vec<_> = (0..WRITERS)
                .map(|w| {
                    let (kv, barrier) = (kv.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        let table = kv.table("t").with_sizes(SMALL);
                        barrier.wait();
                        phase(&table, w);
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
        };
        run(|table, w| {
            for i in 0..EACH {
                let n = i * WRITERS + w;
                block_on(table.put("p", &key(n), small_value(n), Cond::Absent)).unwrap();
            }
        });
        let before = pages(&kv);
        // Deletes three in four, and puts items past them (pages split at the end while
        // others merge).
        run(|table, w| {
            for i in 0..EACH {
                let n = i * WRITERS + w;
                if i % 4 != 0 {
                    assert!(
                        block_on(table.delete("p", &key(n), Cond::Any)).unwrap(),
                        "{n}"
                    );
                }
                if i % 3 == 0 {
                    let n = n + EACH * WRITERS;
                    block_on(table.put("p", &key(n), small_value(n), Cond::Absent)).unwrap();
                }
            }
        });
        let kept = |n: usize| {
            let i = (n / WRITERS) % EACH;
            if n < EACH * WRITERS {
                i.is_multiple_of(4)
            } else {
                i.is_multiple_of(3)
            }
        };
        let kept: Vec<usize> = (0..2 * EACH * WRITERS).filter(|&n| kept(n)).collect();
        holds_exactly(&kv, &kept);
        run(|table, w| {
            for i in 0..2 * EACH {
                let n = i * WRITERS + w;
                let kept = if i < EACH {
                    i % 4 == 0
                } else {
                    (i - EACH).is_multiple_of(3)
                };
                if kept {
                    assert!(
                        block_on(table.delete("p", &key(n), Cond::Any)).unwrap(),
                        "{n}"
                    );
                }
            }
        });
        holds_exactly(&kv, &[]);
        let left = pages(&kv);
        assert!(left <= 2, "{left} empty pages left of {before}");
    }

    #[test]
    fn pages_split_into_even_runs_without_slivers() {
        for (n, each) in [(33, 1000), (49, 700), (100, 1000), (7, 9000), (250, 130)] {
            let items: Vec<(String, usize)> = (0..n).map(|i| (key(i), each)).collect();
            let runs = super::cut(items, 32_000, |_, size| *size);
            let sizes: Vec<usize> = runs.iter().map(|r| r.len() * each).collect();
            assert_eq!(runs.iter().map(Vec::len).sum::<usize>(), n);
            let (least, most) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(
                most - least <= each && *most <= 32_000,
                "{n} items of {each}: {sizes:?}"
            );
        }
        let with_a_giant = vec![
            ("a".to_owned(), 100),
            ("b".to_owned(), 90_000),
            ("c".to_owned(), 100),
        ];
        let runs = super::cut(with_a_giant, 32_000, |_, size| *size);
        assert!(
            runs.iter().any(|r| r.len() == 1 && r[0].0 == "b"),
            "{runs:?}"
        );
    }

    #[test]
    fn put_partition_replaces_a_paged_partition_and_drops_its_pages() {
        for kv in [filled(300), small_filled(600)] {
            let table = kv.table("t");
            block_on(table.put_partition("p", vec![("only".into(), json!(1))])).unwrap();
            assert_eq!(all(&kv, 10), ["only"]);
            assert_eq!(kv.snapshot().len(), 1, "pages left behind");
        }
    }
}
