//! The OpenAPI tag `streams`, concurrent video streams, as a client sees it. The host runs with
//! `test_clock_header = true` and a configured lease of [`LEASE_SECONDS`], so each case
//! says which instant it is with `x-test-now` and moves time forward instead of
//! sleeping. Every case uses fresh identities, so cases never see each other's streams.

use crate::cases;
use crate::common::{expect_error, Case};
use anyhow::{anyhow, ensure, Context, Result};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use conformance::{Api, Host, Reply};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};

/// The lease the suite configures on every host (`stream_lease_seconds`), shorter than
/// the default 60 s so that the configuration is seen to reach each host.
pub const LEASE_SECONDS: i64 = 30;
const LIMIT: usize = 3;
/// "Now" for every case that does not say otherwise.
const T0: &str = "2026-11-22T12:00:00Z";

pub fn cases() -> Vec<Case> {
    cases![
        start_returns_201_with_the_stream_when_metadata_is_given,
        start_returns_201_with_empty_metadata_when_body_is_empty,
        start_alias_stream_returns_201_like_streams,
        list_returns_200_with_limit_and_active_streams_in_start_order,
        start_returns_409_stream_limit_reached_when_user_has_3_active,
        concurrent_starts_for_one_user_admit_exactly_3,
        concurrent_starts_for_10_users_admit_exactly_3_each,
        expired_lease_frees_its_slot_when_the_lease_runs_out,
        heartbeat_returns_200_with_extended_expiry_when_stream_is_active,
        heartbeat_returns_404_stream_not_found_when_unknown_expired_or_another_users,
        delete_returns_204_and_frees_the_slot_when_stream_is_active,
        heartbeat_returns_404_after_the_stream_is_deleted,
        get_returns_the_stream_when_active_and_404_otherwise,
        idempotent_retry_returns_201_with_the_same_stream_and_takes_one_slot,
        concurrent_idempotent_starts_take_one_slot_and_return_one_stream,
        idempotent_retry_returns_422_when_metadata_differs,
        start_returns_400_invalid_idempotency_key_when_key_is_unusable,
        start_returns_400_invalid_body_when_body_is_not_a_json_object,
        requests_return_400_missing_identity_when_no_identity_header_is_sent,
        first_forwarded_address_identifies_the_user,
        cf_connecting_ip_identifies_the_user_when_forwarded_for_is_absent,
        wrong_method_returns_405_with_allow_header,
        unknown_stream_paths_return_404_not_found,
        start_returns_413_when_body_or_metadata_is_too_large,
        bad_requests_change_nothing,
        start_uses_the_host_clock_without_a_test_clock,
    ]
}

/// A fresh client address, `10.x.y.z`, unique within this run.
fn user() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
}

/// T0 plus `ms` milliseconds, as an `x-test-now` value.
fn at(ms: i64) -> String {
    (instant(T0) + Duration::milliseconds(ms)).to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn lease_ms() -> i64 {
    LEASE_SECONDS * 1000
}

/// `x-forwarded-for: user` and `x-test-now: now`, plus `extra`.
fn headers<'a>(
    user: &'a str,
    now: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut all = vec![("x-forwarded-for", user), ("x-test-now", now)];
    all.extend_from_slice(extra);
    all
}

