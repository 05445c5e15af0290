//! API errors and the one function that maps them to HTTP status codes and `{"error": ...}` bodies.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use broker_raft::ClusterError;

use crate::dto::ErrorBody;

/// Exactly the text an installer in the field probes for.
pub const NO_AUTHORIZATION_HEADER: &str = "No authorization header";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{NO_AUTHORIZATION_HEADER}")]
    NoAuthorizationHeader,
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("the cluster cannot serve this now: {0}")]
    Cluster(#[from] ClusterError),
    #[error("the cluster has not finished initializing: {0}")]
    NotReady(&'static str),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("The request body could not be read: larger than {0} bytes, or cut off")]
    TooLarge(usize),
}

impl ApiError {
    /// The single mapping from errors to HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NoAuthorizationHeader | ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Cluster(ClusterError::Unavailable(_)) | ApiError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Cluster(ClusterError::Fatal(_)) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "request failed");
        }
        let mut response = (status, Json(ErrorBody { error: self.to_string() })).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert("www-authenticate", axum::http::HeaderValue::from_static("Bearer"));
        }
        response
    }
}
