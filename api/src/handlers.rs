//! HTTP handlers: parse, authenticate, translate to commands or state reads, translate back.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use broker_core::query::{self, SessionFilter};
use broker_core::validation::validate;
use broker_core::{Command, Deletion, NewSession, OpenChange, Response as Applied, ServerChangeError};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::auth::{self, AuthError};
use crate::convert;
use crate::dto::{self, TokenResponse};
use crate::error::ApiError;
use crate::paging;
use crate::{now, ApiState};

/// The shape of an operation's body: one request object (optional: an empty body is the default), or a
/// batch, a JSON array of request objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    Object { optional: bool },
    Batch,
}

fn malformed(message: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("Malformed request body: {message}"))
}

/// Where a JSON array stands in for an object, which serde's derived structs would otherwise accept field by
/// field. The API has no list of lists, so an array directly inside an array is always such a stand-in.
fn array_for_object(value: &serde_json::Value, path: &str) -> Option<String> {
    match value {
        serde_json::Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| match item {
            serde_json::Value::Array(_) => Some(format!("{path}[{i}]")),
            other => array_for_object(other, &format!("{path}[{i}]")),
        }),
        serde_json::Value::Object(fields) => {
            fields.iter().find_map(|(key, field)| array_for_object(field, &format!("{path}.{key}")))
        }
        _ => None,
    }
}

/// Parses a JSON body of the given shape. Request objects must be JSON objects: an array in their place is a
/// 400, never read as the object's fields in order.
pub(crate) fn parse_body<T: DeserializeOwned + Default>(body: &Bytes, shape: Body) -> Result<T, ApiError> {
    if shape == (Body::Object { optional: true }) && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(malformed)?;
    match (&value, shape) {
        (serde_json::Value::Object(_), Body::Object { .. }) | (serde_json::Value::Array(_), Body::Batch) => {}
        (_, Body::Object { .. }) => return Err(malformed("expected a JSON object")),
        (_, Body::Batch) => return Err(malformed("expected a JSON array of request objects")),
    }
    if let Some(at) = array_for_object(&value, "$") {
        return Err(malformed(format!("expected an object at {at}, got an array")));
    }
    serde_json::from_value(value).map_err(malformed)
}

fn signing_key(state: &ApiState) -> Result<Vec<u8>, ApiError> {
    state
        .cluster
        .read(|s| s.signing_key().map(<[u8]>::to_vec))
        .ok_or(ApiError::NotReady("no signing key has been replicated to this node yet"))
}

pub(crate) fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// axum's default request body limit, which every handler here keeps.
const REQUEST_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// Reads every request's body before anything answers it. An answer sent early (a 401, a 405) would leave
/// unread bytes behind, and the server then closes a connection the client believes it can reuse: its next
/// request on it fails with a reset. Bodies over the limit are refused with 413 and the connection closed.
pub async fn read_whole_body(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, REQUEST_BODY_LIMIT).await {
        Ok(bytes) => next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await,
        Err(_) => {
            let mut response = ApiError::TooLarge(REQUEST_BODY_LIMIT).into_response();
            response
                .headers_mut()
                .insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
            response
        }
    }
}

pub async fn require_bearer(State(state): State<ApiState>, request: Request, next: Next) -> Result<Response, ApiError> {
    // enable-authorization = false: a site that fences the API off by other means accepts every caller.
    if state.config.require_authorization {
        auth::authorize(&state, request.headers()).await?;
    }
    Ok(next.run(request).await)
}

/// A query string that does not parse (a repeated parameter, say) is a 400 with our JSON body, like any other
/// bad input, not axum's plain-text rejection.
pub(crate) fn bad_query(rejection: QueryRejection) -> ApiError {
    ApiError::BadRequest(rejection.body_text())
}

#[derive(Deserialize)]
pub struct TokenQuery {
    grant_type: Option<String>,
}

