//! DynamoDB's data model over edge storage.
//!
//! A table holds JSON items addressed by a partition key and a sort key (`""` when the
//! table has none). Reads are get and query-within-a-partition in sort-key (byte) order
//! with a limit and a resume key; writes are put and delete, optionally **conditional**
//! on the item being absent or at a known version — the one primitive every
//! consistency need in this project is built from.
//!
//! Items are stored one by one, ordered by sort key, and each operation runs where its
//! data lives: rows of the partition's Durable Object ([`rows`]), bounded pages of a
//! partition on a key-value store with compare-and-swap ([`PagedTable`]: Spin, memory).
//! [`PartitionTable`] keeps a partition in one stored value, the layout of the tables
//! that are read whole (Workers KV's read cache, the graph's one-object table) and of
//! versions before pages. A key-value backend only supplies [`RawKv`]. The shared
//! [`suite`] (feature `suite`) is what every backend must pass.

pub mod dynamo;
pub mod memory;
mod paged;
mod partition;
#[cfg(any(test, feature = "suite"))]
pub mod suite;
pub mod wire;

// The Spin backend's key layout (the backend itself is in `host::spin`),
// platform-neutral so that it is unit-tested natively and so that a native loader can
// write a Spin store the backend reads.
pub mod spin_keys;

pub use paged::{page_items, PagedTable, PAGE_BYTES};
pub use partition::{storage_key, v1_items, PartitionTable, RawKv, Token, FORMAT};

/// Counts a request's round trips to its storage backend (a call into the host's
/// key-value interface, a Durable Object fetch, a KV call), for the benchmark's
/// per-endpoint cost and the `x-storage-round-trips` header of test deployments.
/// Clones share one count.
#[derive(Debug, Clone, Default)]
pub struct RoundTrips(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl RoundTrips {
    pub fn bump(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// One stored item: its sort key, its JSON value, and the version a conditional write
/// can name (starts at 1, +1 on every put).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub sk: String,
    pub value: Value,
    pub version: u64,
}

/// When a write may happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cond {
    /// Always.
    Any,
    /// Only if no item has this key.
    Absent,
    /// Only if the item exists at exactly this version.
    Version(u64),
}

/// What the change of a [`Table::update`] decides for the item it was shown.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Write this value (the item's version goes up by one, or starts at 1).
    Put(Value),
    /// Leave the item as it is: nothing is written.
    Keep,
    /// Delete the item (nothing is written when it is absent).
    Delete,
}

/// How a [`Table::update`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Updated {
    /// The version written, `None` when the change kept or deleted the item.
    pub version: Option<u64>,
    /// Races lost to concurrent writers before this outcome.
    pub retries: u32,
}

/// A read-modify-write of one item as data, so that it can run where the item lives
/// (inside a Durable Object) instead of as a read and a conditional write from afar.
///
/// A service defines its mutations and one [`Mutations`] function that rebuilds them
/// from their [`Mutation::kind`] and [`Mutation::args`]; the Worker hands that function
/// to its objects. Where the table is local, [`Table::mutate`] simply runs
/// [`Mutation::decide`] inside a [`Table::update`].
pub trait Mutation {
    /// The name [`Mutations`] knows it by.
    fn kind(&self) -> &'static str;

    /// Everything [`Mutation::decide`] depends on besides the item, as JSON.
    fn args(&self) -> Value;

    /// Decides what becomes of the item as it is (`None` when absent), and notes what
    /// the caller needs to answer (carried back as JSON from wherever this ran). It may
    /// run more than once (a local backend retrying a lost race), so it must only
    /// decide.
    fn decide(&self, current: Option<&Item>) -> Result<(Change, Value), StoreError>;
}

/// Rebuilds a shipped [`Mutation`] from its kind and arguments; `None` for a kind it
/// does not know. What a Durable Object is given to run [`TableOp::Mutate`].
pub type Mutations = fn(&str, Value) -> Option<Box<dyn Mutation>>;

