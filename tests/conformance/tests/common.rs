//! Cross-cutting rules of API.md every host must follow: health, JSON errors, 404/405,
//! request ids, admin auth, and the storage backend suite on the host's own storage.

use anyhow::{ensure, Result};
use conformance::{Api, Host};
use reqwest::Method;
use std::future::Future;
use std::pin::Pin;

pub type CaseFuture = Pin<Box<dyn Future<Output = Result<()>>>>;
pub type Case = (&'static str, fn(Api, Host) -> CaseFuture);

/// Lists async case functions `fn(Api, Host) -> Result<()>` as named [`Case`]s.
#[macro_export]
macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        vec![$((stringify!($name), (|api, host| Box::pin($name(api, host))) as fn(conformance::Api, conformance::Host) -> $crate::common::CaseFuture)),*]
    };
}

pub fn cases() -> Vec<Case> {
    cases![
        healthz_returns_ok_json,
        unknown_route_returns_404_not_found_json,
        request_id_is_echoed_or_generated,
        storage_suite_passes_on_every_backend_of_the_host,
        storage_suite_returns_401_without_the_admin_token,
    ]
}

/// Checks status, JSON content type and `error.code` of an API.md error reply.
pub fn expect_error(reply: &conformance::Reply, status: u16, code: &str) -> Result<()> {
    ensure!(
        reply.status == status && reply.error_code().as_deref() == Some(code),
        "expected {status} {code}, got {} {:?}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    ensure!(
        reply.header("content-type") == Some("application/json"),
        "error without JSON content type: {:?}",
        reply.header("content-type")
    );
    let message = reply.json()?;
    let message = message.pointer("/error/message").and_then(|m| m.as_str());
    ensure!(
        message.is_some_and(|m| !m.is_empty()),
        "error without a message"
    );
    Ok(())
}

async fn healthz_returns_ok_json(api: Api, _: Host) -> Result<()> {
    let reply = api.get("/healthz", &[]).await?;
    ensure!(reply.status == 200, "status {}", reply.status);
    ensure!(
        reply.json()? == serde_json::json!({"status": "ok"}),
        "body {:?}",
        reply.body
    );
    ensure!(reply.header("content-type") == Some("application/json"));
    Ok(())
}

async fn unknown_route_returns_404_not_found_json(api: Api, _: Host) -> Result<()> {
    for path in [
        "/",
        "/nope",
        "/api/unknown/thing",
        "/healthzz",
        "/hello",
        "/hello/a/b",
    ] {
        let reply = api.get(path, &[]).await?;
        expect_error(&reply, 404, "not_found").map_err(|e| e.context(path))?;
    }
    let reply = api.send(Method::DELETE, "/nope", &[], None).await?;
    expect_error(&reply, 404, "not_found")
}

async fn request_id_is_echoed_or_generated(api: Api, _: Host) -> Result<()> {
    let given = "conformance-req-42";
    for path in ["/healthz", "/nope", "/hello/requestid"] {
        let reply = api.get(path, &[("x-request-id", given)]).await?;
        ensure!(
            reply.header("x-request-id") == Some(given),
            "{path}: not echoed: {:?}",
            reply.header("x-request-id")
        );
    }
    let one = api.get("/healthz", &[]).await?;
    let two = api.get("/nope", &[]).await?;
    let (one, two) = (one.header("x-request-id"), two.header("x-request-id"));
    ensure!(
        one.is_some_and(|id| id.len() >= 16) && two.is_some_and(|id| id.len() >= 16) && one != two,
        "generated ids {one:?} {two:?}"
    );
    Ok(())
}

async fn storage_suite_passes_on_every_backend_of_the_host(api: Api, host: Host) -> Result<()> {
    let auth = format!("Bearer {}", api.admin_token);
    let reply = api
        .send(
            Method::POST,
            "/healthz/storage",
            &[("authorization", &auth)],
            None,
        )
        .await?;
    let report = reply.json()?;
    ensure!(
        reply.status == 200 && report["passed"] == serde_json::json!(true),
        "storage suite on {}: {report:#}",
        host.name()
    );
    let backends = report["backends"].as_array().map_or(0, Vec::len);
    let cases: usize = report["backends"]
        .as_array()
        .map(|b| {
            b.iter()
                .map(|b| b["cases"].as_array().map_or(0, Vec::len))
                .sum()
        })
        .unwrap_or(0);
    ensure!(
        backends >= 1 && cases >= 12 * backends,
        "too few cases ran: {report}"
    );
    Ok(())
}

async fn storage_suite_returns_401_without_the_admin_token(api: Api, _: Host) -> Result<()> {
    let none = api
        .send(Method::POST, "/healthz/storage", &[], None)
        .await?;
    expect_error(&none, 401, "unauthorized")?;
    let wrong = api
        .send(
            Method::POST,
            "/healthz/storage",
            &[("authorization", "Bearer nope")],
            None,
        )
        .await?;
    expect_error(&wrong, 401, "unauthorized")?;
    let get = api.get("/healthz/storage", &[]).await?;
    expect_error(&get, 405, "method_not_allowed")?;
    ensure!(
        get.header("allow") == Some("POST"),
        "allow {:?}",
        get.header("allow")
    );
    Ok(())
}
