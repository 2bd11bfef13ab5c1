//! The Cloudflare Workers backends.
//!
//! - [`KvBackend`]: Workers KV, for read-mostly tables. KV has no compare-and-swap, so
//!   its conditional writes re-read and compare just before writing: correct for one
//!   writer at a time, not atomic under concurrent writers (KV is also eventually
//!   consistent across locations). Tables that need atomic conditions go to Durable
//!   Objects.
//! - [`DoClient`] + [`serve_partition_op`]: one Durable Object per `(table, partition)`.
//!   The Worker ships each [`TableOp`] to the partition's object, which runs it on its
//!   items, rows of its SQLite database ([`RowTable`]); the object handles one event at
//!   a time and its input gates keep a read-modify-write atomic, which is DynamoDB's
//!   per-item atomicity.

use super::js_request;
use super::rows::RowTable;
#[cfg(feature = "storage-selftest")]
use crate::table::wire::KvOp;
use crate::table::wire::{decode_answer, KvOpResult};
use crate::table::{
    Mutations, PartitionTable, RawKv, RemoteOps, RoundTrips, StoreError, TableOp, TableOpResult,
    Token,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::rc::Rc;
use worker::{durable::Storage, kv::KvStore, ObjectNamespace};

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The text stored at `key` in a Durable Object's storage. Through the raw binding, not
/// `Storage::get::<String>`, whose `serde_wasm_bindgen` deserializer and its errors'
/// float formatting cost the Worker ~13 KB of wasm.
pub(super) async fn get_text(storage: &Storage, key: &str) -> Result<Option<String>, StoreError> {
    let promise = storage
        .as_raw()
        .get(key)
        .map_err(|e| backend(worker::Error::from(e)))?;
    let value = worker::wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .map_err(|e| backend(worker::Error::from(e)))?;
    if value.is_undefined() {
        return Ok(None);
    }
    value
        .as_string()
        .map(Some)
        .ok_or_else(|| StoreError::Corrupt(format!("the value stored at {key} is not text")))
}

/// Stores `text` at `key` in a Durable Object's storage (as [`get_text`] reads it).
async fn put_text(storage: &Storage, key: &str, text: &str) -> Result<(), StoreError> {
    storage
        .put_raw(key, worker::wasm_bindgen::JsValue::from_str(text))
        .await
        .map_err(backend)
}

/// Workers KV as a [`RawKv`].
#[derive(Clone)]
pub struct KvBackend {
    kv: Rc<KvStore>,
    trips: RoundTrips,
}

impl std::fmt::Debug for KvBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KvBackend")
    }
}

impl KvBackend {
    pub fn new(kv: KvStore, trips: RoundTrips) -> Self {
        Self {
            kv: Rc::new(kv),
            trips,
        }
    }
}

#[async_trait(?Send)]
impl RawKv for KvBackend {
    async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.trips.bump();
        self.kv.get(key).bytes().await.map_err(backend)
    }

    /// The token is the bytes `load` saw.
    async fn load(&self, key: &str) -> Result<(Option<Vec<u8>>, Token), StoreError> {
        let current = self.read(key).await?;
        Ok((current.clone(), Token::new(current)))
    }

    async fn swap(&self, key: &str, token: Token, value: Vec<u8>) -> Result<bool, StoreError> {
        if self.read(key).await? != token.get::<Option<Vec<u8>>>()? {
            return Ok(false);
        }
        self.write(key, value).await.map(|()| true)
    }

    async fn write(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        self.trips.bump();
        self.kv
            .put_bytes(key, &value)
            .map_err(backend)?
            .execute()
            .await
            .map_err(backend)
    }
}

/// A partition stored whole in its Durable Object's key-value storage, as versions
/// before [`RowTable`] kept it: what the storage self-test's `durable_object_whole`
/// backend runs, so that the move into rows is tested against the code that wrote the
/// old layout. Only used inside the object.
pub struct DoStorageKv {
    storage: Storage,
}

