//! REST DTOs: PascalCase serde structs named like the reference schemas. Absent optional fields are omitted
//! from responses; unknown request fields are ignored. Conversions from domain types live in `convert.rs`.
//!
//! The `ToSchema` derives feed the served API definition (`openapi.rs`); clients are generated from it, so schema
//! names, property names, types and formats follow the reference file. Optional fields carry
//! `#[schema(nullable = false)]` because the reference declares them merely optional: a nullable property would
//! change the generated model types (e.g. `JsonNullable<String>` in Java).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Integers the reference declares without a format: generated clients pick the integer width from it.
fn plain_integer() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::Integer).build()
}

/// A key and a value: server tags, and DescribeSessions filters (`owner`, `tag:<key>`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct KeyValuePair {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub value: Option<String>,
}

/// An endpoint a DCV client connects to.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Endpoint {
    pub ip_address: String,
    #[schema(schema_with = plain_integer)]
    pub port: u16,
    pub web_url_path: String,
    /// `HTTP` or `QUIC`.
    pub protocol: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Os {
    /// `windows` or `linux`.
    pub family: String,
    pub name: String,
    pub version: String,
    pub kernel_version: String,
    pub build_number: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Memory {
    pub total_bytes: u64,
    pub used_bytes: u64,
}

pub type Swap = Memory;

// `Swap` has `Memory`'s shape, but the reference names it on its own and generated clients have a `Swap` class.
#[derive(ToSchema)]
#[schema(as = Swap, rename_all = "PascalCase")]
#[allow(dead_code)]
struct SwapSchema {
    total_bytes: u64,
    used_bytes: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct CpuInfo {
    pub vendor: String,
    pub model_name: String,
    pub architecture: String,
    #[schema(schema_with = plain_integer)]
    pub number_of_cpus: u32,
    #[schema(schema_with = plain_integer)]
    pub physical_cores_per_cpu: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct CpuLoadAverage {
    #[schema(format = Float)]
    pub one_minute: f64,
    #[schema(format = Float)]
    pub five_minutes: f64,
    #[schema(format = Float)]
    pub fifteen_minutes: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Gpu {
    pub vendor: String,
    pub model_name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct LoggedInUser {
    pub username: String,
}

/// Present only on EC2 hosts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Aws {
    #[serde(rename = "Region")]
    pub region: String,
    #[serde(rename = "EC2InstanceType")]
    pub ec2_instance_type: String,
    #[serde(rename = "EC2InstanceId")]
    pub ec2_instance_id: String,
    #[serde(rename = "EC2ImageId")]
    pub ec2_image_id: String,
}

/// Facts about the host of a DCV server, as its agent reports them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Host {
    pub os: Os,
    pub memory: Memory,
    #[schema(value_type = SwapSchema)]
    pub swap: Swap,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub aws: Option<Aws>,
    pub cpu_info: CpuInfo,
    pub cpu_load_average: CpuLoadAverage,
    pub gpus: Vec<Gpu>,
    pub logged_in_users: Vec<LoggedInUser>,
}

/// A DCV server with its agent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Server {
    pub id: String,
    pub ip: String,
    pub hostname: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub default_dns_name: Option<String>,
    /// Deprecated: use `Endpoints`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub port: Option<String>,
    pub endpoints: Vec<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub web_url_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub session_manager_agent_version: Option<String>,
    /// `AVAILABLE` or `UNAVAILABLE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub availability: Option<String>,
    /// `SERVER_FULL`, `SERVER_CLOSED`, `UNREACHABLE_AGENT`, `UNHEALTHY_DCV_SERVER`, `EXISTING_LOGGED_IN_USER` or
    /// `UNKNOWN`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub unavailability_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub console_session_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub virtual_session_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub host: Option<Host>,
    pub tags: Vec<KeyValuePair>,
}

/// A DCV session.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Session {
    pub id: String,
    pub name: String,
    pub owner: String,
    /// Absent while the session waits for a server.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub server: Option<Server>,
    /// `CONSOLE` or `VIRTUAL`.
    #[serde(rename = "Type")]
    pub session_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub max_concurrent_clients: Option<i64>,
    /// `CREATING`, `READY`, `DELETING`, `DELETED` or `UNKNOWN`.
    pub state: String,
    /// `SESSION_PLACING` or `PENDING_PREPARATION` while the session is `CREATING`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub substate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub state_reason: Option<String>,
    #[schema(format = DateTime)]
    pub creation_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub last_disconnection_time: Option<String>,
    pub num_of_connections: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub storage_root: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeSessionsRequestData {
    #[schema(nullable = false)]
    pub session_ids: Option<Vec<String>>,
    /// Filter names: `owner`, or `tag:<key>` for a tag of the session's server.
    #[schema(nullable = false)]
    pub filters: Option<Vec<KeyValuePair>>,
    /// 1 to 1000; 1000 when absent.
    #[schema(schema_with = plain_integer)]
    pub max_results: Option<i64>,
    #[schema(nullable = false)]
    pub next_token: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeSessionsResponse {
    pub request_id: String,
    pub sessions: Vec<Session>,
    /// Present when more sessions follow: pass it back as the request's `NextToken`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_token: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeServersRequestData {
    #[schema(nullable = false)]
    pub server_ids: Option<Vec<String>>,
    /// 1 to 1000; 1000 when absent.
    #[schema(schema_with = plain_integer)]
    pub max_results: Option<i64>,
    #[schema(nullable = false)]
    pub next_token: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeServersResponse {
    pub request_id: String,
    pub servers: Vec<Server>,
    /// Present when more servers follow: pass it back as the request's `NextToken`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_token: Option<String>,
}

/// One session to create. `Name`, `Owner` and `Type` are required; an element that lacks them fails on its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct CreateSessionRequestData {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub owner: Option<String>,
    /// `CONSOLE` or `VIRTUAL`.
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub session_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub dcv_gl_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub max_concurrent_clients: Option<i64>,
    /// Replaced by `InitFile`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, deprecated)]
    pub init_file_path: Option<String>,
    /// Relative to the agent's `init_folder`; a path that leaves the folder is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub init_file: Option<String>,
    /// Relative to the agent's `autorun_folder`; a path that leaves the folder is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub autorun_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub autorun_file_arguments: Option<Vec<String>>,
    /// Base64 of a DCV permissions file.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub permissions_file: Option<String>,
    /// Older clients spell it without the s. Left out of the served definition: new clients use `PermissionsFile`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub permission_file: Option<String>,
    /// A placement expression over `tag:<key>` and `server:<Property>`, e.g.
    /// `tag:color = 'pink' and server:Host.CpuInfo.NumberOfCpus >= 2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub requirements: Option<String>,
    /// Keep the request queued when no server can take the session now (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub enqueue_request: Option<bool>,
    /// Do not retry the creation on another server after a failure (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub disable_retry_on_failure: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub storage_root: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct UnsuccessfulCreateSessionRequestData {
    pub create_session_request_data: CreateSessionRequestData,
    pub failure_reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct CreateSessionsResponse {
    pub request_id: String,
    /// The accepted sessions, `CREATING` / `SESSION_PLACING`.
    pub successful_list: Vec<Session>,
    pub unsuccessful_list: Vec<UnsuccessfulCreateSessionRequestData>,
}

/// `GET /cluster/status`, for operators and scripts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClusterStatusResponse {
    pub node_id: u64,
    pub leader_id: Option<u64>,
    pub term: u64,
    pub applied_index: u64,
    /// Beyond the fields scripts rely on: where this node's log, snapshot and purge point are.
    pub last_log_index: u64,
    pub snapshot_index: u64,
    pub purged_index: u64,
    pub state: String,
    pub members: Vec<ClusterMember>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClusterMember {
    pub id: u64,
    pub api_url: String,
}

/// The OAuth 2.0 token answer (snake_case, as RFC 6749 spells it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds.
    pub expires_in: u64,
}

/// The body of every error response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct OpenServerRequestData {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub server_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct CloseServerRequestData {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub server_id: Option<String>,
    /// Close even if sessions run on the server; they keep running (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub force: Option<bool>,
}

/// `OpenServerSuccessfulResponse` and `CloseServerSuccessfulResponse` have the same shape.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServerIdResponse {
    pub server_id: String,
}

// `ServerIdResponse` under the two names the reference gives it, one model class each in generated clients.
#[derive(ToSchema)]
#[schema(as = OpenServerSuccessfulResponse, rename_all = "PascalCase")]
#[allow(dead_code)]
struct OpenServerSuccessfulSchema {
    server_id: String,
}

#[derive(ToSchema)]
#[schema(as = CloseServerSuccessfulResponse, rename_all = "PascalCase")]
#[allow(dead_code)]
struct CloseServerSuccessfulSchema {
    server_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct OpenServerUnsuccessfulResponse {
    pub open_server_request_data: OpenServerRequestData,
    /// e.g. `DCV_SERVER_NOT_FOUND`.
    pub failure_code: String,
    pub failure_reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct CloseServerUnsuccessfulResponse {
    pub close_server_request_data: CloseServerRequestData,
    /// e.g. `DCV_SERVER_NOT_FOUND`, `DCV_SERVER_HAS_SESSIONS`.
    pub failure_code: String,
    pub failure_reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct OpenServersResponse {
    pub request_id: String,
    #[schema(value_type = Vec<OpenServerSuccessfulSchema>)]
    pub successful_list: Vec<ServerIdResponse>,
    pub unsuccessful_list: Vec<OpenServerUnsuccessfulResponse>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct CloseServersResponse {
    pub request_id: String,
    #[schema(value_type = Vec<CloseServerSuccessfulSchema>)]
    pub successful_list: Vec<ServerIdResponse>,
    pub unsuccessful_list: Vec<CloseServerUnsuccessfulResponse>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteSessionRequestData {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub owner: Option<String>,
    /// Forget the session even if its server cannot be reached (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, default = false)]
    pub force: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteSessionSuccessfulResponse {
    pub session_id: String,
    /// `DELETING`, or `DELETED` once gone.
    pub state: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteSessionUnsuccessfulResponse {
    pub session_id: String,
    pub failure_reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteSessionsResponse {
    pub request_id: String,
    pub successful_list: Vec<DeleteSessionSuccessfulResponse>,
    pub unsuccessful_list: Vec<DeleteSessionUnsuccessfulResponse>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct GetSessionConnectionDataResponse {
    pub session: Session,
    /// An authentication token the DCV server accepts for this user and session only, until it expires.
    pub connection_token: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateSessionPermissionsRequestData {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub owner: Option<String>,
    /// Base64 of a DCV permissions file.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub permissions_file: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateSessionPermissionsSuccessfulResponse {
    pub session_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateSessionPermissionsUnsuccessfulResponse {
    pub session_id: String,
    pub failure_reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateSessionPermissionsResponse {
    pub request_id: String,
    pub successful_list: Vec<UpdateSessionPermissionsSuccessfulResponse>,
    pub unsuccessful_list: Vec<UpdateSessionPermissionsUnsuccessfulResponse>,
}

/// `MaxWidth` / `MaxHeight`: absent or null means the broker's `session-screenshot-max-width` / `-max-height`;
/// otherwise it must be above 0.
// The only properties the reference declares nullable, hence no `nullable = false` on them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct GetSessionScreenshotRequestData {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_width: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_height: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct SessionScreenshotImage {
    /// `png` or `jpeg`.
    pub format: String,
    /// Base64 of the encoded image.
    pub data: String,
    #[schema(format = DateTime)]
    pub creation_time: String,
    pub primary: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct SessionScreenshot {
    pub session_id: String,
    pub images: Vec<SessionScreenshotImage>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct GetSessionScreenshotSuccessfulResponse {
    pub session_screenshot: SessionScreenshot,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct GetSessionScreenshotUnsuccessfulResponse {
    pub get_session_screenshot_request_data: GetSessionScreenshotRequestData,
    pub failure_reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct GetSessionScreenshotsResponse {
    pub request_id: String,
    pub successful_list: Vec<GetSessionScreenshotSuccessfulResponse>,
    pub unsuccessful_list: Vec<GetSessionScreenshotUnsuccessfulResponse>,
}

/// The DCV Connection Gateway's session resolver answer (`POST /resolveSession` on the gateway port).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResolveSessionResponse {
    pub session_id: String,
    pub transport_protocol: String,
    pub dcv_server_endpoint: String,
    pub port: u16,
    pub web_url_path: String,
}
