//! The placement queue actor: runs `broker_core::placement::plan` over the replicated waiting queue and
//! proposes the reservations; each reserved session is handed to the supervisor for preparation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use broker_core::placement::plan;
use broker_core::{Command, Response};
use broker_raft::ClusterHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::supervisor::SupervisorMsg;

pub enum PlacementMsg {
    Run,
}

pub struct PlacementActor;

pub struct PlacementArgs {
    pub cluster: ClusterHandle,
    pub supervisor: ActorRef<SupervisorMsg>,
    pub kick_pending: Arc<AtomicBool>,
    pub batch: usize,
    pub queue: broker_core::placement::QueueLimits,
}

impl Actor for PlacementActor {
    type Msg = PlacementMsg;
    type State = PlacementArgs;
    type Arguments = PlacementArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<PlacementMsg>,
        args: PlacementArgs,
    ) -> Result<PlacementArgs, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<PlacementMsg>,
        message: PlacementMsg,
        state: &mut PlacementArgs,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            PlacementMsg::Run => {
                state.kick_pending.store(false, Ordering::Release);
                run_rounds(state).await;
            }
        }
        Ok(())
    }
}

async fn run_rounds(state: &PlacementArgs) {
    loop {
        let round = state.cluster.read(|s| plan(s, state.batch, crate::now(), state.queue));
        if round.placements.is_empty() && round.unplaceable.is_empty() {
            return;
        }
        if !round.unplaceable.is_empty() {
            let command = Command::PlacementFailed { sessions: round.unplaceable.clone(), now: crate::now() };
            if let Err(e) = state.cluster.write(command).await {
                tracing::warn!(error = %e, "could not record unplaceable sessions");
                return;
            }
        }
        let mut placed = 0;
        if !round.placements.is_empty() {
            let command = Command::PlaceSessions { now: crate::now(), placements: round.placements.clone() };
            let results = match state.cluster.write(command).await {
                Ok(Response::Placed { results }) => results,
                Ok(other) => {
                    tracing::error!(?other, "unexpected placement result");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "placement not replicated");
                    return;
                }
            };
            for (placement, result) in round.placements.iter().zip(results) {
                match result {
                    Ok(()) => {
                        placed += 1;
                        let spec = state.cluster.read(|s| s.session(&placement.session_id).map(|s| s.spec.clone()));
                        if let Some(spec) = spec {
                            let _ = state.supervisor.cast(SupervisorMsg::SessionPlaced {
                                session_id: placement.session_id.clone(),
                                server_id: placement.server_id.clone(),
                                spec: Box::new(spec),
                            });
                        }
                    }
                    Err(reason) => {
                        tracing::debug!(session = %placement.session_id, %reason, "placement refused at apply")
                    }
                }
            }
        }
        // Go on only while rounds make progress and the queue may hold more than one batch: a round that
        // changed nothing would plan the same again, so the next applied entry kicks placement instead.
        let inspected = round.placements.len() + round.unplaceable.len() + round.still_waiting;
        let progress = placed > 0 || !round.unplaceable.is_empty();
        if !progress || inspected < state.batch {
            return;
        }
    }
}
