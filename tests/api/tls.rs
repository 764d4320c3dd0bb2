//! Native TLS and HTTP/2: certificates made here (rcgen), real handshakes
//! over loopback with clients that trust only the test's own CA.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};

use crate::helpers::settings;

/// A certificate authority of the test's own.
pub(crate) struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    /// The CA certificate in PEM, for clients outside this process.
    pub(crate) pem: String,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Self {
            der: cert.der().clone(),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `localhost`: (chain PEM, key PEM).
    pub(crate) fn leaf(&self) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A rustls client configuration trusting this CA only, offering
    /// `alpn`.
    fn client_config(&self, alpn: &[&[u8]]) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        // ring, as the server (see src/http/tls.rs).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config
    }

    /// A reqwest client trusting this CA only, reaching `localhost` at
    /// `addr`.
    pub(crate) fn client(&self, addr: SocketAddr, alpn: &[&[u8]]) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_backend_preconfigured(self.client_config(alpn))
            .resolve("localhost", addr)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }
}

pub(crate) const BOTH: &[&[u8]] = &[b"h2", b"http/1.1"];
const HTTP1: &[&[u8]] = &[b"http/1.1"];

/// Writes the pair to `dir`; their paths.
pub(crate) fn write_pair(dir: &Path, (cert, key): &(String, String)) -> (PathBuf, PathBuf) {
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    (cert_path, key_path)
}

/// The real application over TLS, with `env` added.
async fn spawn_tls(
    cert: &Path,
    key: &Path,
    env: &[(&str, &str)],
) -> (SocketAddr, palisade::startup::Application) {
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let mut env: Vec<(&str, &str)> = env.to_vec();
    env.push(("PALISADE_TLS_CERT", &cert));
    env.push(("PALISADE_TLS_KEY", &key));
    let (settings, scratch) = settings(&env);
    let app = palisade::startup::Application::build(settings)
        .await
        .unwrap();
    // The scratch folder (and database) live as long as the test process.
    std::mem::forget(scratch);
    (app.local_addr().unwrap(), app)
}

pub(crate) fn url(addr: SocketAddr, path: &str) -> String {
    format!("https://localhost:{}{path}", addr.port())
}

