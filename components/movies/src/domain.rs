//! Movie domain types: every input (path, query string, JSON body) is parsed into these
//! at the boundary, so the handlers only see valid years, titles, filters and cursors.

use http::StatusCode;
use kit::table::StoreError;
use kit::ApiError;
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt;

use ddb_model::value::{
    item_from_json, item_size, item_to_json, AttrValue, Item, Number, MAX_ITEM_BYTES,
};
use ddb_model::{plain, schema};

/// Years are 0–9999, written as 1–4 decimal digits in paths and query strings.
pub const MAX_YEAR: u16 = 9999;
/// Titles are 1–1024 bytes of UTF-8.
pub const MAX_TITLE_BYTES: usize = 1024;
/// `limit` when the query has none.
pub const DEFAULT_LIMIT: usize = 50;
/// The largest `limit` a query may ask for.
pub const MAX_LIMIT: usize = 500;

/// Everything that can go wrong in the movies API; mapped to HTTP once, below.
#[derive(Debug, thiserror::Error)]
pub enum MoviesError {
    /// A bad query-string value of `GET /api/movies` (400 `invalid_query`).
    #[error("{0}")]
    InvalidQuery(String),
    /// The `{year}` path segment is not a year (400 `invalid_year`).
    #[error("the year must be a whole number from 0 to 9999, written as 1-4 digits")]
    InvalidYear,
    /// The `{title}` path segment is not a title (400 `invalid_title`).
    #[error("{0}")]
    InvalidTitle(&'static str),
    /// An item of an import is not a movie (400 `invalid_body`); nothing was written.
    #[error("item at index {index}{title}: {reason}")]
    InvalidItem {
        index: usize,
        /// ` (title "…")` when the item has a string title, else empty.
        title: String,
        reason: String,
    },
    #[error("no movie has this year and title")]
    MovieNotFound,
    #[error("a stored movie is unreadable: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<MoviesError> for ApiError {
    fn from(err: MoviesError) -> Self {
        let message = err.to_string();
        match err {
            MoviesError::InvalidQuery(detail) => ApiError::invalid_query(detail),
            MoviesError::InvalidYear => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_year", message)
            }
            MoviesError::InvalidTitle(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_title", message)
            }
            MoviesError::InvalidItem { .. } => ApiError::invalid_body(message),
            MoviesError::MovieNotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "movie_not_found", message)
            }
            MoviesError::Corrupt(_) => ApiError::internal(message),
            MoviesError::Api(api) => api,
            MoviesError::Store(store) => store.into(),
        }
    }
}

/// A movie's year: the table's partition key, a DynamoDB number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Year(u16);

impl Year {
    /// Parses 1–4 ASCII digits (no sign, no spaces): `2013`, `0`, `0999`.
    pub fn parse(raw: &str) -> Option<Self> {
        if !(1..=4).contains(&raw.len()) || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        raw.parse().ok().map(Self)
    }

    /// A JSON integer from 0 to 9999 (`2013`; not `2013.0`, `"2013"` or `-1`).
    pub fn from_json(value: &Value) -> Option<Self> {
        value
            .as_u64()
            .and_then(|y| u16::try_from(y).ok())
            .filter(|y| *y <= MAX_YEAR)
            .map(Self)
    }

    pub fn get(self) -> u16 {
        self.0
    }

    /// The table-layer partition of this year in `Movies` (DynamoDB's key encoding).
    pub fn partition(self) -> String {
        schema::number_partition(&Number::from(self.0))
    }
}

