//! berth-bench: measures `berth dev` clusters and prints a table next to the targets; `--json` writes the
//! figures. Phases (`--phase`, all by default): `load` (committed CreateSessions per second and latency at
//! several client counts) and `failover` (kill -9 of the leader to the first acknowledged write) on a cluster
//! with process agents; `fleet` (sessions placed to READY per second with 1,000 simulated agents, with and
//! without a requirement, then re-homing of all agents after a leader kill), `describe` (DescribeSessions on a
//! follower with 100,000 sessions) and `memory` (broker RSS with 10,000 servers and 100,000 sessions) on a
//! cluster with an in-process fleet.

mod classic;
mod scale;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use broker_node::client::ApiClient;
use broker_node::dev::{DevCluster, DevOptions};
use chaos_tests::fleet;
use chaos_tests::measure::{self, Summary};
use clap::{Parser, ValueEnum};
use serde::Serialize;
use serde_json::{json, Value};

use crate::classic::LoadResult;
use crate::scale::{
    DescribeReport, MemoryReport, Offer, PlacementRun, Registration, Rehome, Scale, ScaleOptions, Waves,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Phase {
    Load,
    Failover,
    Fleet,
    Describe,
    Memory,
}

#[derive(Parser)]
#[command(about = "Benchmark local Berth clusters (berth dev) and print a table; --json writes the figures")]
struct Args {
    /// The phases to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "load,failover,fleet,describe,memory")]
    phase: Vec<Phase>,
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Process agents of the load and failover cluster.
    #[arg(long, default_value_t = 2)]
    agents: usize,
    /// Seconds of load per client count.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    clients: Vec<usize>,
    /// Leader kills to time.
    #[arg(long, default_value_t = 10)]
    trials: usize,
    /// Simulated agents of the fleet, describe and memory cluster.
    #[arg(long, default_value_t = 1000)]
    fleet_agents: usize,
    /// Fleet tags: key=value, or key=v1|v2 for agent i to take value i mod n.
    #[arg(long, default_value = "pool=gpu|cpu")]
    fleet_tags: String,
    /// Milliseconds between two fleet agents' starts (2 ms made 1,000 TLS handshakes and registrations in 2 s
    /// overload a 2-core machine running the brokers too, and agents lost their links while registering).
    #[arg(long, default_value_t = 10)]
    stagger_ms: u64,
    /// Sessions per placement run.
    #[arg(long, default_value_t = 20_000)]
    placement_sessions: usize,
    /// Concurrent CreateSessions clients of a placement run, spread over all nodes.
    #[arg(long, default_value_t = 32)]
    placement_clients: usize,
    /// Sessions per second the placement clients are paced to; 0: as fast as they can.
    #[arg(long, default_value_t = 0.0)]
    placement_rate: f64,
    /// The most sessions acknowledged but not yet created on an agent before placement clients wait (0: no
    /// bound). Unbounded, 32 clients queue sessions faster than a 2-core machine prepares them, and the backlog
    /// drives the cluster into back-to-back leader elections.
    #[arg(long, default_value_t = 2000)]
    placement_window: usize,
    /// Sessions per CreateSessions call in a placement run.
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// The requirement of the second placement run (matches half of the default fleet).
    #[arg(long, default_value = "tag:pool = 'gpu'")]
    requirement: String,
    /// Sessions in the cluster for describe and memory.
    #[arg(long, default_value_t = 100_000)]
    sessions: usize,
    /// Sessions per CreateSessions call, and clients, while filling the cluster up to --sessions. Small calls keep
    /// each placement round short: with 9,000 unreachable servers in the state a round costs about 0.55 ms per
    /// waiting session, under the state lock.
    #[arg(long, default_value_t = 10)]
    fill_batch: usize,
    #[arg(long, default_value_t = 8)]
    fill_clients: usize,
    /// Sessions per second the fill is paced to (0: as fast as it can). By default 1500, or 200 when the memory
    /// phase put 9,000 unreachable servers in the state first: a placement round then costs about 0.55 ms per
    /// waiting session under the state lock, and 800/s already drove the cluster into back-to-back elections.
    /// Unpaced, even the plain fill does that on a 2-core machine, and the fill is not what is measured.
    #[arg(long)]
    fill_rate: Option<f64>,
    /// Samples of each DescribeSessions kind.
    #[arg(long, default_value_t = 300)]
    samples: usize,
    /// Servers in the cluster for memory.
    #[arg(long, default_value_t = 10_000)]
    servers: usize,
    /// Agents per registration wave of the memory phase.
    #[arg(long, default_value_t = 1000)]
    wave: usize,
    /// Milliseconds between two wave agents' starts, and between their departures.
    #[arg(long, default_value_t = 20)]
    wave_stagger_ms: u64,
    #[arg(long, default_value_t = 10)]
    wave_leave_ms: u64,
    #[arg(long, default_value = "berth-bench.json")]
    json: PathBuf,
    /// Directory for the clusters (a fresh temporary one by default).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// A target from the issue next to what was measured.
#[derive(Serialize)]
struct TargetCheck {
    name: String,
    target: String,
    measured: f64,
    unit: &'static str,
    pass: bool,
}

fn at_most(name: &str, limit: f64, measured: f64, unit: &'static str) -> TargetCheck {
    TargetCheck { name: name.into(), target: format!("<= {limit} {unit}"), measured, unit, pass: measured <= limit }
}

fn at_least(name: &str, floor: f64, measured: f64, unit: &'static str) -> TargetCheck {
    TargetCheck { name: name.into(), target: format!(">= {floor} {unit}"), measured, unit, pass: measured >= floor }
}

#[derive(Serialize)]
struct FleetReport {
    registration: Registration,
    placement: Vec<PlacementRun>,
    rehome: Option<Rehome>,
}

#[derive(Default, Serialize)]
struct Report {
    machine: Value,
    phases: Vec<Phase>,
    nodes: usize,
    fsync_4k: Option<Summary>,
    loopback_udp_rtt: Option<Summary>,
    /// Process agents of the load and failover cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    agents: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_rss_mib_fresh: Option<Vec<f64>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    load: Vec<LoadResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_rss_mib_after_load: Option<Vec<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failover_ms: Option<Vec<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failover_median_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failover_max_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fleet: Option<FleetReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    describe: Option<DescribeReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory: Option<MemoryReport>,
    targets: Vec<TargetCheck>,
    /// Phases that failed, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<String>,
}

pub(crate) async fn status(client: &ApiClient, url: &str) -> Option<Value> {
    let (code, body) = client.call(url, reqwest::Method::GET, "/cluster/status", None).await.ok()?;
    (code == 200).then_some(body)
}

pub(crate) async fn leader(client: &ApiClient, cluster: &DevCluster) -> anyhow::Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        for id in 1..=cluster.node_count() as u64 {
            if cluster.node_pid(id).is_none() {
                continue;
            }
            if let Some(leader) = status(client, &cluster.api_url(id)).await.and_then(|s| s["LeaderId"].as_u64()) {
                if cluster.node_pid(leader).is_some() {
                    return Ok(leader);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("no leader within 20 s")
}

fn rss(cluster: &DevCluster) -> Vec<f64> {
    (1..=cluster.node_count() as u64)
        .filter_map(|id| cluster.node_pid(id).and_then(measure::resident_mib))
        .map(|mib| (mib * 10.0).round() / 10.0)
        .collect()
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|text| {
        text.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
    });
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": cpu,
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
    })
}

/// `load` and `failover`, on a cluster with process agents.
async fn classic_phases(args: &Args, dir: PathBuf, bin_dir: PathBuf, report: &mut Report) -> anyhow::Result<()> {
    eprintln!("starting berth dev: {} nodes, {} agents in {} ...", args.nodes, args.agents, dir.display());
    let mut cluster = DevCluster::prepare(DevOptions::new(&dir, args.nodes, args.agents, bin_dir))?;
    cluster.up(Duration::from_secs(60)).await?;
    let client = Arc::new(cluster.api_client().await?);
    tokio::time::sleep(Duration::from_secs(2)).await;
    report.agents = Some(args.agents);
    report.idle_rss_mib_fresh = Some(rss(&cluster));

    if args.phase.contains(&Phase::Load) {
        let urls = cluster.api_urls();
        for clients in &args.clients {
            eprintln!("load: {clients} clients for {} s ...", args.seconds);
            report.load.push(classic::load(client.clone(), &urls, *clients, args.seconds).await);
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        report.idle_rss_mib_after_load = Some(rss(&cluster));
    }

    if args.phase.contains(&Phase::Failover) {
        let mut failover_ms = Vec::new();
        for trial in 0..args.trials {
            let ms = classic::failover_trial(&client, &mut cluster).await?;
            eprintln!("failover trial {}: {ms} ms", trial + 1);
            failover_ms.push(ms);
        }
        let mut sorted = failover_ms.clone();
        sorted.sort_unstable();
        report.failover_median_ms = Some(sorted.get(sorted.len() / 2).copied().unwrap_or(0));
        report.failover_max_ms = Some(sorted.last().copied().unwrap_or(0));
        report.failover_ms = Some(failover_ms);
    }
    cluster.stop_all();
    Ok(())
}

fn scale_options(args: &Args) -> anyhow::Result<ScaleOptions> {
    Ok(ScaleOptions {
        nodes: args.nodes,
        agents: args.fleet_agents,
        tags: fleet::parse_tags(&args.fleet_tags)?,
        stagger: Duration::from_millis(args.stagger_ms),
        fill: Offer {
            batch: args.fill_batch,
            clients: args.fill_clients,
            rate: match args.fill_rate {
                Some(rate) => (rate > 0.0).then_some(rate),
                None if args.phase.contains(&Phase::Memory) => Some(200.0),
                None => Some(1500.0),
            },
            window: (args.placement_window > 0).then_some(args.placement_window),
        },
    })
}

/// `fleet`, on its own cluster: re-homing after a leader kill first, on the settled cluster, so that it is not
/// mixed up with the aftermath of the placement runs; then the placement runs. Results come into the report as
/// they are measured, so that a failure (a cluster driven past its limits may stop electing a stable leader)
/// keeps what came before it.
async fn fleet_phase(args: &Args, dir: PathBuf, bin_dir: &std::path::Path, report: &mut Report) -> anyhow::Result<()> {
    eprintln!("starting berth dev: {} nodes, no process agents, in {} ...", args.nodes, dir.display());
    let mut scale = Scale::start(scale_options(args)?, &dir, bin_dir).await?;
    let fleet = report.fleet.insert(FleetReport {
        registration: scale.registration.clone(),
        rehome: None,
        placement: Vec::new(),
    });
    let result = async {
        fleet.rehome = Some(scale.rehome().await.context("fleet: re-homing")?);
        let n = args.placement_sessions;
        let offer = Offer {
            batch: args.batch,
            clients: args.placement_clients,
            rate: (args.placement_rate > 0.0).then_some(args.placement_rate),
            window: (args.placement_window > 0).then_some(args.placement_window),
        };
        fleet.placement.push(scale.place("placement", n, offer, None).await.context("fleet: placement")?);
        let required = scale.place("placement-required", n, offer, Some(&args.requirement)).await;
        fleet.placement.push(required.context("fleet: placement with a requirement")?);
        anyhow::Ok(())
    }
    .await;
    scale.stop().await?;
    result
}

/// `describe` and `memory`, on one cluster: the servers beyond the fleet first (for memory), then the sessions,
/// then the measurements.
async fn state_phases(args: &Args, dir: PathBuf, bin_dir: &std::path::Path, report: &mut Report) -> anyhow::Result<()> {
    eprintln!("starting berth dev: {} nodes, no process agents, in {} ...", args.nodes, dir.display());
    let mut scale = Scale::start(scale_options(args)?, &dir, bin_dir).await?;
    let result = async {
        let waves = match args.phase.contains(&Phase::Memory) {
            true => {
                let waves = Waves {
                    agents: args.wave,
                    stagger: Duration::from_millis(args.wave_stagger_ms),
                    leave_spacing: Duration::from_millis(args.wave_leave_ms),
                };
                Some(scale.register_waves(args.servers, waves).await.context("memory: registering servers")?)
            }
            false => None,
        };
        if args.phase.contains(&Phase::Describe) {
            report.describe = Some(scale.describe(args.sessions, args.samples).await.context("describe")?);
        }
        if let Some(waves) = waves {
            report.memory = Some(scale.memory(args.sessions, waves).await.context("memory")?);
        }
        anyhow::Ok(())
    }
    .await;
    scale.stop().await?;
    result
}

fn targets(report: &Report) -> Vec<TargetCheck> {
    let mut checks = Vec::new();
    if let Some(describe) = &report.describe {
        let ms = |us: u64| us as f64 / 1000.0;
        checks.push(at_most(
            "DescribeSessions page of 1000 on a follower, p99",
            20.0,
            ms(describe.page_1000.p99_us),
            "ms",
        ));
        checks.push(at_most(
            "DescribeSessions one session on a follower, p99",
            2.0,
            ms(describe.one_session.p99_us),
            "ms",
        ));
    }
    if let Some(fleet) = &report.fleet {
        for run in &fleet.placement {
            let name = match &run.requirement {
                Some(requirement) => format!("sessions placed to READY per second, requirement {requirement}"),
                None => "sessions placed to READY per second, no requirement".to_owned(),
            };
            checks.push(at_least(&name, 3750.0, run.ready_per_second.round(), "/s"));
        }
        if let Some(rehome) = &fleet.rehome {
            let ms = if rehome.rehomed == rehome.agents { rehome.rehome_ms } else { f64::INFINITY };
            checks.push(at_most(
                &format!("all {} agents re-homed after a leader kill", rehome.agents),
                2000.0,
                ms,
                "ms",
            ));
        }
    }
    if let Some(memory) = &report.memory {
        let name =
            format!("broker RSS with {} servers and {} sessions (max over nodes)", memory.servers, memory.sessions);
        checks.push(at_most(&name, 256.0, memory.max_rss_mib, "MiB"));
    }
    checks
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    broker_transport::install_crypto_provider();
    let args = Args::parse();
    // The fleet's agents log through this subscriber; their per-link chatter is left out unless RUST_LOG asks.
    fleet::install_tracing("warn,agent=error")?;
    let bin_dir = std::env::current_exe()?.parent().context("no bin dir")?.to_owned();
    let temp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| temp.path().to_owned());
    std::fs::create_dir_all(&dir)?;
    let mut report = Report { machine: machine(), phases: args.phase.clone(), nodes: args.nodes, ..Report::default() };

    eprintln!("measuring fsync and loopback baselines ...");
    report.fsync_4k = Some(measure::fsync_time(&dir, 200)?);
    report.loopback_udp_rtt = Some(measure::loopback_round_trip(2000)?);

    if args.phase.iter().any(|p| matches!(p, Phase::Load | Phase::Failover)) {
        classic_phases(&args, dir.join("classic"), bin_dir.clone(), &mut report).await?;
    }
    if args.phase.contains(&Phase::Fleet) {
        if let Err(e) = fleet_phase(&args, dir.join("fleet"), &bin_dir, &mut report).await {
            eprintln!("fleet failed: {e:#}");
            report.errors.push(format!("{e:#}"));
        }
    }
    if args.phase.iter().any(|p| matches!(p, Phase::Describe | Phase::Memory)) {
        if let Err(e) = state_phases(&args, dir.join("state"), &bin_dir, &mut report).await {
            eprintln!("describe/memory failed: {e:#}");
            report.errors.push(format!("{e:#}"));
        }
    }
    report.targets = targets(&report);
    print_table(&report);
    std::fs::write(&args.json, serde_json::to_vec_pretty(&report)?)?;
    println!("\nJSON written to {}", args.json.display());
    Ok(())
}

fn print_table(r: &Report) {
    println!("\nberth-bench: {} nodes, {} build, {} cpus", r.nodes, r.machine["profile"], r.machine["cpus"]);
    if let (Some(fsync), Some(rtt)) = (&r.fsync_4k, &r.loopback_udp_rtt) {
        println!("machine     fsync 4 KiB      p50 {:>7} us   p99 {:>7} us", fsync.p50_us, fsync.p99_us);
        println!("machine     loopback UDP RTT p50 {:>7} us   p99 {:>7} us", rtt.p50_us, rtt.p99_us);
    }
    let ms = |us: u64| us as f64 / 1000.0;
    if !r.load.is_empty() {
        println!(
            "\n{:>8} | {:>12} | {:>8} | {:>10} | {:>10} | {:>10}",
            "clients", "committed/s", "errors", "p50 ms", "p99 ms", "max ms"
        );
        println!("{}", "-".repeat(72));
        for l in &r.load {
            println!(
                "{:>8} | {:>12.0} | {:>8} | {:>10.2} | {:>10.2} | {:>10.2}",
                l.clients,
                l.per_second,
                l.errors,
                ms(l.latency.p50_us),
                ms(l.latency.p99_us),
                ms(l.latency.max_us)
            );
        }
    }
    if let (Some(all), Some(median), Some(max)) = (&r.failover_ms, r.failover_median_ms, r.failover_max_ms) {
        println!(
            "\nkill -9 leader -> first acknowledged write: median {median} ms, max {max} ms over {} trials {all:?}",
            all.len()
        );
    }
    if let Some(fresh) = &r.idle_rss_mib_fresh {
        match &r.idle_rss_mib_after_load {
            Some(after) => println!("idle broker RSS (MiB): fresh {fresh:?}, after load {after:?}"),
            None => println!("idle broker RSS (MiB): fresh {fresh:?}"),
        }
    }
    if let Some(fleet) = &r.fleet {
        let g = &fleet.registration;
        println!(
            "\nfleet: {} simulated agents (one started every {} ms): all accepted at {:.1} s, all AVAILABLE at {:.1} s \
             ({} links lost meanwhile, {} UDP datagrams dropped on full receive buffers)",
            g.agents, g.stagger_ms, g.all_accepted_seconds, g.all_available_seconds, g.links_lost, g.udp_rcvbuf_drops
        );
        print_runs(fleet.placement.iter());
        if let Some(requirement) = fleet.placement.iter().find_map(|run| run.requirement.as_deref()) {
            println!("(placement-required: Requirements \"{requirement}\")");
        }
        if let Some(h) = &fleet.rehome {
            println!(
                "kill -9 leader node {} -> {}/{} agents accepted by node {}: first {:.0} ms, 50% {:.0} ms, 90% {:.0} ms, \
                 99% {:.0} ms, all {:.0} ms; {} links lost, {} UDP datagrams dropped; node {}'s log names {}",
                h.killed_leader,
                h.rehomed,
                h.agents,
                h.new_leader,
                h.first_ms,
                h.p50_ms,
                h.p90_ms,
                h.p99_ms,
                h.rehome_ms,
                h.links_lost,
                h.udp_rcvbuf_drops,
                h.new_leader,
                h.broker_registrations_logged
            );
        }
    }
    let fills: Vec<&PlacementRun> =
        [r.describe.as_ref().and_then(|d| d.fill.as_ref()), r.memory.as_ref().and_then(|m| m.fill.as_ref())]
            .into_iter()
            .flatten()
            .collect();
    if !fills.is_empty() {
        println!("\nfilling the describe and memory cluster");
        print_runs(fills.into_iter());
    }
    if let Some(d) = &r.describe {
        println!(
            "\nDescribeSessions on follower node {} with {} sessions ({} samples each)",
            d.follower, d.sessions_in_cluster, d.page_1000.count
        );
        println!("{:<24} | {:>8} | {:>8} | {:>8} | {:>10}", "request", "p50 ms", "p99 ms", "max ms", "bytes");
        println!("{}", "-".repeat(70));
        for (name, s, bytes) in [
            ("page, MaxResults 1000", &d.page_1000, d.page_bytes_mean.to_string()),
            ("one SessionId", &d.one_session, "".into()),
        ] {
            println!(
                "{name:<24} | {:>8.2} | {:>8.2} | {:>8.2} | {bytes:>10}",
                ms(s.p50_us),
                ms(s.p99_us),
                ms(s.max_us)
            );
        }
    }
    if let Some(m) = &r.memory {
        println!(
            "\nbroker memory with {} servers ({} AVAILABLE, {} agents connected) and {} sessions",
            m.servers, m.servers_available, m.live_agents, m.sessions
        );
        println!("  servers: {}", m.how);
        for node in &m.nodes {
            println!(
                "  node {} ({:<8}) RSS {:>7.1} MiB   peak {:>7.1} MiB",
                node.node, node.role, node.rss_mib, node.peak_rss_mib
            );
        }
        println!(
            "  leader - follower: {:.1} KiB per connected agent; all {} connected (estimate): {:.0} MiB",
            m.leader_kib_per_live_agent, m.servers, m.leader_mib_all_connected_estimate
        );
    }
    for error in &r.errors {
        println!("\nFAILED: {error}");
    }
    if !r.targets.is_empty() {
        println!("\n{:<72} | {:>12} | {:>12} |", "target", "wanted", "measured");
        println!("{}", "-".repeat(110));
        for t in &r.targets {
            println!(
                "{:<72} | {:>12} | {:>8.1} {:<3} | {}",
                t.name,
                t.target,
                t.measured,
                t.unit,
                if t.pass { "pass" } else { "MISS" }
            );
        }
    }
}

fn print_runs<'a>(runs: impl Iterator<Item = &'a PlacementRun>) {
    println!(
        "{:<18} | {:>8} | {:>5} | {:>7} | {:>11} | {:>7} | {:>7} | {:>8} | {:>7} | {:>11} | {:>7} | {:>12} | {:>9} | {:>10} | {:>9}",
        "run",
        "eligible",
        "batch",
        "clients",
        "offered",
        "created",
        "ready",
        "create/s",
        "READY/s",
        "call p99 ms",
        "seconds",
        "99% on agent",
        "elections",
        "links lost",
        "UDP drops"
    );
    println!("{}", "-".repeat(178));
    for run in runs {
        println!(
            "{:<18} | {:>8} | {:>5} | {:>7} | {:>11} | {:>7} | {:>7} | {:>8.0} | {:>7.0} | {:>11.1} | {:>7.1} | {:>12} | {:>9} | {:>10} | {:>9}",
            run.label,
            run.eligible_servers,
            run.batch_size,
            run.clients,
            format!(
                "{}{}",
                run.offered_per_second.map_or("max".to_owned(), |rate| format!("{rate}/s")),
                run.window.map(|window| format!(" w{window}")).unwrap_or_default()
            ),
            run.created,
            run.ready,
            run.create_per_second,
            run.ready_per_second,
            run.call_latency.p99_us as f64 / 1000.0,
            run.ready_seconds,
            run.on_agents_99_seconds.map_or("-".to_owned(), |s| format!("{s:.1} s")),
            run.elections,
            run.links_lost,
            run.udp_rcvbuf_drops
        );
    }
}
