//! `BcryptHasher`: the [`PasswordHasher`] port on bcrypt, run on the blocking pool.

use async_trait::async_trait;
use domain::model::{Password, PasswordHash};
use domain::ports::{HashError, PasswordHasher};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::OnceCell;

use crate::blocking::spawn_blocking_with_tracing;

/// bcrypt reads at most this many bytes of a password.
const BCRYPT_MAX_BYTES: usize = 72;

/// The password behind the dummy hash. What it is does not matter: `verify_dummy` ignores the
/// outcome and only spends the time.
const DUMMY_PASSWORD: &str = "ums-dummy-password-for-unknown-logins";

/// The cost bcrypt accepts.
const COST_RANGE: std::ops::RangeInclusive<u32> = 4..=31;

/// A bcrypt cost outside 4..=31.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bcrypt cost must be between 4 and 31, got {0}")]
pub struct BcryptCostError(pub u32);

/// Hashes passwords with bcrypt (`$2b$`) at a fixed cost, on tokio's blocking pool.
///
/// Never truncates: a candidate longer than 72 bytes does not match, yet costs a full verify.
#[derive(Debug)]
pub struct BcryptHasher {
    cost: u32,
    /// A hash of [`DUMMY_PASSWORD`] at `cost`, computed on first use.
    dummy: OnceCell<String>,
}

impl BcryptHasher {
    /// A hasher producing hashes of `cost` (each step doubles the work; 12 is a sound default
    /// for production, 4 keeps tests fast).
    ///
    /// # Errors
    /// [`BcryptCostError`] when `cost` is outside bcrypt's 4..=31.
    pub fn new(cost: u32) -> Result<Self, BcryptCostError> {
        if !COST_RANGE.contains(&cost) {
            return Err(BcryptCostError(cost));
        }
        Ok(Self {
            cost,
            dummy: OnceCell::new(),
        })
    }

    /// The configured cost.
    #[must_use]
    pub const fn cost(&self) -> u32 {
        self.cost
    }

    /// The dummy hash, computed once (off the runtime) and then reused.
    async fn dummy_hash(&self) -> Result<&str, HashError> {
        let cost = self.cost;
        self.dummy
            .get_or_try_init(|| async move {
                spawn_blocking_with_tracing(move || bcrypt::hash(DUMMY_PASSWORD, cost))
                    .await
                    .map_err(|e| HashError(Box::new(e)))?
                    .map_err(|e| HashError(Box::new(e)))
            })
            .await
            .map(String::as_str)
    }
}

/// Verifies on the current thread. bcrypt's own `verify` truncates at 72 bytes but still does
/// all of the work; a longer candidate is then refused, so its timing is that of a normal verify.
fn verify_blocking(candidate: &SecretString, hash: &str) -> Result<bool, HashError> {
    let bytes = candidate.expose_secret().as_bytes();
    let matched = bcrypt::verify(bytes, hash).map_err(|e| HashError(Box::new(e)))?;
    Ok(matched && bytes.len() <= BCRYPT_MAX_BYTES)
}

#[async_trait]
impl PasswordHasher for BcryptHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        let secret = password.secret().clone();
        let cost = self.cost;
        let hashed = spawn_blocking_with_tracing(move || {
            let bytes = secret.expose_secret().as_bytes();
            if bytes.len() > BCRYPT_MAX_BYTES {
                // `Password` already refuses these; never hash a truncated password regardless.
                return Err(HashError("password longer than 72 bytes".into()));
            }
            // Not `non_truncating_hash`: it refuses exactly 72 bytes, which `Password` allows and
            // bcrypt hashes in full (only the terminating NUL is dropped).
            bcrypt::hash(bytes, cost).map_err(|e| HashError(Box::new(e)))
        })
        .await
        .map_err(|e| HashError(Box::new(e)))??;
        Ok(PasswordHash::new(hashed))
    }

    async fn verify(
        &self,
        candidate: &SecretString,
        hash: &PasswordHash,
    ) -> Result<bool, HashError> {
        let candidate = candidate.clone();
        let hash = hash.as_str().to_owned();
        spawn_blocking_with_tracing(move || verify_blocking(&candidate, &hash))
            .await
            .map_err(|e| HashError(Box::new(e)))?
    }

    async fn verify_dummy(&self, candidate: &SecretString) -> Result<(), HashError> {
        let hash = self.dummy_hash().await?.to_owned();
        let candidate = candidate.clone();
        spawn_blocking_with_tracing(move || verify_blocking(&candidate, &hash))
            .await
            .map_err(|e| HashError(Box::new(e)))??;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn refuses_costs_bcrypt_cannot_use() {
        assert_eq!(BcryptHasher::new(3).err(), Some(BcryptCostError(3)));
        assert_eq!(BcryptHasher::new(32).err(), Some(BcryptCostError(32)));
        assert_eq!(BcryptHasher::new(4).map(|h| h.cost()), Ok(4));
    }

    #[tokio::test]
    async fn the_dummy_hash_is_computed_once_at_the_configured_cost() {
        let hasher = BcryptHasher::new(5).unwrap();
        assert!(hasher.dummy.get().is_none(), "computed lazily");
        hasher
            .verify_dummy(&SecretString::from("anything".to_owned()))
            .await
            .unwrap();
        let first = hasher.dummy.get().cloned().unwrap();
        assert!(first.starts_with("$2b$05$"), "{first}");
        hasher
            .verify_dummy(&SecretString::from("something else".to_owned()))
            .await
            .unwrap();
        assert_eq!(hasher.dummy.get(), Some(&first), "reused, not recomputed");
    }
}
