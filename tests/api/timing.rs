//! A login of an unknown name takes as long as a known name's with a wrong password (the
//! contract: "about the same time whether the account exists or not"): the test, the
//! one timing assertion of the suite. At a bcrypt cost of 6 the hash (a few milliseconds)
//! dominates the rest of a request, and the test stays fast.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use serde_json::json;

use crate::helpers::{Stack, TestApp, spawn_app_with};

/// Attempts of each kind per measurement.
const TRIES: usize = 30;
/// Measurements before the test gives up (a loaded machine can spoil one).
const MEASUREMENTS: usize = 3;
/// The largest difference of the medians allowed, relative to the larger one.
const TOLERANCE: f64 = 0.20;

/// The time one login attempt takes, from sending it to having read the whole answer, which
/// must be a 401.
async fn attempt(client: &awc::Client, app: &TestApp, login: &str) -> Duration {
    let started = Instant::now();
    let mut response = client
        .post(format!("{}/api/v1/auth/login", app.base))
        .send_json(&json!({"login": login, "password": "a wrong password 123"}))
        .await
        .expect("the login is answered");
    let body = response.body().await.expect("the body is read");
    let elapsed = started.elapsed();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "{login}: {}",
        String::from_utf8_lossy(&body)
    );
    elapsed
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    let middle = times.len() / 2;
    if times.len().is_multiple_of(2) {
        (times[middle - 1] + times[middle]) / 2
    } else {
        times[middle]
    }
}

/// The medians of [`TRIES`] attempts of each kind, interleaved (alternating which goes first)
/// so that a slowdown of the machine falls on both alike.
async fn measure(client: &awc::Client, app: &TestApp) -> (Duration, Duration) {
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for round in 0..TRIES {
        if round % 2 == 0 {
            known.push(attempt(client, app, "timed").await);
            unknown.push(attempt(client, app, "nobody-here").await);
        } else {
            unknown.push(attempt(client, app, "nobody-here").await);
            known.push(attempt(client, app, "timed").await);
        }
    }
    (median(known), median(unknown))
}

#[actix_web::test]
async fn an_unknown_name_takes_as_long_as_a_wrong_password() {
    let app = spawn_app_with(
        Stack::from_env(),
        tempfile::tempdir().expect("temp dir"),
        &[
            ("UMS_BCRYPT_COST", "6"),
            // Every attempt is a failure of one of two names: far from the lockout.
            ("UMS_LOGIN_MAX_FAILURES", "1000"),
            ("UMS_RATE_LIMIT_ENABLED", "false"),
        ],
    )
    .await;
    app.register("timed@example.com", "timed").await;
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    // Warm up: connections, the dummy hash (computed on first use), caches.
    for _ in 0..5 {
        attempt(&client, &app, "timed").await;
        attempt(&client, &app, "nobody-here").await;
    }

    let mut seen = Vec::new();
    for _ in 0..MEASUREMENTS {
        let (known, unknown) = measure(&client, &app).await;
        let difference = known.abs_diff(unknown).as_secs_f64();
        let relative = difference / known.max(unknown).as_secs_f64();
        if relative <= TOLERANCE {
            eprintln!("login medians: known {known:?}, unknown {unknown:?}");
            return;
        }
        seen.push(format!(
            "known {known:?}, unknown {unknown:?} ({:.0}% apart)",
            relative * 100.0
        ));
    }
    panic!(
        "the medians of {TRIES} attempts differ by more than {:.0}% in each of {MEASUREMENTS} measurements: {}",
        TOLERANCE * 100.0,
        seen.join("; ")
    );
}
