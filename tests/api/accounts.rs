//! Registration rules, mass assignment, the profile and the destructive
//! acts, over real HTTP on a real SQLite file.

use serde_json::json;

use crate::helpers::{PASSWORD, problem, spawn_app};

fn body(email: &str, username: &str, name: &str, password: &str) -> serde_json::Value {
    json!({"email": email, "username": username, "name": name, "password": password})
}

async fn field_errors(response: reqwest::Response) -> Vec<String> {
    let body = problem(response, 422).await;
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_valid_registration_returns_the_user_and_never_a_hash() {
    let app = spawn_app(&[]).await;
    let response = app
        .post_json(
            "/auth/register",
            &body("  Ada@Example.ORG ", "ada_l", "Ada Lovelace", PASSWORD),
        )
        .await;
    assert_eq!(response.status(), 201);
    let user: serde_json::Value = response.json().await.unwrap();
    let keys: Vec<&String> = user.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "created_at",
            "disabled",
            "email",
            "email_verified",
            "id",
            "name",
            "role",
            "updated_at",
            "username"
        ]
    );
    assert_eq!(user["email_verified"], false);
    assert_eq!(user["email"], "Ada@example.org");
    assert_eq!(user["role"], "user");
    assert_eq!(user["disabled"], false);
    assert!(uuid::Uuid::parse_str(user["id"].as_str().unwrap()).is_ok());
    assert!(user["created_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn each_field_rule_refuses_bad_input_and_names_the_field() {
    let app = spawn_app(&[]).await;
    let cases = [
        (body("not-an-email", "ada_l", "Ada", PASSWORD), "email"),
        (body("ada@", "ada_l", "Ada", PASSWORD), "email"),
        (body("ada@example.org", "ad", "Ada", PASSWORD), "username"),
        (
            body(
                "ada@example.org",
                "ada'; DROP TABLE users;--",
                "Ada",
                PASSWORD,
            ),
            "username",
        ),
        (
            body("ada@example.org", &"a".repeat(51), "Ada", PASSWORD),
            "username",
        ),
        (body("ada@example.org", "ada_l", "", PASSWORD), "name"),
        (
            body("ada@example.org", "ada_l", "Ada\u{7}", PASSWORD),
            "name",
        ),
        (
            body("ada@example.org", "ada_l", &"n".repeat(101), PASSWORD),
            "name",
        ),
        (
            body("ada@example.org", "ada_l", "Ada", "Tr0ub4dor&3"),
            "password",
        ),
        (
            body(
                "ada@example.org",
                "ada_l",
                "Ada",
                &"horse battery ".repeat(10),
            ),
            "password",
        ),
        (
            body("ada@example.org", "ada_l", "Ada", "1qaz2wsx3edc"),
            "password",
        ),
        (
            body("ada@example.org", "ada_l", "Ada", "aaaaaaaaaaaaaaaa"),
            "password",
        ),
        (
            body(
                "ada@example.org",
                "zebra_king",
                "Ada",
                "ZEBRA_KING staple battery",
            ),
            "password",
        ),
        (
            body(
                "grace.hopper@example.org",
                "ada_l",
                "Ada",
                "grace.hopper quantum harp",
            ),
            "password",
        ),
    ];
    for (input, field) in cases {
        let response = app.post_json("/auth/register", &input).await;
        assert_eq!(field_errors(response).await, [field], "{input}");
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(count, 0, "a refused registration changed nothing");
}

#[tokio::test]
async fn every_invalid_field_is_reported_at_once() {
    let app = spawn_app(&[]).await;
    let response = app.post_json("/auth/register", &json!({"email": "x", "username": "a", "name": "", "password": "short", "role": "admin"})).await;
    assert_eq!(
        field_errors(response).await,
        ["email", "username", "name", "password", "role"]
    );
}

#[tokio::test]
async fn only_self_registration_roles_are_accepted() {
    let app = spawn_app(&[]).await;
    for role in ["admin", "super_admin", "Admin", "root", ""] {
        let mut input = body("ada@example.org", "ada_l", "Ada", PASSWORD);
        input["role"] = json!(role);
        let response = app.post_json("/auth/register", &input).await;
        assert_eq!(field_errors(response).await, ["role"], "{role}");
    }
    let mut input = body("ada@example.org", "ada_l", "Ada", PASSWORD);
    input["role"] = json!("editor");
    let user: serde_json::Value = app
        .post_json("/auth/register", &input)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["role"], "editor");
}

#[tokio::test]
async fn the_self_registration_allowlist_is_a_setting() {
    let app = spawn_app(&[("PALISADE_SELF_REGISTRATION_ROLES", "user")]).await;
    let mut input = body("ada@example.org", "ada_l", "Ada", PASSWORD);
    input["role"] = json!("editor");
    assert_eq!(
        field_errors(app.post_json("/auth/register", &input).await).await,
        ["role"]
    );
}

#[tokio::test]
async fn mass_assignment_is_refused() {
    let app = spawn_app(&[]).await;
    for (extra, value) in [
        ("id", json!("00000000-0000-7000-8000-000000000000")),
        ("created_at", json!("2000-01-01T00:00:00Z")),
        ("disabled", json!(false)),
        ("is_admin", json!(true)),
        ("password_hash", json!("$argon2id$x")),
    ] {
        let mut input = body("ada@example.org", "ada_l", "Ada", PASSWORD);
        input[extra] = value;
        let response = app.post_json("/auth/register", &input).await;
        let problem = problem(response, 422).await;
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(extra),
            "{problem}"
        );
    }
}

