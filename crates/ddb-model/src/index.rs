//! Secondary indexes as DynamoDB defines them — a local index (LSI: the table's
//! partition key, another sort key) or a global one (GSI: any key) — and how an
//! index's entries map onto the table layer.
//!
//! An index is its own table-layer table, `ddbix.<table>.<generation>.<index>`:
//! partition = the index partition key's value (encoded as the table's is), sort key = the index sort key's
//! value (encoded as the table's sort key is) then the item's table partition and sort
//! key, each part [`escape`]d so that the parts keep DynamoDB's order and two items
//! never share an entry. The entry's value is the item projected into the index. An
//! item lacking an index key attribute has no entry (a sparse index). A Query reads
//! one partition of the index; a Scan of an index reads the table's items and shows
//! those the index holds, as it holds them, so that the index needs no partition
//! directory (whose one stored partition every write of a new index key would contend
//! on).

use crate::error::DynamoError;
use crate::schema::{
    attributes_named, key_elements, key_names_of, key_schema_of, str_field, typed_key, KeyAttr,
    KeyType, TableDef,
};
use crate::value::{AttrValue, Item};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// What an index holds of each item besides the keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Projection {
    KeysOnly,
    /// The keys and these attributes.
    Include(Vec<String>),
    All,
}

/// Where an index built by `UpdateTable` is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub enum IndexState {
    #[default]
    Active,
    /// Created by `UpdateTable` at this time (seconds since the epoch) and being filled
    /// with the items the table held then, partition by partition: `after` is the last
    /// partition of the table's directory done.
    Creating {
        since: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
    },
}

/// One secondary index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexDef {
    pub name: String,
    /// A GSI (else an LSI).
    pub global: bool,
    pub hash: KeyAttr,
    pub range: Option<KeyAttr>,
    pub projection: Projection,
    /// A GSI's `ProvisionedThroughput` as given (none on demand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<Value>,
    #[serde(default)]
    pub state: IndexState,
    /// Tells apart indexes of one name created and deleted by `UpdateTable` (0 for one
    /// created with its table, whose generation does).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub id: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Per-table limits DynamoDB sets.
pub const MAX_LSIS: usize = 5;
pub const MAX_GSIS: usize = 20;
/// The most `NonKeyAttributes` over all of a table's indexes.
pub const MAX_PROJECTED: usize = 100;

/// Escapes one part of an entry's sort key: `\0` becomes `\0\x02` and the part ends
/// with `\0\x01`, so that parts compare as the values they encode and no part is a
/// prefix of another.
pub fn escape(part: &str) -> String {
    let mut out = String::with_capacity(part.len() + 2);
    for c in part.chars() {
        out.push(c);
        if c == '\0' {
            out.push('\u{2}');
        }
    }
    out.push_str("\0\u{1}");
    out
}

fn invalid(message: impl std::fmt::Display) -> DynamoError {
    DynamoError::validation(format!(
        "One or more parameter values were invalid: {message}"
    ))
}

/// DynamoDB's index name rule: 3–255 of `[a-zA-Z0-9_.-]`.
pub fn check_index_name(name: &str) -> Result<(), DynamoError> {
    crate::schema::check_name(name, "indexName")
}

