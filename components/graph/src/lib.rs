//! The movie graph API (OpenAPI tag `graph`) (the IMDBaaS exercise on the edge): who was in
//! which movie with whom, the shortest actor–movie–actor chain between two people,
//! and users' friendships, watched movies, favourite actors and recommendations.
//!
//! The graph is [`graph_model`]'s: nodes in the `graph` table, kept up to date by every
//! movie write (the movies API and the DynamoDB endpoint on `Movies`) and never built
//! per request; a query reads the nodes it needs, a BFS level in one batched read.
//! Users are one item each in the `graph_users` table, changed atomically. [`handle`]
//! is the whole service, platform-neutral; the Spin component entry is at the end
//! (`bash scripts/build-components.sh graph`), and the Worker routes
//! `/api/graph` here too. `cargo test -p graph` runs the handler tests.

mod domain;

pub use domain::{GraphError, Username};

use domain::{limit, movie_ref, one, person_name, query_pairs};
use graph_model::{find_path, Bound, Graph, MovieRef, PathOutcome, Step};
use http::{Method, StatusCode};
use kit::table::{Change, Item, Mutation, StoreError};
use kit::{BodyLimit, Ctx, Params, Request, Response, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeSet;

/// The table of users' own data: one item per user.
pub const USERS_TABLE: &str = "graph_users";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Actor,
    Path,
    Rebuild,
    User,
    FriendPut,
    FriendDelete,
    WatchedPut,
    WatchedDelete,
    FavoritePut,
    FavoriteDelete,
    FriendsWatched,
    Recommendations,
}

fn router() -> Router<Route> {
    use Route::*;
    Router::new()
        .route(Method::GET, "/api/graph/actors/{name}", Actor)
        .route(Method::GET, "/api/graph/path", Path)
        .route(Method::POST, "/api/graph/rebuild", Rebuild)
        .route(Method::GET, "/api/graph/users/{user}", User)
        .route(
            Method::PUT,
            "/api/graph/users/{user}/friends/{other}",
            FriendPut,
        )
        .route(
            Method::DELETE,
            "/api/graph/users/{user}/friends/{other}",
            FriendDelete,
        )
        .route(
            Method::PUT,
            "/api/graph/users/{user}/watched/{year}/{title}",
            WatchedPut,
        )
        .route(
            Method::DELETE,
            "/api/graph/users/{user}/watched/{year}/{title}",
            WatchedDelete,
        )
        .route(
            Method::PUT,
            "/api/graph/users/{user}/favorite-actors/{name}",
            FavoritePut,
        )
        .route(
            Method::DELETE,
            "/api/graph/users/{user}/favorite-actors/{name}",
            FavoriteDelete,
        )
        .route(
            Method::GET,
            "/api/graph/users/{user}/friends/watched",
            FriendsWatched,
        )
        .route(
            Method::GET,
            "/api/graph/users/{user}/recommendations",
            Recommendations,
        )
}

/// The routes this service answers, for the OpenAPI coverage test.
pub fn routes() -> Vec<(Method, String)> {
    router().routes()
}

/// Serves one request of the graph API.
pub async fn handle(req: Request, env: &kit::Env) -> Response {
    kit::serve(req, env, "graph", BodyLimit::DEFAULT, dispatch).await
}

async fn dispatch(req: Request, ctx: Ctx<'_>) -> Result<Response, kit::ApiError> {
    let (route, params) = ctx.resolve(&router(), &req)?;
    let env = ctx.env;
    match route {
        Route::Actor => actor(env, &params).await,
        Route::Path => path(env, &req).await,
        Route::Rebuild => rebuild(env, &req).await,
        Route::User => user(env, &params).await,
        Route::FriendPut => friend(env, &params, true).await,
        Route::FriendDelete => friend(env, &params, false).await,
        Route::WatchedPut => watched(env, &params, true).await,
        Route::WatchedDelete => watched(env, &params, false).await,
        Route::FavoritePut => favorite(env, &params, true).await,
        Route::FavoriteDelete => favorite(env, &params, false).await,
        Route::FriendsWatched => friends_watched(env, &req, &params).await,
        Route::Recommendations => recommendations(env, &req, &params).await,
    }
    .map_err(Into::into)
}

