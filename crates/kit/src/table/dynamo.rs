//! The table layer on a DynamoDB-compatible engine — AWS DynamoDB, ScyllaDB Alternator,
//! and locally dynalite or moto — over DynamoDB's JSON protocol, signed with SigV4
//! ([`crate::sigv4`]), through the host's outbound HTTP ([`crate::Fetch`]): the way
//! past one machine on Spin, where every instance then shares one truth.
//!
//! # Layout
//!
//! One DynamoDB table, `<prefix>items` ([`DynamoConfig::table`]), holds every table of
//! the deployment, one DynamoDB item per item:
//!
//! | attribute | type | holds |
//! | --- | --- | --- |
//! | `p` (partition key) | S | `<table>/<pk>` (table names never contain `/`); past 2,048 bytes, `<table>/` and a hash of `<pk>` |
//! | `s` (sort key) | S | `<sk>`, NUL-led when empty or NUL-led (DynamoDB refuses an empty key string; the map keeps byte order) |
//! | `v` | N | the item's version (1 on creation, +1 on every write) |
//! | `j` | S | the item's JSON |
//!
//! The first call that finds it missing creates it (on-demand capacity; idempotent
//! when instances race) and waits until it is `ACTIVE`; [`DynamoTables::create_table`]
//! does the same ahead of time, for a deployment whose runtime credentials may not
//! create tables.
//!
//! # Configuration
//!
//! [`chosen`] reads the deployment's `table_backend` and `table_dynamodb_*` settings, the
//! same names on every host (Spin variables; Workers vars and secrets, upper-cased).
//!
//! # Operations
//!
//! Reads are strongly consistent (`ConsistentRead`). A conditional write is one
//! `UpdateItem` (`SET j ADD v`, so the version moves on the server) whose
//! `ConditionExpression` is the condition; a query is `Query` pages with
//! `ExclusiveStartKey`; a batched read is `BatchGetItem` with `UnprocessedKeys` sent
//! again; a change of several items of a partition ([`Table::update_items`], and so
//! every `mutate_many`) is one `TransactWriteItems` conditional on every item's version,
//! run again on a lost race (item by item where the engine has no transactions). Throttling and 5xx answers are retried with exponential
//! backoff and full jitter, [`ATTEMPTS`] times in all.
//!
//! # Limits of this backend
//!
//! An item is at most DynamoDB's 400 KB ([`MAX_ITEM_BYTES`] here, a
//! [`StoreError::ItemTooLarge`] past it); a sort key at most 1,024 bytes (a longer one
//! is refused: DynamoDB keys at their own limits, once typed, and index entries of long
//! keys do not fit); a transaction at most 100 items, so
//! `put_items`, `put_partition` and `update_items` of more than 100 items are atomic
//! per 100. On an engine without transactions (dynalite) they are atomic per item,
//! each item's write conditional on the version read, as on a key-value store's pages.

use super::{Change, Cond, Item, Page, StoreError, Table};
use crate::sigv4::{self, Credentials};
use crate::{Bytes, Clock, Fetch};
use async_trait::async_trait;
use serde_json::{json, Map, Value};
use std::rc::Rc;

/// DynamoDB's largest item, keys and attribute names included.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// Tries of one call against throttling and 5xx answers.
pub const ATTEMPTS: u32 = 6;

/// The most items one `TransactWriteItems` or `BatchGetItem` takes.
const BATCH: usize = 100;

/// The most items one `Query` call asks for (DynamoDB also stops at 1 MB).
const QUERY_PAGE: usize = 1_000;

/// The error of an operation the engine does not have.
const UNKNOWN_OPERATION: &str = "UnknownOperationException";

/// The error of a call to a table that is not there.
const NOT_FOUND: &str = "ResourceNotFoundException";

/// Where the tables are and how to sign for them.
#[derive(Clone)]
pub struct DynamoConfig {
    /// The engine's base URL, e.g. `https://dynamodb.us-east-1.amazonaws.com` or
    /// `http://127.0.0.1:8000`.
    pub endpoint: String,
    pub region: String,
    /// Prefixed to the one DynamoDB table's name (`<prefix>items`).
    pub table_prefix: String,
    pub credentials: Credentials,
}

