//! A Spin-compatible test host on wasmtime: it stands in for `spin up` where
//! the Spin CLI cannot be installed. It reads a Spin manifest v2, serves the
//! HTTP triggers (one fresh component instance per request, via
//! `wasi:http/incoming-handler`), and provides the Spin key-value, variables
//! and `wasi:keyvalue` interfaces with stores persisted under a state dir, and
//! each component's `files` directories preopened read-only (`{ source,
//! destination }` entries; glob patterns are refused at load).
//! Cron components (`[[trigger.cron]]`, world `fermyon:spin-cron/spin-cron`)
//! fire on `POST /.spin-host/cron/{component}`, and on their schedules with
//! `--cron`; see [`app`] and [`cron`].
//! Run it as `spin-host --manifest spin.toml --listen 127.0.0.1:0`; see
//! `main.rs` for all options. It is test infrastructure, not a product runtime.

#[cfg(feature = "host")]
pub mod app;
#[cfg(feature = "host")]
pub mod cron;
#[cfg(feature = "host")]
pub mod host;
pub mod kv;
#[cfg(feature = "host")]
pub mod manifest;
#[cfg(feature = "host")]
pub mod outbound;
#[cfg(feature = "host")]
pub mod routes;
