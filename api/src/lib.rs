//! broker-api: the Session Manager REST API over a `ClusterHandle`. Handlers translate DTOs, stamp ids and
//! times into commands, and map errors once (`error.rs`); decisions live in broker-core.

pub mod auth;
pub mod convert;
pub mod dto;
pub mod error;
pub mod gateway;
mod handlers;
pub mod jwks;
pub mod openapi;
mod paging;
pub mod relayed;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use broker_core::validation::ArgumentLimits;
use broker_core::UnixMillis;
use broker_raft::ClusterHandle;

pub use error::ApiError;

#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Lifetime of the access tokens `/oauth2/token` issues.
    pub token_ttl_secs: u64,
    pub argument_limits: ArgumentLimits,
    /// `connect-session-token-duration-minutes`, in seconds.
    pub connection_token_ttl_secs: u64,
    /// `session-screenshot-max-width`, `-max-height`, `-format`.
    pub screenshot: relayed::ScreenshotDefaults,
    /// `enable-authorization`: API calls need a bearer token.
    pub require_authorization: bool,
    /// `enable-authorization-server`: `/oauth2/token` issues tokens to registered API clients.
    pub issue_tokens: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            token_ttl_secs: 3600,
            argument_limits: ArgumentLimits::default(),
            connection_token_ttl_secs: 3600,
            screenshot: relayed::ScreenshotDefaults::default(),
            require_authorization: true,
            issue_tokens: true,
        }
    }
}

#[derive(Clone)]
pub struct ApiState {
    pub cluster: ClusterHandle,
    pub config: Arc<ApiConfig>,
    /// Key sets of the registered external authorization servers, by JWKS URL.
    pub jwks: Arc<jwks::JwksCache>,
}

/// The wall clock, read once per request by the proposer (apply never reads it).
pub fn now() -> UnixMillis {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    UnixMillis(since.as_millis() as i64)
}

/// The router DCV servers call on the agent port (8445/tcp): external authentication of connection tokens.
pub fn agent_router(state: ApiState) -> Router {
    Router::new()
        .route("/agent/validate-authentication-token", post(handlers::validate_authentication_token))
        .fallback(handlers::not_found)
        .layer(axum::middleware::from_fn(handlers::read_whole_body))
        .with_state(state)
}

/// The client-facing router (port 8443).
pub fn router(state: ApiState) -> Router {
    let authenticated = Router::new()
        .route("/createSessions", post(handlers::create_sessions))
        .route("/describeSessions", post(handlers::describe_sessions))
        .route("/deleteSessions", post(handlers::delete_sessions))
        .route("/describeServers", post(handlers::describe_servers))
        .route("/sessionConnectionData/{session_id}/{user}", get(handlers::session_connection_data))
        .route("/openServers", post(handlers::open_servers))
        .route("/closeServers", post(handlers::close_servers))
        .route("/getSessionScreenshots", post(relayed::get_session_screenshots))
        .route("/sessionPermissions", axum::routing::put(relayed::update_session_permissions))
        .route("/cluster/status", get(handlers::cluster_status))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), handlers::require_bearer));
    Router::new()
        .merge(authenticated)
        .route("/oauth2/token", post(handlers::token))
        .route("/health", get(handlers::health))
        .route("/dcv-session-manager-api.yaml", get(openapi::serve_yaml))
        .fallback(handlers::not_found)
        .with_state(state)
}
