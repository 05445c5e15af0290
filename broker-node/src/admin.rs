//! `berth admin ...`: administrative commands. They speak the peer protocol with the node's own certificate
//! (whoever holds a cluster certificate is an administrator), so they work from any node's host.

use std::time::Duration;

use anyhow::{bail, Context};
use broker_core::{Command, Response};
use broker_raft::peer::{ForwardError, PeerRequest, PeerResponse};
use broker_raft::PEER_ALPN;
use broker_transport::{call, client_endpoint, TlsMaterial};
use tokio::time::Instant;

/// Proposes `command` through whichever member is the leader, trying them in turn until `deadline`.
pub async fn propose(
    tls: &TlsMaterial,
    peers: &[String],
    command: Command,
    deadline: Duration,
) -> anyhow::Result<Response> {
    let endpoint = client_endpoint(tls.mtls_client_config(PEER_ALPN)?)?;
    let give_up = Instant::now() + deadline;
    let mut last_error = String::from("no member answered");
    while Instant::now() < give_up {
        for peer in peers {
            let connection = match broker_transport::quic::connect(&endpoint, peer).await {
                Ok(connection) => connection,
                Err(e) => {
                    last_error = format!("{peer}: {e}");
                    continue;
                }
            };
            let request = PeerRequest::ClientWrite(command.clone());
            match call::<_, PeerResponse>(&connection, &request, Duration::from_secs(5)).await {
                Ok(PeerResponse::ClientWrite(Ok((_, response)))) => return Ok(response),
                Ok(PeerResponse::ClientWrite(Err(ForwardError::Fatal(reason)))) => bail!("{peer}: {reason}"),
                Ok(PeerResponse::ClientWrite(Err(e))) => last_error = format!("{peer}: {e}"),
                Ok(other) => last_error = format!("{peer}: unexpected answer {other:?}"),
                Err(e) => last_error = format!("{peer}: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("no leader accepted the command within {deadline:?} (last: {last_error})")
}

/// Registers an API client; returns (client id, secret). The secret exists only in this answer.
pub async fn register_api_client(tls: &TlsMaterial, peers: &[String], name: &str) -> anyhow::Result<(String, String)> {
    let (client, secret) = broker_api::auth::new_api_client(name, broker_api::now());
    let client_id = client.client_id.clone();
    match propose(tls, peers, Command::RegisterApiClient { client }, Duration::from_secs(20))
        .await
        .context("cannot register the API client")?
    {
        Response::Ok => Ok((client_id, secret)),
        other => bail!("the cluster refused the registration: {other:?}"),
    }
}
