//! The Cloudflare Workers host adapter: vars and secrets as config, the JS clock and
//! randomness, the table bindings (Durable Objects by default, KV for the tables the
//! Worker names as read-mostly), and the static assets binding as the static files.

use crate::files::{check_path, Files, FilesError};
use crate::table::dynamo::DynamoTables;
use crate::table::{PartitionTable, RemoteTable, RoundTrips, StoreError, Table};
use crate::{Backend, Bytes, Clock, Config, Env, Fetch, FetchError, Request, Response, Tables};
#[cfg(feature = "storage-selftest")]
use backends::DoKv;
use backends::{DoClient, KvBackend, Layout};
use std::rc::Rc;

mod backends;
mod object;
mod rows;

pub use object::{fetch, object_alarm, object_fetch, scheduled, Alarm, WorkerApp};

/// The Durable Object namespace binding every strongly consistent table uses.
pub const DO_BINDING: &str = "TABLES";
/// The KV namespace binding of the read-mostly tables.
pub const KV_BINDING: &str = "TABLES_KV";
/// The static assets binding (`[assets]` in `wrangler.toml`): the deployment's static
/// files, `build/docs-assets` at deploy time.
pub const ASSETS_BINDING: &str = "ASSETS";

/// Config keys are snake_case; Workers vars and secrets are their UPPER_CASE.
pub struct WorkerConfig(worker::Env);

impl Config for WorkerConfig {
    fn get(&self, key: &str) -> Option<String> {
        let name = key.to_ascii_uppercase();
        if let Ok(secret) = self.0.secret(&name) {
            return Some(secret.to_string());
        }
        self.0.var(&name).ok().map(|v| v.to_string())
    }
}

/// `Date.now()`: `SystemTime::now()` panics on wasm32-unknown-unknown.
#[derive(Debug, Clone, Copy)]
pub struct WorkerClock;

#[async_trait::async_trait(?Send)]
impl Clock for WorkerClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let millis = worker::Date::now().as_millis();
        chrono::DateTime::from_timestamp_millis(i64::try_from(millis).unwrap_or(i64::MAX))
            .unwrap_or_default()
    }

    /// `setTimeout`: waiting costs wall time, not CPU time, on every plan.
    async fn sleep(&self, ms: u64) {
        worker::Delay::from(std::time::Duration::from_millis(ms)).await;
    }
}

/// 64 random bits from two `Math.random()` draws (52 bits each); ids, not secrets.
pub fn random() -> u64 {
    let draw = || (js_sys::Math::random() * (1u64 << 52) as f64) as u64;
    (draw() << 12) ^ draw()
}

/// Which tables a Worker binds to which backend; every other table gets one Durable
/// Object per partition.
#[derive(Debug, Clone, Copy)]
pub struct Bindings {
    /// Read-mostly tables with a single writer: Workers KV.
    pub kv: &'static [&'static str],
    /// Tables read many partitions at a time (the graph): the whole table in one
    /// Durable Object, so a batched read is one fetch.
    pub one_object: &'static [&'static str],
}

/// Binds each table as [`Bindings`] says.
pub struct WorkerTables {
    env: worker::Env,
    bindings: Bindings,
    trips: RoundTrips,
    /// Inside a Durable Object: the table whose partition is this object's own
    /// storage.
    local: Option<(&'static str, Rc<dyn Table>)>,
    /// The DynamoDB-compatible engine the deployment's vars name (`TABLE_BACKEND =
    /// "dynamodb"`), which then holds every table; read once.
    dynamo: std::cell::OnceCell<Option<DynamoTables>>,
}

impl WorkerTables {
    /// The DynamoDB-compatible engine the deployment chose, if it chose one.
    fn dynamo(&self) -> Result<Option<&DynamoTables>, StoreError> {
        if let Some(chosen) = self.dynamo.get() {
            return Ok(chosen.as_ref());
        }
        let chosen = DynamoTables::chosen(
            &WorkerConfig(self.env.clone()),
            "durable-objects",
            Rc::new(WorkerFetch),
            Rc::new(WorkerClock),
            random,
            self.trips.clone(),
        )?;
        Ok(self.dynamo.get_or_init(|| chosen).as_ref())
    }

