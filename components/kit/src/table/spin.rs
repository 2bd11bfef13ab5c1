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
//! - the **data** `d<t>:P` of ticket `t`: the partition's JSON. Only ticket `t`'s
//!   holder ever writes it blindly (a key unique to one writer cannot be clobbered);
//!   after the register names `t`, every change is a swap from the value seen, which
//!   Spin makes exact.
//!
//! Reading: `get-many [r:P, d1:P]` in one round trip; no winner → absent; winner 1
//! (every partition created without a race) → that data; else one more `get`.
//!
//! Creating (the write saw no winner): `t = increment(r:P, 1)` (if the returned
//! register already names a winner, the write lost: retry from the top); `set(d<t>:P)`;
//! then swap the register from the value seen to `winner = t`, re-reading on every
//! failed swap (each failure is another writer's increment or win). Seeing a winner
//! there means the write lost: it deletes its `d<t>:P` and the table retries on the
//! winner's data, so `Cond::Absent` admits exactly one writer.
//!
//! Failure cases considered:
//! - *killed after `increment`*: a ticket is skipped; nobody waits for it.
//! - *killed after `set`, before the register swap*: `d<t>:P` is an orphan nobody reads
//!   (bounded by the number of crashed creators of that partition; never a wrong read).
//! - *killed after the register swap*: the write is durable and acknowledged or not,
//!   as with any store; the data was written before the register named it.
//! - *slow creator*: it can only ever write its own ticket's key, which no reader looks
//!   at unless the register names it — and then the creator had finished writing it.
//! - *ABA on equal values*: the swap on the data key succeeds when the partition was
//!   changed and changed back to identical bytes. That is harmless: the encoding is a
//!   deterministic function of the partition's state (sorted maps), and every change
//!   is computed from that state alone, so applying it to equal bytes is applying it
//!   to the state that is current. (Items whose versions must never repeat are never
//!   deleted and re-created — see the streams table.) The register cannot repeat: its
//!   attempt count only grows and its winner is set once.
//!
//! Cost in round trips: a read 1 (2 for a partition whose creation was raced); a
//! conditional write 3 (register, `current`, `swap`) and 2 when the request already
//! read the partition (the winner is cached per request: it never changes); a first
//! write 4 more (`increment`, `set`, `current`, `swap`).

use super::spin_keys::{data_key, register_key, Register};
use super::{PartitionTable, RawKv, StoreError};
use async_trait::async_trait;
use spin_sdk::wit::wasi::keyvalue::{atomics, batch, store};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// One opened bucket, shared by every table of a request, with the winners of the
/// partitions seen so far (immutable once set, so safe to remember).
#[derive(Clone)]
pub struct SpinKv {
    bucket: Rc<store::Bucket>,
    winners: Rc<RefCell<HashMap<String, u32>>>,
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

/// Retries of the register swap before giving up: each failure is another creator's
/// progress, so this only runs out under a storm of creators of one partition.
const MAX_REGISTER_SWAPS: usize = 64;

/// What [`SpinKv::load`] saw, for [`SpinKv::swap`].
pub enum Token {
    /// No winner yet: the swap must go through creation.
    Absent,
    /// The winner's data key, armed with the value seen.
    Present(atomics::Cas),
}

impl SpinKv {
    /// Opens the store `label` granted to this component in `spin.toml`.
    pub fn open(label: &str) -> Result<Self, StoreError> {
        let bucket = store::open(label).map_err(backend)?;
        Ok(Self {
            bucket: Rc::new(bucket),
            winners: Rc::default(),
        })
    }

    pub fn table(&self, name: &str) -> PartitionTable<SpinKv> {
        PartitionTable::new(self.clone(), name)
    }

    fn remember(&self, key: &str, winner: u32) {
        self.winners.borrow_mut().insert(key.to_owned(), winner);
    }

    fn remembered(&self, key: &str) -> Option<u32> {
        self.winners.borrow().get(key).copied()
    }

    /// The partition's winning ticket, `None` while it does not exist.
    fn winner(&self, key: &str) -> Result<Option<u32>, StoreError> {
        if let Some(w) = self.remembered(key) {
            return Ok(Some(w));
        }
        let winner = match self.bucket.get(&register_key(key)).map_err(backend)? {
            Some(bytes) => Register::decode(&bytes)?.winner(),
            None => None,
        };
        if let Some(w) = winner {
            self.remember(key, w);
        }
        Ok(winner)
    }

