//! Framing: bincode values on QUIC streams. Long-lived streams carry u32-length-prefixed frames; an RPC is one
//! stream carrying one request and one response, each ended by finishing the stream.

use std::time::Duration;

use quinn::{Connection, RecvStream, SendStream};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The largest frame or RPC body accepted (snapshot chunks are a few MiB).
pub const MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("connection lost: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("write failed: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("stream closed: {0}")]
    Closed(#[from] quinn::ClosedStream),
    #[error("read failed: {0}")]
    Read(String),
    #[error("frame of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("cannot encode: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    #[error("cannot decode: {0}")]
    Decode(#[from] bincode::error::DecodeError),
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, FrameError> {
    Ok(bincode::serde::encode_to_vec(value, config())?)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FrameError> {
    Ok(bincode::serde::decode_from_slice(bytes, config())?.0)
}

/// Writes one length-prefixed frame.
pub async fn write_message<T: Serialize>(send: &mut SendStream, value: &T) -> Result<(), FrameError> {
    let body = encode(value)?;
    if body.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(body.len()));
    }
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(&body);
    send.write_all(&buf).await?;
    Ok(())
}

/// Reads one length-prefixed frame; `Ok(None)` when the peer finished the stream cleanly.
pub async fn read_message<T: DeserializeOwned>(recv: &mut RecvStream) -> Result<Option<T>, FrameError> {
    let mut len = [0u8; 4];
    match recv.read_exact(&mut len).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(FrameError::Read(e.to_string())),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await.map_err(|e| FrameError::Read(e.to_string()))?;
    decode(&body).map(Some)
}

/// Sends `request` on a new stream of `connection` and waits for the response, all within `timeout`.
pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
    connection: &Connection,
    request: &Req,
    timeout: Duration,
) -> Result<Resp, FrameError> {
    let body = encode(request)?;
    let exchange = async {
        let (mut send, mut recv) = connection.open_bi().await?;
        send.write_all(&body).await?;
        send.finish()?;
        let bytes = recv.read_to_end(MAX_FRAME_BYTES).await.map_err(|e| FrameError::Read(e.to_string()))?;
        decode(&bytes)
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| FrameError::Timeout(timeout))?
}

/// Server side of `call`: reads the whole request of an accepted stream.
pub async fn read_request<T: DeserializeOwned>(recv: &mut RecvStream) -> Result<T, FrameError> {
    let bytes = recv.read_to_end(MAX_FRAME_BYTES).await.map_err(|e| FrameError::Read(e.to_string()))?;
    decode(&bytes)
}

/// Server side of `call`: writes the response and finishes the stream.
pub async fn write_response<T: Serialize>(send: &mut SendStream, value: &T) -> Result<(), FrameError> {
    send.write_all(&encode(value)?).await?;
    send.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{client_config_trusting, ClusterCa};

    #[tokio::test]
    async fn rpc_and_frames_cross_a_real_quic_connection() {
        crate::install_crypto_provider();
        let ca = ClusterCa::generate().unwrap();
        let material = ca.issue("n1", &["localhost".into(), "127.0.0.1".into()]).unwrap();
        let server = crate::server_endpoint(
            "127.0.0.1:0".parse().unwrap(),
            material.mtls_server_config(b"t").unwrap(),
            Some(material.mtls_client_config(b"t").unwrap()),
        )
        .unwrap();
        let addr = server.local_addr().unwrap();
        tokio::spawn(async move {
            while let Some(incoming) = server.accept().await {
                tokio::spawn(async move {
                    let Ok(conn) = incoming.await else { return };
                    // first stream: RPC; second: framed stream doubling numbers
                    let (mut send, mut recv) = conn.accept_bi().await.unwrap();
                    let req: String = read_request(&mut recv).await.unwrap();
                    write_response(&mut send, &format!("echo {req}")).await.unwrap();
                    let (mut send, mut recv) = conn.accept_bi().await.unwrap();
                    while let Some(n) = read_message::<u64>(&mut recv).await.unwrap() {
                        write_message(&mut send, &(n * 2)).await.unwrap();
                    }
                    send.finish().unwrap();
                    conn.closed().await;
                });
            }
        });
        let client = crate::server_endpoint(
            "127.0.0.1:0".parse().unwrap(),
            material.mtls_server_config(b"t").unwrap(),
            Some(material.mtls_client_config(b"t").unwrap()),
        )
        .unwrap();
        let pool = crate::ConnectionPool::new(client);
        let conn = pool.get(&format!("127.0.0.1:{}", addr.port())).await.unwrap();
        let answer: String = call(&conn, &"hi".to_string(), Duration::from_secs(5)).await.unwrap();
        assert_eq!(answer, "echo hi");
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        for n in 1..=3u64 {
            write_message(&mut send, &n).await.unwrap();
            assert_eq!(read_message::<u64>(&mut recv).await.unwrap(), Some(n * 2));
        }
        send.finish().unwrap();
        assert_eq!(read_message::<u64>(&mut recv).await.unwrap(), None);

        // A client without a certificate from the cluster CA is refused by the mTLS server.
        let tls = client_config_trusting(&material.ca_pem, b"t").unwrap();
        let stranger = crate::client_endpoint(tls).unwrap();
        let result = async {
            let conn = crate::quic::connect(&stranger, &format!("127.0.0.1:{}", addr.port())).await?;
            call::<String, String>(&conn, &"x".to_string(), Duration::from_secs(2))
                .await
                .map_err(|e| crate::EndpointError::Resolve(e.to_string()))
        }
        .await;
        let err = result.expect_err("a client without a cluster certificate must be refused");
        assert!(!err.to_string().contains("timed out"), "refused by TLS, not by a timeout: {err}");
    }
}
