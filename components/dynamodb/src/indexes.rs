//! Keeping a table's secondary indexes in step with its items, where each partition
//! changes atomically on its own and nothing spans two (an index entry lives in another
//! partition, often another Durable Object, than its item).
//!
//! 1. **Outbox**: before a request writes items of a table with indexes, it records
//!    them in the table-layer table [`OUTBOX`] (one entry per request).
//! 2. **Marker**: every write of such an item is wrapped in [`Indexed`], which — in the
//!    write's own atomic step — keeps a marker in the stored value (under the key `""`,
//!    which no attribute can have, beside a transaction's lock): an *epoch* that grows
//!    with every change, and the entry keys that may hold a stale entry (those of the
//!    item before and after). A deleted item whose entries are not yet gone stays as
//!    the marker alone (readers see nothing).
//! 3. **Propagation** ([`propagate`]): [`Acquire`] takes a new epoch and reads the item;
//!    each marked entry is written ([`EntryWrite`]: the projected item, or a tombstone)
//!    with that epoch, and an entry only takes a write of an epoch at least its own, so
//!    a slow propagator never overwrites a newer one's work; then [`Release`] clears
//!    the marked keys if the epoch is still the one acquired. If it is not, a later
//!    writer or propagator took over, and its own outbox entry makes sure it finishes.
//! 4. The outbox entry is deleted once its items are propagated. After a crash, the
//!    background pass ([`redrive`], from the same scheduler as time to live) propagates
//!    the items of entries older than [`REDRIVE_AFTER_MS`]; the next write of an item
//!    propagates its marked keys too.
//!
//! So no entry is lost or left behind: every change is marked before it is visible,
//! and a mark is cleared only by a propagation that saw the item as it still is.

use crate::error::DynamoError;
use crate::schema::{TableDef, CATALOG, CATALOG_PK};
use crate::value::{item_from_json, item_to_json, Item};
use kit::table::{self, Change, Cond, Mutation, StoreError, Table};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::rc::Rc;

/// The table-layer table of the outbox: partitions `shard-<n>`, one entry per request.
pub const OUTBOX: &str = "dynamodb_index_outbox";
/// Outbox partitions, so that concurrent writers do not all queue on one.
const SHARDS: u64 = 8;
/// An outbox entry this old belongs to a request that died (a request finishes its
/// propagation within a few round trips).
pub const REDRIVE_AFTER_MS: i64 = 30_000;
/// An entry's tombstone this old fences nothing still running and may go.
pub const TOMBSTONE_MS: u64 = 600_000;

/// Kinds the protocol's mutations ship as.
pub const INDEXED: &str = "dynamodb.indexed";
pub const ACQUIRE: &str = "dynamodb.ix_acquire";
pub const RELEASE: &str = "dynamodb.ix_release";
pub const ENTRY: &str = "dynamodb.ix_entry";
pub const FORGET: &str = "dynamodb.ix_forget";

/// The stored value's key of system data (a transaction's lock, the marker).
const SYSTEM: &str = "";
/// The marker's key within it.
const MARK: &str = "ix";

/// An entry key: (index name, index partition, entry sort key).
pub type EntryKey = (String, String, String);

/// What an item's stored value says of its index entries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Marker {
    /// Grows with every change and every propagation.
    e: u64,
    /// Entries that may not show the item as it is.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    k: BTreeSet<EntryKey>,
}

fn marker_of(value: &Value) -> Option<Marker> {
    serde_json::from_value(value.get(SYSTEM)?.get(MARK)?.clone()).ok()
}

/// The epoch of a stored item's marker (0 for an item never marked).
pub fn epoch_of(value: &Value) -> u64 {
    marker_of(value).map_or(0, |m| m.e)
}

/// `value` without its marker; `None` when nothing else is left.
fn unmarked(value: &Value) -> Option<Value> {
    let mut map = value.as_object()?.clone();
    if let Some(Value::Object(system)) = map.get_mut(SYSTEM) {
        system.remove(MARK);
        if system.is_empty() {
            map.remove(SYSTEM);
        }
    }
    (!map.is_empty()).then_some(Value::Object(map))
}

