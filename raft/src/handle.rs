//! `ClusterHandle`: what the rest of the node sees of Raft. Writes from any node (forwarded to the leader,
//! retried through elections until a deadline), linearizable read barriers, local reads and status.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use broker_core::{ClusterState, Command, NodeId, Response};
use broker_transport::{call, ConnectionPool};
use openraft::error::{ClientWriteError, RaftError};
use openraft::ServerState;
use tokio::time::Instant;

use crate::peer::{ForwardError, PeerRequest, PeerResponse};
use crate::relay::{AgentRelay, RelayError};
use crate::types::{BerthNode, Raft};
use broker_core::agent_proto::{AgentReply, BrokerRequest};

/// Why a write or a linearizable read could not be served. Every variant but `Fatal` means "try again".
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    #[error("no leader could serve the request within {0:?} (election in progress or no quorum)")]
    Unavailable(Duration),
    #[error("raft stopped on this node: {0}")]
    Fatal(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterStatus {
    pub node_id: NodeId,
    pub leader_id: Option<NodeId>,
    pub term: u64,
    pub applied_index: u64,
    pub last_log_index: u64,
    /// The last log index covered by this node's current snapshot (built or installed).
    pub snapshot_index: u64,
    /// Log entries up to here are gone from this node's log.
    pub purged_index: u64,
    pub state: String,
    pub members: BTreeMap<NodeId, BerthNode>,
}

#[derive(Clone)]
pub struct ClusterHandle {
    raft: Raft,
    node_id: NodeId,
    peers: ConnectionPool,
    state: Arc<RwLock<ClusterState>>,
    deadline: Duration,
    /// Installed once by the node: how this node, when leader, reaches its agents.
    relay: Arc<OnceLock<Arc<dyn AgentRelay>>>,
}

/// The pause between two attempts while a leader is being elected.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

impl ClusterHandle {
    pub fn new(
        raft: Raft,
        node_id: NodeId,
        peers: ConnectionPool,
        state: Arc<RwLock<ClusterState>>,
        deadline: Duration,
    ) -> Self {
        ClusterHandle { raft, node_id, peers, state, deadline, relay: Arc::default() }
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Proposes `command` through the leader, wherever it is, and returns apply's response.
    pub async fn write(&self, command: Command) -> Result<Response, ClusterError> {
        let deadline = Instant::now() + self.deadline;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(ClusterError::Unavailable(self.deadline));
            }
            match self.try_write(&command, remaining).await {
                Ok(response) => return Ok(response),
                Err(Attempt::Fatal(reason)) => return Err(ClusterError::Fatal(reason)),
                Err(Attempt::Retry) => tokio::time::sleep(RETRY_PAUSE.min(remaining)).await,
            }
        }
    }

    async fn try_write(&self, command: &Command, remaining: Duration) -> Result<Response, Attempt> {
        let local = tokio::time::timeout(remaining, self.raft.client_write(command.clone())).await;
        let forward = match local {
            Ok(Ok(written)) => return Ok(written.data),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward)))) => forward,
            Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
                return Err(Attempt::Fatal(e.to_string()))
            }
            Ok(Err(RaftError::Fatal(fatal))) => return Err(Attempt::Fatal(fatal.to_string())),
            Err(_elapsed) => return Err(Attempt::Retry),
        };
        let (Some(leader), Some(node)) = (forward.leader_id, forward.leader_node) else {
            return Err(Attempt::Retry);
        };
        if leader == self.node_id {
            return Err(Attempt::Retry);
        }
        match self.ask_leader(leader, &node, PeerRequest::ClientWrite(command.clone()), remaining).await? {
            PeerResponse::ClientWrite(Ok((_index, response))) => Ok(response),
            PeerResponse::ClientWrite(Err(ForwardError::Fatal(reason))) => Err(Attempt::Fatal(reason)),
            _ => Err(Attempt::Retry),
        }
    }

    /// Sends `request` to the leader, abandoning it as soon as this node sees another leader (or none): a
    /// leader that died never answers, and waiting for the QUIC idle timeout would stretch every failover.
    async fn ask_leader(
        &self,
        leader_id: NodeId,
        leader: &BerthNode,
        request: PeerRequest,
        timeout: Duration,
    ) -> Result<PeerResponse, Attempt> {
        let exchange = async {
            let connection = self.peers.get(&leader.peer_address).await.map_err(|_| Attempt::Retry)?;
            call(&connection, &request, timeout).await.map_err(|e| {
                tracing::debug!(leader = %leader.peer_address, error = %e, "forwarding to the leader failed");
                self.peers.invalidate(&leader.peer_address);
                Attempt::Retry
            })
        };
        tokio::select! {
            answer = exchange => answer,
            () = self.leader_moves_from(leader_id) => {
                self.peers.invalidate(&leader.peer_address);
                Err(Attempt::Retry)
            }
        }
    }

    /// Installs how the leader's actors reach agents; later calls are ignored (one node, one actor tree slot).
    pub fn set_agent_relay(&self, relay: Arc<dyn AgentRelay>) {
        let _ = self.relay.set(relay);
    }

    /// Sends `request` to the agent of `server_id` through whichever node leads, retrying through elections
    /// until the deadline. Agent failures are final: the request may have had an effect, so it is not resent.
    pub async fn agent_call(&self, server_id: &str, request: BrokerRequest) -> Result<AgentReply, RelayError> {
        let deadline = Instant::now() + self.deadline;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(RelayError::Unavailable(self.deadline.as_millis() as u64));
            }
            let attempt = if self.is_leader() {
                self.leader_agent_call(server_id.to_owned(), request.clone()).await
            } else {
                match self.leader() {
                    Some((leader, node)) if leader != self.node_id => {
                        let ask = PeerRequest::AgentCall { server_id: server_id.to_owned(), request: request.clone() };
                        match self.ask_leader(leader, &node, ask, remaining).await {
                            Ok(PeerResponse::AgentCall(answer)) => answer,
                            _ => Err(RelayError::NotLeader),
                        }
                    }
                    _ => Err(RelayError::NotLeader),
                }
            };
            match attempt {
                Err(RelayError::NotLeader) => tokio::time::sleep(RETRY_PAUSE.min(remaining)).await,
                other => return other,
            }
        }
    }

    /// On the leader: hands the request to the local actor tree. `NotLeader` elsewhere.
    pub(crate) async fn leader_agent_call(
        &self,
        server_id: String,
        request: BrokerRequest,
    ) -> Result<AgentReply, RelayError> {
        match self.relay.get() {
            Some(relay) if self.is_leader() => relay.call(server_id, request).await,
            _ => Err(RelayError::NotLeader),
        }
    }

    /// Resolves once this node no longer believes `leader_id` leads.
    async fn leader_moves_from(&self, leader_id: NodeId) {
        let mut metrics = self.raft.metrics();
        loop {
            if metrics.borrow_and_update().current_leader != Some(leader_id) {
                return;
            }
            if metrics.changed().await.is_err() {
                return;
            }
        }
    }

    /// Waits until this node has applied everything committed before the call (ReadIndex through the
    /// leader), so a read that follows sees every write acknowledged before it started.
    pub async fn read_barrier(&self) -> Result<(), ClusterError> {
        let deadline = Instant::now() + self.deadline;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(ClusterError::Unavailable(self.deadline));
            }
            match self.read_index(remaining).await {
                Ok(index) => {
                    let waited = self
                        .raft
                        .wait(Some(deadline.saturating_duration_since(Instant::now())))
                        .applied_index_at_least(Some(index), "read barrier")
                        .await;
                    return waited.map(|_| ()).map_err(|_| ClusterError::Unavailable(self.deadline));
                }
                Err(Attempt::Fatal(reason)) => return Err(ClusterError::Fatal(reason)),
                Err(Attempt::Retry) => tokio::time::sleep(RETRY_PAUSE.min(remaining)).await,
            }
        }
    }

    async fn read_index(&self, remaining: Duration) -> Result<u64, Attempt> {
        if let Some(index) = self.leader_read_index(remaining).await? {
            return Ok(index);
        }
        let Some((leader, node)) = self.leader() else { return Err(Attempt::Retry) };
        if leader == self.node_id {
            return Err(Attempt::Retry);
        }
        match self.ask_leader(leader, &node, PeerRequest::ReadIndex, remaining).await? {
            PeerResponse::ReadIndex(Ok(index)) => Ok(index),
            PeerResponse::ReadIndex(Err(ForwardError::Fatal(reason))) => Err(Attempt::Fatal(reason)),
            _ => Err(Attempt::Retry),
        }
    }

    /// On the leader: the read point after a round of heartbeats confirmed leadership. `None` elsewhere.
    pub(crate) async fn leader_read_index(&self, remaining: Duration) -> Result<Option<u64>, Attempt> {
        if !self.is_leader() {
            return Ok(None);
        }
        match tokio::time::timeout(remaining, self.raft.get_read_log_id()).await {
            Ok(Ok((read_log_id, _applied))) => Ok(Some(read_log_id.map(|id| id.index).unwrap_or(0))),
            Ok(Err(RaftError::APIError(_))) => Ok(None),
            Ok(Err(RaftError::Fatal(fatal))) => Err(Attempt::Fatal(fatal.to_string())),
            Err(_) => Err(Attempt::Retry),
        }
    }

    /// Reads this node's state as it is now (callers that need linearizability call `read_barrier` first).
    pub fn read<R>(&self, f: impl FnOnce(&ClusterState) -> R) -> R {
        f(&self.state.read().expect("state lock"))
    }

    pub fn is_leader(&self) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        metrics.state == ServerState::Leader && metrics.current_leader == Some(self.node_id)
    }

    pub fn leader(&self) -> Option<(NodeId, BerthNode)> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let leader = metrics.current_leader?;
        let node = metrics.membership_config.membership().get_node(&leader)?.clone();
        Some((leader, node))
    }

    pub fn status(&self) -> ClusterStatus {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        ClusterStatus {
            node_id: self.node_id,
            leader_id: metrics.current_leader,
            term: metrics.current_term,
            applied_index: metrics.last_applied.map(|id| id.index).unwrap_or(0),
            last_log_index: metrics.last_log_index.unwrap_or(0),
            snapshot_index: metrics.snapshot.map(|id| id.index).unwrap_or(0),
            purged_index: metrics.purged.map(|id| id.index).unwrap_or(0),
            state: format!("{:?}", metrics.state),
            members: metrics.membership_config.membership().nodes().map(|(id, node)| (*id, node.clone())).collect(),
        }
    }
}

pub(crate) enum Attempt {
    Retry,
    Fatal(String),
}
