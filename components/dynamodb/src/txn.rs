//! The commit protocol of DynamoDB transactions over the table layer, where each
//! partition changes atomically on its own (a Durable Object; a compare-and-swap of a
//! page on Spin) and nothing spans two: a coordinator (the request running
//! `TransactWriteItems`) with a record, locks on the items, and a commit point.
//!
//! 1. **Record**: the transaction's record is written `pending`, naming every item, in
//!    the table-layer table [`RECORDS`] under a fresh random id.
//! 2. **Prepare**: each item is locked where it lives, in one atomic step per
//!    partition that checks its condition and stores the item's next state beside it
//!    (the stored value gains the key `""`, which no DynamoDB attribute can have:
//!    [`Lock`]). An item already locked by another transaction, or whose condition
//!    fails, is not locked, and the transaction is cancelled.
//! 3. **Commit point**: the record goes `pending` → `committed` in one conditional
//!    write. Once it has, the transaction has happened; before, it has not.
//! 4. **Apply**: each item takes its next state and drops its lock; then the record
//!    is deleted. A cancelled transaction releases its locks instead (the record goes
//!    `aborted` first).
//!
//! Whoever meets a lock (writers through [`past_locks`], readers through [`visible`])
//! reads its record: `committed` → the item's next state is its value (a writer
//! applies it first); `aborted`, or no record (deleted only once no lock of it is
//! left) → the value before; `pending` → the value before
//! for a reader, and for a writer `TransactionConflictException` — unless the record is
//! older than [`STALE_MS`], when its coordinator is taken for dead: the record is
//! turned `aborted` (a conditional write: a coordinator still alive then fails its
//! commit point and cancels), and the lock released. A coordinator dying at any step
//! thus leaves either nothing half-applied (before the commit point) or a commit that
//! every reader already sees and the next writer finishes (after it).
//!
//! Readers see each item as of one instant: a plain read resolves at most the locks it
//! meets; `TransactGetItems` reads every item twice and answers only when no item
//! changed between the two reads and none is held by a pending transaction.

use crate::error::{DynamoError, Kind};
use crate::mutation::{Outcome, Write};
use kit::table::{self, Change, Cond, Mutation, StoreError, Table};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The table-layer table of transaction records (partition: the transaction's id,
/// sort key `""`) and of idempotency tokens (partition `token/<token>`).
pub const RECORDS: &str = "dynamodb_transactions";

/// The kind the protocol's steps ship as.
pub const KIND: &str = "dynamodb.txn";

/// The stored value's key holding a lock: DynamoDB attribute names are at least one
/// character long, so no item has it.
const LOCK_KEY: &str = "";

/// A pending transaction this old has lost its coordinator (the most a coordinator
/// takes from its record to its commit point is a few round trips per partition).
pub const STALE_MS: i64 = 10_000;

/// A transaction's hold on one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lock {
    /// The transaction's id: its record's partition.
    pub txn: String,
    /// The item once the transaction commits (`None`: deleted), unless `keep`.
    #[serde(default)]
    pub then: Option<Value>,
    /// A `ConditionCheck`: the item stays as it is.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep: bool,
}

/// The lock on a stored value, if any.
pub fn lock_of(value: &Value) -> Option<Lock> {
    let lock = value.get(LOCK_KEY)?;
    Some(Lock {
        txn: lock.get("txn")?.as_str()?.to_owned(),
        then: lock.get("then").filter(|v| !v.is_null()).cloned(),
        keep: lock.get("keep").and_then(Value::as_bool) == Some(true),
    })
}

/// The item a stored value holds apart from its lock; `None` when it is a lock alone
/// (on an item that did not exist).
pub fn before(value: &Value) -> Option<Value> {
    let mut item = value.as_object()?.clone();
    item.remove(LOCK_KEY);
    (!item.is_empty()).then_some(Value::Object(item))
}

/// The item a stored value holds once its lock's transaction commits.
fn after(value: &Value, lock: &Lock) -> Option<Value> {
    if lock.keep {
        before(value)
    } else {
        lock.then.clone()
    }
}

