//! HTTP plumbing that knows nothing about users or databases: the layer
//! stack ([`stack::apply`]), client addresses, request ids, CORS, security
//! headers, the rate-limit and request-metrics middlewares, problem details and extractors whose
//! every rejection is a problem; the connection server and native TLS.
//! The application is assembled from these
//! and the feature routes in `routes::router`.

pub mod client_ip;
pub mod cors;
pub mod extract;
pub mod forwarded;
pub mod host;
pub mod metrics;
pub mod problem;
pub mod rate_limit;
pub mod request_id;
pub mod security_headers;
pub mod server;
pub mod stack;
pub mod timeout;
pub mod tls;
pub mod upstream;
