//! User administration and the audit trail through HTTP: listing and searching users, the
//! fields only administrators set, deactivation ending sessions at once, the last system
//! administrator, unlocking, and what the audit trail records (never a secret).

use actix_web::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, spawn_app};

fn access(tokens: &Value) -> String {
    tokens["access_token"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn administrators_list_search_filter_and_sort_users() {
    let app = spawn_app().await;
    let (root, _) = app.admin("root").await;
    for (email, username) in [
        ("zoe@example.com", "Zoe"),
        ("adam@example.com", "adam"),
        ("mia@other.test", "mia"),
    ] {
        app.register(email, username).await;
    }
    let list = |query: &'static str| {
        let app = &app;
        let root = root.clone();
        async move { app.get(&format!("/api/v1/users{query}"), &root).await }
    };
    let all = list("").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    assert_eq!(all.body["total"], 4);
    assert_eq!(all.body["page"], 1);
    assert_eq!(all.body["per_page"], 20);
    // Newest first by default.
    assert_eq!(all.body["items"][0]["username"], "mia");

    let by_email = list("?sort=email").await;
    let emails: Vec<&str> = by_email.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        [
            "adam@example.com",
            "mia@other.test",
            "root@example.com",
            "zoe@example.com"
        ]
    );
    let by_username = list("?sort=username&per_page=2&page=2").await;
    assert_eq!(by_username.body["total"], 4);
    let names: Vec<&str> = by_username.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["root", "Zoe"],
        "case-insensitive order, second page"
    );

    // q matches any of the four fields, case-insensitively.
    let q = list("?q=OTHER").await;
    assert_eq!(q.body["total"], 1);
    assert_eq!(q.body["items"][0]["username"], "mia");
    let q = list("?q=zo").await;
    assert_eq!(q.body["items"][0]["username"], "Zoe");
    let admins = list("?role=admin").await;
    assert_eq!(admins.body["total"], 1);
    let inactive = list("?is_active=false").await;
    assert_eq!(inactive.body["total"], 0);

    // Bad values are 422 naming each parameter; unknown parameters too.
    let bad = list("?per_page=101&page=0&role=king&is_active=yes&sort=age&colour=red").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    for parameter in ["per_page", "page", "role", "is_active", "sort", "colour"] {
        assert!(
            bad.body["errors"][parameter].is_array(),
            "{parameter}: {}",
            bad.text
        );
    }
    // Not for ordinary users.
    let (user, _) = app.signed_in("plain").await;
    assert_eq!(
        app.get("/api/v1/users", &user).await.status,
        StatusCode::FORBIDDEN
    );
}

