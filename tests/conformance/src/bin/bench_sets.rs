//! What a DynamoDB set costs to check, by its size: a PutItem whose item holds one
//! string set of N distinct members (25,000 to 200,000), on the native host, its
//! latency and the latency per member as a ratio to the smallest set's. Linear work
//! keeps the ratio near 1; the old pairwise duplicate check made 200,000 members take
//! 66-74 s on the wasm hosts (and each request ~64 times the per-member cost of 25,000).
//! Sets past DynamoDB's 400 KB item limit are refused after the check, so the bigger
//! ones measure the check and the refusal.
//!
//! `cargo run --release -p conformance --features bench --bin bench_sets`.

use anyhow::Result;
use conformance::{Api, Host};
use std::time::Instant;

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let vars: Vec<(String, String)> = [
        ("dynamodb_access_key_id", "AKIDBENCH"),
        ("dynamodb_secret_access_key", "bench/secret"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let Some(running) = conformance::start(Host::Native, &vars)? else {
        anyhow::bail!("the native host cannot start");
    };
    let api = Api::new(&running.base, "bench")?;
    let credentials = dynamodb::sigv4::Credentials {
        access_key_id: "AKIDBENCH".to_owned(),
        secret_access_key: "bench/secret".to_owned(),
    };
    let call = |operation: &str, body: Vec<u8>| {
        let headers = dynamodb::signed_headers(
            &credentials,
            running.base.trim_start_matches("http://"),
            &format!("DynamoDB_20120810.{operation}"),
            &body,
            chrono::Utc::now(),
        );
        let api = api.clone();
        async move {
            let refs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            api.send(reqwest::Method::POST, "/dynamodb", &refs, Some(body))
                .await
        }
    };
    let create = serde_json::json!({
        "TableName": "Sets",
        "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    });
    runtime.block_on(call("CreateTable", create.to_string().into_bytes()))?;
    println!("\nPutItem of one string set of N distinct members, native host:");
    println!(
        "  {:>8} {:>10} {:>12} {:>14}",
        "members", "ms", "µs/member", "vs 25,000"
    );
    let mut first = None;
    for members in [25_000usize, 50_000, 100_000, 200_000] {
        let set: Vec<String> = (0..members).map(|i| format!("m{i}")).collect();
        let body =
            serde_json::json!({"TableName": "Sets", "Item": {"k": {"S": "one"}, "s": {"SS": set}}})
                .to_string()
                .into_bytes();
        let mut best = f64::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            let reply = runtime.block_on(call("PutItem", body.clone()))?;
            anyhow::ensure!(reply.status < 500, "{members}: {}", reply.status);
            best = best.min(t.elapsed().as_secs_f64() * 1000.0);
        }
        let per = best * 1000.0 / members as f64;
        let base = *first.get_or_insert(per);
        println!(
            "  {members:>8} {best:>10.1} {per:>12.3} {:>14.2}",
            per / base
        );
    }
    Ok(())
}
