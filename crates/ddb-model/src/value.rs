//! DynamoDB's attribute values, parsed at the boundary into types that keep exactly what
//! DynamoDB keeps: numbers as 38-digit decimals in normal form, binary as bytes, sets as
//! sets. What is written reads back identically.
//!
//! Numbers follow DynamoDB: an optional sign, digits with an optional point, an optional
//! exponent, nothing else (no spaces, `NaN` or `Infinity`); at most 38 significant
//! digits; magnitudes from 1E-130 to below 1E+126. They are written back in plain
//! decimal notation without leading or trailing zeros (`"0001.50"` → `"1.5"`,
//! `"1e2"` → `"100"`, `"-0"` → `"0"`).

use crate::error::DynamoError;
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::collections::BTreeMap;

const MAX_DIGITS: usize = 38;
/// DynamoDB's limit on how deep maps and lists nest in an item.
const MAX_NESTING: usize = 32;
const MAX_EXPONENT: i64 = 125;
const MIN_EXPONENT: i64 = -130;

/// A DynamoDB number: `0.` or `±d₁.d₂…dₙ × 10^exponent`, `d₁` and `dₙ` non-zero.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Number {
    negative: bool,
    /// Significant digits as ASCII; empty for zero.
    digits: String,
    exponent: i64,
}

/// An optional `+`/`-` at `bytes[*i]`, stepped over; `true` for `-`.
fn sign(bytes: &[u8], i: &mut usize) -> bool {
    match bytes.get(*i) {
        Some(b'-') => {
            *i += 1;
            true
        }
        Some(b'+') => {
            *i += 1;
            false
        }
        _ => false,
    }
}

fn not_numeric() -> DynamoError {
    DynamoError::validation("The parameter cannot be converted to a numeric value")
}

impl From<u16> for Number {
    /// A whole number; every `u16` is inside DynamoDB's range and precision.
    fn from(n: u16) -> Self {
        let text = n.to_string();
        let digits = text.trim_end_matches('0');
        if digits.is_empty() {
            return Self::zero();
        }
        Self {
            negative: false,
            digits: digits.to_owned(),
            exponent: text.len() as i64 - 1,
        }
    }
}

impl Number {
    pub fn zero() -> Self {
        Self {
            negative: false,
            digits: String::new(),
            exponent: 0,
        }
    }

    /// Parses DynamoDB's number syntax and enforces its range and precision.
    pub fn parse(text: &str) -> Result<Self, DynamoError> {
        let bytes = text.as_bytes();
        let mut i = 0;
        let negative = sign(bytes, &mut i);
        let mut mantissa = String::new();
        let mut int_len: i64 = 0;
        let mut seen_point = false;
        let mut any_digit = false;
        while let Some(&b) = bytes.get(i) {
            match b {
                b'0'..=b'9' => {
                    any_digit = true;
                    mantissa.push(char::from(b));
                    if !seen_point {
                        int_len += 1;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                _ => break,
            }
            i += 1;
        }
        if !any_digit {
            return Err(not_numeric());
        }
        let mut exp: i64 = 0;
        if let Some(b'e' | b'E') = bytes.get(i) {
            i += 1;
            let exp_negative = sign(bytes, &mut i);
            let start = i;
            while let Some(b'0'..=b'9') = bytes.get(i) {
                // Saturates far past the range, which the range check then refuses.
                exp = (exp * 10 + i64::from(bytes[i] - b'0')).min(1_000_000_000);
                i += 1;
            }
            if i == start {
                return Err(not_numeric());
            }
            if exp_negative {
                exp = -exp;
            }
        }
        if i != bytes.len() {
            return Err(not_numeric());
        }
        let leading = mantissa.bytes().take_while(|&b| b == b'0').count();
        let digits = mantissa[leading..].trim_end_matches('0').to_owned();
        if digits.is_empty() {
            return Ok(Self::zero());
        }
        let exponent = exp + int_len - 1 - leading as i64;
        Self::checked(negative, digits, exponent)
    }

    fn checked(negative: bool, digits: String, exponent: i64) -> Result<Self, DynamoError> {
        if digits.len() > MAX_DIGITS {
            return Err(DynamoError::validation(
                "Attempting to store more than 38 significant digits in a Number",
            ));
        }
        if exponent > MAX_EXPONENT {
            return Err(DynamoError::validation(
                "Number overflow. Attempting to store a number with magnitude larger than supported range",
            ));
        }
        if exponent < MIN_EXPONENT {
            return Err(DynamoError::validation(
                "Number underflow. Attempting to store a number with magnitude smaller than supported range",
            ));
        }
        Ok(Self {
            negative,
            digits,
            exponent,
        })
    }

    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// Plain decimal notation, as DynamoDB returns numbers.
    pub fn to_text(&self) -> String {
        if self.is_zero() {
            return "0".into();
        }
        let mut out = String::new();
        if self.negative {
            out.push('-');
        }
        let n = self.digits.len() as i64;
        if self.exponent >= n - 1 {
            out.push_str(&self.digits);
            out.extend(std::iter::repeat_n('0', (self.exponent - (n - 1)) as usize));
        } else if self.exponent >= 0 {
            let (int, frac) = self.digits.split_at(self.exponent as usize + 1);
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-self.exponent - 1) as usize));
            out.push_str(&self.digits);
        }
        out
    }

    /// A string whose byte order is the numbers' order, for sort keys: zero is `1`;
    /// positives `2`, the exponent (offset, 3 digits), the digits; negatives `0`, the
    /// exponent and the digits complemented, then `~`, which sorts after any digit, so
    /// that -12 sorts after -12.3.
    pub fn order_key(&self) -> String {
        if self.is_zero() {
            return "1".into();
        }
        let exp = (self.exponent - MIN_EXPONENT) as u32;
        if self.negative {
            let digits: String = self
                .digits
                .bytes()
                .map(|b| char::from(b'9' - (b - b'0')))
                .collect();
            format!("0{:03}{digits}~", 255 - exp)
        } else {
            format!("2{exp:03}{}", self.digits)
        }
    }
}

