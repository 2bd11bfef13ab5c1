//! The concurrent video streams API (OpenAPI tag `streams`): a user (identified by a request
//! header) may have at most `stream_limit` (default 3) streams active at once; a stream
//! is a lease that lasts `stream_lease_seconds` (default 60) after its start or last
//! heartbeat. `POST /api/v1/streams` (alias `/api/v1/stream`) starts one, `GET` lists
//! them, `POST /api/v1/streams/{id}/heartbeat` extends one, `DELETE` ends one.
//!
//! Each user's leases are one item of the `streams` table, changed only by a
//! transition ([`mutation`]) run where the item lives — inside its Durable Object on
//! Workers, one at a time; elsewhere a compare-and-swap retried against fresh state when
//! another request wrote first — so the limit is exact under any concurrency on every
//! backend, and expired leases, pruned on every write and skipped on every read,
//! need no cleanup job. [`handle`] is the whole service, platform-neutral; `spin` is
//! the Spin component entry (build with
//! `bash scripts/build-components.sh streams`), and the Worker routes
//! `/api/v1/stream` and `/api/v1/streams` here too. `cargo test -p streams` runs the
//! domain and handler tests.

mod domain;
pub mod mutation;

pub use domain::{
    IdempotencyKey, Identity, Lease, Leases, Metadata, Settings, Started, StreamId, StreamsError,
};

use http::{HeaderValue, Method, StatusCode};
use kit::{BodyLimit, Ctx, Params, Request, Response, Router};
use mutation::{Outcome, Transition};
use serde_json::json;

/// One item per user: partition = identity, sort key `""`, value [`Leases`].
pub const TABLE: &str = "streams";
/// Response header of every write: how many times this request's conditional write lost
/// to a concurrent writer and was redone on fresh state.
pub const CAS_RETRIES_HEADER: &str = "x-cas-retries";

#[derive(Debug, Clone, Copy)]
enum Route {
    List,
    Start,
    Get,
    End,
    Heartbeat,
}

fn router() -> Router<Route> {
    Router::new()
        .route(Method::GET, "/api/v1/streams", Route::List)
        .route(Method::POST, "/api/v1/streams", Route::Start)
        .route(Method::POST, "/api/v1/stream", Route::Start)
        .route(Method::GET, "/api/v1/streams/{id}", Route::Get)
        .route(Method::DELETE, "/api/v1/streams/{id}", Route::End)
        .route(
            Method::POST,
            "/api/v1/streams/{id}/heartbeat",
            Route::Heartbeat,
        )
}

/// The routes this service answers, for the OpenAPI coverage test.
pub fn routes() -> Vec<(Method, String)> {
    router().routes()
}

/// Serves one request of the streams API.
pub async fn handle(req: Request, env: &kit::Env) -> Response {
    kit::serve(req, env, "streams", BodyLimit::DEFAULT, dispatch).await
}

async fn dispatch(req: Request, ctx: Ctx<'_>) -> Result<Response, kit::ApiError> {
    let (route, params) = ctx.resolve(&router(), &req)?;
    serve_route(route, &req, &ctx, &params)
        .await
        .map_err(Into::into)
}

async fn serve_route(
    route: Route,
    req: &Request,
    ctx: &Ctx<'_>,
    params: &Params,
) -> Result<Response, StreamsError> {
    let settings = Settings::from_config(|key| ctx.env.config(key))?;
    let user = Identity::from_headers(req.headers(), &settings.identity_header)?;
    match route {
        Route::List => list(ctx, &settings, &user).await,
        Route::Start => start(req, ctx, &settings, &user).await,
        Route::Get => get(ctx, &user, params).await,
        Route::End => end(ctx, &settings, &user, params).await,
        Route::Heartbeat => heartbeat(ctx, &settings, &user, params).await,
    }
}

