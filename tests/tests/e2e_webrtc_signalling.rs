//! The WebRTC signalling routes refuse what they cannot answer with exact statuses and no SDP:
//! an offer over 64 KiB (413), an empty or malformed one (400), a missing `app`/`stream` (400),
//! a server at `rtc.maxPeers` (503), a GET (405); the JSON flavour answers ZLMediaKit's codes;
//! `delete_webrtc` needs DELETE and a known id and token. None of them asks for the secret.

use e2e::*;
use serde_json::{json, Value};

async fn post(url: &str, body: impl Into<reqwest::Body>) -> (u16, Option<String>, String) {
    let resp = reqwest::Client::new()
        .post(url)
        .header("Content-Type", "application/sdp")
        .body(body)
        .send()
        .await
        .expect("post");
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, ctype, resp.text().await.expect("body"))
}

#[tokio::test]
async fn refusals_are_exact_and_carry_no_answer() {
    let server = start_server_with(|o| {
        o.rtc.addr = Some("127.0.0.1:0".parse().expect("addr"));
        o.rtc.extern_ip = Some("127.0.0.1".parse().expect("ip"));
    })
    .await;
    let whep = http_url(&server, "index/api/whep?app=live&stream=a");

    let (status, _, body) = post(&whep, vec![b'v'; 64 * 1024 + 1]).await;
    assert_eq!(
        (status, body.as_str()),
        (413, "the offer is larger than 65536 bytes")
    );
    let (status, _, body) = post(&whep, "").await;
    assert_eq!(
        (status, body.as_str()),
        (400, "http body(webrtc offer sdp) is empty")
    );
    let (status, ctype, body) = post(&whep, "v=0\r\nthis is no sdp\r\n").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.starts_with("bad offer: "), "{body}");
    assert_ne!(ctype.as_deref(), Some("application/sdp"));
    let (status, _, body) = post(&http_url(&server, "index/api/whep?app=live"), "v=0").await;
    assert_eq!(
        (status, body.as_str()),
        (400, "Required parameter missed: \"app\",\"stream\"")
    );
    let get = reqwest::get(&whep).await.expect("get");
    assert_eq!(get.status(), 405);

    // The JSON flavour: HTTP 200 and ZLMediaKit's codes.
    let json_url = |q: &str| http_url(&server, &format!("index/api/webrtc?{q}"));
    let (status, _, body) = post(&json_url("app=live&stream=a"), "v=0").await;
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        (status, body),
        (
            200,
            json!({"code": -300, "msg": "Required parameter missed: \"type\""})
        )
    );
    let (status, _, body) = post(&json_url("app=live&stream=a&type=play"), "").await;
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        (status, body),
        (
            200,
            json!({"code": -1, "msg": "http body(webrtc offer sdp) is empty"})
        )
    );
    let (status, _, body) = post(&json_url("app=live&stream=a&type=echo"), "v=0").await;
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        (status, body),
        (
            200,
            json!({"code": -300, "msg": "unsupported webrtc type: \"echo\""})
        )
    );

    // delete_webrtc: DELETE only, and only a known id with its token.
    let client = reqwest::Client::new();
    let delete = http_url(&server, "index/api/delete_webrtc?id=1&token=x");
    let resp = client.get(&delete).send().await.expect("get");
    assert_eq!(resp.status(), 405);
    let resp = client.delete(&delete).send().await.expect("delete");
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body,
        json!({"code": -500, "msg": "webrtc session not found"})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn offers_past_max_peers_get_503_and_webrtc_off_too() {
    let server = start_server_with(|o| {
        o.rtc.addr = Some("127.0.0.1:0".parse().expect("addr"));
        o.rtc.max_peers = 0;
    })
    .await;
    let (status, _, body) = post(
        &http_url(&server, "index/api/whep?app=live&stream=a"),
        "v=0",
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (503, "too many WebRTC peers (rtc.maxPeers=0)")
    );
    server.shutdown().await;

    let server = start_server().await; // rtc.port off
    let (status, _, body) = post(
        &http_url(&server, "index/api/whip?app=live&stream=a"),
        "v=0",
    )
    .await;
    assert_eq!((status, body.as_str()), (503, "WebRTC is off (rtc.port=0)"));
    server.shutdown().await;
}