/// Knows no mutation: for hosts whose tables are all local.
pub fn no_mutations(_kind: &str, _args: Value) -> Option<Box<dyn Mutation>> {
    None
}

/// How a [`Table::mutate`] ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mutated {
    /// The version written, `None` when the mutation kept or deleted the item.
    pub version: Option<u64>,
    /// What [`Mutation::decide`] noted on the run that counted.
    pub note: Value,
    /// Races lost to concurrent writers before that run (none inside an object).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Attempts a local [`Table::mutate`] makes against concurrent writers: each lost race
/// is another writer's success.
const MUTATE_ATTEMPTS: u32 = 64;

/// One page of a query: items in sort-key order and, when more remain, the sort key to
/// resume after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<String>,
}

/// A mutation run by this side as an [`Table::update`], retried on a lost race: for a
/// table that is local, or an object that cannot run it.
async fn mutate_here<T: Table + ?Sized>(
    table: &T,
    pk: &str,
    sk: &str,
    mutation: &dyn Mutation,
) -> Result<Mutated, StoreError> {
    let mut note = Value::Null;
    let updated = table
        .update(pk, sk, MUTATE_ATTEMPTS, &mut |current| {
            let (change, noted) = mutation.decide(current)?;
            note = noted;
            Ok(change)
        })
        .await?;
    Ok(Mutated {
        version: updated.version,
        note,
        retries: updated.retries,
    })
}

/// A reverse read done by reading the whole partition forward: for a backend without
/// its own.
async fn back_by_reading_forward<T: Table + ?Sized>(
    table: &T,
    pk: &str,
    before: Option<&str>,
    limit: usize,
) -> Result<Page, StoreError> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = table.query(pk, after.as_deref(), 1024).await?;
        all.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(back_page(
        all.into_iter()
            .rev()
            .filter(|i| before.is_none_or(|b| i.sk.as_str() < b)),
        limit,
    ))
}

/// A forward read's page: `items` in order, `next` at the last of them when `more`
/// remain after it.
pub(crate) fn forward_page(items: Vec<Item>, more: bool) -> Page {
    let next = match (more, items.last()) {
        (true, Some(last)) => Some(last.sk.clone()),
        _ => None,
    };
    Page { items, next }
}

/// Whether `e` is an object of an earlier version refusing operation `op`, which it
/// does not know (serde's words for an unknown tag); the caller then does what that
/// version did.
fn refused_as_unknown(e: &StoreError, op: &str) -> bool {
    matches!(e, StoreError::Corrupt(message)
        if message.strip_prefix("unknown variant `").is_some_and(|rest| rest.starts_with(op) && rest[op.len()..].starts_with('`')))
}

/// The first `limit` of `items` (already in the order a reverse read returns them) as a
/// page, with `next` when more remain.
pub(crate) fn back_page(mut items: impl Iterator<Item = Item>, limit: usize) -> Page {
    let page: Vec<Item> = items.by_ref().take(limit).collect();
    let next = match (items.next(), page.last()) {
        (Some(_), Some(last)) => Some(last.sk.clone()),
        _ => None,
    };
    Page { items: page, next }
}

/// Why a table operation failed: a small closed set, so callers can act on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum StoreError {
    /// The write's [`Cond`] did not hold; nothing was written.
    #[error("condition failed")]
    ConditionFailed,
    /// Compare-and-swap kept losing to concurrent writers; nothing was written.
    #[error("too much contention on one partition")]
    Contention,
    /// The host did not grant this table or store to the component.
    #[error("no access to store `{0}`")]
    Access(String),
    /// Stored bytes that do not decode: never written by this code.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The backend itself failed (I/O, network, host error).
    #[error("backend error: {0}")]
    Backend(String),
    /// The deployment's configuration names no usable backend (`table_backend` and its
    /// settings): nothing is read or written, and no other backend stands in.
    #[error("storage is not configured: {0}")]
    Unconfigured(String),
    /// The write would make its partition larger than a partition may be
    /// ([`MAX_PARTITION_BYTES`]); nothing was written.
    #[error("the partition would hold {0} bytes, over the {MAX_PARTITION_BYTES} a partition may")]
    PartitionFull(usize),
    /// The item would take more than the backend can store as one item
    /// ([`MAX_ITEM_BYTES`]); nothing was written.
    #[error("the item would take {0} bytes, over the {MAX_ITEM_BYTES} one item may")]
    ItemTooLarge(usize),
}