/// `POST /oauth2/token?grant_type=client_credentials` with Basic client authentication.
pub async fn token(
    State(state): State<ApiState>,
    query: Result<Query<TokenQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<TokenResponse>, ApiError> {
    let Query(query) = query.map_err(bad_query)?;
    if !state.config.issue_tokens {
        return Err(ApiError::NotFound(
            "This broker issues no tokens (enable-authorization-server = false): get one from a registered \
             authorization server"
                .into(),
        ));
    }
    let form_grant = std::str::from_utf8(&body)
        .ok()
        .and_then(|text| text.split('&').find_map(|pair| pair.strip_prefix("grant_type=").map(str::to_owned)));
    match query.grant_type.or(form_grant).as_deref() {
        Some("client_credentials") => {}
        Some(other) => return Err(ApiError::BadRequest(format!("Unsupported grant_type '{other}'"))),
        None => return Err(ApiError::BadRequest("grant_type=client_credentials is required".into())),
    }
    let header = headers.get(axum::http::header::AUTHORIZATION).ok_or(ApiError::NoAuthorizationHeader)?;
    let header = header.to_str().map_err(|_| ApiError::Unauthorized(AuthError::MalformedBasic.to_string()))?;
    let (client_id, secret) = auth::parse_basic(header).map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    let mut client = state.cluster.read(|s| s.api_client(&client_id).cloned());
    if client.is_none() {
        // Registered a moment ago through another node: catch up before saying no.
        state.cluster.read_barrier().await?;
        client = state.cluster.read(|s| s.api_client(&client_id).cloned());
    }
    let client = client.ok_or_else(|| ApiError::Unauthorized(AuthError::InvalidClient.to_string()))?;
    if !auth::verify_secret(&client, &secret) {
        return Err(ApiError::Unauthorized(AuthError::InvalidClient.to_string()));
    }
    let key = signing_key(&state)?;
    let now_secs = (now().0 / 1000) as u64;
    let ttl = state.config.token_ttl_secs;
    let access_token =
        auth::issue_token(&key, &client.client_id, now_secs, ttl).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(TokenResponse { access_token, token_type: "Bearer".into(), expires_in: ttl }))
}

pub async fn create_sessions(
    State(state): State<ApiState>,
    body: Bytes,
) -> Result<Json<dto::CreateSessionsResponse>, ApiError> {
    let requests: Vec<dto::CreateSessionRequestData> = parse_body(&body, Body::Batch)?;
    let mut unsuccessful = Vec::new();
    let mut accepted = Vec::new();
    for data in requests {
        match validate(convert::session_request(&data), state.config.argument_limits) {
            Ok(spec) => accepted.push(NewSession { id: uuid::Uuid::new_v4().to_string(), spec }),
            Err(reason) => unsuccessful.push(dto::UnsuccessfulCreateSessionRequestData {
                create_session_request_data: data,
                failure_reason: reason.to_string(),
            }),
        }
    }
    let request_id = request_id();
    let mut successful = Vec::new();
    if !accepted.is_empty() {
        let command = Command::CreateSessions { request_id: request_id.clone(), now: now(), sessions: accepted };
        match state.cluster.write(command).await? {
            Applied::SessionsCreated { sessions } => {
                successful =
                    state.cluster.read(|s| sessions.iter().map(|session| convert::session(s, session)).collect());
            }
            other => return Err(ApiError::Internal(format!("unexpected apply result {other:?}"))),
        }
    }
    Ok(Json(dto::CreateSessionsResponse { request_id, successful_list: successful, unsuccessful_list: unsuccessful }))
}

fn session_filters(filters: Option<Vec<dto::KeyValuePair>>) -> Result<Vec<SessionFilter>, ApiError> {
    filters
        .unwrap_or_default()
        .into_iter()
        .map(|pair| {
            SessionFilter::parse(pair.key.as_deref().unwrap_or_default(), pair.value.as_deref().unwrap_or_default())
                .map_err(|e| ApiError::BadRequest(e.to_string()))
        })
        .collect()
}

pub async fn describe_sessions(
    State(state): State<ApiState>,
    body: Bytes,
) -> Result<Json<dto::DescribeSessionsResponse>, ApiError> {
    let request: dto::DescribeSessionsRequestData = parse_body(&body, Body::Object { optional: true })?;
    let limit = paging::page_size(request.max_results)?;
    let filters = session_filters(request.filters)?;
    state.cluster.read_barrier().await?;
    let key = signing_key(&state)?;
    let after = request.next_token.as_deref().map(|t| paging::read_token(&key, "sessions", t)).transpose()?;
    let ids = request.session_ids.unwrap_or_default();
    let (sessions, next) = state.cluster.read(|s| {
        let page = query::sessions(s, &ids, &filters, after.as_deref(), limit);
        (page.items.into_iter().map(|session| convert::session(s, session)).collect(), page.continue_after)
    });
    Ok(Json(dto::DescribeSessionsResponse {
        request_id: request_id(),
        sessions,
        next_token: next.map(|id| paging::make_token(&key, "sessions", &id)),
    }))
}

