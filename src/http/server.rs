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
//! - **Shutdown.** The listener closes, open connections finish their
//!   in-flight request and close (hyper's graceful shutdown), bounded by
//!   the caller's drain limit.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
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
    pub open: AtomicUsize,
}

/// Serves `router` on `listener` under `limits` until `stop` completes,
/// then drains for at most `drain`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    counters: Arc<ConnectionCounters>,
    stop: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let idle = Arc::new(IdleConnections::default());
    let waiting = Arc::new(AtomicUsize::new(0));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.keep_alive_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
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
            builder: Arc::clone(&builder),
            service,
            limits,
            counters: Arc::clone(&counters),
            watcher: graceful.watcher(),
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
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(drain) => {
            tracing::warn!(limit = ?drain, "in-flight requests did not finish in time; stopping anyway");
        }
    }
}

/// A connection accepted, not yet served.
struct Connection {
    builder: Arc<hyper::server::conn::http1::Builder>,
    service: axum::middleware::AddExtension<Router, axum::extract::ConnectInfo<SocketAddr>>,
    limits: ConnectionLimits,
    counters: Arc<ConnectionCounters>,
    watcher: Watcher,
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
        let hyper_service = hyper::service::service_fn(move |req: Request<Incoming>| {
            if !first.swap(true, Ordering::AcqRel) {
                let slot = idle.take(id);
                *keep
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = slot;
            }
            service.clone().oneshot(req.map(axum::body::Body::new))
        });
        let connection = self
            .builder
            .serve_connection(TokioIo::new(stream), hyper_service);
        let connection = self.watcher.watch(connection);
        tokio::pin!(connection);
        let header_read_timeout = self.limits.header_read_timeout;
        let first_request = async {
            tokio::time::sleep(header_read_timeout).await;
            if seen.load(Ordering::Acquire) {
                std::future::pending::<()>().await;
            }
        };
        self.counters.open.fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            _ = &mut connection => {}
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