#[async_trait(?Send)]
impl RawKv for DoStorageKv {
    async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(get_text(&self.storage, key).await?.map(String::into_bytes))
    }

    /// The token is nothing: the object runs one operation at a time, so nothing can
    /// change between `load` and `swap`.
    async fn load(&self, key: &str) -> Result<(Option<Vec<u8>>, Token), StoreError> {
        Ok((self.read(key).await?, Token::new(())))
    }

    async fn swap(&self, key: &str, _token: Token, value: Vec<u8>) -> Result<bool, StoreError> {
        self.write(key, value).await.map(|()| true)
    }

    async fn write(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        // Partitions are JSON, so always UTF-8; storing text keeps them readable in
        // wrangler's local SQLite files.
        let text = String::from_utf8(value).map_err(backend)?;
        put_text(&self.storage, key, &text).await
    }
}

/// How a partition object keeps the partition an operation names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Items one by one, rows of the object's SQLite database ([`RowTable`]).
    #[default]
    Rows,
    /// The whole partition as one value ([`DoStorageKv`]), as older versions kept it.
    Whole,
}

impl Layout {
    fn is_rows(&self) -> bool {
        *self == Layout::Rows
    }
}

/// What the Worker sends a partition object.
#[derive(Debug, Serialize, Deserialize)]
pub struct PartitionCall {
    pub table: String,
    pub op: TableOp,
    #[serde(default, skip_serializing_if = "Layout::is_rows")]
    pub layout: Layout,
}

