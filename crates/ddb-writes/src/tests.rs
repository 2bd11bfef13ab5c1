use super::*;
use ddb_model::schema::{number_partition, DIRECTORY_PK};
use ddb_model::value::Number;
use futures::executor::block_on;
use kit::table::memory::MemoryKv;
use kit::table::Cond;
use kit::{EdgeCaching, MapConfig};
use serde_json::json;
use std::cell::Cell;

fn env() -> kit::Env {
    let mut env = kit::host::native::env(MemoryKv::new(), MapConfig::default());
    env.cache = Box::new(kit::host::native::MemoryCache::default());
    env
}

fn movie(title: &str, actors: &[&str]) -> Value {
    let actors: Vec<Value> = actors.iter().map(|a| json!({ "S": a })).collect();
    json!({
        "year": { "N": "2013" },
        "title": { "S": title },
        "info": { "M": { "actors": { "L": actors } } },
    })
}

fn year_2013() -> String {
    number_partition(&Number::from(2013))
}

/// Stores `item` in `Movies` through the door, as a writer does.
async fn put_movie(env: &kit::Env, item: &Value) {
    let (def, door) = (schema::movies(), Door::new(env));
    let title = item["title"]["S"].as_str().unwrap_or_default().to_owned();
    door.open(&def, &year_2013()).await.unwrap();
    let table = env.table(&def.storage_name()).unwrap();
    table
        .put(&year_2013(), &title, item.clone(), Cond::Any)
        .await
        .unwrap();
    door.close(&def, &[(item, Some(item))]).await.unwrap();
}

async fn movies_of(env: &kit::Env, person: &str) -> Vec<String> {
    let graph = graph_model::Graph::open(env).unwrap();
    let people = graph.people(&[person.to_owned()]).await.unwrap();
    people
        .into_iter()
        .flatten()
        .flat_map(|node| node.movies())
        .map(|m| m.title)
        .collect()
}

#[test]
fn open_lists_the_partition_so_that_a_scan_finds_it() {
    let env = env();
    let def = schema::movies();
    block_on(async {
        Door::new(&env).open(&def, &year_2013()).await.unwrap();
        let directory = env.table(&def.directory_name()).unwrap();
        let listed = directory.get(DIRECTORY_PK, &year_2013()).await.unwrap();
        assert!(listed.is_some(), "the partition is not listed");
    });
}

#[test]
fn close_links_a_written_movies_cast_into_the_graph() {
    let env = env();
    block_on(async {
        put_movie(&env, &movie("Rush", &["Daniel Bruhl", "Chris Hemsworth"])).await;
        assert_eq!(movies_of(&env, "Daniel Bruhl").await, ["Rush"]);
        assert_eq!(movies_of(&env, "Chris Hemsworth").await, ["Rush"]);
    });
}

#[test]
fn close_unlinks_a_deleted_movie_from_the_graph() {
    let env = env();
    let def = schema::movies();
    block_on(async {
        let rush = movie("Rush", &["Daniel Bruhl"]);
        put_movie(&env, &rush).await;
        let table = env.table(&def.storage_name()).unwrap();
        assert!(table.delete(&year_2013(), "Rush", Cond::Any).await.unwrap());
        Door::new(&env).close(&def, &[(&rush, None)]).await.unwrap();
        assert!(movies_of(&env, "Daniel Bruhl").await.is_empty());
    });
}

#[test]
fn close_leaves_the_graph_alone_when_the_write_changed_nothing() {
    let env = env();
    let def = schema::movies();
    block_on(async {
        Door::new(&env).close(&def, &[]).await.unwrap();
        assert!(movies_of(&env, "Daniel Bruhl").await.is_empty());
    });
}

#[test]
fn close_makes_the_next_cached_read_of_the_table_a_miss() {
    let env = env();
    let caching = EdgeCaching {
        table: schema::MOVIES,
        ttl_secs: 60,
        uncached: &[],
    };
    let reads = Cell::new(0);
    let read = || {
        let req = http::Request::get("/movies")
            .body(kit::Bytes::new())
            .unwrap();
        kit::serve_cached(
            req,
            &env,
            "t",
            kit::BodyLimit::DEFAULT,
            Some(caching),
            |_, _| {
                reads.set(reads.get() + 1);
                async {
                    let answer = kit::json(http::StatusCode::OK, &json!({}));
                    Ok(kit::revalidated(answer, kit::REVALIDATE_ALWAYS))
                }
            },
        )
    };
    block_on(async {
        read().await;
        read().await;
        assert_eq!(
            reads.get(),
            1,
            "the second read was not served from the cache"
        );
        Door::new(&env).close(&schema::movies(), &[]).await.unwrap();
        read().await;
        assert_eq!(
            reads.get(),
            2,
            "the read after the write was served from the cache"
        );
    });
}
