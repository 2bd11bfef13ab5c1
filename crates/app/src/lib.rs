//! The deployment's router: which service crate owns a path, shared by the Worker
//! (`crates/worker`) and the native test host, so both answer identically; Spin
//! routes the same prefixes to the same crates through `spin.toml`. Also the Worker's
//! table bindings and the scraper's Durable Object, named here so that the native host
//! and the Worker agree on them. `cargo test -p conformance` runs it natively.
//!
//! A crate apart from the Worker's entry, which must be a `cdylib` alone: cargo passes no
//! `-C lto` to a crate built as `cdylib` and `rlib` together, and the Worker linked
//! without LTO was 1,247,170 bytes raw, 493,815 gzip, against 1,094,558 and 442,363 with
//! it (2026-12-03). The native host needs this router as a library.

use kit::{Env, Request, Response};

/// Tables bound to Workers KV: only what a single writer writes (the scraper's show
/// chunks), since KV's read-modify-write loses concurrent writes. Every other table
/// — movies included, which admins write concurrently — lives in Durable Objects.
pub const KV_TABLES: &[&str] = &[tvmaze_scraper::store::SHOWS_TABLE];

/// Tables kept whole in one Durable Object: the movie graph, whose searches read
/// many shards at once — one fetch and one storage `get` per BFS level.
pub const ONE_OBJECT_TABLES: &[&str] = &[graph_model::TABLE];

/// What one time-to-live sweep (`dynamodb::ttl`) reads on Workers, in one alarm of the
/// sweeper's object: each partition visited is a Durable Object call or two, and an
/// alarm on the free plan may make 50 subrequests. The alarms follow one another until
/// a pass over every table ends; the next cron event starts the next pass.
pub const WORKERS_TTL_BUDGET: dynamodb::ttl::Budget = dynamodb::ttl::Budget {
    items: 1_000,
    partitions: 20,
};

/// The Durable Object whose alarm chain sweeps expired DynamoDB items on Workers (one
/// object: sweeps never overlap).
pub const TTL_OBJECT: (&str, &str) = ("dynamodb_ttl", "sweeper");

/// One sweep of expired DynamoDB items within `budget`: what the hosts' schedulers run
/// (the sweeper object's alarm on Workers, the native test host's cron hook; Spin's own
/// cron component calls the sweep itself). Returns whether the sweep stopped at its
/// budget before the end of its pass, so that the next should follow at once.
pub async fn sweep_expired_items(env: &Env, budget: dynamodb::ttl::Budget) -> bool {
    // The sweep writes its own log line, failure included.
    match dynamodb::ttl::sweep(env, budget).await {
        Ok(swept) => swept.more,
        Err(_) => false,
    }
}

/// Rebuilds any service's shipped table mutation (`kind` is `<service>.<name>`): what
/// the Worker's Durable Objects run next to their items.
pub fn mutations(kind: &str, args: serde_json::Value) -> Option<Box<dyn kit::table::Mutation>> {
    match kind.split_once('.').map(|(service, _)| service) {
        Some("dynamodb") => dynamodb::mutation::mutations(kind, args),
        Some("streams") => streams::mutation::mutations(kind, args),
        Some("graph") => graph::mutations(kind, args),
        _ => None,
    }
}

/// Whether `path` is `prefix` or below it (`/hello`, `/hello/x`, not `/helloo`).
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Routes a request to the service that owns its path; everything unclaimed goes to
/// `health`, which serves `/healthz` and the JSON 404. Spin routes the same prefixes
/// to the same crates through `spin.toml`.
pub async fn handle(req: Request, env: &Env) -> Response {
    let path = req.uri().path();
    if under(path, "/hello") {
        hello::handle(req, env).await
    } else if under(path, "/api/shows") {
        shows::handle(req, env).await
    } else if under(path, "/api/v1/stream") || under(path, "/api/v1/streams") {
        streams::handle(req, env).await
    } else if path == docs::OPENAPI_ROUTE || under(path, "/docs") {
        docs::handle(req, env).await
    } else if under(path, "/api/movies") {
        movies::handle(req, env).await
    } else if under(path, "/api/graph") {
        graph::handle(req, env).await
    } else if under(path, "/dynamodb") {
        dynamodb::handle(req, env).await
    } else {
        health::handle(req, env).await
    }
}

/// The Durable Object that owns the scraper's cursor (the `scraper` table's one
/// partition) and runs the scraper on its alarm.
pub const SCRAPER_OBJECT: (&str, &str) =
    (tvmaze_scraper::STATE_TABLE, tvmaze_scraper::STATE_PARTITION);

/// The scraper object's alarm: one paced tick (it writes its own log line), then
/// when the next should run, if there is work left (see `tvmaze_scraper::chained_tick`).
pub async fn scraper_alarm(env: &Env) -> Option<i64> {
    tvmaze_scraper::chained_tick(env).await
}
