//! The native host adapter (tests and benchmarks): in-memory tables.

use crate::table::memory::MemoryKv;
use crate::table::{StoreError, Table};
use crate::{Env, MapConfig, Tables};
use std::rc::Rc;

impl Tables for MemoryKv {
    fn open(&self, name: &str) -> Result<Rc<dyn Table>, StoreError> {
        Ok(Rc::new(self.table(name)))
    }
}

/// An environment over `kv` with `config`, the system clock and OS randomness.
pub fn env(kv: MemoryKv, config: MapConfig) -> Env {
    Env {
        tables: Box::new(kv),
        config: Box::new(config),
        clock: Box::new(super::SystemClock),
        random: super::os_random,
    }
}
