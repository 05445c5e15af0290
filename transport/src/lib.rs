//! broker-transport: QUIC endpoints with TLS from a cluster CA, bincode framing, and RPC with timeouts.

pub mod frame;
pub mod quic;
pub mod tls;

pub use frame::{call, read_message, read_request, write_message, write_response, FrameError};
pub use quic::{client_endpoint, server_endpoint, ConnectionPool, EndpointError};
pub use tls::{TlsError, TlsFiles, TlsMaterial};

/// Installs the one rustls crypto provider (ring) for the process. Every `main` and test harness calls it;
/// calling it twice is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
