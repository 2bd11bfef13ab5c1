//! Unit tests of the host's pure parts: manifest, variables, routing,
//! outbound-host rules and the key-value stores (including CAS under load);
//! the cron hook served in-process; and, when `scraper.wasm` is built, the
//! scraper's cron component against the fake TvMaze. Serving HTTP components
//! is exercised by the conformance tests.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

use spin_host::app::App;
use spin_host::cron::Schedule;
use spin_host::kv::{Cas, KvStores};
use spin_host::manifest::{render_template, DirMount, FilesMount, Manifest};
use spin_host::outbound::AllowedHosts;
use spin_host::routes::{RouteMatch, Router};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MANIFEST: &str = r#"
spin_manifest_version = 2

[application]
name = "demo"

[variables]
admin_token = { default = "", secret = true }
test_clock_header = { default = "false" }
api_key = { required = true }

[[trigger.http]]
route = "/hello/..."
component = "hello"

[[trigger.http]]
route = "/..."
component = "health"

[[trigger.cron]]
cron_expression = "0 * * * * *"
component = "health"

[component.hello]
source = "target/wasm32-wasip2/release/hello.wasm"
key_value_stores = ["default"]
allowed_outbound_hosts = ["https://api.tvmaze.com"]
[component.hello.variables]
test_clock_header = "{{ test_clock_header }}"
greeting = "key={{api_key}}!"
[component.hello.build]
command = "cargo build"
watch = ["src/**/*.rs"]

[component.health]
source = "health.wasm"
"#;

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn parses_the_manifest_shape_we_use() {
    let m = Manifest::parse(MANIFEST).unwrap();
    assert_eq!(m.trigger.http.len(), 2);
    assert_eq!(m.trigger.http[0].route, "/hello/...");
    assert_eq!(m.trigger.http[0].component, "hello");
    assert_eq!(m.trigger.cron.len(), 1);
    let hello = &m.component["hello"];
    assert_eq!(hello.source, "target/wasm32-wasip2/release/hello.wasm");
    assert_eq!(hello.key_value_stores, ["default"]);
    assert_eq!(hello.allowed_outbound_hosts, ["https://api.tvmaze.com"]);
    assert_eq!(
        hello.variables["test_clock_header"],
        "{{ test_clock_header }}"
    );
    assert!(m.component["health"].key_value_stores.is_empty());
    assert!(m.variables["admin_token"].secret);
    assert!(m.variables["api_key"].required);
}

#[test]
fn parses_the_repository_manifest() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spin.toml");
    let m = Manifest::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(m.component.contains_key("hello"));
    // `--cron` must be able to schedule every cron trigger of the real app.
    for trigger in &m.trigger.cron {
        Schedule::parse(&trigger.cron_expression).unwrap();
    }
}

#[test]
fn parses_cron_triggers() {
    let m = Manifest::parse(MANIFEST).unwrap();
    assert_eq!(m.trigger.cron.len(), 1);
    assert_eq!(m.trigger.cron[0].component, "health");
    assert_eq!(m.trigger.cron[0].cron_expression, "0 * * * * *");

    let cron = "[[trigger.cron]]\ncron_expression = \"0 * * * * *\"\ncomponent = \"health\"";
    assert!(MANIFEST.contains(cron));
    let dangling = MANIFEST.replace(cron, &cron.replace("\"health\"", "\"nope\""));
    assert!(Manifest::parse(&dangling).is_err());
    let no_expression = MANIFEST.replace("cron_expression = \"0 * * * * *\"\n", "");
    assert!(Manifest::parse(&no_expression).is_err());
    // A second schedule for one component is allowed, as in Spin.
    let twice = MANIFEST.replace(cron, &format!("{cron}\n\n{}", cron.replace("0 *", "30 *")));
    assert_eq!(Manifest::parse(&twice).unwrap().trigger.cron.len(), 2);
}

#[test]
fn rejects_bad_manifests() {
    let v1 = MANIFEST.replace("spin_manifest_version = 2", "spin_manifest_version = 1");
    assert!(Manifest::parse(&v1).is_err());
    let dangling = MANIFEST.replace("component = \"hello\"", "component = \"nope\"");
    assert!(Manifest::parse(&dangling).is_err());
    assert!(Manifest::parse("spin_manifest_version = 2\n[[trigger.http]]\n").is_err());
}

