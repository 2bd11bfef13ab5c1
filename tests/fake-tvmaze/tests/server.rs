//! The fake over real HTTP: paging, shapes, errors, rate limit, faults, mutations.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

use fake_tvmaze::{Cause, Config, FakeTvMaze, Faults};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A one-request HTTP/1.1 client: enough for a server that sends `content-length`.
fn request(fake: &FakeTvMaze, method: &str, path: &str) -> Reply {
    let mut stream = TcpStream::connect(fake.addr()).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
        fake.addr()
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_string(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

fn get(fake: &FakeTvMaze, path: &str) -> Reply {
    request(fake, "GET", path)
}

fn small(shows: usize) -> Config {
    Config {
        shows,
        page_size: 10,
        empty_pages: vec![1],
        faults: Faults::none(),
        ..Config::default()
    }
}

const NOT_FOUND: &str = r#"{"code":0,"message":"","name":"Not Found","status":404}"#;

#[test]
fn pages_walk_the_index_then_404() {
    let fake = FakeTvMaze::start(small(100)).unwrap();
    let mut ids = Vec::new();
    let mut page = 0;
    let mut short_pages = 0;
    loop {
        let reply = get(&fake, &format!("/shows?page={page}"));
        if reply.status == 404 {
            assert_eq!(
                reply.json(),
                serde_json::from_str::<Value>(NOT_FOUND).unwrap()
            );
            break;
        }
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.header("content-type"),
            Some("application/json; charset=UTF-8")
        );
        let shows = reply.json();
        let shows = shows.as_array().unwrap();
        if page == 1 {
            assert!(shows.is_empty(), "page 1 is configured empty");
        }
        if shows.len() < 10 {
            short_pages += 1;
        }
        for show in shows {
            let id = show["id"].as_u64().unwrap();
            assert_eq!(id / 10, page, "id {id} on page {page}");
            assert!(show.get("_embedded").is_none());
            ids.push(id);
        }
        page += 1;
        assert!(page < 1000, "no 404 after the last page");
    }
    let truth: Vec<u64> = fake.catalog().iter().map(|s| s.id).collect();
    assert_eq!(ids, truth);
    assert_eq!(ids.len(), 100);
    assert!(short_pages > 1, "gaps leave pages short of 10 shows");
    // Past the end stays 404; garbage is 400; no page means page 0.
    assert_eq!(get(&fake, &format!("/shows?page={}", page + 5)).status, 404);
    assert_eq!(get(&fake, "/shows?page=x").status, 400);
    assert_eq!(get(&fake, "/shows").body, get(&fake, "/shows?page=0").body);
}

#[test]
fn cast_has_tvmazes_shape_and_the_awkward_cases() {
    let fake = FakeTvMaze::start(small(50)).unwrap();
    let catalog = fake.catalog();
    let first = catalog[0].id;
    let cast = get(&fake, &format!("/shows/{first}/cast")).json();
    let cast = cast.as_array().unwrap();
    let person_keys = [
        "_links", "birthday", "country", "deathday", "gender", "id", "image", "name", "updated",
        "url",
    ];
    for entry in cast {
        let keys: Vec<&str> = entry
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(keys, ["character", "person", "self", "voice"]);
        let person = entry["person"].as_object().unwrap();
        let keys: Vec<&str> = person.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, person_keys);
        assert!(person["id"].is_u64());
        let birthday = &person["birthday"];
        assert!(
            birthday.is_null() || birthday.as_str().is_some_and(|b| b.len() == 10),
            "{birthday}"
        );
        assert!(entry["character"]["id"].is_u64());
        assert!(entry["self"].is_boolean() && entry["voice"].is_boolean());
    }
    let ids: Vec<u64> = cast
        .iter()
        .map(|e| e["person"]["id"].as_u64().unwrap())
        .collect();
    let distinct: BTreeSet<u64> = ids.iter().copied().collect();
    assert!(distinct.len() < ids.len(), "one person twice");
    let birthdays: Vec<&str> = cast
        .iter()
        .filter_map(|e| e["person"]["birthday"].as_str())
        .collect();
    let distinct_birthdays: BTreeSet<&str> = birthdays.iter().copied().collect();
    assert!(
        distinct_birthdays.len() + 1 < birthdays.len(),
        "equal birthdays"
    );
    assert!(cast.iter().any(|e| e["person"]["birthday"].is_null()));
    assert!(cast
        .iter()
        .any(|e| !e["person"]["name"].as_str().unwrap().is_ascii()));

    // The second show has nobody.
    assert_eq!(
        get(&fake, &format!("/shows/{}/cast", catalog[1].id)).body,
        "[]"
    );

    // embed=cast carries the same cast, and `shows()` is exactly that for every show.
    let embedded = get(&fake, &format!("/shows/{first}?embed=cast")).json();
    assert_eq!(embedded["_embedded"]["cast"], Value::Array(cast.clone()));
    assert_eq!(
        get(&fake, &format!("/shows/{first}?embed%5B%5D=cast")).json(),
        embedded
    );
    let plain = get(&fake, &format!("/shows/{first}")).json();
    assert!(plain.get("_embedded").is_none());
    assert_eq!(plain["name"], embedded["name"]);
    assert_eq!(
        plain["_links"]["self"]["href"],
        format!("{}/shows/{first}", fake.base_url())
    );
    let truth = fake.shows();
    assert_eq!(truth.len(), 50);
    for show in truth.iter().take(5) {
        let id = show["id"].as_u64().unwrap();
        assert_eq!(&get(&fake, &format!("/shows/{id}?embed=cast")).json(), show);
    }
}

