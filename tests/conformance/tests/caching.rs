//! HTTP caching of the public reads (docs/SERVICES.md, "HTTP caching"): shows pages and items,
//! movies by year and by key, the OpenAPI document and the `/docs` files carry a strong
//! `ETag` and answer a matching `If-None-Match` with 304 and no body; a write changes
//! the tag, so a cache that revalidates never serves a stale answer. Everything else is
//! `no-store` and has no tag. Where the host has an edge cache (Workers' Cache API, the
//! native host's), repeated public reads are answered from it, and a write through the
//! movies API or the DynamoDB API is seen by the next read all the same.

use crate::movies::{item_path, put_movie};
use anyhow::{ensure, Context, Result};
use conformance::{Api, Host, Reply};
use serde_json::json;
use std::sync::atomic::{AtomicU16, Ordering};

pub fn cases() -> Vec<crate::common::Case> {
    crate::cases![
        public_reads_answer_304_to_their_own_etag_only,
        a_movie_write_changes_the_etag_of_its_item_and_its_year,
        writes_and_errors_are_no_store_without_an_etag,
        movie_reads_come_from_the_edge_cache_until_a_write_through_either_door,
        scrape_status_is_never_looked_up_in_the_edge_cache,
    ]
}

fn etag(reply: &Reply, what: &str) -> Result<String> {
    let tag = reply
        .header("etag")
        .with_context(|| format!("{what}: no etag ({})", reply.status))?;
    ensure!(
        tag.starts_with('"') && tag.ends_with('"') && tag.len() > 2,
        "{what}: not a strong tag: {tag}"
    );
    Ok(tag.to_owned())
}

/// GET `path` with `If-None-Match: tag`.
async fn revalidate(api: &Api, path: &str, tag: &str) -> Result<Reply> {
    api.get(path, &[("if-none-match", tag)]).await
}

async fn public_reads_answer_304_to_their_own_etag_only(api: Api, _: Host) -> Result<()> {
    let paths = [
        ("/api/shows?page=0&size=3", "public, no-cache"),
        ("/api/movies?year=2013&limit=5", "public, no-cache"),
        ("/api/movies/openapi.json", "public, no-cache"),
        ("/docs", "no-cache"),
        ("/docs/swagger-ui.css", "public, max-age=3600"),
    ];
    for (path, cache_control) in paths {
        let first = api.get(path, &[]).await?;
        ensure!(first.status == 200, "{path}: {}", first.status);
        ensure!(
            first.header("cache-control") == Some(cache_control),
            "{path}: cache-control {:?}",
            first.header("cache-control")
        );
        let tag = etag(&first, path)?;
        let again = api.get(path, &[]).await?;
        ensure!(etag(&again, path)? == tag, "{path}: the tag is not stable");
        for sent in [tag.clone(), format!("W/{tag}"), format!("\"other\", {tag}")] {
            let cached = revalidate(&api, path, &sent).await?;
            ensure!(
                cached.status == 304 && cached.body.is_empty(),
                "{path} with If-None-Match {sent}: {} {:?}",
                cached.status,
                String::from_utf8_lossy(&cached.body)
            );
            ensure!(etag(&cached, path)? == tag, "{path}: 304 with another tag");
        }
        // Two If-None-Match lines mean one comma-joined line: the tag on the second hits.
        let lines = [
            ("if-none-match", "\"other\""),
            ("if-none-match", tag.as_str()),
        ];
        let second_line = api.get(path, &lines).await?;
        ensure!(
            second_line.status == 304,
            "{path} with the tag on a second If-None-Match line: {}",
            second_line.status
        );
        let stale = revalidate(&api, path, "\"0123456789abcdef0123456789abcdef\"").await?;
        ensure!(
            stale.status == 200 && stale.body == first.body,
            "{path} with another tag: {}",
            stale.status
        );
    }
    Ok(())
}

