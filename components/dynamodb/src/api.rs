//! `POST /dynamodb`: authenticate (SigV4), read `x-amz-target`, run the operation on
//! the table layer, answer in DynamoDB's JSON 1.0 — errors included.

use crate::capacity;
use crate::error::{DynamoError, Kind};
use crate::expr::{self, Action, Cmp, Cond, Operand, Path, Step, Substitutions};
use crate::mutation::{self, Outcome, What, Write};
use crate::operation::Operation;
use crate::schema::{self, TableDef, CATALOG, CATALOG_PK, DIRECTORY_PK};
use crate::sigv4::{self, AuthError, Credentials, SignedRequest};
use crate::value::{item_from_json, item_size, item_to_json, AttrValue, Item, MAX_ITEM_BYTES};
use http::{HeaderValue, StatusCode};
use kit::table::{Cond as Written, StoreError, Table};
use kit::{Bytes, Ctx, Request, Response};
use serde_json::{json, Value};
use std::rc::Rc;

/// The JSON 1.0 protocol's content type, on requests and responses.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";
/// The `x-amz-target` prefix of every DynamoDB operation.
pub const TARGET_PREFIX: &str = "DynamoDB_20120810.";
/// DynamoDB's request body limit.
pub const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// The most partitions one Scan request reads items from once it has read an item:
/// bounds its storage reads (the directory and one read per partition) whatever
/// `Limit` says.
const SCAN_PARTITIONS: usize = 100;

/// DynamoDB's 1 MB page: a Query stops once the items it read reach it.
const PAGE_BYTES: usize = 1024 * 1024;

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
    let result = future.await;
    // The movies API caches its reads of `Movies` at the edge by the table's generation
    // (kit::cache): a write here starts a new one, as the API's own writes do. Failed
    // writes too, since a batch may have stored part of itself.
    for table in written_tables(operation, &body) {
        kit::cache::invalidate(ctx.env, table).await;
    }
    result
}

/// The tables a write operation's request names (none for a read).
fn written_tables(operation: Operation, body: &Value) -> Vec<&str> {
    match operation {
        Operation::PutItem
        | Operation::UpdateItem
        | Operation::DeleteItem
        | Operation::DeleteTable => body["TableName"].as_str().into_iter().collect(),
        Operation::BatchWriteItem => body["RequestItems"]
            .as_object()
            .map(|items| items.keys().map(String::as_str).collect())
            .unwrap_or_default(),
        Operation::TransactWriteItems => body["TransactItems"]
            .as_array()
            .map(|actions| {
                actions
                    .iter()
                    .filter_map(|a| a.as_object()?.values().next()?["TableName"].as_str())
                    .collect()
            })
            .unwrap_or_default(),
        Operation::CreateTable
        | Operation::DescribeTable
        | Operation::ListTables
        | Operation::GetItem
        | Operation::Query
        | Operation::Scan
        | Operation::BatchGetItem
        | Operation::DescribeLimits
        | Operation::DescribeEndpoints
        | Operation::TagResource
        | Operation::UntagResource
        | Operation::ListTagsOfResource
        | Operation::UpdateTable
        | Operation::UpdateTimeToLive
        | Operation::DescribeTimeToLive
        | Operation::TransactGetItems => Vec::new(),
    }
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

/// A stored item, typed again (stored by this endpoint, so it always parses).
pub(crate) fn stored_item(value: &Value) -> Result<Item, DynamoError> {
    item_from_json(value).map_err(|e| DynamoError::internal(e.message))
}

/// A Query's key condition: `hash = :v`, optionally `AND` one condition on the sort
/// key (`= < <= > >=`, `BETWEEN`, `begins_with`).
fn split_key_condition(
    cond: &Cond,
    def: &TableDef,
) -> Result<(AttrValue, Option<Cond>), DynamoError> {
    let unsupported = || DynamoError::validation("Query key condition not supported");
    let is_key = |p: &Path, name: &str| p.0 == [Step::Name(name.to_owned())];
    let parts: Vec<&Cond> = match cond {
        Cond::And(a, b) => vec![a, b],
        other => vec![other],
    };
    let (mut hash, mut range) = (None, None);
    for part in parts {
        match part {
            Cond::Compare(Operand::Path(p), Cmp::Eq, Operand::Value(v))
                if is_key(p, &def.hash.name) && hash.is_none() =>
            {
                hash = Some(v.clone())
            }
            Cond::Compare(Operand::Path(p), _, Operand::Value(_))
            | Cond::Between(Operand::Path(p), Operand::Value(_), Operand::Value(_))
            | Cond::BeginsWith(Operand::Path(p), Operand::Value(_))
                if def.range.as_ref().is_some_and(|r| is_key(p, &r.name)) && range.is_none() =>
            {
                if matches!(part, Cond::Compare(_, Cmp::Ne, _)) {
                    return Err(unsupported());
                }
                range = Some(part.clone())
            }
            _ => return Err(unsupported()),
        }
    }
    let hash = hash.ok_or_else(|| {
        DynamoError::validation(format!(
            "Query condition missed key schema element: {}",
            def.hash.name
        ))
    })?;
    Ok((hash, range))
}

/// The most items a Query asks the table layer for at once.
const READ_CHUNK: usize = 256;

/// What a Query reads: partition `pk` of `def`, the items matching `range` (the sort-key
/// condition; `key` holds the partition key's attribute), in which direction.
struct KeyRange<'q> {
    pk: &'q str,
    def: &'q TableDef,
    key: &'q Item,
    range: Option<&'q Cond>,
    forward: bool,
}

