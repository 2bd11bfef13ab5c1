//! `make run`'s choice of runtime (`scripts/run.sh`), with a stand-in `spin` on PATH
//! that records how it was called: real Spin cannot be installed here, and what is
//! under test is the script's decision, not Spin.

use anyhow::{ensure, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory holding an executable `spin` that answers `plugins list --installed`
/// with `plugins` and records the arguments of `up` in `up.args`.
fn fake_spin(plugins: &str) -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let list = dir.path().join("plugins.txt");
    std::fs::write(&list, format!("{plugins}\n"))?;
    let script = format!(
        "#!/usr/bin/env bash\n\
         if [ \"$1 $2\" = \"plugins list\" ]; then cat {list:?}; exit 0; fi\n\
         if [ \"$1\" = up ]; then shift; printf '%s\\n' \"$@\" > {:?}; exit 0; fi\n\
         exit 2\n",
        dir.path().join("up.args")
    );
    let spin = dir.path().join("spin");
    std::fs::write(&spin, script)?;
    ensure!(Command::new("chmod")
        .arg("+x")
        .arg(&spin)
        .status()?
        .success());
    Ok(dir)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(bin: &Path) -> Result<(String, Vec<String>)> {
    let root = root();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH")?);
    let out = Command::new("bash")
        .arg(root.join("scripts/run.sh"))
        .env("PATH", path)
        // The components are the README's test command's to build, not this test's.
        .env("MAKE", "true")
        .output()?;
    ensure!(out.status.success(), "{out:?}");
    let args = std::fs::read_to_string(bin.join("up.args"))?;
    Ok((
        String::from_utf8(out.stdout)?,
        args.lines().map(str::to_owned).collect(),
    ))
}

#[test]
fn run_serves_everything_with_spin_when_the_cron_plugin_is_installed() {
    let bin = fake_spin("cloud 0.11.0 [installed]\ntrigger-cron 0.3.0 [installed]").unwrap();
    let (stdout, args) = run(bin.path()).unwrap();
    assert!(stdout.contains("scraper on the cron trigger"), "{stdout}");
    assert_eq!(args, ["--listen", "127.0.0.1:3000"]);
}

#[test]
fn run_serves_the_http_components_and_says_how_to_install_the_cron_plugin_when_missing() {
    let bin = fake_spin("No plugins found").unwrap();
    let (stdout, args) = run(bin.path()).unwrap();
    assert!(stdout.contains("spin plugins install --url"), "{stdout}");
    assert!(stdout.contains("trigger-cron.json"), "{stdout}");
    let components: Vec<&str> = args
        .windows(2)
        .filter(|w| w[0] == "--component-id")
        .map(|w| w[1].as_str())
        .collect();
    // Every HTTP component of spin.toml, in its order, and not the cron-only scraper.
    let manifest: toml::Table = std::fs::read_to_string(root().join("spin.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let http: Vec<&str> = manifest["trigger"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["component"].as_str().unwrap())
        .collect();
    assert_eq!(components, http);
    assert!(!components.contains(&"scraper"));
}