impl fmt::Display for Year {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A movie's title: the table's sort key, kept byte for byte (no case folding, no
/// Unicode normalisation, no trimming).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Title(String);

impl Title {
    /// 1–1024 bytes of UTF-8, anything but `.` and `..`, which URL parsers resolve as
    /// path segments (even percent-encoded), so no request could address them.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.is_empty() {
            Err("the title must not be empty")
        } else if raw.len() > MAX_TITLE_BYTES {
            Err("the title must be at most 1024 bytes of UTF-8")
        } else if raw == "." || raw == ".." {
            Err("the title cannot be `.` or `..`: no URL path can address it")
        } else {
            Ok(Self(raw.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// One movie, in the shape of an item of AWS's `moviedata.json`:
/// `{"year": 2013, "title": "Rush", "info": {...}}` (`info` may be absent). An item
/// written through the DynamoDB endpoint may hold more attributes (or an `info` that
/// is not a map): those are served too, after `info`, in name order.
#[derive(Debug, Clone, PartialEq)]
pub struct Movie {
    pub year: Year,
    pub title: Title,
    pub info: Option<Map<String, Value>>,
    pub extra: Map<String, Value>,
}

/// The JSON form, keys in the sample file's order.
#[derive(Serialize)]
struct MovieJson<'a> {
    year: u16,
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    info: Option<&'a Map<String, Value>>,
    #[serde(flatten)]
    extra: &'a Map<String, Value>,
}

impl Serialize for Movie {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        MovieJson {
            year: self.year.get(),
            title: self.title.as_str(),
            info: self.info.as_ref(),
            extra: &self.extra,
        }
        .serialize(serializer)
    }
}

impl Movie {
    /// Parses one import item; the error is the reason, for [`MoviesError::InvalidItem`].
    /// Fields other than `year`, `title` and `info` are ignored.
    pub fn from_import(value: Value) -> Result<Self, String> {
        let Value::Object(mut object) = value else {
            return Err("an item must be a JSON object".into());
        };
        let year = match object.get("year") {
            None => return Err("`year` is missing".into()),
            Some(raw) => Year::from_json(raw)
                .ok_or("`year` must be a whole number from 0 to 9999 (a JSON integer)")?,
        };
        let title = match object.get("title") {
            None => return Err("`title` is missing".into()),
            Some(Value::String(raw)) => Title::parse(raw)?,
            Some(_) => return Err("`title` must be a string".into()),
        };
        let info = match object.remove("info") {
            None => None,
            Some(Value::Object(info)) => Some(info),
            Some(_) => return Err("`info` must be a JSON object when present".into()),
        };
        Ok(Self {
            year,
            title,
            info,
            extra: Map::new(),
        })
    }

    /// The key attributes of movie `year`/`title` in DynamoDB's typed JSON.
    pub fn key(year: Year, title: &Title) -> Value {
        let mut key = Item::new();
        key.insert("year".into(), AttrValue::N(Number::from(year.0)));
        key.insert("title".into(), AttrValue::S(title.0.clone()));
        item_to_json(&key)
    }

    /// The item as the `Movies` table stores it, in DynamoDB's typed JSON (see
    /// [`ddb_model::plain`]); the error is why DynamoDB could not hold it (a number out
    /// of its range, an item over 400 KB).
    pub fn stored(&self) -> Result<Value, String> {
        let mut item = Item::new();
        item.insert("year".into(), AttrValue::N(Number::from(self.year.0)));
        item.insert("title".into(), AttrValue::S(self.title.0.clone()));
        for (name, value) in &self.extra {
            let typed = plain::to_attr(value).map_err(|e| unholdable(name, e))?;
            item.insert(name.clone(), typed);
        }
        if let Some(info) = &self.info {
            let typed = plain::to_item(info).map_err(|e| unholdable("info", e))?;
            item.insert("info".into(), AttrValue::M(typed));
        }
        if item_size(&item) > MAX_ITEM_BYTES {
            return Err("the item is over DynamoDB's 400 KB item limit".into());
        }
        Ok(item_to_json(&item))
    }

    /// Rebuilds a movie from its key and the stored item.
    pub fn from_stored(year: Year, title: String, value: Value) -> Result<Self, MoviesError> {
        let item = item_from_json(&value)
            .map_err(|e| MoviesError::Corrupt(format!("{year}/{title}: {}", e.message)))?;
        let mut movie = Self {
            year,
            title: Title(title),
            info: None,
            extra: Map::new(),
        };
        for (name, value) in &item {
            match (name.as_str(), plain::from_attr(value)) {
                ("year" | "title", _) => {}
                ("info", Value::Object(info)) => movie.info = Some(info),
                (_, other) => {
                    movie.extra.insert(name.clone(), other);
                }
            }
        }
        Ok(movie)
    }

    fn info_field(&self, name: &str) -> Option<&Value> {
        self.info.as_ref().and_then(|info| info.get(name))
    }

    /// Whether `info.genres` is an array holding exactly `genre` (case-sensitive).
    pub fn has_genre(&self, genre: &str) -> bool {
        self.info_field("genres")
            .and_then(Value::as_array)
            .is_some_and(|genres| genres.iter().any(|g| g.as_str() == Some(genre)))
    }

    /// `info.rating` when it is a JSON number.
    pub fn rating(&self) -> Option<f64> {
        self.info_field("rating").and_then(Value::as_f64)
    }
}

/// The body of `PUT /api/movies/{year}/{title}`; other fields are ignored.
#[derive(Debug, serde::Deserialize)]
pub struct PutBody {
    pub info: Map<String, Value>,
}

/// Parses an import body: a JSON array of movies, every item checked before anything
/// is written. The first bad item's index (0-based) and reason are the error.
pub fn parse_import(body: &[u8]) -> Result<Vec<Movie>, MoviesError> {
    let value: Value = kit::json::from_bytes(body).map_err(ApiError::invalid_body)?;
    let Value::Array(items) = value else {
        return Err(ApiError::invalid_body("the body must be a JSON array of movies").into());
    };
    let mut movies = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let title = match item.get("title") {
            Some(Value::String(t)) => title_note(t),
            _ => String::new(),
        };
        let movie = Movie::from_import(item).map_err(|reason| MoviesError::InvalidItem {
            index,
            title,
            reason,
        })?;
        movies.push(movie);
    }
    Ok(movies)
}

/// Why DynamoDB cannot hold attribute `name` of a movie.
fn unholdable(name: &str, e: ddb_model::error::DynamoError) -> String {
    format!("`{name}`: {}", e.message)
}

/// ` (title "…")` for an error about an item, when the title is short enough to help.
fn title_note(title: &str) -> String {
    if title.len() <= 200 {
        format!(" (title {title:?})")
    } else {
        String::new()
    }
}

/// A year's partition and its items (title, stored item).
pub type YearItems = (Year, Vec<(String, Value)>);

/// Groups movies by year into each partition's (title, stored item), years and titles
/// in order; a later item with the same year and title replaces an earlier one. The
/// first movie DynamoDB could not hold is the error, by its index.
pub fn group_by_year(movies: Vec<Movie>) -> Result<Vec<YearItems>, MoviesError> {
    let mut items = Vec::with_capacity(movies.len());
    for (index, movie) in movies.into_iter().enumerate() {
        let stored = movie.stored().map_err(|reason| MoviesError::InvalidItem {
            index,
            title: title_note(movie.title.as_str()),
            reason,
        })?;
        items.push(((movie.year, movie.title.into_string()), stored));
    }
    Ok(kit::sorted::group(
        kit::sorted::last_of_each(items)
            .into_iter()
            .map(|((year, title), stored)| (year, (title, stored)))
            .collect(),
    ))
}

/// The filters of `GET /api/movies`, applied before paging.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// An exact, case-sensitive entry of `info.genres`.
    pub genre: Option<String>,
    /// `info.rating` ≥ this; movies without a numeric rating never match.
    pub min_rating: Option<f64>,
}

impl Filter {
    pub fn matches(&self, movie: &Movie) -> bool {
        self.genre.as_deref().is_none_or(|g| movie.has_genre(g))
            && self
                .min_rating
                .is_none_or(|min| movie.rating().is_some_and(|r| r >= min))
    }
}

/// A parsed `GET /api/movies` query.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub year: Year,
    pub filter: Filter,
    pub limit: usize,
    /// The last title of the previous page (from `cursor`): this page starts after it.
    pub after: Option<String>,
}

