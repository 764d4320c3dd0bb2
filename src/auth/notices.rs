//! What Palisade mails a user, and the single-use tokens in those mails.
//!
//! Every mail has a plain-text and an HTML part with the same words: what
//! happened or what the link is for, the link (the one-time token in its
//! fragment, so the page it opens never sends it to a server in a
//! request line or a `Referer`), and what to do if it was not them. No
//! other secret is ever in a mail. Mails are queued (`mail::Mailer::send`),
//! never awaited by the request.
//!
//! Tokens: 256 random bits, stored only as SHA-256, single use;
//! verification tokens live 24 hours and are bound to the address they
//! were sent to; reset tokens live 30 minutes and are bound to the
//! password at the time (its change time), so any later password change
//! voids them.

use std::net::IpAddr;
use std::time::Duration;

use lettre::message::Mailbox;
use sha2::{Digest, Sha256};

use super::AuthState;
use super::audit::RequestContext;
use super::refresh;
use crate::domain::User;
use crate::error::ApiError;
use crate::mail::Mail;
use crate::storage::{self, devices, email_tokens, email_tokens::Purpose};

/// How long a verification token lives.
pub const VERIFY_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a reset token lives.
pub const RESET_TTL: Duration = Duration::from_secs(30 * 60);
/// A login from a device not seen for this long is "new".
pub const DEVICE_MEMORY: Duration = Duration::from_secs(90 * 24 * 3600);

/// Prefix of verification tokens.
pub const VERIFY_PREFIX: &str = "pal_ev_";
/// Prefix of reset tokens.
pub const RESET_PREFIX: &str = "pal_pr_";

/// Security notices: mailed after the fact, so an owner who did not do it
/// learns of it.
#[derive(Debug, Clone)]
pub enum Notice {
    PasswordChanged,
    PasswordReset,
    MfaEnabled,
    MfaDisabled,
    RecoveryCodesRegenerated,
    NewDevice {
        ip: Option<String>,
        user_agent: Option<String>,
    },
}

/// What a reset token stands for: the password as it was when the token
/// was made.
pub fn reset_stamp(user: &User) -> String {
    user.password_changed_at.to_string()
}

/// What a verification token stands for: the address it was sent to.
pub fn verify_stamp(user: &User) -> String {
    user.email.clone()
}

fn mailbox(user: &User) -> Option<Mailbox> {
    match user.email.parse::<Mailbox>() {
        Ok(mut mailbox) => {
            mailbox.name = Some(user.name.clone());
            Some(mailbox)
        }
        Err(e) => {
            tracing::error!(error = %e, "the account's address cannot be mailed");
            None
        }
    }
}

/// Issues a token of `purpose` for `user` and queues its mail.
pub async fn send_token(state: &AuthState, user: &User, purpose: Purpose) -> Result<(), ApiError> {
    let (prefix, ttl, stamp) = match purpose {
        Purpose::Verify => (VERIFY_PREFIX, VERIFY_TTL, verify_stamp(user)),
        Purpose::Reset => (RESET_PREFIX, RESET_TTL, reset_stamp(user)),
    };
    let token = refresh::generate_prefixed(prefix)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("no randomness: {e}")))?;
    let now = storage::now_ms();
    email_tokens::insert(
        state.db.pool(),
        &refresh::hash(&token),
        &user.id,
        purpose,
        &stamp,
        now,
        now + storage::ms(ttl),
    )
    .await?;
    let Some(to) = mailbox(user) else {
        return Ok(());
    };
    let base = &state.settings.mail.public_base_url;
    let mail = match purpose {
        Purpose::Verify => {
            let link = format!("{base}/verify-email#token={token}");
            compose(
                "verify_email",
                to,
                "Confirm your email address",
                &user.name,
                &[
                    "Please confirm that this address is yours by opening the link below. It works once, for 24 hours.",
                ],
                Some(&link),
                "If you did not create an account or ask for this, ignore this mail.",
            )
        }
        Purpose::Reset => {
            let link = format!("{base}/reset-password#token={token}");
            compose(
                "password_reset",
                to,
                "Reset your password",
                &user.name,
                &[
                    "Someone (we hope you) asked to reset the password of your account. Open the link below to choose a new one. It works once, for 30 minutes, and stops working if your password changes in any other way.",
                    "Resetting the password ends every session of the account; your second factor, if you have one, stays.",
                ],
                Some(&link),
                "If you did not ask for this, ignore this mail: your password stays as it is.",
            )
        }
    };
    state.mailer.send(mail);
    Ok(())
}

