//! Gateway mode (docs/gateway.md) in front of a real application: the
//! FastAPI example in `examples/fastapi-upstream`, run by uvicorn on its
//! own port. The application counts every request it sees (`/_count`),
//! so each refusal is checked to have stopped at Palisade; it verifies
//! `X-Palisade-Identity` against Palisade's JWKS with PyJWT, so every
//! identity it reports is one Palisade signed for it.

use std::io::{Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{
    TestApp, bounded, free_port, make_admin, output_of, problem, spawn_app, venv_python,
};

/// The application's python (its venv, made once).
fn python() -> String {
    venv_python("examples/fastapi-upstream/setup.sh", "the FastAPI example")
}

/// The FastAPI application under uvicorn; stopped when dropped.
struct Upstream {
    port: u16,
    child: Option<Child>,
    palisade: String,
    issuer: String,
    client: reqwest::Client,
}

impl Upstream {
    /// Starts the application on `port`, trusting the Palisade at
    /// `palisade` (`http://127.0.0.1:PORT`) whose `auth.issuer` is
    /// `issuer`.
    async fn start(port: u16, palisade: &str, issuer: &str) -> Self {
        let mut upstream = Self {
            port,
            child: None,
            palisade: palisade.to_owned(),
            issuer: issuer.to_owned(),
            client: reqwest::Client::new(),
        };
        upstream.run().await;
        upstream
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn run(&mut self) {
        let child = Command::new(python())
            .args(["-m", "uvicorn", "app:app", "--app-dir"])
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/examples/fastapi-upstream"
            ))
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--log-level", "warning"])
            .env(
                "PALISADE_JWKS_URL",
                format!("{}/.well-known/jwks.json", self.palisade),
            )
            .env("PALISADE_ISSUER", &self.issuer)
            .env("UPSTREAM_AUDIENCE", self.base())
            // Key rotations in the tests are seen at once.
            .env("PALISADE_JWKS_REFRESH_COOLDOWN", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = self
                .client
                .get(format!("{}/health", self.base()))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if up {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the FastAPI application did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What the application has seen: `{"total": n, "paths": {path: n}}`.
    async fn counts(&self) -> Value {
        self.client
            .get(format!("{}/_count", self.base()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// How many requests the application has seen on `path`.
    async fn seen(&self, path: &str) -> u64 {
        self.counts().await["paths"][path].as_u64().unwrap_or(0)
    }

    async fn total(&self) -> u64 {
        self.counts().await["total"].as_u64().unwrap()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The route table of these tests, as `PALISADE_GATEWAY_ROUTES` JSON.
fn routes() -> String {
    json!([
        {"path": "/public/*", "auth": "none"},
        {"path": "/api/data", "auth": "required", "limit": "data"},
        {"path": "/ai/generate", "auth": "required", "scope": "ai:generate", "limit": "ai"},
        {"path": "/admin/*", "auth": "required", "role": "admin"},
        {"path": "/whoami", "auth": "optional"},
        {"path": "/own-headers", "auth": "none"},
        {"path": "/upload", "auth": "required"},
        {"path": "/download", "auth": "none"},
        {"path": "/slow", "auth": "none"},
        {"path": "/stall", "auth": "none"},
        {"path": "/ws/*", "auth": "optional", "websocket": true},
        {"path": "/app/*", "auth": "optional"},
        {"path": "/app/private/*", "auth": "required", "role": "admin"},
    ])
    .to_string()
}

/// Palisade in gateway mode in front of the application.
async fn gateway(extra: &[(&str, &str)]) -> (TestApp, Upstream) {
    let port = free_port();
    let upstream_url = format!("http://127.0.0.1:{port}");
    let routes = routes();
    let mut env = vec![
        // The application's /api/data and /ai/generate, not Palisade's.
        ("PALISADE_SAMPLE_ROUTES", "false"),
        ("PALISADE_GATEWAY_UPSTREAM", upstream_url.as_str()),
        ("PALISADE_GATEWAY_ROUTES", routes.as_str()),
        ("PALISADE_METRICS_TOKEN", METRICS_TOKEN),
    ];
    env.extend_from_slice(extra);
    let app = spawn_app(&env).await;
    let issuer = app.state.settings.auth.issuer.clone();
    let upstream = Upstream::start(port, &app.url(""), &issuer).await;
    (app, upstream)
}

const METRICS_TOKEN: &str = "a-metrics-token-of-at-least-thirty-two-bytes";

async fn api_key(app: &TestApp, token: &str, scopes: &[&str]) -> String {
    let body = crate::api_keys::key(app, token, scopes).await;
    body["key"].as_str().unwrap().to_owned()
}

/// One raw HTTP/1.1 request, for targets an HTTP client would normalise;
/// the status code.
fn raw_status(app: &TestApp, target: &str) -> u16 {
    let mut stream = std::net::TcpStream::connect(app.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_forwards_only_what_its_route_table_allows_and_who_is_calling() {
    let (app, upstream) = gateway(&[]).await;

    // Anonymous on a required route: Palisade's 401; the application
    // never saw it.
    let response = app.get("/api/data").await;
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap()),
        Some("Bearer"),
        "{response:?}"
    );
    problem(response, 401).await;
    let response = app.get_as(&app.url("/api/data"), "not.a.token").await;
    problem(response, 401).await;
    assert_eq!(upstream.seen("/api/data").await, 0);

    // Deny by default: no pattern, no forwarding. Palisade's own routes
    // answer first.
    let before = upstream.total().await;
    problem(app.get("/nothing/here").await, 404).await;
    assert_eq!(app.get("/health/live").await.status(), 200);
    // Paths that could mean something else to the application.
    for target in [
        "/public/%2e%2e/admin/users",
        "/public/..%2Fadmin/users",
        "/public/../admin/users",
        "/public//x",
        // Tomcat's and Spring's `..;`, a letter escaped for a framework
        // that decodes before routing, a double escape.
        "/public/..;/admin/users",
        "/%61dmin/users",
        "/public/%252e%252e/admin",
        // Another route's rules by letter case (Express ignores it).
        "/app/PRIVATE/x",
    ] {
        assert_eq!(raw_status(&app, target), 400, "{target}");
    }
    let trace = app
        .client
        .request(reqwest::Method::TRACE, app.url("/public/hello"))
        .send()
        .await
        .unwrap();
    problem(trace, 405).await;
    // An exact pattern also takes the path with a trailing `/`.
    problem(app.get("/api/data/").await, 401).await;
    assert_eq!(
        upstream.total().await,
        before,
        "refused requests reached the application"
    );

    // An anonymous route passes, with the upstream's banners removed and
    // Palisade's security headers added.
    let response = app.get("/public/hello").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("server").is_none());
    assert!(response.headers().get("x-powered-by").is_none());
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert_eq!(response.json::<Value>().await.unwrap()["hello"], "world");
    // The application's own security headers are kept.
    let response = app.get("/own-headers").await;
    assert_eq!(response.headers()["x-frame-options"], "SAMEORIGIN");
    assert_eq!(
        response.headers()["content-security-policy"],
        "default-src 'self'"
    );

    // Signed in: the application verified the identity with the JWKS.
    let user = app.register("gwuser").await;
    let token = app.login("gwuser").await.access_token;
    let response = app.get_as(&app.url("/api/data"), &token).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("ratelimit").is_some());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"], "gwuser");
    assert_eq!(body["data"], "limited");

    // Spoofed identity headers never reach the application, anonymous
    // or signed in; the client's Authorization is not forwarded either.
    let spoofed = |request: reqwest::RequestBuilder| {
        request
            .header("X-Palisade-User-Id", "someone-else")
            .header("X-Palisade-Role", "super_admin")
            .header("X-Palisade-Identity", "forged")
            .header("X-Forwarded-For", "203.0.113.9")
            .header("X-Forwarded-User", "admin")
            .header("X-Original-URL", "/admin/users")
            .header("Connection", "x-request-id")
    };
    let seen: Value = spoofed(app.client.get(app.url("/whoami")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen["identity"], Value::Null, "{seen}");
    let names: Vec<&String> = seen["headers"].as_object().unwrap().keys().collect();
    assert!(
        !names.iter().any(|n| n.starts_with("x-palisade-")),
        "{names:?}"
    );
    assert_eq!(seen["headers"]["x-forwarded-for"], "127.0.0.1");
    assert!(seen["headers"].get("x-forwarded-user").is_none(), "{seen}");
    assert!(seen["headers"].get("x-original-url").is_none(), "{seen}");
    assert!(seen["headers"].get("x-request-id").is_some(), "{seen}");
    let response = spoofed(app.client.get(app.url("/whoami")).bearer_auth(&token))
        .send()
        .await
        .unwrap();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let seen: Value = response.json().await.unwrap();
    let headers = &seen["headers"];
    assert_eq!(headers["x-palisade-user-id"], user["id"], "{seen}");
    assert_eq!(headers["x-palisade-role"], "user");
    assert_eq!(headers["x-palisade-username"], "gwuser");
    assert_eq!(headers["x-palisade-auth-method"], "pwd");
    assert_eq!(seen["identity"]["sub"], user["id"]);
    assert_eq!(seen["identity"]["htu"], "/whoami");
    assert_eq!(seen["identity_headers_agree"], true);
    assert!(headers.get("authorization").is_none(), "{seen}");
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-request-id"], request_id.as_str());
    assert!(headers.get("x-forwarded-host").is_some());

    // The identity key is in the JWKS (HS256 access tokens publish none
    // of their own), and the identity token names it.
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    assert_eq!(keys[0]["crv"], "Ed25519");
    assert!(keys[0].get("d").is_none());

    // Role: a user is refused /admin/* before the application.
    problem(app.get_as(&app.url("/admin/users"), &token).await, 403).await;
    assert_eq!(upstream.seen("/admin/users").await, 0);
    let admin = make_admin(&app, "gwadmin").await;
    let response = app.get_as(&app.url("/admin/users"), &admin).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["seen_by"],
        "gwadmin"
    );

    // Scopes: a key works only where the route names a scope it has.
    let data_key = api_key(&app, &token, &["data:read"]).await;
    let ai_key = api_key(&app, &token, &["ai:generate"]).await;
    let generate = |key: &str| {
        app.client
            .post(app.url("/ai/generate"))
            .bearer_auth(key)
            .json(&json!({"prompt": "hello"}))
            .send()
    };
    problem(generate(&data_key).await.unwrap(), 403).await;
    problem(app.get_as(&app.url("/api/data"), &ai_key).await, 403).await;
    assert_eq!(upstream.seen("/ai/generate").await, 0);
    let response = generate(&ai_key).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["output"],
        "echo: hello"
    );
    // `/whoami` names no scope: the key is refused there.
    problem(app.get_as(&app.url("/whoami"), &ai_key).await, 403).await;
    // The application's own 4xx answers pass unchanged.
    let response = app
        .client
        .post(app.url("/ai/generate"))
        .bearer_auth(&token)
        .json(&json!({"prompt": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    assert!(response.json::<Value>().await.unwrap()["detail"].is_array());

    // Made-up API keys are not a fresh per-user budget each: they are
    // counted by address (`ai` is 10 an hour per user).
    let mut statuses = Vec::new();
    for i in 0..11 {
        let fake = format!("pal_ak_{i:0>43}");
        let response = generate(&fake).await.unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(&statuses[..10], [401; 10], "{statuses:?}");
    assert_eq!(statuses[10], 429, "{statuses:?}");

    // Per-route limits: `data` is 10 a minute per address, with the IETF
    // fields; the 11th request stops at Palisade.
    let before = upstream.seen("/api/data").await;
    let mut statuses = Vec::new();
    for _ in 0..11 {
        let response = app.get_as(&app.url("/api/data"), &token).await;
        if response.status() == 429 {
            assert!(response.headers().get("retry-after").is_some());
            assert!(
                response.headers()["ratelimit-policy"]
                    .to_str()
                    .unwrap()
                    .contains("\"data\"")
            );
        }
        statuses.push(response.status().as_u16());
    }
    // Five requests went before this loop, and count: the limit runs
    // before authentication, so refused ones (three 401s, the key's 403)
    // spend the budget too.
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&429));
    assert_eq!(upstream.seen("/api/data").await, before + 5);

    // Readiness names the upstream; metrics label by pattern, never by
    // the path a client sent.
    let ready: Value = app.get("/health/ready").await.json().await.unwrap();
    assert_eq!(ready["checks"]["upstream"], "ok");
    assert_eq!(ready["status"], "ok");
    let metrics = app
        .get_as(&app.url("/metrics"), METRICS_TOKEN)
        .await
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("route=\"/public/*\""), "{metrics}");
    assert!(metrics.contains("route=\"/api/data\""));
    assert!(metrics.contains("palisade_gateway_upstream_duration_seconds"));
    assert!(!metrics.contains("/public/hello"));
    assert!(!metrics.contains("/nothing/here"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_bounds_bodies_and_time_passes_websockets_and_survives_its_upstream() {
    let (app, mut upstream) = gateway(&[
        ("PALISADE_BODY_LIMIT", "65536"),
        ("PALISADE_GATEWAY_READ_TIMEOUT", "1s"),
    ])
    .await;
    app.register("gwbody").await;
    let token = app.login("gwbody").await.access_token;

    // A body under the limit streams through; one over it is 413 before
    // the application, whether its length is declared or not.
    let upload = |body: reqwest::Body| {
        app.client
            .post(app.url("/upload"))
            .bearer_auth(&token)
            .body(body)
            .send()
    };
    let response = upload(vec![b'x'; 60_000].into()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["bytes"], 60_000);
    problem(upload(vec![b'x'; 70_000].into()).await.unwrap(), 413).await;
    assert_eq!(upstream.seen("/upload").await, 1);
    let chunks = futures_util::stream::iter(
        (0..20).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'y'; 8192]))),
    );
    let response = upload(reqwest::Body::wrap_stream(chunks)).await.unwrap();
    assert_eq!(response.status(), 413);

    // A slow application: 504 after the read timeout, not a hang.
    let started = Instant::now();
    let response = app.get("/slow?seconds=5").await;
    let waited = started.elapsed();
    let body = problem(response, 504).await;
    assert!(waited < Duration::from_secs(4), "{waited:?}");
    assert!(!body["detail"].as_str().unwrap().contains("127.0.0.1"));
    // Fast enough: answered.
    assert_eq!(app.get("/slow?seconds=0.1").await.status(), 200);
    // A body that stalls midway is cut after the read timeout too: the
    // head and the first KiB arrive, then the connection closes.
    let started = Instant::now();
    let response = app.get("/stall?seconds=5").await;
    assert_eq!(response.status(), 200);
    let body = response.bytes().await;
    assert!(body.is_err(), "a stalled body was not cut: {body:?}");
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(4), "{waited:?}");

    // WebSocket through a route that allows it, with the identity.
    let ws = |path: &str, token: &str| {
        let mut command = bounded(20, &python());
        command
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/gateway/ws_client.py"
            ))
            .arg(format!("ws://{}{path}", app.addr))
            .arg(token)
            .args(["ping", "pong"]);
        output_of(command)
    };
    let out = ws("/ws/echo", &token).await;
    let lines = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        lines.lines().collect::<Vec<_>>(),
        ["{\"hello\":\"gwbody\"}", "ping", "pong"],
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An invalid token is refused at the handshake, by Palisade.
    let out = ws("/ws/echo", "not.a.token").await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "refused 401");
    // A handshake from a page of an origin not in cors.allowed_origins
    // is refused (browsers send that page's cookies with it).
    let upgrade = |path: &str, origin: Option<&str>| {
        let mut request = app
            .client
            .get(app.url(path))
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        request.send()
    };
    let response = upgrade("/ws/echo", Some("https://evil.example")).await;
    problem(response.unwrap(), 403).await;
    // A route without `websocket = true` refuses the upgrade.
    problem(upgrade("/whoami", None).await.unwrap(), 403).await;

    // The application stops: 502 at once, Palisade's own routes and
    // readiness (degraded) still answer; it comes back: forwarded again.
    upstream.stop();
    let started = Instant::now();
    let body = problem(app.get("/public/hello").await, 502).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(!body["detail"].as_str().unwrap().contains("refused"));
    let ready: Value = app.get("/health/ready").await.json().await.unwrap();
    assert_eq!(ready["status"], "degraded");
    assert_eq!(ready["checks"]["upstream"], "down");
    assert_eq!(app.get_profile(&token).await.status(), 200);
    upstream.run().await;
    assert_eq!(app.get("/public/hello").await.status(), 200);
    let ready: Value = app.get("/health/ready").await.json().await.unwrap();
    assert_eq!(ready["checks"]["upstream"], "ok");
}

/// A child process, stopped when dropped (also when the test fails).
struct Stopped(Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The resident and peak memory of process `pid`, in KiB (`VmRSS`,
/// `VmHWM` from /proc).
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {status}"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mib_download_streams_through_the_binary_with_flat_memory() {
    crate::helpers::install_crypto();
    // The real binary in its own process, so its memory is its own.
    let dir = tempfile::tempdir().unwrap();
    let (port, upstream_port) = (free_port(), free_port());
    let base = format!("http://127.0.0.1:{port}");
    let upstream_url = format!("http://127.0.0.1:{upstream_port}");
    let routes = json!([{"path": "/download", "auth": "none"}]).to_string();
    let mut command = Command::new(env!("CARGO_BIN_EXE_palisade"));
    command
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.path())
        .env_clear()
        .env("PALISADE_LOG_LEVEL", "warn")
        .env("PALISADE_GATEWAY_UPSTREAM", &upstream_url)
        .env("PALISADE_GATEWAY_ROUTES", &routes)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    // The download touches no table: the embedded database serves in
    // the PostgreSQL run too.
    let palisade = Stopped(command.spawn().unwrap());
    let pid = palisade.0.id();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client
        .get(format!("{base}/health/live"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(Instant::now() < deadline, "palisade did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let upstream = Upstream::start(upstream_port, &base, "palisade").await;
    // Warm the connection pool and the allocator, then measure.
    let small = client
        .get(format!("{base}/download?size=1048576"))
        .send()
        .await
        .unwrap();
    assert_eq!(small.bytes().await.unwrap().len(), 1_048_576);
    let (before, _) = memory_kib(pid);

    const SIZE: u64 = 200 * 1024 * 1024;
    let response = client
        .get(format!("{base}/download?size={SIZE}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.content_length(), Some(SIZE));
    let mut stream = response.bytes_stream();
    let mut received = 0u64;
    let mut peak_rss = before;
    let mut chunks = 0u64;
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        received += chunk.unwrap().len() as u64;
        chunks += 1;
        if chunks.is_multiple_of(256) {
            peak_rss = peak_rss.max(memory_kib(pid).0);
        }
    }
    assert_eq!(received, SIZE);
    let (_, hwm) = memory_kib(pid);
    drop(upstream);
    drop(palisade);
    // Buffering the body whole would add 200 MiB; streaming adds a few
    // buffers. 32 MiB leaves room for the allocator and the runtime.
    let grew = peak_rss.max(hwm).saturating_sub(before);
    eprintln!("RSS before {before} KiB, peak during {peak_rss} KiB, high-water {hwm} KiB");
    assert!(
        grew < 32 * 1024,
        "memory grew by {grew} KiB while streaming {SIZE} bytes"
    );
}

/// `palisade check-config` with `routes` as the table.
fn check_config(routes: &Value, extra: &[(&str, &str)]) -> std::process::Output {
    palisade(&["check-config"], routes, extra)
}

/// `palisade ARGS` with `routes` as the gateway's table, bounded in time.
fn palisade(args: &[&str], routes: &Value, extra: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let routes = routes.to_string();
    bounded(20, env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .arg("--data-dir")
        .arg(dir.path())
        .env_clear()
        .env("PALISADE_GATEWAY_UPSTREAM", "http://127.0.0.1:9")
        .env("PALISADE_GATEWAY_ROUTES", routes)
        .envs(extra.iter().copied())
        .current_dir(dir.path())
        .output()
        .unwrap()
}

#[test]
fn check_config_prints_the_route_table_and_refuses_every_problem_in_it() {
    let out = check_config(
        &json!([
            {"path": "/app/*", "auth": "required", "role": "editor", "limit": "data"},
            {"path": "/app/health", "auth": "none"},
            {"path": "/auth/*", "auth": "none"},
        ]),
        &[],
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("# Gateway: http://127.0.0.1:9/"),
        "{stdout}"
    );
    let table: Vec<&str> = stdout.lines().filter(|l| l.starts_with("#   /")).collect();
    assert_eq!(table.len(), 3, "{stdout}");
    // Exact patterns first, then the longest prefix.
    assert!(table[0].contains("/app/health"), "{table:?}");
    assert!(
        table[1].contains("/auth/*") && table[2].contains("/app/*"),
        "{table:?}"
    );
    assert!(table[2].contains("role=editor") && table[2].contains("limit=data"));
    // A prefix over Palisade's own routes: allowed, with a warning.
    assert!(
        stderr.contains("/auth/* also covers Palisade's own"),
        "{stderr}"
    );

    // Every problem at once.
    let out = check_config(
        &json!([
            {"path": "app", "auth": "required"},
            {"path": "/x", "auth": "maybe"},
            {"path": "/y", "auth": "required", "limit": "nope"},
            {"path": "/z", "auth": "required", "limit": "mail"},
            {"path": "/w", "auth": "none", "role": "admin"},
            {"path": "/v", "auth": "required", "colour": "red"},
            {"path": "/u", "auth": "none"},
            {"path": "/u", "auth": "none"},
        ]),
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for needle in [
        "\"app\" must start with `/`",
        "`auth` is \"maybe\"",
        "\"nope\" is not a rate-limit policy",
        "\"mail\" is keyed per account",
        "cannot ask for a role or a scope",
        "unknown key \"colour\"",
        "/u is listed twice",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }

    // An exact pattern Palisade's own route always answers.
    let out = check_config(&json!([{"path": "/api/data", "auth": "required"}]), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("can never match"), "{stderr}");
    // `serve` refuses it too.
    let out = palisade(
        &["serve", "--bind", "127.0.0.1:0"],
        &json!([{"path": "/api/data", "auth": "required"}]),
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("can never match"), "{stderr}");
    // Not with the samples off.
    let out = check_config(
        &json!([{"path": "/api/data", "auth": "required"}]),
        &[("PALISADE_SAMPLE_ROUTES", "false")],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `kid` in the header of a JWT.
fn kid_of(token: &str) -> String {
    use base64::Engine as _;
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_identity_key_signs_and_the_application_verifies_it_from_the_jwks() {
    let (app, _upstream) = gateway(&[("PALISADE_KEY_SET_REFRESH", "300ms")]).await;
    app.register("gwrotate").await;
    let token = app.login("gwrotate").await.access_token;
    let whoami = || async {
        let seen: Value = app
            .get_as(&app.url("/whoami"), &token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(seen["identity"]["username"], "gwrotate", "{seen}");
        kid_of(seen["headers"]["x-palisade-identity"].as_str().unwrap())
    };
    let first = whoami().await;

    let out = crate::session_cache::cli(&app, &["keys", "rotate", "--identity", "--now"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rotated: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(rotated["purpose"], "identity");
    assert_eq!(rotated["alg"], "EdDSA");
    let second = rotated["rotated"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    // `keys list` shows the identity set only (HS256 access tokens).
    let listed: Vec<Value> = stdout
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 2, "{stdout}");
    assert!(listed.iter().all(|k| k["purpose"] == "identity"));

    // Within a re-read, the instance signs with the new key; the
    // application, which has only cached the old one, fetches the JWKS
    // again for the unknown kid and verifies.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if whoami().await == second {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new identity key never signed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&first.as_str()) && kids.contains(&second.as_str()),
        "{jwks}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_accepts_no_connection_in_time_is_503() {
    // A listener that never accepts, its queue filled: the kernel drops
    // the next SYN, so a connection to it neither succeeds nor fails.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    while let Ok(Ok(stream)) = tokio::time::timeout(
        Duration::from_millis(300),
        tokio::net::TcpStream::connect(addr),
    )
    .await
    {
        held.push(stream);
        assert!(held.len() < 64, "the accept queue never filled");
    }
    let upstream = format!("http://{addr}");
    let app = spawn_app(&[
        ("PALISADE_GATEWAY_UPSTREAM", upstream.as_str()),
        (
            "PALISADE_GATEWAY_ROUTES",
            r#"[{"path": "/x", "auth": "none"}]"#,
        ),
        ("PALISADE_GATEWAY_CONNECT_TIMEOUT", "500ms"),
    ])
    .await;
    let started = Instant::now();
    let response = app.get("/x").await;
    let waited = started.elapsed();
    assert_eq!(response.headers()["retry-after"], "1");
    let body = problem(response, 503).await;
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert!(!body["detail"].as_str().unwrap().contains("127.0.0.1"));
    let ready: Value = app.get("/health/ready").await.json().await.unwrap();
    assert_eq!(ready["checks"]["upstream"], "down");
    drop(held);
    drop(listener);
}
