//! The gateway's side of the upstream: the connection pool, what a
//! failed exchange answers, the idle limit on the upstream's answer
//! bodies, and the WebSocket splice.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::error::ApiError;
use crate::settings::GatewaySettings;
use crate::telemetry::prom::GATEWAY_UPSTREAM_ERRORS;

pub(super) type UpstreamClient = Client<HttpsConnector<HttpConnector>, Body>;

/// The answer for a request the upstream did not take.
pub(super) fn failed(label: &str, e: &hyper_util::client::legacy::Error) -> Response {
    if caused_by::<http_body_util::LengthLimitError>(e).is_some() {
        return ApiError::PayloadTooLarge.into_response();
    }
    if e.is_connect() {
        // hyper-util's connector reports its connect timeout as an
        // io::Error of kind TimedOut.
        let timed_out = caused_by::<std::io::Error>(e)
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
        if timed_out {
            count_error(label, "connect_timeout");
            tracing::warn!(route = %label, "gateway: the upstream did not accept a connection in time");
            return upstream_problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "The upstream application is not accepting connections; try again shortly",
            );
        }
        count_error(label, "connect");
        tracing::warn!(route = %label, error = %source_chain(e), "gateway: cannot connect to the upstream");
        return upstream_problem(
            StatusCode::BAD_GATEWAY,
            "The upstream application is unreachable",
        );
    }
    count_error(label, "protocol");
    tracing::warn!(route = %label, error = %source_chain(e), "gateway: the upstream's answer failed");
    upstream_problem(
        StatusCode::BAD_GATEWAY,
        "The upstream application gave no valid answer",
    )
}

/// The upstream's answer body, cut (the client's connection is closed
/// mid-body) when the upstream sends nothing for `limit`: a stalled
/// upstream cannot hold a client's connection for ever.
pub(super) struct IdleTimeout<B> {
    inner: B,
    limit: Duration,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl<B> IdleTimeout<B> {
    pub(super) fn new(inner: B, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            deadline: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

impl<B> http_body::Body for IdleTimeout<B>
where
    B: http_body::Body + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = B::Data;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        match std::pin::Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + self.limit;
                self.deadline.as_mut().reset(next);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    tracing::warn!(limit = ?self.limit, "gateway: the upstream's answer stalled; cut");
                    Poll::Ready(Some(Err("the upstream's answer stalled".into())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Joins the client's upgraded connection to the upstream's and copies
/// both ways until either side closes.
pub(super) async fn splice(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    match tokio::try_join!(client, upstream) {
        Ok((client, upstream)) => {
            let mut client = TokioIo::new(client);
            let mut upstream = TokioIo::new(upstream);
            if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                tracing::debug!(error = %e, "gateway: WebSocket connection ended");
            }
        }
        Err(e) => tracing::debug!(error = %e, "gateway: WebSocket upgrade failed"),
    }
}

/// A 502/503/504 problem: the stack would turn a bare 5xx into the
/// generic 500 text, so the gateway writes its own.
pub(super) fn upstream_problem(status: StatusCode, detail: &str) -> Response {
    let mut response = crate::error::Problem::new(status, detail).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, http::HeaderValue::from_static("1"));
    }
    response
}

pub(super) fn count_error(label: &str, kind: &'static str) {
    metrics::counter!(GATEWAY_UPSTREAM_ERRORS, "route" => label.to_owned(), "kind" => kind)
        .increment(1);
}

/// The first error of type `T` in `e`'s source chain.
fn caused_by<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}

/// `e` and its causes, for the log (never for the client).
fn source_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut current = e.source();
    while let Some(err) = current {
        text.push_str(": ");
        text.push_str(&err.to_string());
        current = err.source();
    }
    text
}

/// The connection pool to the upstream: plain TCP for `http://`, rustls
/// for `https://` (the Mozilla roots and `gateway.upstream_ca_file`),
/// HTTP/1.1 with keep-alive.
pub(super) fn client(settings: &GatewaySettings) -> anyhow::Result<UpstreamClient> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = &settings.upstream_ca_file {
        let pem = std::fs::read(path)
            .with_context(|| format!("gateway.upstream_ca_file {}", path.display()))?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.with_context(|| {
                format!(
                    "gateway.upstream_ca_file {}: not PEM certificates",
                    path.display()
                )
            })?;
            roots.add(cert).with_context(|| {
                format!(
                    "gateway.upstream_ca_file {}: a certificate is not usable",
                    path.display()
                )
            })?;
        }
    }
    // ring, as for the server's own TLS (see `http::tls` for why it is
    // allowed though deprecated).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS for the upstream")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(settings.connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(https))
}
