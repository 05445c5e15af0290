//! The agent's TOML configuration (`agent.conf`), in the layout DCV's Session Manager agent uses, plus Berth's
//! additions (`brokers`, `server_id`, `backend`, `heartbeat_interval_ms`, `[tags]`).
//!
//! The file is walked by hand rather than through a derived struct so that every error names the file, the key
//! and the problem in words an operator can act on.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::{Spanned, Table, Value};

/// DCV's agent-to-broker port.
pub const DEFAULT_BROKER_PORT: u16 = 8445;
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(500);

const AGENT_KEYS: &[&str] = &[
    "broker_host",
    "broker_port",
    "brokers",
    "ca_file",
    "server_id",
    "tags_folder",
    "max_virtual_sessions",
    "max_concurrent_sessions_per_user",
    "backend",
    "heartbeat_interval_ms",
    "tls_strict",
    "init_folder",
    "autorun_folder",
    "preferred_network_interface",
    "enable_query_logged_in_users",
    "simulated_users",
];
const LOG_KEYS: &[&str] = &["level", "directory", "rotation"];
const TOP_LEVEL_KEYS: &[&str] = &["version", "agent", "tags", "log"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", file.display())]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{}: {where_}: not valid TOML: {message}", file.display())]
    Syntax { file: PathBuf, where_: String, message: String },
    #[error("{}: {key}: {problem}", file.display())]
    Invalid { file: PathBuf, key: String, problem: String },
}

/// Where sessions are run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// Sessions that exist only in the agent's memory.
    Simulated,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Simulated => "simulated",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct AgentConfig {
    /// The file this configuration came from, for messages.
    pub source: PathBuf,
    /// Every broker agent address ("host:port") to try, in order, without duplicates.
    pub brokers: Vec<String>,
    pub ca_file: PathBuf,
    /// The PEM text of `ca_file`, checked to hold at least one certificate.
    pub ca_pem: String,
    pub server_id: String,
    /// Configured tags: the tags folder's files in alphabetical order, then `[tags]`. Built-in `dcv:*` tags are
    /// added by `facts`.
    pub tags: Vec<(String, String)>,
    pub max_virtual_sessions: Option<u32>,
    pub max_concurrent_sessions_per_user: Option<u32>,
    pub backend: BackendKind,
    /// Used when the leader does not say which interval it expects.
    pub heartbeat_interval: Duration,
    pub preferred_network_interface: Option<String>,
    /// Kept for the backends that run real desktops; the simulated backend has no use for them.
    pub init_folder: Option<PathBuf>,
    pub autorun_folder: Option<PathBuf>,
    /// The simulated backend's user accounts: sessions for other owners fail as on a host without that user.
    /// None: every owner exists.
    pub simulated_users: Option<Vec<String>>,
    /// A tracing level: error, warn, info, debug, trace or off.
    pub log_level: String,
    /// Settings that were accepted for compatibility with DCV's agent.conf but have no effect here, for the
    /// operator to see once at start.
    pub notices: Vec<String>,
}

impl AgentConfig {
    /// A configuration with defaults for everything but the broker addresses and the CA (in-process harnesses).
    pub fn minimal(brokers: Vec<String>, ca_pem: String) -> AgentConfig {
        AgentConfig {
            source: PathBuf::from("<built-in>"),
            brokers,
            ca_file: PathBuf::from("<built-in>"),
            ca_pem,
            server_id: crate::facts::hostname(),
            tags: Vec::new(),
            max_virtual_sessions: None,
            max_concurrent_sessions_per_user: None,
            backend: BackendKind::Simulated,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            preferred_network_interface: None,
            init_folder: None,
            autorun_folder: None,
            simulated_users: None,
            log_level: "info".into(),
            notices: Vec::new(),
        }
    }

    pub fn load(file: &Path) -> Result<AgentConfig, ConfigError> {
        let text =
            std::fs::read_to_string(file).map_err(|source| ConfigError::Read { file: file.to_owned(), source })?;
        parse(file, &text)
    }
}

