//! The fleet simulator: many agents in one process, each with its own QUIC endpoint and connection, running the
//! agent library's own link (`agent::link::run`) over a `SimulatedBackend`, so that a benchmark can put a
//! thousand hosts in front of the brokers without a thousand processes.
//!
//! Which leader each agent is registered with is read from the link's own log events: every agent runs inside a
//! `fleet_agent` span, and [`LinkWatch`], a tracing layer, turns the link's "accepted by leader node N" and "link
//! to the leader ... lost" events into per-agent state. The agent library therefore needs no hook for this, and
//! what is measured is the moment the agent itself saw the leader's acceptance. The same layer counts the
//! simulated backend's "session created" events ([`sessions_created`]), which lets a load generator keep its
//! backlog bounded without asking the brokers. [`install_tracing`] sets it up; without it every agent looks
//! unregistered.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use agent::backend::{SessionBackend, SimulatedBackend};
use agent::config::AgentConfig;
use agent::link::{self, LinkError};
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Instrument, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The span every simulated agent runs in; its `index` field ties the link's events to the agent.
const AGENT_SPAN: &str = "fleet_agent";
/// Where the link logs its registrations; the watch reads only these events.
const LINK_TARGET: &str = "agent::link";
/// Where the simulated backend logs each session it creates.
const BACKEND_TARGET: &str = "agent::backend";
const ACCEPTED_PREFIX: &str = "accepted by leader node ";
const LOST_PREFIX: &str = "link to the leader at ";

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("tag rule {0:?}: expected key=value or key=value1|value2|...")]
    BadTag(String),
    #[error("no broker address given")]
    NoBrokers,
    #[error("cannot install the tracing subscriber: {0}")]
    Tracing(String),
    #[error("agent {server_id}: {source}")]
    Link { server_id: String, source: LinkError },
}

/// One configured tag: agent number i gets `values[i % values.len()]`, so `pool=gpu|cpu` splits a fleet in
/// halves that a requirement such as `tag:pool = 'gpu'` tells apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagRule {
    pub key: String,
    pub values: Vec<String>,
}

/// Parses `key=value,key=v1|v2` (an empty text is no tags).
pub fn parse_tags(text: &str) -> Result<Vec<TagRule>, FleetError> {
    text.split(',')
        .map(str::trim)
        .filter(|rule| !rule.is_empty())
        .map(|rule| {
            let (key, values) = rule.split_once('=').ok_or_else(|| FleetError::BadTag(rule.to_owned()))?;
            let values: Vec<String> = values.split('|').map(|v| v.trim().to_owned()).collect();
            if key.trim().is_empty() || values.iter().any(String::is_empty) {
                return Err(FleetError::BadTag(rule.to_owned()));
            }
            Ok(TagRule { key: key.trim().to_owned(), values })
        })
        .collect()
}

/// The tags of agent number `index`.
pub fn tags_for(rules: &[TagRule], index: usize) -> Vec<(String, String)> {
    rules.iter().map(|rule| (rule.key.clone(), rule.values[index % rule.values.len()].clone())).collect()
}

/// The server id of agent number `index`: `fleet-00001`.
pub fn server_id(index: usize) -> String {
    format!("fleet-{index:05}")
}

#[derive(Clone, Debug)]
pub struct FleetOptions {
    /// Every broker's agent address ("host:port").
    pub brokers: Vec<String>,
    pub ca_file: PathBuf,
    pub ca_pem: String,
    /// The number of the first agent (server ids are unique per process: waves take the following numbers).
    pub first: usize,
    pub agents: usize,
    pub tags: Vec<TagRule>,
    /// Agent k starts k * stagger after the first, so that a thousand registrations do not arrive at once.
    pub stagger: Duration,
    pub max_virtual_sessions: Option<u32>,
}

/// What the watch knows about one agent. Times are microseconds since [`epoch`].
#[derive(Debug, Default)]
struct AgentSlot {
    /// The node that last accepted the agent; 0 while it has no leader.
    leader: AtomicU64,
    accepted_us: AtomicU64,
    accepts: AtomicU64,
    losses: AtomicU64,
}

