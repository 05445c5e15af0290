//! berth-bench: measures a `berth dev` cluster. Committed CreateSessions per second and latency at several
//! client counts, kill-the-leader to the first successful write, and idle broker memory, next to this
//! machine's fsync time and loopback round trip. Prints a table and writes JSON.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use broker_node::client::ApiClient;
use broker_node::dev::{DevCluster, DevOptions};
use chaos_tests::measure::{self, new_histogram, summarize, Summary};
use clap::Parser;
use serde::Serialize;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "Benchmark a local Berth cluster (berth dev) and print a table; --json writes the figures")]
struct Args {
    #[arg(long, default_value_t = 3)]
    nodes: usize,
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
    #[arg(long, default_value = "berth-bench.json")]
    json: PathBuf,
    /// Cluster directory (a fresh temporary one by default).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Serialize)]
struct LoadResult {
    clients: usize,
    seconds: f64,
    committed: u64,
    errors: u64,
    per_second: f64,
    latency: Summary,
}

#[derive(Serialize)]
struct Report {
    machine: Value,
    nodes: usize,
    agents: usize,
    fsync_4k: Summary,
    loopback_udp_rtt: Summary,
    idle_rss_mib_fresh: Vec<f64>,
    load: Vec<LoadResult>,
    idle_rss_mib_after_load: Vec<f64>,
    failover_ms: Vec<u64>,
    failover_median_ms: u64,
    failover_max_ms: u64,
}

async fn load(client: Arc<ApiClient>, urls: &[String], clients: usize, seconds: u64) -> LoadResult {
    let stop_at = Instant::now() + Duration::from_secs(seconds);
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for index in 0..clients {
        let client = client.clone();
        let url = urls[index % urls.len()].clone();
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            let mut histogram = new_histogram();
            let mut n = 0u64;
            while Instant::now() < stop_at {
                let body = json!([{ "Name": format!("bench-{index}-{n}"), "Owner": format!("user{}", index % 50), "Type": "VIRTUAL" }]);
                n += 1;
                let start = Instant::now();
                match client.post(&url, "/createSessions", &body).await {
                    Ok((status, _)) if status == 200 => {
                        histogram.record(start.elapsed().as_micros().max(1) as u64).ok();
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            histogram
        }));
    }
    let started = Instant::now();
    let mut histogram = new_histogram();
    for task in tasks {
        histogram.add(task.await.expect("load task")).ok();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let latency = summarize(&histogram);
    LoadResult {
        clients,
        seconds: elapsed,
        committed: latency.count,
        errors: errors.load(Ordering::Relaxed),
        per_second: latency.count as f64 / elapsed,
        latency,
    }
}

async fn status(client: &ApiClient, url: &str) -> Option<Value> {
    let (code, body) = client.call(url, reqwest::Method::GET, "/cluster/status", None).await.ok()?;
    (code == 200).then_some(body)
}

async fn leader(client: &ApiClient, cluster: &DevCluster) -> anyhow::Result<u64> {
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

/// Kills the leader and times the first CreateSessions acknowledged by a survivor.
async fn failover_trial(client: &ApiClient, cluster: &mut DevCluster) -> anyhow::Result<u64> {
    let old = leader(client, cluster).await?;
    let survivors: Vec<String> =
        (1..=cluster.node_count() as u64).filter(|id| *id != old).map(|id| cluster.api_url(id)).collect();
    let killed = Instant::now();
    cluster.kill_node(old);
    let mut attempt = 0;
    let took = loop {
        let url = &survivors[attempt % survivors.len()];
        attempt += 1;
        let body = json!([{ "Name": "failover", "Owner": "bench", "Type": "VIRTUAL" }]);
        if let Ok((status, _)) = client.post(url, "/createSessions", &body).await {
            if status == 200 {
                break killed.elapsed();
            }
        }
        anyhow::ensure!(killed.elapsed() < Duration::from_secs(30), "no write succeeded within 30 s of the kill");
    };
    cluster.start_node(old)?;
    // Let the restarted node rejoin and catch up before the next trial.
    let url = cluster.api_url(old);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let here = status(client, &url).await;
        let there = status(client, &survivors[0]).await;
        if let (Some(here), Some(there)) = (here, there) {
            let caught_up =
                here["AppliedIndex"].as_u64() >= there["AppliedIndex"].as_u64().map(|i| i.saturating_sub(2));
            if here["LeaderId"].as_u64().is_some() && caught_up {
                break;
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "node {old} did not rejoin within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(took.as_millis() as u64)
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    broker_transport::install_crypto_provider();
    let args = Args::parse();
    let bin_dir = std::env::current_exe()?.parent().context("no bin dir")?.to_owned();
    let temp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| temp.path().to_owned());

    eprintln!("measuring fsync and loopback baselines ...");
    std::fs::create_dir_all(&dir)?;
    let fsync_4k = measure::fsync_time(&dir, 200)?;
    let loopback_udp_rtt = measure::loopback_round_trip(2000)?;

    eprintln!("starting berth dev: {} nodes, {} agents in {} ...", args.nodes, args.agents, dir.display());
    let mut cluster = DevCluster::prepare(DevOptions::new(&dir, args.nodes, args.agents, bin_dir))?;
    cluster.up(Duration::from_secs(60)).await?;
    let client = Arc::new(cluster.api_client().await?);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss_mib_fresh = rss(&cluster);

    let urls = cluster.api_urls();
    let mut results = Vec::new();
    for clients in &args.clients {
        eprintln!("load: {clients} clients for {} s ...", args.seconds);
        results.push(load(client.clone(), &urls, *clients, args.seconds).await);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_rss_mib_after_load = rss(&cluster);

    let mut failover_ms = Vec::new();
    for trial in 0..args.trials {
        let ms = failover_trial(&client, &mut cluster).await?;
        eprintln!("failover trial {}: {ms} ms", trial + 1);
        failover_ms.push(ms);
    }
    let mut sorted = failover_ms.clone();
    sorted.sort_unstable();
    let failover_median_ms = sorted.get(sorted.len() / 2).copied().unwrap_or(0);
    let failover_max_ms = sorted.last().copied().unwrap_or(0);
    cluster.stop_all();

    let report = Report {
        machine: machine(),
        nodes: args.nodes,
        agents: args.agents,
        fsync_4k,
        loopback_udp_rtt,
        idle_rss_mib_fresh,
        load: results,
        idle_rss_mib_after_load,
        failover_ms,
        failover_median_ms,
        failover_max_ms,
    };
    print_table(&report);
    std::fs::write(&args.json, serde_json::to_vec_pretty(&report)?)?;
    println!("\nJSON written to {}", args.json.display());
    Ok(())
}

fn print_table(r: &Report) {
    println!(
        "\nberth-bench: {} nodes, {} agents, {} build, {} cpus",
        r.nodes, r.agents, r.machine["profile"], r.machine["cpus"]
    );
    println!("machine     fsync 4 KiB      p50 {:>7} us   p99 {:>7} us", r.fsync_4k.p50_us, r.fsync_4k.p99_us);
    println!(
        "machine     loopback UDP RTT p50 {:>7} us   p99 {:>7} us",
        r.loopback_udp_rtt.p50_us, r.loopback_udp_rtt.p99_us
    );
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
            l.latency.p50_us as f64 / 1000.0,
            l.latency.p99_us as f64 / 1000.0,
            l.latency.max_us as f64 / 1000.0
        );
    }
    println!(
        "\nkill -9 leader -> first acknowledged write: median {} ms, max {} ms over {} trials {:?}",
        r.failover_median_ms,
        r.failover_max_ms,
        r.failover_ms.len(),
        r.failover_ms
    );
    println!("idle broker RSS (MiB): fresh {:?}, after load {:?}", r.idle_rss_mib_fresh, r.idle_rss_mib_after_load);
}
