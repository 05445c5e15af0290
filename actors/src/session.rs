//! One actor per session being prepared: asks its server's agent to create the session, then records READY,
//! or the failure (which sends the session back to placement unless retries are exhausted or disabled).

use std::time::Duration;

use broker_core::{Command, SessionSpec};
use broker_raft::ClusterHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::time::Instant;

use crate::readiness::ReadinessMsg;
use crate::server::ServerMsg;
use crate::supervisor::SupervisorMsg;
use crate::ActorConfig;

const AGENT_POLL: Duration = Duration::from_millis(100);

pub enum SessionMsg {
    Attempt,
}

pub struct SessionActor;

pub struct SessionArgs {
    pub session_id: String,
    pub server_id: String,
    pub spec: SessionSpec,
    pub cluster: ClusterHandle,
    pub supervisor: ActorRef<SupervisorMsg>,
    pub readiness: ActorRef<ReadinessMsg>,
    pub config: ActorConfig,
}

pub struct SessionState {
    args: SessionArgs,
    give_up_at: Instant,
}

impl Actor for SessionActor {
    type Msg = SessionMsg;
    type State = SessionState;
    type Arguments = SessionArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SessionMsg>,
        args: SessionArgs,
    ) -> Result<SessionState, ActorProcessingErr> {
        myself.cast(SessionMsg::Attempt)?;
        let give_up_at = Instant::now() + args.config.agent_wait;
        Ok(SessionState { args, give_up_at })
    }

    async fn handle(
        &self,
        myself: ActorRef<SessionMsg>,
        message: SessionMsg,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SessionMsg::Attempt => {
                let args = &state.args;
                let server = ractor::call!(args.supervisor, |reply| SupervisorMsg::FindServer {
                    server_id: args.server_id.clone(),
                    reply
                })?;
                let Some(server) = server else {
                    // The agent may be reconnecting after a failover: wait for it, within a bound.
                    if Instant::now() >= state.give_up_at {
                        tracing::warn!(session = %args.session_id, server = %args.server_id, "agent did not come back; leaving the session for a later leader");
                        myself.stop(Some("agent absent".into()));
                    } else {
                        myself.send_after(AGENT_POLL, || SessionMsg::Attempt);
                    }
                    return Ok(());
                };
                let outcome = ractor::call!(server, |reply| ServerMsg::CreateSession {
                    session_id: args.session_id.clone(),
                    spec: Box::new(args.spec.clone()),
                    reply
                });
                let command = match outcome {
                    Ok(Ok(())) => {
                        args.readiness.cast(ReadinessMsg::Confirmed {
                            session_id: args.session_id.clone(),
                            server_id: args.server_id.clone(),
                        })?;
                        myself.stop(None);
                        return Ok(());
                    }
                    Ok(Err(reason)) => Command::SessionFailed {
                        session_id: args.session_id.clone(),
                        server_id: args.server_id.clone(),
                        reason,
                        max_attempts: args.config.max_creation_attempts,
                        now: crate::now(),
                    },
                    Err(e) => {
                        // The server actor went away mid-call: try again when the agent is back.
                        tracing::debug!(session = %args.session_id, error = %e, "server actor gone; retrying");
                        myself.send_after(AGENT_POLL, || SessionMsg::Attempt);
                        return Ok(());
                    }
                };
                if let Err(e) = args.cluster.write(command).await {
                    tracing::warn!(session = %args.session_id, error = %e, "session failure not replicated; a later leader redoes it");
                }
                myself.stop(None);
            }
        }
        Ok(())
    }
}
