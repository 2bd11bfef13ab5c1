//! The storage self-test (feature `storage-selftest`; all admin): `POST /healthz/storage`
//! runs the shared table-backend suite against the deployment's own storage, and
//! `POST /healthz/storage/race` and `…/race/check` let a test race many requests — on
//! Spin, many component instances — on one fresh key and check the result. Every table
//! it touches is under the `selftest_` prefix, so it never reaches a service's data.

use http::{Method, StatusCode};
use kit::table::suite::{self, Race};
use kit::{Ctx, Request, Response, Router};
use serde_json::json;

#[derive(Debug, Clone, Copy)]
pub enum Route {
    Suite,
    RaceWrite,
    RaceCheck,
}

/// Adds the self-test's routes to `router`, each wrapped by `wrap`.
pub(crate) fn routes<R: Copy>(router: Router<R>, wrap: fn(Route) -> R) -> Router<R> {
    router
        .route(Method::POST, "/healthz/storage", wrap(Route::Suite))
        .route(
            Method::POST,
            "/healthz/storage/race",
            wrap(Route::RaceWrite),
        )
        .route(
            Method::POST,
            "/healthz/storage/race/check",
            wrap(Route::RaceCheck),
        )
}

pub(crate) async fn dispatch(
    route: Route,
    req: &Request,
    ctx: &Ctx<'_>,
) -> Result<Response, kit::ApiError> {
    kit::require_admin(req, ctx.env)?;
    match route {
        Route::Suite => storage_suite(req, ctx).await,
        Route::RaceWrite => race_write(req, ctx).await,
        Route::RaceCheck => race_check(req, ctx).await,
    }
}

/// Which part of the self-test one request runs (body of `POST /healthz/storage`).
#[derive(Debug, Default, serde::Deserialize)]
struct SuitePart {
    /// A backend of [`kit::Tables::backends`], or `move` for the move from whole
    /// partitions into items; absent, every part in one request. Spin needs one request
    /// per part: an instance may open 256 compare-and-swaps, and each part takes ~100.
    part: Option<String>,
    /// Which of the backend's cases (default: all); on Spin its concurrency cases need
    /// a request of their own.
    #[serde(default)]
    cases: suite::Cases,
}

/// Runs the backend suite on every backend the host offers (or the one asked for), on
/// fresh tables (a new random prefix per run, so a persistent store never sees
/// leftovers), and the move from the layout of whole partitions where the host has one.
async fn storage_suite(req: &kit::Request, ctx: &Ctx<'_>) -> Result<Response, kit::ApiError> {
    let SuitePart { part, cases } = if req.body().is_empty() {
        SuitePart::default()
    } else {
        kit::json::from_bytes(req.body()).map_err(|e| kit::ApiError::invalid_body(e.to_string()))?
    };
    let runs = |name: &str| part.as_deref().is_none_or(|p| p == name);
    let mut backends = Vec::new();
    let mut passed = true;
    for backend in ctx.env.tables.backends() {
        if !runs(backend.name) {
            continue;
        }
        let prefix = format!("selftest_{:016x}_", (ctx.env.random)());
        let open = |name: &str| ctx.env.tables.open_on(backend.name, name);
        let report = kit::table::suite::run_with_prefix(&open, &prefix, backend, cases).await;
        passed &= report.all_passed();
        backends.push(json!({
            "backend": backend.name,
            "atomic": backend.atomic,
            "whole_partitions": backend.whole_partitions,
            "passed": report.all_passed(),
            "cases": report.cases,
        }));
    }
    for (whole, items) in ctx
        .env
        .tables
        .layout_moves()
        .into_iter()
        .filter(|_| runs("move"))
    {
        let prefix = format!("selftest_{:016x}_move", (ctx.env.random)());
        let failure = match (
            ctx.env.tables.open_on(whole, &prefix),
            ctx.env.tables.open_on(items, &prefix),
        ) {
            (Ok(old), Ok(new)) => {
                kit::table::suite::whole_partitions_move_into_items(old.as_ref(), new.as_ref())
                    .await
                    .err()
            }
            (Err(e), _) | (_, Err(e)) => Some(e.to_string()),
        };
        passed &= failure.is_none();
        backends.push(json!({
            "backend": format!("{whole} -> {items}"),
            "passed": failure.is_none(),
            "cases": [{"name": "whole_partitions_move_into_items", "failure": failure}],
        }));
    }
    if backends.is_empty() {
        return Err(kit::ApiError::invalid_body("no such part of the self-test"));
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

/// One racing writer's body. Which table a race runs on is always under the
/// `selftest_race_` prefix, so a race can never touch a service's data. (The table's
/// fields are spelled out in both bodies: `#[serde(flatten)]` would read each body
/// through serde's generic buffering, whose code is a large share of the wasm.)
#[derive(Debug, serde::Deserialize)]
struct RaceWrite {
    /// A backend of [`kit::Tables::backends`]; default: the first atomic one.
    backend: Option<String>,
    /// 1–64 of `[a-z0-9_]`, appended to the prefix.
    table: String,
    race: Race,
    writer: u32,
}

/// The body of a race's check: the table as in [`RaceWrite`].
#[derive(Debug, serde::Deserialize)]
struct RaceCheck {
    backend: Option<String>,
    table: String,
    race: Race,
    /// What each writer's race call answered, by writer.
    won: Vec<Vec<u32>>,
}

fn open_race_table(
    ctx: &Ctx<'_>,
    backend: Option<&str>,
    table: &str,
) -> Result<std::rc::Rc<dyn kit::table::Table>, kit::ApiError> {
    let valid = (1..=64).contains(&table.len())
        && table
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        return Err(kit::ApiError::invalid_body(
            "table must be 1-64 of [a-z0-9_]",
        ));
    }
    let backends = ctx.env.tables.backends();
    let backend = match backend {
        Some(name) => backends.iter().find(|b| b.name == name),
        None => backends.iter().find(|b| b.atomic),
    }
    .ok_or_else(|| kit::ApiError::invalid_body("no such backend"))?;
    let name = format!("selftest_race_{table}");
    Ok(ctx.env.tables.open_on(backend.name, &name)?)
}

/// One racing writer: `{"won": [partition, ...]}`, where its conditional write won.
async fn race_write(req: &Request, ctx: &Ctx<'_>) -> Result<Response, kit::ApiError> {
    let body: RaceWrite = kit::parse_json(req)?;
    let table = open_race_table(ctx, body.backend.as_deref(), &body.table)?;
    let won = suite::race_write(table.as_ref(), body.race, body.writer, suite::RACE_KEYS)
        .await
        .map_err(kit::ApiError::internal)?;
    Ok(kit::json(StatusCode::OK, &json!({ "won": won })))
}

/// After a race: 200 `{"passed": true}`, or 500 with `failure` saying what broke.
async fn race_check(req: &Request, ctx: &Ctx<'_>) -> Result<Response, kit::ApiError> {
    let body: RaceCheck = kit::parse_json(req)?;
    let table = open_race_table(ctx, body.backend.as_deref(), &body.table)?;
    Ok(
        match suite::race_check(table.as_ref(), body.race, suite::RACE_KEYS, &body.won).await {
            Ok(()) => kit::json(StatusCode::OK, &json!({"passed": true})),
            Err(failure) => kit::json(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"passed": false, "failure": failure}),
            ),
        },
    )
}