    /// The Durable Object namespace every object-backed table lives in.
    fn namespace(&self) -> Result<worker::ObjectNamespace, StoreError> {
        self.env
            .durable_object(DO_BINDING)
            .map_err(|e| StoreError::Access(format!("{DO_BINDING}: {e}")))
    }

    fn durable(&self, name: &str, layout: Layout) -> Result<Rc<dyn Table>, StoreError> {
        let namespace = self.namespace()?;
        Ok(Rc::new(RemoteTable(
            DoClient::new(namespace, name, self.trips.clone()).with_layout(layout),
        )))
    }

    fn one_object(&self, name: &str) -> Result<Rc<dyn Table>, StoreError> {
        let namespace = self.namespace()?;
        Ok(Rc::new(RemoteTable(DoClient::one_object(
            namespace,
            name,
            self.trips.clone(),
        ))))
    }

    /// The same object as [`WorkerTables::one_object`], driven as earlier versions
    /// did: whole partitions in its key-value storage, read and swapped from the Worker.
    #[cfg(feature = "storage-selftest")]
    fn one_object_whole(&self, name: &str) -> Result<Rc<dyn Table>, StoreError> {
        let namespace = self.namespace()?;
        Ok(Rc::new(PartitionTable::new(
            DoKv::new(namespace, name, self.trips.clone()),
            name,
        )))
    }

    fn kv(&self, name: &str) -> Result<Rc<dyn Table>, StoreError> {
        let kv = self
            .env
            .kv(KV_BINDING)
            .map_err(|e| StoreError::Access(format!("{KV_BINDING}: {e}")))?;
        Ok(Rc::new(PartitionTable::new(
            KvBackend::new(kv, self.trips.clone()),
            name,
        )))
    }
}

impl Tables for WorkerTables {
    fn open(&self, name: &str) -> Result<Rc<dyn Table>, StoreError> {
        if let Some(dynamo) = self.dynamo()? {
            Ok(Rc::new(dynamo.table(name)))
        } else if let Some((_, table)) = self.local.as_ref().filter(|(local, _)| *local == name) {
            Ok(table.clone())
        } else if self.bindings.kv.contains(&name) {
            self.kv(name)
        } else if self.bindings.one_object.contains(&name) {
            self.one_object(name)
        } else {
            self.durable(name, Layout::Rows)
        }
    }

    fn backends(&self) -> Vec<Backend> {
        vec![
            Backend {
                name: "durable_object",
                atomic: true,
                whole_partitions: false,
            },
            Backend {
                name: "durable_object_table",
                atomic: true,
                whole_partitions: false,
            },
            #[cfg(feature = "storage-selftest")]
            Backend {
                name: "durable_object_table_whole",
                atomic: true,
                whole_partitions: true,
            },
            #[cfg(feature = "storage-selftest")]
            Backend {
                name: "durable_object_whole",
                atomic: true,
                whole_partitions: true,
            },
            Backend {
                name: "kv",
                atomic: false,
                whole_partitions: true,
            },
        ]
    }

    #[cfg(feature = "storage-selftest")]
    fn layout_moves(&self) -> Vec<(&'static str, &'static str)> {
        vec![
            ("durable_object_whole", "durable_object"),
            ("durable_object_table_whole", "durable_object_table"),
        ]
    }

    fn open_on(&self, backend: &str, name: &str) -> Result<Rc<dyn Table>, StoreError> {
        match backend {
            "kv" => self.kv(name),
            "durable_object_table" => self.one_object(name),
            #[cfg(feature = "storage-selftest")]
            "durable_object_table_whole" => self.one_object_whole(name),
            #[cfg(feature = "storage-selftest")]
            "durable_object_whole" => self.durable(name, Layout::Whole),
            _ => self.durable(name, Layout::Rows),
        }
    }

