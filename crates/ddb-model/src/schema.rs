//! Tables as DynamoDB describes them, and how their items map onto the table layer.
//!
//! The catalog is the table-layer table [`CATALOG`], one partition, one item per
//! DynamoDB table (its key schema, creation time and generation). A DynamoDB table's
//! items live in the table-layer table `ddb.<name>.<generation>`: partition = the
//! partition key's type letter and value (`S…`, `N<normal form>`, `B<base64>`), sort
//! key = an encoding of the sort key whose byte order is DynamoDB's order (strings as
//! they are, numbers through [`crate::value::Number::order_key`], binary as hex), value = the item in
//! DynamoDB's JSON form. Scan enumerates partitions through the partition directory
//! `ddbdir.<name>.<generation>`: every write that may create a partition first makes
//! sure the partition is listed there (a conditional write, so racing writers agree),
//! so a listed partition may be empty but no partition with items is ever missing.
//! Deleting a table removes it from the catalog; a table created
//! again under that name gets the next generation, so it starts empty.
//!
//! Built-in tables ([`BUILTIN`], today `Movies`) are not in the catalog: their
//! definitions are fixed here, every deployment has them, and they cannot be deleted.

use crate::error::{DynamoError, Kind};
use crate::index::{parse_indexes, IndexDef};
use crate::value::{AttrValue, Item};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The table-layer table holding every DynamoDB table's description.
pub const CATALOG: &str = "dynamodb_tables";
/// The catalog's one partition.
pub const CATALOG_PK: &str = "tables";
/// The one partition of a table's partition directory.
pub const DIRECTORY_PK: &str = "partitions";

/// A key attribute's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyType {
    S,
    N,
    B,
}

impl KeyType {
    pub fn parse(text: &str) -> Result<Self, DynamoError> {
        match text {
            "S" => Ok(KeyType::S),
            "N" => Ok(KeyType::N),
            "B" => Ok(KeyType::B),
            other => Err(DynamoError::validation(format!(
                "1 validation error detected: Value '{other}' at 'attributeDefinitions.1.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]"
            ))),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            KeyType::S => "S",
            KeyType::N => "N",
            KeyType::B => "B",
        }
    }
}

/// One key attribute: its name and type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAttr {
    pub name: String,
    pub kind: KeyType,
}

/// What the catalog keeps of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    pub name: String,
    pub hash: KeyAttr,
    pub range: Option<KeyAttr>,
    /// Seconds since the epoch, with milliseconds.
    pub created: f64,
    pub generation: u64,
    /// The `ProvisionedThroughput` or `BillingMode` the table was created with, echoed
    /// back (nothing here is provisioned).
    pub billing: Value,
    /// Built-in tables cannot be deleted (DynamoDB's deletion protection).
    #[serde(default)]
    pub protected: bool,
    /// The table's tags, `(key, value)`, in the order first set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    /// The attribute holding items' expiry times when time to live is enabled
    /// (`UpdateTimeToLive`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// When UpdateTable last raised and lowered the provisioned units, and how many
    /// times it lowered them on the day of the last decrease.
    #[serde(default, skip_serializing_if = "Changes::is_empty")]
    pub changes: Changes,
    /// The table's secondary indexes, local and global, in the order created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<IndexDef>,
}

/// The history of a table's provisioned units that DynamoDB describes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    /// Seconds since the epoch, with milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_increase: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decrease: Option<f64>,
    /// Decreases on the UTC day of `last_decrease`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub decreases: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Changes {
    fn is_empty(&self) -> bool {
        *self == Changes::default()
    }

    /// Decreases on the UTC day of `now` (seconds since the epoch): DynamoDB's
    /// `NumberOfDecreasesToday`.
    fn decreases_on(&self, now: f64) -> u32 {
        match self.last_decrease {
            Some(at) if utc_day(at) == utc_day(now) => self.decreases,
            _ => 0,
        }
    }
}

fn utc_day(seconds: f64) -> i64 {
    (seconds / 86_400.0).floor() as i64
}

