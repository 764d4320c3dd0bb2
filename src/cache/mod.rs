//! The session cache: what the bearer extractor needs to accept an access
//! token (its session open, the user enabled, the user's role and password
//! change time, and the user object `/profile` sends), kept in memory for
//! a short, bounded time so that a valid request does not touch the
//! database. See `docs/auth.md` ("The session cache") for the guarantees.
//!
//! # Invalidation that cannot be missed
//!
//! Every write that ends or changes a session or a user calls
//! [`SessionCache::invalidate`] after it commits, before it answers. That
//! evicts the user's entry here, then tells every other process that may
//! hold one and waits (bounded) for each to confirm:
//!
//! - on the embedded database, the operator CLI (another process on the
//!   same file) tells the running server through a Unix socket beside the
//!   database file ([`control`]);
//! - with Redis, every process publishes to one pub/sub channel and every
//!   subscriber confirms to the sender ([`bus`]).
//!
//! A cache with no channel that reaches every writer is off: PostgreSQL
//! without Redis reads the database on every request.
//!
//! # Races
//!
//! A request that missed reads the database, then stores what it read. An
//! invalidation may land between the two, and storing would bring the dead
//! session back. So every user hashes to one of [`STRIPES`] epochs: a
//! reader takes a [`Ticket`] (the epoch) *before* it reads, an invalidation
//! bumps the epoch *after* the write commits and then evicts, and a store
//! re-checks the epoch *after* it inserts and evicts again if it moved.
//! Whatever the interleaving, an entry read before a commit does not
//! survive that commit's invalidation.
//!
//! # Channel down
//!
//! While the channel that carries invalidations is down (or silent: the
//! Redis subscriber hears its own heartbeat every second), the cache is
//! bypassed: no reads, no stores. It is flushed before it is used again, so
//! a message missed while down cannot keep a dead session alive.

pub mod bus;
pub mod control;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::domain::User;

/// How many epochs users hash into.
pub const STRIPES: usize = 64;

/// At most this many sessions per user are cached.
const SESSIONS_PER_USER: usize = 8;

/// A heartbeat older than this means the Redis channel is silent.
pub const HEARTBEAT_STALE_MS: i64 = 3_000;

/// What carries invalidations between processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// No cache: every request reads the database.
    Off,
    /// One server on the embedded database: in-process, and the CLI through
    /// the control socket.
    Local,
    /// Redis pub/sub between every instance (and the CLI).
    Redis,
}

/// One user's cached entry.
#[derive(Debug)]
struct Cached {
    user: User,
    /// `(session id, session expiry ms, read at ms)`.
    sessions: Vec<(String, i64, i64)>,
}

/// Counters for operations (hits, misses, bypasses, invalidations).
#[derive(Debug, Default)]
pub struct CacheCounters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub bypasses: AtomicU64,
    pub invalidations: AtomicU64,
    pub flushes: AtomicU64,
    /// Invalidations some process did not confirm in time.
    pub unconfirmed: AtomicU64,
}

struct Inner {
    channel: Channel,
    ttl_ms: i64,
    entries: quick_cache::sync::Cache<String, Arc<Cached>>,
    epochs: [AtomicU64; STRIPES],
    /// Redis: when this process last heard its own heartbeat (ms).
    heartbeat_ms: AtomicI64,
    /// Local: whether this process serves the control socket (the CLI does
    /// not; a second server on one file cannot).
    listening: AtomicBool,
    /// Local: another server holds the control socket, so this one never
    /// caches.
    gave_up: AtomicBool,
    bus: Option<bus::Bus>,
    /// The control socket of the embedded database, if any.
    socket: Option<PathBuf>,
    counters: CacheCounters,
    /// When this process last wrote each session's `last_used_at` (ms),
    /// so it writes at most once per [`TOUCH_EVERY_MS`]; bounded like the
    /// entries, and used whether or not caching is on.
    touched: quick_cache::sync::Cache<Box<str>, i64>,
}

/// How often a session's `last_used_at` is written at most, per instance.
pub const TOUCH_EVERY_MS: i64 = 60_000;

