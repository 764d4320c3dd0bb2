//! Gateway mode: Palisade in front of an application written in any
//! language. The paths of `gateway.routes` that Palisade's own routes do
//! not answer are forwarded to `gateway.upstream` after the same stack
//! as every other request (security headers, CORS, body limit, timeout,
//! rate limits by the route's policies), the route's auth rules
//! ([`caller`]) and the identity stamp ([`identity`]). Every other path is
//! 404: deny by default.
//!
//! Bodies stream both ways (nothing is buffered whole); the upstream
//! connection pool is hyper-util's. An upstream that refuses connections
//! is 502 at once, one that does not accept in `gateway.connect_timeout`
//! is 503, one that does not answer in `gateway.read_timeout` is 504, and
//! an answer whose body stalls for `gateway.read_timeout` is cut.
//! WebSocket upgrades pass on the routes that allow them.

mod caller;
pub mod headers;
pub mod identity;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, Uri, Version, header};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use url::Url;

use crate::auth::Authn;
use crate::auth::signing::SigningKeys;
use crate::error::ApiError;
use crate::http::client_ip::ClientIp;
use crate::http::upstream::{FromUpstream, RouteLabel};
use crate::settings::{AllowedOrigins, GatewayRoute, GatewaySettings, Settings};
use crate::telemetry::prom::{
    GATEWAY_UPSTREAM_DURATION as UPSTREAM_DURATION, GATEWAY_UPSTREAM_ERRORS as UPSTREAM_ERRORS,
};
use identity::Identities;

/// The longest readiness probe of the upstream.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

type UpstreamClient = Client<HttpsConnector<HttpConnector>, Body>;

/// The gateway: the route table, the upstream's connection pool and the
/// identity signer.
pub struct Gateway {
    settings: GatewaySettings,
    /// One label per route, in the table's order.
    labels: Vec<Arc<str>>,
    upstream: Url,
    client: UpstreamClient,
    identities: Identities,
    authn: Authn,
    /// `X-Forwarded-Proto` when no trusted proxy says otherwise.
    proto: &'static str,
    /// `X-Forwarded-Host`: `server.public_url`'s host, when it is set.
    public_host: Option<http::HeaderValue>,
    /// Where WebSocket handshakes may come from (`cors.allowed_origins`).
    origins: AllowedOrigins,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("upstream", &self.upstream.as_str())
            .field("routes", &self.settings.routes.len())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// The gateway of `settings`, or `None` when `gateway.upstream` is
    /// unset. `identity_keys` is the Ed25519 identity set.
    pub fn new(
        settings: &Settings,
        authn: Authn,
        identity_keys: Arc<SigningKeys>,
    ) -> anyhow::Result<Option<Self>> {
        let gateway = &settings.gateway;
        let (Some(upstream), Some(audience)) = (gateway.upstream.clone(), gateway.audience())
        else {
            return Ok(None);
        };
        let client = client(gateway)?;
        let proto = if settings.server.tls.is_some()
            || settings
                .server
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"))
        {
            "https"
        } else {
            "http"
        };
        Ok(Some(Self {
            labels: gateway
                .routes
                .iter()
                .map(|r| Arc::from(r.pattern.to_text()))
                .collect(),
            settings: gateway.clone(),
            upstream,
            client,
            identities: Identities::new(identity_keys, settings.auth.issuer.clone(), audience),
            authn,
            proto,
            public_host: settings
                .server
                .public_url
                .as_deref()
                .and_then(|u| Url::parse(u).ok())
                .and_then(|u| {
                    let host = u.host_str()?.to_owned();
                    let host = match u.port() {
                        Some(port) => format!("{host}:{port}"),
                        None => host,
                    };
                    http::HeaderValue::from_str(&host).ok()
                }),
            origins: settings.cors.allowed_origins.clone(),
        }))
    }

    fn route(&self, path: &str) -> Option<(&GatewayRoute, &Arc<str>)> {
        let route = self.settings.route_for(path)?;
        let i = self
            .settings
            .routes
            .iter()
            .position(|r| std::ptr::eq(r, route))?;
        Some((route, &self.labels[i]))
    }

    /// The upstream's URI for a request to `uri`: the upstream's base
    /// path, then the request's own path and query.
    fn upstream_uri(&self, uri: &Uri) -> Result<Uri, http::Error> {
        let base = self.upstream.as_str().trim_end_matches('/');
        let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
        Ok(Uri::try_from(format!("{base}{path_and_query}"))?)
    }

