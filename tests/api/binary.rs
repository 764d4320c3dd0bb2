//! The real `palisade` binary: start-up refusals, check-config, zero-config
//! serving and signals.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{POSTGRES, TEST_SECRET, TestDatabase};

const BIN: &str = env!("CARGO_BIN_EXE_palisade");

fn palisade(args: &[&str], env: &[(&str, &str)], dir: &std::path::Path) -> Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .unwrap()
}

fn refused(env: &[(&str, &str)], needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    for command in ["serve", "check-config"] {
        let out = palisade(
            &[command, "--bind", "127.0.0.1:0"][..if command == "serve" { 3 } else { 1 }],
            env,
            dir.path(),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{command} {env:?} was not refused: {stderr}"
        );
        assert!(
            stderr.contains(needle),
            "{command}: {needle:?} not in {stderr}"
        );
    }
}

#[test]
fn a_wildcard_origin_with_credentials_stops_start_up() {
    refused(
        &[
            ("PALISADE_CORS_ALLOWED_ORIGINS", "*"),
            ("PALISADE_CORS_ALLOW_CREDENTIALS", "true"),
        ],
        "cors.allowed_origins",
    );
}

#[test]
fn a_short_secret_stops_start_up() {
    refused(
        &[("PALISADE_JWT_SECRET", "tooshort")],
        "at least 32 are required",
    );
}

#[test]
fn a_placeholder_secret_stops_start_up_without_being_echoed() {
    let secret = "changeme-changeme-changeme-changeme-1234";
    refused(&[("PALISADE_JWT_SECRET", secret)], "placeholder");
    let dir = tempfile::tempdir().unwrap();
    let out = palisade(
        &["check-config"],
        &[("PALISADE_JWT_SECRET", secret)],
        dir.path(),
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains(secret));
}

#[test]
fn a_repeated_character_secret_stops_start_up() {
    refused(
        &[("PALISADE_JWT_SECRET", &"x".repeat(48))],
        "auth.jwt_secret",
    );
}

#[test]
fn origins_with_a_path_or_trailing_slash_or_no_scheme_stop_start_up() {
    refused(
        &[("PALISADE_CORS_ALLOWED_ORIGINS", "https://app.example/")],
        "trailing slash",
    );
    refused(
        &[("PALISADE_CORS_ALLOWED_ORIGINS", "https://app.example/app")],
        "path",
    );
    refused(
        &[("PALISADE_CORS_ALLOWED_ORIGINS", "app.example")],
        "scheme://host",
    );
}

#[test]
fn a_bad_limit_spec_stops_start_up() {
    refused(
        &[("PALISADE_RATE_LIMIT_POLICIES", "data=10/fortnight")],
        "rate_limit.policies.data",
    );
    refused(
        &[("PALISADE_RATE_LIMIT_ROUTES", "GET /api/dta=data")],
        "/api/dta",
    );
}

#[test]
fn every_problem_is_listed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = palisade(
        &["check-config"],
        &[
            ("PALISADE_BIND", "nowhere"),
            ("PALISADE_JWT_SECRET", "short"),
            ("PALISADE_CORS_ALLOWED_ORIGINS", "https://x.example/"),
            ("PALISADE_RATE_LIMIT_DEFAULT", "missing"),
        ],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("4 problem(s)"), "{stderr}");
}

#[test]
fn a_secret_file_is_read_and_check_config_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    let secret = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    let out = palisade(
        &["check-config"],
        &[
            ("PALISADE_JWT_SECRET_FILE", file.to_str().unwrap()),
            ("PALISADE_DOCS", "true"),
        ],
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("[rate_limit.policies]") && stdout.contains("bind = \"127.0.0.1:8000\""),
        "{stdout}"
    );
    assert!(!stdout.contains(secret) && !stderr.contains(secret));
    assert!(stderr.contains("warning: server.docs is on"), "{stderr}");
    assert!(
        stderr.contains("warning: cors.allowed_origins is empty"),
        "{stderr}"
    );

    let inline = palisade(
        &["check-config"],
        &[
            ("PALISADE_JWT_SECRET", secret),
            ("PALISADE_LOG_LEVEL", "debug"),
        ],
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&inline.stdout);
    assert!(stdout.contains("jwt_secret = \"<redacted>\""), "{stdout}");
    assert!(!stdout.contains(secret));
    assert!(String::from_utf8_lossy(&inline.stderr).contains("warning: log.level"));
}

