//! Email verification, password reset and security notices through a
//! real SMTP server (aiosmtpd: STARTTLS with a private CA and AUTH,
//! implicit TLS, plain), the outbox without one, and delivery failures.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, problem, spawn_app};
use crate::smtp::{Mode, SmtpServer};

/// The application mailing through `smtp` in `mode`, links to
/// `https://app.example.org`.
async fn app_with(smtp: &SmtpServer, mode: Mode, extra: &[(&str, &str)]) -> TestApp {
    let url = smtp.url(mode);
    let ca = smtp
        .ca_file
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    let mut env: Vec<(&str, &str)> = vec![
        ("PALISADE_SMTP_URL", &url),
        ("PALISADE_PUBLIC_BASE_URL", "https://app.example.org"),
        ("PALISADE_MAIL_FROM", "Palisade <accounts@example.org>"),
    ];
    if let Some(ca) = &ca {
        env.push(("PALISADE_SMTP_CA_FILE", ca));
    }
    env.extend_from_slice(extra);
    spawn_app(&env).await
}

fn address(name: &str) -> String {
    format!("{name}@example.org")
}

async fn profile(app: &TestApp, token: &str) -> Value {
    app.get_profile(token).await.json().await.unwrap()
}

#[tokio::test]
async fn an_address_is_verified_through_a_link_mailed_over_starttls_with_auth() {
    let smtp = SmtpServer::start(Mode::StartTls, Some(("mailer", "s3cret-pw")));
    let app = app_with(
        &smtp,
        Mode::StartTls,
        &[
            ("PALISADE_SMTP_USERNAME", "mailer"),
            ("PALISADE_SMTP_PASSWORD", "s3cret-pw"),
        ],
    )
    .await;
    app.register("verifier").await;
    let tokens = app.login("verifier").await;
    assert_eq!(
        profile(&app, &tokens.access_token).await["email_verified"],
        false
    );

    let response = app
        .client
        .post(app.url("/auth/verify-email/request"))
        .bearer_auth(&tokens.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let mail = smtp
        .wait_for(&address("verifier"), "Confirm your email")
        .await;
    assert!(
        mail.tls && mail.authenticated,
        "STARTTLS and AUTH were used"
    );
    assert!(mail.from.contains("accounts@example.org"));
    let token = mail.token();
    assert!(
        token.starts_with("pal_ev_") && token.len() == 7 + 43,
        "{token}"
    );
    let link = format!("https://app.example.org/verify-email#token={token}");
    assert!(mail.text.as_deref().unwrap().contains(&link));
    assert!(
        mail.html
            .as_deref()
            .unwrap()
            .contains(&format!("href=\"{link}\""))
    );

    let response = app
        .post_json("/auth/verify-email", &json!({"token": token}))
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        profile(&app, &tokens.access_token).await["email_verified"],
        true
    );
    // Single use, and a made-up token gets the same answer.
    let used = problem(
        app.post_json("/auth/verify-email", &json!({"token": token}))
            .await,
        400,
    )
    .await;
    let made_up = format!("pal_ev_{}", "A".repeat(43));
    let unknown = problem(
        app.post_json("/auth/verify-email", &json!({"token": made_up}))
            .await,
        400,
    )
    .await;
    assert_eq!(used["detail"], unknown["detail"]);
    let events: Vec<(String,)> = sqlx::query_as(
        "SELECT event FROM security_events WHERE event IN ('email_verification_requested', 'email_verified')",
    )
    .fetch_all(app.db())
    .await
    .unwrap();
    assert_eq!(events.len(), 2);
}

/// The answer to a reset request, without what differs per request.
async fn reset_request(app: &TestApp, email: &str) -> (u16, Vec<(String, String)>, String) {
    let response = app
        .post_json("/auth/password-reset/request", &json!({"email": email}))
        .await;
    let status = response.status().as_u16();
    let mut headers: Vec<(String, String)> = response
        .headers()
        .iter()
        // The request id and date differ per request, and the per-IP
        // limit's headers count down with each.
        .filter(|(k, _)| !matches!(k.as_str(), "x-request-id" | "date" | "ratelimit"))
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    headers.sort();
    (status, headers, response.text().await.unwrap())
}

