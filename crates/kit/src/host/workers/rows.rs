//! Items one by one as rows of a Durable Object's SQLite database: the table layer
//! inside a partition's object.
//!
//! Every item is a row `(t, pk, sk, v, d)` — table, partition key, sort key, version,
//! value as JSON text — under the primary key `(t, pk, sk)`, so a get is one indexed
//! lookup and a query one range scan in sort-key order (SQLite's `BINARY` collation
//! compares UTF-8 bytes, the order the table layer promises). Nothing reads or writes
//! more than the items an operation names: an operation's cost does not grow with its
//! partition, and a partition holds as much as the object's database does.
//!
//! Each operation runs synchronously against the database, between two awaits at
//! most (the first meeting of a partition stored whole by an older version, below), so
//! the object — which handles one event at a time, its input gate shut while it awaits
//! its own storage — makes every operation, read-modify-writes included, atomic.
//!
//! # Partitions stored whole (format 1)
//!
//! Versions before this one kept a partition as one JSON value under the storage key
//! `table/pk` ([`crate::table::PartitionTable`]). The first operation on such a partition in
//! this object moves its items into rows — versions kept — and notes the partition in
//! `moved`, in one synchronous step; the old value is deleted after. A partition is
//! looked up in `moved` by every operation (one indexed read) and never moved twice, so
//! a stale old value left by a crash before its deletion is never read again.

use crate::table::{
    v1_items, Change, Cond, Item, Page, StoreError, Table, Updated, MAX_ITEM_BYTES,
};
use async_trait::async_trait;
use serde_json::Value;
use worker::durable::Storage;
use worker::{SqlStorage, SqlStorageValue};

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("a stored row with a bad {what}"))
}

const ITEMS: &str = "CREATE TABLE IF NOT EXISTS items (t TEXT NOT NULL, pk TEXT NOT NULL, \
    sk TEXT NOT NULL, v INTEGER NOT NULL, d TEXT NOT NULL, PRIMARY KEY (t, pk, sk)) WITHOUT ROWID";
const MOVED: &str = "CREATE TABLE IF NOT EXISTS moved (t TEXT NOT NULL, pk TEXT NOT NULL, \
    PRIMARY KEY (t, pk)) WITHOUT ROWID";

/// A table of this object's SQLite database; only the object's own partitions of it
/// may be used through it (a Durable Object is chosen by table and partition).
pub struct RowTable {
    storage: Storage,
    sql: SqlStorage,
    table: String,
}

impl std::fmt::Debug for RowTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowTable")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

fn s(text: &str) -> SqlStorageValue {
    SqlStorageValue::String(text.to_owned())
}

fn int(n: u64) -> Result<SqlStorageValue, StoreError> {
    i64::try_from(n)
        .map(SqlStorageValue::Integer)
        .map_err(|_| corrupt("version"))
}

fn text_of(value: Option<&SqlStorageValue>, what: &str) -> Result<String, StoreError> {
    match value {
        Some(SqlStorageValue::String(text)) => Ok(text.clone()),
        _ => Err(corrupt(what)),
    }
}

fn version_of(value: Option<&SqlStorageValue>) -> Result<u64, StoreError> {
    match value {
        Some(SqlStorageValue::Integer(v)) => u64::try_from(*v).map_err(|_| corrupt("version")),
        _ => Err(corrupt("version")),
    }
}

fn item_of(sk: String, version: u64, text: &str) -> Result<Item, StoreError> {
    Ok(Item {
        sk,
        value: crate::json::from_text(text).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        version,
    })
}

/// Items of rows `(sk, v, d)`.
fn items_of(rows: &[Vec<SqlStorageValue>]) -> Result<Vec<Item>, StoreError> {
    rows.iter()
        .map(|row| {
            item_of(
                text_of(row.first(), "sort key")?,
                version_of(row.get(1))?,
                &text_of(row.get(2), "value")?,
            )
        })
        .collect()
}

fn holds(current: Option<u64>, cond: Cond) -> Result<(), StoreError> {
    let holds = match cond {
        Cond::Any => true,
        Cond::Absent => current.is_none(),
        Cond::Version(v) => current == Some(v),
    };
    if holds {
        Ok(())
    } else {
        Err(StoreError::ConditionFailed)
    }
}

