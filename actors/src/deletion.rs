//! Carries deletions to the agents: every session the replicated state holds in DELETING is deleted on its
//! server, and the confirmations are batched into one `SessionsDeleted` entry.

use std::collections::HashSet;

use broker_core::Command;
use broker_raft::ClusterHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::server::ServerMsg;
use crate::supervisor::SupervisorMsg;

pub enum DeletionMsg {
    /// Look for deletions to carry out (sent on every applied change, coalesced by the supervisor).
    Run,
    Confirmed {
        session_id: String,
        server_id: String,
    },
    Failed {
        session_id: String,
        reason: String,
    },
    Flush,
}

pub struct DeletionActor;

pub struct DeletionArgs {
    pub cluster: ClusterHandle,
    pub supervisor: ActorRef<SupervisorMsg>,
}

pub struct DeletionState {
    args: DeletionArgs,
    in_flight: HashSet<String>,
    confirmed: Vec<(String, String)>,
    flush_queued: bool,
}

impl Actor for DeletionActor {
    type Msg = DeletionMsg;
    type State = DeletionState;
    type Arguments = DeletionArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<DeletionMsg>,
        args: DeletionArgs,
    ) -> Result<DeletionState, ActorProcessingErr> {
        Ok(DeletionState { args, in_flight: HashSet::new(), confirmed: Vec::new(), flush_queued: false })
    }

    async fn handle(
        &self,
        myself: ActorRef<DeletionMsg>,
        message: DeletionMsg,
        state: &mut DeletionState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            DeletionMsg::Run => {
                let due: Vec<(String, String)> = state.args.cluster.read(|s| {
                    s.deleting()
                        .filter(|session| !state.in_flight.contains(&session.id))
                        .filter_map(|session| session.server_id.clone().map(|server| (session.id.clone(), server)))
                        .collect()
                });
                for (session_id, server_id) in due {
                    let server = ractor::call!(state.args.supervisor, |reply| SupervisorMsg::FindServer {
                        server_id: server_id.clone(),
                        reply
                    })?;
                    // An agent that is not connected is asked when it comes back (its registration kicks us).
                    let Some(server) = server else { continue };
                    state.in_flight.insert(session_id.clone());
                    let myself = myself.clone();
                    tokio::spawn(async move {
                        let outcome = ractor::call!(server, |reply| ServerMsg::DeleteSession {
                            session_id: session_id.clone(),
                            reply
                        });
                        let message = match outcome {
                            Ok(Ok(())) => DeletionMsg::Confirmed { session_id, server_id },
                            Ok(Err(reason)) => DeletionMsg::Failed { session_id, reason },
                            Err(e) => DeletionMsg::Failed { session_id, reason: e.to_string() },
                        };
                        let _ = myself.cast(message);
                    });
                }
            }
            DeletionMsg::Confirmed { session_id, server_id } => {
                state.in_flight.remove(&session_id);
                state.confirmed.push((session_id, server_id));
                if !state.flush_queued {
                    state.flush_queued = true;
                    myself.cast(DeletionMsg::Flush)?;
                }
            }
            DeletionMsg::Failed { session_id, reason } => {
                // Tried again on the next change; the session stays DELETING meanwhile.
                tracing::warn!(session = %session_id, %reason, "the agent did not delete the session");
                state.in_flight.remove(&session_id);
            }
            DeletionMsg::Flush => {
                state.flush_queued = false;
                let sessions = std::mem::take(&mut state.confirmed);
                if sessions.is_empty() {
                    return Ok(());
                }
                let count = sessions.len();
                if let Err(e) = state.args.cluster.write(Command::SessionsDeleted { sessions, now: crate::now() }).await
                {
                    tracing::warn!(error = %e, count, "deletion confirmations not replicated; a later leader asks again");
                }
            }
        }
        Ok(())
    }
}
