//! `berth dev`: a local cluster of real processes on loopback (N brokers, M agents) with TLS material and a
//! registered API client. The integration tests, benchmarks and the chaos harness drive the same `DevCluster`.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use broker_transport::tls::ClusterCa;
use broker_transport::{TlsFiles, TlsMaterial};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::time::Instant;

use crate::client::ApiClient;
use crate::config::{Member, NodeConfig, RaftSettings};

#[derive(Clone, Debug)]
pub struct DevOptions {
    pub nodes: usize,
    pub agents: usize,
    pub dir: PathBuf,
    pub backend: String,
    /// Where `berth` and `berth-agent` are.
    pub bin_dir: PathBuf,
    pub raft: RaftSettings,
    pub access_token_validity_seconds: u64,
    pub seconds_before_deleting_unreachable_dcv_server: u64,
    pub create_sessions_queue_max_size: usize,
    pub create_sessions_queue_max_time_seconds: u64,
    pub create_sessions_number_of_retries_on_failure: u32,
    pub seconds_before_deleting_sessions_unreachable_server: Option<u64>,
    pub delete_session_duration_hours: f64,
    /// Last changes to every node's configuration (tests of settings `DevOptions` does not name).
    pub configure_node: Option<fn(&mut NodeConfig)>,
    /// Extra `[agent]` lines per agent index (e.g. `simulated_users = ["alice"]`).
    pub agent_settings: std::collections::BTreeMap<usize, String>,
    /// Children get SIGKILL when the process that started them dies (for `berth dev` itself).
    pub die_with_parent: bool,
}

impl DevOptions {
    pub fn new(dir: impl Into<PathBuf>, nodes: usize, agents: usize, bin_dir: impl Into<PathBuf>) -> Self {
        DevOptions {
            nodes,
            agents,
            dir: dir.into(),
            backend: "simulated".into(),
            bin_dir: bin_dir.into(),
            raft: RaftSettings::default(),
            access_token_validity_seconds: 3600,
            seconds_before_deleting_unreachable_dcv_server: 1800,
            create_sessions_queue_max_size: 1000,
            create_sessions_queue_max_time_seconds: 1800,
            create_sessions_number_of_retries_on_failure: 2,
            seconds_before_deleting_sessions_unreachable_server: None,
            delete_session_duration_hours: 1.0,
            agent_settings: Default::default(),
            configure_node: None,
            die_with_parent: false,
        }
    }
}