/// The table-layer sort key where the matches of a Query's sort-key condition start,
/// when the condition has a lower bound (`=`, `>`, `>=`, `BETWEEN`, `begins_with`).
fn range_start(def: &TableDef, key: &Item, range: &Cond) -> Option<String> {
    let value = match range {
        Cond::Compare(_, Cmp::Eq | Cmp::Gt | Cmp::Ge, Operand::Value(v))
        | Cond::Between(_, Operand::Value(v), _)
        | Cond::BeginsWith(_, Operand::Value(v)) => v,
        _ => return None,
    };
    let mut bound = key.clone();
    bound.insert(def.range.as_ref()?.name.clone(), value.clone());
    def.key_of(&bound, false).ok().map(|(_, sk)| sk)
}

/// The table-layer sort key every match of a Query's sort-key condition lies below,
/// when the condition has an upper bound (`=`, `<`, `<=`, `BETWEEN`): a reverse read
/// starts there.
fn range_end(def: &TableDef, key: &Item, range: &Cond) -> Option<String> {
    let (value, inclusive) = match range {
        Cond::Compare(_, Cmp::Lt, Operand::Value(v)) => (v, false),
        Cond::Compare(_, Cmp::Eq | Cmp::Le, Operand::Value(v))
        | Cond::Between(_, _, Operand::Value(v)) => (v, true),
        _ => return None,
    };
    let mut bound = key.clone();
    bound.insert(def.range.as_ref()?.name.clone(), value.clone());
    let (_, mut sk) = def.key_of(&bound, false).ok()?;
    if inclusive {
        // The least key above `sk`.
        sk.push('\0');
    }
    Some(sk)
}

/// A sort key just below `sk`, so that reading after it starts at `sk`. Keys between
/// the two (`sk`'s last character one lower, then U+10FFFF, then more) are read too if
/// any exist; the key condition still filters them out.
fn just_before(sk: &str) -> Option<String> {
    let mut out = sk.to_owned();
    let last = out.pop()?;
    if let Some(lower) = (0..u32::from(last)).rev().find_map(char::from_u32) {
        out.push(lower);
        out.push(char::MAX);
    }
    Some(out)
}

/// A Query or Scan page as it is read: DynamoDB's `Limit` counts the items read (before
/// the filter), and a page also ends once they reach 1 MB.
struct Reading<'e> {
    exprs: &'e Expressions,
    limit: usize,
    out: Vec<Item>,
    scanned: usize,
    bytes: usize,
    last: Option<Item>,
    /// Items were left unread: the answer carries `LastEvaluatedKey`.
    more: bool,
}

impl<'e> Reading<'e> {
    fn new(exprs: &'e Expressions, limit: usize) -> Self {
        Self {
            exprs,
            limit,
            out: Vec::new(),
            scanned: 0,
            bytes: 0,
            last: None,
            more: false,
        }
    }

    /// Reads `item` into the page; `false` (the item left for the next page) when the
    /// page is full.
    fn read(&mut self, item: Item) -> bool {
        if self.scanned == self.limit || self.bytes >= PAGE_BYTES {
            self.more = true;
            return false;
        }
        self.scanned += 1;
        self.bytes += item_size(&item);
        if self.exprs.filter.as_ref().is_none_or(|f| f.holds(&item)) {
            self.out.push(match &self.exprs.projection {
                Some(paths) => expr::project(&item, paths),
                None => item.clone(),
            });
        }
        self.last = Some(item);
        true
    }

    fn answer(self, def: &TableDef, count_only: bool) -> Value {
        let mut answer = json!({ "Count": self.out.len(), "ScannedCount": self.scanned });
        if !count_only {
            answer["Items"] = Value::Array(self.out.iter().map(item_to_json).collect());
        }
        // DynamoDB stops at `Limit` without looking further: a page that reaches it
        // carries LastEvaluatedKey even when nothing follows (the next page is empty).
        if self.more || self.scanned == self.limit {
            if let Some(last) = &self.last {
                answer["LastEvaluatedKey"] = item_to_json(&def.key_attributes(last));
            }
        }
        answer
    }
}

/// A Query's or Scan's `ExclusiveStartKey`: the key item and its table-layer key.
struct StartKey {
    key: Item,
    pk: String,
    sk: String,
}

