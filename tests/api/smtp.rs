//! A real SMTP server for the tests: `tests/smtp/server.py` (aiosmtpd) on
//! a free loopback port, in a Python venv that `tests/smtp/setup.sh`
//! makes once. Delivered mails are read back, decoded, from its folder.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// How the server takes connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    StartTls,
    Smtps,
}

/// One delivered mail, as the server decoded it.
#[derive(Debug, Clone, Deserialize)]
pub struct Delivered {
    pub rcpt_tos: Vec<String>,
    pub from: String,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    pub tls: bool,
    pub authenticated: bool,
    pub raw: String,
}

impl Delivered {
    /// The token in the link of the mail (`#token=...`).
    pub fn token(&self) -> String {
        let text = self.text.as_deref().unwrap_or_default();
        let start = text.find("#token=").expect("a link with a token") + "#token=".len();
        text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect()
    }
}

/// A running SMTP server; stopped when dropped.
pub struct SmtpServer {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
    /// The CA that signed its certificate (TLS modes).
    pub ca_file: Option<PathBuf>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn python() -> String {
    crate::helpers::venv_python("tests/smtp/setup.sh", "the SMTP test server")
}

impl SmtpServer {
    pub fn start(mode: Mode, auth: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = crate::helpers::free_port();
        let mut command = Command::new(python());
        command
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp/server.py"))
            .args(["--port", &port.to_string()])
            .arg("--dir")
            .arg(dir.path());
        let mut ca_file = None;
        if mode != Mode::Plain {
            let (ca, cert, key) = certificates();
            let paths =
                [("ca.pem", ca), ("cert.pem", cert), ("key.pem", key)].map(|(name, pem)| {
                    let path = dir.path().join(name);
                    std::fs::write(&path, pem).unwrap();
                    path
                });
            command
                .args([
                    "--mode",
                    if mode == Mode::Smtps {
                        "smtps"
                    } else {
                        "starttls"
                    },
                ])
                .arg("--cert")
                .arg(&paths[1])
                .arg("--key")
                .arg(&paths[2]);
            ca_file = Some(paths[0].clone());
        }
        if let Some((user, password)) = auth {
            command.args(["--auth", &format!("{user}:{password}")]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP test server did not start");
        Self {
            port,
            child,
            dir,
            ca_file,
        }
    }

    /// `PALISADE_SMTP_URL` for this server.
    pub fn url(&self, mode: Mode) -> String {
        match mode {
            Mode::Plain => format!("smtp://127.0.0.1:{}?tls=none", self.port),
            Mode::StartTls => format!("smtp://localhost:{}", self.port),
            Mode::Smtps => format!("smtps://localhost:{}", self.port),
        }
    }

    /// Every mail delivered so far, oldest first.
    pub fn delivered(&self) -> Vec<Delivered> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }

    /// Waits (at most 10 s) for a mail to `to` whose subject contains
    /// `subject`, and returns it.
    pub async fn wait_for(&self, to: &str, subject: &str) -> Delivered {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(mail) = self
                .delivered()
                .into_iter()
                .rev()
                .find(|m| m.rcpt_tos.iter().any(|r| r == to) && m.subject.contains(subject))
            {
                return mail;
            }
            assert!(
                Instant::now() < deadline,
                "no mail {subject:?} to {to}; delivered: {:?}",
                self.delivered()
                    .iter()
                    .map(|m| &m.subject)
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How many mails went to `to`.
    pub fn count_to(&self, to: &str) -> usize {
        self.delivered()
            .iter()
            .filter(|m| m.rcpt_tos.iter().any(|r| r == to))
            .count()
    }
}

/// A CA, and a certificate it signed for `localhost` and 127.0.0.1: (CA
/// PEM, certificate PEM, key PEM).
fn certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "palisade smtp test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}