/// Key = value lines in the order they were written: toml's maps sort their keys, but each value's span
/// still tells where it stood, and tags are meant to keep the operator's order.
fn in_written_order(entries: BTreeMap<String, Spanned<Value>>) -> Vec<(String, Value)> {
    let mut entries: Vec<(String, Spanned<Value>)> = entries.into_iter().collect();
    entries.sort_by_key(|(_, value)| value.span().start);
    entries.into_iter().map(|(key, value)| (key, value.into_inner())).collect()
}

/// The `[tags]` section alone, read with spans (a second, cheap pass over the file).
#[derive(Deserialize)]
struct TagsSection {
    tags: Option<BTreeMap<String, Spanned<Value>>>,
}

fn syntax_error(file: &Path, text: &str, error: toml::de::Error) -> ConfigError {
    let where_ = match error.span() {
        Some(span) => format!("line {}", text[..span.start.min(text.len())].matches('\n').count() + 1),
        None => "file".to_owned(),
    };
    ConfigError::Syntax { file: file.to_owned(), where_, message: error.message().trim().to_owned() }
}

/// Builds errors that name the file and the key.
struct Ctx<'a> {
    file: &'a Path,
    section: &'a str,
}

impl Ctx<'_> {
    fn err(&self, key: &str, problem: impl Into<String>) -> ConfigError {
        let key = if self.section.is_empty() { key.to_owned() } else { format!("[{}] {key}", self.section) };
        ConfigError::Invalid { file: self.file.to_owned(), key, problem: problem.into() }
    }

    fn check_keys(&self, table: &Table, known: &[&str]) -> Result<(), ConfigError> {
        match table.keys().find(|key| !known.contains(&key.as_str())) {
            Some(key) => Err(self.err(key, format!("unknown key (known keys: {})", known.join(", ")))),
            None => Ok(()),
        }
    }

    fn string(&self, table: &Table, key: &str) -> Result<Option<String>, ConfigError> {
        match table.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Err(self.err(key, "must not be empty")),
            Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
            Some(other) => Err(self.err(key, format!("expected a string, got {}", describe(other)))),
        }
    }

    fn strings(&self, table: &Table, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        let Some(value) = table.get(key) else { return Ok(None) };
        let Value::Array(items) = value else {
            return Err(self.err(key, format!("expected a list of strings, got {}", describe(value))));
        };
        items
            .iter()
            .map(|item| match item {
                Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
                other => Err(self.err(key, format!("expected non-empty strings, got {}", describe(other)))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    fn bool(&self, table: &Table, key: &str) -> Result<Option<bool>, ConfigError> {
        match table.get(key) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(other) => Err(self.err(key, format!("expected true or false, got {}", describe(other)))),
        }
    }

    fn integer(&self, table: &Table, key: &str, min: i64, max: i64) -> Result<Option<i64>, ConfigError> {
        match table.get(key) {
            None => Ok(None),
            Some(Value::Integer(n)) if (min..=max).contains(n) => Ok(Some(*n)),
            Some(other) => Err(self.err(key, format!("expected an integer {min}-{max}, got {}", describe(other)))),
        }
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("the string {s:?}"),
        Value::Integer(n) => n.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Datetime(d) => format!("the date {d}"),
        Value::Array(_) => "a list".into(),
        Value::Table(_) => "a table".into(),
    }
}

/// Parses the text of a configuration file named `file` in messages; reads the CA and tag files it points at.
pub fn parse(file: &Path, text: &str) -> Result<AgentConfig, ConfigError> {
    let mut document: Table = toml::from_str(text).map_err(|e| syntax_error(file, text, e))?;
    let top = Ctx { file, section: "" };
    if let Some(key) = document.keys().find(|key| !TOP_LEVEL_KEYS.contains(&key.as_str())) {
        return Err(top.err(key, format!("unknown section or key (known: {})", TOP_LEVEL_KEYS.join(", "))));
    }
    let section = |document: &mut Table, name: &str| match document.remove(name) {
        None => Ok(None),
        Some(Value::Table(table)) => Ok(Some(table)),
        Some(other) => Err(top.err(&format!("[{name}]"), format!("expected a section, got {}", describe(&other)))),
    };
    let agent_table = section(&mut document, "agent")?.ok_or_else(|| top.err("[agent]", "missing section"))?;
    let log_table = section(&mut document, "log")?;
    let inline_tags = match section(&mut document, "tags")? {
        None => Vec::new(),
        Some(_) => {
            let spanned: TagsSection = toml::from_str(text).map_err(|e| syntax_error(file, text, e))?;
            in_written_order(spanned.tags.unwrap_or_default())
        }
    };
    if let Some(version) = document.get("version") {
        if !matches!(version, Value::String(_)) {
            return Err(top.err("version", format!("expected a string such as '0.1', got {}", describe(version))));
        }
    }
    let agent = Ctx { file, section: "agent" };
    agent.check_keys(&agent_table, AGENT_KEYS)?;
    let mut notices = Vec::new();

    let brokers = broker_addresses(&agent, &agent_table)?;

    let ca_file = PathBuf::from(
        agent
            .string(&agent_table, "ca_file")?
            .ok_or_else(|| agent.err("ca_file", "missing (the cluster CA's PEM file)"))?,
    );
    let ca_pem = std::fs::read_to_string(&ca_file)
        .map_err(|e| agent.err("ca_file", format!("cannot read {}: {e}", ca_file.display())))?;
    broker_transport::tls::roots_from_pem(&ca_pem)
        .map_err(|e| agent.err("ca_file", format!("{} is not a usable CA certificate: {e}", ca_file.display())))?;

    let server_id = agent.string(&agent_table, "server_id")?.unwrap_or_else(crate::facts::hostname);

    let max_virtual_sessions =
        agent.integer(&agent_table, "max_virtual_sessions", 0, u32::MAX.into())?.map(|n| n as u32);
    let max_concurrent_sessions_per_user =
        agent.integer(&agent_table, "max_concurrent_sessions_per_user", 1, u32::MAX.into())?.map(|n| n as u32);

    let backend = match agent.string(&agent_table, "backend")?.as_deref() {
        None | Some("simulated") => BackendKind::Simulated,
        Some(other) => {
            return Err(agent
                .err("backend", format!("'{other}' is not available in this build; the only backend is 'simulated'")))
        }
    };
    let heartbeat_interval = agent
        .integer(&agent_table, "heartbeat_interval_ms", 10, 60_000)?
        .map(|ms| Duration::from_millis(ms as u64))
        .unwrap_or(DEFAULT_HEARTBEAT_INTERVAL);

    if agent.bool(&agent_table, "tls_strict")? == Some(false) {
        notices.push(
            "[agent] tls_strict = false has no effect: the broker's certificate is always checked against ca_file"
                .into(),
        );
    }
    if agent.bool(&agent_table, "enable_query_logged_in_users")? == Some(true) {
        notices.push("[agent] enable_query_logged_in_users has no effect yet: no logged-in users are reported".into());
    }
    let preferred_network_interface = agent.string(&agent_table, "preferred_network_interface")?;
    let init_folder = agent.string(&agent_table, "init_folder")?.map(PathBuf::from);
    let autorun_folder = agent.string(&agent_table, "autorun_folder")?.map(PathBuf::from);
    let simulated_users = agent.strings(&agent_table, "simulated_users")?;

    let mut tags = TagList::default();
    if let Some(folder) = agent.string(&agent_table, "tags_folder")? {
        read_tags_folder(&agent, Path::new(&folder), &mut tags, &mut notices)?;
    }
    if !inline_tags.is_empty() {
        let ctx = Ctx { file, section: "tags" };
        for (key, value) in inline_tags {
            let value = tag_value(&ctx, &key, &value)?;
            tags.insert(&ctx, key, value, &mut notices)?;
        }
    }

    let log_level = match log_table {
        None => "info".to_owned(),
        Some(log_table) => {
            let log = Ctx { file, section: "log" };
            log.check_keys(&log_table, LOG_KEYS)?;
            for key in ["directory", "rotation"] {
                if log_table.contains_key(key) {
                    notices.push(format!("[log] {key} has no effect: berth-agent logs to standard error"));
                }
            }
            match log.string(&log_table, "level")? {
                None => "info".to_owned(),
                Some(level) => normalize_level(&level)
                    .ok_or_else(|| {
                        log.err("level", format!("expected error, warning, info, debug or trace, got {level:?}"))
                    })?
                    .to_owned(),
            }
        }
    };

    Ok(AgentConfig {
        source: file.to_owned(),
        brokers,
        ca_file,
        ca_pem,
        server_id,
        tags: tags.0,
        max_virtual_sessions,
        max_concurrent_sessions_per_user,
        backend,
        heartbeat_interval,
        preferred_network_interface,
        init_folder,
        autorun_folder,
        simulated_users,
        log_level,
        notices,
    })
}

fn normalize_level(level: &str) -> Option<&'static str> {
    Some(match level.to_ascii_lowercase().as_str() {
        "error" => "error",
        "warn" | "warning" => "warn",
        "info" => "info",
        "debug" => "debug",
        "trace" => "trace",
        "off" => "off",
        _ => return None,
    })
}

/// `broker_host` + `broker_port` and `brokers`, in that order, without duplicates.
fn broker_addresses(agent: &Ctx, table: &Table) -> Result<Vec<String>, ConfigError> {
    let mut brokers: Vec<String> = Vec::new();
    let port = agent.integer(table, "broker_port", 1, 65535)?;
    match agent.string(table, "broker_host")? {
        Some(host) => {
            let host = if host.parse::<Ipv6Addr>().is_ok() {
                format!("[{host}]")
            } else if host.contains(':') {
                return Err(agent.err(
                    "broker_host",
                    format!("expected a host name or IP address without a port, got {host:?} (use broker_port)"),
                ));
            } else {
                host
            };
            brokers.push(format!("{host}:{}", port.unwrap_or(DEFAULT_BROKER_PORT.into())));
        }
        None if port.is_some() => {
            return Err(agent.err("broker_port", "given without broker_host"));
        }
        None => {}
    }
    match table.get("brokers") {
        None => {}
        Some(Value::Array(items)) => {
            for item in items {
                let Value::String(address) = item else {
                    return Err(agent.err("brokers", format!("expected \"host:port\" strings, got {}", describe(item))));
                };
                let address = address.trim();
                check_address(address).map_err(|problem| agent.err("brokers", format!("{address:?}: {problem}")))?;
                if !brokers.iter().any(|b| b == address) {
                    brokers.push(address.to_owned());
                }
            }
        }
        Some(other) => {
            return Err(
                agent.err("brokers", format!("expected a list of \"host:port\" strings, got {}", describe(other)))
            )
        }
    }
    if brokers.is_empty() {
        return Err(
            agent.err("broker_host", "missing: give broker_host (and broker_port) or brokers = [\"host:port\"]")
        );
    }
    Ok(brokers)
}

fn check_address(address: &str) -> Result<(), &'static str> {
    let (host, port) = address.rsplit_once(':').ok_or("expected host:port")?;
    if host.is_empty() || host == "[]" {
        return Err("expected host:port, the host is empty");
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err("an IPv6 address goes in brackets, as in [::1]:8445");
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err("the port must be an integer 1-65535"),
    }
}

