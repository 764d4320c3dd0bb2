//! API keys: made by an access token and shown once, stored as SHA-256,
//! used as `Bearer pal_ak_...` on the routes that name a scope, never
//! above the owner's current role, dead at once when deleted, expired, or
//! when the owner is disabled or demoted; never able to manage keys,
//! sessions, passwords, MFA or roles.

use serde_json::{Value, json};

use crate::helpers::{TestApp, Tokens, problem, spawn_app};

async fn make(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/api-keys"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn key(app: &TestApp, token: &str, scopes: &[&str]) -> Value {
    let response = make(app, token, &json!({"name": "ci", "scopes": scopes})).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// An admin's access token (made with the CLI's rules bypassed in SQL).
async fn admin(app: &TestApp, name: &str) -> Tokens {
    app.register(name).await;
    sqlx::query("UPDATE users SET role = 'admin' WHERE username = $1")
        .bind(name)
        .execute(app.db())
        .await
        .unwrap();
    app.login(name).await
}

async fn call(app: &TestApp, method: &str, path: &str, bearer: &str) -> u16 {
    let request = match method {
        "GET" => app.client.get(app.url(path)),
        "POST" => app
            .client
            .post(app.url(path))
            .json(&json!({"prompt": "hello there"})),
        "DELETE" => app.client.delete(app.url(path)),
        _ => unreachable!(),
    };
    request
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_key_is_shown_once_stored_as_a_digest_and_works_within_its_scopes() {
    let app = spawn_app(&[]).await;
    app.register("machinist").await;
    let tokens = app.login("machinist").await;
    let made = key(&app, &tokens.access_token, &["profile:read", "ai:generate"]).await;
    let secret = made["key"].as_str().unwrap();
    assert!(secret.starts_with("pal_ak_") && secret.len() == 50);
    assert!(secret.starts_with(made["prefix"].as_str().unwrap()));
    assert_eq!(made["scopes"], json!(["profile:read", "ai:generate"]));
    assert!(made["last_used_at"].is_null());
    let stored: Vec<(String,)> = sqlx::query_as("SELECT key_hash FROM api_keys")
        .fetch_all(app.db())
        .await
        .unwrap();
    assert!(
        stored
            .iter()
            .all(|(h,)| h.len() == 64 && !h.contains(&secret[7..]))
    );

    let profile = app.get_profile(secret).await;
    assert_eq!(profile.status(), 200);
    let me: Value = profile.json().await.unwrap();
    assert_eq!(me["username"], "machinist");
    assert_eq!(call(&app, "POST", "/ai/generate", secret).await, 200);
    // No scope for these: the admin reads, and routes that name none.
    assert_eq!(call(&app, "GET", "/users", secret).await, 403);
    for path in ["/sessions", "/api-keys", "/mfa/totp"] {
        let method = if path == "/mfa/totp" { "POST" } else { "GET" };
        let status = call(&app, method, path, secret).await;
        assert_eq!(status, 403, "{method} {path}");
    }
    let refused = problem(
        make(
            &app,
            secret,
            &json!({"name": "x", "scopes": ["profile:read"]}),
        )
        .await,
        403,
    )
    .await;
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("API keys cannot")
    );

    // The list never shows the key; use is recorded.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let list: Value = app
        .get_as(&app.url("/api-keys"), &tokens.access_token)
        .await
        .json()
        .await
        .unwrap();
    let item = &list["items"][0];
    assert!(item.get("key").is_none());
    assert!(item["last_used_at"].is_string(), "{item}");
    assert!(!list.to_string().contains(&secret[7..]));
}

#[tokio::test]
async fn a_key_dies_at_once_when_deleted_expired_or_its_owner_is_disabled() {
    let app = spawn_app(&[]).await;
    app.register("keyholder").await;
    let tokens = app.login("keyholder").await;
    let at = &tokens.access_token;
    let deleted = key(&app, at, &["profile:read"]).await;
    let expired = key(&app, at, &["profile:read"]).await;
    let disabled = key(&app, at, &["profile:read"]).await;
    for k in [&deleted, &expired, &disabled] {
        assert_eq!(
            app.get_profile(k["key"].as_str().unwrap()).await.status(),
            200
        );
    }
    let id = deleted["id"].as_str().unwrap();
    assert_eq!(
        app.delete_as(&app.url(&format!("/api-keys/{id}")), at)
            .await
            .status(),
        204
    );
    assert_eq!(
        app.get_profile(deleted["key"].as_str().unwrap())
            .await
            .status(),
        401
    );
    assert_eq!(
        app.delete_as(&app.url(&format!("/api-keys/{id}")), at)
            .await
            .status(),
        404
    );

    sqlx::query("UPDATE api_keys SET expires_at = 1 WHERE id = $1")
        .bind(expired["id"].as_str().unwrap())
        .execute(app.db())
        .await
        .unwrap();
    assert_eq!(
        app.get_profile(expired["key"].as_str().unwrap())
            .await
            .status(),
        401
    );

    sqlx::query("UPDATE users SET disabled = 1 WHERE username = 'keyholder'")
        .execute(app.db())
        .await
        .unwrap();
    assert_eq!(
        app.get_profile(disabled["key"].as_str().unwrap())
            .await
            .status(),
        401
    );
    // A made-up key: the same 401.
    let made_up = format!("pal_ak_{}", "B".repeat(43));
    assert_eq!(app.get_profile(&made_up).await.status(), 401);
}

#[tokio::test]
async fn another_users_key_cannot_be_deleted_and_bad_requests_are_refused() {
    let app = spawn_app(&[]).await;
    app.register("owner_one").await;
    app.register("owner_two").await;
    let one = app.login("owner_one").await;
    let two = app.login("owner_two").await;
    let k = key(&app, &one.access_token, &["profile:read"]).await;
    let id = k["id"].as_str().unwrap();
    assert_eq!(
        app.delete_as(&app.url(&format!("/api-keys/{id}")), &two.access_token)
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get_profile(k["key"].as_str().unwrap()).await.status(),
        200
    );

    for (body, field) in [
        (json!({"name": "", "scopes": ["profile:read"]}), "name"),
        (json!({"name": "x", "scopes": []}), "scopes"),
        (json!({"name": "x", "scopes": ["users:write"]}), "scopes"),
        (json!({"name": "x", "scopes": ["users:read"]}), "scopes"),
        (
            json!({"name": "x", "scopes": ["profile:read"], "expires_in_days": 366}),
            "expires_in_days",
        ),
        (
            json!({"name": "x", "scopes": ["profile:read"], "expires_in_days": 0}),
            "expires_in_days",
        ),
    ] {
        let body = problem(make(&app, &one.access_token, &body).await, 422).await;
        assert_eq!(body["errors"][0]["field"], field, "{body}");
    }
    let unknown = make(
        &app,
        &one.access_token,
        &json!({"name": "x", "scopes": ["profile:read"], "role": "admin"}),
    )
    .await;
    problem(unknown, 422).await;
    let k = key(&app, &one.access_token, &["data:read"]).await;
    let expires = k["expires_at"].as_str().unwrap();
    let created = k["created_at"].as_str().unwrap();
    let days =
        (time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339)
            .unwrap()
            - time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
                .unwrap())
        .whole_days();
    assert_eq!(days, 90, "the default life");
}

