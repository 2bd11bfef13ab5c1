//! No internal detail reaches a client (the OpenAPI document: a 5xx body says only a generic message
//! and the request id; the detail goes to the request's log line). On every host a
//! birthday is stored through the API and then corrupted in the host's own storage —
//! natively in its store between two requests; on the Spin-compatible host and on
//! workerd with the host stopped (Spin's `spin_key_value` SQLite table; the Durable
//! Object's SQLite file that `wrangler dev` keeps) and started again on it: reading the
//! birthday must be a 5xx whose body carries none of the detail, with an
//! `x-request-id` whose log line does.

use anyhow::{ensure, Context, Result};
use conformance::{Api, Running};
use kit::table::spin_keys;
use serde_json::Value;
use std::path::Path;

const USER: &str = "leakyuser";
/// What the corrupted value holds: text no JSON parser accepts.
const GARBAGE: &str = "{\"dateOfBirth\": corrupt";

fn put_birthday(running: &Running) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let api = Api::new(&running.base, "")?;
    let body = serde_json::json!({"dateOfBirth": "1990-05-17"});
    let reply = runtime.block_on(api.put_json(&format!("/hello/{USER}"), &body, &[]))?;
    ensure!(
        reply.status == 204,
        "storing the birthday: {}",
        reply.status
    );
    Ok(())
}

/// Reads the corrupted birthday and checks the answer and its log line.
fn read_corrupt(running: &Running) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let api = Api::new(&running.base, "")?;
    let reply = runtime.block_on(api.get(&format!("/hello/{USER}"), &[]))?;
    let body = String::from_utf8_lossy(&reply.body).into_owned();
    ensure!(reply.status >= 500, "{}: {body}", reply.status);
    let json: Value = serde_json::from_str(&body).with_context(|| body.clone())?;
    ensure!(
        json["error"]["code"].is_string(),
        "not the OpenAPI document's shape: {body}"
    );
    let lowered = body.to_ascii_lowercase();
    for leak in ["corrupt", "column", "expected", "sqlite", "stored"] {
        ensure!(!lowered.contains(leak), "the body names {leak:?}: {body}");
    }
    let id = reply
        .header("x-request-id")
        .context("no x-request-id")?
        .to_owned();
    // The log line may trail the response by a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let line = running
            .logs
            .lines()
            .into_iter()
            .filter(|l| l.contains(&id) && l.contains("\"kind\":\"request\""))
            .find_map(|l| serde_json::from_str::<Value>(&l[l.find('{')?..]).ok());
        if let Some(line) = line {
            let detail = line["detail"].as_str().unwrap_or_default();
            ensure!(
                detail.to_ascii_lowercase().contains("corrupt"),
                "the log line has no detail of the fault: {line}"
            );
            ensure!(
                !body.contains(detail),
                "the body carries the detail: {body}"
            );
            return Ok(());
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "no log line for request {id}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Overwrites the birthday's partition in a Spin store with [`GARBAGE`], committed as
/// the Spin backend's creation protocol leaves a partition.
fn corrupt_spin_store(state: &Path) -> Result<()> {
    let db = rusqlite::Connection::open(state.join("sqlite_key_value.db"))?;
    let key = format!("{}/{USER}", hello::TABLE);
    let mut replaced = 0;
    for (key, value) in spin_keys::committed_partition(&key, GARBAGE.as_bytes()) {
        replaced += db.execute(
            "UPDATE spin_key_value SET value = ?1 WHERE store = 'default' AND key = ?2",
            rusqlite::params![value, key],
        )?;
    }
    ensure!(
        replaced == 2,
        "the birthday's partition was not where expected"
    );
    Ok(())
}

/// Overwrites the birthday's row in the Durable Objects' SQLite files `wrangler dev`
/// keeps under `state`.
fn corrupt_durable_objects(state: &Path) -> Result<()> {
    let mut updated = 0;
    for class in std::fs::read_dir(state.join("v3/do"))? {
        for file in std::fs::read_dir(class?.path())? {
            let path = file?.path();
            let is_object = path.extension().is_some_and(|e| e == "sqlite")
                && path.file_stem().is_some_and(|s| s != "metadata");
            if !is_object {
                continue;
            }
            let db = rusqlite::Connection::open(&path)?;
            let has_items: bool = db.query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'items'",
                [],
                |row| row.get(0),
            )?;
            if has_items {
                updated += db.execute(
                    "UPDATE items SET d = ?1 WHERE t = ?2 AND pk = ?3",
                    rusqlite::params![GARBAGE, hello::TABLE, USER],
                )?;
            }
        }
    }
    ensure!(updated == 1, "{updated} rows of the birthday found");
    Ok(())
}

#[test]
fn a_corrupt_value_on_the_native_host_is_a_5xx_without_detail_and_a_log_line_with_it() -> Result<()>
{
    let kv = kit::table::memory::MemoryKv::new();
    let running = conformance::start_native_on(&Vec::new(), kv.clone())?;
    put_birthday(&running)?;
    let key = kv.table(hello::TABLE).storage_key(USER);
    let runtime = tokio::runtime::Runtime::new()?;
    ensure!(
        runtime
            .block_on(kit::table::RawKv::read(&kv, &key))?
            .is_some(),
        "the birthday is not under {key}"
    );
    runtime.block_on(kit::table::RawKv::write(
        &kv,
        &key,
        GARBAGE.as_bytes().to_vec(),
    ))?;
    read_corrupt(&running)
}

#[test]
fn a_corrupt_value_on_spin_host_is_a_5xx_without_detail_and_a_log_line_with_it() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let manifest = conformance::root().join("spin.toml");
    let state = dir.path().join("state");
    put_birthday(&conformance::start_spin_host_at(
        &manifest,
        &Vec::new(),
        &state,
    )?)?;
    corrupt_spin_store(&state)?;
    read_corrupt(&conformance::start_spin_host_at(
        &manifest,
        &Vec::new(),
        &state,
    )?)
}

#[test]
fn a_corrupt_value_on_workerd_is_a_5xx_without_detail_and_a_log_line_with_it() -> Result<()> {
    let state = tempfile::tempdir()?;
    put_birthday(&conformance::start_workerd_at(&Vec::new(), state.path())?)?;
    corrupt_durable_objects(state.path())?;
    read_corrupt(&conformance::start_workerd_at(&Vec::new(), state.path())?)
}
