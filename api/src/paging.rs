//! Pagination: MaxResults bounds and NextToken, an opaque token that names the last key returned and carries a
//! MAC under the cluster key, so a forged token is refused.

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::ApiError;

pub const MAX_RESULTS: i64 = 1000;

pub fn page_size(max_results: Option<i64>) -> Result<usize, ApiError> {
    match max_results {
        None => Ok(MAX_RESULTS as usize),
        Some(n) if (1..=MAX_RESULTS).contains(&n) => Ok(n as usize),
        Some(n) => Err(ApiError::BadRequest(format!("MaxResults must be between 1 and {MAX_RESULTS}, got {n}"))),
    }
}

/// How long a NextToken stays valid: a walk that pauses longer starts again rather than resuming from a
/// position the client can no longer reason about.
pub const TOKEN_TTL_SECS: u64 = 3600;

fn mac(key: &[u8], scope: &str, issued_secs: u64, last_key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(key);
    hasher.update(scope.as_bytes());
    hasher.update([0]);
    hasher.update(issued_secs.to_be_bytes());
    hasher.update(last_key.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&hasher.finalize()[..16])
}

fn now_secs() -> u64 {
    (crate::now().0 / 1000).max(0) as u64
}

pub fn make_token(key: &[u8], scope: &str, last_key: &str) -> String {
    make_token_at(key, scope, last_key, now_secs())
}

fn make_token_at(key: &[u8], scope: &str, last_key: &str, issued_secs: u64) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!("{}.{issued_secs}.{}", b64.encode(last_key), mac(key, scope, issued_secs, last_key))
}

/// The last key of the previous page, or a 400 for a token this cluster did not issue for this operation, or
/// issued more than `TOKEN_TTL_SECS` ago.
pub fn read_token(key: &[u8], scope: &str, token: &str) -> Result<String, ApiError> {
    read_token_at(key, scope, token, now_secs())
}

fn read_token_at(key: &[u8], scope: &str, token: &str, now_secs: u64) -> Result<String, ApiError> {
    let invalid = || ApiError::BadRequest("Invalid NextToken".to_owned());
    let mut parts = token.split('.');
    let (Some(encoded), Some(issued), Some(tag), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let issued_secs: u64 = issued.parse().map_err(|_| invalid())?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded).map_err(|_| invalid())?;
    let last_key = String::from_utf8(bytes).map_err(|_| invalid())?;
    if mac(key, scope, issued_secs, &last_key) != tag {
        return Err(invalid());
    }
    if now_secs.saturating_sub(issued_secs) > TOKEN_TTL_SECS {
        return Err(ApiError::BadRequest(format!(
            "Expired NextToken: it was issued more than {TOKEN_TTL_SECS} seconds ago; start the listing again"
        )));
    }
    Ok(last_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_forgery() {
        let token = make_token(b"k", "sessions", "abc");
        assert_eq!(read_token(b"k", "sessions", &token).unwrap(), "abc");
        assert!(read_token(b"other", "sessions", &token).is_err());
        assert!(read_token(b"k", "servers", &token).is_err());
        let forged = format!("{}.1.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("zzz"), "AAAA");
        assert!(read_token(b"k", "sessions", &forged).is_err());
        assert!(read_token(b"k", "sessions", "garbage").is_err());
        // Moving the issue time forward to dodge expiry breaks the MAC.
        let old = make_token_at(b"k", "sessions", "abc", 1_000);
        let bumped = old.replacen(".1000.", ".999999999.", 1);
        assert!(read_token_at(b"k", "sessions", &bumped, 1_000).is_err());
    }

    #[test]
    fn stale_tokens_are_refused() {
        let token = make_token_at(b"k", "sessions", "abc", 1_000);
        assert_eq!(read_token_at(b"k", "sessions", &token, 1_000 + TOKEN_TTL_SECS).unwrap(), "abc");
        let err = read_token_at(b"k", "sessions", &token, 1_001 + TOKEN_TTL_SECS).unwrap_err();
        assert!(matches!(&err, ApiError::BadRequest(m) if m.starts_with("Expired NextToken")), "{err}");
    }

    #[test]
    fn max_results_bounds() {
        assert_eq!(page_size(None).unwrap(), 1000);
        assert_eq!(page_size(Some(1)).unwrap(), 1);
        assert!(page_size(Some(0)).is_err());
        assert!(page_size(Some(1001)).is_err());
    }
}
