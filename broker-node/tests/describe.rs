//! DescribeSessions through real processes: paging that sees every long-lived session exactly once while
//! other sessions are created and deleted, and the `owner` and `tag:<key>` filters.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

async fn create_for(h: &Harness, url: &str, owner: &str, count: usize) -> Vec<String> {
    let body: Vec<Value> = (0..count).map(|n| json!({ "Name": format!("{owner}-{n}"), "Owner": owner })).collect();
    let (status, answer) = h.client.post(url, "/createSessions", &json!(body)).await.unwrap();
    assert_eq!(status, 200, "{answer}");
    answer["SuccessfulList"].as_array().unwrap().iter().map(|s| s["Id"].as_str().unwrap().to_owned()).collect()
}

async fn walk(h: &Harness, url: &str, page: usize, filters: Value) -> Vec<String> {
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut request = json!({ "MaxResults": page, "Filters": filters });
        if let Some(token) = &next {
            request["NextToken"] = json!(token);
        }
        let (status, body) = h.client.post(url, "/describeSessions", &request).await.unwrap();
        assert_eq!(status, 200, "{body}");
        let sessions = body["Sessions"].as_array().unwrap();
        assert!(sessions.len() <= page, "a page holds at most MaxResults");
        seen.extend(sessions.iter().map(|s| s["Id"].as_str().unwrap().to_owned()));
        match body["NextToken"].as_str() {
            Some(token) => next = Some(token.to_owned()),
            None => return seen,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_walk_sees_every_long_lived_session_exactly_once_under_concurrent_writes() {
    let h = Arc::new(start(3, 2, |_| {}).await);
    let (url1, url3) = (h.cluster.api_url(1), h.cluster.api_url(3));
    let mut long_lived = create_for(&h, &url1, "alice", 40).await;
    long_lived.sort();

    // Churn: sessions created and deleted on another node for the whole walk.
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (h, stop, url) = (h.clone(), stop.clone(), h.cluster.api_url(2));
        tokio::spawn(async move {
            let mut rounds = 0;
            while !stop.load(Ordering::Relaxed) {
                let ids = create_for(&h, &url, "churn", 3).await;
                let deletions: Vec<Value> = ids.iter().map(|id| json!({ "SessionId": id, "Force": true })).collect();
                h.client.post(&url, "/deleteSessions", &json!(deletions)).await.unwrap();
                rounds += 1;
            }
            rounds
        })
    };
    // Walk several times, through a follower, in small pages, while the churn goes on.
    for _ in 0..3 {
        let seen = walk(&h, &url3, 3, json!([])).await;
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for id in &seen {
            *counts.entry(id.as_str()).or_default() += 1;
        }
        for id in &long_lived {
            assert_eq!(counts.get(id.as_str()), Some(&1), "session {id} must be seen exactly once");
        }
        assert!(counts.values().all(|n| *n == 1), "no session is seen twice");
    }
    stop.store(true, Ordering::Relaxed);
    let rounds = churn.await.unwrap();
    assert!(rounds > 0, "the churn ran during the walks");

    // Filters: owner, and a tag of the session's server.
    let mut bob = create_for(&h, &url1, "bob", 4).await;
    bob.sort();
    let mut by_owner = walk(&h, &url3, 1000, json!([{ "Key": "owner", "Value": "bob" }])).await;
    by_owner.sort();
    assert_eq!(by_owner, bob);
    for id in &bob {
        wait_ready(&h, &url3, id, Duration::from_secs(20)).await;
    }
    let on_agent_1 = walk(&h, &url3, 1000, json!([{ "Key": "tag:dev_agent", "Value": "1" }])).await;
    assert!(!on_agent_1.is_empty(), "some sessions run on dev-agent-1");
    for id in &on_agent_1 {
        let (_, body) = h.client.post(&url3, "/describeSessions", &json!({ "SessionIds": [id] })).await.unwrap();
        assert_eq!(body["Sessions"][0]["Server"]["Id"], "dev-agent-1", "{body}");
    }
    let (status, body) = h
        .client
        .post(&url3, "/describeSessions", &json!({ "Filters": [{ "Key": "color", "Value": "x" }] }))
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
}
