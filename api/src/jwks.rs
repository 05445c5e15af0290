//! Access tokens from external OAuth2 authorization servers (`berth admin register-auth-server --url`): their
//! public keys (a JWKS document) are fetched from the registered URL, cached per URL, and used to verify RS256
//! and ES256 tokens.
//!
//! Decisions, in one place:
//! - Audience: an external token must name [`JwksSettings::audience`] in `aud` (default
//!   `berth-session-manager-api`, the audience of the cluster's own tokens), so a token the same server issued
//!   for another API does not open this one. The issuer is not checked: whoever holds a key published at a
//!   registered URL is that server, and the URL is the registration.
//! - Algorithms: RS256 (key `kty: RSA`) and ES256 (key `kty: EC`, `crv: P-256`) only, and a key's own `alg`, when
//!   it has one, must be the token's. `alg: none`, HS* and everything else are refused before any key is
//!   looked at, so a public key can never be used as an HMAC secret.
//! - Fetching: reqwest over rustls with the process's provider (ring). An https URL must present a certificate
//!   that the system roots (the OS trust store, through rustls-platform-verifier) accept; a private CA goes into
//!   that store. Plain http is allowed (tests, loopback IdPs). Redirects are not followed: the administrator
//!   vouched for the registered URL, not for wherever it points.
//! - Refetching: a key set is fetched on first use, again when it is older than [`JwksSettings::max_age`] (so keys
//!   the server withdrew stop working), and again when a token names a key id no cached set holds (rotation).
//!   Whatever the reason, one URL is fetched at most once per [`JwksSettings::min_refetch_interval`], so a flood
//!   of tokens with made-up key ids costs the JWKS server one request per interval. A failed refetch keeps the
//!   keys fetched before.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::time::Instant;

/// A JWKS document larger than this is refused (real ones hold a handful of keys, a few KiB).
const MAX_JWKS_BYTES: usize = 1 << 20;

#[derive(Clone, Debug)]
pub struct JwksSettings {
    /// The `aud` an external token must carry.
    pub audience: String,
    /// One URL is fetched at most once per this interval, whatever asks for it.
    pub min_refetch_interval: Duration,
    /// A key set older than this is fetched again before it is used.
    pub max_age: Duration,
    /// Connect and read time allowed for one fetch.
    pub fetch_timeout: Duration,
    /// Clock difference allowed with the authorization server on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
}

impl Default for JwksSettings {
    fn default() -> Self {
        JwksSettings {
            audience: crate::auth::AUDIENCE.to_owned(),
            min_refetch_interval: Duration::from_secs(5),
            max_age: Duration::from_secs(600),
            fetch_timeout: Duration::from_secs(5),
            leeway_secs: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("the token is not a JWT: {0}")]
    Malformed(String),
    #[error("tokens signed with {0} are not accepted (RS256 and ES256 are, from registered authorization servers)")]
    AlgorithmRefused(String),
    #[error("no registered authorization server publishes a key for this token{}", kid_note(.0))]
    NoKey(Option<String>),
    #[error("the token did not verify: {0}")]
    Invalid(String),
    #[error("cannot fetch the keys from {url}: {reason}")]
    Fetch { url: String, reason: String },
}

fn kid_note(kid: &Option<String>) -> String {
    kid.as_ref().map(|kid| format!(" (kid {kid:?})")).unwrap_or_default()
}

/// What a verified external token says about its bearer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalIdentity {
    /// The JWKS URL whose key verified the token.
    pub auth_server: String,
    pub subject: Option<String>,
    pub issuer: Option<String>,
}

#[derive(Deserialize)]
struct ExternalClaims {
    sub: Option<String>,
    iss: Option<String>,
}

/// The cached key set of one URL.
#[derive(Default)]
struct Slot {
    keys: Option<Arc<Vec<Jwk>>>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
    last_error: Option<JwksError>,
    /// Bumped after every fetch attempt, so a caller that waited on `gate` sees whether someone fetched meanwhile.
    attempts: u64,
    /// One fetch per URL at a time; the others wait for its result instead of fetching too.
    gate: Arc<tokio::sync::Mutex<()>>,
}

