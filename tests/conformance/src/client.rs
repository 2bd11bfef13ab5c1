//! A small HTTP client for the suite: every request returns status, headers and body.

use anyhow::{Context, Result};
use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

/// One host's API, as a client sees it.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
    pub admin_token: String,
}

/// A response, fully read.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "status {} body is not JSON: {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `error.code` of an error body in the OpenAPI document's shape.
    pub fn error_code(&self) -> Option<String> {
        let json = self.json().ok()?;
        json.pointer("/error/code")?.as_str().map(str::to_owned)
    }
}

impl Api {
    pub fn new(base: &str, admin_token: &str) -> Result<Self> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            base: base.to_owned(),
            client,
            admin_token: admin_token.to_owned(),
        })
    }

    /// Sends `method path` with `headers` and an optional body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Reply> {
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// `POST path` as the admin (the bearer token this client was made with).
    pub async fn admin_post(&self, path: &str, body: Option<Vec<u8>>) -> Result<Reply> {
        let auth = format!("Bearer {}", self.admin_token);
        self.send(Method::POST, path, &[("authorization", &auth)], body)
            .await
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<Reply> {
        self.send(Method::GET, path, headers, None).await
    }

    pub async fn put_json(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Result<Reply> {
        let bytes = serde_json::to_vec(body)?;
        self.send(Method::PUT, path, headers, Some(bytes)).await
    }
}

/// One blocking GET's status, for readiness polling outside any runtime.
pub fn blocking_get(url: &str) -> Result<u16> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").context("http URLs only")?;
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let mut stream = std::net::TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    let status = std::str::from_utf8(&head[9..12])?.parse()?;
    Ok(status)
}

/// Percent-encodes everything but RFC 3986's unreserved characters: one path segment.
pub fn encode_segment(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One request of [`together`]: the host it goes to, method, path, headers and body.
pub type Request = (Api, Method, String, Vec<(String, String)>, Option<Vec<u8>>);

/// Fires all `requests` at once (each task waits at one barrier, then sends); the
/// replies in request order.
pub async fn together(requests: Vec<Request>) -> Result<Vec<Reply>> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(requests.len()));
    let mut tasks = Vec::new();
    for (api, method, path, headers, body) in requests {
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            barrier.wait().await;
            api.send(method, &path, &headers, body).await
        }));
    }
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await??);
    }
    Ok(replies)
}
