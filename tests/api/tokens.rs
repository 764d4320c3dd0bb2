//! The OAuth2 token endpoint, JSON login, refresh rotation and reuse
//! detection, revocation and logout.

use serde_json::json;

use crate::helpers::{PASSWORD, Tokens, problem, spawn_app};

#[tokio::test]
async fn login_works_by_username_and_by_email_whatever_the_case() {
    let app = spawn_app(&[]).await;
    app.register("ada_l").await;
    for name in ["ada_l", "ADA_L", "ada_l@example.org", "Ada_L@Example.org"] {
        let response = app.token_request(name, PASSWORD).await;
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.headers()["pragma"], "no-cache");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "bearer");
        assert_eq!(body["expires_in"], 900);
        assert!(
            body["refresh_token"]
                .as_str()
                .unwrap()
                .starts_with("pal_rt_")
        );
        assert_eq!(body["access_token"].as_str().unwrap().split('.').count(), 3);
    }
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_answer() {
    let app = spawn_app(&[]).await;
    app.register("ada_l").await;
    let wrong = app.token_request("ada_l", "not the password at all").await;
    let unknown = app
        .token_request("nobody_here", "not the password at all")
        .await;
    assert_eq!(wrong.status(), 400);
    assert_eq!(unknown.status(), 400);
    let (a, b) = (wrong.text().await.unwrap(), unknown.text().await.unwrap());
    assert_eq!(a, b);
    assert_eq!(
        a,
        r#"{"error":"invalid_grant","error_description":"Invalid username or password"}"#
    );
    let json_wrong = app
        .post_json(
            "/auth/login",
            &json!({"username": "ada_l", "password": "nope nope nope"}),
        )
        .await;
    let json_unknown = app
        .post_json(
            "/auth/login",
            &json!({"username": "nobody", "password": "nope nope nope"}),
        )
        .await;
    let (a, b) = (
        problem(json_wrong, 401).await,
        problem(json_unknown, 401).await,
    );
    assert_eq!(a["detail"], b["detail"]);
}

#[tokio::test]
async fn a_disabled_account_cannot_log_in_and_looks_like_a_wrong_password() {
    let app = spawn_app(&[]).await;
    app.register("ada_l").await;
    sqlx::query("UPDATE users SET disabled = 1")
        .execute(app.db())
        .await
        .unwrap();
    let response = app.token_request("ada_l", PASSWORD).await;
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"error":"invalid_grant","error_description":"Invalid username or password"}"#
    );
}

