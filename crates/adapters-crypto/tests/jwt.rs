//! `JwtCodec`: round trips, and every way a token must be refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use adapters_crypto::{JwtCodec, JwtConfigError};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use domain::model::{Role, SessionId, TenantId, TenantRole, UserId};
use domain::ports::{AccessClaims, TokenCodec, TokenError};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use uuid::Uuid;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";
const ISSUER: &str = "https://ums.example";
const AUDIENCE: &str = "ums-api";

fn codec() -> JwtCodec {
    JwtCodec::hs256(SECRET, ISSUER, AUDIENCE, 5).unwrap()
}

fn claims_at(issued_at: DateTime<Utc>, ttl: TimeDelta) -> AccessClaims {
    AccessClaims {
        user_id: UserId::from_uuid(Uuid::now_v7()),
        session_id: SessionId::from_uuid(Uuid::now_v7()),
        token_id: Uuid::now_v7(),
        role: Role::Admin,
        tenant: None,
        issued_at,
        expires_at: issued_at + ttl,
    }
}

fn valid_claims() -> AccessClaims {
    claims_at(Utc::now(), TimeDelta::minutes(15))
}

/// The claims `JwtCodec` would put on the wire, for hand-built tokens.
fn wire(claims: &AccessClaims) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": claims.user_id.to_string(),
        "exp": claims.expires_at.timestamp(),
        "iat": claims.issued_at.timestamp(),
        "nbf": claims.issued_at.timestamp(),
        "jti": claims.token_id.to_string(),
        "sid": claims.session_id.to_string(),
        "role": claims.role.as_str(),
    })
}

fn sign(alg: Algorithm, payload: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        payload,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn refusal(result: Result<AccessClaims, TokenError>) -> String {
    match result {
        Err(TokenError::Invalid(reason)) => reason,
        other => panic!("expected TokenError::Invalid, got {other:?}"),
    }
}

fn seconds(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap()
}

#[test]
fn round_trips_claims_to_the_second() {
    let claims = valid_claims();
    let token = codec().issue(&claims).unwrap();
    let decoded = codec().verify(&token).unwrap();
    assert_eq!(
        decoded,
        AccessClaims {
            issued_at: seconds(claims.issued_at),
            expires_at: seconds(claims.expires_at),
            ..claims
        }
    );
}

#[test]
fn a_scoped_token_carries_tenant_and_tenant_role() {
    let tenant = TenantId::from_uuid(Uuid::now_v7());
    let claims = AccessClaims {
        tenant: Some((tenant, TenantRole::Moderator)),
        ..valid_claims()
    };
    let token = codec().issue(&claims).unwrap();
    let payload: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["tenant"], tenant.to_string());
    assert_eq!(payload["tenant_role"], "moderator");
    assert_eq!(
        codec().verify(&token).unwrap().tenant,
        Some((tenant, TenantRole::Moderator))
    );
}

#[test]
fn refuses_half_a_tenant_scope_or_an_unknown_tenant_role() {
    let claims = valid_claims();
    let tenant = Uuid::now_v7().to_string();
    for extra in [
        json!({"tenant": tenant}),
        json!({"tenant_role": "admin"}),
        json!({"tenant": tenant, "tenant_role": "owner"}),
    ] {
        let mut payload = wire(&claims);
        for (key, value) in extra.as_object().unwrap() {
            payload[key] = value.clone();
        }
        let reason = refusal(codec().verify(&sign(Algorithm::HS256, &payload)));
        assert!(reason.contains("tenant"), "{extra}: {reason}");
    }
}

#[test]
fn puts_the_documented_claims_on_the_wire() {
    let claims = valid_claims();
    let token = codec().issue(&claims).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "HS256");
    let payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(payload, wire(&claims));
}

#[test]
fn refuses_short_secrets_and_empty_names() {
    assert_eq!(
        JwtCodec::hs256(&[7u8; 31], ISSUER, AUDIENCE, 5).err(),
        Some(JwtConfigError::SecretTooShort(31))
    );
    assert!(JwtCodec::hs256(&[7u8; 32], ISSUER, AUDIENCE, 5).is_ok());
    assert_eq!(
        JwtCodec::hs256(SECRET, " ", AUDIENCE, 5).err(),
        Some(JwtConfigError::EmptyIssuer)
    );
    assert_eq!(
        JwtCodec::hs256(SECRET, ISSUER, "", 5).err(),
        Some(JwtConfigError::EmptyAudience)
    );
}

#[test]
fn debug_does_not_show_the_secret() {
    let shown = format!("{:?}", codec());
    assert!(shown.contains("REDACTED"), "{shown}");
    assert!(!shown.contains("0123456789abcdef"), "{shown}");
    assert!(!shown.contains("48, 49, 50"), "{shown}");
}