/// The built-in table holding the movies API's data (OpenAPI tag `movies`): partition `year` (N),
/// sort key `title` (S), items in `moviedata.json`'s shape.
pub const MOVIES: &str = "Movies";

/// The tables every deployment has, whatever the catalog holds, in name order: each is
/// a service's own data, served through this endpoint and that service alike.
pub const BUILTIN: &[&str] = &[MOVIES];

/// The definition of built-in table `name`.
pub fn builtin(name: &str) -> Option<TableDef> {
    (name == MOVIES).then(movies)
}

/// The table-layer partition of an `N` partition-key value.
pub fn number_partition(n: &crate::value::Number) -> String {
    format!("N{}", n.to_text())
}

/// The built-in [`MOVIES`] table.
pub fn movies() -> TableDef {
    TableDef {
        name: MOVIES.to_owned(),
        hash: KeyAttr {
            name: "year".to_owned(),
            kind: KeyType::N,
        },
        range: Some(KeyAttr {
            name: "title".to_owned(),
            kind: KeyType::S,
        }),
        // 2025-01-01T00:00:00Z: fixed, since the table is not created at run time.
        created: 1_735_689_600.0,
        generation: 0,
        billing: json!({ "BillingMode": PAY_PER_REQUEST }),
        protected: true,
        tags: Vec::new(),
        ttl: None,
        changes: Changes::default(),
        indexes: Vec::new(),
    }
}

/// DynamoDB's table name rule: 3–255 of `[a-zA-Z0-9_.-]`.
pub fn check_table_name(name: &str) -> Result<(), DynamoError> {
    check_name(name, "tableName")
}

/// DynamoDB's rule for the names of tables and indexes (parameter `field`): 3–255 of
/// `[a-zA-Z0-9_.-]`.
pub(crate) fn check_name(name: &str, field: &str) -> Result<(), DynamoError> {
    let ok = (3..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(DynamoError::validation(format!(
            "1 validation error detected: Value '{name}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length between 3 and 255"
        )))
    }
}

/// On-demand capacity: the billing mode the built-in tables have.
const PAY_PER_REQUEST: &str = "PAY_PER_REQUEST";

/// The capacity units `field` of a `ProvisionedThroughput`, where given.
fn units(throughput: Option<&Value>, field: &str) -> Option<u64> {
    throughput?.get(field)?.as_u64()
}

/// What the catalog keeps of a `CreateTable` request's capacity (its `BillingMode`,
/// its `ProvisionedThroughput`), refused as DynamoDB refuses it: on demand with
/// throughput, or provisioned (the default) without both units.
fn billing_of(req: &Value) -> Result<Value, DynamoError> {
    let mode = req.get("BillingMode");
    let throughput = req.get("ProvisionedThroughput");
    if mode.and_then(Value::as_str) == Some(PAY_PER_REQUEST) {
        if throughput.is_some() {
            return Err(DynamoError::validation(
                "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
            ));
        }
        return Ok(json!({ "BillingMode": PAY_PER_REQUEST }));
    }
    let (Some(read), Some(write)) = (
        units(throughput, "ReadCapacityUnits"),
        units(throughput, "WriteCapacityUnits"),
    ) else {
        return Err(DynamoError::validation(
            "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
        ));
    };
    for (value, field) in [(write, "writeCapacityUnits"), (read, "readCapacityUnits")] {
        if value == 0 {
            return Err(DynamoError::validation(format!(
                "1 validation error detected: Value '0' at 'provisionedThroughput.{field}' failed to satisfy constraint: Member must have value greater than or equal to 1"
            )));
        }
    }
    let mut billing = json!({
        "ProvisionedThroughput": {"ReadCapacityUnits": read, "WriteCapacityUnits": write},
    });
    if let Some(mode) = mode {
        billing["BillingMode"] = mode.clone();
    }
    Ok(billing)
}

pub(crate) fn str_field<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get(field).and_then(Value::as_str)
}

