//! The deployment configuration, checked offline (no Cloudflare account, no network):
//!
//! - `wrangler deploy --dry-run` bundles the Worker for the top level of wrangler.toml
//!   and for each deployed environment (`staging`, `production`);
//! - every environment repeats the top level's bindings (wrangler does not inherit
//!   `vars`, `kv_namespaces` or `durable_objects`) and has its own KV namespace, and
//!   inherits the static assets (`[assets]`, the `ASSETS` binding of the `/docs`
//!   files, which wrangler does inherit) unchanged;
//! - each Spin component links outbound HTTP and the static-files reader exactly when
//!   `spin.toml` grants it outbound hosts and `files` (`kit::spin_http_component!`'s
//!   `uses:`), so no grant is left dead and no component links what it may not use;
//! - the GitHub workflows validate against GitHub's workflow schema (check-jsonschema,
//!   whose schemas are vendored, from `.venv`);
//! - `scripts/deploy.sh` rolls out in steps and rolls back when a gate fails, and
//!   `scripts/kv-namespaces.sh` writes a new namespace id into its environment only, both
//!   driven by a stand-in `wrangler` (and `make`) that records how it was called.
//!
//! The Worker must be built (`make worker`, which `make test` runs first); wrangler's
//! `[build]` step is then a no-op (`scripts/build-worker.sh` skips an up-to-date build).

use anyhow::{bail, ensure, Context, Result};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    conformance::root()
}

fn wrangler_toml() -> Result<toml::Table> {
    let text = std::fs::read_to_string(root().join("wrangler.toml"))?;
    Ok(text.parse()?)
}

/// The table at `path` (`["env", "staging"]`), or the whole file for `[]`.
fn table<'a>(config: &'a toml::Table, path: &[&str]) -> Result<&'a toml::Table> {
    let mut t = config;
    for key in path {
        t = t
            .get(*key)
            .and_then(|v| v.as_table())
            .with_context(|| format!("wrangler.toml has no table {key} in {path:?}"))?;
    }
    Ok(t)
}

/// What a component's entry links, read from its crate's `lib.rs`: the `uses: [...]`
/// of `kit::spin_http_component!`, or the `Uses { .. }` the cron entry builds.
fn linked_uses(source: &str) -> (bool, bool) {
    if let Some(start) = source.find("uses: [") {
        let list = &source[start + 7..];
        let list = &list[..list.find(']').unwrap_or(list.len())];
        let named = |what: &str| list.split(',').any(|u| u.trim() == what);
        return (named("fetch"), named("files"));
    }
    (
        source.contains("fetch: true"),
        source.contains("files: true"),
    )
}

/// The settings of the table backend every component with tables reads.
const TABLE_VARIABLES: [&str; 6] = [
    "table_backend",
    "table_dynamodb_endpoint",
    "table_dynamodb_region",
    "table_dynamodb_table_prefix",
    "table_dynamodb_access_key_id",
    "table_dynamodb_secret_access_key",
];