/// The most one item may take (keys and value), on backends that store items one by
/// one: a Durable Object's SQLite row holds at most 2 MB. DynamoDB's own 400 KB cap
/// is far below, so only the services' larger items could reach it.
pub const MAX_ITEM_BYTES: usize = 2_000_000;

/// The most a partition may hold, in stored bytes, on every backend: a partition is one
/// stored value, and a Durable Object stores at most 2 MB under one key (key and value
/// together), so every host refuses the same writes.
pub const MAX_PARTITION_BYTES: usize = 2_000_000;

/// A DynamoDB-shaped table. Futures are `?Send` because the wasm hosts are
/// single-threaded and their handles (JS values, WASI resources) are not `Send`.
#[async_trait(?Send)]
pub trait Table {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError>;

    /// The value at `(pk, sk)` as JSON text, for readers that use a few parts of a large
    /// value: a backend that stores JSON text hands it over without building a tree.
    async fn get_json(&self, pk: &str, sk: &str) -> Result<Option<Box<RawValue>>, StoreError> {
        match self.get(pk, sk).await? {
            Some(item) => serde_json::value::to_raw_value(&item.value)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(e.to_string())),
            None => Ok(None),
        }
    }

    /// The items at `keys` (partition key, sort key), in the order asked, `None` for a
    /// missing one: what a graph search reads per level. Key-value backends read every
    /// partition involved in one batched round trip; the default is a get per key.
    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Option<Item>>, StoreError> {
        let mut items = Vec::with_capacity(keys.len());
        for (pk, sk) in keys {
            items.push(self.get(pk, sk).await?);
        }
        Ok(items)
    }

    /// Writes `value` at `(pk, sk)` if `cond` holds; returns the new version.
    async fn put(&self, pk: &str, sk: &str, value: Value, cond: Cond) -> Result<u64, StoreError>;

    /// Deletes `(pk, sk)` if `cond` holds; returns whether an item was there.
    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<bool, StoreError>;

    /// Up to `limit` items of partition `pk` with sort key > `after`, in sort-key order.
    async fn query(&self, pk: &str, after: Option<&str>, limit: usize) -> Result<Page, StoreError>;

    /// Up to `limit` items of partition `pk` with sort key < `before`, in descending
    /// sort-key order; `next` is the last key returned when more remain. The default
    /// reads the whole partition forward; the backends read from the end.
    async fn query_back(
        &self,
        pk: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        back_by_reading_forward(self, pk, before, limit).await
    }

    /// Replaces a whole partition's items in one write (bulk import); unconditional.
    async fn put_partition(&self, pk: &str, items: Vec<(String, Value)>) -> Result<(), StoreError>;

    /// Writes `items` (sort key, value) into partition `pk` as one atomic change,
    /// keeping its other items: a bulk merge that loses no concurrent write.
    async fn put_items(&self, pk: &str, items: Vec<(String, Value)>) -> Result<(), StoreError>;

    /// Read-modify-write of one item: `change` sees the item (`None` when absent) and
    /// decides; the write is conditional on the item being as shown, and a lost race
    /// shows `change` the fresh item, up to `max_attempts` times in all, then
    /// [`StoreError::Contention`]. `change` may run more than once, so it must do
    /// nothing but decide (and note what its caller needs).
    ///
    /// The default is a read and a conditional put per attempt; key-value backends do
    /// it in one compare-and-swap cycle, without the separate read.
    async fn update(
        &self,
        pk: &str,
        sk: &str,
        max_attempts: u32,
        change: &mut dyn for<'i> FnMut(Option<&'i Item>) -> Result<Change, StoreError>,
    ) -> Result<Updated, StoreError> {
        for retries in 0..max_attempts {
            let current = self.get(pk, sk).await?;
            let cond = current
                .as_ref()
                .map_or(Cond::Absent, |i| Cond::Version(i.version));
            let value = match (change(current.as_ref())?, &current) {
                (Change::Keep, _) | (Change::Delete, None) => {
                    return Ok(Updated {
                        version: None,
                        retries,
                    })
                }
                (Change::Delete, Some(_)) => match self.delete(pk, sk, cond).await {
                    Ok(_) => {
                        return Ok(Updated {
                            version: None,
                            retries,
                        })
                    }
                    Err(StoreError::ConditionFailed) => continue,
                    Err(e) => return Err(e),
                },
                (Change::Put(value), _) => value,
            };
            match self.put(pk, sk, value, cond).await {
                Ok(version) => {
                    return Ok(Updated {
                        version: Some(version),
                        retries,
                    })
                }
                Err(StoreError::ConditionFailed) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Contention)
    }

    /// Runs `mutation` on one item atomically, where the item lives: one call to a
    /// Durable Object, which runs it next to its storage; elsewhere an
    /// [`Table::update`] (retried on a lost race).
    async fn mutate(
        &self,
        pk: &str,
        sk: &str,
        mutation: &dyn Mutation,
    ) -> Result<Mutated, StoreError> {
        mutate_here(self, pk, sk, mutation).await
    }

    /// Read-modify-write of several items of partition `pk` as one atomic change:
    /// `change` sees each of `sks` (`None` when absent) and decides, as in
    /// [`Table::update`]; a lost race runs every decision again on fresh items. Returns
    /// the races lost. Key-value backends make it one compare-and-swap of the partition;
    /// the default updates item by item (each atomic, not all together).
    async fn update_items(
        &self,
        pk: &str,
        sks: &[String],
        max_attempts: u32,
        change: &mut dyn for<'s, 'i> FnMut(&'s str, Option<&'i Item>) -> Result<Change, StoreError>,
    ) -> Result<u32, StoreError> {
        let mut retries = 0;
        for sk in sks {
            let updated = self
                .update(pk, sk, max_attempts, &mut |item| change(sk, item))
                .await?;
            retries += updated.retries;
        }
        Ok(retries)
    }

    /// Runs each mutation on its item of partition `pk` (sort keys distinct), where the
    /// items live: one call to a Durable Object; elsewhere one
    /// [`Table::update_items`] (on pages, one compare-and-swap per page). Returns what
    /// each decision noted, in order. Each item changes atomically; the items together
    /// only where the backend's `update_items` makes them so.
    async fn mutate_many(
        &self,
        pk: &str,
        items: &[(String, Box<dyn Mutation>)],
    ) -> Result<Vec<Value>, StoreError> {
        mutate_many_here(self, pk, items).await
    }
}

