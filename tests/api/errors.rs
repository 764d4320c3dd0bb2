//! Every error the stack produces is problem+json, and a 500 says nothing.

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use palisade::http::extract::ApiJson;
use serde::Deserialize;

use crate::helpers::{TestServer, problem, spawn_app, spawn_stack};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Echo {
    #[allow(dead_code)]
    text: String,
}

/// A handler that panics with something secret in the message.
pub async fn boom() -> &'static str {
    panic!("database password is hunter2")
}

fn test_routes() -> Router {
    Router::new()
        .route("/boom", get(boom))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route("/echo", post(|ApiJson(_): ApiJson<Echo>| async { "ok" }))
}

/// POSTs `body` to `/echo` with `content_type`.
async fn echo(
    app: &TestServer,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.client
        .post(app.url("/echo"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// A JSON body of exactly `len` bytes that `/echo` accepts.
fn json_of_len(len: usize) -> String {
    format!("{{\"text\": \"{}\"}}", "x".repeat(len - 12))
}

#[tokio::test]
async fn a_panic_answers_the_generic_500_with_the_request_id_and_nothing_else() {
    let app = spawn_stack(test_routes(), &[]).await;
    let response = app.get("/boom").await;
    let body = problem(response, 500).await;
    assert_eq!(body["detail"], "An internal error occurred");
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["detail", "request_id", "status", "title", "type"]);
    assert!(!body.to_string().contains("hunter2"));
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let app = spawn_stack(test_routes(), &[("PALISADE_BODY_LIMIT", "1024")]).await;
    let big = format!("{{\"text\": \"{}\"}}", "x".repeat(4096));
    let response = echo(&app, "application/json", big).await;
    problem(response, 413).await;
}

#[tokio::test]
async fn a_streamed_body_over_the_limit_is_refused_with_413() {
    let app = spawn_stack(test_routes(), &[("PALISADE_BODY_LIMIT", "1024")]).await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(b"{\"text\": \"".to_vec()),
        Ok(vec![b'x'; 4096]),
        Ok(b"\"}".to_vec()),
    ];
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let response = echo(&app, "application/json", body).await;
    problem(response, 413).await;
}

#[tokio::test]
async fn the_default_body_limit_is_one_mebibyte() {
    let app = spawn_stack(test_routes(), &[]).await;
    let fits = echo(&app, "application/json", json_of_len(1024 * 1024)).await;
    assert_eq!(fits.status(), 200, "exactly 1 MiB is allowed");
    let big = json_of_len(1024 * 1024 + 1);
    let response = echo(&app, "application/json", big).await;
    problem(response, 413).await;
}

#[tokio::test]
async fn a_body_of_the_wrong_content_type_is_refused_with_415() {
    let app = spawn_stack(test_routes(), &[]).await;
    let response = echo(&app, "text/plain", "{\"text\": \"hi\"}").await;
    problem(response, 415).await;
}

#[tokio::test]
async fn malformed_json_is_400_and_an_unknown_field_is_422_naming_it() {
    let app = spawn_stack(test_routes(), &[]).await;
    let send = |body: &'static str| echo(&app, "application/json", body);
    problem(send("{not json").await, 400).await;
    let body = problem(send("{\"text\": \"a\", \"role\": \"admin\"}").await, 422).await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("role"),
        "{body}"
    );
    assert_eq!(send("{\"text\": \"a\"}").await.status(), 200);
}

#[tokio::test]
async fn a_request_that_takes_too_long_answers_503() {
    let app = spawn_stack(test_routes(), &[("PALISADE_REQUEST_TIMEOUT", "200ms")]).await;
    let response = app.get("/slow").await;
    assert!(response.headers().contains_key("retry-after"));
    problem(response, 503).await;
}

#[tokio::test]
async fn unknown_paths_and_methods_are_problems() {
    let app = spawn_app(&[]).await;
    problem(app.get("/nothing/here").await, 404).await;
    let response = app.client.put(app.url("/api/data")).send().await.unwrap();
    assert!(response.headers().contains_key("allow"));
    problem(response, 405).await;
}

#[tokio::test]
async fn health_probes_answer() {
    let app = spawn_app(&[]).await;
    assert_eq!(app.get("/health/live").await.status(), 200);
    assert_eq!(app.get("/health/ready").await.status(), 200);
}

#[tokio::test]
async fn shutdown_drains_a_request_in_flight() {
    // A login with heavy hashing is a request that takes a while.
    let (settings, _dir) = crate::helpers::settings(&[
        ("PALISADE_ARGON2_MEMORY_KIB", "65536"),
        ("PALISADE_ARGON2_ITERATIONS", "4"),
    ]);
    let app = palisade::Application::build(settings).await.unwrap();
    let addr = app.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    crate::helpers::install_crypto();
    let client = reqwest::Client::new();
    let in_flight = tokio::spawn(async move {
        client
            .post(format!("http://{addr}/auth/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", "nobody"),
                ("password", "whatever it is"),
            ])
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    stop.send(()).unwrap();
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request was cut off");
    assert_eq!(response.status(), 400, "it completed normally");
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server did not stop")
        .unwrap()
        .unwrap();
    assert!(
        reqwest::get(format!("http://{addr}/health/live"))
            .await
            .is_err(),
        "no longer accepting"
    );
}

/// Every operation whose body is JSON refuses anything but an object with
/// 422 and changes nothing. serde alone would read a struct from an
/// array of its fields in order: `PATCH /profile ["New Name", null]`
/// renamed the caller.
#[tokio::test]
async fn every_json_body_must_be_an_object() {
    let app = spawn_app(&[]).await;
    let token = crate::helpers::make_admin(&app, "arrayadmin").await;
    let admin: serde_json::Value = app.get_profile(&token).await.json().await.unwrap();
    let document: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();
    let mut checked = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if operation["requestBody"]["content"]
                .get("application/json")
                .is_none()
            {
                continue;
            }
            let url = app.url(&path.replace("{user_id}", admin["id"].as_str().unwrap()));
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            for body in [r#"["New Name", null]"#, "[]", r#""text""#, "42", "null"] {
                let response = app
                    .client
                    .request(method.clone(), &url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                let problem = response.json::<serde_json::Value>().await.unwrap();
                assert_eq!(status, 422, "{method} {path} {body}: {problem}");
                assert_eq!(
                    problem["errors"][0]["message"], "The body must be a JSON object",
                    "{method} {path} {body}: {problem}"
                );
            }
            checked.push(format!("{method} {path}"));
        }
    }
    assert!(checked.len() >= 15, "{checked:?}");
    // Malformed JSON stays a 400, whatever it starts with.
    let response = app
        .client
        .patch(app.url("/profile"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("[1,")
        .send()
        .await
        .unwrap();
    problem(response, 400).await;
    let profile: serde_json::Value = app.get_profile(&token).await.json().await.unwrap();
    assert_eq!(profile["name"], admin["name"], "{profile}");
}
