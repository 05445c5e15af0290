//! The first benchmarks, on a `berth dev` cluster with process agents: committed CreateSessions per second and
//! latency at several client counts, and kill-the-leader to the first acknowledged write.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use broker_node::client::ApiClient;
use broker_node::dev::DevCluster;
use chaos_tests::measure::{new_histogram, summarize, Summary};
use serde::Serialize;
use serde_json::json;

use crate::{leader, status};

#[derive(Serialize)]
pub struct LoadResult {
    pub clients: usize,
    pub seconds: f64,
    pub committed: u64,
    pub errors: u64,
    pub per_second: f64,
    pub latency: Summary,
}

pub async fn load(client: Arc<ApiClient>, urls: &[String], clients: usize, seconds: u64) -> LoadResult {
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

/// Kills the leader and times the first CreateSessions acknowledged by a survivor.
pub async fn failover_trial(client: &ApiClient, cluster: &mut DevCluster) -> anyhow::Result<u64> {
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
    restart_and_catch_up(client, cluster, old).await?;
    Ok(took.as_millis() as u64)
}

/// Starts a killed node again and waits until it follows a leader and has applied about what the others have.
pub async fn restart_and_catch_up(client: &ApiClient, cluster: &mut DevCluster, id: u64) -> anyhow::Result<()> {
    cluster.start_node(id)?;
    let other = (1..=cluster.node_count() as u64).find(|other| *other != id).expect("more than one node");
    let here_url = cluster.api_url(id);
    let there_url = cluster.api_url(other);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let here = status(client, &here_url).await;
        let there = status(client, &there_url).await;
        if let (Some(here), Some(there)) = (here, there) {
            let caught_up =
                here["AppliedIndex"].as_u64() >= there["AppliedIndex"].as_u64().map(|i| i.saturating_sub(2));
            if here["LeaderId"].as_u64().is_some() && caught_up {
                return Ok(());
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "node {id} did not rejoin within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
