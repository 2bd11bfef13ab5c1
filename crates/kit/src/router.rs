//! A small path router: `{name}` segments capture one percent-decoded path segment.
//! Unknown paths give 404 `not_found`; known paths with another method give 405 with
//! the `allow` header listing the methods the path answers.

use crate::ApiError;
use http::{Method, StatusCode};

#[derive(Debug, Clone, Copy)]
enum Segment {
    Literal(&'static str),
    Param(&'static str),
}

#[derive(Debug)]
struct Route<R> {
    method: Method,
    pattern: &'static str,
    segments: Vec<Segment>,
    target: R,
}

/// Routes a method and path to a `target` (typically a fieldless enum of endpoints).
#[derive(Debug)]
pub struct Router<R> {
    routes: Vec<Route<R>>,
}

impl<R: Copy> Default for Router<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Copy> Router<R> {
    pub fn new() -> Self {
        Self { routes: Vec::new() }
    }

    /// Adds `method pattern`, where the pattern is `/`-separated literals and `{name}`s.
    pub fn route(mut self, method: Method, pattern: &'static str, target: R) -> Self {
        let segments = pattern
            .trim_start_matches('/')
            .split('/')
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => Segment::Param(name),
                    None => Segment::Literal(s),
                },
            )
            .collect();
        self.routes.push(Route {
            method,
            pattern,
            segments,
            target,
        });
        self
    }

    /// Every `(method, pattern)` this router serves, patterns in `{name}` form.
    pub fn routes(&self) -> Vec<(Method, String)> {
        self.routes
            .iter()
            .map(|r| {
                let path: String = r
                    .segments
                    .iter()
                    .map(|s| match s {
                        Segment::Literal(l) => format!("/{l}"),
                        Segment::Param(p) => format!("/{{{p}}}"),
                    })
                    .collect();
                (r.method.clone(), path)
            })
            .collect()
    }

    pub fn resolve(&self, method: &Method, path: &str) -> Result<(R, Params), ApiError> {
        let raw: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut allow: Vec<&str> = Vec::new();
        for route in &self.routes {
            let Some(values) = match_segments(&route.segments, &raw)? else {
                continue;
            };
            if route.method == *method {
                let params = Params {
                    values,
                    route: route.pattern,
                };
                return Ok((route.target, params));
            }
            if !allow.contains(&route.method.as_str()) {
                allow.push(route.method.as_str());
            }
        }
        if allow.is_empty() {
            Err(ApiError::not_found())
        } else {
            Err(ApiError::method_not_allowed(allow.join(", ")))
        }
    }
}

type Captured = Vec<(&'static str, String)>;

fn match_segments(pattern: &[Segment], raw: &[&str]) -> Result<Option<Captured>, ApiError> {
    if pattern.len() != raw.len() {
        return Ok(None);
    }
    let mut params = Vec::new();
    for (seg, value) in pattern.iter().zip(raw) {
        match seg {
            Segment::Literal(l) if l == value => {}
            Segment::Literal(_) => return Ok(None),
            Segment::Param(name) => params.push((*name, percent_decode(value)?)),
        }
    }
    Ok(Some(params))
}

/// Decodes `%XX` escapes; the result must be UTF-8.
pub fn percent_decode(s: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            "The path has a malformed percent-encoding or is not UTF-8.",
        )
    };
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// Path parameters captured by a route, already percent-decoded, and the route's
/// pattern (what a log line names instead of the path, which may carry user data).
#[derive(Debug, Default, Clone)]
pub struct Params {
    values: Captured,
    route: &'static str,
}

impl Params {
    /// The pattern of the route that matched, `{name}` segments as declared.
    pub fn route(&self) -> &'static str {
        self.route
    }

    /// The captured value; routes always capture the names their pattern declares, so
    /// a missing name is a programming error reported as an empty string.
    pub fn get(&self, name: &str) -> &str {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }
}

/// `/path?query` of an absolute URL (`https://host/path?query#fragment`); `/` when it
/// has no path.
pub fn path_and_query(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let start = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    let end = url[start..].find('#').map_or(url.len(), |i| start + i);
    match &url[start..end] {
        "" => "/",
        target => target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_query_returns_the_target_of_an_absolute_url() {
        for (url, target) in [
            ("https://h.example/hello/x?y=1", "/hello/x?y=1"),
            (
                "http://127.0.0.1:8787/api/movies?year=2013&limit=5#top",
                "/api/movies?year=2013&limit=5",
            ),
            ("https://h.example", "/"),
            ("https://h.example/", "/"),
            ("https://h.example/a%20b/?q=%2F", "/a%20b/?q=%2F"),
            ("https://h.example?x", "/"),
        ] {
            assert_eq!(path_and_query(url), target, "{url}");
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum T {
        Get,
        Put,
        Health,
    }

    fn router() -> Router<T> {
        Router::new()
            .route(Method::GET, "/hello/{user}", T::Get)
            .route(Method::PUT, "/hello/{user}", T::Put)
            .route(Method::GET, "/healthz", T::Health)
    }

    #[test]
    fn resolve_captures_decoded_params() {
        let (t, p) = router().resolve(&Method::GET, "/hello/b%C3%A9a").unwrap();
        assert_eq!(t, T::Get);
        assert_eq!(p.get("user"), "béa");
        assert_eq!(p.route(), "/hello/{user}");
    }

    #[test]
    fn resolve_returns_405_with_allow_when_method_differs() {
        let err = router().resolve(&Method::POST, "/hello/x").unwrap_err();
        assert_eq!(err.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(err.allow.as_deref(), Some("GET, PUT"));
    }

    #[test]
    fn resolve_returns_404_when_no_path_matches() {
        for path in ["/hello", "/hello/a/b", "/nope", "/"] {
            let err = router().resolve(&Method::GET, path).unwrap_err();
            assert_eq!(err.code, "not_found", "{path}");
        }
    }

    #[test]
    fn resolve_rejects_bad_percent_encoding() {
        for path in ["/hello/%zz", "/hello/%", "/hello/%ff"] {
            let err = router().resolve(&Method::GET, path).unwrap_err();
            assert_eq!(err.code, "invalid_path", "{path}");
        }
    }
}
