//! The hosts the conformance suite and benchmarks run against, and a small HTTP client.
//!
//! [`start`] brings up one host on a free loopback port and stops it when the returned
//! [`Running`] is dropped: the native in-process server (memory backend), workerd
//! through `wrangler dev` on the built Worker, the Spin-compatible wasmtime host in
//! `tests/spin-host` on the built components, and real `spin up` when `spin` is on
//! PATH. `cargo test -p conformance` (after the builds the README's test command does)
//! runs the suite on each; `cargo run --release -p conformance --features bench --bin bench` measures.

pub mod bench;
pub mod client;
pub mod native;

use anyhow::{bail, Context, Result};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub use client::{encode_segment, Api, Reply};

/// A host the suite can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    Native,
    Workerd,
    SpinHost,
    /// The Spin-compatible host with `table_backend = "dynamodb"`, its tables on a
    /// dynalite the test starts.
    SpinHostDynamodb,
    Spin,
}

impl Host {
    pub const ALL: [Host; 5] = [
        Host::Native,
        Host::Workerd,
        Host::SpinHost,
        Host::SpinHostDynamodb,
        Host::Spin,
    ];

    /// The hosts the suite runs on when `CONFORMANCE_HOSTS` names none: every one but
    /// [`Host::SpinHostDynamodb`], which repeats spin-host's run on the slower
    /// DynamoDB backend (`make test-dynamodb-backend`).
    pub const DEFAULT: [Host; 4] = [Host::Native, Host::Workerd, Host::SpinHost, Host::Spin];

    pub fn name(self) -> &'static str {
        match self {
            Host::Native => "native",
            Host::Workerd => "workerd",
            Host::SpinHost => "spin-host",
            Host::SpinHostDynamodb => "spin-host-dynamodb",
            Host::Spin => "spin",
        }
    }

    pub fn parse(name: &str) -> Option<Host> {
        Host::ALL.into_iter().find(|h| h.name() == name)
    }
}

/// How a test fires the scraper's scheduled tick on a host, as the host's own scheduler
/// would: the cron component on Spin, the `scheduled` handler on Workers. Hosts without
/// a test hook for their scheduler use the admin endpoint, which runs the same tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CronTrigger {
    pub method: &'static str,
    pub path: &'static str,
    pub admin: bool,
}

impl Host {
    pub fn cron_trigger(self) -> CronTrigger {
        match self {
            Host::SpinHost | Host::SpinHostDynamodb => CronTrigger {
                method: "POST",
                path: "/.spin-host/cron/scraper",
                admin: false,
            },
            Host::Workerd => CronTrigger {
                method: "GET",
                path: "/cdn-cgi/handler/scheduled",
                admin: false,
            },
            Host::Native | Host::Spin => CronTrigger {
                method: "POST",
                path: "/api/shows/scrape",
                admin: true,
            },
        }
    }
}

impl Host {
    /// Whether the scraper runs its ticks back to back by itself once its scheduler
    /// fires: on Workers the cron only wakes the scraper's Durable Object, which then
    /// ticks on its own alarm chain while it has work left.
    pub fn chains_scraper_ticks(self) -> bool {
        self == Host::Workerd
    }

    /// Whether the host keeps an edge cache in front of public reads (kit::cache): the
    /// Workers Cache API on workerd, an in-process one natively; Spin has none.
    pub fn has_edge_cache(self) -> bool {
        matches!(self, Host::Workerd | Host::Native)
    }
}

