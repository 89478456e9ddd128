//! The contract's conventions: request ids, problem documents for every failure, 400 / 404 /
//! 405 / 413 / 422 answered as such, never a 500 for bad input.

use actix_web::http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn request_ids_are_echoed_or_generated() {
    let app = spawn_app().await;
    let echoed = app
        .send_with(
            Method::GET,
            "/health",
            None,
            None,
            &[("X-Request-Id", "abc-123")],
        )
        .await;
    assert_eq!(echoed.header("x-request-id"), Some("abc-123"));
    let generated = app.send(Method::GET, "/health", None, None).await;
    let id = generated.header("x-request-id").unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    // An unusable client id (too long) is replaced, not echoed.
    let long = "x".repeat(200);
    let replaced = app
        .send_with(
            Method::GET,
            "/health",
            None,
            None,
            &[("X-Request-Id", &long)],
        )
        .await;
    assert_ne!(replaced.header("x-request-id"), Some(long.as_str()));
    // Errors quote the id in their problem document (checked for every response by helpers).
    let problem = app
        .send_with(
            Method::GET,
            "/nowhere",
            None,
            None,
            &[("X-Request-Id", "trace-me")],
        )
        .await;
    assert_eq!(problem.body["request_id"], "trace-me");
}

#[actix_web::test]
async fn health_reports_ok_and_version() {
    let app = spawn_app().await;
    let response = app.send(Method::GET, "/health", None, None).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body["status"], "ok");
    assert_eq!(response.body["version"], env!("CARGO_PKG_VERSION"));
}

#[actix_web::test]
async fn unknown_routes_and_wrong_methods_are_problems() {
    let app = spawn_app().await;
    let missing = app
        .send(Method::GET, "/api/v1/nothing-here", None, None)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let wrong = app
        .send(Method::GET, "/api/v1/auth/login", None, None)
        .await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong.header("allow"), Some("POST"));
    let wrong = app.send(Method::PUT, "/api/v1/users/me", None, None).await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    let mut allowed: Vec<&str> = wrong.header("allow").unwrap().split(", ").collect();
    allowed.sort_unstable();
    assert_eq!(allowed, ["DELETE", "GET", "PATCH"]);
    let wrong = app
        .send(Method::GET, "/api/v1/users/me/password", None, None)
        .await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        wrong.header("allow"),
        Some("POST"),
        "the methods of /users/me/password, not of /users/{{id}}/..."
    );
}

#[actix_web::test]
async fn unreadable_bodies_are_400_and_wrong_shapes_422() {
    let app = spawn_app().await;
    let path = "/api/v1/auth/login";
    let malformed = app
        .send_raw(
            Method::POST,
            path,
            None,
            Some((b"{\"login\": ".to_vec(), "application/json")),
            &[],
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    let not_json = app
        .send_raw(
            Method::POST,
            path,
            None,
            Some((
                b"login=a&password=b".to_vec(),
                "application/x-www-form-urlencoded",
            )),
            &[],
        )
        .await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    let no_type = app
        .send_raw(
            Method::POST,
            path,
            None,
            Some((b"{}".to_vec(), "text/plain")),
            &[],
        )
        .await;
    assert_eq!(no_type.status, StatusCode::BAD_REQUEST);
    let empty = app.send_raw(Method::POST, path, None, None, &[]).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);

    let wrong_type = app.post(path, json!({"login": 42, "password": "x"})).await;
    assert_eq!(wrong_type.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        wrong_type.body["errors"]["login"].is_array(),
        "{}",
        wrong_type.text
    );
    let missing = app.post(path, json!({"login": "a"})).await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(missing.body["errors"]["password"].is_array());
    let unknown = app
        .post(path, json!({"login": "a", "password": "b", "admin": true}))
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unknown.body["errors"]["admin"].is_array());
    let array = app.post(path, json!([1, 2])).await;
    assert_eq!(array.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[actix_web::test]
async fn bodies_over_64_kib_are_413() {
    let app = spawn_app().await;
    let big =
        json!({"email": "big@example.com", "username": "big", "password": "x".repeat(70 * 1024)});
    let response = app.post("/api/v1/auth/register", big).await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Just under the limit is read (and then judged on its content).
    let padded = json!({"login": "x".repeat(60 * 1024), "password": "y"});
    let response = app.post("/api/v1/auth/login", padded).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
}

/// Every operation that takes a JSON body answers 400 to malformed JSON and 413 to a body over
/// the limit (authenticated, so the body is what is judged).
#[actix_web::test]
async fn every_body_endpoint_refuses_malformed_and_oversized_bodies() {
    let app = spawn_app().await;
    let (user, _) = app.signed_in("bodies").await;
    // Introspection authorizes before it reads the body: only an administrator gets that far.
    let (root, _) = app.admin("root").await;
    let paths = app.document()["paths"].as_object().unwrap().clone();
    let big = format!("{{\"x\": \"{}\"}}", "y".repeat(70 * 1024)).into_bytes();
    let mut checked = 0;
    for (path, item) in &paths {
        for (method, op) in item.as_object().unwrap() {
            if op.get("requestBody").is_none() {
                continue;
            }
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let access = if path == "/api/v1/auth/introspect" {
                &root
            } else {
                &user
            };
            let malformed = app
                .send_raw(
                    method.clone(),
                    path,
                    Some(access),
                    Some((b"{\"x\":".to_vec(), "application/json")),
                    &[],
                )
                .await;
            assert_eq!(malformed.status, StatusCode::BAD_REQUEST, "{method} {path}");
            let oversized = app
                .send_raw(
                    method.clone(),
                    path,
                    Some(access),
                    Some((big.clone(), "application/json")),
                    &[],
                )
                .await;
            assert_eq!(
                oversized.status,
                StatusCode::PAYLOAD_TOO_LARGE,
                "{method} {path}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 6, "only {checked} operations take a body");
}
