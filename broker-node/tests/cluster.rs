//! End-to-end behaviour of a three-node cluster with agents, through real processes: sessions created
//! through any node, leader failover, full restarts and snapshot catch-up.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_created_through_node_1_is_ready_through_nodes_2_and_3() {
    let h = start(3, 2, |_| {}).await;
    let id = create_session(&h, &h.cluster.api_url(1), "first").await;
    for node in [2, 3] {
        wait_ready(&h, &h.cluster.api_url(node), &id, Duration::from_secs(20)).await;
    }
    // The ready session carries the server that holds it.
    let (_, body) =
        h.client.post(&h.cluster.api_url(2), "/describeSessions", &json!({ "SessionIds": [id] })).await.unwrap();
    let server = &body["Sessions"][0]["Server"];
    assert!(server["Id"].as_str().unwrap().starts_with("dev-agent-"), "{body}");
    assert!(server["Ip"].as_str().is_some(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_elects_another_and_the_agents_follow_it() {
    let mut h = start(3, 2, |_| {}).await;
    let first = create_session(&h, &h.cluster.api_url(1), "before").await;
    wait_ready(&h, &h.cluster.api_url(1), &first, Duration::from_secs(20)).await;

    let old_leader = agreed_leader(&h, &[1, 2, 3], Duration::from_secs(10)).await;
    let survivors: Vec<u64> = (1..=3).filter(|id| *id != old_leader).collect();
    let killed_at = Instant::now();
    h.cluster.kill_node(old_leader);

    // Keep trying through the survivors until a write succeeds.
    let mut attempt = 0usize;
    let second = loop {
        let url = h.cluster.api_url(survivors[attempt % 2]);
        attempt += 1;
        if let Ok((status, body)) = h.client.post(&url, "/createSessions", &session_body("after", "alice")).await {
            if status == 200 {
                break body["SuccessfulList"][0]["Id"].as_str().unwrap().to_owned();
            }
        }
        assert!(killed_at.elapsed() < Duration::from_secs(20), "no write succeeded within 20 s of the kill");
    };
    let failover = killed_at.elapsed();
    println!("kill -9 of leader {old_leader} to first successful CreateSessions: {} ms", failover.as_millis());

    let new_leader = agreed_leader(&h, &survivors, Duration::from_secs(10)).await;
    assert_ne!(new_leader, old_leader);
    for node in &survivors {
        let url = h.cluster.api_url(*node);
        assert_eq!(session_state(&h, &url, &first).await.as_deref(), Some("READY"), "through node {node}");
    }
    wait_ready(&h, &h.cluster.api_url(survivors[0]), &second, Duration::from_secs(20)).await;

    // Placement spreads sessions over both servers, so both agents must have re-homed for these to be READY.
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(create_session(&h, &h.cluster.api_url(survivors[n % 2]), &format!("spread-{n}")).await);
    }
    for id in &ids {
        wait_ready(&h, &h.cluster.api_url(survivors[1]), id, Duration::from_secs(20)).await;
    }
    let (_, body) = h
        .client
        .post(&h.cluster.api_url(survivors[0]), "/describeSessions", &json!({ "SessionIds": ids }))
        .await
        .unwrap();
    let mut servers: Vec<&str> =
        body["Sessions"].as_array().unwrap().iter().map(|s| s["Server"]["Id"].as_str().unwrap()).collect();
    servers.sort();
    servers.dedup();
    assert_eq!(servers, ["dev-agent-1", "dev-agent-2"], "both agents serve sessions under the new leader: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_session_survives_a_full_cluster_crash() {
    let mut h = start(3, 1, |_| {}).await;
    let url = h.cluster.api_url(2);
    let mut acknowledged = Vec::new();
    for n in 0..20 {
        acknowledged.push(create_session(&h, &url, &format!("durable-{n}")).await);
    }
    // kill -9 every node at once: only what was fsynced before the acknowledgement can come back.
    for id in 1..=3 {
        h.cluster.kill_node(id);
    }
    h.cluster.start_all().unwrap();
    h.cluster.wait_healthy(STARTUP).await.unwrap();
    let (status, body) = h.client.post(&h.cluster.api_url(3), "/describeSessions", &json!({})).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let present: Vec<&str> = body["Sessions"].as_array().unwrap().iter().map(|s| s["Id"].as_str().unwrap()).collect();
    for id in &acknowledged {
        assert!(present.contains(&id.as_str()), "acknowledged session {id} lost after the restart");
    }
    // The restarted cluster still creates and places sessions.
    let after = create_session(&h, &h.cluster.api_url(1), "after-restart").await;
    wait_ready(&h, &h.cluster.api_url(1), &after, Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_fell_behind_the_purge_point_catches_up_from_a_snapshot() {
    let mut h = start(3, 1, |options| {
        options.raft.snapshot_logs_since_last = 20;
        options.raft.max_logs_kept_after_snapshot = 5;
    })
    .await;
    let leader = agreed_leader(&h, &[1, 2, 3], Duration::from_secs(10)).await;
    let lagging = (1..=3).find(|id| *id != leader).unwrap();
    let active = (1..=3).find(|id| *id != leader && *id != lagging).unwrap();
    h.cluster.kill_node(lagging);

    let url = h.cluster.api_url(active);
    let mut ids = Vec::new();
    for n in 0..60 {
        ids.push(create_session(&h, &url, &format!("while-down-{n}")).await);
    }
    let leader_url = h.cluster.api_url(leader);
    let purged = eventually("the leader to snapshot and purge its log", Duration::from_secs(20), || async {
        let status = cluster_status(&h, &leader_url).await?;
        let purged = status["PurgedIndex"].as_u64()?;
        (purged > 20).then_some(purged)
    })
    .await;

    h.cluster.start_node(lagging).unwrap();
    let lagging_url = h.cluster.api_url(lagging);
    let status = eventually(
        "the restarted node to install a snapshot and apply past the purge point",
        Duration::from_secs(30),
        || async {
            let status = cluster_status(&h, &lagging_url).await?;
            (status["SnapshotIndex"].as_u64()? >= purged && status["AppliedIndex"].as_u64()? >= purged)
                .then_some(status)
        },
    )
    .await;
    println!("lagging node {lagging} caught up: {status}");
    let (code, body) = h.client.post(&lagging_url, "/describeSessions", &json!({ "SessionIds": ids })).await.unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["Sessions"].as_array().unwrap().len(),
        ids.len(),
        "every session is visible through the node that caught up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requirements_pin_sessions_to_the_matching_server() {
    let h = start(3, 2, |_| {}).await;
    let url = h.cluster.api_url(2);
    let body = json!([
        { "Name": "pinned", "Owner": "alice", "Requirements": "tag:dev_agent = '2' and server:Host.CpuInfo.NumberOfCpus >= 1" },
        { "Name": "broken", "Owner": "alice", "Requirements": "tag:dev_agent = " },
        { "Name": "nowhere", "Owner": "alice", "Requirements": "tag:dev_agent = '9'" },
    ]);
    let (status, answer) = h.client.post(&url, "/createSessions", &body).await.unwrap();
    assert_eq!(status, 200, "{answer}");
    let failure = &answer["UnsuccessfulList"][0];
    assert_eq!(failure["CreateSessionRequestData"]["Name"], "broken", "{answer}");
    assert!(failure["FailureReason"].as_str().unwrap().contains("position 17"), "{answer}");
    let ids: Vec<String> =
        answer["SuccessfulList"].as_array().unwrap().iter().map(|s| s["Id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 2, "{answer}");
    wait_ready(&h, &h.cluster.api_url(3), &ids[0], Duration::from_secs(20)).await;
    let (_, described) = h.client.post(&url, "/describeSessions", &json!({ "SessionIds": [ids[0]] })).await.unwrap();
    assert_eq!(described["Sessions"][0]["Server"]["Id"], "dev-agent-2", "{described}");
    // No server matches and the request did not ask to be queued: it ends with a reason.
    let state = eventually("the unplaceable session to end", Duration::from_secs(20), || async {
        let (_, d) = h.client.post(&url, "/describeSessions", &json!({ "SessionIds": [ids[1]] })).await.ok()?;
        let session = d["Sessions"][0].clone();
        (session["State"] == "DELETED").then_some(session)
    })
    .await;
    assert!(state["StateReason"].as_str().unwrap().contains("No DCV server"), "{state}");
}
