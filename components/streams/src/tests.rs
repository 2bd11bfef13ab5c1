//! The service through [`handle`], on the in-memory backend: the HTTP mapping, and the
//! conditional-write loop under interleaved concurrent requests (a table that yields
//! between every operation makes each request's read go stale before it writes).

use super::*;
use futures::executor::block_on;
use futures::future::join_all;
use kit::table::memory::MemoryKv;
use kit::table::{Cond, Item, Page, StoreError, Table};
use kit::{Env, MapConfig, Tables};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

const T0: &str = "2026-11-22T12:00:00Z";

fn env_with(tables: Box<dyn Tables>, extra: &[(&str, &str)]) -> Env {
    let mut config: std::collections::HashMap<String, String> =
        [("test_clock_header".to_owned(), "true".to_owned())].into();
    for (k, v) in extra {
        config.insert((*k).to_owned(), (*v).to_owned());
    }
    let mut env = kit::host::native::env(MemoryKv::new(), MapConfig(config));
    env.tables = tables;
    env
}

fn env(extra: &[(&str, &str)]) -> Env {
    env_with(Box::new(MemoryKv::new()), extra)
}

struct Reply {
    status: u16,
    headers: http::HeaderMap,
    body: Value,
}

async fn call(env: &Env, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut req = http::Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(kit::Bytes::from(body.to_owned())).unwrap();
    let res = handle(req, env).await;
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = if res.body().is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(res.body()).unwrap()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn send(env: &Env, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    block_on(call(env, method, path, headers, body))
}

fn code(reply: &Reply) -> &str {
    reply.body["error"]["code"].as_str().unwrap_or_default()
}

fn active_ids(env: &Env, user: &str, now: &str) -> Vec<String> {
    let reply = send(
        env,
        "GET",
        "/api/v1/streams",
        &[("x-forwarded-for", user), ("x-test-now", now)],
        "",
    );
    assert_eq!(reply.status, 200);
    reply.body["active"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn start_list_heartbeat_end_round_trip() {
    let env = env(&[]);
    let user = [("x-forwarded-for", "10.0.0.1"), ("x-test-now", T0)];
    let started = send(
        &env,
        "POST",
        "/api/v1/streams",
        &user,
        r#"{"video_name":"a.mp4"}"#,
    );
    assert_eq!(started.status, 201);
    assert_eq!(started.body["expires_at"], "2026-11-22T12:01:00.000Z");
    assert_eq!(started.body["metadata"]["video_name"], "a.mp4");
    let id = started.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        started.headers.get("location").unwrap(),
        &format!("/api/v1/streams/{id}")
    );
    assert_eq!(started.headers.get(CAS_RETRIES_HEADER).unwrap(), "0");

    let listed = send(&env, "GET", "/api/v1/streams", &user, "");
    assert_eq!(listed.body["limit"], 3);
    assert_eq!(listed.body["active"][0], started.body);

    let later = [
        ("x-forwarded-for", "10.0.0.1"),
        ("x-test-now", "2026-11-22T12:00:45Z"),
    ];
    let beat = send(
        &env,
        "POST",
        &format!("/api/v1/streams/{id}/heartbeat"),
        &later,
        "",
    );
    assert_eq!(beat.status, 200);
    assert_eq!(beat.body["expires_at"], "2026-11-22T12:01:45.000Z");
    let got = send(&env, "GET", &format!("/api/v1/streams/{id}"), &later, "");
    assert_eq!(got.body, beat.body);

    let ended = send(&env, "DELETE", &format!("/api/v1/streams/{id}"), &later, "");
    assert_eq!(ended.status, 204);
    let again = send(&env, "DELETE", &format!("/api/v1/streams/{id}"), &later, "");
    assert_eq!((again.status, code(&again)), (404, "stream_not_found"));
    assert!(active_ids(&env, "10.0.0.1", "2026-11-22T12:00:45Z").is_empty());
}

#[test]
fn streams_of_one_user_are_invisible_to_another() {
    let env = env(&[]);
    let started = send(
        &env,
        "POST",
        "/api/v1/stream",
        &[("x-forwarded-for", "10.0.0.1"), ("x-test-now", T0)],
        "",
    );
    let id = started.body["id"].as_str().unwrap().to_owned();
    let other = [("x-forwarded-for", "10.0.0.2"), ("x-test-now", T0)];
    for (method, path) in [
        ("GET", format!("/api/v1/streams/{id}")),
        ("POST", format!("/api/v1/streams/{id}/heartbeat")),
        ("DELETE", format!("/api/v1/streams/{id}")),
    ] {
        let reply = send(&env, method, &path, &other, "");
        assert_eq!(
            (reply.status, code(&reply)),
            (404, "stream_not_found"),
            "{method} {path}"
        );
    }
    assert_eq!(active_ids(&env, "10.0.0.1", T0), vec![id]);
}

#[test]
fn configured_limit_and_lease_are_used() {
    let env = env(&[("stream_limit", "1"), ("stream_lease_seconds", "5")]);
    let user = [("x-forwarded-for", "10.0.0.1"), ("x-test-now", T0)];
    let first = send(&env, "POST", "/api/v1/streams", &user, "");
    assert_eq!(first.body["expires_at"], "2026-11-22T12:00:05.000Z");
    let second = send(&env, "POST", "/api/v1/streams", &user, "");
    assert_eq!(
        (second.status, code(&second)),
        (409, "stream_limit_reached")
    );
    let after = [
        ("x-forwarded-for", "10.0.0.1"),
        ("x-test-now", "2026-11-22T12:00:05Z"),
    ];
    assert_eq!(
        send(&env, "POST", "/api/v1/streams", &after, "").status,
        201
    );
}

#[test]
fn invalid_configuration_is_a_500_not_a_silent_default() {
    let env = env(&[("stream_limit", "lots")]);
    let reply = send(
        &env,
        "GET",
        "/api/v1/streams",
        &[("x-forwarded-for", "10.0.0.1")],
        "",
    );
    assert_eq!((reply.status, code(&reply)), (500, "internal"));
}

#[track_caller]
fn expect_error(env: &Env, request: (&str, &str, &[(&str, &str)], &str), want: (u16, &str)) {
    let (method, path, headers, body) = request;
    let reply = send(env, method, path, headers, body);
    assert_eq!(
        (reply.status, code(&reply)),
        want,
        "{method} {path} {headers:?} {body:?}"
    );
}

#[test]
fn errors_map_to_api_md_codes() {
    let env = env(&[]);
    let user: &[(&str, &str)] = &[("x-forwarded-for", "10.0.0.1")];
    let blank_key = &[("x-forwarded-for", "10.0.0.1"), ("idempotency-key", " ")];
    let streams = "/api/v1/streams";
    let unknown = "/api/v1/streams/00000000000000000000000000000000";
    let unknown_beat = "/api/v1/streams/00000000000000000000000000000000/heartbeat";
    let missing = (400, "missing_identity");
    expect_error(&env, ("POST", streams, &[], ""), missing);
    expect_error(
        &env,
        ("GET", streams, &[("x-forwarded-for", " ")], ""),
        missing,
    );
    expect_error(&env, ("POST", streams, user, "{"), (400, "invalid_body"));
    expect_error(&env, ("POST", streams, user, "[1]"), (400, "invalid_body"));
    expect_error(
        &env,
        ("POST", streams, blank_key, ""),
        (400, "invalid_idempotency_key"),
    );
    let not_found = (404, "stream_not_found");
    expect_error(&env, ("POST", unknown_beat, user, ""), not_found);
    expect_error(
        &env,
        ("POST", "/api/v1/streams/nope/heartbeat", user, ""),
        not_found,
    );
    expect_error(&env, ("DELETE", unknown, user, ""), not_found);
    expect_error(&env, ("GET", "/api/v1/streams/nope", user, ""), not_found);
    let not_allowed = (405, "method_not_allowed");
    expect_error(&env, ("PUT", streams, user, ""), not_allowed);
    expect_error(&env, ("GET", "/api/v1/stream", user, ""), not_allowed);
    expect_error(
        &env,
        ("GET", "/api/v1/streams/x/heartbeat", user, ""),
        not_allowed,
    );
    expect_error(
        &env,
        ("GET", "/api/v1/streams/x/y", user, ""),
        (404, "not_found"),
    );
    let reply = send(&env, "PATCH", streams, user, "");
    assert_eq!(reply.headers.get("allow").unwrap(), "GET, POST");
    let reply = send(&env, "PATCH", "/api/v1/streams/x", user, "");
    assert_eq!(reply.headers.get("allow").unwrap(), "GET, DELETE");
    assert!(
        active_ids(&env, "10.0.0.1", T0).is_empty(),
        "bad requests stored nothing"
    );
}

#[test]
fn idempotent_start_replays_with_201_and_the_same_stream() {
    let env = env(&[]);
    let headers = [
        ("x-forwarded-for", "10.0.0.1"),
        ("x-test-now", T0),
        ("idempotency-key", "k-1"),
    ];
    let first = send(&env, "POST", "/api/v1/streams", &headers, r#"{"a":1}"#);
    let again = send(&env, "POST", "/api/v1/stream", &headers, r#"{"a":1}"#);
    assert_eq!((first.status, again.status), (201, 201));
    assert_eq!(first.body, again.body);
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    let other = send(&env, "POST", "/api/v1/streams", &headers, r#"{"a":2}"#);
    assert_eq!(
        (other.status, code(&other)),
        (422, "idempotency_key_reused")
    );
    assert_eq!(active_ids(&env, "10.0.0.1", T0).len(), 1);
}

/// A future that is pending once, so that every request interleaves with the others.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// A table that yields before and after every operation.
struct Yielding(Rc<dyn Table>);

#[async_trait::async_trait(?Send)]
impl Table for Yielding {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        YieldOnce(false).await;
        let item = self.0.get(pk, sk).await;
        YieldOnce(false).await;
        item
    }
    async fn put(&self, pk: &str, sk: &str, value: Value, cond: Cond) -> Result<u64, StoreError> {
        YieldOnce(false).await;
        self.0.put(pk, sk, value, cond).await
    }
    async fn delete(&self, pk: &str, sk: &str, cond: Cond) -> Result<bool, StoreError> {
        YieldOnce(false).await;
        self.0.delete(pk, sk, cond).await
    }
    async fn query(&self, pk: &str, after: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        self.0.query(pk, after, limit).await
    }
    async fn put_partition(&self, pk: &str, items: Vec<(String, Value)>) -> Result<(), StoreError> {
        self.0.put_partition(pk, items).await
    }
    async fn put_items(&self, pk: &str, items: Vec<(String, Value)>) -> Result<(), StoreError> {
        YieldOnce(false).await;
        self.0.put_items(pk, items).await
    }
}

struct YieldingTables(MemoryKv);

impl Tables for YieldingTables {
    fn open(&self, name: &str) -> Result<Rc<dyn Table>, StoreError> {
        Ok(Rc::new(Yielding(Rc::new(self.0.table(name)))))
    }
}

fn racing_env() -> Env {
    env_with(Box::new(YieldingTables(MemoryKv::new())), &[])
}

fn retries(reply: &Reply) -> u32 {
    reply
        .headers
        .get(CAS_RETRIES_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn interleaved_starts_for_one_user_admit_exactly_the_limit() {
    let env = racing_env();
    let headers = [("x-forwarded-for", "10.0.0.1"), ("x-test-now", T0)];
    let replies = block_on(join_all(
        (0..40).map(|_| call(&env, "POST", "/api/v1/streams", &headers, "")),
    ));
    let admitted: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
    assert_eq!(admitted.len(), 3);
    assert!(replies
        .iter()
        .all(|r| r.status == 201 || (r.status == 409 && code(r) == "stream_limit_reached")));
    assert!(
        admitted.iter().map(|r| retries(r)).sum::<u32>() > 0,
        "the races were real"
    );
    let mut listed = active_ids(&env, "10.0.0.1", T0);
    let mut ids: Vec<String> = admitted
        .iter()
        .map(|r| r.body["id"].as_str().unwrap().to_owned())
        .collect();
    listed.sort();
    ids.sort();
    assert_eq!(listed, ids, "every admitted stream was kept");
}

#[test]
fn interleaved_idempotent_starts_take_one_slot() {
    let env = racing_env();
    let headers = [
        ("x-forwarded-for", "10.0.0.1"),
        ("x-test-now", T0),
        ("idempotency-key", "same"),
    ];
    let replies = block_on(join_all(
        (0..10).map(|_| call(&env, "POST", "/api/v1/streams", &headers, "")),
    ));
    assert!(replies.iter().all(|r| r.status == 201));
    assert!(replies.iter().all(|r| r.body == replies[0].body));
    assert_eq!(active_ids(&env, "10.0.0.1", T0).len(), 1);
}

#[test]
fn interleaved_heartbeats_and_ends_lose_no_update() {
    let env = racing_env();
    let user = [("x-forwarded-for", "10.0.0.1"), ("x-test-now", T0)];
    let ids: Vec<String> = (0..3)
        .map(|_| {
            send(&env, "POST", "/api/v1/streams", &user, "").body["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let later = [
        ("x-forwarded-for", "10.0.0.1"),
        ("x-test-now", "2026-11-22T12:00:30Z"),
    ];
    let heartbeat = format!("/api/v1/streams/{}/heartbeat", ids[0]);
    let end_1 = format!("/api/v1/streams/{}", ids[1]);
    let end_2 = format!("/api/v1/streams/{}", ids[2]);
    let replies = block_on(join_all([
        call(&env, "POST", &heartbeat, &later, ""),
        call(&env, "DELETE", &end_1, &later, ""),
        call(&env, "DELETE", &end_2, &later, ""),
    ]));
    assert_eq!(
        replies.iter().map(|r| r.status).collect::<Vec<_>>(),
        [200, 204, 204]
    );
    assert_eq!(
        active_ids(&env, "10.0.0.1", "2026-11-22T12:01:15Z"),
        vec![ids[0].clone()]
    );
}
