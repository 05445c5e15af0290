//! openraft's network over QUIC: one cached connection per peer, one stream per RPC, every RPC under a timeout.

use std::time::Duration;

use broker_core::NodeId;
use broker_transport::{call, ConnectionPool, FrameError};
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};

use crate::peer::{PeerRequest, PeerResponse};
use crate::types::{BerthNode, TypeConfig};

#[derive(Clone)]
pub struct PeerNetworkFactory {
    pool: ConnectionPool,
}

impl PeerNetworkFactory {
    pub fn new(pool: ConnectionPool) -> Self {
        PeerNetworkFactory { pool }
    }
}

impl RaftNetworkFactory<TypeConfig> for PeerNetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BerthNode) -> PeerClient {
        PeerClient { target, address: node.peer_address.clone(), pool: self.pool.clone() }
    }
}

pub struct PeerClient {
    target: NodeId,
    address: String,
    pool: ConnectionPool,
}

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, BerthNode, RaftError<NodeId, E>>;

impl PeerClient {
    /// Sends one request. A peer that cannot be reached is `Unreachable`, so openraft backs off; a slow answer
    /// is a plain network error, retried at once, because openraft times AppendEntries out after one
    /// heartbeat interval and a single slow fsync must not pause replication for a whole backoff. Either way
    /// the connection is dialled afresh: a peer that restarted never answers on its old connection, and
    /// without heartbeats it would campaign and depose a healthy leader.
    async fn send<E: std::error::Error>(
        &self,
        request: PeerRequest,
        timeout: Duration,
    ) -> Result<PeerResponse, RPCError<NodeId, BerthNode, RaftError<NodeId, E>>> {
        let connection = self.pool.get(&self.address).await.map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        call(&connection, &request, timeout).await.map_err(|e| {
            self.pool.invalidate(&self.address);
            match e {
                FrameError::Timeout(_) => RPCError::Network(NetworkError::new(&e)),
                _ => RPCError::Unreachable(Unreachable::new(&e)),
            }
        })
    }

    fn unexpected<E: std::error::Error>(&self) -> RPCError<NodeId, BerthNode, RaftError<NodeId, E>> {
        let err = std::io::Error::other(format!("peer {} answered with the wrong message type", self.target));
        RPCError::Network(NetworkError::new(&err))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        match self.send(PeerRequest::AppendEntries(rpc), option.hard_ttl()).await? {
            PeerResponse::AppendEntries(result) => {
                result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(self.unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        match self.send(PeerRequest::InstallSnapshot(rpc), option.hard_ttl()).await? {
            PeerResponse::InstallSnapshot(result) => {
                result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(self.unexpected()),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, option: RPCOption) -> Result<VoteResponse<NodeId>, RpcErr> {
        match self.send(PeerRequest::Vote(rpc), option.hard_ttl()).await? {
            PeerResponse::Vote(result) => result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            _ => Err(self.unexpected()),
        }
    }

    fn backoff(&self) -> openraft::network::Backoff {
        // A down peer is retried quickly enough that a restarted node rejoins within a heartbeat or two.
        openraft::network::Backoff::new(std::iter::repeat(Duration::from_millis(100)))
    }
}