#[derive(Serialize)]
struct Costar {
    name: String,
    movies_together: usize,
}

/// A person's movies (year, then title) and co-stars (most movies together first,
/// then by name): two batched reads, the person's node and their movies' casts.
async fn actor(env: &kit::Env, params: &Params) -> Result<Response, GraphError> {
    let name = person_name(params.get("name"))?;
    let graph = Graph::open(env)?;
    let node = graph
        .people(std::slice::from_ref(&name))
        .await?
        .pop()
        .flatten()
        .ok_or_else(|| GraphError::ActorNotFound(name.clone()))?;
    let movies = node.movies();
    let casts = graph.movies(&movies).await?;
    // Each co-star once per shared movie (a cast lists a person once), counted by run.
    let mut together: Vec<&str> = casts
        .iter()
        .flatten()
        .flat_map(graph_model::Cast::people)
        .filter(|p| *p != name)
        .collect();
    kit::sorted::sort(&mut together);
    let mut costars: Vec<Costar> = together
        .chunk_by(|a, b| a == b)
        .map(|run| Costar {
            // A run is never empty.
            name: run.first().copied().unwrap_or_default().to_owned(),
            movies_together: run.len(),
        })
        .collect();
    kit::sorted::sort_by(&mut costars, |a, b| {
        b.movies_together
            .cmp(&a.movies_together)
            .then(a.name.cmp(&b.name))
    });
    let movies: Vec<&MovieRef> = movies
        .iter()
        .zip(&casts)
        .filter(|(_, c)| c.is_some())
        .map(|(m, _)| m)
        .collect();
    Ok(kit::json(
        StatusCode::OK,
        &json!({ "name": name, "movies": movies, "costars": costars }),
    ))
}

/// The search's bound: `graph_max_nodes` / `graph_max_reads` when configured.
fn bound(env: &kit::Env) -> Bound {
    let default = Bound::default();
    let read = |key: &str, fallback: usize| {
        env.config(key)
            .and_then(|v| v.parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or(fallback)
    };
    Bound {
        max_nodes: read("graph_max_nodes", default.max_nodes),
        max_reads: read("graph_max_reads", default.max_reads),
    }
}

async fn path(env: &kit::Env, req: &Request) -> Result<Response, GraphError> {
    let pairs = query_pairs(req.uri().query())?;
    let from = person_name(&one(&pairs, "from")?)?;
    let to = person_name(&one(&pairs, "to")?)?;
    let graph = Graph::open(env)?;
    let (outcome, stats) = find_path(&graph, &from, &to, bound(env)).await?;
    match outcome {
        PathOutcome::Found(steps) => {
            let degrees = steps.iter().filter(|s| matches!(s, Step::Movie(_))).count();
            Ok(kit::json(
                StatusCode::OK,
                &json!({ "degrees": degrees, "path": steps, "search": stats }),
            ))
        }
        PathOutcome::NoPath => Err(GraphError::NoPath(from, to)),
        PathOutcome::UnknownActor(name) => Err(GraphError::ActorNotFound(name)),
        PathOutcome::BoundHit => Err(GraphError::SearchTooLarge(stats.nodes)),
    }
}

/// Admin: recomputes the graph from the `Movies` table.
async fn rebuild(env: &kit::Env, req: &Request) -> Result<Response, GraphError> {
    kit::require_admin(req, env)?;
    let rebuilt = graph_model::rebuild(env).await?;
    Ok(kit::json(StatusCode::OK, &rebuilt))
}

/// One user's own data, as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct UserData {
    #[serde(default)]
    friends: BTreeSet<String>,
    /// Movie ids, `<year>:<title>`.
    #[serde(default)]
    watched: BTreeSet<String>,
    #[serde(default)]
    favorite_actors: BTreeSet<String>,
}