async fn a_movie_write_changes_the_etag_of_its_item_and_its_year(api: Api, _: Host) -> Result<()> {
    static NEXT: AtomicU16 = AtomicU16::new(8000);
    let year = NEXT.fetch_add(1, Ordering::Relaxed);
    let title = "Cache Me If You Can";
    let item = item_path(year, title);
    let list = format!("/api/movies?year={year}");
    let put = put_movie(&api, year, title, &json!({"rating": 1.5})).await?;
    ensure!(put.status == 200, "PUT: {}", put.status);
    let item_tag = etag(&api.get(&item, &[]).await?, "item")?;
    let list_tag = etag(&api.get(&list, &[]).await?, "year")?;
    ensure!(
        revalidate(&api, &item, &item_tag).await?.status == 304,
        "item not cached"
    );
    ensure!(
        revalidate(&api, &list, &list_tag).await?.status == 304,
        "year not cached"
    );
    let put = put_movie(&api, year, title, &json!({"rating": 2.5})).await?;
    ensure!(put.status == 200, "second PUT: {}", put.status);
    for (path, old, rating) in [
        (&item, &item_tag, "/info/rating"),
        (&list, &list_tag, "/items/0/info/rating"),
    ] {
        let fresh = revalidate(&api, path, old).await?;
        ensure!(
            fresh.status == 200 && etag(&fresh, path)? != *old,
            "{path} after a write: {} with tag {:?}",
            fresh.status,
            fresh.header("etag")
        );
        ensure!(
            fresh.json()?.pointer(rating) == Some(&json!(2.5)),
            "{path} after a write does not show it: {:?}",
            String::from_utf8_lossy(&fresh.body)
        );
    }
    Ok(())
}

async fn writes_and_errors_are_no_store_without_an_etag(api: Api, _: Host) -> Result<()> {
    let replies = [
        api.get("/api/movies/1900/No%20Such%20Movie", &[]).await?,
        api.get("/hello/nobodyhere", &[]).await?,
        api.get("/api/shows/scrape/status", &[]).await?,
        api.get("/healthz", &[]).await?,
    ];
    for reply in &replies {
        ensure!(
            reply.header("cache-control") == Some("no-store") && reply.header("etag").is_none(),
            "{} with cache-control {:?}, etag {:?}",
            reply.status,
            reply.header("cache-control"),
            reply.header("etag")
        );
    }
    Ok(())
}