    /// The creation protocol: `Ok(true)` when this writer's `value` became the
    /// partition, `Ok(false)` when another creator won first.
    fn create(&self, key: &str, value: &[u8]) -> Result<bool, StoreError> {
        let reg_key = register_key(key);
        let after = Register::from_increment(
            atomics::increment(&self.bucket, &reg_key, 1).map_err(backend)?,
        );
        if let Some(w) = after.winner() {
            self.remember(key, w);
            return Ok(false);
        }
        let ticket = after.attempts();
        if ticket == 0 || ticket >= u32::MAX / 2 {
            return Err(StoreError::Corrupt(format!(
                "partition register of {key:?} ran out of tickets"
            )));
        }
        let mine = data_key(ticket, key);
        self.bucket.set(&mine, value).map_err(backend)?;
        for _ in 0..MAX_REGISTER_SWAPS {
            let cas = atomics::Cas::new(&self.bucket, &reg_key).map_err(backend)?;
            let seen = match cas.current().map_err(backend)? {
                Some(bytes) => Register::decode(&bytes)?,
                None => {
                    return Err(StoreError::Corrupt(format!(
                        "partition register of {key:?} vanished"
                    )))
                }
            };
            if let Some(w) = seen.winner() {
                self.remember(key, w);
                self.bucket.delete(&mine).map_err(backend)?;
                return Ok(false);
            }
            match atomics::swap(cas, &seen.with_winner(ticket).encode()) {
                Ok(()) => {
                    self.remember(key, ticket);
                    return Ok(true);
                }
                Err(atomics::CasError::CasFailed(_)) => continue,
                Err(e) => return Err(cas_error(e)),
            }
        }
        Err(StoreError::Contention)
    }
}

#[async_trait(?Send)]
impl RawKv for SpinKv {
    type Token = Token;

    async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(w) = self.remembered(key) {
            return self.bucket.get(&data_key(w, key)).map_err(backend);
        }
        let reg_key = register_key(key);
        let first = data_key(1, key);
        // Spin returns only the keys that exist, in no promised order.
        let found =
            batch::get_many(&self.bucket, &[reg_key.clone(), first.clone()]).map_err(backend)?;
        let lookup = |k: &str| {
            found
                .iter()
                .find(|(found, _)| found == k)
                .and_then(|(_, v)| v.clone())
        };
        let winner = match lookup(&reg_key) {
            Some(bytes) => Register::decode(&bytes)?.winner(),
            None => None,
        };
        let Some(w) = winner else {
            return Ok(None);
        };
        self.remember(key, w);
        let value = if w == 1 {
            lookup(&first)
        } else {
            self.bucket.get(&data_key(w, key)).map_err(backend)?
        };
        match value {
            Some(bytes) => Ok(Some(bytes)),
            None => Err(StoreError::Corrupt(format!(
                "partition {key:?} names ticket {w}, whose data is missing"
            ))),
        }
    }

    async fn load(&self, key: &str) -> Result<(Option<Vec<u8>>, Token), StoreError> {
        let Some(w) = self.winner(key)? else {
            return Ok((None, Token::Absent));
        };
        let cas = atomics::Cas::new(&self.bucket, &data_key(w, key)).map_err(backend)?;
        match cas.current().map_err(backend)? {
            Some(bytes) => Ok((Some(bytes), Token::Present(cas))),
            None => Err(StoreError::Corrupt(format!(
                "partition {key:?} names ticket {w}, whose data is missing"
            ))),
        }
    }

    async fn swap(&self, key: &str, token: Token, value: Vec<u8>) -> Result<bool, StoreError> {
        match token {
            Token::Absent => self.create(key, &value),
            Token::Present(cas) => match atomics::swap(cas, &value) {
                Ok(()) => Ok(true),
                Err(atomics::CasError::CasFailed(_)) => Ok(false),
                Err(e) => Err(cas_error(e)),
            },
        }
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
        self.bucket
            .set(&data_key(winner, key), &value)
            .map_err(backend)
    }
}
