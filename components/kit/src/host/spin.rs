//! The Spin host adapter: request conversion, variables as config, the key-value store
//! `default` as every table's backend, the component's `files` mounts as its static
//! files.

use crate::table::spin::SpinKv;
use crate::table::{RoundTrips, StoreError, Table};
use crate::{Bytes, Config, Env, Fetch, FetchError, Request, Response, Tables};
use std::cell::OnceCell;
use std::rc::Rc;

/// Spin variables (declared per component in `spin.toml`).
#[derive(Debug, Clone, Copy)]
pub struct SpinVariables;

impl Config for SpinVariables {
    fn get(&self, key: &str) -> Option<String> {
        spin_sdk::variables::get(key).ok()
    }
}

/// Every table lives in the component's `default` store, opened on first use so that
/// components that never touch storage need no store grant.
#[derive(Debug, Default)]
pub struct SpinTables {
    kv: OnceCell<SpinKv>,
    trips: RoundTrips,
}

impl Tables for SpinTables {
    fn open(&self, name: &str) -> Result<Rc<dyn Table>, StoreError> {
        let kv = match self.kv.get() {
            Some(kv) => kv,
            None => {
                let kv = SpinKv::open("default", self.trips.clone())?;
                self.kv.get_or_init(|| kv)
            }
        };
        Ok(Rc::new(kv.table(name)))
    }

    fn round_trips(&self) -> u64 {
        self.trips.get()
    }

    /// Spin's per-instance table of `cas` resources holds 256, and a swapped one keeps
    /// its slot (Spin 4.0.2 `factor-key-value/src/host.rs`).
    fn conditional_write_limit(&self) -> Option<u32> {
        Some(256)
    }
}

/// Outbound HTTP through `wasi:http/outgoing-handler`, limited by the component's
/// `allowed_outbound_hosts`.
#[derive(Debug, Clone, Copy)]
pub struct SpinFetch;

#[async_trait::async_trait(?Send)]
impl Fetch for SpinFetch {
    async fn fetch(&self, req: Request) -> Result<Response, FetchError> {
        use spin_sdk::http::{IncomingResponse, SendError};
        let req = req.map(|b| b.to_vec());
        let resp: IncomingResponse = spin_sdk::http::send(req).await.map_err(|e| match e {
            SendError::Http(e) if format!("{e:?}").contains("Denied") => {
                FetchError::Denied(e.to_string())
            }
            other => FetchError::Network(other.to_string()),
        })?;
        let mut builder = http::Response::builder().status(resp.status());
        for (name, value) in resp.headers().entries() {
            builder = builder.header(name, value);
        }
        // Read the body through the SDK's fallible API: its `http::Response`
        // conversion panics on a broken body stream.
        let body = resp
            .into_body()
            .await
            .map_err(|e| FetchError::Network(e.to_string()))?;
        builder
            .body(Bytes::from(body))
            .map_err(|e| FetchError::Network(e.to_string()))
    }
}

/// Where a component's static files are: its `files` mounts in `spin.toml` are WASI
/// preopens, and `std::fs` resolves absolute paths through them (`docs/swagger-ui.css`
/// is the guest's `/docs/swagger-ui.css`).
pub const FILES_ROOT: &str = "/";

/// The environment of one Spin request.
pub fn env() -> Env {
    Env {
        tables: Box::new(SpinTables::default()),
        config: Box::new(SpinVariables),
        clock: Box::new(super::SystemClock),
        fetch: Box::new(SpinFetch),
        files: Box::new(crate::DirFiles::new(FILES_ROOT)),
        cache: Box::new(crate::NoCache),
        random: super::os_random,
        log: super::stdout_log,
    }
}

/// Converts Spin's request into the core's.
pub fn request(req: http::Request<Vec<u8>>) -> Request {
    req.map(Bytes::from)
}

/// Converts the core's response into one Spin sends.
pub fn response(res: Response) -> http::Response<Vec<u8>> {
    res.map(|b| b.to_vec())
}
