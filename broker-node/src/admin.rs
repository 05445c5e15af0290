//! `berth admin ...`: administrative commands. They speak the peer protocol with the node's own certificate
//! (whoever holds a cluster certificate is an administrator), so they work from any node's host.

use std::time::Duration;

use broker_core::{ApiClient, AuthServer, Command, Rejection, Response};
use broker_raft::peer::{AdminAnswer, AdminQuery, ForwardError, PeerRequest, PeerResponse};
use broker_raft::PEER_ALPN;
use broker_transport::{call, client_endpoint, TlsMaterial};
use tokio::time::Instant;

/// How long a command keeps trying the members before it calls the cluster unavailable: long enough to ride
/// out an election or a rolling restart.
pub const ADMIN_DEADLINE: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot set up the peer link: {0}")]
    Setup(String),
    #[error("the cluster is unavailable: no member answered within {deadline:?} (last: {last})")]
    Unavailable { deadline: Duration, last: String },
    #[error("{peer}: {reason}")]
    Fatal { peer: String, reason: String },
    #[error("unknown client id {0}: no API client is registered with it")]
    UnknownClient(String),
    #[error("unknown URL {0}: no authorization server is registered with it")]
    UnknownAuthServer(String),
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("the cluster refused the command: {0}")]
    Refused(String),
    #[error("unexpected answer from {peer}: {answer}")]
    Unexpected { peer: String, answer: String },
}

/// Sends `request` to the members in turn until `answer` accepts one reply (Ok(Some)) or `deadline` passes.
/// `answer` returns Ok(None) for a reply worth retrying elsewhere (not the leader, no leader yet).
async fn ask<T>(
    tls: &TlsMaterial,
    peers: &[String],
    request: PeerRequest,
    deadline: Duration,
    mut answer: impl FnMut(&str, PeerResponse) -> Result<Option<T>, AdminError>,
) -> Result<T, AdminError> {
    let config = tls.mtls_client_config(PEER_ALPN).map_err(|e| AdminError::Setup(e.to_string()))?;
    let endpoint = client_endpoint(config).map_err(|e| AdminError::Setup(e.to_string()))?;
    let give_up = Instant::now() + deadline;
    let mut last = String::from("no member answered");
    while Instant::now() < give_up {
        for peer in peers {
            let connection = match broker_transport::quic::connect(&endpoint, peer).await {
                Ok(connection) => connection,
                Err(e) => {
                    last = format!("{peer}: {e}");
                    continue;
                }
            };
            match call::<_, PeerResponse>(&connection, &request, Duration::from_secs(5)).await {
                Ok(reply) => {
                    let text = format!("{reply:?}");
                    match answer(peer, reply)? {
                        Some(value) => return Ok(value),
                        None => last = format!("{peer}: {text}"),
                    }
                }
                Err(e) => last = format!("{peer}: {e}"),
            }
        }
        // Between rounds only: an election takes a few hundred milliseconds.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(AdminError::Unavailable { deadline, last })
}

/// Proposes `command` through whichever member is the leader, trying them in turn until `deadline`.
pub async fn propose(
    tls: &TlsMaterial,
    peers: &[String],
    command: Command,
    deadline: Duration,
) -> Result<Response, AdminError> {
    ask(tls, peers, PeerRequest::ClientWrite(command), deadline, |peer, reply| match reply {
        PeerResponse::ClientWrite(Ok((_, response))) => Ok(Some(response)),
        PeerResponse::ClientWrite(Err(ForwardError::Fatal(reason))) => {
            Err(AdminError::Fatal { peer: peer.to_owned(), reason })
        }
        PeerResponse::ClientWrite(Err(ForwardError::NotLeader { .. })) => Ok(None),
        other => Err(AdminError::Unexpected { peer: peer.to_owned(), answer: format!("{other:?}") }),
    })
    .await
}

/// Reads the replicated state through any member (it answers after a read barrier, so the read is
/// linearizable), trying them in turn until `deadline`.
pub async fn read(
    tls: &TlsMaterial,
    peers: &[String],
    query: AdminQuery,
    deadline: Duration,
) -> Result<AdminAnswer, AdminError> {
    ask(tls, peers, PeerRequest::AdminRead(query), deadline, |peer, reply| match reply {
        PeerResponse::AdminRead(Ok(answer)) => Ok(Some(answer)),
        // A member that cannot reach a read barrier (no leader, raft stopping) may be alone: ask the next.
        PeerResponse::AdminRead(Err(_)) => Ok(None),
        other => Err(AdminError::Unexpected { peer: peer.to_owned(), answer: format!("{other:?}") }),
    })
    .await
}

fn expect_ok(response: Response) -> Result<(), AdminError> {
    match response {
        Response::Ok => Ok(()),
        Response::Rejected(Rejection::UnknownClient(id)) => Err(AdminError::UnknownClient(id)),
        Response::Rejected(Rejection::UnknownAuthServer(url)) => Err(AdminError::UnknownAuthServer(url)),
        Response::Rejected(rejection) => Err(AdminError::Refused(rejection.to_string())),
        other => Err(AdminError::Refused(format!("{other:?}"))),
    }
}

/// Registers an API client; returns (client id, secret). The secret exists only in this answer.
pub async fn register_api_client(
    tls: &TlsMaterial,
    peers: &[String],
    name: &str,
) -> Result<(String, String), AdminError> {
    let (client, secret) = broker_api::auth::new_api_client(name, broker_api::now());
    let client_id = client.client_id.clone();
    expect_ok(propose(tls, peers, Command::RegisterApiClient { client }, ADMIN_DEADLINE).await?)?;
    Ok((client_id, secret))
}

/// The registered API clients, oldest first.
pub async fn describe_api_clients(tls: &TlsMaterial, peers: &[String]) -> Result<Vec<ApiClient>, AdminError> {
    match read(tls, peers, AdminQuery::ApiClients, ADMIN_DEADLINE).await? {
        AdminAnswer::ApiClients(mut clients) => {
            clients.sort_by(|a, b| (a.created, &a.client_id).cmp(&(b.created, &b.client_id)));
            Ok(clients)
        }
        other => Err(AdminError::Unexpected { peer: "a member".into(), answer: format!("{other:?}") }),
    }
}

/// Unregisters an API client: every node refuses its tokens once it has applied this.
pub async fn unregister_api_client(tls: &TlsMaterial, peers: &[String], client_id: &str) -> Result<(), AdminError> {
    let command = Command::UnregisterApiClient { client_id: client_id.to_owned() };
    expect_ok(propose(tls, peers, command, ADMIN_DEADLINE).await?)
}

/// The canonical form of a JWKS URL: http or https, with a host and without credentials (the URL is
/// replicated and listed, so a password in it would leak). Registration and removal both go through it, so
/// `https://idp.example` and `https://idp.example/` name the same server.
pub fn jwks_url(url: &str) -> Result<String, AdminError> {
    let invalid = |reason: &str| AdminError::InvalidUrl { url: url.to_owned(), reason: reason.to_owned() };
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid("credentials in the URL would be stored and listed in clear"));
    }
    if parsed.fragment().is_some() {
        return Err(invalid("a fragment is never sent to the server"));
    }
    Ok(parsed.to_string())
}