/// Key sets by JWKS URL, shared by every request of a node.
pub struct JwksCache {
    settings: JwksSettings,
    /// Built on first fetch: a reqwest client needs the process's rustls provider, which not every user of
    /// `ApiState` (unit tests of other modules) installs.
    http: OnceLock<reqwest::Client>,
    slots: Mutex<HashMap<String, Slot>>,
    fetches: AtomicU64,
}

impl JwksCache {
    pub fn new(settings: JwksSettings) -> Self {
        JwksCache { settings, http: OnceLock::new(), slots: Mutex::new(HashMap::new()), fetches: AtomicU64::new(0) }
    }

    pub fn settings(&self) -> &JwksSettings {
        &self.settings
    }

    /// How many fetches this cache has started (for tests and diagnostics).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Drops the cached keys of URLs that are no longer registered.
    pub fn retain_only(&self, urls: &[String]) {
        self.slots.lock().expect("jwks lock").retain(|url, _| urls.contains(url));
    }

    /// Verifies `token` with the keys published at `urls` (the registered authorization servers).
    pub async fn verify(&self, token: &str, urls: &[String]) -> Result<ExternalIdentity, JwksError> {
        let (alg, kid) = peek_header(token)?;
        let mut last_failure = None;
        // First with the cached sets; only when none of them holds a usable key, once more after a refetch
        // (rate-limited per URL): the server may have rotated its keys.
        for refresh in [false, true] {
            let mut found_key = false;
            for url in urls {
                let keys = match self.key_set(url, refresh).await {
                    Ok(keys) => keys,
                    Err(e) => {
                        if !matches!(last_failure, Some(JwksError::Invalid(_))) {
                            last_failure = Some(e);
                        }
                        continue;
                    }
                };
                for jwk in keys.iter().filter(|jwk| usable(jwk, alg, kid.as_deref())) {
                    found_key = true;
                    match self.check(token, alg, jwk) {
                        Ok(claims) => {
                            return Ok(ExternalIdentity {
                                auth_server: url.clone(),
                                subject: claims.sub,
                                issuer: claims.iss,
                            })
                        }
                        Err(e) => last_failure = Some(e),
                    }
                }
            }
            if found_key {
                break;
            }
        }
        // A key that refused the token says most; then a server we could not ask; then that no key fits.
        Err(last_failure.unwrap_or(JwksError::NoKey(kid)))
    }

