//! Liveness and the catch-all: `GET /healthz` answers `{"status":"ok"}`, any path no
//! other service claims gets API.md's JSON 404, and `POST /healthz/storage` (admin)
//! runs the shared table-backend suite against the deployment's own storage.
//!
//! On Spin this is the component on route `/...` (build with
//! `cargo build --release --target wasm32-wasip2 -p health`); the Worker calls
//! [`handle`] for every path no other service owns.

use http::{Method, StatusCode};
use kit::{BodyLimit, Ctx, Request, Response, Router};
use serde_json::json;

#[derive(Debug, Clone, Copy)]
enum Route {
    Health,
    StorageSuite,
}

fn router() -> Router<Route> {
    Router::new()
        .route(Method::GET, "/healthz", Route::Health)
        .route(Method::POST, "/healthz/storage", Route::StorageSuite)
}

/// The routes this service answers, for the OpenAPI coverage test.
pub fn routes() -> Vec<(Method, String)> {
    router().routes()
}

/// Serves `/healthz`, the storage self-test, and the 404 of every unknown path.
pub async fn handle(req: Request, env: &kit::Env) -> Response {
    kit::serve(req, env, BodyLimit::DEFAULT, dispatch).await
}

async fn dispatch(req: Request, ctx: Ctx<'_>) -> Result<Response, kit::ApiError> {
    let (route, _) = router().resolve(req.method(), req.uri().path())?;
    match route {
        Route::Health => Ok(kit::json(StatusCode::OK, &json!({"status": "ok"}))),
        Route::StorageSuite => storage_suite(&req, &ctx).await,
    }
}

/// Runs the backend suite on every backend the host offers, on fresh tables (a new
/// random prefix per run, so a persistent store never sees leftovers).
async fn storage_suite(req: &Request, ctx: &Ctx<'_>) -> Result<Response, kit::ApiError> {
    kit::require_admin(req, ctx.env)?;
    let mut backends = Vec::new();
    let mut passed = true;
    for backend in ctx.env.tables.backends() {
        let prefix = format!("selftest_{:016x}_", (ctx.env.random)());
        let open = |name: &str| ctx.env.tables.open_on(backend.name, name);
        let report = kit::table::suite::run_with_prefix(&open, &prefix, backend.atomic).await;
        passed &= report.all_passed();
        backends.push(json!({
            "backend": backend.name,
            "atomic": backend.atomic,
            "passed": report.all_passed(),
            "cases": report.cases,
        }));
    }
    let status = if passed {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    Ok(kit::json(
        status,
        &json!({"passed": passed, "backends": backends}),
    ))
}

// The Spin component entry (wasm32-wasip2 only).
kit::spin_http_component!(crate::handle);
