//! The OpenAPI tag `birthdays`, the birthday API, as a client sees it. The host runs with
//! `test_clock_header = true`, so each case says which day "today" is with `x-test-now`.

use crate::cases;
use crate::common::{expect_error, Case};
use anyhow::{ensure, Result};
use conformance::{Api, Host};
use reqwest::Method;
use serde_json::json;
use std::sync::atomic::{AtomicU32, Ordering};

pub fn cases() -> Vec<Case> {
    cases![
        put_returns_204_with_empty_body_when_input_is_valid,
        get_returns_days_until_birthday_when_user_exists,
        get_returns_happy_birthday_when_birthday_is_today,
        get_counts_across_year_end_and_leap_years,
        feb_29_birthday_falls_on_feb_28_in_common_years,
        put_again_updates_the_date,
        get_uses_the_real_utc_date_without_a_test_clock,
        get_returns_404_user_not_found_when_user_is_unknown,
        usernames_are_case_sensitive,
        put_returns_400_invalid_username_when_username_is_not_letters,
        get_returns_400_invalid_username_when_username_is_not_letters,
        put_returns_400_invalid_date_of_birth_when_date_is_bad,
        put_returns_400_invalid_body_when_json_is_bad,
        rejected_put_changes_nothing,
        put_returns_413_when_body_is_over_64_kib,
        wrong_method_returns_405_with_allow_header,
        concurrent_puts_for_many_users_all_land,
    ]
}

/// A fresh username (letters only) so cases never see each other's data.
fn user(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let mut n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut suffix = String::new();
    loop {
        suffix.push(char::from(b'a' + (n % 26) as u8));
        n /= 26;
        if n == 0 {
            break;
        }
    }
    format!("{tag}{suffix}")
}

async fn put(api: &Api, name: &str, dob: &str, today: &str) -> Result<conformance::Reply> {
    api.put_json(
        &format!("/hello/{name}"),
        &json!({"dateOfBirth": dob}),
        &[("x-test-now", today)],
    )
    .await
}

async fn message(api: &Api, name: &str, today: &str) -> Result<String> {
    let reply = api
        .get(&format!("/hello/{name}"), &[("x-test-now", today)])
        .await?;
    ensure!(
        reply.status == 200,
        "GET {name}: {} {:?}",
        reply.status,
        reply.body
    );
    ensure!(reply.header("content-type") == Some("application/json"));
    let body = reply.json()?;
    let object = body.as_object().filter(|o| o.len() == 1);
    let message = object
        .and_then(|o| o.get("message"))
        .and_then(|m| m.as_str());
    message
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("body is not {{\"message\": …}}: {body}"))
}

async fn expect_days(api: &Api, name: &str, dob: &str, today: &str, days: i64) -> Result<()> {
    let reply = put(api, name, dob, today).await?;
    ensure!(
        reply.status == 204,
        "PUT {dob} on {today}: {}",
        reply.status
    );
    let got = message(api, name, today).await?;
    let want = match days {
        0 => format!("Hello, {name}! Happy Birthday!"),
        n => format!("Hello, {name}! Your birthday is in {n} day(s)"),
    };
    ensure!(
        got == want,
        "born {dob}, today {today}: got {got:?}, want {want:?}"
    );
    Ok(())
}

async fn put_returns_204_with_empty_body_when_input_is_valid(api: Api, _: Host) -> Result<()> {
    let reply = put(&api, &user("putok"), "1990-05-17", "2026-11-22").await?;
    ensure!(reply.status == 204, "status {}", reply.status);
    ensure!(reply.body.is_empty(), "body {:?}", reply.body);
    Ok(())
}

async fn get_returns_days_until_birthday_when_user_exists(api: Api, _: Host) -> Result<()> {
    let name = user("days");
    expect_days(&api, &name, "1990-11-23", "2026-11-22", 1).await?;
    expect_days(&api, &name, "1990-12-25", "2026-11-22", 33).await?;
    expect_days(&api, &name, "1990-11-21", "2026-11-22", 364).await
}

async fn get_returns_happy_birthday_when_birthday_is_today(api: Api, _: Host) -> Result<()> {
    expect_days(&api, &user("today"), "1985-11-22", "2026-11-22", 0).await
}

async fn get_counts_across_year_end_and_leap_years(api: Api, _: Host) -> Result<()> {
    let name = user("leap");
    expect_days(&api, &name, "2000-01-01", "2026-12-31", 1).await?;
    expect_days(&api, &name, "2000-03-01", "2027-03-02", 365).await?;
    expect_days(&api, &name, "2000-03-01", "2028-02-28", 2).await?;
    expect_days(&api, &name, "2000-06-15", "2027-06-16", 365).await
}

