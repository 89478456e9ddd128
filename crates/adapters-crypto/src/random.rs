//! `OsRandom`: opaque tokens from the operating system's CSPRNG, stored as SHA-256 digests.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::model::TokenHash;
use domain::ports::{OpaqueToken, SecureRandom};
use rand::RngCore as _;
use rand::TryRngCore as _;
use secrecy::SecretString;
use sha2::{Digest as _, Sha256};

/// Random bytes per token: 256 bits.
const TOKEN_BYTES: usize = 32;

/// Tokens of 32 bytes from the OS CSPRNG, as URL-safe base64 without padding (43 characters);
/// their digest is the lower-case hex SHA-256 of the token string (64 characters).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl SecureRandom for OsRandom {
    fn new_token(&self) -> OpaqueToken {
        let mut bytes = [0u8; TOKEN_BYTES];
        if rand::rngs::OsRng.try_fill_bytes(&mut bytes).is_err() {
            // The port cannot report failure. The thread-local generator is a CSPRNG seeded
            // from the OS too (and panics if it cannot be seeded): never a weak fallback.
            tracing::warn!("the OS random source failed; using the thread-local CSPRNG");
            rand::rng().fill_bytes(&mut bytes);
        }
        let plaintext = URL_SAFE_NO_PAD.encode(bytes);
        let hash = self.digest(&plaintext);
        OpaqueToken {
            plaintext: SecretString::from(plaintext),
            hash,
        }
    }

    fn digest(&self, token: &str) -> TokenHash {
        let digest = Sha256::digest(token.as_bytes());
        let mut hex = String::with_capacity(digest.len() * 2);
        for byte in digest {
            // Writing to a String cannot fail.
            let _ = write!(hex, "{byte:02x}");
        }
        TokenHash::new(hex)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::HashSet;

    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn tokens_are_256_bit_url_safe_and_hashed() {
        let token = OsRandom.new_token();
        let plaintext = token.plaintext.expose_secret();
        assert_eq!(plaintext.len(), 43, "32 bytes in unpadded base64");
        assert_eq!(URL_SAFE_NO_PAD.decode(plaintext).unwrap().len(), 32);
        assert!(
            plaintext
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(token.hash.as_str().len(), 64);
        assert!(
            token
                .hash
                .as_str()
                .chars()
                .all(|c| matches!(c, '0'..='9' | 'a'..='f'))
        );
        assert_eq!(
            token.hash,
            OsRandom.digest(plaintext),
            "hash is the digest of the plaintext"
        );
        assert_ne!(token.hash.as_str(), plaintext);
    }

    #[test]
    fn tokens_do_not_repeat() {
        let drawn: HashSet<String> = (0..10_000)
            .map(|_| OsRandom.new_token().plaintext.expose_secret().to_owned())
            .collect();
        assert_eq!(drawn.len(), 10_000);
    }

    #[test]
    fn digest_is_stable_hex_sha256() {
        // Known answer: SHA-256("abc").
        assert_eq!(
            OsRandom.digest("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(OsRandom.digest("token"), OsRandom.digest("token"));
        assert_ne!(OsRandom.digest("token"), OsRandom.digest("token2"));
    }
}
