//! The OpenAPI document and Swagger UI.

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_openapi_document_matches_the_snapshot() {
    let app = spawn_app(&[]).await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    let doc: serde_json::Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/api/snapshots/openapi.json"
    );
    let rendered = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(path, &rendered).unwrap();
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        rendered == expected,
        "openapi.json changed; review it and run with UPDATE_SNAPSHOTS=1 to accept"
    );
}

#[tokio::test]
async fn every_routed_path_is_documented() {
    let app = spawn_app(&[]).await;
    let doc: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();
    for path in ["/health/live", "/health/ready", "/api/data"] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
}

/// Every operation documents what the stack can answer whatever the
/// handler: 400, 429 and 503, and for a request body 413 and 415; a status
/// the route documents itself keeps its own description.
#[tokio::test]
async fn every_operation_documents_the_statuses_the_stack_can_answer() {
    let app = spawn_app(&[]).await;
    let doc: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            let mut expected = vec!["400", "429", "503"];
            let form_only = operation["requestBody"]["content"]
                .as_object()
                .is_some_and(|c| c.keys().all(|m| m == "application/x-www-form-urlencoded"));
            if operation.get("requestBody").is_some() {
                expected.push("413");
                // The OAuth endpoints answer another media type with their
                // own 400 `invalid_request` (checked below), never 415.
                if form_only {
                    assert!(!responses.contains_key("415"), "{method} {path}");
                } else {
                    expected.push("415");
                }
            }
            for status in expected {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} does not document {status}"
                );
            }
            // Every response names the headers every response carries.
            for (status, response) in responses {
                let headers = response["headers"].as_object();
                for name in ["X-Request-Id", "RateLimit", "RateLimit-Policy"] {
                    assert!(
                        headers.is_some_and(|h| h.contains_key(name)),
                        "{method} {path} {status} does not document {name}"
                    );
                }
            }
            operations += 1;
        }
    }
    assert!(operations >= 15, "{operations} operations");
    for path in ["/auth/token", "/auth/revoke"] {
        let r = app
            .client
            .post(app.url(path))
            .json(&serde_json::json!({"grant_type": "password", "token": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{path}");
    }
    let headers = &doc["components"]["headers"];
    assert!(headers["WWW-Authenticate"].is_object() && headers["Retry-After"].is_object());
    // The token endpoint's own 400 (an OAuth error body) is kept.
    let token_400 = &doc["paths"]["/auth/token"]["post"]["responses"]["400"];
    assert!(
        !token_400["description"]
            .as_str()
            .unwrap()
            .starts_with("Malformed request"),
        "{token_400}"
    );
}

#[tokio::test]
async fn swagger_ui_is_served_from_the_binary_under_its_own_csp() {
    let app = spawn_app(&[]).await;
    let response = app.get("/docs/").await;
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(csp, palisade::routes::docs::DOCS_CSP);
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-eval"));
    assert!(response.text().await.unwrap().contains("swagger-ui"));
    let script = app.get("/docs/swagger-ui-bundle.js").await;
    assert_eq!(script.status(), 200);
    let init = app
        .get("/docs/swagger-initializer.js")
        .await
        .text()
        .await
        .unwrap();
    assert!(init.contains("/openapi.json"));
}

#[tokio::test]
async fn api_responses_keep_the_strict_csp() {
    let app = spawn_app(&[]).await;
    let response = app.get("/openapi.json").await;
    assert_eq!(
        response.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
}

#[tokio::test]
async fn a_setting_turns_the_docs_off() {
    let app = spawn_app(&[("PALISADE_DOCS", "false")]).await;
    assert_eq!(app.get("/openapi.json").await.status(), 404);
    assert_eq!(app.get("/docs/").await.status(), 404);
}
