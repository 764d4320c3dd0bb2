//! Building and running the application: it binds its own listener and
//! reports its address, so tests run it on port 0.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;

use crate::auth::Authn;
use crate::auth::backoff::Backoff;
use crate::auth::extractor::{authenticate, bearer};
use crate::auth::hashing::Hasher;
use crate::auth::jwt::AccessTokens;
use crate::auth::mfa::MfaKeys;
use crate::auth::signing::{KeySetSpec, SigningKeys};
use crate::auth::throttle::LoginThrottle;
use crate::cache::bus::Bus;
use crate::cache::{Channel, SessionCache, control};
use crate::domain::PasswordPolicy;
use crate::gateway::Gateway;
use crate::http::server::{self as http_server, ConnectionCounters, ConnectionLimits};
use crate::http::tls::CertStore;
use crate::mail::Mailer;
use crate::ratelimit::RateLimiter;
use crate::ratelimit::failover::{FailoverStore, fallback_for};
use crate::ratelimit::redis::RedisStore;
use crate::routes;
use crate::settings::{Settings, SigningSecret, TlsFiles, secret};
use crate::state::{AppParts, AppState};
use crate::storage::Db;

/// A server, bound and ready to run.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    /// `metrics.bind`'s listener, serving `/metrics` only.
    metrics: Option<TcpListener>,
    router: Router,
    state: AppState,
    max_connections: usize,
    connections: Arc<ConnectionCounters>,
    tls: Option<Tls>,
}