pub async fn describe_servers(
    State(state): State<ApiState>,
    body: Bytes,
) -> Result<Json<dto::DescribeServersResponse>, ApiError> {
    let request: dto::DescribeServersRequestData = parse_body(&body, Body::Object { optional: true })?;
    let limit = paging::page_size(request.max_results)?;
    state.cluster.read_barrier().await?;
    let key = signing_key(&state)?;
    let after = request.next_token.as_deref().map(|t| paging::read_token(&key, "servers", t)).transpose()?;
    let ids = request.server_ids.unwrap_or_default();
    let (servers, next) = state.cluster.read(|s| {
        let page = query::servers(s, &ids, after.as_deref(), limit);
        (page.items.into_iter().map(convert::server).collect(), page.continue_after)
    });
    Ok(Json(dto::DescribeServersResponse {
        request_id: request_id(),
        servers,
        next_token: next.map(|id| paging::make_token(&key, "servers", &id)),
    }))
}

pub async fn cluster_status(State(state): State<ApiState>) -> Json<dto::ClusterStatusResponse> {
    let status = state.cluster.status();
    Json(dto::ClusterStatusResponse {
        node_id: status.node_id,
        leader_id: status.leader_id,
        term: status.term,
        applied_index: status.applied_index,
        last_log_index: status.last_log_index,
        snapshot_index: status.snapshot_index,
        purged_index: status.purged_index,
        state: status.state,
        members: status
            .members
            .into_iter()
            .map(|(id, node)| dto::ClusterMember { id, api_url: node.api_url })
            .collect(),
    })
}

/// Unauthenticated liveness for scripts and container health checks: 200 once this node knows a leader.
pub async fn health(State(state): State<ApiState>) -> Response {
    match state.cluster.status().leader_id {
        Some(_) => (StatusCode::OK, "ok\n").into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "no leader\n").into_response(),
    }
}

pub async fn not_found(request: Request) -> ApiError {
    ApiError::NotFound(format!("No such operation: {} {}", request.method(), request.uri().path()))
}

/// The failure code and reason clients know for a refused open or close.
fn server_change_failure(error: &ServerChangeError) -> (String, String) {
    let code = match error {
        ServerChangeError::NotFound => "DCV_SERVER_NOT_FOUND",
        ServerChangeError::HasSessions { .. } => "DCV_SERVER_HAS_SESSIONS",
    };
    (code.to_owned(), error.to_string())
}

const MISSING_SERVER_ID: (&str, &str) = ("INVALID_REQUEST", "The ServerId parameter is required");

/// Applies open/close changes; returns, per change, Ok or its (code, reason). Elements without a server id never
/// reach the cluster.
async fn change_servers(
    state: &ApiState,
    changes: Vec<Option<OpenChange>>,
) -> Result<Vec<Result<String, (String, String)>>, ApiError> {
    let valid: Vec<OpenChange> = changes.iter().flatten().cloned().collect();
    let mut applied = Vec::new();
    if !valid.is_empty() {
        match state.cluster.write(Command::SetServersOpen { changes: valid, now: now() }).await? {
            Applied::ServersChanged { results } => applied = results,
            other => return Err(ApiError::Internal(format!("unexpected apply result {other:?}"))),
        }
    }
    let mut applied = applied.into_iter();
    Ok(changes
        .into_iter()
        .map(|change| match change {
            None => Err((MISSING_SERVER_ID.0.to_owned(), MISSING_SERVER_ID.1.to_owned())),
            Some(change) => match applied.next() {
                Some(Ok(())) => Ok(change.server_id),
                Some(Err(e)) => Err(server_change_failure(&e)),
                None => Err(("INTERNAL".to_owned(), "no result from the cluster".to_owned())),
            },
        })
        .collect())
}

pub async fn open_servers(
    State(state): State<ApiState>,
    body: Bytes,
) -> Result<Json<dto::OpenServersResponse>, ApiError> {
    let requests: Vec<dto::OpenServerRequestData> = parse_body(&body, Body::Batch)?;
    let changes = requests
        .iter()
        .map(|r| {
            r.server_id.clone().filter(|id| !id.is_empty()).map(|server_id| OpenChange {
                server_id,
                open: true,
                force: false,
            })
        })
        .collect();
    let mut response = dto::OpenServersResponse { request_id: request_id(), ..Default::default() };
    for (request, result) in requests.into_iter().zip(change_servers(&state, changes).await?) {
        match result {
            Ok(server_id) => response.successful_list.push(dto::ServerIdResponse { server_id }),
            Err((failure_code, failure_reason)) => {
                response.unsuccessful_list.push(dto::OpenServerUnsuccessfulResponse {
                    open_server_request_data: request,
                    failure_code,
                    failure_reason,
                })
            }
        }
    }
    Ok(Json(response))
}

