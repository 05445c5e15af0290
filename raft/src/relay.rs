//! Requests for an agent, relayed to the leader that holds its link (follower, leader, server actor, agent).
//! The raft crate only carries them; the leader's actors answer through the `AgentRelay` the node installs.

use std::future::Future;
use std::pin::Pin;

use broker_core::agent_proto::{AgentReply, BrokerRequest};
use serde::{Deserialize, Serialize};

pub type RelayFuture = Pin<Box<dyn Future<Output = Result<AgentReply, RelayError>> + Send>>;

/// What the leader's actor tree offers: one request to the agent of `server_id`, answered by that agent.
pub trait AgentRelay: Send + Sync + 'static {
    fn call(&self, server_id: String, request: BrokerRequest) -> RelayFuture;
}

/// Why a request did not reach an agent, or the agent did not answer it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RelayError {
    /// The node asked is not the leader (any more); the caller retries with the leader it sees next.
    #[error("node is not the leader")]
    NotLeader,
    #[error("no leader could relay the request within {0} ms (election in progress or no quorum)")]
    Unavailable(u64),
    #[error("the agent of server {0} is not connected to the leader")]
    AgentNotConnected(String),
    #[error("the agent of server {server_id} did not answer: {reason}")]
    Agent { server_id: String, reason: String },
}
