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
mod upstream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, Uri, Version, header};
use url::Url;

use crate::auth::Authn;
use crate::auth::signing::SigningKeys;
use crate::error::ApiError;
use crate::http::client_ip::ClientIp;
use crate::http::upstream::{FromUpstream, RouteLabel};
use crate::settings::{AllowedOrigins, GatewaySettings, Settings};
use crate::telemetry::prom::GATEWAY_UPSTREAM_DURATION as UPSTREAM_DURATION;
use identity::Identities;
use upstream::{IdleTimeout, UpstreamClient, count_error, splice, upstream_problem};

/// The longest readiness probe of the upstream.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

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
        let client = upstream::client(gateway)?;
        let public = settings
            .server
            .public_url
            .as_deref()
            .and_then(|u| Url::parse(u).ok());
        let proto = if settings.server.tls.is_some()
            || public.as_ref().is_some_and(|u| u.scheme() == "https")
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
            public_host: public.and_then(|u| {
                let host = &u[url::Position::BeforeHost..url::Position::AfterPort];
                http::HeaderValue::from_str(host).ok()
            }),
            origins: settings.cors.allowed_origins.clone(),
        }))
    }

    /// The label of the route for `path`.
    fn label_of(&self, path: &str) -> Option<&Arc<str>> {
        Some(&self.labels[self.settings.route_index(path)?])
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
        let Some(index) = self.settings.route_index(&path) else {
            return ApiError::NotFound.into_response();
        };
        let (route, label) = (&self.settings.routes[index], &self.labels[index]);
        // A framework that routes without regard to case (Express, by
        // default) must not reach through `/ADMIN` what `/admin/*` guards.
        if path.bytes().any(|b| b.is_ascii_uppercase())
            && self
                .settings
                .route_index(&path.to_ascii_lowercase())
                .is_some_and(|other| other != index)
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
        let mut out = std::mem::take(&mut parts.headers);
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
        if let Err(e) =
            self.identities
                .stamp(&mut out, caller.as_ref(), parts.method.as_str(), uri.path())
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
            Ok(Err(e)) => return upstream::failed(&label, &e),
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
}

/// Labels a request the router has no route for with its gateway pattern
/// (for rate limits and metrics); runs outside both.
pub async fn label(State(gateway): State<Arc<Gateway>>, mut req: Request, next: Next) -> Response {
    if req.extensions().get::<MatchedPath>().is_none()
        && let Some(label) = gateway.label_of(req.uri().path())
    {
        req.extensions_mut().insert(RouteLabel(Arc::clone(label)));
    }
    next.run(req).await
}

/// The router's fallback in gateway mode.
pub async fn fallback(State(gateway): State<Arc<Gateway>>, req: Request) -> Response {
    gateway.forward(req).await
}