impl TableDef {
    /// Validates a `CreateTable` request's key schema and attribute definitions.
    pub fn from_create(req: &Value, created: f64, generation: u64) -> Result<Self, DynamoError> {
        let name = str_field(req, "TableName").ok_or_else(|| DynamoError::missing("TableName"))?;
        check_table_name(name)?;
        let schema = req
            .get("KeySchema")
            .and_then(Value::as_array)
            .ok_or_else(|| DynamoError::missing("KeySchema"))?;
        let defs = req
            .get("AttributeDefinitions")
            .and_then(Value::as_array)
            .ok_or_else(|| DynamoError::missing("AttributeDefinitions"))?;
        let billing = billing_of(req)?;
        let mut defined = Vec::new();
        for def in defs {
            let (Some(attr), Some(kind)) = (
                str_field(def, "AttributeName"),
                str_field(def, "AttributeType"),
            ) else {
                return Err(DynamoError::validation(
                    "One or more parameter values were invalid: an attribute definition needs AttributeName and AttributeType",
                ));
            };
            if defined.iter().any(|(n, _): &(String, KeyType)| n == attr) {
                return Err(DynamoError::validation(
                    "Cannot have two attributes with the same name",
                ));
            }
            defined.push((attr.to_owned(), KeyType::parse(kind)?));
        }
        let elements = key_elements(schema)?;
        let typed = |attr: &str| typed_key(&defined, attr, &[attr]);
        let (hash, range) = match elements.as_slice() {
            [(h, hk)] if hk == "HASH" => (typed(h)?, None),
            [(h, hk), (r, rk)] if hk == "HASH" && rk == "RANGE" && h != r => {
                (typed(h)?, Some(typed(r)?))
            }
            _ => {
                return Err(DynamoError::validation(
                    "1 validation error detected: Value at 'keySchema' failed to satisfy constraint: the key schema is one HASH key, optionally followed by one RANGE key",
                ))
            }
        };
        let on_demand = billing.get("BillingMode").and_then(Value::as_str) == Some(PAY_PER_REQUEST);
        let indexes = parse_indexes(req, &hash, range.as_ref(), &defined, on_demand)?;
        if indexes.is_empty() {
            let used = 1 + usize::from(range.is_some());
            if defined.len() != used {
                return Err(DynamoError::validation(
                    "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
                ));
            }
        } else {
            let mut used: Vec<&str> = vec![hash.name.as_str()];
            used.extend(range.iter().map(|r| r.name.as_str()));
            for index in &indexes {
                used.extend(index.key_names());
            }
            kit::sorted::sort(&mut used);
            used.dedup();
            if defined.iter().any(|(n, _)| !used.contains(&n.as_str())) {
                let names: Vec<&str> = defined.iter().map(|(n, _)| n.as_str()).collect();
                return Err(DynamoError::validation(format!(
                    "One or more parameter values were invalid: Some AttributeDefinitions are not used. AttributeDefinitions: [{}], keys used: [{}]",
                    names.join(", "),
                    used.join(", ")
                )));
            }
        }
        Ok(Self {
            name: name.to_owned(),
            hash,
            range,
            created,
            generation,
            billing,
            protected: false,
            tags: Vec::new(),
            ttl: None,
            changes: Changes::default(),
            indexes,
        })
    }

    /// Refuses an item whose index key attributes this table's indexes cannot hold
    /// (the wrong type, empty, too long), as DynamoDB refuses the write.
    pub fn check_index_keys(&self, item: &Item) -> Result<(), DynamoError> {
        for index in &self.indexes {
            index.entry_key(self, item)?;
        }
        Ok(())
    }

    /// The index named `name`.
    pub fn index(&self, name: &str) -> Option<&IndexDef> {
        self.indexes.iter().find(|i| i.name == name)
    }

    /// The table-layer table of this table's items.
    pub fn storage_name(&self) -> String {
        format!("ddb.{}.{}", self.name, self.generation)
    }

    /// The table-layer table listing this table's partitions (partition
    /// [`DIRECTORY_PK`], one item per partition key), for Scan.
    pub fn directory_name(&self) -> String {
        format!("ddbdir.{}.{}", self.name, self.generation)
    }