impl DynamoConfig {
    /// The DynamoDB table holding every table of the deployment.
    pub fn table(&self) -> String {
        format!("{}items", self.table_prefix)
    }
}

impl std::fmt::Debug for DynamoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoConfig")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("table_prefix", &self.table_prefix)
            .finish_non_exhaustive()
    }
}

/// What a deployment's configuration chooses for its tables.
#[derive(Debug, Clone)]
pub enum Chosen {
    /// The host's own storage (`kv` on Spin, `durable-objects` on Workers).
    Host,
    /// A DynamoDB-compatible engine.
    Dynamo(DynamoConfig),
}

/// The prefix of the one DynamoDB table's name when `table_dynamodb_table_prefix` is
/// not set.
pub const DEFAULT_PREFIX: &str = "edge-";

/// Reads `table_backend` (`host`, the host's own backend's name, by default, or
/// `dynamodb`) and, for `dynamodb`, `table_dynamodb_endpoint`, `table_dynamodb_region`,
/// `table_dynamodb_table_prefix` (default [`DEFAULT_PREFIX`]),
/// `table_dynamodb_access_key_id` and `table_dynamodb_secret_access_key`. Anything
/// missing or malformed is [`StoreError::Unconfigured`] saying which: a deployment
/// never falls back to other storage than the one it names.
pub fn chosen(config: &dyn crate::Config, host: &str) -> Result<Chosen, StoreError> {
    let get = |key: &str| config.get(key).filter(|v| !v.is_empty());
    let backend = get("table_backend").unwrap_or_else(|| host.to_owned());
    if backend == host {
        return Ok(Chosen::Host);
    }
    if backend != "dynamodb" {
        return Err(StoreError::Unconfigured(format!(
            "table_backend is {backend:?}: this host offers {host:?} or \"dynamodb\""
        )));
    }
    let required = |key: &str| {
        get(key).ok_or_else(|| {
            StoreError::Unconfigured(format!("table_backend is dynamodb but {key} is not set"))
        })
    };
    let endpoint = required("table_dynamodb_endpoint")?;
    let uri: http::Uri = endpoint.parse().map_err(|e| {
        StoreError::Unconfigured(format!("table_dynamodb_endpoint {endpoint:?}: {e}"))
    })?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
        return Err(StoreError::Unconfigured(format!(
            "table_dynamodb_endpoint {endpoint:?} is not an http(s) URL"
        )));
    }
    let table_prefix = get("table_dynamodb_table_prefix").unwrap_or_else(|| DEFAULT_PREFIX.into());
    let fits = table_prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !fits || table_prefix.len() > 200 {
        return Err(StoreError::Unconfigured(format!(
            "table_dynamodb_table_prefix {table_prefix:?}: at most 200 of [A-Za-z0-9_.-]"
        )));
    }
    Ok(Chosen::Dynamo(DynamoConfig {
        endpoint,
        region: required("table_dynamodb_region")?,
        table_prefix,
        credentials: Credentials {
            access_key_id: required("table_dynamodb_access_key_id")?,
            secret_access_key: required("table_dynamodb_secret_access_key")?,
        },
    }))
}

/// A DynamoDB error answer.
#[derive(Debug, Clone, PartialEq)]
struct Refusal {
    status: u16,
    /// The error's name (`__type` after `#`).
    kind: String,
    message: String,
    body: Value,
}

impl Refusal {
    fn retryable(&self) -> bool {
        self.status >= 500
            || [
                "ThrottlingException",
                "ProvisionedThroughputExceededException",
                "RequestLimitExceeded",
                "LimitExceededException",
            ]
            .contains(&self.kind.as_str())
    }

    fn into_store_error(self) -> StoreError {
        match self.kind.as_str() {
            "ConditionalCheckFailedException" => StoreError::ConditionFailed,
            // A condition of a transaction failed, or another writer's transaction held
            // an item: either way a lost race.
            "TransactionCanceledException" | "TransactionConflictException" => {
                StoreError::ConditionFailed
            }
            _ => StoreError::Backend(format!(
                "DynamoDB answered {} {}: {}",
                self.status, self.kind, self.message
            )),
        }
    }
}