impl RowTable {
    pub fn new(storage: Storage, table: &str) -> Self {
        Self {
            sql: storage.sql(),
            storage,
            table: table.to_owned(),
        }
    }

    fn rows(
        &self,
        query: &str,
        bindings: Vec<SqlStorageValue>,
    ) -> Result<Vec<Vec<SqlStorageValue>>, StoreError> {
        self.sql
            .exec(query, bindings)
            .map_err(backend)?
            .raw()
            .collect::<Result<_, _>>()
            .map_err(backend)
    }

    fn run(&self, query: &str, bindings: Vec<SqlStorageValue>) -> Result<(), StoreError> {
        self.rows(query, bindings).map(|_| ())
    }

    /// Makes the partition's rows the truth: creates the schema on the object's first
    /// operation (when looking a partition up in `moved` fails for want of it) and
    /// moves a partition stored whole into rows (see the module's doc).
    async fn settle(&self, pk: &str) -> Result<(), StoreError> {
        let moved = || {
            self.rows(
                "SELECT 1 FROM moved WHERE t = ? AND pk = ?",
                vec![s(&self.table), s(pk)],
            )
        };
        // The schema only when the lookup finds none: not two statements per operation.
        let moved = match moved() {
            Ok(rows) => rows,
            Err(_) => {
                self.run(ITEMS, Vec::new())?;
                self.run(MOVED, Vec::new())?;
                moved()?
            }
        };
        if !moved.is_empty() {
            return Ok(());
        }
        let key = crate::table::storage_key(&self.table, pk);
        let whole = super::backends::get_text(&self.storage, &key).await?;
        let had_whole = whole.is_some();
        if let Some(mut text) = whole {
            // A table kept whole in one object (`DoKv`) stored each partition after its
            // write count; a partition's own JSON starts with `{`.
            if text.starts_with(|c: char| c.is_ascii_digit()) {
                text = super::backends::split_counted(text)?.1;
            }
            for (sk, version, value) in v1_items(text.into_bytes())? {
                self.write_row(pk, &sk, version, &value)?;
            }
        }
        self.run(
            "INSERT INTO moved (t, pk) VALUES (?, ?)",
            vec![s(&self.table), s(pk)],
        )?;
        if had_whole {
            self.storage.delete(&key).await.map_err(backend)?;
        }
        Ok(())
    }

    fn version(&self, pk: &str, sk: &str) -> Result<Option<u64>, StoreError> {
        let rows = self.rows(
            "SELECT v FROM items WHERE t = ? AND pk = ? AND sk = ?",
            vec![s(&self.table), s(pk), s(sk)],
        )?;
        rows.first().map(|row| version_of(row.first())).transpose()
    }

    fn read(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let rows = self.rows(
            "SELECT v, d FROM items WHERE t = ? AND pk = ? AND sk = ?",
            vec![s(&self.table), s(pk), s(sk)],
        )?;
        match rows.first() {
            Some(row) => Ok(Some(item_of(
                sk.to_owned(),
                version_of(row.first())?,
                &text_of(row.get(1), "value")?,
            )?)),
            None => Ok(None),
        }
    }

    fn write_row(&self, pk: &str, sk: &str, version: u64, value: &str) -> Result<(), StoreError> {
        let size = self.table.len() + pk.len() + sk.len() + value.len();
        if size > MAX_ITEM_BYTES {
            return Err(StoreError::ItemTooLarge(size));
        }
        self.run(
            "INSERT OR REPLACE INTO items (t, pk, sk, v, d) VALUES (?, ?, ?, ?, ?)",
            vec![s(&self.table), s(pk), s(sk), int(version)?, s(value)],
        )
    }

    /// Writes `value` one version past `current`; returns that version.
    fn write(
        &self,
        pk: &str,
        sk: &str,
        current: Option<u64>,
        value: &Value,
    ) -> Result<u64, StoreError> {
        let version = current.map_or(1, |v| v + 1);
        let text = serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.write_row(pk, sk, version, &text)?;
        Ok(version)
    }

