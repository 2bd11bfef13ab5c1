//! The JSON types of the request parameters, checked before any operation runs, as
//! DynamoDB's front end does: a value of the wrong type is a `SerializationException`
//! (`"TableName": 5`), never a `ValidationException`. The messages are those of
//! DynamoDB's (Coral) deserializer, as dynalite reproduces them.

use ddb_model::error::DynamoError;
use serde_json::Value;

/// A parameter's type as the service model declares it.
#[derive(Clone, Copy)]
pub(crate) enum Type {
    String,
    Integer,
    Boolean,
    List,
    /// A map of attribute values (`Key`, `Item`, …).
    AttributeMap,
    /// A map of strings (`ExpressionAttributeNames`).
    StringMap,
    /// A structure of named members (`TimeToLiveSpecification`, the service model's
    /// shape name), checked by its own [`check_fields`].
    Structure(&'static str),
}

/// Every top-level parameter of the served operations whose type is one of [`Type`]
/// (each name has one type across operations).
const PARAMS: &[(&str, Type)] = &[
    ("TableName", Type::String),
    ("ConditionExpression", Type::String),
    ("UpdateExpression", Type::String),
    ("ProjectionExpression", Type::String),
    ("KeyConditionExpression", Type::String),
    ("FilterExpression", Type::String),
    ("ReturnValues", Type::String),
    ("ReturnConsumedCapacity", Type::String),
    ("ReturnItemCollectionMetrics", Type::String),
    ("ReturnValuesOnConditionCheckFailure", Type::String),
    ("Select", Type::String),
    ("IndexName", Type::String),
    ("ExclusiveStartTableName", Type::String),
    ("BillingMode", Type::String),
    ("ConditionalOperator", Type::String),
    ("ResourceArn", Type::String),
    ("ClientRequestToken", Type::String),
    ("Limit", Type::Integer),
    ("Segment", Type::Integer),
    ("TotalSegments", Type::Integer),
    ("ConsistentRead", Type::Boolean),
    ("ScanIndexForward", Type::Boolean),
    ("KeySchema", Type::List),
    ("AttributeDefinitions", Type::List),
    ("AttributesToGet", Type::List),
    ("Tags", Type::List),
    ("TagKeys", Type::List),
    ("GlobalSecondaryIndexUpdates", Type::List),
    ("TransactItems", Type::List),
    ("Key", Type::AttributeMap),
    ("Item", Type::AttributeMap),
    ("ExclusiveStartKey", Type::AttributeMap),
    ("ExpressionAttributeValues", Type::AttributeMap),
    ("ExpressionAttributeNames", Type::StringMap),
    (
        "TimeToLiveSpecification",
        Type::Structure("TimeToLiveSpecification"),
    ),
];

/// Refuses the first parameter of `body` whose JSON type is not its declared one
/// (`null` stands for absent, as there).
pub fn check(body: &Value) -> Result<(), DynamoError> {
    check_fields(body, PARAMS)
}

/// Refuses the first of `fields` of `structure` whose JSON type is not its declared one.
pub(crate) fn check_fields(structure: &Value, fields: &[(&str, Type)]) -> Result<(), DynamoError> {
    for (name, kind) in fields {
        if let Some(value) = structure.get(*name).filter(|v| !v.is_null()) {
            if let Some(message) = mismatch(value, *kind) {
                return Err(DynamoError::serialization(message));
            }
        }
    }
    Ok(())
}

fn scalar(value: &Value) -> Option<&'static str> {
    match value {
        Value::Bool(true) => Some("TRUE_VALUE"),
        Value::Bool(false) => Some("FALSE_VALUE"),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some("NUMBER_VALUE"),
        Value::Number(_) => Some("DECIMAL_VALUE"),
        Value::String(_) => Some("STRING_VALUE"),
        _ => None,
    }
}

const STRUCTURE: &str = "Start of structure or map found where not expected";

fn mismatch(value: &Value, kind: Type) -> Option<String> {
    let java = |t: &str| format!("Unrecognized collection type class java.lang.{t}");
    match (kind, value) {
        (Type::String, Value::String(_))
        | (Type::Integer, Value::Number(_))
        | (Type::List, Value::Array(_))
        | (Type::AttributeMap | Type::StringMap | Type::Structure(_), Value::Object(_)) => None,
        // The deserializer reads "true", "1" and "yes" (any case) as booleans.
        (Type::Boolean, Value::Bool(_)) => None,
        (Type::Boolean, Value::String(s)) => {
            let s = s.to_ascii_uppercase();
            let known = ["TRUE", "1", "YES", "FALSE", "0", "NO"].contains(&s.as_str());
            (!known).then(|| "Unexpected token received from parser".to_owned())
        }
        (Type::String | Type::Integer | Type::Boolean, Value::Object(_))
        | (Type::List, Value::Object(_)) => Some(STRUCTURE.to_owned()),
        (Type::String, Value::Array(_)) => Some(java("String")),
        (Type::Integer, Value::Array(_)) => Some(java("Integer")),
        (Type::Boolean, Value::Array(_)) => Some(java("Boolean")),
        (Type::String, v) => scalar(v).map(|s| format!("{s} cannot be converted to String")),
        (Type::Integer, v) => scalar(v).map(|s| format!("{s} cannot be converted to Integer")),
        (Type::Boolean, v) => scalar(v).map(|s| format!("{s} cannot be converted to Boolean")),
        (Type::List | Type::AttributeMap | Type::StringMap | Type::Structure(_), _)
            if !value.is_array() =>
        {
            Some("Unexpected field type".to_owned())
        }
        (Type::AttributeMap, _) => Some(
            "Unrecognized collection type java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue>"
                .to_owned(),
        ),
        (Type::StringMap, _) => Some(
            "Unrecognized collection type java.util.Map<java.lang.String, java.lang.String>"
                .to_owned(),
        ),
        (Type::Structure(shape), _) => Some(format!(
            "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.{shape}"
        )),
        (Type::List, _) => None,
    }
}

/// A boolean parameter as the deserializer reads it (`true`, or `"true"`, `"1"`,
/// `"yes"` in any case); `None` when absent. Its type is checked first.
pub(crate) fn boolean(value: Option<&Value>) -> Option<bool> {
    match value? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => Some(["TRUE", "1", "YES"].contains(&s.to_ascii_uppercase().as_str())),
        _ => None,
    }
}

/// DynamoDB's `ValidationException` for a required member missing at `path` (the
/// service model's lower-camel path: `transactItems.1.member.put.item`).
pub(crate) fn null_at(path: &str) -> DynamoError {
    DynamoError::validation(format!(
        "1 validation error detected: Value null at '{path}' failed to satisfy constraint: Member must not be null"
    ))
}
