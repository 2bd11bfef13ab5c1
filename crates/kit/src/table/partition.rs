//! One partition = one stored value; every write is a compare-and-swap of that value.
//!
//! This is how a key-value store gets DynamoDB's semantics: a query is one read, a bulk
//! import writes each partition once (cheap on Workers KV's write quota), and a
//! conditional write is atomic exactly when the store's swap is.

use super::{Change, Cond, Item, Page, StoreError, Table, Updated, MAX_PARTITION_BYTES};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::any::Any;
use std::borrow::Cow;
use std::collections::HashMap;

/// What [`RawKv::load`] observed, for its `swap` to compare against: each store's own
/// kind (a write counter, the bytes seen, a host compare-and-swap handle), boxed so
/// that [`PartitionTable`] holds any store as `dyn RawKv` and its code is compiled once
/// however many stores a build links (the Worker links three: ~11 KB of wasm each,
/// measured before stop 23 gave the wasm LTO).
pub struct Token(Box<dyn Any>);

impl Token {
    pub fn new<T: 'static>(seen: T) -> Self {
        Self(Box::new(seen))
    }

    /// What `new` was given; a token of another store's kind is a backend error (a
    /// table only ever hands its store the tokens that store made).
    pub fn get<T: 'static>(self) -> Result<T, StoreError> {
        self.0
            .downcast::<T>()
            .map(|seen| *seen)
            .map_err(|_| StoreError::Backend("a swap with another store's token".into()))
    }
}

/// What a key-value store must offer [`PartitionTable`].
#[async_trait(?Send)]
pub trait RawKv {
    async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// The values of `keys`, in order: one round trip where the store has a batched
    /// read (Spin's `get-many`, a Durable Object's `get` of many keys).
    async fn read_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(self.read(key).await?);
        }
        Ok(values)
    }

    async fn load(&self, key: &str) -> Result<(Option<Vec<u8>>, Token), StoreError>;

    /// Stores `value` if `key` is unchanged since `token`; `Ok(false)` if it changed.
    async fn swap(&self, key: &str, token: Token, value: Vec<u8>) -> Result<bool, StoreError>;

    /// Stores `value` whatever is there.
    async fn write(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError>;

    /// Stores `value` under a key nobody else knows yet (a new page under a random
    /// name), as `swap` and `load` will find it. Where creating a key safely takes
    /// more than that (Spin's store), a backend may do less, since no writer races it.
    async fn write_new(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        self.write(key, value).await
    }

    /// Removes `key`; only ever asked of keys that nothing refers to (a new page that
    /// was never published, or one no directory names any more). A store that cannot
    /// delete keeps them: unreachable bytes, never read.
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let _ = key;
        Ok(())
    }
}

/// The stored format this code writes, and the newest it reads. An item carries its
/// format in `f`, left out for format 1 (so format 1 is the bytes stored before formats
/// were numbered). During a gradual deploy two versions share the stores, so a new
/// format ships in two deploys: first a version that reads it, then one that writes it
/// (docs/OPERATIONS.md, "Stored formats and deploys"). An item of a newer format is refused, never
/// misread — and a partition holding one is not rewritten, so nothing of it is lost.
pub const FORMAT: u32 = 1;

fn is_format_1(format: &u32) -> bool {
    *format == 1
}

fn format_1() -> u32 {
    1
}

/// Refuses an item of a format this code does not know.
pub(super) fn readable(format: u32) -> Result<(), StoreError> {
    if format > FORMAT {
        return Err(StoreError::Corrupt(format!(
            "an item of stored format {format}; this version reads formats up to {FORMAT}"
        )));
    }
    Ok(())
}

/// One item as the partition keeps it. Its value stays JSON text while the partition is
/// decoded and encoded again around a write: a write then costs about one pass over
/// the partition's bytes, not a parse and print of every item in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Stored {
    #[serde(rename = "v")]
    pub(super) version: u64,
    #[serde(rename = "d")]
    pub(super) value: Box<RawValue>,
    #[serde(
        rename = "f",
        default = "format_1",
        skip_serializing_if = "is_format_1"
    )]
    pub(super) format: u32,
}

