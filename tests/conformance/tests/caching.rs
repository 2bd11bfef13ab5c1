//! HTTP caching of the public reads (README, "HTTP caching"): shows pages and items,
//! movies by year and by key, the OpenAPI document and the `/docs` files carry a strong
//! `ETag` and answer a matching `If-None-Match` with 304 and no body; a write changes
//! the tag, so a cache that revalidates never serves a stale answer. Everything else is
//! `no-store` and has no tag.

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
