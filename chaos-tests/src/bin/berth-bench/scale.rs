//! The benchmarks at fleet scale, on a `berth dev` cluster without process agents and an in-process fleet of
//! simulated agents: sessions placed to READY per second (with and without a requirement), re-homing of the
//! whole fleet after a leader kill, DescribeSessions latency on a follower with 100,000 sessions, and broker
//! memory with 10,000 servers and 100,000 sessions.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use broker_node::client::ApiClient;
use broker_node::dev::{DevCluster, DevOptions};
use chaos_tests::fleet::{self, Fleet, FleetOptions, TagRule};
use chaos_tests::measure::{self, new_histogram, summarize, Summary};
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};

use crate::classic::restart_and_catch_up;
use crate::{leader, status};

/// Servers whose agents left stay in the state (UNREACHABLE) this long: the memory phase keeps 9,000 of them.
const KEEP_UNREACHABLE_SERVERS_SECONDS: u64 = 7 * 24 * 3600;
/// Ids asked for in one DescribeSessions, the most one page can answer.
const IDS_PER_DESCRIBE: usize = 1000;

pub struct ScaleOptions {
    pub nodes: usize,
    pub agents: usize,
    pub tags: Vec<TagRule>,
    pub stagger: Duration,
    /// How the cluster is filled for describe and memory.
    pub fill: Offer,
}

#[derive(Clone, Debug, Serialize)]
pub struct Registration {
    pub agents: usize,
    pub stagger_ms: u64,
    /// From the first agent's start until every agent was accepted by the leader.
    pub all_accepted_seconds: f64,
    /// From the same start until DescribeServers listed them all as AVAILABLE.
    pub all_available_seconds: f64,
    /// Links the agents lost while registering (they register again).
    pub links_lost: u64,
    /// UDP datagrams dropped on full receive buffers meanwhile (machine-wide).
    pub udp_rcvbuf_drops: u64,
}