/// The signed JSON client every table of one deployment shares.
pub struct DynamoClient {
    config: DynamoConfig,
    fetch: Rc<dyn Fetch>,
    clock: Rc<dyn Clock>,
    random: fn() -> u64,
    trips: super::RoundTrips,
    /// Whether the engine runs `TransactWriteItems` (dynalite does not): unknown until
    /// the first try.
    transactions: std::cell::Cell<Option<bool>>,
    /// Whether this client has seen the table `ACTIVE` (or created it).
    created: std::cell::Cell<bool>,
}

impl std::fmt::Debug for DynamoClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl DynamoClient {
    pub fn new(
        config: DynamoConfig,
        fetch: Rc<dyn Fetch>,
        clock: Rc<dyn Clock>,
        random: fn() -> u64,
        trips: super::RoundTrips,
    ) -> Self {
        Self {
            config,
            fetch,
            clock,
            random,
            trips,
            transactions: std::cell::Cell::new(None),
            created: std::cell::Cell::new(false),
        }
    }

    /// `TransactWriteItems` of `writes`; `Ok(false)`, having written nothing, on an
    /// engine that lacks the operation.
    async fn transact(&self, writes: &[Value]) -> Result<bool, StoreError> {
        if self.transactions.get() == Some(false) {
            return Ok(false);
        }
        match self
            .call("TransactWriteItems", &json!({ "TransactItems": writes }))
            .await
        {
            Ok(_) => {
                self.transactions.set(Some(true));
                Ok(true)
            }
            Err(StoreError::Backend(message)) if message.contains(UNKNOWN_OPERATION) => {
                self.transactions.set(Some(false));
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// One operation; the first that finds no table creates it ([`Self::create_table`])
    /// and is sent again.
    async fn call(&self, operation: &str, body: &Value) -> Result<Value, StoreError> {
        match self.call_once(operation, body).await {
            Err(StoreError::Backend(message))
                if message.contains(NOT_FOUND) && !self.created.get() =>
            {
                self.create_table().await?;
                self.call_once(operation, body).await
            }
            answer => answer,
        }
    }

    /// Creates the one DynamoDB table (on-demand capacity) unless it is there, and
    /// waits until it is `ACTIVE`.
    pub async fn create_table(&self) -> Result<(), StoreError> {
        let table = self.config.table();
        let created = self
            .call_once(
                "CreateTable",
                &json!({
                    "TableName": table,
                    "BillingMode": "PAY_PER_REQUEST",
                    "AttributeDefinitions": [
                        {"AttributeName": "p", "AttributeType": "S"},
                        {"AttributeName": "s", "AttributeType": "S"},
                    ],
                    "KeySchema": [
                        {"AttributeName": "p", "KeyType": "HASH"},
                        {"AttributeName": "s", "KeyType": "RANGE"},
                    ],
                }),
            )
            .await;
        match created {
            Ok(_) => {}
            Err(StoreError::Backend(message)) if message.contains("ResourceInUseException") => {}
            Err(e) => return Err(e),
        }
        for _ in 0..120 {
            let described = self
                .call_once("DescribeTable", &json!({ "TableName": table }))
                .await?;
            if described["Table"]["TableStatus"] == "ACTIVE" {
                self.created.set(true);
                return Ok(());
            }
            self.clock.sleep(500).await;
        }
        Err(StoreError::Backend(format!(
            "{table} did not become ACTIVE"
        )))
    }

    /// One operation, retried against throttling and 5xx answers.
    async fn call_once(&self, operation: &str, body: &Value) -> Result<Value, StoreError> {
        let bytes = serde_json::to_vec(body).map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                // Full jitter over 25 ms × 2^attempt (AWS's advice for its SDKs).
                let cap = 25u64 << attempt.min(8);
                self.clock.sleep((self.random)() % cap).await;
            }
            match self.send(operation, &bytes).await {
                Ok(answer) => return Ok(answer),
                Err(Err(refusal)) if refusal.retryable() => last = Some(refusal),
                Err(Err(refusal)) => return Err(refusal.into_store_error()),
                Err(Ok(network)) => last = Some(network),
            }
        }
        Err(last.map_or(StoreError::Contention, |refusal| {
            StoreError::Backend(format!(
                "DynamoDB {operation}: still {} {} after {ATTEMPTS} tries: {}",
                refusal.status, refusal.kind, refusal.message
            ))
        }))
    }

    /// One signed request. The error is `Ok` for a network failure (retryable, as a
    /// 5xx), `Err` for the engine's refusal.
    async fn send(&self, operation: &str, body: &[u8]) -> Result<Value, Result<Refusal, Refusal>> {
        self.trips.bump();
        let now = self.clock.now();
        let url: http::Uri = self
            .config
            .endpoint
            .parse()
            .map_err(|e| Err(refusal(0, "BadEndpoint", &format!("{e}"))))?;
        let host = url
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let path = match url.path() {
            "" => "/",
            path => path,
        };
        let headers = vec![
            (
                "content-type".to_owned(),
                "application/x-amz-json-1.0".to_owned(),
            ),
            ("host".to_owned(), host),
            ("x-amz-date".to_owned(), crate::time::format_amz_date(now)),
            (
                "x-amz-target".to_owned(),
                format!("DynamoDB_20120810.{operation}"),
            ),
        ];
        let authorization = sigv4::authorization(
            &self.config.credentials,
            &self.config.region,
            "dynamodb",
            "POST",
            path,
            &headers,
            body,
            now,
        );
        let mut request = http::Request::post(url.clone());
        // `host` is signed but not sent: every host's HTTP client sets it from the URL
        // (and `wasi:http` and `fetch` refuse it as a header).
        for (name, value) in headers.iter().filter(|(name, _)| name != "host") {
            request = request.header(name, value);
        }
        let request = request
            .header("authorization", authorization)
            .body(Bytes::copy_from_slice(body))
            .map_err(|e| Err(refusal(0, "BadRequest", &e.to_string())))?;
        let response = self
            .fetch
            .fetch(request)
            .await
            .map_err(|e| Ok(refusal(503, "Network", &e.to_string())))?;
        let status = response.status().as_u16();
        let answer: Value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        if response.status().is_success() {
            return Ok(answer);
        }
        let kind = answer["__type"]
            .as_str()
            .and_then(|t| t.rsplit('#').next())
            .unwrap_or("Unknown");
        let message = answer["message"]
            .as_str()
            .or(answer["Message"].as_str())
            .unwrap_or_default();
        let mut refused = refusal(status, kind, message);
        refused.body = answer;
        Err(Err(refused))
    }
}

fn refusal(status: u16, kind: &str, message: &str) -> Refusal {
    Refusal {
        status,
        kind: kind.to_owned(),
        message: message.to_owned(),
        body: Value::Null,
    }
}

/// Every table of a deployment on one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoTables {
    client: Rc<DynamoClient>,
}