/// Unsigned decimal digit strings (no leading zeros, "" = 0), for exact arithmetic.
fn cmp_digits(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn add_digits(a: &str, b: &str) -> String {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut out = Vec::with_capacity(a.len().max(b.len()) + 1);
    let (mut i, mut j, mut carry) = (a.len(), b.len(), 0u8);
    while i > 0 || j > 0 || carry > 0 {
        let x = if i > 0 {
            i -= 1;
            a[i] - b'0'
        } else {
            0
        };
        let y = if j > 0 {
            j -= 1;
            b[j] - b'0'
        } else {
            0
        };
        let sum = x + y + carry;
        out.push(b'0' + sum % 10);
        carry = sum / 10;
    }
    out.reverse();
    trim_leading(out)
}

/// `a - b` for `a >= b`.
fn sub_digits(a: &str, b: &str) -> String {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut out = Vec::with_capacity(a.len());
    let (mut i, mut j, mut borrow) = (a.len(), b.len(), 0i8);
    while i > 0 {
        i -= 1;
        let x = (a[i] - b'0') as i8 - borrow;
        let y = if j > 0 {
            j -= 1;
            (b[j] - b'0') as i8
        } else {
            0
        };
        let (digit, next) = if x < y { (x + 10 - y, 1) } else { (x - y, 0) };
        out.push(b'0' + digit as u8);
        borrow = next;
    }
    out.reverse();
    trim_leading(out)
}

fn trim_leading(digits: Vec<u8>) -> String {
    let start = digits.iter().take_while(|&&d| d == b'0').count();
    String::from_utf8_lossy(&digits[start..]).into_owned()
}

impl Number {
    /// The exponent of the last significant digit.
    fn low_exponent(&self) -> i64 {
        self.exponent - (self.digits.len() as i64 - 1)
    }

    /// The digits scaled to the power `low` (≤ own low exponent), as an integer.
    fn scaled(&self, low: i64) -> String {
        let mut s = self.digits.clone();
        s.extend(std::iter::repeat_n(
            '0',
            (self.low_exponent() - low) as usize,
        ));
        s
    }

    /// `self + other`, exact, refused like DynamoDB when the sum leaves the range or
    /// needs more than 38 digits.
    pub fn add(&self, other: &Number) -> Result<Number, DynamoError> {
        if self.is_zero() {
            return Ok(other.clone());
        }
        if other.is_zero() {
            return Ok(self.clone());
        }
        let low = self.low_exponent().min(other.low_exponent());
        let (a, b) = (self.scaled(low), other.scaled(low));
        let (negative, magnitude) = if self.negative == other.negative {
            (self.negative, add_digits(&a, &b))
        } else {
            match cmp_digits(&a, &b) {
                Ordering::Equal => return Ok(Number::zero()),
                Ordering::Greater => (self.negative, sub_digits(&a, &b)),
                Ordering::Less => (other.negative, sub_digits(&b, &a)),
            }
        };
        let exponent = low + magnitude.len() as i64 - 1;
        let digits = magnitude.trim_end_matches('0').to_owned();
        Number::checked(negative, digits, exponent)
    }

    pub fn negated(&self) -> Number {
        Number {
            negative: !self.negative && !self.is_zero(),
            ..self.clone()
        }
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Self) -> Ordering {
        // One sort: the order keys (checked against this in the tests).
        self.order_key().cmp(&other.order_key())
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// An attribute value of any DynamoDB type.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    S(String),
    N(Number),
    B(Vec<u8>),
    Bool(bool),
    Null,
    M(BTreeMap<String, AttrValue>),
    L(Vec<AttrValue>),
    Ss(Vec<String>),
    Ns(Vec<Number>),
    Bs(Vec<Vec<u8>>),
}

fn empty_value() -> DynamoError {
    DynamoError::validation(
        "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
    )
}

fn wrong_json(what: &str, key: &str) -> DynamoError {
    DynamoError::serialization(format!("{key} must be {what}"))
}

fn base64_decode(text: &str) -> Result<Vec<u8>, DynamoError> {
    kit::base64::decode(text, kit::base64::Form::Standard)
        .ok_or_else(|| DynamoError::serialization("Base64 encoded binary value is invalid"))
}

pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    kit::base64::encode(bytes, kit::base64::Form::Standard)
}

/// Refuses a set with a repeated member, naming the first repeat; O(n log n), since a
/// set may have as many members as 400 KB of item holds.
fn no_duplicates<T: Ord + std::fmt::Debug>(items: &[T]) -> Result<(), DynamoError> {
    match kit::sorted::first_repeat(items).and_then(|i| items.get(i)) {
        Some(a) => Err(DynamoError::validation(format!(
            "One or more parameter values were invalid: Input collection contains duplicates: {a:?}"
        ))),
        None => Ok(()),
    }
}

fn strings<'a>(key: &str, value: &'a Value) -> Result<Vec<&'a str>, DynamoError> {
    let array = value
        .as_array()
        .ok_or_else(|| wrong_json("a list of strings", key))?;
    array
        .iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| wrong_json("a list of strings", key))
        })
        .collect()
}

