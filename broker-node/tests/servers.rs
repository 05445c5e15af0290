//! OpenServers / CloseServers through real processes: failure texts clients rely on, Force semantics, and
//! placement honouring closed servers.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

async fn server(h: &Harness, url: &str, id: &str) -> Value {
    let (status, body) = h.client.post(url, "/describeServers", &json!({ "ServerIds": [id] })).await.unwrap();
    assert_eq!(status, 200, "{body}");
    body["Servers"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_servers_take_no_sessions_until_opened_again() {
    let h = start(3, 2, |_| {}).await;
    let (url1, url2, url3) = (h.cluster.api_url(1), h.cluster.api_url(2), h.cluster.api_url(3));

    let (status, body) = h
        .client
        .post(&url1, "/closeServers", &json!([{ "ServerId": "dev-agent-1" }, { "ServerId": "nope" }, {}]))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["SuccessfulList"], json!([{ "ServerId": "dev-agent-1" }]));
    assert_eq!(
        body["UnsuccessfulList"][0],
        json!({ "CloseServerRequestData": { "ServerId": "nope" }, "FailureCode": "DCV_SERVER_NOT_FOUND", "FailureReason": "Dcv server not found." })
    );
    assert_eq!(body["UnsuccessfulList"][1]["FailureCode"], "INVALID_REQUEST");
    let closed = server(&h, &url3, "dev-agent-1").await;
    assert_eq!(
        (closed["Availability"].as_str(), closed["UnavailabilityReason"].as_str()),
        (Some("UNAVAILABLE"), Some("SERVER_CLOSED"))
    );

    // Only the open server takes sessions now.
    let a = create_session(&h, &url2, "a").await;
    let b = create_session(&h, &url3, "b").await;
    for id in [&a, &b] {
        wait_ready(&h, &url1, id, Duration::from_secs(20)).await;
    }
    let (_, described) = h.client.post(&url1, "/describeSessions", &json!({ "SessionIds": [a, b] })).await.unwrap();
    for session in described["Sessions"].as_array().unwrap() {
        assert_eq!(session["Server"]["Id"], "dev-agent-2", "{described}");
    }

    // A busy server closes only with Force, and its sessions keep running.
    let (_, body) = h.client.post(&url2, "/closeServers", &json!([{ "ServerId": "dev-agent-2" }])).await.unwrap();
    assert_eq!(body["UnsuccessfulList"][0]["FailureCode"], "DCV_SERVER_HAS_SESSIONS", "{body}");
    let (_, body) =
        h.client.post(&url2, "/closeServers", &json!([{ "ServerId": "dev-agent-2", "Force": true }])).await.unwrap();
    assert_eq!(body["SuccessfulList"], json!([{ "ServerId": "dev-agent-2" }]), "{body}");
    assert_eq!(session_state(&h, &url3, &a).await.as_deref(), Some("READY"));

    // With every server closed, a request that did not ask to be queued ends with a reason.
    let refused = create_session(&h, &url1, "refused").await;
    let ended = eventually("the unplaceable session to end", Duration::from_secs(20), || async {
        let (_, d) = h.client.post(&url1, "/describeSessions", &json!({ "SessionIds": [refused] })).await.ok()?;
        (d["Sessions"][0]["State"] == "DELETED").then(|| d["Sessions"][0].clone())
    })
    .await;
    assert!(ended["StateReason"].as_str().unwrap().contains("No DCV server"), "{ended}");

    let (_, body) = h
        .client
        .post(
            &url3,
            "/openServers",
            &json!([{ "ServerId": "dev-agent-1" }, { "ServerId": "dev-agent-2" }, { "ServerId": "nope" }]),
        )
        .await
        .unwrap();
    assert_eq!(body["SuccessfulList"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(body["UnsuccessfulList"][0]["OpenServerRequestData"], json!({ "ServerId": "nope" }));
    assert_eq!(body["UnsuccessfulList"][0]["FailureReason"], "Dcv server not found.");
    assert_eq!(server(&h, &url1, "dev-agent-1").await["Availability"], "AVAILABLE");
    let after = create_session(&h, &url1, "after").await;
    wait_ready(&h, &url2, &after, Duration::from_secs(20)).await;
}

fn signal_agent(h: &Harness, index: usize, signal: nix::sys::signal::Signal) {
    let pid = h.cluster.agent_pid(index).expect("agent running");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).expect("signal the agent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_agent_is_unreachable_then_back_or_removed() {
    let mut h = start(3, 2, |options| options.seconds_before_deleting_unreachable_dcv_server = 8).await;
    let (url1, url2) = (h.cluster.api_url(1), h.cluster.api_url(2));
    let a = create_session(&h, &url1, "a").await;
    let b = create_session(&h, &url1, "b").await;
    for id in [&a, &b] {
        wait_ready(&h, &url2, id, Duration::from_secs(20)).await;
    }
    let (_, described) = h.client.post(&url1, "/describeSessions", &json!({ "SessionIds": [a] })).await.unwrap();
    let server_a = described["Sessions"][0]["Server"]["Id"].as_str().unwrap().to_owned();
    let index_a: usize = server_a.trim_start_matches("dev-agent-").parse::<usize>().unwrap() - 1;
    let index_b = 1 - index_a;
    let server_b = format!("dev-agent-{}", index_b + 1);

    // A frozen agent: its server is UNREACHABLE_AGENT and its ready session UNKNOWN ...
    signal_agent(&h, index_a, nix::sys::signal::Signal::SIGSTOP);
    eventually("the frozen agent's server to be unreachable", Duration::from_secs(20), || async {
        let s = server(&h, &url2, &server_a).await;
        (s["UnavailabilityReason"] == "UNREACHABLE_AGENT").then_some(())
    })
    .await;
    assert_eq!(session_state(&h, &url2, &a).await.as_deref(), Some("UNKNOWN"));
    // ... until it wakes up, finds the leader again, and its session is READY again.
    signal_agent(&h, index_a, nix::sys::signal::Signal::SIGCONT);
    eventually("the woken agent's server to be available", Duration::from_secs(20), || async {
        let s = server(&h, &url1, &server_a).await;
        (s["Availability"] == "AVAILABLE").then_some(())
    })
    .await;
    assert_eq!(session_state(&h, &url1, &a).await.as_deref(), Some("READY"));

    // A dead agent: unreachable, then removed with its sessions after the configured delay.
    h.cluster.kill_agent(index_b);
    eventually("the dead agent's server to be removed", Duration::from_secs(40), || async {
        let (_, body) = h.client.post(&url2, "/describeServers", &json!({ "ServerIds": [server_b] })).await.ok()?;
        body["Servers"].as_array()?.is_empty().then_some(())
    })
    .await;
    let (_, described) = h.client.post(&url2, "/describeSessions", &json!({ "SessionIds": [b] })).await.unwrap();
    assert_eq!(described["Sessions"][0]["State"], "DELETED", "{described}");
    assert!(described["Sessions"][0]["StateReason"].as_str().unwrap().contains("unreachable"), "{described}");
}