    /// Applies an `UpdateTable` request's `BillingMode` and `ProvisionedThroughput`;
    /// `Ok(false)` when it names neither. Refused as DynamoDB refuses it: on demand
    /// with units, provisioned without both, or units equal to those the table has.
    pub fn update_billing(&mut self, req: &Value, now: f64) -> Result<bool, DynamoError> {
        let (mode, throughput) = (req.get("BillingMode"), req.get("ProvisionedThroughput"));
        if mode.is_none() && throughput.is_none() {
            return Ok(false);
        }
        let on_demand =
            self.billing.get("BillingMode").and_then(Value::as_str) == Some(PAY_PER_REQUEST);
        // Without a `BillingMode` the table keeps its own.
        let wants_on_demand = match mode {
            Some(mode) => mode.as_str() == Some(PAY_PER_REQUEST),
            None => on_demand,
        };
        if wants_on_demand && throughput.is_some() {
            return Err(DynamoError::validation(
                "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
            ));
        }
        if !on_demand && !wants_on_demand {
            let current = self.billing.get("ProvisionedThroughput");
            let (read, write) = (
                units(throughput, "ReadCapacityUnits"),
                units(throughput, "WriteCapacityUnits"),
            );
            if (read, write)
                == (
                    units(current, "ReadCapacityUnits"),
                    units(current, "WriteCapacityUnits"),
                )
            {
                return Err(DynamoError::validation(format!(
                    "The provisioned throughput for the table will not change. The requested value equals the current value. Current ReadCapacityUnits provisioned for the table: {}. Requested ReadCapacityUnits: {}. Current WriteCapacityUnits provisioned for the table: {}. Requested WriteCapacityUnits: {}. Refer to the Amazon DynamoDB Developer Guide for current limits and how to request higher limits.",
                    read.unwrap_or(0), read.unwrap_or(0), write.unwrap_or(0), write.unwrap_or(0)
                )));
            }
        }
        let billing = if wants_on_demand {
            json!({ "BillingMode": PAY_PER_REQUEST })
        } else {
            billing_of(req)?
        };
        // Only units a provisioned table keeps count as raised or lowered; a change
        // that raises one and lowers the other is a raise (as dynalite, modelled on
        // DynamoDB, counts it).
        if !on_demand && !wants_on_demand {
            let (old, new) = (
                self.billing.get("ProvisionedThroughput"),
                billing.get("ProvisionedThroughput"),
            );
            let moved = |field: &str| units(new, field).cmp(&units(old, field));
            let fields = ["ReadCapacityUnits", "WriteCapacityUnits"];
            if fields
                .iter()
                .any(|f| moved(f) == std::cmp::Ordering::Greater)
            {
                self.changes.last_increase = Some(now);
            } else if fields.iter().any(|f| moved(f) == std::cmp::Ordering::Less) {
                self.changes.decreases = self.changes.decreases_on(now) + 1;
                self.changes.last_decrease = Some(now);
            }
        }
        self.billing = billing;
        Ok(true)
    }