#[tokio::test]
async fn https_serves_http2_and_http1_by_alpn_with_the_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("palisade test CA");
    let (cert, key) = write_pair(dir.path(), &ca.leaf());
    let (addr, app) = spawn_tls(&cert, &key, &[]).await;
    assert!(app.is_tls());
    let counters = app.connections();
    tokio::spawn(app.run_until(std::future::pending()));

    let h2 = ca.client(addr, BOTH);
    let response = h2.get(url(addr, "/api/data")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_2);
    crate::helpers::assert_hardened(&response);
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=63072000; includeSubDomains"
    );
    // A whole flow over HTTP/2: register, log in, read the profile.
    let created = h2
        .post(url(addr, "/auth/register"))
        .json(&serde_json::json!({
            "username": "tls_user", "email": "tls@example.org",
            "name": "TLS User", "password": crate::helpers::PASSWORD
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let token: serde_json::Value = h2
        .post(url(addr, "/auth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "tls_user"),
            ("password", crate::helpers::PASSWORD),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let profile = h2
        .get(url(addr, "/profile"))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(profile.status(), 200);
    assert_eq!(profile.version(), http::Version::HTTP_2);

    let h1 = ca.client(addr, HTTP1);
    let response = h1.get(url(addr, "/health/live")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_11);
    assert!(response.headers().contains_key("strict-transport-security"));

    // A header list over the HTTP/2 limit (16 KiB) is refused with 431;
    // the connection goes on serving.
    let big = "x".repeat(20_000);
    let refused = h2
        .get(url(addr, "/health/live"))
        .header("x-big", &big)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 431);
    let after = h2.get(url(addr, "/health/live")).send().await.unwrap();
    assert_eq!(after.status(), 200);

    // Plain HTTP to the TLS port: no answer, the connection is closed.
    crate::helpers::install_crypto();
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/health/live", addr.port()))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
    // A client that does not trust the certificate gets no answer either.
    let stranger = Ca::new("another CA").client(addr, BOTH);
    assert!(
        stranger
            .get(url(addr, "/health/live"))
            .send()
            .await
            .is_err()
    );
    use std::sync::atomic::Ordering::Relaxed;
    assert!(counters.http2.load(Relaxed) >= 1);
    // Both refused handshakes are counted (the server learns of the
    // stranger's refusal from its alert, a moment after the client).
    let started = Instant::now();
    while counters.tls_handshake_failures.load(Relaxed) < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{} handshake failures counted",
            counters.tls_handshake_failures.load(Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_changed_certificate_is_served_to_new_connections_and_open_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (Ca::new("old CA"), Ca::new("new CA"));
    let (cert, key) = write_pair(dir.path(), &old_ca.leaf());
    let (addr, app) = spawn_tls(&cert, &key, &[("PALISADE_TLS_RELOAD_INTERVAL", "100ms")]).await;
    tokio::spawn(app.run_until(std::future::pending()));

    // An HTTP/2 connection opened with the old certificate.
    let open = old_ca.client(addr, BOTH);
    assert_eq!(
        open.get(url(addr, "/health/live"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let fresh = |ca: &Ca| {
        let client = ca.client(addr, BOTH);
        async move { client.get(url(addr, "/health/live")).send().await.is_ok() }
    };
    assert!(!fresh(&new_ca).await);

    // Replaced in place, cert then key: in between, the pair does not
    // match and the reload must keep the old one rather than fail.
    let (new_cert, new_key) = new_ca.leaf();
    std::fs::write(&cert, new_cert).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(fresh(&old_ca).await, "a half-written pair was loaded");
    std::fs::write(&key, new_key).unwrap();
    let started = Instant::now();
    while !fresh(&new_ca).await {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the new certificate was not served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !fresh(&old_ca).await,
        "new connections still get the old one"
    );
    // The connection opened before the swap is still served: a new one
    // would need the new certificate, which this client does not trust.
    assert_eq!(
        open.get(url(addr, "/health/live"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn a_bad_certificate_or_key_stops_start_up_without_showing_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("CA");
    let (cert, key) = write_pair(dir.path(), &ca.leaf());
    let (_, other_key) = ca.leaf();
    let other_key_path = dir.path().join("other.pem");
    std::fs::write(&other_key_path, &other_key).unwrap();
    let key_text = std::fs::read_to_string(&key).unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let missing = dir.path().join("missing.pem");

    let cases: [(&Path, &Path, &str); 4] = [
        (&cert, &other_key_path, "does not belong to the certificate"),
        (&garbage, &key, "no PEM certificate"),
        (&cert, &garbage, "no PEM private key"),
        (&missing, &key, "cannot read"),
    ];
    for (cert, key, expected) in cases {
        let (c, k) = (cert.display().to_string(), key.display().to_string());
        let (settings, _scratch) = settings(&[("PALISADE_TLS_CERT", &c), ("PALISADE_TLS_KEY", &k)]);
        let error = palisade::startup::Application::build(settings)
            .await
            .unwrap_err();
        let text = format!("{error:#} {error:?}");
        assert!(text.contains(expected), "{expected}: {text}");
        for secret in [&key_text, &other_key] {
            let body = secret.lines().nth(1).unwrap();
            assert!(!text.contains(body), "key material in the error: {text}");
        }
    }

    // One without the other is a configuration error.
    let c = cert.display().to_string();
    let sources = palisade::settings::Sources {
        env: [("PALISADE_TLS_CERT".to_owned(), c)].into(),
        data_dir: Some(dir.path().display().to_string()),
        ..Default::default()
    };
    let problems = format!(
        "{:?}",
        palisade::settings::Settings::load(&sources).unwrap_err()
    );
    assert!(problems.contains("server.tls_key"), "{problems}");
}

/// The idle and header timeouts hold on TLS: a silent TCP connection, a
/// handshake with no request after it, and an idle HTTP/2 connection are
/// all closed.
#[tokio::test]
async fn silent_and_idle_connections_are_closed_on_tls_too() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("CA");
    let (cert, key) = write_pair(dir.path(), &ca.leaf());
    let (addr, app) = spawn_tls(
        &cert,
        &key,
        &[
            ("PALISADE_HEADER_READ_TIMEOUT", "300ms"),
            ("PALISADE_KEEP_ALIVE_TIMEOUT", "600ms"),
        ],
    )
    .await;
    tokio::spawn(app.run_until(std::future::pending()));

    // Silent before the handshake.
    let started = Instant::now();
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut silent, &mut buf),
    )
    .await
    .expect("the silent connection was not closed");
    assert!(matches!(read, Ok(0)) || read.is_err(), "{read:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // Handshake done, then nothing.
    let connector = tokio_rustls::TlsConnector::from(Arc::new(ca.client_config(HTTP1)));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut tls, &mut buf),
    )
    .await
    .expect("the connection was not closed");
    assert!(matches!(read, Ok(0)) || read.is_err(), "{read:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // HTTP/2: one request, then idle past the keep-alive timeout.
    let connector = tokio_rustls::TlsConnector::from(Arc::new(ca.client_config(&[b"h2"])));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    let driver = tokio::spawn(connection);
    let request = http::Request::get(format!("https://localhost:{}/health/live", addr.port()))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let _ = response.into_body().collect().await.unwrap();
    let idle_since = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), driver)
        .await
        .expect("the idle HTTP/2 connection was not closed")
        .unwrap()
        .ok();
    assert!(
        idle_since.elapsed() >= Duration::from_millis(500),
        "closed too early: {:?}",
        idle_since.elapsed()
    );
}

/// The binary reloads on SIGHUP (file checks off), and keeps serving.
#[tokio::test]
async fn sighup_reloads_the_certificate_in_the_running_binary() {
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (Ca::new("old CA"), Ca::new("new CA"));
    let (cert, key) = write_pair(dir.path(), &old_ca.leaf());
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    let (server, addr) = crate::binary::start_with(
        dir.path(),
        &[
            ("PALISADE_TLS_CERT", &c),
            ("PALISADE_TLS_KEY", &k),
            ("PALISADE_TLS_RELOAD_INTERVAL", "0s"),
        ],
    );
    let addr: SocketAddr = addr.parse().unwrap();
    let get = |ca: &Ca| {
        let client = ca.client(addr, BOTH);
        async move { client.get(url(addr, "/health/live")).send().await.is_ok() }
    };
    assert!(get(&old_ca).await);
    write_pair(dir.path(), &new_ca.leaf());
    // No file checks: the old one until told.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(get(&old_ca).await);
    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    while !get(&new_ca).await {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "SIGHUP did not reload"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!get(&old_ca).await);
}
