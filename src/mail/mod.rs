//! Outgoing mail: a bounded queue in front of one transport, SMTP (lettre
//! over rustls: STARTTLS or implicit TLS) or, with no SMTP server
//! configured, `.eml` files in `DATA_DIR/outbox/`.
//!
//! Sending never blocks or fails the request that asked for it: [`Mailer::send`]
//! only puts the mail in the queue (a full queue drops it, logged and
//! counted). Deliveries run beside the requests, a few at once, each
//! retried with growing waits up to `mail.max_attempts`; a mail that still
//! fails is logged (without its body, which may hold a one-time token)
//! and counted. The queue lives in memory: mail waiting at a crash is
//! lost, and the user asks again.
//!
//! This module knows nothing about users; what a mail says is written by
//! the account features (`auth::notices`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use lettre::message::header::ContentTransferEncoding;
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::{Semaphore, mpsc};

use crate::settings::secret::create_private_dir;
use crate::settings::{MailSettings, SmtpSecurity};

/// Name of the outbox folder inside the data folder.
pub const OUTBOX: &str = "outbox";

/// Deliveries in flight at once.
const CONCURRENT_DELIVERIES: usize = 4;

/// Longest wait between two attempts.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(300);

/// One mail: plain text and HTML alternatives of the same words. Its
/// `Debug` shows only the kind, never the address or the body.
pub struct Mail {
    /// What the mail is (`verify_email`, `password_reset`, a notice), for
    /// the log.
    pub kind: &'static str,
    pub to: Mailbox,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// What the mailer did since start-up.
#[derive(Debug, Default)]
pub struct MailStats {
    /// Delivered to the SMTP server or written to the outbox.
    pub sent: AtomicU64,
    /// Given up after the last attempt.
    pub failed: AtomicU64,
    /// Refused at once: the queue was full.
    pub dropped: AtomicU64,
    /// Attempts that failed and were retried.
    pub retried: AtomicU64,
    /// Queued or being delivered now.
    pub pending: AtomicU64,
}

/// Where mail goes.
#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(AsyncFileTransport<Tokio1Executor>),
}

/// The queue's sending end; cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    queue: mpsc::Sender<Mail>,
    stats: Arc<MailStats>,
    /// The outbox folder, when mail goes there.
    outbox: Option<Arc<Path>>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("outbox", &self.outbox)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Builds the transport `settings` name and starts the delivery task
    /// (on the current Tokio runtime).
    pub fn start(settings: &MailSettings, data_dir: &Path) -> anyhow::Result<Self> {
        let from: Mailbox = settings
            .from
            .parse()
            .context("mail.from is not a mailbox")?;
        let (transport, outbox) = match &settings.smtp {
            Some(server) => (Transport::Smtp(smtp(settings, server)?), None),
            None => {
                let dir = data_dir.join(OUTBOX);
                create_private_dir(&dir)
                    .with_context(|| format!("cannot create the mail outbox {}", dir.display()))?;
                (
                    Transport::Outbox(AsyncFileTransport::new(&dir)),
                    Some(Arc::from(dir.as_path())),
                )
            }
        };
        let (queue, receiver) = mpsc::channel(settings.queue_capacity);
        let stats = Arc::new(MailStats::default());
        let worker = Worker {
            transport,
            from,
            stats: Arc::clone(&stats),
            max_attempts: settings.max_attempts,
            timeout: settings.timeout,
        };
        tokio::spawn(worker.run(receiver));
        Ok(Self {
            queue,
            stats,
            outbox,
        })
    }

    /// Queues `mail` for delivery and returns at once. A full queue drops
    /// it (logged and counted); the caller's request goes on either way.
    pub fn send(&self, mail: Mail) {
        let kind = mail.kind;
        self.stats.pending.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.queue.try_send(mail) {
            self.stats.pending.fetch_sub(1, Ordering::Relaxed);
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            let why = match e {
                mpsc::error::TrySendError::Full(_) => "the mail queue is full",
                mpsc::error::TrySendError::Closed(_) => "the mail queue is closed",
            };
            tracing::error!(kind, "mail dropped: {why}");
        }
    }

    /// What was delivered, dropped and given up.
    pub fn stats(&self) -> &MailStats {
        &self.stats
    }

    /// The outbox folder, when mail is written there.
    pub fn outbox(&self) -> Option<&Path> {
        self.outbox.as_deref()
    }

    /// Waits until every queued mail is delivered or given up, for at
    /// most `timeout` (at shutdown, and before a command-line tool
    /// exits). Returns how many were still pending.
    pub async fn drain(&self, timeout: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let pending = self.stats.pending.load(Ordering::Relaxed);
            if pending == 0 || tokio::time::Instant::now() >= deadline {
                return pending;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn smtp(
    settings: &MailSettings,
    server: &crate::settings::SmtpServer,
) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let tls = || -> anyhow::Result<TlsParameters> {
        let mut params = TlsParameters::builder(server.host.clone());
        if let Some(path) = &settings.smtp_ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read mail.smtp_ca_file {}", path.display()))?;
            let cert = Certificate::from_pem(&pem).with_context(|| {
                format!("mail.smtp_ca_file {} holds no certificate", path.display())
            })?;
            params = params.add_root_certificate(cert);
        }
        params
            .build_rustls()
            .context("cannot set up TLS for the SMTP server")
    };
    let security = match server.security {
        SmtpSecurity::StartTls => Tls::Required(tls()?),
        SmtpSecurity::Implicit => Tls::Wrapper(tls()?),
        SmtpSecurity::None => Tls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.host.clone())
        .port(server.port)
        .tls(security)
        .timeout(Some(settings.timeout));
    if let (Some(user), Some(password)) = (&server.username, server.expose_password()) {
        builder = builder.credentials(Credentials::new(user.clone(), password.to_owned()));
    }
    Ok(builder.build())
}