#[tokio::test]
async fn json_login_returns_the_same_tokens() {
    let app = spawn_app(&[]).await;
    app.register("ada_l").await;
    let response = app
        .post_json(
            "/auth/login",
            &json!({"username": "ada_l", "password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let tokens: Tokens = response.json().await.unwrap();
    assert_eq!(app.get_profile(&tokens.access_token).await.status(), 200);
    let extra = app
        .post_json(
            "/auth/login",
            &json!({"username": "ada_l", "password": PASSWORD, "role": "admin"}),
        )
        .await;
    problem(extra, 422).await;
}

#[tokio::test]
async fn token_endpoint_errors_follow_rfc_6749() {
    let app = spawn_app(&[("PALISADE_RATE_LIMIT_POLICIES", "login=1000/minute per ip")]).await;
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "invalid_request"),
        (
            vec![("grant_type", "client_credentials")],
            "unsupported_grant_type",
        ),
        (
            vec![("grant_type", "password"), ("username", "ada")],
            "invalid_request",
        ),
        (vec![("grant_type", "refresh_token")], "invalid_request"),
        (
            vec![
                ("grant_type", "password"),
                ("username", "a"),
                ("password", "b"),
                ("scope", "admin"),
            ],
            "invalid_scope",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "pal_rt_forged"),
            ],
            "invalid_grant",
        ),
    ];
    for (form, error) in cases {
        let response = app.post_form("/auth/token", &form).await;
        assert_eq!(response.status(), 400, "{form:?}");
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], error, "{form:?}");
        assert!(body["error_description"].is_string());
    }
    let twice = app
        .client
        .post(app.url("/auth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=password&username=a&password=b&password=c")
        .send()
        .await
        .unwrap();
    assert_eq!(
        twice.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let json_body = app
        .post_json("/auth/token", &json!({"grant_type": "password"}))
        .await;
    assert_eq!(
        json_body.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );
}

#[tokio::test]
async fn a_refresh_rotates_both_tokens() {
    let app = spawn_app(&[]).await;
    app.register("ada_l").await;
    let first = app.login("ada_l").await;
    let response = app.refresh(&first.refresh_token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let second: Tokens = response.json().await.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(app.get_profile(&second.access_token).await.status(), 200);
    let third: Tokens = app
        .refresh(&second.refresh_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(app.get_profile(&third.access_token).await.status(), 200);
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_ends_the_whole_session() {
    let app = spawn_app(&[]).await;
    app.register("ada_l").await;
    let stolen = app.login("ada_l").await;
    let legit: Tokens = app
        .refresh(&stolen.refresh_token)
        .await
        .json()
        .await
        .unwrap();
    // The thief replays the old token: refused, and the family is burnt.
    let replay = app.refresh(&stolen.refresh_token).await;
    assert_eq!(
        replay.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    assert_eq!(
        app.refresh(&legit.refresh_token).await.status(),
        400,
        "the newer token died too"
    );
    assert_eq!(
        app.get_profile(&legit.access_token).await.status(),
        401,
        "and the session's access tokens"
    );
    let reason: String = sqlx::query_scalar("SELECT end_reason FROM sessions")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(reason, "reuse_detected");
    // Another login is unaffected.
    let other = app.login("ada_l").await;
    assert_eq!(app.get_profile(&other.access_token).await.status(), 200);
}

#[tokio::test]
async fn two_concurrent_uses_of_one_refresh_token_give_exactly_one_success() {
    let app = spawn_app(&[]).await;
    app.register("ada_l").await;
    for _ in 0..5 {
        let tokens = app.login("ada_l").await;
        let (a, b) = tokio::join!(
            app.refresh(&tokens.refresh_token),
            app.refresh(&tokens.refresh_token)
        );
        let ok = [a.status(), b.status()]
            .iter()
            .filter(|s| s.as_u16() == 200)
            .count();
        assert_eq!(ok, 1, "{} and {}", a.status(), b.status());
    }
}

#[tokio::test]
async fn logout_kills_both_tokens_of_the_session_only() {
    let app = spawn_app(&[]).await;
    app.register("ada_l").await;
    let mine = app.login("ada_l").await;
    let other = app.login("ada_l").await;
    let response = app
        .client
        .post(app.url("/auth/logout"))
        .bearer_auth(&mine.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(app.get_profile(&mine.access_token).await.status(), 401);
    assert_eq!(app.refresh(&mine.refresh_token).await.status(), 400);
    assert_eq!(app.get_profile(&other.access_token).await.status(), 200);
    let anonymous = app
        .client
        .post(app.url("/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    problem(anonymous, 401).await;
}

#[tokio::test]
async fn revoking_a_refresh_or_access_token_ends_its_session() {
    let app = spawn_app(&[]).await;
    app.register("ada_l").await;
    let a = app.login("ada_l").await;
    let response = app
        .post_form(
            "/auth/revoke",
            &[
                ("token", &a.refresh_token),
                ("token_type_hint", "refresh_token"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.refresh(&a.refresh_token).await.status(), 400);
    assert_eq!(app.get_profile(&a.access_token).await.status(), 401);

    let b = app.login("ada_l").await;
    assert_eq!(
        app.post_form("/auth/revoke", &[("token", &b.access_token)])
            .await
            .status(),
        200
    );
    assert_eq!(app.get_profile(&b.access_token).await.status(), 401);
    assert_eq!(app.refresh(&b.refresh_token).await.status(), 400);

    // Unknown tokens are "revoked" too (RFC 7009 §2.2); a missing one is a bad request.
    assert_eq!(
        app.post_form("/auth/revoke", &[("token", "pal_rt_nothing")])
            .await
            .status(),
        200
    );
    assert_eq!(
        app.post_form("/auth/revoke", &[("token", "garbage")])
            .await
            .status(),
        200
    );
    let missing = app
        .post_form("/auth/revoke", &[("token_type_hint", "refresh_token")])
        .await;
    assert_eq!(missing.status(), 400);
    assert_eq!(
        missing.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );
}

#[tokio::test]
async fn only_the_hash_of_a_refresh_token_is_stored() {
    let app = spawn_app(&[]).await;
    app.register("ada_l").await;
    let tokens = app.login("ada_l").await;
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM refresh_tokens")
        .fetch_all(app.db())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], tokens.refresh_token);
    assert_eq!(
        stored[0],
        palisade::auth::refresh::hash(&tokens.refresh_token)
    );
}

#[tokio::test]
async fn a_passlib_bcrypt_hash_logs_in_and_is_upgraded_to_argon2id() {
    let app = spawn_app(&[]).await;
    app.register("ada_l").await;
    // passlib CryptContext(schemes=["bcrypt"], bcrypt__rounds=12).hash("correct horse battery staple")
    let passlib = "$2b$12$rmEG43Pe.qK6yEeW8DyzOOI0bkYOsCkBKP0X1TWVB66EAfrzW2RfG";
    sqlx::query("UPDATE users SET password_hash = $1")
        .bind(passlib)
        .execute(app.db())
        .await
        .unwrap();
    assert_eq!(
        app.token_request("ada_l", "wrong horse battery staple")
            .await
            .status(),
        400
    );
    let tokens = app.login("ada_l").await;
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
    assert_eq!(
        app.get_profile(&tokens.access_token).await.status(),
        200,
        "an upgrade is not a password change"
    );
    app.login("ada_l").await;
}

#[tokio::test]
async fn argon2id_hashes_with_old_parameters_are_upgraded() {
    let app = spawn_app(&[]).await;
    app.register("ada_l").await;
    let old = palisade::auth::hashing::Hasher::new(
        palisade::settings::Argon2Settings {
            memory_kib: 32,
            iterations: 1,
            parallelism: 1,
        },
        1,
        0,
    )
    .unwrap()
    .hash(PASSWORD.to_owned())
    .await
    .unwrap();
    sqlx::query("UPDATE users SET password_hash = $1")
        .bind(&old)
        .execute(app.db())
        .await
        .unwrap();
    app.login("ada_l").await;
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
}

#[tokio::test]
async fn production_parameters_are_the_owasp_ones() {
    let app = spawn_app(&[
        ("PALISADE_ARGON2_MEMORY_KIB", "19456"),
        ("PALISADE_ARGON2_ITERATIONS", "2"),
    ])
    .await;
    app.register("ada_l").await;
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    app.login("ada_l").await;
}

#[tokio::test]
async fn a_saturated_hashing_pool_answers_503_rather_than_hanging() {
    let app = spawn_app(&[
        ("PALISADE_HASH_CONCURRENCY", "1"),
        ("PALISADE_HASH_QUEUE", "0"),
        ("PALISADE_ARGON2_MEMORY_KIB", "65536"),
        ("PALISADE_ARGON2_ITERATIONS", "3"),
        ("PALISADE_RATE_LIMIT_POLICIES", "login=1000/minute per ip"),
    ])
    .await;
    let attempts = (0..6).map(|n| {
        let name = format!("nobody{n}");
        let app = &app;
        async move {
            app.token_request(&name, "whatever whatever")
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        futures_util::future::join_all(attempts),
    )
    .await
    .expect("the pool hung");
    assert!(statuses.contains(&503), "{statuses:?}");
    assert!(statuses.contains(&400), "{statuses:?}");
}

#[tokio::test]
async fn within_the_grace_interval_a_replay_is_refused_without_ending_the_session() {
    let app = spawn_app(&[("PALISADE_REFRESH_REUSE_GRACE", "30s")]).await;
    app.register("ada_l").await;
    let first = app.login("ada_l").await;
    let next: Tokens = app
        .refresh(&first.refresh_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(app.refresh(&first.refresh_token).await.status(), 400);
    assert_eq!(
        app.refresh(&next.refresh_token).await.status(),
        200,
        "the racing client's session lives on"
    );
}
