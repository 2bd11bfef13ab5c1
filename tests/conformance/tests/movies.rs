//! The OpenAPI tag `movies`, the movies API, as a client sees it, on the real AWS sample
//! `../shared/data/moviedata.json` (4,609 items): the whole file is imported in one
//! request, then every year's query is compared with a computation over the file.
//! Cases that write use years no sample movie has (5000 and up), so they never disturb
//! the sample years; the `admin_disabled` case needs a host without a token and is a
//! unit test of the movies crate instead.

use crate::cases;
use crate::common::{expect_error, Case};
use anyhow::{anyhow, ensure, Context, Result};
use conformance::{Api, Host, Reply};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Mutex, OnceLock};

pub fn cases() -> Vec<Case> {
    cases![
        import_returns_200_with_count_when_whole_file_is_posted,
        list_returns_each_year_exactly_as_in_the_file,
        paging_with_small_limits_reassembles_the_year,
        genre_filter_matches_exact_genres_before_paging,
        min_rating_filter_skips_unrated_movies,
        get_returns_the_item_of_the_file,
        unicode_and_punctuation_titles_round_trip,
        put_creates_then_replaces_and_returns_the_stored_item,
        delete_returns_204_then_404_movie_not_found,
        get_returns_404_movie_not_found_when_unknown,
        import_merges_with_stored_movies_of_the_year,
        concurrent_puts_and_imports_into_one_year_lose_nothing,
        import_with_one_bad_item_in_the_middle_writes_nothing,
        import_returns_400_naming_the_first_bad_item,
        admin_routes_return_401_when_token_is_missing_or_wrong,
        list_returns_400_invalid_query_when_query_is_bad,
        item_routes_return_400_when_year_or_title_is_bad,
        rejected_put_changes_nothing,
        import_returns_413_when_body_is_over_8_mib,
        put_returns_413_when_body_is_over_64_kib,
        wrong_method_returns_405_with_allow_header,
        openapi_json_is_served_as_json,
        docs_page_and_assets_are_served_with_content_types,
        importer_script_loads_a_file_in_chunks_with_progress,
        importer_script_sends_nothing_when_an_item_is_bad,
    ]
}

/// The sample file: its bytes, its items, and its items by year in title byte order.
pub struct Sample {
    pub bytes: Vec<u8>,
    pub items: Vec<Value>,
    by_year: BTreeMap<u64, Vec<Value>>,
}

impl Sample {
    /// The sample's movies of `year`, in title byte order.
    fn year(&self, year: u64) -> &[Value] {
        self.by_year.get(&year).map_or(&[], Vec::as_slice)
    }
}

pub fn sample() -> Result<&'static Sample> {
    static SAMPLE: OnceLock<Sample> = OnceLock::new();
    if let Some(sample) = SAMPLE.get() {
        return Ok(sample);
    }
    let path = conformance::root().join("../shared/data/moviedata.json");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let items: Vec<Value> = serde_json::from_slice(&bytes)?;
    let mut by_year: BTreeMap<u64, BTreeMap<String, Value>> = BTreeMap::new();
    for item in &items {
        let year = item["year"].as_u64().context("year")?;
        let title = item["title"].as_str().context("title")?.to_owned();
        by_year.entry(year).or_default().insert(title, item.clone());
    }
    let by_year = by_year
        .into_iter()
        .map(|(year, titles)| (year, titles.into_values().collect()))
        .collect();
    Ok(SAMPLE.get_or_init(|| Sample {
        bytes,
        items,
        by_year,
    }))
}

pub fn auth(api: &Api) -> String {
    format!("Bearer {}", api.admin_token)
}

pub async fn import(api: &Api, body: Vec<u8>) -> Result<Reply> {
    let auth = auth(api);
    api.send(
        Method::POST,
        "/api/movies/import",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(body),
    )
    .await
}

/// Imports the sample once per host (the import case does it too; importing again is
/// harmless), so each case can run alone under `CONFORMANCE_ONLY`.
async fn ensure_imported(api: &Api) -> Result<&'static Sample> {
    static DONE: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let sample = sample()?;
    let done = |base: &str| {
        DONE.lock()
            .map(|d| d.as_ref().is_some_and(|s| s.contains(base)))
            .unwrap_or(false)
    };
    if !done(&api.base) {
        let reply = import(api, sample.bytes.clone()).await?;
        ensure!(
            reply.status == 200,
            "importing the sample: {} {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
        if let Ok(mut d) = DONE.lock() {
            d.get_or_insert_with(HashSet::new).insert(api.base.clone());
        }
    }
    Ok(sample)
}