fn marked(value: Value, marker: &Marker) -> Value {
    let mut map = match value {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let system = map
        .entry(SYSTEM)
        .or_insert_with(|| Value::Object(Map::new()));
    if !system.is_object() {
        *system = Value::Object(Map::new());
    }
    system[MARK] = serde_json::to_value(marker).unwrap_or(Value::Null);
    Value::Object(map)
}

/// A stored item with its marker taken off, as everything but this module sees it.
fn clean(item: &table::Item) -> Option<table::Item> {
    unmarked(&item.value).map(|value| table::Item {
        value,
        ..item.clone()
    })
}

/// The item a stored value holds for readers: no system data; `None` for a marker or a
/// lock alone.
pub fn content(value: &Value) -> Option<Value> {
    crate::txn::before(value)
}

/// Every item a stored value may become: its content and, under a transaction's lock,
/// the item once the transaction commits (stored by this endpoint, so they parse).
fn states(value: &Value) -> Vec<Item> {
    let then = crate::txn::lock_of(value).and_then(|l| l.then);
    content(value)
        .iter()
        .chain(then.iter())
        .filter_map(|item| item_from_json(item).ok())
        .collect()
}

/// The entry keys of every item a stored value may become ([`states`]).
fn keys_of(def: &TableDef, value: Option<&Value>) -> BTreeSet<EntryKey> {
    value
        .map(states)
        .unwrap_or_default()
        .iter()
        .flat_map(|item| item_keys(def, item))
        .collect()
}

/// The entry keys of `item`.
fn item_keys(def: &TableDef, item: &Item) -> BTreeSet<EntryKey> {
    def.indexes
        .iter()
        .filter_map(|index| match index.entry_key(def, item) {
            Ok(Some((pk, sk))) => Some((index.name.clone(), pk, sk)),
            _ => None,
        })
        .collect()
}

/// The epoch after `previous` at `now_ms`: above both, so that an item created again
/// after its marker is gone starts above the entries its earlier life left.
fn next_epoch(previous: u64, now_ms: i64) -> u64 {
    (previous + 1).max(u64::try_from(now_ms).unwrap_or(0).saturating_mul(1000))
}

/// Whether `def`'s writes go through this module.
pub fn indexed(def: &TableDef) -> bool {
    !def.indexes.is_empty()
}

/// A write of an item of an indexed table: `inner` decides on the item without its
/// marker, and the marker is kept up to date in the same step. With `check`, an item
/// whose index keys have the wrong type is refused as DynamoDB refuses it.
pub struct Indexed {
    pub inner: Box<dyn Mutation>,
    pub def: TableDef,
    pub now_ms: i64,
    pub check: bool,
}

impl Indexed {
    /// Wraps `inner` when `def` has indexes; else `inner` as it is.
    pub fn wrap(
        inner: Box<dyn Mutation>,
        def: &TableDef,
        now_ms: i64,
        check: bool,
    ) -> Box<dyn Mutation> {
        if !indexed(def) {
            return inner;
        }
        Box::new(Indexed {
            inner,
            def: def.clone(),
            now_ms,
            check,
        })
    }

    /// Why `next` cannot be stored: an index key of the wrong type, empty or too long.
    fn refused(&self, next: &Value) -> Option<DynamoError> {
        states(next)
            .iter()
            .find_map(|item| self.def.check_index_keys(item).err())
    }
}

impl Mutation for Indexed {
    fn kind(&self) -> &'static str {
        INDEXED
    }

    fn args(&self) -> Value {
        json!({
            "inner": [self.inner.kind(), self.inner.args()],
            "def": self.def,
            "now": self.now_ms,
            "check": self.check,
        })
    }

    fn decide(&self, current: Option<&table::Item>) -> Result<(Change, Value), StoreError> {
        let shown = current.and_then(clean);
        let (change, note) = self.inner.decide(shown.as_ref())?;
        let next = match change {
            Change::Keep => return Ok((Change::Keep, note)),
            Change::Put(value) => Some(value),
            Change::Delete => None,
        };
        if self.check {
            if let Some(e) = next.as_ref().and_then(|v| self.refused(v)) {
                let note =
                    json!({"refused": "error", "type": e.kind.type_name(), "message": e.message});
                return Ok((Change::Keep, note));
            }
        }
        let old = current
            .and_then(|i| marker_of(&i.value))
            .unwrap_or_default();
        let mut k = old.k;
        k.extend(keys_of(&self.def, shown.as_ref().map(|i| &i.value)));
        k.extend(keys_of(&self.def, next.as_ref()));
        let marker = Marker {
            e: next_epoch(old.e, self.now_ms),
            k,
        };
        Ok(match next {
            Some(value) => (Change::Put(marked(value, &marker)), note),
            None if marker.k.is_empty() => (Change::Delete, note),
            None => (Change::Put(marked(json!({}), &marker)), note),
        })
    }
}

