//! DynamoDB's data model on the table layer, shared by the two services that store
//! DynamoDB tables: the DynamoDB-compatible endpoint (`dynamodb`) and the
//! movies API (`movies`), whose data is the built-in DynamoDB table `Movies`.
//!
//! [`value`] holds DynamoDB's attribute values (38-digit numbers in normal form, sets,
//! binary) and their JSON; [`error`] DynamoDB's errors; [`schema`] how a table's items,
//! catalog entry and partition directory map onto table-layer tables; [`plain`] the
//! mapping between typed items and plain JSON that the movies API speaks; and
//! [`list_partition`] the one step every writer takes before creating a partition, so
//! that Scan finds it. `cargo test -p ddb-model` runs the unit tests.

pub mod error;
pub mod index;
pub mod plain;
pub mod schema;
pub mod value;

use kit::table::{Cond, StoreError};
use schema::{TableDef, DIRECTORY_PK};

/// Makes sure partition `pk` of `def` is in its partition directory, before an item is
/// written to it: one conditional put that only the first writer's lands (so racing
/// writers agree), run where the directory lives (inside the Durable Object: one round
/// trip). A listed partition may be empty; a partition with items is always listed.
pub async fn list_partition(env: &kit::Env, def: &TableDef, pk: &str) -> Result<(), StoreError> {
    let directory = env.table(&def.directory_name())?;
    match directory
        .put(DIRECTORY_PK, pk, serde_json::json!({}), Cond::Absent)
        .await
    {
        Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
        Err(e) => Err(e),
    }
}
