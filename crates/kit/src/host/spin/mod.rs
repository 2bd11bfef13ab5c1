//! The Spin host adapter: request conversion, variables as config, the key-value store
//! `default` as every table's backend, the component's `files` mounts as its static
//! files.

use crate::table::dynamo::DynamoTables;
use crate::table::{RoundTrips, StoreError, Table};
use crate::{ApiError, Bytes, Config, Env, Fetch, FetchError, Request, Response, Tables};
use http::StatusCode;
use kv::SpinKv;

mod kv;
use spin_sdk::http::{
    Fields, IncomingRequest, OutgoingBody, OutgoingRequest, OutgoingResponse, ResponseOutparam,
};
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
/// components that never touch storage need no store grant; or, when the deployment
/// says `table_backend = "dynamodb"`, on a DynamoDB-compatible engine
/// ([`crate::table::dynamo`]) through the component's outbound HTTP.
#[derive(Debug, Default)]
pub struct SpinTables {
    kv: OnceCell<SpinKv>,
    /// The engine the variables name, `None` for the `default` store; read once.
    dynamo: OnceCell<Option<DynamoTables>>,
    trips: RoundTrips,
}

impl SpinTables {
    /// The DynamoDB-compatible engine the deployment chose, if it chose one.
    fn dynamo(&self) -> Result<Option<&DynamoTables>, StoreError> {
        if let Some(chosen) = self.dynamo.get() {
            return Ok(chosen.as_ref());
        }
        let chosen = DynamoTables::chosen(
            &SpinVariables,
            "kv",
            Rc::new(SpinFetch),
            Rc::new(super::SystemClock),
            super::os_random,
            self.trips.clone(),
        )?;
        Ok(self.dynamo.get_or_init(|| chosen).as_ref())
    }

    fn kv(&self) -> Result<&SpinKv, StoreError> {
        match self.kv.get() {
            Some(kv) => Ok(kv),
            None => {
                let kv = SpinKv::open("default", self.trips.clone())?;
                Ok(self.kv.get_or_init(|| kv))
            }
        }
    }
}

#[cfg(feature = "storage-selftest")]
use crate::Backend;

impl Tables for SpinTables {
    fn open(&self, name: &str) -> Result<Rc<dyn Table>, StoreError> {
        if let Some(dynamo) = self.dynamo()? {
            return Ok(Rc::new(dynamo.table(name)));
        }
        Ok(Rc::new(self.kv()?.table(name)))
    }

    /// On a DynamoDB-compatible engine, that engine alone: the self-test checks the
    /// storage the deployment uses.
    #[cfg(feature = "storage-selftest")]
    fn backends(&self) -> Vec<Backend> {
        match self.dynamo() {
            Ok(Some(_)) => vec![Backend {
                name: "dynamodb",
                atomic: true,
                whole_partitions: false,
            }],
            _ => Backend::pages_and_whole(),
        }
    }

    #[cfg(feature = "storage-selftest")]
    fn open_on(&self, backend: &str, name: &str) -> Result<Rc<dyn Table>, StoreError> {
        if let Some(dynamo) = self.dynamo()? {
            return Ok(Rc::new(dynamo.table(name)));
        }
        let kv = self.kv()?;
        Ok(match backend {
            "whole" => Rc::new(kv.whole_table(name)),
            _ => Rc::new(kv.table(name)),
        })
    }

