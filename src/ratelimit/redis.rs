//! The shared limiter store: GCRA in Redis, so that every instance of a
//! scaled-out deployment counts against one budget per key.
//!
//! # One script, one key
//!
//! Each decision is one `EVALSHA` of `gcra.lua` (sent as `EVAL` once after
//! a server forgot the script, which [`Script`] does) on one key. The script
//! reads Redis's own clock (`TIME`), so instances whose clocks disagree
//! still agree on every decision, and it reads, decides and writes
//! atomically, so two instances racing on one key cannot both spend its last
//! request. Touching a single key keeps it valid on Redis Cluster, where
//! the key alone picks the node.
//!
//! The algorithm is the in-process store's (governor's GCRA): a burst of
//! `count`, refilled one request every `period / count`, with the same
//! `remaining` and the same `reset` (until the bucket is full again when
//! allowed, until a retry passes when refused). Times are whole
//! microseconds, so a policy faster than a million requests a second per
//! key is held to a million.
//!
//! # Key layout
//!
//! `palisade:rl:<policy>:<digest>`, its value the bucket's theoretical
//! arrival time in microseconds of Redis's clock.
//!
//! - `<policy>` is the policy name (letters, digits, `_`, `-`, as the
//!   settings allow), so an operator can find or drop one policy's keys with
//!   `SCAN MATCH palisade:rl:login:*`.
//! - `<digest>` is 128 bits, in hex, of HMAC-SHA-256 over the [`LimitKey`]
//!   under the secret of [`RedisStore::with_key_secret`] (plain SHA-256
//!   without one). No address, user id or account name is ever stored in
//!   Redis. Every instance must use the same secret to share budgets; with
//!   none, anyone who can read Redis can recover an IPv4 address by trying
//!   all 2³² of them, so production deployments should set one.
//!
//! # TTL
//!
//! Every write sets the key's expiry to its horizon, the moment its bucket
//! is full again: from then on the key is the same as an absent one, so
//! Redis holds only the keys that still limit someone and needs no sweep.
//!
//! # Failures
//!
//! This store reports every failure as a [`StoreError`] and never waits on
//! its own for long: put it behind [`super::failover::FailoverStore`],
//! which answers from the in-process store when Redis cannot.

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::{ClusterClient, ClusterConfig};
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Client, RedisError, Script};
use anyhow::Context as _;
use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::{Decision, LimitKey, LimitStore, Policy, StoreError};

/// The prefix of every key this store writes.
pub const KEY_PREFIX: &str = "palisade:rl:";

/// How long the driver itself waits to connect or for an answer. Callers
/// wait much less (the failover timeout); this only bounds the work the
/// driver keeps doing in the background after a caller gave up.
const DRIVER_TIMEOUT: Duration = Duration::from_secs(1);

/// Where the connection goes: one server (or a proxy in front of many), or
/// a Redis Cluster. Both handles are cheap clones of one multiplexed
/// connection that reconnects by itself.
#[derive(Clone)]
enum Connection {
    Server(ConnectionManager),
    Cluster(ClusterConnection),
}

/// GCRA limits kept in Redis, shared by every instance that uses the same
/// Redis and key secret.
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    script: Script,
    backoff: Script,
    key_secret: Option<Hmac<Sha256>>,
}

/// One step of the failed-login back-off kept in Redis (see `backoff.lua`).
#[derive(Debug, Clone, Copy)]
pub enum BackoffOp {
    /// Refuses with the wait left while the account backs off; otherwise
    /// records the attempt as a failure and answers zero: `free` attempts
    /// without a wait, then 1 s doubling up to `max_delay`; the account is
    /// forgotten `forget` after its last attempt.
    Attempt {
        free: u32,
        max_delay: Duration,
        forget: Duration,
    },
    /// Forgets the name (a successful login).
    Success,
}

/// A client for one server's URL, trusting `ca` (PEM) for `rediss://` when
/// given. The error never repeats the URL, which may hold a password.
pub fn client(redis_url: &str, ca: Option<&[u8]>) -> anyhow::Result<Client> {
    match ca {
        Some(ca) if redis_url.starts_with("rediss://") => Client::build_with_tls(
            redis_url,
            ::redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca.to_vec()),
            },
        )
        .context(
            "REDIS_URL is not a valid Redis URL, or redis.ca_file holds no usable certificate",
        ),
        _ => Client::open(redis_url).context("REDIS_URL is not a valid Redis URL"),
    }
}