    /// Whether a WebSocket handshake's `Origin` is allowed: none (not a
    /// browser), or one of `cors.allowed_origins`.
    fn origin_allowed(&self, headers: &http::HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        match &self.origins {
            AllowedOrigins::Any => true,
            AllowedOrigins::List(list) => list
                .iter()
                .any(|o| o.as_bytes().eq_ignore_ascii_case(origin.as_bytes())),
        }
    }

    /// Whether the upstream accepts a TCP connection within the connect
    /// timeout, at most half a second (readiness: a cheap probe with no
    /// request the application would see, short enough for an
    /// orchestrator's one-second probe).
    pub async fn probe(&self) -> bool {
        let Some(host) = self.upstream.host_str() else {
            return false;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let Some(port) = self.upstream.port_or_known_default() else {
            return false;
        };
        matches!(
            tokio::time::timeout(
                self.settings.connect_timeout.min(PROBE_TIMEOUT),
                tokio::net::TcpStream::connect((host, port)),
            )
            .await,
            Ok(Ok(_))
        )
    }

    /// Answers a request the router has no route for: forwarded when a
    /// gateway pattern matches and the caller passes its rules, else the
    /// refusal.
    pub async fn forward(&self, mut req: Request) -> Response {
        let path = req.uri().path().to_owned();
        if let Some(why) = headers::unsafe_path(&path) {
            return ApiError::BadRequest(format!("The path has {why}, which is not forwarded"))
                .into_response();
        }
        let Some((route, label)) = self.route(&path) else {
            return ApiError::NotFound.into_response();
        };
        // A framework that routes without regard to case (Express, by
        // default) must not reach through `/ADMIN` what `/admin/*` guards.
        if path.bytes().any(|b| b.is_ascii_uppercase())
            && self
                .route(&path.to_ascii_lowercase())
                .is_some_and(|(other, _)| !std::ptr::eq(other, route))
        {
            return ApiError::BadRequest(
                "The path's letter case makes it match another gateway route; it is not forwarded"
                    .into(),
            )
            .into_response();
        }
        if matches!(req.method(), &http::Method::CONNECT | &http::Method::TRACE) {
            return crate::error::Problem::for_status(StatusCode::METHOD_NOT_ALLOWED)
                .into_response();
        }
        let websocket = headers::is_websocket_upgrade(req.headers());
        if websocket && !route.websocket {
            return ApiError::Denied("WebSocket upgrades are not allowed on this path".into())
                .into_response();
        }
        if websocket && !self.origin_allowed(req.headers()) {
            // Browsers send any page's cookies with a WebSocket handshake,
            // and CORS does not apply to it (RFC 6455 §10.2).
            return ApiError::Denied(
                "WebSocket connections are not allowed from this origin".into(),
            )
            .into_response();
        }
        let caller = match caller::resolve(&self.authn, route, req.headers()).await {
            Ok(caller) => caller,
            Err(refusal) => return refusal.into_response(),
        };
        let client_upgrade = websocket.then(|| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        // The public host when one is configured, so an application that
        // builds absolute URLs from `X-Forwarded-Host` cannot be handed a
        // client's `Host`; else the request's own.
        let host = self.public_host.clone().or_else(|| {
            parts.headers.get(header::HOST).cloned().or_else(|| {
                parts
                    .uri
                    .authority()
                    .and_then(|a| http::HeaderValue::from_str(a.as_str()).ok())
            })
        });
        let request_id = parts
            .extensions
            .get::<crate::http::request_id::RequestId>()
            .map(|id| id.0.clone());
        let origin = headers::Origin {
            client: parts.extensions.get::<ClientIp>().map(|c| c.addr),
            proto: match parts.extensions.get::<ClientIp>() {
                Some(c) if c.plain_http => "http",
                _ => self.proto,
            },
            host: host.as_ref(),
            request_id: request_id.as_ref(),
        };
        let mut out = http::HeaderMap::new();
        std::mem::swap(&mut out, &mut parts.headers);
        headers::request(
            &mut out,
            &origin,
            websocket,
            self.settings.forward_authorization,
        );
        out.remove(header::HOST);
        let uri = match self.upstream_uri(&parts.uri) {
            Ok(uri) => uri,
            Err(_) => {
                return ApiError::BadRequest("The request target cannot be forwarded".into())
                    .into_response();
            }
        };
        // `htu` is the path the application receives (its base path
        // included).
        let method = parts.method.as_str().to_owned();
        if let Err(e) = self
            .identities
            .stamp(&mut out, caller.as_ref(), &method, uri.path())
        {
            tracing::error!(error = %e, "gateway: no identity key can sign");
            return ApiError::Unavailable("The identity signer is unavailable".into())
                .into_response();
        }
        let mut upstream_req = http::Request::new(body);
        *upstream_req.method_mut() = parts.method;
        *upstream_req.uri_mut() = uri;
        *upstream_req.version_mut() = Version::HTTP_11;
        *upstream_req.headers_mut() = out;
        let started = Instant::now();
        let sent = tokio::time::timeout(
            self.settings.read_timeout,
            self.client.request(upstream_req),
        )
        .await;
        let label = label.to_string();
        let mut response = match sent {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => return self.failed(&label, &e),
            Err(_) => {
                count_error(&label, "timeout");
                tracing::warn!(route = %label, timeout = ?self.settings.read_timeout, "gateway: the upstream did not answer in time");
                return upstream_problem(
                    StatusCode::GATEWAY_TIMEOUT,
                    "The upstream application did not answer in time",
                );
            }
        };
        metrics::histogram!(UPSTREAM_DURATION, "route" => label.clone())
            .record(started.elapsed().as_secs_f64());
        let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        if switching && client_upgrade.is_none() {
            count_error(&label, "protocol");
            return upstream_problem(
                StatusCode::BAD_GATEWAY,
                "The upstream application gave no valid answer",
            );
        }
        let upstream_upgrade = switching.then(|| hyper::upgrade::on(&mut response));
        let (mut parts, body) = response.into_parts();
        headers::response(&mut parts.headers, switching);
        parts.extensions.insert(FromUpstream);
        if let (Some(client), Some(upstream)) = (client_upgrade, upstream_upgrade) {
            tokio::spawn(splice(client, upstream));
            return Response::from_parts(parts, Body::empty());
        }
        Response::from_parts(
            parts,
            Body::new(IdleTimeout::new(body, self.settings.read_timeout)),
        )
    }

    /// The answer for a request the upstream did not take.
    fn failed(&self, label: &str, e: &hyper_util::client::legacy::Error) -> Response {
        if caused_by::<http_body_util::LengthLimitError>(e).is_some() {
            return ApiError::PayloadTooLarge.into_response();
        }
        if e.is_connect() {
            let timed_out = caused_by::<std::io::Error>(e)
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
                || format!("{e:#}").contains("timed out")
                || source_chain(e).contains("timeout");
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
}

/// The upstream's answer body, cut (the client's connection is closed
/// mid-body) when the upstream sends nothing for `limit`: a stalled
/// upstream cannot hold a client's connection for ever.
struct IdleTimeout<B> {
    inner: B,
    limit: Duration,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl<B> IdleTimeout<B> {
    fn new(inner: B, limit: Duration) -> Self {
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
async fn splice(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
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
fn upstream_problem(status: StatusCode, detail: &str) -> Response {
    let mut response = crate::error::Problem::new(status, detail).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, http::HeaderValue::from_static("1"));
    }
    response
}

fn count_error(label: &str, kind: &'static str) {
    metrics::counter!(UPSTREAM_ERRORS, "route" => label.to_owned(), "kind" => kind).increment(1);
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
fn client(settings: &GatewaySettings) -> anyhow::Result<UpstreamClient> {
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

/// Labels a request the router has no route for with its gateway pattern
/// (for rate limits and metrics); runs outside both.
pub async fn label(State(gateway): State<Arc<Gateway>>, mut req: Request, next: Next) -> Response {
    if req.extensions().get::<MatchedPath>().is_none()
        && let Some((_, label)) = gateway.route(req.uri().path())
    {
        req.extensions_mut().insert(RouteLabel(Arc::clone(label)));
    }
    next.run(req).await
}

/// The router's fallback in gateway mode.
pub async fn fallback(State(gateway): State<Arc<Gateway>>, req: Request) -> Response {
    gateway.forward(req).await
}
