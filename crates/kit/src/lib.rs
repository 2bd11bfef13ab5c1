//! `kit` is the platform-neutral core every endpoint crate is built on.
//!
//! A handler takes an [`http::Request<Bytes>`](Request) and an [`Env`] (tables, config,
//! clock, randomness, static [`files`]) and returns an
//! [`http::Response<Bytes>`](Response); the hosts (Spin components, the Cloudflare
//! Worker, the native test server) only translate to and from these types. [`serve`]
//! wraps a handler with what the OpenAPI document asks of every response: the JSON
//! error body, `x-request-id`, the body-size limit. [`table`] is the DynamoDB-shaped storage
//! model with one trait and a backend per host; `cargo test -p kit` runs the shared backend
//! suite on the in-memory backend.

pub mod base64;
pub mod cache;
pub mod env;
pub mod error;
pub mod files;
pub mod host;
pub mod json;
pub mod log;
pub mod router;
pub mod service;
pub mod sigv4;
pub mod sorted;
pub mod table;
pub mod time;

pub use bytes::Bytes;
pub use cache::{EdgeCache, EdgeCaching, NoCache};
pub use env::{
    Backend, Clock, Config, Ctx, Env, Fetch, FetchError, FixedClock, MapConfig, NoFetch, Tables,
};
pub use error::{ApiError, SEE_THE_LOG};
pub use files::{Files, FilesError, NoFiles};
pub use router::{Params, Router};
pub use service::{
    declared_too_large, empty, error_response, json, parse_json, require_admin, revalidated, serve,
    serve_cached, BodyLimit, BodyTooLarge, REVALIDATE_ALWAYS,
};

/// The request every handler receives: the whole body already read by the host.
pub type Request = http::Request<Bytes>;
/// The response every handler returns.
pub type Response = http::Response<Bytes>;
