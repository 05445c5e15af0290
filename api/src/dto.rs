//! REST DTOs: PascalCase serde structs named like the reference schemas. Absent optional fields are omitted
//! from responses; unknown request fields are ignored. Conversions from domain types live in `convert.rs`.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyValuePair {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Endpoint {
    pub ip_address: String,
    pub port: u16,
    pub web_url_path: String,
    pub protocol: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Os {
    pub family: String,
    pub name: String,
    pub version: String,
    pub kernel_version: String,
    pub build_number: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Memory {
    pub total_bytes: u64,
    pub used_bytes: u64,
}

pub type Swap = Memory;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CpuInfo {
    pub vendor: String,
    pub model_name: String,
    pub architecture: String,
    pub number_of_cpus: u32,
    pub physical_cores_per_cpu: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CpuLoadAverage {
    pub one_minute: f64,
    pub five_minutes: f64,
    pub fifteen_minutes: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Gpu {
    pub vendor: String,
    pub model_name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoggedInUser {
    pub username: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Host {
    pub os: Os,
    pub memory: Memory,
    pub swap: Swap,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws: Option<Aws>,
    pub cpu_info: CpuInfo,
    pub cpu_load_average: CpuLoadAverage,
    pub gpus: Vec<Gpu>,
    pub logged_in_users: Vec<LoggedInUser>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Server {
    pub id: String,
    pub ip: String,
    pub hostname: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_dns_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    pub endpoints: Vec<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web_url_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_manager_agent_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailability_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console_session_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_session_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<Host>,
    pub tags: Vec<KeyValuePair>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Session {
    pub id: String,
    pub name: String,
    pub owner: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<Server>,
    #[serde(rename = "Type")]
    pub session_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent_clients: Option<i64>,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub substate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<String>,
    pub creation_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_disconnection_time: Option<String>,
    pub num_of_connections: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_root: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeSessionsRequestData {
    pub session_ids: Option<Vec<String>>,
    pub filters: Option<Vec<KeyValuePair>>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeSessionsResponse {
    pub request_id: String,
    pub sessions: Vec<Session>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeServersRequestData {
    pub server_ids: Option<Vec<String>>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeServersResponse {
    pub request_id: String,
    pub servers: Vec<Server>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateSessionRequestData {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    pub session_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dcv_gl_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent_clients: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_file_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autorun_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autorun_file_arguments: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions_file: Option<String>,
    /// Older clients spell it without the s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requirements: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enqueue_request: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_retry_on_failure: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_root: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UnsuccessfulCreateSessionRequestData {
    pub create_session_request_data: CreateSessionRequestData,
    pub failure_reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateSessionsResponse {
    pub request_id: String,
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

/// The OAuth2 token answer (snake_case, as RFC 6749 spells it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
}

/// Every error body: `{"error": "..."}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OpenServerRequestData {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CloseServerRequestData {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
}

/// `OpenServerSuccessfulResponse` and `CloseServerSuccessfulResponse` have the same shape.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServerIdResponse {
    pub server_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OpenServerUnsuccessfulResponse {
    pub open_server_request_data: OpenServerRequestData,
    pub failure_code: String,
    pub failure_reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CloseServerUnsuccessfulResponse {
    pub close_server_request_data: CloseServerRequestData,
    pub failure_code: String,
    pub failure_reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OpenServersResponse {
    pub request_id: String,
    pub successful_list: Vec<ServerIdResponse>,
    pub unsuccessful_list: Vec<OpenServerUnsuccessfulResponse>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CloseServersResponse {
    pub request_id: String,
    pub successful_list: Vec<ServerIdResponse>,
    pub unsuccessful_list: Vec<CloseServerUnsuccessfulResponse>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteSessionRequestData {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteSessionSuccessfulResponse {
    pub session_id: String,
    pub state: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteSessionUnsuccessfulResponse {
    pub session_id: String,
    pub failure_reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteSessionsResponse {
    pub request_id: String,
    pub successful_list: Vec<DeleteSessionSuccessfulResponse>,
    pub unsuccessful_list: Vec<DeleteSessionUnsuccessfulResponse>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetSessionConnectionDataResponse {
    pub session: Session,
    pub connection_token: String,
}
