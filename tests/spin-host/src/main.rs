//! `spin-host`: runs a Spin application for tests, in place of `spin up`.
//!
//! ```text
//! spin-host --manifest spin.toml [--listen 127.0.0.1:3000] [--state-dir DIR]
//!           [--var NAME=VALUE]... [--cron]
//! ```
//!
//! Application variables come from `--var`, then `SPIN_VARIABLE_<NAME>`
//! environment variables, then manifest defaults. Key-value stores persist
//! in `--state-dir` (default: `.spin` beside the manifest). Once serving, it
//! prints exactly one line to stdout, `spin-host listening on http://ADDR`,
//! from which a test harness reads the port (use `--listen 127.0.0.1:0` to
//! get a free one). Diagnostics go to stderr.
//!
//! Cron components run when a test asks, `POST /.spin-host/cron/{component}`
//! (see `app.rs`), and with `--cron` also on the schedules of their
//! `[[trigger.cron]]` (off by default, so tests stay deterministic).

use anyhow::{bail, Context, Result};
use spin_host::app::App;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

const USAGE: &str = "usage: spin-host --manifest spin.toml [--listen 127.0.0.1:3000] \
                     [--state-dir DIR] [--var NAME=VALUE]... [--cron]";

struct Args {
    manifest: PathBuf,
    listen: String,
    state_dir: Option<PathBuf>,
    vars: BTreeMap<String, String>,
    cron: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args> {
    let mut parsed = Args {
        manifest: PathBuf::from("spin.toml"),
        listen: "127.0.0.1:3000".to_string(),
        state_dir: None,
        vars: BTreeMap::new(),
        cron: false,
    };
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        if flag == "--cron" {
            parsed.cron = true;
            continue;
        }
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--manifest" | "-f" => parsed.manifest = value.into(),
            "--listen" => parsed.listen = value,
            "--state-dir" => parsed.state_dir = Some(value.into()),
            "--var" | "--variable" => {
                let (name, value) = value
                    .split_once('=')
                    .with_context(|| format!("--var expects NAME=VALUE, got {value:?}"))?;
                parsed.vars.insert(name.to_string(), value.to_string());
            }
            _ => bail!("unknown argument {flag:?}\n{USAGE}"),
        }
    }
    Ok(parsed)
}

fn main() {
    // One readable line rather than anyhow's `Debug` (and its backtrace).
    if let Err(e) = run() {
        eprintln!("spin-host: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args = parse_args(std::env::args().skip(1))?;
    let state_dir = match args.state_dir {
        Some(dir) => dir,
        None => args
            .manifest
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join(".spin"),
    };
    let app = App::load(&args.manifest, &state_dir, &args.vars, |name| {
        std::env::var(name).ok()
    })?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        let addr = listener.local_addr()?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "spin-host listening on http://{addr}")?;
        stdout.flush()?;
        drop(stdout);
        let app = Arc::new(app);
        if args.cron {
            app.start_cron_schedules()?;
        }
        app.serve(listener).await
    })
}