/// [`Table::mutate_many`] run by this side, as one [`Table::update_items`].
async fn mutate_many_here<T: Table + ?Sized>(
    table: &T,
    pk: &str,
    items: &[(String, Box<dyn Mutation>)],
) -> Result<Vec<Value>, StoreError> {
    let sks: Vec<String> = items.iter().map(|(sk, _)| sk.clone()).collect();
    let slot: std::collections::HashMap<&str, (usize, &dyn Mutation)> = items
        .iter()
        .enumerate()
        .map(|(i, (sk, mutation))| (sk.as_str(), (i, mutation.as_ref())))
        .collect();
    // Refilled on every attempt: only the attempt that lands counts.
    let mut notes = vec![Value::Null; items.len()];
    table
        .update_items(pk, &sks, MUTATE_ATTEMPTS, &mut |sk, item| {
            let Some(&(i, mutation)) = slot.get(sk) else {
                return Ok(Change::Keep);
            };
            let (change, note) = mutation.decide(item)?;
            if let Some(slot) = notes.get_mut(i) {
                *slot = note;
            }
            Ok(change)
        })
        .await?;
    Ok(notes)
}

/// A table operation as data, for backends that run the operation elsewhere (a Durable
/// Object executes it next to its storage).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[serde(try_from = "wire::TableOpWire")]
pub enum TableOp {
    Get {
        pk: String,
        sk: String,
    },
    GetMany {
        pk: String,
        sks: Vec<String>,
    },
    Put {
        pk: String,
        sk: String,
        value: Value,
        cond: Cond,
    },
    Delete {
        pk: String,
        sk: String,
        cond: Cond,
    },
    Query {
        pk: String,
        after: Option<String>,
        limit: usize,
    },
    QueryBack {
        pk: String,
        before: Option<String>,
        limit: usize,
    },
    PutPartition {
        pk: String,
        items: Vec<(String, Value)>,
    },
    PutItems {
        pk: String,
        items: Vec<(String, Value)>,
    },
    /// A [`Mutation`] by kind and arguments.
    Mutate {
        pk: String,
        sk: String,
        kind: String,
        args: Value,
    },
    /// Mutations of several items of one partition: `(sort key, kind, arguments)`.
    MutateMany {
        pk: String,
        mutations: Vec<(String, String, Value)>,
    },
    /// Items of any partitions, for a table whose partitions one object holds together.
    GetKeys {
        keys: Vec<(String, String)>,
    },
}

