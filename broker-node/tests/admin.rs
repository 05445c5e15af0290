//! `berth admin` through the real binary against a cluster of real processes: API clients (describe,
//! unregister, and their tokens refused afterwards) and external authorization servers (a JWKS server in this
//! test signs RS256 and ES256 tokens that the API accepts until the server is unregistered).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use broker_node::client::ApiClient;
use common::*;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Replication to a follower takes a heartbeat or two; a deadline far above that.
const APPLIED: Duration = Duration::from_secs(10);

struct Output {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs `berth admin ARGS --config CONFIG`, the way an operator does on a node's host.
async fn admin(config: &Path, args: &[&str]) -> Output {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("admin")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .await
        .expect("run berth admin");
    Output {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn admin_ok(config: &Path, args: &[&str]) -> String {
    let out = admin(config, args).await;
    assert!(out.success, "berth admin {args:?} failed:\n{}\n{}", out.stdout, out.stderr);
    out.stdout
}

async fn admin_fails(config: &Path, args: &[&str], cause: &str) {
    let out = admin(config, args).await;
    assert!(!out.success, "berth admin {args:?} should fail:\n{}", out.stdout);
    assert!(out.stderr.contains(cause), "berth admin {args:?}: expected {cause:?} in:\n{}", out.stderr);
}

/// The status of DescribeSessions through `url` with `token` (no renewal, unlike `ApiClient::call`).
async fn status_with(h: &Harness, url: &str, token: &str) -> StatusCode {
    h.client
        .http()
        .post(format!("{url}/describeSessions"))
        .bearer_auth(token)
        .send()
        .await
        .expect("describeSessions")
        .status()
}

/// Waits until every node answers `token` with `want`.
async fn everywhere(h: &Harness, token: &str, want: StatusCode, what: &str) {
    for url in h.cluster.api_urls() {
        eventually(&format!("{what} on {url}"), APPLIED, || async {
            (status_with(h, &url, token).await == want).then_some(())
        })
        .await;
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

struct SigningKey {
    alg: Algorithm,
    kid: String,
    key: EncodingKey,
    jwk: Jwk,
}

impl SigningKey {
    fn new(alg: Algorithm, kid: &str, key: EncodingKey) -> Self {
        let mut jwk = Jwk::from_encoding_key(&key, alg).expect("public JWK");
        jwk.common.key_id = Some(kid.to_owned());
        SigningKey { alg, kid: kid.to_owned(), key, jwk }
    }

    fn rsa(kid: &str) -> Self {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key");
        Self::new(Algorithm::RS256, kid, EncodingKey::from_rsa_der(key.to_pkcs1_der().expect("PKCS#1").as_bytes()))
    }

    fn ec(kid: &str) -> Self {
        use p256::pkcs8::EncodePrivateKey;
        let key = p256::ecdsa::SigningKey::random(&mut rsa::rand_core::OsRng);
        Self::new(Algorithm::ES256, kid, EncodingKey::from_ec_der(key.to_pkcs8_der().expect("PKCS#8").as_bytes()))
    }

    fn sign(&self, audience: &str) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        let claims =
            json!({ "iss": "https://idp.test", "sub": "portal", "aud": audience, "iat": now(), "exp": now() + 600 });
        jsonwebtoken::encode(&header, &claims, &self.key).expect("sign")
    }
}

/// A JWKS endpoint on loopback, as an identity provider publishes one.
async fn jwks_server(keys: Vec<Jwk>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address: SocketAddr = listener.local_addr().expect("address");
    let set = JwkSet { keys };
    let app = Router::new().route("/.well-known/jwks.json", get(move || async move { Json(set.clone()) }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/.well-known/jwks.json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_clients_and_auth_servers_are_managed_with_berth_admin() {
    let mut h = start(3, 0, |_| {}).await;
    let config = h.cluster.node_config_path(2);
    let url1 = h.cluster.api_url(1);

    // An API client: registered, listed without its secret, usable.
    let out = admin_ok(&config, &["register-api-client", "--client-name", "portal"]).await;
    let field = |name: &str| {
        out.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_owned()).expect("id and secret printed")
    };
    let (client_id, secret) = (field("client-id:"), field("client-secret:"));
    let listing = admin_ok(&config, &["describe-api-clients"]).await;
    let row = listing.lines().find(|l| l.starts_with(&client_id)).unwrap_or_else(|| panic!("{listing}"));
    assert!(row.contains("portal") && row.contains('T') && row.ends_with('Z'), "{row}");
    assert!(listing.lines().next().unwrap().starts_with("CLIENT ID"), "{listing}");
    assert!(listing.contains("berth-dev"), "the harness's client is listed too: {listing}");
    assert!(!listing.contains(&secret), "{listing}");
    assert!(
        !listing.split_whitespace().any(|w| w.len() == 64 && w.chars().all(|c| c.is_ascii_hexdigit())),
        "no secret hash: {listing}"
    );
    let portal = ApiClient::new(h.cluster.ca_pem(), &client_id, &secret).expect("client");
    let token = portal.fetch_token(&url1).await.expect("token for the new client");
    everywhere(&h, &token, StatusCode::OK, "the new client's token accepted").await;

    // Unregistered: the token it already holds is refused on every node, and it gets no new one.
    admin_ok(&config, &["unregister-api-client", "--client-id", &client_id]).await;
    everywhere(&h, &token, StatusCode::UNAUTHORIZED, "the unregistered client's token refused").await;
    let refused = portal.fetch_token(&url1).await.expect_err("no token for an unregistered client");
    assert!(refused.to_string().contains("401"), "{refused:#}");
    let listing = admin_ok(&config, &["describe-api-clients"]).await;
    assert!(!listing.contains(&client_id), "{listing}");
    admin_fails(&config, &["unregister-api-client", "--client-id", &client_id], "unknown client id").await;
    // The harness's own client still works.
    let (status, body) = h.client.post(&url1, "/describeSessions", &json!({})).await.expect("describeSessions");
    assert_eq!(status, 200, "{body}");

    // An external authorization server.
    let (rsa, ec) = (SigningKey::rsa("idp-rsa"), SigningKey::ec("idp-ec"));
    let jwks_url = jwks_server(vec![rsa.jwk.clone(), ec.jwk.clone()]).await;
    let audience = broker_api::auth::AUDIENCE;
    let rs256 = rsa.sign(audience);
    assert_eq!(status_with(&h, &url1, &rs256).await, 401, "not registered yet");
    admin_fails(&config, &["register-auth-server", "--url", "ftp://idp.test/keys"], "http or https").await;
    admin_fails(&config, &["register-auth-server", "--url", "not a url"], "invalid URL").await;
    let out = admin_ok(&config, &["register-auth-server", "--url", &jwks_url]).await;
    assert!(out.contains(&jwks_url), "{out}");
    let listing = admin_ok(&config, &["list-auth-servers"]).await;
    assert!(listing.lines().any(|l| l.starts_with(&jwks_url)), "{listing}");

    everywhere(&h, &rs256, StatusCode::OK, "an RS256 token of the registered server").await;
    let es256 = ec.sign(audience);
    everywhere(&h, &es256, StatusCode::OK, "an ES256 token of the registered server").await;

    // Refused: another audience, no signature, an HS256 token "signed" with the public key.
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = rs256.split('.').nth(1).unwrap();
    let unsigned = format!("{}.{payload}.", b64.encode(r#"{"alg":"none","typ":"JWT","kid":"idp-rsa"}"#));
    let jsonwebtoken::jwk::AlgorithmParameters::RSA(public) = &rsa.jwk.algorithm else { panic!("RSA JWK") };
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some("idp-rsa".into());
    let confused = jsonwebtoken::encode(
        &hs_header,
        &json!({ "sub": "portal", "aud": audience, "exp": now() + 600 }),
        &EncodingKey::from_secret(public.n.as_bytes()),
    )
    .unwrap();
    for (what, bad) in [("wrong audience", rsa.sign("another-api")), ("alg none", unsigned), ("HS256", confused)] {
        for url in h.cluster.api_urls() {
            let response = h.client.http().post(format!("{url}/describeSessions")).bearer_auth(&bad).send().await;
            let response = response.unwrap();
            assert_eq!(response.status(), 401, "{what} through {url}");
            let body: Value = response.json().await.unwrap();
            assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{what}: {body}");
        }
    }

    // Unregistered: its tokens are refused.
    admin_ok(&config, &["unregister-auth-server", "--url", &jwks_url]).await;
    everywhere(&h, &rs256, StatusCode::UNAUTHORIZED, "the unregistered server's RS256 token refused").await;
    everywhere(&h, &es256, StatusCode::UNAUTHORIZED, "the unregistered server's ES256 token refused").await;
    let listing = admin_ok(&config, &["list-auth-servers"]).await;
    assert!(!listing.contains(&jwks_url), "{listing}");
    admin_fails(&config, &["unregister-auth-server", "--url", &jwks_url], "unknown URL").await;

    h.cluster.stop_all();
}