#[test]
fn unknown_ids_and_paths_are_tvmazes_404() {
    let fake = FakeTvMaze::start(small(20)).unwrap();
    let gap = (1..).find(|id| fake.show(*id).is_none()).unwrap();
    for path in [
        format!("/shows/{gap}"),
        format!("/shows/{gap}/cast"),
        "/shows/999999".to_string(),
        "/shows/abc".to_string(),
        "/people/1".to_string(),
        "/".to_string(),
    ] {
        let reply = get(&fake, &path);
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(
            reply.json(),
            serde_json::from_str::<Value>(NOT_FOUND).unwrap()
        );
    }
    assert_eq!(request(&fake, "POST", "/shows").status, 405);
    assert_eq!(get(&fake, "/updates/shows?since=year").status, 400);
}

#[test]
fn rate_limit_gives_429_then_recovers_after_the_window() {
    let window = Duration::from_millis(300);
    let fake = FakeTvMaze::start(Config {
        shows: 20,
        faults: Faults {
            rate_limit_calls: 5,
            rate_limit_window: window,
            ..Faults::default()
        },
        ..Config::default()
    })
    .unwrap();
    let path = format!("/shows/{}", fake.catalog()[0].id);
    let start = Instant::now();
    let statuses: Vec<u16> = (0..8).map(|_| get(&fake, &path).status).collect();
    assert!(
        start.elapsed() < window,
        "test machine too slow to test this"
    );
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    let limited = get(&fake, &path);
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("1"));
    std::thread::sleep(window);
    assert_eq!(get(&fake, &path).status, 200);

    let log = fake.request_log();
    assert_eq!(log.len(), 10);
    let causes: Vec<Cause> = log.iter().map(|r| r.cause).collect();
    assert_eq!(causes[5..9], [Cause::RateLimited; 4]);
    assert_eq!(causes[9], Cause::Served);
    assert!(log.iter().all(|r| r.method == "GET" && r.path == path));
    assert_eq!(
        log.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );

    // The default limit is TvMaze's: 20 per 10 s.
    let tvmaze = FakeTvMaze::start(Config {
        shows: 5,
        ..Config::default()
    })
    .unwrap();
    let ok = (0..25)
        .filter(|_| get(&tvmaze, "/shows").status != 429)
        .count();
    assert_eq!(ok, 20);
}

