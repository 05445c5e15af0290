//! `berth`: run a broker node, a local dev cluster, or an admin command.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use broker_node::config::NodeConfig;
use broker_node::dev::{DevCluster, DevOptions};
use broker_node::node::{run_node, Listeners};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "berth", version, about = "Berth: a highly available DCV Session Manager broker")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one broker node.
    Node {
        #[arg(long)]
        config: PathBuf,
    },
    /// Run a local cluster of real processes on loopback (brokers and agents), until Ctrl-C.
    Dev {
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        #[arg(long, default_value_t = 2)]
        agents: usize,
        #[arg(long, default_value = "berth-dev")]
        dir: PathBuf,
        /// Session backend of the agents: simulated (sessions exist only in the agents' memory).
        #[arg(long, default_value = "simulated")]
        backend: String,
        /// Build a Raft snapshot after this many log entries.
        #[arg(long)]
        snapshot_logs: Option<u64>,
    },
    /// Administrative commands (run on a node's host: they use its configuration and certificate).
    Admin {
        #[command(subcommand)]
        command: AdminCmd,
    },
}

/// A node's configuration file (for its certificate and the member list).
#[derive(clap::Args)]
struct AdminConfig {
    #[arg(long, default_value = "/etc/berth/berth.toml")]
    config: PathBuf,
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Register an OAuth2 API client; prints its id and secret once (only a hash is stored).
    RegisterApiClient {
        #[arg(long)]
        client_name: String,
        #[command(flatten)]
        config: AdminConfig,
    },
    /// List the registered API clients (id, name, creation time; never secrets).
    DescribeApiClients {
        #[command(flatten)]
        config: AdminConfig,
    },
    /// Unregister an API client; its access tokens stop working at once.
    UnregisterApiClient {
        // Ids issued before they were hex may start with '-'.
        #[arg(long, allow_hyphen_values = true)]
        client_id: String,
        #[command(flatten)]
        config: AdminConfig,
    },
    /// Accept the tokens of an external OAuth2 authorization server, verified with the keys at this JWKS URL.
    RegisterAuthServer {
        #[arg(long)]
        url: String,
        #[command(flatten)]
        config: AdminConfig,
    },
    /// List the registered authorization servers.
    ListAuthServers {
        #[command(flatten)]
        config: AdminConfig,
    },
    /// Unregister an authorization server; its tokens are refused from then on.
    UnregisterAuthServer {
        #[arg(long)]
        url: String,
        #[command(flatten)]
        config: AdminConfig,
    },
}

/// The node's certificate and the members' peer addresses, from its configuration file.
fn admin_link(config: &AdminConfig) -> anyhow::Result<(broker_transport::TlsMaterial, Vec<String>)> {
    let config = NodeConfig::load(&config.config)?;
    let tls = broker_transport::TlsMaterial::load(&config.tls_files())
        .context("cannot load the node's certificate named in the configuration")?;
    Ok((tls, config.members.iter().map(|m| m.peer_address.clone()).collect()))
}

async fn run_admin(command: AdminCmd) -> anyhow::Result<()> {
    use broker_node::admin;
    match command {
        AdminCmd::RegisterApiClient { client_name, config } => {
            let (tls, peers) = admin_link(&config)?;
            let (id, secret) = admin::register_api_client(&tls, &peers, &client_name).await?;
            println!("client-id: {id}\nclient-secret: {secret}\n(the secret cannot be shown again)");
        }
        AdminCmd::DescribeApiClients { config } => {
            let (tls, peers) = admin_link(&config)?;
            print!("{}", admin::api_clients_table(&admin::describe_api_clients(&tls, &peers).await?));
        }
        AdminCmd::UnregisterApiClient { client_id, config } => {
            let (tls, peers) = admin_link(&config)?;
            admin::unregister_api_client(&tls, &peers, &client_id).await?;
            println!("unregistered API client {client_id}");
        }
        AdminCmd::RegisterAuthServer { url, config } => {
            // Checked before the configuration is read, so a typo is named first.
            admin::jwks_url(&url)?;
            let (tls, peers) = admin_link(&config)?;
            let url = admin::register_auth_server(&tls, &peers, &url).await?;
            println!("registered authorization server {url}");
        }
        AdminCmd::ListAuthServers { config } => {
            let (tls, peers) = admin_link(&config)?;
            print!("{}", admin::auth_servers_table(&admin::list_auth_servers(&tls, &peers).await?));
        }
        AdminCmd::UnregisterAuthServer { url, config } => {
            let (tls, peers) = admin_link(&config)?;
            admin::unregister_auth_server(&tls, &peers, &url).await?;
            println!("unregistered authorization server {url}");
        }
    }
    Ok(())
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn,sled=warn"));
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal();
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).init();
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    broker_transport::install_crypto_provider();
    let cli = Cli::parse();
    match cli.command {
        Cmd::Node { config } => {
            init_tracing();
            let config = NodeConfig::load(&config)?;
            let listeners = Listeners::bind(&config)?;
            run_node(config, listeners, shutdown_signal()).await
        }
        Cmd::Dev { nodes, agents, dir, backend, snapshot_logs } => {
            init_tracing();
            if backend != "simulated" {
                anyhow::bail!("--backend {backend}: only 'simulated' exists in this version");
            }
            let bin_dir = std::env::current_exe()?.parent().context("berth has no parent directory")?.to_owned();
            let dir = std::path::absolute(&dir)?;
            let mut options = DevOptions::new(&dir, nodes, agents, bin_dir);
            options.backend = backend;
            options.die_with_parent = true;
            if let Some(n) = snapshot_logs {
                options.raft.snapshot_logs_since_last = n;
            }
            let mut cluster = DevCluster::prepare(options)?;
            println!("starting {nodes} broker nodes and {agents} agents in {} ...", dir.display());
            tokio::select! {
                started = cluster.up(Duration::from_secs(60)) => started?,
                _ = shutdown_signal() => { cluster.stop_all(); return Ok(()); }
            }
            print_summary(&cluster);
            shutdown_signal().await;
            println!("stopping ...");
            cluster.stop_all();
            Ok(())
        }
        Cmd::Admin { command } => run_admin(command).await,
    }
}

fn print_summary(cluster: &DevCluster) {
    let info = cluster.info();
    println!(
        "\nBerth dev cluster is up ({} agents, backend: simulated: sessions exist only in the agents' memory)",
        info.agents.len()
    );
    for node in &info.nodes {
        println!("  node {}  {}  pid {}", node.id, node.api_url, node.pid.unwrap_or(0));
    }
    for agent in &info.agents {
        println!("  agent {}  pid {}", agent.id, agent.pid.unwrap_or(0));
    }
    let url = &info.nodes[0].api_url;
    let ca = info.ca_file.display();
    println!("\ncluster file: {}", cluster.dir().join("cluster.json").display());
    println!("\nTry it:");
    println!(
        "  TOKEN=$(curl -s --cacert {ca} -u '{}:{}' -X POST '{url}/oauth2/token?grant_type=client_credentials' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')",
        info.client_id, info.client_secret
    );
    println!(
        "  curl -s --cacert {ca} -H \"Authorization: Bearer $TOKEN\" -X POST {url}/createSessions -d '[{{\"Name\":\"demo\",\"Owner\":\"alice\",\"Type\":\"VIRTUAL\"}}]'"
    );
    println!("  curl -s --cacert {ca} -H \"Authorization: Bearer $TOKEN\" -X POST {url}/describeSessions");
    println!("\nPress Ctrl-C to stop.");
}