/// `DIR/cluster.json`, for scripts and tests.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterInfo {
    pub nodes: Vec<NodeEntry>,
    pub agents: Vec<AgentEntry>,
    pub ca_file: PathBuf,
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeEntry {
    pub id: u64,
    pub api_url: String,
    /// The DCV Connection Gateway's session resolver (`POST /resolveSession`).
    #[serde(default)]
    pub gateway_url: String,
    pub pid: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentEntry {
    pub id: String,
    pub pid: Option<u32>,
}

/// Ports chosen on first start and reused on every restart of the same directory.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Layout {
    members: Vec<Member>,
    /// The gateway resolver's port per node, in member order.
    #[serde(default)]
    gateway_ports: Vec<u16>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

pub struct DevCluster {
    options: DevOptions,
    layout: Layout,
    nodes: Vec<Option<Child>>,
    agents: Vec<Option<Child>>,
    ca_pem: String,
}

fn free_tcp_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A port free over both UDP and TCP (the agent port serves QUIC and HTTPS).
fn free_dual_port() -> anyhow::Result<u16> {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let port = udp.local_addr()?.port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    anyhow::bail!("no port free over both UDP and TCP after 50 tries")
}

fn free_udp_port() -> anyhow::Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl DevCluster {
    /// Writes TLS material and configuration into the directory, or reuses what an earlier run left there.
    pub fn prepare(options: DevOptions) -> anyhow::Result<Self> {
        let dir = &options.dir;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let tls_dir = dir.join("tls");
        let ca_cert = tls_dir.join("ca.pem");
        let ca_key = tls_dir.join("ca.key");
        let ca = if ca_cert.exists() {
            ClusterCa::load(&ca_cert, &ca_key)?
        } else {
            let ca = ClusterCa::generate()?;
            std::fs::create_dir_all(&tls_dir)?;
            std::fs::write(&ca_cert, &ca.cert_pem)?;
            std::fs::write(&ca_key, &ca.key_pem)?;
            ca
        };
        let layout_path = dir.join("dev-layout.json");
        let layout = if layout_path.exists() {
            let layout: Layout = serde_json::from_slice(&std::fs::read(&layout_path)?)
                .with_context(|| format!("cannot read {}", layout_path.display()))?;
            if layout.members.len() != options.nodes {
                bail!(
                    "{} holds a cluster of {} nodes; use the same --nodes or another --dir",
                    dir.display(),
                    layout.members.len()
                );
            }
            layout
        } else {
            let mut members = Vec::new();
            for id in 1..=options.nodes as u64 {
                members.push(Member {
                    id,
                    peer_address: format!("127.0.0.1:{}", free_udp_port()?),
                    api_url: format!("https://127.0.0.1:{}", free_tcp_port()?),
                    agent_address: format!("127.0.0.1:{}", free_dual_port()?),
                });
            }
            Layout { members, gateway_ports: Vec::new(), client_id: None, client_secret: None }
        };
        let mut layout = layout;
        while layout.gateway_ports.len() < options.nodes {
            layout.gateway_ports.push(free_tcp_port()?);
        }
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        for id in 1..=options.nodes as u64 {
            let files = node_tls_files(dir, id);
            if !files.cert_file.exists() {
                ca.issue(&format!("berth-node-{id}"), &names)?.save(&files)?;
            }
        }
        let admin = admin_tls_files(dir);
        if !admin.cert_file.exists() {
            ca.issue("berth-admin", &names)?.save(&admin)?;
        }
        let cluster = DevCluster {
            nodes: (0..options.nodes).map(|_| None).collect(),
            agents: (0..options.agents).map(|_| None).collect(),
            ca_pem: ca.cert_pem.clone(),
            options,
            layout,
        };
        cluster.save_layout()?;
        for id in 1..=cluster.options.nodes as u64 {
            cluster.write_node_config(id)?;
        }
        for index in 0..cluster.options.agents {
            cluster.write_agent_config(index)?;
        }
        Ok(cluster)
    }

    fn save_layout(&self) -> anyhow::Result<()> {
        let path = self.options.dir.join("dev-layout.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&self.layout)?)?;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.options.dir
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn ca_file(&self) -> PathBuf {
        self.options.dir.join("tls/ca.pem")
    }

    pub fn node_count(&self) -> usize {
        self.options.nodes
    }

    pub fn api_url(&self, id: u64) -> String {
        self.layout.members[(id - 1) as usize].api_url.clone()
    }

    /// The HTTPS base URL of a node's agent port (where DCV servers validate connection tokens).
    pub fn agent_https_url(&self, id: u64) -> String {
        format!("https://{}", self.layout.members[(id - 1) as usize].agent_address)
    }

    pub fn gateway_url(&self, id: u64) -> String {
        format!("https://127.0.0.1:{}", self.layout.gateway_ports[(id - 1) as usize])
    }

    pub fn api_urls(&self) -> Vec<String> {
        self.layout.members.iter().map(|m| m.api_url.clone()).collect()
    }

    pub fn node_config_path(&self, id: u64) -> PathBuf {
        self.options.dir.join(format!("node-{id}/berth.toml"))
    }

    pub fn node_data_dir(&self, id: u64) -> PathBuf {
        self.options.dir.join(format!("node-{id}/data"))
    }

    fn write_node_config(&self, id: u64) -> anyhow::Result<()> {
        let me = &self.layout.members[(id - 1) as usize];
        let port = |address: &str| -> anyhow::Result<u16> {
            Ok(address.rsplit(':').next().context("address without port")?.parse()?)
        };
        let files = node_tls_files(&self.options.dir, id);
        let o = &self.options;
        let mut config = NodeConfig {
            client_to_broker_connector_bind_host: "127.0.0.1".into(),
            client_to_broker_connector_https_port: port(&me.api_url)?,
            agent_to_broker_connector_bind_host: "127.0.0.1".into(),
            agent_to_broker_connector_https_port: port(&me.agent_address)?,
            enable_gateway: true,
            gateway_to_broker_connector_bind_host: "127.0.0.1".into(),
            gateway_to_broker_connector_https_port: self.layout.gateway_ports[(id - 1) as usize],
            peer_bind_host: "127.0.0.1".into(),
            peer_port: port(&me.peer_address)?,
            ca_file: Some(files.ca_file),
            cert_file: Some(files.cert_file),
            key_file: Some(files.key_file),
            create_sessions_number_of_retries_on_failure: o.create_sessions_number_of_retries_on_failure,
            access_token_validity_seconds: o.access_token_validity_seconds,
            seconds_before_deleting_unreachable_dcv_server: o.seconds_before_deleting_unreachable_dcv_server,
            seconds_before_deleting_sessions_unreachable_server: o.seconds_before_deleting_sessions_unreachable_server,
            delete_session_duration_hours: o.delete_session_duration_hours,
            create_sessions_queue_max_size: o.create_sessions_queue_max_size,
            create_sessions_queue_max_time_seconds: o.create_sessions_queue_max_time_seconds,
            raft: o.raft.clone(),
            ..NodeConfig::new(id, self.node_data_dir(id), self.layout.members.clone())
        };
        if let Some(configure) = self.options.configure_node {
            configure(&mut config);
        }
        let path = self.node_config_path(id);
        std::fs::create_dir_all(path.parent().expect("has parent"))?;
        std::fs::write(&path, toml::to_string_pretty(&config)?)?;
        Ok(())
    }

    pub fn agent_id(index: usize) -> String {
        format!("dev-agent-{}", index + 1)
    }

    pub fn agent_config_path(&self, index: usize) -> PathBuf {
        self.options.dir.join(format!("{}/agent.conf", Self::agent_id(index)))
    }

    fn write_agent_config(&self, index: usize) -> anyhow::Result<()> {
        let brokers: Vec<String> = self.layout.members.iter().map(|m| format!("\"{}\"", m.agent_address)).collect();
        let text = format!(
            "version = '0.1'\n\n[agent]\nbrokers = [{}]\nca_file = \"{}\"\nserver_id = \"{}\"\nbackend = \"{}\"\n{}\n\n[tags]\ndev_agent = \"{}\"\n",
            brokers.join(", "),
            self.ca_file().display(),
            Self::agent_id(index),
            self.options.backend,
            self.options.agent_settings.get(&index).map(String::as_str).unwrap_or(""),
            index + 1,
        );
        let path = self.agent_config_path(index);
        std::fs::create_dir_all(path.parent().expect("has parent"))?;
        std::fs::write(&path, text)?;
        Ok(())
    }

    fn spawn(&self, program: &str, args: &[&str], log: &Path) -> anyhow::Result<Child> {
        let log_file = OpenOptions::new().create(true).append(true).open(log)?;
        let mut command = Command::new(self.options.bin_dir.join(program));
        command.args(args).stdin(Stdio::null()).stdout(log_file.try_clone()?).stderr(log_file);
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info,openraft=warn,sled=warn");
        }
        if self.options.die_with_parent {
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl is async-signal-safe and touches only the child's own attributes.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        command.spawn().with_context(|| format!("cannot start {}", self.options.bin_dir.join(program).display()))
    }

    pub fn start_node(&mut self, id: u64) -> anyhow::Result<()> {
        let config = self.node_config_path(id);
        let log = self.options.dir.join(format!("node-{id}/node.log"));
        let child = self.spawn("berth", &["node", "--config", &config.to_string_lossy()], &log)?;
        self.nodes[(id - 1) as usize] = Some(child);
        Ok(())
    }

    pub fn start_agent(&mut self, index: usize) -> anyhow::Result<()> {
        let config = self.agent_config_path(index);
        let log = self.options.dir.join(format!("{}/agent.log", Self::agent_id(index)));
        let child = self.spawn("berth-agent", &["--config", &config.to_string_lossy()], &log)?;
        self.agents[index] = Some(child);
        Ok(())
    }

    pub fn node_pid(&self, id: u64) -> Option<u32> {
        self.nodes[(id - 1) as usize].as_ref().map(Child::id)
    }

    pub fn agent_pid(&self, index: usize) -> Option<u32> {
        self.agents[index].as_ref().map(Child::id)
    }

    /// kill -9.
    pub fn kill_node(&mut self, id: u64) {
        if let Some(mut child) = self.nodes[(id - 1) as usize].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn kill_agent(&mut self, index: usize) {
        if let Some(mut child) = self.agents[index].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then SIGKILL if the process has not exited within `grace`.
    pub fn stop_node(&mut self, id: u64, grace: Duration) {
        if let Some(child) = self.nodes[(id - 1) as usize].take() {
            terminate(child, grace);
        }
    }

    pub fn stop_all(&mut self) {
        for child in self.agents.iter_mut().filter_map(Option::take) {
            terminate(child, Duration::from_secs(5));
        }
        for child in self.nodes.iter_mut().filter_map(Option::take) {
            terminate(child, Duration::from_secs(10));
        }
    }

    pub fn start_all(&mut self) -> anyhow::Result<()> {
        for id in 1..=self.options.nodes as u64 {
            self.start_node(id)?;
        }
        Ok(())
    }

    /// Waits until every running node answers `/health` (it knows a leader).
    pub async fn wait_healthy(&self, timeout: Duration) -> anyhow::Result<()> {
        let http = ApiClient::new(&self.ca_pem, "", "")?;
        let give_up = Instant::now() + timeout;
        for (index, node) in self.nodes.iter().enumerate() {
            if node.is_none() {
                continue;
            }
            let url = format!("{}/health", self.layout.members[index].api_url);
            loop {
                match http.http().get(&url).send().await {
                    Ok(response) if response.status().is_success() => break,
                    _ if Instant::now() > give_up => {
                        bail!("node {} did not become healthy within {timeout:?}", index + 1)
                    }
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }
        Ok(())
    }

    /// Registers the dev API client once; its secret is kept in the directory for later runs.
    pub async fn ensure_client(&mut self) -> anyhow::Result<(String, String)> {
        if let (Some(id), Some(secret)) = (&self.layout.client_id, &self.layout.client_secret) {
            return Ok((id.clone(), secret.clone()));
        }
        let tls = TlsMaterial::load(&admin_tls_files(&self.options.dir))?;
        let peers: Vec<String> = self.layout.members.iter().map(|m| m.peer_address.clone()).collect();
        let (id, secret) = crate::admin::register_api_client(&tls, &peers, "berth-dev").await?;
        self.layout.client_id = Some(id.clone());
        self.layout.client_secret = Some(secret.clone());
        self.save_layout()?;
        Ok((id, secret))
    }

    /// A REST client authenticated as the dev API client.
    pub async fn api_client(&mut self) -> anyhow::Result<ApiClient> {
        let (id, secret) = self.ensure_client().await?;
        ApiClient::new(&self.ca_pem, &id, &secret)
    }

    /// Waits until DescribeServers through `api_url` lists `count` servers.
    pub async fn wait_for_servers(
        &self,
        client: &ApiClient,
        api_url: &str,
        count: usize,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let give_up = Instant::now() + timeout;
        loop {
            if let Ok((status, body)) = client.post(api_url, "/describeServers", &json!({})).await {
                let seen = body["Servers"].as_array().map(Vec::len).unwrap_or(0);
                if status.is_success() && seen >= count {
                    return Ok(());
                }
            }
            if Instant::now() > give_up {
                bail!("{count} agents did not register within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn info(&self) -> ClusterInfo {
        ClusterInfo {
            nodes: self
                .layout
                .members
                .iter()
                .enumerate()
                .map(|(index, m)| NodeEntry {
                    id: m.id,
                    api_url: m.api_url.clone(),
                    gateway_url: self.gateway_url(index as u64 + 1),
                    pid: self.node_pid(index as u64 + 1),
                })
                .collect(),
            agents: (0..self.options.agents)
                .map(|index| AgentEntry { id: Self::agent_id(index), pid: self.agent_pid(index) })
                .collect(),
            ca_file: self.ca_file(),
            client_id: self.layout.client_id.clone().unwrap_or_default(),
            client_secret: self.layout.client_secret.clone().unwrap_or_default(),
        }
    }

    pub fn write_info(&self) -> anyhow::Result<PathBuf> {
        let path = self.options.dir.join("cluster.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&self.info())?)?;
        Ok(path)
    }

    /// Starts everything and waits until the cluster serves requests and every agent registered.
    pub async fn up(&mut self, timeout: Duration) -> anyhow::Result<()> {
        self.start_all()?;
        self.wait_healthy(timeout).await?;
        let client = self.api_client().await?;
        for index in 0..self.options.agents {
            self.start_agent(index)?;
        }
        let first = self.api_url(1);
        self.wait_for_servers(&client, &first, self.options.agents, timeout).await?;
        self.write_info()?;
        Ok(())
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        for child in self.agents.iter_mut().chain(self.nodes.iter_mut()).filter_map(Option::take) {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn terminate(mut child: Child, grace: Duration) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    // Wait for the exit itself on a helper thread, with a deadline; SIGKILL if it does not come.
    let (exited, wait) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = child.wait();
        let _ = exited.send(());
    });
    if wait.recv_timeout(grace).is_err() {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
    let _ = waiter.join();
}

fn node_tls_files(dir: &Path, id: u64) -> TlsFiles {
    TlsFiles {
        ca_file: dir.join("tls/ca.pem"),
        cert_file: dir.join(format!("tls/node-{id}.pem")),
        key_file: dir.join(format!("tls/node-{id}.key")),
    }
}

fn admin_tls_files(dir: &Path) -> TlsFiles {
    TlsFiles {
        ca_file: dir.join("tls/ca.pem"),
        cert_file: dir.join("tls/admin.pem"),
        key_file: dir.join("tls/admin.key"),
    }
}
