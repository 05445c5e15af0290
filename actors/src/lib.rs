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

use ractor::ActorRef;

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
            liveness: broker_core::liveness::LivenessRules { grace_ms: 5_000, remove_after_ms: 1_800_000 },
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

pub(crate) fn now() -> broker_core::UnixMillis {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    broker_core::UnixMillis(since.as_millis() as i64)
}
