//! TOTP second factor and recovery codes, end to end: enrolment,
//! confirmation, login through `mfa_required` and the mfa-otp grant,
//! replay and skew, recovery codes, the back-off, `mfa_required_roles`.
//! Codes are computed by the test's own RFC 6238 code (HMAC-SHA-1 by
//! hand, not the server's crate), and once by Python's pyotp from the
//! served `otpauth://` URI.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, Tokens, problem, spawn_app};

const MFA_GRANT: &str = "urn:palisade:params:oauth:grant-type:mfa-otp";

/// RFC 4226 HOTP / RFC 6238 TOTP (SHA-1, 6 digits) of a base32 secret at
/// time step `step`.
pub fn code(secret_b32: &str, step: u64) -> String {
    let key = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, secret_b32).unwrap();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&key).unwrap();
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let binary = (u32::from(digest[offset]) & 0x7f) << 24
        | u32::from(digest[offset + 1]) << 16
        | u32::from(digest[offset + 2]) << 8
        | u32::from(digest[offset + 3]);
    format!("{:06}", binary % 1_000_000)
}

pub fn step_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30
}

/// The claims of an access token (not verified: the server did that).
fn claims(access_token: &str) -> Value {
    let payload = access_token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn post_as(app: &TestApp, path: &str, token: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn delete_with_body(
    app: &TestApp,
    path: &str,
    token: &str,
    body: &Value,
) -> reqwest::Response {
    app.client
        .delete(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Registers and logs in `name`, enrols and confirms a factor (at the
/// current step); the session's tokens, the secret and the recovery codes.
pub async fn enrolled(app: &TestApp, name: &str) -> (Tokens, String, Vec<String>) {
    let (tokens, secret, codes, _) = enrolled_at(app, name).await;
    (tokens, secret, codes)
}

/// [`enrolled`], with the time step the confirmation used.
async fn enrolled_at(app: &TestApp, name: &str) -> (Tokens, String, Vec<String>, u64) {
    app.register(name).await;
    let tokens = app.login(name).await;
    let response = post_as(
        app,
        "/mfa/totp",
        &tokens.access_token,
        &json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let enrolment: Value = response.json().await.unwrap();
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    let step = step_now();
    let response = post_as(
        app,
        "/mfa/totp/confirm",
        &tokens.access_token,
        &json!({"code": code(&secret, step)}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let codes: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (tokens, secret, codes, step)
}

/// The password step: the 403 `mfa_required` body's token.
async fn mfa_token(app: &TestApp, name: &str) -> String {
    let response = app.token_request(name, PASSWORD).await;
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "mfa_required");
    assert!(body.get("access_token").is_none());
    body["mfa_token"].as_str().unwrap().to_owned()
}

async fn mfa_grant(app: &TestApp, token: &str, otp: &str) -> reqwest::Response {
    app.post_form(
        "/auth/token",
        &[
            ("grant_type", MFA_GRANT),
            ("mfa_token", token),
            ("otp", otp),
        ],
    )
    .await
}

async fn assert_invalid_grant(response: reqwest::Response) {
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
}

#[tokio::test]
async fn enrolment_needs_the_password_and_a_first_code_and_ends_other_sessions() {
    let app = spawn_app(&[]).await;
    app.register("enroller").await;
    let other = app.login("enroller").await;
    let tokens = app.login("enroller").await;

    let wrong = post_as(
        &app,
        "/mfa/totp",
        &tokens.access_token,
        &json!({"password": "nope"}),
    )
    .await;
    problem(wrong, 422).await;
    let response = post_as(
        &app,
        "/mfa/totp",
        &tokens.access_token,
        &json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let enrolment: Value = response.json().await.unwrap();
    let secret = enrolment["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 32, "160 bits in base32");
    assert_eq!(
        enrolment["otpauth_uri"],
        format!("otpauth://totp/palisade:enroller?secret={secret}&issuer=palisade")
    );
    // Pending: the password alone still logs in.
    assert_eq!(app.token_request("enroller", PASSWORD).await.status(), 200);

    let wrong = post_as(
        &app,
        "/mfa/totp/confirm",
        &tokens.access_token,
        &json!({"code": "000000"}),
    )
    .await;
    let body = problem(wrong, 422).await;
    assert_eq!(body["errors"][0]["field"], "code");
    let response = post_as(
        &app,
        "/mfa/totp/confirm",
        &tokens.access_token,
        &json!({"code": code(secret, step_now())}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let codes = body["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let distinct: std::collections::HashSet<_> = codes.iter().collect();
    assert_eq!(distinct.len(), 10);

    // Other sessions ended; this one goes on.
    assert_eq!(app.get_profile(&other.access_token).await.status(), 401);
    assert_eq!(app.refresh(&other.refresh_token).await.status(), 400);
    assert_eq!(app.get_profile(&tokens.access_token).await.status(), 200);
    // A second enrolment is refused while one is active.
    let again = post_as(
        &app,
        "/mfa/totp",
        &tokens.access_token,
        &json!({"password": PASSWORD}),
    )
    .await;
    problem(again, 409).await;
}

#[tokio::test]
async fn the_password_alone_no_longer_gives_tokens_at_either_login_route() {
    let app = spawn_app(&[]).await;
    let (_, secret, _) = enrolled(&app, "twostep").await;
    mfa_token(&app, "twostep").await;
    let json_login = app
        .post_json(
            "/auth/login",
            &json!({"username": "twostep", "password": PASSWORD}),
        )
        .await;
    assert_eq!(json_login.status(), 403);
    let body: Value = json_login.json().await.unwrap();
    assert_eq!(body["error"], "mfa_required");
    let token = body["mfa_token"].as_str().unwrap();
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none());
    // The wrong password still gets the usual answer, and no mfa_token.
    let wrong = app.token_request("twostep", "wrong password").await;
    assert_invalid_grant(wrong).await;

    // The JSON second step.
    let response = app
        .post_json(
            "/auth/login/mfa",
            &json!({"mfa_token": token, "otp": code(&secret, step_now() + 1)}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let tokens: Tokens = response.json().await.unwrap();
    assert_eq!(claims(&tokens.access_token)["amr"], json!(["pwd", "otp"]));
    // The token is spent.
    let again = app
        .post_json(
            "/auth/login/mfa",
            &json!({"mfa_token": token, "otp": code(&secret, step_now() + 1)}),
        )
        .await;
    problem(again, 401).await;
    // A refresh keeps the session's amr.
    let refreshed: Tokens = app
        .refresh(&tokens.refresh_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        claims(&refreshed.access_token)["amr"],
        json!(["pwd", "otp"])
    );
}

#[tokio::test]
async fn a_code_is_accepted_once_within_one_step_of_skew() {
    let app = spawn_app(&[]).await;
    // Enrolment used the current step: the first login uses the next one.
    let (_, secret, _, now) = enrolled_at(&app, "skewed").await;

    // The enrolment's own code cannot be replayed at login.
    let token = mfa_token(&app, "skewed").await;
    assert_invalid_grant(mfa_grant(&app, &token, &code(&secret, now)).await).await;
    // Two steps behind: outside the window.
    assert_invalid_grant(mfa_grant(&app, &token, &code(&secret, now - 2)).await).await;
    // One step ahead (a fast clock): accepted.
    let response = mfa_grant(&app, &token, &code(&secret, now + 1)).await;
    assert_eq!(response.status(), 200);
    let tokens: Tokens = response.json().await.unwrap();
    assert_eq!(claims(&tokens.access_token)["amr"], json!(["pwd", "otp"]));

    // The same code again, on a fresh mfa_token: a replay.
    let token = mfa_token(&app, "skewed").await;
    assert_invalid_grant(mfa_grant(&app, &token, &code(&secret, now + 1)).await).await;
    // And an older step after a newer one was used.
    assert_invalid_grant(mfa_grant(&app, &token, &code(&secret, now)).await).await;

    let failures: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM security_events WHERE event = 'mfa_failure'")
            .fetch_one(app.db())
            .await
            .unwrap();
    assert_eq!(failures, 4);
}

#[tokio::test]
async fn a_recovery_code_works_once_and_is_audited() {
    let app = spawn_app(&[]).await;
    let (_, _, codes) = enrolled(&app, "recoverer").await;
    let token = mfa_token(&app, "recoverer").await;
    // As typed by a person: upper case, no dash.
    let typed = codes[3].to_uppercase().replace('-', "");
    let response = mfa_grant(&app, &token, &typed).await;
    assert_eq!(response.status(), 200);
    let tokens: Tokens = response.json().await.unwrap();
    assert_eq!(claims(&tokens.access_token)["amr"], json!(["pwd", "rc"]));
    let sessions: Value = app
        .get_as(&app.url("/sessions"), &tokens.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sessions["items"][0]["amr"], json!(["pwd", "rc"]));

    let token = mfa_token(&app, "recoverer").await;
    assert_invalid_grant(mfa_grant(&app, &token, &codes[3]).await).await;
    assert_eq!(mfa_grant(&app, &token, &codes[4]).await.status(), 200);

    let used: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM security_events WHERE event = 'recovery_code_used'",
    )
    .fetch_one(app.db())
    .await
    .unwrap();
    assert_eq!(used, 2);
    // Nothing stored anywhere holds a code in the clear.
    let rows: Vec<(String,)> = sqlx::query_as("SELECT code_hash FROM recovery_codes")
        .fetch_all(app.db())
        .await
        .unwrap();
    assert_eq!(rows.len(), 10);
    let trail: Vec<(Option<String>,)> = sqlx::query_as("SELECT detail FROM security_events")
        .fetch_all(app.db())
        .await
        .unwrap();
    for code in &codes {
        assert!(rows.iter().all(|(h,)| !h.contains(code.as_str())));
        assert!(
            trail
                .iter()
                .all(|(d,)| !d.as_deref().unwrap_or("").contains(code.as_str()))
        );
    }
}

#[tokio::test]
async fn five_wrong_codes_kill_the_mfa_token() {
    // A generous back-off: this test is about the token.
    let app = spawn_app(&[("PALISADE_FAILED_LOGIN_FREE", "50")]).await;
    let (_, secret, _) = enrolled(&app, "guesser").await;
    let token = mfa_token(&app, "guesser").await;
    let right = code(&secret, step_now() + 1);
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    for _ in 0..5 {
        assert_invalid_grant(mfa_grant(&app, &token, wrong).await).await;
    }
    assert_invalid_grant(mfa_grant(&app, &token, &right).await).await;
    // A new login goes through with the same (unspent) code.
    let token = mfa_token(&app, "guesser").await;
    assert_eq!(mfa_grant(&app, &token, &right).await.status(), 200);
}

#[tokio::test]
async fn wrong_codes_count_in_the_accounts_back_off() {
    let app = spawn_app(&[("PALISADE_FAILED_LOGIN_FREE", "3")]).await;
    let (_, secret, _) = enrolled(&app, "backoff").await;
    // The password step is one reserved attempt; two wrong codes make three.
    let token = mfa_token(&app, "backoff").await;
    for wrong in ["111111", "222222"] {
        assert_invalid_grant(mfa_grant(&app, &token, wrong).await).await;
    }
    let response = mfa_grant(&app, &token, &code(&secret, step_now() + 1)).await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().get("retry-after").is_some());
}

#[tokio::test]
async fn removing_the_factor_and_new_recovery_codes_need_the_password_and_a_code() {
    let app = spawn_app(&[]).await;
    let (tokens, secret, codes) = enrolled(&app, "remover").await;
    let at = &tokens.access_token;

    let body = json!({"password": PASSWORD, "code": "000000"});
    problem(post_as(&app, "/mfa/recovery-codes", at, &body).await, 422).await;
    let body = json!({"password": "wrong", "code": codes[0]});
    problem(post_as(&app, "/mfa/recovery-codes", at, &body).await, 422).await;
    let body = json!({"password": PASSWORD, "code": codes[0]});
    let response = post_as(&app, "/mfa/recovery-codes", at, &body).await;
    assert_eq!(response.status(), 200);
    let fresh: Value = response.json().await.unwrap();
    let fresh: Vec<String> = fresh["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fresh.len(), 10);
    // The old set is void.
    let token = mfa_token(&app, "remover").await;
    assert_invalid_grant(mfa_grant(&app, &token, &codes[1]).await).await;

    let body = json!({"password": PASSWORD, "code": code(&secret, step_now() + 1)});
    let response = delete_with_body(&app, "/mfa/totp", at, &body).await;
    assert_eq!(response.status(), 204);
    // The password alone logs in again; the codes are gone.
    assert_eq!(app.token_request("remover", PASSWORD).await.status(), 200);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(left, 0);
    let body = json!({"password": PASSWORD, "code": fresh[0]});
    problem(delete_with_body(&app, "/mfa/totp", at, &body).await, 409).await;
    let events: Vec<(String,)> =
        sqlx::query_as("SELECT event FROM security_events WHERE event LIKE 'mfa_%' OR event LIKE 'recovery%' ORDER BY at, id")
            .fetch_all(app.db())
            .await
            .unwrap();
    let events: Vec<&str> = events.iter().map(|(e,)| e.as_str()).collect();
    for expected in [
        "mfa_enrol_started",
        "mfa_enabled",
        "recovery_codes_regenerated",
        "mfa_disabled",
    ] {
        assert!(
            events.contains(&expected),
            "{expected} missing from {events:?}"
        );
    }
}

#[tokio::test]
async fn a_role_that_must_have_a_factor_gets_enrolment_only_tokens_until_it_has_one() {
    let app = spawn_app(&[("PALISADE_MFA_REQUIRED_ROLES", "editor")]).await;
    let body = json!({
        "email": "ed@example.org", "username": "editor1", "name": "Ed",
        "password": PASSWORD, "role": "editor",
    });
    assert_eq!(app.post_json("/auth/register", &body).await.status(), 201);
    app.register("plainuser").await;
    let plain = app.login("plainuser").await;
    assert_eq!(
        app.get_as(&app.url("/sessions"), &plain.access_token)
            .await
            .status(),
        200
    );

    let tokens = app.login("editor1").await;
    assert_eq!(claims(&tokens.access_token)["mfa_enrol"], true);
    assert_eq!(app.get_profile(&tokens.access_token).await.status(), 200);
    let refused = problem(
        app.get_as(&app.url("/sessions"), &tokens.access_token)
            .await,
        403,
    )
    .await;
    assert_eq!(
        refused["type"],
        "urn:palisade:problem:mfa_enrolment_required"
    );
    assert_eq!(refused["title"], "mfa_enrolment_required");

    let response = post_as(
        &app,
        "/mfa/totp",
        &tokens.access_token,
        &json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let secret: Value = response.json().await.unwrap();
    let secret = secret["secret"].as_str().unwrap().to_owned();
    let response = post_as(
        &app,
        "/mfa/totp/confirm",
        &tokens.access_token,
        &json!({"code": code(&secret, step_now())}),
    )
    .await;
    assert_eq!(response.status(), 200);
    // The next token of the session is a full one.
    let refreshed: Tokens = app
        .refresh(&tokens.refresh_token)
        .await
        .json()
        .await
        .unwrap();
    assert!(claims(&refreshed.access_token).get("mfa_enrol").is_none());
    assert_eq!(
        app.get_as(&app.url("/sessions"), &refreshed.access_token)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn the_stored_factor_is_sealed_and_pyotp_reads_the_served_uri() {
    let app = spawn_app(&[]).await;
    app.register("sealed").await;
    let tokens = app.login("sealed").await;
    let response = post_as(
        &app,
        "/mfa/totp",
        &tokens.access_token,
        &json!({"password": PASSWORD}),
    )
    .await;
    let enrolment: Value = response.json().await.unwrap();
    let secret = enrolment["secret"].as_str().unwrap();
    let (sealed,): (String,) = sqlx::query_as("SELECT sealed_secret FROM totp_factors")
        .fetch_one(app.db())
        .await
        .unwrap();
    let raw = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, secret).unwrap();
    let stored = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(&sealed)
        .unwrap();
    assert!(!sealed.contains(secret));
    assert!(
        !stored.windows(raw.len()).any(|w| w == raw.as_slice()),
        "secret stored in the clear"
    );
    assert_eq!(stored.len(), 24 + 20 + 16, "nonce, ciphertext, tag");

    // A second implementation reads the URI and makes a code the server takes.
    let uri = enrolment["otpauth_uri"].as_str().unwrap();
    let python = crate::smtp::python();
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import pyotp, sys; print(pyotp.parse_uri(sys.argv[1]).now())",
            uri,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let response = post_as(
        &app,
        "/mfa/totp/confirm",
        &tokens.access_token,
        &json!({"code": code}),
    )
    .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_removes_a_lost_factor_from_the_command_line() {
    let app = spawn_app(&[]).await;
    let (tokens, _, _) = enrolled(&app, "lostphone").await;
    mfa_token(&app, "lostphone").await;
    let out = crate::session_cache::cli(&app, &["users", "remove-mfa", "lostphone"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every session ended; the password alone logs in again.
    assert_eq!(app.get_profile(&tokens.access_token).await.status(), 401);
    assert_eq!(app.token_request("lostphone", PASSWORD).await.status(), 200);
    let (actor,): (Option<String>,) =
        sqlx::query_as("SELECT actor_id FROM security_events WHERE event = 'mfa_disabled'")
            .fetch_one(app.db())
            .await
            .unwrap();
    assert_eq!(actor.as_deref(), Some("cli"));
    // The notice went out before the command ended.
    let outbox = app.state.mailer.outbox().unwrap();
    let notices = palisade::mail::outbox_files(outbox)
        .unwrap()
        .iter()
        .filter(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .contains("Subject: Two-step login turned off")
        })
        .count();
    assert_eq!(notices, 1);
    let again = crate::session_cache::cli(&app, &["users", "remove-mfa", "lostphone"]).await;
    assert_eq!(again.status.code(), Some(2), "no factor left to remove");
}
