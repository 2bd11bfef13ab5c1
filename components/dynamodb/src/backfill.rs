//! UpdateTable's `GlobalSecondaryIndexUpdates`: an index created on a table with data
//! (`CREATING`, `Backfilling`, then `ACTIVE` once every item the table held is in it),
//! an index deleted, a GSI's throughput changed.
//!
//! From the moment the catalog names a new index, every write keeps it up to date (see
//! [`crate::indexes`]). The backfill gives it the items written before: after
//! [`GRACE_MS`] — longer than a request that read the table's definition before the
//! index existed may still be writing — it walks the table's partition directory,
//! a bounded number of partitions a step, and writes each item's entry stamped with the
//! epoch of the item's marker (0 for an item never marked), so that a newer write's
//! entry always wins over the backfill's. Steps run in the background pass (the TTL
//! sweep's scheduler) and in each DescribeTable of the table, which clients poll while
//! they wait for `ACTIVE`; the cursor is the index's state in the catalog.

use crate::error::DynamoError;
use crate::index::{IndexDef, IndexState, MAX_GSIS};
use crate::indexes::EntryWrite;
use crate::schema::{KeyType, TableDef, CATALOG, CATALOG_PK, DIRECTORY_PK};
use crate::value::item_to_json;
use kit::table::{Cond, StoreError};
use serde_json::Value;

/// How long after an index's creation its backfill starts.
pub const GRACE_MS: i64 = 10_000;
/// Partitions a DescribeTable's backfill step reads.
pub const DESCRIBE_PARTITIONS: usize = 20;
/// Items a backfill step reads at most from one partition at a time.
const CHUNK: usize = 256;

fn invalid(message: impl std::fmt::Display) -> DynamoError {
    DynamoError::validation(format!(
        "One or more parameter values were invalid: {message}"
    ))
}

/// The attribute definitions the table has (its keys and its indexes' keys), with those
/// of `given` (an UpdateTable's `AttributeDefinitions`) added.
fn definitions(
    def: &TableDef,
    given: Option<&Value>,
) -> Result<Vec<(String, KeyType)>, DynamoError> {
    let mut defined: Vec<(String, KeyType)> = def
        .key_attrs()
        .into_iter()
        .map(|a| (a.name.clone(), a.kind))
        .collect();
    for spec in given.and_then(Value::as_array).into_iter().flatten() {
        let (Some(name), Some(kind)) = (
            spec.get("AttributeName").and_then(Value::as_str),
            spec.get("AttributeType").and_then(Value::as_str),
        ) else {
            return Err(invalid(
                "an attribute definition needs AttributeName and AttributeType",
            ));
        };
        let kind = KeyType::parse(kind)?;
        match defined.iter().find(|(n, _)| n == name) {
            Some((_, known)) if *known != kind => {
                return Err(invalid(format!(
                    "Cannot change the type of attribute {name}: it is a key of the table or of an index"
                )))
            }
            Some(_) => {}
            None => defined.push((name.to_owned(), kind)),
        }
    }
    Ok(defined)
}

