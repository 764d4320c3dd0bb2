//! OAuth2 clients someone else wrote, against the real server: the
//! `oauth2` crate (Rust) here, Authlib (Python) in `authlib.rs`. What
//! they raise on an error must be the specific OAuth2 error, not a
//! failure to read the body.

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    ClientId, EndpointNotSet, EndpointSet, RefreshToken, RequestTokenError, ResourceOwnerPassword,
    ResourceOwnerUsername, RevocationUrl, Scope, StandardRevocableToken, TokenResponse, TokenUrl,
};

use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, output_of, spawn_app_over_tls};
use crate::tls::Ca;

/// Palisade serving HTTPS: the crate refuses a revocation endpoint over
/// plain HTTP, as RFC 7009 §2 requires TLS.
async fn spawn() -> TestApp {
    spawn_app_over_tls(&[], &Ca::new("oauth2 client test CA")).await
}

type Client = BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet, EndpointSet>;

/// A public client (no secret: the crate sends `client_id` in the body,
/// which Palisade ignores, having no registered clients).
fn client(app: &TestApp) -> Client {
    BasicClient::new(ClientId::new("a-public-client".into()))
        .set_token_uri(TokenUrl::new(app.url("/auth/token")).unwrap())
        .set_revocation_url(RevocationUrl::new(app.url("/auth/revoke")).unwrap())
}

