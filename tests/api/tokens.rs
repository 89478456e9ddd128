//! Access tokens that must be refused: expired, tampered, `alg: none`, wrong key, a refresh
//! token used as a bearer token, malformed headers.

use actix_web::http::{Method, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::helpers::{JWT_SECRET, spawn_app};

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn sign(claims: &Value, secret: &str, algorithm: jsonwebtoken::Algorithm) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(algorithm),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[actix_web::test]
async fn forged_and_misused_tokens_get_401() {
    let app = spawn_app().await;
    let (access, refresh) = app.signed_in("eve").await;
    assert_eq!(
        app.get("/api/v1/users/me", &access).await.status,
        StatusCode::OK
    );
    let claims = claims_of(&access);
    for claim in [
        "iss", "aud", "sub", "exp", "iat", "nbf", "jti", "sid", "role",
    ] {
        assert!(
            claims.get(claim).is_some(),
            "claim {claim} missing from {claims}"
        );
    }

    // Re-signing the same claims with the right key works: the forgeries below fail only for
    // the reason each one names.
    let resigned = sign(&claims, JWT_SECRET, jsonwebtoken::Algorithm::HS256);
    assert_eq!(
        app.get("/api/v1/users/me", &resigned).await.status,
        StatusCode::OK
    );

    let mut expired = claims.clone();
    let now = chrono::Utc::now().timestamp();
    expired["iat"] = json!(now - 3600);
    expired["nbf"] = json!(now - 3600);
    expired["exp"] = json!(now - 1800);
    let expired = sign(&expired, JWT_SECRET, jsonwebtoken::Algorithm::HS256);

    let mut not_yet = claims.clone();
    not_yet["nbf"] = json!(now + 3600);
    let not_yet = sign(&not_yet, JWT_SECRET, jsonwebtoken::Algorithm::HS256);

    let mut promoted = claims.clone();
    promoted["role"] = json!("admin");
    let parts: Vec<&str> = access.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(promoted.to_string()),
        parts[2]
    );
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let alg_none = format!("{none_header}.{}.", parts[1]);
    let wrong_key = sign(
        &claims,
        "another-secret-that-is-long-enough-0123456789",
        jsonwebtoken::Algorithm::HS256,
    );
    let other_alg = sign(&claims, JWT_SECRET, jsonwebtoken::Algorithm::HS512);
    let mut foreign = claims.clone();
    foreign["aud"] = json!("some-other-service");
    let foreign = sign(&foreign, JWT_SECRET, jsonwebtoken::Algorithm::HS256);
    let mut no_sid = claims.clone();
    no_sid.as_object_mut().unwrap().remove("sid");
    let no_sid = sign(&no_sid, JWT_SECRET, jsonwebtoken::Algorithm::HS256);

    for (what, token) in [
        ("expired", expired.as_str()),
        ("not yet valid", not_yet.as_str()),
        ("tampered payload", tampered.as_str()),
        ("alg none", alg_none.as_str()),
        ("wrong key", wrong_key.as_str()),
        ("HS512", other_alg.as_str()),
        ("other audience", foreign.as_str()),
        ("no sid", no_sid.as_str()),
        ("refresh token as bearer", refresh.as_str()),
        ("garbage", "not.a.jwt"),
    ] {
        let response = app.get("/api/v1/users/me", token).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{what}");
        assert!(
            response
                .header("www-authenticate")
                .unwrap()
                .contains("invalid_token"),
            "{what}"
        );
    }
}

#[actix_web::test]
async fn missing_or_malformed_authorization_gets_401() {
    let app = spawn_app().await;
    let none = app.send(Method::GET, "/api/v1/users/me", None, None).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        none.header("www-authenticate"),
        Some(r#"Bearer realm="ums""#)
    );
    for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "token"] {
        let response = app
            .send_with(
                Method::GET,
                "/api/v1/users/me",
                None,
                None,
                &[("Authorization", header)],
            )
            .await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{header}");
    }
}

/// Authentication is decided before the body is judged: a revoked token with a bad body is a
/// 401, not a 422 that would answer questions for an unauthenticated caller.
#[actix_web::test]
async fn authentication_comes_before_body_validation() {
    let app = spawn_app().await;
    let (access, _) = app.signed_in("order").await;
    let out = app
        .send(Method::POST, "/api/v1/auth/logout", Some(&access), None)
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    for (method, path) in [
        (Method::PATCH, "/api/v1/users/me"),
        (Method::POST, "/api/v1/users/me/password"),
    ] {
        let response = app
            .send(
                method.clone(),
                path,
                Some(&access),
                Some(json!({"role": "admin"})),
            )
            .await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
}
