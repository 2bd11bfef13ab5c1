//! The native host adapter (tests and benchmarks): in-memory tables.

use crate::table::memory::MemoryKv;
use crate::table::{StoreError, Table};
use crate::{Backend, Env, MapConfig, Tables};
use std::rc::Rc;

impl Tables for MemoryKv {
    fn open(&self, name: &str) -> Result<Rc<dyn Table>, StoreError> {
        Ok(Rc::new(self.table(name)))
    }

    fn round_trips(&self) -> u64 {
        MemoryKv::round_trips(self)
    }

    fn backends(&self) -> Vec<Backend> {
        Backend::pages_and_whole()
    }

    fn open_on(&self, backend: &str, name: &str) -> Result<Rc<dyn Table>, StoreError> {
        Ok(match backend {
            "whole" => Rc::new(self.whole_table(name)),
            _ => Rc::new(self.table(name)),
        })
    }

    fn layout_moves(&self) -> Vec<(&'static str, &'static str)> {
        vec![("whole", "default")]
    }
}

/// An environment over `kv` with `config`, the system clock and OS randomness, no
/// outbound HTTP (a host that has a client sets `fetch`) and no static files (a host
/// that serves `/docs` sets `files`, e.g. to a [`crate::host::DirFiles`] on
/// `build/docs-assets`). Its round trips are counted apart from other environments over
/// the same store.
pub fn env(kv: MemoryKv, config: MapConfig) -> Env {
    Env {
        tables: Box::new(kv.counted()),
        config: Box::new(config),
        clock: Box::new(super::SystemClock),
        fetch: Box::new(crate::NoFetch),
        files: Box::new(crate::NoFiles),
        cache: Box::new(crate::NoCache),
        random: super::os_random,
        log: super::stdout_log,
    }
}

thread_local! {
    static CAPTURED: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A log sink that keeps the lines written on this thread, for [`captured_log`]: unit
/// tests that check what a request logged.
pub fn capture_log(line: &str) {
    CAPTURED.with(|lines| lines.borrow_mut().push(line.to_owned()));
}

/// The lines [`capture_log`] kept on this thread, taken.
pub fn captured_log() -> Vec<String> {
    CAPTURED.with(|lines| std::mem::take(&mut *lines.borrow_mut()))
}

/// An in-process cache (the native host and tests): one per deployment, shared by its
/// requests' environments, entries expiring by the system clock.
#[derive(Debug, Clone, Default)]
pub struct MemoryCache(
    std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, crate::Bytes)>>,
    >,
);

#[async_trait::async_trait(?Send)]
impl crate::EdgeCache for MemoryCache {
    async fn get(&self, key: &str) -> Option<crate::Bytes> {
        let mut entries = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(key) {
            Some((expires, value)) if *expires > std::time::Instant::now() => Some(value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    async fn put(&self, key: &str, value: crate::Bytes, ttl_secs: u32) {
        let expires = std::time::Instant::now() + std::time::Duration::from_secs(ttl_secs.into());
        let mut entries = self.0.lock().unwrap_or_else(|e| e.into_inner());
        entries.insert(key.to_owned(), (expires, value));
    }
}