/// Sessions the simulated backends of this process created (a repeated creation is not counted).
static SESSIONS_CREATED: AtomicU64 = AtomicU64::new(0);

/// Sessions the simulated backends of this process created so far.
pub fn sessions_created() -> u64 {
    SESSIONS_CREATED.load(Ordering::Acquire)
}

static SLOTS: LazyLock<Mutex<HashMap<u64, Arc<AgentSlot>>>> = LazyLock::new(Mutex::default);
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn epoch() -> Instant {
    *EPOCH
}

fn micros_since_epoch() -> u64 {
    epoch().elapsed().as_micros() as u64
}

/// The tracing layer that follows every fleet agent's registrations (see the module documentation).
pub struct LinkWatch;

#[derive(Default)]
struct IndexVisitor(Option<u64>);

impl Visit for IndexVisitor {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "index" {
            self.0 = Some(value);
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
}

#[derive(Default)]
struct MessageVisitor(String);

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S> Layer<S> for LinkWatch
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != AGENT_SPAN {
            return;
        }
        let mut visitor = IndexVisitor::default();
        attrs.record(&mut visitor);
        let slot = visitor.0.and_then(|index| SLOTS.lock().expect("fleet slots lock").get(&index).cloned());
        if let (Some(slot), Some(span)) = (slot, ctx.span(id)) {
            span.extensions_mut().insert(slot);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if event.metadata().target() == BACKEND_TARGET {
            let mut message = MessageVisitor::default();
            event.record(&mut message);
            if message.0.starts_with("simulated ") && message.0.contains(" created for ") {
                SESSIONS_CREATED.fetch_add(1, Ordering::AcqRel);
            }
            return;
        }
        if event.metadata().target() != LINK_TARGET {
            return;
        }
        let Some(slot) = ctx
            .event_scope(event)
            .and_then(|scope| scope.from_root().find_map(|span| span.extensions().get::<Arc<AgentSlot>>().cloned()))
        else {
            return;
        };
        let mut message = MessageVisitor::default();
        event.record(&mut message);
        if let Some(rest) = message.0.strip_prefix(ACCEPTED_PREFIX) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(leader) = digits.parse::<u64>() {
                slot.accepted_us.store(micros_since_epoch(), Ordering::Release);
                slot.leader.store(leader, Ordering::Release);
                slot.accepts.fetch_add(1, Ordering::AcqRel);
            }
        } else if message.0.starts_with(LOST_PREFIX) {
            slot.leader.store(0, Ordering::Release);
            slot.losses.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Installs the global subscriber: log lines to standard error filtered by `RUST_LOG` (else `default_filter`),
/// plus the [`LinkWatch`], which always sees the link's registration events whatever `RUST_LOG` says.
pub fn install_tracing(default_filter: &str) -> Result<(), FleetError> {
    LazyLock::force(&EPOCH);
    let fmt_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let watch_filter = Targets::new()
        .with_target(LINK_TARGET, Level::INFO)
        .with_target(BACKEND_TARGET, Level::INFO)
        .with_target(module_path!(), Level::INFO);
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(fmt_filter))
        .with(LinkWatch.with_filter(watch_filter))
        .try_init()
        .map_err(|e| FleetError::Tracing(e.to_string()))
}

struct FleetAgent {
    server_id: String,
    slot: Arc<AgentSlot>,
    backend: Arc<SimulatedBackend>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), LinkError>>,
}

/// A running fleet.
pub struct Fleet {
    agents: Vec<FleetAgent>,
    started: Instant,
}

/// Agents accepted by one leader within a window: how many, and when the first and the last were accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Homed {
    pub count: usize,
    pub first: Option<Instant>,
    pub last: Option<Instant>,
}

/// How the fleet stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetSnapshot {
    pub agents: usize,
    /// Agents that some leader accepted at least once.
    pub registered: usize,
    /// Agents per node that last accepted them (and have not lost it since).
    pub homed: BTreeMap<u64, usize>,
    /// Links lost, over all agents.
    pub losses: u64,
}