/// The result of a [`TableOp`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ok", rename_all = "snake_case")]
#[serde(try_from = "wire::TableOpResultWire")]
pub enum TableOpResult {
    Item {
        item: Option<Item>,
    },
    Items {
        items: Vec<Option<Item>>,
    },
    Version {
        version: u64,
    },
    Existed {
        existed: bool,
    },
    Page {
        page: Page,
    },
    Done,
    Mutated {
        mutated: Mutated,
    },
    /// What each of a [`TableOp::MutateMany`]'s decisions noted, in order.
    Notes {
        notes: Vec<Value>,
    },
}

impl TableOp {
    /// The partition the operation touches (a Durable Object is chosen by it); `""`
    /// for [`TableOp::GetKeys`], which only a table kept in one object sends.
    pub fn partition(&self) -> &str {
        match self {
            TableOp::Get { pk, .. }
            | TableOp::GetMany { pk, .. }
            | TableOp::Put { pk, .. }
            | TableOp::Delete { pk, .. }
            | TableOp::Query { pk, .. }
            | TableOp::QueryBack { pk, .. }
            | TableOp::PutPartition { pk, .. }
            | TableOp::PutItems { pk, .. }
            | TableOp::Mutate { pk, .. }
            | TableOp::MutateMany { pk, .. } => pk,
            TableOp::GetKeys { .. } => "",
        }
    }