/// Runs `transition` on the user's leases where their item lives (one Durable Object
/// call on Workers; elsewhere a compare-and-swap retried on a lost race). Returns the
/// outcome and the races lost.
///
/// The item is never deleted, even when no lease is left: versions must only grow, or
/// a writer holding version 1 of a deleted item could overwrite a re-created one.
async fn transition(
    ctx: &Ctx<'_>,
    user: &Identity,
    transition: Transition,
) -> Result<(Outcome, u32), StreamsError> {
    let table = ctx.env.table(TABLE)?;
    let mutated = table.mutate(user.as_str(), "", &transition).await?;
    Ok((mutation::outcome(&mutated.note)?, mutated.retries))
}

async fn read(ctx: &Ctx<'_>, user: &Identity) -> Result<Leases, StreamsError> {
    let table = ctx.env.table(TABLE)?;
    match table.get(user.as_str(), "").await? {
        Some(item) => Leases::from_value(&item.value),
        None => Ok(Leases::default()),
    }
}

fn with_retries(mut response: Response, retries: u32) -> Response {
    response
        .headers_mut()
        .insert(CAS_RETRIES_HEADER, HeaderValue::from(retries));
    response
}

async fn start(
    req: &Request,
    ctx: &Ctx<'_>,
    settings: &Settings,
    user: &Identity,
) -> Result<Response, StreamsError> {
    let key = IdempotencyKey::from_headers(req.headers())?;
    let metadata = Metadata::parse(req.body())?;
    let id = StreamId::random(ctx.env.random);
    let start = Transition::start(ctx.now, settings, key.as_ref(), &metadata, &id);
    let (outcome, retries) = transition(ctx, user, start).await?;
    let (lease, replayed) = match outcome {
        Outcome::Done(lease) => (lease, false),
        Outcome::Replayed(lease) => (lease, true),
    };
    let mut response = with_retries(kit::json(StatusCode::CREATED, &lease.to_json()), retries);
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/streams/{}", lease.id)) {
        headers.insert(http::header::LOCATION, location);
    }
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

async fn list(
    ctx: &Ctx<'_>,
    settings: &Settings,
    user: &Identity,
) -> Result<Response, StreamsError> {
    let leases = read(ctx, user).await?;
    let active: Vec<_> = leases
        .active(ctx.now.timestamp_millis())
        .into_iter()
        .map(Lease::to_json)
        .collect();
    Ok(kit::json(
        StatusCode::OK,
        &json!({"limit": settings.limit, "active": active}),
    ))
}

async fn get(ctx: &Ctx<'_>, user: &Identity, params: &Params) -> Result<Response, StreamsError> {
    let id = StreamId::parse(params.get("id"))?;
    let leases = read(ctx, user).await?;
    let lease = leases
        .active(ctx.now.timestamp_millis())
        .into_iter()
        .find(|l| l.id == id.as_str())
        .ok_or(StreamsError::NotFound)?;
    Ok(kit::json(StatusCode::OK, &lease.to_json()))
}

async fn heartbeat(
    ctx: &Ctx<'_>,
    settings: &Settings,
    user: &Identity,
    params: &Params,
) -> Result<Response, StreamsError> {
    let id = StreamId::parse(params.get("id"))?;
    let heartbeat = Transition::heartbeat(ctx.now, settings, &id);
    let (Outcome::Done(lease) | Outcome::Replayed(lease), retries) =
        transition(ctx, user, heartbeat).await?;
    Ok(with_retries(
        kit::json(StatusCode::OK, &lease.to_json()),
        retries,
    ))
}

async fn end(
    ctx: &Ctx<'_>,
    settings: &Settings,
    user: &Identity,
    params: &Params,
) -> Result<Response, StreamsError> {
    let id = StreamId::parse(params.get("id"))?;
    let (_, retries) = transition(ctx, user, Transition::end(ctx.now, settings, &id)).await?;
    Ok(with_retries(kit::empty(StatusCode::NO_CONTENT), retries))
}

// The Spin component entry (wasm32-wasip2 only).
kit::spin_http_component!(crate::handle);

#[cfg(test)]
mod tests;
