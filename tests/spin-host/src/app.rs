//! Loading an application (compile every component once), serving its HTTP
//! triggers, and firing its cron triggers: on request through the host's own
//! `POST /.spin-host/cron/{component}`, and on their schedules with `--cron`.

use crate::cron::{Schedule, SpinCronPre};
use crate::host::{ComponentConfig, HostState};
use crate::kv::KvStores;
use crate::manifest::{render_template, Manifest};
use crate::outbound::AllowedHosts;
use crate::routes::Router;
use anyhow::{Context, Result};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

/// A compiled component, ready to be instantiated once per request.
struct Loaded {
    pre: ProxyPre<HostState>,
    config: Arc<ComponentConfig>,
}

/// A compiled cron component, ready to be instantiated once per event.
struct CronLoaded {
    pre: SpinCronPre<HostState>,
    config: Arc<ComponentConfig>,
}

/// The host's own routes, checked before the application's. `POST
/// {CRON_HOOK}{component}` fires that component's cron event now: 200
/// `{"ok":true}`, 500 `{"error": "..."}` with the component's error or trap,
/// 404 when no `[[trigger.cron]]` names the component, 405 for other methods.
pub const RESERVED_PREFIX: &str = "/.spin-host/";
pub const CRON_HOOK: &str = "/.spin-host/cron/";
/// `GET` answers `{"components": {"<id>": {"requests", "reads", "writes"}}}`: instances
/// run and key-value round trips made by each component since the host started.
pub const KV_STATS: &str = "/.spin-host/kv-stats";

pub struct App {
    router: Router,
    components: HashMap<String, Loaded>,
    crons: HashMap<String, CronLoaded>,
    /// `(component, cron_expression)` of every `[[trigger.cron]]`.
    cron_triggers: Vec<(String, String)>,
    stores: Arc<KvStores>,
}

impl App {
    /// `vars` are `--var` overrides; `env` looks up environment variables.
    pub fn load(
        manifest_path: &Path,
        state_dir: &Path,
        vars: &BTreeMap<String, String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let text = std::fs::read_to_string(manifest_path)
            .with_context(|| format!("reading {}", manifest_path.display()))?;
        let manifest = Manifest::parse(&text)?;
        let app_dir = manifest_path.parent().unwrap_or(Path::new("."));
        let app_vars = manifest.resolve_variables(vars, env)?;

        let engine = Engine::default();
        let mut linker = Linker::<HostState>::new(&engine);
        crate::host::add_to_linker(&mut linker)?;

        let mut components = HashMap::new();
        let mut crons = HashMap::new();
        for (id, decl) in &manifest.component {
            let variables = decl
                .variables
                .iter()
                .map(|(k, t)| Ok((k.clone(), render_template(t, &app_vars)?)))
                .collect::<Result<_>>()
                .with_context(|| format!("variables of component {id:?}"))?;
            // Like Spin, entries may name application variables: `{{ base_url }}`.
            let allowed_hosts = decl
                .allowed_outbound_hosts
                .iter()
                .map(|h| render_template(h, &app_vars))
                .collect::<Result<Vec<_>>>()
                .and_then(|hosts| AllowedHosts::parse(&hosts))
                .with_context(|| format!("component {id:?}"))?;
            let mounts = decl
                .mounts(app_dir)
                .with_context(|| format!("component {id:?}"))?;
            let config = Arc::new(ComponentConfig {
                id: id.clone(),
                key_value_stores: decl.key_value_stores.clone(),
                allowed_hosts,
                variables,
                mounts,
            });
            let source = app_dir.join(&decl.source);
            let component = Component::from_file(&engine, &source)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("compiling component {id:?} from {}", source.display()))?;
            let mut linker = linker.clone();
            crate::host::stub_unknown_imports(&mut linker, &component)?;
            let pre = linker.instantiate_pre(&component)?;
            // Each trigger wraps `pre` in the bindings of the export it calls.
            if manifest.trigger.cron.iter().any(|t| t.component == *id) {
                let pre = SpinCronPre::new(pre.clone())
                    .map_err(anyhow::Error::from)
                    .with_context(|| {
                        format!("cron component {id:?} must export handle-cron-event")
                    })?;
                let config = config.clone();
                crons.insert(id.clone(), CronLoaded { pre, config });
            }
            if manifest.trigger.http.iter().any(|t| t.component == *id) {
                let pre = ProxyPre::new(pre)
                    .map_err(anyhow::Error::from)
                    .with_context(|| {
                        format!("component {id:?} must export wasi:http/incoming-handler")
                    })?;
                components.insert(id.clone(), Loaded { pre, config });
            }
        }