    fn round_trips(&self) -> u64 {
        self.trips.get()
    }
}

/// Outbound HTTP through the Workers `fetch` (each call is one subrequest).
#[derive(Debug, Clone, Copy)]
pub struct WorkerFetch;

#[async_trait::async_trait(?Send)]
impl Fetch for WorkerFetch {
    async fn fetch(&self, req: Request) -> Result<Response, FetchError> {
        let network = |e: worker::Error| FetchError::Network(e.to_string());
        let headers = worker::Headers::new();
        for (name, value) in req.headers() {
            if let Ok(value) = value.to_str() {
                headers.append(name.as_str(), value).map_err(network)?;
            }
        }
        let body = Some(req.body().as_ref()).filter(|b| !b.is_empty());
        let request = js_request(
            &req.uri().to_string(),
            req.method().as_str(),
            Some(&headers),
            body,
        )
        .map_err(network)?;
        let mut resp = worker::Fetch::Request(request)
            .send()
            .await
            .map_err(network)?;
        let mut builder = http::Response::builder().status(resp.status_code());
        for (name, value) in resp.headers().entries() {
            builder = builder.header(name, value);
        }
        let body = resp.bytes().await.map_err(network)?;
        builder
            .body(Bytes::from(body))
            .map_err(|e| FetchError::Network(e.to_string()))
    }
}

/// A request built on web-sys's `RequestInit` directly. workers-rs's own `RequestInit`
/// converts through its `cf` properties' `serde_wasm_bindgen` serializer (~7 KB of
/// wasm) even when they are the defaults; nothing here sets `cf`.
fn js_request(
    url: &str,
    method: &str,
    headers: Option<&worker::Headers>,
    body: Option<&[u8]>,
) -> worker::Result<worker::Request> {
    let init = worker::web_sys::RequestInit::new();
    init.set_method(method);
    if let Some(headers) = headers {
        init.set_headers(headers.as_ref());
    }
    if let Some(body) = body {
        init.set_body(&js_sys::Uint8Array::from(body).into());
    }
    let request = worker::web_sys::Request::new_with_str_and_init(url, &init)?;
    Ok(worker::Request::from(request))
}

/// Static files from the Workers static assets behind [`ASSETS_BINDING`]. With
/// `run_worker_first = true` every request reaches the Worker, which reads a file
/// through the binding and answers with the headers the contract asks for.
pub struct WorkerAssets(worker::Env);

#[async_trait::async_trait(?Send)]
impl Files for WorkerAssets {
    async fn read(&self, path: &str) -> Result<Option<Bytes>, FilesError> {
        check_path(path)?;
        let unavailable = |e: worker::Error| FilesError::Unavailable(format!("{path}: {e}"));
        let assets = self
            .0
            .assets(ASSETS_BINDING)
            .map_err(|e| FilesError::Unavailable(format!("binding {ASSETS_BINDING}: {e}")))?;
        // The asset server looks at the path only; the host is a placeholder.
        let request = js_request(&format!("https://assets.invalid/{path}"), "GET", None, None)
            .map_err(unavailable)?;
        let mut resp = assets.fetch_request(request).await.map_err(unavailable)?;
        match resp.status_code() {
            200 => Ok(Some(Bytes::from(resp.bytes().await.map_err(unavailable)?))),
            404 => Ok(None),
            status => Err(FilesError::Unavailable(format!(
                "{path}: {ASSETS_BINDING} answered {status}"
            ))),
        }
    }
}

/// The data centre's Cache API (`caches.default`), the [`crate::EdgeCache`] of public
/// reads. Entries are opaque bodies with their own `max-age`, so the Cache API's header
/// semantics (`ETag`, `Vary`, `Set-Cookie`) never apply to what we store. A failure is
/// a miss: the read goes to storage. (The Cache API does nothing on `*.workers.dev`
/// hosts; there every read is a miss, as on Spin.)
#[derive(Debug, Clone, Copy)]
pub struct WorkerCache;

#[async_trait::async_trait(?Send)]
impl crate::EdgeCache for WorkerCache {
    async fn get(&self, key: &str) -> Option<Bytes> {
        let mut found = worker::Cache::default().get(key, false).await.ok()??;
        if found.status_code() != 200 {
            return None;
        }
        found.bytes().await.ok().map(Bytes::from)
    }

