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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_requests_fill_the_queue_drain_when_a_server_opens_and_time_out() {
    let h = start(3, 1, |options| {
        options.create_sessions_queue_max_size = 2;
        options.create_sessions_queue_max_time_seconds = 4;
    })
    .await;
    let (url1, url2) = (h.cluster.api_url(1), h.cluster.api_url(2));
    let (_, body) = h.client.post(&url1, "/closeServers", &json!([{ "ServerId": "dev-agent-1" }])).await.unwrap();
    assert_eq!(body["SuccessfulList"].as_array().unwrap().len(), 1, "{body}");

    let queued = |name: &str| json!({ "Name": name, "Owner": "alice", "EnqueueRequest": true });
    let (_, body) =
        h.client.post(&url2, "/createSessions", &json!([queued("q1"), queued("q2"), queued("q3")])).await.unwrap();
    let ids: Vec<String> =
        body["SuccessfulList"].as_array().unwrap().iter().map(|s| s["Id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 3, "{body}");
    // The third does not fit in a queue of two.
    let refused = eventually("the third queued request to be refused", Duration::from_secs(10), || async {
        let (_, d) = h.client.post(&url1, "/describeSessions", &json!({ "SessionIds": [ids[2]] })).await.ok()?;
        (d["Sessions"][0]["State"] == "DELETED")
            .then(|| d["Sessions"][0]["StateReason"].as_str().unwrap_or("").to_owned())
    })
    .await;
    assert!(refused.contains("queue is full"), "{refused}");
    for id in &ids[..2] {
        let (_, d) = h.client.post(&url1, "/describeSessions", &json!({ "SessionIds": [id] })).await.unwrap();
        assert_eq!(
            (d["Sessions"][0]["State"].as_str(), d["Sessions"][0]["Substate"].as_str()),
            (Some("CREATING"), Some("SESSION_PLACING"))
        );
    }
    // Capacity appears: the queue drains.
    h.client.post(&url1, "/openServers", &json!([{ "ServerId": "dev-agent-1" }])).await.unwrap();
    for id in &ids[..2] {
        wait_ready(&h, &url2, id, Duration::from_secs(10)).await;
    }
    // With no capacity for longer than the queue allows, a queued request fails with the reason.
    h.client.post(&url1, "/closeServers", &json!([{ "ServerId": "dev-agent-1", "Force": true }])).await.unwrap();
    let (_, body) = h.client.post(&url2, "/createSessions", &json!([queued("late")])).await.unwrap();
    let late = body["SuccessfulList"][0]["Id"].as_str().unwrap().to_owned();
    let reason = eventually("the queued request to time out", Duration::from_secs(20), || async {
        let (_, d) = h.client.post(&url1, "/describeSessions", &json!({ "SessionIds": [late] })).await.ok()?;
        (d["Sessions"][0]["State"] == "DELETED")
            .then(|| d["Sessions"][0]["StateReason"].as_str().unwrap_or("").to_owned())
    })
    .await;
    assert!(reason.contains("within 4 seconds"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_token_is_accepted_only_for_its_user_and_session() {
    let h = start(3, 1, |_| {}).await;
    let (url1, url2) = (h.cluster.api_url(1), h.cluster.api_url(2));
    let a = create_session(&h, &url1, "a").await;
    let b = create_session(&h, &url1, "b").await;
    wait_ready(&h, &url2, &a, Duration::from_secs(20)).await;

    let (status, body) =
        h.client.call(&url2, reqwest::Method::GET, &format!("/sessionConnectionData/{a}/bob"), None).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Session"]["Id"], a.as_str());
    assert_eq!(body["Session"]["State"], "READY");
    let token = body["ConnectionToken"].as_str().unwrap().to_owned();
    let (status, body) =
        h.client.call(&url2, reqwest::Method::GET, "/sessionConnectionData/no-such/bob", None).await.unwrap();
    assert_eq!(status, 400, "{body}");

    // The DCV server asks any node's agent port whether the token opens this session.
    let verifier = format!("{}/agent/validate-authentication-token", h.cluster.agent_https_url(3));
    let validate = |session: String, token: String| {
        // Session ids (UUIDs) and tokens (JWTs) need no escaping in a form body.
        let request = h
            .client
            .http()
            .post(&verifier)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("sessionId={session}&authenticationToken={token}&clientAddress=127.0.0.1"));
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    assert_eq!(validate(a.clone(), token.clone()).await, "<auth result=\"yes\"><username>bob</username></auth>");
    let other = validate(b.clone(), token.clone()).await;
    assert!(other.starts_with("<auth result=\"no\">"), "another session: {other}");
    let tampered = format!("{}x", &token[..token.len() - 1]);
    assert!(validate(a.clone(), tampered).await.starts_with("<auth result=\"no\">"));
    let api_token = h.client.fetch_token(&url1).await.unwrap();
    assert!(validate(a.clone(), api_token).await.starts_with("<auth result=\"no\">"), "an API token opens no session");
    let missing =
        h.client.http().post(&verifier).body(format!("sessionId={a}")).send().await.unwrap().text().await.unwrap();
    assert!(missing.contains("required"), "{missing}");
}

async fn described(h: &Harness, url: &str, id: &str) -> Option<serde_json::Value> {
    let (_, d) = h.client.post(url, "/describeSessions", &json!({ "SessionIds": [id] })).await.ok()?;
    d["Sessions"].as_array()?.first().cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creation_that_fails_on_one_host_is_retried_on_another_unless_disabled() {
    // dev-agent-1's host has no user carol; dev-agent-2's has.
    let h = start(3, 2, |options| {
        options.agent_settings.insert(0, "simulated_users = [\"alice\"]".into());
        options.agent_settings.insert(1, "simulated_users = [\"alice\", \"carol\"]".into());
    })
    .await;
    let (url1, url2) = (h.cluster.api_url(1), h.cluster.api_url(2));
    // Only dev-agent-1 is open, so the first attempt must land there and fail.
    h.client.post(&url1, "/closeServers", &json!([{ "ServerId": "dev-agent-2" }])).await.unwrap();
    let carol = |name: &str, retry: bool| json!([{ "Name": name, "Owner": "carol", "EnqueueRequest": true, "DisableRetryOnFailure": !retry }]);
    let (_, body) = h.client.post(&url2, "/createSessions", &carol("retried", true)).await.unwrap();
    let retried = body["SuccessfulList"][0]["Id"].as_str().expect("created").to_owned();
    let reason =
        eventually("the failed attempt to send the session back to placement", Duration::from_secs(20), || async {
            let s = described(&h, &url1, &retried).await?;
            (s["Substate"] == "SESSION_PLACING" && s["StateReason"].as_str().is_some_and(|r| !r.is_empty()))
                .then(|| s["StateReason"].as_str().unwrap().to_owned())
        })
        .await;
    assert!(reason.contains("user carol does not exist on this host"), "{reason}");
    // The host that failed is not tried again; the one that opens takes it.
    h.client.post(&url1, "/openServers", &json!([{ "ServerId": "dev-agent-2" }])).await.unwrap();
    wait_ready(&h, &url2, &retried, Duration::from_secs(20)).await;
    assert_eq!(described(&h, &url1, &retried).await.unwrap()["Server"]["Id"], "dev-agent-2");

    // DisableRetryOnFailure: the first failure is final, with its reason.
    h.client.post(&url1, "/closeServers", &json!([{ "ServerId": "dev-agent-2", "Force": true }])).await.unwrap();
    let (_, body) = h.client.post(&url2, "/createSessions", &carol("once", false)).await.unwrap();
    let once = body["SuccessfulList"][0]["Id"].as_str().expect("created").to_owned();
    let final_reason = eventually("the session to fail without a retry", Duration::from_secs(20), || async {
        let s = described(&h, &url1, &once).await?;
        (s["State"] == "DELETED").then(|| s["StateReason"].as_str().unwrap_or("").to_owned())
    })
    .await;
    assert!(final_reason.contains("user carol does not exist on this host"), "{final_reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_sessions_stay_visible_for_the_configured_time_then_are_purged() {
    // 0.001 hours: 3.6 seconds.
    let h = start(3, 1, |options| options.delete_session_duration_hours = 0.001).await;
    let (url1, url3) = (h.cluster.api_url(1), h.cluster.api_url(3));
    let id = create_session(&h, &url1, "short-lived").await;
    wait_ready(&h, &url1, &id, Duration::from_secs(20)).await;
    let (_, body) =
        h.client.post(&url1, "/deleteSessions", &json!([{ "SessionId": id, "Force": true }])).await.unwrap();
    assert_eq!(body["SuccessfulList"][0]["State"], "DELETED", "{body}");
    let deleted_at = tokio::time::Instant::now();
    assert_eq!(described(&h, &url3, &id).await.expect("still visible")["State"], "DELETED");
    eventually("the DELETED session to be purged", Duration::from_secs(30), || async {
        let (status, d) = h.client.post(&url3, "/describeSessions", &json!({ "SessionIds": [id] })).await.ok()?;
        (status == 200 && d["Sessions"] == json!([])).then_some(())
    })
    .await;
    assert!(deleted_at.elapsed() >= Duration::from_secs(3), "purged before delete-session-duration-hours passed");
}