#[test]
fn a_config_file_is_read_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("palisade.toml");
    std::fs::write(
        &file,
        "[server]\nbind = \"127.0.0.1:9999\"\ndata_dir = \"from-file\"\n",
    )
    .unwrap();
    let out = palisade(
        &[
            "--config",
            file.to_str().unwrap(),
            "--data-dir",
            "from-flag",
            "check-config",
        ],
        &[],
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        stdout.contains("bind = \"127.0.0.1:9999\"") && stdout.contains("data_dir = \"from-flag\""),
        "{stdout}"
    );
}

#[test]
fn help_documents_every_command_and_option() {
    let dir = tempfile::tempdir().unwrap();
    let top = String::from_utf8_lossy(&palisade(&["--help"], &[], dir.path()).stdout).into_owned();
    for word in ["serve", "check-config", "--config", "--data-dir"] {
        assert!(top.contains(word), "{word} missing from --help");
    }
    let serve = String::from_utf8_lossy(&palisade(&["serve", "--help"], &[], dir.path()).stdout)
        .into_owned();
    assert!(serve.contains("--bind") && serve.contains("--config") && serve.contains("--data-dir"));
}

/// A server process, killed when dropped.
pub(crate) struct Server(pub(crate) Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &std::path::Path) -> (Server, String) {
    start_with(dir, &[])
}

/// `palisade serve` in `dir` with `env` (and nothing else from the
/// environment); its address once it says it listens.
pub(crate) fn start_with(dir: &std::path::Path, env: &[(&str, &str)]) -> (Server, String) {
    // Under the usual umask (022), so that files the server does not
    // create owner-only would show it.
    let mut child = Command::new("sh")
        .args(["-c", "umask 022 && exec \"$0\" \"$@\"", BIN])
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir", "data"])
        .env_clear()
        .env("PALISADE_LOG_FORMAT", "json")
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        if line.contains("\"listening\"") {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            break v["addr"].as_str().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Server(child), addr)
}

#[test]
fn zero_config_serve_generates_a_private_secret_once_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = start(dir.path());
    let body = reqwest::blocking_get(&format!("http://{addr}/api/data"));
    assert_eq!(body, r#"{"data":"limited","status":"ok"}"#);

    let path = dir.path().join("data/jwt-secret");
    let first = std::fs::read_to_string(&path).unwrap();
    assert_eq!(first.trim().len(), 64);
    // Everything in the data folder is its owner's only, whatever the umask
    // (`start` runs the server under the usual 022).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600, "the secret");
        assert_eq!(mode(&dir.path().join("data")), 0o700, "the data folder");
        for file in ["palisade.db", "palisade.db-wal", "palisade.db-shm"] {
            let file = dir.path().join("data").join(file);
            assert!(file.exists(), "{}", file.display());
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
    }

    stop_with_sigterm(&mut server);

    // The handlers are installed before the server says it listens: a
    // SIGTERM at once (no request served yet) drains too, not kills.
    let (mut again, _) = start(dir.path());
    stop_with_sigterm(&mut again);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        first,
        "the secret was regenerated"
    );
}

