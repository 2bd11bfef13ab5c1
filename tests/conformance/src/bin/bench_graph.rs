//! Benchmark of the movie graph (OpenAPI tag `graph`).
//!
//! 1. On every host, on the sample `moviedata.json`: requests/s and p50/p99 of
//!    `GET /api/graph/path` over seeded random pairs, next to the host's storage-free
//!    `GET /healthz` measured in the same run, and per query the batched reads,
//!    nodes read and storage round trips (`x-storage-round-trips`).
//! 2. In process (native, the memory backend behind a byte-counting key-value
//!    store), the sample and a generated graph 100× its size (460,900 movies, ~740,000
//!    people, 100 renamed copies of the sample with 5% of each cast drawn from another
//!    copy, so the copies form one graph): path latency, reads, nodes and bytes read
//!    per query, and bound hits, at two shard sizes; and the cost of importing the
//!    sample into the graph.
//! 3. The generated graph on the Spin-compatible host (its store written directly in
//!    the Spin backend's layout): answers against the in-process search, latency,
//!    reads, round trips and bytes per query, and throughput next to `/healthz`.
//!
//! Build first (`make components worker spin-host`), then
//! `cargo run --release -p conformance --features bench --bin bench_graph`. Knobs: `BENCH_HOSTS`,
//! `BENCH_REQUESTS` (default 1000), `BENCH_SECONDS`, `BENCH_CONCURRENCY` (default 8),
//! `BENCH_PAIRS` (default 200), `BENCH_SCALE` (default 100), `BENCH_HTTP_PAIRS` (pairs
//! of the generated graph asked over HTTP one at a time, default 50),
//! `BENCH_GRAPH_SHARDS` (the generated graph's shard counts as multiples of 32 × scale,
//! default `1,8,32`).

use anyhow::{Context, Result};
use async_trait::async_trait;
use conformance::{bench, Host};
use graph_model::{build_shards, find_path, Bound, Cast, Graph, MovieRef, PathOutcome};
use kit::table::memory::MemoryKv;
use kit::table::{PagedTable, RawKv, StoreError, Token};
use reqwest::Method;
use serde_json::Value;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// SplitMix64: the same pairs on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn casts(items: &[Value]) -> Vec<(MovieRef, Cast)> {
    let names = |info: &Value, f: &str| -> Vec<String> {
        info[f]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    items
        .iter()
        .filter_map(|i| {
            let movie = MovieRef {
                year: u16::try_from(i["year"].as_u64()?).ok()?,
                title: i["title"].as_str()?.to_owned(),
            };
            let cast = Cast {
                actors: names(&i["info"], "actors"),
                directors: names(&i["info"], "directors"),
            };
            Some((movie, cast))
        })
        .collect()
}

/// `scale` renamed copies of the sample; each person of a cast is, with 5% chance,
/// the same person of another copy, which ties the copies into one graph.
fn scaled(sample: &[(MovieRef, Cast)], scale: usize, rng: &mut Rng) -> Vec<(MovieRef, Cast)> {
    let mut out = Vec::with_capacity(sample.len() * scale);
    for k in 0..scale {
        for (movie, cast) in sample {
            let mut rename = |p: &String| {
                let copy = if scale > 1 && rng.below(20) == 0 {
                    (k + 1 + rng.below(scale - 1)) % scale
                } else {
                    k
                };
                format!("{p} #{copy}")
            };
            let cast = Cast {
                actors: cast.actors.iter().map(&mut rename).collect(),
                directors: cast.directors.iter().map(&mut rename).collect(),
            };
            let movie = MovieRef {
                year: movie.year,
                title: format!("{} #{k}", movie.title),
            };
            out.push((movie, cast));
        }
    }
    out
}

/// The memory store, counting the bytes its reads return.
#[derive(Clone, Default)]
struct Counting {
    kv: MemoryKv,
    bytes: Arc<AtomicU64>,
}

