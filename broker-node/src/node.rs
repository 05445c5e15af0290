//! `berth node`: wires storage, Raft, the peer and agent listeners, the leader's actors and the HTTPS API.
//! Takes already-bound listeners and a shutdown future, so callers choose ports and lifetimes.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use broker_actors::{start_leader_actors, ActorConfig, LeaderActors, LeaderSlot};
use broker_api::{ApiConfig, ApiState};
use broker_core::agent_proto::AGENT_ALPN;
use broker_raft::network::PeerNetworkFactory;
use broker_raft::{BerthNode, ClusterHandle, PEER_ALPN};
use broker_transport::quic::server_endpoint_on;
use broker_transport::tls::ClusterCa;
use broker_transport::{ConnectionPool, TlsFiles, TlsMaterial};
use openraft::ServerState;

use crate::config::NodeConfig;

/// The node's three listeners, bound before the node starts.
pub struct Listeners {
    pub api: TcpListener,
    pub agent: UdpSocket,
    /// The same port over TCP: DCV servers validate connection tokens here.
    pub agent_https: TcpListener,
    pub peer: UdpSocket,
    /// The DCV Connection Gateway's session resolver, when `enable-gateway` is set.
    pub gateway: Option<TcpListener>,
}

impl Listeners {
    pub fn bind(config: &NodeConfig) -> anyhow::Result<Self> {
        let api_addr = config.api_bind().map_err(anyhow::Error::msg)?;
        let agent_addr = config.agent_bind().map_err(anyhow::Error::msg)?;
        let peer_addr = config.peer_bind().map_err(anyhow::Error::msg)?;
        Ok(Listeners {
            api: TcpListener::bind(api_addr).with_context(|| format!("cannot bind the API on {api_addr}/tcp"))?,
            agent: UdpSocket::bind(agent_addr)
                .with_context(|| format!("cannot bind the agent port {agent_addr}/udp"))?,
            agent_https: TcpListener::bind(agent_addr)
                .with_context(|| format!("cannot bind the agent port {agent_addr}/tcp"))?,
            peer: UdpSocket::bind(peer_addr).with_context(|| format!("cannot bind the peer port {peer_addr}/udp"))?,
            gateway: match config.enable_gateway {
                false => None,
                true => {
                    let addr = config.gateway_bind().map_err(anyhow::Error::msg)?;
                    let listener = TcpListener::bind(addr)
                        .with_context(|| format!("cannot bind the gateway resolver on {addr}/tcp"))?;
                    Some(listener)
                }
            },
        })
    }
}

/// Loads the configured TLS material, or generates a self-signed CA and node certificate on first start.
pub fn tls_material(config: &NodeConfig) -> anyhow::Result<TlsMaterial> {
    let files: TlsFiles = config.tls_files();
    if files.cert_file.exists() || config.cert_file.is_some() {
        return TlsMaterial::load(&files).context("cannot load the node's TLS material");
    }
    let ca = ClusterCa::generate()?;
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    for member in config.members.iter().filter(|m| m.id == config.node_id) {
        if let Some((host, _)) = member.peer_address.rsplit_once(':') {
            names.push(host.to_owned());
        }
    }
    names.sort();
    names.dedup();
    let material = ca.issue(&format!("berth-node-{}", config.node_id), &names)?;
    material.save(&files)?;
    tracing::info!(dir = %files.cert_file.display(), "generated self-signed TLS material");
    Ok(material)
}

fn raft_config(config: &NodeConfig) -> anyhow::Result<openraft::Config> {
    let r = &config.raft;
    let raft = openraft::Config {
        cluster_name: "berth".into(),
        heartbeat_interval: r.heartbeat_interval_ms,
        election_timeout_min: r.election_timeout_min_ms,
        election_timeout_max: r.election_timeout_max_ms,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(r.snapshot_logs_since_last),
        max_in_snapshot_log_to_keep: r.max_logs_kept_after_snapshot,
        // Chunks small enough that a large snapshot shows progress and never hits one RPC's timeout.
        snapshot_max_chunk_size: 1024 * 1024,
        ..Default::default()
    };
    Ok(raft.validate()?)
}