pub async fn close_servers(
    State(state): State<ApiState>,
    body: Bytes,
) -> Result<Json<dto::CloseServersResponse>, ApiError> {
    let requests: Vec<dto::CloseServerRequestData> = parse_body(&body, Body::Batch)?;
    let changes = requests
        .iter()
        .map(|r| {
            r.server_id.clone().filter(|id| !id.is_empty()).map(|server_id| OpenChange {
                server_id,
                open: false,
                force: r.force.unwrap_or(false),
            })
        })
        .collect();
    let mut response = dto::CloseServersResponse { request_id: request_id(), ..Default::default() };
    for (request, result) in requests.into_iter().zip(change_servers(&state, changes).await?) {
        match result {
            Ok(server_id) => response.successful_list.push(dto::ServerIdResponse { server_id }),
            Err((failure_code, failure_reason)) => {
                response.unsuccessful_list.push(dto::CloseServerUnsuccessfulResponse {
                    close_server_request_data: request,
                    failure_code,
                    failure_reason,
                })
            }
        }
    }
    Ok(Json(response))
}

pub async fn delete_sessions(
    State(state): State<ApiState>,
    body: Bytes,
) -> Result<Json<dto::DeleteSessionsResponse>, ApiError> {
    let requests: Vec<dto::DeleteSessionRequestData> = parse_body(&body, Body::Batch)?;
    let mut response = dto::DeleteSessionsResponse { request_id: request_id(), ..Default::default() };
    let mut deletions = Vec::new();
    for request in requests {
        match request.session_id.filter(|id| !id.is_empty()) {
            Some(session_id) => deletions.push(Deletion {
                session_id,
                owner: request.owner.filter(|owner| !owner.is_empty()),
                force: request.force.unwrap_or(false),
            }),
            None => response.unsuccessful_list.push(dto::DeleteSessionUnsuccessfulResponse {
                session_id: String::new(),
                failure_reason: "The SessionId parameter is required".into(),
            }),
        }
    }
    if deletions.is_empty() {
        return Ok(Json(response));
    }
    let ids: Vec<String> = deletions.iter().map(|d| d.session_id.clone()).collect();
    let results = match state.cluster.write(Command::DeleteSessions { deletions, now: now() }).await? {
        Applied::SessionsDeleting { results } => results,
        other => return Err(ApiError::Internal(format!("unexpected apply result {other:?}"))),
    };
    for (session_id, result) in ids.into_iter().zip(results) {
        match result {
            Ok(after) => response
                .successful_list
                .push(dto::DeleteSessionSuccessfulResponse { session_id, state: after.as_api_str().to_owned() }),
            Err(e) => response
                .unsuccessful_list
                .push(dto::DeleteSessionUnsuccessfulResponse { session_id, failure_reason: e.to_string() }),
        }
    }
    Ok(Json(response))
}

/// `GET /sessionConnectionData/{sessionId}/{user}`: the session and a token that lets `user` into it.
pub async fn session_connection_data(
    State(state): State<ApiState>,
    axum::extract::Path((session_id, user)): axum::extract::Path<(String, String)>,
) -> Result<Json<dto::GetSessionConnectionDataResponse>, ApiError> {
    state.cluster.read_barrier().await?;
    let key = signing_key(&state)?;
    let session = state
        .cluster
        .read(|s| {
            s.session(&session_id)
                .filter(|session| session.state != broker_core::SessionState::Deleted)
                .map(|session| convert::session(s, session))
        })
        .ok_or_else(|| ApiError::BadRequest("The requested dcvSession does not exist".into()))?;
    let now_secs = (now().0 / 1000) as u64;
    let connection_token =
        auth::issue_connection_token(&key, &user, &session_id, now_secs, state.config.connection_token_ttl_secs)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(dto::GetSessionConnectionDataResponse { session, connection_token }))
}

