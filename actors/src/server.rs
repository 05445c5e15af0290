//! One actor per connected agent: owns the QUIC link, answers heartbeats, replicates changed host facts, and
//! carries requests to the agent (one stream each).

use std::time::Duration;

use broker_core::agent_proto::{AgentEvent, AgentReply, BrokerEvent, BrokerRequest};
use broker_core::{Command, SessionSpec};
use broker_raft::ClusterHandle;
use broker_transport::frame::{read_message, write_message};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::task::JoinHandle;

use crate::ActorConfig;

/// An accepted agent connection and its control stream, right after registration.
pub struct AgentLink {
    pub connection: quinn::Connection,
    pub control_send: quinn::SendStream,
    pub control_recv: quinn::RecvStream,
    pub server: broker_core::ServerInfo,
}

pub enum ServerMsg {
    CreateSession {
        session_id: String,
        spec: Box<SessionSpec>,
        reply: RpcReplyPort<Result<(), String>>,
    },
    DeleteSession {
        session_id: String,
        reply: RpcReplyPort<Result<(), String>>,
    },
    /// Any other request (screenshots, permissions), answered by the agent as it is.
    Relay {
        request: Box<BrokerRequest>,
        reply: RpcReplyPort<Result<AgentReply, String>>,
    },
}

pub struct ServerActor;

pub struct ServerArgs {
    pub server_id: String,
    pub link: AgentLink,
    pub cluster: ClusterHandle,
    pub config: ActorConfig,
}

pub struct ServerState {
    server_id: String,
    connection: quinn::Connection,
    heartbeats: JoinHandle<()>,
    call_timeout: Duration,
}

impl Actor for ServerActor {
    type Msg = ServerMsg;
    type State = ServerState;
    type Arguments = ServerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ServerMsg>,
        args: ServerArgs,
    ) -> Result<ServerState, ActorProcessingErr> {
        let AgentLink { connection, mut control_send, mut control_recv, server } = args.link;
        let server_id = args.server_id.clone();
        let cluster = args.cluster.clone();
        let silence = args.config.heartbeat_interval * 4;
        let heartbeats = tokio::spawn(async move {
            let mut info = server;
            let reason = loop {
                let event = match tokio::time::timeout(silence, read_message::<AgentEvent>(&mut control_recv)).await {
                    Err(_) => break format!("no heartbeat for {silence:?}"),
                    Ok(Err(e)) => break format!("link error: {e}"),
                    Ok(Ok(None)) => break "the agent closed the link".to_owned(),
                    Ok(Ok(Some(event))) => event,
                };
                match event {
                    AgentEvent::Heartbeat { seq, facts } => {
                        if let Err(e) = write_message(&mut control_send, &BrokerEvent::HeartbeatAck { seq }).await {
                            break format!("link error: {e}");
                        }
                        if let Some(facts) = facts {
                            info.host = facts;
                            let command = Command::UpsertServer { server: Box::new(info.clone()), now: crate::now() };
                            let cluster = cluster.clone();
                            tokio::spawn(async move {
                                if let Err(e) = cluster.write(command).await {
                                    tracing::warn!(error = %e, "host facts not replicated");
                                }
                            });
                        }
                    }
                }
            };
            tracing::info!(server = %info.id, %reason, "agent link lost");
            myself.stop(Some(reason));
        });
        tracing::info!(server = %server_id, "agent connected to the leader");
        Ok(ServerState { server_id, connection, heartbeats, call_timeout: args.config.agent_call_timeout })
    }

    async fn handle(
        &self,
        _myself: ActorRef<ServerMsg>,
        message: ServerMsg,
        state: &mut ServerState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ServerMsg::CreateSession { session_id, spec, reply } => {
                // The call runs beside the actor so one slow creation never holds up the others.
                let connection = state.connection.clone();
                let timeout = state.call_timeout;
                tokio::spawn(async move {
                    let request = BrokerRequest::CreateSession { session_id: session_id.clone(), spec: *spec };
                    let result = match broker_transport::call::<_, AgentReply>(&connection, &request, timeout).await {
                        Ok(AgentReply::Created { .. }) => Ok(()),
                        Ok(AgentReply::Failed { reason, .. }) => Err(reason),
                        Ok(other) => Err(format!("unexpected agent reply {other:?}")),
                        Err(e) => Err(format!("agent unreachable: {e}")),
                    };
                    let _ = reply.send(result);
                });
            }
            ServerMsg::DeleteSession { session_id, reply } => {
                let connection = state.connection.clone();
                let timeout = state.call_timeout;
                tokio::spawn(async move {
                    let request = BrokerRequest::DeleteSession { session_id };
                    let result = match broker_transport::call::<_, AgentReply>(&connection, &request, timeout).await {
                        Ok(AgentReply::Deleted { .. }) => Ok(()),
                        Ok(AgentReply::Failed { reason, .. }) => Err(reason),
                        Ok(other) => Err(format!("unexpected agent reply {other:?}")),
                        Err(e) => Err(format!("agent unreachable: {e}")),
                    };
                    let _ = reply.send(result);
                });
            }
            ServerMsg::Relay { request, reply } => {
                let connection = state.connection.clone();
                let timeout = state.call_timeout;
                tokio::spawn(async move {
                    let result = broker_transport::call::<_, AgentReply>(&connection, &*request, timeout)
                        .await
                        .map_err(|e| format!("agent unreachable: {e}"));
                    let _ = reply.send(result);
                });
            }
        }
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<ServerMsg>, state: &mut ServerState) -> Result<(), ActorProcessingErr> {
        state.heartbeats.abort();
        state.connection.close(0u32.into(), b"leader actors stopped");
        tracing::debug!(server = %state.server_id, "server actor stopped");
        Ok(())
    }
}
