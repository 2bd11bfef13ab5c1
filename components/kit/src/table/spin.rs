//! The Spin backend: `wasi:keyvalue` (0.2.0-draft2) store `default`, with
//! compare-and-swap from its `atomics` interface, which Spin's SQLite-backed store
//! implements atomically on one node.

use super::{PartitionTable, RawKv, StoreError};
use async_trait::async_trait;
use spin_sdk::wit::wasi::keyvalue::{atomics, store};
use std::rc::Rc;

/// One opened bucket, shared by every table of a request.
#[derive(Clone)]
pub struct SpinKv {
    bucket: Rc<store::Bucket>,
}

impl std::fmt::Debug for SpinKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpinKv")
    }
}

fn backend(e: store::Error) -> StoreError {
    match e {
        store::Error::AccessDenied => StoreError::Access("key-value store".into()),
        store::Error::NoSuchStore => StoreError::Access("no such key-value store".into()),
        store::Error::Other(msg) => StoreError::Backend(msg),
    }
}

impl SpinKv {
    /// Opens the store `label` granted to this component in `spin.toml`.
    pub fn open(label: &str) -> Result<Self, StoreError> {
        let bucket = store::open(label).map_err(backend)?;
        Ok(Self {
            bucket: Rc::new(bucket),
        })
    }

    pub fn table(&self, name: &str) -> PartitionTable<SpinKv> {
        PartitionTable::new(self.clone(), name)
    }
}

#[async_trait(?Send)]
impl RawKv for SpinKv {
    type Token = atomics::Cas;

    async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.bucket.get(key).map_err(backend)
    }

    async fn load(&self, key: &str) -> Result<(Option<Vec<u8>>, atomics::Cas), StoreError> {
        let cas = atomics::Cas::new(&self.bucket, key).map_err(backend)?;
        let current = cas.current().map_err(backend)?;
        Ok((current, cas))
    }

    async fn swap(
        &self,
        _key: &str,
        token: atomics::Cas,
        value: Vec<u8>,
    ) -> Result<bool, StoreError> {
        match atomics::swap(token, &value) {
            Ok(()) => Ok(true),
            Err(atomics::CasError::CasFailed(_)) => Ok(false),
            Err(atomics::CasError::StoreError(e)) => Err(backend(e)),
        }
    }

    async fn write(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        self.bucket.set(key, &value).map_err(backend)
    }
}