/// Sends SIGTERM and expects a clean exit (status 0) within 15 s.
fn stop_with_sigterm(server: &mut Server) {
    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

mod reqwest {
    /// A tiny blocking GET over a plain socket, to keep the test free of a
    /// second runtime.
    pub fn blocking_get(url: &str) -> String {
        use std::io::{Read, Write};
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        write!(
            stream,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_owned()
    }
}

/// Runs an operator command on the data folder `dir`, or in the PostgreSQL
/// run of the suite on the database `db`.
fn admin_cli(
    dir: &std::path::Path,
    db: Option<&TestDatabase>,
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    use std::io::Write;
    let mut command = Command::new(BIN);
    command
        .args(args)
        .args(["--data-dir", "data"])
        .env_clear()
        .env("PALISADE_ARGON2_MEMORY_KIB", "64")
        .env("PALISADE_ARGON2_ITERATIONS", "1");
    if let Some(db) = db {
        command
            .env("DATABASE_URL", db.url())
            .env("PALISADE_JWT_SECRET", TEST_SECRET)
            .env("PALISADE_MFA_KEY", crate::database::TEST_MFA_KEY);
    }
    let mut child = command
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn operators_create_super_admins_and_manage_users_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let db = POSTGRES.then(TestDatabase::create);
    let db = db.as_ref();
    let create = |username: &str, password: &str| {
        let email = format!("{username}@example.org");
        admin_cli(
            dir,
            db,
            &[
                "create-admin",
                "--email",
                &email,
                "--username",
                username,
                "--password-stdin",
            ],
            Some(&format!("{password}\n")),
        )
    };
    let weak = create("root", "password");
    assert_eq!(weak.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&weak.stderr).contains("the password"));
    let root = create("root", "correct horse battery staple");
    assert!(
        root.status.success(),
        "{}",
        String::from_utf8_lossy(&root.stderr)
    );
    let root: serde_json::Value = serde_json::from_slice(&root.stdout).unwrap();
    assert_eq!(root["role"], "super_admin");
    assert_eq!(
        create("ROOT", "correct horse battery staple").status.code(),
        Some(2),
        "usernames are unique"
    );
    let no_tty = admin_cli(
        dir,
        db,
        &[
            "create-admin",
            "--email",
            "x@example.org",
            "--username",
            "xxx",
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&no_tty.stderr).contains("--password-stdin"));

    // The last super_admin stays.
    let demote = admin_cli(dir, db, &["users", "set-role", "root", "admin"], None);
    assert_eq!(demote.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&demote.stderr).contains("last super_admin"));
    assert_eq!(
        admin_cli(dir, db, &["users", "disable", "root"], None)
            .status
            .code(),
        Some(2)
    );

    assert!(
        create("deputy", "another fine passphrase here")
            .status
            .success()
    );
    let demoted = admin_cli(
        dir,
        db,
        &["users", "set-role", "deputy@example.org", "admin"],
        None,
    );
    assert!(
        demoted.status.success(),
        "{}",
        String::from_utf8_lossy(&demoted.stderr)
    );
    assert_eq!(json_lines(&demoted)[0]["role"], "admin");
    let regrant = admin_cli(
        dir,
        db,
        &["users", "set-role", "deputy", "super_admin"],
        None,
    );
    assert_eq!(
        regrant.status.code(),
        Some(2),
        "super_admin only through create-admin"
    );

    let disabled = admin_cli(dir, db, &["users", "disable", "deputy"], None);
    assert_eq!(json_lines(&disabled)[0]["disabled"], true);
    let enabled = admin_cli(dir, db, &["users", "disable", "deputy", "--enable"], None);
    assert_eq!(json_lines(&enabled)[0]["disabled"], false);
    assert_eq!(
        admin_cli(dir, db, &["users", "disable", "nobody"], None)
            .status
            .code(),
        Some(2)
    );

    let list = admin_cli(dir, db, &["users", "list"], None);
    let names: Vec<String> = json_lines(&list)
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["root", "deputy"]);
    let found = admin_cli(dir, db, &["users", "list", "--search", "DEP"], None);
    assert_eq!(json_lines(&found).len(), 1);
    let migrate = admin_cli(dir, db, &["migrate"], None);
    assert!(migrate.status.success());
}
