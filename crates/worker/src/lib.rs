//! The production Cloudflare Worker: one Worker linking every endpoint crate.
//!
//! This crate is only the workers-rs glue: the fetch handler, the cron handler and the
//! `TablePartition` Durable Object class that holds strongly consistent tables; which
//! service owns a path is `edge_app::handle` (crates/app), platform-neutral and
//! shared with the native test server. Build with `worker-build --release` in this
//! folder (the root `wrangler.toml` does it), run with `npx wrangler dev`. Its crate type
//! is `cdylib` alone, or cargo would link it without LTO (see `edge_app`).
//!
//! The one crate whose package name is not its folder's: `worker` is the workers-rs
//! crate's own name, which worker-build looks up in Cargo.lock, so this is `edge-worker`.

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod entry {
    use edge_app::{SCRAPER_OBJECT, TTL_OBJECT, WORKERS_TTL_BUDGET};
    use kit::host::workers::{self as wing, Alarm, Bindings, WorkerApp};
    use worker::{
        durable_object, event, Context, DurableObject, Env, Request, Response, Result,
        ScheduleContext, ScheduledEvent, State,
    };

    /// The deployment: every service (`edge_app`), its tables' bindings and the two
    /// alarm chains.
    struct Edge;

    /// The scraper's object: ticks paced to TvMaze's rate, each alarm with its own
    /// subrequest budget, the cursor in the object's own storage (a local write, not a
    /// subrequest).
    const SCRAPER: Alarm = Alarm {
        name: "the scraper",
        table: SCRAPER_OBJECT.0,
        partition: SCRAPER_OBJECT.1,
        local: true,
    };

    /// The sweeper's object: sweeps of expired DynamoDB items, back to back until a
    /// pass over every table ends.
    const SWEEPER: Alarm = Alarm {
        name: "the time-to-live sweeper",
        table: TTL_OBJECT.0,
        partition: TTL_OBJECT.1,
        local: false,
    };

    impl WorkerApp for Edge {
        const BINDINGS: Bindings = Bindings {
            kv: edge_app::KV_TABLES,
            one_object: edge_app::ONE_OBJECT_TABLES,
        };
        const ALARMS: &'static [Alarm] = &[SCRAPER, SWEEPER];

        fn mutations(kind: &str, args: serde_json::Value) -> Option<Box<dyn kit::table::Mutation>> {
            edge_app::mutations(kind, args)
        }

        async fn handle(req: kit::Request, env: &kit::Env) -> kit::Response {
            edge_app::handle(req, env).await
        }

        async fn run_alarm(alarm: &Alarm, env: &kit::Env) -> Option<i64> {
            if alarm.table == SWEEPER.table {
                let more = edge_app::sweep_expired_items(env, WORKERS_TTL_BUDGET).await;
                more.then(|| env.clock.now().timestamp_millis())
            } else {
                edge_app::scraper_alarm(env).await
            }
        }
    }

    #[event(scheduled)]
    async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
        wing::scheduled::<Edge>(&env).await
    }

    #[event(fetch)]
    async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
        wing::fetch::<Edge>(req, env).await
    }

    /// One object per `(table, partition)`, running that partition's table operations
    /// on its own SQLite-backed storage one at a time; the alarm objects also run their
    /// jobs. Both events are the wing's.
    #[durable_object]
    pub struct TablePartition {
        state: State,
        env: Env,
    }

    impl DurableObject for TablePartition {
        fn new(state: State, env: Env) -> Self {
            Self { state, env }
        }

        async fn fetch(&self, req: Request) -> Result<Response> {
            wing::object_fetch::<Edge>(&self.state, req).await
        }

        async fn alarm(&self) -> Result<Response> {
            wing::object_alarm::<Edge>(&self.state, &self.env).await
        }
    }
}