    /// Runs the operation on `table`, rebuilding a mutation with `mutations`.
    pub async fn apply(
        self,
        table: &dyn Table,
        mutations: Mutations,
    ) -> Result<TableOpResult, StoreError> {
        Ok(match self {
            TableOp::Get { pk, sk } => TableOpResult::Item {
                item: table.get(&pk, &sk).await?,
            },
            TableOp::GetMany { pk, sks } => {
                let keys: Vec<(String, String)> =
                    sks.into_iter().map(|sk| (pk.clone(), sk)).collect();
                TableOpResult::Items {
                    items: table.get_many(&keys).await?,
                }
            }
            TableOp::Put {
                pk,
                sk,
                value,
                cond,
            } => TableOpResult::Version {
                version: table.put(&pk, &sk, value, cond).await?,
            },
            TableOp::Delete { pk, sk, cond } => TableOpResult::Existed {
                existed: table.delete(&pk, &sk, cond).await?,
            },
            TableOp::Query { pk, after, limit } => TableOpResult::Page {
                page: table.query(&pk, after.as_deref(), limit).await?,
            },
            TableOp::QueryBack { pk, before, limit } => TableOpResult::Page {
                page: table.query_back(&pk, before.as_deref(), limit).await?,
            },
            TableOp::PutPartition { pk, items } => {
                table.put_partition(&pk, items).await?;
                TableOpResult::Done
            }
            TableOp::PutItems { pk, items } => {
                table.put_items(&pk, items).await?;
                TableOpResult::Done
            }
            TableOp::Mutate { pk, sk, kind, args } => {
                let mutation = mutations(&kind, args).ok_or_else(|| {
                    StoreError::Corrupt(format!("a mutation of unknown kind {kind:?}"))
                })?;
                TableOpResult::Mutated {
                    mutated: table.mutate(&pk, &sk, mutation.as_ref()).await?,
                }
            }
            TableOp::MutateMany {
                pk,
                mutations: shipped,
            } => {
                let mut items: Vec<(String, Box<dyn Mutation>)> = Vec::with_capacity(shipped.len());
                for (sk, kind, args) in shipped {
                    let mutation = mutations(&kind, args).ok_or_else(|| {
                        StoreError::Corrupt(format!("a mutation of unknown kind {kind:?}"))
                    })?;
                    items.push((sk, mutation));
                }
                TableOpResult::Notes {
                    notes: table.mutate_many(&pk, &items).await?,
                }
            }
            TableOp::GetKeys { keys } => TableOpResult::Items {
                items: table.get_many(&keys).await?,
            },
        })
    }
}

fn unexpected(result: TableOpResult) -> StoreError {
    StoreError::Corrupt(format!("unexpected operation result {result:?}"))
}

/// A [`Table`] whose operations are shipped as [`TableOp`]s to wherever they run.
#[async_trait(?Send)]
pub trait RemoteOps {
    async fn call(&self, op: TableOp) -> Result<TableOpResult, StoreError>;

    /// Whether one place holds every partition, so that a read of many partitions is
    /// one [`TableOp::GetKeys`].
    fn holds_every_partition(&self) -> bool {
        false
    }
}

/// Adapts any [`RemoteOps`] into a [`Table`].
#[derive(Debug)]
pub struct RemoteTable<R>(pub R);

