//! Handler tests on the in-memory backend, with movies written through the movies API
//! so the graph is the one its writes maintain.

use super::*;
use futures::executor::block_on;
use kit::table::memory::MemoryKv;
use kit::{Bytes, MapConfig};
use serde_json::Value;
use std::collections::HashMap;

const TOKEN: &str = "t";

fn env(kv: &MemoryKv) -> kit::Env {
    let config = HashMap::from([("admin_token".to_owned(), TOKEN.to_owned())]);
    kit::host::native::env(kv.clone(), MapConfig(config))
}

fn call(kv: &MemoryKv, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let body = body
        .map(|b| serde_json::to_vec(&b).unwrap())
        .unwrap_or_default();
    let req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Bytes::from(body))
        .unwrap();
    let env = env(kv);
    let response = if uri.starts_with("/api/movies") {
        block_on(movies::handle(req, &env))
    } else {
        block_on(handle(req, &env))
    };
    let status = response.status();
    let json = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
    (status, json)
}

fn code(reply: &(StatusCode, Value)) -> (StatusCode, &str) {
    (reply.0, reply.1["error"]["code"].as_str().unwrap_or(""))
}

fn seeded() -> MemoryKv {
    let kv = MemoryKv::new();
    let movies = json!([
        {"year": 2001, "title": "One", "info": {"actors": ["Ann", "Bob"], "directors": ["Dee"]}},
        {"year": 2002, "title": "Two", "info": {"actors": ["Bob", "Cy"]}},
        {"year": 2003, "title": "Three", "info": {"actors": ["Cy", "Dan"]}},
        {"year": 2004, "title": "Solo", "info": {"actors": ["Eve"]}},
    ]);
    let reply = call(&kv, "POST", "/api/movies/import", Some(movies));
    assert_eq!(reply.0, StatusCode::OK, "{}", reply.1);
    kv
}

#[test]
fn actor_returns_movies_and_costars_ordered() {
    let kv = seeded();
    let (status, body) = call(&kv, "GET", "/api/graph/actors/Bob", None);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "name": "Bob",
            "movies": [{"year": 2001, "title": "One"}, {"year": 2002, "title": "Two"}],
            "costars": [
                {"name": "Ann", "movies_together": 1},
                {"name": "Cy", "movies_together": 1},
                {"name": "Dee", "movies_together": 1},
            ],
        })
    );
    let reply = call(&kv, "GET", "/api/graph/actors/Nobody", None);
    assert_eq!(code(&reply), (StatusCode::NOT_FOUND, "actor_not_found"));
}

#[test]
fn path_follows_movie_writes_through_the_movies_api() {
    let kv = seeded();
    let (status, body) = call(&kv, "GET", "/api/graph/path?from=Ann&to=Dan", None);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["degrees"], 3);
    let reply = call(&kv, "GET", "/api/graph/path?from=Ann&to=Eve", None);
    assert_eq!(code(&reply), (StatusCode::NOT_FOUND, "no_path"));
    let reply = call(
        &kv,
        "PUT",
        "/api/movies/2010/Link",
        Some(json!({"info": {"actors": ["Eve", "Ann"]}})),
    );
    assert_eq!(reply.0, StatusCode::OK);
    let (_, body) = call(&kv, "GET", "/api/graph/path?from=Ann&to=Eve", None);
    assert_eq!(
        body["path"],
        json!([{"actor": "Ann"}, {"movie": {"year": 2010, "title": "Link"}}, {"actor": "Eve"}])
    );
    assert_eq!(
        call(&kv, "DELETE", "/api/movies/2010/Link", None).0,
        StatusCode::NO_CONTENT
    );
    let reply = call(&kv, "GET", "/api/graph/path?from=Ann&to=Eve", None);
    assert_eq!(code(&reply), (StatusCode::NOT_FOUND, "no_path"));
    let (_, body) = call(&kv, "GET", "/api/graph/path?from=Dan&to=Dan", None);
    assert_eq!(body["degrees"], 0);
}

#[test]
fn path_without_from_or_to_returns_400_invalid_query() {
    let kv = seeded();
    for uri in [
        "/api/graph/path?from=Ann",
        "/api/graph/path?to=Ann",
        "/api/graph/path",
        "/api/graph/path?from=&to=Ann",
    ] {
        let reply = call(&kv, "GET", uri, None);
        assert_eq!(
            code(&reply),
            (StatusCode::BAD_REQUEST, "invalid_query"),
            "{uri}"
        );
    }
    let reply = call(&kv, "GET", "/api/graph/path?from=Ann&to=Zed", None);
    assert_eq!(code(&reply), (StatusCode::NOT_FOUND, "actor_not_found"));
}

