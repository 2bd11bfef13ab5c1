//! The DynamoDB-compatible API (OpenAPI tag `dynamodb`): DynamoDB's JSON 1.0 protocol at
//! `POST /dynamodb` over the table layer, so that boto3 and the aws CLI work against the
//! edge deployment's own tables.
//!
//! [`handle`] is the whole service, platform-neutral; `spin` is the Spin component
//! entry (build with `bash scripts/build-components.sh dynamodb`), and
//! the Worker routes `/dynamodb` here too. `cargo test -p dynamodb` runs the unit tests
//! and the AWS SigV4 test vectors.
//!
//! Served so far: SigV4 authentication ([`sigv4`]), DynamoDB's attribute values with
//! its number semantics ([`value`]), its errors ([`error`]), its expression language
//! ([`expr`]: conditions, updates, projections), and the operations CreateTable,
//! DescribeTable, ListTables, DeleteTable, PutItem, GetItem, UpdateItem, DeleteItem,
//! Query, Scan, BatchGetItem and BatchWriteItem ([`schema`] maps tables, keys and the
//! partition directory onto the table layer), DescribeLimits, DescribeEndpoints, the
//! tag operations and time to live ([`ttl`]: UpdateTimeToLive, DescribeTimeToLive and
//! the sweep the hosts' schedulers run); the parameters' JSON types checked first (`params`), the legacy
//! parameters translated into expressions (`legacy`), `ReturnConsumedCapacity`
//! (`capacity`). Every other operation is `UnknownOperationException`.

mod api;
pub mod backfill;
mod capacity;
pub mod expr;
pub mod indexes;
mod legacy;
pub mod mutation;
mod operation;
mod params;
mod reserved;
// SigV4 lives in kit, which signs the table layer's own DynamoDB calls with it too.
pub use kit::sigv4;
mod tags;
mod transact;
pub mod ttl;
pub mod txn;

// The data model, shared with the movies API (whose data is the built-in `Movies`).
pub use ddb_model::{error, index, schema, value};

pub use api::{BODY_LIMIT, CONTENT_TYPE, TARGET_PREFIX};
pub use operation::Operation;

/// The headers an SDK sends for one call of `target` (the whole `x-amz-target`) on
/// `host`, signed at `at` for region `us-east-1`: for tests and tools that call the
/// endpoint without an SDK.
pub fn signed_headers(
    credentials: &sigv4::Credentials,
    host: &str,
    target: &str,
    body: &[u8],
    at: chrono::DateTime<chrono::Utc>,
) -> Vec<(String, String)> {
    let mut headers = vec![
        ("content-type".to_owned(), CONTENT_TYPE.to_owned()),
        ("host".to_owned(), host.to_owned()),
        ("x-amz-date".to_owned(), kit::time::format_amz_date(at)),
        ("x-amz-target".to_owned(), target.to_owned()),
    ];
    let authorization = sigv4::authorization(
        credentials,
        "us-east-1",
        "dynamodb",
        "POST",
        "/dynamodb",
        &headers,
        body,
        at,
    );
    headers.push(("authorization".to_owned(), authorization));
    headers
}

use http::Method;
use kit::{BodyLimit, Request, Response, Router};

fn router() -> Router<()> {
    Router::new()
        .route(Method::POST, "/dynamodb", ())
        .route(Method::POST, "/dynamodb/", ())
}

/// The routes this service answers, for the OpenAPI coverage test (`/dynamodb/` is an
/// alias of `/dynamodb`, documented with it).
pub fn routes() -> Vec<(Method, String)> {
    router()
        .routes()
        .into_iter()
        .filter(|(_, path)| !path.ends_with('/'))
        .collect()
}

/// Serves one request to the DynamoDB endpoint.
pub async fn handle(req: Request, env: &kit::Env) -> Response {
    let response = kit::serve(
        req,
        env,
        "dynamodb",
        BodyLimit(BODY_LIMIT),
        |req, ctx| async move {
            ctx.resolve(&router(), &req)?;
            api::dispatch(req, ctx).await
        },
    )
    .await;
    if response.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
        return too_large(response);
    }
    response
}

/// A body past DynamoDB's 16 MiB is refused before any operation sees it, as dynalite
/// (modelled on DynamoDB's front end) refuses it: 413 and no body, which SDKs report
/// as error code `413`. The request id stays for the log line it points at.
fn too_large(mut response: Response) -> Response {
    *response.body_mut() = kit::Bytes::new();
    let headers = response.headers_mut();
    headers.remove(http::header::CONTENT_TYPE);
    headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(0));
    response
}

// The Spin component entry (wasm32-wasip2 only).
kit::spin_http_component!(crate::handle);

#[cfg(test)]
mod tests;
