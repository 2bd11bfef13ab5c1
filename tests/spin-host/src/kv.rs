//! Spin's default key-value store, reproduced: one SQLite database, Spin's own schema
//! `spin_key_value(store, key, value)`, one connection behind a lock, and Spin's SQL
//! for every operation — including where Spin's semantics surprise.
//!
//! Reproduced from Spin 4.0.2 (`crates/key-value-spin/src/store.rs`, the store `spin up`
//! uses by default, and `crates/factor-key-value/src/host.rs`, the dispatch in front
//! of it):
//! - every label is a `store` value in the one database (`<state-dir>/sqlite_key_value.db`,
//!   Spin's `.spin/sqlite_key_value.db`);
//! - `set` is an upsert; `get-many` returns only the keys that exist, in SQLite's order;
//!   `list-keys` refuses a cursor;
//! - `increment` reads and writes in one transaction, treats a missing key as 0 and
//!   stores the sum as 8 bytes **little-endian**; on a value of any other length Spin
//!   panics inside the host (`expect("incorrect length")`) — here it is an error, so a
//!   test sees it instead of a dead host; the sum wraps on overflow (release build);
//! - compare-and-swap: `cas::new` reads nothing; `current` reads the value and
//!   remembers it (again on every call); `swap` after a remembered value runs
//!   `UPDATE … WHERE value = old` (fails if it changed, succeeds on equal bytes: ABA),
//!   but after a remembered **absence** — or when `current` was never called — it runs
//!   an upsert that always succeeds, even over a value another writer just created;
//!   a failed swap hands back a new `cas` that has already read the latest value;
//! - a request may hold at most 256 open stores and 256 `cas` resources; a `cas`
//!   consumed by `swap` keeps its slot until the request ends (Spin never frees it).

use anyhow::{Context, Result};
use rusqlite::{named_params, Connection, OptionalExtension};
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};

/// The file name Spin gives its default store's database under `.spin/`.
pub const DB_FILE: &str = "sqlite_key_value.db";

/// Spin's per-request resource table capacity (stores, and `cas` resources).
pub const TABLE_CAPACITY: usize = 256;

const UPSERT: &str = "INSERT INTO spin_key_value (store, key, value) VALUES ($1, $2, $3)
                      ON CONFLICT(store, key) DO UPDATE SET value=$3";
const SELECT: &str = "SELECT value FROM spin_key_value WHERE store=$1 AND key=$2";

/// Every store of one application: one database, opened once.
#[derive(Debug)]
pub struct KvStores {
    db: Arc<Db>,
    known: Vec<String>,
    stats: Arc<KvStats>,
}

/// The one connection every store shares, as in Spin.
struct Db {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Db")
    }
}

impl Db {
    /// Runs `op` on the connection as Spin's SQLite store runs each operation: inside
    /// `tokio::task::block_in_place` when on a multi-threaded runtime (the host's). The
    /// worker thread hands its other tasks to another thread while SQLite runs, so a
    /// task the guest wakes right after (the HTTP connection waiting for the response
    /// head) runs at once elsewhere, while the guest is still writing its body: the
    /// interleaving behind Spin's kept-alive stall (docs/SERVICES.md, *Spin and kept-alive
    /// connections*), which a host that ran the store inline would never show.
    fn run<T>(&self, op: impl FnOnce(&mut Connection) -> T) -> T {
        let call = || op(&mut self.lock());
        #[cfg(feature = "host")]
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
                return tokio::task::block_in_place(call);
            }
        }
        call()
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written: every
        // multi-statement change is a transaction.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl KvStores {
    /// `known` are the labels that exist (Spin knows only `default` unless
    /// runtime config adds more; we also accept every label the manifest uses).
    pub fn new(dir: &Path, known: impl IntoIterator<Item = String>) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating state dir {}", dir.display()))?;
        let path = dir.join(DB_FILE);
        let conn =
            Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        conn.execute(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL,
                key   TEXT NOT NULL,
                value BLOB NOT NULL,

                PRIMARY KEY (store, key)
            )",
            [],
        )?;
        // `get-many` and `delete-many` bind the keys as an array, as Spin does.
        rusqlite::vtab::array::load_module(&conn)?;
        let mut known: Vec<String> = known.into_iter().collect();
        known.push("default".to_string());
        Ok(Self {
            db: Arc::new(Db {
                conn: Mutex::new(conn),
            }),
            known,
            stats: Arc::new(KvStats::default()),
        })
    }

    /// `Ok(None)` means no such store.
    pub fn open(&self, label: &str) -> Result<Option<Arc<KvStore>>> {
        if !self.known.iter().any(|k| k == label) {
            return Ok(None);
        }
        Ok(Some(Arc::new(KvStore {
            name: label.to_string(),
            db: self.db.clone(),
        })))
    }

    /// Round trips to the database, per component.
    pub fn stats(&self) -> &Arc<KvStats> {
        &self.stats
    }
}

