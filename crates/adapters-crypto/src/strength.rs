//! `ZxcvbnStrength`: the [`PasswordStrength`] port on zxcvbn, run on the blocking pool.

use async_trait::async_trait;
use domain::model::Password;
use domain::ports::{PasswordStrength, StrengthVerdict};
use secrecy::ExposeSecret;

use crate::blocking::spawn_blocking_with_tracing;

/// Fragments of a user input shorter than this are not worth adding to zxcvbn's dictionary.
const MIN_FRAGMENT_CHARS: usize = 3;

/// Estimates password strength with zxcvbn (Dropbox's estimator, scored 0-4).
///
/// Each user input counts whole and split into its words, so `ada.lovelace@example.com` makes
/// `lovelace` and `example` as guessable as `ada.lovelace@example.com` itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct ZxcvbnStrength;

impl ZxcvbnStrength {
    /// The estimator (it has no configuration).
    #[must_use]
    pub const fn new() -> Self {
        Self
    }
}

/// Every input, lower-cased, plus its alphanumeric fragments, without duplicates.
fn dictionary(user_inputs: &[String]) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut add = |word: &str| {
        let word = word.trim().to_lowercase();
        if word.chars().count() >= MIN_FRAGMENT_CHARS && !words.contains(&word) {
            words.push(word);
        }
    };
    for input in user_inputs {
        add(input);
        for fragment in input.split(|c: char| !c.is_alphanumeric()) {
            add(fragment);
        }
    }
    words
}

/// zxcvbn's warning and suggestions as one text, or `None` when it has nothing to say.
fn feedback_text(feedback: Option<&zxcvbn::feedback::Feedback>) -> Option<String> {
    let feedback = feedback?;
    let parts: Vec<String> = feedback
        .warning()
        .map(|w| w.to_string())
        .into_iter()
        .chain(feedback.suggestions().iter().map(ToString::to_string))
        .filter(|part| !part.trim().is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn estimate_blocking(password: &str, user_inputs: &[String]) -> StrengthVerdict {
    let words = dictionary(user_inputs);
    let inputs: Vec<&str> = words.iter().map(String::as_str).collect();
    let entropy = zxcvbn::zxcvbn(password, &inputs);
    StrengthVerdict {
        score: u8::from(entropy.score()).min(4),
        feedback: feedback_text(entropy.feedback()),
    }
}

#[async_trait]
impl PasswordStrength for ZxcvbnStrength {
    async fn estimate(&self, password: &Password, user_inputs: &[String]) -> StrengthVerdict {
        let secret = password.secret().clone();
        let inputs = user_inputs.to_vec();
        spawn_blocking_with_tracing(move || estimate_blocking(secret.expose_secret(), &inputs))
            .await
            .unwrap_or_else(|error| {
                // Fail closed: a password that could not be judged is not accepted as strong.
                tracing::error!(%error, "password strength estimation failed");
                StrengthVerdict {
                    score: 0,
                    feedback: Some(
                        "The password could not be checked; try another one.".to_owned(),
                    ),
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_count_whole_and_by_word() {
        let words = dictionary(&["Ada.Lovelace@Example.com".to_owned(), "ada_l".to_owned()]);
        assert_eq!(
            words,
            [
                "ada.lovelace@example.com",
                "ada",
                "lovelace",
                "example",
                "com",
                "ada_l"
            ]
        );
    }
}
