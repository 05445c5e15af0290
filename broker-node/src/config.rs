//! The node configuration file (TOML). Keys are named like their DCV Session Manager counterparts where one
//! exists, so operators find what they know.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NodeConfig {
    pub node_id: u64,
    /// State directory: Raft log, snapshots, generated TLS material.
    pub session_manager_working_path: PathBuf,
    #[serde(default = "default_bind_host")]
    pub client_to_broker_connector_bind_host: String,
    #[serde(default = "default_api_port")]
    pub client_to_broker_connector_https_port: u16,
    #[serde(default = "default_bind_host")]
    pub agent_to_broker_connector_bind_host: String,
    #[serde(default = "default_agent_port")]
    pub agent_to_broker_connector_https_port: u16,
    /// The DCV Connection Gateway's session resolver (`POST /resolveSession`), off unless enabled.
    #[serde(default)]
    pub enable_gateway: bool,
    #[serde(default = "default_bind_host")]
    pub gateway_to_broker_connector_bind_host: String,
    #[serde(default = "default_gateway_port")]
    pub gateway_to_broker_connector_https_port: u16,
    #[serde(default = "default_bind_host")]
    pub peer_bind_host: String,
    #[serde(default = "default_peer_port")]
    pub peer_port: u16,
    /// PEM files; when absent, material is generated in the working path on first start.
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    #[serde(default = "default_retries")]
    pub create_sessions_number_of_retries_on_failure: u32,
    /// Requests that asked to wait (EnqueueRequest) beyond this many are refused.
    #[serde(default = "default_queue_size")]
    pub create_sessions_queue_max_size: usize,
    /// A queued request fails after waiting this long.
    #[serde(default = "default_queue_time")]
    pub create_sessions_queue_max_time_seconds: u64,
    /// A server whose agent stays unreachable this long is removed, with its sessions.
    #[serde(default = "default_unreachable_removal")]
    pub seconds_before_deleting_unreachable_dcv_server: u64,
    /// Lifetime of the connection tokens GetSessionConnectionData issues.
    #[serde(default = "default_connection_token_minutes")]
    pub connect_session_token_duration_minutes: u64,
    /// Lifetime of the access tokens `/oauth2/token` issues.
    #[serde(default = "default_token_validity")]
    pub access_token_validity_seconds: u64,
    /// API calls need a bearer token. Turn off only where the API is fenced off by other means.
    #[serde(default = "default_true")]
    pub enable_authorization: bool,
    /// The broker issues tokens at `/oauth2/token`; off, only registered authorization servers' tokens work.
    #[serde(default = "default_true")]
    pub enable_authorization_server: bool,
    /// Sessions on a server whose agent stays unreachable this long end (DELETED) while the server stays.
    /// Unset: they stay UNKNOWN until the agent returns or the server is removed.
    #[serde(default)]
    pub seconds_before_deleting_sessions_unreachable_server: Option<u64>,
    /// How long DELETED sessions stay visible to DescribeSessions before they are purged.
    #[serde(default = "default_delete_session_hours")]
    pub delete_session_duration_hours: f64,
    /// At most this many AutorunFileArguments per session.
    #[serde(default = "default_autorun_arguments")]
    pub autorun_file_arguments_max_size: usize,
    /// At most this many characters per autorun argument.
    #[serde(default = "default_autorun_argument_length")]
    pub autorun_file_arguments_max_argument_length: usize,
    /// GetSessionScreenshots defaults when a request leaves MaxWidth / MaxHeight out.
    #[serde(default = "default_screenshot_width")]
    pub session_screenshot_max_width: u32,
    #[serde(default = "default_screenshot_height")]
    pub session_screenshot_max_height: u32,
    /// `png` or `jpeg`.
    #[serde(default = "default_screenshot_format")]
    pub session_screenshot_format: String,
    #[serde(default)]
    pub raft: RaftSettings,
    /// The static membership, bootstrapped once on a fresh cluster.
    pub members: Vec<Member>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Member {
    pub id: u64,
    pub peer_address: String,
    pub api_url: String,
    pub agent_address: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct RaftSettings {
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many entries since the last one.
    pub snapshot_logs_since_last: u64,
    /// Entries kept in the log behind a snapshot, for followers that are only a little behind.
    pub max_logs_kept_after_snapshot: u64,
    /// How long a write or linearizable read may wait for a leader before answering 503.
    pub request_deadline_ms: u64,
}

impl Default for RaftSettings {
    fn default() -> Self {
        RaftSettings {
            // openraft waits lease (= election-timeout-max) + a random election timeout before it campaigns,
            // so these give a 300-400 ms failover on a quiet network.
            // openraft also times AppendEntries out after one heartbeat interval, so it cannot be much lower.
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 100,
            election_timeout_max_ms: 200,
            snapshot_logs_since_last: 5000,
            max_logs_kept_after_snapshot: 1000,
            request_deadline_ms: 5000,
        }
    }
}

fn default_bind_host() -> String {
    "0.0.0.0".into()
}
fn default_api_port() -> u16 {
    8443
}
fn default_agent_port() -> u16 {
    8445
}
fn default_peer_port() -> u16 {
    47100
}
fn default_retries() -> u32 {
    2
}
fn default_queue_size() -> usize {
    1000
}
fn default_queue_time() -> u64 {
    1800
}
fn default_unreachable_removal() -> u64 {
    1800
}
fn default_connection_token_minutes() -> u64 {
    60
}
fn default_token_validity() -> u64 {
    3600
}
fn default_true() -> bool {
    true
}
fn default_gateway_port() -> u16 {
    8447
}
fn default_delete_session_hours() -> f64 {
    1.0
}
fn default_autorun_arguments() -> usize {
    50
}
fn default_autorun_argument_length() -> usize {
    150
}
fn default_screenshot_width() -> u32 {
    160
}
fn default_screenshot_height() -> u32 {
    100
}
fn default_screenshot_format() -> String {
    "png".into()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl NodeConfig {
    /// A configuration with every default, as an empty file with just these keys would give.
    pub fn new(node_id: u64, session_manager_working_path: PathBuf, members: Vec<Member>) -> NodeConfig {
        NodeConfig {
            node_id,
            session_manager_working_path,
            client_to_broker_connector_bind_host: default_bind_host(),
            client_to_broker_connector_https_port: default_api_port(),
            agent_to_broker_connector_bind_host: default_bind_host(),
            agent_to_broker_connector_https_port: default_agent_port(),
            enable_gateway: false,
            gateway_to_broker_connector_bind_host: default_bind_host(),
            gateway_to_broker_connector_https_port: default_gateway_port(),
            peer_bind_host: default_bind_host(),
            peer_port: default_peer_port(),
            ca_file: None,
            cert_file: None,
            key_file: None,
            create_sessions_number_of_retries_on_failure: default_retries(),
            create_sessions_queue_max_size: default_queue_size(),
            create_sessions_queue_max_time_seconds: default_queue_time(),
            seconds_before_deleting_unreachable_dcv_server: default_unreachable_removal(),
            connect_session_token_duration_minutes: default_connection_token_minutes(),
            access_token_validity_seconds: default_token_validity(),
            enable_authorization: true,
            enable_authorization_server: true,
            seconds_before_deleting_sessions_unreachable_server: None,
            delete_session_duration_hours: default_delete_session_hours(),
            autorun_file_arguments_max_size: default_autorun_arguments(),
            autorun_file_arguments_max_argument_length: default_autorun_argument_length(),
            session_screenshot_max_width: default_screenshot_width(),
            session_screenshot_max_height: default_screenshot_height(),
            session_screenshot_format: default_screenshot_format(),
            raft: RaftSettings::default(),
            members,
        }
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let config: NodeConfig =
            toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.into(), message: e.to_string() })?;
        config.check().map_err(|message| ConfigError::Invalid { path: path.into(), message })?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        if !self.members.iter().any(|m| m.id == self.node_id) {
            return Err(format!("members: node-id {} is not in the member list", self.node_id));
        }
        let r = &self.raft;
        if r.election_timeout_min_ms <= r.heartbeat_interval_ms
            || r.election_timeout_max_ms <= r.election_timeout_min_ms
        {
            return Err("[raft]: need heartbeat-interval-ms < election-timeout-min-ms < election-timeout-max-ms".into());
        }
        if broker_core::agent_proto::ImageFormat::parse(&self.session_screenshot_format).is_none() {
            return Err(format!(
                "session-screenshot-format: expected png or jpeg, got {:?}",
                self.session_screenshot_format
            ));
        }
        if self.session_screenshot_max_width == 0 || self.session_screenshot_max_height == 0 {
            return Err("session-screenshot-max-width and session-screenshot-max-height must be greater than 0".into());
        }
        if !(self.delete_session_duration_hours >= 0.0 && self.delete_session_duration_hours.is_finite()) {
            return Err(format!(
                "delete-session-duration-hours: expected a number of hours >= 0, got {}",
                self.delete_session_duration_hours
            ));
        }
        for side in ["ca-file", "cert-file", "key-file"] {
            let given = [&self.ca_file, &self.cert_file, &self.key_file].iter().filter(|f| f.is_some()).count();
            if given != 0 && given != 3 {
                return Err(format!("{side}: give all of ca-file, cert-file and key-file, or none"));
            }
        }
        Ok(())
    }

    pub fn api_bind(&self) -> Result<SocketAddr, String> {
        bind_addr(&self.client_to_broker_connector_bind_host, self.client_to_broker_connector_https_port)
    }
    pub fn agent_bind(&self) -> Result<SocketAddr, String> {
        bind_addr(&self.agent_to_broker_connector_bind_host, self.agent_to_broker_connector_https_port)
    }
    pub fn gateway_bind(&self) -> Result<SocketAddr, String> {
        bind_addr(&self.gateway_to_broker_connector_bind_host, self.gateway_to_broker_connector_https_port)
    }
    pub fn peer_bind(&self) -> Result<SocketAddr, String> {
        bind_addr(&self.peer_bind_host, self.peer_port)
    }

    pub fn tls_files(&self) -> broker_transport::TlsFiles {
        match (&self.ca_file, &self.cert_file, &self.key_file) {
            (Some(ca), Some(cert), Some(key)) => {
                broker_transport::TlsFiles { ca_file: ca.clone(), cert_file: cert.clone(), key_file: key.clone() }
            }
            _ => {
                let dir = self.session_manager_working_path.join("tls");
                broker_transport::TlsFiles {
                    ca_file: dir.join("ca.pem"),
                    cert_file: dir.join("node.pem"),
                    key_file: dir.join("node.key"),
                }
            }
        }
    }
}