        let labels = manifest
            .component
            .values()
            .flat_map(|c| c.key_value_stores.clone());
        Ok(Self {
            router: Router::new(
                manifest
                    .trigger
                    .http
                    .iter()
                    .map(|t| (t.route.as_str(), t.component.as_str())),
            )?,
            components,
            crons,
            cron_triggers: manifest
                .trigger
                .cron
                .iter()
                .map(|t| (t.component.clone(), t.cron_expression.clone()))
                .collect(),
            stores: Arc::new(KvStores::new(state_dir, labels)?),
        })
    }

    /// `(component, cron_expression)` of every `[[trigger.cron]]`, in manifest order.
    pub fn cron_triggers(&self) -> &[(String, String)] {
        &self.cron_triggers
    }

    /// Fires `component`'s cron event now, with `metadata.timestamp` = now.
    /// `None` when no cron trigger names the component; else the component's
    /// result, its error or trap as text. The event runs on its own task, so
    /// it completes even if the caller stops waiting.
    pub async fn fire_cron(&self, component: &str) -> Option<Result<(), String>> {
        let cron = self.crons.get(component)?;
        let result = match HostState::new(cron.config.clone(), self.stores.clone()) {
            Ok(state) => {
                let event = crate::cron::fire(cron.pre.clone(), state, unix_now());
                match tokio::spawn(event).await {
                    Ok(result) => result,
                    Err(e) => Err(format!("the cron event's task failed: {e}")),
                }
            }
            Err(e) => Err(format!("{e:#}")),
        };
        if let Err(e) = &result {
            eprintln!("spin-host: cron component {component:?} failed: {e}");
        }
        Some(result)
    }

    /// Fires every cron trigger on its schedule, from now until the process
    /// ends (call within a Tokio runtime). An event that is still running when
    /// its next time comes makes that time be skipped, not queued. Fails if an
    /// expression is outside the subset [`Schedule`] understands.
    pub fn start_cron_schedules(self: &Arc<Self>) -> Result<()> {
        let schedules = self
            .cron_triggers
            .iter()
            .map(|(component, expression)| {
                Schedule::parse(expression)
                    .with_context(|| format!("cron_expression {expression:?} of {component:?}"))
                    .map(|schedule| (component.clone(), schedule))
            })
            .collect::<Result<Vec<_>>>()?;
        for (component, schedule) in schedules {
            let app = self.clone();
            tokio::spawn(async move {
                let mut last = 0;
                while let Some(next) = schedule.next_after(unix_now().max(last)) {
                    let at = UNIX_EPOCH + Duration::from_secs(next);
                    let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
                    tokio::time::sleep(wait).await;
                    last = next;
                    app.fire_cron(&component).await;
                }
                eprintln!("spin-host: the schedule of {component:?} has no next time");
            });
        }
        Ok(())
    }

    /// Serves `listener` until the process is stopped, each connection as Spin 4.0.2's
    /// HTTP trigger serves it (`crates/trigger-http/src/server.rs`): hyper-util's `auto`
    /// builder (HTTP/1.1, or HTTP/2 with prior knowledge) on the accepted socket as it
    /// is, `TCP_NODELAY` off. That last part matters to clients: a response whose head
    /// and body leave in two writes waits for the client's delayed ACK on a kept-alive
    /// connection, and a test host that set the option would hide it.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> Result<()> {
        let local = listener.local_addr()?;
        loop {
            let (stream, client) = match listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    // Typically out of file descriptors: back off, keep serving.
                    eprintln!("spin-host: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let app = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(app.handle(req, client, local).await) }
                });
                if let Err(e) = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    eprintln!("spin-host: connection from {client}: {e}");
                }
            });
        }
    }

    async fn handle(
        &self,
        mut req: Request<Incoming>,
        client: SocketAddr,
        local: SocketAddr,
    ) -> Response<HyperOutgoingBody> {
        let path = req.uri().path().to_string();
        if path.starts_with(RESERVED_PREFIX) {
            return self.host_route(req.method(), &path).await;
        }
        let Some(found) = self.router.route(&path) else {
            // Spin's own answer to a path no route matches (`OPTIONS *` among them,
            // whose target is no path): 404, no body, no content type.
            let mut response = Response::new(
                Full::new(Bytes::new())
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            );
            *response.status_mut() = StatusCode::NOT_FOUND;
            return response;
        };
        let Some(component) = self.components.get(found.component) else {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "unknown component\n");
        };

        let host = match req.headers().get(http::header::HOST) {
            Some(h) => h.to_str().unwrap_or_default().to_string(),
            None => local.to_string(),
        };
        let path_and_query = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let spin_headers = [
            ("spin-full-url", format!("http://{host}{path_and_query}")),
            ("spin-path-info", found.path_info.to_string()),
            ("spin-matched-route", found.raw_route.to_string()),
            ("spin-raw-component-route", found.raw_route.to_string()),
            ("spin-component-route", found.component_route.to_string()),
            ("spin-base-path", "/".to_string()),
            ("spin-client-addr", client.to_string()),
        ];
        let headers = req.headers_mut();
        for (name, value) in spin_headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        if !headers.contains_key(http::header::HOST) {
            if let Ok(value) = HeaderValue::from_str(&host) {
                headers.insert(http::header::HOST, value);
            }
        }

        match self.call(component, req).await {
            Ok(response) => response,
            Err(e) => {
                eprintln!(
                    "spin-host: component {:?} failed: {e:#}",
                    component.config.id
                );
                plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n")
            }
        }
    }

    /// The host's own routes under [`RESERVED_PREFIX`].
    async fn host_route(&self, method: &Method, path: &str) -> Response<HyperOutgoingBody> {
        if path == KV_STATS {
            if method != Method::GET {
                let mut response =
                    json_error(StatusCode::METHOD_NOT_ALLOWED, "use GET".to_string());
                response
                    .headers_mut()
                    .insert(http::header::ALLOW, HeaderValue::from_static("GET"));
                return response;
            }
            let stats = self.stores.stats().snapshot();
            return json(StatusCode::OK, &serde_json::json!({ "components": stats }));
        }
        let Some(component) = path.strip_prefix(CRON_HOOK) else {
            return json_error(StatusCode::NOT_FOUND, "no such spin-host route".into());
        };
        if method != Method::POST {
            let mut response = json_error(StatusCode::METHOD_NOT_ALLOWED, "use POST".to_string());
            response
                .headers_mut()
                .insert(http::header::ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        match self.fire_cron(component).await {
            Some(Ok(())) => json(StatusCode::OK, &serde_json::json!({"ok": true})),
            Some(Err(e)) => json_error(StatusCode::INTERNAL_SERVER_ERROR, e),
            None => json_error(
                StatusCode::NOT_FOUND,
                format!("no [[trigger.cron]] names component {component:?}"),
            ),
        }
    }

    /// Instantiates the component afresh, as Spin does for every request.
    async fn call(
        &self,
        component: &Loaded,
        req: Request<Incoming>,
    ) -> Result<Response<HyperOutgoingBody>> {
        let state = HostState::new(component.config.clone(), self.stores.clone())?;
        let mut store = Store::new(component.pre.engine(), state);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let pre = component.pre.clone();

        // Its own task, so the guest can keep streaming the body after it
        // has handed over the response head.
        let task = tokio::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await
        });

        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => anyhow::bail!("component answered with error code {code:?}"),
            // The sender is dropped with the store: the guest returned or
            // trapped without setting a response.
            Err(_) => match task.await {
                Ok(Ok(())) => anyhow::bail!("component returned without setting a response"),
                Ok(Err(e)) => Err(anyhow::Error::from(e).context("component trapped")),
                Err(e) => Err(anyhow::Error::from(e).context("component task panicked")),
            },
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<HyperOutgoingBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(value.to_string()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn json_error(status: StatusCode, message: String) -> Response<HyperOutgoingBody> {
    json(status, &serde_json::json!({ "error": message }))
}

fn plain(status: StatusCode, body: &'static str) -> Response<HyperOutgoingBody> {
    let mut response = Response::new(
        Full::new(Bytes::from_static(body.as_bytes()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    response
}