impl FleetSnapshot {
    pub fn unhomed(&self) -> usize {
        self.agents - self.homed.values().sum::<usize>()
    }
}

impl std::fmt::Display for FleetSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let homed: Vec<String> = self.homed.iter().map(|(node, n)| format!("node {node}: {n}")).collect();
        write!(
            f,
            "registered {}/{}; homed {}; without a leader {}; links lost {}",
            self.registered,
            self.agents,
            if homed.is_empty() { "-".to_owned() } else { homed.join(", ") },
            self.unhomed(),
            self.losses
        )
    }
}

impl Fleet {
    /// Starts the agents on `runtime`, staggered; returns at once.
    pub fn start(options: &FleetOptions, runtime: &Handle) -> Result<Fleet, FleetError> {
        if options.brokers.is_empty() {
            return Err(FleetError::NoBrokers);
        }
        let started = Instant::now();
        let mut agents = Vec::with_capacity(options.agents);
        for k in 0..options.agents {
            let index = options.first + k;
            let server_id = server_id(index);
            let mut config = AgentConfig::minimal(options.brokers.clone(), options.ca_pem.clone());
            config.source = PathBuf::from(format!("<fleet agent {index}>"));
            config.ca_file = options.ca_file.clone();
            config.server_id = server_id.clone();
            config.tags = tags_for(&options.tags, index);
            config.max_virtual_sessions = options.max_virtual_sessions;
            let backend = Arc::new(SimulatedBackend::from_config(&config));
            let slot = Arc::new(AgentSlot::default());
            SLOTS.lock().expect("fleet slots lock").insert(index as u64, slot.clone());
            let (stop, mut stopped) = oneshot::channel::<()>();
            let start_at = tokio::time::Instant::from_std(started + options.stagger * k as u32);
            let agent_backend = backend.clone();
            let task = runtime.spawn(async move {
                tokio::select! {
                    () = tokio::time::sleep_until(start_at) => {}
                    _ = &mut stopped => return Ok(()),
                }
                let span = tracing::info_span!(AGENT_SPAN, index = index as u64);
                let shutdown = async move {
                    let _ = stopped.await;
                };
                link::run(config, agent_backend, shutdown).instrument(span).await
            });
            agents.push(FleetAgent { server_id, slot, backend, stop: Some(stop), task });
        }
        Ok(Fleet { agents, started })
    }

