//! `fake-tvmaze`: runs the fake TvMaze server until killed, for manual runs and for
//! tests in other processes.
//!
//! ```text
//! fake-tvmaze [--listen 127.0.0.1:0] [--shows 600] [--seed 1] [--max-id-gap 3]
//!             [--page-size 250] [--empty-pages 1,5] [--rate-limit 20/10000]
//!             [--fault-rate 0.05] [--slow-rate 0.1] [--slow-delay-ms 2000]
//! ```
//!
//! `--rate-limit CALLS/WINDOW_MS` (`0/0` turns it off). Once serving it prints exactly
//! one line to stdout, `fake-tvmaze listening on http://ADDR`; each request is
//! logged to stderr.

use anyhow::{bail, Context, Result};
use fake_tvmaze::{Config, FakeTvMaze};
use std::io::Write;
use std::str::FromStr;
use std::time::Duration;

const USAGE: &str = "usage: fake-tvmaze [--listen 127.0.0.1:0] [--shows N] [--seed N] \
                     [--max-id-gap N] [--page-size N] [--empty-pages N,N] \
                     [--rate-limit CALLS/WINDOW_MS] [--fault-rate P] [--slow-rate P] \
                     [--slow-delay-ms MS]";

fn number<T: FromStr>(flag: &str, value: &str) -> Result<T> {
    value
        .parse()
        .ok()
        .with_context(|| format!("{flag}: {value:?} is not a valid number"))
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Config> {
    let mut config = Config::default();
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        let f = &mut config.faults;
        match flag.as_str() {
            "--listen" => config.listen = number(&flag, &value)?,
            "--shows" => config.shows = number(&flag, &value)?,
            "--seed" => config.seed = number(&flag, &value)?,
            "--max-id-gap" => config.max_id_gap = number(&flag, &value)?,
            "--page-size" => config.page_size = number(&flag, &value)?,
            "--empty-pages" => {
                config.empty_pages = value
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| number(&flag, p))
                    .collect::<Result<_>>()?
            }
            "--rate-limit" => {
                let (calls, ms) = value
                    .split_once('/')
                    .with_context(|| format!("--rate-limit expects CALLS/WINDOW_MS\n{USAGE}"))?;
                f.rate_limit_calls = number(&flag, calls)?;
                f.rate_limit_window = Duration::from_millis(number(&flag, ms)?);
            }
            "--fault-rate" => f.fault_rate = number(&flag, &value)?,
            "--slow-rate" => f.slow_rate = number(&flag, &value)?,
            "--slow-delay-ms" => f.slow_delay = Duration::from_millis(number(&flag, &value)?),
            _ => bail!("unknown argument {flag:?}\n{USAGE}"),
        }
    }
    Ok(config)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("fake-tvmaze: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let config = parse_args(std::env::args().skip(1))?;
    let shows = config.shows;
    let fake = FakeTvMaze::start(config)?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "fake-tvmaze listening on {}", fake.base_url())?;
    stdout.flush()?;
    drop(stdout);
    eprintln!(
        "fake-tvmaze: {shows} shows, {} ids per page",
        fake.page_size()
    );
    // Report requests as they come; the server runs on its own thread.
    loop {
        std::thread::sleep(Duration::from_millis(200));
        for r in fake.take_log() {
            eprintln!(
                "fake-tvmaze: #{} {} {} -> {} ({:?}{})",
                r.seq,
                r.method,
                r.path,
                r.status,
                r.cause,
                if r.slow { ", slow" } else { "" }
            );
        }
    }
}