/// A year no sample movie has, fresh for each use.
fn fresh_year() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(5000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

pub fn item_path(year: impl std::fmt::Display, title: &str) -> String {
    format!("/api/movies/{year}/{}", conformance::encode_segment(title))
}

pub async fn put_movie(api: &Api, year: u16, title: &str, info: &Value) -> Result<Reply> {
    let auth = auth(api);
    let body = serde_json::to_vec(&json!({ "info": info }))?;
    api.send(
        Method::PUT,
        &item_path(year, title),
        &[("authorization", &auth)],
        Some(body),
    )
    .await
}

pub async fn delete_movie(api: &Api, year: u16, title: &str) -> Result<Reply> {
    let auth = auth(api);
    api.send(
        Method::DELETE,
        &item_path(year, title),
        &[("authorization", &auth)],
        None,
    )
    .await
}

/// One page: its items and `next_cursor`, after checking the response's shape.
async fn page(api: &Api, query: &str) -> Result<(Vec<Value>, Option<String>)> {
    let reply = api.get(&format!("/api/movies?{query}"), &[]).await?;
    ensure!(
        reply.status == 200,
        "GET ?{query}: {} {}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    ensure!(reply.header("content-type") == Some("application/json"));
    let body = reply.json()?;
    let object = body.as_object().context("body is an object")?;
    ensure!(object.len() == 2, "keys {:?}", object.keys());
    let items = body["items"].as_array().context("items")?.clone();
    let cursor = match &body["next_cursor"] {
        Value::Null => None,
        Value::String(c) => Some(c.clone()),
        other => return Err(anyhow!("next_cursor {other}")),
    };
    Ok((items, cursor))
}

/// Follows `next_cursor` from the first page to the last; checks every page's size.
async fn all_pages(api: &Api, query: &str, limit: usize) -> Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for pages in 1.. {
        let q = match &cursor {
            Some(c) => format!("{query}&limit={limit}&cursor={c}"),
            None => format!("{query}&limit={limit}"),
        };
        let (page_items, next) = page(api, &q).await?;
        ensure!(
            page_items.len() <= limit,
            "page {pages} of ?{query} has {} items, limit {limit}",
            page_items.len()
        );
        ensure!(
            next.is_none() || page_items.len() == limit,
            "page {pages} of ?{query} is short ({}) but has a next cursor",
            page_items.len()
        );
        items.extend(page_items);
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
        ensure!(pages < 10_000, "too many pages");
    }
    Ok(items)
}

fn titles(items: &[Value]) -> Vec<&str> {
    items.iter().filter_map(|i| i["title"].as_str()).collect()
}

/// Compares two item lists, naming the first difference.
fn same_items(got: &[Value], want: &[Value], what: &str) -> Result<()> {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        ensure!(g == w, "{what}: item {i} differs:\n got {g}\nwant {w}");
    }
    ensure!(
        got.len() == want.len(),
        "{what}: {} items, want {}",
        got.len(),
        want.len()
    );
    Ok(())
}

