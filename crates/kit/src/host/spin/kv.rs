//! The Spin backend: `wasi:keyvalue` (0.2.0-draft2) store `default`, with conditional
//! writes that are exact on Spin's own store.
//!
//! # Why not plain compare-and-swap
//!
//! Spin's default store (SQLite; Spin 4.0.2 `crates/key-value-spin/src/store.rs`)
//! makes `swap` exact only from a value it saw: `UPDATE … WHERE value = <seen>`. From
//! a key it saw **absent**, `swap` is an upsert that always succeeds, so "create if
//! absent" through CAS is a blind write: two first writers of one partition both
//! succeed and one's acknowledged write is gone. `increment` is atomic and creates a
//! missing key (as 0, stored as 8 little-endian bytes), but Spin panics inside the host
//! on a key holding anything else, so it may only touch keys that never hold other data.
//!
//! # The protocol
//!
//! A partition `P` (PartitionTable's key `table/pk`; table names never contain `:`) is
//! kept in two kinds of keys:
//!
//! - the **register** `r:P`: 8 bytes, only ever written by `increment` or by a swap
//!   from a value seen, so `increment` on it is safe. Its low 32 bits count creation
//!   attempts (each attempt's *ticket*); its high 32 bits name the winning ticket, `0`
//!   while none has won. Once set, the winner never changes (partitions are never
//!   deleted: a partition whose last item goes is stored empty).
//! - the **data** `d<t>:P` of ticket `t`: a marker byte, then the partition's JSON.
//!   Only ticket `t`'s holder ever writes it blindly, marked *pending* (`P`): a key
//!   unique to one writer cannot be clobbered. Every later change is a swap from the
//!   value seen (exact on Spin) to a value marked *committed* (`C`), and only once the
//!   register names `t`. So a committed data key is the winner's, and a data key is the
//!   partition exactly when it is committed or the register names its ticket.
//!
//! Reading: `get-many [d1:P, r:P]`, one round trip: `d1` committed, or pending with
//! winner 1 → that data; no winner → absent; another winner (the creation of `P` was
//! raced and ticket 1 lost) → one more `get`.
//!
//! Writing: arm a CAS on `d1:P` (`current`); committed → swap (2 round trips in all);
//! else read the register, as above, and arm the CAS on the winner's data.
//!
//! Creating (the write saw no winner): `t = increment(r:P, 1)` (if the returned
//! register already names a winner, the write lost: retry from the top);
//! `set(d<t>:P, pending)`; then swap the register from the value seen to `winner = t`,
//! re-reading on every failed swap (each failure is another writer's increment or win).
//! Seeing a winner there means the write lost: it deletes its `d<t>:P` and the table
//! retries on the winner's data, so `Cond::Absent` admits exactly one writer.
//!
//! Failure cases considered:
//! - *killed after `increment`*: a ticket is skipped; nobody waits for it.
//! - *killed after `set`, before the register swap*: `d<t>:P` is a pending orphan,
//!   never read as data (no register names it). If it is `d1`, reads of `P` pay one
//!   more `get` until a writer of `P` deletes it (writers do, once a winner exists).
//! - *killed after the register swap*: the write is durable, acknowledged or not, as
//!   with any store: the data was written before the register named it, and is read as
//!   the partition while pending. The next write commits it.
//! - *slow creator*: it only ever writes its own ticket's key blindly, which no reader
//!   takes for data unless the register names it — and then that key was complete.
//! - *ABA on equal values*: the swap on a data key succeeds when the partition was
//!   changed and changed back to identical bytes. That is harmless: the encoding is a
//!   deterministic function of the partition's state (sorted maps), and every change
//!   is computed from that state alone, so applying it to equal bytes is applying it
//!   to the state that is current. (Items whose versions must never repeat are never
//!   deleted and re-created — see the streams table.) The register cannot repeat: its
//!   attempt count only grows and its winner is set once.
//!
//! Cost in round trips: a read 1; a conditional write 2 (`current`, `swap`); the first
//! write of a partition 6 (`current` and the register find it absent; `increment`,
//! `set`, the register's `current` and `swap`), and the write after it 3 (it commits).

