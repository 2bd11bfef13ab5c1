//! An acknowledged write survives the host dying at any instant. Writers run against
//! the Spin-compatible host — its key-value store the SQLite file Spin keeps — and the
//! host's process is killed with SIGKILL at a random moment while they write, then
//! started again on the same state, `CRASH_KILLS` times (default 10; the 100
//! with `CRASH_KILLS=100`, 4-12 minutes). After every restart:
//! - every birthday acknowledged (`204`) before any kill reads back (`200`), and every
//!   one written reads back as a birthday or not at all — never a 5xx (a value that
//!   does not decode is one);
//! - every user's active streams (started `201`, under a limit of 3) include all that
//!   were acknowledged and never exceed the limit, whatever was cut off mid-write.
//!
//! The same runs against the Worker under `wrangler dev`, its local storage (Durable
//! Objects' SQLite files) kept across restarts and wrangler and workerd killed
//! together, `WORKERD_CRASH_KILLS` times (default 3: a restart takes 5-15 s).

use anyhow::{ensure, Context, Result};
use conformance::Api;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const LIMIT: usize = 3;
const WRITERS: usize = 8;

/// A manifest with only the two components written to and `health` (which the harness
/// asks whether the host is up), so that a restart compiles three components, not nine.
/// Stream leases last a day, so that no admitted stream expires during a long run (100
/// kills took ~10 minutes on a loaded machine) and reads as lost.
fn manifest(dir: &std::path::Path) -> Result<std::path::PathBuf> {
    let built = conformance::root().join("build/components");
    let mut text = String::from(
        "spin_manifest_version = 2\n[application]\nname = \"crash\"\n\
         [variables]\nstream_limit = { default = \"3\" }\n",
    );
    for (name, route, vars) in [
        ("health", "/...", ""),
        ("hello", "/hello/...", ""),
        (
            "streams",
            "/api/v1/...",
            "stream_limit = \"{{ stream_limit }}\"\nstream_lease_seconds = \"86400\"\n\
             identity_header = \"x-forwarded-for\"\n",
        ),
    ] {
        let source = built.join(format!("{name}.wasm"));
        ensure!(
            source.exists(),
            "{} is missing: run `make components`",
            source.display()
        );
        text.push_str(&format!(
            "[[trigger.http]]\nroute = \"{route}\"\ncomponent = \"{name}\"\n\
             [component.{name}]\nsource = {:?}\nkey_value_stores = [\"default\"]\n\
             [component.{name}.variables]\n{vars}",
            source.display().to_string()
        ));
    }
    let path = dir.join("spin.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// What the writers were told was done.
#[derive(Default)]
struct Acknowledged {
    birthdays: Vec<String>,
    /// Every birthday any writer sent, acknowledged or not.
    sent: Vec<String>,
    /// Streams admitted per user.
    streams: BTreeMap<String, usize>,
}

/// Writes until the host stops answering: birthdays of new users, and stream starts
/// for the round's user (more than the limit admits).
async fn writer(api: Api, round: usize, id: usize, acked: Arc<Mutex<Acknowledged>>) {
    let user = format!("crashuser{round}");
    for k in 0.. {
        // The birthday API takes letters only.
        let writer =
            conformance::bench::user_name(&conformance::bench::user_name("crash", round), id);
        let name = conformance::bench::user_name(&format!("{writer}x"), k);
        let path = format!("/hello/{name}");
        if let Ok(mut a) = acked.lock() {
            a.sent.push(path.clone());
        }
        let body = serde_json::json!({"dateOfBirth": "1990-05-17"});
        match api.put_json(&path, &body, &[]).await {
            Ok(reply) if reply.status == 204 => {
                if let Ok(mut a) = acked.lock() {
                    a.birthdays.push(path);
                }
            }
            _ => return,
        }
        if k % 4 == id % 4 {
            let start = api
                .send(
                    reqwest::Method::POST,
                    "/api/v1/streams",
                    &[("x-forwarded-for", &user)],
                    None,
                )
                .await;
            match start {
                Ok(reply) if reply.status == 201 => {
                    if let Ok(mut a) = acked.lock() {
                        *a.streams.entry(user.clone()).or_default() += 1;
                    }
                }
                Ok(reply) if reply.status == 429 => {}
                _ => return,
            }
        }
    }
}

/// Checks everything the writers were told against what the host now serves.
async fn verify(api: &Api, acked: &Acknowledged) -> Result<()> {
    for path in &acked.sent {
        let reply = api.get(path, &[]).await?;
        ensure!(
            reply.status == 200 || reply.status == 404,
            "{path}: {} {:?}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
        if acked.birthdays.contains(path) {
            ensure!(reply.status == 200, "{path} was acknowledged, then lost");
        }
    }
    for (user, admitted) in &acked.streams {
        let reply = api
            .get("/api/v1/streams", &[("x-forwarded-for", user)])
            .await?;
        ensure!(reply.status == 200, "streams of {user}: {}", reply.status);
        let active = reply.json()?["active"].as_array().map_or(0, Vec::len);
        ensure!(
            *admitted <= active && active <= LIMIT,
            "{user}: {admitted} streams admitted, {active} active (limit {LIMIT})"
        );
    }
    Ok(())
}

#[test]
fn acknowledged_writes_survive_the_spin_host_killed_at_random_moments() -> Result<()> {
    let kills = conformance::bench::env_number("CRASH_KILLS", 10);
    let dir = tempfile::tempdir()?;
    let manifest = manifest(dir.path())?;
    let state = dir.path().join("state");
    kill_and_restart("spin-host", kills, || {
        conformance::start_spin_host_at(&manifest, &Vec::new(), &state)
    })
}

#[test]
fn acknowledged_writes_survive_workerd_killed_at_random_moments() -> Result<()> {
    let kills = conformance::bench::env_number("WORKERD_CRASH_KILLS", 3);
    let state = tempfile::tempdir()?;
    let vars: conformance::Vars = vec![
        ("stream_limit".to_owned(), LIMIT.to_string()),
        ("stream_lease_seconds".to_owned(), "86400".to_owned()),
    ];
    kill_and_restart("workerd", kills, || {
        conformance::start_workerd_at(&vars, state.path())
    })
}

/// Starts the host, lets writers run into a kill at a random moment, `kills` times,
/// checking after every restart that everything acknowledged is there.
fn kill_and_restart(
    name: &str,
    kills: usize,
    start: impl Fn() -> Result<conformance::Running>,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    // A fixed seed: the kill moments are the same on every run.
    let mut seed: u64 = 0x5EED_C4A5_4000_0001;
    for round in 0..=kills {
        let host = start().with_context(|| format!("starting {name} for round {round}"))?;
        let api = Api::new(&host.base, "")?;
        {
            let snapshot = acked.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            runtime
                .block_on(verify(&api, &snapshot))
                .with_context(|| format!("{name} after kill {round}"))?;
        }
        if round == kills {
            break;
        }
        let writers: Vec<_> = (0..WRITERS)
            .map(|id| runtime.spawn(writer(api.clone(), round, id, acked.clone())))
            .collect();
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let wait = Duration::from_millis(50 + (seed >> 33) % 450);
        std::thread::sleep(wait);
        host.crash();
        for writer in writers {
            runtime.block_on(writer)?;
        }
    }
    let acked = acked.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    println!(
        "{name}: {kills} kills: {} of {} birthdays acknowledged, {} streams admitted, all kept",
        acked.birthdays.len(),
        acked.sent.len(),
        acked.streams.values().sum::<usize>()
    );
    ensure!(
        acked.birthdays.len() >= kills,
        "{name}: the writers got too few acknowledgements to test anything"
    );
    Ok(())
}