#[tokio::test]
async fn a_password_reset_goes_through_the_mailed_link_and_ends_every_session() {
    let smtp = SmtpServer::start(Mode::Plain, None);
    let app = app_with(&smtp, Mode::Plain, &[]).await;
    app.register("resetter").await;
    let before = app.login("resetter").await;

    let known = reset_request(&app, &address("resetter")).await;
    let unknown = reset_request(&app, "nobody-here@example.org").await;
    assert_eq!(known.0, 202);
    assert_eq!(known, unknown, "known and unknown addresses answered alike");
    let mail = smtp
        .wait_for(&address("resetter"), "Reset your password")
        .await;
    let token = mail.token();
    assert!(token.starts_with("pal_pr_"));
    assert!(
        mail.text
            .as_deref()
            .unwrap()
            .contains("https://app.example.org/reset-password#token=")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.count_to("nobody-here@example.org"), 0);

    // A weak password is refused and does not burn the token.
    let weak = app
        .post_json(
            "/auth/password-reset",
            &json!({"token": token, "new_password": "password"}),
        )
        .await;
    problem(weak, 422).await;
    let new_password = "a brand new passphrase, 42 times";
    let response = app
        .post_json(
            "/auth/password-reset",
            &json!({"token": token, "new_password": new_password}),
        )
        .await;
    assert_eq!(response.status(), 204);
    // Every session ended, at once.
    assert_eq!(app.get_profile(&before.access_token).await.status(), 401);
    assert_eq!(app.refresh(&before.refresh_token).await.status(), 400);
    assert_eq!(app.token_request("resetter", PASSWORD).await.status(), 400);
    let after = app.token_request("resetter", new_password).await;
    assert_eq!(after.status(), 200);
    let tokens: crate::helpers::Tokens = after.json().await.unwrap();
    // The mailbox was proved on the way.
    assert_eq!(
        profile(&app, &tokens.access_token).await["email_verified"],
        true
    );
    // Single use.
    let again = app
        .post_json(
            "/auth/password-reset",
            &json!({"token": token, "new_password": "yet another passphrase 42"}),
        )
        .await;
    problem(again, 400).await;
    smtp.wait_for(&address("resetter"), "Your password was reset")
        .await;
}

