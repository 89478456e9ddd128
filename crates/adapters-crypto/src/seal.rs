//! `AeadSeal`: the [`MailSeal`] port with XChaCha20-Poly1305, keyed from the service secret.
//!
//! A sealed message is `1 || nonce (24 bytes) || ciphertext+tag`, the plaintext the message as
//! JSON, and the message id the associated data: bytes moved to another outbox row do not
//! open, nor do altered ones. The key is HKDF-SHA256 of the service's signing secret with its
//! own `info`, so one configured secret serves both without either revealing the other.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use domain::model::{Email, OutgoingMail};
use domain::ports::{MailSeal, SealError};
use hkdf::Hkdf;
use rand::TryRngCore as _;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

/// The format's first byte.
const VERSION: u8 = 1;
/// XChaCha20's nonce: random nonces of this size never collide in practice.
const NONCE_BYTES: usize = 24;
/// The HKDF `info` of the outbox key.
const INFO: &[u8] = b"ums/outbox-seal/v1";

/// Seals outbox mail with a key derived from a secret.
pub struct AeadSeal {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for AeadSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AeadSeal { .. }")
    }
}

impl AeadSeal {
    /// A seal whose key is derived from `secret` (the service's signing secret; at least 32
    /// bytes, as the token codec requires).
    #[must_use]
    pub fn from_secret(secret: &[u8]) -> Self {
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit: expand cannot fail.
        let _ = Hkdf::<Sha256>::new(None, secret).expand(INFO, &mut key);
        Self {
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }
}

/// The message as it is sealed.
#[derive(Serialize, Deserialize)]
struct Plain {
    to: String,
    subject: String,
    text: String,
    html: String,
}

fn failure(what: &'static str) -> SealError {
    SealError(what.into())
}

impl MailSeal for AeadSeal {
    fn seal(&self, id: Uuid, mail: &OutgoingMail) -> Result<Vec<u8>, SealError> {
        let plain = serde_json::to_vec(&Plain {
            to: mail.to.as_str().to_owned(),
            subject: mail.subject.clone(),
            text: mail.text.clone(),
            html: mail.html.clone(),
        })
        .map_err(|e| SealError(Box::new(e)))?;
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rngs::OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|e| SealError(Box::new(e)))?;
        let sealed = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &plain,
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| failure("encryption failed"))?;
        let mut out = Vec::with_capacity(1 + NONCE_BYTES + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn open(&self, id: Uuid, sealed: &[u8]) -> Result<OutgoingMail, SealError> {
        let Some((&VERSION, rest)) = sealed.split_first() else {
            return Err(failure("not a sealed message of a known version"));
        };
        if rest.len() < NONCE_BYTES {
            return Err(failure("truncated sealed message"));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce
            .try_into()
            .map_err(|_| failure("truncated sealed message"))?;
        let plain = self
            .cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| failure("the message does not open with this key and id"))?;
        let plain: Plain = serde_json::from_slice(&plain).map_err(|e| SealError(Box::new(e)))?;
        Ok(OutgoingMail {
            to: Email::parse(&plain.to).map_err(|e| SealError(Box::new(e)))?,
            subject: plain.subject,
            text: plain.text,
            html: plain.html,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]
    use super::*;

    fn mail() -> OutgoingMail {
        OutgoingMail {
            to: Email::parse("ada@example.com").expect("valid"),
            subject: "Reset your password".to_owned(),
            text: "token: s3cr3t-token-value".to_owned(),
            html: "<p>s3cr3t-token-value</p>".to_owned(),
        }
    }

    #[test]
    fn a_sealed_message_opens_with_its_key_and_id_and_hides_its_content() {
        let seal = AeadSeal::from_secret(b"0123456789abcdef0123456789abcdef");
        let id = Uuid::now_v7();
        let sealed = seal.seal(id, &mail()).expect("sealed");
        let window = b"s3cr3t";
        assert!(!sealed.windows(window.len()).any(|w| w == window));
        assert!(!sealed.windows(7).any(|w| w == b"example"));
        assert_eq!(seal.open(id, &sealed).expect("opens"), mail());
        // Random nonces: the same message seals differently each time.
        assert_ne!(seal.seal(id, &mail()).expect("sealed"), sealed);
    }

    #[test]
    fn another_key_another_id_or_altered_bytes_do_not_open() {
        let seal = AeadSeal::from_secret(b"0123456789abcdef0123456789abcdef");
        let other = AeadSeal::from_secret(b"fedcba9876543210fedcba9876543210");
        let id = Uuid::now_v7();
        let sealed = seal.seal(id, &mail()).expect("sealed");
        assert!(other.open(id, &sealed).is_err());
        assert!(seal.open(Uuid::now_v7(), &sealed).is_err());
        for index in [0, 1, 30, sealed.len() - 1] {
            let mut altered = sealed.clone();
            altered[index] ^= 0x01;
            assert!(seal.open(id, &altered).is_err(), "byte {index}");
        }
        assert!(seal.open(id, &sealed[..10]).is_err());
        assert!(seal.open(id, &[]).is_err());
    }
}
