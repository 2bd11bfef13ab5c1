//! The OpenAPI tag `shows` and the scraper, as a user sees them, against the fake TvMaze server on
//! loopback. Each host starts with empty storage; the first case scrapes the whole
//! fake (with injected 5xx faults and a 429 storm) by firing the host's own scheduler
//! hook, and later cases build on that store.

use crate::cases;
use crate::common::{expect_error, Case};
use anyhow::{anyhow, bail, ensure, Result};
use conformance::{Api, Host};
use fake_tvmaze::{FakeTvMaze, Faults};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The fake every host scrapes; set by `main` for the run, dropped (stopped) after it.
pub static FAKE: Mutex<Option<Arc<FakeTvMaze>>> = Mutex::new(None);

/// Outbound requests per tick the hosts are configured with.
pub const BUDGET: usize = 25;

/// Host variables that point the scraper at `fake` and make backoff and pacing
/// test-sized.
pub fn vars(fake: &FakeTvMaze) -> Vec<(String, String)> {
    [
        ("tvmaze_base_url", fake.base_url()),
        ("scraper_fetch_budget", &BUDGET.to_string()),
        ("scraper_backoff_ms", "20"),
        ("scraper_backoff_max_ms", "400"),
        ("scraper_updates_interval_s", "0"),
        // TvMaze's 20 calls per window, at the fake's scaled window (`fake_config`).
        ("scraper_rate_window_ms", "200"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The fake with TvMaze's rate limit, its window scaled down 50×.
pub fn fake_config() -> fake_tvmaze::Config {
    fake_tvmaze::Config {
        faults: Faults::rate_limited(Duration::from_millis(200)),
        ..fake_tvmaze::Config::default()
    }
}

fn fake() -> Result<Arc<FakeTvMaze>> {
    FAKE.lock()
        .map_err(|_| anyhow!("fake lock poisoned"))?
        .clone()
        .ok_or_else(|| anyhow!("the fake TvMaze server is not running"))
}

pub fn cases() -> Vec<Case> {
    cases![
        full_scrape_equals_the_source_when_tvmaze_faults_and_rate_limits,
        list_returns_pages_in_id_order_with_link_to_the_next,
        list_returns_empty_array_when_page_is_past_the_end,
        list_returns_400_invalid_query_when_paging_is_bad,
        get_show_returns_show_with_deduplicated_ordered_cast,
        get_show_returns_404_show_not_found_when_id_is_unknown,
        updates_bring_changed_added_and_deleted_shows,
        scrape_status_reports_progress,
        admin_scrape_returns_401_without_the_admin_token,
    ]
}

/// The OpenAPI document's show object computed from the fake's truth, independently of the scraper:
/// each person once, birthday descending, no birthday last, ties by id.
fn expected() -> Result<Vec<Value>> {
    let fake = fake()?;
    Ok(fake
        .catalog()
        .iter()
        .map(|show| {
            let mut seen = std::collections::HashSet::new();
            let mut cast: Vec<(u64, String, Option<String>)> = show
                .cast
                .iter()
                .filter(|c| seen.insert(c.person.id))
                .map(|c| (c.person.id, c.person.name.clone(), c.person.birthday.clone()))
                .collect();
            cast.sort_by(|a, b| match (&a.2, &b.2) {
                (Some(x), Some(y)) => y.cmp(x).then(a.0.cmp(&b.0)),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => a.0.cmp(&b.0),
            });
            json!({
                "id": show.id,
                "name": show.name,
                "cast": cast.iter().map(|(id, name, birthday)| json!({"id": id, "name": name, "birthday": birthday})).collect::<Vec<_>>(),
            })
        })
        .collect())
}

async fn status(api: &Api) -> Result<Value> {
    let reply = api.get("/api/shows/scrape/status", &[]).await?;
    ensure!(reply.status == 200, "status: {}", reply.status);
    reply.json()
}

/// Whether the scraper has nothing left: full pass done, nothing pending or in flight,
/// and the last tick (which polled `/updates`) ended without an error.
fn settled(status: &Value) -> bool {
    status["phase"] == "incremental"
        && status["shows_in_flight"] == 0
        && status["pending_updates"] == 0
        && status["last_error"].is_null()
}

/// Ticks until the scraper settles; checks every tick against the budget using the
/// fake's own request log. Returns (ticks, requests). On a host that chains its ticks
/// (Workers' alarm chain), fires the cron each round and lets the chain run for a
/// while; the budget is then checked on each tick's status.
async fn scrape_until_settled(api: &Api, host: Host, max_ticks: usize) -> Result<(usize, usize)> {
    let fake = fake()?;
    let mut requests = 0;
    fake.take_log();
    for tick in 1..=max_ticks {
        conformance::fire_cron(api, host).await?;
        if host.chains_scraper_ticks() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = fake.take_log();
        ensure!(
            host.chains_scraper_ticks() || log.len() <= BUDGET,
            "tick {tick} sent {} requests, budget {BUDGET}",
            log.len()
        );
        requests += log.len();
        let s = status(api).await?;
        ensure!(
            s["fetches_last_run"]
                .as_u64()
                .is_some_and(|n| n as usize <= BUDGET),
            "status over budget: {s}"
        );
        if settled(&s) && tick > 1 {
            return Ok((tick, requests));
        }
        if let Some(until) = s["backoff_until"].as_str() {
            let until = chrono::DateTime::parse_from_rfc3339(until)?;
            let wait = (until.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .to_std()
                .unwrap_or_default();
            tokio::time::sleep(wait + Duration::from_millis(5)).await;
        }
    }
    bail!(
        "not settled after {max_ticks} ticks: {}",
        status(api).await?
    )
}

/// Every page of the API, at `size`, concatenated.
async fn all_pages(api: &Api, size: usize) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for page in 0.. {
        let reply = api
            .get(&format!("/api/shows?page={page}&size={size}"), &[])
            .await?;
        ensure!(reply.status == 200, "page {page}: {}", reply.status);
        let items = reply.json()?;
        let items = items
            .as_array()
            .ok_or_else(|| anyhow!("page {page} not an array"))?;
        if items.is_empty() {
            break;
        }
        ensure!(
            items.len() <= size,
            "page {page} has {} > {size}",
            items.len()
        );
        out.extend(items.iter().cloned());
        ensure!(page < 100_000, "paging never ends");
    }
    Ok(out)
}

fn first_difference(got: &[Value], want: &[Value]) -> String {
    if got.len() != want.len() {
        return format!("{} shows served, {} in the source", got.len(), want.len());
    }
    match got.iter().zip(want).find(|(g, w)| g != w) {
        Some((g, w)) => format!("served {g}\nsource {w}"),
        None => "identical".into(),
    }
}

async fn full_scrape_equals_the_source_when_tvmaze_faults_and_rate_limits(
    api: Api,
    host: Host,
) -> Result<()> {
    let fake = fake()?;
    fake.set_faults(Faults {
        fault_rate: 0.05,
        ..fake_config().faults
    });
    fake.storm_429(8);
    let started = Instant::now();
    let result = scrape_until_settled(&api, host, 400).await;
    fake.set_faults(fake_config().faults);
    let (ticks, requests) = result?;
    let want = expected()?;
    let got = all_pages(&api, 250).await?;
    ensure!(got == want, "{}", first_difference(&got, &want));
    let index_pages = want.last().and_then(|s| s["id"].as_u64()).unwrap_or(0) / 250 + 2;
    println!(
        "      {} shows in {ticks} ticks, {requests} requests (floor {}: a cast per show + {index_pages} index pages), {:.1}s",
        want.len(),
        want.len() as u64 + index_pages,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn list_returns_pages_in_id_order_with_link_to_the_next(api: Api, _: Host) -> Result<()> {
    let want = expected()?;
    for size in [1usize, 7, 25, 250] {
        let got = if size == 1 {
            // Every page of size 1 would be slow; check the first and last few.
            let mut got = Vec::new();
            for page in [0, 1, 2, want.len() - 1] {
                let reply = api
                    .get(&format!("/api/shows?page={page}&size=1"), &[])
                    .await?;
                got.push((page, reply.json()?));
            }
            for (page, body) in got {
                ensure!(
                    body == json!([want[page].clone()]),
                    "size 1 page {page}: {body}"
                );
            }
            continue;
        } else {
            all_pages(&api, size).await?
        };
        ensure!(
            got == want,
            "size {size}: {}",
            first_difference(&got, &want)
        );
    }
    let reply = api.get("/api/shows", &[]).await?;
    let default = reply.json()?;
    ensure!(
        default == json!(want[..25]),
        "default page is not the first 25"
    );
    let link = reply.header("link").unwrap_or_default();
    ensure!(
        link == "</api/shows?page=1&size=25>; rel=\"next\"",
        "link header {link:?}"
    );
    let last = (want.len() - 1) / 25;
    let reply = api
        .get(&format!("/api/shows?page={last}&size=25"), &[])
        .await?;
    ensure!(reply.header("link").is_none(), "last page has a link");
    let reply = api
        .get(&format!("/api/shows?page={}&size=25", last - 1), &[])
        .await?;
    let next = format!("</api/shows?page={last}&size=25>; rel=\"next\"");
    ensure!(
        reply.header("link") == Some(next.as_str()),
        "{:?}",
        reply.header("link")
    );
    Ok(())
}

async fn list_returns_empty_array_when_page_is_past_the_end(api: Api, _: Host) -> Result<()> {
    for query in ["page=100000&size=25", "page=99999999&size=250"] {
        let reply = api.get(&format!("/api/shows?{query}"), &[]).await?;
        ensure!(
            reply.status == 200 && reply.json()? == json!([]),
            "{query}: {}",
            reply.status
        );
        ensure!(reply.header("link").is_none(), "{query}: link past the end");
    }
    Ok(())
}

async fn list_returns_400_invalid_query_when_paging_is_bad(api: Api, _: Host) -> Result<()> {
    for query in [
        "size=0",
        "size=251",
        "size=-1",
        "page=-1",
        "page=abc",
        "size=1.5",
        "page=",
        "page=99999999999999999999999",
    ] {
        let reply = api.get(&format!("/api/shows?{query}"), &[]).await?;
        expect_error(&reply, 400, "invalid_query").map_err(|e| e.context(query))?;
    }
    Ok(())
}

async fn get_show_returns_show_with_deduplicated_ordered_cast(api: Api, _: Host) -> Result<()> {
    let want = expected()?;
    let fake = fake()?;
    // A show whose cast lists someone twice, and one with people without birthdays.
    let twice = fake.catalog().into_iter().find(|s| {
        let mut ids: Vec<u64> = s.cast.iter().map(|c| c.person.id).collect();
        ids.sort_unstable();
        ids.windows(2).any(|w| w[0] == w[1])
    });
    let no_birthday = fake
        .catalog()
        .into_iter()
        .find(|s| s.cast.iter().any(|c| c.person.birthday.is_none()));
    let mut ids: Vec<u64> = vec![want[0]["id"].as_u64().unwrap_or(0)];
    ids.extend(twice.map(|s| s.id));
    ids.extend(no_birthday.map(|s| s.id));
    ensure!(
        ids.len() == 3,
        "the fake lacks the awkward casts this case needs"
    );
    for id in ids {
        let reply = api.get(&format!("/api/shows/{id}"), &[]).await?;
        let want = want
            .iter()
            .find(|s| s["id"] == id)
            .ok_or_else(|| anyhow!("no {id}"))?;
        ensure!(
            reply.status == 200 && &reply.json()? == want,
            "show {id}: {:?}",
            reply.body
        );
    }
    Ok(())
}

async fn get_show_returns_404_show_not_found_when_id_is_unknown(api: Api, _: Host) -> Result<()> {
    let want = expected()?;
    let missing = (0..)
        .find(|id| !want.iter().any(|s| s["id"] == *id))
        .unwrap_or(0);
    for path in [
        format!("/api/shows/{missing}"),
        "/api/shows/99999999".to_owned(),
        "/api/shows/abc".to_owned(),
        "/api/shows/-1".to_owned(),
    ] {
        let reply = api.get(&path, &[]).await?;
        expect_error(&reply, 404, "show_not_found").map_err(|e| e.context(path))?;
    }
    Ok(())
}

async fn updates_bring_changed_added_and_deleted_shows(api: Api, host: Host) -> Result<()> {
    let fake = fake()?;
    let catalog = fake.catalog();
    let changed = catalog[3].id;
    let deleted = catalog[5].id;
    ensure!(
        fake.update_show(changed, |show| {
            show.name = format!("{} (renamed)", show.name);
            show.cast.truncate(1);
        }),
        "update failed"
    );
    ensure!(fake.delete_show(deleted), "delete failed");
    let added = fake.add_show(|show| show.name = "Brand New Show".into());
    scrape_until_settled(&api, host, 60).await?;
    let want = expected()?;
    let got = all_pages(&api, 250).await?;
    ensure!(got == want, "{}", first_difference(&got, &want));
    let reply = api.get(&format!("/api/shows/{deleted}"), &[]).await?;
    expect_error(&reply, 404, "show_not_found")?;
    let reply = api.get(&format!("/api/shows/{added}"), &[]).await?;
    ensure!(
        reply.json()?["name"] == "Brand New Show",
        "added show missing"
    );
    Ok(())
}

async fn scrape_status_reports_progress(api: Api, _: Host) -> Result<()> {
    let s = status(&api).await?;
    for key in [
        "shows_stored",
        "phase",
        "last_run_at",
        "fetches_last_run",
        "backoff_until",
    ] {
        ensure!(s.get(key).is_some(), "status lacks {key}: {s}");
    }
    let stored = s["shows_stored"].as_u64().unwrap_or(0) as usize;
    ensure!(stored == expected()?.len(), "shows_stored {stored}");
    ensure!(
        s["last_run_at"].is_string(),
        "last_run_at {}",
        s["last_run_at"]
    );
    Ok(())
}

async fn admin_scrape_returns_401_without_the_admin_token(api: Api, _: Host) -> Result<()> {
    let reply = api
        .send(Method::POST, "/api/shows/scrape", &[], None)
        .await?;
    expect_error(&reply, 401, "unauthorized")?;
    let reply = api
        .send(
            Method::POST,
            "/api/shows/scrape",
            &[("authorization", "Bearer wrong")],
            None,
        )
        .await?;
    expect_error(&reply, 401, "unauthorized")?;
    let reply = api.send(Method::DELETE, "/api/shows", &[], None).await?;
    expect_error(&reply, 405, "method_not_allowed")
}
