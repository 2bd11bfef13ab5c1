//! The legacy parameters (DynamoDB's API before expressions, which older SDKs,
//! PynamoDB-era code and some ORMs still send), translated at the door into their
//! expression equivalents, so that everything after — the conditions shipped to a
//! Durable Object included — sees expressions only:
//!
//! - `AttributesToGet` → `ProjectionExpression`;
//! - `Expected` (+ `ConditionalOperator`) → `ConditionExpression`;
//! - `KeyConditions` → `KeyConditionExpression`;
//! - `QueryFilter` / `ScanFilter` (+ `ConditionalOperator`) → `FilterExpression`;
//! - `AttributeUpdates` → `UpdateExpression`.
//!
//! Names and values go in as placeholders of their own (`#legacy_n`, `:legacy_n`).
//! Mixing a legacy parameter with the expression it became is DynamoDB's
//! `ValidationException`, with its messages, checked first.

use crate::error::DynamoError;
use crate::operation::Operation;
use serde_json::{Map, Value};

/// The expression and legacy parameters of each operation, as DynamoDB checks them
/// against each other (its own lists: `ConditionalOperator` counts only for reads).
fn params_of(operation: Operation) -> (&'static [&'static str], &'static [&'static str]) {
    match operation {
        Operation::GetItem => (&["ProjectionExpression"], &["AttributesToGet"]),
        Operation::PutItem | Operation::DeleteItem => (&["ConditionExpression"], &["Expected"]),
        Operation::UpdateItem => (
            &["UpdateExpression", "ConditionExpression"],
            &["AttributeUpdates", "Expected"],
        ),
        Operation::Query => (
            &[
                "ProjectionExpression",
                "FilterExpression",
                "KeyConditionExpression",
            ],
            &[
                "AttributesToGet",
                "QueryFilter",
                "ConditionalOperator",
                "KeyConditions",
            ],
        ),
        Operation::Scan => (
            &["ProjectionExpression", "FilterExpression"],
            &["AttributesToGet", "ScanFilter", "ConditionalOperator"],
        ),
        _ => (&[], &[]),
    }
}

fn invalid(message: impl Into<String>) -> DynamoError {
    DynamoError::validation(format!(
        "One or more parameter values were invalid: {}",
        message.into()
    ))
}

/// Rewrites the legacy parameters of `body` (a request of `operation`; for
/// BatchGetItem, each table's part) into expressions.
pub fn translate(operation: Operation, body: &mut Value) -> Result<(), DynamoError> {
    if operation == Operation::BatchGetItem {
        if let Some(tables) = body.get_mut("RequestItems").and_then(Value::as_object_mut) {
            for request in tables.values_mut() {
                check_mix(request, &["ProjectionExpression"], &["AttributesToGet"])?;
                translate_params(request)?;
            }
        }
        return Ok(());
    }
    let (expressions, legacy) = params_of(operation);
    if expressions.is_empty() {
        return Ok(());
    }
    check_mix(body, expressions, legacy)?;
    translate_params(body)
}

/// DynamoDB's checks of expression against legacy parameters.
fn check_mix(body: &Value, expressions: &[&str], legacy: &[&str]) -> Result<(), DynamoError> {
    let given = |name: &str| body.get(name).is_some_and(|v| !v.is_null());
    let used: Vec<&str> = expressions.iter().copied().filter(|n| given(n)).collect();
    if !used.is_empty() {
        // KeyConditions may go with a filter or projection expression.
        let key_conditions_alone = given("KeyConditions") && !given("KeyConditionExpression");
        let old: Vec<&str> = legacy
            .iter()
            .copied()
            .filter(|n| given(n))
            .filter(|n| !(key_conditions_alone && *n == "KeyConditions"))
            .collect();
        if !old.is_empty() {
            return Err(DynamoError::validation(format!(
                "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
                old.join(", "),
                used.join(", ")
            )));
        }
    }
    if given("ExpressionAttributeNames") && used.is_empty() {
        return Err(DynamoError::validation(
            "ExpressionAttributeNames can only be specified when using expressions",
        ));
    }
    let value_expressions: Vec<&str> = expressions
        .iter()
        .filter(|e| **e != "ProjectionExpression")
        .copied()
        .collect();
    if given("ExpressionAttributeValues")
        && !value_expressions.is_empty()
        && !value_expressions.iter().any(|e| given(e))
    {
        let verb = if value_expressions.len() > 1 {
            "are"
        } else {
            "is"
        };
        return Err(DynamoError::validation(format!(
            "ExpressionAttributeValues can only be specified when using expressions: {} {verb} null",
            value_expressions.join(" and ")
        )));
    }
    Ok(())
}

