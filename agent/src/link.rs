//! The agent's link to the Raft leader: find it through any broker (following redirects), register with the
//! sessions that actually run, heartbeat, answer the leader's requests, and re-home by itself after a failover.

use std::convert::Infallible;
use std::future::Future;
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use broker_core::agent_proto::{
    AgentEvent, AgentHello, AgentReply, BrokerEvent, BrokerRequest, HelloReply, AGENT_ALPN,
};
use broker_core::model::HostFacts;
use broker_transport::frame::{read_message, read_request, write_message, write_response, FrameError};
use broker_transport::quic::{self, EndpointError};
use broker_transport::tls::{client_config_trusting, TlsError};
use quinn::{Connection, Endpoint, RecvStream, SendStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, timeout, timeout_at, Instant, MissedTickBehavior};
use tracing::{debug, error, info, warn};

use crate::backend::{BackendError, SessionBackend};
use crate::config::AgentConfig;
use crate::facts::{self, FactsCollector};

/// Redirects followed within one attempt; more means the brokers disagree about the leader, so back off.
pub const MAX_REDIRECTS: usize = 3;
const BACKOFF_START: Duration = Duration::from_millis(50);
const BACKOFF_CAP: Duration = Duration::from_secs(1);
/// A handshake that has not completed after this long gets company: the next broker is dialled too. A dead
/// leader never answers (UDP has no reset), and waiting out the connect timeout on it would make re-homing
/// after a failover take seconds.
pub const CONNECT_STAGGER: Duration = Duration::from_millis(200);
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(2);
/// The link is dropped when no heartbeat was acknowledged for this many intervals: QUIC's idle timeout would
/// notice a dead leader too, but much later.
pub const MISSED_ACKS: u32 = 3;
/// Changed host facts ride on a heartbeat at most this often.
pub const FACTS_MIN_INTERVAL: Duration = Duration::from_secs(30);
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);
const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("no broker address is configured")]
    NoBrokers,
    #[error("the CA certificate from {}: {source}", file.display())]
    Tls { file: PathBuf, source: TlsError },
    #[error("cannot set up QUIC: {0}")]
    Endpoint(#[from] EndpointError),
    #[error(transparent)]
    Facts(#[from] facts::FactsError),
}

/// Why one registration attempt failed.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("cannot open the control stream: {0}")]
    Open(#[from] quinn::ConnectionError),
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("no answer to the registration within {0:?}")]
    HelloTimeout(Duration),
    #[error("the broker closed the control stream without answering")]
    NoReply,
}

/// Runs the link until `shutdown` completes. Errors only when it cannot start at all (bad CA, no socket);
/// everything after that is retried.
pub async fn run<B: SessionBackend>(
    config: AgentConfig,
    backend: Arc<B>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), LinkError> {
    broker_transport::install_crypto_provider();
    if config.brokers.is_empty() {
        return Err(LinkError::NoBrokers);
    }
    let tls = client_config_trusting(&config.ca_pem, AGENT_ALPN)
        .map_err(|source| LinkError::Tls { file: config.ca_file.clone(), source })?;
    let endpoint = quic::client_endpoint(tls)?;
    let facts = FactsCollector::new()?;
    info!("agent {} (backend '{}') starting; brokers: {}", config.server_id, backend.name(), config.brokers.join(", "));
    let mut link = Link {
        config,
        backend,
        endpoint: endpoint.clone(),
        facts,
        backoff: Backoff::new(),
        last_leader: None,
        next_index: 0,
        leader_id: None,
    };
    tokio::select! {
        biased;
        () = shutdown => info!("shutting down the link to the leader"),
        never = link.run_forever() => match never {},
    }
    // Closing tells the leader at once that this agent left on purpose, rather than after its idle timeout.
    endpoint.close(0u32.into(), b"agent shutting down");
    let _ = timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
    Ok(())
}

