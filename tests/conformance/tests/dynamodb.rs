//! API.md §6, the DynamoDB-compatible API, driven by the real clients: boto3 and the
//! aws CLI v1 from the project's virtual environment (`.venv`, made by
//! `scripts/setup.sh` from `tests/clients/requirements.txt`), running
//! `tests/clients/dynamodb_basics.py` against the host.

use crate::cases;
use crate::common::Case;
use anyhow::{ensure, Context, Result};
use conformance::{Api, Host};

/// The credentials every host is started with (`dynamodb_access_key_id` / `…_secret_…`).
pub const ACCESS_KEY_ID: &str = "AKIDCONFORMANCE";
pub const SECRET_ACCESS_KEY: &str = "conformance/secret+key";

pub fn vars() -> Vec<(String, String)> {
    vec![
        (
            "dynamodb_access_key_id".to_owned(),
            ACCESS_KEY_ID.to_owned(),
        ),
        (
            "dynamodb_secret_access_key".to_owned(),
            SECRET_ACCESS_KEY.to_owned(),
        ),
    ]
}

pub fn cases() -> Vec<Case> {
    cases![boto3_and_the_aws_cli_run_tables_items_updates_queries_and_batches]
}

/// A table name no earlier run of this process used.
fn fresh_table() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "Movies-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

async fn boto3_and_the_aws_cli_run_tables_items_updates_queries_and_batches(
    api: Api,
    _: Host,
) -> Result<()> {
    let root = conformance::root();
    let python = root.join(".venv/bin/python");
    ensure!(
        python.exists(),
        "{} is missing: run scripts/setup.sh",
        python.display()
    );
    let out = tokio::process::Command::new(&python)
        .arg(root.join("tests/clients/dynamodb_basics.py"))
        .args([&api.base, ACCESS_KEY_ID, SECRET_ACCESS_KEY, &fresh_table()])
        .output()
        .await
        .context("running the boto3 script")?;
    ensure!(
        out.status.success(),
        "boto3/aws CLI script failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