async fn feb_29_birthday_falls_on_feb_28_in_common_years(api: Api, _: Host) -> Result<()> {
    let name = user("feb");
    expect_days(&api, &name, "2004-02-29", "2027-02-28", 0).await?;
    expect_days(&api, &name, "2004-02-29", "2027-02-27", 1).await?;
    expect_days(&api, &name, "2004-02-29", "2028-02-28", 1).await?;
    expect_days(&api, &name, "2004-02-29", "2028-02-29", 0).await?;
    expect_days(&api, &name, "2004-02-29", "2027-03-01", 365).await?;
    expect_days(&api, &name, "2004-02-29", "2028-03-01", 364).await
}

async fn put_again_updates_the_date(api: Api, _: Host) -> Result<()> {
    let name = user("again");
    expect_days(&api, &name, "1990-11-25", "2026-11-22", 3).await?;
    expect_days(&api, &name, "1990-11-30", "2026-11-22", 8).await
}

/// Without `x-test-now` the host's clock decides: the expected answer is computed from
/// the real UTC date (either side of a midnight that passes during the request).
async fn get_uses_the_real_utc_date_without_a_test_clock(api: Api, _: Host) -> Result<()> {
    let name = user("real");
    let before = chrono::Utc::now().date_naive();
    let dob = before.with_year_checked(1990);
    let reply = api
        .put_json(&format!("/hello/{name}"), &json!({"dateOfBirth": dob}), &[])
        .await?;
    ensure!(reply.status == 204, "PUT status {}", reply.status);
    let reply = api.get(&format!("/hello/{name}"), &[]).await?;
    let after = chrono::Utc::now().date_naive();
    let body = reply.json()?;
    let happy = json!({"message": format!("Hello, {name}! Happy Birthday!")});
    let next_day = json!({"message": format!("Hello, {name}! Your birthday is in 364 day(s)")});
    let next_day_leap =
        json!({"message": format!("Hello, {name}! Your birthday is in 365 day(s)")});
    ensure!(
        body == happy || (before != after && (body == next_day || body == next_day_leap)),
        "born on this day in 1990, got {body}"
    );
    // A date of birth of today is not "strictly before today".
    let today = after.format("%Y-%m-%d").to_string();
    let reply = api
        .put_json(
            &format!("/hello/{name}"),
            &json!({"dateOfBirth": today}),
            &[],
        )
        .await?;
    expect_error(&reply, 400, "invalid_date_of_birth")
}

trait WithYear {
    fn with_year_checked(self, year: i32) -> String;
}

impl WithYear for chrono::NaiveDate {
    /// This date in `year`, as YYYY-MM-DD; 29 February becomes 28 February so that the
    /// case also runs on a leap day.
    fn with_year_checked(self, year: i32) -> String {
        use chrono::Datelike;
        let date = self
            .with_year(year)
            .or_else(|| chrono::NaiveDate::from_ymd_opt(year, 2, 28))
            .unwrap_or(self);
        date.format("%Y-%m-%d").to_string()
    }
}

async fn get_returns_404_user_not_found_when_user_is_unknown(api: Api, _: Host) -> Result<()> {
    let reply = api.get(&format!("/hello/{}", user("ghost")), &[]).await?;
    expect_error(&reply, 404, "user_not_found")
}

async fn usernames_are_case_sensitive(api: Api, _: Host) -> Result<()> {
    let name = user("Case");
    expect_days(&api, &name, "1990-11-23", "2026-11-22", 1).await?;
    let reply = api
        .get(&format!("/hello/{}", name.to_lowercase()), &[])
        .await?;
    expect_error(&reply, 404, "user_not_found")
}

const BAD_USERNAMES: [&str; 8] = [
    "abc1",
    "al-ice",
    "al%20ice",
    "b%C3%A9a",
    "%F0%9F%8E%82",
    "under_score",
    "",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];

async fn put_returns_400_invalid_username_when_username_is_not_letters(
    api: Api,
    _: Host,
) -> Result<()> {
    for name in BAD_USERNAMES {
        let reply = put(&api, name, "1990-01-01", "2026-11-22").await?;
        expect_error(&reply, 400, "invalid_username").map_err(|e| e.context(name.to_owned()))?;
    }
    let longest = "a".repeat(64);
    let reply = put(&api, &longest, "1990-01-01", "2026-11-22").await?;
    ensure!(reply.status == 204, "64 letters refused: {}", reply.status);
    Ok(())
}

async fn get_returns_400_invalid_username_when_username_is_not_letters(
    api: Api,
    _: Host,
) -> Result<()> {
    for name in BAD_USERNAMES {
        let reply = api.get(&format!("/hello/{name}"), &[]).await?;
        expect_error(&reply, 400, "invalid_username").map_err(|e| e.context(name.to_owned()))?;
    }
    Ok(())
}