fn decode_user(value: &serde_json::Value) -> Result<UserData, GraphError> {
    kit::json::from_value(value).map_err(|e| GraphError::Corrupt(e.to_string()))
}

async fn load_users(env: &kit::Env, names: &[String]) -> Result<Vec<UserData>, GraphError> {
    let keys: Vec<(String, String)> = names.iter().map(|n| (n.clone(), String::new())).collect();
    env.table(USERS_TABLE)?
        .get_many(&keys)
        .await?
        .iter()
        .map(|item| match item {
            Some(item) => decode_user(&item.value),
            None => Ok(UserData::default()),
        })
        .collect()
}

/// One set of a user's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum UserSet {
    Friends,
    Watched,
    FavoriteActors,
}

/// Adding (`on`) or removing one value of one set of a user's data: a table mutation,
/// so that on Workers it runs inside the user's Durable Object in one call. It writes
/// nothing when nothing changes, which makes every PUT and DELETE idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEdit {
    set: UserSet,
    value: String,
    on: bool,
}

/// The kind a [`UserEdit`] ships as.
pub const USER_EDIT: &str = "graph.user_edit";

impl Mutation for UserEdit {
    fn kind(&self) -> &'static str {
        USER_EDIT
    }

    fn args(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    fn decide(&self, current: Option<&Item>) -> Result<(Change, serde_json::Value), StoreError> {
        let mut data = match current.map(|i| decode_user(&i.value)).transpose() {
            Ok(data) => data.unwrap_or_default(),
            Err(e) => return Ok((Change::Keep, json!({"corrupt": e.to_string()}))),
        };
        let set = match self.set {
            UserSet::Friends => &mut data.friends,
            UserSet::Watched => &mut data.watched,
            UserSet::FavoriteActors => &mut data.favorite_actors,
        };
        let changed = if self.on {
            set.insert(self.value.clone())
        } else {
            set.remove(&self.value)
        };
        if !changed {
            return Ok((Change::Keep, serde_json::Value::Null));
        }
        let value = serde_json::to_value(&data).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok((Change::Put(value), serde_json::Value::Null))
    }
}

/// Rebuilds this crate's shipped mutations (see [`kit::table::Mutations`]).
pub fn mutations(kind: &str, args: serde_json::Value) -> Option<Box<dyn Mutation>> {
    if kind != USER_EDIT {
        return graph_model::mutation::mutations(kind, args);
    }
    let edit: UserEdit = kit::json::from_value(&args).ok()?;
    Some(Box::new(edit))
}

/// Changes one user's data atomically, where the item lives.
async fn edit_user(env: &kit::Env, user: &Username, edit: UserEdit) -> Result<(), GraphError> {
    let mutated = env
        .table(USERS_TABLE)?
        .mutate(user.as_str(), "", &edit)
        .await?;
    match mutated.note["corrupt"].as_str() {
        Some(e) => Err(GraphError::Corrupt(e.to_owned())),
        None => Ok(()),
    }
}

fn movie_json(id: &str) -> serde_json::Value {
    match MovieRef::from_id(id) {
        Some(m) => json!({ "year": m.year, "title": m.title }),
        None => json!({ "id": id }),
    }
}

async fn user(env: &kit::Env, params: &Params) -> Result<Response, GraphError> {
    let user = Username::parse(params.get("user"))?;
    let data = load_users(env, &[user.as_str().to_owned()])
        .await?
        .pop()
        .unwrap_or_default();
    let watched: Vec<_> = data.watched.iter().map(|id| movie_json(id)).collect();
    Ok(kit::json(
        StatusCode::OK,
        &json!({
            "name": user.as_str(),
            "friends": data.friends,
            "watched": watched,
            "favorite_actors": data.favorite_actors,
        }),
    ))
}

