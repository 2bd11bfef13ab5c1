//! `POST /dynamodb`: authenticate (SigV4), read `x-amz-target`, run the operation on
//! the table layer, answer in DynamoDB's JSON 1.0 — errors included. This module is
//! the door (dispatch, authentication, the request's expressions, the table lookup);
//! the operations live by family: [`tables`], [`items`], [`reads`] (Query, Scan),
//! [`batches`], and beside this module `tags`, `ttl` and `transact`.

use crate::capacity;
use crate::error::{DynamoError, Kind};
use crate::expr::{self, Action, Cmp, Cond, Operand, Path, Step, Substitutions};
use crate::mutation::{self, Outcome, What, Write};
use crate::operation::Operation;
use crate::schema::{self, TableDef, CATALOG, CATALOG_PK, DIRECTORY_PK};
use crate::sigv4::{self, AuthError, Credentials, SignedRequest};
use crate::value::{item_from_json, item_size, item_to_json, AttrValue, Item, MAX_ITEM_BYTES};
use ddb_writes::Door;
use http::{HeaderValue, StatusCode};
use kit::table::{Cond as Written, StoreError, Table};
use kit::{Bytes, Ctx, Request, Response};
use serde_json::{json, Value};
use std::rc::Rc;

mod batches;
mod items;
mod reads;
mod tables;

/// The JSON 1.0 protocol's content type, on requests and responses.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";
/// The `x-amz-target` prefix of every DynamoDB operation.
pub const TARGET_PREFIX: &str = "DynamoDB_20120810.";
/// DynamoDB's request body limit.
pub const BODY_LIMIT: usize = 16 * 1024 * 1024;

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
    let verified =
        sigv4::verify(&signed, credentials(ctx).as_ref(), ctx.now).map_err(auth_error)?;
    // A signature for another service (S3, say) must not open DynamoDB, even one made
    // with the right secret.
    if verified.service != "dynamodb" {
        return Err(auth_error(AuthError::BadSignature(
            "Credential should be scoped to correct service: 'dynamodb'. ".into(),
        )));
    }
    Ok(())
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