#[test]
fn spin_components_link_fetch_and_files_exactly_when_spin_toml_grants_them() -> Result<()> {
    let manifest: toml::Table = std::fs::read_to_string(root().join("spin.toml"))?.parse()?;
    let components = table(&manifest, &["component"])?;
    ensure!(
        components.len() >= 9,
        "spin.toml lists {} components",
        components.len()
    );
    let mut checked = Vec::new();
    for (name, component) in components {
        let component = component.as_table().context("a component is a table")?;
        let outbound = component
            .get("allowed_outbound_hosts")
            .and_then(|v| v.as_array())
            .is_some_and(|hosts| !hosts.is_empty());
        let files = component.get("files").is_some();
        // Every Spin component is the package of its name, in components/.
        let package = name;
        let source =
            std::fs::read_to_string(root().join("components").join(package).join("src/lib.rs"))
                .with_context(|| format!("component {name}: components/{package}/src/lib.rs"))?;
        let (fetch, reads_files) = linked_uses(&source);
        // A component with tables may keep them on a DynamoDB-compatible engine
        // (`table_backend = "dynamodb"`), which it reaches by outbound HTTP.
        let stores = component.get("key_value_stores").is_some();
        let fetch = fetch || stores;
        if stores {
            let hosts = component
                .get("allowed_outbound_hosts")
                .and_then(|v| v.as_array())
                .context("no allowed_outbound_hosts")?;
            ensure!(
                hosts
                    .iter()
                    .any(|h| h.as_str() == Some("{{ table_dynamodb_endpoint }}")),
                "component {name} keeps tables but may not reach table_dynamodb_endpoint"
            );
            let variables = component.get("variables").and_then(|v| v.as_table());
            for key in TABLE_VARIABLES {
                ensure!(
                    variables.is_some_and(|v| v.contains_key(key)),
                    "component {name} keeps tables but is not given {key}"
                );
            }
        }
        ensure!(
            fetch == outbound,
            "component {name}: links outbound HTTP: {fetch}, spin.toml allows outbound hosts: {outbound}"
        );
        ensure!(
            reads_files == files,
            "component {name}: links the files reader: {reads_files}, spin.toml mounts files: {files}"
        );
        checked.push((name.clone(), fetch, files));
    }
    // The grants this checks are not all the same way: each side of both is covered.
    ensure!(
        checked.iter().any(|c| c.1) && checked.iter().any(|c| !c.1),
        "{checked:?}"
    );
    ensure!(
        checked.iter().any(|c| c.2) && checked.iter().any(|c| !c.2),
        "{checked:?}"
    );
    Ok(())
}

fn kv_id(env: &toml::Table) -> Result<String> {
    let kv = env
        .get("kv_namespaces")
        .and_then(|v| v.as_array())
        .context("no kv_namespaces")?;
    let ns = kv
        .iter()
        .find(|ns| ns.get("binding").and_then(|b| b.as_str()) == Some("TABLES_KV"))
        .context("no TABLES_KV binding")?;
    Ok(ns
        .get("id")
        .and_then(|v| v.as_str())
        .context("TABLES_KV has no id")?
        .to_owned())
}

/// A tool the project installs, at `path` under the root; `how` says how to get it.
fn tool(path: &str, how: &str) -> Result<PathBuf> {
    let bin = root().join(path);
    ensure!(bin.exists(), "{} is missing: run `{how}`", bin.display());
    Ok(bin)
}