/// Friendship is mutual: both users' items change (each atomically; a retry of an
/// interrupted PUT or DELETE completes it, since both are idempotent).
async fn friend(env: &kit::Env, params: &Params, on: bool) -> Result<Response, GraphError> {
    let user = Username::parse(params.get("user"))?;
    let other = Username::parse(params.get("other"))?;
    if user == other {
        return Err(GraphError::SelfFriend);
    }
    for (a, b) in [(&user, &other), (&other, &user)] {
        let edit = UserEdit {
            set: UserSet::Friends,
            value: b.as_str().to_owned(),
            on,
        };
        edit_user(env, a, edit).await?;
    }
    Ok(kit::empty(StatusCode::NO_CONTENT))
}

/// Marks a movie watched (it must be in the graph, i.e. in the movies table) or not.
async fn watched(env: &kit::Env, params: &Params, on: bool) -> Result<Response, GraphError> {
    let user = Username::parse(params.get("user"))?;
    let movie = movie_ref(params.get("year"), params.get("title"))?;
    if on {
        let graph = Graph::open(env)?;
        let cast = graph
            .movies(std::slice::from_ref(&movie))
            .await?
            .pop()
            .flatten();
        if cast.is_none() {
            return Err(GraphError::MovieNotFound);
        }
    }
    let edit = UserEdit {
        set: UserSet::Watched,
        value: movie.id(),
        on,
    };
    edit_user(env, &user, edit).await?;
    Ok(kit::empty(StatusCode::NO_CONTENT))
}

async fn favorite(env: &kit::Env, params: &Params, on: bool) -> Result<Response, GraphError> {
    let user = Username::parse(params.get("user"))?;
    let name = person_name(params.get("name"))?;
    if on {
        let graph = Graph::open(env)?;
        let node = graph
            .people(std::slice::from_ref(&name))
            .await?
            .pop()
            .flatten();
        if node.is_none() {
            return Err(GraphError::ActorNotFound(name));
        }
    }
    let edit = UserEdit {
        set: UserSet::FavoriteActors,
        value: name,
        on,
    };
    edit_user(env, &user, edit).await?;
    Ok(kit::empty(StatusCode::NO_CONTENT))
}

/// The user's data and their friends', in two batched reads.
async fn circle(
    env: &kit::Env,
    user: &Username,
) -> Result<(UserData, Vec<(String, UserData)>), GraphError> {
    let me = load_users(env, &[user.as_str().to_owned()])
        .await?
        .pop()
        .unwrap_or_default();
    let names: Vec<String> = me.friends.iter().cloned().collect();
    let friends = load_users(env, &names).await?;
    Ok((me, names.into_iter().zip(friends).collect()))
}

/// Movie id → the friends who watched it (in name order), by movie id.
struct WatchedBy(Vec<(String, Vec<String>)>);

impl WatchedBy {
    /// `friends` come in name order, once each (from a set), so each movie's list is
    /// in name order without duplicates.
    fn new(friends: &[(String, UserData)]) -> Self {
        let mut pairs = Vec::new();
        for (name, data) in friends {
            for id in &data.watched {
                pairs.push((id.clone(), name.clone()));
            }
        }
        Self(kit::sorted::group(pairs))
    }

    fn movies(&self) -> impl Iterator<Item = MovieRef> + '_ {
        self.0.iter().filter_map(|(id, _)| MovieRef::from_id(id))
    }

    fn get(&self, id: &str) -> Option<&[String]> {
        self.0
            .binary_search_by(|(movie, _)| movie.as_str().cmp(id))
            .ok()
            .and_then(|i| self.0.get(i))
            .map(|(_, friends)| friends.as_slice())
    }
}

