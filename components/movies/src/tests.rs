//! Handler tests on the in-memory backend: what the conformance suite checks over HTTP,
//! plus the case no conformance host can show (no admin token configured).

use super::*;
use futures::executor::block_on;
use kit::table::memory::MemoryKv;
use kit::Bytes;
use kit::MapConfig;
use serde_json::{json, Value};
use std::collections::HashMap;

const TOKEN: &str = "test-token";

fn env_with(token: Option<&str>) -> kit::Env {
    let mut config = HashMap::new();
    if let Some(token) = token {
        config.insert("admin_token".to_owned(), token.to_owned());
    }
    kit::host::native::env(MemoryKv::new(), MapConfig(config))
}

struct Reply {
    status: StatusCode,
    body: Bytes,
    headers: http::HeaderMap,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

fn call(env: &kit::Env, method: &str, uri: &str, token: Option<&str>, body: Vec<u8>) -> Reply {
    let mut builder = http::Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let req = builder.body(Bytes::from(body)).unwrap();
    let response = block_on(handle(req, env));
    Reply {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.into_body(),
    }
}

fn import(env: &kit::Env, items: &Value) -> Reply {
    call(
        env,
        "POST",
        "/api/movies/import",
        Some(TOKEN),
        serde_json::to_vec(items).unwrap(),
    )
}

fn titles(reply: &Reply) -> Vec<String> {
    reply.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["title"].as_str().unwrap().to_owned())
        .collect()
}

fn sample() -> Value {
    json!([
        {"year": 2013, "title": "Rush", "info": {"genres": ["Action", "Drama"], "rating": 8.3}},
        {"year": 2013, "title": "Prisoners", "info": {"genres": ["Crime", "Drama"], "rating": 8.2}},
        {"year": 2013, "title": "Gravity", "info": {"genres": ["Sci-Fi"], "rating": 7.9}},
        {"year": 2013, "title": "Ünrated", "info": {"genres": ["Drama"]}},
        {"year": 2013, "title": "Bare"},
        {"year": 1999, "title": "The Matrix", "info": {"genres": ["Sci-Fi"], "rating": 8.7}},
    ])
}

#[test]
fn admin_routes_return_503_admin_disabled_when_no_token_is_configured() {
    let env = env_with(None);
    let body = serde_json::to_vec(&json!({"info": {}})).unwrap();
    for (method, uri, body) in [
        ("PUT", "/api/movies/2013/Rush", body),
        ("DELETE", "/api/movies/2013/Rush", vec![]),
        ("POST", "/api/movies/import", b"[]".to_vec()),
    ] {
        for token in [None, Some(""), Some("anything")] {
            let reply = call(&env, method, uri, token, body.clone());
            assert_eq!(
                reply.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{method} {uri}"
            );
            assert_eq!(reply.code(), "admin_disabled");
        }
    }
    // Reads need no token.
    let reply = call(&env, "GET", "/api/movies?year=2013", None, vec![]);
    assert_eq!(reply.status, StatusCode::OK);
}

#[test]
fn admin_routes_return_401_when_token_is_missing_or_wrong() {
    let env = env_with(Some(TOKEN));
    for token in [None, Some("wrong"), Some("")] {
        let reply = call(&env, "POST", "/api/movies/import", token, b"[]".to_vec());
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.code(), "unauthorized");
    }
}

#[test]
fn import_then_list_returns_year_by_title_with_filters() {
    let env = env_with(Some(TOKEN));
    let reply = import(&env, &sample());
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({"imported": 6}));
    let all = call(&env, "GET", "/api/movies?year=2013", None, vec![]);
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(
        titles(&all),
        ["Bare", "Gravity", "Prisoners", "Rush", "Ünrated"]
    );
    assert_eq!(all.json()["next_cursor"], Value::Null);
    assert_eq!(
        all.json()["items"][0],
        json!({"year": 2013, "title": "Bare"})
    );
    let drama = call(
        &env,
        "GET",
        "/api/movies?year=2013&genre=Drama",
        None,
        vec![],
    );
    assert_eq!(titles(&drama), ["Prisoners", "Rush", "Ünrated"]);
    let rated = call(
        &env,
        "GET",
        "/api/movies?year=2013&min_rating=8",
        None,
        vec![],
    );
    assert_eq!(titles(&rated), ["Prisoners", "Rush"]);
    let both = call(
        &env,
        "GET",
        "/api/movies?year=2013&genre=Drama&min_rating=8.25",
        None,
        vec![],
    );
    assert_eq!(titles(&both), ["Rush"]);
    let empty = call(&env, "GET", "/api/movies?year=1800", None, vec![]);
    assert_eq!(empty.json(), json!({"items": [], "next_cursor": null}));
}