#[actix_web::test]
async fn an_administrator_creates_reads_and_deletes_users() {
    let app = spawn_app().await;
    let (root, _) = app.admin("root").await;
    let created = app
        .send(
            Method::POST,
            "/api/v1/users",
            Some(&root),
            Some(json!({"email": "ops@example.com", "username": "ops",
                        "password": PASSWORD, "role": "admin"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["role"], "admin");
    let location = created.header("location").unwrap().to_owned();
    let read = app.get(&location, &root).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["email"], "ops@example.com");

    // Register's Location resolves, for the user themselves.
    let registered = app
        .post(
            "/api/v1/auth/register",
            json!({"email": "self@example.com", "username": "self", "password": PASSWORD}),
        )
        .await;
    let own = registered.header("location").unwrap().to_owned();
    let token = access(&app.login("self", PASSWORD).await);
    assert_eq!(app.get(&own, &token).await.status, StatusCode::OK);
    // Another user's account is invisible to them: the same 404 as for nobody.
    assert_eq!(
        app.get(&location, &token).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v1/users/0192f0c1-2b3c-7d4e-8f50-617283940a1b", &token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Nobody but a system administrator creates or deletes.
    let refused = app
        .send(
            Method::POST,
            "/api/v1/users",
            Some(&token),
            Some(json!({"email": "x@example.com", "username": "x", "password": PASSWORD})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.send(Method::DELETE, &location, Some(&token), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    let deleted = app.send(Method::DELETE, &own, Some(&root), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&own, &root).await.status, StatusCode::NOT_FOUND);
    // Their token died with them, and their events stayed.
    assert_eq!(
        app.get("/api/v1/users/me", &token).await.status,
        StatusCode::UNAUTHORIZED
    );
    let id = registered.body["id"].as_str().unwrap();
    let events = app.get(&format!("/api/v1/audit?target={id}"), &root).await;
    let actions: Vec<&str> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"user.deleted"), "{actions:?}");
    assert!(actions.contains(&"user.registered"), "{actions:?}");
}

#[actix_web::test]
async fn only_an_administrator_sets_email_role_and_activity_and_deactivation_ends_sessions() {
    let app = spawn_app().await;
    let (root, _) = app.admin("root").await;
    let user = app.register("frank@example.com", "frank").await;
    let path = format!("/api/v1/users/{}", user["id"].as_str().unwrap());
    let frank = access(&app.login("frank", PASSWORD).await);

    // Frank may change his profile here, but not his role, address or activity.
    let own = app
        .send(
            Method::PATCH,
            &path,
            Some(&frank),
            Some(json!({"first_name": "Frank"})),
        )
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    for body in [
        json!({"role": "admin"}),
        json!({"email": "f2@example.com"}),
        json!({"is_active": true}),
    ] {
        let refused = app
            .send(Method::PATCH, &path, Some(&frank), Some(body.clone()))
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{body}");
    }
    let unchanged = app.get(&path, &root).await;
    assert_eq!(unchanged.body["role"], "user");
    assert_eq!(unchanged.body["email"], "frank@example.com");

    // The administrator changes his address (now unverified) and deactivates him.
    let changed = app
        .send(
            Method::PATCH,
            &path,
            Some(&root),
            Some(json!({"email": "Frank.New@Example.com"})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.body["email"], "frank.new@example.com");
    assert_eq!(changed.body["email_verified"], false);
    let off = app
        .send(
            Method::PATCH,
            &path,
            Some(&root),
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text);
    assert_eq!(off.body["is_active"], false);
    assert_eq!(
        app.get("/api/v1/users/me", &frank).await.status,
        StatusCode::UNAUTHORIZED,
        "his token stops working at once"
    );
}

#[actix_web::test]
async fn the_last_active_system_administrator_stays() {
    let app = spawn_app().await;
    let (root, root_id) = app.admin("root").await;
    let path = format!("/api/v1/users/{root_id}");
    for body in [json!({"role": "user"}), json!({"is_active": false})] {
        let refused = app
            .send(Method::PATCH, &path, Some(&root), Some(body.clone()))
            .await;
        assert_eq!(
            refused.status,
            StatusCode::CONFLICT,
            "{body}: {}",
            refused.text
        );
    }
    let refused = app.send(Method::DELETE, &path, Some(&root), None).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    // With a second administrator, the first may step down.
    app.admin("root2").await;
    let stepped = app
        .send(
            Method::PATCH,
            &path,
            Some(&root),
            Some(json!({"role": "user"})),
        )
        .await;
    assert_eq!(stepped.status, StatusCode::OK, "{}", stepped.text);
    assert_eq!(stepped.body["role"], "user");
}

#[actix_web::test]
async fn unlock_clears_a_lockout_and_the_trail_records_it_without_secrets() {
    let app = spawn_app().await;
    let (root, _) = app.admin("root").await;
    let user = app.register("gina@example.com", "gina").await;
    let id = user["id"].as_str().unwrap();
    let wrong = "not my password 99";
    let mut locked = false;
    for _ in 0..10 {
        let attempt = app
            .post(
                "/api/v1/auth/login",
                json!({"login": "gina", "password": wrong}),
            )
            .await;
        if attempt.status == StatusCode::TOO_MANY_REQUESTS {
            locked = true;
            break;
        }
    }
    assert!(locked, "the login name locks");
    let still = app
        .post(
            "/api/v1/auth/login",
            json!({"login": "gina", "password": PASSWORD}),
        )
        .await;
    assert_eq!(still.status, StatusCode::TOO_MANY_REQUESTS);

    let unlocked = app
        .send(
            Method::POST,
            &format!("/api/v1/users/{id}/unlock"),
            Some(&root),
            None,
        )
        .await;
    assert_eq!(unlocked.status, StatusCode::NO_CONTENT);
    app.login("gina", PASSWORD).await;

    let failed = app
        .get("/api/v1/audit?action=user.login_failed", &root)
        .await;
    assert_eq!(failed.status, StatusCode::OK, "{}", failed.text);
    assert!(failed.body["total"].as_u64().unwrap() >= 5);
    // Against the account, by id: the name as typed is not kept for an existing account.
    assert_eq!(failed.body["items"][0]["target_id"], id);
    assert_eq!(failed.body["items"][0]["details"]["reason"], "credentials");
    assert!(failed.body["items"][0]["details"].get("login").is_none());
    assert!(failed.body["items"][0]["request_id"].is_string());
    // A name that is nobody's is recorded as typed.
    app.post(
        "/api/v1/auth/login",
        json!({"login": "nobody-here", "password": wrong}),
    )
    .await;
    let unknown = app
        .get("/api/v1/audit?action=user.login_failed", &root)
        .await;
    assert_eq!(unknown.body["items"][0]["details"]["login"], "nobody-here");
    for action in [
        "user.locked",
        "user.unlocked",
        "user.login",
        "user.registered",
    ] {
        let found = app
            .get(&format!("/api/v1/audit?action={action}"), &root)
            .await;
        assert!(found.body["total"].as_u64().unwrap() >= 1, "{action}");
    }
    let everything = app.get("/api/v1/audit?per_page=100", &root).await;
    assert!(!everything.text.contains(wrong), "no password in the trail");
    assert!(
        !everything.text.contains(PASSWORD),
        "no password in the trail"
    );
    assert!(!everything.text.contains("$2"), "no hash in the trail");

    // Newest first, and filters are validated.
    let items = everything.body["items"].as_array().unwrap();
    let times: Vec<&str> = items.iter().map(|e| e["at"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted);
    let bad = app
        .get(
            "/api/v1/audit?action=user.exploded&since=yesterday&actor=me",
            &root,
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    for parameter in ["action", "since", "actor"] {
        assert!(bad.body["errors"][parameter].is_array(), "{parameter}");
    }
    // Ordinary users read no trail.
    let gina = access(&app.login("gina", PASSWORD).await);
    assert_eq!(
        app.get("/api/v1/audit", &gina).await.status,
        StatusCode::FORBIDDEN
    );
}

#[actix_web::test]
async fn a_tenant_admin_reads_their_tenants_events_only() {
    let app = spawn_app().await;
    let (root, _) = app.admin("root").await;
    for slug in ["one", "two"] {
        let created = app
            .send(
                Method::POST,
                "/api/v1/tenants",
                Some(&root),
                Some(json!({"name": slug, "slug": slug,
                            "admin": {"email": format!("{slug}@example.com"),
                                      "username": format!("admin-{slug}"),
                                      "password": PASSWORD}})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    }
    let admin_one = access(&app.login("admin-one", PASSWORD).await);
    let own = app.get("/api/v1/audit?tenant=one", &admin_one).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    let items = own.body["items"].as_array().unwrap();
    assert!(!items.is_empty());
    let one = app.get("/api/v1/tenants/one", &admin_one).await;
    assert!(
        items.iter().all(|e| e["tenant_id"] == one.body["id"]),
        "{}",
        own.text
    );
    assert!(items.iter().any(|e| e["action"] == "tenant.member_added"));
    for query in ["", "?tenant=two", "?tenant=nowhere"] {
        let refused = app.get(&format!("/api/v1/audit{query}"), &admin_one).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{query}");
    }
    // The refusals are in the trail too.
    let denied = app.get("/api/v1/audit?action=access.denied", &root).await;
    assert!(
        denied.body["total"].as_u64().unwrap() >= 3,
        "{}",
        denied.text
    );
}