fn show(out: &Output) -> String {
    format!(
        "exit {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `wrangler deploy --dry-run [--env ENV] --outdir TMP` from the workspace root: the
/// bundle it would upload must hold the Worker's JavaScript and its wasm, and wrangler
/// must have picked the environment's own KV namespace.
fn dry_run_deploy(env: Option<&str>) -> Result<()> {
    let root = root();
    let wrangler = tool("node_modules/.bin/wrangler", "npm ci")?;
    ensure!(
        root.join("crates/worker/build/index.js").exists(),
        "the Worker is not built: run `make worker` first"
    );
    let out_dir = tempfile::tempdir()?;
    let logs = tempfile::tempdir()?;
    let mut cmd = Command::new(&wrangler);
    cmd.current_dir(&root).args(["deploy", "--dry-run"]);
    if let Some(env) = env {
        cmd.args(["--env", env]);
    }
    let out = cmd
        .arg("--outdir")
        .arg(out_dir.path())
        .env("WRANGLER_SEND_METRICS", "false")
        .env("NO_COLOR", "1")
        .env("WRANGLER_LOG_PATH", logs.path())
        .output()
        .context("running wrangler")?;
    ensure!(
        out.status.success(),
        "wrangler deploy --dry-run failed: {}",
        show(&out)
    );
    let files: Vec<String> = std::fs::read_dir(out_dir.path())?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    ensure!(
        files.iter().any(|f| f == "index.js"),
        "no index.js in the bundle: {files:?}"
    );
    // The uploaded wasm is the deploy build, without the backend suite that
    // crates/worker/build-selftest carries for the conformance suite.
    let wasm = files
        .iter()
        .find(|f| f.ends_with(".wasm"))
        .ok_or_else(|| anyhow::anyhow!("no .wasm in the bundle: {files:?}"))?;
    let uploaded = std::fs::read(out_dir.path().join(wasm))?;
    ensure!(
        uploaded == std::fs::read(root.join("crates/worker/build/index_bg.wasm"))?,
        "the bundle's {wasm} is not crates/worker/build/index_bg.wasm"
    );
    ensure!(
        !contains(&uploaded, b"put_then_get_returns_value_at_version_one"),
        "the deployed wasm links the backend suite (one of its case names is in it)"
    );
    let config = wrangler_toml()?;
    let section = match env {
        Some(env) => table(&config, &["env", env])?,
        None => &config,
    };
    let id = kv_id(section)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        stdout.contains(&format!("env.TABLES_KV ({id})")),
        "wrangler did not bind TABLES_KV to {id}: {}",
        show(&out)
    );
    ensure!(
        stdout.contains("env.ASSETS"),
        "wrangler did not bind the static assets as ASSETS: {}",
        show(&out)
    );
    ensure!(stdout.contains("--dry-run: exiting now."), "{}", show(&out));
    Ok(())
}

#[test]
fn dry_run_deploy_succeeds_for_the_default_environment() -> Result<()> {
    dry_run_deploy(None)
}

#[test]
fn dry_run_deploy_succeeds_for_staging() -> Result<()> {
    dry_run_deploy(Some("staging"))
}

#[test]
fn dry_run_deploy_succeeds_for_production() -> Result<()> {
    dry_run_deploy(Some("production"))
}

/// wrangler inherits neither vars nor bindings into `[env.*]`: each environment must
/// repeat them, or it silently deploys without them.
#[test]
fn environments_repeat_the_top_level_bindings_with_their_own_names_and_namespaces() -> Result<()> {
    let config = wrangler_toml()?;
    let top_vars = table(&config, &["vars"])?;
    // The /docs files: every request through the Worker, which reads them by binding.
    let assets = table(&config, &["assets"])?;
    for (key, want) in [
        ("directory", toml::Value::from("build/docs-assets")),
        ("binding", toml::Value::from("ASSETS")),
        ("run_worker_first", toml::Value::from(true)),
        ("html_handling", toml::Value::from("none")),
    ] {
        ensure!(
            assets.get(key) == Some(&want),
            "[assets] {key} is not {want:?}"
        );
    }
    let mut ids = vec![kv_id(&config)?];
    for (env, name) in [
        ("staging", "edge-backends-staging"),
        ("production", "edge-backends"),
    ] {
        let section = table(&config, &["env", env])?;
        ensure!(
            section.get("name").and_then(|v| v.as_str()) == Some(name),
            "[env.{env}] name is not {name}"
        );
        let vars = table(section, &["vars"])?;
        let mut top_keys: Vec<&String> = top_vars.keys().collect();
        let mut keys: Vec<&String> = vars.keys().collect();
        top_keys.sort();
        keys.sort();
        ensure!(
            keys == top_keys,
            "[env.{env}.vars] {keys:?} != [vars] {top_keys:?}"
        );
        for (key, value) in top_vars {
            let expected = match key.as_str() {
                // Test hooks stay off in every deployed environment.
                "TEST_CLOCK_HEADER" | "STORAGE_STATS_HEADER" => "false",
                _ => value.as_str().context("vars are strings")?,
            };
            ensure!(
                vars.get(key).and_then(|v| v.as_str()) == Some(expected),
                "[env.{env}.vars] {key} is not {expected:?}"
            );
        }
        ensure!(
            section.get("durable_objects") == config.get("durable_objects"),
            "[env.{env}] durable_objects differ from the top level's"
        );
        ensure!(
            section.get("triggers").is_some() && section.get("observability").is_some(),
            "[env.{env}] needs its own triggers and observability"
        );
        ensure!(
            section.get("assets").is_none(),
            "[env.{env}] must inherit [assets] (wrangler does), not override it"
        );
        ids.push(kv_id(section)?);
    }
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    ensure!(
        distinct.len() == ids.len(),
        "KV namespace ids are shared: {ids:?}"
    );
    Ok(())
}

/// The self-test build's `wrangler dev` config (tests/selftest-worker) must give its
/// Worker what the root config gives the deployed one — the same Durable Object class
/// and migrations, KV binding, assets binding and compatibility date — or the backend
/// suite would run on storage the deployed Worker does not have.
#[test]
fn selftest_worker_config_binds_what_the_deployed_worker_binds() -> Result<()> {
    let config = wrangler_toml()?;
    let text = std::fs::read_to_string(root().join("tests/selftest-worker/wrangler.toml"))?;
    let selftest: toml::Table = text.parse()?;
    for key in ["durable_objects", "migrations", "compatibility_date"] {
        ensure!(
            selftest.get(key) == config.get(key),
            "tests/selftest-worker/wrangler.toml {key} differs from wrangler.toml's"
        );
    }
    let kv_bindings = |t: &toml::Table| -> Vec<String> {
        t.get("kv_namespaces")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.get("binding").and_then(|b| b.as_str()))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    ensure!(
        kv_bindings(&selftest) == kv_bindings(&config),
        "KV bindings {:?} != wrangler.toml's {:?}",
        kv_bindings(&selftest),
        kv_bindings(&config)
    );
    let (assets, root_assets) = (table(&selftest, &["assets"])?, table(&config, &["assets"])?);
    for key in ["binding", "run_worker_first", "html_handling"] {
        ensure!(
            assets.get(key) == root_assets.get(key),
            "[assets] {key} differs from wrangler.toml's"
        );
    }
    let main = selftest.get("main").and_then(|v| v.as_str());
    ensure!(
        main == Some("../../crates/worker/build-selftest/index.js"),
        "main is {main:?}, not the self-test build"
    );
    Ok(())
}

/// The workflows the test validates; a new one must be added here.
const WORKFLOWS: &[&str] = &[
    ".github/workflows/ci.yml",
    ".github/workflows/deploy.yml",
    ".github/workflows/release.yml",
];
const ACTIONS: &[&str] = &[".github/actions/toolchains/action.yml"];

fn check_jsonschema(schema: &str, files: &[&str]) -> Result<()> {
    let root = root();
    let bin = tool(
        ".venv/bin/check-jsonschema",
        "bash scripts/setup.sh (tests/clients/requirements.txt)",
    )?;
    let out = Command::new(bin)
        .current_dir(&root)
        .args(["--builtin-schema", schema])
        .args(files)
        .output()?;
    ensure!(out.status.success(), "{schema}: {}", show(&out));
    Ok(())
}

#[test]
fn workflow_files_validate_against_the_github_schema() -> Result<()> {
    let mut present: Vec<String> = std::fs::read_dir(root().join(".github/workflows"))?
        .map(|e| {
            Ok(format!(
                ".github/workflows/{}",
                e?.file_name().to_string_lossy()
            ))
        })
        .collect::<Result<_>>()?;
    present.retain(|f| f.ends_with(".yml") || f.ends_with(".yaml"));
    present.sort();
    ensure!(
        present == WORKFLOWS,
        "list every workflow in WORKFLOWS: {present:?}"
    );
    check_jsonschema("vendor.github-workflows", WORKFLOWS)?;
    check_jsonschema("vendor.github-actions", ACTIONS)
}

// --- scripts/deploy.sh and scripts/kv-namespaces.sh with a stand-in wrangler -----------

const OLD: &str = "11111111-1111-4111-8111-111111111111";
const NEW: &str = "22222222-2222-4222-8222-222222222222";

/// A stand-in `wrangler`: keeps the live deployment in `$STATE/current` (the versions
/// array of `deployments status --json`), answers `versions upload` as wrangler 4.86 does
/// (a `version-upload` line in WRANGLER_OUTPUT_FILE_PATH, no preview URL, as for a Worker
/// with Durable Objects), makes the health endpoint fail (`$STATE/unhealthy`) once the
/// new version gets `$FAIL_AT` percent, and logs every call in `$STATE/calls`.
const FAKE_WRANGLER: &str = r#"#!/usr/bin/env bash
echo "wrangler $*" >> "$STATE/calls"
case "$1 $2" in
  "deployments status") printf '{"id":"d","versions":[%s]}\n' "$(cat "$STATE/current")" ;;
  "versions upload")
    echo "Worker Version ID: NEW"
    echo '{"type":"version-upload","version":1,"worker_name":"edge-backends-staging","version_id":"NEW","preview_url":null}' >> "$WRANGLER_OUTPUT_FILE_PATH" ;;
  "versions deploy")
    shift 2; json=
    for a in "$@"; do case "$a" in *@*%)
      p=${a#*@}; p=${p%\%}; json="$json${json:+,}{\"version_id\":\"${a%@*}\",\"percentage\":$p}"
      if [ "${a%@*}" = NEW ] && [ "$p" = "${FAIL_AT:-}" ]; then touch "$STATE/unhealthy"; fi ;;
    esac; done
    echo "$json" > "$STATE/current" ;;
  "rollback "*) echo "{\"version_id\":\"$2\",\"percentage\":100}" > "$STATE/current"; rm -f "$STATE/unhealthy" ;;
  "triggers deploy") ;;
  "kv namespace")
    if [ "$3" = create ]; then
      printf '[[kv_namespaces]]\nbinding = "%s"\nid = "0f2ac74b498b48028cb68387c421e279"\n' "$4"
    else exit 9; fi ;;
  *) echo "unexpected: $*" >&2; exit 9 ;;
