//! What the stack needs to know about requests and responses that pass
//! through to an upstream application (gateway mode), without knowing the
//! gateway: the pattern a request matched, and a mark on the answers that
//! came from the upstream.

use std::sync::Arc;

/// A request extension: the gateway pattern of a path the router does not
/// have. Rate limiting takes the pattern's policies by it, and metrics
/// label the request with it (never with the raw path).
#[derive(Debug, Clone)]
pub struct RouteLabel(pub Arc<str>);

/// A response extension: this answer is the upstream's. Problem details
/// leave its error bodies alone (except a 500 that is not problem+json:
/// a framework's error page never reaches a client), and security
/// headers are added only where the upstream did not set its own.
#[derive(Debug, Clone, Copy)]
pub struct FromUpstream;
