//! A REST API client for the tests: calls `/index/api/{name}` on a server with its secret and
//! returns the answer's JSON (after checking it is an HTTP 200 JSON answer, as every API
//! answer is).

use serde_json::Value;
use server::Server;
use std::net::SocketAddr;

pub struct Api {
    pub addr: SocketAddr,
    pub secret: String,
    pub client: reqwest::Client,
}

impl Api {
    /// The API of `server`, with its (possibly generated) secret.
    pub fn of(server: &Server) -> Api {
        Api {
            addr: server.http_addr.expect("http on"),
            secret: server.config.get().api.secret.expose().to_owned(),
            client: reqwest::Client::new(),
        }
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://{}/index/api/{name}", self.addr)
    }

    /// GET `name` with `args` and the secret.
    pub async fn call(&self, name: &str, args: &[(&str, &str)]) -> Value {
        let mut query: Vec<(&str, &str)> = vec![("secret", &self.secret)];
        query.extend_from_slice(args);
        let resp = self
            .client
            .get(self.url(name))
            .query(&query)
            .send()
            .await
            .expect("api request");
        json_of(resp).await
    }
}

/// The JSON of an API answer, which must be a 200 with `application/json`.
pub async fn json_of(resp: reqwest::Response) -> Value {
    assert_eq!(resp.status(), 200, "api answers are HTTP 200");
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json; charset=utf-8")
    );
    let text = resp.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The names of an object's fields, sorted.
pub fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}
