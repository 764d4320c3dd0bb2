//! Asymmetric signing (EdDSA, ES256), the JWKS, rotation across
//! instances, and the RFC 8414 discovery document.

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{TestApp, output_of, spawn_app, spawn_cluster};
use crate::session_cache::cli;

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn part(token: &str, n: usize) -> Value {
    let text = token.split('.').nth(n).unwrap();
    serde_json::from_slice(&B64URL.decode(text).unwrap()).unwrap()
}

async fn jwks(app: &TestApp) -> (Vec<Value>, String) {
    let r = app.get("/.well-known/jwks.json").await;
    assert_eq!(r.status(), 200);
    let cache = r.headers()["cache-control"].to_str().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    (body["keys"].as_array().unwrap().clone(), cache)
}

fn kids(keys: &[Value]) -> Vec<String> {
    keys.iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// PyJWT's `PyJWKClient`, given only the JWKS address, verifies `token`
/// (signature, `aud`, `iss`, `exp`); its claims, or its error.
async fn pyjwt_verify(app: &TestApp, token: &str) -> Result<Value, String> {
    let script = r#"
import json, sys, jwt
url, token, aud, iss = sys.argv[1:5]
try:
    key = jwt.PyJWKClient(url).get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["EdDSA", "ES256"], audience=aud, issuer=iss)
    print(json.dumps({"ok": claims}))
except Exception as e:
    print(json.dumps({"error": type(e).__name__ + ": " + str(e)}))
"#;
    let settings = &app.state.settings.auth;
    let mut command = Command::new(crate::smtp::python());
    command.args([
        "-c",
        script,
        &app.url("/.well-known/jwks.json"),
        token,
        &settings.audience,
        &settings.issuer,
    ]);
    let out = output_of(command).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    match answer.get("ok") {
        Some(claims) => Ok(claims.clone()),
        None => Err(answer["error"].to_string()),
    }
}

/// A fresh Ed25519 key: its PEM file (in `dir`) and its PKCS#8 DER.
fn ed25519_key(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, Vec<u8>) {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, pem.as_bytes()).unwrap();
    (path, key.to_pkcs8_der().unwrap().as_bytes().to_vec())
}

/// `claims` signed by the test itself with `der` (EdDSA), naming `kid`.
fn sign_ed(claims: &Value, der: &[u8], kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der)).unwrap()
}

async fn status(app: &TestApp, token: &str) -> u16 {
    app.get_profile(token).await.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eddsa_and_es256_tokens_carry_a_kid_and_pyjwt_verifies_them_from_the_jwks_alone() {
    for (alg, kty, crv) in [("EdDSA", "OKP", "Ed25519"), ("ES256", "EC", "P-256")] {
        let app = spawn_app(&[("PALISADE_JWT_ALGORITHM", alg)]).await;
        let user = app.register("signer").await;
        let tokens = app.login("signer").await;
        let header = part(&tokens.access_token, 0);
        assert_eq!(header["alg"], alg);
        assert_eq!(header["typ"], "at+jwt");
        let (keys, cache) = jwks(&app).await;
        assert_eq!(keys.len(), 1, "{keys:?}");
        let key = &keys[0];
        assert_eq!(header["kid"], key["kid"]);
        assert_eq!(
            (key["kty"].as_str(), key["crv"].as_str()),
            (Some(kty), Some(crv))
        );
        assert_eq!(
            (key["alg"].as_str(), key["use"].as_str()),
            (Some(alg), Some("sig"))
        );
        assert!(
            key.get("d").is_none(),
            "a private member is published: {key}"
        );
        assert!(cache.contains("max-age="), "{cache}");
        assert_eq!(status(&app, &tokens.access_token).await, 200, "{alg}");

        let claims = pyjwt_verify(&app, &tokens.access_token)
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(claims["sub"], user["id"]);

        // A refreshed token is signed the same way.
        let refreshed: Value = app
            .refresh(&tokens.refresh_token)
            .await
            .json()
            .await
            .unwrap();
        let token = refreshed["access_token"].as_str().unwrap();
        assert_eq!(part(token, 0)["kid"], key["kid"]);
        assert!(pyjwt_verify(&app, token).await.is_ok(), "{alg}");

        // The independent verifier refuses a token whose signature is off.
        let mut bad: Vec<char> = token.chars().collect();
        let last = bad.len() - 2;
        bad[last] = if bad[last] == 'A' { 'B' } else { 'A' };
        let bad: String = bad.into_iter().collect();
        assert!(pyjwt_verify(&app, &bad).await.is_err(), "{alg}");
    }
    // HS256 publishes nothing and its tokens name no key.
    let app = spawn_app(&[]).await;
    app.register("secretive").await;
    let tokens = app.login("secretive").await;
    assert!(part(&tokens.access_token, 0).get("kid").is_none());
    assert!(jwks(&app).await.0.is_empty());
    // ... and has no key set to rotate or list.
    let out = cli(&app, &["keys", "list"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HS256"));
}

#[tokio::test]
async fn unknown_or_missing_kids_and_hs256_keyed_with_the_public_key_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (pem, der) = ed25519_key(dir.path(), "k1.pem");
    let app = spawn_app(&[
        ("PALISADE_JWT_ALGORITHM", "EdDSA"),
        ("PALISADE_JWT_PRIVATE_KEY_FILE", pem.to_str().unwrap()),
    ])
    .await;
    app.register("target").await;
    let tokens = app.login("target").await;
    let (keys, _) = jwks(&app).await;
    let kid = keys[0]["kid"].as_str().unwrap().to_owned();
    assert_eq!(part(&tokens.access_token, 0)["kid"], kid.as_str());
    let mut claims = part(&tokens.access_token, 1);
    claims["exp"] = json!(claims["exp"].as_u64().unwrap() + 3600);

    // Signed with the configured key by someone holding it: accepted, so
    // the refusals below are the signature's and the header's doing.
    assert_eq!(status(&app, &sign_ed(&claims, &der, Some(&kid))).await, 200);

    let (_, other) = ed25519_key(dir.path(), "k2.pem");
    let other_kid = "b3RoZXIta2V5LW5vdC1pbi10aGUtc2V0";
    for (what, token) in [
        ("no kid", sign_ed(&claims, &der, None)),
        ("unknown kid", sign_ed(&claims, &other, Some(other_kid))),
        (
            "the right kid, another key",
            sign_ed(&claims, &other, Some(&kid)),
        ),
    ] {
        assert_eq!(status(&app, &token).await, 401, "{what}");
    }

    // Algorithm confusion: HS256 keyed with the published public key, in
    // each form a confused verifier might use.
    let x = keys[0]["x"].as_str().unwrap();
    let public_pem = std::fs::read_to_string(&pem).unwrap();
    for secret in [
        B64URL.decode(x).unwrap(),
        x.as_bytes().to_vec(),
        keys[0].to_string().into_bytes(),
        public_pem.into_bytes(),
    ] {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(kid.clone());
        let token =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&secret)).unwrap();
        assert_eq!(status(&app, &token).await, 401, "HS256 confusion");
    }
    // Keys offered in the header are never taken.
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid.clone());
    header.jku = Some(format!("http://{}/.well-known/jwks.json", app.addr));
    let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&der)).unwrap();
    assert_eq!(status(&app, &token).await, 401, "jku");
}

