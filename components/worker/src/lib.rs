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

    /// The Durable Object that owns the scraper's cursor (the `scraper` table's one
    /// partition) and runs the scraper on its alarm.
    pub const SCRAPER_OBJECT: (&str, &str) = (scraper::STATE_TABLE, scraper::STATE_PARTITION);

    /// The path the cron handler posts to the scraper's object to wake it.
    pub const WAKE_PATH: &str = "/.scraper/wake";

    /// The scraper object's alarm: one paced tick (it writes its own log line), then
    /// when the next should run, if there is work left (see `scraper::chained_tick`).
    pub async fn scraper_alarm(env: &Env) -> Option<i64> {
        scraper::chained_tick(env).await
    }
}

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod entry {
    use super::app::{BINDINGS, SCRAPER_OBJECT, WAKE_PATH};
    use worker::{
        durable_object, event, Context, DurableObject, Env, Request, Response, Result,
        ScheduleContext, ScheduledEvent, State,
    };

    /// The cron trigger is the scraper's watchdog: it wakes the scraper's object, which
    /// runs ticks on its own alarm chain (paced to TvMaze's rate, each alarm with its
    /// own subrequest budget) and arms an alarm now if none is pending.
    #[event(scheduled)]
    async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
        let (table, partition) = SCRAPER_OBJECT;
        if let Err(e) = kit::host::workers::call_object(&env, table, partition, WAKE_PATH).await {
            worker::console_error!("waking the scraper failed: {e}");
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
    /// object, the raw key-value operations the Worker's partition layer sends. The
    /// scraper's object also runs the scraper on its alarm.
    // Every event: workers-rs 0.8 takes one event name or none, and this needs two.
    #[durable_object]
    pub struct TablePartition {
        state: State,
        env: Env,
    }

    impl DurableObject for TablePartition {
        fn new(state: State, env: Env) -> Self {
            Self { state, env }
        }

        async fn fetch(&self, mut req: Request) -> Result<Response> {
            if req.path() == WAKE_PATH {
                return self.wake().await;
            }
            let body = req.bytes().await?;
            let storage = self.state.storage();
            let out = if req.path() == kit::table::workers::KV_OP_PATH {
                kit::table::workers::serve_kv_op(storage, &body).await
            } else {
                kit::table::workers::serve_partition_op(storage, &body).await
            };
            Response::from_bytes(out)
        }

        /// A scraper tick with this object's storage as the cursor's home (a local
        /// write, not a subrequest), then the next alarm if there is work left.
        async fn alarm(&self) -> Result<Response> {
            let storage = self.state.storage();
            let env = kit::host::workers::object_env(
                self.env.clone(),
                BINDINGS,
                SCRAPER_OBJECT.0,
                storage,
            );
            if let Some(at) = super::app::scraper_alarm(&env).await {
                let offset = at - env.clock.now().timestamp_millis();
                self.state.storage().set_alarm(offset.max(0)).await?;
            }
            Response::ok("")
        }
    }

    impl TablePartition {
        /// Arms an alarm now unless one is pending (a running alarm's own next one, or
        /// a backoff's), so the cron never doubles the chain and always restarts it.
        async fn wake(&self) -> Result<Response> {
            let storage = self.state.storage();
            let armed = storage.get_alarm().await?.is_some();
            if !armed {
                storage.set_alarm(0).await?;
            }
            Response::ok(if armed { "already armed" } else { "armed" })
        }
    }
}