    #[cfg(feature = "storage-selftest")]
    fn layout_moves(&self) -> Vec<(&'static str, &'static str)> {
        match self.dynamo() {
            Ok(Some(_)) => Vec::new(),
            _ => vec![("whole", "default")],
        }
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
        use spin_sdk::http::{ErrorCode, IncomingResponse, SendError};
        let resp: IncomingResponse =
            spin_sdk::http::send(Outgoing(req))
                .await
                .map_err(|e| match e {
                    SendError::Http(ErrorCode::HttpRequestDenied) => {
                        FetchError::Denied(e.to_string())
                    }
                    other => FetchError::Network(other.to_string()),
                })?;
        let mut builder = http::Response::builder().status(resp.status());
        {
            let headers = resp.headers();
            for (name, value) in headers.entries() {
                builder = builder.header(name, value);
            }
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

/// A core request on its way out, written straight into `wasi:http` types: the SDK's
/// `http::Request` conversion would link its method and header conversions and `anyhow`.
struct Outgoing(Request);

/// The part of an outgoing request `wasi:http` refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid outgoing {0}")]
struct InvalidOutgoing(&'static str);

impl spin_sdk::http::conversions::TryIntoOutgoingRequest for Outgoing {
    type Error = InvalidOutgoing;

    fn try_into_outgoing_request(
        self,
    ) -> Result<(OutgoingRequest, Option<Vec<u8>>), InvalidOutgoing> {
        use spin_sdk::http::{Method as M, Scheme};
        let (parts, body) = self.0.into_parts();
        let entries = field_entries(&parts.headers);
        let request = OutgoingRequest::new(
            Fields::from_list(&entries).map_err(|_| InvalidOutgoing("header"))?,
        );
        let method = match parts.method {
            http::Method::GET => M::Get,
            http::Method::POST => M::Post,
            http::Method::PUT => M::Put,
            http::Method::DELETE => M::Delete,
            http::Method::PATCH => M::Patch,
            http::Method::HEAD => M::Head,
            http::Method::OPTIONS => M::Options,
            other => M::Other(other.as_str().to_owned()),
        };
        let uri = &parts.uri;
        let scheme = uri.scheme_str().map(|s| match s {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => Scheme::Other(other.to_owned()),
        });
        request
            .set_method(&method)
            .map_err(|()| InvalidOutgoing("method"))?;
        request
            .set_path_with_query(uri.path_and_query().map(|p| p.as_str()))
            .map_err(|()| InvalidOutgoing("path"))?;
        request
            .set_scheme(scheme.as_ref())
            .map_err(|()| InvalidOutgoing("scheme"))?;
        request
            .set_authority(uri.authority().map(|a| a.as_str()))
            .map_err(|()| InvalidOutgoing("authority"))?;
        Ok((request, Some(body.to_vec())))
    }
}

/// Where a component's static files are: its `files` mounts in `spin.toml` are WASI
/// preopens, and `std::fs` resolves absolute paths through them (`docs/swagger-ui.css`
/// is the guest's `/docs/swagger-ui.css`).
pub const FILES_ROOT: &str = "/";

/// What a component uses beyond its tables, variables, clock and randomness, as its
/// `spin.toml` grants it: outbound HTTP (`allowed_outbound_hosts`) and static files
/// (`files`). What it does not name is not linked into its wasm (fetch was ~22 KB of a
/// component, files ~13 KB with `std::fs`; 2026-12-04): outbound requests are refused
/// and every file is absent, which is what Spin does for a component without those
/// grants.
#[derive(Debug, Clone, Copy)]
pub struct Uses {
    pub fetch: bool,
    pub files: bool,
}

impl Uses {
    pub const NOTHING: Uses = Uses {
        fetch: false,
        files: false,
    };
}

/// The environment of one Spin request. Inlined so that `uses`, a constant at every
/// call, decides at compile time which adapters are linked.
#[inline(always)]
pub fn env(uses: Uses) -> Env {
    Env {
        tables: Box::new(SpinTables::default()),
        config: Box::new(SpinVariables),
        clock: Box::new(super::SystemClock),
        fetch: if uses.fetch {
            Box::new(SpinFetch)
        } else {
            Box::new(crate::NoFetch)
        },
        files: if uses.files {
            Box::new(crate::host::DirFiles::new(FILES_ROOT))
        } else {
            Box::new(crate::NoFiles)
        },
        cache: Box::new(crate::NoCache),
        random: super::os_random,
        log: super::stdout_log,
    }
}

/// Converts Spin's request into the core's, or answers it with a 400 when it cannot be
/// (docs/SERVICES.md, *Cross-cutting behaviour*).
///
/// It reads the `wasi:http` request itself instead of through the SDK's
/// `http::Request` conversion, which goes through a `HashMap` of lowercased names: that
/// keeps one value of a repeated header (two `If-None-Match` lines, say), panics on an
/// extension method `http` cannot parse, and costs each component its hash map and
/// Unicode case tables.
pub async fn request(req: IncomingRequest) -> Result<Request, Response> {
    use spin_sdk::http::Method as M;
    let bad = |why: &str| {
        crate::error_response(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            why,
        ))
    };
    let method = match req.method() {
        M::Get => http::Method::GET,
        M::Post => http::Method::POST,
        M::Put => http::Method::PUT,
        M::Delete => http::Method::DELETE,
        M::Patch => http::Method::PATCH,
        M::Head => http::Method::HEAD,
        M::Options => http::Method::OPTIONS,
        M::Connect => http::Method::CONNECT,
        M::Trace => http::Method::TRACE,
        M::Other(other) => http::Method::from_bytes(other.as_bytes())
            .map_err(|_| bad("the request method is not a valid HTTP token"))?,
    };
    let mut builder = http::Request::builder().method(method).uri(req.uri());
    {
        // A child resource of the request: dropped before the body is consumed.
        let headers = req.headers();
        for (name, value) in headers.entries() {
            builder = builder.header(name, value);
        }
    }
    let declared_too_large = builder
        .headers_ref()
        .is_some_and(crate::service::declared_too_large);
    let body = if declared_too_large {
        None
    } else {
        read_body(&req, crate::BodyLimit::HOST.0).map_err(|()| {
            crate::error_response(ApiError::invalid_body("it could not be read to its end"))
        })?
    };
    if body.is_none() {
        builder = builder.extension(crate::BodyTooLarge);
    }
    builder
        .body(Bytes::from(body.unwrap_or_default()))
        .map_err(|_| bad("the request line or a header is not valid HTTP"))
}

/// The request's body, read until its end or until it passes `limit` bytes (`None`:
/// the rest is left unread), so that no body makes the component buffer more than
/// `limit` whatever it declares or streams. Blocking reads: one request per instance.
fn read_body(req: &IncomingRequest, limit: usize) -> Result<Option<Vec<u8>>, ()> {
    let incoming = req.consume()?;
    let stream = incoming.stream()?;
    let mut body = Vec::new();
    loop {
        // At most one byte past the limit, to tell "exactly the limit" from "more".
        let want = (limit + 1 - body.len()).min(64 * 1024) as u64;
        match stream.blocking_read(want) {
            Ok(chunk) => {
                body.extend_from_slice(&chunk);
                if body.len() > limit {
                    return Ok(None);
                }
            }
            Err(wasi::io::streams::StreamError::Closed) => return Ok(Some(body)),
            Err(_) => return Err(()),
        }
    }
}

/// Sends the core's response through Spin's response outparam, so that its head and
/// body leave the host together.
///
/// Spin's HTTP trigger serves connections without `TCP_NODELAY`: when the host writes
/// the head before the body has come (the SDK's `set_with_body` sets the response, then
/// writes), the body is a second small write that Nagle's algorithm holds until the
/// client ACKs the head, and a client on a kept-alive connection delays that ACK by
/// ~40 ms. So the response carries its `content-length`, and the body is written and
/// finished *before* the response is handed over: hyper then finds head and body ready
/// at once and sends them in one write. A body larger than the host's buffer (one
/// chunk of 1 MiB by default in wasmtime's `wasi:http`) gets the head first and streams
/// the rest as the host drains it.
pub async fn respond(out: ResponseOutparam, res: Response) {
    let (parts, body) = res.into_parts();
    let mut entries = field_entries(&parts.headers);
    let status = parts.status.as_u16();
    // 1xx, 204 and 304 carry no body and must not claim one (RFC 9110 §8.6).
    let bodiless = status < 200 || status == 204 || status == 304;
    if !bodiless && !parts.headers.contains_key(http::header::CONTENT_LENGTH) {
        entries.push((
            "content-length".to_owned(),
            body.len().to_string().into_bytes(),
        ));
    }
    // `http` already checked every name and value; Spin refuses only the forbidden
    // hop-by-hop ones, which no route sets.
    let headers = Fields::from_list(&entries).unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(headers);
    // Any `http::StatusCode` is 100-999, which `set-status-code` accepts.
    let _ = response.set_status_code(status);
    // An untaken body is an empty one; a taken one must be finished, not dropped.
    if body.is_empty() {
        out.set(response);
        return;
    }
    let Ok(outgoing) = response.body() else {
        out.set(response);
        return;
    };
    let Ok(stream) = outgoing.write() else {
        let _ = OutgoingBody::finish(outgoing, None);
        out.set(response);
        return;
    };
    let mut pending = Some((out, response));
    let mut sent = 0;
    while sent < body.len() {
        match stream.check_write() {
            Ok(0) => match pending.take() {
                // The host's buffer is full, and it drains only once it has the response.
                Some((out, response)) => out.set(response),
                None => stream.subscribe().block(),
            },
            Ok(room) => {
                let n = usize::try_from(room)
                    .unwrap_or(usize::MAX)
                    .min(body.len() - sent);
                if stream.write(&body[sent..sent + n]).is_err() {
                    break;
                }
                sent += n;
            }
            Err(_) => break,
        }
    }
    drop(stream);
    let finished = OutgoingBody::finish(outgoing, None);
    if let Some((out, response)) = pending {
        out.set(response);
    }
    if sent < body.len() || finished.is_err() {
        // The client went away mid-body: nothing is left to answer.
        eprintln!(
            "could not send the whole response body ({sent} of {} bytes)",
            body.len()
        );
    }
}

/// A header map as the `(name, value)` list `wasi:http`'s `fields` are made from.
fn field_entries(headers: &http::HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect()
}
