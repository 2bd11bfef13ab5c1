//! The post-deploy smoke test (`make smoke`, `scripts/smoke.py`) run against every
//! local host, admin checks included: what a deploy relies on must pass here first.

use anyhow::{ensure, Context, Result};
use conformance::{Api, Host};

pub fn cases() -> Vec<crate::common::Case> {
    crate::cases![smoke_test_passes_and_cleans_up_after_itself]
}

async fn smoke_test_passes_and_cleans_up_after_itself(api: Api, host: Host) -> Result<()> {
    let out = tokio::process::Command::new("python3")
        .arg(conformance::root().join("scripts/smoke.py"))
        .arg(&api.base)
        .env("ADMIN_TOKEN", &api.admin_token)
        .kill_on_drop(true)
        .output()
        .await
        .context("running scripts/smoke.py")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "smoke test failed on {}:\n{stdout}{}",
        host.name(),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = stdout.lines().last().unwrap_or_default();
    ensure!(
        summary.starts_with("smoke: ") && summary.contains(" 0 failed") && !stdout.contains("skip"),
        "unexpected smoke summary: {stdout}"
    );
    Ok(())
}