async fn put_returns_400_invalid_date_of_birth_when_date_is_bad(api: Api, _: Host) -> Result<()> {
    let name = user("baddate");
    for dob in [
        "2026-11-22",
        "2026-11-23",
        "2999-01-01",
        "2023-02-29",
        "1990-13-01",
        "1990-00-10",
        "1990-04-31",
        "1990-1-01",
        "1990-01-1",
        "90-01-01",
        "01-01-1990",
        "1990/01/01",
        "1990-01-01T00:00:00Z",
        " 1990-01-01",
        "",
        "yesterday",
    ] {
        let reply = put(&api, &name, dob, "2026-11-22").await?;
        expect_error(&reply, 400, "invalid_date_of_birth").map_err(|e| e.context(dob))?;
    }
    Ok(())
}

async fn put_returns_400_invalid_body_when_json_is_bad(api: Api, _: Host) -> Result<()> {
    let path = format!("/hello/{}", user("badbody"));
    for body in [
        "",
        "{",
        "not json",
        "null",
        "[]",
        "{}",
        "\"1990-01-01\"",
        "{\"dateOfBirth\": 19900101}",
        "{\"dateOfBirth\": null}",
        "{\"dateofbirth\": \"1990-01-01\"}",
        "{\"dateOfBirth\": \"1990-01-01\"",
    ] {
        let reply = api
            .send(
                Method::PUT,
                &path,
                &[("content-type", "application/json")],
                Some(body.into()),
            )
            .await?;
        expect_error(&reply, 400, "invalid_body").map_err(|e| e.context(body))?;
    }
    let reply = api.get(&path, &[]).await?;
    expect_error(&reply, 404, "user_not_found")
}

async fn rejected_put_changes_nothing(api: Api, _: Host) -> Result<()> {
    let name = user("keep");
    expect_days(&api, &name, "1990-11-24", "2026-11-22", 2).await?;
    put(&api, &name, "2030-01-01", "2026-11-22").await?;
    api.send(
        Method::PUT,
        &format!("/hello/{name}"),
        &[],
        Some(b"{".to_vec()),
    )
    .await?;
    let got = message(&api, &name, "2026-11-22").await?;
    ensure!(
        got == format!("Hello, {name}! Your birthday is in 2 day(s)"),
        "{got}"
    );
    Ok(())
}

async fn put_returns_413_when_body_is_over_64_kib(api: Api, _: Host) -> Result<()> {
    let name = user("big");
    let padding = "x".repeat(64 * 1024);
    let body = format!("{{\"dateOfBirth\": \"1990-01-01\", \"pad\": \"{padding}\"}}");
    let reply = api
        .send(
            Method::PUT,
            &format!("/hello/{name}"),
            &[],
            Some(body.into_bytes()),
        )
        .await?;
    expect_error(&reply, 413, "payload_too_large")?;
    let reply = api.get(&format!("/hello/{name}"), &[]).await?;
    expect_error(&reply, 404, "user_not_found")?;
    // Just under the limit is fine.
    let padding = "x".repeat(64 * 1024 - 100);
    let body = format!("{{\"dateOfBirth\": \"1990-01-01\", \"pad\": \"{padding}\"}}");
    let reply = api
        .send(
            Method::PUT,
            &format!("/hello/{name}"),
            &[],
            Some(body.into_bytes()),
        )
        .await?;
    ensure!(
        reply.status == 204,
        "body under 64 KiB refused: {}",
        reply.status
    );
    Ok(())
}

async fn wrong_method_returns_405_with_allow_header(api: Api, _: Host) -> Result<()> {
    for method in [Method::POST, Method::DELETE, Method::PATCH] {
        let reply = api
            .send(method.clone(), "/hello/someone", &[], None)
            .await?;
        expect_error(&reply, 405, "method_not_allowed").map_err(|e| e.context(method.clone()))?;
        ensure!(
            reply.header("allow") == Some("GET, PUT"),
            "{method}: allow {:?}",
            reply.header("allow")
        );
    }
    let reply = api.send(Method::POST, "/healthz", &[], None).await?;
    expect_error(&reply, 405, "method_not_allowed")?;
    ensure!(reply.header("allow") == Some("GET"));
    Ok(())
}

async fn concurrent_puts_for_many_users_all_land(api: Api, _: Host) -> Result<()> {
    let names: Vec<String> = (0..24).map(|_| user("many")).collect();
    let mut tasks = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let api = api.clone();
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            let dob = format!("1990-12-{:02}", i + 1);
            put(&api, &name, &dob, "2026-11-22").await
        }));
    }
    for task in tasks {
        let reply = task.await??;
        ensure!(reply.status == 204, "concurrent PUT: {}", reply.status);
    }
    for (i, name) in names.iter().enumerate() {
        let got = message(&api, name, "2026-11-22").await?;
        let want = format!("Hello, {name}! Your birthday is in {} day(s)", 9 + i);
        ensure!(got == want, "{got} != {want}");
    }
    Ok(())
}