#[test]
fn variables_prefer_cli_then_env_then_default() {
    let m = Manifest::parse(MANIFEST).unwrap();
    let env = |name: &str| match name {
        "SPIN_VARIABLE_API_KEY" => Some("from-env".to_string()),
        "SPIN_VARIABLE_TEST_CLOCK_HEADER" => Some("env-clock".to_string()),
        _ => None,
    };
    let resolved = m
        .resolve_variables(&vars(&[("test_clock_header", "true")]), env)
        .unwrap();
    assert_eq!(resolved["test_clock_header"], "true");
    assert_eq!(resolved["api_key"], "from-env");
    assert_eq!(resolved["admin_token"], "");

    let missing_required = m.resolve_variables(&BTreeMap::new(), |_| None);
    assert!(missing_required.is_err());
    let undeclared = m.resolve_variables(&vars(&[("api_key", "x"), ("typo", "1")]), |_| None);
    assert!(undeclared.is_err());
}

#[test]
fn templates_resolve_against_app_variables() {
    let app = vars(&[("test_clock_header", "true"), ("api_key", "k1")]);
    assert_eq!(
        render_template("{{ test_clock_header }}", &app).unwrap(),
        "true"
    );
    assert_eq!(
        render_template("key={{api_key}}!", &app).unwrap(),
        "key=k1!"
    );
    assert_eq!(render_template("plain", &app).unwrap(), "plain");
    assert_eq!(
        render_template("{{api_key}}-{{ api_key }}", &app).unwrap(),
        "k1-k1"
    );
    assert!(render_template("{{ nope }}", &app).is_err());
    assert!(render_template("{{ api_key", &app).is_err());
}

fn router() -> Router {
    Router::new([
        ("/hello/...", "hello"),
        ("/hello/admin/...", "admin"),
        ("/healthz", "health"),
        ("/...", "fallback"),
    ])
    .unwrap()
}

#[test]
fn routes_pick_the_most_specific_match() {
    let r = router();
    let component = |path| r.route(path).map(|m| m.component);
    assert_eq!(component("/healthz"), Some("health"));
    assert_eq!(component("/healthz/x"), Some("fallback"));
    assert_eq!(component("/hello"), Some("hello"));
    assert_eq!(component("/hello/"), Some("hello"));
    assert_eq!(component("/hello/alice"), Some("hello"));
    assert_eq!(component("/hello/admin"), Some("admin"));
    assert_eq!(component("/hello/admin/x"), Some("admin"));
    assert_eq!(component("/hello/administrator"), Some("hello"));
    assert_eq!(component("/helloworld"), Some("fallback"));
    assert_eq!(component("/"), Some("fallback"));
}

#[test]
fn route_match_carries_spin_header_values() {
    let r = router();
    assert_eq!(
        r.route("/hello/alice/x"),
        Some(RouteMatch {
            component: "hello",
            raw_route: "/hello/...",
            component_route: "/hello",
            path_info: "/alice/x",
        })
    );
    assert_eq!(r.route("/hello").map(|m| m.path_info), Some(""));
    assert_eq!(r.route("/healthz").map(|m| m.path_info), Some(""));
    assert_eq!(r.route("/a/b").map(|m| m.path_info), Some("/a/b"));
}

#[test]
fn unmatched_and_invalid_routes() {
    let r = Router::new([("/hello/...", "hello"), ("/healthz", "health")]).unwrap();
    assert!(r.route("/").is_none());
    assert!(r.route("/other").is_none());
    assert!(Router::new([("/a", "x"), ("/a", "y")]).is_err());
    assert!(Router::new([("no-slash", "x")]).is_err());
    assert!(Router::new([("/users/:id", "x")]).is_err());
}

fn allowed(entries: &[&str]) -> AllowedHosts {
    let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
    AllowedHosts::parse(&entries).unwrap()
}

fn allows(hosts: &AllowedHosts, uri: &str) -> bool {
    hosts.allows(&uri.parse().unwrap())
}

