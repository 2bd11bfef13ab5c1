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
pub enum Report {
    /// The table's total.
    Total,
    /// The total and the table's share (no indexes here: all of it).
    Indexes,
}

/// The request's `ReturnConsumedCapacity`: `None` for `NONE` or absent; anything
/// else is DynamoDB's `ValidationException`.
pub fn requested(body: &Value) -> Result<Option<Report>, DynamoError> {
    match body.get("ReturnConsumedCapacity").and_then(Value::as_str) {
        None | Some("NONE") => Ok(None),
        Some("TOTAL") => Ok(Some(Report::Total)),
        Some("INDEXES") => Ok(Some(Report::Indexes)),
        Some(other) => Err(DynamoError::validation(format!(
            "1 validation error detected: Value '{other}' at 'returnConsumedCapacity' failed to satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]"
        ))),
    }
}

/// Checks `ReturnItemCollectionMetrics` (`SIZE` or `NONE`). There is nothing to
/// report: DynamoDB returns item collection metrics only for tables with local
/// secondary indexes, which are not served here.
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
pub fn consumed(report: Report, table: &str, units: f64) -> Value {
    let mut out = json!({"TableName": table, "CapacityUnits": units});
    if report == Report::Indexes {
        out["Table"] = json!({"CapacityUnits": units});
    }
    out
}

/// Adds the `ConsumedCapacity` of `units` on `table` to `answer` when `body` asked.
pub fn attach(
    answer: &mut Value,
    body: &Value,
    table: &str,
    units: f64,
) -> Result<(), DynamoError> {
    if let Some(report) = requested(body)? {
        answer["ConsumedCapacity"] = consumed(report, table, units);
    }
    Ok(())
}

/// Adds a batch's `ConsumedCapacity` (one entry per table, in request order) to
/// `answer` when `body` asked.
pub fn attach_all(
    answer: &mut Value,
    body: &Value,
    tables: &[(String, f64)],
) -> Result<(), DynamoError> {
    if let Some(report) = requested(body)? {
        answer["ConsumedCapacity"] = tables
            .iter()
            .map(|(table, units)| consumed(report, table, *units))
            .collect();
    }
    Ok(())
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