/// Native TLS: the certificate store, the configuration serving it, and
/// the SIGHUP handler that reloads it (installed at build time).
#[derive(Debug)]
struct Tls {
    store: Arc<CertStore>,
    config: Arc<rustls::ServerConfig>,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

/// Builds the shared state: database (migrated), keys, hashing pool,
/// limiter. Used by `serve` and by the operator commands.
pub async fn build_state(settings: Settings) -> anyhow::Result<AppState> {
    let unreachable = routes::table::gateway_conflicts(&settings).unreachable;
    if !unreachable.is_empty() {
        anyhow::bail!(unreachable.join("; "));
    }
    let secret = signing_secret(&settings)?;
    let db = Db::connect(&settings.database, &settings.server.data_dir).await?;
    db.migrate().await?;
    let mfa = Arc::new(MfaKeys::derive(&mfa_key(&settings)?));
    let tokens = if settings.auth.jwt_algorithm.is_asymmetric() {
        let spec = KeySetSpec::access(&settings.auth);
        let keys = SigningKeys::open(db.pool().clone(), Arc::clone(&mfa), &spec)
            .await
            .context("the signing key set")?;
        Arc::new(AccessTokens::with_key_set(Arc::new(keys), &settings.auth))
    } else {
        Arc::new(AccessTokens::new(&secret, &settings.auth))
    };
    let limiter = RateLimiter::from_settings(
        &settings.rate_limit,
        &settings.gateway,
        &routes::route_keys(),
    )
    .map_err(|unknown| {
        let list: Vec<String> = unknown.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(list.join("; "))
    })?;
    // User-keyed limits count the `sub` of a verified token whose session
    // is live (session cache or database): an ended session's token is
    // limited by its address instead. Only requests on routes with a
    // user-keyed policy ask. An API key that exists is counted as itself.
    let sessions = session_cache(&settings, &db)?;
    let authn = Authn {
        db: db.clone(),
        tokens: Arc::clone(&tokens),
        sessions: sessions.clone(),
    };
    let resolver_authn = authn.clone();
    let limiter = limiter.with_subject_resolver(Arc::new(move |headers| {
        let token = bearer(headers).ok().flatten().map(str::to_owned);
        let authn = resolver_authn.clone();
        Box::pin(async move {
            let token = token?;
            if crate::auth::api_key::is_api_key(&token) {
                // Per key, once the key is known to exist: made-up keys
                // (a fresh one per request would be a fresh budget) are
                // counted by their address instead.
                return crate::auth::api_key::by_key(&authn, &token)
                    .await
                    .ok()
                    .map(|(key, _)| format!("key:{}", key.id));
            }
            authenticate(&authn, &token)
                .await
                .ok()
                .map(|caller| caller.user.id)
        })
    }));
    let auth = &settings.auth;
    let hasher = Hasher::new(auth.argon2, auth.hash_concurrency, auth.hash_queue)?;
    let local_backoff = LoginThrottle::new(
        auth.failed_login_free,
        auth.failed_login_max_delay,
        settings.rate_limit.max_keys,
    );
    let (limiter, shared_limits, throttle) = match shared_limits(&settings, &secret)? {
        Some((store, redis)) => {
            let backoff = Backoff::shared(
                local_backoff,
                redis,
                store.clone(),
                settings.redis.timeout,
                auth.failed_login_free,
                auth.failed_login_max_delay,
            );
            let limiter = limiter.with_store(Arc::new(store.clone()));
            (limiter, Some(store), backoff)
        }
        None => (limiter, None, Backoff::local(local_backoff)),
    };
    let (identity_keys, gateway) = if settings.gateway.enabled() {
        let spec = KeySetSpec::identity(&settings.auth);
        let keys = SigningKeys::open(db.pool().clone(), Arc::clone(&mfa), &spec)
            .await
            .context("the gateway's identity key set")?;
        let keys = Arc::new(keys);
        let gateway = Gateway::new(&settings, authn, Arc::clone(&keys))?.map(Arc::new);
        (Some(keys), gateway)
    } else {
        (None, None)
    };
    let mailer = Mailer::start(&settings.mail, &settings.server.data_dir)?;
    if let Some(outbox) = mailer.outbox() {
        tracing::info!(path = %outbox.display(), "no SMTP server configured: mail is written to the outbox folder");
    }
    Ok(AppState::new(AppParts {
        mfa,
        mailer,
        sessions,
        passwords: Arc::new(PasswordPolicy::new(auth.password_composition_rules)),
        settings: Arc::new(settings),
        limiter: Arc::new(limiter),
        shared_limits,
        db,
        tokens,
        hasher: Arc::new(hasher),
        throttle: Arc::new(throttle),
        identity_keys,
        gateway,
    }))
}

impl Application {
    /// Builds the state, binds the listener and assembles the router.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let tls = match &settings.server.tls {
            Some(files) => Some(load_tls(files)?),
            None => None,
        };
        if settings.metrics.enabled() && crate::telemetry::prom::install().is_none() {
            tracing::warn!("metrics are on but no recorder could be installed");
        }
        let bind = settings.server.bind;
        let listener = TcpListener::bind(bind)
            .await
            .with_context(|| format!("cannot listen on {bind}"))?;
        // The address the discovery document names when no public URL is
        // set: the real one, also when port 0 was asked for.
        let mut settings = settings;
        settings.server.bind = listener.local_addr()?;
        let state = build_state(settings).await?;
        let metrics = match state.settings.metrics.bind {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (metrics.bind)"))?,
            ),
            None => None,
        };
        let router = routes::router(state.clone());
        let max_connections = connection_cap(&state.settings);
        Ok(Self {
            listener,
            metrics,
            router,
            state,
            max_connections,
            connections: Arc::new(ConnectionCounters::default()),
            tls,
        })
    }

    /// Whether connections are served over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// What the connection limits did so far (for tests and operations).
    pub fn connections(&self) -> Arc<ConnectionCounters> {
        Arc::clone(&self.connections)
    }

    /// The number of connections served at once.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// The address the server listens on (with the real port when the
    /// settings asked for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address of the metrics listener (`metrics.bind`), if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The application state (for tests and embedding).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGINT or SIGTERM, then drains. The signal handlers
    /// are installed when this is called, before the returned future is
    /// first polled: a SIGTERM sent as soon as the server answers (or as
    /// soon as the caller logs that it listens) drains instead of killing.
    pub fn run_until_stopped(self) -> std::io::Result<impl Future<Output = std::io::Result<()>>> {
        let stop = shutdown_signal()?;
        Ok(self.run_until(stop))
    }

    /// Serves until `stop` completes, then stops accepting connections and
    /// lets in-flight requests finish for at most the shutdown timeout.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let limiter = Arc::clone(&self.state.limiter);
        let every = self.state.settings.rate_limit.sweep_interval;
        let sweeper = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                limiter.store().sweep();
            }
        });

        let interval = self.state.settings.retention.prune_interval;
        let pruner = (!interval.is_zero()).then(|| {
            tokio::spawn(prune_every(
                self.state.db.clone(),
                retention(&self.state.settings),
                self.state.settings.auth.clone(),
                interval,
            ))
        });
        let key_refresh: Vec<_> = self
            .state
            .tokens
            .key_set()
            .into_iter()
            .chain(&self.state.identity_keys)
            .map(|keys| tokio::spawn(Arc::clone(keys).run_refresh()))
            .collect();
        let metrics = self.metrics.map(|listener| {
            let router = routes::metrics::standalone(self.state.clone());
            tracing::info!(addr = ?listener.local_addr().ok(), "serving /metrics");
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            })
        });
        let control = match (self.state.sessions.channel(), self.state.sessions.socket()) {
            (Channel::Local, Some(path)) => Some(tokio::spawn(control::serve(
                path.clone(),
                self.state.sessions.clone(),
            ))),
            _ => None,
        };

        let server = &self.state.settings.server;
        let limits = ConnectionLimits {
            header_read_timeout: server.header_read_timeout,
            keep_alive_timeout: server.keep_alive_timeout,
            max_connections: self.max_connections,
            http2_max_concurrent_streams: server.http2_max_concurrent_streams,
            http2_max_header_list_size: server.http2_max_header_list_size,
        };
        let (tls_config, reloader) = match self.tls {
            Some(tls) => {
                let config = Arc::clone(&tls.config);
                let reloader = tokio::spawn(reload_tls(tls, server.tls_reload_interval));
                (Some(config), Some(reloader))
            }
            None => (None, None),
        };
        let drain_limit = server.shutdown_timeout;
        let stop = async move {
            stop.await;
            tracing::info!("shutting down: draining in-flight requests");
        };
        http_server::serve(
            self.listener,
            self.router,
            limits,
            tls_config,
            Arc::clone(&self.connections),
            stop,
            drain_limit,
        )
        .await;
        // Mail queued by the last requests (a reset link, a notice) gets
        // the same bounded time to go out.
        let unsent = self.state.mailer.drain(drain_limit).await;
        if unsent > 0 {
            tracing::warn!(unsent, "stopped with mail still queued; it is lost");
        }
        let result = Ok(());
        sweeper.abort();
        if let Some(pruner) = pruner {
            pruner.abort();
        }
        for task in &key_refresh {
            task.abort();
        }
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        if let Some(reloader) = reloader {
            reloader.abort();
        }
        if let Some(control) = control {
            control.abort();
            // Aborting drops the server's guard, which removes the socket.
            let _ = control.await;
        }
        result
    }
}

