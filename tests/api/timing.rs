//! A login of an unknown name takes as long as a known name's with a wrong password (the
//! contract: "about the same time whether the account exists or not"), and so does a login
//! to a locked account (which refuses every password "after the same work as a wrong
//! password", so that its lock cannot tell which names are one account's): the issue's test,
//! the one timing assertion of the suite. At a bcrypt cost of 6 the hash (a few
//! milliseconds) dominates the rest of a request, and the test stays fast.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use serde_json::json;

use crate::helpers::{Stack, TestApp, spawn_app_with};

/// Attempts of each kind per measurement.
const TRIES: usize = 30;
/// Measurements before the test gives up (a loaded machine can spoil one).
const MEASUREMENTS: usize = 3;
/// The largest difference of the medians allowed, relative to the largest one.
const TOLERANCE: f64 = 0.20;
/// Failures that lock a login name, and an account under any of its names: more than any
/// name or account of the test fails in the measurements (5 warm-ups and
/// `MEASUREMENTS * TRIES`), except the account locked on purpose.
const MAX_FAILURES: usize = 150;

/// The three kinds of attempt, by the name they log in with.
const KNOWN: &str = "timed";
const UNKNOWN: &str = "nobody-here";
/// The e-mail address of an account whose username used its window up: the account is
/// locked, the address's own window is not (so it answers 401, not the name lock's 429).
const LOCKED: &str = "locked@example.com";

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

/// The medians of [`TRIES`] attempts of each kind, interleaved (rotating which goes first)
/// so that a slowdown of the machine falls on all alike; in the order of `logins`.
async fn measure(client: &awc::Client, app: &TestApp, logins: &[&str]) -> Vec<Duration> {
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); logins.len()];
    for round in 0..TRIES {
        for i in 0..logins.len() {
            let kind = (round + i) % logins.len();
            times[kind].push(attempt(client, app, logins[kind]).await);
        }
    }
    times.into_iter().map(median).collect()
}

#[actix_web::test]
async fn unknown_names_and_locked_accounts_take_as_long_as_a_wrong_password() {
    const {
        assert!(
            5 + MEASUREMENTS * TRIES < MAX_FAILURES,
            "the measured names would lock"
        );
    }
    let max_failures = MAX_FAILURES.to_string();
    let app = spawn_app_with(
        Stack::from_env(),
        tempfile::tempdir().expect("temp dir"),
        &[
            ("UMS_BCRYPT_COST", "6"),
            // Far from the lockout, except for the account locked below.
            ("UMS_LOGIN_MAX_FAILURES", &max_failures),
            ("UMS_LOGIN_WINDOW_SECS", "3600"),
            ("UMS_RATE_LIMIT_ENABLED", "false"),
        ],
    )
    .await;
    app.register("timed@example.com", KNOWN).await;
    app.register(LOCKED, "locked").await;
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    // Lock the account: its username uses the account's window up, one more failure under
    // its address takes it over (the address's own window has one failure).
    for _ in 0..MAX_FAILURES {
        attempt(&client, &app, "locked").await;
    }
    attempt(&client, &app, LOCKED).await;
    let logins = [KNOWN, UNKNOWN, LOCKED];
    // Warm up: connections, the dummy hash (computed on first use), caches.
    for _ in 0..5 {
        for login in logins {
            attempt(&client, &app, login).await;
        }
    }

    let mut seen = Vec::new();
    for _ in 0..MEASUREMENTS {
        let medians = measure(&client, &app, &logins).await;
        let (fastest, slowest) = (
            medians.iter().min().copied().unwrap_or_default(),
            medians.iter().max().copied().unwrap_or_default(),
        );
        let relative = (slowest - fastest).as_secs_f64() / slowest.as_secs_f64();
        let described = format!(
            "known {:?}, unknown {:?}, locked {:?} ({:.0}% apart)",
            medians[0],
            medians[1],
            medians[2],
            relative * 100.0
        );
        if relative <= TOLERANCE {
            eprintln!("login medians: {described}");
            // The locked account is locked: its right password is refused too.
            let right = client
                .post(format!("{}/api/v1/auth/login", app.base))
                .send_json(&json!({"login": LOCKED, "password": crate::helpers::PASSWORD}))
                .await
                .expect("the login is answered");
            assert_eq!(right.status(), StatusCode::UNAUTHORIZED);
            return;
        }
        seen.push(described);
    }
    panic!(
        "the medians of {TRIES} attempts differ by more than {:.0}% in each of {MEASUREMENTS} measurements: {}",
        TOLERANCE * 100.0,
        seen.join("; ")
    );
}
