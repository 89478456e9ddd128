//! Tenants, memberships and roles through HTTP: the role x endpoint matrix, cross-tenant
//! isolation (a tenant one cannot see answers exactly as one that does not exist), tenant-scoped
//! login, live membership, and the last-admin rule.

use actix_web::http::{Method, StatusCode};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, spawn_app};

/// The claims of an access token, decoded without verifying (the server did).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// Creates a tenant as `admin_token`'s system administrator; returns its body.
async fn create_tenant(app: &TestApp, admin_token: &str, slug: &str) -> Value {
    let created = app
        .send(
            Method::POST,
            "/api/v1/tenants",
            Some(admin_token),
            Some(json!({"name": format!("Tenant {slug}"), "slug": slug})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    created.body
}

/// Registers `name` and adds them to `slug` with `role`; returns their user id.
async fn member(app: &TestApp, admin_token: &str, slug: &str, name: &str, role: &str) -> String {
    let user = app.register(&format!("{name}@example.com"), name).await;
    let id = user["id"].as_str().unwrap().to_owned();
    let added = app
        .send(
            Method::POST,
            &format!("/api/v1/tenants/{slug}/members"),
            Some(admin_token),
            Some(json!({"user_id": id, "role": role})),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    id
}

fn access(tokens: &Value) -> String {
    tokens["access_token"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn a_tenant_created_with_a_new_admin_is_theirs_to_log_into() {
    let app = spawn_app().await;
    let (root, _) = app.admin("root").await;
    let created = app
        .send(
            Method::POST,
            "/api/v1/tenants",
            Some(&root),
            Some(json!({
                "name": "Acme Research",
                "slug": "acme",
                "settings": {"color": "teal"},
                "admin": {"email": "boss@acme.test", "username": "boss", "password": PASSWORD}
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["slug"], "acme");
    assert_eq!(created.body["settings"], json!({"color": "teal"}));
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.header("location"),
        Some(format!("/api/v1/tenants/{id}").as_str())
    );
    assert!(created.header("etag").is_some());

    // The new admin can log in scoped to it, by slug or by id.
    for tenant in ["acme", id.as_str()] {
        let login = app
            .post(
                "/api/v1/auth/login",
                json!({"login": "boss", "password": PASSWORD, "tenant": tenant}),
            )
            .await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.text);
        let token = access(&login.body);
        let claims = claims(&token);
        assert_eq!(claims["tenant"], id.as_str());
        assert_eq!(claims["tenant_role"], "admin");
    }
    // GET /users/me and /users/me/tenants list the membership.
    let boss = access(&app.login("boss", PASSWORD).await);
    let me = app.get("/api/v1/users/me", &boss).await;
    assert_eq!(me.body["tenants"][0]["tenant"]["slug"], "acme");
    assert_eq!(me.body["tenants"][0]["role"], "admin");
    let mine = app.get("/api/v1/users/me/tenants", &boss).await;
    assert_eq!(mine.status, StatusCode::OK);
    assert_eq!(mine.body["total"], 1);
    assert_eq!(mine.body["items"][0]["tenant"]["id"], id.as_str());
    // An unscoped token carries no tenant claims.
    let plain = claims(&boss);
    assert!(plain.get("tenant").is_none() && plain.get("tenant_role").is_none());

    // The slug is unique, and an invalid body names its fields.
    let taken = app
        .send(
            Method::POST,
            "/api/v1/tenants",
            Some(&root),
            Some(json!({"name": "Other", "slug": "acme"})),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    let invalid = app
        .send(
            Method::POST,
            "/api/v1/tenants",
            Some(&root),
            Some(json!({"name": " ", "slug": "No Way", "settings": [1],
                        "admin": {"email": "x", "username": "u", "password": "short"}})),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    for field in ["name", "slug", "settings", "admin.email", "admin.password"] {
        assert!(
            invalid.body["errors"][field].is_array(),
            "{field}: {}",
            invalid.text
        );
    }
}

#[actix_web::test]
async fn login_to_a_foreign_unknown_or_inactive_tenant_is_one_and_the_same_403() {
    let app = spawn_app().await;
    let (root, _) = app.admin("root").await;
    create_tenant(&app, &root, "mine").await;
    create_tenant(&app, &root, "theirs").await;
    create_tenant(&app, &root, "closed").await;
    member(&app, &root, "mine", "ann", "member").await;
    member(&app, &root, "closed", "ann2", "member").await;
    let closed = app
        .send(
            Method::PATCH,
            "/api/v1/tenants/closed",
            Some(&root),
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.text);

    let mut answers = Vec::new();
    for (login, tenant) in [
        ("ann", "theirs"),
        ("ann", "nowhere"),
        ("ann2", "closed"),
        ("ann", "Not A Slug"),
    ] {
        let refused = app
            .post(
                "/api/v1/auth/login",
                json!({"login": login, "password": PASSWORD, "tenant": tenant}),
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{tenant}");
        answers.push((
            refused.body["type"].clone(),
            refused.body["title"].clone(),
            refused.body["detail"].clone(),
        ));
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "one answer for all: {answers:?}"
    );
    // The right password is still needed first.
    let wrong = app
        .post(
            "/api/v1/auth/login",
            json!({"login": "ann", "password": "wrong password 123", "tenant": "mine"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let ok = app
        .post(
            "/api/v1/auth/login",
            json!({"login": "ann", "password": PASSWORD, "tenant": "mine"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(claims(&access(&ok.body))["tenant_role"], "member");
}

/// The callers of the matrix, by the role they hold in the tenant `lab`.
const CALLERS: [&str; 6] = [
    "sysadmin",
    "admin",
    "moderator",
    "member",
    "viewer",
    "outsider",
];

/// Expected statuses, in the order of [`CALLERS`].
struct Row {
    what: &'static str,
    expect: [u16; 6],
}

#[actix_web::test]
async fn every_role_gets_what_the_policy_says_on_every_tenant_endpoint() {
    let app = spawn_app().await;
    let (root, _) = app.admin("root").await;
    create_tenant(&app, &root, "lab").await;
    let mut tokens = vec![root.clone()];
    for role in ["admin", "moderator", "member", "viewer"] {
        member(&app, &root, "lab", role, role).await;
        tokens.push(access(&app.login(role, PASSWORD).await));
    }
    let (outsider, _) = app.signed_in("outsider").await;
    tokens.push(outsider);

    let rows = [
        Row {
            what: "GET tenant",
            expect: [200, 200, 200, 200, 200, 404],
        },
        Row {
            what: "PATCH tenant",
            expect: [200, 200, 403, 403, 403, 404],
        },
        Row {
            what: "GET members",
            expect: [200, 200, 200, 200, 403, 404],
        },
        Row {
            what: "POST member as member",
            expect: [201, 201, 201, 403, 403, 404],
        },
        Row {
            what: "POST member as moderator",
            expect: [201, 201, 403, 403, 403, 404],
        },
        Row {
            what: "POST member as admin",
            expect: [201, 201, 403, 403, 403, 404],
        },
        Row {
            what: "PATCH member to viewer",
            expect: [200, 200, 200, 403, 403, 404],
        },
        Row {
            what: "PATCH member to moderator",
            expect: [200, 200, 403, 403, 403, 404],
        },
        Row {
            what: "DELETE member",
            expect: [204, 204, 204, 403, 403, 404],
        },
        Row {
            what: "DELETE moderator",
            expect: [204, 204, 403, 403, 403, 404],
        },
        Row {
            what: "GET member's user",
            expect: [200, 200, 200, 404, 404, 404],
        },
        Row {
            what: "GET member's tenants",
            expect: [200, 200, 200, 404, 404, 404],
        },
        Row {
            what: "GET audit of the tenant",
            expect: [200, 200, 403, 403, 403, 403],
        },
        Row {
            what: "GET users",
            expect: [200, 403, 403, 403, 403, 403],
        },
        Row {
            what: "DELETE tenant",
            expect: [204, 403, 403, 403, 403, 404],
        },
    ];
    let mut fresh = 0;
    for row in &rows {
        // Callers from the least to the most powerful, so a deletion by an allowed caller
        // comes after every refusal was checked.
        for index in (0..CALLERS.len()).rev() {
            let caller = CALLERS[index];
            let token = &tokens[index];
            fresh += 1;
            // A target of its own for each call that changes one.
            let target_role = match row.what {
                "PATCH member to viewer" | "PATCH member to moderator" | "DELETE member" => {
                    Some("member")
                }
                "DELETE moderator" => Some("moderator"),
                "GET member's user" | "GET member's tenants" => Some("member"),
                _ => None,
            };
            let target = match target_role {
                Some(role) => Some(member(&app, &root, "lab", &format!("t{fresh}"), role).await),
                None => None,
            };
            let target = target.unwrap_or_default();
            let new_user = if row.what.starts_with("POST member") {
                app.register(&format!("n{fresh}@example.com"), &format!("n{fresh}"))
                    .await["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            } else {
                String::new()
            };
            let (method, path, body) = match row.what {
                "GET tenant" => (Method::GET, "/api/v1/tenants/lab".to_owned(), None),
                "PATCH tenant" => (
                    Method::PATCH,
                    "/api/v1/tenants/lab".to_owned(),
                    Some(json!({"description": format!("by {caller}")})),
                ),
                "GET members" => (Method::GET, "/api/v1/tenants/lab/members".to_owned(), None),
                "POST member as member" | "POST member as moderator" | "POST member as admin" => (
                    Method::POST,
                    "/api/v1/tenants/lab/members".to_owned(),
                    Some(json!({"user_id": new_user,
                                "role": row.what.rsplit(' ').next().unwrap()})),
                ),
                "PATCH member to viewer" | "PATCH member to moderator" => (
                    Method::PATCH,
                    format!("/api/v1/tenants/lab/members/{target}"),
                    Some(json!({"role": row.what.rsplit(' ').next().unwrap()})),
                ),
                "DELETE member" | "DELETE moderator" => (
                    Method::DELETE,
                    format!("/api/v1/tenants/lab/members/{target}"),
                    None,
                ),
                "GET member's user" => (Method::GET, format!("/api/v1/users/{target}"), None),
                "GET member's tenants" => {
                    (Method::GET, format!("/api/v1/users/{target}/tenants"), None)
                }
                "GET audit of the tenant" => {
                    (Method::GET, "/api/v1/audit?tenant=lab".to_owned(), None)
                }
                "GET users" => (Method::GET, "/api/v1/users".to_owned(), None),
                "DELETE tenant" => (Method::DELETE, "/api/v1/tenants/lab".to_owned(), None),
                other => unreachable!("{other}"),
            };
            let response = app.send(method, &path, Some(token), body).await;
            assert_eq!(
                response.status.as_u16(),
                row.expect[index],
                "{} by {caller}: {}",
                row.what,
                response.text
            );
        }
    }
}

#[actix_web::test]
async fn another_tenant_answers_exactly_as_a_tenant_that_does_not_exist() {
    let app = spawn_app().await;
    let (root, _) = app.admin("root").await;
    create_tenant(&app, &root, "alpha").await;
    let beta = create_tenant(&app, &root, "beta").await;
    member(&app, &root, "alpha", "alice", "admin").await;
    let bobs_id = member(&app, &root, "beta", "bob", "member").await;
    let alice = access(&app.login("alice", PASSWORD).await);

    // Every tenant endpoint, on beta (by slug and by id) and on a tenant that does not exist.
    let beta_id = beta["id"].as_str().unwrap();
    let ghost_id = "0192f0c1-2b3c-7d4e-8f50-617283940a1b";
    let requests = |tenant: &str| {
        vec![
            (Method::GET, format!("/api/v1/tenants/{tenant}"), None),
            (
                Method::PATCH,
                format!("/api/v1/tenants/{tenant}"),
                Some(json!({"name": "Taken over"})),
            ),
            (Method::DELETE, format!("/api/v1/tenants/{tenant}"), None),
            (
                Method::GET,
                format!("/api/v1/tenants/{tenant}/members"),
                None,
            ),
            (
                Method::POST,
                format!("/api/v1/tenants/{tenant}/members"),
                Some(json!({"user_id": bobs_id, "role": "viewer"})),
            ),
            (
                Method::PATCH,
                format!("/api/v1/tenants/{tenant}/members/{bobs_id}"),
                Some(json!({"role": "admin"})),
            ),
            (
                Method::DELETE,
                format!("/api/v1/tenants/{tenant}/members/{bobs_id}"),
                None,
            ),
        ]
    };
    for tenant in ["beta", beta_id] {
        for ((method, path, body), (_, ghost_path, ghost_body)) in
            requests(tenant).into_iter().zip(requests(ghost_id))
        {
            let foreign = app.send(method.clone(), &path, Some(&alice), body).await;
            let ghost = app
                .send(method.clone(), &ghost_path, Some(&alice), ghost_body)
                .await;
            assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{method} {path}");
            assert_eq!(
                (
                    &foreign.body["type"],
                    &foreign.body["title"],
                    &foreign.body["detail"]
                ),
                (
                    &ghost.body["type"],
                    &ghost.body["title"],
                    &ghost.body["detail"]
                ),
                "{method} {path}: distinguishable from a missing tenant"
            );
        }
    }
    // Bob, in beta only, is invisible to alice, who administers alpha.
    let bob = app.get(&format!("/api/v1/users/{bobs_id}"), &alice).await;
    assert_eq!(bob.status, StatusCode::NOT_FOUND);
    // Nothing changed in beta.
    let still = app.get("/api/v1/tenants/beta", &root).await;
    assert_eq!(still.body["name"], "Tenant beta");
    let members = app.get("/api/v1/tenants/beta/members", &root).await;
    assert_eq!(members.body["total"], 1);
    assert_eq!(members.body["items"][0]["role"], "member");
    // Her tenant list holds alpha only.
    let listed = app.get("/api/v1/tenants", &alice).await;
    assert_eq!(listed.body["total"], 1);
    assert_eq!(listed.body["items"][0]["slug"], "alpha");
}

#[actix_web::test]
async fn a_demoted_or_removed_member_loses_the_rights_at_once() {
    let app = spawn_app().await;
    let (root, _) = app.admin("root").await;
    create_tenant(&app, &root, "lab").await;
    let carol = member(&app, &root, "lab", "carol", "admin").await;
    // A second admin, so that carol is not the last one.
    member(&app, &root, "lab", "dave", "admin").await;
    let scoped = app
        .post(
            "/api/v1/auth/login",
            json!({"login": "carol", "password": PASSWORD, "tenant": "lab"}),
        )
        .await;
    let token = access(&scoped.body);
    assert_eq!(claims(&token)["tenant_role"], "admin");
    let patch = |body: Value| {
        let token = token.clone();
        let app = &app;
        async move {
            app.send(
                Method::PATCH,
                "/api/v1/tenants/lab",
                Some(&token),
                Some(body),
            )
            .await
            .status
        }
    };
    assert_eq!(patch(json!({"description": "mine"})).await, StatusCode::OK);

    // Demoted to viewer: the token still says admin, the live membership decides.
    let demoted = app
        .send(
            Method::PATCH,
            &format!("/api/v1/tenants/lab/members/{carol}"),
            Some(&root),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.text);
    assert_eq!(demoted.body["role"], "viewer");
    assert_eq!(
        patch(json!({"description": "still mine?"})).await,
        StatusCode::FORBIDDEN
    );

    // Removed: the tenant is gone for her.
    let removed = app
        .send(
            Method::DELETE,
            &format!("/api/v1/tenants/lab/members/{carol}"),
            Some(&root),
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v1/tenants/lab", &token).await.status,
        StatusCode::NOT_FOUND
    );
    // And her scoped session cannot be refreshed into the tenant any more.
    let refreshed = app
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": scoped.body["refresh_token"]}),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn the_last_admin_of_a_tenant_cannot_be_demoted_or_removed() {
    let app = spawn_app().await;
    let (root, _) = app.admin("root").await;
    create_tenant(&app, &root, "lab").await;
    let dora = member(&app, &root, "lab", "dora", "admin").await;
    let dora_token = access(&app.login("dora", PASSWORD).await);
    for (method, body) in [
        (Method::PATCH, Some(json!({"role": "member"}))),
        (Method::DELETE, None),
    ] {
        let refused = app
            .send(
                method.clone(),
                &format!("/api/v1/tenants/lab/members/{dora}"),
                Some(&dora_token),
                body,
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::CONFLICT,
            "{method}: {}",
            refused.text
        );
    }
    // With a second admin, she may step down.
    member(&app, &root, "lab", "erin", "admin").await;
    let stepped = app
        .send(
            Method::PATCH,
            &format!("/api/v1/tenants/lab/members/{dora}"),
            Some(&dora_token),
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(stepped.status, StatusCode::OK, "{}", stepped.text);
    // And never back up by herself.
    let raised = app
        .send(
            Method::PATCH,
            &format!("/api/v1/tenants/lab/members/{dora}"),
            Some(&dora_token),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(raised.status, StatusCode::FORBIDDEN);
    // Deleting the remaining last admin's account is refused too, naming the tenant.
    let erin = app
        .send(Method::GET, "/api/v1/users?q=erin", Some(&root), None)
        .await;
    let erin_id = erin.body["items"][0]["id"].as_str().unwrap().to_owned();
    let deleted = app
        .send(
            Method::DELETE,
            &format!("/api/v1/users/{erin_id}"),
            Some(&root),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::CONFLICT);
    assert!(deleted.body["detail"].as_str().unwrap().contains("tenant"));
}

#[actix_web::test]
async fn concurrent_patches_with_one_etag_give_one_200_and_one_412() {
    let app = spawn_app().await;
    let (root, _) = app.admin("root").await;
    let (other_root, _) = app.admin("root2").await;
    let subject = app.register("subject@example.com", "subject").await;
    let path = format!("/api/v1/users/{}", subject["id"].as_str().unwrap());
    let tenant = create_tenant(&app, &root, "race").await;
    let tenant_path = format!("/api/v1/tenants/{}", tenant["id"].as_str().unwrap());
    for (path, field) in [
        (path.as_str(), "first_name"),
        (tenant_path.as_str(), "name"),
    ] {
        let read = app.get(path, &root).await;
        let etag = read.header("etag").unwrap().to_owned();
        let if_match = [("If-Match", etag.as_str())];
        let first = app.send_with(
            Method::PATCH,
            path,
            Some(&root),
            Some(json!({field: "First"})),
            &if_match,
        );
        let second = app.send_with(
            Method::PATCH,
            path,
            Some(&other_root),
            Some(json!({field: "Second"})),
            &if_match,
        );
        let (first, second) = futures_join(first, second).await;
        let mut statuses = [first.status.as_u16(), second.status.as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 412], "{path}");
        let winner = if first.status == StatusCode::OK {
            "First"
        } else {
            "Second"
        };
        let now = app.get(path, &root).await;
        assert_eq!(now.body[field], winner, "{path}: the 412 changed nothing");
    }
}

/// Both futures, polled together.
async fn futures_join<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    tokio::join!(a, b)
}

#[actix_web::test]
async fn a_token_scoped_to_one_tenant_reaches_that_tenant_only() {
    let app = spawn_app().await;
    let (root, _) = app.admin("root").await;
    let alpha = create_tenant(&app, &root, "alpha").await;
    create_tenant(&app, &root, "beta").await;
    member(&app, &root, "alpha", "nina", "admin").await;
    let nina_id = app.get("/api/v1/users?q=nina", &root).await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let joined = app
        .send(
            Method::POST,
            "/api/v1/tenants/beta/members",
            Some(&root),
            Some(json!({"user_id": nina_id, "role": "admin"})),
        )
        .await;
    assert_eq!(joined.status, StatusCode::CREATED);
    let unscoped = access(&app.login("nina", PASSWORD).await);
    assert_eq!(app.get("/api/v1/tenants", &unscoped).await.body["total"], 2);
    let scoped = app
        .post(
            "/api/v1/auth/login",
            json!({"login": "nina", "password": PASSWORD, "tenant": "alpha"}),
        )
        .await;
    let token = access(&scoped.body);

    assert_eq!(
        app.get("/api/v1/tenants/alpha", &token).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/tenants/beta", &token).await.status,
        StatusCode::NOT_FOUND,
        "beta is out of the token's scope"
    );
    let listed = app.get("/api/v1/tenants", &token).await;
    assert_eq!(listed.body["total"], 1);
    assert_eq!(listed.body["items"][0]["id"], alpha["id"]);
    let renamed = app
        .send(
            Method::PATCH,
            "/api/v1/tenants/beta",
            Some(&token),
            Some(json!({"name": "Not from here"})),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::NOT_FOUND);
    // The trail: its own tenant's events, whether named or not; another tenant's, refused.
    let own = app.get("/api/v1/audit", &token).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    let items = own.body["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(
        items.iter().all(|e| e["tenant_id"] == alpha["id"]),
        "{}",
        own.text
    );
    assert_eq!(
        app.get("/api/v1/audit?tenant=beta", &token).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/api/v1/audit?tenant=beta", &unscoped).await.status,
        StatusCode::OK
    );
    // Users: one in beta only is out of scope; one in both shows its alpha membership only.
    let bo = member(&app, &root, "beta", "bodo", "member").await;
    assert_eq!(
        app.get(&format!("/api/v1/users/{bo}"), &unscoped)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/api/v1/users/{bo}"), &token).await.status,
        StatusCode::NOT_FOUND
    );
    let both = member(&app, &root, "alpha", "bea", "member").await;
    let joined = app
        .send(
            Method::POST,
            "/api/v1/tenants/beta/members",
            Some(&root),
            Some(json!({"user_id": both, "role": "member"})),
        )
        .await;
    assert_eq!(joined.status, StatusCode::CREATED);
    let theirs = app
        .get(&format!("/api/v1/users/{both}/tenants"), &token)
        .await;
    assert_eq!(theirs.body["total"], 1, "{}", theirs.text);
    assert_eq!(theirs.body["items"][0]["tenant"]["slug"], "alpha");
    let unscoped_view = app
        .get(&format!("/api/v1/users/{both}/tenants"), &unscoped)
        .await;
    assert_eq!(unscoped_view.body["total"], 2);
}
