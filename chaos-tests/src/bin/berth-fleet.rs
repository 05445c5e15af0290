//! berth-fleet: runs many simulated agents in one process, each with its own QUIC connection to the cluster
//! (the agent library's link over the simulated backend), and prints how many are registered where, once a
//! second, until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chaos_tests::fleet::{self, Fleet, FleetOptions};
use clap::Parser;

#[derive(Parser)]
#[command(name = "berth-fleet", about = "Simulate a fleet of Berth agents (simulated backend) in one process")]
struct Args {
    /// How many agents to run.
    #[arg(long, default_value_t = 1000)]
    agents: usize,
    /// The cluster CA's PEM file (berth dev: DIR/tls/ca.pem).
    #[arg(long)]
    ca_file: PathBuf,
    /// Every broker's agent address, host:port.
    #[arg(long, value_delimiter = ',', required = true)]
    brokers: Vec<String>,
    /// key=value or key=v1|v2 (agent i takes value i mod n), comma-separated.
    #[arg(long, default_value = "pool=gpu|cpu")]
    tags: String,
    /// The number of the first agent; server ids are fleet-NNNNN.
    #[arg(long, default_value_t = 1)]
    first: usize,
    /// Milliseconds between two agents' starts.
    #[arg(long, default_value_t = 10)]
    stagger_ms: u64,
    /// max_virtual_sessions of every simulated host (unlimited when absent).
    #[arg(long)]
    max_virtual_sessions: Option<u32>,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    broker_transport::install_crypto_provider();
    // Per-agent link chatter is left out unless RUST_LOG asks for it: a thousand agents losing a leader at once
    // would print thousands of lines.
    fleet::install_tracing("warn,agent=error")?;
    let ca_pem =
        std::fs::read_to_string(&args.ca_file).with_context(|| format!("cannot read {}", args.ca_file.display()))?;
    let options = FleetOptions {
        brokers: args.brokers.clone(),
        ca_file: args.ca_file.clone(),
        ca_pem,
        first: args.first,
        agents: args.agents,
        tags: fleet::parse_tags(&args.tags)?,
        stagger: Duration::from_millis(args.stagger_ms),
        max_virtual_sessions: args.max_virtual_sessions,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let fleet = Fleet::start(&options, &tokio::runtime::Handle::current())?;
        eprintln!(
            "berth-fleet: {} agents ({} .. {}), one started every {} ms, brokers {}",
            fleet.len(),
            fleet::server_id(args.first),
            fleet::server_id(args.first + args.agents.saturating_sub(1)),
            args.stagger_ms,
            args.brokers.join(",")
        );
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        let stop = shutdown_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                _ = ticker.tick() => {
                    let elapsed = fleet.started().elapsed().as_secs_f64();
                    println!("[{elapsed:>7.1} s] {}", fleet.snapshot());
                }
            }
        }
        let sessions = fleet.running_sessions().await;
        eprintln!("berth-fleet: stopping {} agents ({sessions} simulated sessions running)", fleet.len());
        fleet.stop().await?;
        anyhow::Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