/// Placeholders handed out while translating one request.
#[derive(Default)]
struct Names {
    names: Map<String, Value>,
    values: Map<String, Value>,
}

impl Names {
    fn name(&mut self, attribute: &str) -> String {
        let key = format!("#legacy_{}", self.names.len());
        self.names
            .insert(key.clone(), Value::String(attribute.to_owned()));
        key
    }

    fn value(&mut self, value: &Value) -> String {
        let key = format!(":legacy_{}", self.values.len());
        self.values.insert(key.clone(), value.clone());
        key
    }
}

fn translate_params(body: &mut Value) -> Result<(), DynamoError> {
    let Some(obj) = body.as_object_mut() else {
        return Ok(());
    };
    let mut names = Names::default();
    let operator = obj.remove("ConditionalOperator");
    let joiner = match operator.as_ref().and_then(Value::as_str) {
        None | Some("AND") => " AND ",
        Some("OR") => " OR ",
        Some(other) => {
            return Err(DynamoError::validation(format!(
                "1 validation error detected: Value '{other}' at 'conditionalOperator' failed to satisfy constraint: Member must satisfy enum value set: [OR, AND]"
            )))
        }
    };
    if let Some(attributes) = obj.remove("AttributesToGet") {
        let list = attributes.as_array().cloned().unwrap_or_default();
        let mut paths = Vec::new();
        for name in &list {
            let name = name
                .as_str()
                .ok_or_else(|| DynamoError::serialization("Unexpected field type"))?;
            if paths.iter().any(|(n, _)| n == name) {
                return Err(invalid(format!(
                    "Duplicate value in attribute name: {name}"
                )));
            }
            paths.push((name.to_owned(), names.name(name)));
        }
        let text: Vec<String> = paths.into_iter().map(|(_, p)| p).collect();
        obj.insert(
            "ProjectionExpression".into(),
            Value::String(text.join(", ")),
        );
    }
    if let Some(expected) = obj.remove("Expected") {
        if let Some(text) = conditions(&expected, joiner, &mut names, true)? {
            obj.insert("ConditionExpression".into(), Value::String(text));
        }
    }
    if let Some(keys) = obj.remove("KeyConditions") {
        if let Some(text) = conditions(&keys, " AND ", &mut names, false)? {
            obj.insert("KeyConditionExpression".into(), Value::String(text));
        }
    }
    for filter in ["QueryFilter", "ScanFilter"] {
        if let Some(filter) = obj.remove(filter) {
            if let Some(text) = conditions(&filter, joiner, &mut names, false)? {
                obj.insert("FilterExpression".into(), Value::String(text));
            }
        }
    }
    if let Some(updates) = obj.remove("AttributeUpdates") {
        if let Some(text) = updates_of(&updates, &mut names)? {
            obj.insert("UpdateExpression".into(), Value::String(text));
        }
    }
    // Placeholders join any the request has (KeyConditions beside a filter expression).
    for (field, map) in [
        ("ExpressionAttributeNames", names.names),
        ("ExpressionAttributeValues", names.values),
    ] {
        if map.is_empty() {
            continue;
        }
        let entry = obj
            .entry(field)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(existing) = entry.as_object_mut() {
            existing.extend(map);
        }
    }
    Ok(())
}