#[test]
fn refuses_an_expired_token() {
    let claims = claims_at(Utc::now() - TimeDelta::hours(2), TimeDelta::hours(1));
    let token = codec().issue(&claims).unwrap();
    assert_eq!(refusal(codec().verify(&token)), "expired");
}

#[test]
fn tolerates_expiry_within_the_leeway_only() {
    let now = Utc::now();
    let just_expired = claims_at(
        now - TimeDelta::minutes(10),
        TimeDelta::minutes(10) - TimeDelta::seconds(2),
    );
    let token = codec().issue(&just_expired).unwrap();
    assert!(
        codec().verify(&token).is_ok(),
        "2 s past exp is within 5 s of leeway"
    );
    let strict = JwtCodec::hs256(SECRET, ISSUER, AUDIENCE, 0).unwrap();
    assert_eq!(refusal(strict.verify(&token)), "expired");
}

#[test]
fn refuses_a_token_not_valid_yet() {
    let claims = claims_at(Utc::now() + TimeDelta::hours(1), TimeDelta::hours(1));
    let token = codec().issue(&claims).unwrap();
    assert_eq!(refusal(codec().verify(&token)), "not valid yet (nbf)");
}

#[test]
fn refuses_a_token_signed_with_another_secret() {
    let other = JwtCodec::hs256(&[b'x'; 32], ISSUER, AUDIENCE, 5).unwrap();
    let token = other.issue(&valid_claims()).unwrap();
    assert_eq!(refusal(codec().verify(&token)), "bad signature");
}

#[test]
fn refuses_a_tampered_payload() {
    let token = codec().issue(&valid_claims()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload = wire(&valid_claims());
    payload["role"] = json!("admin");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    );
    assert_eq!(refusal(codec().verify(&forged)), "bad signature");
}

#[test]
fn refuses_another_issuer() {
    let other = JwtCodec::hs256(SECRET, "https://evil.example", AUDIENCE, 5).unwrap();
    let token = other.issue(&valid_claims()).unwrap();
    assert_eq!(refusal(codec().verify(&token)), "wrong issuer");
}

#[test]
fn refuses_another_audience() {
    let other = JwtCodec::hs256(SECRET, ISSUER, "another-api", 5).unwrap();
    let token = other.issue(&valid_claims()).unwrap();
    assert_eq!(refusal(codec().verify(&token)), "wrong audience");
}

#[test]
fn refuses_alg_none() {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(wire(&valid_claims()).to_string());
    let reason = refusal(codec().verify(&format!("{header}.{payload}.")));
    assert!(reason.contains("none"), "{reason}");
    // Without the trailing dot, too.
    refusal(codec().verify(&format!("{header}.{payload}")));
}

#[test]
fn refuses_other_hmac_algorithms_with_the_same_secret() {
    for alg in [Algorithm::HS512, Algorithm::HS384] {
        let token = sign(alg, &wire(&valid_claims()));
        assert_eq!(
            refusal(codec().verify(&token)),
            "algorithm not allowed",
            "{alg:?}"
        );
    }
    // The same payload signed with HS256 is accepted: only the algorithm differs.
    assert!(
        codec()
            .verify(&sign(Algorithm::HS256, &wire(&valid_claims())))
            .is_ok()
    );
}

#[test]
fn refuses_tokens_missing_a_required_claim() {
    for claim in [
        "exp", "iat", "nbf", "iss", "aud", "sub", "jti", "sid", "role",
    ] {
        let mut payload = wire(&valid_claims());
        payload.as_object_mut().unwrap().remove(claim);
        let reason = refusal(codec().verify(&sign(Algorithm::HS256, &payload)));
        assert!(reason.contains(claim), "{claim}: {reason}");
    }
}

#[test]
fn refuses_mistyped_claims() {
    let mut payload = wire(&valid_claims());
    payload["sid"] = json!("not-a-uuid");
    assert!(refusal(codec().verify(&sign(Algorithm::HS256, &payload))).contains("malformed"));
    let mut payload = wire(&valid_claims());
    payload["role"] = json!("root");
    assert!(refusal(codec().verify(&sign(Algorithm::HS256, &payload))).contains("malformed"));
}

#[test]
fn refuses_garbage() {
    for garbage in [
        "",
        "garbage",
        "a.b.c",
        "....",
        "eyJhbGciOiJIUzI1NiJ9..",
        "\u{0}",
    ] {
        let reason = refusal(codec().verify(garbage));
        assert!(!reason.contains("0123456789abcdef"), "{reason}");
    }
}
