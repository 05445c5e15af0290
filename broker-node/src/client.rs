//! A small HTTPS client for the REST API, shared by `berth dev`, the integration tests and the benchmarks:
//! client-credentials token, then JSON calls to any node.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context};
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub struct ApiClient {
    http: reqwest::Client,
    client_id: String,
    client_secret: String,
    token: Mutex<Option<String>>,
}

impl ApiClient {
    pub fn new(ca_pem: &str, client_id: &str, client_secret: &str) -> anyhow::Result<Self> {
        let mut tls = broker_transport::tls::client_config_trusting(ca_pem, b"")?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(Duration::from_secs(15))
            .pool_max_idle_per_host(64)
            .build()
            .context("cannot build the HTTPS client")?;
        Ok(ApiClient {
            http,
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            token: Mutex::new(None),
        })
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Asks `base_url` for a fresh access token.
    pub async fn fetch_token(&self, base_url: &str) -> anyhow::Result<String> {
        let response = self
            .http
            .post(format!("{base_url}/oauth2/token?grant_type=client_credentials"))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status != StatusCode::OK {
            bail!("token request to {base_url} answered {status}: {body}");
        }
        body["access_token"].as_str().map(str::to_owned).context("token answer without access_token")
    }

    /// A cached token (fetched from `base_url` the first time).
    pub async fn token(&self, base_url: &str) -> anyhow::Result<String> {
        if let Some(token) = self.token.lock().expect("token lock").clone() {
            return Ok(token);
        }
        let token = self.fetch_token(base_url).await?;
        *self.token.lock().expect("token lock") = Some(token.clone());
        Ok(token)
    }

    /// One authenticated JSON call; returns the status and the parsed body (Null when not JSON). An expired
    /// token is renewed once.
    pub async fn call(
        &self,
        base_url: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut renewed = false;
        loop {
            let mut request = self.http.request(method.clone(), format!("{base_url}{path}"));
            match self.token(base_url).await {
                Ok(token) => request = request.bearer_auth(token),
                // A broker that issues no tokens (enable-authorization-server = false): try without one; if it
                // needs one, its 401 says so.
                Err(e) if e.to_string().contains("answered 404") => {}
                Err(e) => return Err(e),
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await?;
            let status = response.status();
            let bytes = response.bytes().await?;
            if status == StatusCode::UNAUTHORIZED && !renewed {
                *self.token.lock().expect("token lock") = None;
                renewed = true;
                continue;
            }
            return Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)));
        }
    }

    pub async fn post(&self, base_url: &str, path: &str, body: &Value) -> anyhow::Result<(StatusCode, Value)> {
        self.call(base_url, Method::POST, path, Some(body)).await
    }
}
