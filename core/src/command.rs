//! The replicated commands and their responses. The `Command` enum only grows: variants are appended, never
//! reordered or removed, because their bincode encoding (variant index first) is in every Raft log.

use serde::{Deserialize, Serialize};

use crate::model::{ApiClient, AuthServer, ServerInfo, Session, SessionSpec, SessionState, UnixMillis};

/// One session to create, with the id the proposer chose.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewSession {
    pub id: String,
    pub spec: SessionSpec,
}

/// A placement decision: reserve capacity for `session_id` on `server_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub session_id: String,
    pub server_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Written by every new leader so that it can commit in its own term at once.
    Noop,
    /// Sets the cluster's token signing key, once: later proposals are ignored, so that concurrent leaders
    /// (one after another) never rotate it by accident.
    InitCluster {
        cluster_id: String,
        signing_key: Vec<u8>,
    },
    RegisterApiClient {
        client: ApiClient,
    },
    CreateSessions {
        request_id: String,
        now: UnixMillis,
        sessions: Vec<NewSession>,
    },
    /// Reserves capacity; apply re-checks every placement against the state it sees.
    PlaceSessions {
        now: UnixMillis,
        placements: Vec<Placement>,
    },
    SessionReady {
        session_id: String,
        server_id: String,
        now: UnixMillis,
    },
    SessionFailed {
        session_id: String,
        server_id: String,
        reason: String,
        max_attempts: u32,
        now: UnixMillis,
    },
    /// An agent registered or re-registered (identity, facts, tags, limits).
    UpsertServer {
        server: Box<ServerInfo>,
        now: UnixMillis,
    },
    /// No server can take these sessions and they did not ask to be queued: (session id, reason).
    PlacementFailed {
        sessions: Vec<(String, String)>,
        now: UnixMillis,
    },
    /// Several agents confirmed their sessions: (session id, server id). One entry for many confirmations.
    SessionsReady {
        sessions: Vec<(String, String)>,
        now: UnixMillis,
    },
    /// OpenServers / CloseServers: each change succeeds or fails on its own.
    SetServersOpen {
        changes: Vec<OpenChange>,
        now: UnixMillis,
    },
    /// DeleteSessions: each deletion succeeds or fails on its own.
    DeleteSessions {
        deletions: Vec<Deletion>,
        now: UnixMillis,
    },
    /// Agents confirmed these deletions: (session id, server id). Frees their capacity.
    SessionsDeleted {
        sessions: Vec<(String, String)>,
        now: UnixMillis,
    },
    /// The leader lost (false) or regained (true) these agents: (server id, reachable).
    SetServersReachable {
        changes: Vec<(String, bool)>,
        now: UnixMillis,
    },
    /// Servers whose agents stayed unreachable too long leave the cluster, with their sessions.
    RemoveServers {
        server_ids: Vec<String>,
        now: UnixMillis,
    },
    /// `berth admin unregister-api-client`: its tokens stop working at once.
    UnregisterApiClient {
        client_id: String,
    },
    /// `berth admin register-auth-server`: tokens signed with the keys published at the URL are accepted.
    RegisterAuthServer {
        server: AuthServer,
    },
    UnregisterAuthServer {
        url: String,
    },
    /// DELETED sessions older than `delete-session-duration-hours`, forgotten for good. Apply skips any that
    /// is not DELETED.
    PurgeSessions {
        session_ids: Vec<String>,
        now: UnixMillis,
    },
    /// UpdateSessionPermissions, after the agent applied it: the new permissions file (base64) is kept so a
    /// session re-created on another agent gets it too.
    SetSessionPermissions {
        session_id: String,
        permissions_file: Option<String>,
        now: UnixMillis,
    },
}

/// Delete one session. `owner`, when given, must match. `force` ends it in the broker at once, even when its
/// agent cannot be reached; if it is in fact still alive, the broker learns of it again from the agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletion {
    pub session_id: String,
    pub owner: Option<String>,
    pub force: bool,
}

/// Why one deletion was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum DeleteError {
    #[error("The requested dcvSession does not exist")]
    NotFound,
}

/// Open (or close) one server. Closing a server that holds sessions needs `force`; its sessions keep running.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenChange {
    pub server_id: String,
    pub open: bool,
    pub force: bool,
}

/// Why one open or close change was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ServerChangeError {
    #[error("Dcv server not found.")]
    NotFound,
    #[error("Dcv server has {sessions} sessions; close it with Force to keep them running and accept no new ones")]
    HasSessions { sessions: u32 },
}

impl Command {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::Noop => "Noop",
            Command::InitCluster { .. } => "InitCluster",
            Command::RegisterApiClient { .. } => "RegisterApiClient",
            Command::CreateSessions { .. } => "CreateSessions",
            Command::PlaceSessions { .. } => "PlaceSessions",
            Command::SessionReady { .. } => "SessionReady",
            Command::SessionFailed { .. } => "SessionFailed",
            Command::UpsertServer { .. } => "UpsertServer",
            Command::PlacementFailed { .. } => "PlacementFailed",
            Command::SessionsReady { .. } => "SessionsReady",
            Command::SetServersOpen { .. } => "SetServersOpen",
            Command::DeleteSessions { .. } => "DeleteSessions",
            Command::SessionsDeleted { .. } => "SessionsDeleted",
            Command::SetServersReachable { .. } => "SetServersReachable",
            Command::RemoveServers { .. } => "RemoveServers",
            Command::UnregisterApiClient { .. } => "UnregisterApiClient",
            Command::RegisterAuthServer { .. } => "RegisterAuthServer",
            Command::UnregisterAuthServer { .. } => "UnregisterAuthServer",
            Command::PurgeSessions { .. } => "PurgeSessions",
            Command::SetSessionPermissions { .. } => "SetSessionPermissions",
        }
    }
}

/// Why apply refused a command (the log entry still counts as applied).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    #[error("unknown session {0}")]
    UnknownSession(String),
    #[error("unknown server {0}")]
    UnknownServer(String),
    #[error("session {session_id} is not waiting for this transition (state {state})")]
    WrongState { session_id: String, state: String },
    #[error("client id {0} is already registered")]
    DuplicateClient(String),
    #[error("no API client with id {0}")]
    UnknownClient(String),
    #[error("no authorization server registered with URL {0}")]
    UnknownAuthServer(String),
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum Response {
    #[default]
    Ok,
    SessionsCreated {
        sessions: Vec<Session>,
    },
    /// Per placement: Ok, or why it was not reserved.
    Placed {
        results: Vec<Result<(), String>>,
    },
    /// SessionFailed went back to placement (true) or ended the session (false).
    Retried(bool),
    /// One result per change of SetServersOpen, in order.
    ServersChanged {
        results: Vec<Result<(), ServerChangeError>>,
    },
    /// One result per deletion of DeleteSessions, in order: the session's state after it.
    SessionsDeleting {
        results: Vec<Result<SessionState, DeleteError>>,
    },
    Rejected(Rejection),
}
