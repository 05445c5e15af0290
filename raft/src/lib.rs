//! broker-raft: openraft over broker-core. The sled-backed log and snapshot store, the in-memory state machine,
//! the QUIC peer network, leader forwarding and read-index reads.

pub mod handle;
pub mod network;
pub mod peer;
pub mod relay;
pub mod server;
pub mod storage;
pub mod types;

pub use handle::{ClusterError, ClusterHandle, ClusterStatus};
pub use peer::PEER_ALPN;
pub use relay::{AgentRelay, RelayError};
pub use storage::{open_storage, LogStore, StateMachineStore, StateReader, StorageOpenError};
pub use types::{BerthNode, Raft, TypeConfig};