/// The expression of a map of legacy conditions (`Expected` when `expected`, which
/// also takes `Value`/`Exists`), joined by `joiner`; `None` when the map is empty.
fn conditions(
    map: &Value,
    joiner: &str,
    names: &mut Names,
    expected: bool,
) -> Result<Option<String>, DynamoError> {
    let map = map
        .as_object()
        .ok_or_else(|| DynamoError::serialization("Unexpected field type"))?;
    let mut parts = Vec::new();
    for (attribute, condition) in map {
        parts.push(condition_of(attribute, condition, names, expected)?);
    }
    if parts.is_empty() {
        return Ok(None);
    }
    let parts: Vec<String> = parts.into_iter().map(|p| format!("({p})")).collect();
    Ok(Some(parts.join(joiner)))
}

fn condition_of(
    attribute: &str,
    condition: &Value,
    names: &mut Names,
    expected: bool,
) -> Result<String, DynamoError> {
    let value = condition.get("Value").filter(|v| !v.is_null());
    let list = condition.get("AttributeValueList").filter(|v| !v.is_null());
    let operator = condition.get("ComparisonOperator").and_then(Value::as_str);
    let exists = condition.get("Exists").filter(|v| !v.is_null());
    if expected && value.is_some() && list.is_some() {
        return Err(invalid(format!(
            "Value and AttributeValueList cannot be used together for Attribute: {attribute}"
        )));
    }
    let Some(operator) = operator else {
        if !expected {
            return Err(invalid(format!(
                "ComparisonOperator is required for Attribute: {attribute}"
            )));
        }
        if list.is_some() {
            return Err(invalid(format!(
                "AttributeValueList can only be used with a ComparisonOperator for Attribute: {attribute}"
            )));
        }
        let exists_flag = exists.and_then(Value::as_bool);
        return match (exists_flag.unwrap_or(true), value) {
            (true, Some(value)) => {
                let (n, v) = (names.name(attribute), names.value(value));
                Ok(format!("{n} = {v}"))
            }
            (true, None) => Err(invalid(format!(
                "Value must be provided when Exists is {} for Attribute: {attribute}",
                if exists_flag.is_some() {
                    "true"
                } else {
                    "null"
                }
            ))),
            (false, None) => Ok(format!("attribute_not_exists({})", names.name(attribute))),
            (false, Some(_)) => Err(invalid(format!(
                "Value cannot be used when Exists is false for Attribute: {attribute}"
            ))),
        };
    };
    if expected && exists.is_some() {
        return Err(invalid(format!(
            "Exists and ComparisonOperator cannot be used together for Attribute: {attribute}"
        )));
    }
    let values: Vec<&Value> = match (list, value) {
        (Some(list), _) => list
            .as_array()
            .ok_or_else(|| DynamoError::serialization("Unexpected field type"))?
            .iter()
            .collect(),
        (None, Some(value)) => vec![value],
        (None, None) => Vec::new(),
    };
    let arity_ok = match operator {
        "EQ" | "NE" | "LE" | "LT" | "GE" | "GT" | "CONTAINS" | "NOT_CONTAINS" | "BEGINS_WITH" => {
            values.len() == 1
        }
        "NULL" | "NOT_NULL" => values.is_empty(),
        "IN" => !values.is_empty(),
        "BETWEEN" => values.len() == 2,
        other => {
            return Err(DynamoError::validation(format!(
                "1 validation error detected: Value '{other}' at 'comparisonOperator' failed to satisfy constraint: Member must satisfy enum value set: [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]"
            )))
        }
    };
    if !arity_ok {
        return Err(invalid(format!(
            "Invalid number of argument(s) for the {operator} ComparisonOperator"
        )));
    }
    let type_of = |v: &Value| {
        v.as_object()
            .and_then(|o| o.keys().next().cloned())
            .unwrap_or_default()
    };
    if let Some(first) = values.first() {
        let kind = type_of(first);
        if values.iter().any(|v| type_of(v) != kind) {
            return Err(invalid(
                "AttributeValues inside AttributeValueList must be of same type",
            ));
        }
        let allowed: &[&str] = match operator {
            "EQ" | "NE" => &["S", "N", "B", "SS", "NS", "BS", "BOOL", "NULL", "L", "M"],
            "BEGINS_WITH" => &["S", "B"],
            _ => &["S", "N", "B"],
        };
        if !allowed.contains(&kind.as_str()) {
            return Err(invalid(format!(
                "ComparisonOperator {operator} is not valid for {kind} AttributeValue type"
            )));
        }
    }
    let n = names.name(attribute);
    let v: Vec<String> = values.iter().map(|v| names.value(v)).collect();
    let first = v.first().cloned().unwrap_or_default();
    Ok(match operator {
        "EQ" => format!("{n} = {first}"),
        "NE" => format!("{n} <> {first}"),
        "LE" => format!("{n} <= {first}"),
        "LT" => format!("{n} < {first}"),
        "GE" => format!("{n} >= {first}"),
        "GT" => format!("{n} > {first}"),
        "NULL" => format!("attribute_not_exists({n})"),
        "NOT_NULL" => format!("attribute_exists({n})"),
        "CONTAINS" => format!("contains({n}, {first})"),
        "NOT_CONTAINS" => format!("NOT contains({n}, {first})"),
        "BEGINS_WITH" => format!("begins_with({n}, {first})"),
        "IN" => format!("{n} IN ({})", v.join(", ")),
        _ => format!(
            "{n} BETWEEN {first} AND {}",
            v.get(1).cloned().unwrap_or_default()
        ),
    })
}

