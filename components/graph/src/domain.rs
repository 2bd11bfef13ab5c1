//! The graph API's inputs, parsed at the boundary, and its one error type.

use graph_model::MovieRef;
use http::StatusCode;
use kit::table::StoreError;
use kit::ApiError;

/// Everything that can go wrong in the graph API; mapped to HTTP once, below.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("no actor or director of that name is in any movie")]
    ActorNotFound(String),
    #[error("no movie has this year and title")]
    MovieNotFound,
    #[error("no chain of movies connects {0} and {1}")]
    NoPath(String, String),
    #[error("the search read {0} nodes without connecting the two; it stops there (see the README's bound)")]
    SearchTooLarge(usize),
    #[error("the user name must be 1 to 64 ASCII letters")]
    InvalidUsername,
    #[error("a user cannot be their own friend")]
    SelfFriend,
    #[error("the year must be a whole number from 0 to 9999, written as 1-4 digits")]
    InvalidYear,
    #[error("{0}")]
    InvalidName(&'static str),
    #[error("{0}")]
    InvalidQuery(String),
    #[error("stored graph data is unreadable: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<GraphError> for ApiError {
    fn from(err: GraphError) -> Self {
        let message = err.to_string();
        let bad = |code| ApiError::new(StatusCode::BAD_REQUEST, code, message.clone());
        match err {
            GraphError::ActorNotFound(name) => ApiError::new(
                StatusCode::NOT_FOUND,
                "actor_not_found",
                format!("{name:?} is not an actor or director of any movie"),
            ),
            GraphError::MovieNotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "movie_not_found", message)
            }
            GraphError::NoPath(..) => ApiError::new(StatusCode::NOT_FOUND, "no_path", message),
            GraphError::SearchTooLarge(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "search_too_large",
                message,
            ),
            GraphError::InvalidUsername => bad("invalid_username"),
            GraphError::SelfFriend => bad("invalid_friend"),
            GraphError::InvalidYear => bad("invalid_year"),
            GraphError::InvalidName(_) => bad("invalid_name"),
            GraphError::InvalidQuery(detail) => ApiError::invalid_query(detail),
            GraphError::Corrupt(_) => ApiError::internal(message),
            GraphError::Api(api) => api,
            GraphError::Store(store) => store.into(),
        }
    }
}

/// A user name: the birthday API's rule, 1–64 ASCII letters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, GraphError> {
        if (1..=64).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_alphabetic()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(GraphError::InvalidUsername)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An actor's or director's name as a path segment or query value names it.
pub fn person_name(raw: &str) -> Result<String, GraphError> {
    if raw.is_empty() {
        Err(GraphError::InvalidName("the name must not be empty"))
    } else if raw.len() > graph_model::node::MAX_NAME_BYTES {
        Err(GraphError::InvalidName(
            "the name must be at most 512 bytes of UTF-8",
        ))
    } else {
        Ok(raw.to_owned())
    }
}

/// A movie's `{year}/{title}` path segments, by the movies API's rules.
pub fn movie_ref(year: &str, title: &str) -> Result<MovieRef, GraphError> {
    if !(1..=4).contains(&year.len()) || !year.bytes().all(|b| b.is_ascii_digit()) {
        return Err(GraphError::InvalidYear);
    }
    let year: u16 = year.parse().map_err(|_| GraphError::InvalidYear)?;
    if title.is_empty() || title.len() > 1024 {
        return Err(GraphError::InvalidName(
            "the title must be 1 to 1024 bytes of UTF-8",
        ));
    }
    Ok(MovieRef {
        year,
        title: title.to_owned(),
    })
}

/// The query string as decoded pairs (`+` is a space, as browsers send forms).
pub fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, GraphError> {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return Ok(Vec::new());
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                kit::router::percent_decode(&s.replace('+', " ")).map_err(|_| {
                    GraphError::InvalidQuery(format!("bad percent-encoding in {pair:?}"))
                })
            };
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// The one value of query parameter `name`: missing, empty or repeated is 400.
pub fn one(pairs: &[(String, String)], name: &str) -> Result<String, GraphError> {
    let mut found = pairs.iter().filter(|(k, _)| k == name);
    match (found.next(), found.next()) {
        (Some((_, v)), None) if !v.is_empty() => Ok(v.clone()),
        (Some(_), None) | (None, _) => Err(GraphError::InvalidQuery(format!(
            "the query parameter `{name}` is required"
        ))),
        (Some(_), Some(_)) => Err(GraphError::InvalidQuery(format!(
            "the query parameter `{name}` is given more than once"
        ))),
    }
}

/// `limit` of a list: 1–100, default 20.
pub fn limit(pairs: &[(String, String)]) -> Result<usize, GraphError> {
    match pairs.iter().find(|(k, _)| k == "limit") {
        None => Ok(20),
        Some((_, v)) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                GraphError::InvalidQuery("`limit` must be a whole number from 1 to 100".into())
            }),
    }
}
