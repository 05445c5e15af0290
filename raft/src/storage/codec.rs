//! The one binary encoding of everything the storage layer writes: bincode 2 through serde.

use bincode::config;
use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("cannot encode: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    #[error("cannot decode: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    /// A value that decodes from a prefix only was written by something else (or is damaged).
    #[error("decoded {read} of {len} bytes; the rest is not part of the value")]
    TrailingBytes { read: usize, len: usize },
}

pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    Ok(bincode::serde::encode_to_vec(value, config::standard())?)
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, config::standard())?;
    if read != bytes.len() {
        return Err(CodecError::TrailingBytes { read, len: bytes.len() });
    }
    Ok(value)
}