    fn check(&self, token: &str, alg: Algorithm, jwk: &Jwk) -> Result<ExternalClaims, JwksError> {
        let key = DecodingKey::from_jwk(jwk).map_err(|e| JwksError::Invalid(format!("unusable key: {e}")))?;
        let mut validation = Validation::new(alg);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = self.settings.leeway_secs;
        jsonwebtoken::decode::<ExternalClaims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| JwksError::Invalid(e.to_string()))
    }

    /// The key set of `url`: the cached one, or a fresh one when there is none yet, it is too old, or `refresh`
    /// asks for it, as far as the rate limit allows.
    async fn key_set(&self, url: &str, refresh: bool) -> Result<Arc<Vec<Jwk>>, JwksError> {
        let (cached, seen_attempts, gate) = {
            let mut slots = self.slots.lock().expect("jwks lock");
            let slot = slots.entry(url.to_owned()).or_default();
            let fresh = slot.fetched_at.is_some_and(|at| at.elapsed() < self.settings.max_age);
            if let (Some(keys), true, false) = (&slot.keys, fresh, refresh) {
                return Ok(keys.clone());
            }
            (slot.keys.clone(), slot.attempts, slot.gate.clone())
        };
        let _one_fetch_at_a_time = gate.lock().await;
        {
            let mut slots = self.slots.lock().expect("jwks lock");
            let slot = slots.entry(url.to_owned()).or_default();
            let now = Instant::now();
            let held_back = slot.last_attempt.is_some_and(|at| now < at + self.settings.min_refetch_interval);
            if slot.attempts != seen_attempts || held_back {
                // Someone fetched while we waited, or a fetch happened too recently: use what there is.
                return slot.keys.clone().ok_or_else(|| {
                    slot.last_error.clone().unwrap_or(JwksError::Fetch {
                        url: url.to_owned(),
                        reason: "no keys fetched yet (fetches are rate-limited)".into(),
                    })
                });
            }
            slot.last_attempt = Some(now);
        }
        let result = self.fetch(url).await;
        let mut slots = self.slots.lock().expect("jwks lock");
        let slot = slots.entry(url.to_owned()).or_default();
        slot.attempts += 1;
        match result {
            Ok(keys) => {
                let keys = Arc::new(keys);
                slot.keys = Some(keys.clone());
                slot.fetched_at = Some(Instant::now());
                slot.last_error = None;
                Ok(keys)
            }
            Err(e) => {
                tracing::warn!(url = %url, error = %e, "cannot refresh the authorization server's keys");
                slot.last_error = Some(e.clone());
                cached.ok_or(e)
            }
        }
    }

    async fn fetch(&self, url: &str) -> Result<Vec<Jwk>, JwksError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let failed = |reason: String| JwksError::Fetch { url: url.to_owned(), reason };
        let http = self.http()?;
        let mut response = http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| failed(error_chain(&e)))?;
        if !response.status().is_success() {
            return Err(failed(format!("HTTP {}", response.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| failed(error_chain(&e)))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_JWKS_BYTES {
                return Err(failed(format!("the document is larger than {MAX_JWKS_BYTES} bytes")));
            }
        }
        parse_jwks(&body).map_err(failed)
    }

    fn http(&self) -> Result<&reqwest::Client, JwksError> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        let client = reqwest::Client::builder()
            .timeout(self.settings.fetch_timeout)
            .connect_timeout(self.settings.fetch_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| JwksError::Fetch { url: String::new(), reason: format!("cannot build the client: {e}") })?;
        Ok(self.http.get_or_init(|| client))
    }
}

/// reqwest's top-level message hides the cause (refused, TLS, timeout); name it.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The keys of a JWKS document. Keys this crate cannot represent (other key types, curves, unknown members)
/// are skipped rather than failing the whole set.
fn parse_jwks(body: &[u8]) -> Result<Vec<Jwk>, String> {
    #[derive(Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document =
        serde_json::from_slice(body).map_err(|e| format!("not a JWKS document ({{\"keys\": [...]}}): {e}"))?;
    Ok(document.keys.into_iter().filter_map(|key| serde_json::from_value(key).ok()).collect())
}

/// The token's algorithm (only RS256 and ES256 pass) and key id, read before anything is verified.
fn peek_header(token: &str) -> Result<(Algorithm, Option<String>), JwksError> {
    #[derive(Deserialize)]
    struct RawHeader {
        alg: Option<String>,
        kid: Option<String>,
    }
    let encoded = token.split('.').next().unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .map_err(|e| JwksError::Malformed(format!("header is not base64url: {e}")))?;
    let header: RawHeader =
        serde_json::from_slice(&bytes).map_err(|e| JwksError::Malformed(format!("header is not JSON: {e}")))?;
    let alg = header.alg.unwrap_or_default();
    match alg.as_str() {
        "RS256" => Ok((Algorithm::RS256, header.kid)),
        "ES256" => Ok((Algorithm::ES256, header.kid)),
        _ => Err(JwksError::AlgorithmRefused(if alg.is_empty() { "no alg".into() } else { alg })),
    }
}

/// Whether `jwk` may verify a token signed with `alg` and naming `kid`: the key type fits the algorithm, the
/// key's own `alg` (if any) is the token's, and it is a signing key.
fn usable(jwk: &Jwk, alg: Algorithm, kid: Option<&str>) -> bool {
    if kid.is_some() && jwk.common.key_id.as_deref() != kid {
        return false;
    }
    if !matches!(jwk.common.public_key_use, None | Some(PublicKeyUse::Signature)) {
        return false;
    }
    let (fits, named) = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256) => (true, KeyAlgorithm::RS256),
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
            (ec.curve == EllipticCurve::P256, KeyAlgorithm::ES256)
        }
        _ => return false,
    };
    fits && jwk.common.key_algorithm.is_none_or(|key_alg| key_alg == named)
}