/// What the leader answers to one request from it.
pub async fn answer<B: SessionBackend>(backend: &B, request: BrokerRequest) -> AgentReply {
    match request {
        BrokerRequest::CreateSession { session_id, spec } => match backend.create(&session_id, &spec).await {
            Ok(()) => AgentReply::Created { session_id },
            Err(e) => AgentReply::Failed { session_id, reason: e.to_string() },
        },
        BrokerRequest::DeleteSession { session_id } => match backend.delete(&session_id).await {
            Ok(()) => AgentReply::Deleted { session_id },
            Err(e) => AgentReply::Failed { session_id, reason: e.to_string() },
        },
        BrokerRequest::GetScreenshot { session_id, max_width, max_height, format } => {
            match backend.screenshot(&session_id, max_width, max_height, format).await {
                Ok(images) => AgentReply::Screenshot { session_id, images },
                Err(BackendError::NoSuchSession(_)) => AgentReply::NoSuchSession { session_id },
                Err(e) => AgentReply::Failed { session_id, reason: e.to_string() },
            }
        }
        BrokerRequest::UpdatePermissions { session_id, permissions_file } => {
            match backend.update_permissions(&session_id, permissions_file.as_deref()).await {
                Ok(()) => AgentReply::PermissionsUpdated { session_id },
                Err(BackendError::NoSuchSession(_)) => AgentReply::NoSuchSession { session_id },
                Err(e) => AgentReply::Failed { session_id, reason: e.to_string() },
            }
        }
    }
}

struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff { next: BACKOFF_START }
    }

    fn reset(&mut self) {
        self.next = BACKOFF_START;
    }

    /// Between half and all of the current step, so that the agents of a whole site, which all lost the same
    /// leader at the same moment, do not knock on the brokers in lockstep.
    fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (step * 2).min(BACKOFF_CAP);
        let random = std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now());
        step / 2 + step.mul_f64((random % 1000) as f64 / 2000.0)
    }
}

/// A registration the leader accepted.
struct Registered {
    address: String,
    connection: Connection,
    send: SendStream,
    recv: RecvStream,
    heartbeat_interval: Duration,
    facts: HostFacts,
}

struct Link<B> {
    config: AgentConfig,
    backend: Arc<B>,
    endpoint: Endpoint,
    facts: FactsCollector,
    backoff: Backoff,
    /// The address the last leader accepted us at: tried first after the link breaks, since a broken link is
    /// more often a hiccup than a failover.
    last_leader: Option<String>,
    /// Where the next round starts in the configured list, so that a broker that just failed is tried last.
    next_index: usize,
    leader_id: Option<u64>,
}

impl<B: SessionBackend> Link<B> {
    async fn run_forever(&mut self) -> Infallible {
        loop {
            match self.find_leader().await {
                Some(registered) => {
                    self.backoff.reset();
                    let address = registered.address.clone();
                    let reason = self.serve(registered).await;
                    warn!("link to the leader at {address} lost: {reason}; reconnecting");
                    self.last_leader = Some(address);
                }
                None => sleep(self.backoff.next_delay()).await,
            }
        }
    }

    fn candidates(&mut self) -> Vec<String> {
        let brokers = &self.config.brokers;
        let mut order: Vec<String> = self.last_leader.take().into_iter().collect();
        for i in 0..brokers.len() {
            let address = &brokers[(self.next_index + i) % brokers.len()];
            if !order.contains(address) {
                order.push(address.clone());
            }
        }
        order
    }

    fn move_past(&mut self, address: &str) {
        if let Some(i) = self.config.brokers.iter().position(|b| b == address) {
            self.next_index = (i + 1) % self.config.brokers.len();
        }
    }

