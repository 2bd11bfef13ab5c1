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

    /// Tables bound to Workers KV (read-mostly); every other table lives in Durable
    /// Objects.
    pub const KV_TABLES: &[&str] = &[];

    /// Routes a request to the service that owns its path; everything unclaimed goes to
    /// `health`, which serves `/healthz` and the JSON 404.
    pub async fn handle(req: Request, env: &Env) -> Response {
        let path = req.uri().path();
        if path == "/hello" || path.starts_with("/hello/") {
            hello::handle(req, env).await
        } else {
            health::handle(req, env).await
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod entry {
    use worker::{
        durable_object, event, Context, DurableObject, Env, Request, Response, Result, State,
    };

    #[event(fetch)]
    async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
        let req = kit::host::workers::request(req).await?;
        let env = kit::host::workers::env(env, super::app::KV_TABLES);
        kit::host::workers::response(super::app::handle(req, &env).await)
    }

    /// One object per `(table, partition)`: runs that partition's table operations on
    /// its own SQLite-backed storage, one at a time.
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
            let out = kit::table::workers::serve_partition_op(self.state.storage(), &body).await;
            Response::from_bytes(out)
        }
    }
}
