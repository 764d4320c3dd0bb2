//! The ceiling for the benchmarks in `bench/run.sh`: a bare axum hello
//! endpoint with no middleware at all, built from the same dependencies
//! (and release profile) as palisade.
//!
//! `GET /` answers `{"data":"limited","status":"ok"}`, the same body as
//! palisade's `GET /api/data`.
//!
//! Usage: `bare_hello [ADDR]` (default `127.0.0.1:18081`).

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
    let app = Router::new().route("/", get(hello));
    axum::serve(listener, app).await
}
