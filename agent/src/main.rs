//! `berth-agent --config PATH`: reads agent.conf, then registers this host with the Berth cluster's leader and
//! runs the sessions it asks for, until SIGINT or SIGTERM.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use agent::backend::SimulatedBackend;
use agent::config::{AgentConfig, BackendKind};
use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "berth-agent", version, about = "Registers this host with a Berth cluster and runs its sessions")]
struct Cli {
    /// The agent configuration file (DCV's agent.conf layout).
    #[arg(long, short, env = "BERTH_AGENT_CONFIG", value_name = "PATH")]
    config: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match AgentConfig::load(&cli.config) {
        Ok(config) => config,
        Err(e) => {
            // The message already names the file, the key and the problem; a backtrace would only bury it.
            eprintln!("berth-agent: {e}");
            return ExitCode::from(2);
        }
    };
    // RUST_LOG wins over [log] level so that one run can be made verbose without editing the file.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("berth-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: AgentConfig) -> anyhow::Result<()> {
    broker_transport::install_crypto_provider();
    for notice in &config.notices {
        tracing::warn!("{}: {notice}", config.source.display());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let backend = match config.backend {
        BackendKind::Simulated => {
            tracing::warn!("backend 'simulated': sessions exist only in this agent's memory; no desktop is started");
            Arc::new(SimulatedBackend::from_config(&config))
        }
    };
    // LinkError messages carry their cause already, so it is not chained a second time.
    runtime.block_on(agent::link::run(config, backend, shutdown_signal())).map_err(|e| anyhow::anyhow!("{e}"))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
                    _ = terminate.recv() => tracing::info!("SIGTERM received"),
                }
            }
            Err(e) => {
                tracing::warn!("cannot watch SIGTERM ({e}); stopping on SIGINT only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C received");
    }
}
