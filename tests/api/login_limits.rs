//! The login limits: per IP (before any work), per account name (back-off,
//! the same for names that do not exist), and `/ai/generate` per user.

use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, problem, spawn_app};

async fn token_from(app: &TestApp, ip: &str, username: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/auth/token"))
        .header("x-forwarded-for", ip)
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_sixth_login_in_a_minute_from_one_address_is_refused_before_any_work() {
    let app = spawn_app(&[("PALISADE_RATE_LIMIT_POLICIES", "login=5/minute per ip")]).await;
    app.register("ada_l").await;
    for _ in 0..5 {
        let response = app.token_request("ada_l", "not the password at all").await;
        assert_eq!(response.status(), 400);
        assert_eq!(response.headers()["ratelimit-policy"], "\"login\";q=5;w=60");
    }
    // A malformed body would be a 400 if it were read: the limiter answers first.
    let garbage = app
        .client
        .post(app.url("/auth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("%%%garbage")
        .send()
        .await
        .unwrap();
    assert!(garbage.headers().contains_key("retry-after"));
    problem(garbage, 429).await;
    // Even the right password waits.
    problem(app.token_request("ada_l", PASSWORD).await, 429).await;
    let json_login = app
        .post_json(
            "/auth/login",
            &json!({"username": "ada_l", "password": PASSWORD}),
        )
        .await;
    // /auth/login shares the `login` policy, and so its budget.
    problem(json_login, 429).await;
}

#[tokio::test]
async fn failed_logins_for_one_account_back_off_whatever_the_address() {
    let app = spawn_app(&[("PALISADE_TRUSTED_PROXIES", "127.0.0.1")]).await;
    app.register("ada_l").await;
    for n in 0..5 {
        let response = token_from(
            &app,
            &format!("10.0.0.{n}"),
            "ada_l",
            "not the password at all",
        )
        .await;
        assert_eq!(response.status(), 400);
    }
    // Five attempts back to back are free; the sixth, from yet another
    // address and by the account's email, waits, even with the right
    // password: the name and the email are one account, one budget.
    let response = token_from(&app, "10.0.1.1", "ADA_L@example.org", "still not it").await;
    problem(response, 429).await;
    let blocked = token_from(&app, "10.0.1.2", "ada_l", PASSWORD).await;
    assert!(blocked.headers().contains_key("retry-after"));
    problem(blocked, 429).await;
    // Other accounts are not affected.
    app.register("grace").await;
    assert_eq!(
        token_from(&app, "10.0.1.3", "grace", PASSWORD)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn names_that_do_not_exist_back_off_exactly_alike() {
    let app = spawn_app(&[("PALISADE_TRUSTED_PROXIES", "127.0.0.1")]).await;
    app.register("ada_l").await;
    let mut answers = Vec::new();
    for name in ["ada_l", "nobody_at_all"] {
        let mut statuses = Vec::new();
        for n in 0..7 {
            let response = token_from(
                &app,
                &format!("10.{}.0.{n}", name.len()),
                name,
                "wrong wrong wrong",
            )
            .await;
            statuses.push(response.status().as_u16());
        }
        answers.push(statuses);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], [400, 400, 400, 400, 400, 429, 429]);
}

/// The red-team finding: the back-off was checked before the password was
/// hashed and recorded after, so every guess in flight passed the check.
/// Now each attempt is reserved at the check: a burst of 60 concurrent
/// wrong guesses from 60 addresses gets at most the 5 free attempts
/// checked (the production hash cost makes the burst overlap for real),
/// and the right password, sent after them, is refused like the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_concurrent_guesses_gets_no_more_checks_than_the_free_attempts() {
    let app = spawn_app(&[
        ("PALISADE_TRUSTED_PROXIES", "127.0.0.1"),
        ("PALISADE_ARGON2_MEMORY_KIB", "19456"),
        ("PALISADE_ARGON2_ITERATIONS", "2"),
    ])
    .await;
    app.register("ada_l").await;
    let guesses = (0..60).map(|n| {
        let app = &app;
        async move {
            let ip = format!("10.1.{}.{}", n / 250, n % 250 + 1);
            token_from(app, &ip, "ada_l", &format!("wrong guess {n}"))
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s == 400).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + refused, 60, "{statuses:?}");
    assert!(checked <= 5, "{checked} passwords checked: {statuses:?}");
    let right = token_from(&app, "10.2.0.1", "ada_l", PASSWORD).await;
    problem(right, 429).await;
}

#[tokio::test]
async fn an_account_keyed_policy_can_be_configured() {
    let app = spawn_app(&[
        ("PALISADE_TRUSTED_PROXIES", "127.0.0.1"),
        (
            "PALISADE_RATE_LIMIT_POLICIES",
            "spray=2/hour per account; login=1000/minute per ip",
        ),
        ("PALISADE_RATE_LIMIT_ROUTES", "POST /auth/token=login,spray"),
    ])
    .await;
    app.register("ada_l").await;
    assert_eq!(
        token_from(&app, "10.0.0.1", "ada_l", PASSWORD)
            .await
            .status(),
        200
    );
    assert_eq!(
        token_from(&app, "10.0.0.2", "ada_l", PASSWORD)
            .await
            .status(),
        200
    );
    problem(token_from(&app, "10.0.0.3", "ada_l", PASSWORD).await, 429).await;
}

#[tokio::test]
async fn ai_generate_is_limited_per_verified_user() {
    let app = spawn_app(&[(
        "PALISADE_RATE_LIMIT_POLICIES",
        "ai=3/hour per user; login=1000/minute per ip",
    )])
    .await;
    app.register("ada_l").await;
    app.register("grace").await;
    let ada = app.login("ada_l").await.access_token;
    let grace = app.login("grace").await.access_token;
    let generate = |token: &str, prompt: &str| {
        app.client
            .post(app.url("/ai/generate"))
            .bearer_auth(token)
            .json(&json!({"prompt": prompt}))
            .send()
    };
    for _ in 0..3 {
        let response = generate(&ada, "write a haiku").await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["ratelimit-policy"], "\"ai\";q=3;w=3600");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["output"].as_str().unwrap().contains("3 words"));
    }
    problem(generate(&ada, "one more").await.unwrap(), 429).await;
    assert_eq!(
        generate(&grace, "my own budget").await.unwrap().status(),
        200,
        "another user, same address"
    );
    // A second token of the same user shares the budget: the key is `sub`.
    let ada_again = app.login("ada_l").await.access_token;
    problem(generate(&ada_again, "still limited").await.unwrap(), 429).await;
}

/// Only a verified, live principal spends its own budget: a token whose
/// session has ended (revoked here) is limited by the address it comes
/// from, like an anonymous request, and leaves the user's budget whole.
#[tokio::test]
async fn a_token_whose_session_ended_does_not_spend_its_users_budget() {
    let app = spawn_app(&[
        ("PALISADE_TRUSTED_PROXIES", "127.0.0.1"),
        (
            "PALISADE_RATE_LIMIT_POLICIES",
            "ai=3/hour per user; login=1000/minute per ip",
        ),
    ])
    .await;
    app.register("ada_l").await;
    let ended = app.login("ada_l").await.access_token;
    assert_eq!(
        app.post_form("/auth/revoke", &[("token", &ended)])
            .await
            .status(),
        200
    );
    let generate = |token: &str, ip: &str| {
        app.client
            .post(app.url("/ai/generate"))
            .header("x-forwarded-for", ip)
            .bearer_auth(token)
            .json(&json!({"prompt": "write a haiku"}))
            .send()
    };
    for _ in 0..3 {
        let response = generate(&ended, "10.9.9.9").await.unwrap();
        assert_eq!(response.status(), 401);
    }
    let fresh = app.login("ada_l").await.access_token;
    for n in 0..3 {
        let response = generate(&fresh, "10.0.0.1").await.unwrap();
        assert_eq!(response.status(), 200, "request {n} of Ada's own budget");
    }
    problem(generate(&fresh, "10.0.0.1").await.unwrap(), 429).await;
}

#[tokio::test]
async fn ai_generate_validates_its_prompt_and_needs_a_token() {
    let app = spawn_app(&[]).await;
    app.register("ada_l").await;
    let token = app.login("ada_l").await.access_token;
    let send = |body: serde_json::Value| {
        app.client
            .post(app.url("/ai/generate"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    problem(send(json!({"prompt": ""})).await.unwrap(), 422).await;
    problem(
        send(json!({"prompt": "x".repeat(2001)})).await.unwrap(),
        422,
    )
    .await;
    problem(
        send(json!({"prompt": "hi", "model": "gpt"})).await.unwrap(),
        422,
    )
    .await;
    let anonymous = app
        .post_json("/ai/generate", &json!({"prompt": "hi"}))
        .await;
    problem(anonymous, 401).await;
}
