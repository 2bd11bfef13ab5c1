//! `POST /dynamodb`: authenticate (SigV4), read `x-amz-target`, run the operation on
//! the table layer, answer in DynamoDB's JSON 1.0 — errors included.

use crate::error::{DynamoError, Kind};
use crate::expr::{self, Action, Cond, Path, Substitutions};
use crate::schema::{self, TableDef, CATALOG, CATALOG_PK};
use crate::sigv4::{self, AuthError, Credentials, SignedRequest};
use crate::value::{item_from_json, item_size, item_to_json, Item};
use http::{HeaderValue, StatusCode};
use kit::table::{Change, Cond as Written, StoreError, Table};
use kit::{Bytes, Ctx, Request, Response};
use serde_json::{json, Value};
use std::rc::Rc;

/// The JSON 1.0 protocol's content type, on requests and responses.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";
/// The `x-amz-target` prefix of every DynamoDB operation.
pub const TARGET_PREFIX: &str = "DynamoDB_20120810.";
/// DynamoDB's request body limit.
pub const BODY_LIMIT: usize = 16 * 1024 * 1024;
/// DynamoDB's item size limit.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// The operations DynamoDB defines that this endpoint does not serve answer with
/// `UnknownOperationException`, as API.md says.
const SERVED: [&str; 8] = [
    "CreateTable",
    "DescribeTable",
    "ListTables",
    "DeleteTable",
    "PutItem",
    "GetItem",
    "UpdateItem",
    "DeleteItem",
];

/// The parameters DynamoDB replaced with expressions: refused by name (API.md §6).
const LEGACY: [&str; 7] = [
    "Expected",
    "ConditionalOperator",
    "AttributesToGet",
    "KeyConditions",
    "QueryFilter",
    "ScanFilter",
    "AttributeUpdates",
];

impl From<StoreError> for DynamoError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ConditionFailed => DynamoError::new(
                Kind::ConditionalCheckFailed,
                "The conditional request failed",
            ),
            other => DynamoError::new(Kind::Internal, format!("Internal server error: {other}")),
        }
    }
}

fn auth_error(e: AuthError) -> DynamoError {
    let kind = match e {
        AuthError::Missing => Kind::MissingAuthenticationToken,
        AuthError::Incomplete(_) => Kind::IncompleteSignature,
        AuthError::UnknownKey => Kind::UnrecognizedClient,
        AuthError::BadSignature(_) => Kind::InvalidSignature,
    };
    DynamoError::new(kind, e.to_string())
}

/// The deployment's credentials; `None` (every call refused) unless both are set.
fn credentials(ctx: &Ctx<'_>) -> Option<Credentials> {
    Some(Credentials {
        access_key_id: ctx.env.config("dynamodb_access_key_id")?,
        secret_access_key: ctx.env.config("dynamodb_secret_access_key")?,
    })
}

fn authenticate(req: &Request, ctx: &Ctx<'_>) -> Result<(), DynamoError> {
    let mut headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    // WASI HTTP (Spin) hands the guest no `host` header: the host the client signed is
    // the request's authority there.
    if !headers.iter().any(|(n, _)| n == "host") {
        if let Some(authority) = req.uri().authority() {
            headers.push(("host".to_owned(), authority.as_str().to_owned()));
        }
    }
    let signed = SignedRequest {
        method: req.method().as_str(),
        path: req.uri().path(),
        query: req.uri().query().unwrap_or(""),
        headers: &headers,
        body: req.body(),
    };
    sigv4::verify(&signed, credentials(ctx).as_ref(), ctx.now)
        .map(|_| ())
        .map_err(auth_error)
}

fn respond(status: u16, body: &Value) -> Response {
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE),
    );
    response
}

/// Serves one DynamoDB request; never an API.md error, always DynamoDB's shape.
pub async fn dispatch(req: Request, ctx: Ctx<'_>) -> Result<Response, kit::ApiError> {
    Ok(match run(&req, &ctx).await {
        Ok(body) => respond(200, &body),
        Err(e) => respond(e.kind.status(), &e.body()),
    })
}

