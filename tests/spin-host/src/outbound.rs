//! `allowed_outbound_hosts`: which outbound HTTP requests a component may make.

use anyhow::{bail, Context, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    /// `None` is `*`.
    scheme: Option<String>,
    /// `None` is `*`; a leading `*.` allows every subdomain.
    host: Option<String>,
    /// `None` is `*`.
    port: Option<u16>,
}

#[derive(Debug, Clone, Default)]
pub struct AllowedHosts(Vec<AllowedHost>);

impl AllowedHosts {
    /// Parses entries such as `https://api.tvmaze.com`, `http://127.0.0.1:*`
    /// or `*://*:*`. Schemes other than http(s) (e.g. `redis://`) are accepted
    /// and simply never match an HTTP request.
    pub fn parse(entries: &[String]) -> Result<Self> {
        entries
            .iter()
            .map(|e| parse_entry(e).with_context(|| format!("allowed_outbound_hosts entry {e:?}")))
            .collect::<Result<_>>()
            .map(Self)
    }

    /// Whether a request to `uri` is allowed. A URI without a scheme is
    /// judged as https, the scheme wasi-http defaults to.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let Some(host) = uri.host().map(str::to_ascii_lowercase) else {
            return false;
        };
        let Some(port) = uri.port_u16().or_else(|| default_port(&scheme)) else {
            return false;
        };
        self.0.iter().any(|allowed| {
            allowed.scheme.as_ref().is_none_or(|s| *s == scheme)
                && allowed.port.is_none_or(|p| p == port)
                && match &allowed.host {
                    None => true,
                    Some(pattern) => match pattern.strip_prefix("*.") {
                        Some(domain) => host
                            .strip_suffix(domain)
                            .is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
                        None => *pattern == host,
                    },
                }
        })
    }
}

fn parse_entry(entry: &str) -> Result<AllowedHost> {
    let (scheme, rest) = entry.split_once("://").context("missing `scheme://`")?;
    let rest = rest.trim_end_matches('/');
    if rest.contains('/') {
        bail!("paths are not allowed");
    }
    // The last `:` separates the port, unless it is inside an IPv6 `[...]`.
    let (host, port) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains(']') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    let scheme = wildcard(scheme).map(str::to_ascii_lowercase);
    let port = match port {
        Some("*") => None,
        Some(p) => Some(p.parse().with_context(|| format!("bad port {p:?}"))?),
        None => match scheme.as_deref().and_then(default_port) {
            Some(p) => Some(p),
            None => bail!("a port is required for this scheme"),
        },
    };
    if host.is_empty() {
        bail!("missing host");
    }
    Ok(AllowedHost {
        scheme,
        host: wildcard(host).map(str::to_ascii_lowercase),
        port,
    })
}

fn wildcard(s: &str) -> Option<&str> {
    (s != "*").then_some(s)
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}
