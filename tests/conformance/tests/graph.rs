//! The OpenAPI tag `graph`, the movie graph, on the real sample `moviedata.json`: every path answer
//! is checked against a breadth-first search computed here over the same file, every
//! returned chain against the file's casts, and writes through the movies API (and
//! the DynamoDB endpoint) must move the graph. Cases that write use years 9000 and
//! up and people and users no other case names.

use crate::cases;
use crate::common::{expect_error, Case};
use crate::movies::{delete_movie, import, put_movie, sample};
use anyhow::{ensure, Context, Result};
use conformance::{encode_segment, Api, Host, Reply};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

pub fn cases() -> Vec<Case> {
    cases![
        path_degrees_equal_an_independent_bfs_over_the_file,
        actor_returns_the_movies_and_costars_of_the_file,
        movie_put_delete_and_import_move_the_graph,
        dynamodb_writes_to_movies_move_the_graph,
        concurrent_movie_writes_all_reach_the_graph,
        user_friends_watched_and_recommendations_work_end_to_end,
        concurrent_user_writes_lose_nothing,
        bad_input_returns_4xx_and_changes_nothing,
    ]
}

/// The sample's graph, computed here: person → movies, movie → people.
struct FileGraph {
    movies_of: BTreeMap<String, BTreeSet<(u64, String)>>,
    people_of: BTreeMap<(u64, String), BTreeSet<String>>,
}

fn names(info: &Value, field: &str) -> Vec<String> {
    info.get(field)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn file_graph() -> Result<&'static FileGraph> {
    static GRAPH: OnceLock<FileGraph> = OnceLock::new();
    if let Some(g) = GRAPH.get() {
        return Ok(g);
    }
    let mut g = FileGraph {
        movies_of: BTreeMap::new(),
        people_of: BTreeMap::new(),
    };
    for item in &sample()?.items {
        let key = (
            item["year"].as_u64().context("year")?,
            item["title"].as_str().context("title")?.to_owned(),
        );
        let info = &item["info"];
        let people: BTreeSet<String> = names(info, "actors")
            .into_iter()
            .chain(names(info, "directors"))
            .collect();
        for p in &people {
            g.movies_of
                .entry(p.clone())
                .or_default()
                .insert(key.clone());
        }
        g.people_of.insert(key, people);
    }
    Ok(GRAPH.get_or_init(|| g))
}

impl FileGraph {
    /// Plain BFS from `from`: every reachable person's distance in movies.
    fn distances<'a>(&'a self, from: &'a str) -> HashMap<&'a str, usize> {
        let mut dist: HashMap<&str, usize> = HashMap::from([(from, 0)]);
        let mut queue = VecDeque::from([from]);
        let mut seen_movies = BTreeSet::new();
        while let Some(p) = queue.pop_front() {
            let d = dist[p];
            for m in self.movies_of.get(p).into_iter().flatten() {
                if !seen_movies.insert(m) {
                    continue;
                }
                for q in &self.people_of[m] {
                    if !dist.contains_key(q.as_str()) {
                        dist.insert(q, d + 1);
                        queue.push_back(q);
                    }
                }
            }
        }
        dist
    }
}

/// A small deterministic generator (SplitMix64), so failures replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

/// Imports the sample (again: harmless, and it restores any sample movie another
/// case changed), so the graph is the file's.
async fn ensure_sample(api: &Api) -> Result<()> {
    let reply = import(api, sample()?.bytes.clone()).await?;
    ensure!(
        reply.status == 200,
        "import: {} {}",
        reply.status,
        text(&reply)
    );
    Ok(())
}

fn text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

async fn path(api: &Api, from: &str, to: &str) -> Result<Reply> {
    api.get(
        &format!(
            "/api/graph/path?from={}&to={}",
            encode_segment(from),
            encode_segment(to)
        ),
        &[],
    )
    .await
}