async fn run(req: &Request, ctx: &Ctx<'_>) -> Result<Value, DynamoError> {
    if req.method() != http::Method::POST {
        return Err(DynamoError::new(
            Kind::UnknownOperation,
            "DynamoDB operations are POST requests",
        ));
    }
    authenticate(req, ctx)?;
    let operation = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix(TARGET_PREFIX))
        .filter(|op| SERVED.contains(op))
        .ok_or_else(|| DynamoError::new(Kind::UnknownOperation, ""))?
        .to_owned();
    let body: Value = serde_json::from_slice(req.body()).map_err(|e| {
        DynamoError::serialization(format!(
            "Start of structure or map found where not expected: {e}"
        ))
    })?;
    if !body.is_object() {
        return Err(DynamoError::serialization(
            "The request body must be a JSON object",
        ));
    }
    let catalog = ctx.env.table(CATALOG)?;
    let ops = Ops {
        ctx,
        catalog,
        body: &body,
    };
    match operation.as_str() {
        "CreateTable" => ops.create_table().await,
        "DescribeTable" => ops.describe_table().await,
        "ListTables" => ops.list_tables().await,
        "DeleteTable" => ops.delete_table().await,
        "PutItem" => ops.put_item().await,
        "GetItem" => ops.get_item().await,
        "UpdateItem" => ops.update_item().await,
        _ => ops.delete_item().await,
    }
}

/// Refuses the legacy parameters by name.
fn refuse_legacy(body: &Value) -> Result<(), DynamoError> {
    for name in LEGACY {
        if body.get(name).is_some() {
            return Err(DynamoError::validation(format!(
                "The legacy parameter {name} is not supported: use the expression parameters (ConditionExpression, ProjectionExpression, UpdateExpression, KeyConditionExpression, FilterExpression)"
            )));
        }
    }
    Ok(())
}

fn text_param<'b>(body: &'b Value, name: &str) -> Result<Option<&'b str>, DynamoError> {
    match body.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(DynamoError::serialization(format!(
            "{name} must be a string"
        ))),
    }
}

/// The expressions of an item write: its condition, and substitutions all used.
struct Expressions {
    condition: Option<Cond>,
    update: Vec<Action>,
    projection: Option<Vec<Path>>,
}

fn expressions(body: &Value) -> Result<Expressions, DynamoError> {
    refuse_legacy(body)?;
    let subs = Substitutions::from_request(body)?;
    let condition = text_param(body, "ConditionExpression")?
        .map(|t| expr::parse_condition(t, &subs, "ConditionExpression"))
        .transpose()?;
    let update = match text_param(body, "UpdateExpression")? {
        Some(t) => expr::parse_update(t, &subs)?,
        None => Vec::new(),
    };
    let projection = text_param(body, "ProjectionExpression")?
        .map(|t| expr::parse_projection(t, &subs))
        .transpose()?;
    subs.check_all_used()?;
    Ok(Expressions {
        condition,
        update,
        projection,
    })
}

/// `ConditionalCheckFailedException`, with the item when the request asked for it.
fn condition_failed(body: &Value, current: Option<&Value>) -> DynamoError {
    let mut e = DynamoError::new(
        Kind::ConditionalCheckFailed,
        "The conditional request failed",
    );
    if body
        .get("ReturnValuesOnConditionCheckFailure")
        .and_then(Value::as_str)
        == Some("ALL_OLD")
    {
        e.item = current.cloned();
    }
    e
}

/// A stored item, typed again (stored by this endpoint, so it always parses).
fn stored_item(value: &Value) -> Result<Item, DynamoError> {
    item_from_json(value).map_err(|e| DynamoError::new(Kind::Internal, e.message))
}

/// [`stored_item`] inside a table-layer change.
fn stored(value: &Value) -> Result<Item, StoreError> {
    item_from_json(value).map_err(|e| StoreError::Corrupt(e.message))
}

struct Ops<'a> {
    ctx: &'a Ctx<'a>,
    catalog: Rc<dyn Table>,
    body: &'a Value,
}