/// The `UpdateExpression` of `AttributeUpdates`: `PUT` (the default) sets, `DELETE`
/// removes the attribute (or, with a value, those members of a set), `ADD` adds to a
/// number or set.
fn updates_of(updates: &Value, names: &mut Names) -> Result<Option<String>, DynamoError> {
    let updates = updates
        .as_object()
        .ok_or_else(|| DynamoError::serialization("Unexpected field type"))?;
    let (mut set, mut remove, mut add, mut delete) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (attribute, update) in updates {
        let value = update.get("Value").filter(|v| !v.is_null());
        let action = update
            .get("Action")
            .and_then(Value::as_str)
            .unwrap_or("PUT");
        let n = names.name(attribute);
        match (action, value) {
            ("PUT", Some(value)) => set.push(format!("{n} = {}", names.value(value))),
            ("PUT", None) => {
                return Err(invalid(format!(
                    "Only DELETE action is allowed when no attribute value is specified: {attribute}"
                )))
            }
            ("DELETE", None) => remove.push(n),
            ("DELETE", Some(value)) => delete.push(format!("{n} {}", names.value(value))),
            ("ADD", Some(value)) => add.push(format!("{n} {}", names.value(value))),
            ("ADD", None) => {
                return Err(invalid(format!(
                    "Only DELETE action is allowed when no attribute value is specified: {attribute}"
                )))
            }
            (other, _) => {
                return Err(DynamoError::validation(format!(
                    "1 validation error detected: Value '{other}' at 'attributeUpdates.{attribute}.member.action' failed to satisfy constraint: Member must satisfy enum value set: [ADD, PUT, DELETE]"
                )))
            }
        }
    }
    let mut clauses = Vec::new();
    for (keyword, list) in [
        ("SET", set),
        ("REMOVE", remove),
        ("ADD", add),
        ("DELETE", delete),
    ] {
        if !list.is_empty() {
            clauses.push(format!("{keyword} {}", list.join(", ")));
        }
    }
    Ok((!clauses.is_empty()).then(|| clauses.join(" ")))
}
