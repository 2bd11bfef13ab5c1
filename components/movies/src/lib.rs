//! The movies API (OpenAPI tag `movies`), the AWS "Movies database" exercise on the edge: items
//! of `moviedata.json` keyed by year (partition) and title (sort key) in the DynamoDB
//! table `Movies`. `GET /api/movies?year=…` lists a year by title with `genre` / `min_rating`
//! filters and opaque cursors, `GET/PUT/DELETE /api/movies/{year}/{title}` address one
//! movie (PUT and DELETE are admin), `POST /api/movies/import` (admin, up to 8 MiB)
//! loads a whole `moviedata.json` array. (`GET /api/movies/openapi.json`, the project's
//! OpenAPI document, is the `docs` crate's.)
//!
//! The movies are the built-in DynamoDB table `Movies` ([`ddb_model`]): what boto3
//! puts there through `/dynamodb` is served here, and what is imported here a DynamoDB
//! `Scan` sees. Storage suits the edge: a key-value backend keeps one partition — one
//! year — in one stored value, so a year query is one read, and an import merges into
//! each year once, atomically (about 90 writes for the whole sample file), after
//! listing the year in the table's partition directory. [`handle`] is the whole
//! service, platform-neutral; `spin_entry` is the Spin component entry (build with
//! `bash scripts/build-components.sh movies`), and the Worker routes
//! `/api/movies` here too, with the table in Durable Objects (one per year).
//! `cargo test -p movies` runs the domain and handler tests.

mod domain;

pub use domain::{
    cursor, group_by_year, parse_import, query_pairs, Filter, ListQuery, Movie, MoviesError,
    PutBody, Title, Year, DEFAULT_LIMIT, MAX_LIMIT, MAX_TITLE_BYTES, MAX_YEAR,
};

use ddb_model::schema;
use ddb_writes::Door;
use http::{Method, StatusCode};
use kit::table::Cond;
use kit::{BodyLimit, Ctx, Params, Request, Response, Router};
use serde::Serialize;
use serde_json::json;

/// The table-layer table of the movies: the built-in DynamoDB table `Movies`
/// (partition `year` N, sort key `title` S), items in DynamoDB's typed JSON.
fn movies_table(ctx: &Ctx<'_>) -> Result<std::rc::Rc<dyn kit::table::Table>, MoviesError> {
    Ok(ctx.env.table(&schema::movies().storage_name())?)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    List,
    Import,
    Get,
    Put,
    Delete,
}

fn router() -> Router<Route> {
    Router::new()
        .route(Method::GET, "/api/movies", Route::List)
        .route(Method::POST, "/api/movies/import", Route::Import)
        .route(Method::GET, "/api/movies/{year}/{title}", Route::Get)
        .route(Method::PUT, "/api/movies/{year}/{title}", Route::Put)
        .route(Method::DELETE, "/api/movies/{year}/{title}", Route::Delete)
}

/// The routes this service answers, for the OpenAPI coverage test.
pub fn routes() -> Vec<(Method, String)> {
    router().routes()
}

/// Serves one request of the movies API. The import route accepts bodies up to 8 MiB,
/// every other route 64 KiB.
pub async fn handle(req: Request, env: &kit::Env) -> Response {
    let limit = match router().resolve(req.method(), req.uri().path()) {
        Ok((Route::Import, _)) => BodyLimit::BULK,
        _ => BodyLimit::DEFAULT,
    };
    kit::serve_cached(req, env, "movies", limit, Some(EDGE_CACHING), dispatch).await
}

/// Public reads are kept in the edge cache (Workers) under the `Movies` table's
/// generation, which every write starts anew (see `kit::cache`): other data centres
/// may serve a read up to 10 s older than a write, the one that took it never.
pub const EDGE_CACHING: kit::EdgeCaching = kit::EdgeCaching {
    table: ddb_model::schema::MOVIES,
    ttl_secs: 10,
    uncached: &[],
};

async fn dispatch(req: Request, ctx: Ctx<'_>) -> Result<Response, kit::ApiError> {
    let (route, params) = ctx.resolve(&router(), &req)?;
    match route {
        Route::List => list(&req, &ctx).await,
        Route::Import => import(&req, &ctx).await,
        Route::Get => get(&ctx, &params).await,
        Route::Put => put(&req, &ctx, &params).await,
        Route::Delete => delete(&req, &ctx, &params).await,
    }
    .map_err(Into::into)
}

/// `{year}` and `{title}` of an item route.
fn key(params: &Params) -> Result<(Year, Title), MoviesError> {
    let year = Year::parse(params.get("year")).ok_or(MoviesError::InvalidYear)?;
    let title = Title::parse(params.get("title")).map_err(MoviesError::InvalidTitle)?;
    Ok((year, title))
}

