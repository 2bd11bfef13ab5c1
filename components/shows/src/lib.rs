//! The TV shows API (OpenAPI tag `shows`): `GET /api/shows?page&size`, `GET /api/shows/{id}`,
//! the scraper's `GET /api/shows/scrape/status`, and `POST /api/shows/scrape` (admin),
//! which runs one scraper tick for hosts without a scheduler.
//!
//! Reads are cheap by construction: a page is one directory read plus the one to three
//! stored chunks it overlaps, a show is one chunk read (see `tvmaze_scraper::store`). Spin
//! component: `bash scripts/build-components.sh shows`; the Worker
//! routes `/api/shows` here.

use http::{header, HeaderValue, Method, StatusCode};
use kit::{ApiError, BodyLimit, Ctx, Params, Request, Response, Router};
use tvmaze_scraper::store::{ShowStore, SHOWS_TABLE};
use tvmaze_scraper::{Config, ScraperError};

#[derive(Debug, Clone, Copy)]
enum Route {
    List,
    One,
    Status,
    Scrape,
}

fn router() -> Router<Route> {
    Router::new()
        .route(Method::GET, "/api/shows", Route::List)
        .route(Method::GET, "/api/shows/scrape/status", Route::Status)
        .route(Method::POST, "/api/shows/scrape", Route::Scrape)
        .route(Method::GET, "/api/shows/{id}", Route::One)
}

/// The routes this service answers, for the OpenAPI coverage test.
pub fn routes() -> Vec<(Method, String)> {
    router().routes()
}

/// Errors of the shows API; mapped to HTTP once, below.
#[derive(Debug, thiserror::Error)]
pub enum ShowsError {
    #[error("no show has this id")]
    ShowNotFound,
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Scraper(#[from] ScraperError),
    #[error(transparent)]
    Store(#[from] kit::table::StoreError),
}

impl From<ShowsError> for ApiError {
    fn from(err: ShowsError) -> Self {
        match err {
            ShowsError::ShowNotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "show_not_found", err.to_string())
            }
            ShowsError::Api(e) => e,
            ShowsError::Scraper(e) => e.into(),
            ShowsError::Store(e) => e.into(),
        }
    }
}

/// Public reads are kept in the edge cache (Workers) under the shows table's
/// generation, which a scraper tick that stored shows starts anew (see `kit::cache`):
/// the data centre that ran the tick serves the new shows at once, others within 60 s.
/// The scraper's routes stay out of it: its status is never cached, and the admin tick
/// starts a new generation itself when it stored shows.
pub const EDGE_CACHING: kit::EdgeCaching = kit::EdgeCaching {
    table: tvmaze_scraper::store::SHOWS_TABLE,
    ttl_secs: 60,
    uncached: &["/api/shows/scrape"],
};

/// Serves one request of the shows API.
pub async fn handle(req: Request, env: &kit::Env) -> Response {
    kit::serve_cached(
        req,
        env,
        "shows",
        BodyLimit::DEFAULT,
        Some(EDGE_CACHING),
        dispatch,
    )
    .await
}

async fn dispatch(req: Request, ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (route, params) = ctx.resolve(&router(), &req)?;
    match route {
        Route::List => list(&req, &ctx).await,
        Route::One => one(&ctx, &params).await,
        Route::Status => Ok(kit::json(
            StatusCode::OK,
            &tvmaze_scraper::status(ctx.env).await?,
        )),
        Route::Scrape => {
            kit::require_admin(&req, ctx.env)?;
            let status = tvmaze_scraper::tick(ctx.env, ctx.now).await?;
            Ok(kit::json(StatusCode::ACCEPTED, &status))
        }
    }
    .map_err(Into::into)
}

/// `page` ≥ 0 (default 0) and `size` 1–250 (default 25), from the query string.
/// Positions are u64 so that a 32-bit wasm host pages exactly like a 64-bit one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub page: u64,
    pub size: u64,
}

impl Paging {
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut paging = Paging { page: 0, size: 25 };
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| ApiError::invalid_query(format!("`{key}` must be a whole number")))
            };
            match key {
                "page" => paging.page = number()?,
                "size" => paging.size = number()?,
                _ => {}
            }
        }
        if !(1..=250).contains(&paging.size) {
            return Err(ApiError::invalid_query("`size` must be between 1 and 250"));
        }
        if paging.page.checked_mul(paging.size).is_none() {
            return Err(ApiError::invalid_query("`page` is too large"));
        }
        Ok(paging)
    }
}

async fn list(req: &Request, ctx: &Ctx<'_>) -> Result<Response, ShowsError> {
    let paging = Paging::parse(req.uri().query())?;
    let config = Config::from_env(ctx.env)?;
    let table = ctx.env.table(SHOWS_TABLE)?;
    let store = ShowStore::new(table.as_ref(), config.page_size);
    let offset = paging.page * paging.size;
    let (shows, total) = store.page(offset, paging.size).await?;
    let body: Vec<_> = shows.iter().map(|s| s.api()).collect();
    let mut response = kit::json(StatusCode::OK, &body);
    if offset + paging.size < total {
        let next = format!(
            "</api/shows?page={}&size={}>; rel=\"next\"",
            paging.page + 1,
            paging.size
        );
        if let Ok(value) = HeaderValue::from_str(&next) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    Ok(kit::revalidated(response, kit::REVALIDATE_ALWAYS))
}

async fn one(ctx: &Ctx<'_>, params: &Params) -> Result<Response, ShowsError> {
    // Any id that is not a TvMaze id cannot name a show: 404, as for a missing one.
    let id: u64 = params
        .get("id")
        .parse()
        .map_err(|_| ShowsError::ShowNotFound)?;
    let config = Config::from_env(ctx.env)?;
    let table = ctx.env.table(SHOWS_TABLE)?;
    let show = ShowStore::new(table.as_ref(), config.page_size)
        .show(id)
        .await?
        .ok_or(ShowsError::ShowNotFound)?;
    Ok(kit::revalidated(
        kit::json(StatusCode::OK, &show.api()),
        kit::REVALIDATE_ALWAYS,
    ))
}

// The Spin component entry (wasm32-wasip2 only).
kit::spin_http_component!(crate::handle, uses: [fetch]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_parse_applies_defaults_and_bounds() {
        assert_eq!(Paging::parse(None).unwrap(), Paging { page: 0, size: 25 });
        assert_eq!(
            Paging::parse(Some("page=3&size=250&x=1")).unwrap(),
            Paging { page: 3, size: 250 }
        );
        for bad in [
            "size=0", "size=251", "page=-1", "page=x", "size=", "page=1.5",
        ] {
            assert_eq!(
                Paging::parse(Some(bad)).unwrap_err().code,
                "invalid_query",
                "{bad}"
            );
        }
    }
}