/// A partition's items in sort-key order, as its stored JSON object lists them.
///
/// A sorted `Vec` rather than a `BTreeMap`: the tree's code (insert, remove, rebalance,
/// and the sort its `FromIterator` compiles) cost every wasm that links the table layer
/// ~9 KB, and a partition is small enough (at most [`MAX_PARTITION_BYTES`]) that
/// inserting into a `Vec` costs no more than encoding the partition again.
#[derive(Debug, Default)]
pub(super) struct Partition(pub(super) Vec<(String, Stored)>);

impl Partition {
    pub(super) fn position(&self, sk: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(key, _)| key.as_str().cmp(sk))
    }

    pub(super) fn get(&self, sk: &str) -> Option<&Stored> {
        self.position(sk)
            .ok()
            .and_then(|i| self.0.get(i))
            .map(|(_, s)| s)
    }

    pub(super) fn insert(&mut self, sk: String, stored: Stored) {
        match self.position(&sk) {
            Ok(i) => {
                if let Some(slot) = self.0.get_mut(i) {
                    slot.1 = stored;
                }
            }
            Err(i) => self.0.insert(i, (sk, stored)),
        }
    }

    pub(super) fn remove(&mut self, sk: &str) -> Option<Stored> {
        let i = self.position(sk).ok()?;
        Some(self.0.remove(i).1)
    }

    /// From pairs in any order; of two with one key the later wins, as in a map.
    pub(super) fn from_pairs(pairs: Vec<(String, Stored)>) -> Self {
        Self(crate::sorted::last_of_each(pairs))
    }
}

impl Serialize for Partition {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(sk, stored)| (sk, stored)))
    }
}

impl<'de> Deserialize<'de> for Partition {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = Partition;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a partition: an object of stored items")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Partition, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry::<String, Stored>()? {
                    pairs.push(pair);
                }
                Ok(Partition::from_pairs(pairs))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

/// A stored item borrowed from a partition's bytes.
#[derive(Deserialize)]
pub(super) struct StoredRef<'a> {
    #[serde(rename = "v")]
    pub(super) version: u64,
    #[serde(rename = "d", borrow)]
    pub(super) value: &'a RawValue,
    #[serde(rename = "f", default = "format_1")]
    pub(super) format: u32,
}

/// A partition read without copying its values: one map type for every borrowed read,
/// so its decoding is compiled once.
pub(super) type BorrowedPartition<'a> = HashMap<Cow<'a, str>, StoredRef<'a>>;

/// Compare-and-swap retries before giving up with [`StoreError::Contention`]. Each retry
/// means another writer succeeded, so the partition as a whole keeps making progress.
pub(super) const MAX_SWAPS: u32 = 64;

/// What a change to a partition decided.
enum Outcome<R> {
    /// The partition changed: swap it in, then answer.
    Write(R),
    /// Nothing changed: answer without writing.
    Keep(R),
}

/// A [`Table`] over any [`RawKv`], one stored value per `(table, partition)`.
pub struct PartitionTable {
    kv: Box<dyn RawKv>,
    table: String,
}

impl std::fmt::Debug for PartitionTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionTable")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl PartitionTable {
    pub fn new(kv: impl RawKv + 'static, table: &str) -> Self {
        Self {
            kv: Box::new(kv),
            table: table.to_owned(),
        }
    }

    /// The store key partition `pk` of this table is kept under.
    pub fn storage_key(&self, pk: &str) -> String {
        storage_key(&self.table, pk)
    }

    async fn read_partition(&self, pk: &str) -> Result<Partition, StoreError> {
        decode(self.kv.read(&self.storage_key(pk)).await?)
    }

    /// Applies `change` to the current partition and swaps the result in (unless it
    /// kept it), retrying on a lost race with fresh state up to `max_attempts` times.
    /// Returns the answer and the races lost.
    async fn change<R>(
        &self,
        pk: &str,
        max_attempts: u32,
        mut change: impl FnMut(&mut Partition) -> Result<Outcome<R>, StoreError>,
    ) -> Result<(R, u32), StoreError> {
        let key = self.storage_key(pk);
        for retries in 0..max_attempts {
            let (raw, token) = self.kv.load(&key).await?;
            let mut partition = decode(raw)?;
            let result = match change(&mut partition)? {
                Outcome::Keep(result) => return Ok((result, retries)),
                Outcome::Write(result) => result,
            };
            if self.kv.swap(&key, token, encode(&partition)?).await? {
                return Ok((result, retries));
            }
        }
        Err(StoreError::Contention)
    }
}