fn empty_set(kind: &str) -> DynamoError {
    DynamoError::validation(format!(
        "One or more parameter values were invalid: An {kind} set  may not be empty"
    ))
}

impl AttrValue {
    /// Parses DynamoDB's JSON form (`{"S": "…"}`, `{"N": "…"}`, …).
    pub fn from_json(json: &Value) -> Result<Self, DynamoError> {
        Self::from_json_at(json, 0)
    }

    /// [`Self::from_json`] of a value inside `depth` maps and lists.
    fn from_json_at(json: &Value, depth: usize) -> Result<Self, DynamoError> {
        let object = json
            .as_object()
            .ok_or_else(|| DynamoError::serialization("An AttributeValue must be an object"))?;
        let known = ["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"];
        let mut present = object.iter().filter(|(k, _)| known.contains(&k.as_str()));
        let (key, value) = present.next().ok_or_else(empty_value)?;
        if present.next().is_some() {
            return Err(DynamoError::validation(
                "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
            ));
        }
        if matches!(key.as_str(), "M" | "L") && depth == MAX_NESTING {
            return Err(DynamoError::validation(
                "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit",
            ));
        }
        Ok(match key.as_str() {
            "S" => AttrValue::S(
                value
                    .as_str()
                    .ok_or_else(|| wrong_json("a string", key))?
                    .to_owned(),
            ),
            "N" => AttrValue::N(Number::parse(
                value.as_str().ok_or_else(|| wrong_json("a string", key))?,
            )?),
            "B" => AttrValue::B(base64_decode(
                value.as_str().ok_or_else(|| wrong_json("a string", key))?,
            )?),
            "BOOL" => AttrValue::Bool(value.as_bool().ok_or_else(|| wrong_json("a boolean", key))?),
            "NULL" => match value.as_bool() {
                Some(true) => AttrValue::Null,
                Some(false) => {
                    return Err(DynamoError::validation(
                        "One or more parameter values were invalid: Null attribute value types must have the value of true",
                    ))
                }
                None => return Err(wrong_json("a boolean", key)),
            },
            "M" => AttrValue::M(
                value
                    .as_object()
                    .ok_or_else(|| wrong_json("an object", key))?
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), AttrValue::from_json_at(v, depth + 1)?)))
                    .collect::<Result<Vec<_>, DynamoError>>()
                    .map(kit::sorted::map)?,
            ),
            "L" => AttrValue::L(
                value
                    .as_array()
                    .ok_or_else(|| wrong_json("a list", key))?
                    .iter()
                    .map(|v| AttrValue::from_json_at(v, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            "SS" => {
                let items: Vec<String> = strings(key, value)?.into_iter().map(str::to_owned).collect();
                if items.is_empty() {
                    return Err(empty_set("string"));
                }
                no_duplicates(&items)?;
                AttrValue::Ss(items)
            }
            "NS" => {
                let items = strings(key, value)?
                    .into_iter()
                    .map(Number::parse)
                    .collect::<Result<Vec<_>, _>>()?;
                if items.is_empty() {
                    return Err(empty_set("number"));
                }
                no_duplicates(&items)?;
                AttrValue::Ns(items)
            }
            _ => {
                let items = strings(key, value)?
                    .into_iter()
                    .map(base64_decode)
                    .collect::<Result<Vec<_>, _>>()?;
                if items.is_empty() {
                    return Err(empty_set("binary"));
                }
                no_duplicates(&items)?;
                AttrValue::Bs(items)
            }
        })
    }

    /// DynamoDB's JSON form, as a read returns it.
    pub fn to_json(&self) -> Value {
        let one = |key: &str, value: Value| {
            let mut map = Map::new();
            map.insert(key.to_owned(), value);
            Value::Object(map)
        };
        match self {
            AttrValue::S(s) => one("S", Value::String(s.clone())),
            AttrValue::N(n) => one("N", Value::String(n.to_text())),
            AttrValue::B(b) => one("B", Value::String(base64_encode(b))),
            AttrValue::Bool(b) => one("BOOL", Value::Bool(*b)),
            AttrValue::Null => one("NULL", Value::Bool(true)),
            AttrValue::M(m) => one(
                "M",
                Value::Object(kit::sorted::object(
                    m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
                )),
            ),
            AttrValue::L(l) => one(
                "L",
                Value::Array(l.iter().map(AttrValue::to_json).collect()),
            ),
            AttrValue::Ss(s) => one(
                "SS",
                Value::Array(s.iter().map(|s| Value::String(s.clone())).collect()),
            ),
            AttrValue::Ns(n) => one(
                "NS",
                Value::Array(n.iter().map(|n| Value::String(n.to_text())).collect()),
            ),
            AttrValue::Bs(b) => one(
                "BS",
                Value::Array(b.iter().map(|b| Value::String(base64_encode(b))).collect()),
            ),
        }
    }

    /// DynamoDB's type name (`attribute_type` takes these).
    pub fn type_name(&self) -> &'static str {
        match self {
            AttrValue::S(_) => "S",
            AttrValue::N(_) => "N",
            AttrValue::B(_) => "B",
            AttrValue::Bool(_) => "BOOL",
            AttrValue::Null => "NULL",
            AttrValue::M(_) => "M",
            AttrValue::L(_) => "L",
            AttrValue::Ss(_) => "SS",
            AttrValue::Ns(_) => "NS",
            AttrValue::Bs(_) => "BS",
        }
    }

    /// The bytes DynamoDB counts for this value toward the 400 KB item limit (UTF-8
    /// length of strings, raw length of binary, roughly 1 byte per 2 digits + 1 for
    /// numbers, 1 byte for booleans and nulls, 3 bytes of overhead per map or list
    /// plus 1 per element).
    pub fn size(&self) -> usize {
        match self {
            AttrValue::S(s) => s.len(),
            AttrValue::N(n) => n.digits.len().div_ceil(2) + 1,
            AttrValue::B(b) => b.len(),
            AttrValue::Bool(_) | AttrValue::Null => 1,
            AttrValue::M(m) => 3 + m.iter().map(|(k, v)| k.len() + v.size() + 1).sum::<usize>(),
            AttrValue::L(l) => 3 + l.iter().map(|v| v.size() + 1).sum::<usize>(),
            AttrValue::Ss(s) => s.iter().map(String::len).sum(),
            AttrValue::Ns(n) => n.iter().map(|n| n.digits.len().div_ceil(2) + 1).sum(),
            AttrValue::Bs(b) => b.iter().map(Vec::len).sum(),
        }
    }
}