#[async_trait(?Send)]
impl RawKv for Counting {
    async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let v = self.kv.read(key).await?;
        self.count(v.iter());
        Ok(v)
    }

    async fn read_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let v = self.kv.read_many(keys).await?;
        self.count(v.iter().flatten());
        Ok(v)
    }

    async fn load(&self, key: &str) -> Result<(Option<Vec<u8>>, Token), StoreError> {
        self.kv.load(key).await
    }

    async fn swap(&self, key: &str, token: Token, value: Vec<u8>) -> Result<bool, StoreError> {
        self.kv.swap(key, token, value).await
    }

    async fn write(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        self.kv.write(key, value).await
    }
}

impl Counting {
    fn count<'a>(&self, values: impl Iterator<Item = &'a Vec<u8>>) {
        let n: usize = values.map(Vec::len).sum();
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn spread(label: &str, mut v: Vec<f64>, unit: &str) {
    v.sort_by(|a, b| a.total_cmp(b));
    println!(
        "    {label:<22} p50 {:>10.1} p90 {:>10.1} max {:>10.1} {unit}",
        pct(&v, 0.5),
        pct(&v, 0.9),
        pct(&v, 1.0)
    );
}

/// A graph loaded in process, with what a Spin store needs to hold the same.
struct Loaded {
    kv: Counting,
    graph: Graph,
    table: Rc<PagedTable>,
    shards: Vec<String>,
}

/// Loads `movies` into a fresh graph of `shards` shards in one write per shard.
fn load(movies: &[(MovieRef, Cast)], shards: u32) -> Result<Loaded> {
    let kv = Counting::default();
    let table = Rc::new(PagedTable::new(
        kv.clone(),
        graph_model::TABLE,
        kit::host::os_random,
    ));
    let graph = Graph::with_table(table.clone(), shards);
    let built = build_shards(&graph, movies, &HashMap::new())?;
    let mut names = Vec::with_capacity(built.len());
    for (shard, items) in built {
        futures::executor::block_on(kit::table::Table::put_partition(
            table.as_ref(),
            &shard,
            items,
        ))?;
        names.push(shard);
    }
    Ok(Loaded {
        kv,
        graph,
        table,
        shards: names,
    })
}

impl Loaded {
    /// The graph as rows of a Spin store: every key the paged layout wrote (each
    /// shard's own value — whole, a directory or an index — and its pages), each
    /// committed by its first creator, the state the Spin backend leaves every key in.
    fn spin_rows(&self) -> Result<Vec<(String, Vec<u8>)>> {
        for shard in &self.shards {
            let key = self.table.storage_key(shard);
            futures::executor::block_on(self.kv.kv.read(&key))?
                .with_context(|| format!("shard {key} was not written"))?;
        }
        Ok(self
            .kv
            .kv
            .snapshot()
            .into_iter()
            .flat_map(|(key, bytes)| kit::table::spin_keys::committed_partition(&key, &bytes))
            .collect())
    }
}

/// How one path query ended, to compare hosts with the in-process search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Found(usize),
    NoPath,
    BoundHit,
    Other,
}