/// Runs one [`PartitionCall`] (JSON) on the object's storage, rebuilding a shipped
/// mutation with `mutations` (the Worker's, which knows every service's); returns the
/// JSON of `Result<TableOpResult, StoreError>`. Called from the Durable Object class's
/// `fetch`.
pub async fn serve_partition_op(storage: Storage, body: &[u8], mutations: Mutations) -> Vec<u8> {
    let result: Result<TableOpResult, StoreError> = async {
        let call: PartitionCall =
            crate::json::from_bytes(body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        match call.layout {
            Layout::Rows => {
                let table = RowTable::new(storage, &call.table);
                call.op.apply(&table, mutations).await
            }
            Layout::Whole => {
                let table = PartitionTable::new(DoStorageKv { storage }, &call.table);
                call.op.apply(&table, mutations).await
            }
        }
    }
    .await;
    serde_json::to_vec(&result).unwrap_or_default()
}

/// The name of the Durable Object holding partition `partition` of `table`. NUL cannot
/// appear in a table name, so each (table, partition) maps to one name.
pub fn object_name(table: &str, partition: &str) -> String {
    format!("{table}\u{0}{partition}")
}

/// A table in this Durable Object's own storage, in the layout [`serve_partition_op`]
/// keeps: code running inside the object reads and writes its partition locally, with
/// no subrequest. Only the object's own partition of `table` may be used through it.
pub fn local_table(storage: Storage, table: &str) -> RowTable {
    RowTable::new(storage, table)
}

/// The Worker side of a Durable-Object-backed table: one round trip (a fetch to the
/// partition's object) per operation.
pub struct DoClient {
    namespace: ObjectNamespace,
    table: String,
    trips: RoundTrips,
    layout: Layout,
    /// Every partition in one object (named as [`DoKv`] names it), not one each.
    one_object: bool,
}

impl DoClient {
    pub fn new(namespace: ObjectNamespace, table: &str, trips: RoundTrips) -> Self {
        Self {
            namespace,
            table: table.to_owned(),
            trips,
            layout: Layout::Rows,
            one_object: false,
        }
    }

    /// A table whose partitions one object holds together, as rows: a read of many
    /// partitions is one call (the graph's per-level read). It is the object that
    /// [`DoKv`] drove, and its partitions stored whole move into rows on first touch.
    pub fn one_object(namespace: ObjectNamespace, table: &str, trips: RoundTrips) -> Self {
        Self {
            one_object: true,
            ..Self::new(namespace, table, trips)
        }
    }

    /// The same, asking the objects to keep `layout` (the self-test's old layout).
    pub fn with_layout(self, layout: Layout) -> Self {
        Self { layout, ..self }
    }
}

#[async_trait(?Send)]
impl RemoteOps for DoClient {
    async fn call(&self, op: TableOp) -> Result<TableOpResult, StoreError> {
        self.trips.bump();
        let name = if self.one_object {
            one_object_name(&self.table)
        } else {
            object_name(&self.table, op.partition())
        };
        let stub = self
            .namespace
            .id_from_name(&name)
            .and_then(|id| id.get_stub())
            .map_err(backend)?;
        let call = PartitionCall {
            table: self.table.clone(),
            op,
            layout: self.layout,
        };
        let body = serde_json::to_string(&call).map_err(backend)?;
        let request = js_request("https://partition/op", "POST", None, Some(body.as_bytes()))
            .map_err(backend)?;
        let mut response = stub.fetch_with_request(request).await.map_err(backend)?;
        let bytes = response.bytes().await.map_err(backend)?;
        decode_answer(&bytes)
    }

    fn holds_every_partition(&self) -> bool {
        self.one_object
    }
}

/// The name of the one object holding every partition of `table`: `\u{1}<table>`, a
/// name no per-partition object can have.
fn one_object_name(table: &str) -> String {
    format!("\u{1}{table}")
}

/// The most keys one Durable Object storage `get` takes.
#[cfg(feature = "storage-selftest")]
const DO_GET_KEYS: usize = 128;

/// A stored value and its write count, kept together as `"<count> <text>"` in one key,
/// so a compare-and-swap reads and writes one key.
pub(super) fn split_counted(stored: String) -> Result<(u64, String), StoreError> {
    let (count, text) = stored
        .split_once(' ')
        .ok_or_else(|| StoreError::Corrupt("stored value without its write count".into()))?;
    let count = count
        .parse()
        .map_err(|_| StoreError::Corrupt("stored value with a bad write count".into()))?;
    Ok((count, text.to_owned()))
}

#[cfg(feature = "storage-selftest")]
async fn load_counted(storage: &Storage, key: &str) -> Result<(u64, Option<String>), StoreError> {
    match get_text(storage, key).await? {
        Some(stored) => {
            let (count, text) = split_counted(stored)?;
            Ok((count, Some(text)))
        }
        None => Ok((0, None)),
    }
}

#[cfg(feature = "storage-selftest")]
async fn run_kv_op(storage: &Storage, op: KvOp) -> Result<KvOpResult, StoreError> {
    Ok(match op {
        KvOp::ReadMany { keys } => {
            let mut values = Vec::with_capacity(keys.len());
            for chunk in keys.chunks(DO_GET_KEYS) {
                let found = storage
                    .get_multiple(chunk.to_vec())
                    .await
                    .map_err(backend)?;
                for key in chunk {
                    let value = found.get(&worker::wasm_bindgen::JsValue::from_str(key));
                    values.push(match value.as_string() {
                        Some(stored) => Some(split_counted(stored)?.1),
                        None => None,
                    });
                }
            }
            KvOpResult::Values { values }
        }
        KvOp::Load { key } => {
            let (token, value) = load_counted(storage, &key).await?;
            KvOpResult::Loaded { value, token }
        }
        KvOp::Swap { key, token, value } => {
            let (count, _) = load_counted(storage, &key).await?;
            let swapped = count == token;
            if swapped {
                put_text(storage, &key, &format!("{} {value}", count + 1)).await?;
            }
            KvOpResult::Swapped { swapped }
        }
        KvOp::Write { key, value } => {
            let (count, _) = load_counted(storage, &key).await?;
            put_text(storage, &key, &format!("{} {value}", count + 1)).await?;
            KvOpResult::Done
        }
    })
}

/// Runs one [`KvOp`] (JSON) on the object's storage; returns the JSON of
/// `Result<KvOpResult, StoreError>`. The object handles one event at a time, so a
/// swap's compare and write are atomic.
///
/// Only the storage self-test still drives an object this way (as earlier versions
/// drove the graph's): a deployed object keeps that table as rows, and refuses the
/// key-value operations of an earlier Worker during a deploy rather than serve it
/// partitions that have moved.
pub async fn serve_kv_op(storage: Storage, body: &[u8]) -> Vec<u8> {
    #[cfg(feature = "storage-selftest")]
    let result: Result<KvOpResult, StoreError> = async {
        let op: KvOp =
            crate::json::from_bytes(body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        run_kv_op(&storage, op).await
    }
    .await;
    #[cfg(not(feature = "storage-selftest"))]
    let result: Result<KvOpResult, StoreError> = {
        let _ = (storage, body);
        Err(StoreError::Backend(
            "this object keeps its table as rows: a Worker of an earlier version is \
             calling it (finish the deploy)"
                .into(),
        ))
    };
    serde_json::to_vec(&result).unwrap_or_default()
}

/// A whole table in **one** Durable Object, as a [`RawKv`] the Worker drives: each
/// partition is a key of that object's storage, so a read of many partitions is one
/// fetch and one storage `get` of many keys (the graph's per-level read), and a
/// write is a load and a compare-and-swap on the write count kept with the value.
#[cfg(feature = "storage-selftest")]
#[derive(Clone)]
pub struct DoKv {
    namespace: Rc<ObjectNamespace>,
    object: String,
    trips: RoundTrips,
}

#[cfg(feature = "storage-selftest")]
impl std::fmt::Debug for DoKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DoKv")
    }
}