/// Descriptors kept free of connections: the database pool, Redis (the
/// limiter's, the back-off's and the session bus's connections), the
/// control socket, log files, and what the runtime and libraries open.
const RESERVED_DESCRIPTORS: u64 = 64;

/// `server.max_connections`, or, when it is `0`, what the open-file limit
/// leaves once the soft limit is raised to the hard one (both logged):
/// room for the database pool, [`RESERVED_DESCRIPTORS`] and the
/// connections allowed to wait for a slot, at least 16.
fn connection_cap(settings: &Settings) -> usize {
    let (soft_before, hard) = rlimit::Resource::NOFILE.get().unwrap_or((1024, 1024));
    let soft = rlimit::increase_nofile_limit(hard).unwrap_or(soft_before);
    let configured = settings.server.max_connections;
    let cap = if configured > 0 {
        configured
    } else {
        let pool = u64::from(settings.database.max_connections);
        let room = soft.saturating_sub(pool + RESERVED_DESCRIPTORS);
        // Those waiting for a slot hold a descriptor too (at most a
        // sixteenth of the cap, see `ConnectionLimits::max_waiting`).
        let cap = usize::try_from(room * 16 / 17).unwrap_or(usize::MAX);
        cap.clamp(16, 1_000_000)
    };
    tracing::info!(
        soft_limit_at_start = soft_before,
        soft_limit = soft,
        hard_limit = hard,
        max_connections = cap,
        "open-file limit"
    );
    cap
}

