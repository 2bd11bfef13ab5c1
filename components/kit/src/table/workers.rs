//! The Cloudflare Workers backends.
//!
//! - [`KvBackend`]: Workers KV, for read-mostly tables. KV has no compare-and-swap, so
//!   its conditional writes re-read and compare just before writing: correct for one
//!   writer at a time, not atomic under concurrent writers (KV is also eventually
//!   consistent across locations). Tables that need atomic conditions go to Durable
//!   Objects.
//! - [`DoClient`] + [`serve_partition_op`]: one Durable Object per `(table, partition)`.
//!   The Worker ships each [`TableOp`] to the partition's object, which runs it on its
//!   own transactional storage; the object handles one event at a time and its input
//!   gates keep a read-modify-write atomic, which is DynamoDB's per-item atomicity.

use super::{PartitionTable, RawKv, RemoteOps, RoundTrips, StoreError, TableOp, TableOpResult};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::rc::Rc;
use worker::{durable::Storage, kv::KvStore, Method, ObjectNamespace, Request, RequestInit};

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
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
    /// The bytes `load` saw.
    type Token = Option<Vec<u8>>;

    async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.trips.bump();
        self.kv.get(key).bytes().await.map_err(backend)
    }

    async fn load(&self, key: &str) -> Result<(Option<Vec<u8>>, Self::Token), StoreError> {
        let current = self.read(key).await?;
        Ok((current.clone(), current))
    }

    async fn swap(
        &self,
        key: &str,
        token: Self::Token,
        value: Vec<u8>,
    ) -> Result<bool, StoreError> {
        if self.read(key).await? != token {
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

/// A Durable Object's own storage as a [`RawKv`]; only used inside the object.
pub struct DoStorageKv {
    storage: Storage,
}

#[async_trait(?Send)]
impl RawKv for DoStorageKv {
    /// Nothing: the object runs one operation at a time, so nothing can change between
    /// `load` and `swap`.
    type Token = ();

    async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let text: Option<String> = self.storage.get(key).await.map_err(backend)?;
        Ok(text.map(String::into_bytes))
    }

    async fn load(&self, key: &str) -> Result<(Option<Vec<u8>>, ()), StoreError> {
        Ok((self.read(key).await?, ()))
    }

    async fn swap(&self, key: &str, _token: (), value: Vec<u8>) -> Result<bool, StoreError> {
        self.write(key, value).await.map(|()| true)
    }

    async fn write(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        // Partitions are JSON, so always UTF-8; storing text keeps them readable in
        // wrangler's local SQLite files.
        let text = String::from_utf8(value).map_err(backend)?;
        self.storage.put(key, text).await.map_err(backend)
    }
}

/// What the Worker sends a partition object.
#[derive(Debug, Serialize, Deserialize)]
pub struct PartitionCall {
    pub table: String,
    pub op: TableOp,
}

/// Runs one [`PartitionCall`] (JSON) on the object's storage; returns the JSON of
/// `Result<TableOpResult, StoreError>`. Called from the Durable Object class's `fetch`.
pub async fn serve_partition_op(storage: Storage, body: &[u8]) -> Vec<u8> {
    let result: Result<TableOpResult, StoreError> = async {
        let call: PartitionCall =
            serde_json::from_slice(body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let table = PartitionTable::new(DoStorageKv { storage }, &call.table);
        call.op.apply(&table).await
    }
    .await;
    serde_json::to_vec(&result).unwrap_or_default()
}

/// The Worker side of a Durable-Object-backed table: one round trip (a fetch to the
/// partition's object) per operation.
pub struct DoClient {
    namespace: ObjectNamespace,
    table: String,
    trips: RoundTrips,
}

impl DoClient {
    pub fn new(namespace: ObjectNamespace, table: &str, trips: RoundTrips) -> Self {
        Self {
            namespace,
            table: table.to_owned(),
            trips,
        }
    }
}

#[async_trait(?Send)]
impl RemoteOps for DoClient {
    async fn call(&self, op: TableOp) -> Result<TableOpResult, StoreError> {
        // NUL cannot appear in a table name, so (table, partition) maps to one name.
        self.trips.bump();
        let name = format!("{}\u{0}{}", self.table, op.partition());
        let stub = self
            .namespace
            .id_from_name(&name)
            .and_then(|id| id.get_stub())
            .map_err(backend)?;
        let call = PartitionCall {
            table: self.table.clone(),
            op,
        };
        let body = serde_json::to_string(&call).map_err(backend)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(body.into()));
        let request = Request::new_with_init("https://partition/op", &init).map_err(backend)?;
        let mut response = stub.fetch_with_request(request).await.map_err(backend)?;
        let bytes = response.bytes().await.map_err(backend)?;
        serde_json::from_slice::<Result<TableOpResult, StoreError>>(&bytes)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?
    }
}
