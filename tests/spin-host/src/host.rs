//! Per-request store state and the host side of the Spin interfaces:
//! `fermyon:spin/key-value`, `fermyon:spin/variables` and `wasi:keyvalue`.

use crate::kv::{Cas, KvStore, KvStores, Op, TABLE_CAPACITY};
use crate::manifest::DirMount;
use crate::outbound::AllowedHosts;
use anyhow::Context as _;
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, HasSelf, Linker, Resource, ResourceTable, ResourceType};
use wasmtime::Result;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "spin-host:host/spin-imports",
        imports: { default: trappable },
        with: {
            "fermyon:spin/key-value.store": super::OpenStore,
            "wasi:keyvalue/store.bucket": super::OpenStore,
            "wasi:keyvalue/atomics.cas": crate::kv::Cas,
        },
    });
}

use bindings::fermyon::spin::{key_value as spin_kv, variables};
use bindings::wasi::keyvalue::{atomics, atomics::CasError, batch, store as wasi_kv};

/// Adds everything this host implements to `linker`: WASI 0.2, wasi-http
/// and the Spin interfaces.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    bindings::SpinImports::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    Ok(())
}

/// Whether `add_to_linker` provides the import instance `name`. WASI 0.2
/// interfaces are provided at every 0.2.x version by semver matching.
fn is_provided(name: &str) -> bool {
    const SPIN: [&str; 5] = [
        "fermyon:spin/key-value@2.0.0",
        "fermyon:spin/variables@2.0.0",
        "wasi:keyvalue/store@0.2.0-draft2",
        "wasi:keyvalue/atomics@0.2.0-draft2",
        "wasi:keyvalue/batch@0.2.0-draft2",
    ];
    const WASI: [&str; 7] = [
        "cli",
        "clocks",
        "filesystem",
        "io",
        "random",
        "sockets",
        "http",
    ];
    let wasi_02 = name
        .strip_prefix("wasi:")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(package, rest)| {
            WASI.contains(&package)
                && rest.split_once('@').is_some_and(|(_, version)| {
                    version.starts_with("0.2.") && !version.contains('-')
                })
        });
    wasi_02 || SPIN.contains(&name)
}

/// Links every import `component` needs that this host does not provide
/// (the rest of Spin's platform world: sqlite, redis, llm, ...) to functions
/// that trap if called, so components that merely import them still run.
///
/// Wasmtime's `define_unknown_imports_as_traps` is not usable here: it looks
/// instances up by exact name, so a component importing `wasi:http@0.2.6`
/// gets a trapping copy that shadows our semver-compatible `@0.2.12`, and it
/// re-stubs resources that interfaces merely `use` from another interface.
pub fn stub_unknown_imports(linker: &mut Linker<HostState>, component: &Component) -> Result<()> {
    let engine = linker.engine().clone();
    for (name, import) in component.component_type().imports(&engine) {
        if is_provided(name) {
            continue;
        }
        match import.ty {
            ComponentItem::ComponentInstance(instance) => {
                let mut linker = linker.instance(name)?;
                for (export, item) in instance.exports(&engine) {
                    match item.ty {
                        ComponentItem::ComponentFunc(_) => {
                            let what = format!("{name}#{export}");
                            linker.func_new(export, move |_, _, _, _| {
                                wasmtime::bail!("spin-host does not implement `{what}`")
                            })?
                        }
                        ComponentItem::Resource(_) => linker.resource(
                            export,
                            ResourceType::host::<UnimplementedResource>(),
                            |_, _| Ok(()),
                        )?,
                        _ => {}
                    }
                }
            }
            ComponentItem::ComponentFunc(_) => {
                let what = name.to_string();
                linker.root().func_new(name, move |_, _, _, _| {
                    wasmtime::bail!("spin-host does not implement `{what}`")
                })?
            }
            _ => {}
        }
    }
    Ok(())
}

/// Stands in for resources of interfaces this host does not implement.
struct UnimplementedResource;

/// What a component may do, from its `[component.X]` manifest entry.
#[derive(Debug)]
pub struct ComponentConfig {
    pub id: String,
    pub key_value_stores: Vec<String>,
    pub allowed_hosts: AllowedHosts,
    /// `[component.X.variables]` with templates already resolved.
    pub variables: BTreeMap<String, String>,
    /// `files` directories, preopened read-only in every instance.
    pub mounts: Vec<DirMount>,
}