impl ListQuery {
    /// `year` (required), `genre`, `min_rating`, `limit` (1–500, default 50), `cursor`.
    /// Other parameters are ignored; a known one given twice is an error.
    pub fn parse(query: Option<&str>) -> Result<Self, MoviesError> {
        let bad = |detail: String| MoviesError::InvalidQuery(detail);
        let mut year = None;
        let mut genre = None;
        let mut min_rating = None;
        let mut limit = None;
        let mut cursor = None;
        for (key, value) in query_pairs(query.unwrap_or_default())? {
            let slot = match key.as_str() {
                "year" => &mut year,
                "genre" => &mut genre,
                "min_rating" => &mut min_rating,
                "limit" => &mut limit,
                "cursor" => &mut cursor,
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err(bad(format!("`{key}` is given more than once")));
            }
        }
        let year = year
            .ok_or_else(|| bad("`year` is required".into()))
            .and_then(|raw| {
                Year::parse(&raw).ok_or_else(|| {
                    bad("`year` must be a whole number from 0 to 9999 (1-4 digits)".into())
                })
            })?;
        if genre.as_deref() == Some("") {
            return Err(bad("`genre` must not be empty".into()));
        }
        let min_rating = match min_rating {
            None => None,
            Some(raw) => Some(
                raw.parse::<f64>()
                    .ok()
                    .filter(|r| r.is_finite() && !raw.starts_with('+'))
                    .ok_or_else(|| bad("`min_rating` must be a number".into()))?,
            ),
        };
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=MAX_LIMIT).contains(l) && !raw.starts_with('+'))
                .ok_or_else(|| bad("`limit` must be a whole number from 1 to 500".into()))?,
        };
        let filter = Filter { genre, min_rating };
        let after = match cursor {
            None => None,
            Some(raw) => Some(cursor::decode(&raw, year, &filter).ok_or_else(|| {
                bad("`cursor` is malformed or belongs to another year or filter".into())
            })?),
        };
        Ok(Self {
            year,
            filter,
            limit,
            after,
        })
    }

    /// The cursor of a page that ends at `last_title`.
    pub fn cursor_after(&self, last_title: &str) -> String {
        cursor::encode(last_title, self.year, &self.filter)
    }
}