/// The items of a partition stored whole (format 1, as [`PartitionTable`] writes it),
/// as (sort key, version, value as JSON text) in sort-key order: what a backend that
/// keeps items one by one moves in when it first meets such a partition.
pub fn v1_items(bytes: Vec<u8>) -> Result<Vec<(String, u64, String)>, StoreError> {
    Ok(decode(Some(bytes))?
        .0
        .into_iter()
        .map(|(sk, stored)| (sk, stored.version, stored.value.get().to_owned()))
        .collect())
}

/// The key partition `pk` of `table` is stored under, whole (and, paged, its directory).
pub fn storage_key(table: &str, pk: &str) -> String {
    format!("{table}/{pk}")
}

/// The distinct partitions of `keys`, sorted, and what each one's own key of `table`
/// holds, in one batched read.
pub(super) async fn read_partitions<'k>(
    kv: &dyn RawKv,
    table: &str,
    keys: &'k [(String, String)],
) -> Result<(Vec<&'k str>, Vec<Option<Vec<u8>>>), StoreError> {
    let mut pks: Vec<&str> = keys.iter().map(|(pk, _)| pk.as_str()).collect();
    crate::sorted::sort(&mut pks);
    pks.dedup();
    let storage_keys: Vec<String> = pks.iter().map(|pk| storage_key(table, pk)).collect();
    let raw = kv.read_many(&storage_keys).await?;
    Ok((pks, raw))
}