#[test]
fn outbound_hosts_match_like_spin() {
    let none = allowed(&[]);
    assert!(!allows(&none, "http://127.0.0.1:1234/x"));

    let exact = allowed(&["http://127.0.0.1:1234", "https://api.tvmaze.com"]);
    assert!(allows(&exact, "http://127.0.0.1:1234/path?q=1"));
    assert!(!allows(&exact, "http://127.0.0.1:1235/"));
    assert!(!allows(&exact, "https://127.0.0.1:1234/"));
    assert!(allows(&exact, "https://api.tvmaze.com/shows"));
    assert!(allows(&exact, "https://API.tvmaze.com:443/shows"));
    assert!(!allows(&exact, "http://api.tvmaze.com/shows"));
    assert!(!allows(&exact, "https://api.tvmaze.com:8443/"));
    assert!(!allows(&exact, "https://evil.com/"));

    let any_port = allowed(&["http://127.0.0.1:*", "http://localhost:*"]);
    assert!(allows(&any_port, "http://127.0.0.1:9/"));
    assert!(allows(&any_port, "http://127.0.0.1/"));
    assert!(allows(&any_port, "http://localhost:8080/"));
    assert!(!allows(&any_port, "https://localhost:8080/"));
    assert!(!allows(&any_port, "http://127.0.0.2:80/"));

    let all = allowed(&["*://*:*"]);
    assert!(allows(&all, "https://anything.example:1/"));
    assert!(allows(&all, "http://10.0.0.1/"));

    let subdomains = allowed(&["https://*.example.com"]);
    assert!(allows(&subdomains, "https://a.example.com/"));
    assert!(allows(&subdomains, "https://a.b.example.com/"));
    assert!(!allows(&subdomains, "https://example.com/"));
    assert!(!allows(&subdomains, "https://badexample.com/"));

    let other_schemes = allowed(&["redis://localhost:6379"]);
    assert!(!allows(&other_schemes, "http://localhost:6379/"));
}

#[test]
fn bad_outbound_entries_are_rejected() {
    for bad in [
        "api.tvmaze.com",
        "https://",
        "http://h:notaport",
        "*://h",
        "https://h/path",
    ] {
        assert!(
            AllowedHosts::parse(&[bad.to_string()]).is_err(),
            "{bad} should be rejected"
        );
    }
}

