//! `JwtCodec`: the [`TokenCodec`] port as HS256-signed JWTs with a pinned algorithm.

use std::fmt;

use chrono::{DateTime, Utc};
use domain::model::{Role, SessionId, TenantId, TenantRole, UserId};
use domain::ports::{AccessClaims, TokenCodec, TokenError};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The shortest HS256 secret accepted: 256 bits, the size of the HMAC-SHA-256 output.
pub const MIN_SECRET_BYTES: usize = 32;

/// Why a [`JwtCodec`] could not be built. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtConfigError {
    /// The HMAC secret is shorter than [`MIN_SECRET_BYTES`].
    #[error("the JWT secret must be at least {MIN_SECRET_BYTES} bytes long (got {0})")]
    SecretTooShort(usize),
    /// The issuer is empty.
    #[error("the JWT issuer must not be empty")]
    EmptyIssuer,
    /// The audience is empty.
    #[error("the JWT audience must not be empty")]
    EmptyAudience,
}

/// The claims as they travel: registered claims plus `sid` and `role`, dates in whole seconds
/// since the epoch, and for a token scoped to a tenant `tenant` with `tenant_role`. Every
/// field but the tenant pair is required when decoding; the pair is both or neither.
#[derive(Debug, Serialize, Deserialize)]
struct WireClaims {
    iss: String,
    aud: String,
    sub: UserId,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: Uuid,
    sid: SessionId,
    role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant: Option<TenantId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant_role: Option<String>,
}

/// Signs and verifies access tokens as HS256 JWTs for one issuer and audience.
///
/// Verification accepts HS256 only (not `none`, not HS384/HS512, not asymmetric algorithms),
/// requires `exp, iat, nbf, iss, aud, sub, jti, sid` and `role`, and checks `exp` and `nbf`
/// with the configured leeway, `iss` and `aud` exactly. Dates are whole seconds on the wire,
/// so decoded claims are the issued ones truncated to the second.
pub struct JwtCodec {
    encoding: EncodingKey,
    decoding: DecodingKey,
    header: Header,
    validation: Validation,
    issuer: String,
    audience: String,
}

impl fmt::Debug for JwtCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtCodec")
            .field("algorithm", &self.header.alg)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.validation.leeway)
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

impl JwtCodec {
    /// An HS256 codec with `secret`, issuing and accepting tokens for `issuer` and `audience`,
    /// tolerating `leeway_secs` of clock skew on `exp` and `nbf` (a few seconds; 0 is strict).
    ///
    /// # Errors
    /// [`JwtConfigError`] when the secret is shorter than [`MIN_SECRET_BYTES`] or the issuer
    /// or audience is empty.
    pub fn hs256(
        secret: &[u8],
        issuer: &str,
        audience: &str,
        leeway_secs: u64,
    ) -> Result<Self, JwtConfigError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(JwtConfigError::SecretTooShort(secret.len()));
        }
        if issuer.trim().is_empty() {
            return Err(JwtConfigError::EmptyIssuer);
        }
        if audience.trim().is_empty() {
            return Err(JwtConfigError::EmptyAudience);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        // jsonwebtoken checks presence of these; `iat`, `jti`, `sid` and `role` are required
        // by `WireClaims` itself (no defaults, no `Option`).
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.leeway = leeway_secs;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            header: Header::new(Algorithm::HS256),
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }
}

/// A reason for refusing a token, fit for logs: it names the failed check, never the key.
fn reason(error: &jsonwebtoken::errors::Error) -> String {
    match error.kind() {
        ErrorKind::ExpiredSignature => "expired".to_owned(),
        ErrorKind::ImmatureSignature => "not valid yet (nbf)".to_owned(),
        ErrorKind::InvalidSignature => "bad signature".to_owned(),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            "algorithm not allowed".to_owned()
        }
        ErrorKind::InvalidIssuer => "wrong issuer".to_owned(),
        ErrorKind::InvalidAudience => "wrong audience".to_owned(),
        ErrorKind::InvalidSubject => "wrong subject".to_owned(),
        ErrorKind::MissingRequiredClaim(claim) => format!("missing claim `{claim}`"),
        ErrorKind::InvalidClaimFormat(claim) => format!("malformed claim `{claim}`"),
        // serde's message names the missing or mistyped field (e.g. "missing field `sid`"),
        // or, for the header, the unknown algorithm (e.g. "none").
        ErrorKind::Json(json) => format!("malformed header or claims: {json}"),
        ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
            "not a JWT".to_owned()
        }
        _ => "unusable token".to_owned(),
    }
}

fn from_timestamp(secs: i64, claim: &str) -> Result<DateTime<Utc>, TokenError> {
    DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| TokenError::Invalid(format!("claim `{claim}` out of range")))
}

impl TokenCodec for JwtCodec {
    fn issue(&self, claims: &AccessClaims) -> Result<String, TokenError> {
        let issued_at = claims.issued_at.timestamp();
        let wire = WireClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: claims.user_id,
            exp: claims.expires_at.timestamp(),
            iat: issued_at,
            nbf: issued_at,
            jti: claims.token_id,
            sid: claims.session_id,
            role: claims.role,
            tenant: claims.tenant.map(|(id, _)| id),
            tenant_role: claims.tenant.map(|(_, role)| role.as_str().to_owned()),
        };
        jsonwebtoken::encode(&self.header, &wire, &self.encoding)
            .map_err(|e| TokenError::Unexpected(Box::new(e)))
    }

    fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let data = jsonwebtoken::decode::<WireClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| TokenError::Invalid(reason(&e)))?;
        let wire = data.claims;
        let tenant = match (wire.tenant, wire.tenant_role) {
            (None, None) => None,
            (Some(id), Some(role)) => Some((
                id,
                role.parse::<TenantRole>()
                    .map_err(|_| TokenError::Invalid("claim `tenant_role` is unknown".into()))?,
            )),
            _ => {
                return Err(TokenError::Invalid(
                    "claims `tenant` and `tenant_role` come together".into(),
                ));
            }
        };
        Ok(AccessClaims {
            user_id: wire.sub,
            session_id: wire.sid,
            token_id: wire.jti,
            role: wire.role,
            tenant,
            issued_at: from_timestamp(wire.iat, "iat")?,
            expires_at: from_timestamp(wire.exp, "exp")?,
        })
    }
}
