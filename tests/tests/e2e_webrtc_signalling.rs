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
        rtc_on_loopback(o);
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

/// A recvonly H.264 offer as a browser would send it, written by hand: nobody will ever
/// answer the server's ICE checks for it.
const SILENT_OFFER: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0\r\n\
a=msid-semantic: WMS\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 102\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:s1Lt\r\n\
a=ice-pwd:nobodyanswersthesechecks\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 5B:DB:6B:6B:7D:0F:3C:8E:2F:43:65:4F:A8:20:B0:1A:5E:92:31:61:1F:0A:6A:9C:8D:3E:0B:54:3C:7B:21:D1\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=recvonly\r\n\
a=rtcp-mux\r\n\
a=rtpmap:102 H264/90000\r\n\
a=rtcp-fb:102 nack pli\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n";

#[tokio::test]
async fn a_peer_that_never_connects_is_dropped_after_the_connect_timeout() {
    let server = start_server_with(|o| {
        rtc_on_loopback(o);
        o.rtc.connect_timeout = std::time::Duration::from_secs(1);
    })
    .await;
    // A live H.264 stream, published in-process.
    let key = media::StreamKey::new("live", "silent").expect("key");
    let guard = server
        .registry
        .publish(
            key.clone(),
            registry::SessionInfo {
                id: server.registry.next_session_id(),
                protocol: registry::Protocol::Rtmp,
                peer: "127.0.0.1:1".parse().expect("addr"),
                local: "127.0.0.1:2".parse().expect("addr"),
                params: String::new(),
            },
        )
        .expect("publish");
    let sps: &[u8] = &[
        0x67, 0x42, 0xC0, 0x1E, 0xDA, 0x02, 0x80, 0xBF, 0xE5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04,
        0x00, 0x00, 0x03, 0x00, 0xF0, 0x3C, 0x58, 0xBA, 0x80,
    ];
    let pps: &[u8] = &[0x68, 0xCE, 0x0F, 0x2C, 0x80];
    let config = media::avc::DecoderConfig::build(sps, &[pps]).expect("avcC");
    guard.set_track(media::TrackInfo::new(media::Codec::H264, config));

    let (status, ctype, answer) = post(
        &http_url(&server, "index/api/whep?app=live&stream=silent"),
        SILENT_OFFER,
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(ctype.as_deref(), Some("application/sdp"));
    assert!(answer.contains("a=ice-lite"), "{answer}");
    assert!(answer.contains("a=rtpmap:102 H264/90000"), "{answer}");
    assert!(answer.contains(" 127.0.0.1 "), "{answer}");
    let rtc = |server: &server::Server| {
        server
            .registry
            .sessions()
            .iter()
            .filter(|s| s.info.protocol == registry::Protocol::Rtc)
            .count()
    };
    assert_eq!(rtc(&server), 1);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(4);
    while rtc(&server) > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a peer that never connected outlived rtc.connectTimeoutSec"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    drop(guard);
    server.shutdown().await;
}
