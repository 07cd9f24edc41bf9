//! The webhook provider: each envelope is a JSON POST to `events.webhook` through one pooled
//! keep-alive client, signed like the hooks when `hook.sign_token` is set (the `RequestTime`
//! and `Sign` query of seed 003 and the `X-Ferrostream-Signature` header, [`hooks::sign`]).
//! Any 2xx answer is a delivery; anything else is retried.

use crate::queue::Sink;
use crate::Envelope;
use hooks::sign::{body_signature, signed_url, url_path, SIGNATURE_HEADER};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) struct Webhook {
    http: reqwest::Client,
    url: String,
    sign_token: Option<String>,
    timeout: Duration,
}

impl Webhook {
    /// A provider POSTing to `url` (http or https), each request within `timeout`.
    pub(crate) fn new(
        url: &str,
        sign_token: Option<String>,
        timeout: Duration,
    ) -> Result<Webhook, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("{url:?} is not an http:// URL"));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("ferrostream/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Webhook {
            http,
            url: url.to_owned(),
            sign_token,
            timeout,
        })
    }
}

impl Sink for Webhook {
    async fn send(&mut self, envelope: &Envelope) -> Result<(), String> {
        let body = envelope.json.clone();
        let req = match &self.sign_token {
            Some(token) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                self.http.post(signed_url(&self.url, token, now)).header(
                    SIGNATURE_HEADER,
                    body_signature(token, now, url_path(&self.url), &body),
                )
            }
            None => self.http.post(&self.url),
        };
        let resp = req
            .timeout(self.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("POST {}: {e}", hooks::sign::url_path(&self.url)))?;
        if !resp.status().is_success() {
            return Err(format!("HTTP status {}", resp.status()));
        }
        Ok(())
    }
}
