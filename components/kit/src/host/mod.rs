//! Host adapters: how each runtime builds an [`Env`](crate::Env) and hands requests in.
//! Only these modules name a host SDK.

#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(target_os = "wasi")]
pub mod spin;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub mod workers;

/// A random u64 from std's per-process random hasher keys, which come from the OS
/// (`getrandom`, or WASI `random` on wasip2).
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub fn os_random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    hasher.finish()
}

/// The clock of hosts where `SystemTime` works (native, WASI).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
impl crate::Clock for SystemClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from(std::time::SystemTime::now())
    }
}