#[derive(Debug, Default, PartialEq)]
pub struct ValidateForm {
    session_id: Option<String>,
    authentication_token: Option<String>,
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

fn auth_answer(result: Result<String, String>) -> Response {
    let body = match result {
        Ok(user) => format!("<auth result=\"yes\"><username>{}</username></auth>", xml_escape(&user)),
        Err(message) => format!("<auth result=\"no\"><message>{}</message></auth>", xml_escape(&message)),
    };
    ([(axum::http::header::CONTENT_TYPE, "text/xml")], body).into_response()
}

/// The DCV server's external authentication call (its `auth-token-verifier`): a form with `sessionId` and
/// `authenticationToken`, answered in DCV's XML. Any node answers it: the key is replicated.
pub async fn validate_authentication_token(State(state): State<ApiState>, body: Bytes) -> Response {
    let form = match parse_form(&body) {
        Ok(form) => form,
        Err(message) => return auth_answer(Err(message)),
    };
    let (Some(session_id), Some(token)) = (form.session_id, form.authentication_token) else {
        return auth_answer(Err("sessionId and authenticationToken are required".into()));
    };
    let Ok(key) = signing_key(&state) else {
        return auth_answer(Err("the broker is not ready".into()));
    };
    let exists = state
        .cluster
        .read(|s| s.session(&session_id).is_some_and(|session| session.state != broker_core::SessionState::Deleted));
    if !exists {
        return auth_answer(Err("unknown session".into()));
    }
    auth_answer(auth::verify_connection_token(&key, &token, &session_id).map_err(|e| e.to_string()))
}

/// Reads `application/x-www-form-urlencoded` text (percent escapes and `+` for space).
fn parse_form(body: &[u8]) -> Result<ValidateForm, String> {
    let text = std::str::from_utf8(body).map_err(|_| "malformed form: not UTF-8".to_owned())?;
    let mut form = ValidateForm::default();
    for pair in text.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value).ok_or_else(|| format!("malformed form value for {name}"))?;
        match name {
            "sessionId" => form.session_id = Some(value),
            "authenticationToken" => form.authentication_token = Some(value),
            _ => {}
        }
    }
    Ok(form)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod form_tests {
    use super::*;

    #[test]
    fn forms_decode() {
        let form = parse_form(b"sessionId=a%2Fb&authenticationToken=x+y&clientAddress=1.2.3.4").unwrap();
        assert_eq!(form.session_id.as_deref(), Some("a/b"));
        assert_eq!(form.authentication_token.as_deref(), Some("x y"));
        assert!(parse_form(b"sessionId=%zz").is_err());
        assert_eq!(parse_form(b"").unwrap(), ValidateForm::default());
    }
}

#[cfg(test)]
mod body_tests {
    use super::*;

    fn batch(text: &str) -> Result<Vec<dto::CloseServerRequestData>, ApiError> {
        parse_body(&Bytes::from(text.to_owned()), Body::Batch)
    }

    fn describe(text: &str) -> Result<dto::DescribeSessionsRequestData, ApiError> {
        parse_body(&Bytes::from(text.to_owned()), Body::Object { optional: true })
    }

    #[test]
    fn request_objects_must_be_objects() {
        let table: &[(&str, Option<&str>)] = &[
            (r#"[{"ServerId": "s1", "Force": true}]"#, None),
            ("[]", None),
            (r#"[["s1", true]]"#, Some("expected an object at $[0], got an array")),
            (r#"{"ServerId": "s1"}"#, Some("expected a JSON array of request objects")),
            ("", Some("Malformed request body")),
            ("[1]", Some("Malformed request body")),
        ];
        for (text, refusal) in table {
            match (batch(text), refusal) {
                (Ok(_), None) => {}
                (Err(e), Some(expected)) => assert!(e.to_string().contains(expected), "{text}: {e}"),
                (other, _) => panic!("{text}: unexpected {other:?}"),
            }
        }
        assert!(describe("").is_ok(), "an empty describe body is the default request");
        assert!(describe(r#"{"SessionIds": ["a"], "Filters": [{"Key": "owner", "Value": "x"}]}"#).is_ok());
        let e = describe(r#"[["a"], [], 1, null]"#).unwrap_err().to_string();
        assert!(e.contains("expected a JSON object"), "{e}");
        let e = describe(r#"{"Filters": [["owner", "x"]]}"#).unwrap_err().to_string();
        assert!(e.contains("$.Filters[0]"), "{e}");
    }
}