#[test]
fn paging_with_cursor_reassembles_the_filtered_year() {
    let env = env_with(Some(TOKEN));
    import(&env, &sample());
    for limit in 1..=4 {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let uri = match &cursor {
                Some(c) => format!("/api/movies?year=2013&genre=Drama&limit={limit}&cursor={c}"),
                None => format!("/api/movies?year=2013&genre=Drama&limit={limit}"),
            };
            let reply = call(&env, "GET", &uri, None, vec![]);
            assert_eq!(reply.status, StatusCode::OK, "{uri}");
            let page = titles(&reply);
            assert!(page.len() <= limit && !page.is_empty());
            seen.extend(page);
            pages += 1;
            match reply.json()["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, ["Prisoners", "Rush", "Ünrated"], "limit {limit}");
        assert_eq!(pages, 3_usize.div_ceil(limit), "no empty last page");
    }
    // A cursor of the Drama query does not resume the unfiltered one.
    let first = call(
        &env,
        "GET",
        "/api/movies?year=2013&genre=Drama&limit=1",
        None,
        vec![],
    );
    let cursor = first.json()["next_cursor"].as_str().unwrap().to_owned();
    let reply = call(
        &env,
        "GET",
        &format!("/api/movies?year=2013&cursor={cursor}"),
        None,
        vec![],
    );
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "invalid_query");
}

#[test]
fn import_merges_with_stored_movies_of_the_same_year() {
    let env = env_with(Some(TOKEN));
    import(&env, &sample());
    let reply = import(
        &env,
        &json!([{"year": 2013, "title": "Rush", "info": {"rating": 1}},
                {"year": 2013, "title": "Her"}]),
    );
    assert_eq!(reply.json(), json!({"imported": 2}));
    let all = call(&env, "GET", "/api/movies?year=2013", None, vec![]);
    assert_eq!(
        titles(&all),
        ["Bare", "Gravity", "Her", "Prisoners", "Rush", "Ünrated"]
    );
    let rush = call(&env, "GET", "/api/movies/2013/Rush", None, vec![]);
    assert_eq!(rush.json()["info"], json!({"rating": 1}));
}

#[test]
fn import_with_one_bad_item_writes_nothing() {
    let env = env_with(Some(TOKEN));
    let mut items = sample();
    items
        .as_array_mut()
        .unwrap()
        .insert(3, json!({"year": 2013, "title": ""}));
    let reply = import(&env, &items);
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "invalid_body");
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("index 3"), "{message}");
    let all = call(&env, "GET", "/api/movies?year=2013", None, vec![]);
    assert_eq!(titles(&all), Vec::<String>::new());
}

#[test]
fn put_get_delete_round_trip_any_title() {
    let env = env_with(Some(TOKEN));
    for (encoded, title) in [
        ("V%2FH%2FS", "V/H/S"),
        ("100%25%20sure%3F%20%23one", "100% sure? #one"),
        ("Am%C3%A9lie%20%F0%9F%8E%AC", "Amélie 🎬"),
        ("a+b", "a+b"),
    ] {
        let uri = format!("/api/movies/2020/{encoded}");
        let body =
            serde_json::to_vec(&json!({"info": {"plot": title}, "title": "ignored"})).unwrap();
        let put = call(&env, "PUT", &uri, Some(TOKEN), body);
        assert_eq!(put.status, StatusCode::OK, "{title}");
        let want = json!({"year": 2020, "title": title, "info": {"plot": title}});
        assert_eq!(put.json(), want);
        let got = call(&env, "GET", &uri, None, vec![]);
        assert_eq!(got.json(), want);
        assert_eq!(got.headers.get("content-type").unwrap(), "application/json");
        let del = call(&env, "DELETE", &uri, Some(TOKEN), vec![]);
        assert_eq!(del.status, StatusCode::NO_CONTENT);
        assert!(del.body.is_empty());
        let gone = call(&env, "GET", &uri, None, vec![]);
        assert_eq!(gone.status, StatusCode::NOT_FOUND);
        assert_eq!(gone.code(), "movie_not_found");
        let again = call(&env, "DELETE", &uri, Some(TOKEN), vec![]);
        assert_eq!(again.code(), "movie_not_found");
    }
}