/// How many partitions DeleteTable clears: within the 50 subrequests a Workers request
/// may make on the free plan, with room for the catalog and the directory.
const SWEEP_PARTITIONS: usize = 40;

/// Attempts at changing a catalog entry that concurrent changes keep changing.
const CATALOG_ATTEMPTS: usize = 16;

/// Locks of transactions a write settles before it gives up with
/// `TransactionConflictException` (each settled lock is a transaction that ended).
const LOCKS_SETTLED: usize = 4;

/// The puts of one BatchWriteItem into one partition: table, its items, partition,
/// (sort key, item) pairs.
/// One write of a BatchWriteItem: its item's sort key, the item to put (`None`:
/// delete), and the key as sent.
struct Planned {
    sk: String,
    write: Option<Value>,
    key: Value,
}

/// The writes of a BatchWriteItem into one partition of one table.
type Partition = (TableDef, Rc<dyn Table>, String, Vec<Planned>);

/// PutItem's and DeleteItem's answer: the item as it was, when `ReturnValues` asks
/// for it.
fn with_old(returns_old: bool, old: Option<Value>) -> Value {
    match (returns_old, old) {
        (true, Some(old)) => json!({ "Attributes": old }),
        _ => json!({}),
    }
}

/// The size of a stored item (its JSON as kept; none: an empty item), which a
/// request's capacity units are reckoned from.
fn size_of(stored: Option<&Value>) -> Result<usize, DynamoError> {
    Ok(stored
        .map(stored_item)
        .transpose()?
        .as_ref()
        .map_or(0, item_size))
}

/// `ResourceInUseException` for creating a table that exists.
fn in_use(name: &str) -> DynamoError {
    DynamoError::new(Kind::ResourceInUse, format!("Table already exists: {name}"))
}

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
        .ok_or_else(|| {
            DynamoError::validation(
                "The parameter 'TableName' is required but was not present in the request",
            )
        })?;
    schema::check_table_name(name)?;
    Ok(name)
}