impl Ops<'_> {
    fn table_name(&self) -> Result<&str, DynamoError> {
        let name = self
            .body
            .get("TableName")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                DynamoError::validation(
                    "The parameter 'TableName' is required but was not present in the request",
                )
            })?;
        schema::check_table_name(name)?;
        Ok(name)
    }

    async fn table(&self) -> Result<(TableDef, Rc<dyn Table>), DynamoError> {
        let name = self.table_name()?;
        let item = self
            .catalog
            .get(CATALOG_PK, name)
            .await?
            .ok_or_else(|| schema::not_found(name))?;
        let def: TableDef = serde_json::from_value(item.value)
            .map_err(|e| DynamoError::new(Kind::Internal, e.to_string()))?;
        let items = self.ctx.env.table(&def.storage_name())?;
        Ok((def, items))
    }

    async fn create_table(&self) -> Result<Value, DynamoError> {
        let created = self.ctx.now.timestamp_millis() as f64 / 1000.0;
        // A table created again after a delete starts from a fresh generation: the
        // random part keeps the old generation's leftovers out of reach.
        let generation = (self.ctx.env.random)();
        let def = TableDef::from_create(self.body, created, generation)?;
        let value = serde_json::to_value(&def)
            .map_err(|e| DynamoError::new(Kind::Internal, e.to_string()))?;
        match self
            .catalog
            .put(CATALOG_PK, &def.name, value, Written::Absent)
            .await
        {
            Ok(_) => Ok(json!({ "TableDescription": def.description("ACTIVE") })),
            Err(StoreError::ConditionFailed) => Err(DynamoError::new(
                Kind::ResourceInUse,
                format!("Table already exists: {}", def.name),
            )),
            Err(e) => Err(e.into()),
        }
    }

    async fn describe_table(&self) -> Result<Value, DynamoError> {
        let (def, _) = self.table().await?;
        Ok(json!({ "Table": def.description("ACTIVE") }))
    }

    async fn list_tables(&self) -> Result<Value, DynamoError> {
        let limit = match self.body.get("Limit") {
            None => 100,
            Some(v) => match v.as_u64() {
                Some(n @ 1..=100) => n as usize,
                _ => {
                    return Err(DynamoError::validation(
                        "1 validation error detected: Value at 'limit' failed to satisfy constraint: Member must have value between 1 and 100",
                    ))
                }
            },
        };
        let start = self
            .body
            .get("ExclusiveStartTableName")
            .and_then(Value::as_str);
        let page = self.catalog.query(CATALOG_PK, start, limit).await?;
        let names: Vec<&str> = page.items.iter().map(|i| i.sk.as_str()).collect();
        let mut out = json!({ "TableNames": names });
        if let Some(last) = page.next {
            out["LastEvaluatedTableName"] = json!(last);
        }
        Ok(out)
    }

    async fn delete_table(&self) -> Result<Value, DynamoError> {
        let (def, _) = self.table().await?;
        let gone = self
            .catalog
            .delete(CATALOG_PK, &def.name, Written::Any)
            .await?;
        if !gone {
            return Err(schema::not_found(&def.name));
        }
        Ok(json!({ "TableDescription": def.description("DELETING") }))
    }

    fn item_param(&self, name: &str) -> Result<Item, DynamoError> {
        let json = self.body.get(name).ok_or_else(|| {
            DynamoError::validation(format!(
                "The parameter '{name}' is required but was not present in the request"
            ))
        })?;
        item_from_json(json)
    }

    /// `ReturnValues` of PutItem and DeleteItem: `NONE` (default) or `ALL_OLD`.
    fn returns_old(&self) -> Result<bool, DynamoError> {
        match self.body.get("ReturnValues").and_then(Value::as_str) {
            None | Some("NONE") => Ok(false),
            Some("ALL_OLD") => Ok(true),
            Some(other) => Err(DynamoError::validation(format!(
                "ReturnValues can only be ALL_OLD or NONE here, not {other}"
            ))),
        }
    }

    async fn put_item(&self) -> Result<Value, DynamoError> {
        let exprs = expressions(self.body)?;
        let (def, items) = self.table().await?;
        let item = self.item_param("Item")?;
        if item_size(&item) > MAX_ITEM_BYTES {
            return Err(DynamoError::validation(
                "Item size has exceeded the maximum allowed size",
            ));
        }
        let (pk, sk) = def.key_of(&item, false)?;
        let returns_old = self.returns_old()?;
        let value = item_to_json(&item);
        let (mut old, mut refused) = (None, None);
        items
            .update(&pk, &sk, 16, &mut |current| {
                old = current.map(|i| i.value.clone());
                refused = None;
                if let Some(cond) = &exprs.condition {
                    let before = match &old {
                        Some(v) => stored(v)?,
                        None => Item::new(),
                    };
                    if !cond.holds(&before) {
                        refused = Some(condition_failed(self.body, old.as_ref()));
                        return Ok(Change::Keep);
                    }
                }
                Ok(Change::Put(value.clone()))
            })
            .await?;
        if let Some(e) = refused {
            return Err(e);
        }
        Ok(match (returns_old, old) {
            (true, Some(old)) => json!({ "Attributes": old }),
            _ => json!({}),
        })
    }

    async fn get_item(&self) -> Result<Value, DynamoError> {
        let exprs = expressions(self.body)?;
        let (def, items) = self.table().await?;
        let key = self.item_param("Key")?;
        let (pk, sk) = def.key_of(&key, true)?;
        Ok(match items.get(&pk, &sk).await? {
            Some(item) => match &exprs.projection {
                Some(paths) => {
                    json!({ "Item": item_to_json(&expr::project(&stored_item(&item.value)?, paths)) })
                }
                None => json!({ "Item": item.value }),
            },
            None => json!({}),
        })
    }

    async fn update_item(&self) -> Result<Value, DynamoError> {
        let exprs = expressions(self.body)?;
        let (def, items) = self.table().await?;
        let key = self.item_param("Key")?;
        let (pk, sk) = def.key_of(&key, true)?;
        let returns = self
            .body
            .get("ReturnValues")
            .and_then(Value::as_str)
            .unwrap_or("NONE");
        if !["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"].contains(&returns) {
            return Err(DynamoError::validation(format!(
                "1 validation error detected: Value '{returns}' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]"
            )));
        }
        let mut keys = vec![def.hash.name.as_str()];
        if let Some(range) = &def.range {
            keys.push(range.name.as_str());
        }
        let (mut before, mut after, mut refused) = (None, None, None);
        items
            .update(&pk, &sk, 16, &mut |current| {
                refused = None;
                let old = match current {
                    Some(i) => Some(stored(&i.value)?),
                    None => None,
                };
                let base = old.clone().unwrap_or_else(|| key.clone());
                if let Some(cond) = &exprs.condition {
                    if !cond.holds(old.as_ref().unwrap_or(&Item::new())) {
                        refused = Some(condition_failed(self.body, current.map(|i| &i.value)));
                        return Ok(Change::Keep);
                    }
                }
                let new = match expr::apply(&base, &exprs.update, &keys) {
                    Ok(new) => new,
                    Err(e) => {
                        refused = Some(e);
                        return Ok(Change::Keep);
                    }
                };
                if item_size(&new) > MAX_ITEM_BYTES {
                    refused = Some(DynamoError::validation(
                        "Item size to update has exceeded the maximum allowed size",
                    ));
                    return Ok(Change::Keep);
                }
                before = old;
                let value = item_to_json(&new);
                after = Some(new);
                Ok(Change::Put(value))
            })
            .await?;
        if let Some(e) = refused {
            return Err(e);
        }
        let paths = expr::updated_paths(&exprs.update);
        let attributes = match (returns, &before, &after) {
            ("ALL_OLD", Some(old), _) => Some(item_to_json(old)),
            ("UPDATED_OLD", Some(old), _) => Some(item_to_json(&expr::project(old, &paths))),
            ("ALL_NEW", _, Some(new)) => Some(item_to_json(new)),
            ("UPDATED_NEW", _, Some(new)) => Some(item_to_json(&expr::project(new, &paths))),
            _ => None,
        };
        Ok(match attributes {
            Some(a) if a.as_object().is_some_and(|m| !m.is_empty()) => json!({ "Attributes": a }),
            _ => json!({}),
        })
    }

    async fn delete_item(&self) -> Result<Value, DynamoError> {
        let exprs = expressions(self.body)?;
        let (def, items) = self.table().await?;
        let key = self.item_param("Key")?;
        let (pk, sk) = def.key_of(&key, true)?;
        let returns_old = self.returns_old()?;
        // One atomic read-and-delete, so the old item returned is the one deleted.
        let (mut old, mut refused) = (None, None);
        items
            .update(&pk, &sk, 16, &mut |current| {
                old = current.map(|i| i.value.clone());
                refused = None;
                if let Some(cond) = &exprs.condition {
                    let before = match &old {
                        Some(v) => stored(v)?,
                        None => Item::new(),
                    };
                    if !cond.holds(&before) {
                        refused = Some(condition_failed(self.body, old.as_ref()));
                        return Ok(Change::Keep);
                    }
                }
                Ok(Change::Delete)
            })
            .await?;
        if let Some(e) = refused {
            return Err(e);
        }
        Ok(match (returns_old, old) {
            (true, Some(old)) => json!({ "Attributes": old }),
            _ => json!({}),
        })
    }
}