/// Rotation on a short clock: the new key is published at once and signs
/// after the publish delay; the old key verifies until every token it
/// signed has expired, then leaves the JWKS and verifies nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_published_before_it_signs_and_the_old_one_retires_after_its_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let (pem, der) = ed25519_key(dir.path(), "k1.pem");
    let app = spawn_app(&[
        ("PALISADE_JWT_ALGORITHM", "EdDSA"),
        ("PALISADE_JWT_PRIVATE_KEY_FILE", pem.to_str().unwrap()),
        ("PALISADE_ACCESS_TOKEN_TTL", "4s"),
        ("PALISADE_JWT_LEEWAY", "0s"),
        ("PALISADE_KEY_SET_REFRESH", "500ms"),
        ("PALISADE_SIGNING_KEY_PUBLISH_DELAY", "2s"),
    ])
    .await;
    app.register("rotated").await;
    let before = app.login("rotated").await;
    let old_kid = part(&before.access_token, 0)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut claims = part(&before.access_token, 1);
    claims["exp"] = json!(claims["exp"].as_u64().unwrap() + 3600);
    let long_lived = sign_ed(&claims, &der, Some(&old_kid));

    let out = cli(&app, &["keys", "rotate"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated: Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    let new_kid = rotated["rotated"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);

    // Published within a refresh, while the old key still signs.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (keys, _) = jwks(&app).await;
        if kids(&keys).contains(&new_kid) {
            assert!(kids(&keys).contains(&old_kid));
            break;
        }
        assert!(Instant::now() < deadline, "the new key was never published");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listed = cli(&app, &["keys", "list"]).await;
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.contains("\"state\":\"pending\""), "{listed}");
    assert!(listed.contains("\"state\":\"current\""), "{listed}");
    assert!(!listed.contains("private"), "{listed}");

    // After the delay, new tokens name the new key; the old token lives.
    let deadline = Instant::now() + Duration::from_secs(6);
    let after = loop {
        let t = app.login("rotated").await;
        if part(&t.access_token, 0)["kid"] == new_kid.as_str() {
            break t;
        }
        assert!(Instant::now() < deadline, "the new key never signed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status(&app, &after.access_token).await, 200);
    assert_eq!(
        status(&app, &long_lived).await,
        200,
        "the old key still verifies"
    );

    // Past the old key's last possible token (TTL 4 s + refresh 0.5 s
    // after the switch), it is gone: from the JWKS and from verification,
    // even for a token that has not expired itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (keys, _) = jwks(&app).await;
        if !kids(&keys).contains(&old_kid) {
            assert_eq!(kids(&keys), std::slice::from_ref(&new_kid));
            break;
        }
        assert!(Instant::now() < deadline, "the old key was never retired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        status(&app, &long_lived).await,
        401,
        "a retired kid after expiry"
    );
    let listed = cli(&app, &["keys", "list"]).await;
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("\"state\":\"expired\""),
        "{}",
        String::from_utf8_lossy(&listed.stdout)
    );
    let pruned = cli(&app, &["prune"]).await;
    assert!(
        String::from_utf8_lossy(&pruned.stdout).contains("\"signing_keys\":1"),
        "{}",
        String::from_utf8_lossy(&pruned.stdout)
    );
}

/// Two instances on one database: a key rotated in by the command line
/// and used at once by one instance is accepted by the other before its
/// next periodic read (it re-reads the set for a `kid` it does not know).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_in_is_accepted_by_every_instance_at_once() {
    let apps = spawn_cluster(
        2,
        &[
            ("PALISADE_JWT_ALGORITHM", "ES256"),
            ("PALISADE_KEY_SET_REFRESH", "1h"),
        ],
    )
    .await;
    apps[0].register("everywhere").await;
    let first = apps[0].login("everywhere").await;
    let old_kid = part(&first.access_token, 0)["kid"].clone();
    assert_eq!(status(&apps[1], &first.access_token).await, 200);

    let out = cli(&apps[0], &["keys", "rotate", "--now"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Instance 0 reads the set now (as its periodic read would).
    apps[0]
        .state
        .tokens
        .key_set()
        .unwrap()
        .reload()
        .await
        .unwrap();
    let second = apps[0].login("everywhere").await;
    let new_kid = part(&second.access_token, 0)["kid"].clone();
    assert_ne!(new_kid, old_kid);
    // (Unknown `kid`s make an instance re-read the set at most once a
    // second; instance 1 read it at start-up, just now.)
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(status(&apps[1], &second.access_token).await, 200);
    assert_eq!(status(&apps[1], &first.access_token).await, 200);
    let (keys, _) = jwks(&apps[1]).await;
    assert_eq!(keys.len(), 2);
}

#[tokio::test]
async fn the_discovery_document_names_the_issuer_of_the_tokens_and_the_endpoints() {
    let app = spawn_app(&[
        ("PALISADE_PUBLIC_URL", "https://auth.example.test/"),
        ("PALISADE_JWT_ALGORITHM", "EdDSA"),
    ])
    .await;
    let r = app.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let meta: Value = r.json().await.unwrap();
    assert_eq!(meta["issuer"], "https://auth.example.test");
    assert_eq!(
        meta["token_endpoint"],
        "https://auth.example.test/auth/token"
    );
    assert_eq!(
        meta["revocation_endpoint"],
        "https://auth.example.test/auth/revoke"
    );
    assert_eq!(
        meta["jwks_uri"],
        "https://auth.example.test/.well-known/jwks.json"
    );
    assert_eq!(
        meta["token_endpoint_auth_methods_supported"],
        json!(["none"])
    );
    assert_eq!(
        meta["revocation_endpoint_auth_methods_supported"],
        json!(["none"])
    );
    let grants = meta["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&json!("password")) && grants.contains(&json!("refresh_token")));
    assert_eq!(
        meta["access_token_signing_alg_values_supported"],
        json!(["EdDSA"])
    );
    // RFC 9068 §4 / RFC 8414 §3.3: the tokens' `iss` is the issuer.
    app.register("discoverer").await;
    let tokens = app.login("discoverer").await;
    assert_eq!(part(&tokens.access_token, 1)["iss"], meta["issuer"]);

    // Unconfigured: the issuer stays `palisade` and the endpoints are
    // built from the listen address.
    let plain = spawn_app(&[]).await;
    let meta: Value = plain
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], "palisade");
    assert_eq!(meta["token_endpoint"], plain.url("/auth/token"));

    // The OpenAPI document's OAuth2 scheme points at the same endpoint.
    let doc: Value = plain.get("/openapi.json").await.json().await.unwrap();
    let flow = &doc["components"]["securitySchemes"]["oauth2"]["flows"]["password"];
    assert_eq!(flow["tokenUrl"], "/auth/token");
    assert_eq!(flow["refreshUrl"], "/auth/token");
}

/// A token served from the verified-token cache still expires: the cache
/// skips only the signature.
#[tokio::test]
async fn a_cached_token_still_expires() {
    let app = spawn_app(&[
        ("PALISADE_JWT_ALGORITHM", "ES256"),
        ("PALISADE_ACCESS_TOKEN_TTL", "2s"),
        ("PALISADE_JWT_LEEWAY", "0s"),
    ])
    .await;
    app.register("short_lived").await;
    let tokens = app.login("short_lived").await;
    // Verified once, then answered from the cache.
    assert_eq!(status(&app, &tokens.access_token).await, 200);
    assert_eq!(status(&app, &tokens.access_token).await, 200);
    let exp = part(&tokens.access_token, 1)["exp"].as_u64().unwrap();
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        if now > exp {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status(&app, &tokens.access_token).await, 401);
}