/// What a transaction record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Committed,
    Aborted,
}

/// A transaction's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub state: State,
    /// When the coordinator wrote it, in milliseconds since the epoch.
    pub started: i64,
    /// Every item, `(table-layer table, partition, sort key)`, for whoever recovers it.
    pub items: Vec<(String, String, String)>,
}

/// One step of the protocol on one item, run where the item lives.
#[derive(Debug, Clone)]
pub enum Step {
    /// Lock the item for the write, if its condition holds and no one else holds it.
    Prepare(Write),
    /// Give the item its next state, if this transaction holds it.
    Apply,
    /// Give the item back its state before, if this transaction holds it.
    Release,
}

/// [`Step`] of transaction `txn`, as a table-layer mutation.
#[derive(Debug, Clone)]
pub struct TxnStep {
    pub txn: String,
    pub step: Step,
}

impl Mutation for TxnStep {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn args(&self) -> Value {
        match &self.step {
            Step::Prepare(write) => json!({"txn": self.txn, "prepare": write.args()}),
            Step::Apply => json!({"txn": self.txn, "apply": true}),
            Step::Release => json!({"txn": self.txn, "release": true}),
        }
    }

    fn decide(&self, current: Option<&table::Item>) -> Result<(Change, Value), StoreError> {
        let lock = current.and_then(|i| lock_of(&i.value));
        let ours = lock.as_ref().is_some_and(|l| l.txn == self.txn);
        match &self.step {
            Step::Prepare(_) if ours => Ok((Change::Keep, json!({"prepared": true}))),
            Step::Prepare(_) if lock.is_some() => Ok((
                Change::Keep,
                json!({"refused": "locked", "txn": lock.map(|l| l.txn)}),
            )),
            Step::Prepare(write) => {
                let (change, note) = write.decide_unlocked(current)?;
                if note.get("refused").is_some() {
                    return Ok((Change::Keep, note));
                }
                let lock = match change {
                    Change::Put(then) => json!({"txn": self.txn, "then": then}),
                    Change::Delete => json!({"txn": self.txn, "then": null}),
                    Change::Keep => json!({"txn": self.txn, "keep": true}),
                };
                let mut held = current.map_or_else(|| json!({}), |i| i.value.clone());
                held[LOCK_KEY] = lock;
                Ok((Change::Put(held), note))
            }
            Step::Apply | Step::Release if !ours => Ok((Change::Keep, Value::Bool(false))),
            Step::Apply | Step::Release => {
                let (Some(item), Some(lock)) = (current, lock) else {
                    return Ok((Change::Keep, Value::Bool(false)));
                };
                let next = match self.step {
                    Step::Apply => after(&item.value, &lock),
                    _ => before(&item.value),
                };
                Ok((next.map_or(Change::Delete, Change::Put), Value::Bool(true)))
            }
        }
    }
}

/// Rebuilds a shipped [`TxnStep`]; `None` when `args` are not one.
pub fn step_from_args(args: Value) -> Option<TxnStep> {
    let txn = args.get("txn")?.as_str()?.to_owned();
    let step = if let Some(write) = args.get("prepare") {
        Step::Prepare(Write::from_args(write.clone())?)
    } else if args.get("apply").is_some() {
        Step::Apply
    } else if args.get("release").is_some() {
        Step::Release
    } else {
        return None;
    };
    Some(TxnStep { txn, step })
}

/// `TransactionConflictException`: what a write meeting a live transaction gets.
pub fn conflict() -> DynamoError {
    DynamoError::new(
        Kind::TransactionConflict,
        "Transaction is ongoing for the item",
    )
}