/// The `cache` field of the request log line of the request with id `id`.
async fn cache_outcome(id: &str) -> Result<Option<String>> {
    let logs = crate::logs::host_logs()?;
    // Workers' log lines reach the harness through wrangler's output, a little later.
    for _ in 0..50 {
        let lines = crate::logs::lines_of_kind(&logs.lines(), "request");
        if let Some(line) = lines.iter().find(|l| l["request_id"] == id) {
            return Ok(line["cache"].as_str().map(str::to_owned));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("no request log line with id {id}")
}

async fn movie_reads_come_from_the_edge_cache_until_a_write_through_either_door(
    api: Api,
    host: Host,
) -> Result<()> {
    static NEXT: AtomicU16 = AtomicU16::new(8500);
    let year = NEXT.fetch_add(1, Ordering::Relaxed);
    let title = "Edge Of Tomorrow";
    let item = item_path(year, title);
    // A query variant a purge by URL would never know of.
    let list = format!("/api/movies?year={year}&limit=7");
    let mut n = 0;
    // Reads `path` with a fresh request id; its body, etag and the log line's outcome.
    let mut read = |path: String| {
        n += 1;
        let id = format!("edge-{year}-{n}");
        let api = api.clone();
        async move {
            let reply = api.get(&path, &[("x-request-id", &id)]).await?;
            ensure!(
                reply.header("x-request-id") == Some(id.as_str()),
                "{path}: x-request-id {:?}, sent {id}",
                reply.header("x-request-id")
            );
            let outcome = cache_outcome(&id).await?;
            anyhow::Ok((reply, outcome))
        }
    };
    // Where the host has no edge cache (Spin), the log line has no `cache` field.
    let (expect_miss, expect_hit) = if host.has_edge_cache() {
        (Some("miss"), Some("hit"))
    } else {
        (None, None)
    };
    let rating = |reply: &Reply, pointer: &str| reply.json().ok()?.pointer(pointer).cloned();

    ensure!(
        put_movie(&api, year, title, &json!({"rating": 1.5}))
            .await?
            .status
            == 200
    );
    for (path, pointer) in [(&item, "/info/rating"), (&list, "/items/0/info/rating")] {
        let (first, outcome) = read(path.clone()).await?;
        ensure!(first.status == 200, "{path}: {}", first.status);
        ensure!(
            outcome.as_deref() == expect_miss,
            "{path} first read: {outcome:?}"
        );
        let (again, outcome) = read(path.clone()).await?;
        ensure!(
            outcome.as_deref() == expect_hit,
            "{path} second read on {}: {outcome:?}",
            host.name()
        );
        ensure!(
            again.status == 200
                && again.body == first.body
                && again.header("etag") == first.header("etag")
                && again.header("content-type") == Some("application/json"),
            "{path}: a cached answer differs from the stored one"
        );
        ensure!(
            rating(&again, pointer) == Some(json!(1.5)),
            "{path}: rating"
        );
    }

    // Through the movies API...
    ensure!(
        put_movie(&api, year, title, &json!({"rating": 2.5}))
            .await?
            .status
            == 200
    );
    for (path, pointer) in [(&item, "/info/rating"), (&list, "/items/0/info/rating")] {
        let (reply, outcome) = read(path.clone()).await?;
        ensure!(
            rating(&reply, pointer) == Some(json!(2.5)),
            "{path} after a PUT: {}",
            String::from_utf8_lossy(&reply.body)
        );
        ensure!(
            outcome.as_deref() == expect_miss,
            "{path} after a PUT: {outcome:?}"
        );
    }
    // ...and through the DynamoDB API, the other door to the same table.
    for (path, _) in [(&item, ()), (&list, ())] {
        read(path.clone()).await?;
    }
    let key = json!({"year": {"N": year.to_string()}, "title": {"S": title}});
    let put = crate::dynamodb::call(
        &api,
        "UpdateItem",
        &json!({
            "TableName": "Movies",
            "Key": key,
            "UpdateExpression": "SET info.rating = :r",
            "ExpressionAttributeValues": {":r": {"N": "3.5"}},
        }),
    )
    .await?;
    ensure!(
        put.status == 200,
        "UpdateItem: {} {:?}",
        put.status,
        String::from_utf8_lossy(&put.body)
    );
    for (path, pointer) in [(&item, "/info/rating"), (&list, "/items/0/info/rating")] {
        let (reply, _) = read(path.clone()).await?;
        ensure!(
            rating(&reply, pointer) == Some(json!(3.5)),
            "{path} after a DynamoDB UpdateItem: {}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    let delete = crate::dynamodb::call(
        &api,
        "DeleteItem",
        &json!({"TableName": "Movies", "Key": key}),
    )
    .await?;
    ensure!(delete.status == 200, "DeleteItem: {}", delete.status);
    let (gone, _) = read(item.clone()).await?;
    ensure!(
        gone.status == 404,
        "the item after DeleteItem: {}",
        gone.status
    );
    let (empty, _) = read(list.clone()).await?;
    ensure!(
        empty.json()?["items"] == json!([]),
        "the year after DeleteItem: {}",
        String::from_utf8_lossy(&empty.body)
    );
    Ok(())
}

/// The scraper's status is never stored in the edge cache, so it must not pay for cache
/// lookups either: its log line has no `cache` outcome, while a shows page read beside
/// it does (where the host has an edge cache).
async fn scrape_status_is_never_looked_up_in_the_edge_cache(api: Api, host: Host) -> Result<()> {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let page_id = format!("status-page-{n}");
    let status_id = format!("status-{n}");
    let page = api
        .get("/api/shows?page=0", &[("x-request-id", &page_id)])
        .await?;
    ensure!(page.status == 200, "shows page: {}", page.status);
    let status = api
        .get("/api/shows/scrape/status", &[("x-request-id", &status_id)])
        .await?;
    ensure!(status.status == 200, "status: {}", status.status);
    let page_outcome = cache_outcome(&page_id).await?;
    if host.has_edge_cache() {
        ensure!(
            matches!(page_outcome.as_deref(), Some("hit" | "miss")),
            "a shows page on {}: {page_outcome:?}",
            host.name()
        );
    }
    let status_outcome = cache_outcome(&status_id).await?;
    ensure!(
        status_outcome.is_none(),
        "the scraper status on {} went through the edge cache: {status_outcome:?}",
        host.name()
    );
    Ok(())
}
