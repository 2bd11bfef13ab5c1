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
/// that serves `/docs` sets `files`, e.g. to a [`crate::DirFiles`] on
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