/// The resource behind both a Spin `store` and a `wasi:keyvalue` bucket.
pub struct OpenStore(Arc<KvStore>);

/// The `T` of each request's `wasmtime::Store<T>`.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: OutboundHooks,
    config: Arc<ComponentConfig>,
    stores: Arc<KvStores>,
    /// Slots of Spin's per-request resource tables in use (see [`crate::kv`]).
    open_stores: usize,
    open_cas: usize,
}

impl HostState {
    /// Fails when a `files` directory can no longer be opened.
    pub fn new(config: Arc<ComponentConfig>, stores: Arc<KvStores>) -> anyhow::Result<Self> {
        let mut wasi = WasiCtx::builder();
        // Guest stdout goes to our stderr: our stdout is reserved for the
        // "listening" line a test harness reads.
        wasi.stdout(wasmtime_wasi::cli::stderr()).inherit_stderr();
        // Like Spin's `files`: read-only (Spin's `allow_transient_write` is not
        // supported), each directory at its destination.
        for mount in &config.mounts {
            wasi.preopened_dir(&mount.host, &mount.guest, FsPerms::ReadOnly)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("mounting {} at {}", mount.host.display(), mount.guest))?;
        }
        let wasi = wasi.build();
        stores.stats().record(&config.id, Op::Request);
        Ok(Self {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: OutboundHooks(config.clone()),
            config,
            stores,
            open_stores: 0,
            open_cas: 0,
        })
    }

    /// Spin's order of checks: not listed for the component → access denied,
    /// even if the store exists; listed but unknown → no such store.
    fn open_store(&mut self, label: &str) -> Result<Result<Resource<OpenStore>, OpenError>> {
        if !self.config.key_value_stores.iter().any(|s| s == label) {
            return Ok(Err(OpenError::AccessDenied));
        }
        if self.open_stores >= TABLE_CAPACITY {
            return Ok(Err(OpenError::Other("store table full".into())));
        }
        Ok(match self.stores.open(label) {
            Ok(Some(store)) => {
                self.open_stores += 1;
                Ok(self.table.push(OpenStore(store))?)
            }
            Ok(None) => Err(OpenError::NoSuchStore),
            Err(e) => Err(OpenError::Other(format!("{e:#}"))),
        })
    }

    fn store(&self, handle: &Resource<OpenStore>) -> Result<Arc<KvStore>> {
        Ok(self.table.get(handle)?.0.clone())
    }

    fn drop_store(&mut self, handle: Resource<OpenStore>) -> Result<()> {
        self.table.delete(handle)?;
        self.open_stores = self.open_stores.saturating_sub(1);
        Ok(())
    }

    /// Counts one round trip to the database for this component.
    fn count(&self, op: Op) {
        self.stores.stats().record(&self.config.id, op);
    }

    /// Counts the bytes of the values a read returns, and hands the result on.
    fn count_value<E>(&self, value: Result<Option<Vec<u8>>, E>) -> Result<Option<Vec<u8>>, E> {
        if let Ok(Some(v)) = &value {
            self.count(Op::ReadBytes(v.len()));
        }
        value
    }

    /// A new `cas` resource, refused like Spin's when its table is full.
    fn push_cas(&mut self, cas: Cas) -> Result<Result<Resource<Cas>, wasi_kv::Error>> {
        if self.open_cas >= TABLE_CAPACITY {
            return Ok(Err(wasi_kv::Error::Other(
                "too many compare_and_swaps opened".into(),
            )));
        }
        self.open_cas += 1;
        Ok(Ok(self.table.push(cas)?))
    }
}

enum OpenError {
    AccessDenied,
    NoSuchStore,
    Other(String),
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Enforces `allowed_outbound_hosts` on `wasi:http/outgoing-handler`.
struct OutboundHooks(Arc<ComponentConfig>);

type BoxFuture<T> = Box<dyn std::future::Future<Output = wasmtime_wasi_http::Result<T>> + Send>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: BoxFuture<()>,
    ) -> BoxFuture<(http::Response<WasiBody>, BoxFuture<()>)> {
        if !self.0.allowed_hosts.allows(request.uri()) {
            let (id, uri) = (&self.0.id, request.uri());
            eprintln!("spin-host: {id:?} may not send to {uri} (allowed_outbound_hosts)");
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        wasmtime_wasi_http::default_hooks().send_request(request, options, fut)
    }
}

type SpinResult<T> = Result<Result<T, spin_kv::Error>>;
type WasiResult<T> = Result<Result<T, wasi_kv::Error>>;

