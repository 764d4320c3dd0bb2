//! Invalidations between instances over Redis pub/sub, each confirmed.
//!
//! Every process (servers and the CLI) has a random node id and subscribes
//! to two channels on one connection: [`EVENTS`], where invalidations go,
//! and `palisade:node:<id>`, its own, where confirmations and its heartbeat
//! arrive.
//!
//! - Announcing: `PUBLISH palisade:sessions "<node>|<event>|<user id>"`.
//!   Redis answers with how many subscribers received it; the announcer
//!   waits (bounded by `redis.invalidation_timeout`) for that many
//!   confirmations.
//! - Receiving: evict the user, then `PUBLISH palisade:node:<origin>
//!   "ack|<event>"` (a process's own announcements are confirmed in
//!   process).
//! - Heartbeat: every second each process publishes `hb` to its own
//!   channel. The cache is used only while the last one heard is under
//!   three seconds old, and is flushed when they resume after a gap, so a
//!   silent or broken connection turns the cache off instead of letting it
//!   miss an invalidation. A subscriber that hears nothing for that long
//!   reconnects.
//!
//! Messages carry the user's id (a random UUID), never a name, address or
//! token. On a Redis Cluster, every process uses the first node of the
//! list for pub/sub, so that `PUBLISH`'s receiver count covers them all.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError};
use anyhow::Context as _;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

use super::{HEARTBEAT_STALE_MS, SessionCache, now_ms};

/// The channel invalidations are published on.
pub const EVENTS: &str = "palisade:sessions";

/// The prefix of each process's own channel.
pub const NODE_PREFIX: &str = "palisade:node:";

const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

struct BusInner {
    client: Client,
    publisher: ConnectionManager,
    node: String,
    timeout: Duration,
    next_event: AtomicU64,
    pending: Mutex<HashMap<u64, mpsc::UnboundedSender<()>>>,
    subscribed: watch::Sender<bool>,
}

/// The Redis side of the session cache: cheap to clone.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<BusInner>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may hold a password.
        f.debug_struct("Bus")
            .field("node", &self.inner.node)
            .finish_non_exhaustive()
    }
}