    /// DynamoDB's `TableDescription` at `now` (seconds since the epoch, for
    /// `NumberOfDecreasesToday`).
    pub fn description(&self, status: &str, now: f64) -> Value {
        let defs: Vec<Value> = self
            .key_attrs()
            .iter()
            .map(|a| json!({"AttributeName": a.name, "AttributeType": a.kind.name()}))
            .collect();
        let mut desc = json!({
            "TableName": self.name,
            "TableStatus": status,
            "KeySchema": key_schema_of(&self.hash, self.range.as_ref()),
            "AttributeDefinitions": defs,
            "CreationDateTime": self.created,
            "ItemCount": 0,
            "TableSizeBytes": 0,
            "TableArn": format!("arn:aws:dynamodb:local:000000000000:table/{}", self.name),
            "TableId": format!("{:016x}-{}", self.generation, self.name),
            "DeletionProtectionEnabled": self.protected,
        });
        // As DynamoDB describes it: every table has `ProvisionedThroughput` (zeros
        // on demand), and an on-demand table a `BillingModeSummary` besides.
        let throughput = self.billing.get("ProvisionedThroughput");
        desc["ProvisionedThroughput"] = json!({
            "NumberOfDecreasesToday": self.changes.decreases_on(now),
            "ReadCapacityUnits": units(throughput, "ReadCapacityUnits").unwrap_or(0),
            "WriteCapacityUnits": units(throughput, "WriteCapacityUnits").unwrap_or(0),
        });
        if let Some(at) = self.changes.last_increase {
            desc["ProvisionedThroughput"]["LastIncreaseDateTime"] = json!(at);
        }
        if let Some(at) = self.changes.last_decrease {
            desc["ProvisionedThroughput"]["LastDecreaseDateTime"] = json!(at);
        }
        for (field, global) in [
            ("LocalSecondaryIndexes", false),
            ("GlobalSecondaryIndexes", true),
        ] {
            let described: Vec<Value> = self
                .indexes
                .iter()
                .filter(|i| i.global == global)
                .map(|i| i.description(self))
                .collect();
            if !described.is_empty() {
                desc[field] = Value::Array(described);
            }
        }
        if self.billing.get("BillingMode").and_then(Value::as_str) == Some(PAY_PER_REQUEST) {
            desc["BillingModeSummary"] = json!({
                "BillingMode": PAY_PER_REQUEST,
                "LastUpdateToPayPerRequestDateTime": self.created,
            });
        }
        desc
    }

    /// The table-layer partition of a partition-key value given as an item of one
    /// attribute.
    pub fn partition_of(&self, key: &Item) -> Result<String, DynamoError> {
        let hash_only = TableDef {
            range: None,
            ..self.clone()
        };
        hash_only.key_of(key, true).map(|(pk, _)| pk)
    }

    /// The names of the key attributes: the partition key's, then the sort key's.
    pub fn key_names(&self) -> Vec<&str> {
        key_names_of(&self.hash, self.range.as_ref())
    }

    /// Every key attribute of the table and of its indexes, each once, the table's
    /// first: what `AttributeDefinitions` holds.
    pub fn key_attrs(&self) -> Vec<&KeyAttr> {
        let mut attrs: Vec<&KeyAttr> = Vec::new();
        let keys = std::iter::once(&self.hash).chain(&self.range).chain(
            self.indexes
                .iter()
                .flat_map(|i| std::iter::once(&i.hash).chain(&i.range)),
        );
        for key in keys {
            if !attrs.iter().any(|a| a.name == key.name) {
                attrs.push(key);
            }
        }
        attrs
    }

    /// The key attributes of `item` (a `LastEvaluatedKey`).
    pub fn key_attributes(&self, item: &Item) -> Item {
        attributes_named(item, &self.key_names())
    }

    /// The table-layer key of an item or a `Key`: (partition, sort key). Checks that
    /// the key attributes are there with their schema's types; with `exact`, also that
    /// nothing else is (a `Key` parameter).
    pub fn key_of(&self, item: &Item, exact: bool) -> Result<(String, String), DynamoError> {
        let mismatch =
            || DynamoError::validation("The provided key element does not match the schema");
        if exact && item.len() != 1 + usize::from(self.range.is_some()) {
            return Err(mismatch());
        }
        let encode = |attr: &KeyAttr, sort: bool| -> Result<String, DynamoError> {
            let value = item.get(&attr.name).ok_or_else(|| {
                if exact {
                    mismatch()
                } else {
                    DynamoError::validation(format!(
                        "One or more parameter values were invalid: Missing the key {} in the item",
                        attr.name
                    ))
                }
            })?;
            let wrong_type = || {
                DynamoError::validation(format!(
                    "One or more parameter values were invalid: Type mismatch for key {} expected: {} actual: {}",
                    attr.name,
                    attr.kind.name(),
                    value.type_name()
                ))
            };
            let empty = || {
                DynamoError::validation(format!(
                    "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: {}",
                    attr.name
                ))
            };
            let size = match (attr.kind, value) {
                (KeyType::S, AttrValue::S(s)) => s.len(),
                (KeyType::B, AttrValue::B(b)) => b.len(),
                _ => 0,
            };
            if !sort && size > MAX_PARTITION_KEY_BYTES {
                return Err(DynamoError::validation(
                    // DynamoDB's words, its missing space included.
                    "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes",
                ));
            }
            if sort && size > MAX_SORT_KEY_BYTES {
                return Err(DynamoError::validation(
                    "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes",
                ));
            }
            match (attr.kind, value) {
                (KeyType::S, AttrValue::S(s)) if s.is_empty() => Err(empty()),
                (KeyType::B, AttrValue::B(b)) if b.is_empty() => Err(empty()),
                (KeyType::S, AttrValue::S(s)) => Ok(if sort { s.clone() } else { format!("S{s}") }),
                (KeyType::N, AttrValue::N(n)) => Ok(if sort {
                    n.order_key()
                } else {
                    number_partition(n)
                }),
                (KeyType::B, AttrValue::B(b)) => Ok(if sort {
                    b.iter().map(|x| format!("{x:02x}")).collect()
                } else {
                    format!(
                        "B{}",
                        AttrValue::B(b.clone()).to_json()["B"]
                            .as_str()
                            .unwrap_or_default()
                    )
                }),
                _ => Err(wrong_type()),
            }
        };
        let pk = encode(&self.hash, false)?;
        let sk = match &self.range {
            Some(range) => encode(range, true)?,
            None => String::new(),
        };
        Ok((pk, sk))
    }
}

