//! The operations answered by agents, relayed through the leader (follower, leader, server actor, agent):
//! GetSessionScreenshots and UpdateSessionPermissions. Each element succeeds or fails on its own.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use base64::Engine;
use broker_core::agent_proto::{AgentReply, BrokerRequest, ImageFormat};
use broker_core::{Command, SessionState};

use crate::convert::iso_time;
use crate::dto;
use crate::error::ApiError;
use crate::handlers::{parse_body, request_id, Body};
use crate::{now, ApiState};

/// The failure text clients rely on for an unknown session (API-NOTES.md, byte for byte).
pub const SCREENSHOT_SESSION_NOT_FOUND: &str = "Dcv session not found.";
const PERMISSIONS_SESSION_NOT_FOUND: &str = "The requested dcvSession does not exist";

/// Screenshot defaults when a request leaves MaxWidth / MaxHeight out (`session-screenshot-*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScreenshotDefaults {
    pub max_width: u32,
    pub max_height: u32,
    pub format: ImageFormat,
}

impl Default for ScreenshotDefaults {
    fn default() -> Self {
        ScreenshotDefaults { max_width: 160, max_height: 100, format: ImageFormat::Png }
    }
}

/// A READY session's server, or the reason the operation cannot reach it.
fn ready_server(state: &ApiState, session_id: &str, owner: Option<&str>, not_found: &str) -> Result<String, String> {
    state.cluster.read(|s| {
        let session = s
            .session(session_id)
            .filter(|session| session.state != SessionState::Deleted)
            .filter(|session| owner.is_none_or(|owner| owner == session.spec.owner))
            .ok_or_else(|| not_found.to_owned())?;
        match (&session.state, &session.server_id) {
            (SessionState::Ready, Some(server_id)) => Ok(server_id.clone()),
            (state, _) => Err(format!("The session is not ready (state {})", state.as_api_str())),
        }
    })
}

/// MaxWidth / MaxHeight: absent means the configured default; otherwise it must be positive.
fn dimension(value: Option<i64>, default: u32, name: &str) -> Result<u32, String> {
    match value {
        None => Ok(default),
        Some(v) if v > 0 => Ok(u32::try_from(v).unwrap_or(u32::MAX)),
        Some(v) => Err(format!("{name} must be greater than 0, got {v}")),
    }
}

async fn screenshot(
    state: &ApiState,
    request: &dto::GetSessionScreenshotRequestData,
) -> Result<dto::SessionScreenshot, String> {
    let defaults = state.config.screenshot;
    let session_id =
        request.session_id.clone().filter(|id| !id.is_empty()).ok_or("The SessionId parameter is required")?;
    let max_width = dimension(request.max_width, defaults.max_width, "MaxWidth")?;
    let max_height = dimension(request.max_height, defaults.max_height, "MaxHeight")?;
    let server_id = ready_server(state, &session_id, None, SCREENSHOT_SESSION_NOT_FOUND)?;
    let ask =
        BrokerRequest::GetScreenshot { session_id: session_id.clone(), max_width, max_height, format: defaults.format };
    let taken_at = iso_time(now());
    match state.cluster.agent_call(&server_id, ask).await.map_err(|e| e.to_string())? {
        AgentReply::Screenshot { images, .. } => Ok(dto::SessionScreenshot {
            session_id,
            images: images
                .into_iter()
                .map(|image| dto::SessionScreenshotImage {
                    format: image.format.as_str().to_owned(),
                    data: base64::engine::general_purpose::STANDARD.encode(&image.data),
                    creation_time: taken_at.clone(),
                    primary: image.primary,
                })
                .collect(),
        }),
        AgentReply::NoSuchSession { .. } => Err(SCREENSHOT_SESSION_NOT_FOUND.to_owned()),
        AgentReply::Failed { reason, .. } => Err(reason),
        other => Err(format!("unexpected agent reply {other:?}")),
    }
}

