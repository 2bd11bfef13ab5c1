//! Where the time of `GET /hello/{user}` goes on workerd: the Worker against a plain
//! JavaScript reference of the same route (`tests/reference-worker`: one Durable Object
//! per user, reading one key, no wasm, no framework), both under `wrangler dev` at once
//! and measured in alternating rounds. Each prints requests/s of `GET /healthz` (no
//! storage) and of `GET /hello/{user}` (one Durable Object round trip); the ratios say
//! how much of the gap to `/healthz` is the platform's (the reference's own ratio) and
//! how much is ours. The Worker runs three ways: as deployed, without its request log
//! line (`REQUEST_LOG=false`), and also without `[assets]` (whose local router sits in
//! front of every request under `wrangler dev`).
//!
//! Build the Worker first (`make worker`), then
//! `cargo run --release -p conformance --features bench --bin bench_hotpath`. Knobs: `BENCH_REQUESTS`
//! (default 2000 per measurement), `BENCH_SECONDS` (default 20, the cap of each),
//! `BENCH_CONCURRENCY` (default 8), `BENCH_ROUNDS` (default 2).

use anyhow::{ensure, Result};
use conformance::{bench, Api, Host};
use std::sync::Arc;

/// The shared seed, then each user read back: the reference answers as ours does.
async fn seed(api: &Api) -> Result<Vec<String>> {
    let paths = bench::seed_hello(api).await?;
    for path in &paths {
        let read = api.get(path, &[]).await?;
        ensure!(
            read.status == 200 && read.json()?["message"].is_string(),
            "reading back {path}: {} {}",
            read.status,
            String::from_utf8_lossy(&read.body)
        );
    }
    Ok(paths)
}

/// The root `wrangler.toml` without `[build]` (the Worker is built) and `[assets]`, its
/// `main` made absolute, for a `wrangler dev` run from another folder.
fn bare_config() -> Result<String> {
    let root = conformance::root();
    let text = std::fs::read_to_string(root.join("wrangler.toml"))?;
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.starts_with('[') {
            skipping = line == "[build]" || line == "[assets]";
        }
        if skipping {
            continue;
        }
        match line.strip_prefix("main = ") {
            Some(main) => {
                let main = root.join(main.trim_matches('"'));
                out.push_str(&format!("main = {:?}\n", main.display().to_string()));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    Ok(out)
}

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let ours = conformance::start(Host::Workerd, &Vec::new())?
        .ok_or_else(|| anyhow::anyhow!("workerd cannot run here"))?;
    let reference = conformance::start_wrangler_dev(
        &conformance::root().join("tests/reference-worker"),
        &Vec::new(),
    )?;
    // The same Worker without its request log line: under `wrangler dev` each
    // console.log line also crosses to the terminal, which the reference never pays.
    let quiet_vars = vec![("request_log".to_owned(), "false".to_owned())];
    let quiet = conformance::start(Host::Workerd, &quiet_vars)?
        .ok_or_else(|| anyhow::anyhow!("workerd cannot run here"))?;
    // ...and also without `[assets]`: `wrangler dev` then drops the asset router and RPC
    // proxy it otherwise puts in front of the Worker (production has no such hop).
    let bare_dir = tempfile::tempdir()?;
    std::fs::write(bare_dir.path().join("wrangler.toml"), bare_config()?)?;
    let bare = conformance::start_wrangler_dev(bare_dir.path(), &quiet_vars)?;
    println!(
        "ours: {}\nours, no log: {}\nours, no log, no assets: {}\nreference: {}",
        ours.describe(),
        quiet.describe(),
        bare.describe(),
        reference.describe()
    );
    let apis = [
        ("ours", Api::new(&ours.base, "bench")?),
        ("ours, no log", Api::new(&quiet.base, "bench")?),
        ("ours, bare", Api::new(&bare.base, "bench")?),
        ("reference", Api::new(&reference.base, "bench")?),
    ];
    let mut hello = Vec::new();
    for (_, api) in &apis {
        // The same paths on every worker.
        hello = runtime.block_on(seed(api))?;
    }
    let healthz = Arc::new(vec!["/healthz".to_owned()]);
    let hello = Arc::new(hello);
    let rounds = bench::env_number("BENCH_ROUNDS", 2).max(1);
    // (worker, route) -> requests/s of each round.
    let mut rates: Vec<(&str, &str, Vec<f64>)> = Vec::new();
    for _ in 0..rounds {
        for (name, api) in &apis {
            for (route, paths) in [("GET /healthz", &healthz), ("GET /hello/{user}", &hello)] {
                let m = runtime.block_on(bench::measure_gets(
                    Host::Workerd,
                    api,
                    "",
                    paths.clone(),
                    2000,
                ))?;
                ensure!(m.errors == 0, "{name} {route}: {} errors", m.errors);
                match rates.iter_mut().find(|(n, r, _)| n == name && *r == route) {
                    Some((_, _, list)) => list.push(m.per_second),
                    None => rates.push((name, route, vec![m.per_second])),
                }
            }
        }
    }
    let mean = |name: &str, route: &str| {
        rates
            .iter()
            .find(|(n, r, _)| *n == name && *r == route)
            .map_or(0.0, |(_, _, l)| l.iter().sum::<f64>() / l.len() as f64)
    };
    println!(
        "\nworkerd under wrangler dev, {} clients, {rounds} alternating rounds (req/s, mean):",
        bench::concurrency()
    );
    println!(
        "  {:<12} {:>12} {:>18} {:>18}",
        "worker", "GET /healthz", "GET /hello/{user}", "hello / healthz"
    );
    for name in ["ours", "ours, no log", "ours, bare", "reference"] {
        let (h, u) = (mean(name, "GET /healthz"), mean(name, "GET /hello/{user}"));
        println!("  {name:<12} {h:>12.0} {u:>18.0} {:>18.3}", u / h);
    }
    for name in ["ours", "ours, no log", "ours, bare"] {
        println!(
            "  {name} / reference: /healthz {:.3}, /hello {:.3}",
            mean(name, "GET /healthz") / mean("reference", "GET /healthz"),
            mean(name, "GET /hello/{user}") / mean("reference", "GET /hello/{user}")
        );
    }
    Ok(())
}
