//! AWS Signature Version 4, both sides. Server side ([`verify`], the DynamoDB
//! endpoint): rebuilds the canonical request of an incoming request from what it
//! carries, derives the signing key from the deployment's secret, and compares
//! signatures in constant time. Client side ([`authorization`]): what the table layer's
//! DynamoDB backend (`table::dynamo`) and the tests sign their calls with.
//!
//! Header-signed requests only (`authorization: AWS4-HMAC-SHA256 Credential=…,
//! SignedHeaders=…, Signature=…` with `x-amz-date`), which is what boto3, the aws CLI and
//! every SDK send to DynamoDB. The canonical URI is the path decoded once, with dot
//! segments and repeated slashes removed, and each segment encoded again (the rule for
//! every service but S3); the payload hash is always computed from the body received,
//! never taken from the client.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The only algorithm SigV4 over HMAC defines.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// How far a request's `x-amz-date` may be from the server's clock (DynamoDB's 15 min).
pub const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// The deployment's credentials.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret, not even in a debug print.
        write!(
            f,
            "Credentials {{ access_key_id: {:?} }}",
            self.access_key_id
        )
    }
}

/// Why a request is not authenticated: DynamoDB's cases, each its own error type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `authorization` header (DynamoDB: `MissingAuthenticationTokenException`).
    #[error("Request is missing Authentication Token")]
    Missing,
    /// An `authorization` header that is not a complete SigV4 one
    /// (`IncompleteSignatureException`).
    #[error("{0}")]
    Incomplete(String),
    /// A key id the deployment does not have (`UnrecognizedClientException`).
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    /// The signature does not match, or the request is too old or too new
    /// (`InvalidSignatureException`).
    #[error("{0}")]
    BadSignature(String),
}

/// What a verified request was signed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub access_key_id: String,
    pub region: String,
    pub service: String,
}

/// The parts of an `authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Authorization {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
}

fn parse_authorization(value: &str) -> Result<Authorization, AuthError> {
    let incomplete = |what: &str| AuthError::Incomplete(format!("Authorization header {what}"));
    let rest = value
        .strip_prefix(ALGORITHM)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or_else(|| incomplete("must use AWS4-HMAC-SHA256"))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (name, value) = part
            .trim()
            .split_once('=')
            .ok_or_else(|| incomplete("has a part without '='"))?;
        match name {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed = Some(value),
            "Signature" => signature = Some(value),
            _ => return Err(incomplete("has an unknown part")),
        }
    }
    let credential = credential.ok_or_else(|| incomplete("requires a Credential"))?;
    let signed = signed.ok_or_else(|| incomplete("requires SignedHeaders"))?;
    let signature = signature.ok_or_else(|| incomplete("requires a Signature"))?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, "aws4_request"] = scope.as_slice() else {
        return Err(incomplete(
            "Credential must be <key>/<date>/<region>/<service>/aws4_request",
        ));
    };
    if key.is_empty() || date.len() != 8 || region.is_empty() || service.is_empty() {
        return Err(incomplete("has a malformed Credential"));
    }
    let signed_headers: Vec<String> = signed.split(';').map(str::to_owned).collect();
    if signed_headers.iter().any(String::is_empty) || !signed_headers.iter().any(|h| h == "host") {
        return Err(incomplete("SignedHeaders must include host"));
    }
    Ok(Authorization {
        access_key_id: (*key).to_owned(),
        date: (*date).to_owned(),
        region: (*region).to_owned(),
        service: (*service).to_owned(),
        signed_headers,
        signature: signature.to_owned(),
    })
}

/// RFC 3986 unreserved characters stay; everything else is `%XX` (upper case).
fn uri_encode(bytes: &[u8], keep_slash: bool, out: &mut String) {
    for &b in bytes {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// `%XX` decoded; a malformed escape is kept as it is.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The canonical URI: decoded once, normalized (`.`/`..` segments and empty segments
/// removed, a trailing slash kept), each segment encoded.
pub fn canonical_uri(path: &str) -> String {
    let decoded = percent_decode(path);
    let mut segments: Vec<&[u8]> = Vec::new();
    for segment in decoded.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::from("/");
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        uri_encode(segment, false, &mut out);
    }
    let trailing = decoded.ends_with(b"/") || decoded.ends_with(b"/.") || decoded.ends_with(b"/..");
    if trailing && !segments.is_empty() {
        out.push('/');
    }
    out
}

/// The canonical query: each name and value decoded and re-encoded, sorted by name,
/// then value.
pub fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            let mut n = String::new();
            let mut v = String::new();
            uri_encode(&percent_decode(name), false, &mut n);
            uri_encode(&percent_decode(value), false, &mut v);
            (n, v)
        })
        .collect();
    crate::sorted::sort(&mut pairs);
    pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A header value as signed: trimmed, inner runs of spaces collapsed.