impl IndexDef {
    /// Parses one member of `LocalSecondaryIndexes` (`global` false) or
    /// `GlobalSecondaryIndexes`, its key attributes typed by `defined`.
    pub fn parse(
        spec: &Value,
        global: bool,
        defined: &[(String, KeyType)],
        on_demand: bool,
    ) -> Result<Self, DynamoError> {
        let name = str_field(spec, "IndexName").ok_or_else(|| DynamoError::missing("IndexName"))?;
        check_index_name(name)?;
        let schema = spec
            .get("KeySchema")
            .and_then(Value::as_array)
            .filter(|s| (1..=2).contains(&s.len()))
            .ok_or_else(|| {
                DynamoError::validation(format!(
                    "1 validation error detected: Value at 'keySchema' of index {name} failed to satisfy constraint: Member must have length between 1 and 2"
                ))
            })?;
        let keys = key_elements(schema)?;
        let names: Vec<&str> = keys.iter().map(|(a, _)| a.as_str()).collect();
        let typed = |attr: &str| typed_key(defined, attr, &names);
        for attr in &names {
            typed(attr)?;
        }
        if names.len() == 2 && names[0] == names[1] {
            return Err(DynamoError::validation(
                "Both the Hash Key and the Range Key element in the KeySchema have the same name",
            ));
        }
        if keys[0].1 != "HASH" {
            return Err(DynamoError::validation(
                "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
            ));
        }
        if keys.get(1).is_some_and(|(_, k)| *k != "RANGE") {
            return Err(DynamoError::validation(
                "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type",
            ));
        }
        if !global && keys.len() != 2 {
            return Err(invalid(format!(
                "Index KeySchema does not have a range key for index: {name}"
            )));
        }
        let projection = spec.get("Projection").ok_or_else(|| {
            DynamoError::validation(format!(
                "1 validation error detected: Value null at 'projection' of index {name} failed to satisfy constraint: Member must not be null"
            ))
        })?;
        let projection = parse_projection(projection)?;
        let throughput = spec.get("ProvisionedThroughput");
        if global && on_demand && throughput.is_some() {
            return Err(invalid(format!(
                "ProvisionedThroughput should not be specified for index: {name} when BillingMode is PAY_PER_REQUEST"
            )));
        }
        if global && !on_demand {
            let units = |field: &str| {
                throughput
                    .and_then(|t| t.get(field))
                    .and_then(Value::as_u64)
            };
            match (units("ReadCapacityUnits"), units("WriteCapacityUnits")) {
                (Some(r), Some(w)) if r >= 1 && w >= 1 => {}
                (Some(_), Some(_)) => {
                    return Err(DynamoError::validation(
                        "1 validation error detected: Value at 'provisionedThroughput' failed to satisfy constraint: Member must have value greater than or equal to 1",
                    ))
                }
                _ => {
                    return Err(invalid(format!(
                        "ProvisionedThroughput must be specified for index: {name}"
                    )))
                }
            }
        }
        Ok(IndexDef {
            name: name.to_owned(),
            global,
            hash: typed(names[0])?,
            range: names.get(1).map(|n| typed(n)).transpose()?,
            projection,
            throughput: throughput.filter(|_| global && !on_demand).cloned(),
            state: IndexState::Active,
            id: 0,
        })
    }

    /// The names of the index's key attributes.
    pub fn key_names(&self) -> Vec<&str> {
        key_names_of(&self.hash, self.range.as_ref())
    }

    /// The table-layer table of the index's entries.
    pub fn storage_name(&self, table: &TableDef) -> String {
        format!(
            "ddbix.{}.{}.{}{}",
            table.name,
            table.generation,
            self.name,
            self.suffix()
        )
    }

    fn suffix(&self) -> String {
        match self.id {
            0 => String::new(),
            id => format!(".{id:016x}"),
        }
    }

    /// The index seen as a table of its own keys: what encodes its key values.
    pub fn as_table(&self, table: &TableDef) -> TableDef {
        TableDef {
            hash: self.hash.clone(),
            range: self.range.clone(),
            indexes: Vec::new(),
            ..table.clone()
        }
    }

    /// The entry of `item` (of `table`): (partition, sort key), `None` when the item
    /// lacks an index key attribute. A key of the wrong type, empty or too long is
    /// refused as DynamoDB refuses the write.
    pub fn entry_key(
        &self,
        table: &TableDef,
        item: &Item,
    ) -> Result<Option<(String, String)>, DynamoError> {
        if self.key_names().iter().any(|n| !item.contains_key(*n)) {
            self.check(item)?;
            return Ok(None);
        }
        self.check(item)?;
        let (pk, sk) = self.as_table(table).key_of(item, false)?;
        let (base_pk, base_sk) = table.key_of(item, false)?;
        let mut entry = String::new();
        if self.range.is_some() {
            entry.push_str(&escape(&sk));
        }
        entry.push_str(&escape(&base_pk));
        entry.push_str(&escape(&base_sk));
        Ok(Some((pk, entry)))
    }

    /// The entry sort key where an item whose index sort key encodes as `sk` starts: the
    /// least entry key of that value is above it.
    pub fn sort_prefix(sk: &str) -> String {
        escape(sk)
    }