fn tag_value(ctx: &Ctx, key: &str, value: &Value) -> Result<String, ConfigError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        // Operators write `gpus = 2` as often as `gpus = "2"`; tags are text either way.
        Value::Integer(n) => Ok(n.to_string()),
        Value::Float(f) => Ok(f.to_string()),
        Value::Boolean(b) => Ok(b.to_string()),
        other => Err(ctx.err(key, format!("expected a tag value such as \"blue\", got {}", describe(other)))),
    }
}

#[derive(Default)]
struct TagList(Vec<(String, String)>);

impl TagList {
    fn insert(&mut self, ctx: &Ctx, key: String, value: String, notices: &mut Vec<String>) -> Result<(), ConfigError> {
        if key.trim().is_empty() {
            return Err(ctx.err("\"\"", "a tag key must not be empty"));
        }
        if key.starts_with("dcv:") {
            return Err(ctx.err(&key, "tag keys starting with 'dcv:' are reserved for the built-in tags"));
        }
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            // A later file overrides an earlier one, as the alphabetical reading order implies.
            Some(existing) => {
                notices.push(format!("tag {key:?} = {value:?} from {} replaces {:?}", ctx.file.display(), existing.1));
                existing.1 = value;
            }
            None => self.0.push((key, value)),
        }
        Ok(())
    }
}