/// Reads transaction `txn`'s state, turning a stale `pending` into `aborted`; `None`
/// when there is no record.
pub async fn decide(env: &kit::Env, txn: &str) -> Result<Option<State>, DynamoError> {
    let records = env.table(RECORDS)?;
    for _ in 0..4 {
        let Some(item) = records.get(txn, "").await? else {
            return Ok(None);
        };
        let mut record: Record =
            kit::json::from_value(&item.value).map_err(DynamoError::internal)?;
        let age = env.clock.now().timestamp_millis() - record.started;
        if record.state != State::Pending || age < STALE_MS {
            return Ok(Some(record.state));
        }
        record.state = State::Aborted;
        let value = serde_json::to_value(&record).map_err(DynamoError::internal)?;
        match records
            .put(txn, "", value, Cond::Version(item.version))
            .await
        {
            Ok(_) => return Ok(Some(State::Aborted)),
            Err(StoreError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Contention.into())
}

/// Settles the lock of transaction `txn` on item `(pk, sk)` of `items` for a writer
/// about to write it: applies or releases it as the record decides. `Err` with
/// `TransactionConflictException` while the transaction is live.
pub(crate) async fn settle(
    env: &kit::Env,
    def: &crate::schema::TableDef,
    items: &dyn Table,
    pk: &str,
    sk: &str,
    txn: &str,
) -> Result<(), DynamoError> {
    let step = match decide(env, txn).await? {
        Some(State::Pending) => return Err(conflict()),
        Some(State::Committed) => Step::Apply,
        Some(State::Aborted) | None => Step::Release,
    };
    let step = TxnStep {
        txn: txn.to_owned(),
        step,
    };
    let now_ms = env.clock.now().timestamp_millis();
    let step = crate::indexes::Indexed::wrap(Box::new(step), def, now_ms, false);
    items.mutate(pk, sk, &*step).await?;
    Ok(())
}

/// `outcome`, the outcome of `mutation` on item `(pk, sk)` of `items`, or — while it is
/// `Locked` — the outcome of running the mutation again once the lock is settled, at
/// most `settles` times: what is still `Locked` after that is held by a live
/// transaction (or by a new one each time). Every write of the endpoint passes the
/// locks it meets through here.
pub async fn past_locks(
    env: &kit::Env,
    def: &crate::schema::TableDef,
    items: &dyn Table,
    (pk, sk): (&str, &str),
    mutation: &dyn Mutation,
    mut outcome: Outcome,
    settles: usize,
) -> Result<Outcome, DynamoError> {
    for _ in 0..settles {
        let Outcome::Locked { txn } = &outcome else {
            break;
        };
        match settle(env, def, items, pk, sk, txn).await {
            Ok(()) => {}
            Err(e) if e.kind == Kind::TransactionConflict => break,
            Err(e) => return Err(e),
        }
        outcome = crate::mutation::outcome(items.mutate(pk, sk, mutation).await?.note)?;
    }
    Ok(outcome)
}

/// The item at `(pk, sk)` as readers see it, from `item` as read: a lock's next state
/// when its transaction committed, else the state before; `None` when absent.
pub async fn visible(
    env: &kit::Env,
    items: &dyn Table,
    pk: &str,
    item: table::Item,
) -> Result<Option<table::Item>, DynamoError> {
    let Some(lock) = lock_of(&item.value) else {
        // System data other than a lock (an index marker) is no reader's business.
        return Ok(before(&item.value).map(|value| table::Item { value, ..item }));
    };
    let value = match decide(env, &lock.txn).await? {
        Some(State::Committed) => after(&item.value, &lock),
        Some(State::Pending | State::Aborted) => before(&item.value),
        // Deleted once every lock of it was gone: the item has changed since it was
        // read, and is read again.
        None => match items.get(pk, &item.sk).await? {
            Some(fresh) if lock_of(&fresh.value).is_some_and(|l| l.txn == lock.txn) => {
                before(&fresh.value)
            }
            Some(fresh) => return Box::pin(visible(env, items, pk, fresh)).await,
            None => None,
        },
    };
    Ok(value.map(|value| table::Item { value, ..item }))
}

/// Whether any of `items` is held by a transaction (the readers' fast path: none is,
/// almost always).
pub fn any_locked<'i>(mut items: impl Iterator<Item = &'i table::Item>) -> bool {
    items.any(|i| i.value.get(LOCK_KEY).is_some())
}