#[tokio::test]
async fn a_taken_email_or_username_is_a_conflict_whatever_its_case() {
    let app = spawn_app(&[]).await;
    app.register("ada_l").await;
    let same_email = app
        .post_json(
            "/auth/register",
            &body("ADA_L@EXAMPLE.ORG", "other", "Ada", PASSWORD),
        )
        .await;
    assert!(
        problem(same_email, 409).await["detail"]
            .as_str()
            .unwrap()
            .contains("email")
    );
    let same_username = app
        .post_json(
            "/auth/register",
            &body("other@example.org", "ADA_L", "Ada", PASSWORD),
        )
        .await;
    assert!(
        problem(same_username, 409).await["detail"]
            .as_str()
            .unwrap()
            .contains("username")
    );
}

/// Addresses that differ only by compatibility forms or case are one
/// account's: at registration (409) and at login; a domain mixing scripts
/// is refused. Each pair below registered twice before the keys were
/// folded.
#[tokio::test]
async fn emails_equal_under_nfkc_and_case_folding_are_one_account() {
    let app = spawn_app(&[]).await;
    let pairs = [
        ("ＡＤＡ@example.org", "ada@example.org"),
        ("ﬁnn@example.org", "FINN@example.org"),
        ("straße@example.org", "STRASSE@example.org"),
        ("\u{212A}im@example.org", "kim@example.org"),
        ("\u{130}lker@example.org", "\u{130}LKER@EXAMPLE.ORG"),
        ("zoe@bücher.example", "ZOE@xn--bcher-kva.example"),
    ];
    for (i, (first, second)) in pairs.iter().enumerate() {
        let username = format!("user_{i}");
        let created = app
            .post_json("/auth/register", &body(first, &username, "Ada", PASSWORD))
            .await;
        assert_eq!(created.status(), 201, "{first}: {:?}", created.text().await);
        let again = app
            .post_json(
                "/auth/register",
                &body(second, &format!("other_{i}"), "Ada", PASSWORD),
            )
            .await;
        assert!(
            problem(again, 409).await["detail"]
                .as_str()
                .unwrap()
                .contains("email"),
            "{second} after {first}"
        );
        // Logging in with the other form finds the account.
        let token = app.token_request(second, PASSWORD).await;
        assert_eq!(token.status(), 200, "login as {second}");
    }
    // Stored as given.
    let stored: String = sqlx::query_scalar("SELECT email FROM users WHERE username = 'user_2'")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(stored, "straße@example.org");
    // Dotless ı is another letter: another account.
    let dotless = app
        .post_json(
            "/auth/register",
            &body("\u{131}da@example.org", "dotless", "Ada", PASSWORD),
        )
        .await;
    assert_eq!(dotless.status(), 201);
    let dotted = app
        .post_json(
            "/auth/register",
            &body("ida@example.org", "dotted", "Ada", PASSWORD),
        )
        .await;
    assert_eq!(dotted.status(), 201);

    // A Latin domain with a Cyrillic "а" in it, as Unicode or punycode.
    let punycode = idna::domain_to_ascii("p\u{430}ypal.com").unwrap();
    for mixed in ["eve@p\u{430}ypal.com".to_owned(), format!("eve@{punycode}")] {
        let refused = app
            .post_json(
                "/auth/register",
                &body(&mixed, "eve_mixed", "Eve", PASSWORD),
            )
            .await;
        let errors = problem(refused, 422).await;
        assert!(
            errors.to_string().contains("mixes scripts"),
            "{mixed}: {errors}"
        );
    }
}

