//! The production Cloudflare Worker: one Worker linking every endpoint crate.
//!
//! [`app::handle`] maps a path to its service and is platform-neutral (the native test
//! server uses it too, so both answer identically); the `entry` module is the
//! workers-rs glue: the fetch handler and the `TablePartition` Durable Object class
//! that holds strongly consistent tables. Build with `worker-build --release` in this
//! folder (the root `wrangler.toml` does it), run with `npx wrangler dev`.
//!
//! The one crate whose package name is not its folder's: `worker` is the workers-rs
//! crate's own name, which worker-build looks up in Cargo.lock, so this is `edge-worker`.

pub mod app {
    use kit::{Env, Request, Response};

    /// Tables bound to Workers KV: only what a single writer writes (the scraper's show
    /// chunks), since KV's read-modify-write loses concurrent writes. Every other table
    /// — movies included, which admins write concurrently — lives in Durable Objects.
    pub const KV_TABLES: &[&str] = &[scraper::store::SHOWS_TABLE];

    /// Tables kept whole in one Durable Object: the movie graph, whose searches read
    /// many shards at once — one fetch and one storage `get` per BFS level.
    pub const ONE_OBJECT_TABLES: &[&str] = &[graph_model::TABLE];

    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    pub const BINDINGS: kit::host::workers::Bindings = kit::host::workers::Bindings {
        kv: KV_TABLES,
        one_object: ONE_OBJECT_TABLES,
    };

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
        } else if under(path, "/api/movies") {
            movies::handle(req, env).await
        } else if under(path, "/docs") {
            docs::handle(req, env).await
        } else if under(path, "/api/graph") {
            graph::handle(req, env).await
        } else if under(path, "/dynamodb") {
            dynamodb::handle(req, env).await
        } else {
            health::handle(req, env).await
        }
    }

    /// The cron trigger: one scraper tick, which writes its own log line. The next
    /// tick resumes from the saved cursor whether this one failed or not.
    pub async fn scheduled(env: &Env) -> Result<(), String> {
        let now = env.clock.now();
        scraper::tick(env, now)
            .await
            .map(|_| ())
            .map_err(|e| format!("scraper tick failed: {e}"))
    }
}

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod entry {
    use worker::{
        durable_object, event, Context, DurableObject, Env, Request, Response, Result,
        ScheduleContext, ScheduledEvent, State,
    };

    #[event(scheduled)]
    async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
        let env = kit::host::workers::env(env, super::app::BINDINGS);
        if let Err(line) = super::app::scheduled(&env).await {
            worker::console_error!("{line}");
        }
    }

    #[event(fetch)]
    async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
        let req = kit::host::workers::request(req).await?;
        let env = kit::host::workers::env(env, super::app::BINDINGS);
        kit::host::workers::response(super::app::handle(req, &env).await)
    }

    /// One object per `(table, partition)`, running that partition's table operations
    /// on its own SQLite-backed storage one at a time; or, for the tables kept in one
    /// object, the raw key-value operations the Worker's partition layer sends.
    #[durable_object(fetch)]
    pub struct TablePartition {
        state: State,
    }

    impl DurableObject for TablePartition {
        fn new(state: State, _env: Env) -> Self {
            Self { state }
        }

        async fn fetch(&self, mut req: Request) -> Result<Response> {
            let body = req.bytes().await?;
            let storage = self.state.storage();
            let out = if req.path() == kit::table::workers::KV_OP_PATH {
                kit::table::workers::serve_kv_op(storage, &body).await
            } else {
                kit::table::workers::serve_partition_op(storage, &body).await
            };
            Response::from_bytes(out)
        }
    }
}
