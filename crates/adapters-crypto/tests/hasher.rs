//! `BcryptHasher`: hashing, verifying, the 72-byte rule, malformed hashes, and the runtime.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use adapters_crypto::BcryptHasher;
use domain::model::{Password, PasswordHash, PasswordRules};
use domain::ports::PasswordHasher;
use secrecy::SecretString;

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn password(s: &str) -> Password {
    Password::new(secret(s), &PasswordRules::default()).unwrap()
}

fn hasher() -> BcryptHasher {
    BcryptHasher::new(4).unwrap()
}

#[tokio::test]
async fn verifies_the_right_password_only() {
    let hasher = hasher();
    let hash = hasher
        .hash(&password("correct horse battery"))
        .await
        .unwrap();
    assert!(
        hash.as_str().starts_with("$2b$04$"),
        "bcrypt $2b$ at the configured cost"
    );
    assert!(
        hasher
            .verify(&secret("correct horse battery"), &hash)
            .await
            .unwrap()
    );
    assert!(
        !hasher
            .verify(&secret("correct horse battery!"), &hash)
            .await
            .unwrap()
    );
    assert!(!hasher.verify(&secret(""), &hash).await.unwrap());
}

#[tokio::test]
async fn salts_every_hash() {
    let hasher = hasher();
    let a = hasher
        .hash(&password("correct horse battery"))
        .await
        .unwrap();
    let b = hasher
        .hash(&password("correct horse battery"))
        .await
        .unwrap();
    assert_ne!(a, b);
    assert!(
        hasher
            .verify(&secret("correct horse battery"), &b)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn verifies_hashes_of_other_costs() {
    let stored = BcryptHasher::new(5)
        .unwrap()
        .hash(&password("correct horse battery"))
        .await
        .unwrap();
    assert!(
        hasher()
            .verify(&secret("correct horse battery"), &stored)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn never_matches_a_candidate_over_72_bytes() {
    let hasher = hasher();
    let exactly_72 = "x".repeat(72);
    let hash = hasher.hash(&password(&exactly_72)).await.unwrap();
    assert!(
        hasher.verify(&secret(&exactly_72), &hash).await.unwrap(),
        "72 bytes are fine"
    );
    // bcrypt alone would accept these: it ignores everything after byte 72.
    for longer in [
        format!("{exactly_72}y"),
        format!("{exactly_72}{}", "z".repeat(100)),
    ] {
        assert!(!hasher.verify(&secret(&longer), &hash).await.unwrap());
    }
    // Multi-byte characters count in bytes.
    let euros = "€".repeat(24); // 72 bytes
    let hash = hasher.hash(&password(&euros)).await.unwrap();
    assert!(hasher.verify(&secret(&euros), &hash).await.unwrap());
    assert!(
        !hasher
            .verify(&secret(&format!("{euros}€")), &hash)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_malformed_hash_is_an_error() {
    let hasher = hasher();
    for bad in [
        "",
        "not-a-hash",
        "$2b$04$short",
        "$1$abcdefgh$0123456789012345678901",
        &"$".repeat(60),
    ] {
        let result = hasher
            .verify(&secret("whatever1234"), &PasswordHash::new(bad.to_owned()))
            .await;
        assert!(result.is_err(), "{bad:?} gave {result:?}");
    }
}

#[tokio::test]
async fn verify_dummy_succeeds_for_any_candidate() {
    let hasher = hasher();
    hasher
        .verify_dummy(&secret("anything at all"))
        .await
        .unwrap();
    hasher
        .verify_dummy(&secret(&"long".repeat(40)))
        .await
        .unwrap();
    hasher.verify_dummy(&secret("")).await.unwrap();
}

/// How often a 2 ms timer fires on this runtime while `work` runs.
async fn ticks_during(work: impl std::future::Future<Output = ()>) -> u32 {
    let mut work = std::pin::pin!(work);
    let mut ticks = 0u32;
    loop {
        tokio::select! {
            () = &mut work => break ticks,
            () = tokio::time::sleep(Duration::from_millis(2)) => ticks += 1,
        }
    }
}

/// On a single-threaded runtime, work done inline would stop every other task until it
/// finished (no tick at all); on the blocking pool, the timer keeps firing while bcrypt runs.
#[tokio::test(flavor = "current_thread")]
async fn hashing_and_verifying_leave_the_runtime_free() {
    let hasher = BcryptHasher::new(11).unwrap();
    let pw = password("correct horse battery");
    let hash = hasher.hash(&pw).await.unwrap();

    let ticks = ticks_during(async {
        hasher.hash(&pw).await.unwrap();
    })
    .await;
    assert!(ticks > 0, "hash blocked the runtime");
    let ticks = ticks_during(async {
        assert!(hasher.verify(pw.secret(), &hash).await.unwrap());
    })
    .await;
    assert!(ticks > 0, "verify blocked the runtime");
    let ticks = ticks_during(async {
        hasher.verify_dummy(pw.secret()).await.unwrap();
    })
    .await;
    assert!(ticks > 0, "verify_dummy blocked the runtime");
}
