//! The DCV Connection Gateway's session resolver, served on the gateway port (8447) when `enable-gateway` is
//! set: `POST /resolveSession?sessionId=..&transport=HTTP|QUIC&clientIpAddress=..`.

use axum::extract::{Query, State};
use axum::routing::post;
use axum::{Json, Router};
use broker_core::query::{resolve_session, ResolveError};
use broker_core::EndpointProtocol;
use serde::Deserialize;

use crate::dto::ResolveSessionResponse;
use crate::error::ApiError;
use crate::ApiState;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolveQuery {
    session_id: Option<String>,
    transport: Option<String>,
    /// Logged only: the broker does not route by client address.
    client_ip_address: Option<String>,
}

/// HTTP unless the gateway says QUIC; anything else is a caller error.
fn transport(text: Option<&str>) -> Result<EndpointProtocol, ApiError> {
    let Some(text) = text else { return Ok(EndpointProtocol::Http) };
    match text.to_ascii_uppercase().as_str() {
        "HTTP" => Ok(EndpointProtocol::Http),
        "QUIC" => Ok(EndpointProtocol::Quic),
        _ => Err(ApiError::BadRequest(format!("Unsupported transport '{text}': use HTTP or QUIC"))),
    }
}

pub async fn resolve(
    State(state): State<ApiState>,
    query: Result<Query<ResolveQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ResolveSessionResponse>, ApiError> {
    let Query(query) = query.map_err(crate::handlers::bad_query)?;
    let session_id = query
        .session_id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ApiError::BadRequest("The sessionId parameter is required".into()))?;
    let protocol = transport(query.transport.as_deref())?;
    // Linearizable: a gateway asking right after CreateSessions reported READY must find the session.
    state.cluster.read_barrier().await?;
    let resolution = state.cluster.read(|s| resolve_session(s, &session_id, protocol)).map_err(|e| match e {
        ResolveError::UnknownSession | ResolveError::NotReady(_) | ResolveError::NoEndpoint(_) => {
            ApiError::NotFound(e.to_string())
        }
    })?;
    tracing::debug!(session = %session_id, client = ?query.client_ip_address, "gateway resolved a session");
    Ok(Json(ResolveSessionResponse {
        session_id: resolution.session_id,
        transport_protocol: resolution.protocol.as_api_str().to_owned(),
        dcv_server_endpoint: resolution.address,
        port: resolution.port,
        web_url_path: resolution.web_url_path,
    }))
}

/// The router on the gateway port.
pub fn router(state: ApiState) -> Router {
    Router::new().route("/resolveSession", post(resolve)).fallback(crate::handlers::not_found).with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports() {
        assert_eq!(transport(None).unwrap(), EndpointProtocol::Http);
        assert_eq!(transport(Some("quic")).unwrap(), EndpointProtocol::Quic);
        assert_eq!(transport(Some("HTTP")).unwrap(), EndpointProtocol::Http);
        assert!(transport(Some("udp")).unwrap_err().to_string().contains("udp"));
    }
}