#[derive(Serialize)]
struct ListPage {
    items: Vec<Movie>,
    next_cursor: Option<String>,
}

/// One read of the year's partition, then filters, then the page after the cursor.
async fn list(req: &Request, ctx: &Ctx<'_>) -> Result<Response, MoviesError> {
    let query = ListQuery::parse(req.uri().query())?;
    let table = movies_table(ctx)?;
    let stored = table
        .query(&query.year.partition(), query.after.as_deref(), usize::MAX)
        .await?;
    let mut matching = stored
        .items
        .into_iter()
        .map(|item| Movie::from_stored(query.year, item.sk, item.value))
        .filter(|movie| movie.as_ref().map_or(true, |m| query.filter.matches(m)));
    let items = matching
        .by_ref()
        .take(query.limit)
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = match (matching.next(), items.last()) {
        (Some(_), Some(last)) => Some(query.cursor_after(last.title.as_str())),
        _ => None,
    };
    Ok(kit::revalidated(
        kit::json(StatusCode::OK, &ListPage { items, next_cursor }),
        kit::REVALIDATE_ALWAYS,
    ))
}

async fn get(ctx: &Ctx<'_>, params: &Params) -> Result<Response, MoviesError> {
    let (year, title) = key(params)?;
    let table = movies_table(ctx)?;
    let item = table
        .get(&year.partition(), title.as_str())
        .await?
        .ok_or(MoviesError::MovieNotFound)?;
    let movie = Movie::from_stored(year, item.sk, item.value)?;
    Ok(kit::revalidated(
        kit::json(StatusCode::OK, &movie),
        kit::REVALIDATE_ALWAYS,
    ))
}

/// Creates or replaces one movie; answers the stored item.
async fn put(req: &Request, ctx: &Ctx<'_>, params: &Params) -> Result<Response, MoviesError> {
    kit::require_admin(req, ctx.env)?;
    let (year, title) = key(params)?;
    let body: PutBody = kit::parse_json(req)?;
    let movie = Movie {
        year,
        title,
        info: Some(body.info),
        extra: Default::default(),
    };
    let stored = movie.stored().map_err(kit::ApiError::invalid_body)?;
    let table = movies_table(ctx)?;
    let (def, door) = (schema::movies(), Door::new(ctx.env));
    door.open(&def, &year.partition()).await?;
    let written = table
        .put(
            &year.partition(),
            movie.title.as_str(),
            stored.clone(),
            Cond::Any,
        )
        .await;
    let changed = match written {
        Ok(_) => vec![(&stored, Some(&stored))],
        Err(_) => Vec::new(),
    };
    door.close(&def, &changed).await?;
    written?;
    Ok(kit::json(StatusCode::OK, &movie))
}

/// Deletes one movie: 204, or 404 `movie_not_found` (the table writes nothing when
/// the movie is not there).
async fn delete(req: &Request, ctx: &Ctx<'_>, params: &Params) -> Result<Response, MoviesError> {
    kit::require_admin(req, ctx.env)?;
    let (year, title) = key(params)?;
    let table = movies_table(ctx)?;
    let deleted = table
        .delete(&year.partition(), title.as_str(), Cond::Any)
        .await;
    let key = Movie::key(year, &title);
    let changed = match deleted {
        Ok(true) => vec![(&key, None)],
        _ => Vec::new(),
    };
    Door::new(ctx.env)
        .close(&schema::movies(), &changed)
        .await?;
    if !deleted? {
        return Err(MoviesError::MovieNotFound);
    }
    Ok(kit::empty(StatusCode::NO_CONTENT))
}

/// Validates the whole array first (nothing is written when any item is bad), then
/// merges each year's movies into the stored year as one atomic write, so a movie put
/// concurrently into that year is kept.
async fn import(req: &Request, ctx: &Ctx<'_>) -> Result<Response, MoviesError> {
    kit::require_admin(req, ctx.env)?;
    let movies = parse_import(req.body())?;
    let groups = group_by_year(movies)?;
    let table = movies_table(ctx)?;
    let (def, door) = (schema::movies(), Door::new(ctx.env));
    let mut imported = Vec::new();
    let mut written = Ok(());
    for (year, movies) in groups {
        let stored: Vec<_> = movies.iter().map(|(_, item)| item.clone()).collect();
        door.open(&def, &year.partition()).await?;
        written = table.put_items(&year.partition(), movies).await;
        if written.is_err() {
            break;
        }
        imported.extend(stored);
    }
    let changed: Vec<_> = imported.iter().map(|item| (item, Some(item))).collect();
    door.close(&def, &changed).await?;
    written?;
    Ok(kit::json(
        StatusCode::OK,
        &json!({ "imported": imported.len() }),
    ))
}

// The Spin component entry (wasm32-wasip2 only).
kit::spin_http_component!(crate::handle);

#[cfg(test)]
mod tests;
