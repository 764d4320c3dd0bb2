//! The control socket of the embedded database: how `palisade users …`,
//! another process on the same SQLite file, reaches the running server's
//! session cache.
//!
//! The server listens on a Unix socket beside the database file
//! (`palisade.db.sock`, mode 0600 in the 0700 data folder). After the CLI
//! commits a change it connects, sends `evict <user id>\n` and waits for
//! `ok\n`. No socket, or nobody listening, means no server runs, so there
//! is no cache to reach. The only thing the socket can do is evict entries,
//! so at worst a caller that can reach it makes requests read the database.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::SessionCache;

/// How long the CLI waits for the server to confirm.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(2);

/// The socket path for the SQLite file `database` (None if it would be too
/// long for a Unix socket address).
pub fn socket_path(database: &Path) -> Option<PathBuf> {
    let mut name = database.as_os_str().to_owned();
    name.push(".sock");
    let path = PathBuf::from(name);
    // sun_path holds 108 bytes with the terminating NUL.
    (path.as_os_str().len() < 108).then_some(path)
}

/// Tells the server listening on `path`, if any, to evict `user_id`.
/// Whether the server confirmed (or none runs).
#[cfg(unix)]
pub async fn notify(path: &Path, user_id: &str) -> bool {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let exchange = async {
        let mut stream = match tokio::net::UnixStream::connect(path).await {
            Ok(s) => s,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                return Ok(true);
            }
            Err(e) => return Err(e),
        };
        stream
            .write_all(format!("evict {user_id}\n").as_bytes())
            .await?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).await?;
        Ok(line == "ok\n")
    };
    match tokio::time::timeout(CONFIRM_TIMEOUT, exchange).await {
        Ok(Ok(true)) => true,
        Ok(Ok(false)) | Err(_) => {
            tracing::warn!("the running server did not confirm the session-cache eviction");
            false
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot reach the running server's control socket");
            false
        }
    }
}

#[cfg(not(unix))]
pub async fn notify(_path: &Path, _user_id: &str) -> bool {
    true
}

/// Serves the control socket at `path` for `cache` for as long as the
/// process runs. If another live server already holds it, this server runs
/// without a cache (it could not be told about the CLI's changes).
#[cfg(unix)]
pub async fn serve(path: PathBuf, cache: SessionCache) {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    // One server per file serves the socket: the one holding the lock
    // beside it (released by the system when the process ends).
    let mut lock_path = path.clone().into_os_string();
    lock_path.push(".lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path);
    let lock = match lock {
        Ok(file) => match file.try_lock() {
            Ok(()) => file,
            Err(_) => {
                tracing::warn!(path = %path.display(), "another server serves this database's control socket: session cache off");
                cache.give_up();
                return;
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "cannot open the control socket's lock: session cache off");
            cache.give_up();
            return;
        }
    };
    let _ = std::fs::remove_file(&path);
    let listener = match tokio::net::UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot open the control socket: session cache off");
            cache.give_up();
            return;
        }
    };
    if let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!(error = %e, "cannot restrict the control socket to its owner: session cache off");
        cache.give_up();
        return;
    }
    cache.set_listening(true);
    let _unlisten = Unlisten {
        cache: cache.clone(),
        path: path.clone(),
        _lock: lock,
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let cache = cache.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            let mut reader = BufReader::new(read).take(200);
            let read = reader.read_line(&mut line);
            if !matches!(tokio::time::timeout(CONFIRM_TIMEOUT, read).await, Ok(Ok(_))) {
                return;
            }
            if let Some(user_id) = line.strip_prefix("evict ").map(str::trim_end) {
                cache.evict_local(user_id);
                let _ = write.write_all(b"ok\n").await;
            }
        });
    }
}

#[cfg(not(unix))]
pub async fn serve(_path: PathBuf, _cache: SessionCache) {}

/// Stops the cache and removes the socket when the server stops (the lock
/// goes with the file handle).
#[cfg(unix)]
struct Unlisten {
    cache: SessionCache,
    path: PathBuf,
    _lock: std::fs::File,
}

#[cfg(unix)]
impl Drop for Unlisten {
    fn drop(&mut self) {
        self.cache.set_listening(false);
        let _ = std::fs::remove_file(&self.path);
    }
}