use crate::table::spin_keys::{data_key, register_key, Data, Register};
#[cfg(feature = "storage-selftest")]
use crate::table::PartitionTable;
use crate::table::{PagedTable, RawKv, RoundTrips, StoreError, Token};
use async_trait::async_trait;
use spin_sdk::wit::wasi::keyvalue::{atomics, batch, store};
use std::collections::HashMap;
use std::rc::Rc;

/// One opened bucket, shared by every table of a request, and the request's count of
/// calls into the store (`Cas::new` reads nothing, so it is not one).
#[derive(Clone)]
pub struct SpinKv {
    bucket: Rc<store::Bucket>,
    trips: RoundTrips,
}

impl std::fmt::Debug for SpinKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpinKv")
    }
}

fn backend(e: store::Error) -> StoreError {
    match e {
        store::Error::AccessDenied => StoreError::Access("key-value store".into()),
        store::Error::NoSuchStore => StoreError::Access("no such key-value store".into()),
        store::Error::Other(msg) => StoreError::Backend(msg),
    }
}

fn cas_error(e: atomics::CasError) -> StoreError {
    match e {
        atomics::CasError::StoreError(e) => backend(e),
        atomics::CasError::CasFailed(_) => StoreError::Contention,
    }
}

fn missing(key: &str, ticket: u32) -> StoreError {
    StoreError::Corrupt(format!(
        "partition {key:?} names ticket {ticket}, whose data is missing"
    ))
}

/// Retries of the register swap before giving up: each failure is another creator's
/// progress, so this only runs out under a storm of creators of one partition.
const MAX_REGISTER_SWAPS: usize = 64;

/// What [`SpinKv::load`] saw, for [`SpinKv::swap`].
enum Seen {
    /// No winner yet: the swap must go through creation.
    Absent,
    /// The partition's data key, armed with the value seen.
    Present(atomics::Cas),
}

impl SpinKv {
    /// Opens the store `label` granted to this component in `spin.toml`.
    pub fn open(label: &str, trips: RoundTrips) -> Result<Self, StoreError> {
        let bucket = store::open(label).map_err(backend)?;
        Ok(Self {
            bucket: Rc::new(bucket),
            trips,
        })
    }

    /// The bucket, counting the call about to be made on it.
    fn store(&self) -> &store::Bucket {
        self.trips.bump();
        &self.bucket
    }

    /// A table over this store, in pages ([`PagedTable`]).
    pub fn table(&self, name: &str) -> PagedTable {
        PagedTable::new(self.clone(), name, crate::host::os_random)
    }

    /// A table over this store with each partition one value, as versions before
    /// pages kept them (the storage self-test's old layout).
    #[cfg(feature = "storage-selftest")]
    pub fn whole_table(&self, name: &str) -> PartitionTable {
        PartitionTable::new(self.clone(), name)
    }

    /// `atomics::swap`, counted.
    fn swap_cas(&self, cas: atomics::Cas, value: &[u8]) -> Result<(), atomics::CasError> {
        self.trips.bump();
        atomics::swap(cas, value)
    }

