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
    /// The total and the table's share (no indexes here: all of it).
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
        if let Some(report) = self.0 {
            answer["ConsumedCapacity"] = consumed(report, table, units);
        }
    }

    /// Adds a batch's `ConsumedCapacity` (one entry per table, in request order) to
    /// `answer` when asked.
    pub fn attach_all(self, answer: &mut Value, tables: &[(String, f64)]) {
        if let Some(report) = self.0 {
            answer["ConsumedCapacity"] = tables
                .iter()
                .map(|(table, units)| consumed(report, table, *units))
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
fn consumed(report: Report, table: &str, units: f64) -> Value {
    let mut out = json!({"TableName": table, "CapacityUnits": units});
    if report == Report::Indexes {
        out["Table"] = json!({"CapacityUnits": units});
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