/// A propagation's start on one item: takes the next epoch and notes it with the item
/// (`{"e": …, "value": …, "k": […]}`), or notes nothing to do (no marker).
pub struct Acquire {
    pub now_ms: i64,
}

impl Mutation for Acquire {
    fn kind(&self) -> &'static str {
        ACQUIRE
    }

    fn args(&self) -> Value {
        json!({"now": self.now_ms})
    }

    fn decide(&self, current: Option<&table::Item>) -> Result<(Change, Value), StoreError> {
        let Some((item, mut marker)) = current.and_then(|i| Some((i, marker_of(&i.value)?))) else {
            return Ok((Change::Keep, Value::Null));
        };
        marker.e = next_epoch(marker.e, self.now_ms);
        let note = json!({"e": marker.e, "value": unmarked(&item.value), "k": marker.k});
        Ok((Change::Put(marked(item.value.clone(), &marker)), note))
    }
}

/// A propagation's end on one item: clears the marked keys if the epoch is still
/// `epoch` (and drops what is left of a deleted item); notes whether it did.
pub struct Release {
    pub epoch: u64,
}

impl Mutation for Release {
    fn kind(&self) -> &'static str {
        RELEASE
    }

    fn args(&self) -> Value {
        json!({"e": self.epoch})
    }

    fn decide(&self, current: Option<&table::Item>) -> Result<(Change, Value), StoreError> {
        let Some((item, marker)) = current.and_then(|i| Some((i, marker_of(&i.value)?))) else {
            return Ok((Change::Keep, Value::Bool(false)));
        };
        if marker.e != self.epoch {
            return Ok((Change::Keep, Value::Bool(false)));
        }
        let quiet = Marker {
            e: marker.e,
            k: BTreeSet::new(),
        };
        Ok(match unmarked(&item.value) {
            None => (Change::Delete, Value::Bool(true)),
            Some(value) => (Change::Put(marked(value, &quiet)), Value::Bool(true)),
        })
    }
}

/// One index entry written at epoch `epoch`: the projected item, or a tombstone
/// (`None`); kept as it is when it holds a newer epoch's write.
pub struct EntryWrite {
    pub epoch: u64,
    pub value: Option<Value>,
}

