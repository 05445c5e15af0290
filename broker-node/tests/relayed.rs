//! The operations that reach agents through the leader (screenshots, permission updates) and the gateway's
//! session resolver, through real processes and asked of followers.

mod common;

use std::time::Duration;

use base64::Engine;
use common::*;
use serde_json::{json, Value};

async fn follower_of(h: &Harness) -> (u64, String) {
    let leader = agreed_leader(h, &[1, 2, 3], Duration::from_secs(20)).await;
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    (follower, h.cluster.api_url(follower))
}

fn decode_png(data: &str) -> (u32, u32, Vec<u8>) {
    let bytes = base64::engine::general_purpose::STANDARD.decode(data).expect("base64 image");
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().expect("a png");
    let mut pixels = vec![0; reader.output_buffer_size().expect("buffer size")];
    let info = reader.next_frame(&mut pixels).expect("a frame");
    pixels.truncate(info.buffer_size());
    (info.width, info.height, pixels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_and_permission_updates_are_relayed_to_the_agent_through_a_follower() {
    let h = start(3, 1, |_| {}).await;
    let (_, follower) = follower_of(&h).await;
    let id = create_session(&h, &follower, "desk").await;
    wait_ready(&h, &follower, &id, Duration::from_secs(20)).await;

    let request = json!([
        { "SessionId": id },
        { "SessionId": id, "MaxWidth": 64, "MaxHeight": 64 },
        { "SessionId": id, "MaxWidth": 100000, "MaxHeight": 100000 },
        { "SessionId": "no-such-session" },
        { "SessionId": id, "MaxWidth": 0 },
    ]);
    let (status, body) = h.client.post(&follower, "/getSessionScreenshots", &request).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body["RequestId"].as_str().is_some_and(|r| r.len() == 36), "{body}");
    let shots = body["SuccessfulList"].as_array().expect("SuccessfulList");
    assert_eq!(shots.len(), 3, "{body}");
    let sizes: Vec<(u32, u32)> = shots
        .iter()
        .map(|shot| {
            let shot = &shot["SessionScreenshot"];
            assert_eq!(shot["SessionId"], json!(id));
            let image = &shot["Images"][0];
            assert_eq!((image["Format"].as_str(), image["Primary"].as_bool()), (Some("png"), Some(true)), "{shot}");
            assert!(image["CreationTime"].as_str().is_some_and(|t| t.ends_with('Z')), "{shot}");
            let (width, height, pixels) = decode_png(image["Data"].as_str().unwrap());
            assert_eq!(&pixels[..3], &agent::backend::simulated_colour(&id), "the session's own screen");
            (width, height)
        })
        .collect();
    // Defaults (session-screenshot-max-width/height 160x100), a smaller box, and never above 1920x1080.
    assert_eq!(sizes, [(160, 90), (64, 36), (1920, 1080)]);
    let failures: Vec<(&Value, &str)> = body["UnsuccessfulList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (&f["GetSessionScreenshotRequestData"]["SessionId"], f["FailureReason"].as_str().unwrap()))
        .collect();
    assert_eq!(failures[0], (&json!("no-such-session"), "Dcv session not found."));
    assert_eq!(failures[1].0, &json!(id));
    assert!(failures[1].1.contains("MaxWidth must be greater than 0"), "{body}");

    let file = base64::engine::general_purpose::STANDARD.encode("[permissions]\n%any% allow builtin\n");
    let request = json!([
        { "SessionId": id, "Owner": "alice", "PermissionsFile": file },
        { "SessionId": id, "Owner": "mallory", "PermissionsFile": file },
        { "SessionId": id, "PermissionsFile": "not base64!" },
        { "SessionId": "no-such-session", "PermissionsFile": file },
    ]);
    let (status, body) =
        h.client.call(&follower, reqwest::Method::PUT, "/sessionPermissions", Some(&request)).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["SuccessfulList"], json!([{ "SessionId": id }]), "{body}");
    let reasons: Vec<&str> =
        body["UnsuccessfulList"].as_array().unwrap().iter().map(|f| f["FailureReason"].as_str().unwrap()).collect();
    assert_eq!(reasons[0], "The requested dcvSession does not exist", "a wrong owner is not told the session exists");
    assert!(reasons[1].contains("not valid base64"), "{body}");
    assert_eq!(reasons[2], "The requested dcvSession does not exist");
    let log = std::fs::read_to_string(h.cluster.dir().join("dev-agent-1/agent.log")).unwrap();
    assert!(log.lines().any(|l| l.contains(&id) && l.contains("permissions file replaced")), "{log}");

    // With the agent gone, the failure names the cause instead of hanging.
    let mut h = h;
    h.cluster.kill_agent(0);
    eventually("a screenshot failure naming the missing agent", Duration::from_secs(20), || async {
        let (_, body) = h.client.post(&follower, "/getSessionScreenshots", &json!([{ "SessionId": id }])).await.ok()?;
        let reason = body["UnsuccessfulList"][0]["FailureReason"].as_str()?.to_owned();
        (reason.contains("not connected") || reason.contains("not ready")).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_resolver_answers_on_every_node() {
    let h = start(3, 1, |_| {}).await;
    let (follower_id, follower) = follower_of(&h).await;
    let id = create_session(&h, &follower, "desk").await;
    wait_ready(&h, &follower, &id, Duration::from_secs(20)).await;
    let http = h.client.http();
    let resolve = |node: u64, query: String| {
        let url = format!("{}/resolveSession?{query}", h.cluster.gateway_url(node));
        async move {
            let response = http.post(url).send().await.expect("resolver answers");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    for node in 1..=3 {
        let (status, body) = resolve(node, format!("sessionId={id}&transport=HTTP&clientIpAddress=10.1.2.3")).await;
        assert_eq!(status, 200, "node {node}: {body}");
        assert_eq!(body["SessionId"], json!(id));
        assert_eq!(body["TransportProtocol"], "HTTP");
        assert_eq!(body["DcvServerEndpoint"].as_str().map(|a| !a.is_empty()), Some(true), "{body}");
        assert_eq!(body["Port"], 8443);
        assert_eq!(body["WebUrlPath"], "/");
    }
    let (status, body) = resolve(follower_id, "sessionId=no-such-session&transport=HTTP".into()).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "The requested dcvSession does not exist");
    let (status, body) = resolve(follower_id, format!("sessionId={id}&transport=SCTP")).await;
    assert_eq!(status, 400, "{body}");
    // The simulated agent publishes no QUIC endpoint.
    let (status, body) = resolve(follower_id, format!("sessionId={id}&transport=QUIC")).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("The session's server has no QUIC endpoint")));
}