    /// One attempt: reach some broker, then follow its redirects to the leader. None means back off and retry.
    async fn find_leader(&mut self) -> Option<Registered> {
        let order = self.candidates();
        let (mut address, mut connection) = connect_first(&self.endpoint, &order).await?;
        let mut redirects = 0;
        loop {
            let reply = self.register(&address, &connection).await;
            let (send, recv, facts, reply) = match reply {
                Ok(exchange) => exchange,
                Err(e) => {
                    warn!("registration at {address} failed: {e}");
                    connection.close(0u32.into(), b"registration failed");
                    self.move_past(&address);
                    return None;
                }
            };
            match reply {
                HelloReply::Accepted { leader_id, heartbeat_interval_ms } => {
                    let heartbeat_interval = match heartbeat_interval_ms {
                        0 => self.config.heartbeat_interval,
                        ms => Duration::from_millis(ms),
                    }
                    .max(MIN_HEARTBEAT_INTERVAL);
                    if let Some(old) = self.leader_id.replace(leader_id) {
                        if old != leader_id {
                            info!("leader changed from node {old} to node {leader_id}");
                        }
                    }
                    info!("accepted by leader node {leader_id} at {address}; heartbeat every {heartbeat_interval:?}");
                    return Some(Registered { address, connection, send, recv, heartbeat_interval, facts });
                }
                HelloReply::Redirect { leader_id, agent_address: Some(target) } => {
                    connection.close(0u32.into(), b"redirected");
                    let leader = leader_id.map_or_else(|| "?".to_owned(), |id| id.to_string());
                    if redirects == MAX_REDIRECTS {
                        warn!(
                            "{address} redirects to leader node {leader} at {target}: too many redirects, backing off"
                        );
                        self.move_past(&address);
                        return None;
                    }
                    redirects += 1;
                    info!("{address} redirects to leader node {leader} at {target}");
                    info!("connecting to broker {target}");
                    match quic::connect(&self.endpoint, &target).await {
                        Ok(next) => (address, connection) = (target, next),
                        Err(e) => {
                            warn!("cannot connect to the leader at {target}: {e}");
                            self.move_past(&address);
                            return None;
                        }
                    }
                }
                HelloReply::Redirect { agent_address: None, .. } => {
                    info!("{address} knows no leader yet (election in progress); trying the next broker");
                    connection.close(0u32.into(), b"no leader");
                    self.move_past(&address);
                    return None;
                }
                HelloReply::Refused { reason } => {
                    error!("{address} refused this agent's registration: {reason}");
                    connection.close(0u32.into(), b"refused");
                    self.move_past(&address);
                    return None;
                }
            }
        }
    }

    /// Sends the registration on a new control stream and reads the answer.
    async fn register(
        &mut self,
        address: &str,
        connection: &Connection,
    ) -> Result<(SendStream, RecvStream, HostFacts, HelloReply), AttemptError> {
        let host = self.facts.host_facts();
        let ip = facts::primary_ipv4(self.config.preferred_network_interface.as_deref());
        let server = facts::server_info(
            &self.config,
            host.clone(),
            ip,
            self.backend.endpoints(&ip.to_string()),
            self.backend.server_version(),
        );
        let running = self.backend.list().await;
        debug!("registering {} at {address} with {} running sessions", server.id, running.len());
        let exchange = async {
            let (mut send, mut recv) = connection.open_bi().await?;
            write_message(&mut send, &AgentHello::Register { server, running }).await?;
            match read_message::<HelloReply>(&mut recv).await? {
                Some(reply) => Ok((send, recv, reply)),
                None => Err(AttemptError::NoReply),
            }
        };
        let (send, recv, reply) =
            timeout(HELLO_TIMEOUT, exchange).await.map_err(|_| AttemptError::HelloTimeout(HELLO_TIMEOUT))??;
        Ok((send, recv, host, reply))
    }