fn entry_epoch(value: &Value) -> u64 {
    value
        .get(SYSTEM)
        .and_then(|s| s.get("e"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

impl Mutation for EntryWrite {
    fn kind(&self) -> &'static str {
        ENTRY
    }

    fn args(&self) -> Value {
        json!({"e": self.epoch, "value": self.value})
    }

    fn decide(&self, current: Option<&table::Item>) -> Result<(Change, Value), StoreError> {
        if current.is_some_and(|i| entry_epoch(&i.value) > self.epoch) {
            return Ok((Change::Keep, Value::Bool(false)));
        }
        let mut value = match &self.value {
            Some(Value::Object(map)) => map.clone(),
            _ => Map::new(),
        };
        value.insert(SYSTEM.to_owned(), json!({"e": self.epoch}));
        Ok((Change::Put(Value::Object(value)), Value::Bool(true)))
    }
}

/// Deletes an entry's tombstone if it is still the one of epoch `epoch`.
pub struct Forget {
    pub epoch: u64,
}

impl Mutation for Forget {
    fn kind(&self) -> &'static str {
        FORGET
    }

    fn args(&self) -> Value {
        json!({"e": self.epoch})
    }

    fn decide(&self, current: Option<&table::Item>) -> Result<(Change, Value), StoreError> {
        match current {
            Some(i) if entry_epoch(&i.value) == self.epoch && entry_item(&i.value).is_none() => {
                Ok((Change::Delete, Value::Bool(true)))
            }
            _ => Ok((Change::Keep, Value::Bool(false))),
        }
    }
}

/// The item an index entry holds; `None` for a tombstone.
pub fn entry_item(value: &Value) -> Option<Value> {
    let mut map = value.as_object()?.clone();
    map.remove(SYSTEM);
    (!map.is_empty()).then_some(Value::Object(map))
}

/// Whether an index entry read at `now_ms` is a tombstone old enough to go.
pub fn stale_tombstone(value: &Value, now_ms: i64) -> Option<u64> {
    let epoch = entry_epoch(value);
    let age_ms = u64::try_from(now_ms)
        .unwrap_or(0)
        .saturating_sub(epoch / 1000);
    (entry_item(value).is_none() && age_ms > TOMBSTONE_MS).then_some(epoch)
}

/// Rebuilds this module's shipped mutations.
pub fn mutation_from(kind: &str, args: &Value) -> Option<Box<dyn Mutation>> {
    let epoch = || args.get("e").and_then(Value::as_u64);
    Some(match kind {
        INDEXED => {
            let [inner_kind, inner_args] = args.get("inner")?.as_array()?.as_slice() else {
                return None;
            };
            let inner = crate::mutation::mutations(inner_kind.as_str()?, inner_args.clone())?;
            Box::new(Indexed {
                inner,
                def: serde_json::from_value(args.get("def")?.clone()).ok()?,
                now_ms: args.get("now")?.as_i64()?,
                check: args.get("check")?.as_bool()?,
            })
        }
        ACQUIRE => Box::new(Acquire {
            now_ms: args.get("now")?.as_i64()?,
        }),
        RELEASE => Box::new(Release { epoch: epoch()? }),
        ENTRY => Box::new(EntryWrite {
            epoch: epoch()?,
            value: args.get("value").filter(|v| !v.is_null()).cloned(),
        }),
        FORGET => Box::new(Forget { epoch: epoch()? }),
        _ => return None,
    })
}

/// Locks of ended transactions a propagation settles before it gives the item back to
/// the outbox.
const SETTLES: usize = 3;

/// Brings the entries of item `(pk, sk)` of `def` (whose items are `items`) in step
/// with the item, or leaves that to a later writer or propagation that took over;
/// `Ok(false)` when a live transaction holds the item, so that its outbox entry stays
/// for the background pass.
pub async fn propagate(
    env: &kit::Env,
    def: &TableDef,
    items: &dyn Table,
    (pk, sk): (&str, &str),
) -> Result<bool, DynamoError> {
    let now_ms = env.clock.now().timestamp_millis();
    let mut acquired = items.mutate(pk, sk, &Acquire { now_ms }).await?.note;
    // A transaction's lock is settled first: the entries then show what the
    // transaction decided, not the item before it.
    for _ in 0..SETTLES {
        let Some(lock) = acquired.get("value").and_then(crate::txn::lock_of) else {
            break;
        };
        match crate::txn::settle(env, def, items, pk, sk, &lock.txn).await {
            Ok(()) => {}
            Err(e) if e.kind == crate::error::Kind::TransactionConflict => return Ok(false),
            Err(e) => return Err(e),
        }
        acquired = items.mutate(pk, sk, &Acquire { now_ms }).await?.note;
    }
    let Some(epoch) = acquired.get("e").and_then(Value::as_u64) else {
        return Ok(true);
    };
    let value = acquired.get("value").filter(|v| !v.is_null());
    if value.and_then(crate::txn::lock_of).is_some() {
        return Ok(false);
    }
    let mut touched: BTreeSet<EntryKey> = acquired
        .get("k")
        .cloned()
        .and_then(|k| serde_json::from_value(k).ok())
        .unwrap_or_default();
    let item: Option<Item> = value
        .and_then(content)
        .map(|v| item_from_json(&v))
        .transpose()?;
    // Only the item as it is has entries; a lock's next state gets them once applied.
    let live = item.as_ref().map(|i| item_keys(def, i)).unwrap_or_default();
    touched.extend(live.iter().cloned());
    for (name, ipk, isk) in &touched {
        let Some(index) = def.indexes.iter().find(|i| &i.name == name) else {
            continue;
        };
        let entries = env.table(&index.storage_name(def))?;
        let projected = match (
            &item,
            live.contains(&(name.clone(), ipk.clone(), isk.clone())),
        ) {
            (Some(item), true) => Some(item_to_json(&index.project(def, item))),
            _ => None,
        };
        let write = EntryWrite {
            epoch,
            value: projected,
        };
        entries.mutate(ipk, isk, &write).await?;
    }
    // Not released: the epoch moved on, and whoever moved it propagates after.
    items.mutate(pk, sk, &Release { epoch }).await?;
    Ok(true)
}

/// A request's outbox entry, recorded before its writes and removed after their
/// propagation.
pub struct Outbox {
    shard: String,
    id: String,
}

impl Outbox {
    /// Records that items `keys` of `def` are about to be written (nothing when `def`
    /// has no index).
    pub async fn record(
        env: &kit::Env,
        def: &TableDef,
        keys: &[(String, String)],
    ) -> Result<Option<Outbox>, DynamoError> {
        if !indexed(def) || keys.is_empty() {
            return Ok(None);
        }
        let now_ms = env.clock.now().timestamp_millis();
        let random = (env.random)();
        let outbox = Outbox {
            shard: format!("shard-{}", random % SHARDS),
            id: format!("{now_ms:015}-{random:016x}"),
        };
        let entry = json!({
            "table": def.name,
            "generation": def.generation,
            "items": keys,
            "at": now_ms,
        });
        env.table(OUTBOX)?
            .put(&outbox.shard, &outbox.id, entry, Cond::Any)
            .await?;
        Ok(Some(outbox))
    }

    /// Propagates items `keys` of `def`, then removes the entry.
    pub async fn finish(
        self,
        env: &kit::Env,
        def: &TableDef,
        items: &dyn Table,
        keys: &[(String, String)],
    ) -> Result<(), DynamoError> {
        let mut settled = true;
        for (pk, sk) in keys {
            settled &= propagate(env, def, items, (pk, sk)).await?;
        }
        // An item a live transaction holds keeps the entry, for the background pass.
        if settled {
            self.delete(env).await?;
        }
        Ok(())
    }

    async fn delete(&self, env: &kit::Env) -> Result<(), DynamoError> {
        env.table(OUTBOX)?
            .delete(&self.shard, &self.id, Cond::Any)
            .await?;
        Ok(())
    }
}

/// One table's items a request writes: the table, its items, their keys.
struct TableWrites {
    def: TableDef,
    items: Rc<dyn Table>,
    keys: Vec<(String, String)>,
}

/// The outbox entries of a request that writes items of several tables: one per
/// indexed table, recorded before the writes and finished after them all.
pub struct Outboxes(Vec<(TableWrites, Outbox)>);

impl Outboxes {
    /// Records the items about to be written, `(table, its items, key)` each.
    pub async fn record<'w>(
        env: &kit::Env,
        writes: impl IntoIterator<Item = (&'w TableDef, &'w Rc<dyn Table>, (String, String))>,
    ) -> Result<Self, DynamoError> {
        let mut tables: Vec<TableWrites> = Vec::new();
        for (def, items, key) in writes {
            match tables.iter_mut().find(|t| t.def.name == def.name) {
                Some(table) => table.keys.push(key),
                None => tables.push(TableWrites {
                    def: def.clone(),
                    items: items.clone(),
                    keys: vec![key],
                }),
            }
        }
        let mut recorded = Vec::new();
        for table in tables {
            if let Some(outbox) = Outbox::record(env, &table.def, &table.keys).await? {
                recorded.push((table, outbox));
            }
        }
        Ok(Self(recorded))
    }

    /// Propagates every table's items and removes its entry ([`Outbox::finish`]).
    pub async fn finish(self, env: &kit::Env) -> Result<(), DynamoError> {
        for (table, outbox) in self.0 {
            outbox
                .finish(env, &table.def, &*table.items, &table.keys)
                .await?;
        }
        Ok(())
    }
}