async fn import_returns_200_with_count_when_whole_file_is_posted(api: Api, _: Host) -> Result<()> {
    let sample = sample()?;
    ensure!(
        sample.items.len() == 4609,
        "sample has {}",
        sample.items.len()
    );
    let reply = import(&api, sample.bytes.clone()).await?;
    ensure!(
        reply.status == 200,
        "{} {}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    ensure!(reply.header("content-type") == Some("application/json"));
    ensure!(
        reply.json()? == json!({"imported": 4609}),
        "{:?}",
        reply.body
    );
    Ok(())
}

async fn list_returns_each_year_exactly_as_in_the_file(api: Api, _: Host) -> Result<()> {
    let sample = ensure_imported(&api).await?;
    ensure!(sample.by_year.len() > 80, "{} years", sample.by_year.len());
    for (year, want) in &sample.by_year {
        ensure!(want.len() <= 500, "year {year} needs paging");
        let (got, cursor) = page(&api, &format!("year={year}&limit=500")).await?;
        same_items(&got, want, &format!("year {year}"))?;
        ensure!(cursor.is_none(), "year {year}: cursor after the last page");
    }
    let total: usize = sample.by_year.values().map(Vec::len).sum();
    ensure!(total == sample.items.len(), "the file has duplicate keys");
    // Default limit 50.
    let (first, cursor) = page(&api, "year=2013").await?;
    same_items(&first, &sample.year(2013)[..50], "year 2013 default page")?;
    ensure!(cursor.is_some(), "2013 has more than 50 movies");
    // A year with nothing: an empty page.
    let (none, cursor) = page(&api, "year=1800").await?;
    ensure!(none.is_empty() && cursor.is_none(), "year 1800: {none:?}");
    Ok(())
}

async fn paging_with_small_limits_reassembles_the_year(api: Api, _: Host) -> Result<()> {
    let sample = ensure_imported(&api).await?;
    for (year, limit) in [(2013, 7), (2013, 50), (2013, 500), (2001, 1), (1999, 7)] {
        let want = sample.year(year);
        let got = all_pages(&api, &format!("year={year}"), limit).await?;
        same_items(&got, want, &format!("year {year}, limit {limit}"))?;
    }
    // `limit` may change between pages: the cursor only names where to resume.
    let (first, cursor) = page(&api, "year=2013&limit=3").await?;
    let cursor = cursor.context("a cursor after 3 of 2013")?;
    let (second, _) = page(&api, &format!("year=2013&limit=10&cursor={cursor}")).await?;
    let want = sample.year(2013);
    same_items(&first, &want[..3], "2013 first 3")?;
    same_items(&second, &want[3..13], "2013 next 10")?;
    Ok(())
}

fn filtered(sample: &Sample, year: u64, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
    sample
        .year(year)
        .iter()
        .filter(|item| keep(item))
        .cloned()
        .collect()
}

fn has_genre(item: &Value, genre: &str) -> bool {
    item["info"]["genres"]
        .as_array()
        .is_some_and(|g| g.iter().any(|x| x.as_str() == Some(genre)))
}

async fn genre_filter_matches_exact_genres_before_paging(api: Api, _: Host) -> Result<()> {
    let sample = ensure_imported(&api).await?;
    for (year, genre, query_genre) in [
        (2013, "Drama", "Drama"),
        (2013, "Sci-Fi", "Sci-Fi"),
        (2012, "Film-Noir", "Film-Noir"),
        (1950, "Film-Noir", "Film-Noir"),
        (1984, "Science Fiction", "Science+Fiction"),
    ] {
        let want = filtered(sample, year, |i| has_genre(i, genre));
        for limit in [4, 500] {
            let got = all_pages(&api, &format!("year={year}&genre={query_genre}"), limit).await?;
            same_items(&got, &want, &format!("{year} genre {genre} limit {limit}"))?;
        }
    }
    // Exact and case-sensitive: no partial or case-folded matches.
    for genre in ["drama", "DRAMA", "Dram", "Drama%20"] {
        let (items, _) = page(&api, &format!("year=2013&genre={genre}")).await?;
        ensure!(
            items.is_empty(),
            "genre {genre:?} matched {:?}",
            titles(&items)
        );
    }
    Ok(())
}

async fn min_rating_filter_skips_unrated_movies(api: Api, _: Host) -> Result<()> {
    let sample = ensure_imported(&api).await?;
    let rated = |min: f64| move |i: &Value| i["info"]["rating"].as_f64().is_some_and(|r| r >= min);
    for (year, min, query) in [
        (2013, 7.5, "7.5"),
        (2013, 0.0, "0"),
        (2012, 8.0, "8"),
        (2010, -1.0, "-1"),
    ] {
        let want = filtered(sample, year, rated(min));
        let got = all_pages(&api, &format!("year={year}&min_rating={query}"), 9).await?;
        same_items(&got, &want, &format!("{year} min_rating {min}"))?;
    }
    let unrated = sample
        .year(2013)
        .iter()
        .filter(|i| i["info"]["rating"].is_null())
        .count();
    ensure!(unrated > 0, "2013 has unrated movies to skip");
    // Both filters together.
    let want = filtered(sample, 2013, |i| has_genre(i, "Drama") && rated(7.0)(i));
    let got = all_pages(&api, "year=2013&genre=Drama&min_rating=7", 5).await?;
    same_items(&got, &want, "2013 Drama >= 7")
}

async fn get_returns_the_item_of_the_file(api: Api, _: Host) -> Result<()> {
    let sample = ensure_imported(&api).await?;
    // Every title with punctuation or non-ASCII, plus a few plain ones.
    let picks = sample
        .items
        .iter()
        .filter(|i| {
            i["title"]
                .as_str()
                .is_some_and(|t| !t.is_ascii() || t.contains(['/', '?', '#', '%', '&', ':']))
        })
        .chain(sample.items.iter().step_by(500));
    let mut checked = 0;
    for item in picks {
        let path = item_path(
            item["year"].clone(),
            item["title"].as_str().unwrap_or_default(),
        );
        let reply = api.get(&path, &[]).await?;
        ensure!(reply.status == 200, "GET {path}: {}", reply.status);
        ensure!(reply.header("content-type") == Some("application/json"));
        ensure!(&reply.json()? == item, "GET {path}");
        checked += 1;
    }
    ensure!(checked > 40, "only {checked} checked");
    Ok(())
}

const ODD_TITLES: [&str; 18] = [
    "V/H/S",
    "What?",
    "#1 Hit",
    "100% Pure",
    "a+b=c & d",
    "  spaced  out ",
    "Amélie",
    "Ame\u{301}lie",
    "東京物語",
    "שלום",
    "🎬🍿 Movie Night",
    "quote \" and ' and `",
    "back\\slash",
    "semi;colon,comma",
    "...",
    "%2F",
    "tab\there",
    "Z",
];

async fn unicode_and_punctuation_titles_round_trip(api: Api, _: Host) -> Result<()> {
    let year = fresh_year();
    for title in ODD_TITLES {
        let info = json!({"plot": format!("about {title}"), "genres": ["Odd"]});
        let reply = put_movie(&api, year, title, &info).await?;
        let want = json!({"year": year, "title": title, "info": info});
        ensure!(
            reply.status == 200,
            "PUT {title:?}: {} {:?}",
            reply.status,
            reply.body
        );
        ensure!(
            reply.json()? == want,
            "PUT {title:?} answered {:?}",
            reply.body
        );
        let got = api.get(&item_path(year, title), &[]).await?;
        ensure!(got.status == 200, "GET {title:?}: {}", got.status);
        ensure!(got.json()? == want, "GET {title:?}: {:?}", got.body);
    }
    // The year lists them all, in byte order of the titles.
    let mut want: Vec<&str> = ODD_TITLES.to_vec();
    want.sort_unstable();
    let listed = all_pages(&api, &format!("year={year}&genre=Odd"), 5).await?;
    ensure!(titles(&listed) == want, "listed {:?}", titles(&listed));
    for title in ODD_TITLES {
        let reply = delete_movie(&api, year, title).await?;
        ensure!(reply.status == 204, "DELETE {title:?}: {}", reply.status);
        ensure!(reply.body.is_empty());
        let gone = api.get(&item_path(year, title), &[]).await?;
        expect_error(&gone, 404, "movie_not_found").map_err(|e| e.context(title))?;
    }
    let (left, _) = page(&api, &format!("year={year}")).await?;
    ensure!(left.is_empty(), "left {:?}", titles(&left));
    Ok(())
}

async fn put_creates_then_replaces_and_returns_the_stored_item(api: Api, _: Host) -> Result<()> {
    let year = fresh_year();
    let first = json!({"rating": 5, "genres": ["Drama"]});
    let reply = put_movie(&api, year, "Replace Me", &first).await?;
    ensure!(reply.status == 200, "create: {}", reply.status);
    let second = json!({"rating": 9.5, "plot": "new"});
    // Fields other than `info` are ignored: the path names the movie.
    let auth = auth(&api);
    let body = json!({"info": second.clone(), "year": 1, "title": "Elsewhere"});
    let reply = api
        .send(
            Method::PUT,
            &item_path(year, "Replace Me"),
            &[("authorization", &auth)],
            Some(serde_json::to_vec(&body)?),
        )
        .await?;
    let want = json!({"year": year, "title": "Replace Me", "info": second});
    ensure!(
        reply.status == 200 && reply.json()? == want,
        "replace: {reply:?}"
    );
    ensure!(api.get(&item_path(year, "Replace Me"), &[]).await?.json()? == want);
    let (items, _) = page(&api, &format!("year={year}")).await?;
    ensure!(items == vec![want], "year lists {items:?}");
    let elsewhere = api.get(&item_path(1, "Elsewhere"), &[]).await?;
    expect_error(&elsewhere, 404, "movie_not_found")
}

async fn delete_returns_204_then_404_movie_not_found(api: Api, _: Host) -> Result<()> {
    let year = fresh_year();
    put_movie(&api, year, "Short Lived", &json!({})).await?;
    put_movie(&api, year, "Stays", &json!({})).await?;
    let reply = delete_movie(&api, year, "Short Lived").await?;
    ensure!(reply.status == 204 && reply.body.is_empty(), "{reply:?}");
    let again = delete_movie(&api, year, "Short Lived").await?;
    expect_error(&again, 404, "movie_not_found")?;
    let (items, _) = page(&api, &format!("year={year}")).await?;
    ensure!(titles(&items) == ["Stays"], "{:?}", titles(&items));
    Ok(())
}

async fn get_returns_404_movie_not_found_when_unknown(api: Api, _: Host) -> Result<()> {
    ensure_imported(&api).await?;
    for path in [
        item_path(2013, "No Such Movie"),
        item_path(2013, "rush"),
        item_path(2014, "Rush"),
        item_path(2013, "Rush "),
        item_path(0, "x"),
    ] {
        let reply = api.get(&path, &[]).await?;
        expect_error(&reply, 404, "movie_not_found").map_err(|e| e.context(path))?;
    }
    Ok(())
}

async fn import_merges_with_stored_movies_of_the_year(api: Api, _: Host) -> Result<()> {
    let year = fresh_year();
    put_movie(&api, year, "Kept", &json!({"rank": 1})).await?;
    put_movie(&api, year, "Replaced", &json!({"rank": 2})).await?;
    let body = json!([
        {"year": year, "title": "Replaced", "info": {"rank": 20}},
        {"year": year, "title": "Added"},
        {"year": year, "title": "Twice", "info": {"rank": 3}},
        {"year": year, "title": "Twice", "info": {"rank": 30}},
    ]);
    let reply = import(&api, serde_json::to_vec(&body)?).await?;
    ensure!(reply.status == 200, "{reply:?}");
    ensure!(reply.json()? == json!({"imported": 3}), "{:?}", reply.body);
    let (items, _) = page(&api, &format!("year={year}")).await?;
    let want = vec![
        json!({"year": year, "title": "Added"}),
        json!({"year": year, "title": "Kept", "info": {"rank": 1}}),
        json!({"year": year, "title": "Replaced", "info": {"rank": 20}}),
        json!({"year": year, "title": "Twice", "info": {"rank": 30}}),
    ];
    same_items(&items, &want, "merged year")
}

/// 20 admin PUTs of distinct titles and 2 imports of 5 more, all at once into one
/// year (one partition): every acknowledged write must be there afterwards.
async fn concurrent_puts_and_imports_into_one_year_lose_nothing(api: Api, _: Host) -> Result<()> {
    let year = fresh_year();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(22));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (api, barrier) = (api.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let reply = put_movie(&api, year, &format!("Put {i:02}"), &json!({"rank": i})).await?;
            ensure!(reply.status == 200, "PUT {i}: {}", reply.status);
            Ok::<(), anyhow::Error>(())
        }));
    }
    for batch in 0..2 {
        let (api, barrier) = (api.clone(), barrier.clone());
        let items: Vec<Value> = (0..5)
            .map(|i| json!({"year": year, "title": format!("Import {batch}-{i}"), "info": {}}))
            .collect();
        tasks.push(tokio::spawn(async move {
            let body = serde_json::to_vec(&items)?;
            barrier.wait().await;
            let reply = import(&api, body).await?;
            ensure!(reply.status == 200, "import {batch}: {}", reply.status);
            Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let stored = all_pages(&api, &format!("year={year}"), 500).await?;
    let got: Vec<&str> = titles(&stored);
    let mut want: Vec<String> = (0..20).map(|i| format!("Put {i:02}")).collect();
    want.extend((0..2).flat_map(|b| (0..5).map(move |i| format!("Import {b}-{i}"))));
    want.sort();
    ensure!(
        got == want.iter().map(String::as_str).collect::<Vec<_>>(),
        "{} of 30 acknowledged writes stored: {got:?}",
        got.len()
    );
    Ok(())
}

async fn import_with_one_bad_item_in_the_middle_writes_nothing(api: Api, _: Host) -> Result<()> {
    let sample = ensure_imported(&api).await?;
    let rush = api.get(&item_path(2013, "Rush"), &[]).await?.json()?;
    let year = fresh_year();
    let mut items: Vec<Value> = (0..50)
        .map(|i| json!({"year": year, "title": format!("Good {i:02}")}))
        .collect();
    items.push(json!({"year": 2013, "title": "Rush", "info": {"rating": 1}}));
    items.insert(25, json!({"year": year, "title": ""}));
    let reply = import(&api, serde_json::to_vec(&items)?).await?;
    expect_error(&reply, 400, "invalid_body")?;
    let message = reply.json()?["error"]["message"].clone();
    ensure!(
        message.as_str().is_some_and(|m| m.contains("index 25")),
        "message {message}"
    );
    let (stored, _) = page(&api, &format!("year={year}")).await?;
    ensure!(stored.is_empty(), "wrote {:?}", titles(&stored));
    ensure!(api.get(&item_path(2013, "Rush"), &[]).await?.json()? == rush);
    let (year_2013, _) = page(&api, "year=2013&limit=500").await?;
    same_items(
        &year_2013,
        sample.year(2013),
        "2013 after the rejected import",
    )
}

async fn import_returns_400_naming_the_first_bad_item(api: Api, _: Host) -> Result<()> {
    let year = fresh_year();
    let good = json!({"year": year, "title": "Fine"});
    for (bad, reason) in [
        (json!({"title": "No Year"}), "`year` is missing"),
        (json!({"year": "2013", "title": "String Year"}), "`year`"),
        (
            json!({"year": 2013.5, "title": "Fractional Year"}),
            "`year`",
        ),
        (json!({"year": -1, "title": "Negative"}), "`year`"),
        (json!({"year": 10000, "title": "Far Future"}), "`year`"),
        (json!({"year": year}), "`title` is missing"),
        (
            json!({"year": year, "title": 42}),
            "`title` must be a string",
        ),
        (json!({"year": year, "title": ""}), "must not be empty"),
        (json!({"year": year, "title": "."}), "`.`"),
        (
            json!({"year": year, "title": "x".repeat(1025)}),
            "1024 bytes",
        ),
        (
            json!({"year": year, "title": "Bad Info", "info": [1]}),
            "`info`",
        ),
        (json!([year, "x"]), "JSON object"),
        (json!(null), "JSON object"),
    ] {
        let body = json!([good, good, bad, {"year": "also bad"}]);
        let reply = import(&api, serde_json::to_vec(&body)?).await?;
        expect_error(&reply, 400, "invalid_body").map_err(|e| e.context(bad.to_string()))?;
        let message = reply.json()?["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        ensure!(
            message.contains("index 2") && message.contains(reason),
            "{bad}: message {message:?}, want index 2 and {reason:?}"
        );
    }
    for body in [
        "",
        "{}",
        "{\"year\": 2013}",
        "[",
        "not json",
        "\"text\"",
        "[1,]",
    ] {
        let reply = import(&api, body.as_bytes().to_vec()).await?;
        expect_error(&reply, 400, "invalid_body").map_err(|e| e.context(body))?;
    }
    let (stored, _) = page(&api, &format!("year={year}")).await?;
    ensure!(stored.is_empty(), "wrote {:?}", titles(&stored));
    Ok(())
}

async fn admin_routes_return_401_when_token_is_missing_or_wrong(api: Api, _: Host) -> Result<()> {
    let year = fresh_year();
    put_movie(&api, year, "Guarded", &json!({"rank": 1})).await?;
    let path = item_path(year, "Guarded");
    let import_body = serde_json::to_vec(&json!([{"year": year, "title": "Sneaky"}]))?;
    let put_body = serde_json::to_vec(&json!({"info": {"rank": 666}}))?;
    let wrong = format!("Bearer {}x", api.admin_token);
    let bare = api.admin_token.clone();
    for headers in [
        vec![],
        vec![("authorization", "Bearer nope")],
        vec![("authorization", wrong.as_str())],
        vec![("authorization", bare.as_str())],
        vec![("authorization", "Bearer ")],
    ] {
        for (method, target, body) in [
            (Method::PUT, path.as_str(), Some(put_body.clone())),
            (Method::DELETE, path.as_str(), None),
            (
                Method::POST,
                "/api/movies/import",
                Some(import_body.clone()),
            ),
        ] {
            let reply = api.send(method.clone(), target, &headers, body).await?;
            expect_error(&reply, 401, "unauthorized")
                .map_err(|e| e.context(format!("{method} {target} {headers:?}")))?;
        }
    }
    let (items, _) = page(&api, &format!("year={year}")).await?;
    ensure!(
        items == vec![json!({"year": year, "title": "Guarded", "info": {"rank": 1}})],
        "changed: {items:?}"
    );
    Ok(())
}

async fn list_returns_400_invalid_query_when_query_is_bad(api: Api, _: Host) -> Result<()> {
    ensure_imported(&api).await?;
    let (_, cursor) = page(&api, "year=2013&limit=2").await?;
    let cursor = cursor.context("cursor")?;
    let mut tampered = cursor.clone();
    tampered.insert(3, 'A');
    for query in [
        String::new(),
        "genre=Drama".into(),
        "year=".into(),
        "year=abc".into(),
        "year=2013.0".into(),
        "year=-2013".into(),
        "year=10000".into(),
        "year=2013&year=2012".into(),
        "year=2013&limit=0".into(),
        "year=2013&limit=501".into(),
        "year=2013&limit=ten".into(),
        "year=2013&min_rating=high".into(),
        "year=2013&min_rating=NaN".into(),
        "year=2013&genre=".into(),
        "year=2013&cursor=".into(),
        "year=2013&cursor=!!!".into(),
        format!("year=2013&cursor={tampered}"),
        format!("year=2012&cursor={cursor}"),
        format!("year=2013&genre=Drama&cursor={cursor}"),
        "year=%ZZ".into(),
    ] {
        let reply = api.get(&format!("/api/movies?{query}"), &[]).await?;
        expect_error(&reply, 400, "invalid_query").map_err(|e| e.context(query))?;
    }
    Ok(())
}

async fn item_routes_return_400_when_year_or_title_is_bad(api: Api, _: Host) -> Result<()> {
    let auth = auth(&api);
    let body = serde_json::to_vec(&json!({"info": {}}))?;
    for (path, code) in [
        ("/api/movies/abc/Rush", "invalid_year"),
        ("/api/movies/20133/Rush", "invalid_year"),
        ("/api/movies/-1/Rush", "invalid_year"),
        ("/api/movies/2013.0/Rush", "invalid_year"),
        ("/api/movies/2013/", "invalid_title"),
        ("/api/movies/2013/%FF%FE", "invalid_path"),
        ("/api/movies/2013/%E", "invalid_path"),
    ] {
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            let reply = api
                .send(
                    method.clone(),
                    path,
                    &[("authorization", &auth)],
                    Some(body.clone()),
                )
                .await?;
            expect_error(&reply, 400, code).map_err(|e| e.context(format!("{method} {path}")))?;
        }
    }
    let long = "x".repeat(1025);
    let reply = api.get(&item_path(2013, &long), &[]).await?;
    expect_error(&reply, 400, "invalid_title")
}

async fn rejected_put_changes_nothing(api: Api, _: Host) -> Result<()> {
    let year = fresh_year();
    let info = json!({"rank": 7});
    put_movie(&api, year, "Solid", &info).await?;
    let path = item_path(year, "Solid");
    let auth = auth(&api);
    for body in [
        "",
        "{}",
        "{\"info\": null}",
        "{\"info\": [1, 2]}",
        "{\"info\": \"text\"}",
        "[]",
        "{\"info\": {}",
        "not json",
    ] {
        let reply = api
            .send(
                Method::PUT,
                &path,
                &[("authorization", &auth)],
                Some(body.as_bytes().to_vec()),
            )
            .await?;
        expect_error(&reply, 400, "invalid_body").map_err(|e| e.context(body))?;
    }
    let got = api.get(&path, &[]).await?.json()?;
    ensure!(
        got == json!({"year": year, "title": "Solid", "info": info}),
        "{got}"
    );
    Ok(())
}

async fn import_returns_413_when_body_is_over_8_mib(api: Api, _: Host) -> Result<()> {
    let year = fresh_year();
    // A valid array just over 8 MiB, and one just under it, which is accepted.
    let build = |size: usize| -> Result<Vec<u8>> {
        let mut body = serde_json::to_vec(&json!([{"year": year, "title": "Big", "info": {}}]))?;
        body.pop();
        body.extend(std::iter::repeat_n(b' ', size - body.len() - 1));
        body.push(b']');
        Ok(body)
    };
    let over = build(8 * 1024 * 1024 + 1)?;
    let reply = import(&api, over).await?;
    expect_error(&reply, 413, "payload_too_large")?;
    let (stored, _) = page(&api, &format!("year={year}")).await?;
    ensure!(stored.is_empty(), "wrote {:?}", titles(&stored));
    let at_limit = build(8 * 1024 * 1024)?;
    let reply = import(&api, at_limit).await?;
    ensure!(reply.status == 200, "8 MiB exactly: {reply:?}");
    Ok(())
}

async fn put_returns_413_when_body_is_over_64_kib(api: Api, _: Host) -> Result<()> {
    let year = fresh_year();
    let path = item_path(year, "Huge");
    let plot = "x".repeat(64 * 1024);
    let reply = put_movie(&api, year, "Huge", &json!({ "plot": plot })).await?;
    expect_error(&reply, 413, "payload_too_large")?;
    let missing = api.get(&path, &[]).await?;
    expect_error(&missing, 404, "movie_not_found")?;
    let fits = "x".repeat(60 * 1024);
    let reply = put_movie(&api, year, "Huge", &json!({ "plot": fits })).await?;
    ensure!(reply.status == 200, "60 KiB refused: {}", reply.status);
    Ok(())
}

async fn wrong_method_returns_405_with_allow_header(api: Api, _: Host) -> Result<()> {
    for (method, path, allow) in [
        (Method::POST, "/api/movies", "GET"),
        (Method::DELETE, "/api/movies", "GET"),
        (Method::GET, "/api/movies/import", "POST"),
        (Method::PUT, "/api/movies/import", "POST"),
        (Method::POST, "/api/movies/2013/Rush", "GET, PUT, DELETE"),
        (Method::PATCH, "/api/movies/2013/Rush", "GET, PUT, DELETE"),
        (Method::POST, "/api/movies/openapi.json", "GET"),
        (Method::POST, "/docs", "GET"),
    ] {
        let reply = api.send(method.clone(), path, &[], None).await?;
        expect_error(&reply, 405, "method_not_allowed")
            .map_err(|e| e.context(format!("{method} {path}")))?;
        ensure!(
            reply.header("allow") == Some(allow),
            "{method} {path}: allow {:?}",
            reply.header("allow")
        );
    }
    for path in [
        "/api/movies/2013",
        "/api/movies/2013/Rush/extra",
        "/api/moviesx",
    ] {
        let reply = api.get(path, &[]).await?;
        expect_error(&reply, 404, "not_found").map_err(|e| e.context(path))?;
    }
    Ok(())
}

async fn openapi_json_is_served_as_json(api: Api, _: Host) -> Result<()> {
    let reply = api
        .get("/api/movies/openapi.json", &[("x-request-id", "openapi-1")])
        .await?;
    ensure!(reply.status == 200, "status {}", reply.status);
    ensure!(reply.header("content-type") == Some("application/json"));
    ensure!(reply.header("x-request-id") == Some("openapi-1"));
    let doc = reply.json()?;
    ensure!(doc["openapi"] == "3.1.0", "openapi {}", doc["openapi"]);
    for path in ["/api/movies", "/hello/{username}", "/healthz", "/docs"] {
        ensure!(doc["paths"][path].is_object(), "{path} missing");
    }
    Ok(())
}

async fn docs_page_and_assets_are_served_with_content_types(api: Api, _: Host) -> Result<()> {
    let page = api.get("/docs", &[]).await?;
    ensure!(page.status == 200, "/docs: {}", page.status);
    ensure!(
        page.header("content-type") == Some("text/html; charset=utf-8"),
        "{:?}",
        page.header("content-type")
    );
    let html = String::from_utf8_lossy(&page.body).into_owned();
    ensure!(html.contains("/docs/swagger-ui-bundle.js") && !html.contains("https://"));
    for (path, content_type, min_len) in [
        ("/docs/swagger-ui.css", "text/css; charset=utf-8", 100_000),
        (
            "/docs/swagger-ui-bundle.js",
            "application/javascript; charset=utf-8",
            1_000_000,
        ),
        (
            "/docs/swagger-initializer.js",
            "application/javascript; charset=utf-8",
            100,
        ),
        ("/docs/favicon-32x32.png", "image/png", 100),
    ] {
        let reply = api.get(path, &[]).await?;
        ensure!(reply.status == 200, "{path}: {}", reply.status);
        ensure!(
            reply.header("content-type") == Some(content_type),
            "{path}: {:?}",
            reply.header("content-type")
        );
        ensure!(
            reply.body.len() >= min_len,
            "{path}: {} bytes",
            reply.body.len()
        );
    }
    let bundle = api.get("/docs/swagger-ui-bundle.js", &[]).await?;
    ensure!(
        bundle.body.as_ref()
            == std::fs::read(
                conformance::root().join("node_modules/swagger-ui-dist/swagger-ui-bundle.js")
            )?
            .as_slice(),
        "the bundle is not swagger-ui-dist's"
    );
    let missing = api.get("/docs/nope.js", &[]).await?;
    expect_error(&missing, 404, "not_found")
}

/// Runs the users' importer, `scripts/import-movies.sh`, against the host: exit code,
/// stdout, stderr.
async fn run_importer(
    api: &Api,
    args: &[&str],
    file: &std::path::Path,
) -> Result<(i32, String, String)> {
    let mut command = std::process::Command::new("bash");
    command
        .arg(conformance::root().join("scripts/import-movies.sh"))
        .args(["--token", &api.admin_token])
        .args(args)
        .arg(&api.base)
        .arg(file);
    let out = tokio::task::spawn_blocking(move || command.output())
        .await?
        .context("running scripts/import-movies.sh")?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// The whole sample moved to years 7000 + (year − 1900), which no other case uses, so
/// what the script stored can be told apart from the sample itself; its people are
/// renamed too, so the copy does not change the sample's movie graph (the graph suite
/// checks that graph against the file).
const SHIFT: u64 = 7000 - 1900;

fn with_shifted_year(item: &Value) -> Value {
    let mut item = item.clone();
    item["year"] = json!(item["year"].as_u64().unwrap_or_default() + SHIFT);
    for field in ["actors", "directors"] {
        if let Some(names) = item["info"][field].as_array_mut() {
            for name in names {
                if let Some(n) = name.as_str() {
                    *name = json!(format!("{n} (copy)"));
                }
            }
        }
    }
    item
}

async fn importer_script_loads_a_file_in_chunks_with_progress(api: Api, _: Host) -> Result<()> {
    let sample = sample()?;
    let shifted: Vec<Value> = sample.items.iter().map(with_shifted_year).collect();
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), serde_json::to_vec(&shifted)?)?;
    let (code, stdout, stderr) =
        run_importer(&api, &["--chunk-bytes", "524288"], file.path()).await?;
    ensure!(code == 0, "exit {code}\n{stdout}\n{stderr}");
    // One progress line per request, `[k/n]` for k = 1…n, and more than one request.
    let progress: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix('['))
        .filter_map(|l| l.split(']').next())
        .collect();
    let n = progress.len();
    let want: Vec<String> = (1..=n).map(|k| format!("{k}/{n}")).collect();
    ensure!(
        n >= 2 && progress == want,
        "progress lines {progress:?}:\n{stdout}"
    );
    ensure!(
        stdout.contains(&format!("done: {} movies", sample.items.len())),
        "{stdout}"
    );
    for (year, want) in &sample.by_year {
        let want: Vec<Value> = want.iter().map(with_shifted_year).collect();
        let (got, _) = page(&api, &format!("year={}&limit=500", year + SHIFT)).await?;
        same_items(
            &got,
            &want,
            &format!("year {} imported by the script", year + SHIFT),
        )?;
    }
    Ok(())
}

async fn importer_script_sends_nothing_when_an_item_is_bad(api: Api, _: Host) -> Result<()> {
    let year = fresh_year();
    let items = json!([
        {"year": year, "title": "Fine", "info": {}},
        {"year": year, "title": "Also fine"},
        {"year": year, "title": ""},
        {"year": year, "title": "Never sent"},
    ]);
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), serde_json::to_vec(&items)?)?;
    let (code, stdout, stderr) = run_importer(&api, &[], file.path()).await?;
    ensure!(code == 1, "exit {code}\n{stdout}\n{stderr}");
    ensure!(
        stderr.contains("item at index 2") && stderr.contains("nothing was sent"),
        "{stderr}"
    );
    let (got, _) = page(&api, &format!("year={year}")).await?;
    ensure!(
        got.is_empty(),
        "year {year} has {} movies after a refused import",
        got.len()
    );
    Ok(())
}
