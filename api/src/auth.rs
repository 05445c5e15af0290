//! Authentication: API client secrets (salted SHA-256, compared in constant time), the cluster's JWT access
//! tokens, signed with the key held in the replicated state so that every node verifies them, and the bearer
//! check in front of every API call (cluster tokens of still-registered clients, or tokens of a registered
//! external authorization server, see `jwks.rs`).

use axum::http::HeaderMap;
use base64::Engine;
use broker_core::{ApiClient, UnixMillis};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::jwks::{ExternalIdentity, JwksCache};
use crate::ApiState;

/// The audience every Berth access token carries; tokens for anything else are refused.
pub const AUDIENCE: &str = "berth-session-manager-api";
pub const ISSUER: &str = "berth";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("Malformed Basic authorization header")]
    MalformedBasic,
    #[error("Invalid client credentials")]
    InvalidClient,
    #[error("Invalid or expired access token: {0}")]
    BadToken(String),
    #[error("cannot sign the token: {0}")]
    Signing(String),
    #[error("The client this token was issued to is no longer registered")]
    UnregisteredClient,
    #[error("no signing key has been replicated to this node yet")]
    NoSigningKey,
}

fn secret_digest(salt: &str, secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    hasher.update(b":");
    hasher.update(secret.as_bytes());
    hex::encode(hasher.finalize())
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(&mut buf[..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// A new client with a random id and secret. The secret is returned once and only its hash is kept.
pub fn new_api_client(client_name: &str, now: UnixMillis) -> (ApiClient, String) {
    // Hex, not base64: an id that starts with '-' reads as an option on a command line
    // (`berth admin unregister-api-client --client-id -6No...`).
    let client_id = {
        let mut bytes = [0u8; 16];
        rand::rng().fill(&mut bytes[..]);
        hex::encode(bytes)
    };
    let secret = random_token(32);
    let salt = random_token(12);
    let client = ApiClient {
        client_id,
        client_name: client_name.to_owned(),
        secret_sha256: secret_digest(&salt, &secret),
        secret_salt: salt,
        created: now,
    };
    (client, secret)
}

/// A new random cluster signing key (proposed once by the first leader).
pub fn new_signing_key() -> Vec<u8> {
    let mut key = vec![0u8; 32];
    rand::rng().fill(&mut key[..]);
    key
}

pub fn verify_secret(client: &ApiClient, secret: &str) -> bool {
    let digest = secret_digest(&client.secret_salt, secret);
    constant_time_eq(digest.as_bytes(), client.secret_sha256.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Splits `Basic base64(id:secret)`.
pub fn parse_basic(header: &str) -> Result<(String, String), AuthError> {
    let encoded =
        header.strip_prefix("Basic ").or_else(|| header.strip_prefix("basic ")).ok_or(AuthError::MalformedBasic)?;
    let decoded =
        base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| AuthError::MalformedBasic)?;
    let text = String::from_utf8(decoded).map_err(|_| AuthError::MalformedBasic)?;
    let (id, secret) = text.split_once(':').ok_or(AuthError::MalformedBasic)?;
    // Some clients url-encode the pair before base64 (RFC 6749 2.3.1); our ids and secrets are url-safe anyway.
    Ok((id.to_owned(), secret.to_owned()))
}

pub fn issue_token(key: &[u8], client_id: &str, now_secs: u64, ttl_secs: u64) -> Result<String, AuthError> {
    let claims = Claims {
        iss: ISSUER.to_owned(),
        sub: client_id.to_owned(),
        aud: AUDIENCE.to_owned(),
        iat: now_secs,
        exp: now_secs + ttl_secs,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(key))
        .map_err(|e| AuthError::Signing(e.to_string()))
}

/// Verifies signature, algorithm (HS256 only: `alg: none` and others are refused), audience, issuer and expiry.
pub fn verify_token(key: &[u8], token: &str) -> Result<Claims, AuthError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[ISSUER]);
    // Nodes of one cluster share a clock within NTP's error; a small leeway absorbs it.
    validation.leeway = 2;
    jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(key), &validation)
        .map(|data| data.claims)
        .map_err(|e| AuthError::BadToken(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn a_secret_verifies_only_itself() {
        let (client, secret) = new_api_client("portal", UnixMillis(0));
        assert!(verify_secret(&client, &secret));
        assert!(!verify_secret(&client, "wrong"));
        assert!(!client.secret_sha256.contains(&secret));
        // Ids go on command lines: never a leading '-', nothing to quote.
        for _ in 0..200 {
            let (client, _) = new_api_client("portal", UnixMillis(0));
            assert!(client.client_id.len() == 32 && client.client_id.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn tokens_verify_with_the_cluster_key_only() {
        let key = new_signing_key();
        let token = issue_token(&key, "c1", now(), 60).unwrap();
        assert_eq!(verify_token(&key, &token).unwrap().sub, "c1");
        assert!(verify_token(&new_signing_key(), &token).is_err());
    }

    #[test]
    fn expired_and_unsigned_tokens_are_refused() {
        let key = new_signing_key();
        let expired = issue_token(&key, "c1", now() - 3600, 60).unwrap();
        assert!(verify_token(&key, &expired).is_err());
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!(r#"{{"iss":"berth","sub":"c1","aud":"{AUDIENCE}","iat":0,"exp":{}}}"#, now() + 600));
        assert!(verify_token(&key, &format!("{header}.{body}.")).is_err());
    }

    #[test]
    fn basic_headers_parse() {
        let header = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("id:se:cret"));
        assert_eq!(parse_basic(&header).unwrap(), ("id".into(), "se:cret".into()));
        assert_eq!(parse_basic("Bearer x"), Err(AuthError::MalformedBasic));
        assert_eq!(parse_basic("Basic !!!"), Err(AuthError::MalformedBasic));
    }
}

/// The audience of connection tokens: they open a desktop session, never the API.
pub const CONNECTION_AUDIENCE: &str = "berth-dcv-connection";

/// Claims of a connection token: one user, one session, an expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionClaims {
    pub iss: String,
    pub sub: String,
    pub sid: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
}

pub fn issue_connection_token(
    key: &[u8],
    user: &str,
    session_id: &str,
    now_secs: u64,
    ttl_secs: u64,
) -> Result<String, AuthError> {
    let claims = ConnectionClaims {
        iss: ISSUER.to_owned(),
        sub: user.to_owned(),
        sid: session_id.to_owned(),
        aud: CONNECTION_AUDIENCE.to_owned(),
        iat: now_secs,
        exp: now_secs + ttl_secs,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(key))
        .map_err(|e| AuthError::Signing(e.to_string()))
}

/// The user a connection token was issued to, if it is genuine, unexpired and for `session_id`.
pub fn verify_connection_token(key: &[u8], token: &str, session_id: &str) -> Result<String, AuthError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[CONNECTION_AUDIENCE]);
    validation.set_issuer(&[ISSUER]);
    validation.leeway = 2;
    let claims = jsonwebtoken::decode::<ConnectionClaims>(token, &DecodingKey::from_secret(key), &validation)
        .map_err(|e| AuthError::BadToken(e.to_string()))?
        .claims;
    if claims.sid != session_id {
        return Err(AuthError::BadToken(format!("the token is for another session than {session_id}")));
    }
    Ok(claims.sub)
}

#[cfg(test)]
mod connection_tests {
    use super::*;

    #[test]
    fn a_connection_token_opens_one_session_for_one_user_until_it_expires() {
        let key = new_signing_key();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let token = issue_connection_token(&key, "alice", "s1", now, 60).unwrap();
        assert_eq!(verify_connection_token(&key, &token, "s1").unwrap(), "alice");
        assert!(verify_connection_token(&key, &token, "s2").is_err(), "another session");
        assert!(verify_connection_token(&new_signing_key(), &token, "s1").is_err(), "another cluster");
        let expired = issue_connection_token(&key, "alice", "s1", now - 600, 60).unwrap();
        assert!(verify_connection_token(&key, &expired, "s1").is_err(), "expired");
        let api_token = issue_token(&key, "alice", now, 60).unwrap();
        assert!(verify_connection_token(&key, &api_token, "s1").is_err(), "an API token is no connection token");
        assert!(verify_token(&key, &token).is_err(), "a connection token is no API token");
    }
}

/// Who a bearer token speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// An API client registered in this cluster (a token from `/oauth2/token`).
    Client(String),
    /// A token signed by a registered external authorization server.
    External(ExternalIdentity),
}

/// A bearer token whose signature, audience and lifetime hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verified {
    Cluster(Claims),
    External(ExternalIdentity),
}

/// Verifies a bearer token: HS256 tokens only with the cluster key (never with a key of an authorization
/// server), everything else only with the keys of the registered authorization servers (`auth_servers`, JWKS
/// URLs), which accept RS256 and ES256 alone.
pub async fn verify_bearer(
    cluster_key: Option<&[u8]>,
    jwks: &JwksCache,
    auth_servers: &[String],
    token: &str,
) -> Result<Verified, AuthError> {
    // `decode_header` fails on algorithms it does not know (`none`); those go to the external check, which
    // names the refused algorithm.
    if jsonwebtoken::decode_header(token).is_ok_and(|header| header.alg == Algorithm::HS256) {
        let key = cluster_key.ok_or(AuthError::NoSigningKey)?;
        return verify_token(key, token).map(Verified::Cluster);
    }
    jwks.verify(token, auth_servers).await.map(Verified::External).map_err(|e| AuthError::BadToken(e.to_string()))
}

/// The check in front of every authenticated API call: `Authorization: Bearer <token>`, verified, and for a
/// cluster token, issued to a client that is still registered (unregistering a client ends its tokens).
pub async fn authorize(state: &ApiState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let header = headers.get(axum::http::header::AUTHORIZATION).ok_or(ApiError::NoAuthorizationHeader)?;
    let header = header.to_str().map_err(|_| ApiError::Unauthorized("Malformed authorization header".into()))?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or_else(|| ApiError::Unauthorized("The authorization header must carry a Bearer token".into()))?
        .trim();
    let (key, auth_servers) = state.cluster.read(|s| {
        (s.signing_key().map(<[u8]>::to_vec), s.auth_servers().map(|server| server.url.clone()).collect::<Vec<_>>())
    });
    let verified = verify_bearer(key.as_deref(), &state.jwks, &auth_servers, token).await.map_err(|e| match e {
        AuthError::NoSigningKey => ApiError::NotReady("no signing key has been replicated to this node yet"),
        other => ApiError::Unauthorized(other.to_string()),
    })?;
    match verified {
        Verified::Cluster(claims) => {
            let registered = || state.cluster.read(|s| s.api_client(&claims.sub).is_some());
            if !registered() {
                // Registered a moment ago through another node (the token came from there): catch up first.
                state.cluster.read_barrier().await?;
                if !registered() {
                    return Err(ApiError::Unauthorized(AuthError::UnregisteredClient.to_string()));
                }
            }
            Ok(Principal::Client(claims.sub))
        }
        Verified::External(identity) => {
            state.jwks.retain_only(&auth_servers);
            Ok(Principal::External(identity))
        }
    }
}

#[cfg(test)]
mod bearer_tests {
    use super::*;
    use crate::jwks::testing::*;
    use crate::jwks::JwksSettings;

    #[tokio::test]
    async fn each_kind_of_token_is_verified_with_its_own_keys_only() {
        install_provider();
        let rsa = TestKey::rsa("r1");
        let server = JwksServer::start(vec![rsa.jwk.clone()]).await;
        let jwks = JwksCache::new(JwksSettings::default());
        let key = new_signing_key();
        let registered = vec![server.url.clone()];

        let cluster_token = issue_token(&key, "c1", now(), 60).unwrap();
        let verified = verify_bearer(Some(&key), &jwks, &registered, &cluster_token).await.unwrap();
        assert!(matches!(verified, Verified::Cluster(claims) if claims.sub == "c1"));
        assert_eq!(verify_bearer(None, &jwks, &registered, &cluster_token).await, Err(AuthError::NoSigningKey));

        let external = rsa.sign(&claims(AUDIENCE, now() + 300));
        let verified = verify_bearer(Some(&key), &jwks, &registered, &external).await.unwrap();
        assert!(matches!(verified, Verified::External(identity) if identity.auth_server == server.url));
        assert!(verify_bearer(Some(&key), &jwks, &[], &external).await.is_err(), "no server registered");

        // HS256 signed with the server's public key material: checked against the cluster key only, refused.
        let jsonwebtoken::jwk::AlgorithmParameters::RSA(params) = &rsa.jwk.algorithm else { panic!("RSA JWK") };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("r1".into());
        let forged = jsonwebtoken::encode(
            &header,
            &claims(AUDIENCE, now() + 300),
            &EncodingKey::from_secret(params.n.as_bytes()),
        )
        .unwrap();
        assert!(matches!(verify_bearer(Some(&key), &jwks, &registered, &forged).await, Err(AuthError::BadToken(_))));

        // A connection token (cluster-signed, other audience) is no API token either.
        let connection = issue_connection_token(&key, "alice", "s1", now(), 60).unwrap();
        assert!(verify_bearer(Some(&key), &jwks, &registered, &connection).await.is_err());
    }
}