/// Writes items `keys` of `def` with `write`, its outbox entry around it: what every
/// write path of an indexed table runs (a table without indexes just writes).
pub async fn around<T>(
    env: &kit::Env,
    def: &TableDef,
    items: &dyn Table,
    keys: &[(String, String)],
    write: impl std::future::Future<Output = Result<T, DynamoError>>,
) -> Result<T, DynamoError> {
    let outbox = Outbox::record(env, def, keys).await?;
    let written = write.await;
    if let Some(outbox) = outbox {
        // Propagated whether or not the write landed: a failed write may have landed
        // in part (a batch), and propagating an unchanged item costs a read.
        outbox.finish(env, def, items, keys).await?;
    }
    written
}

/// What a background pass over the outbox did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Redriven {
    pub entries: usize,
    pub items: usize,
}

/// Propagates the items of outbox entries older than [`REDRIVE_AFTER_MS`] (their
/// requests died), up to `budget` entries; the background pass's part.
pub async fn redrive(env: &kit::Env, budget: usize) -> Result<Redriven, DynamoError> {
    let now_ms = env.clock.now().timestamp_millis();
    let outbox = env.table(OUTBOX)?;
    let catalog = env.table(CATALOG)?;
    let mut done = Redriven::default();
    for shard in 0..SHARDS {
        let shard = format!("shard-{shard}");
        let page = outbox
            .query(&shard, None, budget.saturating_sub(done.entries))
            .await?;
        for entry in page.items {
            let at = entry.value.get("at").and_then(Value::as_i64).unwrap_or(0);
            // Ids start with the time, so the rest of the shard is younger.
            if now_ms - at < REDRIVE_AFTER_MS {
                break;
            }
            let name = entry
                .value
                .get("table")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let generation = entry.value.get("generation").and_then(Value::as_u64);
            let keys: Vec<(String, String)> = entry
                .value
                .get("items")
                .cloned()
                .and_then(|k| serde_json::from_value(k).ok())
                .unwrap_or_default();
            let def = match catalog.get(CATALOG_PK, name).await? {
                Some(stored) => kit::json::from_value::<TableDef>(&stored.value).ok(),
                None => None,
            };
            let dead = Outbox {
                shard: shard.clone(),
                id: entry.sk.clone(),
            };
            match def.filter(|d| Some(d.generation) == generation) {
                Some(def) => {
                    let items = env.table(&def.storage_name())?;
                    done.items += keys.len();
                    dead.finish(env, &def, &*items, &keys).await?;
                }
                // A table deleted (or created again) since has nothing left to propagate.
                None => dead.delete(env).await?,
            }
            done.entries += 1;
        }
        if done.entries >= budget {
            break;
        }
    }
    Ok(done)
}