    /// Refuses an item whose index key attributes (those present) have the wrong type
    /// or are empty, in DynamoDB's words.
    pub fn check(&self, item: &Item) -> Result<(), DynamoError> {
        for attr in std::iter::once(&self.hash).chain(&self.range) {
            let Some(value) = item.get(&attr.name) else {
                continue;
            };
            let matches = matches!(
                (attr.kind, value),
                (KeyType::S, AttrValue::S(_))
                    | (KeyType::N, AttrValue::N(_))
                    | (KeyType::B, AttrValue::B(_))
            );
            if !matches {
                return Err(invalid(format!(
                    "Type mismatch for Index Key {} Expected: {} Actual: {} IndexName: {}",
                    attr.name,
                    attr.kind.name(),
                    value.type_name(),
                    self.name
                )));
            }
            let empty = match value {
                AttrValue::S(s) => s.is_empty(),
                AttrValue::B(b) => b.is_empty(),
                _ => false,
            };
            if empty {
                return Err(DynamoError::validation(format!(
                    "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty {} value. IndexName: {}, IndexKey: {}",
                    if matches!(value, AttrValue::S(_)) { "string" } else { "binary" },
                    self.name,
                    attr.name
                )));
            }
        }
        Ok(())
    }

    /// Whether attribute `name` of an item of `table` is in the index's entries.
    pub fn projects(&self, table: &TableDef, name: &str) -> bool {
        match &self.projection {
            Projection::All => true,
            projection => {
                table.key_names().contains(&name)
                    || self.key_names().contains(&name)
                    || matches!(projection, Projection::Include(attrs) if attrs.iter().any(|a| a == name))
            }
        }
    }