/// The path a [`DoKv`] call goes to, telling it apart from a [`PartitionCall`].
pub const KV_OP_PATH: &str = "/kv";

#[cfg(feature = "storage-selftest")]
impl DoKv {
    /// The object named `\u{1}<table>` (a name no per-partition object can have).
    pub fn new(namespace: ObjectNamespace, table: &str, trips: RoundTrips) -> Self {
        Self {
            namespace: Rc::new(namespace),
            object: one_object_name(table),
            trips,
        }
    }

    async fn call(&self, op: KvOp) -> Result<KvOpResult, StoreError> {
        self.trips.bump();
        let stub = self
            .namespace
            .id_from_name(&self.object)
            .and_then(|id| id.get_stub())
            .map_err(backend)?;
        let body = serde_json::to_string(&op).map_err(backend)?;
        let url = format!("https://table{KV_OP_PATH}");
        let request = js_request(&url, "POST", None, Some(body.as_bytes())).map_err(backend)?;
        let mut response = stub.fetch_with_request(request).await.map_err(backend)?;
        let bytes = response.bytes().await.map_err(backend)?;
        decode_answer(&bytes)
    }
}

#[cfg(feature = "storage-selftest")]
fn text(value: Vec<u8>) -> Result<String, StoreError> {
    String::from_utf8(value).map_err(backend)
}

#[cfg(feature = "storage-selftest")]
fn unexpected_kv(result: KvOpResult) -> StoreError {
    StoreError::Corrupt(format!("unexpected key-value result {result:?}"))
}

#[cfg(feature = "storage-selftest")]
#[async_trait(?Send)]
impl RawKv for DoKv {
    async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .read_many(&[key.to_owned()])
            .await?
            .into_iter()
            .next()
            .flatten())
    }

    async fn read_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        match self
            .call(KvOp::ReadMany {
                keys: keys.to_vec(),
            })
            .await?
        {
            KvOpResult::Values { values } => Ok(values
                .into_iter()
                .map(|v| v.map(String::into_bytes))
                .collect()),
            other => Err(unexpected_kv(other)),
        }
    }

    /// The token is the object's write counter for the key.
    async fn load(&self, key: &str) -> Result<(Option<Vec<u8>>, Token), StoreError> {
        match self.call(KvOp::Load { key: key.into() }).await? {
            KvOpResult::Loaded { value, token } => {
                Ok((value.map(String::into_bytes), Token::new(token)))
            }
            other => Err(unexpected_kv(other)),
        }
    }

    async fn swap(&self, key: &str, token: Token, value: Vec<u8>) -> Result<bool, StoreError> {
        let op = KvOp::Swap {
            key: key.into(),
            token: token.get()?,
            value: text(value)?,
        };
        match self.call(op).await? {
            KvOpResult::Swapped { swapped } => Ok(swapped),
            other => Err(unexpected_kv(other)),
        }
    }

    async fn write(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        let op = KvOp::Write {
            key: key.into(),
            value: text(value)?,
        };
        match self.call(op).await? {
            KvOpResult::Done => Ok(()),
            other => Err(unexpected_kv(other)),
        }
    }
}