    /// Heartbeats and serves requests until the link breaks; returns why it broke.
    async fn serve(&mut self, registered: Registered) -> String {
        let Registered { connection, mut send, recv, heartbeat_interval, facts: mut replicated, .. } = registered;
        let ack_window = heartbeat_interval * MISSED_ACKS;
        let (ack_tx, mut ack_rx) = mpsc::unbounded_channel();
        // Reading frames is not cancel-safe, so the reader lives across loop turns instead of inside select!.
        let reader = read_acks(recv, ack_tx);
        tokio::pin!(reader);
        let mut ticker = tokio::time::interval_at(Instant::now() + heartbeat_interval, heartbeat_interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut seq = 0u64;
        let mut last_ack = Instant::now();
        let mut replicated_at = Instant::now();
        let reason = loop {
            let deadline = last_ack + ack_window;
            tokio::select! {
                reason = &mut reader => break reason,
                Some(acked) = ack_rx.recv() => {
                    if acked <= seq {
                        last_ack = Instant::now();
                    } else {
                        warn!("the leader acknowledged heartbeat {acked}, which was never sent");
                    }
                }
                () = sleep_until(deadline) => break format!("no heartbeat acknowledged for {ack_window:?}"),
                _ = ticker.tick() => {
                    seq += 1;
                    let facts = self.facts_update(&mut replicated, &mut replicated_at);
                    if facts.is_some() {
                        debug!("host facts changed; sending them with heartbeat {seq}");
                    }
                    match timeout_at(deadline, write_message(&mut send, &AgentEvent::Heartbeat { seq, facts })).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => break format!("cannot send a heartbeat: {e}"),
                        Err(_) => break format!("no heartbeat acknowledged for {ack_window:?}"),
                    }
                }
                incoming = connection.accept_bi() => match incoming {
                    Ok((send, recv)) => {
                        tokio::spawn(handle_request(self.backend.clone(), send, recv));
                    }
                    Err(e) => break format!("connection lost: {e}"),
                },
            }
        };
        connection.close(0u32.into(), b"agent reconnecting");
        reason
    }

    /// New facts when they changed enough since the last replicated ones and long enough ago.
    fn facts_update(&mut self, replicated: &mut HostFacts, replicated_at: &mut Instant) -> Option<HostFacts> {
        if replicated_at.elapsed() < FACTS_MIN_INTERVAL {
            return None;
        }
        let fresh = self.facts.host_facts();
        if !facts::differs_meaningfully(replicated, &fresh) {
            return None;
        }
        *replicated = fresh.clone();
        *replicated_at = Instant::now();
        Some(fresh)
    }
}

/// Dials the candidates in order, starting the next one when the previous failed or is slow, and keeps the
/// first connection that completes its handshake. None when none could be reached.
async fn connect_first(endpoint: &Endpoint, order: &[String]) -> Option<(String, Connection)> {
    let mut attempts = JoinSet::new();
    let mut pending = order.iter().peekable();
    let mut next_start = Instant::now();
    loop {
        tokio::select! {
            biased;
            Some(joined) = attempts.join_next() => match joined {
                Ok((address, Ok(connection))) => return Some((address, connection)),
                Ok((address, Err(e))) => {
                    warn!("cannot connect to broker {address}: {e}");
                    next_start = Instant::now();
                }
                Err(e) => warn!("a connection attempt ended abnormally: {e}"),
            },
            () = sleep_until(next_start), if pending.peek().is_some() => {
                let address = pending.next().expect("peeked").clone();
                info!("connecting to broker {address}");
                let endpoint = endpoint.clone();
                attempts.spawn(async move {
                    let result = quic::connect(&endpoint, &address).await;
                    (address, result)
                });
                next_start = Instant::now() + CONNECT_STAGGER;
            }
            else => return None,
        }
    }
}

async fn read_acks(mut recv: RecvStream, acks: mpsc::UnboundedSender<u64>) -> String {
    loop {
        match read_message::<BrokerEvent>(&mut recv).await {
            Ok(Some(BrokerEvent::HeartbeatAck { seq })) => {
                let _ = acks.send(seq);
            }
            Ok(None) => return "the leader finished the control stream".into(),
            Err(e) => return format!("the control stream failed: {e}"),
        }
    }
}

