//! The SigV4 verifier against the published AWS signing test suite: for each vector,
//! the canonical request, the string to sign and the signature must be AWS's, the
//! signed request must verify, and any change to it must not.
//!
//! The vectors (`tests/aws-sigv4-vectors/`) are copied from the `aws-sigv4` crate 1.6.4
//! (Apache-2.0), directory `aws-signing-test-suite/v4`; see the README there.

// Helpers of a test file, where a panic is the failure report (clippy's
// allow-unwrap-in-tests covers only `#[test]` functions).
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Utc};
use dynamodb::sigv4::{self, AuthError, Credentials, SignedRequest};
use std::path::{Path, PathBuf};

const VECTORS: [&str; 17] = [
    "get-header-key-duplicate",
    "get-header-value-trim",
    "get-relative-relative-normalized",
    "get-slash-normalized",
    "get-slashes-normalized",
    "get-space-normalized",
    "get-utf8",
    "get-vanilla-empty-query-key",
    "get-vanilla-query-order-key-case",
    "get-vanilla-query-unreserved",
    "get-vanilla-utf8-query",
    "get-vanilla-with-session-token",
    "post-header-key-sort",
    "post-header-value-case",
    "post-vanilla",
    "post-vanilla-query",
    "post-x-www-form-urlencoded",
];

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/aws-sigv4-vectors")
        .join(name)
}

fn read(name: &str, file: &str) -> String {
    std::fs::read_to_string(dir(name).join(file)).unwrap()
}

/// A request as the suite writes it: request line, `Name:value` headers, blank line,
/// body.
struct Parsed {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn parse(text: &str) -> Parsed {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let request_line = lines.next().unwrap();
    let (target, _) = request_line.rsplit_once(" HTTP/1.1").unwrap();
    let (method, target) = target.split_once(' ').unwrap();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_owned(), v.to_owned())
        })
        .collect();
    Parsed {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

struct Context {
    credentials: Credentials,
    region: String,
    service: String,
    now: DateTime<Utc>,
}

fn context(name: &str) -> Context {
    let json: serde_json::Value = serde_json::from_str(&read(name, "context.json")).unwrap();
    Context {
        credentials: Credentials {
            access_key_id: json["credentials"]["access_key_id"]
                .as_str()
                .unwrap()
                .into(),
            secret_access_key: json["credentials"]["secret_access_key"]
                .as_str()
                .unwrap()
                .into(),
        },
        region: json["region"].as_str().unwrap().into(),
        service: json["service"].as_str().unwrap().into(),
        now: json["timestamp"].as_str().unwrap().parse().unwrap(),
    }
}

fn signed_headers(req: &Parsed) -> Vec<String> {
    let auth = &req
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .unwrap()
        .1;
    let list = auth.split("SignedHeaders=").nth(1).unwrap();
    let list = list.split(',').next().unwrap();
    list.split(';').map(str::to_owned).collect()
}

fn as_signed(req: &Parsed) -> SignedRequest<'_> {
    SignedRequest {
        method: &req.method,
        path: &req.path,
        query: &req.query,
        headers: &req.headers,
        body: &req.body,
    }
}

#[test]
fn canonical_request_string_to_sign_and_signature_match_aws_for_every_vector() {
    for name in VECTORS {
        let ctx = context(name);
        let req = parse(&read(name, "header-signed-request.txt"));
        let canonical = sigv4::canonical_request(
            &req.method,
            &req.path,
            &req.query,
            &req.headers,
            &signed_headers(&req),
            &sigv4::sha256_hex(&req.body),
        );
        assert_eq!(
            canonical,
            read(name, "header-canonical-request.txt"),
            "{name}"
        );
        let date = ctx.now.format("%Y%m%d").to_string();
        let scope = format!("{date}/{}/{}/aws4_request", ctx.region, ctx.service);
        let amz_date = ctx.now.format("%Y%m%dT%H%M%SZ").to_string();
        let to_sign = sigv4::string_to_sign(&amz_date, &scope, &canonical);
        assert_eq!(to_sign, read(name, "header-string-to-sign.txt"), "{name}");
        let signature = sigv4::signature(
            &ctx.credentials.secret_access_key,
            &date,
            &ctx.region,
            &ctx.service,
            &to_sign,
        );
        assert_eq!(
            signature,
            read(name, "header-signature.txt").trim(),
            "{name}"
        );
    }
}

