//! Liveness and the catch-all: `GET /healthz` answers `{"status":"ok"}`, and any path
//! no other service claims gets the OpenAPI document's JSON 404. With the `storage-selftest`
//! feature it also serves the storage self-test (`selftest.rs`): the Spin component
//! and the test builds have it; the Worker that staging and production deploy leaves
//! it out (~30 KB of the Worker's gzipped wasm, and nothing a user calls).
//!
//! On Spin this is the component on route `/...` (build with
//! `bash scripts/build-components.sh health`); the Worker calls
//! [`handle`] for every path no other service owns.

use http::{Method, StatusCode};
use kit::{BodyLimit, Ctx, Request, Response, Router};
use serde_json::json;

#[cfg(feature = "storage-selftest")]
mod selftest;

#[derive(Debug, Clone, Copy)]
enum Route {
    Health,
    #[cfg(feature = "storage-selftest")]
    SelfTest(selftest::Route),
}

fn router() -> Router<Route> {
    let router = Router::new().route(Method::GET, "/healthz", Route::Health);
    #[cfg(feature = "storage-selftest")]
    let router = selftest::routes(router, Route::SelfTest);
    router
}

/// The routes this service answers, for the OpenAPI coverage test.
pub fn routes() -> Vec<(Method, String)> {
    router().routes()
}

/// Serves `/healthz`, the storage self-test, and the 404 of every unknown path.
pub async fn handle(req: Request, env: &kit::Env) -> Response {
    kit::serve(req, env, "health", BodyLimit::DEFAULT, dispatch).await
}

async fn dispatch(req: Request, ctx: Ctx<'_>) -> Result<Response, kit::ApiError> {
    let (route, _) = ctx.resolve(&router(), &req)?;
    match route {
        Route::Health => Ok(kit::json(StatusCode::OK, &json!({"status": "ok"}))),
        #[cfg(feature = "storage-selftest")]
        Route::SelfTest(route) => selftest::dispatch(route, &req, &ctx).await,
    }
}

// The Spin component entry (wasm32-wasip2 only).
kit::spin_http_component!(crate::handle);
