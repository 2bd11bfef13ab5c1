//! The production Cloudflare Worker: one Worker linking every endpoint crate.
//!
//! This crate is only the workers-rs glue: the fetch handler, the cron handler and the
//! `TablePartition` Durable Object class that holds strongly consistent tables; which
//! service owns a path is `edge_app::handle` (components/app), platform-neutral and
//! shared with the native test server. Build with `worker-build --release` in this
//! folder (the root `wrangler.toml` does it), run with `npx wrangler dev`. Its crate type
//! is `cdylib` alone, or cargo would link it without LTO (see `edge_app`).
//!
//! The one crate whose package name is not its folder's: `worker` is the workers-rs
//! crate's own name, which worker-build looks up in Cargo.lock, so this is `edge-worker`.

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod entry {
    use edge_app::{BINDINGS, SCRAPER_OBJECT, TTL_OBJECT, TTL_WAKE_PATH, WAKE_PATH};
    use worker::{
        durable_object, event, Context, DurableObject, Env, Request, Response, Result,
        ScheduleContext, ScheduledEvent, State,
    };

    /// The cron trigger is the watchdog of two alarm chains, each arming an alarm now
    /// if none is pending: the scraper's object (ticks paced to TvMaze's rate, each
    /// alarm with its own subrequest budget) and the sweeper's (sweeps of expired
    /// DynamoDB items, back to back until a pass over every table ends).
    #[event(scheduled)]
    async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
        for ((table, partition), path, what) in [
            (SCRAPER_OBJECT, WAKE_PATH, "the scraper"),
            (TTL_OBJECT, TTL_WAKE_PATH, "the time-to-live sweeper"),
        ] {
            if let Err(e) = kit::host::workers::call_object(&env, table, partition, path).await {
                worker::console_error!("waking {what} failed: {e}");
            }
        }
    }

    #[event(fetch)]
    async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
        let req = kit::host::workers::request(req).await?;
        let env = kit::host::workers::env(env, BINDINGS);
        kit::host::workers::response(edge_app::handle(req, &env).await)
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
            if req.path() == TTL_WAKE_PATH {
                return self.wake().await;
            }
            let body = req.bytes().await?;
            let storage = self.state.storage();
            let out = if req.path() == kit::table::workers::KV_OP_PATH {
                kit::table::workers::serve_kv_op(storage, &body).await
            } else {
                kit::table::workers::serve_partition_op(storage, &body, edge_app::mutations).await
            };
            Response::from_bytes(out)
        }

        /// The sweeper's object: one sweep, and the next alarm at once if it stopped
        /// at its budget before the end of its pass. The scraper's: a tick with this object's storage as the
        /// cursor's home (a local write, not a subrequest), then the next alarm if there
        /// is work left.
        async fn alarm(&self) -> Result<Response> {
            let storage = self.state.storage();
            let (table, partition) = TTL_OBJECT;
            if kit::host::workers::is_object(&self.env, &self.state, table, partition) {
                let env = kit::host::workers::env(self.env.clone(), BINDINGS);
                if edge_app::sweep_expired_items(&env, edge_app::WORKERS_TTL_BUDGET).await {
                    storage.set_alarm(0).await?;
                }
                return Response::ok("");
            }
            let env = kit::host::workers::object_env(
                self.env.clone(),
                BINDINGS,
                SCRAPER_OBJECT.0,
                storage,
            );
            if let Some(at) = edge_app::scraper_alarm(&env).await {
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