#[test]
fn storm_answers_the_next_n_with_429() {
    let fake = FakeTvMaze::start(small(5)).unwrap();
    fake.storm_429(3);
    let statuses: Vec<u16> = (0..5).map(|_| get(&fake, "/shows").status).collect();
    assert_eq!(statuses, [429, 429, 429, 200, 200]);
    assert_eq!(fake.faults().storm_429, 0);
    let causes: Vec<Cause> = fake.take_log().iter().map(|r| r.cause).collect();
    assert_eq!(
        causes,
        [
            Cause::Storm,
            Cause::Storm,
            Cause::Storm,
            Cause::Served,
            Cause::Served
        ]
    );
    assert!(fake.request_log().is_empty());
}

fn fault_statuses(fake: &FakeTvMaze, n: usize) -> Vec<u16> {
    (0..n).map(|_| get(fake, "/shows/1/cast").status).collect()
}

#[test]
fn faults_come_at_about_the_configured_rate_reproducibly() {
    let config = Config {
        shows: 5,
        max_id_gap: 0,
        faults: Faults {
            fault_rate: 0.2,
            ..Faults::none()
        },
        ..Config::default()
    };
    let fake = FakeTvMaze::start(config.clone()).unwrap();
    let statuses = fault_statuses(&fake, 500);
    let faults = statuses.iter().filter(|s| **s >= 500).count();
    assert!((65..=135).contains(&faults), "{faults} faults in 500");
    for status in [500, 502, 503] {
        assert!(statuses.contains(&status), "no {status}");
    }
    assert!(statuses.iter().all(|s| [200, 500, 502, 503].contains(s)));
    let logged = fake.request_log();
    assert_eq!(
        logged.iter().filter(|r| r.cause == Cause::Fault).count(),
        faults
    );

    // The same seed and request order: the same faults.
    let again = FakeTvMaze::start(config.clone()).unwrap();
    assert_eq!(fault_statuses(&again, 500), statuses);
    let other_seed = FakeTvMaze::start(Config { seed: 2, ..config }).unwrap();
    assert_ne!(fault_statuses(&other_seed, 500), statuses);

    // Turned off while running.
    fake.set_faults(Faults::none());
    assert!(fault_statuses(&fake, 50).iter().all(|s| *s == 200));
}

#[test]
fn slow_requests_wait_before_answering() {
    let fake = FakeTvMaze::start(Config {
        shows: 5,
        faults: Faults {
            slow_rate: 1.0,
            slow_delay: Duration::from_millis(150),
            ..Faults::none()
        },
        ..Config::default()
    })
    .unwrap();
    let start = Instant::now();
    assert_eq!(get(&fake, "/shows").status, 200);
    assert!(start.elapsed() >= Duration::from_millis(150));
    assert!(fake.request_log()[0].slow);

    fake.set_faults(Faults {
        slow_rate: 0.5,
        slow_delay: Duration::from_millis(1),
        ..Faults::none()
    });
    for _ in 0..100 {
        get(&fake, "/shows");
    }
    let slow = fake.request_log().iter().filter(|r| r.slow).count();
    assert!((25..=76).contains(&slow), "{slow} of 101 slow");
}

fn updates(fake: &FakeTvMaze, query: &str) -> Vec<(u64, i64)> {
    let reply = get(fake, &format!("/updates/shows{query}"));
    assert_eq!(reply.status, 200);
    // Ascending id order in the text itself, as TvMaze sends it.
    let value: serde_json::Map<String, Value> = serde_json::from_str(&reply.body).unwrap();
    let mut pairs: Vec<(u64, i64)> = value
        .iter()
        .map(|(k, v)| (k.parse().unwrap(), v.as_i64().unwrap()))
        .collect();
    pairs.sort_unstable();
    let text_order: Vec<u64> = reply
        .body
        .trim_matches(|c| c == '{' || c == '}')
        .split(',')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            kv.split(':')
                .next()
                .unwrap()
                .trim_matches('"')
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(text_order, pairs.iter().map(|p| p.0).collect::<Vec<_>>());
    pairs
}

