//! The native host: the Worker's platform-neutral router (`edge_app`) behind
//! hyper on one thread, with the in-memory backend and the static files on disk. The speed ceiling the wasm hosts
//! are measured against.

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use kit::table::memory::MemoryKv;
use kit::MapConfig;
use std::collections::HashMap;
use std::convert::Infallible;
use std::rc::Rc;
use tokio::sync::oneshot;

/// A running native server; stops when dropped.
pub struct NativeServer {
    pub base: String,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NativeServer {
    /// Serves on a free loopback port with `config` as the deployment's variables.
    pub fn start(config: HashMap<String, String>) -> Result<Self> {
        Self::start_on(config, MemoryKv::new())
    }

    /// Serves like [`NativeServer::start`], its store `kv`: a test that keeps a clone
    /// can see and change what the host stores between requests.
    pub fn start_on(config: HashMap<String, String>, kv: MemoryKv) -> Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let base = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("native-host".into())
            .spawn(move || {
                if let Err(e) = serve(listener, config, kv, rx) {
                    eprintln!("native host failed: {e:#}");
                }
            })?;
        Ok(Self {
            base,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }
}

impl Drop for NativeServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Handler futures are `!Send` (as on the wasm hosts), so the server runs on one
/// thread's `LocalSet`.
fn serve(
    listener: std::net::TcpListener,
    config: HashMap<String, String>,
    kv: MemoryKv,
    mut shutdown: oneshot::Receiver<()>,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the native host's runtime")?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        // One store for the deployment; an environment per request, as on the wasm
        // hosts, so that each request's storage round trips are its own.
        let host = Rc::new(Deployment {
            kv,
            config: MapConfig(config),
            fetch: HyperFetch::new(),
            files: kit::host::DirFiles::new(crate::root().join(STATIC_FILES)),
            cache: kit::host::native::MemoryCache::default(),
        });
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => accepted?,
                _ = &mut shutdown => return Ok(()),
            };
            let host = host.clone();
            tokio::task::spawn_local(async move {
                let service = service_fn(move |req| handle(req, host.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// The deployment's static files (the `/docs` files), under the workspace root: what
/// `scripts/docs-assets.sh` makes, Spin mounts and wrangler uploads as assets.
pub const STATIC_FILES: &str = "build/docs-assets";

/// What every request's environment is made from.
struct Deployment {
    kv: MemoryKv,
    config: MapConfig,
    fetch: HyperFetch,
    files: kit::host::DirFiles,
    /// The deployment's edge cache, as a Worker's data centre has one (kit::cache).
    cache: kit::host::native::MemoryCache,
}

impl Deployment {
    fn env(&self) -> kit::Env {
        let mut env = kit::host::native::env(self.kv.clone(), self.config.clone());
        env.fetch = Box::new(self.fetch.clone());
        env.files = Box::new(self.files.clone());
        env.cache = Box::new(self.cache.clone());
        env.log = keep_log;
        env
    }
}

/// The log lines of every native host in this process (they share one sink: lines
/// are told apart by their request ids).
pub fn logs() -> crate::Logs {
    static LOGS: std::sync::OnceLock<crate::Logs> = std::sync::OnceLock::new();
    LOGS.get_or_init(crate::Logs::default).clone()
}

fn keep_log(line: &str) {
    if std::env::var_os("CONFORMANCE_VERBOSE").is_some() {
        eprintln!("[native] {line}");
    }
    logs().push(line.to_owned());
}

/// Outbound HTTP for the native host: a plain-HTTP hyper client (tests only talk to
/// loopback fakes). Clones share its connection pool.
#[derive(Clone)]
pub struct HyperFetch {
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
}

impl Default for HyperFetch {
    fn default() -> Self {
        Self::new()
    }
}

impl HyperFetch {
    pub fn new() -> Self {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        Self { client }
    }
}

#[async_trait::async_trait(?Send)]
impl kit::Fetch for HyperFetch {
    async fn fetch(&self, req: kit::Request) -> Result<kit::Response, kit::FetchError> {
        let network = |e: &dyn std::fmt::Display| kit::FetchError::Network(e.to_string());
        let response = self
            .client
            .request(req.map(Full::new))
            .await
            .map_err(|e| network(&e))?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| network(&e))?.to_bytes();
        Ok(http::Response::from_parts(parts, body))
    }
}

/// `POST` here runs one time-to-live sweep, as a scheduler would: the native host's
/// stand-in for Spin's cron component and the Worker's cron handler.
pub const TTL_CRON_HOOK: &str = "/.native/cron/dynamodb-ttl";

/// The native sweep reads what Spin's does.
const TTL_BUDGET: dynamodb::ttl::Budget = dynamodb::ttl::Budget {
    items: 2_000,
    partitions: 100,
};

async fn handle(
    req: hyper::Request<hyper::body::Incoming>,
    host: Rc<Deployment>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let env = host.env();
    if req.method() == http::Method::POST && req.uri().path() == TTL_CRON_HOOK {
        let _more = edge_app::sweep_expired_items(&env, TTL_BUDGET).await;
        return Ok(hyper::Response::new(Full::new(Bytes::new())));
    }
    let (mut parts, body) = req.into_parts();
    // As the wasm hosts do: no body is buffered past the most any route accepts.
    let limit = kit::BodyLimit::HOST.0;
    let body = if kit::declared_too_large(&parts.headers) {
        None
    } else {
        match http_body_util::Limited::new(body, limit).collect().await {
            Ok(collected) => Some(collected.to_bytes()),
            Err(_) => None,
        }
    };
    if body.is_none() {
        parts.extensions.insert(kit::BodyTooLarge);
    }
    let body = body.unwrap_or_default();
    let response = edge_app::handle(http::Request::from_parts(parts, body), &env).await;
    Ok(response.map(Full::new))
}
