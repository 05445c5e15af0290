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