/// Spin reports database errors as `Other` with the error's debug text.
fn spin_err(e: anyhow::Error) -> spin_kv::Error {
    spin_kv::Error::Other(format!("{e:#}"))
}

fn wasi_err(e: anyhow::Error) -> wasi_kv::Error {
    wasi_kv::Error::Other(format!("{e:#}"))
}

impl spin_kv::Host for HostState {}

impl spin_kv::HostStore for HostState {
    fn open(&mut self, label: String) -> SpinResult<Resource<OpenStore>> {
        Ok(self.open_store(&label)?.map_err(|e| match e {
            OpenError::AccessDenied => spin_kv::Error::AccessDenied,
            OpenError::NoSuchStore => spin_kv::Error::NoSuchStore,
            OpenError::Other(m) => spin_kv::Error::Other(m),
        }))
    }

    fn get(&mut self, s: Resource<OpenStore>, key: String) -> SpinResult<Option<Vec<u8>>> {
        self.count(Op::Read);
        let value = self.store(&s)?.get(&key).map_err(spin_err);
        Ok(self.count_value(value))
    }

    fn set(&mut self, s: Resource<OpenStore>, key: String, value: Vec<u8>) -> SpinResult<()> {
        self.count(Op::Write);
        Ok(self.store(&s)?.set(&key, &value).map_err(spin_err))
    }

    fn delete(&mut self, s: Resource<OpenStore>, key: String) -> SpinResult<()> {
        self.count(Op::Write);
        Ok(self.store(&s)?.delete(&key).map_err(spin_err))
    }

    fn exists(&mut self, s: Resource<OpenStore>, key: String) -> SpinResult<bool> {
        self.count(Op::Read);
        Ok(self.store(&s)?.exists(&key).map_err(spin_err))
    }

    fn get_keys(&mut self, s: Resource<OpenStore>) -> SpinResult<Vec<String>> {
        self.count(Op::Read);
        Ok(self.store(&s)?.keys().map_err(spin_err))
    }

    fn drop(&mut self, s: Resource<OpenStore>) -> Result<()> {
        self.drop_store(s)
    }
}

impl wasi_kv::Host for HostState {
    fn open(&mut self, identifier: String) -> WasiResult<Resource<OpenStore>> {
        Ok(self.open_store(&identifier)?.map_err(|e| match e {
            OpenError::AccessDenied => wasi_kv::Error::AccessDenied,
            OpenError::NoSuchStore => wasi_kv::Error::NoSuchStore,
            OpenError::Other(m) => wasi_kv::Error::Other(m),
        }))
    }
}

impl wasi_kv::HostBucket for HostState {
    fn get(&mut self, b: Resource<OpenStore>, key: String) -> WasiResult<Option<Vec<u8>>> {
        self.count(Op::Read);
        let value = self.store(&b)?.get(&key).map_err(wasi_err);
        Ok(self.count_value(value))
    }

    fn set(&mut self, b: Resource<OpenStore>, key: String, value: Vec<u8>) -> WasiResult<()> {
        self.count(Op::Write);
        Ok(self.store(&b)?.set(&key, &value).map_err(wasi_err))
    }

    fn delete(&mut self, b: Resource<OpenStore>, key: String) -> WasiResult<()> {
        self.count(Op::Write);
        Ok(self.store(&b)?.delete(&key).map_err(wasi_err))
    }

    fn exists(&mut self, b: Resource<OpenStore>, key: String) -> WasiResult<bool> {
        self.count(Op::Read);
        Ok(self.store(&b)?.exists(&key).map_err(wasi_err))
    }

    /// Like Spin: every key in one page, and a cursor is refused.
    fn list_keys(
        &mut self,
        b: Resource<OpenStore>,
        cursor: Option<String>,
    ) -> WasiResult<wasi_kv::KeyResponse> {
        if cursor.is_some() {
            return Ok(Err(wasi_kv::Error::Other(
                "list_keys: cursor not supported".into(),
            )));
        }
        self.count(Op::Read);
        Ok(self
            .store(&b)?
            .keys()
            .map(|keys| wasi_kv::KeyResponse { keys, cursor: None })
            .map_err(wasi_err))
    }

    fn drop(&mut self, b: Resource<OpenStore>) -> Result<()> {
        self.drop_store(b)
    }
}

impl atomics::Host for HostState {
    fn increment(&mut self, b: Resource<OpenStore>, key: String, delta: i64) -> WasiResult<i64> {
        self.count(Op::Write);
        Ok(self.store(&b)?.increment(&key, delta).map_err(wasi_err))
    }