/// The names of key `(hash, range)`, a table's or an index's.
pub(crate) fn key_names_of<'k>(hash: &'k KeyAttr, range: Option<&'k KeyAttr>) -> Vec<&'k str> {
    std::iter::once(hash)
        .chain(range)
        .map(|a| a.name.as_str())
        .collect()
}

/// Key `(hash, range)` as DynamoDB describes a `KeySchema`.
pub(crate) fn key_schema_of(hash: &KeyAttr, range: Option<&KeyAttr>) -> Value {
    let mut schema = vec![json!({"AttributeName": hash.name, "KeyType": "HASH"})];
    if let Some(range) = range {
        schema.push(json!({"AttributeName": range.name, "KeyType": "RANGE"}));
    }
    Value::Array(schema)
}

/// The attributes of `item` named in `names`.
pub(crate) fn attributes_named(item: &Item, names: &[&str]) -> Item {
    kit::sorted::map(
        item.iter()
            .filter(|(k, _)| names.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

/// A key schema's elements, `(attribute, key type)`, each checked to name both.
pub(crate) fn key_elements(schema: &[Value]) -> Result<Vec<(String, String)>, DynamoError> {
    schema
        .iter()
        .map(|element| {
            match (str_field(element, "AttributeName"), str_field(element, "KeyType")) {
                (Some(a), Some(k)) => Ok((a.to_owned(), k.to_owned())),
                _ => Err(DynamoError::validation(
                    "One or more parameter values were invalid: a key schema element needs AttributeName and KeyType",
                )),
            }
        })
        .collect()
}

/// Key attribute `attr` with its type from `defined`; refused as DynamoDB refuses a key
/// schema (whose key names are `keys`) naming an attribute not defined.
pub(crate) fn typed_key(
    defined: &[(String, KeyType)],
    attr: &str,
    keys: &[&str],
) -> Result<KeyAttr, DynamoError> {
    defined
        .iter()
        .find(|(n, _)| n == attr)
        .map(|(n, k)| KeyAttr {
            name: n.clone(),
            kind: *k,
        })
        .ok_or_else(|| {
            let names: Vec<&str> = defined.iter().map(|(n, _)| n.as_str()).collect();
            DynamoError::validation(format!(
                "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], AttributeDefinitions: [{}]",
                keys.join(", "),
                names.join(", ")
            ))
        })
}

/// DynamoDB's limits on the size of a key's partition and sort values.
const MAX_PARTITION_KEY_BYTES: usize = 2048;
const MAX_SORT_KEY_BYTES: usize = 1024;

/// `ResourceNotFoundException` for `name`.
pub fn not_found(name: &str) -> DynamoError {
    DynamoError::new(
        Kind::ResourceNotFound,
        format!("Requested resource not found: Table: {name} not found"),
    )
}