/// Accounts made before the keys were folded get today's key once, at
/// start-up; two accounts that are now one keep apart (the second keeps
/// its old key) rather than stopping the server.
#[tokio::test]
async fn stored_email_keys_are_recomputed_once_and_collisions_are_kept_apart() {
    let app = spawn_app(&[]).await;
    app.register("old_fold").await;
    app.register("holder").await;
    app.register("latecomer").await;
    let pool = app.db();
    // As the old rules stored them: lower-cased only.
    for (username, email) in [
        ("old_fold", "ＯＬＤ@example.org"),
        ("holder", "strasse@example.org"),
        ("latecomer", "Straße@example.org"),
    ] {
        sqlx::query("UPDATE users SET email = $1, email_key = $2 WHERE username = $3")
            .bind(email)
            .bind(email.to_lowercase())
            .bind(username)
            .execute(pool)
            .await
            .unwrap();
    }
    sqlx::query("DELETE FROM maintenance")
        .execute(pool)
        .await
        .unwrap();

    let report = palisade::storage::users::rekey_emails(pool).await.unwrap();
    assert_eq!(report.changed, 1, "{report:?}");
    assert_eq!(report.collisions, 1, "{report:?}");
    let key = |username: &'static str| async move {
        sqlx::query_scalar::<_, String>("SELECT email_key FROM users WHERE username = $1")
            .bind(username)
            .fetch_one(pool)
            .await
            .unwrap()
    };
    assert_eq!(key("old_fold").await, "old@example.org");
    assert_eq!(key("holder").await, "strasse@example.org");
    assert_eq!(key("latecomer").await, "straße@example.org");
    assert_eq!(
        app.token_request("OLD@example.org", PASSWORD)
            .await
            .status(),
        200
    );
    // Once: a second run finds the task done and changes nothing.
    sqlx::query("UPDATE users SET email_key = 'ｏｌｄ@example.org' WHERE username = 'old_fold'")
        .execute(pool)
        .await
        .unwrap();
    let again = palisade::storage::users::rekey_emails(pool).await.unwrap();
    assert_eq!(again, palisade::storage::users::Rekeyed::default());
    assert_eq!(key("old_fold").await, "ｏｌｄ@example.org");
}

#[tokio::test]
async fn composition_rules_are_off_by_default_and_a_setting() {
    let strict = spawn_app(&[("PALISADE_PASSWORD_COMPOSITION_RULES", "true")]).await;
    let response = strict
        .post_json(
            "/auth/register",
            &body("ada@example.org", "ada_l", "Ada", PASSWORD),
        )
        .await;
    assert_eq!(field_errors(response).await, ["password"]);
    let ok = strict
        .post_json(
            "/auth/register",
            &body(
                "ada@example.org",
                "ada_l",
                "Ada",
                "Correct horse battery staple 9!",
            ),
        )
        .await;
    assert_eq!(ok.status(), 201);
}

