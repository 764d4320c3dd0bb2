//! `spawn_app` and friends: each test gets its own server and data folder.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use palisade::settings::{Settings, Sources};
use palisade::startup::Application;

pub use crate::database::{POSTGRES, TEST_MFA_KEY, TEST_SECRET, TestDatabase};

/// A running server on a loopback port, with a client and typed HTTP
/// helpers.
pub struct TestServer {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:<port>`, or `https://localhost:<port>` over TLS.
    base: String,
    pub client: reqwest::Client,
    _scratch: Scratch,
    /// What a cluster's instances share, owned by the first one.
    _shared: Option<Scratch>,
}

/// The real application: a [`TestServer`] plus its state, for direct
/// database checks.
pub struct TestApp {
    server: TestServer,
    pub state: palisade::AppState,
    /// What the connection limits did.
    pub connections: std::sync::Arc<palisade::http::server::ConnectionCounters>,
    /// The metrics listener's address (`PALISADE_METRICS_BIND`).
    pub metrics_addr: Option<SocketAddr>,
}

impl std::ops::Deref for TestApp {
    type Target = TestServer;

    fn deref(&self) -> &TestServer {
        &self.server
    }
}

impl TestApp {
    pub fn db(&self) -> &sqlx::AnyPool {
        self.state.db.pool()
    }
}

/// A password every test account can use.
pub const PASSWORD: &str = "correct horse battery staple";