/// Splits an `application/x-www-form-urlencoded` query into decoded pairs (`+` is a
/// space); a broken `%XX` escape or non-UTF-8 result is an error.
pub fn query_pairs(query: &str) -> Result<Vec<(String, String)>, MoviesError> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match (form_decode(key), form_decode(value)) {
                (Some(k), Some(v)) => Ok((k, v)),
                _ => Err(MoviesError::InvalidQuery(
                    "the query string has a malformed percent-encoding or is not UTF-8".into(),
                )),
            }
        })
        .collect()
}

fn form_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Opaque paging cursors: base64url (no padding) of a version byte, the last title of
/// the page, and a 4-byte check over the year, the filters and that title. A cursor
/// only resumes the query it came from; anything else is refused as malformed.
pub mod cursor {
    use super::{Filter, Year};

    const VERSION: u8 = 1;

    /// FNV-1a over everything the cursor is bound to, folded to 32 bits.
    fn check(title: &[u8], year: Year, filter: &Filter) -> [u8; 4] {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for b in bytes {
                hash ^= u64::from(*b);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        feed(&[VERSION]);
        feed(&year.get().to_le_bytes());
        match &filter.genre {
            Some(genre) => {
                feed(&[1]);
                feed(&(genre.len() as u64).to_le_bytes());
                feed(genre.as_bytes());
            }
            None => feed(&[0]),
        }
        match filter.min_rating {
            // +0.0 and -0.0 are the same filter.
            Some(min) => {
                feed(&[1]);
                feed(&(min + 0.0).to_bits().to_le_bytes());
            }
            None => feed(&[0]),
        }
        feed(title);
        let folded = (hash ^ (hash >> 32)) as u32;
        folded.to_be_bytes()
    }

    pub fn encode(title: &str, year: Year, filter: &Filter) -> String {
        let mut bytes = Vec::with_capacity(title.len() + 5);
        bytes.push(VERSION);
        bytes.extend_from_slice(title.as_bytes());
        bytes.extend_from_slice(&check(title.as_bytes(), year, filter));
        kit::base64::encode(&bytes, kit::base64::Form::UrlSafe)
    }

    /// The title a cursor resumes after, if it is one of ours for this query.
    pub fn decode(raw: &str, year: Year, filter: &Filter) -> Option<String> {
        let bytes = kit::base64::decode(raw, kit::base64::Form::UrlSafe)?;
        let (&version, rest) = bytes.split_first()?;
        if version != VERSION || rest.len() < 4 {
            return None;
        }
        let (title, sum) = rest.split_at(rest.len() - 4);
        if sum != check(title, year, filter) {
            return None;
        }
        String::from_utf8(title.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn movie(value: Value) -> Movie {
        Movie::from_import(value).unwrap()
    }

    #[test]
    fn year_parse_accepts_only_1_to_4_digits() {
        assert_eq!(Year::parse("2013"), Some(Year(2013)));
        assert_eq!(Year::parse("0"), Some(Year(0)));
        assert_eq!(Year::parse("0999"), Some(Year(999)));
        assert_eq!(Year::parse("9999"), Some(Year(9999)));
        for bad in [
            "", "10000", "-1", "+201", "20 3", "2013.0", "abc", "١٢٣", "0x10",
        ] {
            assert_eq!(Year::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn year_from_json_accepts_only_integers_in_range() {
        assert_eq!(Year::from_json(&json!(2013)), Some(Year(2013)));
        assert_eq!(Year::from_json(&json!(0)), Some(Year(0)));
        for bad in [
            json!(2013.0),
            json!(2013.5),
            json!("2013"),
            json!(-1),
            json!(10000),
            json!(null),
            json!(u64::MAX),
        ] {
            assert_eq!(Year::from_json(&bad), None, "{bad}");
        }
    }

    #[test]
    fn title_parse_keeps_any_unicode_but_rejects_empty_long_and_dot_segments() {
        for good in [
            "Rush", " spaced ", "V/H/S", "100%?#&", "Amélie", "🎬", "a\u{0}b", "...",
        ] {
            assert_eq!(Title::parse(good).unwrap().as_str(), good);
        }
        assert!(Title::parse(&"é".repeat(512)).is_ok(), "1024 bytes");
        for bad in ["", ".", ".."] {
            assert!(Title::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Title::parse(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn movie_from_import_validates_year_title_and_info() {
        let m = movie(json!({"year": 2013, "title": "Rush", "info": {"rating": 8.3}}));
        assert_eq!(m.year, Year(2013));
        assert_eq!(m.title.as_str(), "Rush");
        assert_eq!(m.rating(), Some(8.3));
        let bare = movie(json!({"year": 1999, "title": "Bare", "extra": true}));
        assert_eq!(bare.info, None);
        let cases = [
            (json!([]), "JSON object"),
            (json!({"title": "x"}), "`year` is missing"),
            (json!({"year": "2013", "title": "x"}), "`year` must be"),
            (json!({"year": 2013.0, "title": "x"}), "`year` must be"),
            (json!({"year": 2013}), "`title` is missing"),
            (
                json!({"year": 2013, "title": 7}),
                "`title` must be a string",
            ),
            (json!({"year": 2013, "title": ""}), "must not be empty"),
            (
                json!({"year": 2013, "title": "x", "info": []}),
                "`info` must be",
            ),
            (
                json!({"year": 2013, "title": "x", "info": null}),
                "`info` must be",
            ),
        ];
        for (value, reason) in cases {
            let err = Movie::from_import(value.clone()).unwrap_err();
            assert!(err.contains(reason), "{value}: {err}");
        }
    }

    #[test]
    fn movie_serializes_in_sample_order_and_round_trips_through_storage() {
        let m = movie(json!({"year": 2013, "title": "Rush", "info": {"genres": ["Drama"]}}));
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"year":2013,"title":"Rush","info":{"genres":["Drama"]}}"#
        );
        let stored = m.stored().unwrap();
        assert_eq!(
            stored,
            json!({"year": {"N": "2013"}, "title": {"S": "Rush"},
                "info": {"M": {"genres": {"L": [{"S": "Drama"}]}}}}),
            "stored as boto3 would have put it"
        );
        let back = Movie::from_stored(m.year, "Rush".into(), stored).unwrap();
        assert_eq!(back, m);
        let bare = movie(json!({"year": 2013, "title": "Bare"}));
        assert_eq!(
            bare.stored().unwrap(),
            json!({"year": {"N": "2013"}, "title": {"S": "Bare"}})
        );
        assert_eq!(
            serde_json::to_value(&bare).unwrap(),
            json!({"year": 2013, "title": "Bare"})
        );
        assert!(Movie::from_stored(Year(1), "x".into(), json!([])).is_err());
    }

    #[test]
    fn parse_import_names_the_first_bad_item() {
        let body = br#"[{"year": 2000, "title": "ok"}, {"year": 2000, "title": "ok2"},
            {"year": "x", "title": "Bad One"}, {"year": 1}]"#;
        let err = parse_import(body).unwrap_err();
        match &err {
            MoviesError::InvalidItem { index, .. } => assert_eq!(*index, 2),
            other => panic!("{other:?}"),
        }
        let api = ApiError::from(err);
        assert_eq!(api.code, "invalid_body");
        assert!(api.message.contains("index 2"), "{}", api.message);
        assert!(api.message.contains("Bad One"), "{}", api.message);
        for bad in [&b"{}"[..], b"not json", b"", b"[1,"] {
            let err = ApiError::from(parse_import(bad).unwrap_err());
            assert_eq!(err.code, "invalid_body");
        }
        assert_eq!(parse_import(b"[]").unwrap(), vec![]);
    }

    #[test]
    fn group_by_year_keeps_the_last_duplicate() {
        let movies = parse_import(
            br#"[{"year": 2000, "title": "a", "info": {"n": 1}},
                 {"year": 2001, "title": "a"},
                 {"year": 2000, "title": "a", "info": {"n": 2}}]"#,
        )
        .unwrap();
        let groups = group_by_year(movies).unwrap();
        let years: Vec<Year> = groups.iter().map(|(y, _)| *y).collect();
        assert_eq!(years, vec![Year(2000), Year(2001)]);
        assert_eq!(groups[0].1.len(), 1, "one item per title");
        assert_eq!(groups[0].1[0].0, "a");
        assert_eq!(groups[0].1[0].1["info"], json!({"M": {"n": {"N": "2"}}}));
        assert_eq!(
            groups[1].1,
            vec![(
                "a".to_owned(),
                json!({"year": {"N": "2001"}, "title": {"S": "a"}})
            )]
        );
    }

    #[test]
    fn group_by_year_names_a_movie_dynamodb_cannot_hold() {
        let movies = parse_import(
            br#"[{"year": 2000, "title": "fine", "info": {"n": 1}},
                 {"year": 2000, "title": "Too big a number", "info": {"n": 1e300}}]"#,
        )
        .unwrap();
        let err = ApiError::from(group_by_year(movies).unwrap_err());
        assert_eq!(err.code, "invalid_body");
        assert!(err.message.contains("index 1"), "{}", err.message);
        assert!(err.message.contains("Too big a number"), "{}", err.message);
    }

    #[test]
    fn stored_items_with_more_than_moviedata_keeps_serve_every_attribute() {
        let stored = json!({"year": {"N": "1999"}, "title": {"S": "T"},
            "info": {"S": "not a map"}, "seen": {"BOOL": true}, "tags": {"SS": ["x"]}});
        let m = Movie::from_stored(Year(1999), "T".into(), stored).unwrap();
        assert_eq!(m.info, None);
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"year": 1999, "title": "T", "info": "not a map", "seen": true, "tags": ["x"]})
        );
        assert!(Movie::from_stored(Year(1), "x".into(), json!({"a": {"Q": 1}})).is_err());
    }

    #[test]
    fn filter_matches_exact_genre_and_min_rating() {
        let m = movie(json!({"year": 1, "title": "t",
            "info": {"genres": ["Sci-Fi", "Drama"], "rating": 7}}));
        let f = |genre: Option<&str>, min_rating: Option<f64>| Filter {
            genre: genre.map(str::to_owned),
            min_rating,
        };
        assert!(f(None, None).matches(&m));
        assert!(f(Some("Sci-Fi"), None).matches(&m));
        assert!(!f(Some("sci-fi"), None).matches(&m), "case-sensitive");
        assert!(!f(Some("Sci"), None).matches(&m), "whole entries only");
        assert!(f(None, Some(7.0)).matches(&m));
        assert!(!f(None, Some(7.1)).matches(&m));
        assert!(f(Some("Drama"), Some(-3.0)).matches(&m));
        let unrated = movie(json!({"year": 1, "title": "u", "info": {"rating": "8"}}));
        assert!(!f(None, Some(0.0)).matches(&unrated));
        let bare = movie(json!({"year": 1, "title": "b"}));
        assert!(!f(Some("Drama"), None).matches(&bare));
        assert!(f(None, None).matches(&bare));
    }

    #[test]
    fn list_query_parses_defaults_and_values() {
        let q = ListQuery::parse(Some("year=2013")).unwrap();
        assert_eq!(q.year, Year(2013));
        assert_eq!(q.limit, DEFAULT_LIMIT);
        assert_eq!(q.filter, Filter::default());
        assert_eq!(q.after, None);
        let q = ListQuery::parse(Some(
            "genre=Film%2DNoir&year=1950&min_rating=6.5&limit=500&other=x&",
        ))
        .unwrap();
        assert_eq!(q.filter.genre.as_deref(), Some("Film-Noir"));
        assert_eq!(q.filter.min_rating, Some(6.5));
        assert_eq!(q.limit, 500);
        let q = ListQuery::parse(Some("year=1&genre=Science+Fiction")).unwrap();
        assert_eq!(q.filter.genre.as_deref(), Some("Science Fiction"));
    }

    #[test]
    fn list_query_rejects_bad_values() {
        for bad in [
            None,
            Some(""),
            Some("genre=Drama"),
            Some("year="),
            Some("year=abc"),
            Some("year=10000"),
            Some("year=2013&year=2014"),
            Some("year=2013&limit=0"),
            Some("year=2013&limit=501"),
            Some("year=2013&limit=-1"),
            Some("year=2013&limit=+5"),
            Some("year=2013&limit=1.5"),
            Some("year=2013&min_rating=abc"),
            Some("year=2013&min_rating=NaN"),
            Some("year=2013&min_rating=inf"),
            Some("year=2013&genre="),
            Some("year=2013&cursor="),
            Some("year=2013&cursor=%%%"),
            Some("year=2013&cursor=AAAA"),
            Some("year=%zz"),
            Some("year=2013&genre=%FF"),
        ] {
            match ListQuery::parse(bad) {
                Err(MoviesError::InvalidQuery(_)) => {}
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn cursor_round_trips_and_is_bound_to_its_query() {
        let q = ListQuery::parse(Some("year=2013&genre=Drama&min_rating=7")).unwrap();
        for title in ["Rush", "V/H/S", "100% ?#", "Amélie 🎬", "a\u{0}"] {
            let cursor = q.cursor_after(title);
            assert!(cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            let next = ListQuery::parse(Some(&format!(
                "year=2013&genre=Drama&min_rating=7.0&cursor={cursor}&limit=3"
            )))
            .unwrap();
            assert_eq!(next.after.as_deref(), Some(title));
            for other in [
                "year=2012&genre=Drama&min_rating=7",
                "year=2013&min_rating=7",
                "year=2013&genre=Drama",
                "year=2013&genre=drama&min_rating=7",
                "year=2013&genre=Drama&min_rating=7.5",
            ] {
                let err = ListQuery::parse(Some(&format!("{other}&cursor={cursor}")));
                assert!(err.is_err(), "{other} accepted {title:?}'s cursor");
            }
            // Any change to the cursor text is caught.
            let mut tampered = cursor.clone().into_bytes();
            tampered[2] = if tampered[2] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(tampered).unwrap();
            let query = format!("year=2013&genre=Drama&min_rating=7&cursor={tampered}");
            assert!(ListQuery::parse(Some(&query)).is_err(), "{tampered}");
        }
        let zero = ListQuery::parse(Some("year=1&min_rating=0")).unwrap();
        let cursor = zero.cursor_after("x");
        assert!(ListQuery::parse(Some(&format!("year=1&min_rating=-0&cursor={cursor}"))).is_ok());
    }

    #[test]
    fn errors_map_to_api_md_codes() {
        let code = |e: MoviesError| ApiError::from(e);
        assert_eq!(code(MoviesError::InvalidYear).code, "invalid_year");
        assert_eq!(code(MoviesError::InvalidTitle("x")).code, "invalid_title");
        assert_eq!(
            code(MoviesError::InvalidQuery("x".into())).code,
            "invalid_query"
        );
        let not_found = code(MoviesError::MovieNotFound);
        assert_eq!(
            (not_found.status, not_found.code),
            (StatusCode::NOT_FOUND, "movie_not_found")
        );
        assert_eq!(
            code(MoviesError::Corrupt("x".into())).status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