#[test]
fn every_signed_vector_verifies_at_its_timestamp() {
    for name in VECTORS {
        let ctx = context(name);
        let req = parse(&read(name, "header-signed-request.txt"));
        let verified = sigv4::verify(&as_signed(&req), Some(&ctx.credentials), ctx.now)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(verified.access_key_id, "AKIDEXAMPLE", "{name}");
        assert_eq!(verified.region, ctx.region, "{name}");
    }
}

#[test]
fn verify_refuses_a_changed_body_header_path_or_secret() {
    let name = "post-x-www-form-urlencoded";
    let ctx = context(name);
    let original = parse(&read(name, "header-signed-request.txt"));
    let bad =
        |req: &Parsed, creds: &Credentials| sigv4::verify(&as_signed(req), Some(creds), ctx.now);
    let mut body = parse(&read(name, "header-signed-request.txt"));
    body.body = b"Param1=value2".to_vec();
    assert!(matches!(
        bad(&body, &ctx.credentials),
        Err(AuthError::BadSignature(_))
    ));
    let mut header = parse(&read(name, "header-signed-request.txt"));
    header.headers[0].1 = "text/plain".into();
    assert!(matches!(
        bad(&header, &ctx.credentials),
        Err(AuthError::BadSignature(_))
    ));
    let mut path = parse(&read(name, "header-signed-request.txt"));
    path.path = "/other".into();
    assert!(matches!(
        bad(&path, &ctx.credentials),
        Err(AuthError::BadSignature(_))
    ));
    let wrong_secret = Credentials {
        secret_access_key: "not-the-secret".into(),
        ..ctx.credentials.clone()
    };
    assert!(matches!(
        bad(&original, &wrong_secret),
        Err(AuthError::BadSignature(_))
    ));
}

#[test]
fn verify_refuses_unsigned_unknown_keys_unconfigured_and_stale_requests() {
    let name = "post-vanilla";
    let ctx = context(name);
    let req = parse(&read(name, "header-signed-request.txt"));
    let mut unsigned = parse(&read(name, "header-signed-request.txt"));
    unsigned
        .headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("authorization"));
    assert_eq!(
        sigv4::verify(&as_signed(&unsigned), Some(&ctx.credentials), ctx.now),
        Err(AuthError::Missing)
    );
    let other_key = Credentials {
        access_key_id: "AKIDOTHER".into(),
        ..ctx.credentials.clone()
    };
    assert_eq!(
        sigv4::verify(&as_signed(&req), Some(&other_key), ctx.now),
        Err(AuthError::UnknownKey)
    );
    assert_eq!(
        sigv4::verify(&as_signed(&req), None, ctx.now),
        Err(AuthError::UnknownKey)
    );
    let late = ctx.now + chrono::Duration::minutes(16);
    assert!(matches!(
        sigv4::verify(&as_signed(&req), Some(&ctx.credentials), late),
        Err(AuthError::BadSignature(_))
    ));
    let early = ctx.now - chrono::Duration::minutes(16);
    assert!(matches!(
        sigv4::verify(&as_signed(&req), Some(&ctx.credentials), early),
        Err(AuthError::BadSignature(_))
    ));
    let within = ctx.now + chrono::Duration::minutes(14);
    assert!(sigv4::verify(&as_signed(&req), Some(&ctx.credentials), within).is_ok());
    let mut garbled = parse(&read(name, "header-signed-request.txt"));
    for (n, v) in &mut garbled.headers {
        if n.eq_ignore_ascii_case("authorization") {
            *v = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1".into();
        }
    }
    assert!(matches!(
        sigv4::verify(&as_signed(&garbled), Some(&ctx.credentials), ctx.now),
        Err(AuthError::Incomplete(_))
    ));
}
