//! Table tags: `TagResource`, `UntagResource`, `ListTagsOfResource`, and `Tags` on
//! `CreateTable`. A table's tags are part of its catalog entry, so a table created
//! with tags has them from the start, and a table created again under the name
//! starts untagged. DynamoDB's rules hold: at most 50 tags, a key of 1–128 and a value
//! of 0–256 characters of letters, digits, spaces and `_ . : / = + - @`. The built-in
//! tables have no catalog entry, and cannot be tagged.

use crate::api::Ops;
use crate::error::{DynamoError, Kind};
use crate::schema::{self, TableDef, CATALOG_PK};
use serde_json::{json, Value};

/// The most tags a table may have.
const MAX_TAGS: usize = 50;

/// `Tags` of a request (TagResource, CreateTable) as `(key, value)` pairs, checked.
pub fn parse(list: Option<&Value>) -> Result<Vec<(String, String)>, DynamoError> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| DynamoError::serialization("Unexpected field type"))?;
    let mut tags = Vec::with_capacity(list.len());
    for tag in list {
        let field = |name: &str| tag.get(name).and_then(Value::as_str);
        let (Some(key), Some(value)) = (field("Key"), field("Value")) else {
            return Err(DynamoError::validation(
                "One or more parameter values were invalid: a tag needs a Key and a Value",
            ));
        };
        check(key, 1, 128, "tagKey")?;
        check(value, 0, 256, "tagValue")?;
        tags.push((key.to_owned(), value.to_owned()));
    }
    if tags.len() > MAX_TAGS {
        return Err(too_many());
    }
    Ok(tags)
}

fn too_many() -> DynamoError {
    DynamoError::validation(format!(
        "One or more parameter values were invalid: The number of tags exceeds the limit of {MAX_TAGS}"
    ))
}

/// A tag key or value: its length in characters and AWS's tag character set.
fn check(text: &str, min: usize, max: usize, what: &str) -> Result<(), DynamoError> {
    let allowed = |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
    let length = text.chars().count();
    if (min..=max).contains(&length) && text.chars().all(allowed) {
        return Ok(());
    }
    Err(DynamoError::validation(format!(
        "1 validation error detected: Value '{text}' at '{what}' failed to satisfy constraint: Member must have length between {min} and {max} and satisfy regular expression pattern: [\\p{{L}}\\p{{Z}}\\p{{N}}_.:/=+\\-@]*"
    )))
}

/// The table a `ResourceArn` names: `arn:aws:dynamodb:<region>:<account>:table/<name>`.
fn table_of(arn: &str) -> Result<&str, DynamoError> {
    if !arn.starts_with("arn:") {
        return Err(DynamoError::validation(format!(
            "Invalid TableArn: ARNs must start with 'arn:': {arn}"
        )));
    }
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "dynamodb", _, _, resource] => match resource.strip_prefix("table/") {
            Some(name) if schema::check_table_name(name).is_ok() => Ok(name),
            _ => Err(invalid_arn(arn)),
        },
        _ => Err(invalid_arn(arn)),
    }
}

fn invalid_arn(arn: &str) -> DynamoError {
    DynamoError::validation(format!(
        "Invalid TableArn: Invalid ResourceArn provided as input {arn}"
    ))
}

fn not_found(arn: &str) -> DynamoError {
    DynamoError::new(
        Kind::ResourceNotFound,
        format!("Requested resource not found: ResourceArn: {arn} not found"),
    )
}

impl Ops<'_> {
    fn arn(&self) -> Result<&str, DynamoError> {
        self.body
            .get("ResourceArn")
            .and_then(Value::as_str)
            .ok_or_else(|| DynamoError::missing("ResourceArn"))
    }

    /// The catalog entry of the table `arn` names (`None`: a built-in table).
    async fn tagged_table(&self, arn: &str) -> Result<Option<TableDef>, DynamoError> {
        let name = table_of(arn)?;
        let Some(item) = self.catalog.get(CATALOG_PK, name).await? else {
            if schema::builtin(name).is_some() {
                return Ok(None);
            }
            return Err(not_found(arn));
        };
        let def: TableDef = kit::json::from_value(&item.value).map_err(DynamoError::internal)?;
        Ok(Some(def))
    }

    /// Changes the tags of the table `arn` names with `change`, atomically against
    /// other tag changes and a table dropped and created again meanwhile.
    async fn retag(
        &self,
        change: impl Fn(&mut Vec<(String, String)>) -> Result<(), DynamoError>,
    ) -> Result<Value, DynamoError> {
        let arn = self.arn()?;
        let name = table_of(arn)?;
        if schema::builtin(name).is_some() {
            return Err(DynamoError::validation(format!(
                "The built-in table {name} cannot be tagged"
            )));
        }
        match self.change_table(name, |def| change(&mut def.tags)).await {
            Ok(_) => Ok(json!({})),
            Err(e) if e.kind == Kind::ResourceNotFound => Err(not_found(arn)),
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn tag_resource(&self) -> Result<Value, DynamoError> {
        let given = parse(self.body.get("Tags"))?;
        if given.is_empty() {
            return Err(DynamoError::validation(
                "1 validation error detected: Value '[]' at 'tags' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        self.retag(|tags| {
            for (key, value) in &given {
                match tags.iter_mut().find(|(k, _)| k == key) {
                    Some(tag) => tag.1.clone_from(value),
                    None => tags.push((key.clone(), value.clone())),
                }
            }
            if tags.len() > MAX_TAGS {
                return Err(too_many());
            }
            Ok(())
        })
        .await
    }

    pub(crate) async fn untag_resource(&self) -> Result<Value, DynamoError> {
        let keys: Vec<&str> = self
            .body
            .get("TagKeys")
            .and_then(Value::as_array)
            .ok_or_else(|| DynamoError::missing("TagKeys"))?
            .iter()
            .map(|k| {
                k.as_str()
                    .ok_or_else(|| DynamoError::serialization("Unexpected field type"))
            })
            .collect::<Result<_, _>>()?;
        self.retag(|tags| {
            tags.retain(|(k, _)| !keys.contains(&k.as_str()));
            Ok(())
        })
        .await
    }

    pub(crate) async fn list_tags(&self) -> Result<Value, DynamoError> {
        let arn = self.arn()?;
        let tags = self
            .tagged_table(arn)
            .await?
            .map(|def| def.tags)
            .unwrap_or_default();
        let tags: Vec<Value> = tags
            .into_iter()
            .map(|(key, value)| json!({"Key": key, "Value": value}))
            .collect();
        Ok(json!({ "Tags": tags }))
    }
}
