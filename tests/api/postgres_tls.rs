//! TLS to PostgreSQL, as managed databases require: a cluster of the
//! test's own (`initdb` on a free port) that accepts only TLS connections,
//! with a certificate from a CA the test makes with `openssl`. The
//! connection settings are the usual libpq URL parameters
//! (`sslmode=require|verify-ca|verify-full`, `sslrootcert=FILE`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::database::{POSTGRES, TEST_SECRET};
use crate::helpers::{settings, spawn_app};

pub fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The PostgreSQL server programs of this machine.
fn pg_bin(name: &str) -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let version = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("{}: {e} (apt-get install postgresql)", root.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .max()
        .unwrap();
    version.join("bin").join(name)
}

/// Makes a CA and a certificate for 127.0.0.1 signed by it, in `dir`.
pub fn certificates(dir: &Path, name: &str) -> PathBuf {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(Command::new("openssl")
        .current_dir(dir)
        .args(["req", "-x509"])
        .args(ec)
        .args([
            "-keyout",
            &format!("{name}-ca.key"),
            "-out",
            &format!("{name}-ca.pem"),
        ])
        .args(["-days", "2", "-subj", &format!("/CN={name} test CA")]));
    run(Command::new("openssl")
        .current_dir(dir)
        .args(["req"])
        .args(ec)
        .args([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]));
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    run(Command::new("openssl").current_dir(dir).args([
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        &format!("{name}-ca.pem"),
        "-CAkey",
        &format!("{name}-ca.key"),
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]));
    dir.join(format!("{name}-ca.pem"))
}

/// A PostgreSQL cluster of its own that refuses every connection without
/// TLS. Stopped (immediately) and removed on drop.
struct TlsCluster {
    dir: tempfile::TempDir,
    port: u16,
    ca: PathBuf,
}

impl TlsCluster {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let ca = certificates(root, "good");
        let data = root.join("data");
        run(Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(root));
        run(Command::new("chmod")
            .arg("0600")
            .arg(root.join("server.key")));
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(pg_bin("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data));
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nfsync = off\n",
            root.display(),
            root.join("server.pem").display(),
            root.join("server.key").display(),
        );
        let mut pg_conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        pg_conf.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), pg_conf).unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostnossl all all 127.0.0.1/32 reject\n",
        )
        .unwrap();
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(pg_bin("pg_ctl"))
            .args(["-w", "-t", "30", "-l"])
            .arg(root.join("log"))
            .arg("-D")
            .arg(&data)
            .arg("start"));
        Self { dir, port, ca }
    }

    fn url(&self, params: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?{params}",
            self.port
        )
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(pg_bin("pg_ctl"))
            .args(["-m", "immediate", "-D"])
            .arg(self.dir.path().join("data"))
            .arg("stop")
            .output();
    }
}

async fn starts(url: &str) -> Result<(), String> {
    let (settings, _scratch) =
        settings(&[("DATABASE_URL", url), ("PALISADE_JWT_SECRET", TEST_SECRET)]);
    palisade::Application::build(settings)
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:#}"))
}

#[tokio::test]
async fn postgres_over_verified_tls_works_and_plain_or_unverifiable_connections_are_refused() {
    if !POSTGRES {
        // Needs a PostgreSQL cluster: the PostgreSQL run's test.
        return;
    }
    let cluster = TlsCluster::start();
    let ca = cluster.ca.display().to_string();

    // Verified TLS: the server certificate chains to the given CA and names
    // 127.0.0.1. The whole server works over it.
    let verified = cluster.url(&format!("sslmode=verify-full&sslrootcert={ca}"));
    let app = spawn_app(&[
        ("DATABASE_URL", verified.as_str()),
        ("PALISADE_JWT_SECRET", TEST_SECRET),
    ])
    .await;
    assert_eq!(app.register("over_tls").await["username"], "over_tls");
    assert_eq!(app.get("/health/ready").await.status(), 200);

    // The cluster refuses plain connections, so the success above was TLS.
    let plain = starts(&cluster.url("sslmode=disable")).await;
    assert!(plain.is_err(), "a plain connection was accepted");

    // Another CA: the certificate does not verify, start-up is refused.
    let other = tempfile::tempdir().unwrap();
    let wrong_ca = certificates(other.path(), "other").display().to_string();
    let unverified =
        starts(&cluster.url(&format!("sslmode=verify-full&sslrootcert={wrong_ca}"))).await;
    assert!(
        unverified.is_err(),
        "a certificate from an unknown CA was accepted"
    );
}
