//! The ceiling for the benchmarks in `bench/run.sh`: a bare axum hello
//! endpoint with no middleware at all, built from the same dependencies
//! (and release profile) as palisade.
//!
//! `GET /` answers `{"data":"limited","status":"ok"}`, the same body as
//! palisade's `GET /api/data`.
//!
//! Usage: `bare_hello [ADDR]` (default `127.0.0.1:18081`). With
//! `BARE_TLS_CERT` and `BARE_TLS_KEY` (PEM files) it serves HTTPS instead,
//! HTTP/1.1 through hyper with the same rustls configuration as palisade
//! (the ceiling for the HTTPS scenario).

use axum::Json;
use axum::Router;
use axum::routing::get;
use serde::Serialize;

const DEFAULT_ADDR: &str = "127.0.0.1:18081";

#[derive(Serialize)]
struct Data {
    data: &'static str,
    status: &'static str,
}

async fn hello() -> Json<Data> {
    Json(Data {
        data: "limited",
        status: "ok",
    })
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("bare_hello: listening on {}", listener.local_addr()?);
    // `/private`: the same answer, the gateway scenario's authenticated
    // route (bench/run.sh scenario m).
    let app = Router::new()
        .route("/", get(hello))
        .route("/private", get(hello));
    match (
        std::env::var_os("BARE_TLS_CERT"),
        std::env::var_os("BARE_TLS_KEY"),
    ) {
        (Some(cert), Some(key)) => serve_tls(listener, app, cert.as_ref(), key.as_ref()).await,
        _ => axum::serve(listener, app).await,
    }
}

/// A plain accept loop: TLS handshake, then hyper's HTTP/1 connection.
async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: Router,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> std::io::Result<()> {
    use tower::ServiceExt;
    let config = palisade::http::tls::CertStore::load(cert, key)
        .and_then(|store| store.server_config())
        .map_err(std::io::Error::other)?;
    // HTTP/1.1 only (wrk's protocol): offer no h2.
    let mut config = (*config).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    loop {
        let (stream, _) = listener.accept().await?;
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service = hyper::service::service_fn(
                move |req: axum::extract::Request<hyper::body::Incoming>| {
                    app.clone().oneshot(req.map(axum::body::Body::new))
                },
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
        });
    }
}