fn bind_addr(host: &str, port: u16) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve bind address {host}:{port}: {e}"))?
        .next()
        .ok_or_else(|| format!("no address for {host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
node-id = 2
session-manager-working-path = "/tmp/x"
[[members]]
id = 1
peer-address = "127.0.0.1:1"
api-url = "https://127.0.0.1:2"
agent-address = "127.0.0.1:3"
[[members]]
id = 2
peer-address = "127.0.0.1:4"
api-url = "https://127.0.0.1:5"
agent-address = "127.0.0.1:6"
"#;

    fn load(text: &str) -> Result<NodeConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.toml");
        std::fs::write(&path, text).unwrap();
        NodeConfig::load(&path)
    }

    #[test]
    fn defaults_match_the_original_broker() {
        let config = load(GOOD).unwrap();
        let built = NodeConfig::new(2, "/tmp/x".into(), config.members.clone());
        assert_eq!(built, config, "NodeConfig::new gives what an empty file gives");
        assert_eq!(config.client_to_broker_connector_https_port, 8443);
        assert_eq!(config.agent_to_broker_connector_https_port, 8445);
        assert_eq!(config.create_sessions_number_of_retries_on_failure, 2);
        assert_eq!(config.gateway_to_broker_connector_https_port, 8447);
        assert!(!config.enable_gateway);
        assert_eq!(
            (config.autorun_file_arguments_max_size, config.autorun_file_arguments_max_argument_length),
            (50, 150)
        );
        assert_eq!((config.session_screenshot_max_width, config.session_screenshot_max_height), (160, 100));
        assert_eq!(config.session_screenshot_format, "png");
        assert_eq!(config.delete_session_duration_hours, 1.0);
        assert_eq!(config.seconds_before_deleting_sessions_unreachable_server, None);
        assert!(config.enable_authorization && config.enable_authorization_server);
        assert_eq!(config.raft, RaftSettings::default());
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let err = load(&GOOD.replace("node-id = 2", "node-id = 9")).unwrap_err().to_string();
        assert!(err.contains("berth.toml") && err.contains("node-id 9"), "{err}");
        let err = load(&format!("bogus-key = 1\n{GOOD}")).unwrap_err().to_string();
        assert!(err.contains("bogus-key"), "{err}");
        let err = load(&GOOD.replace("node-id = 2", "node-id = \"two\"")).unwrap_err().to_string();
        assert!(err.contains("node-id") || err.contains("node_id"), "{err}");
        let err = load(&format!("session-screenshot-format = \"gif\"\n{GOOD}")).unwrap_err().to_string();
        assert!(err.contains("session-screenshot-format") && err.contains("gif"), "{err}");
        let err = load(&format!("delete-session-duration-hours = -1\n{GOOD}")).unwrap_err().to_string();
        assert!(err.contains("delete-session-duration-hours"), "{err}");
        let err = load(&format!("ca-file = \"/x\"\n{GOOD}")).unwrap_err().to_string();
        assert!(err.contains("give all of"), "{err}");
    }
}