fn members(config: &NodeConfig) -> BTreeMap<u64, BerthNode> {
    config
        .members
        .iter()
        .map(|m| {
            (
                m.id,
                BerthNode {
                    peer_address: m.peer_address.clone(),
                    api_url: m.api_url.clone(),
                    agent_address: m.agent_address.clone(),
                },
            )
        })
        .collect()
}

pub async fn run_node(
    config: NodeConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let tls = tls_material(&config)?;
    let data_dir = config.session_manager_working_path.join("raft");
    std::fs::create_dir_all(&data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    let (log_store, state_machine) =
        broker_raft::open_storage(&data_dir, broker_raft::storage::DEFAULT_CACHE_CAPACITY_BYTES)
            .with_context(|| format!("cannot open the Raft store in {}", data_dir.display()))?;
    let state = state_machine.state();

    let peer_endpoint = server_endpoint_on(
        listeners.peer,
        quinn_server_config(tls.mtls_server_config(PEER_ALPN)?)?,
        Some(tls.mtls_client_config(PEER_ALPN)?),
    )?;
    let pool = ConnectionPool::new(peer_endpoint.clone());
    let raft = broker_raft::Raft::new(
        config.node_id,
        Arc::new(raft_config(&config)?),
        PeerNetworkFactory::new(pool.clone()),
        log_store,
        state_machine,
    )
    .await
    .context("cannot start Raft")?;
    let deadline = Duration::from_millis(config.raft.request_deadline_ms);
    let cluster = ClusterHandle::new(raft.clone(), config.node_id, pool, state, deadline);
    tokio::spawn(broker_raft::server::serve_peers(peer_endpoint.clone(), cluster.clone()));

    if !raft.is_initialized().await? {
        // Every member may do this with the same static list; openraft keeps the first.
        match raft.initialize(members(&config)).await {
            Ok(()) => tracing::info!(members = config.members.len(), "bootstrapped the cluster membership"),
            Err(e) => tracing::info!(reason = %e, "membership bootstrap skipped"),
        }
    }

    let actor_config = ActorConfig {
        max_creation_attempts: config.create_sessions_number_of_retries_on_failure + 1,
        liveness: broker_core::liveness::LivenessRules {
            grace_ms: 5_000,
            remove_after_ms: config.seconds_before_deleting_unreachable_dcv_server as i64 * 1000,
            end_sessions_after_ms: config.seconds_before_deleting_sessions_unreachable_server.map(|s| s as i64 * 1000),
            keep_deleted_ms: (config.delete_session_duration_hours * 3_600_000.0) as i64,
        },
        queue: broker_core::placement::QueueLimits {
            max_size: config.create_sessions_queue_max_size,
            max_time_ms: config.create_sessions_queue_max_time_seconds as i64 * 1000,
        },
        ..ActorConfig::default()
    };
    let slot = LeaderSlot::default();
    cluster.set_agent_relay(Arc::new(broker_actors::LeaderRelay::new(slot.clone(), deadline)));
    let agent_endpoint =
        server_endpoint_on(listeners.agent, quinn_server_config(tls.server_config(&[AGENT_ALPN])?)?, None)?;
    tokio::spawn(broker_actors::gateway::serve_agents(
        agent_endpoint.clone(),
        cluster.clone(),
        slot.clone(),
        actor_config.clone(),
    ));
    let leadership = tokio::spawn(follow_leadership(cluster.clone(), slot.clone(), actor_config));

    if !config.enable_authorization {
        tracing::warn!("enable-authorization = false: the API answers every caller without a token");
    }
    let api_config = ApiConfig {
        token_ttl_secs: config.access_token_validity_seconds,
        connection_token_ttl_secs: config.connect_session_token_duration_minutes * 60,
        require_authorization: config.enable_authorization,
        issue_tokens: config.enable_authorization_server,
        argument_limits: broker_core::validation::ArgumentLimits {
            max_arguments: config.autorun_file_arguments_max_size,
            max_argument_length: config.autorun_file_arguments_max_argument_length,
        },
        screenshot: broker_api::relayed::ScreenshotDefaults {
            max_width: config.session_screenshot_max_width,
            max_height: config.session_screenshot_max_height,
            format: broker_core::agent_proto::ImageFormat::parse(&config.session_screenshot_format)
                .unwrap_or(broker_core::agent_proto::ImageFormat::Png),
        },
    };
    let jwks = Arc::new(broker_api::jwks::JwksCache::new(broker_api::jwks::JwksSettings::default()));
    let api_state = ApiState { cluster: cluster.clone(), config: Arc::new(api_config), jwks };
    let mut https = tls.server_config(&[b"h2", b"http/1.1"])?;
    https.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let api_addr: SocketAddr = listeners.api.local_addr()?;
    listeners.api.set_nonblocking(true)?;
    listeners.agent_https.set_nonblocking(true)?;
    let https = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(https));
    let handle = axum_server::Handle::<SocketAddr>::new();
    let server = axum_server::from_tcp_rustls(listeners.api, https.clone())?
        .handle(handle.clone())
        .serve(broker_api::router(api_state.clone()).into_make_service());
    let agent_handle = axum_server::Handle::<SocketAddr>::new();
    let agent_server = axum_server::from_tcp_rustls(listeners.agent_https, https.clone())?
        .handle(agent_handle.clone())
        .serve(broker_api::agent_router(api_state.clone()).into_make_service());
    if let Some(gateway) = listeners.gateway {
        gateway.set_nonblocking(true)?;
        tracing::info!(gateway = %gateway.local_addr()?, "gateway session resolver enabled");
        let gateway_server = axum_server::from_tcp_rustls(gateway, https)?
            .handle(agent_handle.clone())
            .serve(broker_api::gateway::router(api_state).into_make_service());
        tokio::spawn(gateway_server);
    }
    tracing::info!(node = config.node_id, api = %api_addr, "berth node running");
    let api = tokio::spawn(server);
    tokio::spawn(agent_server);

    shutdown.await;
    tracing::info!(node = config.node_id, "shutting down");
    handle.graceful_shutdown(Some(Duration::from_secs(2)));
    agent_handle.graceful_shutdown(Some(Duration::from_secs(1)));
    leadership.abort();
    if let Some(supervisor) = slot.get() {
        supervisor.stop(Some("node shutting down".into()));
    }
    agent_endpoint.close(0u32.into(), b"node shutting down");
    let _ = raft.shutdown().await;
    peer_endpoint.close(0u32.into(), b"node shutting down");
    let _ = tokio::time::timeout(Duration::from_secs(3), api).await;
    Ok(())
}