impl Ops<'_> {
    pub(crate) fn table_name(&self) -> Result<&str, DynamoError> {
        table_name_in(self.body)
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

    /// Writes one item in one atomic read-modify-write, where the item lives, if
    /// `condition` holds for the item as it is (absent: the empty item); returns the
    /// item as it was and, for an update, as it is now.
    async fn write_if(
        &self,
        items: &Rc<dyn Table>,
        pk: &str,
        sk: &str,
        condition: Option<&Cond>,
        what: What,
    ) -> Result<(Option<Value>, Option<Value>), DynamoError> {
        let write = Write::new(self.body, condition.cloned(), what);
        // Each lock met is settled before the write runs again; only a live
        // transaction's lock stops it.
        for _ in 0..LOCKS_SETTLED {
            let mutated = items.mutate(pk, sk, &write).await?;
            match mutation::outcome(mutated.note)? {
                Outcome::Done { old, new } => return Ok((old, new)),
                Outcome::ConditionFailed { old } => {
                    return Err(condition_failed(self.body, old.as_ref()))
                }
                Outcome::Refused(e) => return Err(e),
                Outcome::Locked { txn } => {
                    crate::txn::settle(self.ctx.env, &**items, pk, sk, &txn).await?
                }
            }
        }
        Err(crate::txn::conflict())
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

    /// `Limit` of a Query or Scan: at least 1; absent, no limit.
    fn limit(&self) -> Result<usize, DynamoError> {
        match self.body.get("Limit") {
            None => Ok(usize::MAX),
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
                _ => Err(DynamoError::validation(
                    "1 validation error detected: Value at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
                )),
            },
        }
    }

    /// Whether `Select` asks for the count only.
    fn count_only(&self) -> Result<bool, DynamoError> {
        match self.body.get("Select").and_then(Value::as_str) {
            None | Some("ALL_ATTRIBUTES") | Some("SPECIFIC_ATTRIBUTES") => Ok(false),
            Some("COUNT") => Ok(true),
            Some(other) => Err(DynamoError::validation(format!(
                "1 validation error detected: Value '{other}' at 'select' failed to satisfy constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]"
            ))),
        }
    }

    /// `ExclusiveStartKey`, as given and as a table-layer key.
    fn exclusive_start(&self, def: &TableDef) -> Result<Option<StartKey>, DynamoError> {
        match self.body.get("ExclusiveStartKey") {
            Some(json) => {
                let key = item_from_json(json)?;
                let (pk, sk) = def.key_of(&key, true)?;
                Ok(Some(StartKey { key, pk, sk }))
            }
            None => Ok(None),
        }
    }

    /// Keeps the movie graph in step with a write to `Movies` (no-op for other
    /// tables): `changes` are the written items' typed JSON (or keys), each with the
    /// item now, `None` when deleted.
    async fn graph_sync(
        &self,
        def: &TableDef,
        changes: Vec<(&Value, Option<&Value>)>,
    ) -> Result<(), DynamoError> {
        if def.name != schema::MOVIES {
            return Ok(());
        }
        let changes: Vec<_> = changes
            .into_iter()
            .filter_map(|(key, now)| {
                let year = key.pointer("/year/N")?.as_str()?.parse().ok()?;
                let title = key.pointer("/title/S")?.as_str()?.to_owned();
                let cast = now.map(graph_model::Cast::from_stored);
                Some((graph_model::MovieRef { year, title }, cast))
            })
            .collect();
        graph_model::movies_changed(self.ctx.env, changes).await?;
        Ok(())
    }

    pub(crate) async fn list_partition(&self, def: &TableDef, pk: &str) -> Result<(), DynamoError> {
        Ok(ddb_model::list_partition(self.ctx.env, def, pk).await?)
    }

    /// Scan: every partition of the directory in order (or those of one `Segment` of
    /// `TotalSegments`), items in sort-key order, paged by `Limit`, the 1 MB page,
    /// `ExclusiveStartKey`, and at most [`SCAN_PARTITIONS`] partitions a request.
    async fn scan(&self) -> Result<Value, DynamoError> {
        let exprs = expressions(self.body)?;
        let (def, items) = self.table().await?;
        exprs.refuse_nested_key_paths(&def)?;
        let number = |name: &str| -> Result<Option<u64>, DynamoError> {
            match self.body.get(name) {
                None => Ok(None),
                Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                    DynamoError::validation(format!("{name} must be a non-negative integer"))
                }),
            }
        };
        let mut reading = Reading::new(&exprs, self.limit()?);
        let segment = match (number("Segment")?, number("TotalSegments")?) {
            (None, None) => None,
            (Some(s), Some(t)) if (1..=1_000_000).contains(&t) && s < t => Some((s, t)),
            _ => {
                return Err(DynamoError::validation(
                    "The Segment parameter must be less than TotalSegments, and both must be given together (TotalSegments 1 to 1000000)",
                ))
            }
        };
        let count_only = self.count_only()?;
        let start = self.exclusive_start(&def)?;
        let directory = self.ctx.env.table(&def.directory_name())?;
        let in_segment = |pk: &str| {
            segment.is_none_or(|(s, t)| {
                // FNV-1a: stable across hosts and releases.
                let hash = pk.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                });
                hash % t == s
            })
        };
        // The directory is one stored partition: one read lists every partition, where
        // paging it would read that same value once a page.
        let listed = directory.query(DIRECTORY_PK, None, usize::MAX).await?.items;
        let resume_at = start.as_ref().map(|s| s.pk.as_str());
        'partitions: for (visited, listed) in listed
            .iter()
            .filter(|l| resume_at.is_none_or(|pk| l.sk.as_str() >= pk) && in_segment(&l.sk))
            .enumerate()
        {
            // Past the bound once an item was read (the page needs an item's key to
            // resume from); empty partitions alone never end a page early.
            if visited >= SCAN_PARTITIONS && reading.last.is_some() {
                reading.more = true;
                break;
            }
            let partition = items.query(&listed.sk, None, usize::MAX).await?;
            for stored_item_ in self.visible(&*items, &listed.sk, partition.items).await? {
                if let Some(start) = &start {
                    if listed.sk == start.pk && stored_item_.sk <= start.sk {
                        continue;
                    }
                }
                if !reading.read(stored_item(&stored_item_.value)?) {
                    break 'partitions;
                }
            }
        }
        let units = capacity::read_units(reading.bytes, Self::consistent(self.body));
        let mut answer = reading.answer(&def, count_only);
        self.charge.attach(&mut answer, &def.name, units);
        Ok(answer)
    }

    async fn table(&self) -> Result<(TableDef, Rc<dyn Table>), DynamoError> {
        self.table_named(self.table_name()?).await
    }

    async fn create_table(&self) -> Result<Value, DynamoError> {
        let created = self.ctx.now.timestamp_millis() as f64 / 1000.0;
        // A table created again after a delete starts from a fresh generation: the
        // random part keeps the old generation's leftovers out of reach.
        let generation = (self.ctx.env.random)();
        let mut def = TableDef::from_create(self.body, created, generation)?;
        def.tags = crate::tags::parse(self.body.get("Tags"))?;
        if schema::builtin(&def.name).is_some() {
            return Err(in_use(&def.name));
        }
        let value = serde_json::to_value(&def).map_err(DynamoError::internal)?;
        match self
            .catalog
            .put(CATALOG_PK, &def.name, value, Written::Absent)
            .await
        {
            Ok(_) => Ok(json!({ "TableDescription": def.description("ACTIVE") })),
            Err(StoreError::ConditionFailed) => Err(in_use(&def.name)),
            Err(e) => Err(e.into()),
        }
    }

    /// UpdateTable: the table's capacity mode and units (applied at once, as every
    /// table here is `ACTIVE` at once); index, stream and encryption updates are
    /// refused, none of them being served.
    async fn update_table(&self) -> Result<Value, DynamoError> {
        let name = self.table_name()?;
        for unserved in [
            "GlobalSecondaryIndexUpdates",
            "StreamSpecification",
            "SSESpecification",
            "ReplicaUpdates",
        ] {
            if self.body.get(unserved).is_some() && schema::builtin(name).is_none() {
                return Err(DynamoError::validation(format!(
                    "{unserved} is not supported by this endpoint (no secondary indexes, streams, encryption settings or replicas)"
                )));
            }
        }
        let def = self
            .change_table(name, |def| {
                if def.update_billing(self.body)? {
                    return Ok(());
                }
                Err(DynamoError::validation(
                    "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required",
                ))
            })
            .await?;
        Ok(json!({ "TableDescription": def.description("ACTIVE") }))
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
        // The catalog's next `limit` names and the built-in ones after `start`, merged
        // in name order (bytes, as DynamoDB sorts them).
        let page = self.catalog.query(CATALOG_PK, start, limit).await?;
        let mut names: Vec<&str> = page.items.iter().map(|i| i.sk.as_str()).collect();
        names.extend(
            schema::BUILTIN
                .iter()
                .copied()
                .filter(|b| start.is_none_or(|s| *b > s)),
        );
        kit::sorted::sort(&mut names);
        names.dedup();
        let more = page.next.is_some() || names.len() > limit;
        names.truncate(limit);
        let mut out = json!({ "TableNames": names });
        if more {
            out["LastEvaluatedTableName"] = json!(names.last());
        }
        Ok(out)
    }

    async fn delete_table(&self) -> Result<Value, DynamoError> {
        let (def, items) = self.table().await?;
        if def.protected {
            return Err(DynamoError::validation(format!(
                "Resource cannot be deleted as it is currently protected against deletion. Table {} is built in: it holds a service's own data",
                def.name
            )));
        }
        let gone = self
            .catalog
            .delete(CATALOG_PK, &def.name, Written::Any)
            .await?;
        if !gone {
            return Err(schema::not_found(&def.name));
        }
        self.sweep(&def, items).await?;
        Ok(json!({ "TableDescription": def.description("DELETING") }))
    }

    /// Clears the items of a deleted table, partition by partition through its
    /// directory, up to [`SWEEP_PARTITIONS`] of them (each is a storage write: on Workers
    /// a Durable Object call, and a request may make only so many). What is past the
    /// bound, or written by a request that read the table just before it was deleted,
    /// stays in storage, unreachable: the table's generation is gone from the catalog.
    async fn sweep(&self, def: &TableDef, items: Rc<dyn Table>) -> Result<(), DynamoError> {
        let directory = self.ctx.env.table(&def.directory_name())?;
        let listed = directory
            .query(DIRECTORY_PK, None, SWEEP_PARTITIONS + 1)
            .await?
            .items;
        for partition in listed.iter().take(SWEEP_PARTITIONS) {
            items.put_partition(&partition.sk, Vec::new()).await?;
        }
        if listed.len() <= SWEEP_PARTITIONS {
            directory.put_partition(DIRECTORY_PK, Vec::new()).await?;
        }
        Ok(())
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
        exprs.refuse_nested_key_paths(&def)?;
        let item = self.item_param("Item")?;
        let size = item_size(&item);
        if size > MAX_ITEM_BYTES {
            return Err(DynamoError::validation(
                "Item size has exceeded the maximum allowed size",
            ));
        }
        let (pk, sk) = def.key_of(&item, false)?;
        let returns_old = self.returns_old()?;
        let value = item_to_json(&item);
        self.list_partition(&def, &pk).await?;
        let (old, _) = self
            .write_if(
                &items,
                &pk,
                &sk,
                exprs.condition.as_ref(),
                What::Put(value.clone()),
            )
            .await?;
        self.graph_sync(&def, vec![(&value, Some(&value))]).await?;
        let units = self
            .charge
            .units(|| Ok(capacity::write_units(size_of(old.as_ref())?.max(size))))?;
        let mut answer = with_old(returns_old, old);
        self.charge.attach(&mut answer, &def.name, units);
        Ok(answer)
    }

    async fn get_item(&self) -> Result<Value, DynamoError> {
        let exprs = expressions(self.body)?;
        let (def, items) = self.table().await?;
        exprs.refuse_nested_key_paths(&def)?;
        let key = self.item_param("Key")?;
        let (pk, sk) = def.key_of(&key, true)?;
        let read = items.get(&pk, &sk).await?.into_iter().collect();
        let found = self.visible(&*items, &pk, read).await?.pop();
        let units = self.charge.units(|| {
            let size = size_of(found.as_ref().map(|item| &item.value))?;
            Ok(capacity::read_units(size, Self::consistent(self.body)))
        })?;
        let mut answer = match found {
            Some(item) => match &exprs.projection {
                Some(paths) => {
                    json!({ "Item": item_to_json(&expr::project(&stored_item(&item.value)?, paths)) })
                }
                None => json!({ "Item": item.value }),
            },
            None => json!({}),
        };
        self.charge.attach(&mut answer, &def.name, units);
        Ok(answer)
    }

    async fn update_item(&self) -> Result<Value, DynamoError> {
        let exprs = expressions(self.body)?;
        let (def, items) = self.table().await?;
        exprs.refuse_nested_key_paths(&def)?;
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
        expr::refuse_key_updates(&exprs.update, &def.key_names())?;
        self.list_partition(&def, &pk).await?;
        let what = What::Update {
            key,
            actions: exprs.update.clone(),
        };
        let (old, new) = self
            .write_if(&items, &pk, &sk, exprs.condition.as_ref(), what)
            .await?;
        if let Some(new) = &new {
            self.graph_sync(&def, vec![(new, Some(new))]).await?;
        }
        let before = old.as_ref().map(stored_item).transpose()?;
        let after = new.as_ref().map(stored_item).transpose()?;
        let paths = expr::updated_paths(&exprs.update);
        let attributes = match (returns, &before, &after) {
            ("ALL_OLD", Some(old), _) => Some(item_to_json(old)),
            ("UPDATED_OLD", Some(old), _) => Some(item_to_json(&expr::project(old, &paths))),
            ("ALL_NEW", _, Some(new)) => Some(item_to_json(new)),
            ("UPDATED_NEW", _, Some(new)) => Some(item_to_json(&expr::project(new, &paths))),
            _ => None,
        };
        // As DynamoDB: the new image is always returned when asked for, the old one
        // when there was an old item, either possibly empty (`UPDATED_NEW` after a
        // `REMOVE`).
        let mut answer = match attributes {
            Some(a) => json!({ "Attributes": a }),
            None => json!({}),
        };
        let units = self.charge.units(|| {
            let size = |i: &Option<Item>| i.as_ref().map_or(0, item_size);
            Ok(capacity::write_units(size(&before).max(size(&after))))
        })?;
        self.charge.attach(&mut answer, &def.name, units);
        Ok(answer)
    }

    /// Query: one partition, items in sort-key order (reversed with
    /// `ScanIndexForward: false`), narrowed by the key condition, paged by `Limit`
    /// (items read), `ExclusiveStartKey` and the 1 MB page, then filtered.
    async fn query(&self) -> Result<Value, DynamoError> {
        let exprs = expressions(self.body)?;
        let (def, items) = self.table().await?;
        exprs.refuse_nested_key_paths(&def)?;
        if let Some(filter) = &exprs.filter {
            let keys = def.key_names();
            if let Some(path) = filter
                .paths()
                .into_iter()
                .find(|p| keys.contains(&p.head()))
            {
                return Err(DynamoError::validation(format!(
                    "Filter Expression can only contain non-primary key attributes: Primary key attribute: {}",
                    path.head()
                )));
            }
        }
        let key_condition = exprs.key_condition.as_ref().ok_or_else(|| {
            DynamoError::validation(
                "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
            )
        })?;
        let (hash_value, range_condition) = split_key_condition(key_condition, &def)?;
        let mut key = Item::new();
        key.insert(def.hash.name.clone(), hash_value);
        let pk = def.partition_of(&key)?;
        let mut reading = Reading::new(&exprs, self.limit()?);
        let forward = self
            .body
            .get("ScanIndexForward")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let count_only = self.count_only()?;
        let start = self.exclusive_start(&def)?;
        if let Some(start) = &start {
            if start.pk != pk {
                return Err(DynamoError::validation(
                    "The provided starting key is outside query boundaries based on provided conditions",
                ));
            }
            if range_condition
                .as_ref()
                .is_some_and(|cond| !cond.holds(&start.key))
            {
                return Err(DynamoError::validation(
                    "The provided starting key does not match the range key predicate",
                ));
            }
        }
        let query = KeyRange {
            pk: &pk,
            def: &def,
            key: &key,
            range: range_condition.as_ref(),
            forward,
        };
        self.read_chunks(&items, &query, start, &mut reading)
            .await?;
        let units = capacity::read_units(reading.bytes, Self::consistent(self.body));
        let mut answer = reading.answer(&def, count_only);
        self.charge.attach(&mut answer, &def.name, units);
        Ok(answer)
    }

    /// A Query's reading: from where the key condition's matches start (forward) or
    /// end (`ScanIndexForward: false`), or from `ExclusiveStartKey`, in chunks of the
    /// partition, until the page is full or the matches end — what it reads does not
    /// grow with the partition.
    async fn read_chunks(
        &self,
        items: &Rc<dyn Table>,
        query: &KeyRange<'_>,
        start: Option<StartKey>,
        reading: &mut Reading<'_>,
    ) -> Result<(), DynamoError> {
        let range = query.range;
        let bound = if query.forward {
            range
                .and_then(|cond| range_start(query.def, query.key, cond))
                .and_then(|sk| just_before(&sk))
        } else {
            range.and_then(|cond| range_end(query.def, query.key, cond))
        };
        // The tighter of the start key and the condition's bound.
        let mut from = match (start.map(|s| s.sk), bound) {
            (Some(a), Some(b)) if query.forward => Some(a.max(b)),
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut matched = false;
        loop {
            let chunk = reading.limit.saturating_add(1).clamp(2, READ_CHUNK);
            let page = if query.forward {
                items.query(query.pk, from.as_deref(), chunk).await?
            } else {
                items.query_back(query.pk, from.as_deref(), chunk).await?
            };
            for stored_item_ in self.visible(&**items, query.pk, page.items).await? {
                let item = stored_item(&stored_item_.value)?;
                if range.is_some_and(|cond| !cond.holds(&item)) {
                    // The matches of a key condition are one run in sort-key order.
                    if matched {
                        return Ok(());
                    }
                    continue;
                }
                matched = true;
                if !reading.read(item) {
                    return Ok(());
                }
            }
            match page.next {
                Some(next) => from = Some(next),
                None => return Ok(()),
            }
        }
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

    fn request_items(&self) -> Result<&serde_json::Map<String, Value>, DynamoError> {
        self.body
            .get("RequestItems")
            .and_then(Value::as_object)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                DynamoError::validation(
                    "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
                )
            })
    }

    /// BatchWriteItem: up to 25 puts and deletes, each atomic on its own (as in
    /// DynamoDB, the batch is not a transaction); everything is processed, so
    /// `UnprocessedItems` is always empty.
    async fn batch_write(&self) -> Result<Value, DynamoError> {
        let requests = self.request_items()?;
        // Validate everything before writing anything.
        let mut plan = Vec::new();
        let mut charged: Vec<(String, f64)> = Vec::new();
        let mut total = 0;
        for (name, list) in requests {
            let (def, items) = self.table_named(name).await?;
            let list = list.as_array().ok_or_else(|| {
                DynamoError::serialization("RequestItems values must be lists of write requests")
            })?;
            let mut keys = Vec::new();
            let mut units = 0.0;
            for request in list {
                total += 1;
                let (key, write, typed_key) = match (request.get("PutRequest"), request.get("DeleteRequest")) {
                    (Some(put), None) => {
                        let item = item_from_json(put.get("Item").ok_or_else(|| {
                            DynamoError::validation("A PutRequest needs an Item")
                        })?)?;
                        let size = item_size(&item);
                        if size > MAX_ITEM_BYTES {
                            return Err(DynamoError::validation(
                                "Item size has exceeded the maximum allowed size",
                            ));
                        }
                        let json = item_to_json(&item);
                        units += capacity::write_units(size);
                        (def.key_of(&item, false)?, Some(json.clone()), json)
                    }
                    (None, Some(delete)) => {
                        let key = item_from_json(delete.get("Key").ok_or_else(|| {
                            DynamoError::validation("A DeleteRequest needs a Key")
                        })?)?;
                        units += capacity::write_units(0);
                        (def.key_of(&key, true)?, None, item_to_json(&key))
                    }
                    _ => {
                        return Err(DynamoError::validation(
                            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
                        ))
                    }
                };
                if keys.contains(&key) {
                    return Err(DynamoError::validation(
                        "Provided list of item keys contains duplicates",
                    ));
                }
                keys.push(key.clone());
                plan.push((def.clone(), items.clone(), key, write, typed_key));
            }
            charged.push((name.clone(), units));
        }
        if total > 25 {
            return Err(DynamoError::validation(
                "Too many items requested for the BatchWriteItem call",
            ));
        }
        // The writes into one partition go in as one call where the partition lives
        // (on pages, one compare-and-swap a page), each write atomic. An item a live
        // transaction holds is left unprocessed, for the client to send again.
        let mut groups: Vec<Partition> = Vec::new();
        for (def, items, (pk, sk), write, key) in plan {
            let planned = Planned { sk, write, key };
            match groups
                .iter_mut()
                .find(|(d, _, p, _)| d.name == def.name && *p == pk)
            {
                Some((_, _, _, writes)) => writes.push(planned),
                None => groups.push((def, items, pk, vec![planned])),
            }
        }
        let mut unprocessed = serde_json::Map::new();
        let mut graph: Vec<(TableDef, Value, Option<Value>)> = Vec::new();
        for (def, items, pk, writes) in groups {
            if writes.iter().any(|w| w.write.is_some()) {
                self.list_partition(&def, &pk).await?;
            }
            let blind = |w: &Planned| -> Box<dyn kit::table::Mutation> {
                let what = match &w.write {
                    Some(value) => What::Put(value.clone()),
                    None => What::Delete,
                };
                Box::new(Write::new(&json!({}), None, what))
            };
            let mutations: Vec<_> = writes.iter().map(|w| (w.sk.clone(), blind(w))).collect();
            let notes = items.mutate_many(&pk, &mutations).await?;
            for (w, note) in writes.into_iter().zip(notes) {
                let mut outcome = mutation::outcome(note)?;
                if let Outcome::Locked { txn } = &outcome {
                    if crate::txn::settle(self.ctx.env, &*items, &pk, &w.sk, txn)
                        .await
                        .is_ok()
                    {
                        outcome =
                            mutation::outcome(items.mutate(&pk, &w.sk, &*blind(&w)).await?.note)?;
                    }
                }
                match outcome {
                    Outcome::Locked { .. } => {
                        let request = match &w.write {
                            Some(item) => json!({"PutRequest": {"Item": item}}),
                            None => json!({"DeleteRequest": {"Key": w.key}}),
                        };
                        if let Some(list) = unprocessed
                            .entry(def.name.clone())
                            .or_insert_with(|| json!([]))
                            .as_array_mut()
                        {
                            list.push(request);
                        }
                    }
                    Outcome::Refused(e) => return Err(e),
                    Outcome::Done { .. } | Outcome::ConditionFailed { .. } => {
                        if def.name == schema::MOVIES {
                            graph.push((def.clone(), w.key, w.write));
                        }
                    }
                }
            }
        }
        if let Some((def, _, _)) = graph.first() {
            let changes = graph.iter().map(|(_, k, now)| (k, now.as_ref())).collect();
            self.graph_sync(def, changes).await?;
        }
        let mut answer = json!({ "UnprocessedItems": unprocessed });
        self.charge.attach_all(&mut answer, &charged);
        Ok(answer)
    }

    /// BatchGetItem: up to 100 keys over any tables, each table with its own
    /// projection; every key is read, so `UnprocessedKeys` is always empty.
    async fn batch_get(&self) -> Result<Value, DynamoError> {
        let requests = self.request_items()?;
        let mut responses = serde_json::Map::new();
        let mut charged: Vec<(String, f64)> = Vec::new();
        let mut total = 0;
        for (name, request) in requests {
            let exprs = expressions(request)?;
            let (def, items) = self.table_named(name).await?;
            exprs.refuse_nested_key_paths(&def)?;
            let keys = request
                .get("Keys")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    DynamoError::validation("Each table of a BatchGetItem needs Keys")
                })?;
            total += keys.len();
            if total > 100 {
                return Err(DynamoError::validation(
                    "Too many items requested for the BatchGetItem call",
                ));
            }
            let mut found = Vec::new();
            let mut seen = Vec::new();
            let consistent = Self::consistent(request);
            let mut units = 0.0;
            for key in keys {
                let (pk, sk) = def.key_of(&item_from_json(key)?, true)?;
                if seen.contains(&(pk.clone(), sk.clone())) {
                    return Err(DynamoError::validation(
                        "Provided list of item keys contains duplicates",
                    ));
                }
                seen.push((pk.clone(), sk.clone()));
                let read = items.get(&pk, &sk).await?.into_iter().collect();
                let Some(item) = self.visible(&*items, &pk, read).await?.pop() else {
                    units += capacity::read_units(0, consistent);
                    continue;
                };
                // Parsed only where a projection or the capacity report needs it.
                let stored = (exprs.projection.is_some() || self.charge.wanted())
                    .then(|| stored_item(&item.value))
                    .transpose()?;
                if let Some(stored) = &stored {
                    units += capacity::read_units(item_size(stored), consistent);
                }
                found.push(match (&exprs.projection, stored) {
                    (Some(paths), Some(stored)) => item_to_json(&expr::project(&stored, paths)),
                    _ => item.value,
                });
            }
            responses.insert(name.clone(), Value::Array(found));
            charged.push((name.clone(), units));
        }
        let mut answer = json!({ "Responses": responses, "UnprocessedKeys": {} });
        self.charge.attach_all(&mut answer, &charged);
        Ok(answer)
    }

    async fn delete_item(&self) -> Result<Value, DynamoError> {
        let exprs = expressions(self.body)?;
        let (def, items) = self.table().await?;
        exprs.refuse_nested_key_paths(&def)?;
        let key = self.item_param("Key")?;
        let (pk, sk) = def.key_of(&key, true)?;
        let returns_old = self.returns_old()?;
        // One atomic read-and-delete, so the old item returned is the one deleted.
        let (old, _) = self
            .write_if(&items, &pk, &sk, exprs.condition.as_ref(), What::Delete)
            .await?;
        if old.is_some() {
            self.graph_sync(&def, vec![(&item_to_json(&key), None)])
                .await?;
        }
        let units = self
            .charge
            .units(|| Ok(capacity::write_units(size_of(old.as_ref())?)))?;
        let mut answer = with_old(returns_old, old);
        self.charge.attach(&mut answer, &def.name, units);
        Ok(answer)
    }
}
