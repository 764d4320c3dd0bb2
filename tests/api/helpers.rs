//! `spawn_app` and friends: each test gets its own server and data folder.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use palisade::settings::{Settings, Sources};
use palisade::startup::Application;

/// A running server.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }
}

/// Settings for a test: defaults, the given environment, port 0 and a
/// fresh data folder.
pub fn settings(env: &[(&str, &str)]) -> (Settings, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut vars: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    vars.entry("PALISADE_BIND".into())
        .or_insert_with(|| "127.0.0.1:0".into());
    vars.insert("PALISADE_LOG_LEVEL".into(), "warn".into());
    let sources = Sources {
        env: vars,
        data_dir: Some(dir.path().to_string_lossy().into_owned()),
        ..Sources::default()
    };
    let settings = Settings::load(&sources).unwrap_or_else(|e| panic!("settings: {e:?}"));
    (settings, dir)
}

/// The real application.
pub async fn spawn_app(env: &[(&str, &str)]) -> TestApp {
    let (settings, dir) = settings(env);
    let app = Application::build(settings).await.unwrap();
    let addr = app.local_addr().unwrap();
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        addr,
        client: client(),
        _dir: dir,
    }
}

/// Any router wrapped in Palisade's stack (as an embedding app would do),
/// served on a real socket.
pub async fn spawn_stack(router: Router, env: &[(&str, &str)]) -> TestApp {
    let (settings, dir) = settings(env);
    let app = palisade::http::stack::apply(router, &settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    TestApp {
        addr,
        client: client(),
        _dir: dir,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

/// The security headers the contract requires on every response.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=()",
    ),
    (
        "strict-transport-security",
        "max-age=63072000; includeSubDomains",
    ),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("x-xss-protection", "0"),
    ("cache-control", "no-store"),
];

/// Asserts every security header, the request id, and no `Server` banner.
pub fn assert_hardened(response: &reqwest::Response) {
    let headers = response.headers();
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(
            headers.get(*name).map(|v| v.to_str().unwrap()),
            Some(*value),
            "{name} on a {} response",
            response.status()
        );
    }
    assert!(headers.get("server").is_none(), "a Server banner leaked");
    assert!(headers.get("x-request-id").is_some(), "no X-Request-Id");
}

/// Asserts a problem+json body and returns it.
pub async fn problem(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "application/problem+json"
    );
    let id = response
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert_eq!(body["request_id"], id.as_str());
    assert!(body["title"].is_string() && body["detail"].is_string() && body["type"].is_string());
    body
}