/// Keys, tokens and a JWKS server for the tests of this crate.
#[cfg(test)]
pub(crate) mod testing {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};

    use axum::extract::State;
    use axum::routing::get;
    use axum::{Json, Router};
    use jsonwebtoken::jwk::{Jwk, JwkSet};
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use rsa::pkcs1::EncodeRsaPrivateKey;

    pub fn install_provider() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }

    pub fn now() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
    }

    /// A signing key and its public JWK.
    pub struct TestKey {
        pub alg: Algorithm,
        pub encoding: EncodingKey,
        pub jwk: Jwk,
    }

    impl TestKey {
        pub fn rsa(kid: &str) -> TestKey {
            // 2048-bit generation takes a while even optimized; one key serves every test.
            static DER: OnceLock<Vec<u8>> = OnceLock::new();
            let der = DER.get_or_init(|| {
                let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key");
                key.to_pkcs1_der().expect("PKCS#1").as_bytes().to_vec()
            });
            Self::from_encoding(Algorithm::RS256, EncodingKey::from_rsa_der(der), kid)
        }

        pub fn ec(kid: &str) -> TestKey {
            use p256::pkcs8::EncodePrivateKey;
            let key = p256::ecdsa::SigningKey::random(&mut rsa::rand_core::OsRng);
            let der = key.to_pkcs8_der().expect("PKCS#8");
            Self::from_encoding(Algorithm::ES256, EncodingKey::from_ec_der(der.as_bytes()), kid)
        }

        fn from_encoding(alg: Algorithm, encoding: EncodingKey, kid: &str) -> TestKey {
            let mut jwk = Jwk::from_encoding_key(&encoding, alg).expect("public JWK");
            jwk.common.key_id = Some(kid.to_owned());
            TestKey { alg, encoding, jwk }
        }

        pub fn sign(&self, claims: &serde_json::Value) -> String {
            let mut header = Header::new(self.alg);
            header.kid = self.jwk.common.key_id.clone();
            jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign")
        }
    }

    pub fn claims(aud: &str, exp: u64) -> serde_json::Value {
        serde_json::json!({ "iss": "https://idp.example", "sub": "portal", "aud": aud, "iat": now(), "exp": exp })
    }

    /// A JWKS endpoint on loopback whose keys the test can change, counting the requests it serves.
    #[derive(Clone)]
    pub struct JwksServer {
        pub url: String,
        keys: Arc<Mutex<Vec<Jwk>>>,
        hits: Arc<AtomicU64>,
    }

    impl JwksServer {
        pub async fn start(keys: Vec<Jwk>) -> JwksServer {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let address: SocketAddr = listener.local_addr().expect("address");
            let server = JwksServer {
                url: format!("http://{address}/.well-known/jwks.json"),
                keys: Arc::new(Mutex::new(keys)),
                hits: Arc::new(AtomicU64::new(0)),
            };
            let app = Router::new()
                .route(
                    "/.well-known/jwks.json",
                    get(|State(server): State<JwksServer>| async move {
                        server.hits.fetch_add(1, Ordering::SeqCst);
                        Json(JwkSet { keys: server.keys.lock().unwrap().clone() })
                    }),
                )
                .with_state(server.clone());
            tokio::spawn(async move { axum::serve(listener, app).await });
            server
        }

        pub fn set_keys(&self, keys: Vec<Jwk>) {
            *self.keys.lock().unwrap() = keys;
        }

        pub fn hits(&self) -> u64 {
            self.hits.load(Ordering::SeqCst)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::auth::AUDIENCE;

    fn cache() -> JwksCache {
        install_provider();
        JwksCache::new(JwksSettings::default())
    }

    fn unsigned(claims: &serde_json::Value) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#), b64.encode(claims.to_string()))
    }

    #[tokio::test]
    async fn rs256_and_es256_tokens_from_a_registered_server_are_accepted() {
        let (rsa, ec) = (TestKey::rsa("r1"), TestKey::ec("e1"));
        let server = JwksServer::start(vec![rsa.jwk.clone(), ec.jwk.clone()]).await;
        let cache = cache();
        let urls = vec![server.url.clone()];
        for key in [&rsa, &ec] {
            let identity = cache.verify(&key.sign(&claims(AUDIENCE, now() + 300)), &urls).await.unwrap();
            assert_eq!(identity.auth_server, server.url);
            assert_eq!(identity.subject.as_deref(), Some("portal"));
        }
        assert_eq!(server.hits(), 1, "the second token used the cached set");
    }

    #[tokio::test]
    async fn unsigned_wrong_audience_and_expired_tokens_are_refused() {
        let rsa = TestKey::rsa("r1");
        let server = JwksServer::start(vec![rsa.jwk.clone()]).await;
        let cache = cache();
        let urls = vec![server.url.clone()];
        let none = unsigned(&claims(AUDIENCE, now() + 300));
        assert_eq!(cache.verify(&none, &urls).await, Err(JwksError::AlgorithmRefused("none".into())));
        let wrong_audience = rsa.sign(&claims("some-other-api", now() + 300));
        assert!(
            matches!(cache.verify(&wrong_audience, &urls).await, Err(JwksError::Invalid(e)) if e.contains("Audience")),
            "wrong audience"
        );
        let expired = rsa.sign(&claims(AUDIENCE, now() - 120));
        assert!(
            matches!(cache.verify(&expired, &urls).await, Err(JwksError::Invalid(e)) if e.contains("Expired")),
            "expired"
        );
        let mut no_exp = claims(AUDIENCE, 0);
        no_exp.as_object_mut().unwrap().remove("exp");
        assert!(cache.verify(&rsa.sign(&no_exp), &urls).await.is_err(), "a token without exp");
        let tampered = format!("{}x", rsa.sign(&claims(AUDIENCE, now() + 300)).trim_end_matches(|c| c != '.'));
        assert!(cache.verify(&tampered, &urls).await.is_err(), "a bad signature");
    }

    #[tokio::test]
    async fn a_public_key_is_never_an_hmac_secret() {
        let rsa = TestKey::rsa("r1");
        let server = JwksServer::start(vec![rsa.jwk.clone()]).await;
        let cache = cache();
        let AlgorithmParameters::RSA(params) = &rsa.jwk.algorithm else { panic!("an RSA JWK") };
        for secret in [params.n.as_bytes().to_vec(), serde_json::to_vec(&rsa.jwk).unwrap()] {
            let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
            header.kid = Some("r1".into());
            let forged = jsonwebtoken::encode(
                &header,
                &claims(AUDIENCE, now() + 300),
                &jsonwebtoken::EncodingKey::from_secret(&secret),
            )
            .unwrap();
            assert_eq!(
                cache.verify(&forged, std::slice::from_ref(&server.url)).await,
                Err(JwksError::AlgorithmRefused("HS256".into()))
            );
        }
        assert_eq!(server.hits(), 0, "refused before any key was fetched");
    }

    #[test]
    fn keys_serve_only_their_own_algorithm() {
        let (rsa, ec) = (TestKey::rsa("r1"), TestKey::ec("e1"));
        assert!(usable(&rsa.jwk, Algorithm::RS256, Some("r1")));
        assert!(!usable(&rsa.jwk, Algorithm::RS256, Some("other")));
        assert!(!usable(&rsa.jwk, Algorithm::ES256, None));
        assert!(usable(&ec.jwk, Algorithm::ES256, None));
        assert!(!usable(&ec.jwk, Algorithm::RS256, None));
        let mut labelled = rsa.jwk.clone();
        labelled.common.key_algorithm = Some(KeyAlgorithm::PS256);
        assert!(!usable(&labelled, Algorithm::RS256, None), "the key's alg must be the token's");
        let mut encryption = rsa.jwk.clone();
        encryption.common.public_key_use = Some(PublicKeyUse::Encryption);
        assert!(!usable(&encryption, Algorithm::RS256, None), "an encryption key");
        let keys =
            parse_jwks(br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"},{"kty":"OKP","crv":"X448","x":"AA"},{"foo":1}]}"#)
                .unwrap();
        assert!(keys.iter().all(|k| !usable(k, Algorithm::RS256, None) && !usable(k, Algorithm::ES256, None)));
        assert!(parse_jwks(b"[]").is_err());
    }

    #[tokio::test]
    async fn an_unknown_kid_fetches_the_keys_again() {
        let (old, new) = (TestKey::rsa("2025"), TestKey::ec("2026"));
        let server = JwksServer::start(vec![old.jwk.clone()]).await;
        install_provider();
        let cache = JwksCache::new(JwksSettings { min_refetch_interval: Duration::ZERO, ..JwksSettings::default() });
        let urls = vec![server.url.clone()];
        cache.verify(&old.sign(&claims(AUDIENCE, now() + 300)), &urls).await.unwrap();
        server.set_keys(vec![old.jwk.clone(), new.jwk.clone()]);
        cache.verify(&new.sign(&claims(AUDIENCE, now() + 300)), &urls).await.unwrap();
        assert_eq!(server.hits(), 2, "one fetch for the first token, one for the rotated key");
        cache.verify(&old.sign(&claims(AUDIENCE, now() + 300)), &urls).await.unwrap();
        assert_eq!(server.hits(), 2, "both keys cached now");
    }

    #[tokio::test]
    async fn a_flood_of_unknown_kids_costs_one_fetch_per_interval() {
        let rsa = TestKey::rsa("real");
        let server = JwksServer::start(vec![rsa.jwk.clone()]).await;
        install_provider();
        let cache =
            JwksCache::new(JwksSettings { min_refetch_interval: Duration::from_secs(3600), ..Default::default() });
        let urls = vec![server.url.clone()];
        cache.verify(&rsa.sign(&claims(AUDIENCE, now() + 300)), &urls).await.unwrap();
        let bogus: Vec<TestKey> = (0..20).map(|n| TestKey::ec(&format!("bogus-{n}"))).collect();
        for key in &bogus {
            let result = cache.verify(&key.sign(&claims(AUDIENCE, now() + 300)), &urls).await;
            assert!(matches!(result, Err(JwksError::NoKey(Some(_)))), "{result:?}");
        }
        assert_eq!(server.hits(), 1, "the interval since the first fetch has not passed");
        assert_eq!(cache.fetch_count(), 1);

        // The same flood, with the limit lifted: every unknown kid is one fetch.
        let unlimited = JwksCache::new(JwksSettings { min_refetch_interval: Duration::ZERO, ..Default::default() });
        let before = server.hits();
        for key in &bogus[..5] {
            assert!(unlimited.verify(&key.sign(&claims(AUDIENCE, now() + 300)), &urls).await.is_err());
        }
        assert_eq!(server.hits() - before, 6, "the first fetch, then one refetch per token");
    }

    #[tokio::test]
    async fn concurrent_first_uses_share_one_fetch() {
        let rsa = TestKey::rsa("r1");
        let server = JwksServer::start(vec![rsa.jwk.clone()]).await;
        let cache = Arc::new(cache());
        let token = rsa.sign(&claims(AUDIENCE, now() + 300));
        let urls = vec![server.url.clone()];
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (cache, token, urls) = (cache.clone(), token.clone(), urls.clone());
                tokio::spawn(async move { cache.verify(&token, &urls).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(server.hits(), 1);
    }

    #[tokio::test]
    async fn an_unreachable_server_names_the_cause() {
        let rsa = TestKey::rsa("r1");
        let cache = cache();
        let dead = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/jwks.json", listener.local_addr().unwrap())
        };
        let result = cache.verify(&rsa.sign(&claims(AUDIENCE, now() + 300)), std::slice::from_ref(&dead)).await;
        assert!(
            matches!(&result, Err(JwksError::Fetch { url, reason }) if *url == dead && reason.contains("onnect")),
            "{result:?}"
        );
    }
}
