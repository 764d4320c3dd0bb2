//! A real browser (Debian's headless Chromium, driven by playwright-core
//! from tests/browser/run.mjs) against the real server: CORS from an
//! allowed and a refused origin, Swagger UI under its CSP with the OAuth2
//! password flow, and framing refused. The harness prints one line per
//! check; this test fails on any failed check and keeps the screenshot of
//! the authorised Swagger UI in `target/browser-artifacts/`.

use std::process::Command;

use crate::helpers::{bounded, output_of, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_meets_cors_the_docs_csp_the_password_flow_and_framing() {
    let root = env!("CARGO_MANIFEST_DIR");
    let setup = Command::new("bash")
        .arg(format!("{root}/tests/browser/setup.sh"))
        .output()
        .unwrap();
    assert!(
        setup.status.success(),
        "tests/browser/setup.sh: {}",
        String::from_utf8_lossy(&setup.stderr)
    );
    // The page origin: a free port, in the allowlist before the server
    // starts (the harness serves its pages there).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let origin = format!("http://127.0.0.1:{port}");
    let app = spawn_app(&[
        ("PALISADE_CORS_ALLOWED_ORIGINS", &origin),
        ("PALISADE_CORS_ALLOW_CREDENTIALS", "true"),
    ])
    .await;
    let artifacts = std::path::Path::new(root).join("target/browser-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join(if crate::database::POSTGRES {
        "docs-authorised-postgres.png"
    } else {
        "docs-authorised.png"
    });
    // Bounded by `timeout`, beside Chromium's own timeouts in the harness.
    let mut harness = bounded(120, "node");
    harness
        .arg(format!("{root}/tests/browser/run.mjs"))
        .arg(app.url(""))
        .arg(&origin)
        .arg(&shot);
    let out = output_of(harness).await;
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser checks failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains(" 0 failed"), "{report}");
    for check in ["cors-", "docs-", "frame-"] {
        assert!(report.contains(check), "no {check} check ran:\n{report}");
    }
    assert!(shot.exists(), "no screenshot at {}", shot.display());
}