    /// Spin's: the consumed `cas` keeps its table slot; on a lost race a new `cas`
    /// that has already read the latest value comes back.
    fn swap(&mut self, cas: Resource<Cas>, value: Vec<u8>) -> Result<Result<(), CasError>> {
        let cas = self.table.delete(cas)?;
        self.count(Op::Write);
        match cas.swap(&value) {
            Ok(true) => Ok(Ok(())),
            Ok(false) => {
                let mut latest = Cas::new(cas.store().clone(), cas.key().to_string());
                self.count(Op::Read);
                if let Err(e) = latest.current() {
                    return Ok(Err(CasError::StoreError(wasi_err(e))));
                }
                Ok(match self.push_cas(latest)? {
                    Ok(handle) => Err(CasError::CasFailed(handle)),
                    Err(e) => Err(CasError::StoreError(e)),
                })
            }
            Err(e) => Ok(Err(CasError::StoreError(wasi_err(e)))),
        }
    }
}

impl atomics::HostCas for HostState {
    fn new(&mut self, b: Resource<OpenStore>, key: String) -> WasiResult<Resource<Cas>> {
        let cas = Cas::new(self.store(&b)?, key);
        self.push_cas(cas)
    }

    fn current(&mut self, cas: Resource<Cas>) -> WasiResult<Option<Vec<u8>>> {
        self.count(Op::Read);
        let value = self.table.get_mut(&cas)?.current().map_err(wasi_err);
        Ok(self.count_value(value))
    }

    fn drop(&mut self, cas: Resource<Cas>) -> Result<()> {
        self.table.delete(cas)?;
        self.open_cas = self.open_cas.saturating_sub(1);
        Ok(())
    }
}

/// Spin's batch operations: `get-many` returns only keys that exist; `set-many` is one
/// transaction; an empty batch touches nothing.
impl batch::Host for HostState {
    fn get_many(&mut self, b: Resource<OpenStore>, keys: Vec<String>) -> WasiResult<Vec<KeyValue>> {
        let store = self.store(&b)?;
        if keys.is_empty() {
            return Ok(Ok(vec![]));
        }
        self.count(Op::Read);
        let found = store.get_many(keys).map_err(wasi_err);
        if let Ok(found) = &found {
            let bytes = found.iter().filter_map(|(_, v)| v.as_ref()).map(Vec::len);
            self.count(Op::ReadBytes(bytes.sum()));
        }
        Ok(found)
    }

    fn set_many(
        &mut self,
        b: Resource<OpenStore>,
        pairs: Vec<(String, Vec<u8>)>,
    ) -> WasiResult<()> {
        let store = self.store(&b)?;
        if pairs.is_empty() {
            return Ok(Ok(()));
        }
        self.count(Op::Write);
        Ok(store.set_many(pairs).map_err(wasi_err))
    }

    fn delete_many(&mut self, b: Resource<OpenStore>, keys: Vec<String>) -> WasiResult<()> {
        let store = self.store(&b)?;
        if keys.is_empty() {
            return Ok(Ok(()));
        }
        self.count(Op::Write);
        Ok(store.delete_many(keys).map_err(wasi_err))
    }
}

type KeyValue = (String, Option<Vec<u8>>);

impl variables::Host for HostState {
    fn get(&mut self, name: String) -> Result<Result<String, variables::Error>> {
        // Spin's variable names: lowercase ASCII letters, digits and `_`.
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        Ok(match self.config.variables.get(&name) {
            _ if !valid => Err(variables::Error::InvalidName(name)),
            Some(value) => Ok(value.clone()),
            None => Err(variables::Error::Undefined(name)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::is_provided;

    #[test]
    fn provided_imports() {
        assert!(is_provided("wasi:http/types@0.2.6"));
        assert!(is_provided("wasi:io/streams@0.2.0"));
        assert!(is_provided("wasi:keyvalue/atomics@0.2.0-draft2"));
        assert!(is_provided("fermyon:spin/variables@2.0.0"));
        assert!(!is_provided("wasi:http/types@0.2.0-rc-2023-10-18"));
        assert!(!is_provided("wasi:http/types@0.3.0"));
        assert!(!is_provided("fermyon:spin/sqlite@2.0.0"));
        assert!(!is_provided("wasi:config/store@0.2.0-draft-2024-09-27"));
    }
}