/// Queues a security notice to `user`.
pub fn notify(state: &AuthState, user: &User, notice: &Notice) {
    let Some(to) = mailbox(user) else {
        return;
    };
    let not_you =
        "If this was not you, reset your password now and review your sessions and second factor.";
    let (kind, subject, lines): (&'static str, &str, Vec<String>) = match notice {
        Notice::PasswordChanged => (
            "notice_password_changed",
            "Your password was changed",
            vec!["The password of your account was just changed. Every other session was ended.".into()],
        ),
        Notice::PasswordReset => (
            "notice_password_reset",
            "Your password was reset",
            vec!["The password of your account was just reset through a link mailed to this address. Every session was ended.".into()],
        ),
        Notice::MfaEnabled => (
            "notice_mfa_enabled",
            "Two-step login turned on",
            vec!["An authenticator app was added to your account: logins now need a code from it (or one of your recovery codes).".into()],
        ),
        Notice::MfaDisabled => (
            "notice_mfa_disabled",
            "Two-step login turned off",
            vec!["The authenticator app was removed from your account: logins now need only the password.".into()],
        ),
        Notice::RecoveryCodesRegenerated => (
            "notice_recovery_codes",
            "New recovery codes",
            vec!["A new set of recovery codes was made for your account; the old codes no longer work.".into()],
        ),
        Notice::NewDevice { ip, user_agent } => (
            "notice_new_device",
            "New login to your account",
            vec![
                "Your account was just logged in to from a device or network it has not used in the last 90 days.".into(),
                format!("Address: {}", ip.as_deref().unwrap_or("unknown")),
                format!("Browser or app: {}", user_agent.as_deref().unwrap_or("unknown")),
            ],
        ),
    };
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    state.mailer.send(compose(
        kind, to, subject, &user.name, &lines, None, not_you,
    ));
}

/// Records a login of `user` from where `ctx` says and, if that device
/// and network were not seen for 90 days (and the user has logged in
/// before), mails a notice (queued: the mail goes out beside the
/// request). The device is recorded before the login answers, so a
/// client's next login always finds it: recorded beside the request, two
/// quick logins could be recorded in the wrong order and the first one
/// reported as the new device. A failure only loses the notice.
pub async fn after_login(state: &AuthState, user: &User, ctx: &RequestContext) {
    let device = device_key(ctx.ip.as_deref(), ctx.user_agent.as_deref());
    let now = storage::now_ms();
    let window = storage::ms(DEVICE_MEMORY);
    match devices::record(state.db.pool(), &user.id, &device, now, window).await {
        Ok(devices::Seen::New) => {
            let notice = Notice::NewDevice {
                ip: ctx.ip.clone(),
                user_agent: ctx.user_agent.clone(),
            };
            notify(state, user, &notice);
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not record the login's device"),
    }
}

/// A device: the user agent and the client's network (/24 of IPv4, /56
/// of IPv6), kept only as a digest.
pub fn device_key(ip: Option<&str>, user_agent: Option<&str>) -> String {
    let network = match ip.and_then(|ip| ip.parse::<IpAddr>().ok()) {
        Some(IpAddr::V4(v4)) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => {
                let o = v4.octets();
                format!("{}.{}.{}.0/24", o[0], o[1], o[2])
            }
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}00::/56", s[0], s[1], s[2], s[3] >> 8)
            }
        },
        None => "unknown".to_owned(),
    };
    let mut hasher = Sha256::new();
    hasher.update(network.as_bytes());
    hasher.update([0]);
    hasher.update(user_agent.unwrap_or("").as_bytes());
    hex::encode(hasher.finalize())
}

/// One mail, as text and as HTML (every value escaped).
fn compose(
    kind: &'static str,
    to: Mailbox,
    subject: &str,
    name: &str,
    lines: &[&str],
    link: Option<&str>,
    footer: &str,
) -> Mail {
    let mut text = format!("Hello {name},\n\n");
    let mut html = format!(
        "<!doctype html>\n<html><body style=\"font-family: sans-serif\">\n<p>Hello {},</p>\n",
        escape(name)
    );
    for line in lines {
        text.push_str(line);
        text.push_str("\n\n");
        html.push_str(&format!("<p>{}</p>\n", escape(line)));
    }
    if let Some(link) = link {
        text.push_str(&format!("{link}\n\n"));
        let link = escape(link);
        html.push_str(&format!("<p><a href=\"{link}\">{link}</a></p>\n"));
    }
    text.push_str(footer);
    text.push('\n');
    html.push_str(&format!("<p>{}</p>\n</body></html>\n", escape(footer)));
    Mail {
        kind,
        to,
        subject: subject.to_owned(),
        text,
        html,
    }
}

/// HTML text escaping (the five characters that matter in text and in
/// quoted attribute values).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_is_its_agent_and_network_not_its_exact_address() {
        let a = device_key(Some("203.0.113.7"), Some("curl/8"));
        assert_eq!(a, device_key(Some("203.0.113.200"), Some("curl/8")));
        assert_ne!(a, device_key(Some("203.0.114.7"), Some("curl/8")));
        assert_ne!(a, device_key(Some("203.0.113.7"), Some("curl/9")));
        let v6 = device_key(Some("2001:db8:1:2300::1"), Some("x"));
        assert_eq!(v6, device_key(Some("2001:db8:1:23ff:ffff::9"), Some("x")));
        assert_ne!(v6, device_key(Some("2001:db8:1:2400::1"), Some("x")));
    }

    #[test]
    fn html_is_escaped_and_both_parts_carry_the_link() {
        let to: Mailbox = "ada@example.org".parse().unwrap();
        let mail = compose(
            "t",
            to,
            "s",
            "<script>x</script>",
            &["a & b"],
            Some("https://app.example.org/r#token=pal_pr_x"),
            "f",
        );
        assert!(mail.html.contains("&lt;script&gt;") && !mail.html.contains("<script>"));
        assert!(mail.html.contains("a &amp; b"));
        assert!(
            mail.text
                .contains("https://app.example.org/r#token=pal_pr_x")
        );
        assert!(
            mail.html
                .contains("href=\"https://app.example.org/r#token=pal_pr_x\"")
        );
    }
}