/// With `REDIS_URL`: the Redis store every instance counts in, behind a
/// failover to this process's memory (its probe runs on the current
/// runtime), and the Redis handle the shared back-off uses. Opening does no I/O, so an instance starts, degraded, while
/// Redis is down. Key digests are keyed with a subkey of the signing secret
/// that every instance shares (settings require a configured one), so
/// Redis never holds an address, user id or account name, nor a digest
/// anyone without the secret could reverse.
fn shared_limits(
    settings: &Settings,
    secret: &SigningSecret,
) -> anyhow::Result<Option<(FailoverStore, RedisStore)>> {
    use hmac::{Hmac, Mac};
    use secrecy::ExposeSecret;
    let Some(url) = &settings.redis.url else {
        return Ok(None);
    };
    let mut subkey = Hmac::<sha2::Sha256>::new_from_slice(secret.expose())
        .context("the signing secret cannot key an HMAC")?;
    subkey.update(b"palisade rate-limit key digests v1");
    let ca = redis_ca(settings)?;
    let redis = RedisStore::open_with_ca(url.expose_secret(), ca.as_deref())
        .context("REDIS_URL")?
        .with_key_secret(&subkey.finalize().into_bytes());
    let (store, probe) = FailoverStore::new(
        redis.clone(),
        fallback_for(&settings.rate_limit),
        settings.redis.timeout,
    );
    tokio::spawn(probe.run());
    Ok(Some((store, redis)))
}

/// The session cache and the channel that keeps it true: the control
/// socket beside an SQLite file (and Redis too when configured), Redis for
/// a shared database, none (cache off) for PostgreSQL without Redis. The
/// Redis subscriber starts here, so the CLI, which builds the same state,
/// can announce and hear confirmations; the control socket is served only
/// by [`Application::run_until`].
fn session_cache(settings: &Settings, db: &Db) -> anyhow::Result<SessionCache> {
    use secrecy::ExposeSecret;
    let bus = match &settings.redis.url {
        Some(url) => Some(
            Bus::open(
                url.expose_secret(),
                redis_ca(settings)?.as_deref(),
                settings.redis.invalidation_timeout,
            )
            .context("REDIS_URL")?,
        ),
        None => None,
    };
    let socket = db.sqlite_file().and_then(control::socket_path);
    let channel = match (&socket, &bus) {
        (Some(_), _) if cfg!(unix) => Channel::Local,
        (_, Some(_)) if db.sqlite_file().is_none() => Channel::Redis,
        _ => Channel::Off,
    };
    let cache = SessionCache::new(
        channel,
        settings.auth.session_cache_ttl,
        settings.auth.session_cache_size,
        bus.clone(),
        socket,
    );
    if let Some(bus) = bus {
        tokio::spawn(bus.run(cache.clone()));
    }
    Ok(cache)
}

/// The CA certificates of `redis.ca_file`, read now so that a missing or
/// unreadable file stops start-up.
fn redis_ca(settings: &Settings) -> anyhow::Result<Option<Vec<u8>>> {
    settings
        .redis
        .ca_file
        .as_ref()
        .map(|path| {
            std::fs::read(path)
                .with_context(|| format!("redis.ca_file: cannot read {}", path.display()))
        })
        .transpose()
}

/// The configured signing secret, or for the embedded database one that is
/// generated once into the data folder. (Settings validation already
/// refuses a shared database without a configured secret.)
pub fn signing_secret(settings: &Settings) -> anyhow::Result<SigningSecret> {
    if let Some(secret) = &settings.auth.jwt_secret {
        return Ok(secret.clone());
    }
    let dir = &settings.server.data_dir;
    let (secret, created) = secret::load_or_generate(dir).with_context(|| {
        format!(
            "cannot read or create the signing secret in {}",
            dir.display()
        )
    })?;
    if created {
        tracing::info!(path = %secret::secret_path(dir).display(), "generated a new 256-bit signing secret (mode 0600)");
    }
    Ok(secret)
}

/// The retention of `settings` as the pruner takes it; device records are
/// kept as long as the new-device notice looks back.
pub fn retention(settings: &Settings) -> crate::storage::prune::Retention {
    let r = &settings.retention;
    crate::storage::prune::Retention {
        sessions_ms: crate::storage::ms(r.sessions),
        events_ms: crate::storage::ms(r.events),
        tokens_ms: crate::storage::ms(r.tokens),
        devices_ms: crate::storage::ms(crate::auth::notices::DEVICE_MEMORY),
    }
}