#[test]
fn mutations_show_up_in_updates_and_deleted_shows_404() {
    let fake = FakeTvMaze::start(small(30)).unwrap();
    let catalog = fake.catalog();
    let all = updates(&fake, "");
    assert_eq!(all.len(), 30);
    assert!(all
        .iter()
        .all(|(_, at)| *at < fake_tvmaze::GENERATED_BEFORE + 1));
    assert!(updates(&fake, "?since=month").is_empty());

    let (changed, gone) = (catalog[3].id, catalog[7].id);
    assert!(fake.update_show(changed, |s| {
        s.name = "Renamed Show".into();
        s.cast.truncate(1);
    }));
    let added = fake.add_show(|s| s.name = "Brand New".into());
    assert!(added > catalog[29].id);
    assert!(fake.delete_show(gone));
    assert!(!fake.delete_show(gone));
    assert!(!fake.update_show(gone, |_| {}));

    let recent = updates(&fake, "?since=day");
    assert_eq!(
        recent.iter().map(|r| r.0).collect::<BTreeSet<_>>(),
        BTreeSet::from([changed, gone, added])
    );
    let stamps: BTreeSet<i64> = recent.iter().map(|r| r.1).collect();
    assert_eq!(stamps.len(), 3, "distinct stamps");
    assert_eq!(updates(&fake, "?since=week"), recent);
    let all = updates(&fake, "");
    assert_eq!(all.len(), 31, "30 + 1 added; the deleted one stays");
    assert!(all.contains(&recent[0]));

    let show = get(&fake, &format!("/shows/{changed}?embed=cast")).json();
    assert_eq!(show["name"], "Renamed Show");
    assert!(show["_embedded"]["cast"].as_array().unwrap().len() <= 1);
    assert_eq!(
        get(&fake, &format!("/shows/{added}")).json()["name"],
        "Brand New"
    );
    assert_eq!(get(&fake, &format!("/shows/{gone}")).status, 404);
    assert_eq!(get(&fake, &format!("/shows/{gone}/cast")).status, 404);
    let page = get(&fake, &format!("/shows?page={}", gone / 10)).json();
    assert!(page
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["id"].as_u64() != Some(gone)));
    let last = get(&fake, &format!("/shows?page={}", added / 10)).json();
    assert!(last
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["id"].as_u64() == Some(added)));

    let truth: Vec<u64> = fake
        .shows()
        .iter()
        .map(|s| s["id"].as_u64().unwrap())
        .collect();
    assert_eq!(truth.len(), 30);
    assert!(!truth.contains(&gone) && truth.contains(&added));
}

#[test]
fn same_seed_same_answers_and_stop_closes_the_port() {
    let mut a = FakeTvMaze::start(small(40)).unwrap();
    let b = FakeTvMaze::start(small(40)).unwrap();
    let strip = |v: Value| {
        v.to_string()
            .replace(a.base_url(), "")
            .replace(b.base_url(), "")
    };
    assert_eq!(
        strip(get(&a, "/shows?page=3").json()),
        strip(get(&b, "/shows?page=3").json())
    );
    let addr = a.addr();
    a.stop();
    a.stop();
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn keep_alive_connections_and_concurrent_clients_work() {
    let fake = FakeTvMaze::start(small(40)).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let addr = fake.addr();
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                for _ in 0..3 {
                    write!(stream, "GET /shows HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
                    // Read one response: head, then content-length bytes.
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        stream.read_exact(&mut byte).unwrap();
                        head.push(byte[0]);
                    }
                    let head = String::from_utf8(head).unwrap();
                    assert!(head.starts_with("HTTP/1.1 200"));
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .unwrap()
                        .parse()
                        .unwrap();
                    let mut body = vec![0; length];
                    stream.read_exact(&mut body).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(fake.request_log().len(), 24);
}

#[tokio::test]
async fn usable_from_async_tests() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fake = FakeTvMaze::start(small(5)).unwrap();
    let mut stream = tokio::net::TcpStream::connect(fake.addr()).await.unwrap();
    stream
        .write_all(b"GET /updates/shows HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(raw.contains("x-fake-tvmaze-seq: 0"));
    drop(fake); // stops from within a runtime without panicking
}
