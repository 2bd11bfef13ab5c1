//! `ReturnConsumedCapacity`: the capacity units DynamoDB would charge for a request,
//! by its arithmetic, reported as it reports them. Nothing is provisioned or
//! throttled here; SDK users log these figures and size tables by them.
//!
//! Reads are charged per 4 KB of the items read (a missing item as an empty one; a
//! Query or Scan sums its items before rounding), halved when eventually consistent;
//! writes per 1 KB of the larger of the item before and after (a batch's put by its
//! new item, its delete as 1). The whole item counts, whatever a projection returns.

use ddb_model::error::DynamoError;
use serde_json::{json, Value};

/// What a request asked to be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Report {
    /// The table's total.
    Total,
    /// The total, the table's share and each index's.
    Indexes,
}

/// What a request asked to be told of the capacity it consumed, read once from its
/// `ReturnConsumedCapacity`. Sizing an item parses it, so the operations size what
/// they read or wrote only when asked ([`Charge::units`]).
#[derive(Debug, Clone, Copy)]
pub struct Charge(Option<Report>);

impl Charge {
    /// The request's `ReturnConsumedCapacity`: nothing for `NONE` or absent; anything
    /// else is DynamoDB's `ValidationException`.
    pub fn of(body: &Value) -> Result<Self, DynamoError> {
        Ok(Self(match body.get("ReturnConsumedCapacity").and_then(Value::as_str) {
            None | Some("NONE") => None,
            Some("TOTAL") => Some(Report::Total),
            Some("INDEXES") => Some(Report::Indexes),
            Some(other) => return Err(DynamoError::validation(format!(
                "1 validation error detected: Value '{other}' at 'returnConsumedCapacity' failed to satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]"
            ))),
        }))
    }

    /// Whether the request asked.
    pub fn wanted(self) -> bool {
        self.0.is_some()
    }

    /// `units()` when the request asked; else 0, without computing them.
    pub fn units(
        self,
        units: impl FnOnce() -> Result<f64, DynamoError>,
    ) -> Result<f64, DynamoError> {
        if self.wanted() {
            units()
        } else {
            Ok(0.0)
        }
    }

    /// Adds the `ConsumedCapacity` of `units` on `table` to `answer` when asked.
    pub fn attach(self, answer: &mut Value, table: &str, units: f64) {
        self.attach_indexed(answer, table, units, &[]);
    }

    /// [`Charge::attach`] for a request that also consumed `indexes`: `TOTAL` sums
    /// them with the table's units, `INDEXES` lists each.
    pub fn attach_indexed(
        self,
        answer: &mut Value,
        table: &str,
        units: f64,
        indexes: &[IndexUnits],
    ) {
        if let Some(report) = self.0 {
            answer["ConsumedCapacity"] = consumed(report, table, units, indexes);
        }
    }

    /// Adds a batch's `ConsumedCapacity` (one entry per table, in request order) to
    /// `answer` when asked.
    pub fn attach_all(self, answer: &mut Value, tables: &[(String, f64)]) {
        if let Some(report) = self.0 {
            answer["ConsumedCapacity"] = tables
                .iter()
                .map(|(table, units)| consumed(report, table, *units, &[]))
                .collect();
        }
    }
}

/// Adds `units` to `table`'s total in `tables` (in the order tables are first met),
/// as [`Charge::attach_all`] reports them.
pub fn tally(tables: &mut Vec<(String, f64)>, table: &str, units: f64) {
    match tables.iter_mut().find(|(t, _)| t == table) {
        Some((_, total)) => *total += units,
        None => tables.push((table.to_owned(), units)),
    }
}

