//! Text no database can store (a NUL character) is refused at the edge, on
//! every route and on both databases, and changes nothing. The routes,
//! their bodies and their query parameters are read from the served
//! OpenAPI document, so a new route is covered without editing this test.

use serde_json::{Map, Value, json};

use crate::helpers::{PASSWORD, TestApp, spawn_app};

const NUL: &str = "a\u{0}b";

/// A plausible value for a string field, so that only the NUL is wrong.
fn plausible(field: &str) -> &'static str {
    match field {
        "email" => "nul.probe@example.org",
        "username" => "nul_probe",
        "name" => "Nul Probe",
        "password" | "current_password" => PASSWORD,
        "new_password" => "another fine passphrase here",
        "prompt" => "hello",
        "role" => "user",
        "grant_type" => "password",
        "token_type_hint" => "refresh_token",
        "scope" => "",
        _ => "x",
    }
}

fn is_string(schema: &Value) -> bool {
    match &schema["type"] {
        Value::String(t) => t == "string",
        Value::Array(types) => types.iter().any(|t| t == "string"),
        _ => false,
    }
}

/// The properties of a request body schema (resolving its `$ref`).
fn properties(doc: &Value, schema: &Value) -> Map<String, Value> {
    let schema = match schema["$ref"].as_str() {
        Some(r) => &doc["components"]["schemas"][r.rsplit('/').next().unwrap()],
        None => schema,
    };
    schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default()
}

/// A stored user, every column a request could change.
type UserColumns = (String, String, String, String, String, i64, String, i64);

/// The state a refused request must leave as it was.
async fn snapshot(app: &TestApp) -> Vec<String> {
    let users: Vec<UserColumns> = sqlx::query_as(
        "SELECT id, email, username, name, role, disabled, password_hash, updated_at \
         FROM users ORDER BY id",
    )
    .fetch_all(app.db())
    .await
    .unwrap();
    let counts: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM security_events), \
         (SELECT COUNT(*) FROM sessions WHERE ended_at IS NULL)",
    )
    .fetch_one(app.db())
    .await
    .unwrap();
    let mut out: Vec<String> = users.iter().map(|u| format!("{u:?}")).collect();
    out.push(format!("{counts:?}"));
    out
}

struct Probe {
    method: reqwest::Method,
    path: String,
    what: String,
    /// The OAuth endpoints answer RFC 6749 `invalid_request` (400).
    oauth: bool,
    query: Option<(String, String)>,
    body: Option<(String, Value)>,
}

/// Every request with exactly one NUL: in each string field of each body,
/// each string query parameter and each path parameter.
fn probes(doc: &Value, target_id: &str) -> Vec<Probe> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let oauth = path == "/auth/token" || path == "/auth/revoke";
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let real_path = path.replace("{user_id}", target_id);
            let probe = |what: String, path: String, query, body| Probe {
                method: method.clone(),
                path,
                what,
                oauth,
                query,
                body,
            };
            // The operation's body with plausible values, so that only the
            // NUL is wrong (the body is read before a path id is looked at).
            let bodies: Vec<(String, Map<String, Value>)> = op["requestBody"]["content"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(media, body)| {
                    let base = properties(doc, &body["schema"])
                        .iter()
                        .filter(|(_, s)| is_string(s))
                        .map(|(k, _)| (k.clone(), json!(plausible(k))))
                        .collect();
                    (media.clone(), base)
                })
                .collect();
            let plain = bodies
                .first()
                .map(|(media, base)| (media.clone(), Value::Object(base.clone())));
            for p in &params {
                let name = p["name"].as_str().unwrap();
                match p["in"].as_str().unwrap() {
                    "query" if is_string(&p["schema"]) => out.push(probe(
                        format!("query {name}"),
                        real_path.clone(),
                        Some((name.to_owned(), NUL.to_owned())),
                        plain.clone(),
                    )),
                    "path" => out.push(probe(
                        format!("path {name}"),
                        path.replace(&format!("{{{name}}}"), "a%00b"),
                        None,
                        plain.clone(),
                    )),
                    _ => {}
                }
            }
            for (media, base) in &bodies {
                for field in base.keys() {
                    let mut fields = base.clone();
                    fields.insert(field.clone(), json!(NUL));
                    out.push(probe(
                        format!("{media} field {field}"),
                        real_path.clone(),
                        None,
                        Some((media.clone(), Value::Object(fields))),
                    ));
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn a_nul_character_in_any_field_or_parameter_of_any_route_is_refused_and_changes_nothing() {
    let app = spawn_app(&[(
        "PALISADE_RATE_LIMIT_POLICIES",
        "default=100000/minute per ip; register=100000/minute per ip; login=100000/minute per ip",
    )])
    .await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let target = app.register("target_user").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = app.register("nul_admin").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sqlx::query("UPDATE users SET role = 'admin' WHERE id = $1")
        .bind(&admin)
        .execute(app.db())
        .await
        .unwrap();
    let token = app.login("nul_admin").await.access_token;
    let before = snapshot(&app).await;

    let probes = probes(&doc, &target);
    assert!(probes.len() >= 25, "only {} probes", probes.len());
    let mut failures = Vec::new();
    for p in &probes {
        let mut url = app.url(&p.path);
        if let Some((name, value)) = &p.query {
            url.push('?');
            url.push_str(
                &form_urlencoded::Serializer::new(String::new())
                    .append_pair(name, value)
                    .finish(),
            );
        }
        let mut request = app
            .client
            .request(p.method.clone(), url)
            .bearer_auth(&token);
        if let Some((media, body)) = &p.body {
            request = if media == "application/x-www-form-urlencoded" {
                let form: Vec<(String, String)> = body
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect();
                request.form(&form)
            } else {
                request.json(body)
            };
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = response.text().await.unwrap();
        let ok = if p.what.starts_with("path") {
            // A NUL cannot make an id: the id is unknown.
            status == 404
        } else if p.oauth {
            status == 400 && text.contains("\"invalid_request\"")
        } else {
            status == 422 && content_type == "application/problem+json" && text.contains("U+0000")
        };
        if !ok {
            failures.push(format!(
                "{} {} ({}): {status} {text}",
                p.method, p.path, p.what
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "not refused as expected:\n{}",
        failures.join("\n")
    );
    assert_eq!(
        snapshot(&app).await,
        before,
        "a refused request changed something"
    );
}