/// The cache handle: cheap to clone.
#[derive(Clone)]
pub struct SessionCache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache")
            .field("channel", &self.inner.channel)
            .field("ttl_ms", &self.inner.ttl_ms)
            .field("usable", &self.usable())
            .finish_non_exhaustive()
    }
}

/// Taken before a database read, presented when storing what was read.
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct Ticket {
    stripe: usize,
    epoch: u64,
}

/// Now in Unix milliseconds.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn stripe_of(user_id: &str) -> usize {
    // FNV-1a: stable and cheap; the stripe only spreads users.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in user_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % STRIPES as u64) as usize
}

impl SessionCache {
    /// A cache that is always bypassed.
    pub fn off() -> Self {
        Self::new(Channel::Off, Duration::ZERO, 1, None, None)
    }

    /// A cache of at most `users` users for `ttl`, over `channel`. A zero
    /// `ttl` or size turns it off.
    pub fn new(
        channel: Channel,
        ttl: Duration,
        users: usize,
        bus: Option<bus::Bus>,
        socket: Option<PathBuf>,
    ) -> Self {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let channel = if ttl_ms == 0 || users == 0 {
            Channel::Off
        } else {
            channel
        };
        Self {
            inner: Arc::new(Inner {
                channel,
                ttl_ms,
                entries: quick_cache::sync::Cache::new(users.max(1)),
                epochs: std::array::from_fn(|_| AtomicU64::new(0)),
                heartbeat_ms: AtomicI64::new(0),
                listening: AtomicBool::new(false),
                gave_up: AtomicBool::new(false),
                bus,
                socket,
                counters: CacheCounters::default(),
                touched: quick_cache::sync::Cache::new(users.max(1024)),
            }),
        }
    }

    /// Whether a use of `session` at `now` is due to be written to the
    /// database: the first one, then at most once per [`TOUCH_EVERY_MS`].
    pub fn touch_due(&self, session: &str, now: i64) -> bool {
        match self.inner.touched.get(session) {
            Some(last) if now - last < TOUCH_EVERY_MS => false,
            _ => {
                self.inner.touched.insert(session.into(), now);
                true
            }
        }
    }

    /// The channel in effect (`Off` once a server found another serving
    /// its database's control socket).
    pub fn channel(&self) -> Channel {
        if self.inner.gave_up.load(Ordering::Acquire) {
            return Channel::Off;
        }
        self.inner.channel
    }

    pub fn counters(&self) -> &CacheCounters {
        &self.inner.counters
    }

    /// The Redis bus, when invalidations travel through Redis.
    pub fn bus(&self) -> Option<&bus::Bus> {
        self.inner.bus.as_ref()
    }

    /// The control socket path of the embedded database.
    pub fn socket(&self) -> Option<&PathBuf> {
        self.inner.socket.as_ref()
    }

    /// Whether the cache may be read and written now.
    pub fn usable(&self) -> bool {
        match self.inner.channel {
            Channel::Off => false,
            Channel::Local => self.inner.listening.load(Ordering::Acquire),
            Channel::Redis => {
                now_ms() - self.inner.heartbeat_ms.load(Ordering::Acquire) < HEARTBEAT_STALE_MS
            }
        }
    }

