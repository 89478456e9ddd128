//! Crypto adapters for UMS: bcrypt password hashing, HS256 JWT access tokens, random opaque
//! tokens, zxcvbn strength estimates, sealing of outbox mail (XChaCha20-Poly1305), and the
//! system clock and UUID v7 ids.
//!
//! Every CPU-heavy call (bcrypt, zxcvbn) runs on tokio's blocking pool, never on the async
//! runtime, with the caller's tracing span carried into the closure.

mod blocking;
mod hasher;
mod jwt;
mod random;
mod seal;
mod strength;
mod system;

pub use hasher::{BcryptCostError, BcryptHasher};
pub use jwt::{JwtCodec, JwtConfigError, MIN_SECRET_BYTES};
pub use random::OsRandom;
pub use seal::AeadSeal;
pub use strength::ZxcvbnStrength;
pub use system::{SystemClock, UuidV7Ids};
