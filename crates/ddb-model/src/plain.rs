//! Typed DynamoDB values ↔ plain JSON, for services that speak plain JSON over a
//! DynamoDB table (the movies API over `Movies`).
//!
//! Plain to typed maps as boto3's `TypeSerializer` maps Python values, so that a movie
//! imported through the movies API and the same movie put by boto3 from
//! `json.load(f, parse_float=Decimal)` are the same item: strings are `S`, numbers `N`,
//! booleans `BOOL`, `null` is `NULL`, arrays `L`, objects `M`. Typed to plain is the
//! reverse, plus what plain JSON has no type for: sets become arrays (`SS`/`NS` in
//! DynamoDB's order, `BS` as base64 strings), binary a base64 string. A number becomes
//! a JSON integer when it is one that fits 64 bits, else the nearest double (plain
//! JSON readers keep no more).

use crate::error::DynamoError;
use crate::value::{base64_encode, AttrValue, Item, Number};
use serde_json::{Map, Value};

/// The typed value of a plain JSON value.
pub fn to_attr(value: &Value) -> Result<AttrValue, DynamoError> {
    Ok(match value {
        Value::Null => AttrValue::Null,
        Value::Bool(b) => AttrValue::Bool(*b),
        Value::Number(n) => AttrValue::N(Number::parse(&n.to_string())?),
        Value::String(s) => AttrValue::S(s.clone()),
        Value::Array(items) => AttrValue::L(items.iter().map(to_attr).collect::<Result<_, _>>()?),
        Value::Object(fields) => AttrValue::M(to_item(fields)?),
    })
}

/// The typed item (or map) of a plain JSON object.
pub fn to_item(fields: &Map<String, Value>) -> Result<Item, DynamoError> {
    fields
        .iter()
        .map(|(k, v)| Ok((k.clone(), to_attr(v)?)))
        .collect::<Result<Vec<_>, _>>()
        .map(kit::sorted::map)
}

/// The plain JSON of a typed value.
pub fn from_attr(value: &AttrValue) -> Value {
    let bytes = |b: &[u8]| Value::String(base64_encode(b));
    match value {
        AttrValue::S(s) => Value::String(s.clone()),
        AttrValue::N(n) => number(n),
        AttrValue::B(b) => bytes(b),
        AttrValue::Bool(b) => Value::Bool(*b),
        AttrValue::Null => Value::Null,
        AttrValue::M(m) => Value::Object(kit::sorted::object(
            m.iter().map(|(k, v)| (k.clone(), from_attr(v))).collect(),
        )),
        AttrValue::L(l) => Value::Array(l.iter().map(from_attr).collect()),
        AttrValue::Ss(s) => Value::Array(s.iter().cloned().map(Value::String).collect()),
        AttrValue::Ns(n) => Value::Array(n.iter().map(number).collect()),
        AttrValue::Bs(b) => Value::Array(b.iter().map(|b| bytes(b)).collect()),
    }
}

fn number(n: &Number) -> Value {
    let text = n.to_text();
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(u) = text.parse::<u64>() {
        return Value::from(u);
    }
    // DynamoDB's range (below 1E+126) is inside a double's, so this is never null.
    text.parse::<f64>().map_or(Value::Null, Value::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_json_round_trips_through_typed_values() {
        let plain = json!({
            "rating": 8.3, "rank": 2, "genres": ["Action", "Drama"], "released": true,
            "sequel": null, "nested": {"big": 123456789012345678u64, "neg": -4, "tiny": 1.5e-7},
        });
        let typed = to_attr(&plain).unwrap();
        assert_eq!(
            typed.to_json()["M"]["rating"],
            json!({"N": "8.3"}),
            "a double becomes its shortest decimal"
        );
        assert_eq!(
            typed.to_json()["M"]["genres"]["L"][0],
            json!({"S": "Action"})
        );
        assert_eq!(from_attr(&typed), plain);
    }

    #[test]
    fn typed_values_without_a_plain_type_become_arrays_and_base64() {
        let typed = AttrValue::from_json(&json!({"M": {
            "ss": {"SS": ["b", "a"]}, "ns": {"NS": ["2", "1.50"]}, "bs": {"BS": ["AAE="]},
            "b": {"B": "/w=="}, "huge": {"N": "12345678901234567890123456789012345678"},
        }}))
        .unwrap();
        let plain = from_attr(&typed);
        assert_eq!(plain["ss"], json!(["b", "a"]));
        assert_eq!(plain["ns"], json!([2, 1.5]));
        assert_eq!(plain["bs"], json!(["AAE="]));
        assert_eq!(plain["b"], json!("/w=="));
        assert_eq!(plain["huge"], json!(1.2345678901234568e37));
    }

    #[test]
    fn to_attr_refuses_numbers_dynamodb_cannot_hold() {
        assert!(to_attr(&json!({"x": 1e300})).is_err());
    }
}
