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

fn mac(key: &[u8], scope: &str, last_key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(key);
    hasher.update(scope.as_bytes());
    hasher.update([0]);
    hasher.update(last_key.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&hasher.finalize()[..16])
}

pub fn make_token(key: &[u8], scope: &str, last_key: &str) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!("{}.{}", b64.encode(last_key), mac(key, scope, last_key))
}

/// The last key of the previous page, or a 400 for a token this cluster did not issue for this operation.
pub fn read_token(key: &[u8], scope: &str, token: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::BadRequest("Invalid NextToken".to_owned());
    let (encoded, tag) = token.split_once('.').ok_or_else(invalid)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded).map_err(|_| invalid())?;
    let last_key = String::from_utf8(bytes).map_err(|_| invalid())?;
    if mac(key, scope, &last_key) != tag {
        return Err(invalid());
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
        let forged = format!("{}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("zzz"), "AAAA");
        assert!(read_token(b"k", "sessions", &forged).is_err());
        assert!(read_token(b"k", "sessions", "garbage").is_err());
    }

    #[test]
    fn max_results_bounds() {
        assert_eq!(page_size(None).unwrap(), 1000);
        assert_eq!(page_size(Some(1)).unwrap(), 1);
        assert!(page_size(Some(0)).is_err());
        assert!(page_size(Some(1001)).is_err());
    }
}