/// The prefix of the back-off's keys.
pub const BACKOFF_PREFIX: &str = "palisade:bo:";

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither the URL (it may hold a password) nor the key secret.
        let topology = match self.connection {
            Connection::Server(_) => "server",
            Connection::Cluster(_) => "cluster",
        };
        f.debug_struct("RedisStore")
            .field("topology", &topology)
            .field("keyed", &self.key_secret.is_some())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for `redis_url`, without any I/O: the connection is made on
    /// first use and remade whenever it breaks, so an instance can start
    /// while Redis is down. `redis://` or `rediss://` (TLS, checked against
    /// the system's roots) for one server; several URLs separated by commas
    /// for the seed nodes of a Redis Cluster.
    ///
    /// Fails on a malformed URL (the error never repeats the URL, which may
    /// hold a password), and outside a Tokio runtime, where the driver
    /// cannot start its background tasks.
    pub fn open(redis_url: &str) -> anyhow::Result<Self> {
        Self::open_with_ca(redis_url, None)
    }

    /// [`RedisStore::open`], trusting only the CA certificates `ca` (PEM)
    /// for `rediss://` when given, instead of the system's roots.
    pub fn open_with_ca(redis_url: &str, ca: Option<&[u8]>) -> anyhow::Result<Self> {
        in_runtime()?;
        let nodes: Vec<&str> = redis_url.split(',').map(str::trim).collect();
        if nodes.len() > 1 {
            return Self::open_cluster(&nodes, ca);
        }
        let client = client(redis_url, ca)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(DRIVER_TIMEOUT))
            .set_response_timeout(Some(DRIVER_TIMEOUT))
            // Few, quick reconnection attempts: the failover probe asks
            // again every second, and a long back-off inside the driver
            // would only delay the return to Redis.
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_lazy_with_config(client, config)
            .context("cannot set up the Redis connection")?;
        Ok(Self::with_connection(Connection::Server(manager)))
    }

    /// A store for a Redis Cluster reached through `nodes` (one URL each; a
    /// single seed node is enough), without any I/O.
    pub fn open_cluster(nodes: &[&str], ca: Option<&[u8]>) -> anyhow::Result<Self> {
        in_runtime()?;
        let mut builder = ClusterClient::builder(nodes.iter().copied()).retries(2);
        if let Some(ca) = ca {
            builder = builder.certs(::redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca.to_vec()),
            });
        }
        let client = builder
            .build()
            .context("the Redis Cluster node list is not valid")?;
        let config = ClusterConfig::new()
            .set_connection_timeout(DRIVER_TIMEOUT)
            .set_response_timeout(DRIVER_TIMEOUT);
        let connection = client.get_pending_async_connection_with_config(config);
        Ok(Self::with_connection(Connection::Cluster(connection)))
    }

    /// [`RedisStore::open`], then a `PING` that must answer within
    /// `timeout`: for start-up checks that want to know now.
    pub async fn connect(redis_url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let store = Self::open(redis_url)?;
        tokio::time::timeout(timeout, store.ping())
            .await
            .map_err(|_| anyhow::anyhow!("Redis did not answer PING within {timeout:?}"))?
            .context("Redis did not answer PING")?;
        Ok(store)
    }

    fn with_connection(connection: Connection) -> Self {
        Self {
            connection,
            script: Script::new(include_str!("gcra.lua")),
            backoff: Script::new(include_str!("backoff.lua")),
            key_secret: None,
        }
    }

    /// Digests keys with HMAC-SHA-256 under `secret`, which every instance
    /// sharing the Redis must also use.
    pub fn with_key_secret(mut self, secret: &[u8]) -> Self {
        // HMAC takes keys of any length: this cannot fail.
        self.key_secret = Hmac::<Sha256>::new_from_slice(secret).ok();
        self
    }

    /// Asks Redis for a `PONG` (on a cluster, every primary's).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let ping = ::redis::cmd("PING");
        let reply: Result<String, RedisError> = match self.connection.clone() {
            Connection::Server(mut c) => ping.query_async(&mut c).await,
            Connection::Cluster(mut c) => ping.query_async(&mut c).await,
        };
        reply.map(drop).map_err(unavailable)
    }

    /// The Redis key of `key` under `policy` (see the module doc).
    pub fn redis_key(&self, policy: &Policy, key: &LimitKey<'_>) -> String {
        format!("{KEY_PREFIX}{}:{}", policy.name, self.digest(&encode(key)))
    }

    /// 128 bits in hex of HMAC-SHA-256 (plain SHA-256 without a key
    /// secret) of `material`.
    fn digest(&self, material: &[u8]) -> String {
        let digest: [u8; 32] = match &self.key_secret {
            Some(mac) => {
                let mut mac = mac.clone();
                mac.update(material);
                mac.finalize().into_bytes().into()
            }
            None => Sha256::digest(material).into(),
        };
        hex::encode(&digest[..16])
    }

    /// The back-off key of an account name: `palisade:bo:<digest>`, the
    /// digest keyed like the limiter's, so Redis never holds the name.
    pub fn backoff_key(&self, name: &str) -> String {
        let mut material = b"palisade-bo-key-v1".to_vec();
        material.extend_from_slice(name.as_bytes());
        format!("{BACKOFF_PREFIX}{}", self.digest(&material))
    }

    /// One back-off step for `name`, atomically on one key; the wait it
    /// leaves (see [`BackoffOp`]).
    pub async fn backoff(&self, name: &str, op: BackoffOp) -> Result<Duration, StoreError> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let mut invocation = self.backoff.key(self.backoff_key(name));
        match op {
            BackoffOp::Success => invocation.arg("success"),
            BackoffOp::Attempt {
                free,
                max_delay,
                forget,
            } => invocation
                .arg("attempt")
                .arg(free)
                .arg(ms(max_delay))
                .arg(ms(forget).max(1)),
        };
        let reply: Result<i64, RedisError> = match self.connection.clone() {
            Connection::Server(mut c) => invocation.invoke_async(&mut c).await,
            Connection::Cluster(mut c) => invocation.invoke_async(&mut c).await,
        };
        let wait_ms = reply.map_err(unavailable)?;
        Ok(Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0)))
    }

    async fn decide(&self, policy: &Policy, key: LimitKey<'_>) -> Result<Decision, StoreError> {
        let count = policy.spec.count.get();
        let emission = (policy.spec.period.as_micros() / u128::from(count)).max(1);
        let mut invocation = self.script.key(self.redis_key(policy, &key));
        invocation
            .arg(u64::try_from(emission).unwrap_or(u64::MAX))
            .arg(count);
        let reply: Result<(i64, i64, i64), RedisError> = match self.connection.clone() {
            Connection::Server(mut c) => invocation.invoke_async(&mut c).await,
            Connection::Cluster(mut c) => invocation.invoke_async(&mut c).await,
        };
        let (allowed, remaining, reset_us) = reply.map_err(unavailable)?;
        Ok(Decision {
            allowed: allowed == 1,
            remaining: u32::try_from(remaining.max(0)).unwrap_or(count).min(count),
            reset: Duration::from_micros(u64::try_from(reset_us).unwrap_or(0)),
        })
    }
}

impl LimitStore for RedisStore {
    fn check<'a>(
        &'a self,
        policy: &'a Policy,
        key: LimitKey<'a>,
    ) -> BoxFuture<'a, Result<Decision, StoreError>> {
        Box::pin(self.decide(policy, key))
    }
}

/// The driver spawns its connection tasks on the current runtime, and
/// would panic without one.
fn in_runtime() -> anyhow::Result<()> {
    tokio::runtime::Handle::try_current()
        .map(drop)
        .context("a Redis store can only be opened inside a Tokio runtime")
}

fn unavailable(e: RedisError) -> StoreError {
    StoreError(format!("redis: {e}"))
}

/// An unambiguous, versioned encoding of a key: each part present or not,
/// and length-prefixed, so no two keys encode alike.
fn encode(key: &LimitKey<'_>) -> Vec<u8> {
    let ip = key.ip.map(|ip| ip.to_string());
    let parts = [ip.as_deref(), key.user, key.account];
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"palisade-rl-key-v1");
    for part in parts {
        match part {
            None => out.push(0),
            Some(text) => {
                out.push(1);
                let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
    out
}