/// In-process path queries over `pairs`: latency, reads, nodes, bytes, outcomes.
fn in_process(label: &str, loaded: &Loaded, pairs: &[(String, String)]) -> Result<Vec<Answer>> {
    let (kv, graph) = (&loaded.kv, &loaded.graph);
    let mut answers = Vec::with_capacity(pairs.len());
    let (mut ms, mut reads, mut nodes, mut bytes, mut degrees) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut found, mut none, mut bound) = (0, 0, 0);
    let started = Instant::now();
    for (from, to) in pairs {
        let before = kv.bytes.load(Ordering::Relaxed);
        let t = Instant::now();
        let (outcome, stats) =
            futures::executor::block_on(find_path(graph, from, to, Bound::default()))?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        reads.push(stats.reads as f64);
        nodes.push(stats.nodes as f64);
        bytes.push((kv.bytes.load(Ordering::Relaxed) - before) as f64 / 1024.0);
        answers.push(match outcome {
            PathOutcome::Found(steps) => {
                found += 1;
                degrees.push((steps.len() / 2) as f64);
                Answer::Found(steps.len() / 2)
            }
            PathOutcome::BoundHit => {
                bound += 1;
                Answer::BoundHit
            }
            PathOutcome::NoPath => {
                none += 1;
                Answer::NoPath
            }
            PathOutcome::UnknownActor(_) => Answer::Other,
        });
    }
    let rate = pairs.len() as f64 / started.elapsed().as_secs_f64();
    println!(
        "\n  {label}: {} pairs, {found} found, {none} unconnected, {bound} hit the bound ({} nodes / {} reads); {rate:.0} queries/s on one thread",
        pairs.len(),
        Bound::default().max_nodes,
        Bound::default().max_reads
    );
    spread("latency", ms, "ms");
    spread("degrees (found)", degrees, "");
    spread("batched reads", reads, "");
    spread("nodes read", nodes, "");
    spread("bytes read", bytes, "KiB");
    Ok(answers)
}

/// The path of a path query.
fn path_query((from, to): &(String, String)) -> String {
    format!(
        "/api/graph/path?from={}&to={}",
        conformance::encode_segment(from),
        conformance::encode_segment(to)
    )
}

/// The generated graph on the Spin-compatible host. Importing it through the API is
/// not possible there (an import rewrites every shard, past Spin's 256
/// compare-and-swaps per request), so its shards are written straight into the host's
/// store in the Spin backend's layout; then the same pairs over HTTP, one at a time
/// (answers checked against the in-process search; latency, reads, round trips and
/// bytes the host's store returned, per query), then a closed-loop load next to the
/// host's `/healthz`.
fn on_spin_host(
    runtime: &tokio::runtime::Runtime,
    loaded: &Loaded,
    pairs: &[(String, String)],
    expected: &[Answer],
) -> Result<()> {
    if !bench::hosts().contains(&Host::SpinHost) {
        return Ok(());
    }
    let t = Instant::now();
    let state = tempfile::tempdir()?;
    {
        let stores = spin_host::kv::KvStores::new(state.path(), Vec::<String>::new())?;
        let store = stores
            .open("default")?
            .context("spin-host has no default store")?;
        store.set_many(loaded.spin_rows()?)?;
    }
    let vars = vec![
        ("admin_token".to_owned(), "bench".to_owned()),
        ("storage_stats_header".to_owned(), "true".to_owned()),
        ("graph_shards".to_owned(), loaded.graph.shards().to_string()),
    ];
    let running = conformance::start_spin_host_in(&vars, state)?;
    println!(
        "\n  the same graph on {} (store written in {:.1} s):",
        running.describe(),
        t.elapsed().as_secs_f64()
    );
    let api = conformance::Api::new(&running.base, "bench")?;
    let n = bench::env_number("BENCH_HTTP_PAIRS", 50).min(pairs.len());
    runtime.block_on(async {
        let (mut ms, mut reads, mut trips, mut bytes) = (vec![], vec![], vec![], vec![]);
        let mut differ = 0;
        for (pair, want) in pairs.iter().zip(expected).take(n) {
            let before = bench::kv_read_bytes(&api, "graph").await?;
            let t = Instant::now();
            let reply = api.get(&path_query(pair), &[]).await?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            let after = bench::kv_read_bytes(&api, "graph").await?;
            bytes.push((after - before) as f64 / 1024.0);
            trips.push(
                reply
                    .header("x-storage-round-trips")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN),
            );
            let json = reply.json()?;
            let got = match (reply.status, json["error"]["code"].as_str()) {
                (200, _) => {
                    reads.push(json["search"]["reads"].as_f64().unwrap_or(f64::NAN));
                    Answer::Found(json["degrees"].as_u64().unwrap_or(u64::MAX) as usize)
                }
                (404, Some("no_path")) => Answer::NoPath,
                (422, Some("search_too_large")) => Answer::BoundHit,
                _ => Answer::Other,
            };
            if got != *want {
                differ += 1;
                println!("    {pair:?}: spin-host {got:?}, in process {want:?}");
            }
        }
        println!("    {n} pairs one at a time, {differ} answered unlike the in-process search");
        spread("latency", ms, "ms");
        spread("batched reads (found)", reads, "");
        spread("storage round trips", trips, "");
        spread("bytes read", bytes, "KiB");
        let paths = Arc::new(pairs.iter().take(n).map(path_query).collect::<Vec<_>>());
        let health = Arc::new(vec!["/healthz".to_owned()]);
        let results = vec![
            bench::measure_gets(Host::SpinHost, &api, "GET /healthz", health, 1000).await?,
            bench::measure_gets(Host::SpinHost, &api, "GET /api/graph/path", paths, 200).await?,
        ];
        bench::print_table(
            &format!(
                "path queries on the generated graph, {} shards, spin-host (non-200 answers count as errors)",
                loaded.graph.shards()
            ),
            &results,
        );
        println!(
            "  spin-host path/healthz throughput ratio {:.4}",
            results[1].per_second / results[0].per_second
        );
        Ok(())
    })
}