fn canonical_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The canonical request for `signed` headers (lower-case names), given the request's
/// headers as (name, value) pairs in the order received.
pub fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    signed: &[String],
    payload_hash: &str,
) -> String {
    let mut lines = format!(
        "{method}\n{}\n{}\n",
        canonical_uri(path),
        canonical_query(query)
    );
    for name in signed {
        let values: Vec<String> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| canonical_value(v))
            .collect();
        lines.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    lines.push_str(&format!("\n{}\n{payload_hash}", signed.join(";")));
    lines
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return Vec::new(),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The string to sign for a canonical request signed at `amz_date` (`YYYYMMDDTHHMMSSZ`).
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The hex signature of `string_to_sign` with the key derived for the scope.
pub fn signature(
    secret: &str,
    date: &str,
    region: &str,
    service: &str,
    string_to_sign: &str,
) -> String {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    hex(&hmac(&k_signing, string_to_sign.as_bytes()))
}

/// Compares without an early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
    }
    diff == 0
}

/// The request as the verifier needs it.
#[derive(Debug, Clone)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// (name, value) in the order received; names in any case.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// Verifies `req` against the deployment's `credentials` at `now`. With no credentials
/// configured every request is refused (`UnknownKey`): never open.
pub fn verify(
    req: &SignedRequest<'_>,
    credentials: Option<&Credentials>,
    now: DateTime<Utc>,
) -> Result<Verified, AuthError> {
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let auth = parse_authorization(header("authorization").ok_or(AuthError::Missing)?)?;
    let amz_date = header("x-amz-date").ok_or_else(|| {
        AuthError::Incomplete("Authorization requires the x-amz-date header".into())
    })?;
    let signed_at = crate::time::parse_amz_date(amz_date)
        .ok_or_else(|| AuthError::Incomplete("x-amz-date is not YYYYMMDDTHHMMSSZ".into()))?;
    let credentials = match credentials {
        Some(c) if constant_time_eq(c.access_key_id.as_bytes(), auth.access_key_id.as_bytes()) => c,
        _ => return Err(AuthError::UnknownKey),
    };
    if !amz_date.starts_with(&auth.date) {
        return Err(AuthError::BadSignature(
            "Credential date does not match x-amz-date".into(),
        ));
    }
    let skew = (now - signed_at).num_seconds();
    if skew.abs() > MAX_SKEW_SECONDS {
        return Err(AuthError::BadSignature(format!(
            "Signature expired: {amz_date} is now earlier than {} (15 minutes either side of the server's time)",
            crate::time::format_amz_date(now - chrono::Duration::seconds(MAX_SKEW_SECONDS))
        )));
    }
    let canonical = canonical_request(
        req.method,
        req.path,
        req.query,
        req.headers,
        &auth.signed_headers,
        &sha256_hex(req.body),
    );
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let to_sign = string_to_sign(amz_date, &scope, &canonical);
    let expected = signature(
        &credentials.secret_access_key,
        &auth.date,
        &auth.region,
        &auth.service,
        &to_sign,
    );
    if !constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
        return Err(AuthError::BadSignature(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method."
                .into(),
        ));
    }
    Ok(Verified {
        access_key_id: auth.access_key_id,
        region: auth.region,
        service: auth.service,
    })
}

/// The `authorization` header a client sends for a request signed at `at` with
/// `headers` (all of them signed, names lower case): what SDKs compute, for the table
/// layer's DynamoDB backend and for tests that call the endpoint without an SDK.
#[allow(clippy::too_many_arguments)]
pub fn authorization(
    credentials: &Credentials,
    region: &str,
    service: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
    at: DateTime<Utc>,
) -> String {
    let amz_date = crate::time::format_amz_date(at);
    let date = crate::time::format_amz_day(at);
    let names: Vec<String> = headers.iter().map(|(n, _)| n.clone()).collect();
    let canonical = canonical_request(method, path, "", headers, &names, &sha256_hex(body));
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let to_sign = string_to_sign(&amz_date, &scope, &canonical);
    let sig = signature(
        &credentials.secret_access_key,
        &date,
        region,
        service,
        &to_sign,
    );
    format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={sig}",
        credentials.access_key_id,
        names.join(";")
    )
}
