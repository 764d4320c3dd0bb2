//! Puts the client's address (and the key it is rate limited by) into the
//! request's extensions, for the limiter, the logs and the audit trail.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

use super::forwarded;
use crate::settings::ForwardedHeader;

/// The client of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp {
    /// The address, after trusted proxies.
    pub addr: IpAddr,
    /// The address as the limiter counts it (IPv6 reduced to its prefix).
    pub key: IpAddr,
    /// A trusted proxy said the client reached it over plain HTTP (so no
    /// `Strict-Transport-Security` on the answer, RFC 6797 §7.2).
    pub plain_http: bool,
}

/// What the middleware needs to know.
#[derive(Debug, Clone)]
pub struct ClientIpConfig {
    pub trusted_proxies: Arc<[IpNet]>,
    pub header: ForwardedHeader,
    pub ipv6_prefix: u8,
}

/// The middleware. Without `ConnectInfo` (an app served without
/// `into_make_service_with_connect_info`) no `ClientIp` is set.
pub async fn layer(State(config): State<ClientIpConfig>, mut req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        let addr = forwarded::client_ip(
            peer.ip(),
            req.headers(),
            config.header,
            &config.trusted_proxies,
        );
        let key = forwarded::limit_key(addr, config.ipv6_prefix);
        let plain_http = forwarded::says_plain_http(
            peer.ip(),
            req.headers(),
            config.header,
            &config.trusted_proxies,
        );
        req.extensions_mut().insert(ClientIp {
            addr,
            key,
            plain_http,
        });
    }
    next.run(req).await
}
