//! The peer listener: answers Raft RPCs, and on the leader serves forwarded writes and read-index requests.

use std::time::Duration;

use broker_transport::frame::{read_request, write_response};
use openraft::error::{ClientWriteError, RaftError};

use crate::handle::{Attempt, ClusterHandle};
use crate::peer::{AdminAnswer, AdminQuery, ForwardError, PeerRequest, PeerResponse};

/// How long the leader works on one forwarded request before the follower retries.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts peer connections until the endpoint closes. mTLS on the endpoint already refused strangers.
pub async fn serve_peers(endpoint: quinn::Endpoint, handle: ClusterHandle) {
    while let Some(incoming) = endpoint.accept().await {
        let handle = handle.clone();
        tokio::spawn(async move {
            let connection = match incoming.await {
                Ok(connection) => connection,
                Err(e) => {
                    tracing::debug!(error = %e, "peer handshake failed");
                    return;
                }
            };
            while let Ok((mut send, mut recv)) = connection.accept_bi().await {
                let handle = handle.clone();
                tokio::spawn(async move {
                    let request: PeerRequest = match read_request(&mut recv).await {
                        Ok(request) => request,
                        Err(e) => {
                            tracing::debug!(error = %e, "unreadable peer request");
                            return;
                        }
                    };
                    let response = dispatch(&handle, request).await;
                    if let Err(e) = write_response(&mut send, &response).await {
                        tracing::debug!(error = %e, "peer response not delivered");
                    }
                });
            }
        });
    }
}

async fn dispatch(handle: &ClusterHandle, request: PeerRequest) -> PeerResponse {
    let raft = handle.raft();
    match request {
        PeerRequest::AppendEntries(rpc) => PeerResponse::AppendEntries(raft.append_entries(rpc).await),
        PeerRequest::Vote(rpc) => PeerResponse::Vote(raft.vote(rpc).await),
        PeerRequest::InstallSnapshot(rpc) => PeerResponse::InstallSnapshot(raft.install_snapshot(rpc).await),
        PeerRequest::ClientWrite(command) => {
            let result = match tokio::time::timeout(FORWARD_TIMEOUT, raft.client_write(command)).await {
                Ok(Ok(written)) => Ok((written.log_id.index, written.data)),
                Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                    Err(ForwardError::NotLeader { leader: f.leader_id })
                }
                Ok(Err(RaftError::APIError(e))) => Err(ForwardError::Fatal(e.to_string())),
                Ok(Err(RaftError::Fatal(e))) => Err(ForwardError::Fatal(e.to_string())),
                Err(_) => Err(ForwardError::NotLeader { leader: None }),
            };
            PeerResponse::ClientWrite(result)
        }
        PeerRequest::ReadIndex => {
            let result = match handle.leader_read_index(FORWARD_TIMEOUT).await {
                Ok(Some(index)) => Ok(index),
                Ok(None) | Err(Attempt::Retry) => Err(ForwardError::NotLeader { leader: None }),
                Err(Attempt::Fatal(reason)) => Err(ForwardError::Fatal(reason)),
            };
            PeerResponse::ReadIndex(result)
        }
        PeerRequest::AgentCall { server_id, request } => {
            PeerResponse::AgentCall(handle.leader_agent_call(server_id, request).await)
        }
        PeerRequest::AdminRead(query) => {
            let result = match handle.read_barrier().await {
                Ok(()) => Ok(handle.read(|state| match query {
                    AdminQuery::ApiClients => AdminAnswer::ApiClients(state.api_clients().cloned().collect()),
                    AdminQuery::AuthServers => AdminAnswer::AuthServers(state.auth_servers().cloned().collect()),
                })),
                Err(e) => Err(ForwardError::Fatal(e.to_string())),
            };
            PeerResponse::AdminRead(result)
        }
    }
}