#[tokio::test]
async fn a_non_json_registration_is_415() {
    let app = spawn_app(&[]).await;
    let response = app
        .client
        .post(app.url("/auth/register"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=a@example.org")
        .send()
        .await
        .unwrap();
    problem(response, 415).await;
}

#[tokio::test]
async fn the_profile_is_the_caller_and_carries_no_store() {
    let app = spawn_app(&[]).await;
    let user = app.register("ada_l").await;
    let tokens = app.login("ada_l").await;
    let response = app.get_profile(&tokens.access_token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let profile: serde_json::Value = response.json().await.unwrap();
    assert_eq!(profile, user);
}

#[tokio::test]
async fn the_profile_can_be_patched_within_the_rules() {
    let app = spawn_app(&[]).await;
    app.register("ada_l").await;
    app.register("grace").await;
    let token = app.login("ada_l").await.access_token;
    let patch = |body: serde_json::Value| {
        app.client
            .patch(app.url("/profile"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let response = patch(json!({"name": "Countess Lovelace", "username": "countess"}))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let user: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        (user["name"].as_str(), user["username"].as_str()),
        (Some("Countess Lovelace"), Some("countess"))
    );
    problem(patch(json!({"username": "GRACE"})).await.unwrap(), 409).await;
    problem(patch(json!({"role": "admin"})).await.unwrap(), 422).await;
    problem(patch(json!({"username": "a b"})).await.unwrap(), 422).await;
    let profile: serde_json::Value = app.get_profile(&token).await.json().await.unwrap();
    assert_eq!(profile["role"], "user");
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_ends_every_other_session() {
    let app = spawn_app(&[]).await;
    app.register("ada_l").await;
    let here = app.login("ada_l").await;
    let elsewhere = app.login("ada_l").await;
    let change = |current: &str, new: &str| {
        app.client
            .post(app.url("/profile/password"))
            .bearer_auth(&here.access_token)
            .json(&json!({"current_password": current, "new_password": new}))
            .send()
    };
    let wrong = change("not my password at all", "an entirely new passphrase")
        .await
        .unwrap();
    assert_eq!(field_errors(wrong).await, ["current_password"]);
    let weak = change(PASSWORD, "password1234").await.unwrap();
    assert_eq!(field_errors(weak).await, ["new_password"]);
    assert_eq!(
        change(PASSWORD, "an entirely new passphrase")
            .await
            .unwrap()
            .status(),
        204
    );

    // Every access token issued before the change is dead, the other
    // session is over, and the current session can refresh on.
    assert_eq!(app.get_profile(&here.access_token).await.status(), 401);
    assert_eq!(app.get_profile(&elsewhere.access_token).await.status(), 401);
    assert_eq!(app.refresh(&elsewhere.refresh_token).await.status(), 400);
    let refreshed = app.refresh(&here.refresh_token).await;
    assert_eq!(refreshed.status(), 200);
    let fresh: crate::helpers::Tokens = refreshed.json().await.unwrap();
    assert_eq!(app.get_profile(&fresh.access_token).await.status(), 200);

    assert_eq!(app.token_request("ada_l", PASSWORD).await.status(), 400);
    assert_eq!(
        app.token_request("ada_l", "an entirely new passphrase")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn deleting_the_account_needs_the_password_and_kills_both_tokens() {
    let app = spawn_app(&[]).await;
    app.register("ada_l").await;
    let tokens = app.login("ada_l").await;
    let delete = |password: &str| {
        app.client
            .delete(app.url("/account"))
            .bearer_auth(&tokens.access_token)
            .json(&json!({"password": password}))
            .send()
    };
    assert_eq!(
        field_errors(delete("not my password at all").await.unwrap()).await,
        ["password"]
    );
    assert_eq!(delete(PASSWORD).await.unwrap().status(), 204);
    assert_eq!(app.get_profile(&tokens.access_token).await.status(), 401);
    assert_eq!(app.refresh(&tokens.refresh_token).await.status(), 400);
    assert_eq!(app.token_request("ada_l", PASSWORD).await.status(), 400);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(left, 0, "the user's sessions went with it");
}
