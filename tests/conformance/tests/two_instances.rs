//! Several instances, one truth: two Spin-compatible host processes on two ports, both
//! keeping their tables on one dynalite (`table_backend = "dynamodb"`), driven together
//! as a load balancer in front of two replicas would. Everything a single process
//! guaranteed must hold across the two: the stream limit, every acknowledged write, a
//! read of another instance's write. (Not yet: two scraper ticks started together, one
//! per instance, both fetched `/shows?page=0` — the cursor has no lease, only a
//! conditional save, so the loser learns it lost after its fetch; issue 28.)
//! `cargo test -p conformance --test two_instances` (builds: `make components`,
//! `cargo build -p spin-host`).

use anyhow::{ensure, Context, Result};
use conformance::client::together;
use conformance::{Api, Dynalite, Host, Running};
use fake_tvmaze::FakeTvMaze;

const ADMIN_TOKEN: &str = "two-instances-admin";
const LIMIT: usize = 3;

/// One dynalite, the fake TvMaze, and two Spin-compatible hosts on them.
struct Pair {
    a: Api,
    b: Api,
    _fake: FakeTvMaze,
    // Dropped last: the hosts stop before their engine.
    _hosts: (Running, Running),
    _dynalite: Dynalite,
}

fn pair() -> Result<Pair> {
    let dynalite = Dynalite::start()?;
    let fake = FakeTvMaze::start(fake_tvmaze::Config::default())?;
    let mut vars: conformance::Vars = [
        ("admin_token", ADMIN_TOKEN),
        ("test_clock_header", "true"),
        ("tvmaze_base_url", fake.base_url()),
        ("scraper_fetch_budget", "10"),
        ("scraper_rate_calls", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    vars.extend(conformance::dynamodb_table_vars(&dynalite.url));
    let start = || conformance::start(Host::SpinHost, &vars)?.context("spin-host did not start");
    let (one, two) = (start()?, start()?);
    ensure!(one.base != two.base, "both hosts on {}", one.base);
    Ok(Pair {
        a: Api::new(&one.base, ADMIN_TOKEN)?,
        b: Api::new(&two.base, ADMIN_TOKEN)?,
        _fake: fake,
        _hosts: (one, two),
        _dynalite: dynalite,
    })
}

async fn stream_limit_holds_across_instances(pair: &Pair) -> Result<()> {
    for round in 0..20 {
        let user = format!("10.77.{round}.1");
        let requests = (0..40)
            .map(|i| {
                let api = if i % 2 == 0 { &pair.a } else { &pair.b };
                let headers = vec![
                    ("x-forwarded-for".to_owned(), user.clone()),
                    ("x-test-now".to_owned(), "2026-11-22T12:00:00Z".to_owned()),
                ];
                (
                    api.clone(),
                    reqwest::Method::POST,
                    "/api/v1/streams".to_owned(),
                    headers,
                    None,
                )
            })
            .collect();
        let replies = together(requests).await?;
        let admitted = replies.iter().filter(|r| r.status == 201).count();
        let refused = replies.iter().filter(|r| r.status == 409).count();
        ensure!(
            admitted == LIMIT && refused == 40 - LIMIT,
            "round {round}: {admitted} admitted, {refused} refused, statuses {:?}",
            replies.iter().map(|r| r.status).collect::<Vec<_>>()
        );
    }
    Ok(())
}

async fn movie_writes_across_instances_all_survive(pair: &Pair) -> Result<()> {
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let requests = (0..20)
        .map(|i| {
            let api = if i % 2 == 0 { &pair.a } else { &pair.b };
            let body =
                serde_json::json!({ "info": { "rating": i, "actors": [format!("Actor {i}")] } });
            let headers = vec![
                ("authorization".to_owned(), bearer.clone()),
                ("content-type".to_owned(), "application/json".to_owned()),
            ];
            let path = format!("/api/movies/2013/Two%20Instances%20{i}");
            (
                api.clone(),
                reqwest::Method::PUT,
                path,
                headers,
                Some(body.to_string().into_bytes()),
            )
        })
        .collect();
    for (i, reply) in together(requests).await?.iter().enumerate() {
        ensure!(
            reply.status == 200,
            "PUT {i}: {} {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
    }
    for i in 0..20 {
        // Read through the instance that did not write it.
        let api = if i % 2 == 0 { &pair.b } else { &pair.a };
        let reply = api
            .get(&format!("/api/movies/2013/Two%20Instances%20{i}"), &[])
            .await?;
        ensure!(reply.status == 200, "GET {i}: {}", reply.status);
        ensure!(
            reply.json()?["info"]["rating"] == i,
            "movie {i}: {}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    Ok(())
}

async fn a_birthday_written_through_one_is_read_through_the_other(pair: &Pair) -> Result<()> {
    let today = [("x-test-now", "2026-11-22")];
    let put = pair
        .a
        .put_json(
            "/hello/Twoinstances",
            &serde_json::json!({"dateOfBirth": "1990-11-23"}),
            &today,
        )
        .await?;
    ensure!(put.status == 204, "PUT: {}", put.status);
    let got = pair.b.get("/hello/Twoinstances", &today).await?;
    ensure!(got.status == 200, "GET through the other: {}", got.status);
    ensure!(
        String::from_utf8_lossy(&got.body).contains("in 1 day"),
        "{}",
        String::from_utf8_lossy(&got.body)
    );
    Ok(())
}

#[test]
fn two_instances_on_one_engine_keep_one_truth() -> Result<()> {
    let pair = pair()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        stream_limit_holds_across_instances(&pair).await.context(
            "40 concurrent stream starts for one user, split across two instances, 20 times",
        )?;
        movie_writes_across_instances_all_survive(&pair)
            .await
            .context("20 concurrent movie writes across two instances")?;
        a_birthday_written_through_one_is_read_through_the_other(&pair)
            .await
            .context("a birthday read through the other instance")
    })
}