async fn handle_request<B: SessionBackend>(backend: Arc<B>, mut send: SendStream, mut recv: RecvStream) {
    let request = match timeout(REQUEST_READ_TIMEOUT, read_request::<BrokerRequest>(&mut recv)).await {
        Ok(Ok(request)) => request,
        Ok(Err(e)) => {
            warn!("unreadable request from the leader: {e}");
            return;
        }
        Err(_) => {
            warn!("a request from the leader did not arrive within {REQUEST_READ_TIMEOUT:?}");
            return;
        }
    };
    debug!("request from the leader: {request:?}");
    let reply = answer(&*backend, request).await;
    if let Err(e) = write_response(&mut send, &reply).await {
        warn!("cannot answer the leader with {reply:?}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    use broker_core::agent_proto::RunningSession;
    use broker_core::model::{SessionSpec, SessionType};
    use broker_transport::tls::{ClusterCa, TlsMaterial};
    use tokio::net::UdpSocket;

    use super::*;
    use crate::backend::SimulatedBackend;

    // Long enough that a loaded test machine does not miss acks by accident.
    const TEST_HEARTBEAT_MS: u64 = 200;
    const PATIENCE: Duration = Duration::from_secs(5);

    #[derive(Clone, Debug)]
    enum Mode {
        Redirect(String),
        Accept { leader_id: u64 },
    }

    #[derive(Debug)]
    enum Seen {
        Registered { server_id: String, running: Vec<RunningSession> },
        Heartbeat { seq: u64 },
    }

    /// Just enough of a broker's agent port to drive the link: answers registrations as `mode` says, acks
    /// heartbeats, and reports what it saw.
    struct FakeBroker {
        endpoint: Endpoint,
        address: String,
        mode: Arc<Mutex<Mode>>,
        seen: mpsc::UnboundedReceiver<Seen>,
        agent: Arc<Mutex<Option<Connection>>>,
    }

    impl FakeBroker {
        fn start(material: &TlsMaterial, mode: Mode) -> FakeBroker {
            let server_config = material.server_config(&[AGENT_ALPN]).unwrap();
            let endpoint = quic::server_endpoint("127.0.0.1:0".parse().unwrap(), server_config, None).unwrap();
            let address = format!("127.0.0.1:{}", endpoint.local_addr().unwrap().port());
            let mode = Arc::new(Mutex::new(mode));
            let agent = Arc::default();
            let (seen_tx, seen) = mpsc::unbounded_channel();
            tokio::spawn(serve_agents(endpoint.clone(), mode.clone(), Arc::clone(&agent), seen_tx));
            FakeBroker { endpoint, address, mode, seen, agent }
        }

        fn set_mode(&self, mode: Mode) {
            *self.mode.lock().unwrap() = mode;
        }

        /// The next event that `wanted` accepts, skipping others; fails the test after `PATIENCE`.
        async fn expect(&mut self, what: &str, wanted: impl Fn(&Seen) -> bool) -> Seen {
            let deadline = Instant::now() + PATIENCE;
            loop {
                match timeout_at(deadline, self.seen.recv()).await {
                    Ok(Some(seen)) if wanted(&seen) => return seen,
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("{} stopped before {what}", self.address),
                    Err(_) => panic!("{}: no {what} within {PATIENCE:?}", self.address),
                }
            }
        }

        fn agent_connection(&self) -> Connection {
            self.agent.lock().unwrap().clone().expect("an agent was accepted")
        }
    }

    async fn serve_agents(
        endpoint: Endpoint,
        mode: Arc<Mutex<Mode>>,
        agent: Arc<Mutex<Option<Connection>>>,
        seen: mpsc::UnboundedSender<Seen>,
    ) {
        while let Some(incoming) = endpoint.accept().await {
            let (mode, agent, seen) = (mode.clone(), agent.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(connection) = incoming.await else { return };
                let Ok((mut send, mut recv)) = connection.accept_bi().await else { return };
                let Ok(Some(AgentHello::Register { server, running })) = read_message(&mut recv).await else {
                    return;
                };
                let _ = seen.send(Seen::Registered { server_id: server.id, running });
                let mode = mode.lock().unwrap().clone();
                let reply = match mode {
                    Mode::Redirect(target) => HelloReply::Redirect { leader_id: Some(2), agent_address: Some(target) },
                    Mode::Accept { leader_id } => {
                        HelloReply::Accepted { leader_id, heartbeat_interval_ms: TEST_HEARTBEAT_MS }
                    }
                };
                let accepted = matches!(reply, HelloReply::Accepted { .. });
                if write_message(&mut send, &reply).await.is_err() || !accepted {
                    connection.closed().await;
                    return;
                }
                *agent.lock().unwrap() = Some(connection.clone());
                while let Ok(Some(AgentEvent::Heartbeat { seq, .. })) = read_message(&mut recv).await {
                    let _ = seen.send(Seen::Heartbeat { seq });
                    if write_message(&mut send, &BrokerEvent::HeartbeatAck { seq }).await.is_err() {
                        break;
                    }
                }
            });
        }
    }

    /// A UDP relay in front of a broker that can be cut, to make the broker vanish the way a killed process or
    /// a partition does: without a word, so that only missing acks (or QUIC's idle timeout) reveal it.
    struct Relay {
        address: String,
        cut: Arc<AtomicBool>,
    }

    impl Relay {
        async fn start(target: SocketAddr) -> Relay {
            let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
            let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
            back.connect(target).await.unwrap();
            let address = format!("127.0.0.1:{}", front.local_addr().unwrap().port());
            let cut = Arc::new(AtomicBool::new(false));
            let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
            let (up_front, up_back, up_cut, up_client) = (front.clone(), back.clone(), cut.clone(), client.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                while let Ok((n, from)) = up_front.recv_from(&mut buf).await {
                    *up_client.lock().unwrap() = Some(from);
                    if !up_cut.load(Ordering::SeqCst) {
                        let _ = up_back.send(&buf[..n]).await;
                    }
                }
            });
            let down_cut = cut.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = back.recv(&mut buf).await {
                    let to = *client.lock().unwrap();
                    if let (false, Some(to)) = (down_cut.load(Ordering::SeqCst), to) {
                        let _ = front.send_to(&buf[..n], to).await;
                    }
                }
            });
            Relay { address, cut }
        }

        fn cut(&self) {
            self.cut.store(true, Ordering::SeqCst);
        }
    }

    fn material() -> TlsMaterial {
        broker_transport::install_crypto_provider();
        let ca = ClusterCa::generate().unwrap();
        ca.issue("broker", &["localhost".into(), "127.0.0.1".into()]).unwrap()
    }

    fn agent_config(brokers: Vec<String>, material: &TlsMaterial) -> AgentConfig {
        let mut config = AgentConfig::minimal(brokers, material.ca_pem.clone());
        config.server_id = "agent-under-test".into();
        config
    }

    fn alice_spec() -> SessionSpec {
        SessionSpec {
            name: "desk".into(),
            owner: "alice".into(),
            session_type: Some(SessionType::Virtual),
            ..SessionSpec::default()
        }
    }

    #[tokio::test]
    async fn follows_a_redirect_serves_requests_and_rehomes_when_the_leader_goes() {
        let material = material();
        let mut b = FakeBroker::start(&material, Mode::Accept { leader_id: 2 });
        let mut a = FakeBroker::start(&material, Mode::Redirect(b.address.clone()));
        let backend = Arc::new(SimulatedBackend::new(None, None));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let config = agent_config(vec![a.address.clone()], &material);
        let agent = tokio::spawn(run(config, backend.clone(), async {
            let _ = stopped.await;
        }));

        a.expect("a first registration", |s| matches!(s, Seen::Registered { running, .. } if running.is_empty())).await;
        b.expect(
            "the registration after the redirect",
            |s| matches!(s, Seen::Registered { server_id, .. } if server_id == "agent-under-test"),
        )
        .await;
        for want in 1..=3 {
            b.expect(&format!("heartbeat {want}"), |s| matches!(s, Seen::Heartbeat { seq } if *seq == want)).await;
        }

        let create = BrokerRequest::CreateSession { session_id: "s1".into(), spec: alice_spec() };
        for _ in 0..2 {
            // The second creation is the leader re-issuing one it was unsure of: it must answer Created again.
            let reply: AgentReply = broker_transport::call(&b.agent_connection(), &create, PATIENCE).await.unwrap();
            assert_eq!(reply, AgentReply::Created { session_id: "s1".into() });
        }
        assert_eq!(backend.list().await.len(), 1);

        a.set_mode(Mode::Accept { leader_id: 1 });
        b.endpoint.close(0u32.into(), b"leader stopped");
        let seen = a.expect("a registration with the new leader", |s| matches!(s, Seen::Registered { .. })).await;
        let Seen::Registered { running, .. } = seen else { unreachable!() };
        assert_eq!(running, [RunningSession { session_id: "s1".into(), owner: "alice".into() }]);
        a.expect("a heartbeat to the new leader", |s| matches!(s, Seen::Heartbeat { .. })).await;

        let delete = BrokerRequest::DeleteSession { session_id: "s1".into() };
        let reply: AgentReply = broker_transport::call(&a.agent_connection(), &delete, PATIENCE).await.unwrap();
        assert_eq!(reply, AgentReply::Deleted { session_id: "s1".into() });
        assert!(backend.list().await.is_empty());

        stop.send(()).unwrap();
        timeout(PATIENCE, agent).await.expect("the agent stops on shutdown").unwrap().unwrap();
    }

    #[tokio::test]
    async fn leaves_a_leader_that_falls_silent_long_before_the_idle_timeout() {
        let material = material();
        let mut b = FakeBroker::start(&material, Mode::Accept { leader_id: 2 });
        let relay = Relay::start(b.endpoint.local_addr().unwrap()).await;
        // A redirects until B is gone, in case a slow handshake through the relay lets A answer first.
        let mut a = FakeBroker::start(&material, Mode::Redirect(relay.address.clone()));
        let backend = Arc::new(SimulatedBackend::new(None, None));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let config = agent_config(vec![relay.address.clone(), a.address.clone()], &material);
        let agent = tokio::spawn(run(config, backend, async {
            let _ = stopped.await;
        }));

        b.expect("a registration through the relay", |s| matches!(s, Seen::Registered { .. })).await;
        b.expect("heartbeat 2", |s| matches!(s, Seen::Heartbeat { seq: 2 })).await;
        a.set_mode(Mode::Accept { leader_id: 1 });
        relay.cut();
        let cut_at = Instant::now();
        a.expect("a registration with the new leader", |s| matches!(s, Seen::Registered { .. })).await;
        let took = cut_at.elapsed();
        eprintln!("re-homed {took:?} after the leader fell silent");
        // 3 missed acks (600 ms) + the stagger past the dead address (200 ms) + a handshake; QUIC alone would
        // wait for its idle timeout.
        assert!(
            took < Duration::from_millis(2500),
            "re-homed after {took:?}; idle timeout is {:?}",
            quic::IDLE_TIMEOUT
        );

        stop.send(()).unwrap();
        timeout(PATIENCE, agent).await.expect("the agent stops on shutdown").unwrap().unwrap();
    }

    #[tokio::test]
    async fn answers_follow_the_backend() {
        let backend = SimulatedBackend::new(Some(1), None);
        let create = |id: &str| BrokerRequest::CreateSession { session_id: id.into(), spec: alice_spec() };
        assert_eq!(answer(&backend, create("s1")).await, AgentReply::Created { session_id: "s1".into() });
        assert_eq!(answer(&backend, create("s1")).await, AgentReply::Created { session_id: "s1".into() });
        match answer(&backend, create("s2")).await {
            AgentReply::Failed { session_id, reason } => {
                assert_eq!(session_id, "s2");
                assert!(reason.contains("max_virtual_sessions"), "{reason}");
            }
            other => panic!("over the limit, got {other:?}"),
        }
        let delete = BrokerRequest::DeleteSession { session_id: "unknown".into() };
        assert_eq!(answer(&backend, delete).await, AgentReply::Deleted { session_id: "unknown".into() });
    }

    #[test]
    fn backoff_doubles_up_to_a_second_with_jitter_and_resets() {
        let mut backoff = Backoff::new();
        let steps: Vec<u64> = [50, 100, 200, 400, 800, 1000, 1000].to_vec();
        for step in steps {
            let delay = backoff.next_delay();
            let step = Duration::from_millis(step);
            assert!(delay >= step / 2 && delay <= step, "{delay:?} for a step of {step:?}");
        }
        backoff.reset();
        assert!(backoff.next_delay() <= BACKOFF_START);
    }
}
