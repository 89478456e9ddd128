//! The OpenAPI document describes exactly what the service serves. (Every response of every
//! test is also checked against it by `helpers::TestApp::send`.)

use actix_web::http::{Method, StatusCode};

use crate::helpers::spawn_app;

#[actix_web::test]
async fn the_served_document_is_the_generated_one() {
    let app = spawn_app().await;
    let served = app.send(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(&served.body, app.document());
    assert!(served.body["openapi"].as_str().unwrap().starts_with("3.1"));
}

#[actix_web::test]
async fn swagger_ui_is_served_from_the_binary() {
    let app = spawn_app().await;
    let ui = app.send(Method::GET, "/api/docs/", None, None).await;
    assert_eq!(ui.status, StatusCode::OK);
    assert!(
        ui.text.contains("swagger"),
        "{}",
        &ui.text[..ui.text.len().min(300)]
    );
}

/// Every documented operation is routed: sent with no credentials and no body, it answers
/// with one of its documented statuses (checked by the helper), never a route miss.
#[actix_web::test]
async fn every_documented_operation_is_served() {
    let app = spawn_app().await;
    let paths = app.document()["paths"].as_object().unwrap().clone();
    let mut operations = 0;
    for (path, item) in &paths {
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let concrete = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
            let response = app.send(method.clone(), &concrete, None, None).await;
            assert_ne!(
                response.status,
                StatusCode::NOT_FOUND,
                "{method} {path} is not routed"
            );
            assert_ne!(
                response.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            operations += 1;
        }
    }
    assert!(operations >= 13, "only {operations} operations documented");
}

/// Operations that need a token say so, and the ones that do not are reachable without one.
#[actix_web::test]
async fn security_requirements_match_behaviour() {
    let app = spawn_app().await;
    let paths = app.document()["paths"].as_object().unwrap().clone();
    for (path, item) in &paths {
        for (method, op) in item.as_object().unwrap() {
            let secured = op.get("security").is_some();
            let documents_401 = op["responses"].get("401").is_some();
            let http_method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = app.send(http_method, path, None, None).await;
            if secured {
                assert!(documents_401, "{method} {path}: secured but no 401");
                assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{method} {path}");
            } else {
                assert_ne!(
                    response.status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} asks for a token the document does not mention"
                );
            }
        }
    }
}
