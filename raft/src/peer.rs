//! The peer protocol between broker nodes: Raft RPCs, writes forwarded to the leader, and read-index requests.
//! One QUIC stream per request, bincode on the wire.

use broker_core::agent_proto::{AgentReply, BrokerRequest};
use broker_core::{ApiClient, AuthServer, Command, NodeId, Response};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::{Deserialize, Serialize};

use crate::relay::RelayError;
use crate::types::TypeConfig;

pub const PEER_ALPN: &[u8] = b"berth-peer/1";

#[derive(Debug, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)] // built, sent and dropped at once; never stored
pub enum PeerRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A follower forwards a client command to the leader (one hop, no re-authentication).
    ClientWrite(Command),
    /// A follower asks the leader for a linearizable read point.
    ReadIndex,
    /// A request for the agent of `server_id`, which only the leader can reach.
    AgentCall {
        server_id: String,
        request: BrokerRequest,
    },
    /// `berth admin` reads the replicated state (linearizable: the node answering waits for a read barrier).
    AdminRead(AdminQuery),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminQuery {
    ApiClients,
    AuthServers,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AdminAnswer {
    ApiClients(Vec<ApiClient>),
    AuthServers(Vec<AuthServer>),
}

/// Why the leader could not serve a forwarded request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ForwardError {
    #[error("node is not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("raft stopped: {0}")]
    Fatal(String),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum PeerResponse {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    ClientWrite(Result<(u64, Response), ForwardError>),
    ReadIndex(Result<u64, ForwardError>),
    AgentCall(Result<AgentReply, RelayError>),
    AdminRead(Result<AdminAnswer, ForwardError>),
}
