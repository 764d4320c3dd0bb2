//! Serving connections: hyper's HTTP/1 connection builder with a timer, so
//! that no client can hold a connection (or a file descriptor) for ever.
//!
//! `axum::serve` runs hyper without a timer: no header-read timeout applies
//! and the number of connections is unbounded, so silent or half-open
//! connections pile up until the process runs out of file descriptors and
//! refuses everyone. Here:
//!
//! - **First request.** A new connection must deliver its first request's
//!   headers within `server.header_read_timeout` (10 s), or it is closed.
//! - **Between requests.** hyper's own header-read timer, set to
//!   `server.keep_alive_timeout` (60 s), starts whenever a connection waits
//!   for a request: an idle keep-alive connection, or one trickling a later
//!   request's headers, is closed after it.
//! - **How many.** At most `max_connections` connections are served at
//!   once. When all slots are taken, a new connection closes the oldest
//!   connection that has not sent a single request yet (an idle flood
//!   cannot keep newcomers out: they replace it), then waits up to
//!   [`WAIT_FOR_SLOT`] for a slot and is closed if none frees up. At most
//!   [`ConnectionLimits::max_waiting`] wait at a time (the rest are closed
//!   at once), so waiting cannot exhaust descriptors either. Connections
//!   that have sent a request are never closed for a newcomer.
//! - **TLS.** With a certificate configured, the handshake counts against
//!   the first request's deadline, and ALPN picks the protocol: `h2` is
//!   served by hyper's HTTP/2 connection (at most
//!   `server.http2_max_concurrent_streams` streams and
//!   `server.http2_max_header_list_size` of headers; h2's defences against
//!   rapid reset stay on), anything else by the same HTTP/1 builder as
//!   plain connections. An HTTP/2 connection with no request in flight for
//!   `server.keep_alive_timeout` is closed, as an idle HTTP/1 one is.
//! - **Shutdown.** The listener closes, open connections finish their
//!   in-flight request and close (hyper's graceful shutdown), bounded by
//!   the caller's drain limit.
//! - **Upgrades.** HTTP/1 connections may switch protocols (the gateway's
//!   WebSocket pass-through); the upgraded stream leaves the connection's
//!   slot and timers with the upgrade.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tower::{Service, ServiceExt};

/// How long a connection over the cap waits for a slot before it is
/// closed.
pub const WAIT_FOR_SLOT: Duration = Duration::from_secs(1);

/// The connection-level limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub max_connections: usize,
    pub http2_max_concurrent_streams: u32,
    pub http2_max_header_list_size: u32,
}

impl ConnectionLimits {
    /// How many connections over the cap may wait for a slot at once.
    pub fn max_waiting(&self) -> usize {
        (self.max_connections / 16).clamp(16, 1024)
    }
}

/// Counters of what the connection limits did, for operations.
#[derive(Debug, Default)]
pub struct ConnectionCounters {
    pub accepted: AtomicU64,
    /// Closed because the first request's headers did not come in time.
    pub header_timeouts: AtomicU64,
    /// Closed because no slot freed up in time, or too many waited.
    pub refused_over_cap: AtomicU64,
    /// Closed, before their first request, to make room for a newcomer.
    pub evicted: AtomicU64,
    /// TLS handshakes that failed (a plain-HTTP client, an unknown
    /// protocol version, a client that does not trust the certificate).
    pub tls_handshake_failures: AtomicU64,
    /// Connections that negotiated HTTP/2.
    pub http2: AtomicU64,
    pub open: AtomicUsize,
}