/// A fresh directory under the system temp dir, unique per call.
fn temp_dir(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "spin-host-test-{}-{name}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn store_basics_and_persistence() {
    let dir = temp_dir("basics");
    let stores = KvStores::new(&dir, ["other".to_string()]).unwrap();
    let store = stores.open("default").unwrap().unwrap();
    assert_eq!(store.get("k").unwrap(), None);
    assert!(!store.exists("k").unwrap());
    store.set("k", b"v1").unwrap();
    store.set("a", &[0, 255]).unwrap();
    assert_eq!(store.get("k").unwrap(), Some(b"v1".to_vec()));
    assert!(store.exists("k").unwrap());
    let mut keys = store.keys().unwrap();
    keys.sort();
    assert_eq!(keys, ["a", "k"]);
    store.delete("k").unwrap();
    store.delete("never-there").unwrap();
    assert!(!store.exists("k").unwrap());
    store.set("y", b"2").unwrap();

    // Labels are stores of one database: same label, same data; others apart.
    let again = stores.open("default").unwrap().unwrap();
    assert_eq!(again.get("a").unwrap(), Some(vec![0, 255]));
    let other = stores.open("other").unwrap().unwrap();
    assert_eq!(other.get("a").unwrap(), None);
    assert!(stores.open("unknown").unwrap().is_none());

    // A new host on the same state dir sees the data, in Spin's file and schema.
    drop((store, again, other, stores));
    let db = rusqlite::Connection::open(dir.join(spin_host::kv::DB_FILE)).unwrap();
    let rows: i64 = db
        .query_row(
            "SELECT count(*) FROM spin_key_value WHERE store = 'default'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 2);
    drop(db);
    let reopened = KvStores::new(&dir, []).unwrap();
    let store = reopened.open("default").unwrap().unwrap();
    let mut keys = store.keys().unwrap();
    keys.sort();
    assert_eq!(keys, ["a", "y"]);
    assert_eq!(store.get("a").unwrap(), Some(vec![0, 255]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn get_many_returns_only_the_keys_that_exist() {
    let dir = temp_dir("many");
    let store = KvStores::new(&dir, [])
        .unwrap()
        .open("default")
        .unwrap()
        .unwrap();
    store
        .set_many(vec![
            ("a".into(), b"1".to_vec()),
            ("b".into(), b"2".to_vec()),
        ])
        .unwrap();
    let mut got = store
        .get_many(vec!["b".into(), "missing".into(), "a".into()])
        .unwrap();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("a".to_string(), Some(b"1".to_vec())),
            ("b".to_string(), Some(b"2".to_vec()))
        ]
    );
    store.delete_many(vec!["a".into(), "zz".into()]).unwrap();
    assert_eq!(store.keys().unwrap(), ["b"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn increment_uses_little_endian_i64_and_refuses_other_values() {
    let dir = temp_dir("incr");
    let store = KvStores::new(&dir, [])
        .unwrap()
        .open("default")
        .unwrap()
        .unwrap();
    assert_eq!(store.increment("n", 5).unwrap(), 5);
    assert_eq!(store.increment("n", -7).unwrap(), -2);
    assert_eq!(
        store.get("n").unwrap(),
        Some((-2i64).to_le_bytes().to_vec())
    );
    store.set("text", b"abc").unwrap();
    let refused = store.increment("text", 1).unwrap_err().to_string();
    assert!(refused.contains("incorrect length"), "{refused}");
    assert_eq!(store.get("text").unwrap(), Some(b"abc".to_vec()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cas_swaps_like_spin() {
    let dir = temp_dir("cas");
    let store = KvStores::new(&dir, [])
        .unwrap()
        .open("default")
        .unwrap()
        .unwrap();

    let mut cas = Cas::new(store.clone(), "k".into());
    assert_eq!(cas.current().unwrap(), None);
    assert!(cas.swap(b"1").unwrap());
    assert_eq!(store.get("k").unwrap(), Some(b"1".to_vec()));

    // Observed a value, then it changed: the swap fails and writes nothing.
    let mut stale = Cas::new(store.clone(), "k".into());
    assert_eq!(stale.current().unwrap(), Some(b"1".to_vec()));
    store.set("k", b"2").unwrap();
    assert!(!stale.swap(b"stale").unwrap());
    assert_eq!(store.get("k").unwrap(), Some(b"2".to_vec()));

    // ABA: changed and changed back to equal bytes, the swap succeeds.
    let mut aba = Cas::new(store.clone(), "k".into());
    aba.current().unwrap();
    store.set("k", b"other").unwrap();
    store.set("k", b"2").unwrap();
    assert!(aba.swap(b"3").unwrap());

    // Observed present, then deleted: a conflict.
    let mut present = Cas::new(store.clone(), "k".into());
    present.current().unwrap();
    store.delete("k").unwrap();
    assert!(!present.swap(b"z").unwrap());
    assert_eq!(store.get("k").unwrap(), None);

    // Spin's surprise: observed absent, then created by someone else, and the swap
    // still succeeds — an upsert over the other writer's value.
    let mut absent = Cas::new(store.clone(), "new".into());
    assert_eq!(absent.current().unwrap(), None);
    store.set("new", b"theirs").unwrap();
    assert!(absent.swap(b"mine").unwrap());
    assert_eq!(store.get("new").unwrap(), Some(b"mine".to_vec()));

    // And a swap without `current` is the same blind upsert.
    let blind = Cas::new(store.clone(), "new".into());
    assert!(blind.swap(b"blind").unwrap());
    assert_eq!(store.get("new").unwrap(), Some(b"blind".to_vec()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn concurrent_cas_increments_from_present_lose_no_update() {
    const THREADS: u64 = 50;
    const PER_THREAD: u64 = 20;
    let dir = temp_dir("cas-load");
    let stores = Arc::new(KvStores::new(&dir, []).unwrap());
    // From present only: from absent, Spin's swap is an upsert (see above).
    stores
        .open("default")
        .unwrap()
        .unwrap()
        .set("counter", b"0")
        .unwrap();
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let stores = stores.clone();
            std::thread::spawn(move || {
                let store = stores.open("default").unwrap().unwrap();
                for _ in 0..PER_THREAD {
                    loop {
                        let mut cas = Cas::new(store.clone(), "counter".into());
                        let n: u64 = String::from_utf8(cas.current().unwrap().unwrap())
                            .unwrap()
                            .parse()
                            .unwrap();
                        if cas.swap((n + 1).to_string().as_bytes()).unwrap() {
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let expected = (THREADS * PER_THREAD).to_string().into_bytes();
    let store = stores.open("default").unwrap().unwrap();
    assert_eq!(store.get("counter").unwrap(), Some(expected.clone()));

    // And what reached disk is the final value too.
    let reloaded = KvStores::new(&dir, []).unwrap();
    assert_eq!(
        reloaded
            .open("default")
            .unwrap()
            .unwrap()
            .get("counter")
            .unwrap(),
        Some(expected)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn concurrent_increments_are_atomic() {
    let dir = temp_dir("incr-load");
    let stores = Arc::new(KvStores::new(&dir, []).unwrap());
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let store = stores.open("default").unwrap().unwrap();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    store.increment("n", 1).unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let store = stores.open("default").unwrap().unwrap();
    assert_eq!(store.increment("n", 0).unwrap(), 800);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An application served in-process on a free port; dropping it stops it.
struct Served {
    addr: SocketAddr,
    state: PathBuf,
    _runtime: tokio::runtime::Runtime,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

fn serve(manifest: &str, vars: &[(&str, &str)]) -> anyhow::Result<Served> {
    let dir = temp_dir("app");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("spin.toml");
    std::fs::write(&path, manifest)?;
    let state = dir.join("state");
    let app = App::load(&path, &state, &self::vars(vars), |_| None)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    runtime.spawn(Arc::new(app).serve(listener));
    Ok(Served {
        addr,
        state: dir,
        _runtime: runtime,
    })
}

/// One HTTP/1.1 request on a fresh connection: (status, body).
fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    request_with(addr, method, path, "")
}

/// Like [`request`], with a body.
fn request_with(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

fn error_of(body: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).unwrap();
    value["error"].as_str().unwrap().to_string()
}

#[test]
fn cron_hook_answers_404_for_components_without_a_cron_trigger() {
    let app = serve(
        "spin_manifest_version = 2\n[application]\nname = \"empty\"\n",
        &[],
    )
    .unwrap();
    let (status, body) = request(app.addr, "POST", "/.spin-host/cron/scraper");
    assert_eq!(status, 404);
    assert!(error_of(&body).contains("scraper"), "{body}");
    assert_eq!(request(app.addr, "GET", "/.spin-host/cron/scraper").0, 405);
    assert_eq!(request(app.addr, "POST", "/.spin-host/other").0, 404);
    assert_eq!(request(app.addr, "POST", "/.spin-host/cron/").0, 404);
    // Outside the reserved prefix, the app's routes (none here) apply.
    assert_eq!(request(app.addr, "POST", "/spin-host/cron/scraper").0, 404);
}

#[test]
fn requests_no_route_matches_get_spins_bodiless_404() {
    let app = serve(
        "spin_manifest_version = 2\n[application]\nname = \"empty\"\n",
        &[],
    )
    .unwrap();
    for (method, target) in [("OPTIONS", "*"), ("GET", "/nowhere")] {
        let mut stream = TcpStream::connect(app.addr).unwrap();
        write!(
            stream,
            "{method} {target} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
            app.addr
        )
        .unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let raw = String::from_utf8(raw).unwrap().to_ascii_lowercase();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("http/1.1 404"),
            "{method} {target}: {head}"
        );
        assert!(!head.contains("content-type"), "{method} {target}: {head}");
        assert_eq!(body, "", "{method} {target}");
    }
}

/// A release build of a component, if one exists (`make` builds them).
fn built(component: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../build/components")
        .join(format!("{component}.wasm"));
    if path.exists() {
        Some(path)
    } else {
        eprintln!("skipped: {} is not built", path.display());
        None
    }
}

#[test]
fn files_mounts_resolve_against_the_app_dir() {
    let app = temp_dir("mounts");
    std::fs::create_dir_all(app.join("build/assets")).unwrap();
    let manifest = |files: &str| {
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"x\"\n\
             [component.docs]\nsource = \"docs.wasm\"\nfiles = {files}\n"
        )
    };
    let mounts = |files: &str| {
        let m = Manifest::parse(&manifest(files))?;
        m.component["docs"].mounts(&app)
    };
    let m = Manifest::parse(&manifest(
        r#"[{ source = "build/assets", destination = "/docs" }, "static/*.txt"]"#,
    ))
    .unwrap();
    assert_eq!(
        m.component["docs"].files,
        [
            FilesMount::Placement {
                source: "build/assets".into(),
                destination: "/docs".into()
            },
            FilesMount::Pattern("static/*.txt".into()),
        ]
    );
    assert_eq!(
        mounts(r#"[{ source = "build/assets", destination = "/docs" }]"#).unwrap(),
        [DirMount {
            host: app.join("build/assets"),
            guest: "/docs".into()
        }]
    );
    assert!(mounts("[]").unwrap().is_empty());
    // No `files`: nothing mounted.
    let bare = Manifest::parse(MANIFEST).unwrap();
    assert!(bare.component["hello"].mounts(&app).unwrap().is_empty());
    // A missing source is an error naming it, as in `spin up`.
    let err = mounts(r#"[{ source = "build/nope", destination = "/docs" }]"#).unwrap_err();
    assert!(format!("{err:#}").contains("build/nope"), "{err:#}");
    let err = mounts(r#"[{ source = "build/assets", destination = "docs" }]"#).unwrap_err();
    assert!(format!("{err:#}").contains("absolute"), "{err:#}");
    let err = mounts(r#"["static/*.txt"]"#).unwrap_err();
    assert!(format!("{err:#}").contains("static/*.txt"), "{err:#}");
    std::fs::remove_dir_all(&app).unwrap();
}

/// The docs component (when built) reads its files from a `files` mount, read-only.
#[test]
fn a_component_reads_its_files_mount() {
    let Some(docs) = built("docs") else {
        return;
    };
    let assets = temp_dir("assets");
    std::fs::create_dir_all(&assets).unwrap();
    std::fs::write(assets.join("swagger-ui.css"), ".mounted { color: red }").unwrap();
    let manifest = |source: &Path| {
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"x\"\n\
             [[trigger.http]]\nroute = \"/docs/...\"\ncomponent = \"docs\"\n\
             [component.docs]\nsource = {:?}\n\
             files = [{{ source = {:?}, destination = \"/docs\" }}]\n",
            docs.display().to_string(),
            source.display().to_string()
        )
    };
    let app = serve(&manifest(&assets), &[]).unwrap();
    let (status, body) = request(app.addr, "GET", "/docs/swagger-ui.css");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(".mounted { color: red }"), "{body}");
    // A listed file the mount lacks: the component's 500, which names it in its log
    // line only (the docs crate's tests check that line).
    let (status, body) = request(app.addr, "GET", "/docs/swagger-ui-bundle.js");
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("\"internal\"") && !body.contains("swagger-ui-bundle"),
        "{body}"
    );
    // A source that is not there stops the host from starting, naming it.
    let missing = assets.join("missing");
    let err = serve(&manifest(&missing), &[]).err().unwrap();
    assert!(
        format!("{err:#}").contains(&missing.display().to_string()),
        "{err:#}"
    );
    std::fs::remove_dir_all(&assets).unwrap();
}

#[test]
fn a_cron_trigger_needs_the_cron_export() {
    let Some(health) = built("health") else {
        return;
    };
    let manifest = format!(
        "spin_manifest_version = 2\n[application]\nname = \"x\"\n\
         [[trigger.cron]]\ncomponent = \"health\"\ncron_expression = \"* * * * * *\"\n\
         [component.health]\nsource = {:?}\n",
        health.display().to_string()
    );
    let err = serve(&manifest, &[]).err().unwrap();
    assert!(format!("{err:#}").contains("handle-cron-event"), "{err:#}");
}

fn scraper_manifest(scraper: &Path, allowed: &str, budget: &str) -> String {
    format!(
        r#"spin_manifest_version = 2
[application]
name = "cron-test"
[variables]
tvmaze_base_url = {{ required = true }}
[[trigger.cron]]
component = "scraper"
cron_expression = "0 */5 * * * *"
[component.scraper]
source = {source:?}
key_value_stores = ["default"]
allowed_outbound_hosts = ["{allowed}"]
[component.scraper.variables]
tvmaze_base_url = "{{{{ tvmaze_base_url }}}}"
scraper_fetch_budget = "{budget}"
"#,
        source = scraper.display().to_string(),
    )
}

#[test]
fn scraper_cron_component_fetches_within_its_allowed_hosts() {
    let Some(scraper) = built("scraper") else {
        return;
    };
    let fake = plain_fake(40);
    let vars = [("tvmaze_base_url", fake.base_url())];

    // Allowed (the entry names an application variable, as in spin.toml).
    let app = serve(
        &scraper_manifest(&scraper, "{{ tvmaze_base_url }}", "5"),
        &vars,
    )
    .unwrap();
    let (status, body) = request(app.addr, "POST", "/.spin-host/cron/scraper");
    assert_eq!((status, body.as_str()), (200, r#"{"ok":true}"#));
    let log = fake.take_log();
    assert!((1..=5).contains(&log.len()), "{} requests", log.len());
    assert_eq!(log[0].path, "/shows?page=0");
    // A second event is a fresh instance on the same stores: it goes on.
    assert_eq!(request(app.addr, "POST", "/.spin-host/cron/scraper").0, 200);
    let log = fake.take_log();
    assert!((1..=5).contains(&log.len()), "{} requests", log.len());
    drop(app);

    // Denied: another port of the same host. The guest gets
    // HTTP-request-denied and nothing reaches the fake.
    let app = serve(
        &scraper_manifest(&scraper, "http://127.0.0.1:1", "5"),
        &vars,
    )
    .unwrap();
    let (status, body) = request(app.addr, "POST", "/.spin-host/cron/scraper");
    assert!(status == 200 || status == 500, "{status} {body}");
    assert!(fake.take_log().is_empty());
    // The scraper records the error of its failed fetch in its state.
    let saved = stored_text(&app);
    assert!(saved.contains("HttpRequestDenied"), "{saved}");
}

/// Every value in the served app's `default` store, as text, concatenated.
fn stored_text(app: &Served) -> String {
    let stores = KvStores::new(&app.state.join("state"), []).unwrap();
    let store = stores.open("default").unwrap().unwrap();
    store
        .keys()
        .unwrap()
        .iter()
        .filter_map(|k| store.get(k).unwrap())
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .collect()
}

/// A fake TvMaze of `shows` shows, without rate limits or faults.
fn plain_fake(shows: usize) -> fake_tvmaze::FakeTvMaze {
    fake_tvmaze::FakeTvMaze::start(fake_tvmaze::Config {
        shows,
        faults: fake_tvmaze::Faults::none(),
        ..fake_tvmaze::Config::default()
    })
    .unwrap()
}

/// Spin frees a swapped `cas` only when the instance ends and allows 256 per instance,
/// so a tick that saved its cursor after each of 400 fetches would fail part-way with
/// "too many compare_and_swaps opened". The scraper sizes its tick to the host.
#[test]
fn a_cron_tick_with_a_budget_past_spins_cas_limit_completes_without_a_store_error() {
    let Some(scraper) = built("scraper") else {
        return;
    };
    let fake = plain_fake(600);
    let vars = [("tvmaze_base_url", fake.base_url())];
    let app = serve(
        &scraper_manifest(&scraper, "{{ tvmaze_base_url }}", "400"),
        &vars,
    )
    .unwrap();
    let (status, body) = request(app.addr, "POST", "/.spin-host/cron/scraper");
    assert_eq!((status, body.as_str()), (200, r#"{"ok":true}"#));
    let fetched = fake.take_log().len();
    assert!(
        (40..=80).contains(&fetched),
        "{fetched} requests in one tick"
    );
    let saved = stored_text(&app);
    assert!(!saved.contains("compare_and_swaps"), "{saved}");
    assert!(saved.contains("\"last_error\":null"), "{saved}");
}

#[test]
fn a_failing_cron_event_is_a_500_with_the_components_error() {
    let Some(scraper) = built("scraper") else {
        return;
    };
    let manifest = scraper_manifest(&scraper, "http://127.0.0.1:1", "not-a-number");
    let app = serve(&manifest, &[("tvmaze_base_url", "http://127.0.0.1:1")]).unwrap();
    let (status, body) = request(app.addr, "POST", "/.spin-host/cron/scraper");
    assert_eq!(status, 500, "{body}");
    assert!(error_of(&body).contains("scraper_fetch_budget"), "{body}");
}

/// The Spin backend's creation protocol (kit `host::spin::kv`) left half-done by creators
/// that died, as their keys would be in Spin's store: after taking a ticket; after
/// writing their pending data; after winning the register but before any commit. Readers
/// and the next writers must see exactly the partitions that exist, and go on.
#[test]
fn partitions_whose_creator_died_mid_way_read_and_write_correctly() {
    let Some(hello) = built("hello") else {
        return;
    };
    let manifest = format!(
        r#"spin_manifest_version = 2
[application]
name = "died"
[[trigger.http]]
route = "/hello/..."
component = "hello"
[component.hello]
source = {:?}
key_value_stores = ["default"]
"#,
        hello.display().to_string()
    );
    let app = serve(&manifest, &[]).unwrap();
    let stores = KvStores::new(&app.state.join("state"), []).unwrap();
    let store = stores.open("default").unwrap().unwrap();
    let register = |attempts: u64, winner: u64| (attempts | winner << 32).to_le_bytes();
    let pending = |date: &str| format!(r#"P{{"":{{"v":1,"d":{{"dateOfBirth":"{date}"}}}}}}"#);
    // Died after its ticket.
    store.set("r:birthdays/ticket", &register(1, 0)).unwrap();
    // Died after writing its data, before the register.
    store.set("r:birthdays/orphan", &register(1, 0)).unwrap();
    store
        .set("d1:birthdays/orphan", pending("1900-06-15").as_bytes())
        .unwrap();
    // Died after winning, before any write committed its data.
    store.set("r:birthdays/won", &register(1, 1)).unwrap();
    store
        .set("d1:birthdays/won", pending("1950-02-03").as_bytes())
        .unwrap();

    // Status and what the message says past the name (it names the user).
    let get = |user: &str| {
        let (status, body) = request(app.addr, "GET", &format!("/hello/{user}"));
        let told = body.split_once("! ").map(|(_, rest)| rest.to_owned());
        (status, told)
    };
    let put = |user: &str, date: &str| {
        let body = format!(r#"{{"dateOfBirth":"{date}"}}"#);
        request_with(app.addr, "PUT", &format!("/hello/{user}"), &body).0
    };
    assert_eq!(get("ticket").0, 404);
    assert_eq!(get("orphan").0, 404, "a pending orphan is not data");
    // The winner's data is the partition though nothing committed it.
    assert_eq!(put("control", "1950-02-03"), 204);
    assert_eq!(get("won"), get("control"));

    for user in ["ticket", "orphan", "won"] {
        assert_eq!(put(user, "1990-01-01"), 204, "{user}");
    }
    assert_eq!(put("control", "1990-01-01"), 204);
    for user in ["ticket", "orphan", "won"] {
        assert_eq!(get(user), get("control"), "{user}");
    }
    // The dead creators' tickets are skipped, not reused; the winners stay.
    let winner = |user: &str| {
        let bytes = store.get(&format!("r:birthdays/{user}")).unwrap().unwrap();
        u64::from_le_bytes(bytes.try_into().unwrap()) >> 32
    };
    assert_eq!(
        (winner("ticket"), winner("orphan"), winner("won")),
        (2, 2, 1)
    );
    // A write after a winner exists clears the orphan's pending data.
    assert_eq!(put("orphan", "1991-01-01"), 204);
    assert_eq!(store.get("d1:birthdays/orphan").unwrap(), None);
    assert!(
        store.get("d2:birthdays/orphan").unwrap().is_some_and(
            |v| v.starts_with(b"C") && String::from_utf8_lossy(&v).contains("1991-01-01")
        )
    );
}
