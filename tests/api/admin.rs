//! The administration API: the full route × caller × target matrix,
//! LIKE escaping, self-protection, immediate revocation and the audit
//! trail.

use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, spawn_app};

/// Lifts the limits: the matrix sends a few hundred requests.
const ENV: &[(&str, &str)] = &[(
    "PALISADE_RATE_LIMIT_POLICIES",
    "default=100000/minute per ip; register=100000/minute per ip; login=100000/minute per ip",
)];

/// Registers `username` with `role` (set in the database, as only the
/// command line could) and returns its id and an access token.
async fn user_with_role(app: &TestApp, username: &str, role: &str) -> (String, String) {
    let user = app.register(username).await;
    let id = user["id"].as_str().unwrap().to_owned();
    sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
        .bind(role)
        .bind(&id)
        .execute(app.db())
        .await
        .unwrap();
    (id, app.login(username).await.access_token)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Route {
    List,
    Get,
    PatchRole,
    PatchDisable,
    Delete,
    AuditLog,
}

const ROUTES: [Route; 6] = [
    Route::List,
    Route::Get,
    Route::PatchRole,
    Route::PatchDisable,
    Route::Delete,
    Route::AuditLog,
];
const ROLES: [&str; 4] = ["user", "editor", "admin", "super_admin"];

impl Route {
    /// The documented route each case exercises.
    fn documented(self) -> &'static str {
        match self {
            Self::List => "get /users",
            Self::Get => "get /users/{user_id}",
            Self::PatchRole | Self::PatchDisable => "patch /users/{user_id}",
            Self::Delete => "delete /users/{user_id}",
            Self::AuditLog => "get /audit-log",
        }
    }

    async fn call(self, app: &TestApp, token: Option<&str>, target: &str) -> u16 {
        let url = app.url(&format!("/users/{target}"));
        let request = match self {
            Self::List => app.client.get(app.url("/users")),
            Self::AuditLog => app.client.get(app.url("/audit-log")),
            Self::Get => app.client.get(url),
            Self::PatchRole => app.client.patch(url).json(&json!({"role": "editor"})),
            Self::PatchDisable => app.client.patch(url).json(&json!({"disabled": true})),
            Self::Delete => app.client.delete(url),
        };
        let request = match token {
            Some(t) => request.bearer_auth(t),
            None => request,
        };
        request.send().await.unwrap().status().as_u16()
    }

    /// The contract's answer.
    fn expected(self, caller: Option<&str>, target: &str) -> u16 {
        let Some(caller) = caller else { return 401 };
        if caller == "user" || caller == "editor" {
            return 403;
        }
        let low_target = target == "user" || target == "editor";
        let ok = match self {
            Self::Delete => 204,
            _ => 200,
        };
        match self {
            Self::List | Self::AuditLog | Self::Get => 200,
            _ if caller == "admin" && !low_target => 403,
            _ => ok,
        }
    }
}

#[tokio::test]
async fn every_admin_route_answers_every_caller_about_every_target_as_the_contract_says() {
    let app = spawn_app(ENV).await;
    let mut callers: Vec<(Option<&str>, Option<String>)> = vec![(None, None)];
    for role in ROLES {
        let (_, token) = user_with_role(&app, &format!("caller_{role}"), role).await;
        callers.push((Some(role), Some(token)));
    }
    let mut failures = Vec::new();
    let mut n = 0;
    for route in ROUTES {
        for (caller, token) in &callers {
            for target_role in ROLES {
                n += 1;
                let target = app.register(&format!("target{n}")).await["id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
                    .bind(target_role)
                    .bind(&target)
                    .execute(app.db())
                    .await
                    .unwrap();
                let got = route.call(&app, token.as_deref(), &target).await;
                let want = route.expected(*caller, target_role);
                if got != want {
                    failures.push(format!(
                        "{route:?} by {caller:?} on {target_role}: {got}, expected {want}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn the_matrix_covers_every_admin_route_and_every_protected_route_refuses_anonymous_callers() {
    let app = spawn_app(ENV).await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let mut admin_routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op["tags"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("admin")))
            {
                admin_routes.push(format!("{method} {path}"));
            }
            if op.get("security").is_none() {
                continue;
            }
            let url = app.url(&path.replace("{user_id}", "0195f3b2-7c1e-7d4a-9b7e-2f1c3d4e5f60"));
            let request = app
                .client
                .request(method.to_uppercase().parse().unwrap(), url)
                .json(&json!({}));
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} {path} without a token");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
        }
    }
    admin_routes.sort();
    let mut covered: Vec<String> = ROUTES.iter().map(|r| r.documented().to_owned()).collect();
    covered.sort();
    covered.dedup();
    assert_eq!(
        admin_routes, covered,
        "an admin route is missing from the matrix"
    );
}

#[tokio::test]
async fn search_is_a_literal_case_insensitive_substring() {
    let app = spawn_app(ENV).await;
    let (_, admin) = user_with_role(&app, "boss", "admin").await;
    for (username, name) in [
        ("percent", "100% Real"),
        ("plain", "Plain 100 Real"),
        ("a_b", "Under Score"),
        ("axb", "Not Under"),
        ("slash", "back\\slash"),
    ] {
        app.register(username).await;
        sqlx::query("UPDATE users SET name = $1 WHERE username = $2")
            .bind(name)
            .bind(username)
            .execute(app.db())
            .await
            .unwrap();
    }
    let search = |q: &'static str| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let encoded: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
            let url = app.url(&format!("/users?search={encoded}"));
            let response = app.get_as(&url, &admin).await;
            assert_eq!(response.status(), 200);
            let page: Value = response.json().await.unwrap();
            let mut names: Vec<String> = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["username"].as_str().unwrap().to_owned())
                .collect();
            names.sort();
            assert_eq!(page["total"], names.len());
            names
        }
    };
    assert_eq!(search("0%").await, ["percent"], "% matches itself");
    assert_eq!(
        search("A_B").await,
        ["a_b"],
        "_ matches itself, case-insensitively"
    );
    assert_eq!(search("\\").await, ["slash"], "\\ matches itself");
    assert_eq!(search("REAL").await, ["percent", "plain"]);
    assert_eq!(
        search("example.org").await.len(),
        6,
        "email is searched too"
    );
}

