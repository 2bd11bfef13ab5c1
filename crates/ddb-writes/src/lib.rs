//! The one door for writes to DynamoDB-modelled tables (the endpoint's tables and the
//! built-in `Movies`). Every writer of such a table — the DynamoDB endpoint's item,
//! batch, transaction, table and time-to-live paths, and the movies API — goes through a
//! [`Door`], which keeps what each write owes the rest of the deployment:
//!
//! - before: the partition is in its table's partition directory
//!   ([`ddb_model::list_partition`]), so that Scan finds it;
//! - after: the movie graph follows every change to `Movies`
//!   ([`graph_model::movies_changed`]), and the table's edge-cached reads
//!   ([`kit::cache`]) start a new generation, once the write is stored and before it is
//!   acknowledged; after a failed write too, since a batch may have stored part of
//!   itself.
//!
//! `cargo test -p ddb-writes` runs its tests on the in-memory backend.

use ddb_model::schema::{self, TableDef};
use kit::table::StoreError;
use serde_json::Value;

/// One item a write changed: its key attributes (typed JSON; the whole item will do),
/// and the item now (`None`: deleted).
pub type Changed<'v> = (&'v Value, Option<&'v Value>);

/// Writes to DynamoDB-modelled tables, in one request's environment.
#[derive(Clone, Copy)]
pub struct Door<'a> {
    env: &'a kit::Env,
}

impl<'a> Door<'a> {
    pub fn new(env: &'a kit::Env) -> Self {
        Self { env }
    }

    /// Before a write that may create partition `pk` of `def`.
    pub async fn open(&self, def: &TableDef, pk: &str) -> Result<(), StoreError> {
        ddb_model::list_partition(self.env, def, pk).await
    }

    /// After a write of `def` ended, landed or not: `changed` are the items it changed
    /// (none when it failed).
    pub async fn close(&self, def: &TableDef, changed: &[Changed<'_>]) -> Result<(), StoreError> {
        kit::cache::invalidate(self.env, &def.name).await;
        if def.name != schema::MOVIES || changed.is_empty() {
            return Ok(());
        }
        let movies = changed
            .iter()
            .filter_map(|(key, now)| {
                let year = key.pointer("/year/N")?.as_str()?.parse().ok()?;
                let title = key.pointer("/title/S")?.as_str()?.to_owned();
                let cast = now.map(graph_model::Cast::from_stored);
                Some((graph_model::MovieRef { year, title }, cast))
            })
            .collect();
        graph_model::movies_changed(self.env, movies).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