/// `POST /getSessionScreenshots`.
pub async fn get_session_screenshots(
    State(state): State<ApiState>,
    body: Bytes,
) -> Result<Json<dto::GetSessionScreenshotsResponse>, ApiError> {
    let requests: Vec<dto::GetSessionScreenshotRequestData> = parse_body(&body, Body::Batch)?;
    // One barrier for the batch: every session acknowledged before the call is visible to it.
    state.cluster.read_barrier().await?;
    let answers = futures::future::join_all(requests.iter().map(|request| screenshot(&state, request))).await;
    let mut response = dto::GetSessionScreenshotsResponse { request_id: request_id(), ..Default::default() };
    for (request, answer) in requests.into_iter().zip(answers) {
        match answer {
            Ok(session_screenshot) => {
                response.successful_list.push(dto::GetSessionScreenshotSuccessfulResponse { session_screenshot })
            }
            Err(failure_reason) => response.unsuccessful_list.push(dto::GetSessionScreenshotUnsuccessfulResponse {
                get_session_screenshot_request_data: request,
                failure_reason,
            }),
        }
    }
    Ok(Json(response))
}

async fn update_permissions(
    state: &ApiState,
    request: &dto::UpdateSessionPermissionsRequestData,
) -> Result<(), String> {
    let session_id =
        request.session_id.as_deref().filter(|id| !id.is_empty()).ok_or("The SessionId parameter is required")?;
    let permissions_file = request.permissions_file.clone().filter(|file| !file.is_empty());
    if let Some(file) = &permissions_file {
        base64::engine::general_purpose::STANDARD
            .decode(file)
            .map_err(|e| format!("The PermissionsFile parameter is not valid base64: {e}"))?;
    }
    let owner = request.owner.as_deref().filter(|owner| !owner.is_empty());
    let server_id = ready_server(state, session_id, owner, PERMISSIONS_SESSION_NOT_FOUND)?;
    let ask = BrokerRequest::UpdatePermissions {
        session_id: session_id.to_owned(),
        permissions_file: permissions_file.clone(),
    };
    match state.cluster.agent_call(&server_id, ask).await.map_err(|e| e.to_string())? {
        AgentReply::PermissionsUpdated { .. } => {}
        AgentReply::NoSuchSession { .. } => return Err(PERMISSIONS_SESSION_NOT_FOUND.to_owned()),
        AgentReply::Failed { reason, .. } => return Err(reason),
        other => return Err(format!("unexpected agent reply {other:?}")),
    }
    // Kept in the state so that a session re-created elsewhere (or after a failover) gets the same file.
    let record = Command::SetSessionPermissions { session_id: session_id.to_owned(), permissions_file, now: now() };
    state
        .cluster
        .write(record)
        .await
        .map_err(|e| format!("the agent applied the permissions, but the cluster did not record them: {e}"))?;
    Ok(())
}

/// `PUT /sessionPermissions`.
pub async fn update_session_permissions(
    State(state): State<ApiState>,
    body: Bytes,
) -> Result<Json<dto::UpdateSessionPermissionsResponse>, ApiError> {
    let requests: Vec<dto::UpdateSessionPermissionsRequestData> = parse_body(&body, Body::Batch)?;
    state.cluster.read_barrier().await?;
    let answers = futures::future::join_all(requests.iter().map(|request| update_permissions(&state, request))).await;
    let mut response = dto::UpdateSessionPermissionsResponse { request_id: request_id(), ..Default::default() };
    for (request, answer) in requests.into_iter().zip(answers) {
        let session_id = request.session_id.unwrap_or_default();
        match answer {
            Ok(()) => response.successful_list.push(dto::UpdateSessionPermissionsSuccessfulResponse { session_id }),
            Err(failure_reason) => response
                .unsuccessful_list
                .push(dto::UpdateSessionPermissionsUnsuccessfulResponse { session_id, failure_reason }),
        }
    }
    Ok(Json(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_default_or_must_be_positive() {
        assert_eq!(dimension(None, 160, "MaxWidth"), Ok(160));
        assert_eq!(dimension(Some(20), 160, "MaxWidth"), Ok(20));
        assert_eq!(dimension(Some(i64::MAX), 160, "MaxWidth"), Ok(u32::MAX));
        assert_eq!(dimension(Some(0), 160, "MaxWidth"), Err("MaxWidth must be greater than 0, got 0".into()));
        assert!(dimension(Some(-5), 100, "MaxHeight").unwrap_err().starts_with("MaxHeight"));
    }
}