/// Serves one DynamoDB request; never the services' error shape, always DynamoDB's shape.
pub async fn dispatch(req: Request, ctx: Ctx<'_>) -> Result<Response, kit::ApiError> {
    Ok(match run(&req, &ctx).await {
        Ok(body) => respond(200, &body),
        Err(e) => {
            let mut response = respond(e.kind.status(), &e.body());
            // The log line names the error by DynamoDB's name, after its `#`.
            let name = e.kind.type_name();
            let name = name.rsplit_once('#').map_or(name, |(_, n)| n);
            kit::log::mark_error(&mut response, name, e.detail);
            response
        }
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
        .and_then(Operation::parse)
        .ok_or_else(|| DynamoError::new(Kind::UnknownOperation, ""))?;
    let mut body: Value = kit::json::from_bytes(req.body()).map_err(|e| {
        DynamoError::serialization(format!(
            "Start of structure or map found where not expected: {e}"
        ))
    })?;
    if !body.is_object() {
        return Err(DynamoError::serialization(
            "The request body must be a JSON object",
        ));
    }
    crate::params::check(&body)?;
    let charge = capacity::Charge::of(&body)?;
    capacity::check_collection_metrics(&body)?;
    crate::legacy::translate(operation, &mut body)?;
    let catalog = ctx.env.table(CATALOG)?;
    let ops = Ops {
        ctx,
        catalog,
        body: &body,
        charge,
    };
    type Op<'f> =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, DynamoError>> + 'f>>;
    let future: Op<'_> = match operation {
        Operation::CreateTable => Box::pin(ops.create_table()),
        Operation::DescribeTable => Box::pin(ops.describe_table()),
        Operation::ListTables => Box::pin(ops.list_tables()),
        Operation::DeleteTable => Box::pin(ops.delete_table()),
        Operation::PutItem => Box::pin(ops.put_item()),
        Operation::GetItem => Box::pin(ops.get_item()),
        Operation::UpdateItem => Box::pin(ops.update_item()),
        Operation::DeleteItem => Box::pin(ops.delete_item()),
        Operation::Query => Box::pin(ops.query()),
        Operation::Scan => Box::pin(ops.scan()),
        Operation::BatchWriteItem => Box::pin(ops.batch_write()),
        Operation::BatchGetItem => Box::pin(ops.batch_get()),
        Operation::DescribeLimits => Box::pin(std::future::ready(Ok(describe_limits()))),
        Operation::DescribeEndpoints => Box::pin(std::future::ready(Ok(describe_endpoints(req)))),
        Operation::TagResource => Box::pin(ops.tag_resource()),
        Operation::UntagResource => Box::pin(ops.untag_resource()),
        Operation::ListTagsOfResource => Box::pin(ops.list_tags()),
        Operation::UpdateTable => Box::pin(ops.update_table()),
        Operation::UpdateTimeToLive => Box::pin(ops.update_time_to_live()),
        Operation::DescribeTimeToLive => Box::pin(ops.describe_time_to_live()),
        Operation::TransactWriteItems => Box::pin(ops.transact_write()),
        Operation::TransactGetItems => Box::pin(ops.transact_get()),
    };
    future.await
}

/// DynamoDB's default quotas of an account in a region: what SDKs and tools that size
/// tables by them expect (nothing is provisioned or throttled here).
fn describe_limits() -> Value {
    json!({
        "AccountMaxReadCapacityUnits": 80000,
        "AccountMaxWriteCapacityUnits": 80000,
        "TableMaxReadCapacityUnits": 40000,
        "TableMaxWriteCapacityUnits": 40000,
    })
}

/// This endpoint's own address (the host the request reached), cacheable for a day
/// as DynamoDB's answer is. Endpoint discovery addresses a host alone, so a client
/// must keep its configured endpoint URL (which ends in `/dynamodb`) rather than
/// discover one.
fn describe_endpoints(req: &Request) -> Value {
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("localhost");
    json!({"Endpoints": [{"Address": host, "CachePeriodInMinutes": 1440}]})
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

/// The expressions of a request, parsed, with its substitutions all used.
pub(crate) struct Expressions {
    pub(crate) condition: Option<Cond>,
    pub(crate) update: Vec<Action>,
    pub(crate) projection: Option<Vec<Path>>,
    key_condition: Option<Cond>,
    filter: Option<Cond>,
}

pub(crate) fn expressions(body: &Value) -> Result<Expressions, DynamoError> {
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
    let key_condition = text_param(body, "KeyConditionExpression")?
        .map(|t| expr::parse_condition(t, &subs, "KeyConditionExpression"))
        .transpose()?;
    let filter = text_param(body, "FilterExpression")?
        .map(|t| expr::parse_condition(t, &subs, "FilterExpression"))
        .transpose()?;
    subs.check_all_used()?;
    Ok(Expressions {
        condition,
        update,
        projection,
        key_condition,
        filter,
    })
}

impl Expressions {
    /// Refuses paths into `def`'s key attributes where DynamoDB does: projections,
    /// filters and updates (not conditions).
    pub(crate) fn refuse_nested_key_paths(&self, def: &TableDef) -> Result<(), DynamoError> {
        let mut paths = expr::update_paths(&self.update);
        paths.extend(self.projection.iter().flatten());
        if let Some(filter) = &self.filter {
            paths.extend(filter.paths());
        }
        expr::refuse_nested_key_paths(paths, &def.key_names())
    }
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

/// The size of a stored item (its JSON as kept; none: an empty item), which a
/// request's capacity units are reckoned from.
pub(crate) fn size_of(stored: Option<&Value>) -> Result<usize, DynamoError> {
    Ok(stored
        .map(stored_item)
        .transpose()?
        .as_ref()
        .map_or(0, item_size))
}

/// A stored item, typed again (stored by this endpoint, so it always parses).
pub(crate) fn stored_item(value: &Value) -> Result<Item, DynamoError> {
    item_from_json(value).map_err(|e| DynamoError::internal(e.message))
}

/// Attempts at changing a catalog entry that concurrent changes keep changing.
const CATALOG_ATTEMPTS: usize = 16;

/// One request's operation: its context, the catalog of tables, its body and what it
/// asked to be told of the capacity it consumed.
pub(crate) struct Ops<'a> {
    pub(crate) ctx: &'a Ctx<'a>,
    pub(crate) catalog: Rc<dyn Table>,
    pub(crate) body: &'a Value,
    pub(crate) charge: capacity::Charge,
}

/// The `TableName` of a request (or of one action of a transaction), checked.
pub(crate) fn table_name_in(body: &Value) -> Result<&str, DynamoError> {
    let name = body
        .get("TableName")
        .and_then(Value::as_str)
        .ok_or_else(|| DynamoError::missing("TableName"))?;
    schema::check_table_name(name)?;
    Ok(name)
}

impl Ops<'_> {
    pub(crate) fn table_name(&self) -> Result<&str, DynamoError> {
        table_name_in(self.body)
    }

    /// The request's time in milliseconds since the epoch.
    pub(crate) fn now_ms(&self) -> i64 {
        self.ctx.now.timestamp_millis()
    }

    /// The request's time, in seconds since the epoch with milliseconds (DynamoDB's
    /// date-time numbers).
    pub(crate) fn now(&self) -> f64 {
        self.ctx.now.timestamp_millis() as f64 / 1000.0
    }

    /// Changes the catalog entry of table `name` with `change`, atomically against
    /// other changes of it and a table dropped and created again meanwhile; returns the
    /// entry as written. A built-in table has no entry: its settings cannot change.
    pub(crate) async fn change_table(
        &self,
        name: &str,
        change: impl Fn(&mut TableDef) -> Result<(), DynamoError>,
    ) -> Result<TableDef, DynamoError> {
        if schema::builtin(name).is_some() {
            return Err(DynamoError::validation(format!(
                "Table {name} is built in: it holds a service's own data, and its settings cannot be changed"
            )));
        }
        for _ in 0..CATALOG_ATTEMPTS {
            let item = self
                .catalog
                .get(CATALOG_PK, name)
                .await?
                .ok_or_else(|| schema::not_found(name))?;
            let mut def: TableDef =
                kit::json::from_value(&item.value).map_err(DynamoError::internal)?;
            change(&mut def)?;
            let value = serde_json::to_value(&def).map_err(DynamoError::internal)?;
            match self
                .catalog
                .put(CATALOG_PK, name, value, Written::Version(item.version))
                .await
            {
                Ok(_) => return Ok(def),
                Err(StoreError::ConditionFailed) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Contention.into())
    }

    /// The items of `page` (of partition `pk` of `items`) as readers see them: locks
    /// of transactions resolved, items that only a transaction's lock holds left out.
    pub(crate) async fn visible(
        &self,
        items: &dyn Table,
        pk: &str,
        page: Vec<kit::table::Item>,
    ) -> Result<Vec<kit::table::Item>, DynamoError> {
        if !crate::txn::any_locked(page.iter()) {
            return Ok(page);
        }
        let mut seen = Vec::with_capacity(page.len());
        for item in page {
            if let Some(item) = crate::txn::visible(self.ctx.env, items, pk, item).await? {
                seen.push(item);
            }
        }
        Ok(seen)
    }

    /// Whether the request asks for a strongly consistent read (every read here is
    /// one; this only says what it is charged).
    fn consistent(body: &Value) -> bool {
        body.get("ConsistentRead").and_then(Value::as_bool) == Some(true)
    }

    /// The door every write to a DynamoDB-modelled table goes through.
    pub(crate) fn door(&self) -> Door<'_> {
        Door::new(self.ctx.env)
    }

    async fn table(&self) -> Result<(TableDef, Rc<dyn Table>), DynamoError> {
        self.table_named(self.table_name()?).await
    }

    pub(crate) async fn table_named(
        &self,
        name: &str,
    ) -> Result<(TableDef, Rc<dyn Table>), DynamoError> {
        schema::check_table_name(name)?;
        if let Some(def) = schema::builtin(name) {
            let items = self.ctx.env.table(&def.storage_name())?;
            return Ok((def, items));
        }
        let item = self
            .catalog
            .get(CATALOG_PK, name)
            .await?
            .ok_or_else(|| schema::not_found(name))?;
        let def: TableDef = kit::json::from_value(&item.value).map_err(DynamoError::internal)?;
        let items = self.ctx.env.table(&def.storage_name())?;
        Ok((def, items))
    }
}
