//! The security-event trail: every event lands with its context, and no
//! password or token ever does.

use crate::helpers::{PASSWORD, spawn_app};

#[tokio::test]
async fn security_events_are_recorded_without_secrets() {
    let app = spawn_app(&[]).await;
    let user = app.register("ada_l").await;
    assert_eq!(
        app.token_request("ada_l", "not the password at all")
            .await
            .status(),
        400
    );
    assert_eq!(
        app.token_request("nobody_here", "not the password at all")
            .await
            .status(),
        400
    );
    let tokens = app.login("ada_l").await;
    let next: crate::helpers::Tokens = app
        .refresh(&tokens.refresh_token)
        .await
        .json()
        .await
        .unwrap();
    app.refresh(&tokens.refresh_token).await;
    let again = app.login("ada_l").await;
    app.client
        .post(app.url("/auth/logout"))
        .bearer_auth(&again.access_token)
        .send()
        .await
        .unwrap();
    let third = app.login("ada_l").await;
    app.post_form("/auth/revoke", &[("token", &third.refresh_token)])
        .await;

    type Row = (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT event, user_id, ip, user_agent, request_id, detail FROM security_events ORDER BY id",
    )
    .fetch_all(app.db())
    .await
    .unwrap();
    let events: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        events,
        [
            "register",
            "login_failure",
            "login_failure",
            "login_success",
            "refresh",
            "refresh_reuse_detected",
            "login_success",
            "logout",
            "login_success",
            "revoke",
        ]
    );
    let id = user["id"].as_str().unwrap();
    assert_eq!(rows[1].1.as_deref(), Some(id));
    assert_eq!(rows[1].5.as_deref(), Some("bad_password"));
    assert_eq!(rows[2].1, None);
    assert_eq!(rows[2].5.as_deref(), Some("unknown_user"));
    for row in &rows {
        assert_eq!(row.2.as_deref(), Some("127.0.0.1"), "{row:?}");
        assert!(row.4.is_some(), "request id missing: {row:?}");
    }
    let dump = format!("{rows:?}");
    for secret in [
        PASSWORD,
        "not the password at all",
        &tokens.refresh_token,
        &tokens.access_token,
        &next.refresh_token,
    ] {
        assert!(!dump.contains(secret), "a secret reached the audit trail");
    }
}