/// The position in `def` of the GSI an index update names, and its name.
fn global_index<'s>(def: &TableDef, spec: &'s Value) -> Result<(usize, &'s str), DynamoError> {
    let name = spec
        .get("IndexName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let at = def
        .indexes
        .iter()
        .position(|i| i.name == name && i.global)
        .ok_or_else(|| {
            DynamoError::new(
                crate::error::Kind::ResourceNotFound,
                format!("Requested resource not found: Index: {name} not found"),
            )
        })?;
    Ok((at, name))
}

/// Applies an UpdateTable's `GlobalSecondaryIndexUpdates` to `def` at `now` (seconds),
/// a created index getting `id`; refused as DynamoDB refuses it.
pub fn apply_updates(
    def: &mut TableDef,
    body: &Value,
    now: f64,
    id: u64,
) -> Result<(), DynamoError> {
    let updates = body
        .get("GlobalSecondaryIndexUpdates")
        .and_then(Value::as_array)
        .ok_or_else(|| DynamoError::serialization("GlobalSecondaryIndexUpdates must be a list"))?;
    let online = updates
        .iter()
        .filter(|u| u.get("Create").is_some() || u.get("Delete").is_some())
        .count();
    if online > 1 {
        return Err(DynamoError::new(
            crate::error::Kind::LimitExceeded,
            "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table",
        ));
    }
    if updates.is_empty() {
        return Err(invalid("GlobalSecondaryIndexUpdates is empty"));
    }
    let on_demand =
        def.billing.get("BillingMode").and_then(Value::as_str) == Some("PAY_PER_REQUEST");
    for update in updates {
        if let Some(create) = update.get("Create") {
            let defined = definitions(def, body.get("AttributeDefinitions"))?;
            let mut index = IndexDef::parse(create, true, &defined, on_demand)?;
            if def.indexes.iter().any(|i| i.name == index.name) {
                return Err(invalid(format!(
                    "Attempting to create an index which already exists: {}",
                    index.name
                )));
            }
            if def.indexes.iter().filter(|i| i.global).count() >= MAX_GSIS {
                return Err(invalid(format!(
                    "GlobalSecondaryIndex count exceeds the per-table limit of {MAX_GSIS}"
                )));
            }
            index.state = IndexState::Creating {
                since: now,
                after: None,
            };
            index.id = id.max(1);
            def.indexes.push(index);
        } else if let Some(delete) = update.get("Delete") {
            let (at, _) = global_index(def, delete)?;
            // Its entries stay in storage, out of reach: an index of that name created
            // again gets another id.
            def.indexes.remove(at);
        } else if let Some(change) = update.get("Update") {
            let (at, name) = global_index(def, change)?;
            let index = &mut def.indexes[at];
            if on_demand {
                return Err(invalid(format!(
                    "ProvisionedThroughput should not be specified for index: {name} when BillingMode is PAY_PER_REQUEST"
                )));
            }
            index.throughput = change.get("ProvisionedThroughput").cloned();
        } else {
            return Err(invalid(
                "a GlobalSecondaryIndexUpdate needs Create, Update or Delete",
            ));
        }
    }
    Ok(())
}

/// One step of the backfill of table `name`'s index being created, at most
/// `partitions` partitions; `Ok(true)` when it made the index `ACTIVE`.
pub async fn step(env: &kit::Env, name: &str, partitions: usize) -> Result<bool, DynamoError> {
    let catalog = env.table(CATALOG)?;
    let Some(stored) = catalog.get(CATALOG_PK, name).await? else {
        return Ok(false);
    };
    let mut def: TableDef = kit::json::from_value(&stored.value).map_err(DynamoError::internal)?;
    let Some(at) = def
        .indexes
        .iter()
        .position(|i| matches!(i.state, IndexState::Creating { .. }))
    else {
        return Ok(false);
    };
    let index = def.indexes[at].clone();
    let IndexState::Creating { since, after } = &index.state else {
        return Ok(false);
    };
    let now_ms = env.clock.now().timestamp_millis();
    if ((now_ms as f64) - since * 1000.0) < GRACE_MS as f64 {
        return Ok(false);
    }
    let directory = env.table(&def.directory_name())?;
    let listed = directory
        .query(DIRECTORY_PK, after.as_deref(), partitions)
        .await?;
    let items = env.table(&def.storage_name())?;
    for partition in &listed.items {
        fill_partition(env, &def, &index, &*items, &partition.sk).await?;
    }
    let done = listed.next.is_none();
    def.indexes[at].state = if done {
        IndexState::Active
    } else {
        IndexState::Creating {
            since: *since,
            after: listed.items.last().map(|l| l.sk.clone()),
        }
    };
    let value = serde_json::to_value(&def).map_err(DynamoError::internal)?;
    // Lost to a concurrent change of the table: the next step does this one again
    // (entry writes are fenced, so doing them twice changes nothing).
    match catalog
        .put(CATALOG_PK, name, value, Cond::Version(stored.version))
        .await
    {
        Ok(_) => Ok(done),
        Err(StoreError::ConditionFailed) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Writes the entries of `index` for the items of partition `pk`.
async fn fill_partition(
    env: &kit::Env,
    def: &TableDef,
    index: &IndexDef,
    items: &dyn kit::table::Table,
    pk: &str,
) -> Result<(), DynamoError> {
    let entries = env.table(&index.storage_name(def))?;
    let mut after: Option<String> = None;
    loop {
        let page = items.query(pk, after.as_deref(), CHUNK).await?;
        for stored in &page.items {
            let Some(content) = crate::indexes::content(&stored.value) else {
                continue;
            };
            let item = crate::value::item_from_json(&content)?;
            // An item whose attribute cannot be this index's key stays out of it.
            let Ok(Some((ipk, isk))) = index.entry_key(def, &item) else {
                continue;
            };
            let write = EntryWrite {
                epoch: crate::indexes::epoch_of(&stored.value),
                value: Some(item_to_json(&index.project(def, &item))),
            };
            entries.mutate(&ipk, &isk, &write).await?;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(()),
        }
    }
}