#[tokio::test]
async fn a_reset_token_dies_when_the_password_changes_or_it_expires() {
    let smtp = SmtpServer::start(Mode::Plain, None);
    let app = app_with(&smtp, Mode::Plain, &[]).await;
    app.register("changer").await;
    let tokens = app.login("changer").await;

    reset_request(&app, &address("changer")).await;
    let first = smtp
        .wait_for(&address("changer"), "Reset your password")
        .await
        .token();
    // The password changes another way.
    let response = app
        .client
        .post(app.url("/profile/password"))
        .bearer_auth(&tokens.access_token)
        .json(&json!({"current_password": PASSWORD, "new_password": "the changed passphrase 7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    smtp.wait_for(&address("changer"), "Your password was changed")
        .await;
    let response = app
        .post_json(
            "/auth/password-reset",
            &json!({"token": first, "new_password": "reset after change 99"}),
        )
        .await;
    problem(response, 400).await;

    // An expired token gets the same answer.
    reset_request(&app, &address("changer")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let second = loop {
        let mails: Vec<_> = smtp
            .delivered()
            .into_iter()
            .filter(|m| m.subject.contains("Reset your password"))
            .collect();
        if mails.len() == 2 {
            break mails[1].token();
        }
        assert!(Instant::now() < deadline, "no second reset mail");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    sqlx::query("UPDATE email_tokens SET expires_at = 1")
        .execute(app.db())
        .await
        .unwrap();
    let response = app
        .post_json(
            "/auth/password-reset",
            &json!({"token": second, "new_password": "reset after expiry 99"}),
        )
        .await;
    let body = problem(response, 400).await;
    assert_eq!(body["detail"], "The token is invalid, used or expired");
}

#[tokio::test]
async fn reset_requests_are_limited_per_address_known_or_not() {
    let smtp = SmtpServer::start(Mode::Plain, None);
    let app = app_with(&smtp, Mode::Plain, &[]).await;
    app.register("flooded").await;
    for _ in 0..5 {
        assert_eq!(reset_request(&app, &address("flooded")).await.0, 202);
    }
    smtp.wait_for(&address("flooded"), "Reset your password")
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        smtp.count_to(&address("flooded")),
        3,
        "3 an hour per address"
    );

    let tokens = app.login("flooded").await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = app
            .client
            .post(app.url("/auth/verify-email/request"))
            .bearer_auth(&tokens.access_token)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    // The address's budget is shared with the resets above: none left.
    assert_eq!(statuses, [429, 429, 429, 429]);
}

#[tokio::test]
async fn verification_is_limited_to_three_an_hour() {
    let smtp = SmtpServer::start(Mode::Plain, None);
    let app = app_with(&smtp, Mode::Plain, &[]).await;
    app.register("impatient").await;
    let tokens = app.login("impatient").await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = app
            .client
            .post(app.url("/auth/verify-email/request"))
            .bearer_auth(&tokens.access_token)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [202, 202, 202, 429]);
}

#[tokio::test]
async fn an_unverified_account_cannot_log_in_when_verification_is_required() {
    let smtp = SmtpServer::start(Mode::Plain, None);
    let app = app_with(
        &smtp,
        Mode::Plain,
        &[("PALISADE_REQUIRE_VERIFIED_EMAIL", "true")],
    )
    .await;
    app.register("unproven").await;
    // A wrong password learns nothing about verification.
    let wrong: Value = app
        .token_request("unproven", "wrong password")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(wrong["error_description"], "Invalid username or password");
    let response = app.token_request("unproven", PASSWORD).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("not verified")
    );
    let mail = smtp
        .wait_for(&address("unproven"), "Confirm your email")
        .await;
    // Another try within the hour mails nothing more.
    assert_eq!(app.token_request("unproven", PASSWORD).await.status(), 400);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.count_to(&address("unproven")), 1);

    let response = app
        .post_json("/auth/verify-email", &json!({"token": mail.token()}))
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(app.token_request("unproven", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn notices_go_over_implicit_tls_for_a_new_device_and_a_second_factor() {
    let smtp = SmtpServer::start(Mode::Smtps, None);
    let app = app_with(&smtp, Mode::Smtps, &[]).await;
    app.register("noticed").await;
    // The first login has nothing to compare with.
    let tokens = app.login("noticed").await;
    let from_phone = app
        .client
        .post(app.url("/auth/token"))
        .header("user-agent", "PhoneApp/2.0")
        .form(&[
            ("grant_type", "password"),
            ("username", "noticed"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(from_phone.status(), 200);
    let mail = smtp.wait_for(&address("noticed"), "New login").await;
    assert!(mail.tls);
    assert!(mail.text.as_deref().unwrap().contains("PhoneApp/2.0"));
    // The known device again: no second notice.
    app.login("noticed").await;

    let response = app
        .client
        .post(app.url("/mfa/totp"))
        .bearer_auth(&tokens.access_token)
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let secret: Value = response.json().await.unwrap();
    let code = crate::mfa::code(secret["secret"].as_str().unwrap(), crate::mfa::step_now());
    let response = app
        .client
        .post(app.url("/mfa/totp/confirm"))
        .bearer_auth(&tokens.access_token)
        .json(&json!({"code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let on = smtp
        .wait_for(&address("noticed"), "Two-step login turned on")
        .await;
    // A notice holds no secret, no code, no token.
    assert!(!on.raw.contains(secret["secret"].as_str().unwrap()) && !on.raw.contains("token="));
    let subjects: Vec<String> = smtp.delivered().iter().map(|m| m.subject.clone()).collect();
    assert_eq!(
        subjects.iter().filter(|s| s.contains("New login")).count(),
        1,
        "{subjects:?}"
    );
}

#[tokio::test]
async fn a_mail_that_cannot_be_delivered_is_retried_counted_and_the_request_still_answers() {
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("smtp://127.0.0.1:{port}?tls=none");
    let app = spawn_app(&[
        ("PALISADE_SMTP_URL", &url),
        ("PALISADE_MAIL_MAX_ATTEMPTS", "2"),
    ])
    .await;
    app.register("unlucky").await;
    let started = Instant::now();
    assert_eq!(reset_request(&app, &address("unlucky")).await.0, 202);
    assert!(started.elapsed() < Duration::from_secs(2));
    let stats = app.state.mailer.stats();
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats.failed.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "the failed mail was not counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stats.retried.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(stats.sent.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[tokio::test]
async fn without_smtp_mail_is_written_to_the_outbox() {
    let app = spawn_app(&[]).await;
    app.register("offline").await;
    assert_eq!(reset_request(&app, &address("offline")).await.0, 202);
    let outbox = app.state.mailer.outbox().unwrap().to_path_buf();
    let deadline = Instant::now() + Duration::from_secs(10);
    let files = loop {
        let files = palisade::mail::outbox_files(&outbox).unwrap();
        if !files.is_empty() {
            break files;
        }
        assert!(Instant::now() < deadline, "nothing in the outbox");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let eml = std::fs::read_to_string(&files[0]).unwrap();
    assert!(eml.contains("Subject: Reset your password"));
    assert!(
        eml.contains("To: \"Test User\" <offline@example.org>"),
        "{eml}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&outbox).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the outbox holds tokens: owner only");
    }
}

#[tokio::test]
async fn a_reset_request_takes_the_same_time_for_a_known_and_an_unknown_address() {
    // The answer comes before any lookup, so the two paths are the same
    // code; this measures it (medians of interleaved requests, loopback).
    let app = spawn_app(&[(
        "PALISADE_RATE_LIMIT_POLICIES",
        "mail_ip=10000/hour per ip; mail=10000/hour per account",
    )])
    .await;
    app.register("timed").await;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..60 {
        let (email, into) = if i % 2 == 0 {
            (address("timed"), &mut known)
        } else {
            (format!("absent{i}@example.org"), &mut unknown)
        };
        let started = Instant::now();
        assert_eq!(reset_request(&app, &email).await.0, 202);
        into.push(started.elapsed());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (k, u) = (median(&mut known), median(&mut unknown));
    let gap = k.abs_diff(u);
    eprintln!("reset request medians: known {k:?}, unknown {u:?}");
    assert!(
        gap < Duration::from_millis(3),
        "known {k:?} vs unknown {u:?}: the timing tells them apart"
    );
}
