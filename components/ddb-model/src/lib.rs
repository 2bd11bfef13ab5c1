//! DynamoDB's data model on the table layer, shared by the two services that store
//! DynamoDB tables: the DynamoDB-compatible endpoint (`dynamodb`, API.md §6) and the
//! movies API (`movies`, §4), whose data is the built-in DynamoDB table `Movies`.
//!
//! [`value`] holds DynamoDB's attribute values (38-digit numbers in normal form, sets,
//! binary) and their JSON; [`error`] DynamoDB's errors; [`schema`] how a table's items,
//! catalog entry and partition directory map onto table-layer tables; [`plain`] the
//! mapping between typed items and plain JSON that the movies API speaks; and
//! [`list_partition`] the one step every writer takes before creating a partition, so
//! that Scan finds it. `cargo test -p ddb-model` runs the unit tests.

pub mod error;
pub mod plain;
pub mod schema;
pub mod value;

use kit::table::{Change, StoreError};
use schema::{TableDef, DIRECTORY_PK};

/// Makes sure partition `pk` of `def` is in its partition directory, before an item is
/// written to it: one read, plus one conditional write the first time (so that racing
/// writers agree). A listed partition may be empty; a partition with items is always
/// listed.
pub async fn list_partition(env: &kit::Env, def: &TableDef, pk: &str) -> Result<(), StoreError> {
    let directory = env.table(&def.directory_name())?;
    directory
        .update(DIRECTORY_PK, pk, 16, &mut |listed| {
            Ok(match listed {
                Some(_) => Change::Keep,
                None => Change::Put(serde_json::json!({})),
            })
        })
        .await?;
    Ok(())
}
