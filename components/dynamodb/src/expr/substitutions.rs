//! `ExpressionAttributeNames` and `ExpressionAttributeValues`, and which of them an
//! expression used.

use super::*;

pub(super) fn note_used(used: &RefCell<Vec<String>>, alias: &str) {
    let mut used = used.borrow_mut();
    if !used.iter().any(|u| u == alias) {
        used.push(alias.to_owned());
    }
}

/// The substitutions of a request, with what the parsed expressions used of them.
#[derive(Debug)]
pub struct Substitutions {
    /// Alias → name, by alias: read from a JSON object, whose keys come in order.
    names: Vec<(String, String)>,
    values: BTreeMap<String, AttrValue>,
    /// The aliases used (a handful a request: a `Vec`, not a set's compiled tree).
    used_names: RefCell<Vec<String>>,
    used_values: RefCell<Vec<String>>,
}

impl Substitutions {
    /// Parses `ExpressionAttributeNames` and `ExpressionAttributeValues` of a request.
    pub fn from_request(body: &Value) -> Result<Self, DynamoError> {
        let mut names = Vec::new();
        if let Some(map) = body.get("ExpressionAttributeNames") {
            let map = map.as_object().ok_or_else(|| {
                DynamoError::serialization("ExpressionAttributeNames must be a map")
            })?;
            for (k, v) in map {
                let v = v.as_str().ok_or_else(|| {
                    DynamoError::serialization("ExpressionAttributeNames values must be strings")
                })?;
                let key = k.strip_prefix('#').ok_or_else(|| {
                    invalid(format!(
                        "ExpressionAttributeNames contains invalid key: Syntax error; key: \"{k}\""
                    ))
                })?;
                // Every key starts with `#`, so stripping it keeps the object's order.
                names.push((key.to_owned(), v.to_owned()));
            }
        }
        let mut values = BTreeMap::new();
        if let Some(map) = body.get("ExpressionAttributeValues") {
            let map = map.as_object().ok_or_else(|| {
                DynamoError::serialization("ExpressionAttributeValues must be a map")
            })?;
            for (k, v) in map {
                let key = k.strip_prefix(':').ok_or_else(|| {
                    invalid(format!(
                        "ExpressionAttributeValues contains invalid key: Syntax error; key: \"{k}\""
                    ))
                })?;
                values.insert(key.to_owned(), AttrValue::from_json(v)?);
            }
        }
        Ok(Self {
            names,
            values,
            used_names: RefCell::default(),
            used_values: RefCell::default(),
        })
    }

    pub(super) fn name(&self, alias: &str) -> Result<String, DynamoError> {
        let name = self
            .names
            .binary_search_by(|(a, _)| a.as_str().cmp(alias))
            .ok()
            .and_then(|i| self.names.get(i))
            .map(|(_, name)| name)
            .ok_or_else(|| {
            invalid(format!(
                "Value provided in ExpressionAttributeNames unused in expressions or an expression attribute name used in the document path is not defined; attribute name: #{alias}"
            ))
        })?;
        note_used(&self.used_names, alias);
        Ok(name.clone())
    }

    pub(super) fn value(&self, alias: &str) -> Result<AttrValue, DynamoError> {
        let value = self.values.get(alias).ok_or_else(|| {
            invalid(format!(
                "An expression attribute value used in expression is not defined; attribute value: :{alias}"
            ))
        })?;
        note_used(&self.used_values, alias);
        Ok(value.clone())
    }

    /// After parsing every expression of a request: substitutions nobody used are an
    /// error, as in DynamoDB.
    pub fn check_all_used(&self) -> Result<(), DynamoError> {
        let unused = |all: Vec<String>, used: &[String], sigil: &str| -> Vec<String> {
            all.into_iter()
                .filter(|k| !used.contains(k))
                .map(|k| format!("{sigil}{k}"))
                .collect()
        };
        let names = unused(
            self.names.iter().map(|(alias, _)| alias.clone()).collect(),
            &self.used_names.borrow(),
            "#",
        );
        if !names.is_empty() {
            return Err(invalid(format!(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
                names.join(", ")
            )));
        }
        let values = unused(
            self.values.keys().cloned().collect(),
            &self.used_values.borrow(),
            ":",
        );
        if !values.is_empty() {
            return Err(invalid(format!(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
                values.join(", ")
            )));
        }
        Ok(())
    }
}