async fn start_with(
    api: &Api,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<Reply> {
    api.send(
        Method::POST,
        path,
        headers,
        body.map(|b| b.as_bytes().to_vec()),
    )
    .await
}

async fn start(api: &Api, user: &str, now: &str) -> Result<Reply> {
    start_with(api, "/api/v1/streams", &headers(user, now, &[]), None).await
}

/// Starts a stream that must be admitted; returns it.
async fn started(api: &Api, user: &str, now: &str) -> Result<Value> {
    let reply = start(api, user, now).await?;
    expect_stream(&reply, 201)
}

fn id_of(stream: &Value) -> String {
    stream["id"].as_str().unwrap_or_default().to_owned()
}

/// Checks a stream reply: `status`, JSON, exactly `{id, started_at, expires_at,
/// metadata}` with RFC 3339 instants and an object of metadata; returns the body.
fn expect_stream(reply: &Reply, status: u16) -> Result<Value> {
    ensure!(
        reply.status == status,
        "expected {status}, got {} {:?}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    ensure!(
        reply.header("content-type") == Some("application/json"),
        "content type {:?}",
        reply.header("content-type")
    );
    let body = reply.json()?;
    check_stream_shape(&body)?;
    Ok(body)
}

fn check_stream_shape(stream: &Value) -> Result<()> {
    let object = stream
        .as_object()
        .ok_or_else(|| anyhow!("stream is not an object: {stream}"))?;
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    ensure!(
        keys == ["expires_at", "id", "metadata", "started_at"],
        "stream fields {keys:?}"
    );
    ensure!(!id_of(stream).is_empty(), "empty id: {stream}");
    for field in ["started_at", "expires_at"] {
        let text = stream[field].as_str().unwrap_or_default();
        DateTime::parse_from_rfc3339(text).with_context(|| format!("{field} {text:?}"))?;
    }
    ensure!(
        stream["metadata"].is_object(),
        "metadata {}",
        stream["metadata"]
    );
    Ok(())
}

fn expires(stream: &Value) -> DateTime<Utc> {
    instant(stream["expires_at"].as_str().unwrap_or_default())
}

fn started_at(stream: &Value) -> DateTime<Utc> {
    instant(stream["started_at"].as_str().unwrap_or_default())
}

/// `GET /api/v1/streams` for `user` at `now`: checks the shape, returns `active`.
async fn list(api: &Api, user: &str, now: &str) -> Result<Vec<Value>> {
    let reply = api.get("/api/v1/streams", &headers(user, now, &[])).await?;
    ensure!(
        reply.status == 200,
        "list: {} {:?}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    ensure!(reply.header("content-type") == Some("application/json"));
    let body = reply.json()?;
    let object = body.as_object().filter(|o| o.len() == 2);
    ensure!(
        object.is_some() && body["limit"] == json!(LIMIT),
        "list body {body}"
    );
    let active = body["active"]
        .as_array()
        .ok_or_else(|| anyhow!("active is not an array: {body}"))?
        .clone();
    for stream in &active {
        check_stream_shape(stream)?;
    }
    Ok(active)
}

fn sorted_ids<'a>(streams: impl IntoIterator<Item = &'a Value>) -> Vec<String> {
    let mut ids: Vec<String> = streams.into_iter().map(id_of).collect();
    ids.sort();
    ids
}

async fn start_returns_201_with_the_stream_when_metadata_is_given(api: Api, _: Host) -> Result<()> {
    let metadata = json!({
        "video_name": "Big Buck Bunny",
        "codec_info": {"video": "h264", "audio": "aac"},
        "file_type": "mp4",
        "size": 276_134_947,
        "src": "https://example.com/bbb.mp4",
        "framerate": 29.97,
        "tags": ["cc", null, true],
    });
    let reply = start_with(
        &api,
        "/api/v1/streams",
        &headers(&user(), T0, &[("content-type", "application/json")]),
        Some(&metadata.to_string()),
    )
    .await?;
    let stream = expect_stream(&reply, 201)?;
    ensure!(
        stream["metadata"] == metadata,
        "metadata not kept as given: {stream}"
    );
    ensure!(started_at(&stream) == instant(T0), "started_at {stream}");
    ensure!(
        expires(&stream) == instant(T0) + Duration::seconds(LEASE_SECONDS),
        "expires_at is not {LEASE_SECONDS} s after the start: {stream}"
    );
    let retries = reply
        .header("x-cas-retries")
        .and_then(|v| v.parse::<u32>().ok());
    ensure!(
        retries.is_some(),
        "x-cas-retries {:?}",
        reply.header("x-cas-retries")
    );
    Ok(())
}

async fn start_returns_201_with_empty_metadata_when_body_is_empty(api: Api, _: Host) -> Result<()> {
    for body in [None, Some(""), Some("  \n"), Some("{}")] {
        let reply = start_with(&api, "/api/v1/streams", &headers(&user(), T0, &[]), body).await?;
        let stream = expect_stream(&reply, 201).map_err(|e| e.context(format!("{body:?}")))?;
        ensure!(stream["metadata"] == json!({}), "{body:?}: {stream}");
    }
    Ok(())
}

async fn start_alias_stream_returns_201_like_streams(api: Api, _: Host) -> Result<()> {
    let me = user();
    let reply = start_with(
        &api,
        "/api/v1/stream",
        &headers(&me, T0, &[]),
        Some(r#"{"video_name":"alias.mp4"}"#),
    )
    .await?;
    let stream = expect_stream(&reply, 201)?;
    ensure!(stream["metadata"] == json!({"video_name": "alias.mp4"}));
    let active = list(&api, &me, T0).await?;
    ensure!(active == vec![stream], "alias start not listed: {active:?}");
    Ok(())
}

async fn list_returns_200_with_limit_and_active_streams_in_start_order(
    api: Api,
    _: Host,
) -> Result<()> {
    let me = user();
    ensure!(
        list(&api, &me, T0).await?.is_empty(),
        "a new user has streams"
    );
    let first = started(&api, &me, &at(0)).await?;
    let second = started(&api, &me, &at(1000)).await?;
    let active = list(&api, &me, &at(2000)).await?;
    ensure!(
        active == vec![first, second],
        "list is not the started streams in start order: {active:?}"
    );
    Ok(())
}

async fn start_returns_409_stream_limit_reached_when_user_has_3_active(
    api: Api,
    _: Host,
) -> Result<()> {
    let me = user();
    let mut admitted = Vec::new();
    for _ in 0..LIMIT {
        admitted.push(started(&api, &me, T0).await?);
    }
    for path in ["/api/v1/streams", "/api/v1/stream"] {
        let reply = start_with(&api, path, &headers(&me, T0, &[]), Some(r#"{"a":1}"#)).await?;
        expect_error(&reply, 409, "stream_limit_reached").map_err(|e| e.context(path))?;
    }
    let active = list(&api, &me, T0).await?;
    ensure!(
        active == admitted,
        "refused starts changed the list: {active:?}"
    );
    // Another user is not limited by this one.
    started(&api, &user(), T0).await?;
    Ok(())
}

/// Fires all `requests` (`POST`s) at once.
async fn simultaneously(
    api: &Api,
    requests: Vec<(String, Vec<(String, String)>)>,
) -> Result<Vec<Reply>> {
    let requests = requests
        .into_iter()
        .map(|(path, headers)| (api.clone(), Method::POST, path, headers, None))
        .collect();
    conformance::client::together(requests).await
}

fn owned(headers: &[(&str, &str)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Splits replies into admitted streams, checking every other one is a 409.
fn admitted(replies: &[Reply]) -> Result<Vec<Value>> {
    let mut streams = Vec::new();
    for reply in replies {
        if reply.status == 201 {
            streams.push(expect_stream(reply, 201)?);
        } else {
            expect_error(reply, 409, "stream_limit_reached")?;
        }
    }
    Ok(streams)
}

async fn concurrent_starts_for_one_user_admit_exactly_3(api: Api, _: Host) -> Result<()> {
    let me = user();
    let requests = (0..40)
        .map(|_| ("/api/v1/streams".to_owned(), owned(&headers(&me, T0, &[]))))
        .collect();
    let replies = simultaneously(&api, requests).await?;
    let streams = admitted(&replies)?;
    ensure!(
        streams.len() == LIMIT,
        "40 simultaneous starts admitted {} (want {LIMIT})",
        streams.len()
    );
    let active = list(&api, &me, T0).await?;
    ensure!(
        sorted_ids(&active) == sorted_ids(&streams),
        "listed {:?}, admitted {:?}",
        sorted_ids(&active),
        sorted_ids(&streams)
    );
    Ok(())
}

async fn concurrent_starts_for_10_users_admit_exactly_3_each(api: Api, _: Host) -> Result<()> {
    let users: Vec<String> = (0..10).map(|_| user()).collect();
    let requests = (0..40)
        .map(|i| {
            let path = if i % 2 == 0 {
                "/api/v1/streams"
            } else {
                "/api/v1/stream"
            };
            (path.to_owned(), owned(&headers(&users[i % 10], T0, &[])))
        })
        .collect();
    let replies = simultaneously(&api, requests).await?;
    let mut per_user = vec![Vec::new(); users.len()];
    for (i, reply) in replies.iter().enumerate() {
        per_user[i % 10].extend(admitted(std::slice::from_ref(reply))?);
    }
    for (me, streams) in users.iter().zip(&per_user) {
        ensure!(
            streams.len() == LIMIT,
            "{me}: 4 simultaneous starts admitted {} (want {LIMIT})",
            streams.len()
        );
        let active = list(&api, me, T0).await?;
        ensure!(
            sorted_ids(&active) == sorted_ids(streams),
            "{me}: listed {active:?}"
        );
    }
    Ok(())
}

async fn expired_lease_frees_its_slot_when_the_lease_runs_out(api: Api, _: Host) -> Result<()> {
    let me = user();
    let mut first = Vec::new();
    for _ in 0..LIMIT {
        first.push(started(&api, &me, T0).await?);
    }
    let just_before = at(lease_ms() - 1);
    ensure!(list(&api, &me, &just_before).await?.len() == LIMIT);
    let reply = start(&api, &me, &just_before).await?;
    expect_error(&reply, 409, "stream_limit_reached").context("1 ms before expiry")?;
    let expiry = at(lease_ms());
    let active = list(&api, &me, &expiry).await?;
    ensure!(
        active.is_empty(),
        "expired streams still listed: {active:?}"
    );
    let id = id_of(&first[0]);
    let reply = heartbeat(&api, &me, &expiry, &id).await?;
    expect_error(&reply, 404, "stream_not_found").context("heartbeat on an expired stream")?;
    let fresh = started(&api, &me, &expiry).await?;
    ensure!(list(&api, &me, &expiry).await? == vec![fresh]);
    Ok(())
}

async fn heartbeat(api: &Api, user: &str, now: &str, id: &str) -> Result<Reply> {
    api.send(
        Method::POST,
        &format!("/api/v1/streams/{id}/heartbeat"),
        &headers(user, now, &[]),
        None,
    )
    .await
}

async fn heartbeat_returns_200_with_extended_expiry_when_stream_is_active(
    api: Api,
    _: Host,
) -> Result<()> {
    let me = user();
    let stream = started(&api, &me, T0).await?;
    let id = id_of(&stream);
    let beat_at = lease_ms() * 2 / 3;
    let beat = expect_stream(&heartbeat(&api, &me, &at(beat_at), &id).await?, 200)?;
    ensure!(
        id_of(&beat) == id && beat["metadata"] == stream["metadata"],
        "{beat}"
    );
    ensure!(
        started_at(&beat) == started_at(&stream),
        "started_at moved: {beat}"
    );
    ensure!(
        expires(&beat) == instant(&at(beat_at + lease_ms())),
        "heartbeat at +{beat_at} ms did not extend to a full lease: {beat}"
    );
    // Alive past the first expiry, gone after the extended one.
    let past_first = at(lease_ms() + 1000);
    ensure!(list(&api, &me, &past_first).await? == vec![beat.clone()]);
    let second = expect_stream(&heartbeat(&api, &me, &past_first, &id).await?, 200)?;
    ensure!(
        expires(&second) == instant(&at(2 * lease_ms() + 1000)),
        "{second}"
    );
    ensure!(list(&api, &me, &at(2 * lease_ms() + 999)).await?.len() == 1);
    ensure!(list(&api, &me, &at(2 * lease_ms() + 1000))
        .await?
        .is_empty());
    Ok(())
}

async fn heartbeat_returns_404_stream_not_found_when_unknown_expired_or_another_users(
    api: Api,
    _: Host,
) -> Result<()> {
    let me = user();
    let stream = started(&api, &me, T0).await?;
    let id = id_of(&stream);
    for unknown in ["00000000000000000000000000000000", "nope", "%20", "ABCDEF"] {
        let reply = heartbeat(&api, &me, T0, unknown).await?;
        expect_error(&reply, 404, "stream_not_found").map_err(|e| e.context(unknown))?;
    }
    let reply = heartbeat(&api, &user(), T0, &id).await?;
    expect_error(&reply, 404, "stream_not_found").context("another user's stream")?;
    let reply = heartbeat(&api, &me, &at(lease_ms()), &id).await?;
    expect_error(&reply, 404, "stream_not_found").context("expired stream")?;
    Ok(())
}

async fn delete(api: &Api, user: &str, now: &str, id: &str) -> Result<Reply> {
    api.send(
        Method::DELETE,
        &format!("/api/v1/streams/{id}"),
        &headers(user, now, &[]),
        None,
    )
    .await
}

async fn delete_returns_204_and_frees_the_slot_when_stream_is_active(
    api: Api,
    _: Host,
) -> Result<()> {
    let me = user();
    let mut streams = Vec::new();
    for _ in 0..LIMIT {
        streams.push(started(&api, &me, T0).await?);
    }
    let gone = streams.remove(1);
    let reply = delete(&api, &me, T0, &id_of(&gone)).await?;
    ensure!(reply.status == 204, "DELETE: {}", reply.status);
    ensure!(reply.body.is_empty(), "DELETE body {:?}", reply.body);
    ensure!(
        list(&api, &me, T0).await? == streams,
        "deleted stream still listed"
    );
    let again = delete(&api, &me, T0, &id_of(&gone)).await?;
    expect_error(&again, 404, "stream_not_found").context("second DELETE")?;
    let other = delete(&api, &user(), T0, &id_of(&streams[0])).await?;
    expect_error(&other, 404, "stream_not_found").context("another user's stream")?;
    let expired = delete(&api, &me, &at(lease_ms()), &id_of(&streams[0])).await?;
    expect_error(&expired, 404, "stream_not_found").context("expired stream")?;
    started(&api, &me, T0).await.context("the freed slot")?;
    Ok(())
}

async fn heartbeat_returns_404_after_the_stream_is_deleted(api: Api, _: Host) -> Result<()> {
    let me = user();
    let id = id_of(&started(&api, &me, T0).await?);
    ensure!(delete(&api, &me, T0, &id).await?.status == 204);
    let reply = heartbeat(&api, &me, &at(1000), &id).await?;
    expect_error(&reply, 404, "stream_not_found")?;
    ensure!(list(&api, &me, &at(1000)).await?.is_empty());
    Ok(())
}

async fn get_returns_the_stream_when_active_and_404_otherwise(api: Api, _: Host) -> Result<()> {
    let me = user();
    let stream = started(&api, &me, T0).await?;
    let path = format!("/api/v1/streams/{}", id_of(&stream));
    let got = expect_stream(&api.get(&path, &headers(&me, T0, &[])).await?, 200)?;
    ensure!(got == stream, "GET {got} != start {stream}");
    let other = api.get(&path, &headers(&user(), T0, &[])).await?;
    expect_error(&other, 404, "stream_not_found")?;
    let expired = api.get(&path, &headers(&me, &at(lease_ms()), &[])).await?;
    expect_error(&expired, 404, "stream_not_found")
}

async fn idempotent_retry_returns_201_with_the_same_stream_and_takes_one_slot(
    api: Api,
    _: Host,
) -> Result<()> {
    let me = user();
    let body = Some(r#"{"video_name":"retry.mp4"}"#);
    let keyed = headers(&me, T0, &[("idempotency-key", "start-1")]);
    let first = expect_stream(
        &start_with(&api, "/api/v1/streams", &keyed, body).await?,
        201,
    )?;
    let retry = expect_stream(
        &start_with(&api, "/api/v1/streams", &keyed, body).await?,
        201,
    )?;
    ensure!(retry == first, "retry {retry} != first {first}");
    ensure!(
        list(&api, &me, T0).await? == vec![first.clone()],
        "retry took a slot"
    );
    // At the limit a retry still answers with its stream; a new key is refused.
    started(&api, &me, T0).await?;
    started(&api, &me, T0).await?;
    let one_second = at(1000);
    let later = headers(&me, &one_second, &[("idempotency-key", "start-1")]);
    let retry = expect_stream(
        &start_with(&api, "/api/v1/stream", &later, body).await?,
        201,
    )?;
    ensure!(
        retry == first,
        "retry at the limit {retry} != first {first}"
    );
    let new_key = headers(&me, T0, &[("idempotency-key", "start-2")]);
    let reply = start_with(&api, "/api/v1/streams", &new_key, body).await?;
    expect_error(&reply, 409, "stream_limit_reached")?;
    ensure!(list(&api, &me, T0).await?.len() == LIMIT);
    Ok(())
}

async fn concurrent_idempotent_starts_take_one_slot_and_return_one_stream(
    api: Api,
    _: Host,
) -> Result<()> {
    let me = user();
    let requests = (0..12)
        .map(|_| {
            let headers = headers(&me, T0, &[("idempotency-key", "same-start")]);
            ("/api/v1/streams".to_owned(), owned(&headers))
        })
        .collect();
    let replies = simultaneously(&api, requests).await?;
    let streams: Vec<Value> = replies
        .iter()
        .map(|r| expect_stream(r, 201))
        .collect::<Result<_>>()?;
    ensure!(
        streams.iter().all(|s| *s == streams[0]),
        "simultaneous retries returned different streams: {:?}",
        sorted_ids(&streams)
    );
    ensure!(list(&api, &me, T0).await? == vec![streams[0].clone()]);
    Ok(())
}

async fn idempotent_retry_returns_422_when_metadata_differs(api: Api, _: Host) -> Result<()> {
    let me = user();
    let keyed = headers(&me, T0, &[("idempotency-key", "k")]);
    let first = expect_stream(
        &start_with(&api, "/api/v1/streams", &keyed, Some(r#"{"a":1}"#)).await?,
        201,
    )?;
    let reply = start_with(&api, "/api/v1/streams", &keyed, Some(r#"{"a":2}"#)).await?;
    expect_error(&reply, 422, "idempotency_key_reused")?;
    ensure!(list(&api, &me, T0).await? == vec![first]);
    Ok(())
}

async fn start_returns_400_invalid_idempotency_key_when_key_is_unusable(
    api: Api,
    _: Host,
) -> Result<()> {
    let me = user();
    let long = "k".repeat(256);
    for key in ["", "   ", long.as_str()] {
        let reply = start_with(
            &api,
            "/api/v1/streams",
            &headers(&me, T0, &[("idempotency-key", key)]),
            None,
        )
        .await?;
        expect_error(&reply, 400, "invalid_idempotency_key").map_err(|e| e.context(key.len()))?;
    }
    ensure!(list(&api, &me, T0).await?.is_empty());
    Ok(())
}

const BAD_BODIES: [&str; 11] = [
    "{",
    "not json",
    "null",
    "[]",
    "[{\"video_name\":\"a\"}]",
    "\"video\"",
    "42",
    "true",
    "{\"video_name\": \"a\"",
    "{\"video_name\": \"a\"} {}",
    "{video_name: 1}",
];

async fn start_returns_400_invalid_body_when_body_is_not_a_json_object(
    api: Api,
    _: Host,
) -> Result<()> {
    let me = user();
    for body in BAD_BODIES {
        let reply = start_with(
            &api,
            "/api/v1/streams",
            &headers(&me, T0, &[("content-type", "application/json")]),
            Some(body),
        )
        .await?;
        expect_error(&reply, 400, "invalid_body").map_err(|e| e.context(body))?;
    }
    ensure!(
        list(&api, &me, T0).await?.is_empty(),
        "a bad body stored a stream"
    );
    Ok(())
}

/// Header sets that carry no usable identity.
const NO_IDENTITY: [&[(&str, &str)]; 4] = [
    &[],
    &[("x-forwarded-for", "")],
    &[("x-forwarded-for", " , 10.0.0.9")],
    &[("cf-connecting-ip", " ")],
];

async fn requests_return_400_missing_identity_when_no_identity_header_is_sent(
    api: Api,
    host: Host,
) -> Result<()> {
    if host == Host::Workerd {
        return platform_address_identifies_the_user_on_workers(&api).await;
    }
    let id = "00000000000000000000000000000000";
    let requests = [
        (Method::POST, "/api/v1/streams".to_owned()),
        (Method::POST, "/api/v1/stream".to_owned()),
        (Method::GET, "/api/v1/streams".to_owned()),
        (Method::GET, format!("/api/v1/streams/{id}")),
        (Method::POST, format!("/api/v1/streams/{id}/heartbeat")),
        (Method::DELETE, format!("/api/v1/streams/{id}")),
    ];
    for unusable in NO_IDENTITY {
        let mut headers = vec![("x-test-now", T0)];
        headers.extend_from_slice(unusable);
        for (method, path) in &requests {
            let reply = api.send(method.clone(), path, &headers, None).await?;
            let context = || format!("{method} {path} {headers:?} on {}", host.name());
            expect_error(&reply, 400, "missing_identity").with_context(context)?;
        }
    }
    Ok(())
}

/// Workers always set `cf-connecting-ip` (workerd too, to the client's address when
/// the client sent none or an empty one), so there a request without a usable
/// `x-forwarded-for` is the platform-given address's user, never `missing_identity`.
async fn platform_address_identifies_the_user_on_workers(api: &Api) -> Result<()> {
    // The platform address is shared by every case on this host; an instant no other
    // case uses keeps their streams out of this one's view.
    let now = "2031-01-01T00:00:00Z";
    let with = |unusable: &[(&'static str, &'static str)]| {
        let mut headers = vec![("x-test-now", now)];
        headers.extend_from_slice(unusable);
        headers
    };
    let stream = expect_stream(
        &start_with(api, "/api/v1/streams", &with(&[]), None).await?,
        201,
    )?;
    for unusable in NO_IDENTITY {
        let reply = api.get("/api/v1/streams", &with(unusable)).await?;
        ensure!(
            reply.status == 200 && reply.json()?["active"] == json!([stream.clone()]),
            "{unusable:?}: {} {:?}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
    }
    let path = format!("/api/v1/streams/{}", id_of(&stream));
    let reply = api.send(Method::DELETE, &path, &with(&[]), None).await?;
    ensure!(reply.status == 204, "DELETE: {}", reply.status);
    Ok(())
}

async fn first_forwarded_address_identifies_the_user(api: Api, _: Host) -> Result<()> {
    let me = user();
    let chain = format!(" {me} , 192.0.2.1, 198.51.100.7");
    let stream = expect_stream(
        &start_with(
            &api,
            "/api/v1/streams",
            &[("x-forwarded-for", &chain), ("x-test-now", T0)],
            None,
        )
        .await?,
        201,
    )?;
    ensure!(
        list(&api, &me, T0).await? == vec![stream],
        "{chain:?} is not {me}"
    );
    ensure!(
        list(&api, "192.0.2.1", T0).await?.is_empty(),
        "a proxy address got the stream"
    );
    Ok(())
}

async fn cf_connecting_ip_identifies_the_user_when_forwarded_for_is_absent(
    api: Api,
    _: Host,
) -> Result<()> {
    let me = user();
    let only_cf = [("cf-connecting-ip", me.as_str()), ("x-test-now", T0)];
    let stream = expect_stream(
        &start_with(&api, "/api/v1/streams", &only_cf, None).await?,
        201,
    )?;
    let listed = api.get("/api/v1/streams", &only_cf).await?;
    ensure!(listed.status == 200 && listed.json()?["active"] == json!([stream.clone()]));
    // The same address through x-forwarded-for is the same user; x-forwarded-for wins
    // over cf-connecting-ip when both are sent.
    ensure!(list(&api, &me, T0).await? == vec![stream]);
    let other = user();
    let both = [
        ("x-forwarded-for", other.as_str()),
        ("cf-connecting-ip", me.as_str()),
        ("x-test-now", T0),
    ];
    let theirs = expect_stream(
        &start_with(&api, "/api/v1/streams", &both, None).await?,
        201,
    )?;
    ensure!(list(&api, &other, T0).await? == vec![theirs]);
    ensure!(list(&api, &me, T0).await?.len() == 1);
    Ok(())
}

async fn wrong_method_returns_405_with_allow_header(api: Api, _: Host) -> Result<()> {
    let me = user();
    let id = "00000000000000000000000000000000";
    let cases = [
        (Method::PUT, "/api/v1/streams".to_owned(), "GET, POST"),
        (Method::DELETE, "/api/v1/streams".to_owned(), "GET, POST"),
        (Method::PATCH, "/api/v1/streams".to_owned(), "GET, POST"),
        (Method::GET, "/api/v1/stream".to_owned(), "POST"),
        (Method::DELETE, "/api/v1/stream".to_owned(), "POST"),
        (Method::POST, format!("/api/v1/streams/{id}"), "GET, DELETE"),
        (Method::PUT, format!("/api/v1/streams/{id}"), "GET, DELETE"),
        (
            Method::GET,
            format!("/api/v1/streams/{id}/heartbeat"),
            "POST",
        ),
        (
            Method::DELETE,
            format!("/api/v1/streams/{id}/heartbeat"),
            "POST",
        ),
    ];
    for (method, path, allow) in cases {
        let reply = api
            .send(method.clone(), &path, &headers(&me, T0, &[]), None)
            .await?;
        expect_error(&reply, 405, "method_not_allowed")
            .with_context(|| format!("{method} {path}"))?;
        ensure!(
            reply.header("allow") == Some(allow),
            "{method} {path}: allow {:?}, want {allow:?}",
            reply.header("allow")
        );
    }
    ensure!(list(&api, &me, T0).await?.is_empty());
    Ok(())
}

async fn unknown_stream_paths_return_404_not_found(api: Api, _: Host) -> Result<()> {
    let me = user();
    for path in [
        "/api/v1",
        "/api/v1/",
        "/api/v1/nope",
        "/api/v1/streamsx",
        "/api/v1/stream/abc",
        "/api/v1/streams/a/b",
        "/api/v1/streams/a/heartbeat/x",
        "/api/v2/streams",
    ] {
        for method in [Method::GET, Method::POST] {
            let reply = api
                .send(method.clone(), path, &headers(&me, T0, &[]), None)
                .await?;
            expect_error(&reply, 404, "not_found").with_context(|| format!("{method} {path}"))?;
        }
    }
    Ok(())
}

async fn start_returns_413_when_body_or_metadata_is_too_large(api: Api, _: Host) -> Result<()> {
    let me = user();
    for pad in [64 * 1024, 9 * 1024] {
        let body = json!({"video_name": "big", "pad": "x".repeat(pad)}).to_string();
        let reply =
            start_with(&api, "/api/v1/streams", &headers(&me, T0, &[]), Some(&body)).await?;
        expect_error(&reply, 413, "payload_too_large").with_context(|| format!("pad {pad}"))?;
    }
    ensure!(list(&api, &me, T0).await?.is_empty());
    let body = json!({"video_name": "fits", "pad": "x".repeat(7 * 1024)}).to_string();
    let reply = start_with(&api, "/api/v1/streams", &headers(&me, T0, &[]), Some(&body)).await?;
    expect_stream(&reply, 201).context("7 KiB of metadata")?;
    Ok(())
}

async fn bad_requests_change_nothing(api: Api, host: Host) -> Result<()> {
    let me = user();
    let keep = vec![started(&api, &me, T0).await?, started(&api, &me, T0).await?];
    let id = id_of(&keep[0]);
    let unknown = "0123456789abcdef0123456789abcdef";
    let one_second = at(1000);
    let h = headers(&me, &one_second, &[]);
    let empty_key = headers(&me, T0, &[("idempotency-key", "")]);
    let bad_clock = headers(&me, "yesterday", &[]);
    let big = json!({"pad": "x".repeat(65 * 1024)}).to_string();
    let streams = "/api/v1/streams".to_owned();
    let one = format!("/api/v1/streams/{id}");
    let beat = format!("/api/v1/streams/{id}/heartbeat");
    let mut attempts = vec![
        (Method::POST, &streams, &h, Some("{")),
        (Method::POST, &streams, &h, Some("[1,2]")),
        (Method::POST, &streams, &h, Some(big.as_str())),
        (Method::POST, &streams, &empty_key, None),
        (Method::POST, &streams, &bad_clock, None),
        (Method::PATCH, &streams, &h, Some("{}")),
        (Method::PUT, &one, &h, Some("{}")),
        (Method::GET, &beat, &h, None),
    ];
    let unknown_beat = format!("/api/v1/streams/{unknown}/heartbeat");
    let unknown_one = format!("/api/v1/streams/{unknown}");
    attempts.push((Method::POST, &unknown_beat, &h, None));
    attempts.push((Method::DELETE, &unknown_one, &h, None));
    // On Workers the platform's address stands in for a missing identity.
    let no_identity = vec![("x-test-now", T0)];
    if host != Host::Workerd {
        attempts.push((Method::POST, &streams, &no_identity, None));
        attempts.push((Method::POST, &beat, &no_identity, None));
        attempts.push((Method::DELETE, &one, &no_identity, None));
    }
    for (method, path, headers, body) in attempts {
        let body = body.map(|b| b.as_bytes().to_vec());
        let reply = api.send(method.clone(), path, headers, body).await?;
        ensure!(
            (400..500).contains(&reply.status) && reply.error_code().is_some(),
            "{method} {path}: {} {:?}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
    }
    let active = list(&api, &me, &at(2000)).await?;
    ensure!(
        active == keep,
        "bad requests changed the streams: {active:?}"
    );
    Ok(())
}

/// Without `x-test-now` the host's clock decides `started_at`.
async fn start_uses_the_host_clock_without_a_test_clock(api: Api, _: Host) -> Result<()> {
    let me = user();
    let before = Utc::now() - Duration::seconds(2);
    let reply = start_with(&api, "/api/v1/streams", &[("x-forwarded-for", &me)], None).await?;
    let after = Utc::now() + Duration::seconds(2);
    let stream = expect_stream(&reply, 201)?;
    let started = started_at(&stream);
    ensure!(
        before <= started && started <= after,
        "started_at {started} not in [{before}, {after}]"
    );
    ensure!(
        expires(&stream) - started == Duration::seconds(LEASE_SECONDS),
        "{stream}"
    );
    let active = api
        .get("/api/v1/streams", &[("x-forwarded-for", &me)])
        .await?;
    ensure!(active.json()?["active"] == json!([stream]));
    Ok(())
}
