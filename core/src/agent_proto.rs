//! The messages between an agent and the leader, carried over QUIC (ALPN `berth-agent/1`) as bincode frames.
//!
//! The agent opens a control stream, sends `AgentHello`, and reads a `HelloReply`. When accepted it keeps the
//! stream and sends `AgentEvent`s (heartbeats) on it, reading a `BrokerEvent` for each. The leader opens one
//! more stream per request (`BrokerRequest` in, `AgentReply` out).

use serde::{Deserialize, Serialize};

use crate::model::{HostFacts, ServerInfo, SessionSpec};

pub const AGENT_ALPN: &[u8] = b"berth-agent/1";

/// A session the agent actually runs, reported at registration for reconciliation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunningSession {
    pub session_id: String,
    pub owner: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)] // sent once per connection
pub enum AgentHello {
    Register { server: ServerInfo, running: Vec<RunningSession> },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum HelloReply {
    /// This node is the leader and keeps the agent; heartbeats are expected at the given interval.
    Accepted {
        leader_id: u64,
        heartbeat_interval_ms: u64,
    },
    /// This node is not the leader: try `agent_address` (None while no leader is known).
    Redirect {
        leader_id: Option<u64>,
        agent_address: Option<String>,
    },
    Refused {
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AgentEvent {
    /// Liveness, with host facts only when they changed enough to be worth replicating.
    Heartbeat { seq: u64, facts: Option<HostFacts> },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum BrokerEvent {
    HeartbeatAck { seq: u64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)] // one per stream, never stored
pub enum BrokerRequest {
    /// Idempotent by session id: creating a session the agent already runs answers Created again.
    CreateSession {
        session_id: String,
        spec: SessionSpec,
    },
    DeleteSession {
        session_id: String,
    },
    /// A screenshot of the session's screens, scaled to fit the box and never above the real resolution.
    GetScreenshot {
        session_id: String,
        max_width: u32,
        max_height: u32,
        format: ImageFormat,
    },
    /// Replaces the session's permissions file (base64 of a DCV permissions file; None: the default).
    UpdatePermissions {
        session_id: String,
        permissions_file: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageFormat {
    Png,
    Jpeg,
}

impl ImageFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpeg",
        }
    }

    /// Reads `png` or `jpeg` (also `jpg`), case-insensitively.
    pub fn parse(text: &str) -> Option<ImageFormat> {
        match text.to_ascii_lowercase().as_str() {
            "png" => Some(ImageFormat::Png),
            "jpeg" | "jpg" => Some(ImageFormat::Jpeg),
            _ => None,
        }
    }
}

/// One screen of a session, encoded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScreenImage {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
    pub primary: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AgentReply {
    Created {
        session_id: String,
    },
    Deleted {
        session_id: String,
    },
    Failed {
        session_id: String,
        reason: String,
    },
    Screenshot {
        session_id: String,
        images: Vec<ScreenImage>,
    },
    PermissionsUpdated {
        session_id: String,
    },
    /// The agent does not run this session.
    NoSuchSession {
        session_id: String,
    },
}