    /// The cached user of session `sid` of user `user_id`, if the cache is
    /// usable and holds it, fresh and unexpired.
    pub fn lookup(&self, sid: &str, user_id: &str, now: i64) -> Option<User> {
        if !self.usable() {
            if self.channel() != Channel::Off {
                self.inner.counters.bypasses.fetch_add(1, Ordering::Relaxed);
            }
            return None;
        }
        let found = self.inner.entries.get(user_id).and_then(|entry| {
            entry
                .sessions
                .iter()
                .any(|(id, expires, read)| {
                    id == sid && *expires > now && now - *read < self.inner.ttl_ms
                })
                .then(|| entry.user.clone())
        });
        let counter = if found.is_some() {
            &self.inner.counters.hits
        } else {
            &self.inner.counters.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// To take before reading the database for `user_id`.
    pub fn ticket(&self, user_id: &str) -> Ticket {
        let stripe = stripe_of(user_id);
        Ticket {
            stripe,
            epoch: self.inner.epochs[stripe].load(Ordering::SeqCst),
        }
    }

    /// Stores what a read under `ticket` found: `user` with session `sid`
    /// open until `expires_at`. Does nothing if the cache is not usable; an
    /// invalidation since the ticket undoes it.
    pub fn store(&self, ticket: Ticket, user: &User, sid: &str, expires_at: i64, now: i64) {
        if !self.usable() {
            return;
        }
        let mut sessions: Vec<(String, i64, i64)> = self
            .inner
            .entries
            .get(&user.id)
            .map(|e| {
                e.sessions
                    .iter()
                    .filter(|(id, exp, read)| {
                        id != sid && *exp > now && now - *read < self.inner.ttl_ms
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if sessions.len() >= SESSIONS_PER_USER {
            sessions.remove(0);
        }
        sessions.push((sid.to_owned(), expires_at, now));
        let entry = Arc::new(Cached {
            user: user.clone(),
            sessions,
        });
        self.inner.entries.insert(user.id.clone(), entry);
        if self.inner.epochs[ticket.stripe].load(Ordering::SeqCst) != ticket.epoch {
            self.inner.entries.remove(&user.id);
        }
    }

    /// Evicts `user_id` here only (what a received invalidation does).
    pub fn evict_local(&self, user_id: &str) {
        self.inner.epochs[stripe_of(user_id)].fetch_add(1, Ordering::SeqCst);
        self.inner.entries.remove(user_id);
    }

    /// Empties the cache; stores in flight are undone.
    pub fn flush(&self) {
        for epoch in &self.inner.epochs {
            epoch.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.entries.clear();
        self.inner.counters.flushes.fetch_add(1, Ordering::Relaxed);
    }

    /// After a write that ended or changed sessions of `user_id` has
    /// committed: evicts it here and in every other process, waiting
    /// (bounded) for them to confirm. Never fails: a process that cannot be
    /// told in time is logged and counted, and its entry dies with its TTL
    /// at the latest (see the module doc).
    pub async fn invalidate(&self, user_id: &str) {
        self.evict_local(user_id);
        self.inner
            .counters
            .invalidations
            .fetch_add(1, Ordering::Relaxed);
        let mut confirmed = true;
        if let Some(bus) = &self.inner.bus {
            confirmed &= bus.announce(self, user_id).await;
        }
        if let Some(path) = &self.inner.socket
            && !self.inner.listening.load(Ordering::Acquire)
        {
            confirmed &= control::notify(path, user_id).await;
        }
        if !confirmed {
            self.inner
                .counters
                .unconfirmed
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Redis subscriber heard its heartbeat at `at` (ms). After a gap
    /// (or the first time) the cache is flushed before it is used again.
    pub(crate) fn heartbeat(&self, at: i64) {
        let last = self.inner.heartbeat_ms.load(Ordering::Acquire);
        if at - last >= HEARTBEAT_STALE_MS {
            self.flush();
            tracing::info!("session cache: invalidation channel live; cache flushed and in use");
        }
        self.inner.heartbeat_ms.store(at, Ordering::Release);
    }

    /// The Redis subscriber lost its connection: bypass at once.
    pub(crate) fn channel_lost(&self) {
        let was = self.inner.heartbeat_ms.swap(0, Ordering::AcqRel);
        if now_ms() - was < HEARTBEAT_STALE_MS {
            tracing::warn!(
                "session cache: invalidation channel lost; every request reads the database"
            );
        }
        self.flush();
    }

    /// Another process serves the control socket: never cache.
    pub(crate) fn give_up(&self) {
        self.inner.gave_up.store(true, Ordering::Release);
        self.inner.listening.store(false, Ordering::Release);
    }

    /// The control socket is served by this process (or stopped being).
    pub(crate) fn set_listening(&self, on: bool) {
        if on {
            self.flush();
        }
        self.inner.listening.store(on, Ordering::Release);
    }

    /// The time-to-live of an entry.
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.inner.ttl_ms).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests;