/// The crate's HTTP client interface, over the tests' reqwest.
fn http(
    app: &TestApp,
) -> impl Fn(
    oauth2::HttpRequest,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, reqwest::Error>> + Send>,
> {
    let client = app.client.clone();
    move |request: oauth2::HttpRequest| {
        let client = client.clone();
        Box::pin(async move {
            let response = client.execute(reqwest::Request::try_from(request)?).await?;
            let mut builder = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = response.bytes().await?.to_vec();
            Ok(builder.body(body).expect("a response from parts"))
        })
    }
}

/// The OAuth2 error code the crate read from a refusal; panics on any
/// other kind of failure (a body it could not parse, a transport error).
fn oauth_error<T: std::fmt::Debug>(
    result: Result<T, RequestTokenError<reqwest::Error, oauth2::basic::BasicErrorResponse>>,
) -> BasicErrorResponseType {
    match result {
        Err(RequestTokenError::ServerResponse(e)) => e.error().clone(),
        other => panic!("expected an OAuth2 error response, got {other:?}"),
    }
}

#[tokio::test]
async fn the_oauth2_crate_logs_in_refreshes_and_revokes() {
    let app = spawn().await;
    app.register("crate_user").await;
    let (client, http) = (client(&app), http(&app));
    let username = ResourceOwnerUsername::new("crate_user".into());
    let password = ResourceOwnerPassword::new(PASSWORD.into());

    let first = client
        .exchange_password(&username, &password)
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(*first.token_type(), oauth2::basic::BasicTokenType::Bearer);
    assert_eq!(
        first.expires_in(),
        Some(std::time::Duration::from_secs(900))
    );
    let access = first.access_token().secret();
    assert_eq!(app.get_profile(access).await.status(), 200);
    let refresh = first.refresh_token().unwrap().clone();

    let second = client
        .exchange_refresh_token(&refresh)
        .request_async(&http)
        .await
        .unwrap();
    let rotated = second.refresh_token().unwrap().clone();
    assert_ne!(rotated.secret(), refresh.secret());
    assert_eq!(
        app.get_profile(second.access_token().secret())
            .await
            .status(),
        200
    );

    // RFC 7009 through the crate: the session ends, so the rotated
    // refresh token and the access token die with it.
    client
        .revoke_token(StandardRevocableToken::RefreshToken(rotated.clone()))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(
        oauth_error(
            client
                .exchange_refresh_token(&rotated)
                .request_async(&http)
                .await
        ),
        BasicErrorResponseType::InvalidGrant
    );
    assert_eq!(
        app.get_profile(second.access_token().secret())
            .await
            .status(),
        401
    );
    // Revoking an access token is accepted too (RFC 7009 §2.2: 200 even
    // for a token that is already invalid).
    let access = oauth2::AccessToken::new(second.access_token().secret().clone());
    client
        .revoke_token(StandardRevocableToken::AccessToken(access))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_oauth2_crate_reads_each_refusal_as_its_oauth2_error() {
    let app = spawn().await;
    app.register("refused").await;
    let (client, http) = (client(&app), http(&app));
    let wrong = ResourceOwnerPassword::new("not the password at all".into());
    for name in ["refused", "nobody_here"] {
        let username = ResourceOwnerUsername::new(name.into());
        assert_eq!(
            oauth_error(
                client
                    .exchange_password(&username, &wrong)
                    .request_async(&http)
                    .await
            ),
            BasicErrorResponseType::InvalidGrant,
            "{name}"
        );
    }
    let username = ResourceOwnerUsername::new("refused".into());
    let password = ResourceOwnerPassword::new(PASSWORD.into());
    assert_eq!(
        oauth_error(
            client
                .exchange_password(&username, &password)
                .add_scope(Scope::new("admin".into()))
                .request_async(&http)
                .await
        ),
        BasicErrorResponseType::InvalidScope
    );
    let made_up = RefreshToken::new("pal_rt_made_up".into());
    assert_eq!(
        oauth_error(
            client
                .exchange_refresh_token(&made_up)
                .request_async(&http)
                .await
        ),
        BasicErrorResponseType::InvalidGrant
    );
}

#[tokio::test]
async fn the_oauth2_crate_surfaces_mfa_required_with_its_mfa_token() {
    let app = spawn().await;
    crate::mfa::enrolled(&app, "two_factor").await;
    let (client, http) = (client(&app), http(&app));
    let username = ResourceOwnerUsername::new("two_factor".into());
    let password = ResourceOwnerPassword::new(PASSWORD.into());
    let result = client
        .exchange_password(&username, &password)
        .request_async(&http)
        .await;
    assert_eq!(
        oauth_error(result),
        BasicErrorResponseType::Extension("mfa_required".into())
    );
}

/// Authlib's `OAuth2Session` (Python, requests) through the same flows,
/// over HTTPS with the test CA (tests/oauth2/authlib_client.py).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_logs_in_refreshes_revokes_and_reads_each_refusal_as_its_oauth2_error() {
    let ca = Ca::new("authlib test CA");
    let app = spawn_app_over_tls(&[], &ca).await;
    let ca_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca_file.path(), &ca.pem).unwrap();
    app.register("authlib_user").await;
    crate::mfa::enrolled(&app, "authlib_mfa").await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/oauth2/authlib_client.py"
    );
    let mut command = std::process::Command::new(crate::smtp::python());
    command
        .arg(script)
        .arg(app.url(""))
        .args(["authlib_user", PASSWORD, "authlib_mfa"])
        .env("REQUESTS_CA_BUNDLE", ca_file.path());
    let out = output_of(command).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let oauth_error = |code: &str| json!({"class": "OAuthError", "error": code});
    assert_eq!(got["token_type"], "bearer", "{got}");
    assert_eq!(got["expires_in"], 900, "{got}");
    assert_eq!(got["profile"], 200, "{got}");
    assert_eq!(got["rotated"], true, "{got}");
    assert_eq!(got["profile_after_refresh"], 200, "{got}");
    assert_eq!(
        got["replayed_refresh"],
        oauth_error("invalid_grant"),
        "{got}"
    );
    assert_eq!(got["revoke_status"], 200, "{got}");
    assert_eq!(
        got["refresh_after_revoke"],
        oauth_error("invalid_grant"),
        "{got}"
    );
    assert_eq!(got["profile_after_revoke"], 401, "{got}");
    assert_eq!(got["wrong_password"], oauth_error("invalid_grant"), "{got}");
    assert_eq!(got["bad_scope"], oauth_error("invalid_scope"), "{got}");
    assert_eq!(got["mfa"], oauth_error("mfa_required"), "{got}");
}
