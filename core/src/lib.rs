//! broker-core: Berth's pure domain. Replicated commands, `ClusterState::apply`, placement and the agent
//! wire messages. No I/O, no async, no clock, no randomness: callers stamp ids and times into commands.

pub mod agent_proto;
pub mod command;
mod golden;
pub mod liveness;
pub mod model;
pub mod placement;
pub mod query;
pub mod requirements;
pub mod state;
pub mod validation;

pub use command::{
    Command, DeleteError, Deletion, NewSession, OpenChange, Placement, Rejection, Response, ServerChangeError,
};
pub use model::*;
pub use state::ClusterState;

/// Identifies a broker node in the Raft membership.
pub type NodeId = u64;