/// What one host's path queries cost, per answered query.
struct HostCosts {
    host: Host,
    reads: Vec<f64>,
    nodes: Vec<f64>,
    trips: Vec<f64>,
    import_trips: usize,
}

fn pairs(movies: &[(MovieRef, Cast)], n: usize, rng: &mut Rng) -> Vec<(String, String)> {
    let people: Vec<&String> = movies.iter().flat_map(|(_, c)| c.actors.iter()).collect();
    (0..n)
        .map(|_| {
            (
                people[rng.below(people.len())].clone(),
                people[rng.below(people.len())].clone(),
            )
        })
        .collect()
}

fn main() -> Result<()> {
    let file = conformance::root().join("../shared/data/moviedata.json");
    let body = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let items: Vec<Value> = serde_json::from_slice(&body)?;
    let sample = casts(&items);
    let n_pairs = bench::env_number("BENCH_PAIRS", 200);
    let mut rng = Rng(2026);
    let sample_pairs = pairs(&sample, n_pairs, &mut rng);
    let paths: Arc<Vec<String>> = Arc::new(sample_pairs.iter().map(path_query).collect());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let vars = vec![
        ("admin_token".to_owned(), "bench".to_owned()),
        ("storage_stats_header".to_owned(), "true".to_owned()),
    ];
    let mut results = Vec::new();
    let mut costs: Vec<HostCosts> = Vec::new();
    bench::on_each_host(&vars, |host, api| {
        runtime.block_on(async {
            let auth = format!("Bearer {}", api.admin_token);
            let reply = api
                .send(
                    Method::POST,
                    "/api/movies/import",
                    &[("authorization", &auth)],
                    Some(body.clone()),
                )
                .await?;
            anyhow::ensure!(reply.status == 200, "import: {}", reply.status);
            let import_trips: usize = reply
                .header("x-storage-round-trips")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let (mut reads, mut nodes, mut trips) = (vec![], vec![], vec![]);
            for path in paths.iter() {
                let reply = api.get(path, &[]).await?;
                if reply.status == 200 {
                    let json = reply.json()?;
                    reads.push(json["search"]["reads"].as_f64().unwrap_or(0.0));
                    nodes.push(json["search"]["nodes"].as_f64().unwrap_or(0.0));
                    trips.push(
                        reply
                            .header("x-storage-round-trips")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0.0),
                    );
                }
            }
            costs.push(HostCosts {
                host,
                reads,
                nodes,
                trips,
                import_trips,
            });
            let health = Arc::new(vec!["/healthz".to_owned()]);
            results.push(bench::measure_gets(host, &api, "GET /healthz", health, 1000).await?);
            results.push(
                bench::measure_gets(host, &api, "GET /api/graph/path", paths.clone(), 1000).await?,
            );
            Ok(())
        })
    })?;
    bench::print_table(
        "path queries on the sample (seeded pairs; 404 no_path counts as an error)",
        &results,
    );
    for r in results
        .iter()
        .filter(|r| r.endpoint == "GET /api/graph/path")
    {
        if let Some(h) = results
            .iter()
            .find(|h| h.host == r.host && h.endpoint == "GET /healthz")
        {
            println!(
                "  {:<10} path/healthz throughput ratio {:.3}",
                r.host.name(),
                r.per_second / h.per_second
            );
        }
    }
    println!("\nper path query over HTTP (answered pairs):");
    for c in costs {
        println!(
            "  {} (sample import: {} storage round trips)",
            c.host.name(),
            c.import_trips
        );
        spread("batched reads", c.reads, "");
        spread("nodes read", c.nodes, "");
        spread("storage round trips", c.trips, "");
    }

    println!("\nin process (native, memory backend):");
    let cost_kv = Counting::default();
    let table = Rc::new(PagedTable::new(
        cost_kv.clone(),
        graph_model::TABLE,
        kit::host::os_random,
    ));
    let graph = Graph::with_table(table, graph_model::DEFAULT_SHARDS);
    let changes: Vec<(MovieRef, Option<Cast>)> = sample
        .iter()
        .map(|(m, c)| (m.clone(), Some(c.clone())))
        .collect();
    let t = Instant::now();
    let stats = futures::executor::block_on(graph_model::apply(&graph, &changes))?;
    println!(
        "  importing the sample into an empty graph: {} movie nodes, {} person nodes, {} shard writes ({:.3} per movie) in {:.0} ms",
        stats.movie_nodes,
        stats.person_nodes,
        stats.shard_writes,
        stats.shard_writes as f64 / sample.len() as f64,
        t.elapsed().as_secs_f64() * 1000.0
    );
    let one = vec![(
        MovieRef {
            year: 2013,
            title: "Rush".into(),
        },
        Some(Cast {
            actors: vec!["New Face".into()],
            directors: vec![],
        }),
    )];
    let stats = futures::executor::block_on(graph_model::apply(&graph, &one))?;
    println!(
        "  re-casting one movie: {} movie node, {} person nodes, {} shard writes",
        stats.movie_nodes, stats.person_nodes, stats.shard_writes
    );

    let loaded = load(&sample, graph_model::DEFAULT_SHARDS)?;
    in_process(
        &format!("sample, {} shards", loaded.graph.shards()),
        &loaded,
        &sample_pairs,
    )?;
    drop(loaded);
    let scale = bench::env_number("BENCH_SCALE", 100);
    let big = scaled(&sample, scale, &mut rng);
    let big_pairs = pairs(&big, n_pairs, &mut rng);
    // The deployment's shard count grown with the graph, then 8x and 32x as many
    // (smaller) shards: a node is read with its page (≤ 32 KB) or its whole shard
    // while that is smaller, so bytes per query follow page and shard size.
    // `BENCH_GRAPH_SHARDS` (multiples of the base, comma-separated) picks others.
    let base = graph_model::DEFAULT_SHARDS * u32::try_from(scale).unwrap_or(100);
    let multiples: Vec<u32> = std::env::var("BENCH_GRAPH_SHARDS")
        .unwrap_or_else(|_| "1,8,32".to_owned())
        .split(',')
        .map(|m| {
            m.trim()
                .parse()
                .context("BENCH_GRAPH_SHARDS: numbers, comma-separated")
        })
        .collect::<Result<_>>()?;
    for shards in multiples.into_iter().map(|m| base * m) {
        let t = Instant::now();
        let loaded = load(&big, shards)?;
        println!(
            "\n  generated {scale}x graph: {} movies, loaded into {shards} shards in {:.1} s",
            big.len(),
            t.elapsed().as_secs_f64()
        );
        let answers = in_process(
            &format!("{scale}x sample, {shards} shards"),
            &loaded,
            &big_pairs,
        )?;
        on_spin_host(&runtime, &loaded, &big_pairs, &answers)?;
    }
    Ok(())
}
