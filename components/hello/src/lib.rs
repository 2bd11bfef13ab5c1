//! The birthday API (OpenAPI tag `birthdays`): `PUT /hello/{username}` saves a date of birth,
//! `GET /hello/{username}` says how many days remain until the next birthday.
//!
//! [`handle`] is the whole service, platform-neutral; `spin` is the Spin component
//! entry (build with `bash scripts/build-components.sh hello`), and the
//! Worker routes `/hello/` here too. `cargo test -p hello` runs the domain tests.

mod domain;

pub use domain::{days_until_birthday, DateOfBirth, HelloError, Username};

use http::{Method, StatusCode};
use kit::{BodyLimit, Ctx, Params, Request, Response, Router};
use serde::Deserialize;
use serde_json::json;

/// The table of saved birthdays: partition = username, no sort key.
pub const TABLE: &str = "birthdays";

#[derive(Debug, Clone, Copy)]
enum Route {
    Get,
    Put,
}

fn router() -> Router<Route> {
    Router::new()
        .route(Method::GET, "/hello/{username}", Route::Get)
        .route(Method::PUT, "/hello/{username}", Route::Put)
}

/// The routes this service answers, for the OpenAPI coverage test.
pub fn routes() -> Vec<(Method, String)> {
    router().routes()
}

/// Serves one request of the birthday API.
pub async fn handle(req: Request, env: &kit::Env) -> Response {
    kit::serve(req, env, "hello", BodyLimit::DEFAULT, dispatch).await
}

async fn dispatch(req: Request, ctx: Ctx<'_>) -> Result<Response, kit::ApiError> {
    let (route, params) = ctx.resolve(&router(), &req)?;
    match route {
        Route::Get => get(&ctx, &params).await,
        Route::Put => put(&req, &ctx, &params).await,
    }
    .map_err(Into::into)
}

#[derive(Deserialize)]
struct PutBody {
    #[serde(rename = "dateOfBirth")]
    date_of_birth: String,
}

async fn put(req: &Request, ctx: &Ctx<'_>, params: &Params) -> Result<Response, HelloError> {
    let username = Username::parse(params.get("username"))?;
    let body: PutBody = kit::parse_json(req)?;
    let dob = DateOfBirth::parse(&body.date_of_birth, ctx.now.date_naive())?;
    let table = ctx.env.table(TABLE)?;
    table
        .put(
            username.as_str(),
            "",
            json!({"dateOfBirth": dob.to_string()}),
            kit::table::Cond::Any,
        )
        .await?;
    Ok(kit::empty(StatusCode::NO_CONTENT))
}

async fn get(ctx: &Ctx<'_>, params: &Params) -> Result<Response, HelloError> {
    let username = Username::parse(params.get("username"))?;
    let table = ctx.env.table(TABLE)?;
    let item = table
        .get(username.as_str(), "")
        .await?
        .ok_or(HelloError::UserNotFound)?;
    let stored = item
        .value
        .get("dateOfBirth")
        .and_then(|v| v.as_str())
        .ok_or(HelloError::Corrupt)?;
    let dob = DateOfBirth::from_stored(stored)?;
    let message = match days_until_birthday(dob, ctx.now.date_naive()) {
        0 => format!("Hello, {username}! Happy Birthday!"),
        n => format!("Hello, {username}! Your birthday is in {n} day(s)"),
    };
    Ok(kit::json(StatusCode::OK, &json!({ "message": message })))
}

// The Spin component entry (wasm32-wasip2 only).
kit::spin_http_component!(crate::handle);