impl DynamoTables {
    pub fn new(client: DynamoClient) -> Self {
        Self {
            client: Rc::new(client),
        }
    }

    /// The engine the deployment's `config` chooses ([`chosen`]), reached through the
    /// host's `fetch`, `clock` and `random`; `None` for the host's own backend `host`.
    pub fn chosen(
        config: &dyn crate::Config,
        host: &str,
        fetch: Rc<dyn Fetch>,
        clock: Rc<dyn Clock>,
        random: fn() -> u64,
        trips: super::RoundTrips,
    ) -> Result<Option<Self>, StoreError> {
        Ok(match chosen(config, host)? {
            Chosen::Host => None,
            Chosen::Dynamo(config) => Some(Self::new(DynamoClient::new(
                config, fetch, clock, random, trips,
            ))),
        })
    }

    /// Table `name` of the deployment.
    pub fn table(&self, name: &str) -> DynamoTable {
        DynamoTable {
            client: self.client.clone(),
            name: name.to_owned(),
        }
    }

    /// Creates the one DynamoDB table now instead of on first use (a setup step).
    pub async fn create_table(&self) -> Result<(), StoreError> {
        self.client.create_table().await
    }
}

/// One table of the deployment, on the shared DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoTable {
    client: Rc<DynamoClient>,
    name: String,
}