#[test]
fn recommendations_rank_friends_and_favourite_actors_deterministically() {
    let kv = seeded();
    for uri in [
        "/api/graph/users/amy/friends/ben",
        "/api/graph/users/amy/friends/cat",
        "/api/graph/users/ben/watched/2001/One",
        "/api/graph/users/cat/watched/2001/One",
        "/api/graph/users/cat/watched/2002/Two",
        "/api/graph/users/amy/favorite-actors/Cy",
        "/api/graph/users/amy/watched/2004/Solo",
        // Again: idempotent.
        "/api/graph/users/amy/favorite-actors/Cy",
    ] {
        assert_eq!(
            call(&kv, "PUT", uri, None).0,
            StatusCode::NO_CONTENT,
            "{uri}"
        );
    }
    let (_, user) = call(&kv, "GET", "/api/graph/users/ben", None);
    assert_eq!(user["friends"], json!(["amy"]), "friendship is mutual");
    let (_, watched) = call(&kv, "GET", "/api/graph/users/amy/friends/watched", None);
    assert_eq!(
        watched["items"],
        json!([
            {"year": 2001, "title": "One", "watched_by": ["ben", "cat"], "friends": 2},
            {"year": 2002, "title": "Two", "watched_by": ["cat"], "friends": 1},
        ])
    );
    let (_, recs) = call(&kv, "GET", "/api/graph/users/amy/recommendations", None);
    let got: Vec<(String, u64)> = recs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["title"].as_str().unwrap().to_owned(),
                i["score"].as_u64().unwrap(),
            )
        })
        .collect();
    // One and Two tie on score; One has more friends behind it.
    assert_eq!(
        got,
        vec![("One".into(), 2), ("Two".into(), 2), ("Three".into(), 1)]
    );
    assert_eq!(
        recs["items"][1]["reasons"],
        json!({"friends_watched": ["cat"], "favorite_actors": ["Cy"]})
    );
    assert_eq!(
        call(&kv, "DELETE", "/api/graph/users/amy/friends/cat", None).0,
        StatusCode::NO_CONTENT
    );
    let (_, user) = call(&kv, "GET", "/api/graph/users/cat", None);
    assert_eq!(user["friends"], json!([]));
}

#[test]
fn bad_user_input_returns_4xx_and_changes_nothing() {
    let kv = seeded();
    let cases = [
        (
            "PUT",
            "/api/graph/users/amy1/friends/ben",
            StatusCode::BAD_REQUEST,
            "invalid_username",
        ),
        (
            "PUT",
            "/api/graph/users/amy/friends/b%20n",
            StatusCode::BAD_REQUEST,
            "invalid_username",
        ),
        (
            "PUT",
            "/api/graph/users/amy/friends/amy",
            StatusCode::BAD_REQUEST,
            "invalid_friend",
        ),
        (
            "PUT",
            "/api/graph/users/amy/watched/2001/Nope",
            StatusCode::NOT_FOUND,
            "movie_not_found",
        ),
        (
            "PUT",
            "/api/graph/users/amy/watched/year/One",
            StatusCode::BAD_REQUEST,
            "invalid_year",
        ),
        (
            "PUT",
            "/api/graph/users/amy/favorite-actors/Nobody",
            StatusCode::NOT_FOUND,
            "actor_not_found",
        ),
        (
            "GET",
            "/api/graph/users/amy/recommendations?limit=0",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
    ];
    for (method, uri, status, want) in cases {
        let reply = call(&kv, method, uri, None);
        assert_eq!(code(&reply), (status, want), "{method} {uri}");
    }
    let (_, user) = call(&kv, "GET", "/api/graph/users/amy", None);
    assert_eq!(
        user,
        json!({"name": "amy", "friends": [], "watched": [], "favorite_actors": []})
    );
}

#[test]
fn rebuild_restores_the_graph_from_the_movies_table() {
    let kv = seeded();
    let (_, before) = call(&kv, "GET", "/api/graph/path?from=Ann&to=Dan", None);
    // Lose the graph: clear every shard.
    let graph = kv.table(graph_model::TABLE);
    for n in 0..graph_model::DEFAULT_SHARDS {
        block_on(kit::table::Table::put_partition(
            &graph,
            &format!("s{n}"),
            vec![],
        ))
        .unwrap();
    }
    let reply = call(&kv, "GET", "/api/graph/path?from=Ann&to=Dan", None);
    assert_eq!(code(&reply), (StatusCode::NOT_FOUND, "actor_not_found"));
    let (status, rebuilt) = call(&kv, "POST", "/api/graph/rebuild", None);
    assert_eq!(status, StatusCode::OK, "{rebuilt}");
    assert_eq!(rebuilt["movies"], 4);
    let (_, after) = call(&kv, "GET", "/api/graph/path?from=Ann&to=Dan", None);
    assert_eq!(before["path"], after["path"]);
}

#[test]
fn a_shipped_user_edit_decides_as_the_edit_it_was_made_from() {
    let held = Item {
        sk: String::new(),
        value: json!({"friends": ["bob"], "watched": [], "favorite_actors": []}),
        version: 3,
    };
    let corrupt = Item {
        sk: String::new(),
        value: json!({"friends": 7}),
        version: 1,
    };
    for set in [UserSet::Friends, UserSet::Watched, UserSet::FavoriteActors] {
        for on in [true, false] {
            for value in ["bob", "carol"] {
                let edit = UserEdit {
                    set,
                    value: value.into(),
                    on,
                };
                let shipped = mutations(edit.kind(), edit.args()).expect("rebuilds");
                for item in [None, Some(&held), Some(&corrupt)] {
                    assert_eq!(
                        edit.decide(item).unwrap(),
                        shipped.decide(item).unwrap(),
                        "{edit:?} on {item:?}"
                    );
                }
            }
        }
    }
    // Adding a friend already there, or removing one not there, writes nothing.
    let again = UserEdit {
        set: UserSet::Friends,
        value: "bob".into(),
        on: true,
    };
    assert_eq!(again.decide(Some(&held)).unwrap().0, Change::Keep);
    let (change, note) = again.decide(Some(&corrupt)).unwrap();
    assert_eq!(change, Change::Keep);
    assert!(note["corrupt"].is_string(), "{note}");
}