    /// `cas`, counting the `current` about to be called on it.
    fn counted<'c>(&self, cas: &'c atomics::Cas) -> &'c atomics::Cas {
        self.trips.bump();
        cas
    }

    /// One `get-many` of `keys`: the ones that exist, by key (Spin returns only those,
    /// in no promised order).
    fn found(&self, keys: &[String]) -> Result<HashMap<String, Vec<u8>>, StoreError> {
        Ok(batch::get_many(self.store(), keys)
            .map_err(backend)?
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect())
    }

    /// The partition's winning ticket, `None` while it does not exist.
    fn winner(&self, key: &str) -> Result<Option<u32>, StoreError> {
        match self.store().get(&register_key(key)).map_err(backend)? {
            Some(bytes) => Ok(Register::decode(&bytes)?.winner()),
            None => Ok(None),
        }
    }

    /// The creation protocol: `Ok(true)` when this writer's `value` became the
    /// partition, `Ok(false)` when another creator won first.
    fn create(&self, key: &str, value: &[u8]) -> Result<bool, StoreError> {
        let reg_key = register_key(key);
        let after = Register::from_increment(
            atomics::increment(self.store(), &reg_key, 1).map_err(backend)?,
        );
        if after.winner().is_some() {
            return Ok(false);
        }
        let ticket = after.attempts();
        if ticket == 0 || ticket >= u32::MAX / 2 {
            return Err(StoreError::Corrupt(format!(
                "partition register of {key:?} ran out of tickets"
            )));
        }
        let mine = data_key(ticket, key);
        self.store()
            .set(&mine, &Data::pending(value))
            .map_err(backend)?;
        for _ in 0..MAX_REGISTER_SWAPS {
            let cas = atomics::Cas::new(&self.bucket, &reg_key).map_err(backend)?;
            let seen = match self.counted(&cas).current().map_err(backend)? {
                Some(bytes) => Register::decode(&bytes)?,
                None => {
                    return Err(StoreError::Corrupt(format!(
                        "partition register of {key:?} vanished"
                    )))
                }
            };
            if seen.winner().is_some() {
                self.store().delete(&mine).map_err(backend)?;
                return Ok(false);
            }
            match self.swap_cas(cas, &seen.with_winner(ticket).encode()) {
                Ok(()) => return Ok(true),
                Err(atomics::CasError::CasFailed(_)) => continue,
                Err(e) => return Err(cas_error(e)),
            }
        }
        Err(StoreError::Contention)
    }
}