fn s(text: &str) -> Value {
    json!({ "S": text })
}

impl DynamoTable {
    /// `<table>/<pk>`, or past DynamoDB's 2,048 bytes `<table>/` and a NUL-led hash of
    /// `pk`: a partition key is only ever compared for equality.
    fn partition(&self, pk: &str) -> String {
        let whole = format!("{}/{pk}", self.name);
        if whole.len() <= MAX_PARTITION_KEY {
            return whole;
        }
        use sha2::Digest;
        let hash = sha2::Sha256::digest(pk.as_bytes());
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}/\u{0}sha256:{hex}", self.name)
    }

    fn key(&self, pk: &str, sk: &str) -> Value {
        json!({ "p": s(&self.partition(pk)), "s": s(&sort_key(sk)) })
    }

    fn table(&self) -> String {
        self.client.config.table()
    }

    /// The `Update` of one item to `value`: its JSON, the version one up.
    fn update_of(
        &self,
        pk: &str,
        sk: &str,
        value: &Value,
        cond: Cond,
    ) -> Result<Value, StoreError> {
        let sort = sort_key(sk);
        if sort.len() > MAX_SORT_KEY {
            return Err(StoreError::Backend(format!(
                "a sort key of {} bytes: DynamoDB keeps at most {MAX_SORT_KEY}",
                sort.len()
            )));
        }
        let text = value.to_string();
        let size = pk.len() + sk.len() + text.len() + self.name.len() + 16;
        if size > MAX_ITEM_BYTES {
            return Err(StoreError::ItemTooLarge(size));
        }
        let mut update = json!({
            "TableName": self.table(),
            "Key": self.key(pk, sk),
            "UpdateExpression": "SET j = :j ADD v :one",
            "ExpressionAttributeValues": { ":j": s(&text), ":one": { "N": "1" } },
        });
        add_condition(&mut update, cond);
        Ok(update)
    }

    async fn pages(
        &self,
        pk: &str,
        bound: Option<(&str, &str)>,
        forward: bool,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let mut values = Map::new();
        values.insert(":p".into(), s(&self.partition(pk)));
        let mut condition = "p = :p".to_owned();
        if let Some((op, sk)) = bound {
            condition.push_str(&format!(" AND s {op} :s"));
            values.insert(":s".into(), s(&sort_key(sk)));
        }
        let mut items = Vec::new();
        let mut start: Option<Value> = None;
        // One more than asked: whether more remain without a second round trip.
        let wanted = limit.saturating_add(1);
        while items.len() < wanted {
            let mut query = json!({
                "TableName": self.table(),
                "KeyConditionExpression": condition,
                "ExpressionAttributeValues": values,
                "ConsistentRead": true,
                "ScanIndexForward": forward,
                "Limit": (wanted - items.len()).min(QUERY_PAGE),
            });
            if let Some(start) = start.take() {
                query["ExclusiveStartKey"] = start;
            }
            let answer = self.client.call("Query", &query).await?;
            for stored in answer["Items"].as_array().into_iter().flatten() {
                items.push(item_of(stored)?);
            }
            match answer.get("LastEvaluatedKey") {
                Some(key) if !key.is_null() => start = Some(key.clone()),
                _ => break,
            }
        }
        let more = items.len() > limit;
        items.truncate(limit);
        let next = if more {
            items.last().map(|i| i.sk.clone())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// Writes `writes` (each an `Update` or a `Delete` action) as transactions of at
    /// most [`BATCH`], or one by one on an engine without transactions.
    async fn write_all(&self, writes: Vec<Value>) -> Result<(), StoreError> {
        for chunk in writes.chunks(BATCH) {
            if !self.client.transact(chunk).await? {
                for write in chunk {
                    self.write_one(write).await?;
                }
            }
        }
        Ok(())
    }

    /// One `Update` or `Delete` action of a transaction, on its own.
    async fn write_one(&self, write: &Value) -> Result<(), StoreError> {
        let (operation, action) = match (write.get("Update"), write.get("Delete")) {
            (Some(update), _) => ("UpdateItem", update),
            (_, Some(delete)) => ("DeleteItem", delete),
            _ => return Err(StoreError::Backend(format!("not a write action: {write}"))),
        };
        self.client.call(operation, action).await.map(drop)
    }

    /// [`Table::update_items`] item by item, each item atomic: on an engine without
    /// transactions.
    async fn update_one_by_one(
        &self,
        pk: &str,
        sks: &[String],
        max_attempts: u32,
        change: &mut ItemsChange<'_>,
    ) -> Result<u32, StoreError> {
        let mut retries = 0;
        for sk in sks {
            let updated = self
                .update(pk, sk, max_attempts, &mut |item| change(sk, item))
                .await?;
            retries += updated.retries;
        }
        Ok(retries)
    }
}

/// The decision of a [`Table::update_items`].
type ItemsChange<'c> =
    dyn for<'s, 'i> FnMut(&'s str, Option<&'i Item>) -> Result<Change, StoreError> + 'c;

fn add_condition(action: &mut Value, cond: Cond) {
    match cond {
        Cond::Any => {}
        Cond::Absent => action["ConditionExpression"] = json!("attribute_not_exists(p)"),
        Cond::Version(version) => {
            action["ConditionExpression"] = json!("v = :v");
            let values = &mut action["ExpressionAttributeValues"];
            if !values.is_object() {
                *values = json!({});
            }
            values[":v"] = json!({ "N": version.to_string() });
        }
    }
}

/// DynamoDB's longest partition key, in bytes.
const MAX_PARTITION_KEY: usize = 2048;

/// DynamoDB's longest sort key, in bytes.
const MAX_SORT_KEY: usize = 1024;

/// The DynamoDB sort key of table-layer sort key `sk`: itself, or NUL and itself when it
/// is empty (DynamoDB refuses an empty key) or starts with NUL. The map keeps byte order:
/// every NUL-led key sorts before every other, and among themselves as before.
fn sort_key(sk: &str) -> String {
    if sk.is_empty() || sk.starts_with('\u{0}') {
        format!("\u{0}{sk}")
    } else {
        sk.to_owned()
    }
}

/// A stored DynamoDB item as the table layer's item.
fn item_of(stored: &Value) -> Result<Item, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("DynamoDB item without {what}"));
    let sk = stored["s"]["S"]
        .as_str()
        .map(|s| s.strip_prefix('\u{0}').unwrap_or(s))
        .ok_or_else(|| corrupt("its sort key"))?;
    let version = stored["v"]["N"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt("its version"))?;
    let text = stored["j"]["S"]
        .as_str()
        .ok_or_else(|| corrupt("its JSON"))?;
    Ok(Item {
        sk: sk.to_owned(),
        version,
        value: crate::json::from_text(text).map_err(|e| StoreError::Corrupt(e.to_string()))?,
    })
}

