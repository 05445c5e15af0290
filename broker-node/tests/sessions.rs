//! The session lifecycle through real processes: DeleteSessions, the agent's part in it, and Force.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

async fn server_of(h: &Harness, url: &str, id: &str) -> String {
    let (_, body) = h.client.post(url, "/describeSessions", &json!({ "SessionIds": [id] })).await.unwrap();
    body["Sessions"][0]["Server"]["Id"].as_str().expect("placed session").to_owned()
}

async fn virtual_count(h: &Harness, url: &str, server: &str) -> u64 {
    let (_, body) = h.client.post(url, "/describeServers", &json!({ "ServerIds": [server] })).await.unwrap();
    body["Servers"][0]["VirtualSessionCount"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_sessions_end_on_their_agent_and_free_capacity() {
    let mut h = start(3, 2, |_| {}).await;
    let (url1, url2, url3) = (h.cluster.api_url(1), h.cluster.api_url(2), h.cluster.api_url(3));
    let a = create_session(&h, &url1, "a").await;
    let b = create_session(&h, &url1, "b").await;
    for id in [&a, &b] {
        wait_ready(&h, &url2, id, Duration::from_secs(20)).await;
    }
    let server_a = server_of(&h, &url2, &a).await;
    let server_b = server_of(&h, &url2, &b).await;
    assert_ne!(server_a, server_b, "placement spreads the two sessions");
    assert_eq!(virtual_count(&h, &url3, &server_a).await, 1);

    let request = json!([
        { "SessionId": a, "Owner": "alice" },
        { "SessionId": "no-such-session", "Owner": "alice" },
        { "SessionId": b, "Owner": "mallory" },
    ]);
    let (status, body) = h.client.post(&url2, "/deleteSessions", &request).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["SuccessfulList"], json!([{ "SessionId": a, "State": "DELETING" }]), "{body}");
    assert_eq!(
        body["UnsuccessfulList"],
        json!([
            { "SessionId": "no-such-session", "FailureReason": "The requested dcvSession does not exist" },
            { "SessionId": b, "FailureReason": "The requested dcvSession does not exist" },
        ])
    );

    // The agent deletes it, and only then the broker calls it DELETED and frees the capacity.
    eventually("session a DELETED through node 3", Duration::from_secs(20), || async {
        (session_state(&h, &url3, &a).await.as_deref() == Some("DELETED")).then_some(())
    })
    .await;
    assert_eq!(virtual_count(&h, &url3, &server_a).await, 0);
    let agent_index: usize = server_a.trim_start_matches("dev-agent-").parse::<usize>().unwrap() - 1;
    let log =
        std::fs::read_to_string(h.cluster.dir().join(format!("dev-agent-{}/agent.log", agent_index + 1))).unwrap();
    assert!(log.lines().any(|l| l.contains(&a) && l.contains("deleted")), "the agent never deleted {a}:\n{log}");

    // Force ends a session in the broker even when its agent is gone.
    let b_index: usize = server_b.trim_start_matches("dev-agent-").parse::<usize>().unwrap() - 1;
    h.cluster.kill_agent(b_index);
    let (_, body) = h.client.post(&url1, "/deleteSessions", &json!([{ "SessionId": b, "Force": true }])).await.unwrap();
    assert_eq!(body["SuccessfulList"], json!([{ "SessionId": b, "State": "DELETED" }]), "{body}");
    assert_eq!(session_state(&h, &url2, &b).await.as_deref(), Some("DELETED"));
    assert_eq!(virtual_count(&h, &url2, &server_b).await, 0);

    // Deleting twice is refused like an unknown session.
    let (_, body) = h.client.post(&url3, "/deleteSessions", &json!([{ "SessionId": a }])).await.unwrap();
    assert_eq!(body["UnsuccessfulList"][0]["FailureReason"], "The requested dcvSession does not exist");
}