/// Checks that `body` is a chain from `from` to `to` whose every movie, in the file,
/// has the people on either side of it; returns its degrees.
fn check_chain(g: &FileGraph, body: &Value, from: &str, to: &str) -> Result<usize> {
    let steps = body["path"].as_array().context("path is not an array")?;
    ensure!(steps.len() % 2 == 1, "even-length path {body}");
    let actor = |i: usize| steps[i]["actor"].as_str();
    ensure!(actor(0) == Some(from), "path starts at {:?}", steps[0]);
    ensure!(
        actor(steps.len() - 1) == Some(to),
        "path ends at {:?}",
        steps.last()
    );
    for i in (1..steps.len()).step_by(2) {
        let m = &steps[i]["movie"];
        let key = (
            m["year"].as_u64().context("movie year")?,
            m["title"].as_str().context("movie title")?.to_owned(),
        );
        let people = g
            .people_of
            .get(&key)
            .with_context(|| format!("{key:?} is not in the file"))?;
        for side in [i - 1, i + 1] {
            let p = actor(side).context("an actor step")?;
            ensure!(people.contains(p), "{p} is not in {key:?}");
        }
    }
    let degrees = steps.len() / 2;
    ensure!(
        body["degrees"] == json!(degrees),
        "degrees {} for {degrees} movies",
        body["degrees"]
    );
    Ok(degrees)
}