esac
"#;

/// A stand-in `make` that records `make smoke` calls (with the pinning header) and passes.
const FAKE_MAKE: &str = r#"#!/usr/bin/env bash
echo "make $* header=[$SMOKE_HEADER] token=[$ADMIN_TOKEN]" >> "$STATE/calls"
"#;

fn write_executable(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text)?;
    ensure!(Command::new("chmod")
        .arg("+x")
        .arg(path)
        .status()?
        .success());
    Ok(())
}

/// A loopback HTTP server answering every request 200, or 503 while `unhealthy` exists.
fn health_server(unhealthy: PathBuf) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}", listener.local_addr()?);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let status = if unhealthy.exists() {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
            );
        }
    });
    Ok(base)
}

struct Rollout {
    ok: bool,
    calls: Vec<String>,
    live: String,
    output: String,
}

fn deploy_with_fakes(fail_at: Option<u32>) -> Result<Rollout> {
    let state = tempfile::tempdir()?;
    let bin = tempfile::tempdir()?;
    let wrangler = bin.path().join("wrangler");
    let make = bin.path().join("make");
    write_executable(&wrangler, &FAKE_WRANGLER.replace("NEW", NEW))?;
    write_executable(&make, FAKE_MAKE)?;
    std::fs::write(
        state.path().join("current"),
        format!(r#"{{"version_id":"{OLD}","percentage":100}}"#),
    )?;
    let base = health_server(state.path().join("unhealthy"))?;
    let out = Command::new("bash")
        .arg(root().join("scripts/deploy.sh"))
        .arg("staging")
        .env("STATE", state.path())
        .env("WRANGLER", &wrangler)
        .env("MAKE", &make)
        .env("DEPLOY_BASE_URL", format!("{base}/"))
        .env("ADMIN_TOKEN", "t0ken")
        .env(
            "FAIL_AT",
            fail_at.map(|p| p.to_string()).unwrap_or_default(),
        )
        .env("SOAK_SECONDS", "0")
        .env("HEALTH_CHECKS", "2")
        .env("HEALTH_INTERVAL", "0")
        .env("OVERRIDE_PROPAGATION_SECONDS", "0")
        .output()?;
    let calls = std::fs::read_to_string(state.path().join("calls"))?;
    Ok(Rollout {
        ok: out.status.success(),
        calls: calls.lines().map(str::to_owned).collect(),
        live: std::fs::read_to_string(state.path().join("current"))?,
        output: show(&out),
    })
}

fn wrangler_calls(r: &Rollout) -> Vec<&str> {
    r.calls
        .iter()
        .filter_map(|c| c.strip_prefix("wrangler "))
        .map(|c| c.split(" --env").next().unwrap_or(c))
        .collect()
}

#[test]
fn deploy_script_shifts_traffic_in_steps_behind_health_gates() -> Result<()> {
    let r = deploy_with_fakes(None)?;
    ensure!(r.ok, "{}", r.output);
    let calls = wrangler_calls(&r);
    let expected = [
        "deployments status".to_owned(),
        "versions upload".to_owned(),
        format!("versions deploy {NEW}@0% {OLD}@100%"),
        format!("versions deploy {NEW}@10% {OLD}@90%"),
        format!("versions deploy {NEW}@50% {OLD}@50%"),
        format!("versions deploy {NEW}@100%"),
        "triggers deploy".to_owned(),
    ];
    ensure!(calls == expected, "{calls:#?}\n{}", r.output);
    // A smoke test before any traffic and one per step, each pinned to the new version.
    let smokes: Vec<&String> = r.calls.iter().filter(|c| c.starts_with("make ")).collect();
    ensure!(smokes.len() == 4, "{:#?}", r.calls);
    let pin = format!(r#"Cloudflare-Workers-Version-Overrides: edge-backends-staging="{NEW}""#);
    for s in smokes {
        ensure!(s.contains(&pin) && s.contains("token=[t0ken]"), "{s}");
    }
    ensure!(r.live.contains(NEW) && !r.live.contains(OLD), "{}", r.live);
    Ok(())
}

#[test]
fn deploy_script_rolls_back_when_a_health_gate_fails() -> Result<()> {
    let r = deploy_with_fakes(Some(50))?;
    ensure!(!r.ok, "a failed gate must fail the deploy: {}", r.output);
    let calls = wrangler_calls(&r);
    ensure!(
        calls
            .last()
            .map(|c| c.starts_with(&format!("rollback {OLD}")))
            == Some(true),
        "{calls:#?}"
    );
    ensure!(
        !calls.iter().any(|c| c.contains(&format!("{NEW}@100%"))),
        "never past 50%: {calls:#?}"
    );
    ensure!(
        r.live == format!("{{\"version_id\":\"{OLD}\",\"percentage\":100}}\n"),
        "{}",
        r.live
    );
    ensure!(r.output.contains("the gate at 50% failed"), "{}", r.output);
    Ok(())
}

#[test]
fn kv_namespaces_script_writes_the_new_id_into_its_environment_only() -> Result<()> {
    let state = tempfile::tempdir()?;
    let wrangler = state.path().join("wrangler");
    write_executable(&wrangler, FAKE_WRANGLER)?;
    let config = state.path().join("wrangler.toml");
    let original = std::fs::read_to_string(root().join("wrangler.toml"))?;
    // Start from placeholders, whatever ids the checked-in file has by now.
    let mut parsed: toml::Table = original.parse()?;
    let staging_id = kv_id(table(&parsed, &["env", "staging"])?)?;
    let text = original.replace(
        &format!("id = \"{staging_id}\""),
        "id = \"00000000000000000000000000000001\"",
    );
    std::fs::write(&config, &text)?;
    let run = || -> Result<Output> {
        Ok(Command::new("bash")
            .arg(root().join("scripts/kv-namespaces.sh"))
            .arg("staging")
            .env("STATE", state.path())
            .env("WRANGLER", &wrangler)
            .env("WRANGLER_CONFIG", &config)
            .output()?)
    };
    let out = run()?;
    ensure!(out.status.success(), "{}", show(&out));
    let written = std::fs::read_to_string(&config)?;
    parsed = written.parse()?;
    ensure!(kv_id(table(&parsed, &["env", "staging"])?)? == "0f2ac74b498b48028cb68387c421e279");
    ensure!(
        kv_id(&parsed)? == kv_id(&original.parse()?)?,
        "top level changed"
    );
    let production =
        |t: &toml::Table| -> Result<String> { kv_id(table(t, &["env", "production"])?) };
    ensure!(
        production(&parsed)? == production(&original.parse()?)?,
        "production changed"
    );
    // Only that one line changed.
    let changed = text
        .lines()
        .zip(written.lines())
        .filter(|(a, b)| a != b)
        .count();
    ensure!(changed == 1 && text.lines().count() == written.lines().count());
    // A second run leaves the real id alone and creates nothing.
    let out = run()?;
    ensure!(out.status.success(), "{}", show(&out));
    let calls = std::fs::read_to_string(state.path().join("calls"))?;
    if calls
        .lines()
        .filter(|c| c.contains("namespace create"))
        .count()
        != 1
    {
        bail!("the second run created a namespace again: {calls}");
    }
    ensure!(std::fs::read_to_string(&config)? == written);
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