    pub fn len(&self) -> usize {
        self.agents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn snapshot(&self) -> FleetSnapshot {
        let mut snapshot = FleetSnapshot { agents: self.agents.len(), ..FleetSnapshot::default() };
        for agent in &self.agents {
            if agent.slot.accepts.load(Ordering::Acquire) > 0 {
                snapshot.registered += 1;
            }
            match agent.slot.leader.load(Ordering::Acquire) {
                0 => {}
                leader => *snapshot.homed.entry(leader).or_default() += 1,
            }
            snapshot.losses += agent.slot.losses.load(Ordering::Acquire);
        }
        snapshot
    }

    /// The agents `leader` accepted at or after `since` and still holds, with the first and last acceptance.
    pub fn homed_since(&self, leader: u64, since: Instant) -> Homed {
        let since_us = since.saturating_duration_since(epoch()).as_micros() as u64;
        let mut homed = Homed::default();
        for agent in &self.agents {
            let accepted = agent.slot.accepted_us.load(Ordering::Acquire);
            if agent.slot.leader.load(Ordering::Acquire) == leader && accepted >= since_us {
                let at = epoch() + Duration::from_micros(accepted);
                homed.count += 1;
                homed.first = Some(homed.first.map_or(at, |first| first.min(at)));
                homed.last = Some(homed.last.map_or(at, |last| last.max(at)));
            }
        }
        homed
    }

    /// When `leader` accepted each agent it accepted at or after `since` and still holds, earliest first.
    pub fn acceptances(&self, leader: u64, since: Instant) -> Vec<Instant> {
        let since_us = since.saturating_duration_since(epoch()).as_micros() as u64;
        let mut times: Vec<Instant> = self
            .agents
            .iter()
            .filter(|agent| agent.slot.leader.load(Ordering::Acquire) == leader)
            .map(|agent| agent.slot.accepted_us.load(Ordering::Acquire))
            .filter(|accepted| *accepted >= since_us)
            .map(|accepted| epoch() + Duration::from_micros(accepted))
            .collect();
        times.sort_unstable();
        times
    }

    /// Sessions running on the simulated hosts (a list per host, so not for a tight loop).
    pub async fn running_sessions(&self) -> usize {
        let mut total = 0;
        for agent in &self.agents {
            total += agent.backend.list().await.len();
        }
        total
    }

    pub fn server_ids(&self) -> impl Iterator<Item = &str> {
        self.agents.iter().map(|agent| agent.server_id.as_str())
    }

    /// Stops every agent (each closes its connection, so the leader sees it leave at once) and waits for them.
    pub async fn stop(self) -> Result<(), FleetError> {
        self.stop_paced(Duration::ZERO).await
    }

    /// Like `stop`, one agent every `spacing`, so that the leader sees a trickle of departures rather than a
    /// thousand at once.
    pub async fn stop_paced(mut self, spacing: Duration) -> Result<(), FleetError> {
        for agent in &mut self.agents {
            if let Some(stop) = agent.stop.take() {
                let _ = stop.send(());
                if !spacing.is_zero() {
                    tokio::time::sleep(spacing).await;
                }
            }
        }
        let mut first_error = None;
        for agent in self.agents {
            match agent.task.await {
                Ok(Ok(())) => {}
                Ok(Err(source)) => {
                    first_error.get_or_insert(FleetError::Link { server_id: agent.server_id, source });
                }
                Err(e) => {
                    // A panicking agent is a bug in the agent library; it shows in the log, and the rest stop.
                    tracing::error!("fleet agent {} ended abnormally: {e}", agent.server_id);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_rules_alternate_over_the_fleet() {
        let rules = parse_tags("pool=gpu|cpu, site=lab").unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(tags_for(&rules, 1), [("pool".into(), "cpu".into()), ("site".into(), "lab".into())]);
        assert_eq!(tags_for(&rules, 2), [("pool".into(), "gpu".into()), ("site".into(), "lab".into())]);
        assert!(parse_tags("").unwrap().is_empty());
        for bad in ["pool", "=gpu", "pool=gpu|", "pool="] {
            assert!(matches!(parse_tags(bad), Err(FleetError::BadTag(_))), "{bad}");
        }
        assert_eq!(server_id(7), "fleet-00007");
        assert_eq!(server_id(10000), "fleet-10000");
    }

    #[test]
    fn snapshot_reads_the_slots() {
        let slot = |leader: u64, accepts: u64| {
            let slot = AgentSlot::default();
            slot.leader.store(leader, Ordering::Release);
            slot.accepts.store(accepts, Ordering::Release);
            slot.accepted_us.store(micros_since_epoch(), Ordering::Release);
            Arc::new(slot)
        };
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let agents = [slot(2, 1), slot(2, 3), slot(0, 1), slot(0, 0)]
            .into_iter()
            .enumerate()
            .map(|(i, slot)| FleetAgent {
                server_id: server_id(i),
                slot,
                backend: Arc::new(SimulatedBackend::new(None, None)),
                stop: None,
                task: runtime.spawn(async { Ok(()) }),
            })
            .collect();
        let fleet = Fleet { agents, started: Instant::now() };
        let snapshot = fleet.snapshot();
        assert_eq!((snapshot.registered, snapshot.unhomed()), (3, 2));
        assert_eq!(snapshot.homed, BTreeMap::from([(2, 2)]));
        let homed = fleet.homed_since(2, epoch());
        assert_eq!(homed.count, 2);
        assert!(homed.first <= homed.last && homed.first.is_some());
        assert_eq!(fleet.homed_since(2, Instant::now() + Duration::from_secs(1)), Homed::default());
        let times = fleet.acceptances(2, epoch());
        assert_eq!(times.len(), 2);
        assert!(times[0] <= times[1]);
    }
}
