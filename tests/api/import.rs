//! `palisade import-users`: accounts from a passlib application, their
//! hashes made by real passlib (bcrypt, argon2, pbkdf2_sha256), logged in
//! over HTTP afterwards and upgraded to Argon2id.

use std::process::Command;

use serde_json::Value;

use crate::helpers::{TestApp, spawn_app};

const PASSWORD: &str = "imported passphrase, 3 words";

/// Hashes of `password` by passlib: (bcrypt, argon2, pbkdf2_sha256).
fn passlib_hashes(password: &str) -> (String, String, String) {
    let python = crate::smtp::python();
    let script = "import sys\n\
        from passlib.hash import bcrypt, argon2, pbkdf2_sha256\n\
        p = sys.argv[1]\n\
        print(bcrypt.using(rounds=4).hash(p))\n\
        print(argon2.using(memory_cost=64, rounds=1).hash(p))\n\
        print(pbkdf2_sha256.hash(p))\n";
    let out = Command::new(python)
        .args(["-c", script, password])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines().map(str::to_owned);
    (
        lines.next().unwrap(),
        lines.next().unwrap(),
        lines.next().unwrap(),
    )
}

async fn import(app: &TestApp, file: &std::path::Path, atomic: bool) -> (i32, Value) {
    let path = file.to_str().unwrap();
    let mut args = vec!["import-users", path];
    if atomic {
        args.push("--atomic");
    }
    let out = crate::session_cache::cli(app, &args).await;
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), report)
}

async fn stored_hash(app: &TestApp, username: &str) -> String {
    sqlx::query_scalar("SELECT password_hash FROM users WHERE username = $1")
        .bind(username)
        .fetch_one(app.db())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passlib_users_import_log_in_and_are_upgraded_to_argon2id() {
    let app = spawn_app(&[]).await;
    app.register("existing").await;
    let (bcrypt, argon2, pbkdf2) = passlib_hashes(PASSWORD);
    assert!(bcrypt.starts_with("$2b$") && argon2.starts_with("$argon2id$"));
    assert!(pbkdf2.starts_with("$pbkdf2-sha256$29000$"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.csv");
    let csv = format!(
        "email,username,name,role,password_hash,disabled,created_at\n\
         bea@example.org,bea_b,Bea,editor,\"{bcrypt}\",false,2023-04-01T10:00:00Z\n\
         cal@example.org,cal_c,Cal,user,\"{argon2}\",0,\n\
         dee@example.org,dee_d,Dee,admin,\"{pbkdf2}\",,\n\
         not-an-email,eve_e,Eve,user,\"{bcrypt}\",false,\n\
         root@example.org,root_r,Root,super_admin,\"{bcrypt}\",false,\n\
         fay@example.org,fay_f,Fay,user,plaintext-password,false,\n\
         EXISTING@example.org,other,Other,user,\"{bcrypt}\",false,\n\
         gus@example.org,gus_g,Gus,user,\"{bcrypt}\",true,\n"
    );
    std::fs::write(&file, csv).unwrap();

    // Atomic: one bad row imports nothing.
    let (code, report) = import(&app, &file, true).await;
    assert_eq!(code, 2, "{report}");
    assert_eq!(report["imported"], 0);
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(count, 1);

    let (code, report) = import(&app, &file, false).await;
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["imported"], 4, "{report}");
    let refused: Vec<(i64, String)> = report["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_i64().unwrap(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert_eq!(refused[0].0, 5);
    assert!(refused[0].1.starts_with("email"));
    assert!(refused[1].1.contains("super_admin"));
    assert!(refused[2].1.starts_with("password_hash"));
    assert_eq!(report["duplicates"][0]["line"], 8);
    assert_eq!(report["duplicates"][0]["field"], "email");

    // Each logs in with its password, and its hash becomes Argon2id.
    for (name, before) in [
        ("bea_b", "$2b$"),
        ("cal_c", "$argon2id$v=19$m=64,t=1"),
        ("dee_d", "$pbkdf2-sha256$"),
    ] {
        assert!(stored_hash(&app, name).await.starts_with(before));
        assert_eq!(
            app.token_request(name, "wrong passphrase here")
                .await
                .status(),
            400
        );
        let response = app.token_request(name, PASSWORD).await;
        assert_eq!(response.status(), 200, "{name}");
        let upgraded = stored_hash(&app, name).await;
        assert!(
            upgraded.starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
            "{name}: {upgraded}"
        );
        assert_eq!(app.token_request(name, PASSWORD).await.status(), 200);
    }
    // Roles, the disabled flag and the creation time came along.
    let bea: (String, i64) =
        sqlx::query_as("SELECT role, created_at FROM users WHERE username = 'bea_b'")
            .fetch_one(app.db())
            .await
            .unwrap();
    assert_eq!(bea, ("editor".to_owned(), 1_680_343_200_000));
    assert_eq!(
        app.token_request("gus_g", PASSWORD).await.status(),
        400,
        "imported disabled"
    );
    let events: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM security_events WHERE event = 'user_import' AND actor_id = 'cli'",
    )
    .fetch_one(app.db())
    .await
    .unwrap();
    assert_eq!(events, 4);

    // JSON lines, the second time: all duplicates now.
    let jsonl = dir.path().join("users.jsonl");
    let line = serde_json::json!({"email": "bea@example.org", "username": "bea_b", "password_hash": bcrypt, "disabled": false});
    std::fs::write(&jsonl, format!("{line}\n")).unwrap();
    let (code, report) = import(&app, &jsonl, false).await;
    assert_eq!(
        (code, report["imported"].as_i64()),
        (1, Some(0)),
        "{report}"
    );
    assert_eq!(report["duplicates"][0]["field"], "email");
}