/// Prunes every `interval`, from one interval after start.
async fn prune_every(
    db: crate::storage::Db,
    retention: crate::storage::prune::Retention,
    auth: crate::settings::AuthSettings,
    interval: std::time::Duration,
) {
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = crate::storage::now_ms();
        match crate::storage::prune::run(db.pool(), &retention, now, crate::storage::prune::BATCH)
            .await
        {
            Ok(report) => {
                let total: u64 = report.iter().map(|(_, n)| n).sum();
                if total > 0 {
                    tracing::info!(?report, "pruned rows past their retention");
                }
            }
            Err(e) => tracing::warn!(error = %e, "pruning failed; retrying at the next interval"),
        }
        match crate::auth::signing::prune(db.pool(), &auth, false).await {
            Ok(0) => {}
            Ok(keys) => tracing::info!(keys, "removed signing keys past their publication"),
            Err(e) => tracing::warn!(error = %e, "pruning signing keys failed"),
        }
    }
}

/// The configured MFA key, or for the embedded database one generated
/// once into the data folder (settings refuse a shared database without
/// one).
pub fn mfa_key(settings: &Settings) -> anyhow::Result<SigningSecret> {
    if let Some(key) = &settings.auth.mfa_key {
        return Ok(key.clone());
    }
    let dir = &settings.server.data_dir;
    let (key, created) = secret::load_or_generate_file(dir, secret::MFA_KEY_FILE)
        .with_context(|| format!("cannot read or create the MFA key in {}", dir.display()))?;
    if created {
        tracing::info!(path = %dir.join(secret::MFA_KEY_FILE).display(), "generated a new 256-bit MFA key (mode 0600)");
    }
    Ok(key)
}

/// Loads the certificate pair (a bad one stops start-up) and installs the
/// SIGHUP handler that reloads it.
fn load_tls(files: &TlsFiles) -> anyhow::Result<Tls> {
    let store = CertStore::load(&files.cert, &files.key).context("cannot serve TLS")?;
    let config = store.server_config().context("cannot serve TLS")?;
    #[cfg(unix)]
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot install the SIGHUP handler that reloads the TLS certificate")?;
    tracing::info!(cert = %files.cert.display(), key = %files.key.display(), "serving HTTPS (HTTP/2 and HTTP/1.1)");
    Ok(Tls {
        store,
        config,
        #[cfg(unix)]
        hangup,
    })
}

/// Reloads the certificate on SIGHUP (always) and when its files change
/// (checked every `every`; `0`: never). A pair that cannot be loaded is
/// logged and the previous one stays.
async fn reload_tls(tls: Tls, every: std::time::Duration) {
    #[cfg(unix)]
    let mut hangup = tls.hangup;
    let store = tls.store;
    let mut tick = (!every.is_zero()).then(|| {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick
    });
    if let Some(tick) = &mut tick {
        tick.tick().await;
    }
    loop {
        let poll = async {
            match &mut tick {
                Some(tick) => {
                    tick.tick().await;
                }
                None => std::future::pending().await,
            }
        };
        #[cfg(unix)]
        let trigger = tokio::select! {
            _ = hangup.recv() => "SIGHUP",
            () = poll => "file check",
        };
        #[cfg(not(unix))]
        let trigger = {
            poll.await;
            "file check"
        };
        let reload_store = Arc::clone(&store);
        match tokio::task::spawn_blocking(move || reload_store.reload()).await {
            Ok(Ok(true)) => {
                tracing::info!(trigger, "TLS certificate reloaded; new connections get it")
            }
            Ok(Ok(false)) if trigger == "SIGHUP" => {
                tracing::info!(trigger, "TLS certificate files unchanged");
            }
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                tracing::error!(trigger, error = %e, "TLS certificate reload failed; still serving the previous one")
            }
            Err(e) => tracing::error!(trigger, error = %e, "TLS certificate reload stopped"),
        }
    }
}

/// Installs the SIGINT and SIGTERM handlers now (not when first polled)
/// and returns the future that completes on the first of them.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}
