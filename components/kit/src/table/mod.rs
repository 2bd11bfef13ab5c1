//! DynamoDB's data model over edge storage.
//!
//! A table holds JSON items addressed by a partition key and a sort key (`""` when the
//! table has none). Reads are get and query-within-a-partition in sort-key (byte) order
//! with a limit and a resume key; writes are put and delete, optionally **conditional**
//! on the item being absent or at a known version — the one primitive every
//! consistency need in this project is built from.
//!
//! Key-value backends (memory, Spin, Workers KV, Durable Object storage) share
//! [`PartitionTable`], which keeps one partition in one stored value and makes every
//! write a compare-and-swap of that value; a backend only supplies [`RawKv`]. The
//! shared [`suite`] is what every backend must pass.

pub mod memory;
mod partition;
pub mod suite;
pub mod wire;

#[cfg(target_os = "wasi")]
pub mod spin;
// The Spin backend's key layout, platform-neutral so that it is unit-tested natively
// and so that a native loader can write a Spin store the backend reads.
pub mod spin_keys;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub mod workers;

pub use partition::{PartitionTable, RawKv, Token, FORMAT};

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

/// One page of a query: items in sort-key order and, when more remain, the sort key to
/// resume after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<String>,
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
    /// The write would make its partition larger than a partition may be
    /// ([`MAX_PARTITION_BYTES`]); nothing was written.
    #[error("the partition would hold {0} bytes, over the {MAX_PARTITION_BYTES} a partition may")]
    PartitionFull(usize),
}

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
    PutPartition {
        pk: String,
        items: Vec<(String, Value)>,
    },
    PutItems {
        pk: String,
        items: Vec<(String, Value)>,
    },
}

/// The result of a [`TableOp`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ok", rename_all = "snake_case")]
#[serde(try_from = "wire::TableOpResultWire")]
pub enum TableOpResult {
    Item { item: Option<Item> },
    Items { items: Vec<Option<Item>> },
    Version { version: u64 },
    Existed { existed: bool },
    Page { page: Page },
    Done,
}

impl TableOp {
    /// The partition the operation touches (a Durable Object is chosen by it).
    pub fn partition(&self) -> &str {
        match self {
            TableOp::Get { pk, .. }
            | TableOp::GetMany { pk, .. }
            | TableOp::Put { pk, .. }
            | TableOp::Delete { pk, .. }
            | TableOp::Query { pk, .. }
            | TableOp::PutPartition { pk, .. }
            | TableOp::PutItems { pk, .. } => pk,
        }
    }

    /// Runs the operation on `table`.
    pub async fn apply(self, table: &dyn Table) -> Result<TableOpResult, StoreError> {
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
            TableOp::PutPartition { pk, items } => {
                table.put_partition(&pk, items).await?;
                TableOpResult::Done
            }
            TableOp::PutItems { pk, items } => {
                table.put_items(&pk, items).await?;
                TableOpResult::Done
            }
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
    /// for just the items wanted.
    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Option<Item>>, StoreError> {
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
}
