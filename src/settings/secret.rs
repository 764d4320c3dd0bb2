//! The token-signing secret: strength checks for a configured one, and the
//! zero-configuration path that generates one into the data folder.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretSlice};

/// Shortest secret accepted, in bytes (HS256 wants a key as long as its hash).
pub const MIN_SECRET_BYTES: usize = 32;

/// File name of the generated secret inside the data folder.
const SECRET_FILE: &str = "jwt-secret";

/// File name of the generated MFA key inside the data folder.
pub const MFA_KEY_FILE: &str = "mfa-key";

/// Words that mark a secret copied from an example rather than generated.
const PLACEHOLDERS: &[&str] = &[
    "changeme",
    "change-me",
    "change_me",
    "replaceme",
    "replace-me",
    "placeholder",
    "yoursecret",
    "your-secret",
    "your_secret",
    "your-256-bit-secret",
    "secretkey",
    "secret-key",
    "secret_key",
    "example",
    "password",
    "todo",
    "xxxxxxxx",
    "insecure",
];

/// An HMAC signing key. Its bytes never appear in `Debug` output.
#[derive(Clone)]
pub struct SigningSecret(SecretSlice<u8>);

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(<redacted>)")
    }
}

impl SigningSecret {
    /// Checks a configured secret; the error says why it is refused and never
    /// repeats the secret.
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim_end_matches(['\r', '\n']);
        if trimmed.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "is {} bytes long; at least {MIN_SECRET_BYTES} are required (generate one with `openssl rand -hex 32`)",
                trimmed.len()
            ));
        }
        let lower = trimmed.to_ascii_lowercase();
        if let Some(word) = PLACEHOLDERS.iter().find(|w| lower.contains(*w)) {
            return Err(format!(
                "contains the placeholder {word:?}; generate a random one"
            ));
        }
        let mut distinct: Vec<char> = trimmed.chars().collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < 8 {
            return Err("has fewer than 8 distinct characters; generate a random one".into());
        }
        Ok(Self(SecretSlice::from(trimmed.as_bytes().to_vec())))
    }

    /// 256 bits from the operating system's RNG, as 64 hex characters.
    /// The key is that text, exactly as a configured secret is its text,
    /// so the file's contents can be copied into `PALISADE_JWT_SECRET`.
    pub fn generate() -> std::io::Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
        Ok(Self(SecretSlice::from(hex::encode(bytes).into_bytes())))
    }

    /// The key bytes, for the signer only.
    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

/// Where the generated secret lives.
pub fn secret_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SECRET_FILE)
}

/// Reads the generated secret from the data folder, creating it (mode 0600)
/// the first time. Returns the secret and whether it was just created.
pub fn load_or_generate(data_dir: &Path) -> std::io::Result<(SigningSecret, bool)> {
    load_or_generate_file(data_dir, SECRET_FILE)
}

/// [`load_or_generate`] for the key file `name` of the data folder.
pub fn load_or_generate_file(
    data_dir: &Path,
    name: &str,
) -> std::io::Result<(SigningSecret, bool)> {
    let path = data_dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => SigningSecret::parse(text.trim())
            .map(|secret| (secret, false))
            .map_err(|why| {
                std::io::Error::other(format!("the secret in {} {why}", path.display()))
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            create_private_dir(data_dir)?;
            let secret = SigningSecret::generate()?;
            write_private(&path, secret.expose())?;
            Ok((secret, true))
        }
        Err(e) => Err(e),
    }
}

/// Creates the folder `path` (and its missing parents) for its owner only
/// (0700 on Unix, whatever the umask); an existing folder is left as it is.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)
}

/// Creates the empty file `path` readable and writable by its owner only
/// (0600 on Unix), unless it exists.
pub fn create_private_file(path: &Path) -> std::io::Result<()> {
    match write_private(path, b"") {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// Creates `path` readable and writable by its owner only; never overwrites.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_secret_is_refused() {
        assert!(SigningSecret::parse("abcdefghijklmnop").is_err());
    }

    #[test]
    fn placeholders_and_repeated_characters_are_refused() {
        for bad in [
            "changeme-changeme-changeme-changeme",
            "your-256-bit-secret-your-256-bit-secret",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "abababababababababababababababababababab",
            "my-super-SECRET_KEY-for-production-use-1",
        ] {
            assert!(SigningSecret::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn a_random_hex_secret_is_accepted_and_never_printed() {
        let text = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let secret = SigningSecret::parse(text).unwrap();
        assert_eq!(secret.expose(), text.as_bytes());
        assert!(!format!("{secret:?}").contains("9f86"));
    }

    #[test]
    fn the_generated_secret_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let (first, created) = load_or_generate(dir.path()).unwrap();
        assert!(created);
        assert_eq!(first.expose().len(), 64);
        assert_eq!(
            std::fs::read(secret_path(dir.path())).unwrap(),
            first.expose()
        );
        let (second, created) = load_or_generate(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(first.expose(), second.expose());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(secret_path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
