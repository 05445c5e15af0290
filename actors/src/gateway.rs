//! The agent gateway: accepts agent connections on every node. A follower redirects the agent to the leader;
//! the leader registers the server in the replicated state and hands the link to the supervisor.

use std::time::Duration;

use broker_core::agent_proto::{AgentHello, HelloReply};
use broker_core::Command;
use broker_raft::ClusterHandle;
use broker_transport::frame::{read_message, write_message};

use crate::server::AgentLink;
use crate::supervisor::SupervisorMsg;
use crate::{ActorConfig, LeaderSlot};

const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves agents until the endpoint closes.
pub async fn serve_agents(endpoint: quinn::Endpoint, cluster: ClusterHandle, leader: LeaderSlot, config: ActorConfig) {
    while let Some(incoming) = endpoint.accept().await {
        let cluster = cluster.clone();
        let leader = leader.clone();
        let config = config.clone();
        tokio::spawn(async move {
            let connection = match incoming.await {
                Ok(connection) => connection,
                Err(e) => {
                    tracing::debug!(error = %e, "agent handshake failed");
                    return;
                }
            };
            if let Err(reason) = greet(connection.clone(), &cluster, &leader, &config).await {
                tracing::debug!(remote = %connection.remote_address(), %reason, "agent not kept");
            }
        });
    }
}

async fn greet(
    connection: quinn::Connection,
    cluster: &ClusterHandle,
    leader: &LeaderSlot,
    config: &ActorConfig,
) -> Result<(), String> {
    let (mut send, mut recv) = tokio::time::timeout(HELLO_TIMEOUT, connection.accept_bi())
        .await
        .map_err(|_| "no hello")?
        .map_err(|e| e.to_string())?;
    let hello: AgentHello = tokio::time::timeout(HELLO_TIMEOUT, read_message(&mut recv))
        .await
        .map_err(|_| "hello timed out")?
        .map_err(|e| e.to_string())?
        .ok_or("agent closed before its hello")?;
    let AgentHello::Register { server, running: _ } = hello;

    let supervisor = match (cluster.is_leader(), leader.get()) {
        (true, Some(supervisor)) => supervisor,
        _ => {
            let (leader_id, agent_address) = match cluster.leader() {
                Some((id, node)) if id != cluster.node_id() => (Some(id), Some(node.agent_address)),
                _ => (None, None),
            };
            let reply = HelloReply::Redirect { leader_id, agent_address };
            write_message(&mut send, &reply).await.map_err(|e| e.to_string())?;
            let _ = send.finish();
            // Let the agent read the redirect before the connection goes away.
            let _ = tokio::time::timeout(HELLO_TIMEOUT, connection.closed()).await;
            return Ok(());
        }
    };

    let server_id = server.id.clone();
    cluster
        .write(Command::UpsertServer { server: Box::new(server.clone()), now: crate::now() })
        .await
        .map_err(|e| format!("registration of {server_id} not replicated: {e}"))?;
    let accepted = HelloReply::Accepted {
        leader_id: cluster.node_id(),
        heartbeat_interval_ms: config.heartbeat_interval.as_millis() as u64,
    };
    write_message(&mut send, &accepted).await.map_err(|e| e.to_string())?;
    tracing::info!(server = %server_id, hostname = %server.hostname, "agent registered");
    let link = Box::new(AgentLink { connection, control_send: send, control_recv: recv, server });
    supervisor.cast(SupervisorMsg::AgentRegistered { server_id, link }).map_err(|e| e.to_string())
}