#[tokio::test]
async fn paging_is_stable_and_validated() {
    let app = spawn_app(ENV).await;
    let (_, admin) = user_with_role(&app, "boss", "admin").await;
    for n in 0..4 {
        app.register(&format!("member{n}")).await;
    }
    let get = |query: &'static str| {
        app.client
            .get(app.url(&format!("/users?{query}")))
            .bearer_auth(&admin)
            .send()
    };
    let page: Value = get("page=2&limit=2").await.unwrap().json().await.unwrap();
    assert_eq!(
        (
            page["page"].as_i64(),
            page["limit"].as_i64(),
            page["total"].as_i64()
        ),
        (Some(2), Some(2), Some(5))
    );
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["member1", "member2"]);
    let default: Value = get("").await.unwrap().json().await.unwrap();
    assert_eq!(
        (default["page"].as_i64(), default["limit"].as_i64()),
        (Some(1), Some(20))
    );
    for bad in ["page=0", "limit=0", "limit=101", "page=x", "sort=name"] {
        problem(get(bad).await.unwrap(), 422).await;
    }
    let long = format!("/users?search={}", "a".repeat(101));
    problem(app.get_as(&app.url(&long), &admin).await, 422).await;
}

#[tokio::test]
async fn unknown_or_malformed_ids_are_404() {
    let app = spawn_app(ENV).await;
    let (_, admin) = user_with_role(&app, "boss", "super_admin").await;
    for id in [
        "0195f3b2-7c1e-7d4a-9b7e-2f1c3d4e5f60",
        "not-a-uuid",
        "1%27%20OR%201=1",
    ] {
        let url = app.url(&format!("/users/{id}"));
        problem(app.get_as(&url, &admin).await, 404).await;
        problem(app.delete_as(&url, &admin).await, 404).await;
    }
}