/// Tokens as the token endpoint returns them.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Registers `username` (email `username@example.org`) and returns the user.
    pub async fn register(&self, username: &str) -> serde_json::Value {
        let body = serde_json::json!({
            "email": format!("{username}@example.org"),
            "username": username,
            "name": "Test User",
            "password": PASSWORD,
        });
        let response = self.post_json("/auth/register", &body).await;
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
        response.json().await.unwrap()
    }

    pub async fn token_request(&self, username: &str, password: &str) -> reqwest::Response {
        self.post_form(
            "/auth/token",
            &[
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// Logs in with the password grant.
    pub async fn login(&self, username: &str) -> Tokens {
        let response = self.token_request(username, PASSWORD).await;
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        response.json().await.unwrap()
    }

    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.post_form(
            "/auth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// GET `url` (a full URL, see [`TestServer::url`]) with a bearer token.
    pub async fn get_as(&self, url: &str, token: &str) -> reqwest::Response {
        self.client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// DELETE `url` with a bearer token.
    pub async fn delete_as(&self, url: &str, token: &str) -> reqwest::Response {
        self.client
            .delete(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_profile(&self, access_token: &str) -> reqwest::Response {
        self.client
            .get(self.url("/profile"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }
}

/// What a test's server owns and removes when it is dropped: its data
/// folder and, in the PostgreSQL run, its database.
pub struct Scratch {
    _dir: tempfile::TempDir,
    _db: Option<TestDatabase>,
}

/// Settings for a test: defaults, the given environment, port 0, a fresh
/// data folder and, in the PostgreSQL run ([`POSTGRES`]), a fresh database.
pub fn settings(env: &[(&str, &str)]) -> (Settings, Scratch) {
    let dir = tempfile::tempdir().unwrap();
    let mut vars: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    vars.entry("PALISADE_BIND".into())
        .or_insert_with(|| "127.0.0.1:0".into());
    vars.insert("PALISADE_LOG_LEVEL".into(), "warn".into());
    // Light hashing keeps the suite fast; tests about the production
    // parameters set their own.
    vars.entry("PALISADE_ARGON2_MEMORY_KIB".into())
        .or_insert_with(|| "64".into());
    vars.entry("PALISADE_ARGON2_ITERATIONS".into())
        .or_insert_with(|| "1".into());
    // Tests register and log in often; those about these limits set them.
    vars.entry("PALISADE_RATE_LIMIT_POLICIES".into())
        .or_insert_with(|| "register=1000/minute per ip; login=1000/minute per ip".into());
    let db = (POSTGRES && !vars.contains_key("DATABASE_URL")).then(TestDatabase::create);
    if let Some(db) = &db {
        vars.insert("DATABASE_URL".into(), db.url());
        vars.entry("PALISADE_JWT_SECRET".into())
            .or_insert_with(|| TEST_SECRET.into());
    }
    if vars.contains_key("DATABASE_URL") {
        vars.entry("PALISADE_MFA_KEY".into())
            .or_insert_with(|| TEST_MFA_KEY.into());
    }
    let sources = Sources {
        env: vars,
        data_dir: Some(dir.path().to_string_lossy().into_owned()),
        ..Sources::default()
    };
    let settings = Settings::load(&sources).unwrap_or_else(|e| panic!("settings: {e:?}"));
    (settings, Scratch { _dir: dir, _db: db })
}

/// The real application.
pub async fn spawn_app(env: &[(&str, &str)]) -> TestApp {
    let (settings, scratch) = settings(env);
    let app = Application::build(settings).await.unwrap();
    let addr = app.local_addr().unwrap();
    let state = app.state().clone();
    let connections = app.connections();
    let metrics_addr = app.metrics_addr();
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        server: TestServer {
            addr,
            base: format!("http://{addr}"),
            client: client(),
            _scratch: scratch,
            _shared: None,
        },
        state,
        connections,
        metrics_addr,
    }
}

/// The real application serving HTTPS itself, with a certificate for
/// `localhost` from `ca`; [`TestServer::url`] and its client (which trusts
/// only `ca`) go through TLS, so every helper works unchanged.
pub async fn spawn_app_over_tls(env: &[(&str, &str)], ca: &crate::tls::Ca) -> TestApp {
    let files = tempfile::tempdir().unwrap();
    let (cert, key) = crate::tls::write_pair(files.path(), &ca.leaf());
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let mut env = env.to_vec();
    env.push(("PALISADE_TLS_CERT", &cert));
    env.push(("PALISADE_TLS_KEY", &key));
    let mut app = spawn_app(&env).await;
    app.server.base = crate::tls::url(app.addr, "");
    app.server.client = ca.client(app.addr, crate::tls::BOTH);
    app.server._shared = Some(Scratch {
        _dir: files,
        _db: None,
    });
    app
}

/// Runs `command` to its end off the async runtime (the servers under test
/// run on it, and must keep answering the program).
pub async fn output_of(mut command: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// `program` under coreutils `timeout`: killed after `secs` seconds.
pub fn bounded(secs: u32, program: &str) -> std::process::Command {
    let mut command = std::process::Command::new("timeout");
    command.args(["-k", "5", &secs.to_string(), program]);
    command
}

/// `n` instances of the real application on one database (a fresh
/// PostgreSQL database in the PostgreSQL run, one SQLite file otherwise)
/// with one configured signing secret, as a scaled-out deployment runs.
/// `env` is given to every instance (e.g. `REDIS_URL`).
pub async fn spawn_cluster(n: usize, env: &[(&str, &str)]) -> Vec<TestApp> {
    let shared = tempfile::tempdir().unwrap();
    let db = POSTGRES.then(TestDatabase::create);
    let url = match &db {
        Some(db) => db.url(),
        None => format!(
            "sqlite://{}?mode=rwc",
            shared.path().join("shared.db").display()
        ),
    };
    let mut env: Vec<(&str, &str)> = env.to_vec();
    env.push(("DATABASE_URL", &url));
    env.push(("PALISADE_JWT_SECRET", TEST_SECRET));
    let mut apps = Vec::new();
    for _ in 0..n {
        apps.push(spawn_app(&env).await);
    }
    // The first instance owns the shared database and folder.
    if let Some(first) = apps.first_mut() {
        first.server._shared = Some(Scratch {
            _dir: shared,
            _db: db,
        });
    }
    apps
}

/// Any router wrapped in Palisade's stack (as an embedding app would do),
/// served on a real socket.
pub async fn spawn_stack(router: Router, env: &[(&str, &str)]) -> TestServer {
    let (settings, scratch) = settings(env);
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
    TestServer {
        addr,
        base: format!("http://{addr}"),
        client: client(),
        _scratch: scratch,
        _shared: None,
    }
}

/// reqwest is built without a rustls provider of its own (it would bring
/// aws-lc-rs): ring, as the server, is installed as the process default.
pub fn install_crypto() {
    // ring, as the server (see src/http/tls.rs); a second install is a no-op.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn client() -> reqwest::Client {
    install_crypto();
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

/// A port nothing listens on now (for a program the test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Registers `username`, makes it an admin (in SQL: no route grants the
/// role to oneself) and logs it in: its access token.
pub async fn make_admin(app: &TestApp, username: &str) -> String {
    let user = app.register(username).await;
    sqlx::query("UPDATE users SET role = 'admin' WHERE id = $1")
        .bind(user["id"].as_str().unwrap())
        .execute(app.db())
        .await
        .unwrap();
    app.login(username).await.access_token
}

/// The python of a venv made by `setup` (a script under the repository
/// that prints it), for `what`.
pub fn venv_python(setup: &str, what: &str) -> String {
    let script = format!("{}/{setup}", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("bash")
        .arg(script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{what}'s venv: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
