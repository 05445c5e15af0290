//! QUIC endpoints (quinn) with the keep-alive, idle timeout and stream limits Berth needs, and a pool that
//! caches one connection per remote address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{ClientConfig, Connection, Endpoint, ServerConfig, TransportConfig};

/// How long a silent peer is tolerated before its connection is declared dead. Keep-alives go out every
/// `KEEP_ALIVE`, so only a crashed or cut-off peer reaches it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(3);
pub const KEEP_ALIVE: Duration = Duration::from_millis(500);
/// Raised from quinn's 100 so that bursts of forwarded writes never block in `open_bi`.
pub const MAX_CONCURRENT_STREAMS: u32 = 4096;
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("cannot bind QUIC endpoint on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("TLS configuration is not usable for QUIC: {0}")]
    Crypto(String),
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    #[error("connecting to {addr} timed out after {timeout:?}")]
    ConnectTimeout { addr: SocketAddr, timeout: Duration },
    #[error("cannot resolve {0}")]
    Resolve(String),
}

pub fn transport_config() -> Arc<TransportConfig> {
    let mut transport = TransportConfig::default();
    transport.keep_alive_interval(Some(KEEP_ALIVE));
    transport.max_idle_timeout(Some(IDLE_TIMEOUT.try_into().expect("idle timeout fits")));
    transport.max_concurrent_bidi_streams(MAX_CONCURRENT_STREAMS.into());
    transport.max_concurrent_uni_streams(0u32.into());
    Arc::new(transport)
}

pub fn quic_client_config(tls: rustls::ClientConfig) -> Result<ClientConfig, EndpointError> {
    let crypto = QuicClientConfig::try_from(tls).map_err(|e| EndpointError::Crypto(e.to_string()))?;
    let mut config = ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport_config());
    Ok(config)
}

/// An endpoint that serves on `bind` and, when `client` is given, also dials with it (one endpoint per node).
pub fn server_endpoint(
    bind: SocketAddr,
    server: rustls::ServerConfig,
    client: Option<rustls::ClientConfig>,
) -> Result<Endpoint, EndpointError> {
    let crypto = QuicServerConfig::try_from(server).map_err(|e| EndpointError::Crypto(e.to_string()))?;
    let mut config = ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport_config());
    let socket = std::net::UdpSocket::bind(bind).map_err(|source| EndpointError::Bind { addr: bind, source })?;
    server_endpoint_on(socket, config, client)
}

/// Like `server_endpoint`, on a socket the caller already bound (so tests and `berth dev` pick ports first).
pub fn server_endpoint_on(
    socket: std::net::UdpSocket,
    config: ServerConfig,
    client: Option<rustls::ClientConfig>,
) -> Result<Endpoint, EndpointError> {
    let addr = socket.local_addr().map_err(|source| EndpointError::Resolve(source.to_string()))?;
    enlarge_socket_buffers(&socket);
    let runtime = quinn::default_runtime().ok_or_else(|| EndpointError::Crypto("no async runtime".into()))?;
    let mut endpoint = Endpoint::new(quinn::EndpointConfig::default(), Some(config), socket, runtime)
        .map_err(|source| EndpointError::Bind { addr, source })?;
    if let Some(client) = client {
        endpoint.set_default_client_config(quic_client_config(client)?);
    }
    Ok(endpoint)
}

/// What a listening endpoint asks of the kernel for its UDP buffers. One broker socket carries every agent's
/// link (heartbeats from a thousand agents arrive in bursts); at Linux's default of about 208 KiB the kernel
/// drops datagrams under load, QUIC takes them for loss, and agents lose their links.
pub const SOCKET_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// Best effort: the kernel caps the request at `net.core.rmem_max` / `wmem_max`, and a smaller buffer still
/// works, so the outcome is logged rather than an error.
fn enlarge_socket_buffers(socket: &std::net::UdpSocket) {
    let socket = socket2::SockRef::from(socket);
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    let (recv, send) = (socket.recv_buffer_size().unwrap_or(0), socket.send_buffer_size().unwrap_or(0));
    if recv < SOCKET_BUFFER_BYTES {
        tracing::info!(
            recv,
            send,
            wanted = SOCKET_BUFFER_BYTES,
            "UDP buffers smaller than asked (raise net.core.rmem_max)"
        );
    } else {
        tracing::debug!(recv, send, "UDP buffers");
    }
}

/// A dial-only endpoint on an ephemeral port.
pub fn client_endpoint(client: rustls::ClientConfig) -> Result<Endpoint, EndpointError> {
    let bind: SocketAddr = "0.0.0.0:0".parse().expect("valid");
    let mut endpoint = Endpoint::client(bind).map_err(|source| EndpointError::Bind { addr: bind, source })?;
    endpoint.set_default_client_config(quic_client_config(client)?);
    Ok(endpoint)
}

/// Splits "host:port" into the TLS server name and a socket address.
pub fn resolve(address: &str) -> Result<(String, SocketAddr), EndpointError> {
    use std::net::ToSocketAddrs;
    let host = address.rsplit_once(':').map(|(h, _)| h).unwrap_or(address);
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let addr = address
        .to_socket_addrs()
        .map_err(|e| EndpointError::Resolve(format!("{address}: {e}")))?
        .find(|a| a.is_ipv4())
        .or_else(|| address.to_socket_addrs().ok().and_then(|mut it| it.next()))
        .ok_or_else(|| EndpointError::Resolve(address.to_owned()))?;
    Ok((host, addr))
}

/// Dials `address` ("host:port") and waits for the handshake, within `CONNECT_TIMEOUT`.
pub async fn connect(endpoint: &Endpoint, address: &str) -> Result<Connection, EndpointError> {
    let (server_name, addr) = resolve(address)?;
    let connecting =
        endpoint.connect(addr, &server_name).map_err(|e| EndpointError::Connect { addr, reason: e.to_string() })?;
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(e)) => Err(EndpointError::Connect { addr, reason: e.to_string() }),
        Err(_) => Err(EndpointError::ConnectTimeout { addr, timeout: CONNECT_TIMEOUT }),
    }
}

/// One cached connection per remote address; a closed one is replaced on the next use.
#[derive(Clone)]
pub struct ConnectionPool {
    endpoint: Endpoint,
    connections: Arc<Mutex<HashMap<String, Connection>>>,
}

impl ConnectionPool {
    pub fn new(endpoint: Endpoint) -> Self {
        ConnectionPool { endpoint, connections: Arc::default() }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub async fn get(&self, address: &str) -> Result<Connection, EndpointError> {
        if let Some(existing) = self.connections.lock().expect("pool lock").get(address) {
            if existing.close_reason().is_none() {
                return Ok(existing.clone());
            }
        }
        let connection = connect(&self.endpoint, address).await?;
        self.connections.lock().expect("pool lock").insert(address.to_owned(), connection.clone());
        Ok(connection)
    }

    /// Forgets a connection after an RPC on it failed, so that the next call dials again.
    pub fn invalidate(&self, address: &str) {
        self.connections.lock().expect("pool lock").remove(address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_sockets_get_the_largest_buffers_the_kernel_allows() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        enlarge_socket_buffers(&socket);
        let cap = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|text| text.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let recv = socket2::SockRef::from(&socket).recv_buffer_size().unwrap();
        // Linux reports twice what was granted (bookkeeping overhead included).
        assert!(recv >= SOCKET_BUFFER_BYTES.min(cap), "receive buffer {recv}, kernel cap {cap}");
    }
}
