//! Batches session confirmations: many agents' "created" answers become one `SessionsReady` entry, so the
//! Raft log carries one entry per batch instead of one per session.

use broker_core::Command;
use broker_raft::ClusterHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef};

pub enum ReadinessMsg {
    Confirmed { session_id: String, server_id: String },
    Flush,
}

pub struct ReadinessActor;

pub struct ReadinessState {
    cluster: ClusterHandle,
    pending: Vec<(String, String)>,
    flush_queued: bool,
}

impl Actor for ReadinessActor {
    type Msg = ReadinessMsg;
    type State = ReadinessState;
    type Arguments = ClusterHandle;

    async fn pre_start(
        &self,
        _myself: ActorRef<ReadinessMsg>,
        cluster: ClusterHandle,
    ) -> Result<ReadinessState, ActorProcessingErr> {
        Ok(ReadinessState { cluster, pending: Vec::new(), flush_queued: false })
    }

    async fn handle(
        &self,
        myself: ActorRef<ReadinessMsg>,
        message: ReadinessMsg,
        state: &mut ReadinessState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ReadinessMsg::Confirmed { session_id, server_id } => {
                state.pending.push((session_id, server_id));
                // The flush queues behind every confirmation already in the mailbox, and confirmations that
                // arrive while it writes wait for the next one: batches grow with the load, with no timer.
                if !state.flush_queued {
                    state.flush_queued = true;
                    myself.cast(ReadinessMsg::Flush)?;
                }
            }
            ReadinessMsg::Flush => {
                state.flush_queued = false;
                let sessions = std::mem::take(&mut state.pending);
                if sessions.is_empty() {
                    return Ok(());
                }
                let count = sessions.len();
                if let Err(e) = state.cluster.write(Command::SessionsReady { sessions, now: crate::now() }).await {
                    // The sessions stay PENDING_PREPARATION; the next leader confirms them again.
                    tracing::warn!(error = %e, count, "session confirmations not replicated");
                }
            }
        }
        Ok(())
    }
}