    /// `item` (of `table`) as the index holds it.
    pub fn project(&self, table: &TableDef, item: &Item) -> Item {
        if self.projection == Projection::All {
            return item.clone();
        }
        kit::sorted::map(
            item.iter()
                .filter(|(k, _)| self.projects(table, k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    /// The index's `LastEvaluatedKey` attributes of `item`: the index keys and the
    /// table's.
    pub fn key_attributes(&self, table: &TableDef, item: &Item) -> Item {
        let mut names = table.key_names();
        names.extend(self.key_names());
        attributes_named(item, &names)
    }

    /// DynamoDB's description of the index (`LocalSecondaryIndexDescription` or
    /// `GlobalSecondaryIndexDescription`).
    pub fn description(&self, table: &TableDef) -> Value {
        let projection = match &self.projection {
            Projection::KeysOnly => json!({"ProjectionType": "KEYS_ONLY"}),
            Projection::All => json!({"ProjectionType": "ALL"}),
            Projection::Include(attrs) => {
                json!({"ProjectionType": "INCLUDE", "NonKeyAttributes": attrs})
            }
        };
        let mut desc = json!({
            "IndexName": self.name,
            "KeySchema": key_schema_of(&self.hash, self.range.as_ref()),
            "Projection": projection,
            "IndexSizeBytes": 0,
            "ItemCount": 0,
            "IndexArn": format!("arn:aws:dynamodb:local:000000000000:table/{}/index/{}", table.name, self.name),
        });
        if self.global {
            let units = |field: &str| {
                self.throughput
                    .as_ref()
                    .and_then(|t| t.get(field))
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
            };
            desc["IndexStatus"] = json!(match self.state {
                IndexState::Active => "ACTIVE",
                IndexState::Creating { .. } => "CREATING",
            });
            if matches!(self.state, IndexState::Creating { .. }) {
                desc["Backfilling"] = json!(true);
            }
            desc["ProvisionedThroughput"] = json!({
                "NumberOfDecreasesToday": 0,
                "ReadCapacityUnits": units("ReadCapacityUnits"),
                "WriteCapacityUnits": units("WriteCapacityUnits"),
            });
        }
        desc
    }
}

fn parse_projection(spec: &Value) -> Result<Projection, DynamoError> {
    let kind = spec.get("ProjectionType").and_then(Value::as_str);
    let attrs = spec.get("NonKeyAttributes");
    if let (Some(kind), Some(_)) = (kind, attrs) {
        if kind != "INCLUDE" {
            return Err(invalid(format!(
                "ProjectionType is {kind}, but NonKeyAttributes is specified"
            )));
        }
    }
    match kind {
        None => Err(invalid("Unknown ProjectionType: null")),
        Some("ALL") => Ok(Projection::All),
        Some("KEYS_ONLY") => Ok(Projection::KeysOnly),
        Some("INCLUDE") => {
            let attrs = attrs.and_then(Value::as_array).ok_or_else(|| {
                invalid("NonKeyAttributes must be specified for ProjectionType INCLUDE")
            })?;
            let mut names: Vec<String> = Vec::with_capacity(attrs.len());
            for attr in attrs {
                let name = attr.as_str().ok_or_else(|| {
                    DynamoError::serialization("NonKeyAttributes must be a list of strings")
                })?;
                if names.iter().any(|n| n == name) {
                    return Err(invalid(format!(
                        "Duplicate attribute names in NonKeyAttributes: {name}"
                    )));
                }
                names.push(name.to_owned());
            }
            if names.is_empty() {
                return Err(DynamoError::validation(
                    "1 validation error detected: Value '[]' at 'projection.nonKeyAttributes' failed to satisfy constraint: Member must have length greater than or equal to 1",
                ));
            }
            Ok(Projection::Include(names))
        }
        Some(other) => Err(DynamoError::validation(format!(
            "1 validation error detected: Value '{other}' at 'projection.projectionType' failed to satisfy constraint: Member must satisfy enum value set: [ALL, INCLUDE, KEYS_ONLY]"
        ))),
    }
}

/// Parses a `CreateTable` request's indexes for a table of key `(hash, range)`.
pub fn parse_indexes(
    req: &Value,
    hash: &KeyAttr,
    range: Option<&KeyAttr>,
    defined: &[(String, KeyType)],
    on_demand: bool,
) -> Result<Vec<IndexDef>, DynamoError> {
    let mut indexes: Vec<IndexDef> = Vec::new();
    for (param, global) in [
        ("LocalSecondaryIndexes", false),
        ("GlobalSecondaryIndexes", true),
    ] {
        let Some(specs) = req.get(param) else {
            continue;
        };
        let specs = specs
            .as_array()
            .ok_or_else(|| DynamoError::serialization(format!("{param} must be a list")))?;
        if specs.is_empty() {
            return Err(invalid(format!("List of {param} is empty")));
        }
        if !global && range.is_none() {
            return Err(invalid(
                "Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex",
            ));
        }
        for spec in specs {
            let index = IndexDef::parse(spec, global, defined, on_demand)?;
            if !global && index.hash.name != hash.name {
                return Err(invalid(format!(
                    "Index KeySchema does not have the same leading hash key as table KeySchema for index: {}. index hash key: {}, table hash key: {}",
                    index.name, index.hash.name, hash.name
                )));
            }
            if indexes.iter().any(|i| i.name == index.name) {
                return Err(invalid(format!("Duplicate index name: {}", index.name)));
            }
            indexes.push(index);
        }
        let count = indexes.iter().filter(|i| i.global == global).count();
        if !global && count > MAX_LSIS {
            return Err(invalid(format!(
                "Number of LocalSecondaryIndexes exceeds per-table limit of {MAX_LSIS}"
            )));
        }
        if global && count > MAX_GSIS {
            return Err(invalid(format!(
                "GlobalSecondaryIndex count exceeds the per-table limit of {MAX_GSIS}"
            )));
        }
    }
    let projected: usize = indexes
        .iter()
        .map(|i| match &i.projection {
            Projection::Include(attrs) => attrs.len(),
            _ => 0,
        })
        .sum();
    if projected > MAX_PROJECTED {
        return Err(invalid(format!(
            "The sum of NonKeyAttributes across all secondary indexes exceeds the limit of {MAX_PROJECTED}"
        )));
    }
    Ok(indexes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_parts_keep_the_order_of_the_values() {
        let values = ["", "\0", "\0a", "a", "a\0", "a\0b", "ab", "b"];
        for pair in values.windows(2) {
            let (a, b) = (escape(pair[0]), escape(pair[1]));
            assert!(a < b, "{:?} < {:?}", pair[0], pair[1]);
            // Whatever follows a part, the order holds.
            assert!(
                format!("{a}\u{10FFFF}") < b,
                "{:?} then more < {:?}",
                pair[0],
                pair[1]
            );
        }
    }
}
