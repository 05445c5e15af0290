//! The API's answers to bad credentials and bad input, through real processes: 401s with the texts clients
//! probe for, 400s for bodies that do not parse, and never a 500.

mod common;

use std::time::Duration;

use base64::Engine;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn raw(h: &Harness, method: Method, url: &str, auth: Option<&str>, body: &str) -> (StatusCode, Value) {
    let mut request = h.client.http().request(method, url).body(body.to_owned());
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let body = response.bytes().await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_and_bad_input_answers() {
    let h = start(3, 1, |options| options.access_token_validity_seconds = 3).await;
    let info = h.cluster.info();
    let url1 = h.cluster.api_url(1);
    let url3 = h.cluster.api_url(3);

    // No header: the exact text an installer probes for.
    for path in ["/describeSessions", "/createSessions", "/describeServers"] {
        let (status, body) = raw(&h, Method::POST, &format!("{url3}{path}"), None, "").await;
        assert_eq!(status, 401, "{path}");
        assert_eq!(body, json!({"error": "No authorization header"}), "{path}");
    }
    let (status, body) = raw(&h, Method::GET, &format!("{url3}/cluster/status"), None, "").await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"error": "No authorization header"})));

    // A token issued by node 1 works on node 3 (the signing key is replicated).
    let token = h.client.fetch_token(&url1).await.unwrap();
    let bearer = format!("Bearer {token}");
    let (status, _) = raw(&h, Method::POST, &format!("{url3}/describeSessions"), Some(&bearer), "").await;
    assert_eq!(status, 200);

    // Bad tokens: garbage, a tampered signature, alg none, a token signed with another key.
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    let claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    let unsigned = format!("{}.{}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#), parts[1]);
    let foreign = broker_api::auth::issue_token(
        &[7u8; 32],
        claims["sub"].as_str().unwrap(),
        claims["iat"].as_u64().unwrap(),
        3600,
    )
    .unwrap();
    let tampered = format!("{}.{}.{}x", parts[0], parts[1], &parts[2][..parts[2].len() - 1]);
    for bad in [
        "Bearer garbage",
        &format!("Bearer {unsigned}"),
        &format!("Bearer {foreign}"),
        &format!("Bearer {tampered}"),
        "Basic abc",
    ] {
        let (status, body) = raw(&h, Method::POST, &format!("{url3}/describeSessions"), Some(bad), "").await;
        assert_eq!(status, 401, "{bad}: {body}");
        assert!(body["error"].as_str().is_some(), "{bad}: {body}");
    }

    // Token endpoint: wrong secret, unknown client, missing or wrong grant type.
    let basic = |id: &str, secret: &str| {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
    };
    let token_url = format!("{url3}/oauth2/token?grant_type=client_credentials");
    let (status, _) = raw(&h, Method::POST, &token_url, Some(&basic(&info.client_id, "wrong")), "").await;
    assert_eq!(status, 401);
    let (status, _) = raw(&h, Method::POST, &token_url, Some(&basic("nobody", "x")), "").await;
    assert_eq!(status, 401);
    let (status, body) = raw(&h, Method::POST, &token_url, None, "").await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"error": "No authorization header"})));
    let (status, _) =
        raw(&h, Method::POST, &format!("{url3}/oauth2/token"), Some(&basic(&info.client_id, &info.client_secret)), "")
            .await;
    assert_eq!(status, 400);
    let (status, _) = raw(
        &h,
        Method::POST,
        &format!("{url3}/oauth2/token?grant_type=password"),
        Some(&basic(&info.client_id, &info.client_secret)),
        "",
    )
    .await;
    assert_eq!(status, 400);

    // Bodies that do not parse are 400 with an error, per element failures are not.
    let fresh = format!("Bearer {}", h.client.fetch_token(&url1).await.unwrap());
    let bearer_for_expiry = bearer;
    let bearer = fresh;
    let cases: &[(&str, &str)] = &[
        ("/createSessions", "{not json"),
        ("/createSessions", r#"{"Name":"x"}"#),
        ("/createSessions", r#"[{"Name": 5, "Owner": "a"}]"#),
        ("/createSessions", ""),
        ("/describeSessions", r#"{"MaxResults": "ten"}"#),
        ("/describeSessions", r#"{"MaxResults": 0}"#),
        ("/describeSessions", r#"{"MaxResults": 1001}"#),
        ("/describeSessions", r#"{"NextToken": "forged.token"}"#),
        ("/describeSessions", r#"{"Filters": [{"Key": "color", "Value": "red"}]}"#),
        ("/describeServers", r#"[1,2]"#),
        ("/describeServers", r#"{"MaxResults": -1}"#),
    ];
    for (path, body) in cases {
        let (status, answer) = raw(&h, Method::POST, &format!("{url3}{path}"), Some(&bearer), body).await;
        assert_eq!(status, 400, "{path} {body}: {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "{path} {body}: {answer}");
    }
    let (status, body) = raw(
        &h,
        Method::POST,
        &format!("{url3}/createSessions"),
        Some(&bearer),
        r#"[{"Owner":"a"},{"Name":"n","Owner":"a","InitFile":"../../etc/passwd"}]"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["SuccessfulList"], json!([]));
    let reasons: Vec<&str> =
        body["UnsuccessfulList"].as_array().unwrap().iter().map(|u| u["FailureReason"].as_str().unwrap()).collect();
    assert_eq!(reasons.len(), 2, "{body}");
    assert!(reasons[0].contains("Name") && reasons[1].contains("InitFile"), "{reasons:?}");
    // Request objects must be objects: an array in their place is refused, not read field by field.
    let (status, body) =
        raw(&h, Method::POST, &format!("{url3}/closeServers"), Some(&bearer), r#"[["dev-agent-1", true]]"#).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = raw(&h, Method::POST, &format!("{url3}/noSuchOperation"), Some(&bearer), "").await;
    assert_eq!(status, 404, "{body}");

    // Pagination through a follower walks every session exactly once.
    let mut created = Vec::new();
    for n in 0..5 {
        created.push(create_session(&h, &url1, &format!("page-{n}")).await);
    }
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut request = json!({ "MaxResults": 2 });
        if let Some(token) = &next {
            request["NextToken"] = json!(token);
        }
        let (status, body) = h.client.post(&url3, "/describeSessions", &request).await.unwrap();
        assert_eq!(status, 200, "{body}");
        let page = body["Sessions"].as_array().unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|s| s["Id"].as_str().unwrap().to_owned()));
        match body["NextToken"].as_str() {
            Some(token) => next = Some(token.to_owned()),
            None => break,
        }
    }
    created.sort();
    seen.sort();
    assert_eq!(seen, created);

    // The short-lived token expires, and is then refused.
    eventually("the 3-second token to expire", Duration::from_secs(15), || async {
        let (status, _) =
            raw(&h, Method::POST, &format!("{url3}/describeSessions"), Some(&bearer_for_expiry), "").await;
        (status == 401).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_and_the_token_endpoint_follow_their_settings() {
    let h = start(3, 1, |options| {
        options.configure_node = Some(|config| {
            config.enable_authorization = false;
            config.enable_authorization_server = false;
        })
    })
    .await;
    let url2 = h.cluster.api_url(2);
    // enable-authorization = false: no token needed.
    let (status, body) = raw(&h, Method::POST, &format!("{url2}/describeServers"), None, "").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["Servers"].is_array(), "{body}");
    // enable-authorization-server = false: the broker issues no tokens, and says why.
    let info = h.cluster.info();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", info.client_id, info.client_secret));
    let token_url = format!("{url2}/oauth2/token?grant_type=client_credentials");
    let (status, body) = raw(&h, Method::POST, &token_url, Some(&format!("Basic {basic}")), "").await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("enable-authorization-server")), "{body}");
}