    async fn put(&self, key: &str, value: Bytes, ttl_secs: u32) {
        let headers = worker::Headers::new();
        let stored = headers
            .set("cache-control", &format!("public, max-age={ttl_secs}"))
            .and_then(|()| worker::Response::from_bytes(value.to_vec()));
        let result = match stored {
            Ok(response) => {
                worker::Cache::default()
                    .put(key, response.with_headers(headers))
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            worker::console_warn!("edge cache put {key}: {e}");
        }
    }
}

/// The environment of one Worker invocation.
fn env(env: worker::Env, bindings: Bindings) -> Env {
    env_with(env, bindings, None)
}

fn env_with(
    env: worker::Env,
    bindings: Bindings,
    local: Option<(&'static str, Rc<dyn Table>)>,
) -> Env {
    // `REQUEST_LOG = "false"` turns the log lines off (a deployment that keeps no
    // Workers Logs need not pay for them).
    let log: fn(&str) = match env.var("REQUEST_LOG") {
        Ok(v) if v.to_string() == "false" => crate::host::discard_log,
        _ => console_log,
    };
    Env {
        tables: Box::new(WorkerTables {
            env: env.clone(),
            bindings,
            trips: RoundTrips::default(),
            local,
            dynamo: Default::default(),
        }),
        files: Box::new(WorkerAssets(env.clone())),
        config: Box::new(WorkerConfig(env)),
        clock: Box::new(WorkerClock),
        fetch: Box::new(WorkerFetch),
        cache: Box::new(WorkerCache),
        random,
        log,
    }
}

/// Workers keep what `console.log` writes: `wrangler tail`, and Workers Logs where
/// `[observability]` is enabled in `wrangler.toml`.
fn console_log(line: &str) {
    worker::console_log!("{line}");
}

/// Reads a Worker request into the core's request type.
async fn request(mut req: worker::Request) -> worker::Result<Request> {
    let method = req.method();
    // The runtime's URL is already WHATWG-serialised; its path and query are taken as
    // they are, without a second `Url::parse` (`req.url()`) per request.
    let url = req.inner().url();
    let path_and_query = crate::router::path_and_query(&url);
    let mut builder = http::Request::builder()
        .method(method.as_ref())
        .uri(path_and_query);
    for (name, value) in req.headers().entries() {
        builder = builder.header(name, value);
    }
    let body = if builder
        .headers_ref()
        .is_some_and(crate::service::declared_too_large)
    {
        None
    } else {
        read_body(&mut req, crate::BodyLimit::HOST.0).await?
    };
    if body.is_none() {
        builder = builder.extension(crate::BodyTooLarge);
    }
    builder
        .body(Bytes::from(body.unwrap_or_default()))
        .map_err(|e| worker::Error::RustError(e.to_string()))
}

/// The request's body, or `None` once it passes `limit` bytes, so that no body makes
/// the Worker buffer more than `limit` whatever it streams (one that declares more is
/// not read at all: [`request`]). One streamed past the limit is read to its end and
/// dropped chunk by chunk (the platform caps request bodies at 100 MB or more by plan),
/// not cancelled: under `wrangler dev` a cancelled chunked upload left the local proxy
/// holding the next request, from any client, until yet another one came in.
async fn read_body(req: &mut worker::Request, limit: usize) -> worker::Result<Option<Vec<u8>>> {
    use futures_core::Stream;
    if req.inner().body().is_none() {
        return Ok(Some(Vec::new()));
    }
    let mut stream = Box::pin(req.stream()?);
    let mut body = Some(Vec::new());
    while let Some(chunk) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        let chunk = chunk?;
        if let Some(kept) = body.as_mut() {
            kept.extend_from_slice(&chunk);
            if kept.len() > limit {
                body = None;
            }
        }
    }
    Ok(body)
}

/// Writes the core's response as a Worker response.
fn response(res: Response) -> worker::Result<worker::Response> {
    let headers = worker::Headers::new();
    for (name, value) in res.headers() {
        if let Ok(value) = value.to_str() {
            headers.append(name.as_str(), value)?;
        }
    }
    let status = res.status().as_u16();
    let body = res.into_body();
    let response = if body.is_empty() {
        worker::Response::empty()?
    } else {
        worker::Response::from_bytes(body.to_vec())?
    };
    Ok(response.with_status(status).with_headers(headers))
}