async fn path_degrees_equal_an_independent_bfs_over_the_file(api: Api, _: Host) -> Result<()> {
    ensure_sample(&api).await?;
    let g = file_graph()?;
    let people: Vec<&str> = g.movies_of.keys().map(String::as_str).collect();
    let seed: u64 = std::env::var("GRAPH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(11);
    let mut rng = Rng(seed);
    let (mut found, mut unconnected) = (0, 0);
    for round in 0..40 {
        let from = *rng.pick(&people);
        let dist = g.distances(from);
        // Every fourth pair is chosen unconnected when the file has one.
        let to = if round % 4 == 3 {
            match people
                .iter()
                .find(|p| !dist.contains_key(**p) && rng.next().is_multiple_of(8))
            {
                Some(p) => *p,
                None => *rng.pick(&people),
            }
        } else {
            *rng.pick(&people)
        };
        let reply = path(&api, from, to).await?;
        match dist.get(to) {
            Some(&want) => {
                ensure!(
                    reply.status == 200,
                    "{from} -> {to}: {} {}",
                    reply.status,
                    text(&reply)
                );
                let got = check_chain(g, &reply.json()?, from, to)?;
                ensure!(
                    got == want,
                    "{from} -> {to}: {got} degrees, the file's BFS says {want}"
                );
                found += 1;
            }
            None => {
                expect_error(&reply, 404, "no_path").with_context(|| format!("{from} -> {to}"))?;
                unconnected += 1;
            }
        }
    }
    ensure!(
        found >= 20 && unconnected >= 3,
        "{found} connected, {unconnected} unconnected pairs"
    );
    for who in ["Tom Hanks", "Kevin Bacon"] {
        let reply = path(&api, who, who).await?;
        ensure!(reply.status == 200, "{who} -> {who}: {}", text(&reply));
        let body = reply.json()?;
        ensure!(
            body["degrees"] == 0 && body["path"] == json!([{"actor": who}]),
            "{body}"
        );
    }
    Ok(())
}

async fn actor_returns_the_movies_and_costars_of_the_file(api: Api, _: Host) -> Result<()> {
    ensure_sample(&api).await?;
    let g = file_graph()?;
    let people: Vec<&String> = g.movies_of.keys().collect();
    let mut rng = Rng(5);
    let mut chosen: Vec<&str> = vec!["Robert De Niro", "Steven Spielberg"];
    chosen.extend((0..8).map(|_| rng.pick(&people).as_str()));
    for name in chosen {
        let reply = api
            .get(&format!("/api/graph/actors/{}", encode_segment(name)), &[])
            .await?;
        ensure!(
            reply.status == 200,
            "{name}: {} {}",
            reply.status,
            text(&reply)
        );
        let body = reply.json()?;
        let movies: Vec<(u64, String)> = body["movies"]
            .as_array()
            .context("movies")?
            .iter()
            .map(|m| {
                (
                    m["year"].as_u64().unwrap_or(0),
                    m["title"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        let want: Vec<(u64, String)> = g.movies_of[name].iter().cloned().collect();
        ensure!(
            movies == want,
            "{name}: movies {movies:?}, the file has {want:?}"
        );
        let mut together: BTreeMap<&str, u64> = BTreeMap::new();
        for m in &g.movies_of[name] {
            for p in &g.people_of[m] {
                if p != name {
                    *together.entry(p).or_default() += 1;
                }
            }
        }
        let mut want: Vec<(String, u64)> = together
            .into_iter()
            .map(|(p, n)| (p.to_owned(), n))
            .collect();
        want.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let got: Vec<(String, u64)> = body["costars"]
            .as_array()
            .context("costars")?
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or("").to_owned(),
                    c["movies_together"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        ensure!(
            got == want,
            "{name}: costars {got:?}, the file gives {want:?}"
        );
    }
    let reply = api.get("/api/graph/actors/Nobody%20At%20All", &[]).await?;
    expect_error(&reply, 404, "actor_not_found")
}

/// A year no sample movie has, and a tag no other name uses, fresh for each use.
fn fresh() -> (u16, String) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (9000 + (n % 999) as u16, format!("{n}-{nanos}"))
}

async fn degrees(api: &Api, from: &str, to: &str) -> Result<Option<u64>> {
    let reply = path(api, from, to).await?;
    match reply.status {
        200 => Ok(reply.json()?["degrees"].as_u64()),
        404 if reply.error_code().as_deref() == Some("no_path") => Ok(None),
        _ => anyhow::bail!("{from} -> {to}: {} {}", reply.status, text(&reply)),
    }
}

async fn movie_put_delete_and_import_move_the_graph(api: Api, _: Host) -> Result<()> {
    let (year, tag) = fresh();
    let (a, b) = (format!("Ada {tag}"), format!("Bo {tag}"));
    for (title, who) in [("Alpha", &a), ("Beta", &b)] {
        let reply = put_movie(
            &api,
            year,
            &format!("{title} {tag}"),
            &json!({"actors": [who]}),
        )
        .await?;
        ensure!(reply.status == 200, "put: {}", text(&reply));
    }
    ensure!(
        degrees(&api, &a, &b).await?.is_none(),
        "{a} and {b} start unconnected"
    );
    let link = format!("Link {tag}");
    let reply = put_movie(
        &api,
        year,
        &link,
        &json!({"actors": [&a], "directors": [&b]}),
    )
    .await?;
    ensure!(reply.status == 200, "put: {}", text(&reply));
    let reply = path(&api, &a, &b).await?;
    ensure!(
        reply.json()?["path"]
            == json!([{"actor": a}, {"movie": {"year": year, "title": link}}, {"actor": b}]),
        "path via the new movie: {}",
        text(&reply)
    );
    // Re-casting the movie moves its edge.
    let c = format!("Cy {tag}");
    put_movie(&api, year, &link, &json!({"actors": [&a, &c]})).await?;
    ensure!(
        degrees(&api, &a, &b).await?.is_none(),
        "recast: {a} and {b} unconnected again"
    );
    ensure!(
        degrees(&api, &a, &c).await? == Some(1),
        "recast: {a} and {c} linked"
    );
    let reply = delete_movie(&api, year, &link).await?;
    ensure!(reply.status == 204, "delete: {}", text(&reply));
    let reply = path(&api, &a, &c).await?;
    expect_error(&reply, 404, "actor_not_found").context("a person whose only movie is deleted")?;
    // An import with a linking movie, to a Tom Hanks movie of the sample.
    let items = json!([{"year": year, "title": format!("Imported {tag}"), "info": {"actors": [&b, "Tom Hanks"]}}]);
    let reply = import(&api, serde_json::to_vec(&items)?).await?;
    ensure!(reply.status == 200, "import: {}", text(&reply));
    ensure!(
        degrees(&api, &b, "Tom Hanks").await? == Some(1),
        "import links {b}"
    );
    ensure!(
        degrees(&api, &a, "Tom Hanks").await?.is_none(),
        "{a} is only in Alpha, alone"
    );
    Ok(())
}

async fn dynamodb_writes_to_movies_move_the_graph(api: Api, _: Host) -> Result<()> {
    let (year, tag) = fresh();
    let (a, b) = (format!("Dee {tag}"), format!("Em {tag}"));
    let item = |title: &str, who: &[&str]| {
        json!({
            "year": {"N": year.to_string()},
            "title": {"S": title},
            "info": {"M": {"actors": {"L": who.iter().map(|w| json!({"S": w})).collect::<Vec<_>>()}}},
        })
    };
    let title = format!("Boto {tag}");
    let reply = crate::dynamodb::call(
        &api,
        "PutItem",
        &json!({"TableName": "Movies", "Item": item(&title, &[&a, &b])}),
    )
    .await?;
    ensure!(reply.status == 200, "PutItem: {}", text(&reply));
    ensure!(
        degrees(&api, &a, &b).await? == Some(1),
        "PutItem on Movies links them"
    );
    let key = json!({"year": {"N": year.to_string()}, "title": {"S": title}});
    let reply = crate::dynamodb::call(
        &api,
        "UpdateItem",
        &json!({"TableName": "Movies", "Key": key, "UpdateExpression": "REMOVE info.actors[1]"}),
    )
    .await?;
    ensure!(reply.status == 200, "UpdateItem: {}", text(&reply));
    let reply = path(&api, &a, &b).await?;
    expect_error(&reply, 404, "actor_not_found")
        .context("after UpdateItem removed the second actor")?;
    let reply = crate::dynamodb::call(
        &api,
        "DeleteItem",
        &json!({"TableName": "Movies", "Key": key}),
    )
    .await?;
    ensure!(reply.status == 200, "DeleteItem: {}", text(&reply));
    let reply = api
        .get(&format!("/api/graph/actors/{}", encode_segment(&a)), &[])
        .await?;
    expect_error(&reply, 404, "actor_not_found").context("after DeleteItem")
}

async fn concurrent_movie_writes_all_reach_the_graph(api: Api, _: Host) -> Result<()> {
    const WRITERS: usize = 12;
    let (year, tag) = fresh();
    let hub = format!("Hub {tag}");
    let writes = (0..WRITERS).map(|i| {
        let (api, hub, tag) = (api.clone(), hub.clone(), tag.clone());
        async move {
            let info = json!({"actors": [hub, format!("Spoke {i} {tag}")]});
            put_movie(&api, year, &format!("Spoke {i} {tag}"), &info).await
        }
    });
    for reply in futures::future::join_all(writes).await {
        let reply = reply?;
        ensure!(
            reply.status == 200,
            "put: {} {}",
            reply.status,
            text(&reply)
        );
    }
    let reply = api
        .get(&format!("/api/graph/actors/{}", encode_segment(&hub)), &[])
        .await?;
    let body = reply.json()?;
    let movies = body["movies"].as_array().map_or(0, Vec::len);
    ensure!(
        movies == WRITERS,
        "{hub} has {movies} of {WRITERS} movies: {body}"
    );
    for i in [0, WRITERS - 1] {
        ensure!(
            degrees(&api, &format!("Spoke 0 {tag}"), &format!("Spoke {i} {tag}")).await?
                == Some(if i == 0 { 0 } else { 2 }),
            "spoke {i}"
        );
    }
    Ok(())
}

/// A user name (letters only) no other case uses.
fn fresh_user(prefix: &str) -> String {
    let (_, tag) = fresh();
    let letters: String = tag
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|d| char::from(b'a' + (d - b'0')))
        .take(20)
        .collect();
    format!("{prefix}{letters}")
}

async fn send(api: &Api, method: Method, path: &str) -> Result<Reply> {
    api.send(method, path, &[], None).await
}

async fn user_friends_watched_and_recommendations_work_end_to_end(api: Api, _: Host) -> Result<()> {
    ensure_sample(&api).await?;
    let (me, ann, bob) = (fresh_user("me"), fresh_user("ann"), fresh_user("bob"));
    let u = |user: &str, rest: &str| format!("/api/graph/users/{user}/{rest}");
    let rush = "watched/2013/Rush";
    let puts = [
        u(&me, &format!("friends/{ann}")),
        u(&bob, &format!("friends/{me}")),
        u(&ann, rush),
        u(&bob, rush),
        u(&bob, "watched/2013/Prisoners"),
        u(&me, "favorite-actors/Hugh%20Jackman"),
        u(&me, "watched/2013/Gravity"),
        u(&me, "watched/2013/Gravity"),
    ];
    for p in &puts {
        let reply = send(&api, Method::PUT, p).await?;
        ensure!(
            reply.status == 204,
            "PUT {p}: {} {}",
            reply.status,
            text(&reply)
        );
    }
    let reply = api.get(&format!("/api/graph/users/{ann}"), &[]).await?;
    ensure!(
        reply.json()?["friends"] == json!([me]),
        "mutual: {}",
        text(&reply)
    );
    let reply = api.get(&u(&me, "friends/watched"), &[]).await?;
    let mut friends = vec![ann.clone(), bob.clone()];
    friends.sort();
    ensure!(
        reply.json()?["items"]
            == json!([
                {"year": 2013, "title": "Rush", "watched_by": friends, "friends": 2},
                {"year": 2013, "title": "Prisoners", "watched_by": [bob], "friends": 1},
            ]),
        "friends/watched: {}",
        text(&reply)
    );
    let reply = api.get(&u(&me, "recommendations?limit=100"), &[]).await?;
    let items = reply.json()?["items"]
        .as_array()
        .cloned()
        .context("items")?;
    let titles: Vec<&str> = items.iter().filter_map(|i| i["title"].as_str()).collect();
    // Both score 2; Rush has more friends behind it.
    ensure!(
        titles.first() == Some(&"Rush"),
        "Rush (2 friends) first: {titles:?}"
    );
    ensure!(
        titles.get(1) == Some(&"Prisoners"),
        "then Prisoners (1 friend + Hugh Jackman): {titles:?}"
    );
    ensure!(
        !titles.contains(&"Gravity"),
        "watched movies are not recommended"
    );
    let g = file_graph()?;
    let jackman = g.movies_of["Hugh Jackman"].len();
    ensure!(
        items.len() == jackman + 1,
        "{} items for {jackman} Jackman movies + Rush",
        items.len()
    );
    ensure!(
        items[1]["reasons"]
            == json!({"friends_watched": [bob], "favorite_actors": ["Hugh Jackman"]})
            && items[1]["score"] == 2,
        "reasons: {}",
        items[1]
    );
    // DELETE undoes, idempotently.
    for _ in 0..2 {
        let reply = send(&api, Method::DELETE, &u(&me, &format!("friends/{ann}"))).await?;
        ensure!(reply.status == 204, "DELETE friend: {}", text(&reply));
    }
    let reply = api.get(&format!("/api/graph/users/{ann}"), &[]).await?;
    ensure!(
        reply.json()?["friends"] == json!([]),
        "unfriended both ways: {}",
        text(&reply)
    );
    Ok(())
}

async fn concurrent_user_writes_lose_nothing(api: Api, host: Host) -> Result<()> {
    ensure_sample(&api).await?;
    let me = fresh_user("busy");
    let sample = sample()?;
    let movies: Vec<(u64, String)> = sample
        .items
        .iter()
        .filter(|i| i["year"] == 2013)
        .take(20)
        .map(|i| (2013, i["title"].as_str().unwrap_or("").to_owned()))
        .collect();
    let friends: Vec<String> = (0..10)
        .map(|i| format!("{}x{}", fresh_user("pal"), char::from(b'a' + i)))
        .collect();
    let mut paths: Vec<String> = movies
        .iter()
        .map(|(y, t)| format!("/api/graph/users/{me}/watched/{y}/{}", encode_segment(t)))
        .collect();
    paths.extend(
        friends
            .iter()
            .map(|f| format!("/api/graph/users/{f}/friends/{me}")),
    );
    use futures::stream::StreamExt;
    // All at once, except through wrangler dev's proxy chain (see WORKERD_IN_FLIGHT).
    let in_flight = if host == Host::Workerd {
        crate::common::workerd_in_flight()
    } else {
        paths.len()
    };
    let writes = paths.iter().map(|p| send(&api, Method::PUT, p));
    let replies: Vec<_> = futures::stream::iter(writes)
        .buffer_unordered(in_flight)
        .collect()
        .await;
    for reply in replies {
        let reply = reply?;
        ensure!(reply.status == 204, "{} {}", reply.status, text(&reply));
    }
    let body = api
        .get(&format!("/api/graph/users/{me}"), &[])
        .await?
        .json()?;
    let watched = body["watched"].as_array().map_or(0, Vec::len);
    let got_friends = body["friends"].as_array().map_or(0, Vec::len);
    ensure!(
        watched == movies.len(),
        "{watched} of {} watched kept",
        movies.len()
    );
    ensure!(
        got_friends == friends.len(),
        "{got_friends} of {} friends kept",
        friends.len()
    );
    Ok(())
}

async fn bad_input_returns_4xx_and_changes_nothing(api: Api, _: Host) -> Result<()> {
    ensure_sample(&api).await?;
    let me = fresh_user("bad");
    let cases: Vec<(Method, String, u16, &str)> = vec![
        (
            Method::GET,
            "/api/graph/path?from=Tom%20Hanks".into(),
            400,
            "invalid_query",
        ),
        (
            Method::GET,
            "/api/graph/path?to=Tom%20Hanks".into(),
            400,
            "invalid_query",
        ),
        (Method::GET, "/api/graph/path".into(), 400, "invalid_query"),
        (
            Method::GET,
            "/api/graph/path?from=Tom%20Hanks&to=No%20Such%20Actor".into(),
            404,
            "actor_not_found",
        ),
        (
            Method::GET,
            "/api/graph/actors/No%20Such%20Actor".into(),
            404,
            "actor_not_found",
        ),
        (
            Method::PUT,
            format!("/api/graph/users/{me}/watched/2013/No%20Such%20Movie"),
            404,
            "movie_not_found",
        ),
        (
            Method::PUT,
            format!("/api/graph/users/{me}/watched/20x3/Rush"),
            400,
            "invalid_year",
        ),
        (
            Method::PUT,
            format!("/api/graph/users/{me}/favorite-actors/No%20Such%20Actor"),
            404,
            "actor_not_found",
        ),
        (
            Method::PUT,
            format!("/api/graph/users/{me}/friends/{me}"),
            400,
            "invalid_friend",
        ),
        (
            Method::PUT,
            format!("/api/graph/users/{me}/friends/not-a-name"),
            400,
            "invalid_username",
        ),
        (
            Method::PUT,
            "/api/graph/users/bad1/watched/2013/Rush".into(),
            400,
            "invalid_username",
        ),
        (
            Method::GET,
            format!("/api/graph/users/{}/recommendations", "a".repeat(65)),
            400,
            "invalid_username",
        ),
        (
            Method::GET,
            format!("/api/graph/users/{me}/recommendations?limit=0"),
            400,
            "invalid_query",
        ),
        (
            Method::POST,
            "/api/graph/rebuild".into(),
            401,
            "unauthorized",
        ),
        (
            Method::POST,
            "/api/graph/path".into(),
            405,
            "method_not_allowed",
        ),
        (Method::GET, "/api/graph/nothing".into(), 404, "not_found"),
    ];
    for (method, p, status, code) in cases {
        let reply = send(&api, method.clone(), &p).await?;
        expect_error(&reply, status, code).with_context(|| format!("{method} {p}"))?;
    }
    let body = api
        .get(&format!("/api/graph/users/{me}"), &[])
        .await?
        .json()?;
    ensure!(
        body == json!({"name": me, "friends": [], "watched": [], "favorite_actors": []}),
        "bad requests changed the user: {body}"
    );
    Ok(())
}