/// `ItemCollectionMetrics` of a write of `item` (an item or its key, typed JSON) into
/// `def`, when the request asked for `SIZE` and the table has a local index — the only
/// tables DynamoDB reports them for: the partition key, and the collection's size
/// estimate in GB (below 1 here: a partition holds at most 2 MB).
pub fn collection_metrics(
    body: &Value,
    def: &crate::schema::TableDef,
    item: &Value,
) -> Option<Value> {
    let asked = body
        .get("ReturnItemCollectionMetrics")
        .and_then(Value::as_str)
        == Some("SIZE");
    if !asked || !def.indexes.iter().any(|i| !i.global) {
        return None;
    }
    let key = item.get(&def.hash.name)?;
    Some(serde_json::json!({
        "ItemCollectionKey": {def.hash.name.clone(): key},
        "SizeEstimateRangeGB": [0.0, 1.0],
    }))
}

/// Checks `ReturnItemCollectionMetrics` (`SIZE` or `NONE`); what there is to report
/// is [`collection_metrics`].
pub fn check_collection_metrics(body: &Value) -> Result<(), DynamoError> {
    match body.get("ReturnItemCollectionMetrics").and_then(Value::as_str) {
        None | Some("NONE") | Some("SIZE") => Ok(()),
        Some(other) => Err(DynamoError::validation(format!(
            "1 validation error detected: Value '{other}' at 'returnItemCollectionMetrics' failed to satisfy constraint: Member must satisfy enum value set: [SIZE, NONE]"
        ))),
    }
}

/// The read units of `bytes` read at once.
pub fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.max(1).div_ceil(4096) as f64;
    if consistent {
        units
    } else {
        units / 2.0
    }
}

/// The write units of an item of `bytes` (the larger of before and after).
pub fn write_units(bytes: usize) -> f64 {
    bytes.max(1).div_ceil(1024) as f64
}

/// One table's `ConsumedCapacity`.
/// The units one index consumed: its name, whether it is global, the units.
pub type IndexUnits = (String, bool, f64);

fn consumed(report: Report, table: &str, units: f64, indexes: &[IndexUnits]) -> Value {
    let total = units + indexes.iter().map(|(_, _, u)| u).sum::<f64>();
    let mut out = json!({"TableName": table, "CapacityUnits": total});
    if report == Report::Indexes {
        out["Table"] = json!({"CapacityUnits": units});
        for (name, global, units) in indexes {
            let field = if *global {
                "GlobalSecondaryIndexes"
            } else {
                "LocalSecondaryIndexes"
            };
            if out.get(field).is_none() {
                out[field] = json!({});
            }
            out[field][name] = json!({"CapacityUnits": units});
        }
    }
    out
}

/// The write units each index of `def` consumes when an item goes from `old` to `new`
/// (`None`: absent): by the size of the item as projected, an entry moved to another
/// key costing its delete and its put, an entry unchanged nothing.
pub fn index_write_units(
    def: &crate::schema::TableDef,
    old: Option<&crate::value::Item>,
    new: Option<&crate::value::Item>,
) -> Vec<IndexUnits> {
    let mut out = Vec::new();
    for index in &def.indexes {
        let entry = |item: Option<&crate::value::Item>| {
            let item = item?;
            let key = index.entry_key(def, item).ok().flatten()?;
            Some((key, index.project(def, item)))
        };
        let size = |projected: &crate::value::Item| write_units(crate::value::item_size(projected));
        let units = match (entry(old), entry(new)) {
            (None, None) => continue,
            (Some((ko, po)), Some((kn, pn))) if ko == kn && po == pn => continue,
            (Some((ko, po)), Some((kn, pn))) if ko == kn => size(&po).max(size(&pn)),
            (Some((_, po)), Some((_, pn))) => size(&po) + size(&pn),
            (Some((_, p)), None) | (None, Some((_, p))) => size(&p),
        };
        out.push((index.name.clone(), index.global, units));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_round_up_per_block_and_halve_when_eventually_consistent() {
        assert_eq!(read_units(0, true), 1.0);
        assert_eq!(read_units(0, false), 0.5);
        assert_eq!(read_units(4096, true), 1.0);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(read_units(4097, false), 1.0);
        assert_eq!(write_units(0), 1.0);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
        assert_eq!(write_units(2049), 3.0);
    }
}
