//! Spin's HTTP routing: exact routes and `/prefix/...` wildcards, the most
//! specific match winning.

use anyhow::{bail, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    /// Prefix without the trailing `/...`; empty for the catch-all `/...`.
    Wildcard(String),
}

#[derive(Debug)]
struct Route {
    raw: String,
    pattern: Pattern,
    component: String,
}

#[derive(Debug, Default)]
pub struct Router {
    routes: Vec<Route>,
}

/// What a request path resolved to, with the values of Spin's `spin-*`
/// request headers that depend on the route.
#[derive(Debug, PartialEq, Eq)]
pub struct RouteMatch<'a> {
    pub component: &'a str,
    /// The route as written in the manifest, e.g. `/hello/...`.
    pub raw_route: &'a str,
    /// The route without its wildcard suffix, e.g. `/hello`.
    pub component_route: &'a str,
    /// The part of the path after `component_route`, e.g. `/alice`.
    pub path_info: &'a str,
}

impl Router {
    pub fn new<'a>(routes: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        let mut router = Router::default();
        for (raw, component) in routes {
            let pattern = parse(raw)?;
            if router.routes.iter().any(|r| r.pattern == pattern) {
                bail!("duplicate route {raw:?}");
            }
            router.routes.push(Route {
                raw: raw.to_string(),
                pattern,
                component: component.to_string(),
            });
        }
        Ok(router)
    }

    pub fn route<'a>(&'a self, path: &'a str) -> Option<RouteMatch<'a>> {
        let mut best: Option<(usize, &Route, &str)> = None;
        for route in &self.routes {
            // Exact routes outrank every wildcard; among wildcards the
            // longer prefix is the more specific.
            let (rank, path_info) = match &route.pattern {
                Pattern::Exact(p) if p == path => (usize::MAX, ""),
                Pattern::Exact(_) => continue,
                Pattern::Wildcard(prefix) => match path.strip_prefix(prefix.as_str()) {
                    Some(rest) if rest.is_empty() || rest.starts_with('/') => (prefix.len(), rest),
                    _ => continue,
                },
            };
            if best.is_none_or(|(r, _, _)| rank > r) {
                best = Some((rank, route, path_info));
            }
        }
        best.map(|(_, route, path_info)| RouteMatch {
            component: &route.component,
            raw_route: &route.raw,
            component_route: match &route.pattern {
                Pattern::Exact(p) | Pattern::Wildcard(p) => p,
            },
            path_info,
        })
    }
}

fn parse(raw: &str) -> Result<Pattern> {
    if !raw.starts_with('/') {
        bail!("route {raw:?} must start with `/`");
    }
    if let Some(prefix) = raw.strip_suffix("/...") {
        return Ok(Pattern::Wildcard(prefix.to_string()));
    }
    if raw.contains("...") || raw.contains(':') {
        bail!("route {raw:?}: only exact routes and `/prefix/...` wildcards are supported");
    }
    Ok(Pattern::Exact(raw.to_string()))
}
