//! broker-actors: the actor tree that runs on the Raft leader only. A supervisor owns one actor per connected
//! agent (server), one per session being prepared, and the placement queue. Actors translate and do I/O;
//! decisions come from broker-core. The agent gateway accepts agents and redirects them to the leader.

pub mod deletion;
pub mod gateway;
pub mod placement;
pub mod readiness;
pub mod server;
pub mod session;
pub mod supervisor;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use broker_core::agent_proto::BrokerRequest;
use broker_raft::relay::{AgentRelay, RelayFuture};
use broker_raft::RelayError;
use ractor::ActorRef;
use server::ServerMsg;

pub use supervisor::{start_leader_actors, LeaderActors, SupervisorMsg};

#[derive(Clone, Debug)]
pub struct ActorConfig {
    /// How often agents heartbeat; an agent that misses several is cut off.
    pub heartbeat_interval: Duration,
    /// Creation attempts per session, the first included (`create-sessions-number-of-retries-on-failure` + 1).
    pub max_creation_attempts: u32,
    /// How long a session actor waits for its server's agent to (re)connect before it gives up for now.
    pub agent_wait: Duration,
    /// How long an agent may take to create a session.
    pub agent_call_timeout: Duration,
    /// Sessions planned per placement round (one Raft entry).
    pub placement_batch: usize,
    /// When agents are declared unreachable, and removed.
    pub liveness: broker_core::liveness::LivenessRules,
    /// Bounds of the queue of requests that asked to wait for a server.
    pub queue: broker_core::placement::QueueLimits,
}

impl Default for ActorConfig {
    fn default() -> Self {
        ActorConfig {
            heartbeat_interval: Duration::from_millis(250),
            max_creation_attempts: 3,
            agent_wait: Duration::from_secs(30),
            agent_call_timeout: Duration::from_secs(60),
            placement_batch: 1024,
            liveness: broker_core::liveness::LivenessRules {
                grace_ms: 5_000,
                remove_after_ms: 1_800_000,
                end_sessions_after_ms: None,
                keep_deleted_ms: 3_600_000,
            },
            queue: broker_core::placement::QueueLimits::default(),
        }
    }
}

/// Where the gateway finds the running supervisor; empty while this node is not the leader.
#[derive(Clone, Default)]
pub struct LeaderSlot(Arc<Mutex<Option<ActorRef<SupervisorMsg>>>>);

impl LeaderSlot {
    pub fn get(&self) -> Option<ActorRef<SupervisorMsg>> {
        self.0.lock().expect("leader slot").clone()
    }

    pub fn set(&self, supervisor: Option<ActorRef<SupervisorMsg>>) {
        *self.0.lock().expect("leader slot") = supervisor;
    }
}

/// The leader's side of `ClusterHandle::agent_call`: finds the agent's server actor through the supervisor.
pub struct LeaderRelay {
    slot: LeaderSlot,
    /// How long the agent may take to answer one relayed request.
    timeout: Duration,
}

impl LeaderRelay {
    pub fn new(slot: LeaderSlot, timeout: Duration) -> LeaderRelay {
        LeaderRelay { slot, timeout }
    }
}

impl AgentRelay for LeaderRelay {
    fn call(&self, server_id: String, request: BrokerRequest) -> RelayFuture {
        let supervisor = self.slot.get();
        let timeout = self.timeout;
        Box::pin(async move {
            // Actors not started yet (or stopping): the caller retries and finds the leader of the moment.
            let Some(supervisor) = supervisor else { return Err(RelayError::NotLeader) };
            let found =
                ractor::call!(supervisor, |reply| SupervisorMsg::FindServer { server_id: server_id.clone(), reply });
            let server = match found {
                Ok(Some(server)) => server,
                Ok(None) => return Err(RelayError::AgentNotConnected(server_id)),
                Err(_) => return Err(RelayError::NotLeader),
            };
            let answer = ractor::call_t!(
                server,
                |reply| ServerMsg::Relay { request: Box::new(request), reply },
                timeout.as_millis() as u64
            );
            match answer {
                Ok(Ok(reply)) => Ok(reply),
                Ok(Err(reason)) => Err(RelayError::Agent { server_id, reason }),
                Err(e) => Err(RelayError::Agent { server_id, reason: format!("no answer: {e}") }),
            }
        })
    }
}

pub(crate) fn now() -> broker_core::UnixMillis {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    broker_core::UnixMillis(since.as_millis() as i64)
}