/// Every scope against every route that names one, for a user's and an
/// admin's keys; and the admin's key stops when the admin is demoted.
#[tokio::test]
async fn the_scope_matrix_holds_and_a_demoted_owners_key_loses_its_reach() {
    let app = spawn_app(&[]).await;
    let boss = admin(&app, "keyboss").await;
    app.register("keyuser").await;
    let user = app.login("keyuser").await;
    let routes: [(&str, &str, &str); 5] = [
        ("GET", "/profile", "profile:read"),
        ("POST", "/ai/generate", "ai:generate"),
        ("GET", "/users", "users:read"),
        (
            "GET",
            "/users/0195f3b2-7c1e-7d4a-9b7e-2f1c3d4e5f60",
            "users:read",
        ),
        ("GET", "/audit-log", "audit:read"),
    ];
    for scope in [
        "profile:read",
        "ai:generate",
        "data:read",
        "users:read",
        "audit:read",
    ] {
        let admin_key = key(&app, &boss.access_token, &[scope]).await;
        let admin_key = admin_key["key"].as_str().unwrap().to_owned();
        let user_key = if scope.starts_with("users") || scope.starts_with("audit") {
            None
        } else {
            Some(
                key(&app, &user.access_token, &[scope]).await["key"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        };
        for (method, path, needs) in routes {
            let expected_ok = if path.starts_with("/users/") {
                404
            } else {
                200
            };
            let status = call(&app, method, path, &admin_key).await;
            let want = if needs == scope { expected_ok } else { 403 };
            assert_eq!(status, want, "admin key {scope} on {method} {path}");
            if let Some(user_key) = &user_key {
                let status = call(&app, method, path, user_key).await;
                let want = if needs == scope { expected_ok } else { 403 };
                assert_eq!(status, want, "user key {scope} on {method} {path}");
            }
        }
        // Never the writes of the administration API.
        assert_eq!(
            call(
                &app,
                "DELETE",
                "/users/0195f3b2-7c1e-7d4a-9b7e-2f1c3d4e5f60",
                &admin_key
            )
            .await,
            403
        );
    }
    let reader = key(&app, &boss.access_token, &["users:read", "audit:read"]).await;
    let reader = reader["key"].as_str().unwrap();
    assert_eq!(call(&app, "GET", "/users", reader).await, 200);
    sqlx::query("UPDATE users SET role = 'user' WHERE username = 'keyboss'")
        .execute(app.db())
        .await
        .unwrap();
    assert_eq!(call(&app, "GET", "/users", reader).await, 403);
    assert_eq!(call(&app, "GET", "/audit-log", reader).await, 403);
}

#[tokio::test]
async fn rate_limits_count_each_key_on_its_own() {
    let app = spawn_app(&[("PALISADE_RATE_LIMIT_POLICIES", "ai=2/hour per user")]).await;
    app.register("limited_keys").await;
    let tokens = app.login("limited_keys").await;
    let first = key(&app, &tokens.access_token, &["ai:generate"]).await;
    let second = key(&app, &tokens.access_token, &["ai:generate"]).await;
    let (first, second) = (
        first["key"].as_str().unwrap(),
        second["key"].as_str().unwrap(),
    );
    assert_eq!(call(&app, "POST", "/ai/generate", first).await, 200);
    assert_eq!(call(&app, "POST", "/ai/generate", first).await, 200);
    assert_eq!(call(&app, "POST", "/ai/generate", first).await, 429);
    assert_eq!(call(&app, "POST", "/ai/generate", second).await, 200);
}