/// Serves `router` on `listener` under `limits` (over TLS when `tls` is
/// given) until `stop` completes, then drains for at most `drain`.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    tls: Option<Arc<rustls::ServerConfig>>,
    counters: Arc<ConnectionCounters>,
    stop: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let idle = Arc::new(IdleConnections::default());
    let waiting = Arc::new(AtomicUsize::new(0));
    // `true` asks every connection to finish its request and close; the
    // sender's `closed()` says they all have.
    let (shutdown, _) = watch::channel(false);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.keep_alive_timeout)
        .keep_alive(true);
    let mut h2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .max_header_list_size(limits.http2_max_header_list_size)
        // h2's rapid-reset defences, pinned rather than left to defaults:
        // streams the client resets before they are accepted
        // (CVE-2023-44487), and resets the client provokes from the server
        // (CVE-2025-8671), past which the connection is closed.
        .max_pending_accept_reset_streams(20)
        .max_local_error_reset_streams(1024);
    let builders = Arc::new(Builders {
        http1: builder,
        http2: h2,
        tls: tls.map(tokio_rustls::TlsAcceptor::from),
    });
    let mut make_service = router.into_make_service_with_connect_info::<SocketAddr>();
    tokio::pin!(stop);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    if !is_per_connection(&e) {
                        // Out of descriptors or memory: wait instead of spinning.
                        tracing::error!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
            () = &mut stop => break,
        };
        counters.accepted.fetch_add(1, Ordering::Relaxed);
        let Ok(service) = make_service.call(addr).await;
        let connection = Connection {
            builders: Arc::clone(&builders),
            service,
            limits,
            counters: Arc::clone(&counters),
            shutdown: shutdown.subscribe(),
            idle: Arc::clone(&idle),
        };
        let slot = Arc::clone(&slots).try_acquire_owned().ok().or_else(|| {
            let slot = idle.evict_oldest()?;
            counters.evicted.fetch_add(1, Ordering::Relaxed);
            Some(slot)
        });
        match slot {
            Some(slot) => {
                tokio::spawn(connection.run(stream, slot));
            }
            None => {
                if waiting.fetch_add(1, Ordering::AcqRel) >= limits.max_waiting() {
                    waiting.fetch_sub(1, Ordering::AcqRel);
                    counters.refused_over_cap.fetch_add(1, Ordering::Relaxed);
                    drop(stream);
                    continue;
                }
                let slots = Arc::clone(&slots);
                let waiting = Arc::clone(&waiting);
                tokio::spawn(async move {
                    let slot = tokio::time::timeout(WAIT_FOR_SLOT, slots.acquire_owned()).await;
                    waiting.fetch_sub(1, Ordering::AcqRel);
                    match slot {
                        Ok(Ok(slot)) => connection.run(stream, slot).await,
                        _ => {
                            connection
                                .counters
                                .refused_over_cap
                                .fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        }
    }
    drop(listener);
    tokio::select! {
        () = async {
            let _ = shutdown.send(true);
            shutdown.closed().await;
        } => {}
        () = tokio::time::sleep(drain) => {
            tracing::warn!(limit = ?drain, "in-flight requests did not finish in time; stopping anyway");
        }
    }
}

/// How connections are served: HTTP/1, HTTP/2 (over TLS only), TLS.
struct Builders {
    http1: hyper::server::conn::http1::Builder,
    http2: hyper::server::conn::http2::Builder<TokioExecutor>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// A hyper connection that can be asked to finish its request and close.
trait GracefulShutdown {
    fn graceful_shutdown(self: std::pin::Pin<&mut Self>);
}

impl<I, S, B> GracefulShutdown for hyper::server::conn::http1::UpgradeableConnection<I, S>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful_shutdown(self: std::pin::Pin<&mut Self>) {
        hyper::server::conn::http1::UpgradeableConnection::graceful_shutdown(self);
    }
}

impl<I, S, B, E> GracefulShutdown for hyper::server::conn::http2::Connection<I, S, E>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn graceful_shutdown(self: std::pin::Pin<&mut Self>) {
        hyper::server::conn::http2::Connection::graceful_shutdown(self);
    }
}

/// Drives `connection`; when shutdown is asked for, lets it finish its
/// in-flight request and close. Holding `shutdown` until then is what the
/// server's drain waits for.
async fn graceful<C: Future + GracefulShutdown>(
    connection: C,
    mut shutdown: watch::Receiver<bool>,
) -> C::Output {
    tokio::pin!(connection);
    tokio::select! {
        out = connection.as_mut() => return out,
        Ok(_) = shutdown.wait_for(|stop| *stop) => connection.as_mut().graceful_shutdown(),
    }
    connection.await
}

/// A connection accepted, not yet served.
struct Connection {
    builders: Arc<Builders>,
    service: axum::middleware::AddExtension<Router, axum::extract::ConnectInfo<SocketAddr>>,
    limits: ConnectionLimits,
    counters: Arc<ConnectionCounters>,
    shutdown: watch::Receiver<bool>,
    idle: Arc<IdleConnections>,
}

/// The connections that have not sent a request yet, oldest first. Each
/// leaves its slot here while it has not sent a request, with the signal
/// that closes it, so a newcomer can take the slot over directly.
#[derive(Default)]
struct IdleConnections {
    next: AtomicU64,
    slots: std::sync::Mutex<BTreeMap<u64, (OwnedSemaphorePermit, Arc<Notify>)>>,
}

type Idle = BTreeMap<u64, (OwnedSemaphorePermit, Arc<Notify>)>;

impl IdleConnections {
    fn lock(&self) -> std::sync::MutexGuard<'_, Idle> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Parks `slot` for a new connection; its id and close signal.
    fn register(&self, slot: OwnedSemaphorePermit) -> (u64, Arc<Notify>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let close = Arc::new(Notify::new());
        self.lock().insert(id, (slot, Arc::clone(&close)));
        (id, close)
    }

    /// The slot of connection `id`, if it is still parked.
    fn take(&self, id: u64) -> Option<OwnedSemaphorePermit> {
        self.lock().remove(&id).map(|(slot, _)| slot)
    }

    /// Closes the oldest connection that has not sent a request and hands
    /// its slot over.
    fn evict_oldest(&self) -> Option<OwnedSemaphorePermit> {
        let (_, (slot, close)) = self.lock().pop_first()?;
        close.notify_one();
        Some(slot)
    }
}

impl Connection {
    /// Serves `stream` while holding `slot`: until the client or the
    /// server closes it, or until the first request's headers are late.
    async fn run(self, stream: TcpStream, slot: OwnedSemaphorePermit) {
        let _ = stream.set_nodelay(true);
        let seen = Arc::new(AtomicBool::new(false));
        let (id, evicted) = self.idle.register(slot);
        // Once a request came, the slot is this connection's for good.
        let held: Arc<std::sync::Mutex<Option<OwnedSemaphorePermit>>> = Arc::default();
        let first = Arc::clone(&seen);
        let idle = Arc::clone(&self.idle);
        let keep = Arc::clone(&held);
        let service = self.service;
        // Requests in flight, and when the last one ended, for the HTTP/2
        // idle timeout (HTTP/1 has hyper's keep-alive timer, and skips it).
        let activity = Arc::new(Activity::default());
        let track = Arc::clone(&activity);
        let hyper_service = hyper::service::service_fn(move |req: Request<Incoming>| {
            if !first.swap(true, Ordering::AcqRel) {
                let slot = idle.take(id);
                *keep
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = slot;
            }
            let busy = track
                .tracked
                .load(Ordering::Relaxed)
                .then(|| Activity::begin(&track));
            let response = service.clone().oneshot(req.map(axum::body::Body::new));
            async move {
                let response = response.await;
                // In flight until its body is sent, not only its head: a
                // slow download is not idleness.
                match busy {
                    Some(busy) => response.map(|r| {
                        r.map(|body| axum::body::Body::new(UntilSent { body, _busy: busy }))
                    }),
                    None => response,
                }
            }
        });
        let builders = Arc::clone(&self.builders);
        let counters = Arc::clone(&self.counters);
        let shutdown = self.shutdown;
        let keep_alive = self.limits.keep_alive_timeout;
        let serving = async move {
            let Some(acceptor) = &builders.tls else {
                let connection = builders
                    .http1
                    .serve_connection(TokioIo::new(stream), hyper_service)
                    .with_upgrades();
                let _ = graceful(connection, shutdown).await;
                return;
            };
            let tls = match acceptor.accept(stream).await {
                Ok(tls) => tls,
                Err(e) => {
                    counters
                        .tls_handshake_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
            };
            if tls.get_ref().1.alpn_protocol() == Some(super::tls::ALPN_H2) {
                counters.http2.fetch_add(1, Ordering::Relaxed);
                activity.tracked.store(true, Ordering::Relaxed);
                let connection = builders
                    .http2
                    .serve_connection(TokioIo::new(tls), hyper_service);
                tokio::select! {
                    _ = graceful(connection, shutdown) => {}
                    () = activity.idle_for(keep_alive) => {
                        tracing::debug!("HTTP/2 connection closed: idle");
                    }
                }
            } else {
                let connection = builders
                    .http1
                    .serve_connection(TokioIo::new(tls), hyper_service)
                    .with_upgrades();
                let _ = graceful(connection, shutdown).await;
            }
        };
        let header_read_timeout = self.limits.header_read_timeout;
        let first_request = async {
            tokio::time::sleep(header_read_timeout).await;
            if seen.load(Ordering::Acquire) {
                std::future::pending::<()>().await;
            }
        };
        self.counters.open.fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            () = serving => {}
            () = first_request => {
                self.counters.header_timeouts.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("connection closed: no request headers in time");
            }
            () = evicted.notified() => {
                tracing::debug!("connection closed before its first request: a newcomer needed the slot");
            }
        }
        drop(self.idle.take(id));
        drop(held);
        self.counters.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The requests in flight on one connection, and when it last had none.
#[derive(Default)]
struct Activity {
    /// Whether requests are counted (HTTP/2 only), set before the first.
    tracked: AtomicBool,
    in_flight: AtomicUsize,
    /// Milliseconds since [`Activity::epoch`] when the last request ended.
    last_done_ms: AtomicU64,
    epoch: std::sync::OnceLock<tokio::time::Instant>,
}

/// A response body that keeps its request in flight until it is sent (or
/// dropped).
struct UntilSent {
    body: axum::body::Body,
    _busy: Busy,
}

impl http_body::Body for UntilSent {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A request in flight; ends it when dropped.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let activity = &self.0;
        activity
            .last_done_ms
            .store(activity.now_ms(), Ordering::Release);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Activity {
    fn begin(this: &Arc<Self>) -> Busy {
        this.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(Arc::clone(this))
    }

    fn epoch(&self) -> tokio::time::Instant {
        *self.epoch.get_or_init(tokio::time::Instant::now)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch().elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Completes once no request has been in flight for `limit`.
    async fn idle_for(&self, limit: Duration) {
        let epoch = self.epoch();
        loop {
            let last = Duration::from_millis(self.last_done_ms.load(Ordering::Acquire));
            let deadline = epoch + last + limit;
            if self.in_flight.load(Ordering::Acquire) == 0
                && tokio::time::Instant::now() >= deadline
            {
                return;
            }
            let next = if self.in_flight.load(Ordering::Acquire) == 0 {
                deadline
            } else {
                tokio::time::Instant::now() + limit
            };
            tokio::time::sleep_until(next).await;
        }
    }
}

/// Accept errors that concern one connection only (the client went away
/// between SYN and accept): accept the next at once.
fn is_per_connection(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
