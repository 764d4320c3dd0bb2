//! Native TLS: the certificate and key from PEM files, served by rustls
//! (TLS 1.3 and 1.2, ring's suites only: ECDHE key exchange and AEAD
//! ciphers), with ALPN offering `h2` then `http/1.1`.
//!
//! The certificate lives in a [`CertStore`] that the TLS configuration asks
//! on every handshake, so a reload swaps it for new connections while open
//! connections keep the one they started with: nothing is dropped. A
//! reload that fails (a half-written file, a key that does not match)
//! leaves the previous certificate in place; only start-up fails on a bad
//! pair.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

/// The ALPN protocols offered, in the server's order of preference.
pub const ALPN_H2: &[u8] = b"h2";
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Why a certificate and key could not be loaded. Never carries key bytes.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate in it")]
    NoCertificate { path: PathBuf },
    #[error("{path}: not a PEM certificate chain ({reason})")]
    BadCertificate { path: PathBuf, reason: String },
    #[error(
        "{path}: no PEM private key in it (PKCS#8, PKCS#1 or SEC1: `BEGIN PRIVATE KEY`, `BEGIN RSA PRIVATE KEY` or `BEGIN EC PRIVATE KEY`)"
    )]
    NoKey { path: PathBuf },
    #[error("{path}: the private key cannot be used ({reason})")]
    BadKey { path: PathBuf, reason: String },
    #[error("the private key in {key} does not belong to the certificate in {cert}")]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The certificate being served, and the files it comes from.
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Loaded>,
}

struct Loaded {
    key: Arc<CertifiedKey>,
    /// SHA-256 of the two files' bytes, to tell whether they changed.
    digest: [u8; 32],
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl CertStore {
    /// Loads the pair, or says why it cannot be served.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<Self>, TlsError> {
        // ring is the one provider in the tree (sqlx's and redis's TLS use
        // it too). rustls 0.23.48 deprecates it for lacking post-quantum
        // key exchange (X25519MLKEM768, aws-lc-rs only): a known limit,
        // written down in docs/security.md.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (cert, key) = read_pair(cert_path, key_path)?;
        let loaded = certified(cert_path, key_path, &cert, &key, &provider)?;
        Ok(Arc::new(Self {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider,
            current: RwLock::new(loaded),
        }))
    }

    /// Reads the files again and swaps the certificate if they changed:
    /// `Ok(true)` when a new one is now served, `Ok(false)` when the files
    /// are as they were. On an error the previous certificate stays.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let (cert, key) = read_pair(&self.cert_path, &self.key_path)?;
        if digest(&cert, &key) == self.read().digest {
            return Ok(false);
        }
        let loaded = certified(&self.cert_path, &self.key_path, &cert, &key, &self.provider)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = loaded;
        Ok(true)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Loaded> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The rustls configuration serving this store's certificate.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, TlsError> {
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.read().key))
    }
}

fn read_pair(cert_path: &Path, key_path: &Path) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
    };
    Ok((read(cert_path)?, read(key_path)?))
}

fn digest(cert: &[u8], key: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update((cert.len() as u64).to_be_bytes());
    hash.update(cert);
    hash.update(key);
    hash.finalize().into()
}

fn certified(
    cert_path: &Path,
    key_path: &Path,
    cert: &[u8],
    key: &[u8],
    provider: &CryptoProvider,
) -> Result<Loaded, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCertificate {
            path: cert_path.to_owned(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_owned(),
        });
    }
    let private = PrivateKeyDer::from_pem_slice(key).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            path: key_path.to_owned(),
        },
        other => TlsError::BadKey {
            path: key_path.to_owned(),
            reason: other.to_string(),
        },
    })?;
    let signing = provider
        .key_provider
        .load_private_key(private)
        .map_err(|e| TlsError::BadKey {
            path: key_path.to_owned(),
            reason: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing);
    // Parses the end-entity certificate and compares its public key with
    // the private key's.
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(TlsError::Mismatch {
                cert: cert_path.to_owned(),
                key: key_path.to_owned(),
            });
        }
        Err(e) => {
            return Err(TlsError::BadCertificate {
                path: cert_path.to_owned(),
                reason: e.to_string(),
            });
        }
    }
    Ok(Loaded {
        key: Arc::new(certified),
        digest: digest(cert, key),
    })
}