/// DynamoDB's item size limit.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// An item: attribute name → value.
pub type Item = BTreeMap<String, AttrValue>;

/// Parses an item in DynamoDB's JSON form.
pub fn item_from_json(json: &Value) -> Result<Item, DynamoError> {
    json.as_object()
        .ok_or_else(|| DynamoError::serialization("An item must be an object"))?
        .iter()
        .map(|(k, v)| Ok((k.clone(), AttrValue::from_json(v)?)))
        .collect::<Result<Vec<_>, _>>()
        .map(kit::sorted::map)
}

pub fn item_to_json(item: &Item) -> Value {
    Value::Object(kit::sorted::object(
        item.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
    ))
}

/// DynamoDB's item size: each attribute's name plus its value.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + v.size()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn from_json_names_the_first_repeat_of_a_large_set_and_accepts_it_without() {
        let mut members: Vec<Value> = (0..200_000).map(|i| Value::from(format!("m{i}"))).collect();
        let distinct = AttrValue::from_json(&serde_json::json!({ "SS": members.clone() }));
        assert!(matches!(distinct, Ok(AttrValue::Ss(ref s)) if s.len() == 200_000));
        members.insert(150_000, Value::from("m7"));
        members.push(Value::from("m3"));
        let err = AttrValue::from_json(&serde_json::json!({ "SS": members })).unwrap_err();
        assert!(
            err.message.ends_with("duplicates: \"m7\""),
            "{}",
            err.message
        );
        let numbers = serde_json::json!({"NS": ["1", "2", "1.0"]});
        let err = AttrValue::from_json(&numbers).unwrap_err();
        assert!(err.message.contains("duplicates"), "{}", err.message);
    }

    #[test]
    fn from_json_refuses_maps_and_lists_nested_past_32_levels() {
        let nested = |depth: usize| {
            let mut value = serde_json::json!({"N": "1"});
            for i in 0..depth {
                value = if i % 2 == 0 {
                    serde_json::json!({ "L": [value] })
                } else {
                    serde_json::json!({ "M": { "k": value } })
                };
            }
            value
        };
        assert!(AttrValue::from_json(&nested(32)).is_ok());
        let err = AttrValue::from_json(&nested(33)).unwrap_err();
        assert!(
            err.message.starts_with("Nesting Levels have exceeded"),
            "{}",
            err.message
        );
    }

    fn n(text: &str) -> Number {
        Number::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn whole_numbers_convert_to_the_number_their_text_parses_to() {
        for whole in [0u16, 1, 10, 2013, 9999, 1000, u16::MAX] {
            assert_eq!(Number::from(whole), n(&whole.to_string()), "{whole}");
        }
    }

    #[test]
    fn numbers_parse_into_dynamodb_normal_form() {
        for (input, normal) in [
            ("3", "3"),
            ("-7.1234", "-7.1234"),
            ("-17e5", "-1700000"),
            ("-17.4E37", "-174000000000000000000000000000000000000"),
            ("+3", "3"),
            (".123", "0.123"),
            ("0001.23", "1.23"),
            ("1e+5", "100000"),
            ("0e1000", "0"),
            ("-0", "0"),
            ("0.000", "0"),
            ("1.50", "1.5"),
            ("100", "100"),
            ("1e-3", "0.001"),
            ("12.5e-1", "1.25"),
            (
                "3.1415926535897932384626433832795028841",
                "3.1415926535897932384626433832795028841",
            ),
        ] {
            assert_eq!(n(input).to_text(), normal, "{input}");
        }
    }

    #[test]
    fn numbers_outside_dynamodb_syntax_range_or_precision_are_refused() {
        for bad in [
            "NaN",
            "Infinity",
            "-Infinity",
            "dog",
            " 1",
            "1 ",
            "",
            "-",
            ".",
            "1e",
            "1e+",
            "1.2.3",
            "0x10",
            "1_000",
        ] {
            let e = Number::parse(bad).unwrap_err();
            assert!(e.message.contains("numeric"), "{bad:?}: {e}");
        }
        for (bad, why) in [
            ("1e126", "overflow"),
            ("11e125", "overflow"),
            ("-1e126", "overflow"),
            ("1.0e100000000", "overflow"),
            ("1e-131", "underflow"),
            ("0.9e-130", "underflow"),
            (
                "3.14159265358979323846264338327950288419",
                "38 significant digits",
            ),
        ] {
            let e = Number::parse(bad).unwrap_err();
            assert!(e.message.contains(why), "{bad}: {e}");
        }
        for good in ["1e125", "9.99999999e125", "1e-130", "-1e-130"] {
            assert!(Number::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn numbers_add_and_subtract_exactly_within_dynamodbs_limits() {
        for (a, b, sum) in [
            ("1", "10000000000000000000000", "10000000000000000000001"),
            ("8.3", "0.7", "9"),
            ("-1.5", "1.5", "0"),
            ("-2", "0.5", "-1.5"),
            ("0.001", "-1", "-0.999"),
            ("123.45", "0", "123.45"),
        ] {
            assert_eq!(n(a).add(&n(b)).unwrap().to_text(), sum, "{a} + {b}");
        }
        assert_eq!(n("1e100").add(&n("1e100")).unwrap(), n("2e100"));
        assert_eq!(
            n("10000000000000000000000")
                .add(&n("1").negated())
                .unwrap()
                .to_text(),
            "9999999999999999999999"
        );
        assert!(n("9e125")
            .add(&n("9e125"))
            .unwrap_err()
            .message
            .contains("overflow"));
        assert!(n("1e50").add(&n("1")).is_err(), "39 digits");
    }

    #[test]
    fn numbers_order_numerically_through_their_order_keys() {
        let sorted = [
            "-1e125", "-12", "-1.23", "-1.2", "-1", "-0.5", "-1e-130", "0", "1e-130", "0.5", "1",
            "1.2", "1.23", "12", "1e125",
        ];
        let numbers: Vec<Number> = sorted.iter().map(|t| n(t)).collect();
        for w in numbers.windows(2) {
            assert!(w[0] < w[1], "{:?} < {:?}", w[0].to_text(), w[1].to_text());
            assert!(w[0].order_key() < w[1].order_key());
        }
        assert_eq!(n("1.50").cmp(&n("1.5")), Ordering::Equal);
    }

    #[test]
    fn every_type_reads_back_exactly_as_written() {
        let item = json!({
            "s": {"S": "Amélie"}, "n": {"N": "12345678901234567890123456789012345678"},
            "b": {"B": "AAEC/w=="}, "t": {"BOOL": true}, "z": {"NULL": true},
            "m": {"M": {"inner": {"L": [{"N": "1.5"}, {"S": "x"}]}}},
            "ss": {"SS": ["b", "a"]}, "ns": {"NS": ["2", "1.5"]}, "bs": {"BS": ["AA==", "AQ=="]},
        });
        let parsed = item_from_json(&item).unwrap();
        assert_eq!(item_to_json(&parsed), item);
        assert_eq!(parsed["b"], AttrValue::B(vec![0, 1, 2, 255]));
    }

    #[test]
    fn malformed_attribute_values_get_dynamodbs_errors() {
        use crate::error::Kind;
        let kind = |v: Value| AttrValue::from_json(&v).unwrap_err().kind;
        assert_eq!(kind(json!({})), Kind::Validation);
        assert_eq!(kind(json!({"X": "a"})), Kind::Validation);
        assert_eq!(kind(json!({"S": "a", "N": "1"})), Kind::Validation);
        assert_eq!(kind(json!({"N": 123})), Kind::Serialization);
        assert_eq!(kind(json!({"S": 1})), Kind::Serialization);
        assert_eq!(kind(json!({"NULL": false})), Kind::Validation);
        assert_eq!(kind(json!({"SS": []})), Kind::Validation);
        assert_eq!(kind(json!({"SS": ["a", "a"]})), Kind::Validation);
        assert_eq!(kind(json!({"NS": ["1", "1.0"]})), Kind::Validation);
        assert_eq!(kind(json!({"B": "not base64!"})), Kind::Serialization);
        assert_eq!(kind(json!("S")), Kind::Serialization);
    }
}
