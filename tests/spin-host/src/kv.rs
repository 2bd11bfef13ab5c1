//! Key-value stores shared by `fermyon:spin/key-value` and `wasi:keyvalue`.
//!
//! Like Spin's default store, a label names one store whichever interface
//! opens it. Each store lives in memory and is written through to
//! `<state-dir>/<label>.json` on every mutation, so data survives restarts.

use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

type Entries = BTreeMap<String, Vec<u8>>;

/// Every store of one application, opened lazily by label.
#[derive(Debug)]
pub struct KvStores {
    dir: PathBuf,
    known: Vec<String>,
    open: Mutex<HashMap<String, Arc<KvStore>>>,
}

impl KvStores {
    /// `known` are the labels that exist (Spin knows only `default` unless
    /// runtime config adds more; we also accept every label the manifest uses).
    pub fn new(dir: &Path, known: impl IntoIterator<Item = String>) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating state dir {}", dir.display()))?;
        let mut known: Vec<String> = known.into_iter().collect();
        known.push("default".to_string());
        Ok(Self {
            dir: dir.to_path_buf(),
            known,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// `Ok(None)` means no such store.
    pub fn open(&self, label: &str) -> Result<Option<Arc<KvStore>>> {
        if !self.known.iter().any(|k| k == label) {
            return Ok(None);
        }
        // Labels become file names, so keep them to a harmless alphabet.
        if !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Ok(None);
        }
        let mut open = lock(&self.open);
        if let Some(store) = open.get(label) {
            return Ok(Some(store.clone()));
        }
        let store = Arc::new(KvStore::load(self.dir.join(format!("{label}.json")))?);
        open.insert(label.to_string(), store.clone());
        Ok(Some(store))
    }
}

/// One store. Every operation takes the single lock, which is what makes
/// `increment` and compare-and-swap atomic across concurrent requests.
#[derive(Debug)]
pub struct KvStore {
    path: PathBuf,
    entries: Mutex<Entries>,
}

impl KvStore {
    /// Opens the store persisted at `path`, empty if the file does not exist.
    pub fn load(path: PathBuf) -> Result<Self> {
        let entries = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("parsing {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Entries::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(Self {
            path,
            entries: Mutex::new(entries),
        })
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        lock(&self.entries).get(key).cloned()
    }

    pub fn exists(&self, key: &str) -> bool {
        lock(&self.entries).contains_key(key)
    }

    pub fn keys(&self) -> Vec<String> {
        lock(&self.entries).keys().cloned().collect()
    }

    pub fn set(&self, key: &str, value: Vec<u8>) -> Result<()> {
        self.mutate(|e| {
            e.insert(key.to_string(), value);
            Ok(())
        })
    }

    pub fn delete(&self, key: &str) -> Result<()> {
        self.mutate(|e| {
            e.remove(key);
            Ok(())
        })
    }

    /// Values are 8-byte big-endian integers, as in Spin's SQLite store; a
    /// missing key counts as zero.
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        self.mutate(|e| {
            let current = match e.get(key) {
                None => 0,
                Some(v) => match <[u8; 8]>::try_from(v.as_slice()) {
                    Ok(bytes) => i64::from_be_bytes(bytes),
                    Err(_) => bail!("value of {key:?} is not an 8-byte integer"),
                },
            };
            let new = current
                .checked_add(delta)
                .with_context(|| format!("incrementing {key:?} overflows"))?;
            e.insert(key.to_string(), new.to_be_bytes().to_vec());
            Ok(new)
        })
    }

    /// Stores `value` only if the key still holds `expected` (`None`: absent).
    /// On a mismatch returns `Ok(Err(actual))` so the caller can retry.
    pub fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: Vec<u8>,
    ) -> Result<Result<(), Option<Vec<u8>>>> {
        self.mutate(|e| {
            let actual = e.get(key);
            if actual.map(Vec::as_slice) != expected {
                return Ok(Err(actual.cloned()));
            }
            e.insert(key.to_string(), value);
            Ok(Ok(()))
        })
    }

    /// Applies `f` and writes the result through under the same lock, so the
    /// file never lags behind what another request can observe.
    fn mutate<R>(&self, f: impl FnOnce(&mut Entries) -> Result<R>) -> Result<R> {
        let mut entries = lock(&self.entries);
        let result = f(&mut entries)?;
        let json = serde_json::to_vec(&*entries)?;
        // Write-then-rename so a killed host never leaves a torn file behind.
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, json).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("replacing {}", self.path.display()))?;
        Ok(result)
    }
}

/// A compare-and-swap in progress: remembers the value seen when it began.
#[derive(Debug)]
pub struct Cas {
    store: Arc<KvStore>,
    key: String,
    observed: Option<Vec<u8>>,
}

impl Cas {
    pub fn new(store: Arc<KvStore>, key: String) -> Self {
        let observed = store.get(&key);
        Self {
            store,
            key,
            observed,
        }
    }

    /// The value seen when this CAS began (not re-read: the swap is checked
    /// against exactly what the guest computed from).
    pub fn current(&self) -> Option<Vec<u8>> {
        self.observed.clone()
    }

    /// `Ok(Err(cas))` means another writer got there first; the returned CAS
    /// observes the latest value, ready for a retry.
    pub fn swap(self, value: Vec<u8>) -> Result<Result<(), Cas>> {
        Ok(
            match self
                .store
                .compare_and_swap(&self.key, self.observed.as_deref(), value)?
            {
                Ok(()) => Ok(()),
                Err(latest) => Err(Cas {
                    observed: latest,
                    ..self
                }),
            },
        )
    }
}

/// A panic while holding a store lock leaves a consistent map behind (each
/// mutation is a single insert/remove), so poisoning is safe to ignore.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