fn read_tags_folder(
    agent: &Ctx,
    folder: &Path,
    tags: &mut TagList,
    notices: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let entries = std::fs::read_dir(folder)
        .map_err(|e| agent.err("tags_folder", format!("cannot read {}: {e}", folder.display())))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| agent.err("tags_folder", format!("cannot read {}: {e}", folder.display())))?;
        let path = entry.path();
        if path.extension().is_some_and(|ext| ext == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { file: path.clone(), source })?;
        let entries: BTreeMap<String, Spanned<Value>> =
            toml::from_str(&text).map_err(|e| syntax_error(&path, &text, e))?;
        let ctx = Ctx { file: &path, section: "" };
        for (key, value) in in_written_order(entries) {
            let value = tag_value(&ctx, &key, &value)?;
            tags.insert(&ctx, key, value, notices)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir {
        dir: tempfile::TempDir,
    }

    impl Dir {
        fn new() -> Dir {
            let dir = Dir { dir: tempfile::tempdir().unwrap() };
            let ca = broker_transport::tls::ClusterCa::generate().unwrap();
            dir.write("ca.pem", &ca.cert_pem);
            dir
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.path(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            path
        }

        /// Writes agent.conf with `body`, where `@CA@` stands for the CA file's path (a marker no temp path holds).
        fn conf(&self, body: &str) -> Result<AgentConfig, ConfigError> {
            let body = body.replace("@CA@", &self.path("ca.pem").display().to_string());
            AgentConfig::load(&self.write("agent.conf", &body))
        }
    }

    fn message(result: Result<AgentConfig, ConfigError>) -> String {
        result.expect_err("this configuration must be refused").to_string()
    }

    #[test]
    fn a_dcv_style_file_with_berth_additions_parses() {
        let dir = Dir::new();
        let config = dir
            .conf(
                "version = '0.1'\n\
                 [agent]\n\
                 broker_host = 'broker1.example.com'\n\
                 brokers = ['broker2.example.com:9000', 'broker1.example.com:8445', '[::1]:8445']\n\
                 ca_file = '@CA@'\n\
                 server_id = 'host-7'\n\
                 max_virtual_sessions = 4\n\
                 max_concurrent_sessions_per_user = 2\n\
                 backend = 'simulated'\n\
                 heartbeat_interval_ms = 250\n\
                 tls_strict = true\n\
                 [tags]\n\
                 zone = 'b'\n\
                 color = 'pink'\n\
                 gpus = 2\n\
                 [log]\n\
                 level = 'warning'\n",
            )
            .unwrap();
        assert_eq!(config.brokers, ["broker1.example.com:8445", "broker2.example.com:9000", "[::1]:8445"]);
        assert_eq!(config.server_id, "host-7");
        assert_eq!(config.max_virtual_sessions, Some(4));
        assert_eq!(config.max_concurrent_sessions_per_user, Some(2));
        assert_eq!(config.backend, BackendKind::Simulated);
        assert_eq!(config.heartbeat_interval, Duration::from_millis(250));
        assert_eq!(config.log_level, "warn");
        assert!(config.ca_pem.contains("BEGIN CERTIFICATE"));
        let tags: Vec<(&str, &str)> = config.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(tags, [("zone", "b"), ("color", "pink"), ("gpus", "2")], "tags keep the order they were written in");
        assert!(config.notices.is_empty(), "{:?}", config.notices);
    }

    #[test]
    fn the_example_file_parses() {
        let dir = Dir::new();
        let example = include_str!("../agent.conf.example").replace("/etc/berth/ca.pem", "@CA@");
        let config = dir.conf(&example).unwrap();
        assert_eq!(config.brokers.len(), 3);
        assert_eq!(config.backend, BackendKind::Simulated);
    }

    #[test]
    fn defaults_apply_to_a_minimal_file() {
        let dir = Dir::new();
        let config = dir.conf("[agent]\nbroker_host = '10.0.0.5'\nca_file = '@CA@'\n").unwrap();
        assert_eq!(config.brokers, ["10.0.0.5:8445"]);
        assert_eq!(config.server_id, crate::facts::hostname());
        assert_eq!(config.heartbeat_interval, DEFAULT_HEARTBEAT_INTERVAL);
        assert_eq!(config.log_level, "info");
        assert_eq!((config.max_virtual_sessions, config.max_concurrent_sessions_per_user), (None, None));
        assert!(config.tags.is_empty());
    }

    #[test]
    fn missing_ca_file_is_named() {
        let dir = Dir::new();
        let text = message(dir.conf("[agent]\nbroker_host = 'b'\n"));
        assert!(text.contains("agent.conf: [agent] ca_file: missing"), "{text}");
        let text = message(dir.conf("[agent]\nbroker_host = 'b'\nca_file = '/nonexistent/ca.pem'\n"));
        assert!(text.contains("[agent] ca_file: cannot read /nonexistent/ca.pem"), "{text}");
        dir.write("not-a-ca.pem", "hello");
        let text = message(
            dir.conf(&format!("[agent]\nbroker_host = 'b'\nca_file = '{}'\n", dir.path("not-a-ca.pem").display())),
        );
        assert!(text.contains("[agent] ca_file:") && text.contains("not a usable CA"), "{text}");
    }

    #[test]
    fn bad_ports_and_addresses_are_refused_with_the_key() {
        let dir = Dir::new();
        for port in ["70000", "0", "'8445'", "-1"] {
            let text =
                message(dir.conf(&format!("[agent]\nbroker_host = 'b'\nbroker_port = {port}\nca_file = '@CA@'\n")));
            assert!(text.contains("agent.conf: [agent] broker_port: expected an integer 1-65535"), "{port}: {text}");
        }
        let text = message(dir.conf("[agent]\nbrokers = ['b:99999']\nca_file = '@CA@'\n"));
        assert!(text.contains("[agent] brokers: \"b:99999\": the port must be an integer 1-65535"), "{text}");
        let text = message(dir.conf("[agent]\nbrokers = ['b']\nca_file = '@CA@'\n"));
        assert!(text.contains("[agent] brokers:"), "{text}");
        let text = message(dir.conf("[agent]\nbroker_host = 'b:8445'\nca_file = '@CA@'\n"));
        assert!(text.contains("[agent] broker_host: expected a host name or IP address without a port"), "{text}");
        let text = message(dir.conf("[agent]\nca_file = '@CA@'\n"));
        assert!(text.contains("[agent] broker_host: missing"), "{text}");
        let text = message(dir.conf("[agent]\nbroker_port = 9000\nca_file = '@CA@'\n"));
        assert!(text.contains("[agent] broker_port: given without broker_host"), "{text}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let dir = Dir::new();
        let text = message(dir.conf("[agent]\nbroker_host = 'b'\nca_file = '@CA@'\nbroker_prot = 9\n"));
        assert!(text.contains("agent.conf: [agent] broker_prot: unknown key"), "{text}");
        let text = message(dir.conf("[agent]\nbroker_host = 'b'\nca_file = '@CA@'\n[agnet]\nx = 1\n"));
        assert!(text.contains("agent.conf: agnet: unknown section"), "{text}");
        let text = message(dir.conf("[agent]\nbroker_host = 'b'\nca_file = '@CA@'\nbackend = 'dcv'\n"));
        assert!(text.contains("[agent] backend: 'dcv' is not available in this build"), "{text}");
        let text = message(dir.conf("[agent]\nbroker_host = 'b'\nca_file = '@CA@'\nmax_virtual_sessions = 'many'\n"));
        assert!(text.contains("[agent] max_virtual_sessions: expected an integer"), "{text}");
        let text = message(dir.conf("[agent]\nbroker_host = 'b'\nca_file = '@CA@'\n[log]\nlevel = 'loud'\n"));
        assert!(text.contains("[log] level: expected error, warning, info, debug or trace"), "{text}");
        let text = message(dir.conf("[agent]\nbroker_host = 'b'\nca_file = '@CA@'\n[tags]\n'dcv:os-family' = 'x'\n"));
        assert!(text.contains("[tags] dcv:os-family: tag keys starting with 'dcv:' are reserved"), "{text}");
        let text = message(dir.conf("[agent]\nbroker_host = 'b'\nca_file = = '@CA@'\n"));
        assert!(text.contains("agent.conf: line 3: not valid TOML"), "{text}");
        let text = message(AgentConfig::load(&dir.path("absent.conf")));
        assert!(text.contains("absent.conf: cannot read"), "{text}");
    }

    #[test]
    fn dcv_settings_without_effect_are_accepted_and_reported() {
        let dir = Dir::new();
        let config = dir
            .conf(
                "[agent]\nbroker_host = 'b'\nca_file = '@CA@'\ntls_strict = false\ninit_folder = '/var/lib/init'\n\
                 enable_query_logged_in_users = true\npreferred_network_interface = 'eth0'\n\
                 [log]\ndirectory = '/var/log/x'\n",
            )
            .unwrap();
        assert_eq!(config.init_folder.as_deref(), Some(Path::new("/var/lib/init")));
        assert_eq!(config.preferred_network_interface.as_deref(), Some("eth0"));
        assert_eq!(config.notices.len(), 3, "{:?}", config.notices);
    }

    #[test]
    fn tags_folder_files_are_read_in_alphabetical_order_then_inline_tags() {
        let dir = Dir::new();
        dir.write("tags/b.toml", "second = \"2\"\nshared = \"from b\"\n");
        dir.write("tags/a.toml", "first = \"1\"\nshared = \"from a\"\nalpha = \"0\"\n");
        dir.write("tags/c.toml", "third = \"3\"\n");
        dir.write("tags/ignored.txt", "not = \"read\"\n");
        let config = dir
            .conf(&format!(
                "[agent]\nbroker_host = 'b'\nca_file = '@CA@'\ntags_folder = '{}'\n[tags]\ninline = 'yes'\n",
                dir.path("tags").display()
            ))
            .unwrap();
        let tags: Vec<(&str, &str)> = config.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            tags,
            [("first", "1"), ("shared", "from b"), ("alpha", "0"), ("second", "2"), ("third", "3"), ("inline", "yes")],
            "a.toml, then b.toml (overriding a's shared), then c.toml, then [tags]"
        );

        dir.write("tags/d.toml", "bad = [1, 2]\n");
        let text = message(dir.conf(&format!(
            "[agent]\nbroker_host = 'b'\nca_file = '@CA@'\ntags_folder = '{}'\n",
            dir.path("tags").display()
        )));
        assert!(text.contains("d.toml: bad: expected a tag value"), "{text}");
        let text =
            message(dir.conf("[agent]\nbroker_host = 'b'\nca_file = '@CA@'\ntags_folder = '/nonexistent/tags'\n"));
        assert!(text.contains("[agent] tags_folder: cannot read /nonexistent/tags"), "{text}");
    }
}
