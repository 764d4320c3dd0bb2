//! A client generated from the served OpenAPI document by a standard
//! generator (openapi-typescript + openapi-fetch, type-checked by tsc in
//! strict mode) completes register -> login -> profile -> refresh ->
//! profile -> logout -> 401 against the real server
//! (tests/client/run.sh): the document is proven usable, not only valid.

use crate::helpers::{bounded, output_of, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typescript_client_generated_from_the_document_compiles_and_completes_the_flow() {
    let app = spawn_app(&[]).await;
    let root = env!("CARGO_MANIFEST_DIR");
    let mut run = bounded(180, "bash");
    run.arg(format!("{root}/tests/client/run.sh"))
        .arg(app.url(""));
    // The server runs on this runtime: wait for the generator, tsc and
    // node off it.
    let out = output_of(run).await;
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the generated client failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("client: all 8 steps passed"), "{report}");
}