/// Movies the user's friends watched, most-watched first (then newest year, then
/// title), each with who watched it; movies deleted since are left out.
async fn friends_watched(
    env: &kit::Env,
    req: &Request,
    params: &Params,
) -> Result<Response, GraphError> {
    let user = Username::parse(params.get("user"))?;
    let limit = limit(&query_pairs(req.uri().query())?)?;
    let (_, friends) = circle(env, &user).await?;
    let by = WatchedBy::new(&friends);
    let movies: Vec<MovieRef> = by.movies().collect();
    let casts = Graph::open(env)?.movies(&movies).await?;
    let mut items: Vec<(MovieRef, &[String])> = movies
        .into_iter()
        .zip(casts)
        .filter(|(_, c)| c.is_some())
        .filter_map(|(m, _)| by.get(&m.id()).map(|w| (m, w)))
        .collect();
    kit::sorted::sort_by(&mut items, |(ma, wa), (mb, wb)| {
        wb.len()
            .cmp(&wa.len())
            .then(mb.year.cmp(&ma.year))
            .then(ma.title.cmp(&mb.title))
    });
    let items: Vec<_> = items
        .into_iter()
        .take(limit)
        .map(|(m, w)| json!({ "year": m.year, "title": m.title, "watched_by": w, "friends": w.len() }))
        .collect();
    Ok(kit::json(StatusCode::OK, &json!({ "items": items })))
}

/// One recommendation and why.
struct Ranked<'a> {
    score: usize,
    movie: MovieRef,
    actors: Vec<&'a str>,
    friends: &'a [String],
}

/// Unwatched movies ranked by score = friends who watched it + favourite actors in it,
/// ties broken by more friends, then newest year, then title (byte order).
async fn recommendations(
    env: &kit::Env,
    req: &Request,
    params: &Params,
) -> Result<Response, GraphError> {
    let user = Username::parse(params.get("user"))?;
    let limit = limit(&query_pairs(req.uri().query())?)?;
    let (me, friends) = circle(env, &user).await?;
    let graph = Graph::open(env)?;
    let by = WatchedBy::new(&friends);
    let favorites: Vec<String> = me.favorite_actors.iter().cloned().collect();
    let nodes = graph.people(&favorites).await?;
    let mut movies: Vec<MovieRef> = by.movies().collect();
    for node in nodes.iter().flatten() {
        movies.extend(node.movies());
    }
    movies.retain(|m| !me.watched.contains(&m.id()));
    kit::sorted::sort(&mut movies);
    movies.dedup();
    let casts = graph.movies(&movies).await?;
    let mut items: Vec<Ranked<'_>> = movies
        .into_iter()
        .zip(casts)
        .filter_map(|(movie, cast)| {
            let cast = cast?;
            let people = cast.people();
            let actors: Vec<&str> = favorites
                .iter()
                .map(String::as_str)
                .filter(|f| people.binary_search(f).is_ok())
                .collect();
            let friends = by.get(&movie.id()).unwrap_or_default();
            let score = friends.len() + actors.len();
            (score > 0).then_some(Ranked {
                score,
                movie,
                actors,
                friends,
            })
        })
        .collect();
    kit::sorted::sort_by(&mut items, |a, b| {
        b.score
            .cmp(&a.score)
            .then(b.friends.len().cmp(&a.friends.len()))
            .then(b.movie.year.cmp(&a.movie.year))
            .then(a.movie.title.cmp(&b.movie.title))
    });
    let items: Vec<_> = items
        .into_iter()
        .take(limit)
        .map(|r| {
            json!({
                "year": r.movie.year,
                "title": r.movie.title,
                "score": r.score,
                "reasons": { "friends_watched": r.friends, "favorite_actors": r.actors },
            })
        })
        .collect();
    Ok(kit::json(StatusCode::OK, &json!({ "items": items })))
}

// The Spin component entry (wasm32-wasip2 only).
kit::spin_http_component!(crate::handle);

#[cfg(test)]
mod tests;