impl Bus {
    /// A bus on `redis_url` (the first node of a comma-separated cluster
    /// list), trusting `ca` (PEM) for `rediss://` when given, without I/O;
    /// `timeout` bounds each announcement.
    pub fn open(redis_url: &str, ca: Option<&[u8]>, timeout: Duration) -> anyhow::Result<Self> {
        let first = redis_url.split(',').next().unwrap_or_default().trim();
        let client = match ca {
            Some(ca) if first.starts_with("rediss://") => Client::build_with_tls(
                first,
                ::redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.to_vec()),
                },
            )
            .context(
                "REDIS_URL is not a valid Redis URL, or redis.ca_file holds no usable certificate",
            )?,
            _ => Client::open(first).context("REDIS_URL is not a valid Redis URL")?,
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let publisher = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .context("cannot set up the Redis connection")?;
        let mut node = [0u8; 12];
        getrandom::fill(&mut node).context("no randomness for the node id")?;
        Ok(Self {
            inner: Arc::new(BusInner {
                client,
                publisher,
                node: hex::encode(node),
                timeout,
                next_event: AtomicU64::new(1),
                pending: Mutex::new(HashMap::new()),
                subscribed: watch::channel(false).0,
            }),
        })
    }

    fn node_channel(&self) -> String {
        format!("{NODE_PREFIX}{}", self.inner.node)
    }

    async fn publish(&self, channel: &str, message: &str) -> Result<i64, RedisError> {
        let mut conn = self.inner.publisher.clone();
        ::redis::cmd("PUBLISH")
            .arg(channel)
            .arg(message)
            .query_async(&mut conn)
            .await
    }

    /// Publishes an invalidation of `user_id` and waits for every receiver
    /// to confirm. Whether all did in time.
    pub(super) async fn announce(&self, cache: &SessionCache, user_id: &str) -> bool {
        let deadline = tokio::time::Instant::now() + self.inner.timeout;
        let mut subscribed = self.inner.subscribed.subscribe();
        // The guard `wait_for` returns is dropped at once: it is not `Send`.
        let ready = matches!(
            tokio::time::timeout_at(deadline, subscribed.wait_for(|s| *s)).await,
            Ok(Ok(_))
        );
        if !ready {
            tracing::warn!(
                "session invalidation: not subscribed to Redis; retrying in the background"
            );
            self.retry_later(cache, user_id);
            return false;
        }
        let event = self.inner.next_event.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.pending().insert(event, tx);
        let message = format!("{}|{event}|{user_id}", self.inner.node);
        let sent =
            tokio::time::timeout_at(deadline, self.publish(super::bus::EVENTS, &message)).await;
        let receivers = match sent {
            Ok(Ok(n)) => n,
            _ => {
                self.pending().remove(&event);
                tracing::warn!(
                    "session invalidation: Redis did not take it; retrying in the background"
                );
                self.retry_later(cache, user_id);
                return false;
            }
        };
        let mut confirmed = 0;
        while confirmed < receivers {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(())) => confirmed += 1,
                _ => break,
            }
        }
        self.pending().remove(&event);
        if confirmed < receivers {
            tracing::warn!(
                receivers,
                confirmed,
                "session invalidation: not every instance confirmed in time"
            );
            return false;
        }
        true
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, mpsc::UnboundedSender<()>>> {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps publishing an announcement Redis did not take until it does,
    /// for at most the cache's TTL (after which no entry it would evict can
    /// still be alive anywhere).
    fn retry_later(&self, cache: &SessionCache, user_id: &str) {
        let bus = self.clone();
        let until = tokio::time::Instant::now() + cache.ttl();
        let message = format!("{}|0|{user_id}", self.inner.node);
        tokio::spawn(async move {
            while tokio::time::Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let sent = tokio::time::timeout(bus.inner.timeout, bus.publish(EVENTS, &message));
                if matches!(sent.await, Ok(Ok(_))) {
                    tracing::info!("session invalidation: delivered late");
                    return;
                }
            }
        });
    }

    /// Subscribes and handles messages for as long as the process runs,
    /// reconnecting after any failure. Runs beside a heartbeat task.
    pub async fn run(self, cache: SessionCache) {
        let heartbeat = {
            let bus = self.clone();
            tokio::spawn(async move {
                let own = bus.node_channel();
                let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
                loop {
                    tick.tick().await;
                    let _ = tokio::time::timeout(bus.inner.timeout, bus.publish(&own, "hb")).await;
                }
            })
        };
        let _stop_heartbeat = AbortOnDrop(heartbeat);
        let own = self.node_channel();
        let mut down_logged = false;
        loop {
            match self.subscribe(&own).await {
                Ok(mut stream) => {
                    down_logged = false;
                    self.inner.subscribed.send_replace(true);
                    let _ =
                        tokio::time::timeout(self.inner.timeout, self.publish(&own, "hb")).await;
                    let silence = Duration::from_millis(HEARTBEAT_STALE_MS as u64);
                    while let Ok(Some(msg)) = tokio::time::timeout(silence, stream.next()).await {
                        let Ok(payload) = msg.get_payload::<String>() else {
                            continue;
                        };
                        if msg.get_channel_name() == EVENTS {
                            self.received(&cache, &payload);
                        } else if payload == "hb" {
                            cache.heartbeat(now_ms());
                        } else if let Some(event) = payload.strip_prefix("ack|") {
                            self.confirm(event);
                        }
                    }
                    self.inner.subscribed.send_replace(false);
                    cache.channel_lost();
                }
                Err(e) => {
                    if !down_logged {
                        tracing::warn!(error = %e, "session cache: cannot subscribe to Redis; retrying");
                        down_logged = true;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn subscribe(
        &self,
        own: &str,
    ) -> anyhow::Result<impl futures_util::Stream<Item = ::redis::Msg> + use<>> {
        let connect = async {
            let mut pubsub = self.inner.client.get_async_pubsub().await?;
            pubsub.subscribe(&[EVENTS, own]).await?;
            Ok::<_, RedisError>(pubsub)
        };
        let pubsub = tokio::time::timeout(Duration::from_secs(1), connect)
            .await
            .context("timed out")??;
        Ok(pubsub.into_on_message())
    }

    /// An invalidation from any process (this one included).
    fn received(&self, cache: &SessionCache, payload: &str) {
        let mut parts = payload.splitn(3, '|');
        let (Some(origin), Some(event), Some(user_id)) = (parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        cache.evict_local(user_id);
        if origin == self.inner.node {
            self.confirm(event);
        } else if event != "0" {
            let bus = self.clone();
            let channel = format!("{NODE_PREFIX}{origin}");
            let ack = format!("ack|{event}");
            tokio::spawn(async move {
                let _ = tokio::time::timeout(bus.inner.timeout, bus.publish(&channel, &ack)).await;
            });
        }
    }

    fn confirm(&self, event: &str) {
        if let Ok(event) = event.parse::<u64>()
            && let Some(tx) = self.pending().get(&event)
        {
            let _ = tx.send(());
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