#[async_trait(?Send)]
impl<R: RemoteOps> Table for RemoteTable<R> {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let op = TableOp::Get {
            pk: pk.into(),
            sk: sk.into(),
        };
        match self.0.call(op).await? {
            TableOpResult::Item { item } => Ok(item),
            other => Err(unexpected(other)),
        }
    }

    /// One call per partition involved (each partition is its own object), asking
    /// for just the items wanted; one call in all where one object holds them all (an
    /// object of the version before that refuses it, and is asked per partition).
    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Option<Item>>, StoreError> {
        if self.0.holds_every_partition() && !keys.is_empty() {
            let op = TableOp::GetKeys {
                keys: keys.to_vec(),
            };
            match self.0.call(op).await {
                Ok(TableOpResult::Items { items }) if items.len() == keys.len() => {
                    return Ok(items)
                }
                Ok(other) => return Err(unexpected(other)),
                Err(e) if refused_as_unknown(&e, "get_keys") => {}
                Err(e) => return Err(e),
            }
        }
        let mut out: Vec<Option<Item>> = vec![None; keys.len()];
        let by_pk = crate::sorted::group(
            keys.iter()
                .enumerate()
                .map(|(i, (pk, _))| (pk.as_str(), i))
                .collect(),
        );
        for (pk, slots) in by_pk {
            let op = TableOp::GetMany {
                pk: pk.to_owned(),
                sks: slots.iter().map(|&i| keys[i].1.clone()).collect(),
            };
            match self.0.call(op).await? {
                TableOpResult::Items { items } if items.len() == slots.len() => {
                    for (slot, item) in slots.into_iter().zip(items) {
                        out[slot] = item;
                    }
                }
                other => return Err(unexpected(other)),
            }
        }
        Ok(out)
    }

    async fn put(&self, pk: &str, sk: &str, value: Value, cond: Cond) -> Result<u64, StoreError> {
        let op = TableOp::Put {
            pk: pk.into(),
            sk: sk.into(),
            value,
            cond,
        };
        match self.0.call(op).await? {
            TableOpResult::Version { version } => Ok(version),
            other => Err(unexpected(other)),
        }
    }

    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<bool, StoreError> {
        let op = TableOp::Delete {
            pk: pk.into(),
            sk: sk.into(),
            cond,
        };
        match self.0.call(op).await? {
            TableOpResult::Existed { existed } => Ok(existed),
            other => Err(unexpected(other)),
        }
    }

    async fn query(&self, pk: &str, after: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        let op = TableOp::Query {
            pk: pk.into(),
            after: after.map(str::to_owned),
            limit,
        };
        match self.0.call(op).await? {
            TableOpResult::Page { page } => Ok(page),
            other => Err(unexpected(other)),
        }
    }

    /// In the object; one of the version before reverse reads refuses the operation,
    /// and the partition is then read forward, as that version did.
    async fn query_back(
        &self,
        pk: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let op = TableOp::QueryBack {
            pk: pk.into(),
            before: before.map(str::to_owned),
            limit,
        };
        match self.0.call(op).await {
            Ok(TableOpResult::Page { page }) => Ok(page),
            Ok(other) => Err(unexpected(other)),
            Err(e) if refused_as_unknown(&e, "query_back") => {
                back_by_reading_forward(self, pk, before, limit).await
            }
            Err(e) => Err(e),
        }
    }

    async fn put_partition(&self, pk: &str, items: Vec<(String, Value)>) -> Result<(), StoreError> {
        match self
            .0
            .call(TableOp::PutPartition {
                pk: pk.into(),
                items,
            })
            .await?
        {
            TableOpResult::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Shipped to where the item lives. An object of the version before mutations
    /// were shipped refuses the operation; then the mutation runs here, as that
    /// version ran it (a read and conditional writes), so a gradual deploy keeps working.
    async fn mutate(
        &self,
        pk: &str,
        sk: &str,
        mutation: &dyn Mutation,
    ) -> Result<Mutated, StoreError> {
        let op = TableOp::Mutate {
            pk: pk.into(),
            sk: sk.into(),
            kind: mutation.kind().to_owned(),
            args: mutation.args(),
        };
        match self.0.call(op).await {
            Ok(TableOpResult::Mutated { mutated }) => Ok(mutated),
            Ok(other) => Err(unexpected(other)),
            Err(e) if refused_as_unknown(&e, "mutate") => mutate_here(self, pk, sk, mutation).await,
            Err(e) => Err(e),
        }
    }

    async fn put_items(&self, pk: &str, items: Vec<(String, Value)>) -> Result<(), StoreError> {
        match self
            .0
            .call(TableOp::PutItems {
                pk: pk.into(),
                items,
            })
            .await?
        {
            TableOpResult::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Shipped to where the items live in one call. An object of the version before
    /// refuses it; then each item's mutation is shipped alone.
    async fn mutate_many(
        &self,
        pk: &str,
        items: &[(String, Box<dyn Mutation>)],
    ) -> Result<Vec<Value>, StoreError> {
        let op = TableOp::MutateMany {
            pk: pk.into(),
            mutations: items
                .iter()
                .map(|(sk, m)| (sk.clone(), m.kind().to_owned(), m.args()))
                .collect(),
        };
        match self.0.call(op).await {
            Ok(TableOpResult::Notes { notes }) if notes.len() == items.len() => Ok(notes),
            Ok(other) => Err(unexpected(other)),
            Err(e) if refused_as_unknown(&e, "mutate_many") => {
                let mut notes = Vec::with_capacity(items.len());
                for (sk, mutation) in items {
                    notes.push(self.mutate(pk, sk, mutation.as_ref()).await?.note);
                }
                Ok(notes)
            }
            Err(e) => Err(e),
        }
    }
}