    fn remove(&self, pk: &str, sk: &str) -> Result<(), StoreError> {
        self.run(
            "DELETE FROM items WHERE t = ? AND pk = ? AND sk = ?",
            vec![s(&self.table), s(pk), s(sk)],
        )
    }

    /// Applies one decided change to the item as read; returns the version written.
    fn apply(
        &self,
        pk: &str,
        sk: &str,
        current: Option<&Item>,
        change: Change,
    ) -> Result<Option<u64>, StoreError> {
        match change {
            Change::Keep => Ok(None),
            Change::Delete => {
                if current.is_some() {
                    self.remove(pk, sk)?;
                }
                Ok(None)
            }
            Change::Put(value) => self
                .write(pk, sk, current.map(|i| i.version), &value)
                .map(Some),
        }
    }
}

#[async_trait(?Send)]
impl Table for RowTable {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.settle(pk).await?;
        self.read(pk, sk)
    }

    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Option<Item>>, StoreError> {
        let mut items = Vec::with_capacity(keys.len());
        // Each partition settled once: a BFS level asks many nodes of few shards.
        let mut settled = std::collections::HashSet::new();
        for (pk, sk) in keys {
            if settled.insert(pk.as_str()) {
                self.settle(pk).await?;
            }
            items.push(self.read(pk, sk)?);
        }
        Ok(items)
    }

    async fn put(&self, pk: &str, sk: &str, value: Value, cond: Cond) -> Result<u64, StoreError> {
        self.settle(pk).await?;
        let current = self.version(pk, sk)?;
        holds(current, cond)?;
        self.write(pk, sk, current, &value)
    }

    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<bool, StoreError> {
        self.settle(pk).await?;
        let current = self.version(pk, sk)?;
        holds(current, cond)?;
        if current.is_some() {
            self.remove(pk, sk)?;
        }
        Ok(current.is_some())
    }

    async fn query(&self, pk: &str, after: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        self.settle(pk).await?;
        // One row past the page says whether more remain.
        let wanted = int(u64::try_from(limit).unwrap_or(u64::MAX).min(1 << 40) + 1)?;
        let rows = match after {
            Some(after) => self.rows(
                "SELECT sk, v, d FROM items WHERE t = ? AND pk = ? AND sk > ? ORDER BY sk LIMIT ?",
                vec![s(&self.table), s(pk), s(after), wanted],
            )?,
            None => self.rows(
                "SELECT sk, v, d FROM items WHERE t = ? AND pk = ? ORDER BY sk LIMIT ?",
                vec![s(&self.table), s(pk), wanted],
            )?,
        };
        let more = rows.len() > limit;
        let items = items_of(&rows[..rows.len().min(limit)])?;
        Ok(crate::table::forward_page(items, more))
    }

    async fn query_back(
        &self,
        pk: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        self.settle(pk).await?;
        let wanted = int(u64::try_from(limit).unwrap_or(u64::MAX).min(1 << 40) + 1)?;
        let rows = match before {
            Some(before) => self.rows(
                "SELECT sk, v, d FROM items WHERE t = ? AND pk = ? AND sk < ? ORDER BY sk DESC LIMIT ?",
                vec![s(&self.table), s(pk), s(before), wanted],
            )?,
            None => self.rows(
                "SELECT sk, v, d FROM items WHERE t = ? AND pk = ? ORDER BY sk DESC LIMIT ?",
                vec![s(&self.table), s(pk), wanted],
            )?,
        };
        Ok(crate::table::back_page(items_of(&rows)?.into_iter(), limit))
    }

    async fn put_partition(&self, pk: &str, items: Vec<(String, Value)>) -> Result<(), StoreError> {
        self.settle(pk).await?;
        let versions: std::collections::HashMap<String, u64> = self
            .rows(
                "SELECT sk, v FROM items WHERE t = ? AND pk = ?",
                vec![s(&self.table), s(pk)],
            )?
            .iter()
            .map(|row| Ok((text_of(row.first(), "sort key")?, version_of(row.get(1))?)))
            .collect::<Result<_, StoreError>>()?;
        // Checked before anything is deleted: a refused item changes nothing.
        let texts = items
            .iter()
            .map(|(sk, value)| {
                let text =
                    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let size = self.table.len() + pk.len() + sk.len() + text.len();
                if size > MAX_ITEM_BYTES {
                    return Err(StoreError::ItemTooLarge(size));
                }
                Ok(text)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.run(
            "DELETE FROM items WHERE t = ? AND pk = ?",
            vec![s(&self.table), s(pk)],
        )?;
        for ((sk, _), text) in items.iter().zip(&texts) {
            let version = versions.get(sk).map_or(1, |v| v + 1);
            self.write_row(pk, sk, version, text)?;
        }
        Ok(())
    }

    async fn put_items(&self, pk: &str, items: Vec<(String, Value)>) -> Result<(), StoreError> {
        self.settle(pk).await?;
        let mut texts = Vec::with_capacity(items.len());
        for (sk, value) in &items {
            let text =
                serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let size = self.table.len() + pk.len() + sk.len() + text.len();
            if size > MAX_ITEM_BYTES {
                return Err(StoreError::ItemTooLarge(size));
            }
            texts.push(text);
        }
        for ((sk, _), text) in items.iter().zip(&texts) {
            let version = self.version(pk, sk)?.map_or(1, |v| v + 1);
            self.write_row(pk, sk, version, text)?;
        }
        Ok(())
    }

    /// Inside the object nothing can change between the read and the write: the change
    /// runs once.
    async fn update(
        &self,
        pk: &str,
        sk: &str,
        _max_attempts: u32,
        change: &mut dyn for<'i> FnMut(Option<&'i Item>) -> Result<Change, StoreError>,
    ) -> Result<Updated, StoreError> {
        self.settle(pk).await?;
        let current = self.read(pk, sk)?;
        let decided = change(current.as_ref())?;
        let version = self.apply(pk, sk, current.as_ref(), decided)?;
        Ok(Updated {
            version,
            retries: 0,
        })
    }

    /// All decisions are made (each seeing the ones before it) and checked before
    /// anything is written, so a change that fails leaves every item as it was.
    async fn update_items(
        &self,
        pk: &str,
        sks: &[String],
        _max_attempts: u32,
        change: &mut dyn for<'s, 'i> FnMut(&'s str, Option<&'i Item>) -> Result<Change, StoreError>,
    ) -> Result<u32, StoreError> {
        self.settle(pk).await?;
        // Each item as the decisions so far leave it, and whether it must be written.
        let mut decided: Vec<(&str, Option<Item>, bool)> = Vec::with_capacity(sks.len());
        for sk in sks {
            let current = match decided.iter().position(|(k, _, _)| *k == sk.as_str()) {
                Some(i) => decided.swap_remove(i),
                None => (sk.as_str(), self.read(pk, sk)?, false),
            };
            let (_, item, dirty) = current;
            let next = match change(sk, item.as_ref())? {
                Change::Keep => (item, dirty),
                Change::Delete => (None, dirty || item.is_some()),
                Change::Put(value) => {
                    let version = item.as_ref().map_or(1, |i| i.version + 1);
                    let item = Item {
                        sk: sk.clone(),
                        value,
                        version,
                    };
                    (Some(item), true)
                }
            };
            decided.push((sk, next.0, next.1));
        }
        let mut writes = Vec::new();
        for (sk, item, dirty) in decided {
            if !dirty {
                continue;
            }
            let text = match &item {
                Some(item) => {
                    let text = serde_json::to_string(&item.value)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    let size = self.table.len() + pk.len() + sk.len() + text.len();
                    if size > MAX_ITEM_BYTES {
                        return Err(StoreError::ItemTooLarge(size));
                    }
                    Some((item.version, text))
                }
                None => None,
            };
            writes.push((sk, text));
        }
        for (sk, text) in writes {
            match text {
                Some((version, text)) => self.write_row(pk, sk, version, &text)?,
                None => self.remove(pk, sk)?,
            }
        }
        Ok(0)
    }
}
