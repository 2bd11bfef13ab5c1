//! The in-memory backend: native tests, the native host and benchmarks. Strongly
//! consistent; clones share one store.

use super::{PagedTable, PartitionTable, RawKv, RoundTrips, StoreError, Token};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Each key's value with a counter of writes to it, which is the CAS token.
type Entries = HashMap<String, (u64, Vec<u8>)>;

/// A shared in-memory key-value store with versioned compare-and-swap.
#[derive(Debug, Clone, Default)]
pub struct MemoryKv {
    inner: Arc<Mutex<Entries>>,
    trips: RoundTrips,
    /// Changes left before the store fails every change (see [`MemoryKv::dying_after`]).
    changes_left: Option<Arc<AtomicI64>>,
}

impl MemoryKv {
    pub fn new() -> Self {
        Self::default()
    }

    /// The same store with a round-trip count of its own (one per request).
    pub fn counted(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            trips: RoundTrips::default(),
            changes_left: self.changes_left.clone(),
        }
    }

    /// The same store as a process that dies after `changes` more changes (swaps,
    /// writes, deletes) sees it: every change after those fails, and changes nothing,
    /// for crash tests. Clones share the count; the store itself lives on.
    pub fn dying_after(&self, changes: u64) -> Self {
        Self {
            inner: self.inner.clone(),
            trips: self.trips.clone(),
            changes_left: Some(Arc::new(AtomicI64::new(
                i64::try_from(changes).unwrap_or(i64::MAX),
            ))),
        }
    }

    /// Counts one change against [`MemoryKv::dying_after`].
    fn change(&self) -> Result<(), StoreError> {
        match &self.changes_left {
            Some(left) if left.fetch_sub(1, Ordering::SeqCst) <= 0 => {
                Err(StoreError::Backend("the store died".into()))
            }
            _ => Ok(()),
        }
    }

    pub fn round_trips(&self) -> u64 {
        self.trips.get()
    }

    /// Every stored key and its bytes, for tests that pin the stored format.
    pub fn snapshot(&self) -> std::collections::BTreeMap<String, Vec<u8>> {
        self.inner
            .lock()
            .map(|map| {
                map.iter()
                    .map(|(k, (_, v))| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A store holding `entries` (as [`MemoryKv::snapshot`] gives them).
    pub fn from_snapshot(entries: impl IntoIterator<Item = (String, Vec<u8>)>) -> Self {
        let map: Entries = entries.into_iter().map(|(k, v)| (k, (1, v))).collect();
        Self {
            inner: Arc::new(Mutex::new(map)),
            trips: RoundTrips::default(),
            changes_left: None,
        }
    }

    /// A table over this store.
    /// A table over this store, in pages ([`PagedTable`]).
    pub fn table(&self, name: &str) -> PagedTable {
        PagedTable::new(self.clone(), name, crate::host::os_random)
    }

    /// A table over this store with each partition one value ([`PartitionTable`]), as
    /// versions before pages kept them.
    pub fn whole_table(&self, name: &str) -> PartitionTable {
        PartitionTable::new(self.clone(), name)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Entries>, StoreError> {
        self.trips.bump();
        self.inner
            .lock()
            .map_err(|_| StoreError::Backend("memory store lock poisoned".into()))
    }
}

#[async_trait(?Send)]
impl RawKv for MemoryKv {
    async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock()?.get(key).map(|(_, v)| v.clone()))
    }

    async fn read_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let map = self.lock()?;
        Ok(keys
            .iter()
            .map(|key| map.get(key).map(|(_, v)| v.clone()))
            .collect())
    }

    /// The token is the stored value's write counter (0 when absent).
    async fn load(&self, key: &str) -> Result<(Option<Vec<u8>>, Token), StoreError> {
        let (value, counter) = match self.lock()?.get(key) {
            Some((counter, value)) => (Some(value.clone()), *counter),
            None => (None, 0u64),
        };
        Ok((value, Token::new(counter)))
    }

    async fn swap(&self, key: &str, token: Token, value: Vec<u8>) -> Result<bool, StoreError> {
        self.change()?;
        let token: u64 = token.get()?;
        let mut map = self.lock()?;
        let counter = map.get(key).map_or(0, |(c, _)| *c);
        if counter != token {
            return Ok(false);
        }
        map.insert(key.to_owned(), (counter + 1, value));
        Ok(true)
    }

    async fn write(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        self.change()?;
        let mut map = self.lock()?;
        let counter = map.get(key).map_or(0, |(c, _)| *c);
        map.insert(key.to_owned(), (counter + 1, value));
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.change()?;
        self.lock()?.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::suite;

    fn suite_on(kv: &MemoryKv, whole: bool) -> suite::Report {
        let backend = crate::Backend {
            name: "memory",
            atomic: true,
            whole_partitions: whole,
        };
        futures::executor::block_on(suite::run(
            &|name| {
                Ok(if whole {
                    std::rc::Rc::new(kv.whole_table(name)) as std::rc::Rc<dyn crate::table::Table>
                } else {
                    std::rc::Rc::new(kv.table(name))
                })
            },
            backend,
        ))
    }

    #[test]
    fn memory_backend_passes_the_shared_suite_in_pages() {
        let report = suite_on(&MemoryKv::new(), false);
        assert!(report.all_passed(), "{report}");
        assert!(report.cases.len() >= 8, "{report}");
    }

    #[test]
    fn memory_backend_passes_the_shared_suite_with_whole_partitions() {
        let report = suite_on(&MemoryKv::new(), true);
        assert!(report.all_passed(), "{report}");
    }

    #[test]
    fn whole_partitions_move_into_pages() {
        let kv = MemoryKv::new();
        futures::executor::block_on(suite::whole_partitions_move_into_items(
            &kv.whole_table("t"),
            &kv.table("t"),
        ))
        .unwrap();
    }

    /// The suite's races with one OS thread per writer, so writers really overlap.
    fn race_on_threads(race: suite::Race) {
        const WRITERS: u32 = 32;
        let kv = MemoryKv::new();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(WRITERS as usize));
        let handles: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let (kv, barrier) = (kv.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let table = kv.table("race");
                    barrier.wait();
                    futures::executor::block_on(suite::race_write(
                        &table,
                        race,
                        writer,
                        suite::RACE_KEYS,
                    ))
                })
            })
            .collect();
        let won: Vec<Vec<u32>> = handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect();
        let table = kv.table("race");
        futures::executor::block_on(suite::race_check(&table, race, suite::RACE_KEYS, &won))
            .unwrap();
    }

    #[test]
    fn concurrent_puts_if_absent_on_threads_admit_exactly_one() {
        race_on_threads(suite::Race::PutIfAbsent);
    }

    #[test]
    fn concurrent_creations_and_increments_on_threads_lose_no_update() {
        race_on_threads(suite::Race::CreateOrIncrement);
    }

    #[test]
    fn concurrent_updates_on_threads_lose_no_update() {
        race_on_threads(suite::Race::Update);
    }

    #[test]
    fn concurrent_writers_on_threads_filling_one_partition_lose_nothing() {
        race_on_threads(suite::Race::Fill);
    }

    #[test]
    fn concurrent_writers_on_threads_filling_and_draining_one_partition_keep_what_stays() {
        race_on_threads(suite::Race::Drain);
    }
}