/// One store (a label): a `store` value of the shared table.
#[derive(Debug)]
pub struct KvStore {
    name: String,
    db: Arc<Db>,
}

impl KvStore {
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.db.run(|conn| {
            let value = conn
                .prepare_cached(SELECT)?
                .query_row([&self.name, key], |row| row.get::<_, Vec<u8>>(0))
                .optional()?;
            Ok(value)
        })
    }

    pub fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        self.db.run(|conn| {
            conn.prepare_cached(UPSERT)?
                .execute(rusqlite::params![&self.name, key, value])?;
            Ok(())
        })
    }

    pub fn delete(&self, key: &str) -> Result<()> {
        self.db.run(|conn| {
            conn.prepare_cached("DELETE FROM spin_key_value WHERE store=$1 AND key=$2")?
                .execute([&self.name, key])?;
            Ok(())
        })
    }

    pub fn exists(&self, key: &str) -> Result<bool> {
        self.db.run(|conn| {
            let found = conn
                .prepare_cached("SELECT 1 FROM spin_key_value WHERE store=$1 AND key=$2 LIMIT 1")?
                .exists([&self.name, key])?;
            Ok(found)
        })
    }

    pub fn keys(&self) -> Result<Vec<String>> {
        self.db.run(|conn| {
            let mut stmt = conn.prepare_cached("SELECT key FROM spin_key_value WHERE store=$1")?;
            let keys = stmt
                .query_map([&self.name], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(keys)
        })
    }

    /// Only the keys that exist come back (Spin's `IN rarray(...)` query), each once,
    /// in whatever order SQLite produces.
    pub fn get_many(&self, keys: Vec<String>) -> Result<Vec<(String, Option<Vec<u8>>)>> {
        let keys: Vec<rusqlite::types::Value> = keys.into_iter().map(Into::into).collect();
        self.db.run(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT key, value FROM spin_key_value WHERE store=:name AND key IN rarray(:keys)",
            )?;
            let rows = stmt
                .query_map(
                    named_params! {":name": &self.name, ":keys": Rc::new(keys)},
                    |row| Ok((row.get::<_, String>(0)?, row.get::<_, Option<Vec<u8>>>(1)?)),
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// One transaction, as in Spin.
    pub fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<()> {
        self.db.run(|conn| {
            let tx = conn.transaction()?;
            for (key, value) in pairs {
                tx.prepare_cached(UPSERT)?
                    .execute(rusqlite::params![&self.name, key, value])?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    pub fn delete_many(&self, keys: Vec<String>) -> Result<()> {
        let keys: Vec<rusqlite::types::Value> = keys.into_iter().map(Into::into).collect();
        self.db.run(|conn| {
            conn.prepare_cached(
                "DELETE FROM spin_key_value WHERE store=:name AND key IN rarray(:keys)",
            )?
            .execute(named_params! {":name": &self.name, ":keys": Rc::new(keys)})?;
            Ok(())
        })
    }

    /// 8-byte little-endian i64, missing = 0, in one transaction. Spin panics on a value
    /// of another length; this is an error instead.
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        self.db.run(|conn| {
            let tx = conn.transaction()?;
            let value: Option<Vec<u8>> = tx
                .prepare_cached(SELECT)?
                .query_row([&self.name, key], |row| row.get(0))
                .optional()?;
            let current = match value {
                None => 0,
                Some(v) => {
                    let len = v.len();
                    let bytes = <[u8; 8]>::try_from(v).map_err(|_| {
                        anyhow::anyhow!(
                            "incorrect length: increment of {key:?}, which holds {len} bytes, \
                         not an 8-byte integer (Spin 4.0.2 panics here)"
                        )
                    })?;
                    i64::from_le_bytes(bytes)
                }
            };
            let new = current.wrapping_add(delta);
            tx.prepare_cached(UPSERT)?.execute(rusqlite::params![
                &self.name,
                key,
                new.to_le_bytes()
            ])?;
            tx.commit()?;
            Ok(new)
        })
    }
}

/// A compare-and-swap in progress, as Spin's `CompareAndSwap`: it remembers what
/// [`Cas::current`] last read, and nothing until then.
#[derive(Debug)]
pub struct Cas {
    store: Arc<KvStore>,
    key: String,
    observed: Option<Vec<u8>>,
}

impl Cas {
    /// Reads nothing.
    pub fn new(store: Arc<KvStore>, key: String) -> Self {
        Self {
            store,
            key,
            observed: None,
        }
    }

    /// Reads the value now and remembers it for [`Cas::swap`].
    pub fn current(&mut self) -> Result<Option<Vec<u8>>> {
        self.observed = self.store.get(&self.key)?;
        Ok(self.observed.clone())
    }

    /// `Ok(true)` when exactly one row changed. After an observed value: an update
    /// conditional on that exact value. After an observed absence (or none): Spin's
    /// upsert, which always changes one row.
    pub fn swap(&self, value: &[u8]) -> Result<bool> {
        self.store.db.run(|conn| {
            let rows = match &self.observed {
                Some(old) => conn
                    .prepare_cached(
                        "UPDATE spin_key_value SET value=:new_value \
                     WHERE store=:name and key=:key and value=:old_value",
                    )?
                    .execute(named_params! {
                        ":name": &self.store.name,
                        ":key": &self.key,
                        ":old_value": old,
                        ":new_value": value,
                    })?,
                None => {
                    let tx = conn.transaction()?;
                    let rows = tx.prepare_cached(UPSERT)?.execute(rusqlite::params![
                        &self.store.name,
                        &self.key,
                        value
                    ])?;
                    tx.commit()?;
                    rows
                }
            };
            Ok(rows == 1)
        })
    }

    pub fn store(&self) -> &Arc<KvStore> {
        &self.store
    }

    pub fn key(&self) -> &str {
        &self.key
    }
}

/// Key-value round trips (SQL statements run for a guest), per component, so that a
/// benchmark can report operations per request.
#[derive(Debug, Default)]
pub struct KvStats {
    by_component: Mutex<BTreeMap<String, ComponentStats>>,
}

/// What one component did.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct ComponentStats {
    /// Instances run (HTTP requests and cron events).
    pub requests: u64,
    /// `get`, `exists`, `get-keys`/`list-keys`, `get-many`, `cas.current`.
    pub reads: u64,
    /// `set`, `delete`, `set-many`, `delete-many`, `increment`, `swap`.
    pub writes: u64,
    /// Bytes of values the reads returned (what a benchmark reports per query).
    pub read_bytes: u64,
}

/// Which counter a host call adds to.
#[derive(Debug, Clone, Copy)]
pub enum Op {
    Request,
    Read,
    Write,
    /// Bytes a read returned.
    ReadBytes(usize),
}

impl KvStats {
    pub fn record(&self, component: &str, op: Op) {
        let mut map = self
            .by_component
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // No allocation per call once the component is known: this is every SQL call.
        let stats = match map.get_mut(component) {
            Some(stats) => stats,
            None => map.entry(component.to_string()).or_default(),
        };
        match op {
            Op::Request => stats.requests += 1,
            Op::Read => stats.reads += 1,
            Op::Write => stats.writes += 1,
            Op::ReadBytes(n) => stats.read_bytes += n as u64,
        }
    }

    pub fn snapshot(&self) -> BTreeMap<String, ComponentStats> {
        self.by_component
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}