#[async_trait(?Send)]
impl Table for DynamoTable {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let answer = self
            .client
            .call(
                "GetItem",
                &json!({ "TableName": self.table(), "Key": self.key(pk, sk), "ConsistentRead": true }),
            )
            .await?;
        match answer.get("Item") {
            Some(stored) if stored.is_object() => Ok(Some(item_of(stored)?)),
            _ => Ok(None),
        }
    }

    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Option<Item>>, StoreError> {
        let mut found: std::collections::HashMap<(String, String), Item> = Default::default();
        let mut wanted: Vec<Value> = Vec::new();
        for (pk, sk) in keys {
            let key = self.key(pk, sk);
            if !wanted.contains(&key) {
                wanted.push(key);
            }
        }
        for chunk in wanted.chunks(BATCH) {
            let mut pending = json!({ self.table(): { "Keys": chunk, "ConsistentRead": true } });
            for _ in 0..ATTEMPTS {
                let answer = self
                    .client
                    .call("BatchGetItem", &json!({ "RequestItems": pending }))
                    .await?;
                for stored in answer["Responses"][self.table()]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let partition = stored["p"]["S"].as_str().unwrap_or_default();
                    let item = item_of(stored)?;
                    found.insert((partition.to_owned(), item.sk.clone()), item);
                }
                match answer.get("UnprocessedKeys") {
                    Some(rest) if rest.as_object().is_some_and(|r| !r.is_empty()) => {
                        pending = rest.clone();
                    }
                    _ => {
                        pending = Value::Null;
                        break;
                    }
                }
            }
            if !pending.is_null() {
                return Err(StoreError::Backend(format!(
                    "BatchGetItem left keys unprocessed after {ATTEMPTS} tries"
                )));
            }
        }
        Ok(keys
            .iter()
            .map(|(pk, sk)| found.get(&(self.partition(pk), sk.clone())).cloned())
            .collect())
    }

    async fn put(&self, pk: &str, sk: &str, value: Value, cond: Cond) -> Result<u64, StoreError> {
        let mut update = self.update_of(pk, sk, &value, cond)?;
        update["ReturnValues"] = json!("UPDATED_NEW");
        let answer = self.client.call("UpdateItem", &update).await?;
        answer["Attributes"]["v"]["N"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StoreError::Corrupt("UpdateItem returned no version".into()))
    }

    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<bool, StoreError> {
        let mut delete = json!({
            "TableName": self.table(),
            "Key": self.key(pk, sk),
            "ReturnValues": "ALL_OLD",
        });
        add_condition(&mut delete, cond);
        let answer = self.client.call("DeleteItem", &delete).await?;
        Ok(answer.get("Attributes").is_some_and(Value::is_object))
    }

    async fn query(&self, pk: &str, after: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        self.pages(pk, after.map(|sk| (">", sk)), true, limit).await
    }

    async fn query_back(
        &self,
        pk: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        self.pages(pk, before.map(|sk| ("<", sk)), false, limit)
            .await
    }

    async fn put_partition(&self, pk: &str, items: Vec<(String, Value)>) -> Result<(), StoreError> {
        let mut writes = Vec::new();
        let keep: std::collections::HashSet<&str> =
            items.iter().map(|(sk, _)| sk.as_str()).collect();
        let mut after: Option<String> = None;
        loop {
            let page = self.query(pk, after.as_deref(), 1_000).await?;
            for item in &page.items {
                if !keep.contains(item.sk.as_str()) {
                    writes.push(json!({ "Delete": {
                        "TableName": self.table(), "Key": self.key(pk, &item.sk),
                    }}));
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        for (sk, value) in &items {
            writes.push(json!({ "Update": self.update_of(pk, sk, value, Cond::Any)? }));
        }
        self.write_all(writes).await
    }

    async fn put_items(&self, pk: &str, items: Vec<(String, Value)>) -> Result<(), StoreError> {
        let writes = items
            .iter()
            .map(|(sk, value)| Ok(json!({ "Update": self.update_of(pk, sk, value, Cond::Any)? })))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write_all(writes).await
    }

    async fn update_items(
        &self,
        pk: &str,
        sks: &[String],
        max_attempts: u32,
        change: &mut dyn for<'s, 'i> FnMut(&'s str, Option<&'i Item>) -> Result<Change, StoreError>,
    ) -> Result<u32, StoreError> {
        if self.client.transactions.get() == Some(false) {
            return self.update_one_by_one(pk, sks, max_attempts, change).await;
        }
        let mut retries = 0;
        for (at, chunk) in sks.chunks(BATCH).enumerate() {
            let done = at * BATCH;
            let keys: Vec<(String, String)> =
                chunk.iter().map(|sk| (pk.to_owned(), sk.clone())).collect();
            let mut lost = 0;
            loop {
                if lost >= max_attempts {
                    return Err(StoreError::Contention);
                }
                let current = self.get_many(&keys).await?;
                let mut writes = Vec::new();
                for (sk, item) in chunk.iter().zip(&current) {
                    let cond = item
                        .as_ref()
                        .map_or(Cond::Absent, |i| Cond::Version(i.version));
                    match (change(sk, item.as_ref())?, item) {
                        (Change::Keep, _) | (Change::Delete, None) => {}
                        (Change::Delete, Some(_)) => {
                            let mut delete =
                                json!({ "TableName": self.table(), "Key": self.key(pk, sk) });
                            add_condition(&mut delete, cond);
                            writes.push(json!({ "Delete": delete }));
                        }
                        (Change::Put(value), _) => {
                            writes.push(json!({ "Update": self.update_of(pk, sk, &value, cond)? }));
                        }
                    }
                }
                if writes.is_empty() {
                    break;
                }
                match self.client.transact(&writes).await {
                    Ok(true) => break,
                    Ok(false) => {
                        let rest = &sks[sks.len().min(done)..];
                        let more = self
                            .update_one_by_one(pk, rest, max_attempts, change)
                            .await?;
                        return Ok(retries + lost + more);
                    }
                    Err(StoreError::ConditionFailed) => lost += 1,
                    Err(e) => return Err(e),
                }
            }
            retries += lost;
        }
        Ok(retries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MapConfig;

    fn config(pairs: &[(&str, &str)]) -> MapConfig {
        MapConfig(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    const FULL: [(&str, &str); 5] = [
        ("table_backend", "dynamodb"),
        ("table_dynamodb_endpoint", "http://127.0.0.1:8000"),
        ("table_dynamodb_region", "us-east-1"),
        ("table_dynamodb_access_key_id", "AKID"),
        ("table_dynamodb_secret_access_key", "secret"),
    ];

    fn refusal(pairs: &[(&str, &str)]) -> String {
        match chosen(&config(pairs), "kv") {
            Err(StoreError::Unconfigured(why)) => why,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn chosen_is_the_hosts_own_backend_when_nothing_is_set() {
        assert!(matches!(chosen(&config(&[]), "kv"), Ok(Chosen::Host)));
        let named = chosen(&config(&[("table_backend", "kv")]), "kv");
        assert!(matches!(named, Ok(Chosen::Host)));
    }

    #[test]
    fn chosen_is_dynamodb_with_every_setting_and_the_default_prefix() {
        let Ok(Chosen::Dynamo(dynamo)) = chosen(&config(&FULL), "kv") else {
            panic!("dynamodb not chosen");
        };
        assert_eq!(dynamo.endpoint, "http://127.0.0.1:8000");
        assert_eq!(dynamo.table(), "edge-items");
        assert_eq!(dynamo.credentials.access_key_id, "AKID");
    }

    #[test]
    fn chosen_refuses_another_hosts_backend_or_an_unknown_one() {
        let why = refusal(&[("table_backend", "durable-objects")]);
        assert!(why.contains("durable-objects"), "{why}");
        assert!(refusal(&[("table_backend", "redis")]).contains("redis"));
    }

    #[test]
    fn chosen_names_each_missing_or_bad_dynamodb_setting() {
        for (missing, (key, _)) in FULL.iter().enumerate().skip(1) {
            let pairs: Vec<_> = FULL
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != missing)
                .map(|(_, p)| *p)
                .collect();
            let why = refusal(&pairs);
            assert!(why.contains(key), "{why}");
        }
        let mut bad = FULL.to_vec();
        bad[1] = ("table_dynamodb_endpoint", "ftp://engine");
        assert!(refusal(&bad).contains("not an http(s) URL"));
        bad[1] = ("table_dynamodb_endpoint", "http://127.0.0.1:8000");
        bad.push(("table_dynamodb_table_prefix", "no spaces"));
        assert!(refusal(&bad).contains("table_dynamodb_table_prefix"));
    }

    #[test]
    fn unconfigured_storage_is_a_503_that_keeps_the_reason_for_the_log() {
        let error = crate::ApiError::from(StoreError::Unconfigured("why".into()));
        assert_eq!(error.status, http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error.code, "storage_unconfigured");
        assert!(!error.message.contains("why"));
    }
}