#[tokio::test]
async fn nobody_changes_their_own_role_or_status_or_deletes_themselves_here() {
    let app = spawn_app(ENV).await;
    for role in ["admin", "super_admin"] {
        let (id, token) = user_with_role(&app, &format!("self_{role}"), role).await;
        let url = app.url(&format!("/users/{id}"));
        for body in [json!({"role": "user"}), json!({"disabled": true})] {
            problem(
                app.client
                    .patch(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
                403,
            )
            .await;
        }
        problem(app.delete_as(&url, &token).await, 403).await;
        let me: Value = app.get_profile(&token).await.json().await.unwrap();
        assert_eq!(me["role"], role);
    }
}

#[tokio::test]
async fn super_admin_is_never_granted_over_http_and_bad_bodies_are_422() {
    let app = spawn_app(ENV).await;
    let (_, root) = user_with_role(&app, "root", "super_admin").await;
    let (target, _) = user_with_role(&app, "someone", "user").await;
    let url = app.url(&format!("/users/{target}"));
    let patch = |body: Value| app.client.patch(&url).bearer_auth(&root).json(&body).send();
    problem(patch(json!({"role": "super_admin"})).await.unwrap(), 403).await;
    problem(patch(json!({"role": "superuser"})).await.unwrap(), 422).await;
    problem(
        patch(json!({"role": "editor", "email": "x@example.org"}))
            .await
            .unwrap(),
        422,
    )
    .await;
    let granted: Value = patch(json!({"role": "admin"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(granted["role"], "admin");
    // The new admin logs in again (its sessions ended) and can administer.
    let token = app.login("someone").await.access_token;
    assert_eq!(app.get_as(&app.url("/users"), &token).await.status(), 200);
}

#[tokio::test]
async fn a_demoted_disabled_or_deleted_users_token_stops_working_at_once() {
    let app = spawn_app(ENV).await;
    let (_, root) = user_with_role(&app, "root", "super_admin").await;
    for (n, body) in [
        Some(json!({"role": "user"})),
        Some(json!({"disabled": true})),
        None,
    ]
    .into_iter()
    .enumerate()
    {
        let (id, token) = user_with_role(&app, &format!("victim{n}"), "admin").await;
        let refresh = app.login(&format!("victim{n}")).await.refresh_token;
        assert_eq!(app.get_as(&app.url("/users"), &token).await.status(), 200);
        let url = app.url(&format!("/users/{id}"));
        let response = match &body {
            Some(body) => app
                .client
                .patch(&url)
                .bearer_auth(&root)
                .json(body)
                .send()
                .await
                .unwrap(),
            None => app.delete_as(&url, &root).await,
        };
        assert!(
            response.status().is_success(),
            "{body:?}: {}",
            response.status()
        );
        assert_eq!(
            app.get_as(&app.url("/users"), &token).await.status(),
            401,
            "{body:?}"
        );
        assert_eq!(app.get_profile(&token).await.status(), 401, "{body:?}");
        assert_eq!(app.refresh(&refresh).await.status(), 400, "{body:?}");
    }
    // A disabled user cannot log in; enabled again, it can.
    let (id, _) = user_with_role(&app, "sleeper", "user").await;
    let url = app.url(&format!("/users/{id}"));
    app.client
        .patch(&url)
        .bearer_auth(&root)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        app.token_request("sleeper", crate::helpers::PASSWORD)
            .await
            .status(),
        400
    );
    app.client
        .patch(&url)
        .bearer_auth(&root)
        .json(&json!({"disabled": false}))
        .send()
        .await
        .unwrap();
    app.login("sleeper").await;
}

#[tokio::test]
async fn every_admin_action_lands_in_the_audit_log_with_actor_and_target() {
    let app = spawn_app(ENV).await;
    let (admin_id, admin) = user_with_role(&app, "boss", "admin").await;
    let (target, _) = user_with_role(&app, "worker", "user").await;
    let (doomed, _) = user_with_role(&app, "doomed", "editor").await;
    let url = |id: &str| app.url(&format!("/users/{id}"));
    app.client
        .patch(url(&target))
        .bearer_auth(&admin)
        .json(&json!({"role": "editor", "disabled": true}))
        .send()
        .await
        .unwrap();
    app.delete_as(&url(&doomed), &admin).await;

    let log = |query: String| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let response = app
                .get_as(&app.url(&format!("/audit-log?{query}")), &admin)
                .await;
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let updates = log("event=admin_update_user".into()).await;
    assert_eq!(updates["total"], 1);
    let event = &updates["items"][0];
    assert_eq!(event["actor_id"], admin_id.as_str());
    assert_eq!(event["user_id"], target.as_str());
    assert_eq!(
        event["detail"],
        "role: user -> editor; disabled: false -> true"
    );
    assert!(event["request_id"].is_string() && event["ip"] == "127.0.0.1");
    let deletes = log("event=admin_delete_user".into()).await;
    assert_eq!(deletes["items"][0]["user_id"], doomed.as_str());
    assert_eq!(deletes["items"][0]["actor_id"], admin_id.as_str());
    // Filtering by user shows what was done to and by that user, newest first.
    let about = log(format!("user_id={target}&limit=1")).await;
    assert_eq!(about["limit"], 1);
    assert_eq!(about["items"][0]["event"], "admin_update_user");
    assert!(
        about["total"].as_i64().unwrap() >= 3,
        "register, login and the update: {about}"
    );
}

#[tokio::test]
async fn the_last_super_admin_cannot_delete_their_account_but_one_of_two_can() {
    let app = spawn_app(ENV).await;
    let (_, root) = user_with_role(&app, "root", "super_admin").await;
    let delete = |token: String| {
        app.client
            .delete(app.url("/account"))
            .bearer_auth(token)
            .json(&json!({"password": crate::helpers::PASSWORD}))
            .send()
    };
    problem(delete(root.clone()).await.unwrap(), 409).await;
    let (_, second) = user_with_role(&app, "second", "super_admin").await;
    assert_eq!(delete(root).await.unwrap().status(), 204);
    problem(delete(second).await.unwrap(), 409).await;
}

#[tokio::test]
async fn an_empty_patch_changes_nothing_and_is_422() {
    let app = spawn_app(ENV).await;
    let (_, root) = user_with_role(&app, "root", "super_admin").await;
    let (target, _) = user_with_role(&app, "someone", "user").await;
    let response = app
        .client
        .patch(app.url(&format!("/users/{target}")))
        .bearer_auth(&root)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    problem(response, 422).await;
    let events: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM security_events WHERE event = 'admin_update_user'",
    )
    .fetch_one(app.db())
    .await
    .unwrap();
    assert_eq!(events, 0);
}