/// One placement run: sessions created as fast as the clients can, timed until the last one is READY.
#[derive(Clone, Debug, Serialize)]
pub struct PlacementRun {
    pub label: String,
    pub requirement: Option<String>,
    /// Servers the requirement (if any) lets the sessions go to.
    pub eligible_servers: usize,
    pub batch_size: usize,
    pub clients: usize,
    /// Sessions per second the clients were paced to; None: as fast as they could.
    pub offered_per_second: Option<f64>,
    /// The most sessions acknowledged but not yet created on an agent (None: unbounded).
    pub window: Option<usize>,
    pub requested: usize,
    /// Sessions the brokers acknowledged (SuccessfulList).
    pub created: usize,
    /// Calls that failed (not 200), and the sessions they carried.
    pub failed_calls: u64,
    pub refused_sessions: u64,
    pub ready: usize,
    /// Acknowledged sessions that ended DELETED (placement or creation failed) or were not found.
    pub not_ready: usize,
    /// From the first CreateSessions until the last acknowledgement.
    pub create_seconds: f64,
    /// From the first CreateSessions until the last session was READY.
    pub ready_seconds: f64,
    pub create_per_second: f64,
    /// `ready / ready_seconds`: the figure the target is about.
    pub ready_per_second: f64,
    pub call_latency: Summary,
    /// When half, 99% and all of the created sessions had been created on their agents (seconds from the first
    /// CreateSessions; sampled every 50 ms in the fleet): the bulk rate, apart from stragglers whose agent lost
    /// its link while they were being prepared.
    pub on_agents_50_seconds: Option<f64>,
    pub on_agents_99_seconds: Option<f64>,
    pub on_agents_all_seconds: Option<f64>,
    /// Raft terms that began during the run: leader elections the load caused.
    pub elections: u64,
    /// Links the fleet's agents lost during the run, and UDP datagrams dropped on full receive buffers.
    pub links_lost: u64,
    pub udp_rcvbuf_drops: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Rehome {
    pub agents: usize,
    pub killed_leader: u64,
    pub new_leader: u64,
    /// Agents the new leader accepted after the kill (all of them unless the wait timed out).
    pub rehomed: usize,
    /// From the kill -9 until the last agent saw the new leader accept its registration.
    pub rehome_ms: f64,
    /// Until the first agent did, and until half, 90% and 99% of them had.
    pub first_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    /// Links the agents lost from the kill until all were re-homed: one each is the kill itself, more means
    /// agents lost their new leader again (or were redirected by a node that was not leader after all).
    pub links_lost: u64,
    pub udp_rcvbuf_drops: u64,
    /// Distinct fleet servers the new leader logged "agent registered" for after the kill (a cross-check from
    /// the broker's side).
    pub broker_registrations_logged: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct DescribeReport {
    pub sessions_in_cluster: usize,
    pub follower: u64,
    /// A walk through all pages with NextToken, MaxResults 1000, restarting at the end.
    pub page_1000: Summary,
    pub page_bytes_mean: u64,
    /// SessionIds with one random session's id.
    pub one_session: Summary,
    pub fill: Option<PlacementRun>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NodeMemory {
    pub node: u64,
    pub role: &'static str,
    pub rss_mib: f64,
    pub peak_rss_mib: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct MemoryReport {
    pub servers: usize,
    pub servers_available: usize,
    pub live_agents: usize,
    pub sessions: usize,
    pub how: String,
    pub nodes: Vec<NodeMemory>,
    pub max_rss_mib: f64,
    /// (leader RSS - mean follower RSS) / live agents: what a connected agent costs the leader beyond the
    /// replicated state, which followers hold too.
    pub leader_kib_per_live_agent: f64,
    /// Mean follower RSS + that cost for every server connected at once (an estimate, not a measurement).
    pub leader_mib_all_connected_estimate: f64,
    pub wave_registration_seconds: f64,
    pub fill: Option<PlacementRun>,
}

pub struct Scale {
    cluster: DevCluster,
    client: Arc<ApiClient>,
    options: ScaleOptions,
    brokers: Vec<String>,
    ca_file: PathBuf,
    /// The fleet runs on its own threads, like a separate process would, so that it does not queue behind the
    /// benchmark's own clients.
    runtime: Option<tokio::runtime::Runtime>,
    fleet: Option<Fleet>,
    /// Every session acknowledged so far, in acknowledgement order.
    session_ids: Vec<String>,
    next_agent: usize,
    pub registration: Registration,
}

/// How the memory phase registers the servers beyond the fleet.
#[derive(Clone, Copy, Debug)]
pub struct Waves {
    pub agents: usize,
    /// Between two agents' starts: slower than the fleet's, so that the agents of the fleet, which stay connected,
    /// do not miss heartbeats under the load of the registrations.
    pub stagger: Duration,
    /// Between two agents' departures.
    pub leave_spacing: Duration,
}

/// What `register_waves` did.
#[derive(Clone, Debug)]
pub struct WaveRegistration {
    pub seconds: f64,
    pub how: String,
}

/// How a placement run offers its sessions.
#[derive(Clone, Copy, Debug)]
pub struct Offer {
    /// Sessions per CreateSessions call.
    pub batch: usize,
    /// Concurrent clients, spread over all nodes.
    pub clients: usize,
    /// Sessions per second the clients are paced to; None: as fast as they can.
    pub rate: Option<f64>,
    /// The most sessions acknowledged but not yet created on an agent before the clients wait; None: no bound.
    pub window: Option<usize>,
}

/// A client waiting on the window goes ahead anyway after this long without progress, so that sessions that
/// fail (and so never reach an agent) cannot stall the run.
const WINDOW_PATIENCE: Duration = Duration::from_secs(2);

/// The ids one CreateSessions call got back, and when.
type Acked = (Instant, Vec<String>);

fn fleet_options(scale: &Scale, first: usize, agents: usize, stagger: Duration) -> anyhow::Result<FleetOptions> {
    Ok(FleetOptions {
        brokers: scale.brokers.clone(),
        ca_file: scale.ca_file.clone(),
        ca_pem: scale.cluster.ca_pem().to_owned(),
        first,
        agents,
        tags: scale.options.tags.clone(),
        stagger,
        max_virtual_sessions: None,
    })
}

/// Polls `done` every 20 ms until it holds; prints `progress` every 2 s.
async fn wait_until(
    what: &str,
    timeout: Duration,
    mut done: impl FnMut() -> bool,
    progress: impl Fn() -> String,
) -> anyhow::Result<()> {
    let give_up = Instant::now() + timeout;
    let mut next_print = Instant::now() + Duration::from_secs(2);
    while !done() {
        if Instant::now() > give_up {
            bail!("{what}: not within {timeout:?} ({})", progress());
        }
        if Instant::now() > next_print {
            eprintln!("  {what}: {}", progress());
            next_print += Duration::from_secs(2);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Walks DescribeServers through `url`: (servers, AVAILABLE ones, AVAILABLE ones with the tag `tag`).
async fn count_servers(
    client: &ApiClient,
    url: &str,
    tag: Option<(&str, &str)>,
) -> anyhow::Result<(usize, usize, usize)> {
    let (mut total, mut available, mut matching) = (0, 0, 0);
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({ "MaxResults": 1000 });
        if let Some(token) = &token {
            body["NextToken"] = json!(token);
        }
        let page = post_patiently(client, url, "/describeServers", &body).await?;
        for server in page["Servers"].as_array().into_iter().flatten() {
            total += 1;
            if server["Availability"] == "AVAILABLE" {
                available += 1;
                let tags = server["Tags"].as_array().into_iter().flatten();
                if let Some((key, value)) = tag {
                    if tags.into_iter().any(|t| t["Key"] == key && t["Value"] == value) {
                        matching += 1;
                    }
                }
            }
        }
        match page["NextToken"].as_str() {
            Some(next) => token = Some(next.to_owned()),
            None => return Ok((total, available, matching)),
        }
    }
}

/// A `tag:KEY = 'VALUE'` requirement, the kind the benchmark uses, read back into (KEY, VALUE).
fn simple_tag_requirement(requirement: &str) -> Option<(String, String)> {
    let (subject, value) = requirement.split_once('=')?;
    let key = subject.trim().strip_prefix("tag:")?.trim();
    let value = value.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    Some((key.to_owned(), value.to_owned()))
}

/// A POST timed from the request's first byte to the response's last, leaving out building and parsing JSON.
async fn timed_post(
    client: &ApiClient,
    url: &str,
    path: &str,
    body: &Value,
) -> anyhow::Result<(Duration, StatusCode, Vec<u8>)> {
    let token = client.token(url).await?;
    let request = client.http().post(format!("{url}{path}")).bearer_auth(token).json(body).build()?;
    let start = Instant::now();
    let response = client.http().execute(request).await?;
    let code = response.status();
    let bytes = response.bytes().await?;
    Ok((start.elapsed(), code, bytes.to_vec()))
}

fn parse(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// How long a poll retries through an election or an overloaded node before the benchmark gives up.
const POLL_PATIENCE: Duration = Duration::from_secs(60);

/// One call that is retried (every 100 ms, for up to `POLL_PATIENCE`) while the cluster answers anything but 200:
/// a benchmark that drives the cluster to its limits sees elections, and its bookkeeping must outlive them.
async fn post_patiently(client: &ApiClient, url: &str, path: &str, body: &Value) -> anyhow::Result<Value> {
    let give_up = Instant::now() + POLL_PATIENCE;
    loop {
        let failure = match client.post(url, path, body).await {
            Ok((code, answer)) if code == StatusCode::OK => return Ok(answer),
            Ok((code, answer)) => format!("{code}: {answer}"),
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() > give_up {
            bail!("{path} through {url} failed for {POLL_PATIENCE:?}; last: {failure}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The states of the asked-for sessions (absent ones are left out), asked of `url`.
async fn session_states(client: &ApiClient, url: &str, ids: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut states = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_DESCRIBE) {
        let body = json!({ "SessionIds": chunk, "MaxResults": IDS_PER_DESCRIBE });
        let page = post_patiently(client, url, "/describeSessions", &body).await?;
        for session in page["Sessions"].as_array().into_iter().flatten() {
            if let (Some(id), Some(state)) = (session["Id"].as_str(), session["State"].as_str()) {
                states.push((id.to_owned(), state.to_owned()));
            }
        }
    }
    Ok(states)
}

/// Asks until every one of `ids` is READY or DELETED; returns how many ended READY.
async fn wait_settled(client: &ApiClient, url: &str, ids: &[String], timeout: Duration) -> anyhow::Result<usize> {
    let give_up = Instant::now() + timeout;
    let mut pending: Vec<String> = ids.to_vec();
    let mut ready = 0;
    while !pending.is_empty() {
        let states = session_states(client, url, &pending).await?;
        let mut settled = HashSet::new();
        for (id, state) in states {
            match state.as_str() {
                "READY" => {
                    ready += 1;
                    settled.insert(id);
                }
                "DELETED" => {
                    settled.insert(id);
                }
                _ => {}
            }
        }
        pending.retain(|id| !settled.contains(id));
        if pending.is_empty() {
            break;
        }
        if Instant::now() > give_up {
            bail!("{} sessions still not READY after {timeout:?}", pending.len());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(ready)
}

fn node_log(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("node-{id}/node.log"))
}

/// Distinct `fleet-NNNNN` servers in "agent registered" lines of `log` after byte `offset`.
fn registrations_logged(log: &Path, offset: u64) -> usize {
    let Ok(text) = std::fs::read(log) else { return 0 };
    let text = String::from_utf8_lossy(text.get(offset as usize..).unwrap_or_default());
    let mut servers = HashSet::new();
    for line in text.lines().filter(|line| line.contains("agent registered")) {
        if let Some(at) = line.find("fleet-") {
            let id: String = line[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
            servers.insert(id);
        }
    }
    servers.len()
}

impl Scale {
    /// Starts the cluster and the fleet, and waits until DescribeServers lists every agent AVAILABLE.
    pub async fn start(options: ScaleOptions, dir: &Path, bin_dir: &Path) -> anyhow::Result<Scale> {
        let mut dev = DevOptions::new(dir, options.nodes, 0, bin_dir);
        dev.seconds_before_deleting_unreachable_dcv_server = KEEP_UNREACHABLE_SERVERS_SECONDS;
        let mut cluster = DevCluster::prepare(dev)?;
        cluster.up(Duration::from_secs(60)).await?;
        let client = Arc::new(cluster.api_client().await?);
        let brokers = (1..=options.nodes as u64)
            .map(|id| cluster.agent_https_url(id).trim_start_matches("https://").to_owned())
            .collect();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fleet")
            .enable_all()
            .build()
            .context("cannot start the fleet's runtime")?;
        let ca_file = cluster.ca_file();
        let agents = options.agents;
        let stagger_ms = options.stagger.as_millis() as u64;
        let mut scale = Scale {
            cluster,
            client,
            options,
            brokers,
            ca_file,
            runtime: Some(runtime),
            fleet: None,
            session_ids: Vec::new(),
            next_agent: agents + 1,
            registration: Registration {
                agents,
                stagger_ms,
                all_accepted_seconds: 0.0,
                all_available_seconds: 0.0,
                links_lost: 0,
                udp_rcvbuf_drops: 0,
            },
        };
        eprintln!("fleet: starting {agents} simulated agents, one every {stagger_ms} ms ...");
        let drops_before = udp_drops();
        let runtime = scale.runtime.as_ref().expect("just built");
        let fleet = Fleet::start(&fleet_options(&scale, 1, agents, scale.options.stagger)?, runtime.handle())?;
        let fleet = scale.fleet.insert(fleet);
        let started = fleet.started();
        let fleet = &*fleet;
        wait_until(
            "fleet registration",
            Duration::from_secs(120 + agents as u64 * stagger_ms / 1000),
            || fleet.snapshot().registered == agents,
            || fleet.snapshot().to_string(),
        )
        .await?;
        scale.registration.all_accepted_seconds = started.elapsed().as_secs_f64();
        let url = scale.cluster.api_url(1);
        let give_up = Instant::now() + Duration::from_secs(60);
        loop {
            let (total, available, _) = count_servers(&scale.client, &url, None).await?;
            if total >= agents && available >= agents {
                break;
            }
            if Instant::now() > give_up {
                bail!("DescribeServers shows {available} of {agents} servers AVAILABLE after 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        scale.registration.all_available_seconds = started.elapsed().as_secs_f64();
        scale.registration.links_lost = scale.fleet().snapshot().losses;
        scale.registration.udp_rcvbuf_drops = udp_drops() - drops_before;
        eprintln!(
            "fleet: {agents} agents accepted in {:.1} s, all AVAILABLE in DescribeServers at {:.1} s",
            scale.registration.all_accepted_seconds, scale.registration.all_available_seconds
        );
        Ok(scale)
    }

    fn fleet(&self) -> &Fleet {
        self.fleet.as_ref().expect("the fleet runs until stop")
    }

    /// The current Raft term, as the leader reports it.
    async fn term(&self) -> anyhow::Result<u64> {
        let leader = leader(&self.client, &self.cluster).await?;
        let status = status(&self.client, &self.cluster.api_url(leader)).await.context("no status from the leader")?;
        status["Term"].as_u64().context("status without Term")
    }

    async fn follower(&self) -> anyhow::Result<u64> {
        let leader = leader(&self.client, &self.cluster).await?;
        (1..=self.cluster.node_count() as u64)
            .find(|id| *id != leader && self.cluster.node_pid(*id).is_some())
            .context("no follower runs")
    }

    /// Creates `total` sessions as `offer` says, through every node, and times them until READY.
    pub async fn place(
        &mut self,
        label: &str,
        total: usize,
        offer: Offer,
        requirement: Option<&str>,
    ) -> anyhow::Result<PlacementRun> {
        let Offer { batch, clients, rate, window } = offer;
        let poll_url = self.cluster.api_url(self.follower().await?);
        let eligible = match requirement.and_then(simple_tag_requirement) {
            Some((key, value)) => count_servers(&self.client, &poll_url, Some((&key, &value))).await?.2,
            None => count_servers(&self.client, &poll_url, None).await?.1,
        };
        eprintln!(
            "{label}: {total} sessions, {clients} clients, {batch} per CreateSessions, {}, {}{} ({eligible} eligible servers) ...",
            rate.map_or("unpaced".to_owned(), |rate| format!("paced to {rate}/s")),
            window.map_or("no window".to_owned(), |window| format!("window {window}")),
            requirement.map(|r| format!(", requirement {r}")).unwrap_or_default()
        );
        let urls = self.cluster.api_urls();
        let batches = total.div_ceil(batch);
        let next_batch = Arc::new(AtomicUsize::new(0));
        let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
        let failed_calls = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(AtomicU64::new(0));
        let acked_sessions = Arc::new(AtomicU64::new(0));
        let created_before = fleet::sessions_created();
        let term_before = self.term().await?;
        let (losses_before, drops_before) = (self.fleet().snapshot().losses, udp_drops());
        let started = Instant::now();
        let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let sampler = {
            let sampling = sampling.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                while sampling.load(Ordering::Relaxed) {
                    samples.push((started.elapsed().as_secs_f64(), fleet::sessions_created() - created_before));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                samples.push((started.elapsed().as_secs_f64(), fleet::sessions_created() - created_before));
                samples
            })
        };
        let mut tasks = Vec::new();
        for c in 0..clients {
            let (client, urls, next_batch, acked) =
                (self.client.clone(), urls.clone(), next_batch.clone(), acked.clone());
            let (failed_calls, refused, acked_sessions) =
                (failed_calls.clone(), refused.clone(), acked_sessions.clone());
            let requirement = requirement.map(str::to_owned);
            let label = label.to_owned();
            tasks.push(tokio::spawn(async move {
                let mut histogram = new_histogram();
                loop {
                    if let Some(window) = window {
                        let mut created = fleet::sessions_created();
                        let mut progress_at = Instant::now();
                        while acked_sessions.load(Ordering::Relaxed) > created - created_before + window as u64
                            && progress_at.elapsed() < WINDOW_PATIENCE
                        {
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            let now_created = fleet::sessions_created();
                            if now_created != created {
                                (created, progress_at) = (now_created, Instant::now());
                            }
                        }
                    }
                    let b = next_batch.fetch_add(1, Ordering::Relaxed);
                    if b >= batches {
                        break;
                    }
                    if let Some(rate) = rate {
                        let due = started + Duration::from_secs_f64((b * batch) as f64 / rate);
                        tokio::time::sleep_until(due.into()).await;
                    }
                    let n = batch.min(total - b * batch);
                    let body: Vec<Value> = (0..n)
                        .map(|i| {
                            let k = b * batch + i;
                            let mut session = json!({ "Name": format!("{label}-{k}"), "Owner": format!("user{}", k % 100), "Type": "VIRTUAL" });
                            if let Some(requirement) = &requirement {
                                session["Requirements"] = json!(requirement);
                            }
                            session
                        })
                        .collect();
                    let url = &urls[(c + b) % urls.len()];
                    let call = Instant::now();
                    match client.post(url, "/createSessions", &Value::Array(body)).await {
                        Ok((code, answer)) if code == StatusCode::OK => {
                            histogram.record(call.elapsed().as_micros().max(1) as u64).ok();
                            let ids: Vec<String> = answer["SuccessfulList"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|s| s["Id"].as_str().map(str::to_owned))
                                .collect();
                            let unsuccessful = answer["UnsuccessfulList"].as_array().map_or(0, Vec::len);
                            refused.fetch_add(unsuccessful as u64, Ordering::Relaxed);
                            acked_sessions.fetch_add(ids.len() as u64, Ordering::Relaxed);
                            acked.lock().expect("acked lock").push((Instant::now(), ids));
                        }
                        Ok((code, answer)) => {
                            if failed_calls.fetch_add(1, Ordering::Relaxed) < 3 {
                                eprintln!("  CreateSessions through {url} answered {code}: {answer}");
                            }
                            refused.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        Err(e) => {
                            if failed_calls.fetch_add(1, Ordering::Relaxed) < 3 {
                                eprintln!("  CreateSessions through {url} failed: {e:#}");
                            }
                            refused.fetch_add(n as u64, Ordering::Relaxed);
                        }
                    }
                }
                histogram
            }));
        }
        let mut histogram = new_histogram();
        for task in tasks {
            histogram.add(task.await.context("a load client panicked")?).ok();
        }
        let create_seconds = started.elapsed().as_secs_f64();
        let mut acked = std::mem::take(&mut *acked.lock().expect("acked lock"));
        acked.sort_by_key(|(at, _)| *at);
        let ids: Vec<String> = acked.into_iter().flat_map(|(_, ids)| ids).collect();
        eprintln!("  {} sessions acknowledged in {create_seconds:.1} s; waiting for READY ...", ids.len());
        // Sessions are placed and prepared in the order they were committed, so the last acknowledged ones are
        // the last to become READY: watching them alone keeps the polling from loading the brokers.
        let tail = &ids[ids.len().saturating_sub(IDS_PER_DESCRIBE)..];
        wait_settled(&self.client, &poll_url, tail, Duration::from_secs(600)).await?;
        let mut ready_seconds = started.elapsed().as_secs_f64();
        // Then every one, off the clock; any that were still on their way move the end to when they arrived.
        let states = session_states(&self.client, &poll_url, &ids).await?;
        let unsettled: Vec<String> = states
            .iter()
            .filter(|(_, state)| state != "READY" && state != "DELETED")
            .map(|(id, _)| id.clone())
            .collect();
        if !unsettled.is_empty() {
            eprintln!("  {} earlier sessions were not READY yet; waiting for them too", unsettled.len());
            wait_settled(&self.client, &poll_url, &unsettled, Duration::from_secs(600)).await?;
            ready_seconds = started.elapsed().as_secs_f64();
        }
        let states = session_states(&self.client, &poll_url, &ids).await?;
        let ready = states.iter().filter(|(_, state)| state == "READY").count();
        let elections = self.term().await?.saturating_sub(term_before);
        sampling.store(false, Ordering::Relaxed);
        let samples = sampler.await.context("the sampler panicked")?;
        let reached = |share: f64| {
            let want = (ids.len() as f64 * share).ceil() as u64;
            samples.iter().find(|(_, created)| *created >= want).map(|(at, _)| (*at * 100.0).round() / 100.0)
        };
        let run = PlacementRun {
            label: label.to_owned(),
            requirement: requirement.map(str::to_owned),
            eligible_servers: eligible,
            batch_size: batch,
            clients,
            offered_per_second: rate,
            window,
            requested: total,
            created: ids.len(),
            failed_calls: failed_calls.load(Ordering::Relaxed),
            refused_sessions: refused.load(Ordering::Relaxed),
            ready,
            not_ready: ids.len() - ready,
            create_seconds,
            ready_seconds,
            create_per_second: ids.len() as f64 / create_seconds,
            ready_per_second: ready as f64 / ready_seconds,
            call_latency: summarize(&histogram),
            on_agents_50_seconds: reached(0.5),
            on_agents_99_seconds: reached(0.99),
            on_agents_all_seconds: reached(1.0),
            elections,
            links_lost: self.fleet().snapshot().losses - losses_before,
            udp_rcvbuf_drops: udp_drops() - drops_before,
        };
        eprintln!(
            "  {label}: {} READY of {} created in {:.2} s: {:.0} sessions/s to READY; on agents: half at {:?} s, 99% at {:?} s, all at {:?} s; {elections} elections, {} links lost, {} UDP datagrams dropped",
            run.ready, run.created, run.ready_seconds, run.ready_per_second, run.on_agents_50_seconds, run.on_agents_99_seconds, run.on_agents_all_seconds, run.links_lost, run.udp_rcvbuf_drops
        );
        self.session_ids.extend(ids);
        Ok(run)
    }

    /// Kills the leader and times until every agent was accepted by the new one; then restarts the old leader.
    pub async fn rehome(&mut self) -> anyhow::Result<Rehome> {
        let old = leader(&self.client, &self.cluster).await?;
        let agents = self.fleet().len();
        {
            let fleet = self.fleet();
            wait_until(
                "all agents on the leader before the kill",
                Duration::from_secs(30),
                || fleet.snapshot().homed.get(&old) == Some(&agents),
                || fleet.snapshot().to_string(),
            )
            .await?;
        }
        let offsets: Vec<u64> = (1..=self.cluster.node_count() as u64)
            .map(|id| std::fs::metadata(node_log(self.cluster.dir(), id)).map_or(0, |m| m.len()))
            .collect();
        eprintln!("rehome: kill -9 of leader node {old} with {agents} agents connected ...");
        let (losses_before, drops_before) = (self.fleet().snapshot().losses, udp_drops());
        let killed = Instant::now();
        self.cluster.kill_node(old);
        let survivors: Vec<u64> = (1..=self.cluster.node_count() as u64).filter(|id| *id != old).collect();
        let give_up = killed + Duration::from_secs(30);
        let mut next_print = killed + Duration::from_secs(2);
        let (new_leader, homed) = loop {
            let (id, homed) = survivors
                .iter()
                .map(|id| (*id, self.fleet().homed_since(*id, killed)))
                .max_by_key(|(_, homed)| homed.count)
                .expect("survivors");
            if homed.count == agents || Instant::now() > give_up {
                break (id, homed);
            }
            if Instant::now() > next_print {
                eprintln!("  rehome: {}", self.fleet().snapshot());
                next_print += Duration::from_secs(2);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let since_kill = |at: Option<Instant>| at.map_or(f64::NAN, |at| at.duration_since(killed).as_secs_f64() * 1e3);
        let rehomed = homed.count;
        let times = self.fleet().acceptances(new_leader, killed);
        let quantile =
            |q: f64| since_kill(times.get(((times.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied());
        let result = Rehome {
            agents,
            killed_leader: old,
            new_leader,
            rehomed,
            rehome_ms: round1(since_kill(homed.last)),
            first_ms: round1(since_kill(homed.first)),
            p50_ms: round1(quantile(0.5)),
            p90_ms: round1(quantile(0.9)),
            p99_ms: round1(quantile(0.99)),
            links_lost: self.fleet().snapshot().losses - losses_before,
            udp_rcvbuf_drops: udp_drops() - drops_before,
            broker_registrations_logged: 0,
        };
        if rehomed < agents {
            eprintln!("  rehome: only {rehomed} of {agents} agents on node {new_leader} 30 s after the kill");
        }
        // Give the new leader's log a moment to reach the disk before counting its lines.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let logged = registrations_logged(&node_log(self.cluster.dir(), new_leader), offsets[new_leader as usize - 1]);
        eprintln!(
            "  {rehomed} agents accepted by node {new_leader}: first {:.0} ms, half {:.0} ms, 90% {:.0} ms, all {:.0} ms after the kill; its log names {logged}",
            result.first_ms, result.p50_ms, result.p90_ms, result.rehome_ms
        );
        restart_and_catch_up(&self.client, &mut self.cluster, old).await?;
        Ok(Rehome { broker_registrations_logged: logged, ..result })
    }

    async fn fill_to(&mut self, sessions: usize) -> anyhow::Result<Option<PlacementRun>> {
        let have = self.session_ids.len();
        if have >= sessions {
            return Ok(None);
        }
        let offer = self.options.fill;
        Ok(Some(self.place("fill", sessions - have, offer, None).await?))
    }

    /// DescribeSessions latency on a follower: pages of 1000, and one session by id.
    pub async fn describe(&mut self, sessions: usize, samples: usize) -> anyhow::Result<DescribeReport> {
        let fill = self.fill_to(sessions).await?;
        let follower = self.follower().await?;
        let url = self.cluster.api_url(follower);
        eprintln!(
            "describe: {samples} samples each on follower node {follower} ({} sessions) ...",
            self.session_ids.len()
        );
        let mut pages = new_histogram();
        let mut page_bytes = 0u64;
        let mut token: Option<String> = None;
        // Two warm-up rounds first (connections, token, caches), not counted.
        for sample in 0..samples + 2 {
            let mut body = json!({ "MaxResults": 1000 });
            if let Some(token) = &token {
                body["NextToken"] = json!(token);
            }
            let (took, code, response) = timed_post(&self.client, &url, "/describeSessions", &body).await?;
            if code != StatusCode::OK {
                bail!("DescribeSessions answered {code}");
            }
            let page = parse(&response);
            let count = page["Sessions"].as_array().map_or(0, Vec::len);
            token = page["NextToken"].as_str().map(str::to_owned);
            if count != 1000 && token.is_some() {
                bail!("a page of {count} sessions with more to come");
            }
            if sample >= 2 {
                pages.record(took.as_micros().max(1) as u64).ok();
                page_bytes += response.len() as u64;
            }
        }
        let mut one = new_histogram();
        let mut random = 0x9e37_79b9_7f4a_7c15u64;
        for sample in 0..samples + 2 {
            // xorshift: a spread of ids without a dependency.
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            let id = &self.session_ids[(random % self.session_ids.len() as u64) as usize];
            let body = json!({ "SessionIds": [id] });
            let (took, code, response) = timed_post(&self.client, &url, "/describeSessions", &body).await?;
            let found = parse(&response)["Sessions"].as_array().map_or(0, Vec::len);
            if code != StatusCode::OK || found != 1 {
                bail!("DescribeSessions of {id} answered {code} with {found} sessions");
            }
            if sample >= 2 {
                one.record(took.as_micros().max(1) as u64).ok();
            }
        }
        let report = DescribeReport {
            sessions_in_cluster: self.session_ids.len(),
            follower,
            page_1000: summarize(&pages),
            page_bytes_mean: page_bytes / samples.max(1) as u64,
            one_session: summarize(&one),
            fill,
        };
        eprintln!(
            "  page of 1000: p50 {:.2} ms p99 {:.2} ms ({} KiB); one session: p50 {:.2} ms p99 {:.2} ms",
            report.page_1000.p50_us as f64 / 1e3,
            report.page_1000.p99_us as f64 / 1e3,
            report.page_bytes_mean / 1024,
            report.one_session.p50_us as f64 / 1e3,
            report.one_session.p99_us as f64 / 1e3
        );
        Ok(report)
    }

    /// Registers servers beyond the fleet until the state holds `servers`: fleet agents in waves that register
    /// and leave again, so that they stay as UNREACHABLE_AGENT (servers are kept a week in this cluster), since
    /// that many live QUIC links would not fit on the machine beside three brokers. Run it before the sessions
    /// are created: the leader's call that an agent is unreachable costs a scan of every session
    /// (`ClusterState::set_reachable`, about 3 ms per server at 100,000 sessions, on every node, under the state
    /// lock), and 9,000 of them with the sessions in place stall Raft into back-to-back elections.
    pub async fn register_waves(&mut self, servers: usize, waves: Waves) -> anyhow::Result<WaveRegistration> {
        let wave = waves.agents;
        let live = self.fleet().len();
        let mut registered = live;
        let started = Instant::now();
        eprintln!("waves: registering {} more servers in waves of {wave} ...", servers.saturating_sub(registered));
        while registered < servers {
            let count = wave.min(servers - registered);
            let first = self.next_agent;
            let options = fleet_options(self, first, count, waves.stagger)?;
            let runtime = self.runtime.as_ref().expect("fleet runtime");
            let wave_fleet = Fleet::start(&options, runtime.handle())?;
            let waited = wait_until(
                "wave registration",
                Duration::from_secs(120 + count as u64 * options.stagger.as_millis() as u64 / 1000),
                || wave_fleet.snapshot().registered == count,
                || wave_fleet.snapshot().to_string(),
            )
            .await;
            wave_fleet.stop_paced(waves.leave_spacing).await?;
            waited?;
            self.next_agent += count;
            registered += count;
            eprintln!(
                "  {registered} servers registered ({} .. {} in this wave), {:.0} s",
                fleet::server_id(first),
                fleet::server_id(first + count - 1),
                started.elapsed().as_secs_f64()
            );
        }
        // Settled once the leader called every departed agent unreachable (after 1 s of silence), so that no
        // session is placed on a server that is gone.
        let url = self.cluster.api_url(leader(&self.client, &self.cluster).await?);
        let give_up = Instant::now() + Duration::from_secs(60);
        loop {
            let (total, available, _) = count_servers(&self.client, &url, None).await?;
            if total >= servers && available <= live {
                break;
            }
            if Instant::now() > give_up {
                bail!("DescribeServers shows {total} servers ({available} AVAILABLE), expected {servers}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let how = format!(
            "{live} fleet agents connected and holding the sessions; {} more servers registered first (before any \
             session) by fleet agents in waves of {wave} (one every {:?}) that then left (one every {:?}), so they \
             stay as UNREACHABLE_AGENT (seconds-before-deleting-unreachable-dcv-server = {KEEP_UNREACHABLE_SERVERS_SECONDS})",
            registered - live,
            waves.stagger,
            waves.leave_spacing
        );
        Ok(WaveRegistration { seconds: started.elapsed().as_secs_f64(), how })
    }

    /// Broker memory once the state holds `sessions` sessions, after `register_waves`.
    pub async fn memory(&mut self, sessions: usize, waves: WaveRegistration) -> anyhow::Result<MemoryReport> {
        let fill = self.fill_to(sessions).await?;
        let live = self.fleet().len();
        let wave_registration_seconds = waves.seconds;
        let leader_id = leader(&self.client, &self.cluster).await?;
        let (total, available, _) = count_servers(&self.client, &self.cluster.api_url(leader_id), None).await?;
        // Let snapshots, log purges and allocator caches settle before reading memory.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let mut nodes = Vec::new();
        for id in 1..=self.cluster.node_count() as u64 {
            let Some(pid) = self.cluster.node_pid(id) else { continue };
            nodes.push(NodeMemory {
                node: id,
                role: if id == leader_id { "leader" } else { "follower" },
                rss_mib: round1(measure::resident_mib(pid).unwrap_or(f64::NAN)),
                peak_rss_mib: round1(measure::peak_resident_mib(pid).unwrap_or(f64::NAN)),
            });
        }
        let max_rss_mib = nodes.iter().map(|n| n.rss_mib).fold(0.0, f64::max);
        let followers: Vec<f64> = nodes.iter().filter(|n| n.role == "follower").map(|n| n.rss_mib).collect();
        let follower_mean = followers.iter().sum::<f64>() / followers.len().max(1) as f64;
        let leader_rss = nodes.iter().find(|n| n.role == "leader").map_or(f64::NAN, |n| n.rss_mib);
        let per_agent_kib = (leader_rss - follower_mean) * 1024.0 / live.max(1) as f64;
        let report = MemoryReport {
            servers: total,
            servers_available: available,
            live_agents: live,
            sessions: self.session_ids.len(),
            how: waves.how,
            nodes,
            max_rss_mib,
            leader_kib_per_live_agent: round1(per_agent_kib),
            leader_mib_all_connected_estimate: round1(follower_mean + per_agent_kib * total as f64 / 1024.0),
            wave_registration_seconds,
            fill,
        };
        eprintln!("  RSS (MiB): {:?}", report.nodes.iter().map(|n| (n.node, n.role, n.rss_mib)).collect::<Vec<_>>());
        Ok(report)
    }

    /// Stops the fleet and the cluster.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(fleet) = self.fleet.take() {
            fleet.stop().await?;
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        self.cluster.stop_all();
        Ok(())
    }
}

impl Drop for Scale {
    /// A runtime cannot be dropped on an async thread (it would block), so one left behind by an error is shut
    /// down in the background instead.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn udp_drops() -> u64 {
    measure::udp_receive_buffer_errors().unwrap_or(0)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
