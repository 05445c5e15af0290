//! Shared harness for the integration tests: a `DevCluster` of real `berth` and `berth-agent` processes on
//! loopback ports picked at run time, and polling helpers that wait for conditions with a deadline.

#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use broker_node::client::ApiClient;
use broker_node::dev::{DevCluster, DevOptions};
use serde_json::{json, Value};
use tokio::time::Instant;

pub const STARTUP: Duration = Duration::from_secs(60);

/// `target/debug`, where cargo put `berth` and `berth-agent`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target dir").to_owned();
    for program in ["berth", "berth-agent"] {
        assert!(
            dir.join(program).exists(),
            "{} is missing: build the binaries first (cargo build --workspace --bins)",
            dir.join(program).display()
        );
    }
    dir
}

pub struct Harness {
    pub cluster: DevCluster,
    pub client: ApiClient,
    _dir: tempfile::TempDir,
}

pub async fn start(nodes: usize, agents: usize, configure: impl FnOnce(&mut DevOptions)) -> Harness {
    broker_transport::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = DevOptions::new(dir.path(), nodes, agents, bin_dir());
    configure(&mut options);
    let mut cluster = DevCluster::prepare(options).expect("prepare the dev cluster");
    if let Err(e) = cluster.up(STARTUP).await {
        dump_logs(&cluster);
        panic!("the dev cluster did not come up: {e:#}");
    }
    let client = cluster.api_client().await.expect("api client");
    Harness { cluster, client, _dir: dir }
}

/// Prints every process log of the cluster (on failure, to make it diagnosable from CI output).
pub fn dump_logs(cluster: &DevCluster) {
    for entry in walk(cluster.dir()) {
        if entry.extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(&entry).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            eprintln!("==== {} (last {} lines)", entry.display(), tail.len());
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Polls `check` until it yields Some, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn session_body(name: &str, owner: &str) -> Value {
    json!([{ "Name": name, "Owner": owner, "Type": "VIRTUAL" }])
}

/// Creates one session through `url`; returns its id.
pub async fn create_session(h: &Harness, url: &str, name: &str) -> String {
    let (status, body) =
        h.client.post(url, "/createSessions", &session_body(name, "alice")).await.expect("createSessions");
    assert_eq!(status, 200, "createSessions through {url}: {body}");
    assert_eq!(body["UnsuccessfulList"], json!([]), "{body}");
    let session = &body["SuccessfulList"][0];
    assert_eq!(session["State"], "CREATING", "{body}");
    session["Id"].as_str().expect("session id").to_owned()
}

/// The session's state as `url` describes it.
pub async fn session_state(h: &Harness, url: &str, id: &str) -> Option<String> {
    let (status, body) = h.client.post(url, "/describeSessions", &json!({ "SessionIds": [id] })).await.ok()?;
    if status != 200 {
        return None;
    }
    body["Sessions"].as_array()?.first()?["State"].as_str().map(str::to_owned)
}

pub async fn wait_ready(h: &Harness, url: &str, id: &str, timeout: Duration) {
    eventually(&format!("session {id} READY through {url}"), timeout, || async {
        (session_state(h, url, id).await.as_deref() == Some("READY")).then_some(())
    })
    .await
}

pub async fn cluster_status(h: &Harness, url: &str) -> Option<Value> {
    let (status, body) = h.client.call(url, reqwest::Method::GET, "/cluster/status", None).await.ok()?;
    (status == 200).then_some(body)
}

/// The id of the leader that the given nodes agree on.
pub async fn agreed_leader(h: &Harness, ids: &[u64], timeout: Duration) -> u64 {
    eventually("the nodes to agree on a leader", timeout, || async {
        let mut leaders = Vec::new();
        for id in ids {
            leaders.push(cluster_status(h, &h.cluster.api_url(*id)).await?["LeaderId"].as_u64()?);
        }
        leaders.windows(2).all(|w| w[0] == w[1]).then(|| leaders[0]).filter(|leader| ids.contains(leader))
    })
    .await
}
