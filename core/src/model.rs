//! Domain types held in the replicated state: sessions, servers, host facts, API clients.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, stamped by the proposer (apply never reads a clock).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UnixMillis(pub i64);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SessionType {
    Console,
    Virtual,
}

impl SessionType {
    /// The wire spelling used by the Session Manager API.
    pub fn as_api_str(self) -> &'static str {
        match self {
            SessionType::Console => "CONSOLE",
            SessionType::Virtual => "VIRTUAL",
        }
    }

    /// Accepts the API spelling, case-insensitively as the original broker does.
    pub fn parse_api(text: &str) -> Option<SessionType> {
        match text.to_ascii_uppercase().as_str() {
            "CONSOLE" => Some(SessionType::Console),
            "VIRTUAL" => Some(SessionType::Virtual),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SessionState {
    Creating,
    Ready,
    Deleting,
    Deleted,
    Unknown,
}

impl SessionState {
    pub fn as_api_str(self) -> &'static str {
        match self {
            SessionState::Creating => "CREATING",
            SessionState::Ready => "READY",
            SessionState::Deleting => "DELETING",
            SessionState::Deleted => "DELETED",
            SessionState::Unknown => "UNKNOWN",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Substate {
    /// Waiting for a server.
    SessionPlacing,
    /// Bound to a server (capacity reserved), not yet usable.
    PendingPreparation,
}

impl Substate {
    pub fn as_api_str(self) -> &'static str {
        match self {
            Substate::SessionPlacing => "SESSION_PLACING",
            Substate::PendingPreparation => "PENDING_PREPARATION",
        }
    }
}

/// What a client asked for in one CreateSessions element, after validation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionSpec {
    pub name: String,
    pub owner: String,
    pub session_type: Option<SessionType>,
    pub dcv_gl_enabled: Option<bool>,
    pub max_concurrent_clients: Option<i64>,
    pub init_file: Option<String>,
    pub autorun_file: Option<String>,
    pub autorun_file_arguments: Vec<String>,
    pub permissions_file: Option<String>,
    pub requirements: Option<String>,
    pub enqueue_request: bool,
    pub disable_retry_on_failure: bool,
    pub storage_root: Option<String>,
}

impl SessionSpec {
    pub fn kind(&self) -> SessionType {
        self.session_type.unwrap_or(SessionType::Virtual)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub spec: SessionSpec,
    pub state: SessionState,
    pub substate: Option<Substate>,
    pub state_reason: Option<String>,
    /// The server holding this session's reservation, once placed.
    pub server_id: Option<String>,
    pub creation_time: UnixMillis,
    pub last_disconnection_time: Option<UnixMillis>,
    pub num_of_connections: u64,
    /// Servers on which creation already failed; placement avoids them.
    pub failed_servers: Vec<String>,
    /// When the session became DELETED; it is purged `delete-session-duration-hours` later.
    pub ended_at: Option<UnixMillis>,
}

impl Session {
    /// True while the session counts against its server's capacity.
    pub fn holds_capacity(&self) -> bool {
        self.server_id.is_some()
            && matches!(
                self.state,
                SessionState::Creating | SessionState::Ready | SessionState::Deleting | SessionState::Unknown
            )
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OsInfo {
    pub family: String,
    pub name: String,
    pub version: String,
    pub kernel_version: String,
    pub build_number: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryInfo {
    pub total_bytes: u64,
    pub used_bytes: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuInfo {
    pub vendor: String,
    pub model_name: String,
    pub architecture: String,
    pub number_of_cpus: u32,
    pub physical_cores_per_cpu: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadAverage {
    pub one_minute: f64,
    pub five_minutes: f64,
    pub fifteen_minutes: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuInfo {
    pub vendor: String,
    pub model_name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AwsInfo {
    pub region: String,
    pub ec2_instance_type: String,
    pub ec2_instance_id: String,
    pub ec2_image_id: String,
}

/// Host facts as the agent reports them (the reference `Host` schema).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostFacts {
    pub os: OsInfo,
    pub memory: MemoryInfo,
    pub swap: MemoryInfo,
    pub cpu: CpuInfo,
    pub load: LoadAverage,
    pub gpus: Vec<GpuInfo>,
    pub logged_in_users: Vec<String>,
    pub aws: Option<AwsInfo>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EndpointProtocol {
    Http,
    Quic,
}

impl EndpointProtocol {
    pub fn as_api_str(self) -> &'static str {
        match self {
            EndpointProtocol::Http => "HTTP",
            EndpointProtocol::Quic => "QUIC",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub ip_address: String,
    pub port: u16,
    pub protocol: EndpointProtocol,
    pub web_url_path: String,
}

/// What an agent says about its server when it registers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub id: String,
    pub hostname: String,
    pub ip: String,
    pub version: String,
    pub agent_version: String,
    pub endpoints: Vec<Endpoint>,
    pub host: HostFacts,
    /// Tags in the order the agent read them, built-in `dcv:*` tags included.
    pub tags: Vec<(String, String)>,
    pub max_virtual_sessions: Option<u32>,
    pub max_concurrent_sessions_per_user: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnavailabilityReason {
    ServerFull,
    ServerClosed,
    UnreachableAgent,
    UnhealthyDcvServer,
    ExistingLoggedInUser,
    Unknown,
}

impl UnavailabilityReason {
    pub fn as_api_str(self) -> &'static str {
        match self {
            UnavailabilityReason::ServerFull => "SERVER_FULL",
            UnavailabilityReason::ServerClosed => "SERVER_CLOSED",
            UnavailabilityReason::UnreachableAgent => "UNREACHABLE_AGENT",
            UnavailabilityReason::UnhealthyDcvServer => "UNHEALTHY_DCV_SERVER",
            UnavailabilityReason::ExistingLoggedInUser => "EXISTING_LOGGED_IN_USER",
            UnavailabilityReason::Unknown => "UNKNOWN",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Server {
    pub info: ServerInfo,
    /// False after CloseServers.
    pub open: bool,
    /// False once the leader declared the agent unreachable.
    pub reachable: bool,
    pub registered_at: UnixMillis,
    pub updated_at: UnixMillis,
    pub console_session_count: u32,
    pub virtual_session_count: u32,
}

impl Server {
    /// Why this server takes no new session now, or None when it is available.
    pub fn unavailability(&self) -> Option<UnavailabilityReason> {
        if !self.reachable {
            Some(UnavailabilityReason::UnreachableAgent)
        } else if !self.open {
            Some(UnavailabilityReason::ServerClosed)
        } else if self.is_full() {
            Some(UnavailabilityReason::ServerFull)
        } else {
            None
        }
    }

    /// Full when neither a virtual nor a console session fits any more.
    pub fn is_full(&self) -> bool {
        !self.has_room_for(SessionType::Virtual) && !self.has_room_for(SessionType::Console)
    }

    pub fn has_room_for(&self, kind: SessionType) -> bool {
        self.has_room_with(kind, 0, 0)
    }

    /// Room for one more session of `kind` once `console_extra` / `virtual_extra` planned ones are counted.
    pub fn has_room_with(&self, kind: SessionType, console_extra: u32, virtual_extra: u32) -> bool {
        match kind {
            SessionType::Console => self.console_session_count + console_extra == 0,
            SessionType::Virtual => match self.info.max_virtual_sessions {
                Some(max) => self.virtual_session_count + virtual_extra < max,
                None => true,
            },
        }
    }

    pub fn session_count(&self) -> u32 {
        self.console_session_count + self.virtual_session_count
    }
}

/// An OAuth2 client registered with `berth admin register-api-client`. Only a salted hash of the secret is kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiClient {
    pub client_id: String,
    pub client_name: String,
    pub secret_salt: String,
    pub secret_sha256: String,
    pub created: UnixMillis,
}

/// An external OAuth2 authorization server registered with `berth admin register-auth-server`: the API accepts
/// the tokens it signs, with the keys published at `url` (a JWKS document).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthServer {
    pub url: String,
    pub registered: UnixMillis,
}