/// Registers an external authorization server by the URL of its JWKS document; returns the URL as stored.
/// Registering a URL again changes nothing.
pub async fn register_auth_server(tls: &TlsMaterial, peers: &[String], url: &str) -> Result<String, AdminError> {
    let url = jwks_url(url)?;
    let server = AuthServer { url: url.clone(), registered: broker_api::now() };
    expect_ok(propose(tls, peers, Command::RegisterAuthServer { server }, ADMIN_DEADLINE).await?)?;
    Ok(url)
}

/// The registered authorization servers, in URL order.
pub async fn list_auth_servers(tls: &TlsMaterial, peers: &[String]) -> Result<Vec<AuthServer>, AdminError> {
    match read(tls, peers, AdminQuery::AuthServers, ADMIN_DEADLINE).await? {
        AdminAnswer::AuthServers(servers) => Ok(servers),
        other => Err(AdminError::Unexpected { peer: "a member".into(), answer: format!("{other:?}") }),
    }
}

/// Unregisters an authorization server: its tokens are refused once a node has applied this.
pub async fn unregister_auth_server(tls: &TlsMaterial, peers: &[String], url: &str) -> Result<(), AdminError> {
    // An unparseable URL cannot have been registered through `jwks_url`, but is looked up as typed anyway.
    let url = jwks_url(url).unwrap_or_else(|_| url.to_owned());
    expect_ok(propose(tls, peers, Command::UnregisterAuthServer { url }, ADMIN_DEADLINE).await?)
}

/// Left-aligned columns under a header, two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        padded.join("  ").trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// `describe-api-clients`: id, name and creation time; never the secret's hash or salt.
pub fn api_clients_table(clients: &[ApiClient]) -> String {
    let rows: Vec<Vec<String>> = clients
        .iter()
        .map(|c| vec![c.client_id.clone(), c.client_name.clone(), broker_api::convert::iso_time(c.created)])
        .collect();
    table(&["CLIENT ID", "NAME", "CREATED"], &rows)
}

pub fn auth_servers_table(servers: &[AuthServer]) -> String {
    let rows: Vec<Vec<String>> =
        servers.iter().map(|s| vec![s.url.clone(), broker_api::convert::iso_time(s.registered)]).collect();
    table(&["URL", "REGISTERED"], &rows)
}

#[cfg(test)]
mod tests {
    use broker_core::UnixMillis;

    use super::*;

    #[test]
    fn jwks_urls_are_checked_and_canonical() {
        assert_eq!(jwks_url("https://idp.example").unwrap(), "https://idp.example/");
        assert_eq!(jwks_url(" http://127.0.0.1:9000/jwks.json ").unwrap(), "http://127.0.0.1:9000/jwks.json");
        for bad in ["ftp://idp.example/keys", "idp.example/keys", "https://", "https://u:p@idp.example/", "x#y", ""] {
            assert!(matches!(jwks_url(bad), Err(AdminError::InvalidUrl { .. })), "{bad}");
        }
    }

    #[test]
    fn the_client_table_shows_no_secret_material() {
        let (client, secret) = broker_api::auth::new_api_client("portal", UnixMillis(1_700_000_000_000));
        let text = api_clients_table(std::slice::from_ref(&client));
        assert!(text.starts_with("CLIENT ID"), "{text}");
        assert!(
            text.contains(&client.client_id) && text.contains("portal") && text.contains("2023-11-14T22:13:20.000Z")
        );
        for hidden in [&secret, &client.secret_sha256, &client.secret_salt] {
            assert!(!text.contains(hidden.as_str()), "{text}");
        }
    }
}