/// Fires one scheduled scraper tick on `host` through `api`, as its scheduler would
/// (on a host that [chains ticks](Host::chains_scraper_ticks), wakes the chain).
pub async fn fire_cron(api: &Api, host: Host) -> Result<()> {
    let trigger = host.cron_trigger();
    let auth = format!("Bearer {}", api.admin_token);
    let headers: Vec<(&str, &str)> = if trigger.admin {
        vec![("authorization", auth.as_str())]
    } else {
        vec![]
    };
    let method = reqwest::Method::from_bytes(trigger.method.as_bytes())?;
    let reply = api.send(method, trigger.path, &headers, None).await?;
    anyhow::ensure!(
        (200..300).contains(&reply.status),
        "{} {}: {} {}",
        trigger.method,
        trigger.path,
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    Ok(())
}

/// Fires one time-to-live sweep of DynamoDB items on `host`, as its scheduler would:
/// Spin's `dynamodb-ttl` cron component, the Worker's cron handler (which wakes the
/// sweeper's Durable Object, whose alarm then sweeps, and the scraper's), the native
/// host's hook. `Ok(false)` on real Spin, whose cron plugin
/// fires on its schedule alone (every minute).
pub async fn fire_ttl_sweep(api: &Api, host: Host) -> Result<bool> {
    let (method, path) = match host {
        Host::SpinHost | Host::SpinHostDynamodb => {
            (reqwest::Method::POST, "/.spin-host/cron/dynamodb-ttl")
        }
        Host::Workerd => (reqwest::Method::GET, "/cdn-cgi/handler/scheduled"),
        Host::Native => (reqwest::Method::POST, native::TTL_CRON_HOOK),
        Host::Spin => return Ok(false),
    };
    let reply = api.send(method, path, &[], None).await?;
    anyhow::ensure!(
        (200..300).contains(&reply.status),
        "{path}: {} {}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    Ok(true)
}

/// The workspace root (two levels above this crate).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A started host; dropping it stops the host and removes its state.
pub struct Running {
    pub host: Host,
    pub base: String,
    /// What the host has logged so far.
    pub logs: Logs,
    guard: Guard,
}

/// The lines a host wrote (its stdout and stderr; the native host's log sink), the
/// last [`Logs::KEEP`] of them, for tests that check the request log lines.
#[derive(Debug, Clone, Default)]
pub struct Logs(Arc<Mutex<VecDeque<String>>>);

impl Logs {
    pub const KEEP: usize = 20_000;

    pub fn push(&self, line: String) {
        let mut lines = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == Self::KEEP {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    pub fn lines(&self) -> Vec<String> {
        let lines = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        lines.iter().cloned().collect()
    }
}

/// A host's own line, echoed to our stderr: JSON log lines (one per request) only
/// with `CONFORMANCE_VERBOSE`, anything else (warnings, panics) always.
fn echo(prefix: &str, line: &str) {
    if std::env::var_os("CONFORMANCE_VERBOSE").is_some() || !line.trim_start().starts_with('{') {
        eprintln!("[{prefix}] {line}");
    }
}

enum Guard {
    /// Held only so that dropping [`Running`] stops the server.
    Native { _server: native::NativeServer },
    Process {
        child: Child,
        /// The host's state, removed with it; `None` when the caller keeps it.
        _state: Option<tempfile::TempDir>,
        /// The DynamoDB-compatible engine its tables are on, stopped after it.
        _engine: Option<Dynalite>,
    },
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Guard::Process { child, .. } = &mut self.guard {
            stop_process_group(child);
        }
    }
}

impl Running {
    /// Kills the host's process group with SIGKILL — no chance to finish a write or
    /// flush anything — and waits until it is gone. The native host has no process.
    pub fn crash(mut self) {
        if let Guard::Process { child, .. } = &mut self.guard {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
        }
    }

    /// The native server's in-process address, or the child's pid, for logs.
    pub fn describe(&self) -> String {
        match &self.guard {
            Guard::Native { .. } => format!("{} in-process at {}", self.host.name(), self.base),
            Guard::Process { child, .. } => {
                format!("{} pid {} at {}", self.host.name(), child.id(), self.base)
            }
        }
    }
}

/// The native host on store `kv`, which the caller may read and change between
/// requests.
pub fn start_native_on(vars: &Vars, kv: kit::table::memory::MemoryKv) -> Result<Running> {
    let server = native::NativeServer::start_on(vars.iter().cloned().collect(), kv)?;
    Ok(Running {
        host: Host::Native,
        base: server.base.clone(),
        logs: native::logs(),
        guard: Guard::Native { _server: server },
    })
}

/// Config every host gets, by snake_case name (Workers vars get them upper-cased).
pub type Vars = Vec<(String, String)>;

/// Starts `host` with `vars`; `Ok(None)` when the host cannot run here (no `spin`).
pub fn start(host: Host, vars: &Vars) -> Result<Option<Running>> {
    let running = match host {
        Host::Native => {
            let server = native::NativeServer::start(vars.iter().cloned().collect())?;
            Running {
                host,
                base: server.base.clone(),
                logs: native::logs(),
                guard: Guard::Native { _server: server },
            }
        }
        Host::SpinHost => start_spin_host(vars)?,
        Host::SpinHostDynamodb => start_spin_host_on_dynalite(vars)?,
        Host::Workerd => start_workerd(vars)?,
        Host::Spin => match which("spin") {
            Some(spin) => start_real_spin(&spin, vars)?,
            None => return Ok(None),
        },
    };
    Ok(Some(running))
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Builds that must exist before a host can start; the README's test command makes them.
fn require(path: &Path, how: &str) -> Result<()> {
    if path.exists() {
        Ok(())
    } else {
        bail!("{} is missing: run `{how}` first", path.display())
    }
}

/// Starts `cmd` with its stderr kept in `logs` (and echoed, see [`echo`]); its stdout
/// is for [`pump_stdout`].
fn spawn(mut cmd: Command, name: &'static str, logs: &Logs) -> Result<Child> {
    use std::os::unix::process::CommandExt;
    // Own process group, so stopping the host also stops what it started (workerd).
    cmd.process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    if let Some(stderr) = child.stderr.take() {
        let logs = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                echo(name, &line);
                logs.push(line);
            }
        });
    }
    Ok(child)
}

fn stop_process_group(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        // Already gone (crashed on purpose, or exited).
        return;
    }
    let group = format!("-{}", child.id());
    for signal in ["-TERM", "-KILL"] {
        let _ = Command::new("kill").args([signal, "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Keeps a child's stdout in `logs` (echoing it with `CONFORMANCE_VERBOSE`) and hands
/// each line to the returned receiver until it is gone.
fn pump_stdout(child: &mut Child, prefix: &'static str, logs: &Logs) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        let logs = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if std::env::var_os("CONFORMANCE_VERBOSE").is_some() {
                    eprintln!("[{prefix}] {line}");
                }
                logs.push(line.clone());
                let _ = tx.send(line);
            }
        });
    }
    rx
}