struct Worker {
    transport: Transport,
    from: Mailbox,
    stats: Arc<MailStats>,
    max_attempts: u32,
    timeout: Duration,
}

impl Worker {
    async fn run(self, mut receiver: mpsc::Receiver<Mail>) {
        let this = Arc::new(self);
        let slots = Arc::new(Semaphore::new(CONCURRENT_DELIVERIES));
        while let Some(mail) = receiver.recv().await {
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            let this = Arc::clone(&this);
            tokio::spawn(async move {
                this.deliver(mail).await;
                this.stats.pending.fetch_sub(1, Ordering::Relaxed);
                drop(slot);
            });
        }
    }

    async fn deliver(&self, mail: Mail) {
        let kind = mail.kind;
        let message = match Message::builder()
            .from(self.from.clone())
            .to(mail.to)
            .subject(mail.subject)
            .multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::plain(readable(mail.text)))
                    .singlepart(SinglePart::html(readable(mail.html))),
            ) {
            Ok(message) => message,
            Err(e) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(kind, error = %e, "mail could not be built; not sent");
                return;
            }
        };
        let mut wait = Duration::from_secs(1);
        for attempt in 1..=self.max_attempts {
            let sent = tokio::time::timeout(self.timeout, self.send_once(&message)).await;
            match sent {
                Ok(Ok(id)) => {
                    self.stats.sent.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(kind, attempt, id = %id, "mail sent");
                    return;
                }
                Ok(Err(e)) if attempt < self.max_attempts => {
                    self.stats.retried.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(kind, attempt, error = %e, "mail not sent; retrying");
                }
                Err(_) if attempt < self.max_attempts => {
                    self.stats.retried.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(kind, attempt, "mail not sent in time; retrying");
                }
                Ok(Err(e)) => {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(kind, attempts = attempt, error = %e, "mail given up");
                    return;
                }
                Err(_) => {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        kind,
                        attempts = attempt,
                        "mail given up: no delivery in time"
                    );
                    return;
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_RETRY_WAIT);
        }
    }

    /// One attempt; on success, what identifies the delivery in the log
    /// (the server's reply code, or the outbox file's id).
    async fn send_once(&self, message: &Message) -> Result<String, String> {
        match &self.transport {
            Transport::Smtp(t) => t
                .send(message.clone())
                .await
                .map(|reply| reply.code().to_string())
                .map_err(|e| e.to_string()),
            Transport::Outbox(t) => t.send(message.clone()).await.map_err(|e| e.to_string()),
        }
    }
}

/// A body sent as written (7bit: ASCII without NUL, CRLF line ends, no
/// line over 998 octets, RFC 5322 §2.1.1 and RFC 2045 §2.7) when it can
/// be, so links stay whole and searchable in the outbox's files and in
/// mail sources; anything else as lettre chooses (quoted-printable or
/// base64). lettre's own chooser keeps 7bit to lines under 76 octets,
/// which a link with a 43-character token never fits.
fn readable(text: String) -> Body {
    let text = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let fits = text.is_ascii()
        && !text.contains('\0')
        && text
            .split("\r\n")
            .all(|line| line.len() <= 998 && !line.contains('\r'));
    if fits {
        Body::dangerous_pre_encoded(text.into_bytes(), ContentTransferEncoding::SevenBit)
    } else {
        Body::new(text)
    }
}

/// The outbox file names of `dir`, for tools and tests.
pub fn outbox_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_bodies_go_as_written_and_others_are_encoded() {
        let link = format!(
            "https://app.example.org/reset-password#token=pal_pr_{}",
            "x".repeat(43)
        );
        let body = readable(format!("Hello,\n\n{link}\n"));
        assert_eq!(body.encoding(), ContentTransferEncoding::SevenBit);
        assert_eq!(
            body.into_vec(),
            format!("Hello,\r\n\r\n{link}\r\n").into_bytes()
        );
        assert_ne!(
            readable("Grüße".into()).encoding(),
            ContentTransferEncoding::SevenBit
        );
        assert_ne!(
            readable("a".repeat(999)).encoding(),
            ContentTransferEncoding::SevenBit
        );
    }
}