pub(super) fn decode(raw: Option<Vec<u8>>) -> Result<Partition, StoreError> {
    match raw {
        None => Ok(Partition::default()),
        Some(bytes) => {
            let partition: Partition =
                crate::json::from_bytes(&bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            for (_, stored) in &partition.0 {
                readable(stored.format)?;
            }
            Ok(partition)
        }
    }
}

/// The partition's stored bytes; a partition past [`MAX_PARTITION_BYTES`] is refused.
fn encode(partition: &Partition) -> Result<Vec<u8>, StoreError> {
    let bytes = serde_json::to_vec(partition).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if bytes.len() > MAX_PARTITION_BYTES {
        return Err(StoreError::PartitionFull(bytes.len()));
    }
    Ok(bytes)
}

pub(super) fn check(current: Option<&Stored>, cond: Cond) -> Result<(), StoreError> {
    let holds = match cond {
        Cond::Any => true,
        Cond::Absent => current.is_none(),
        Cond::Version(v) => current.is_some_and(|s| s.version == v),
    };
    if holds {
        Ok(())
    } else {
        Err(StoreError::ConditionFailed)
    }
}

pub(super) fn raw(value: &Value) -> Result<Box<RawValue>, StoreError> {
    serde_json::value::to_raw_value(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Stores `value` at `sk` one version past the current one; returns that version.
pub(super) fn insert(
    partition: &mut Partition,
    sk: &str,
    value: &Value,
) -> Result<u64, StoreError> {
    let version = partition.get(sk).map_or(1, |s| s.version + 1);
    let value = raw(value)?;
    partition.insert(
        sk.to_owned(),
        Stored {
            version,
            value,
            format: FORMAT,
        },
    );
    Ok(version)
}

pub(super) fn item(sk: &str, stored: &Stored) -> Result<Item, StoreError> {
    Ok(Item {
        sk: sk.to_owned(),
        value: crate::json::from_text(stored.value.get())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        version: stored.version,
    })
}

#[async_trait(?Send)]
impl Table for PartitionTable {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.read_partition(pk)
            .await?
            .get(sk)
            .map(|s| item(sk, s))
            .transpose()
    }

    async fn get_json(&self, pk: &str, sk: &str) -> Result<Option<Box<RawValue>>, StoreError> {
        let Some(bytes) = self.kv.read(&self.storage_key(pk)).await? else {
            return Ok(None);
        };
        let partition: BorrowedPartition<'_> =
            crate::json::from_bytes(&bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        match partition.get(sk) {
            Some(stored) => {
                readable(stored.format)?;
                Ok(Some(stored.value.to_owned()))
            }
            None => Ok(None),
        }
    }

    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Option<Item>>, StoreError> {
        let (pks, raw) = read_partitions(self.kv.as_ref(), &self.table, keys).await?;
        // Borrowed from the bytes read: only the items asked for are copied and parsed.
        let mut partitions: HashMap<&str, BorrowedPartition<'_>> =
            HashMap::with_capacity(pks.len());
        for (pk, bytes) in pks.iter().zip(&raw) {
            if let Some(bytes) = bytes {
                let parsed = crate::json::from_bytes(bytes)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                partitions.insert(pk, parsed);
            }
        }
        keys.iter()
            .map(
                |(pk, sk)| match partitions.get(pk.as_str()).and_then(|p| p.get(sk.as_str())) {
                    Some(stored) => {
                        readable(stored.format)?;
                        Ok(Some(Item {
                            sk: sk.clone(),
                            value: crate::json::from_text(stored.value.get())
                                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                            version: stored.version,
                        }))
                    }
                    None => Ok(None),
                },
            )
            .collect()
    }

    async fn update_items(
        &self,
        pk: &str,
        sks: &[String],
        max_attempts: u32,
        change: &mut dyn for<'s, 'i> FnMut(&'s str, Option<&'i Item>) -> Result<Change, StoreError>,
    ) -> Result<u32, StoreError> {
        let ((), retries) = self
            .change(pk, max_attempts, |partition| {
                let mut changed = false;
                for sk in sks {
                    let current = partition.get(sk).map(|s| item(sk, s)).transpose()?;
                    match change(sk, current.as_ref())? {
                        Change::Keep => {}
                        Change::Delete => changed |= partition.remove(sk).is_some(),
                        Change::Put(value) => {
                            insert(partition, sk, &value)?;
                            changed = true;
                        }
                    }
                }
                Ok(if changed {
                    Outcome::Write(())
                } else {
                    Outcome::Keep(())
                })
            })
            .await?;
        Ok(retries)
    }

    async fn put(&self, pk: &str, sk: &str, value: Value, cond: Cond) -> Result<u64, StoreError> {
        let (version, _) = self
            .change(pk, MAX_SWAPS, |partition| {
                let current = partition.get(sk);
                check(current, cond)?;
                Ok(Outcome::Write(insert(partition, sk, &value)?))
            })
            .await?;
        Ok(version)
    }

    /// Deleting an item that is not there writes nothing.
    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<bool, StoreError> {
        let (existed, _) = self
            .change(pk, MAX_SWAPS, |partition| {
                check(partition.get(sk), cond)?;
                Ok(match partition.remove(sk) {
                    Some(_) => Outcome::Write(true),
                    None => Outcome::Keep(false),
                })
            })
            .await?;
        Ok(existed)
    }

    async fn update(
        &self,
        pk: &str,
        sk: &str,
        max_attempts: u32,
        change: &mut dyn for<'i> FnMut(Option<&'i Item>) -> Result<Change, StoreError>,
    ) -> Result<Updated, StoreError> {
        let (version, retries) = self
            .change(pk, max_attempts, |partition| {
                let current = partition.get(sk).map(|s| item(sk, s)).transpose()?;
                Ok(match change(current.as_ref())? {
                    Change::Keep => Outcome::Keep(None),
                    Change::Delete => match partition.remove(sk) {
                        Some(_) => Outcome::Write(None),
                        None => Outcome::Keep(None),
                    },
                    Change::Put(value) => Outcome::Write(Some(insert(partition, sk, &value)?)),
                })
            })
            .await?;
        Ok(Updated { version, retries })
    }

    async fn put_items(&self, pk: &str, items: Vec<(String, Value)>) -> Result<(), StoreError> {
        self.change(pk, MAX_SWAPS, |partition| {
            for (sk, value) in &items {
                insert(partition, sk, value)?;
            }
            Ok(Outcome::Write(()))
        })
        .await
        .map(|((), _)| ())
    }

    async fn query(&self, pk: &str, after: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        let partition = self.read_partition(pk).await?;
        let mut rest = partition
            .0
            .iter()
            .filter(|(sk, _)| after.is_none_or(|a| sk.as_str() > a));
        let items: Vec<Item> = rest
            .by_ref()
            .take(limit)
            .map(|(sk, s)| item(sk, s))
            .collect::<Result<_, _>>()?;
        Ok(super::forward_page(items, rest.next().is_some()))
    }

    async fn query_back(
        &self,
        pk: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let partition = self.read_partition(pk).await?;
        let items = partition
            .0
            .iter()
            .rev()
            .filter(|(sk, _)| before.is_none_or(|b| sk.as_str() < b))
            .take(limit.saturating_add(1))
            .map(|(sk, s)| item(sk, s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(super::back_page(items.into_iter(), limit))
    }

    async fn put_partition(&self, pk: &str, items: Vec<(String, Value)>) -> Result<(), StoreError> {
        let current = self.read_partition(pk).await?;
        let pairs = items
            .into_iter()
            .map(|(sk, value)| {
                let version = current.get(&sk).map_or(1, |s| s.version + 1);
                Ok((
                    sk,
                    Stored {
                        version,
                        value: raw(&value)?,
                        format: FORMAT,
                    },
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        let partition = Partition::from_pairs(pairs);
        self.kv
            .write(&self.storage_key(pk), encode(&partition)?)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::{PartitionTable, FORMAT};
    use crate::table::memory::MemoryKv;
    use crate::table::{Cond, RawKv, StoreError, Table};
    use futures::executor::block_on;

    fn table_holding(bytes: &str) -> (MemoryKv, PartitionTable) {
        let kv = MemoryKv::new();
        block_on(kv.write("t/p", bytes.as_bytes().to_vec())).unwrap();
        let table = kv.whole_table("t");
        (kv, table)
    }

    #[test]
    fn format_1_items_are_stored_as_before_formats_were_numbered() {
        let kv = MemoryKv::new();
        let table = kv.table("t");
        block_on(table.put("p", "a", serde_json::json!({"x": 1}), Cond::Any)).unwrap();
        assert_eq!(FORMAT, 1);
        assert_eq!(
            block_on(kv.read("t/p")).unwrap().unwrap(),
            br#"{"a":{"v":1,"d":{"x":1}}}"#
        );
    }

    #[test]
    fn reads_and_writes_refuse_a_partition_holding_a_newer_format() {
        let newer = r#"{"a":{"v":1,"d":{"x":1}},"b":{"v":3,"d":{"y":2},"f":2}}"#;
        let (kv, table) = table_holding(newer);
        let refused = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Corrupt(m)) if m.contains("format 2"));
        assert!(refused(block_on(table.get("p", "b")).map(|_| ())));
        assert!(refused(block_on(table.get_json("p", "b")).map(|_| ())));
        assert!(refused(
            block_on(table.get_many(&[("p".into(), "b".into())])).map(|_| ())
        ));
        // A write would drop what it cannot read: it is refused and nothing changes.
        assert!(refused(
            block_on(table.put("p", "c", serde_json::json!(3), Cond::Any)).map(|_| ())
        ));
        assert_eq!(block_on(kv.read("t/p")).unwrap().unwrap(), newer.as_bytes());
        // Items of a known format are still read one by one.
        assert_eq!(
            block_on(table.get_json("p", "a")).unwrap().unwrap().get(),
            r#"{"x":1}"#
        );
    }

    #[test]
    fn an_explicit_format_1_reads_like_an_unnumbered_item() {
        let (_, table) = table_holding(r#"{"a":{"v":4,"d":"x","f":1}}"#);
        let item = block_on(table.get("p", "a")).unwrap().unwrap();
        assert_eq!((item.version, item.value), (4, serde_json::json!("x")));
    }
}
