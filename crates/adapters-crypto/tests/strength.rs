//! `ZxcvbnStrength`: scores, feedback, and the user's own words.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use adapters_crypto::ZxcvbnStrength;
use domain::model::{Password, PasswordRules};
use domain::ports::PasswordStrength;
use secrecy::SecretString;

fn password(s: &str) -> Password {
    Password::new(SecretString::from(s.to_owned()), &PasswordRules::default()).unwrap()
}

#[tokio::test]
async fn a_common_password_is_weak_and_says_why() {
    let verdict = ZxcvbnStrength
        .estimate(&password("password1234"), &[])
        .await;
    assert!(verdict.score < 3, "{verdict:?}");
    let feedback = verdict.feedback.unwrap();
    assert!(feedback.contains("common password"), "{feedback}");
}

#[tokio::test]
async fn a_long_passphrase_is_strong() {
    let verdict = ZxcvbnStrength
        .estimate(&password("correct horse battery staple violet"), &[])
        .await;
    assert!(verdict.score >= 3, "{verdict:?}");
    assert!(verdict.score <= 4);
}

#[tokio::test]
async fn the_users_own_words_make_a_password_weaker() {
    let inputs = [
        "ada.lovelace@example.com".to_owned(),
        "adalovelace".to_owned(),
    ];
    // Made of the words of the e-mail address: strong to a stranger, weak to anyone who knows it.
    let candidate = password("AdaLovelaceExample");
    let without = ZxcvbnStrength.estimate(&candidate, &[]).await;
    let with = ZxcvbnStrength.estimate(&candidate, &inputs).await;
    assert!(without.score >= 3, "{without:?}");
    assert!(with.score < 3, "{with:?}");
    assert!(with.feedback.is_some());
    // The whole address with a digit appended, too.
    let candidate = password("ada.lovelace@example.com1");
    let without = ZxcvbnStrength.estimate(&candidate, &[]).await;
    let with = ZxcvbnStrength.estimate(&candidate, &inputs).await;
    assert!(
        with.score < without.score,
        "with {with:?}, without {without:?}"
    );
}

#[tokio::test]
async fn a_strong_password_has_no_feedback() {
    let verdict = ZxcvbnStrength
        .estimate(&password("correct horse battery staple violet"), &[])
        .await;
    assert_eq!(verdict.feedback, None);
}
