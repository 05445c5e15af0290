//! The openraft type configuration: commands from broker-core are the log payload.

use std::fmt;
use std::io::Cursor;

use broker_core::{Command, NodeId, Response};
use serde::{Deserialize, Serialize};

/// What the membership knows about a broker node: where its peers, clients and agents reach it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BerthNode {
    /// host:port of the QUIC peer listener (Raft and forwarding).
    pub peer_address: String,
    /// The HTTPS base URL of the REST API.
    pub api_url: String,
    /// host:port of the QUIC agent listener.
    pub agent_address: String,
}

impl fmt::Display for BerthNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{peer {}, api {}, agent {}}}", self.peer_address, self.api_url, self.agent_address)
    }
}

openraft::declare_raft_types!(
    pub TypeConfig:
        D = Command,
        R = Response,
        NodeId = NodeId,
        Node = BerthNode,
        SnapshotData = Cursor<Vec<u8>>,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