#[async_trait(?Send)]
impl RawKv for SpinKv {
    async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let first = data_key(1, key);
        let reg_key = register_key(key);
        // Spin returns only the keys that exist, in no promised order.
        let mut found =
            batch::get_many(self.store(), &[first.clone(), reg_key.clone()]).map_err(backend)?;
        let mut take = |k: &str| {
            found
                .iter_mut()
                .find(|(found, _)| found == k)
                .and_then(|(_, v)| v.take())
        };
        let first_data = take(&first).map(Data::decode).transpose()?;
        if let Some(Data::Committed(bytes)) = first_data {
            return Ok(Some(bytes));
        }
        let winner = match take(&reg_key) {
            Some(bytes) => Register::decode(&bytes)?.winner(),
            None => None,
        };
        match (winner, first_data) {
            (None, _) => Ok(None),
            (Some(1), Some(data)) => Ok(Some(data.into_bytes())),
            (Some(1), None) => Err(missing(key, 1)),
            (Some(w), _) => match self.store().get(&data_key(w, key)).map_err(backend)? {
                Some(bytes) => Ok(Some(Data::decode(bytes)?.into_bytes())),
                None => Err(missing(key, w)),
            },
        }
    }

    /// One `get-many` of every partition's first data key and register; a partition
    /// whose creation was raced (winner past ticket 1) costs one more, shared, batch.
    async fn read_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<String> = keys
            .iter()
            .flat_map(|k| [data_key(1, k), register_key(k)])
            .collect();
        let mut found = self.found(&wanted)?;
        let mut values = Vec::with_capacity(keys.len());
        // (index into values, key of the winner's data) still to fetch.
        let mut later: Vec<(usize, String, u32)> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let first_data = found
                .remove(&data_key(1, key))
                .map(Data::decode)
                .transpose()?;
            if let Some(Data::Committed(bytes)) = first_data {
                values.push(Some(bytes));
                continue;
            }
            let winner = match found.remove(&register_key(key)) {
                Some(bytes) => Register::decode(&bytes)?.winner(),
                None => None,
            };
            values.push(match (winner, first_data) {
                (None, _) => None,
                (Some(1), Some(data)) => Some(data.into_bytes()),
                (Some(1), None) => return Err(missing(key, 1)),
                (Some(w), _) => {
                    later.push((i, data_key(w, key), w));
                    None
                }
            });
        }
        if !later.is_empty() {
            let wanted: Vec<String> = later.iter().map(|(_, k, _)| k.clone()).collect();
            let mut found = self.found(&wanted)?;
            for (i, data, w) in later {
                let bytes = found.remove(&data).ok_or_else(|| missing(&keys[i], w))?;
                values[i] = Some(Data::decode(bytes)?.into_bytes());
            }
        }
        Ok(values)
    }

    async fn load(&self, key: &str) -> Result<(Option<Vec<u8>>, Token), StoreError> {
        let first = data_key(1, key);
        let cas = atomics::Cas::new(&self.bucket, &first).map_err(backend)?;
        let first_data = self
            .counted(&cas)
            .current()
            .map_err(backend)?
            .map(Data::decode)
            .transpose()?;
        if let Some(Data::Committed(bytes)) = first_data {
            return Ok((Some(bytes), Token::new(Seen::Present(cas))));
        }
        match (self.winner(key)?, first_data) {
            (None, _) => Ok((None, Token::new(Seen::Absent))),
            (Some(1), Some(data)) => Ok((Some(data.into_bytes()), Token::new(Seen::Present(cas)))),
            (Some(w), first_data) => {
                if w != 1 && first_data.is_some() {
                    // Ticket 1 lost (or died) and can never win now: its pending data
                    // only costs readers a round trip.
                    self.store().delete(&first).map_err(backend)?;
                }
                // Read after the register: the winner's data was written before the
                // register named it. (With winner 1, `d1` was absent when read above
                // because its creation finished in between.)
                let cas = atomics::Cas::new(&self.bucket, &data_key(w, key)).map_err(backend)?;
                match self.counted(&cas).current().map_err(backend)? {
                    Some(bytes) => Ok((
                        Some(Data::decode(bytes)?.into_bytes()),
                        Token::new(Seen::Present(cas)),
                    )),
                    None => Err(missing(key, w)),
                }
            }
        }
    }

    async fn swap(&self, key: &str, token: Token, value: Vec<u8>) -> Result<bool, StoreError> {
        match token.get()? {
            Seen::Absent => self.create(key, &value),
            Seen::Present(cas) => match self.swap_cas(cas, &Data::committed(&value)) {
                Ok(()) => Ok(true),
                Err(atomics::CasError::CasFailed(_)) => Ok(false),
                Err(e) => Err(cas_error(e)),
            },
        }
    }

    /// A key nobody else knows: written settled at once — register won by ticket 1,
    /// data committed, as a creation that ran to the end leaves it — in one `set-many`
    /// instead of the creation's four round trips. A crash part-way leaves a key that
    /// nothing refers to.
    async fn write_new(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        let pairs = crate::table::spin_keys::committed_partition(key, &value);
        batch::set_many(self.store(), &pairs).map_err(backend)
    }

    /// Only ever a key written by [`SpinKv::write_new`] and never published, or one no
    /// directory names any more: its register and ticket-1 data are all it has.
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        batch::delete_many(self.store(), &[data_key(1, key), register_key(key)]).map_err(backend)
    }

    /// Unconditional: over the winner's data, or as a creation that, if it loses,
    /// writes over the winner's.
    async fn write(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        let winner = match self.winner(key)? {
            Some(w) => w,
            None => {
                if self.create(key, &value)? {
                    return Ok(());
                }
                self.winner(key)?.ok_or_else(|| {
                    StoreError::Corrupt(format!("partition {key:?} lost its winner"))
                })?
            }
        };
        self.store()
            .set(&data_key(winner, key), &Data::committed(&value))
            .map_err(backend)
    }
}