#[test]
fn bad_paths_and_bodies_return_400_and_change_nothing() {
    let env = env_with(Some(TOKEN));
    let good = serde_json::to_vec(&json!({"info": {}})).unwrap();
    for (uri, body, code) in [
        ("/api/movies/20x3/Rush", good.clone(), "invalid_year"),
        ("/api/movies/10000/Rush", good.clone(), "invalid_year"),
        ("/api/movies/2013/", good.clone(), "invalid_title"),
        ("/api/movies/2013/%FF", good.clone(), "invalid_path"),
        ("/api/movies/2013/Rush", b"{}".to_vec(), "invalid_body"),
        (
            "/api/movies/2013/Rush",
            b"{\"info\": []}".to_vec(),
            "invalid_body",
        ),
        ("/api/movies/2013/Rush", b"nope".to_vec(), "invalid_body"),
    ] {
        let reply = call(&env, "PUT", uri, Some(TOKEN), body);
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(reply.code(), code, "{uri}");
    }
    let all = call(&env, "GET", "/api/movies?year=2013", None, vec![]);
    assert_eq!(titles(&all), Vec::<String>::new());
}

#[test]
fn body_limits_are_64_kib_except_8_mib_for_import() {
    let env = env_with(Some(TOKEN));
    let plot = "x".repeat(70 * 1024);
    let big = serde_json::to_vec(&json!({"info": {"plot": plot}})).unwrap();
    let reply = call(&env, "PUT", "/api/movies/2013/Big", Some(TOKEN), big);
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.code(), "payload_too_large");
    let items = json!([{"year": 2013, "title": "Big", "info": {"plot": plot}}]);
    assert_eq!(import(&env, &items).status, StatusCode::OK);
    let huge = vec![b' '; 8 * 1024 * 1024 + 1];
    let reply = call(&env, "POST", "/api/movies/import", Some(TOKEN), huge);
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[test]
fn routes_answer_404_and_405_like_every_service() {
    let env = env_with(Some(TOKEN));
    let reply = call(&env, "GET", "/api/movies/import", None, vec![]);
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers.get("allow").unwrap(), "POST");
    let reply = call(&env, "POST", "/api/movies/2013/Rush", None, vec![]);
    assert_eq!(reply.headers.get("allow").unwrap(), "GET, PUT, DELETE");
    for uri in ["/api/movies/2013", "/api/movies/2013/a/b", "/api/moviesx"] {
        let reply = call(&env, "GET", uri, None, vec![]);
        assert_eq!(reply.code(), "not_found", "{uri}");
    }
    let reply = call(&env, "GET", "/api/movies", None, vec![]);
    assert_eq!(reply.code(), "invalid_query");
}

#[test]
fn import_of_a_year_past_two_megabytes_stores_every_movie() {
    let env = env_with(Some(TOKEN));
    let plot = "p".repeat(300_000);
    let year = |n: usize| -> Value {
        (0..n)
            .map(|i| json!({"year": 1999, "title": format!("Long {i}"), "info": {"plot": plot}}))
            .collect()
    };
    // 2.4 MB in one year: past what one stored value held before items were stored
    // one by one.
    assert_eq!(import(&env, &year(8)).status, StatusCode::OK);
    let listed = call(&env, "GET", "/api/movies?year=1999", None, Vec::new());
    let wanted: Vec<String> = (0..8).map(|i| format!("Long {i}")).collect();
    assert_eq!(titles(&listed), wanted);
}