fn quinn_server_config(tls: rustls::ServerConfig) -> anyhow::Result<quinn::ServerConfig> {
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(broker_transport::quic::transport_config());
    Ok(config)
}

/// Starts the actor tree when this node becomes leader and stops it when it stops being leader.
async fn follow_leadership(cluster: ClusterHandle, slot: LeaderSlot, config: ActorConfig) {
    let mut metrics = cluster.raft().metrics();
    let mut running: Option<LeaderActors> = None;
    loop {
        let leading = {
            let m = metrics.borrow_and_update();
            m.state == ServerState::Leader && m.current_leader == Some(cluster.node_id())
        };
        match (leading, running.is_some()) {
            (true, false) => {
                match start_leader_actors(cluster.clone(), config.clone(), Some(broker_api::auth::new_signing_key()))
                    .await
                {
                    Ok(actors) => {
                        slot.set(Some(actors.supervisor.clone()));
                        running = Some(actors);
                    }
                    Err(e) => tracing::error!(error = %e, "cannot start the leader's actors"),
                }
            }
            (false, true) => {
                slot.set(None);
                if let Some(actors) = running.take() {
                    actors.stop().await;
                }
            }
            _ => {}
        }
        if metrics.changed().await.is_err() {
            break;
        }
    }
    slot.set(None);
    if let Some(actors) = running.take() {
        actors.stop().await;
    }
}