/// Forwards `child`'s stdout (as [`pump_stdout`]) until `pick` finds what it waits
/// for in a line, and answers that; stops the child when it exits first or `limit`
/// passes.
fn wait_for_line<T>(
    child: &mut Child,
    name: &'static str,
    logs: &Logs,
    limit: Duration,
    mut pick: impl FnMut(&str) -> Option<T>,
) -> Result<T> {
    let lines = pump_stdout(child, name, logs);
    let deadline = Instant::now() + limit;
    loop {
        match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                if let Some(found) = pick(&line) {
                    return Ok(found);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                if let Some(status) = child.try_wait()? {
                    bail!("{name} exited while starting: {status}");
                }
            }
            Err(_) => {
                stop_process_group(child);
                bail!("{name} did not report that it started within {limit:?}");
            }
        }
    }
}

/// Polls `GET {base}/healthz` until it answers 200.
fn wait_healthy(base: &str, child: &mut Child, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    let url = format!("{base}/healthz");
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            bail!("host exited while starting: {status}");
        }
        if let Ok(resp) = client::blocking_get(&url) {
            if resp == 200 {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    bail!("{url} did not answer 200 within {limit:?}")
}

fn start_spin_host(vars: &Vars) -> Result<Running> {
    start_spin_host_in(vars, tempfile::tempdir()?)
}

/// The table backend's settings for a DynamoDB-compatible engine at `endpoint`.
pub fn dynamodb_table_vars(endpoint: &str) -> Vars {
    [
        ("table_backend", "dynamodb"),
        ("table_dynamodb_endpoint", endpoint),
        ("table_dynamodb_region", "us-east-1"),
        ("table_dynamodb_access_key_id", "AKIDTABLES"),
        ("table_dynamodb_secret_access_key", "tables-secret"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// [`Host::SpinHostDynamodb`]: a dynalite, and the Spin-compatible host keeping every
/// table there.
fn start_spin_host_on_dynalite(vars: &Vars) -> Result<Running> {
    let dynalite = Dynalite::start()?;
    let mut all = vars.clone();
    all.extend(dynamodb_table_vars(&dynalite.url));
    let mut running = start_spin_host(&all)?;
    running.host = Host::SpinHostDynamodb;
    if let Guard::Process { _engine, .. } = &mut running.guard {
        *_engine = Some(dynalite);
    }
    Ok(running)
}

/// Starts the Spin-compatible host on the state already in `state` (its key-value
/// database, as a loader wrote it); the directory goes when the host stops.
pub fn start_spin_host_in(vars: &Vars, state: tempfile::TempDir) -> Result<Running> {
    let mut running = start_spin_host_at(&root().join("spin.toml"), vars, state.path())?;
    if let Guard::Process { _state, .. } = &mut running.guard {
        *_state = Some(state);
    }
    Ok(running)
}

/// The Spin-compatible host serving `manifest` with its state in `state`, which outlives
/// it: a test that kills the host starts it again on the same state.
pub fn start_spin_host_at(manifest: &Path, vars: &Vars, state: &Path) -> Result<Running> {
    let root = root();
    // `SPIN_HOST_BIN` lets the benchmark use an optimised build of the host.
    let bin = std::env::var_os("SPIN_HOST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/debug/spin-host"));
    // spin-host itself refuses to start when a component in spin.toml is not built.
    require(&bin, "cargo build -p spin-host")?;
    let mut cmd = Command::new(bin);
    cmd.arg("--manifest")
        .arg(manifest)
        .args(["--listen", "127.0.0.1:0", "--state-dir"])
        .arg(state);
    for (name, value) in vars {
        cmd.arg("--var").arg(format!("{name}={value}"));
    }
    let logs = Logs::default();
    let mut child = spawn(cmd, "spin-host", &logs)?;
    let up = wait_for_line(
        &mut child,
        "spin-host",
        &logs,
        Duration::from_secs(120),
        |line| {
            line.strip_prefix("spin-host listening on ")
                .map(|url| url.trim().to_owned())
        },
    )
    .and_then(|base| {
        wait_healthy(&base, &mut child, Duration::from_secs(60))?;
        Ok(base)
    });
    // A host that never came up is stopped here: no caller will have it to drop.
    let base = match up {
        Ok(base) => base,
        Err(e) => {
            stop_process_group(&mut child);
            return Err(e.context("spin-host did not come up"));
        }
    };
    Ok(Running {
        host: Host::SpinHost,
        base,
        logs,
        guard: Guard::Process {
            child,
            _state: None,
            _engine: None,
        },
    })
}

fn start_workerd(vars: &Vars) -> Result<Running> {
    require(&root().join("crates/worker/build/index.js"), "make worker")?;
    start_wrangler_dev(&root(), vars)
}

/// The Worker under `wrangler dev` like [`Host::Workerd`]'s, its local storage (Durable
/// Objects' SQLite files, KV) kept in `state` across starts: what a restart finds.
pub fn start_workerd_at(vars: &Vars, state: &Path) -> Result<Running> {
    require(&root().join("crates/worker/build/index.js"), "make worker")?;
    start_wrangler_dev_at(&root(), vars, state)
}

/// `wrangler dev` of the `wrangler.toml` in `dir` (another checkout of the project,
/// say), its local storage kept in `state` across starts.
pub fn start_wrangler_dev_at(dir: &Path, vars: &Vars, state: &Path) -> Result<Running> {
    wrangler_dev(dir, vars, State::Kept(state))
}

/// Where `wrangler dev` keeps its local storage.
enum State<'a> {
    /// A fresh directory, removed with the host.
    Fresh,
    /// The caller's, kept.
    Kept(&'a Path),
}

/// The Worker built with the storage self-test (`POST /healthz/storage` and its race
/// routes; `tests/selftest-worker`), under `wrangler dev` like [`Host::Workerd`]'s: the
/// deployed Worker leaves it out, so the cases that call it run here.
pub fn start_workerd_selftest(vars: &Vars) -> Result<Running> {
    require(
        &root().join("crates/worker/build-selftest/index.js"),
        "make worker",
    )?;
    start_wrangler_dev(&root().join("tests/selftest-worker"), vars)
}

/// `wrangler dev` of the `wrangler.toml` in `dir` (the Worker at the root, or the hot
/// path's JavaScript reference in `tests/reference-worker`), on a free loopback port
/// with its own fresh state, once it answers `GET /healthz`.
pub fn start_wrangler_dev(dir: &Path, vars: &Vars) -> Result<Running> {
    wrangler_dev(dir, vars, State::Fresh)
}

fn wrangler_dev(dir: &Path, vars: &Vars, state: State<'_>) -> Result<Running> {
    let wrangler = root().join("node_modules/.bin/wrangler");
    require(&wrangler, "npm ci")?;
    let (fresh, state) = match state {
        State::Fresh => {
            let fresh = tempfile::tempdir()?;
            let path = fresh.path().to_owned();
            (Some(fresh), path)
        }
        State::Kept(path) => (None, path.to_owned()),
    };
    let port = free_port()?;
    let mut cmd = Command::new(wrangler);
    cmd.current_dir(dir)
        .args(["dev", "--ip", "127.0.0.1", "--port", &port.to_string()])
        // No devtools proxy: it relays an event per subrequest and, under a burst of
        // Durable Object calls (40 racing requests), loses its connection to the
        // runtime, failing every request in flight with "Your worker restarted
        // mid-request" (1 burst in ~5). wrangler 4.86 has no flag for it; it leaves
        // the proxy out when VSCODE_INSPECTOR_OPTIONS is set. It also halves the
        // burst's time.
        .env("VSCODE_INSPECTOR_OPTIONS", "off")
        // Exposes /cdn-cgi/handler/scheduled, which fires the Worker's cron handler.
        .args([
            "--show-interactive-dev-session=false",
            "--test-scheduled",
            "--persist-to",
        ])
        .arg(&state)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("NO_COLOR", "1");
    for (name, value) in vars {
        cmd.arg("--var")
            .arg(format!("{}:{value}", name.to_ascii_uppercase()));
    }

    let logs = Logs::default();
    let mut child = spawn(cmd, "workerd", &logs)?;
    let _lines = pump_stdout(&mut child, "workerd", &logs);
    let base = format!("http://127.0.0.1:{port}");
    if let Err(e) = wait_healthy(&base, &mut child, Duration::from_secs(300)) {
        stop_process_group(&mut child);
        return Err(e.context("wrangler dev did not come up"));
    }
    // wrangler dev may rebuild and reload once just after it first serves (its file
    // watcher firing on start: "... changed, restarting build..."), which cuts every
    // request in flight. Wait until it has been quiet for a few seconds.
    let rebuilds = |logs: &Logs| {
        logs.lines()
            .iter()
            .filter(|l| l.contains("restarting build"))
            .count()
    };
    let mut seen = rebuilds(&logs);
    for _ in 0..10 {
        std::thread::sleep(Duration::from_secs(3));
        let now = rebuilds(&logs);
        if now == seen {
            break;
        }
        seen = now;
        if let Err(e) = wait_healthy(&base, &mut child, Duration::from_secs(300)) {
            stop_process_group(&mut child);
            return Err(e.context("wrangler dev did not come back after a rebuild"));
        }
    }
    Ok(Running {
        host: Host::Workerd,
        base,
        logs,
        guard: Guard::Process {
            child,
            _state: fresh,
            _engine: None,
        },
    })
}

/// dynalite (npm), a DynamoDB implementation kept in memory, on a free loopback port:
/// the reference server the DynamoDB-compatible endpoint is compared with. Stops when
/// dropped.
pub struct Dynalite {
    pub url: String,
    child: Child,
}

impl Dynalite {
    pub fn start() -> Result<Self> {
        let bin = root().join("node_modules/.bin/dynalite");
        require(&bin, "npm ci")?;
        let port = free_port()?;
        let mut cmd = Command::new(bin);
        // Tables go ACTIVE and away at once, as the endpoint's do.
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--createTableMs", "0", "--deleteTableMs", "0"]);
        let logs = Logs::default();
        let mut child = spawn(cmd, "dynalite", &logs)?;
        wait_for_line(
            &mut child,
            "dynalite",
            &logs,
            Duration::from_secs(30),
            |line| line.starts_with("Dynalite listening at").then_some(()),
        )?;
        Ok(Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
        })
    }
}

impl Drop for Dynalite {
    fn drop(&mut self) {
        stop_process_group(&mut self.child);
    }
}

/// moto's server (`moto[server]`, PyPI, in the project's virtual environment) on a free
/// loopback port: the second reference DynamoDB, for what dynalite lacks (transactions,
/// time to live). Stops when dropped.
pub struct Moto {
    pub url: String,
    child: Child,
}

impl Moto {
    pub fn start() -> Result<Self> {
        let bin = root().join(".venv/bin/moto_server");
        require(&bin, "scripts/setup.sh")?;
        let port = free_port()?;
        let mut cmd = Command::new(bin);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        // Its output is a line per request (thousands a run): left unread.
        use std::os::unix::process::CommandExt;
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().context("starting moto_server")?;
        // The port answering is the sign that it started.
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait()? {
                bail!("moto exited while starting: {status}");
            }
            if Instant::now() > deadline {
                stop_process_group(&mut child);
                bail!("moto did not listen on port {port} within 60 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
        })
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        stop_process_group(&mut self.child);
    }
}

fn start_real_spin(spin: &Path, vars: &Vars) -> Result<Running> {
    let root = root();
    let state = tempfile::tempdir()?;
    let port = free_port()?;
    let mut cmd = Command::new(spin);
    cmd.current_dir(&root)
        .args(["up", "--from", "spin.toml", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--state-dir")
        .arg(state.path());
    for (name, value) in vars {
        cmd.arg("--variable").arg(format!("{name}={value}"));
    }
    let logs = Logs::default();
    let mut child = spawn(cmd, "spin", &logs)?;
    let _lines = pump_stdout(&mut child, "spin", &logs);
    let base = format!("http://127.0.0.1:{port}");
    if let Err(e) = wait_healthy(&base, &mut child, Duration::from_secs(120)) {
        stop_process_group(&mut child);
        return Err(e.context("spin up did not come up"));
    }
    Ok(Running {
        host: Host::Spin,
        base,
        logs,
        guard: Guard::Process {
            child,
            _state: Some(state),
            _engine: None,
        },
    })
}
