//! Schemathesis against the served document (tests/schemathesis/run.sh):
//! property-based requests to every operation, as an admin, with rate
//! limiting off so the limits do not answer for the handlers; no 5xx,
//! and every status, media type and body as documented.

use crate::helpers::{bounded, output_of, spawn_app};
use crate::session_cache::cli;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_undocumented_answer() {
    let app = spawn_app(&[("PALISADE_RATE_LIMIT_ENABLED", "false")]).await;
    app.register("schema_admin").await;
    let out = cli(&app, &["users", "set-role", "schema_admin", "admin"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = app.login("schema_admin").await.access_token;
    let root = env!("CARGO_MANIFEST_DIR");
    let mut run = bounded(300, "bash");
    run.arg(format!("{root}/tests/schemathesis/run.sh"))
        .arg(app.url(""))
        .arg(&token)
        .arg("25");
    // The server runs on this runtime: wait for schemathesis off it.
    let out = output_of(run).await;
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("Tested: "), "{report}");
    assert!(!report.contains("Errored"), "{report}");
}
