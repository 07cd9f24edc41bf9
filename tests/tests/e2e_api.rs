//! The REST API (`/index/api/*`, ZLMediaKit's contract) against a real server: its envelope,
//! access rules and argument forms, and the stream, session and server calls with a stream
//! ffmpeg publishes, viewers ffmpeg plays, and a real hook backend.

use e2e::api::{json_of, keys, Api};
use e2e::backend::Backend;
use e2e::*;
use media::StreamKey;
use serde_json::{json, Value};
use std::time::Duration;

/// Polls until `count` sessions are listed, or panics after 15 s.
async fn wait_sessions(api: &Api, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let answer = api.call("getAllSession", &[]).await;
        let list = answer["data"].as_array().cloned().unwrap_or_default();
        if list.len() == count {
            return list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{count} sessions expected: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn md5_hex(text: &str) -> String {
    use md5::{Digest, Md5};
    Md5::digest(text)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_needs_the_secret_or_a_login_and_an_allowed_address() {
    let server = start_server().await;
    let api = Api::of(&server);
    assert_eq!(
        api.secret.len(),
        32,
        "an embedded server gets a random secret"
    );
    let get = |name: &str| api.client.get(api.url(name));

    // No secret: -100 with a login salt, as a cookie too, and the connection is closed.
    let resp = get("getMediaList").send().await.expect("get");
    assert_eq!(
        resp.headers().get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..])
    );
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .expect("salt cookie")
        .to_str()
        .expect("ascii")
        .to_owned();
    let body = json_of(resp).await;
    assert_eq!(keys(&body), ["code", "cookie", "msg"]);
    assert_eq!(
        (&body["code"], &body["msg"]),
        (&json!(-100), &json!("Please login first"))
    );
    let salt = body["cookie"].as_str().expect("cookie string").to_owned();
    assert_eq!(salt.len(), 32);
    assert!(
        set_cookie.starts_with(&format!("ZLM_UNLOGIN={salt};expires=")),
        "{set_cookie}"
    );
    assert!(
        set_cookie.ends_with(";path=/;Max-Age=60;HttpOnly;SameSite=Strict"),
        "{set_cookie}"
    );
    let salt_cookie = format!("ZLM_UNLOGIN={salt}");

    // A wrong secret: the same refusal (the client's salt echoed, no new cookie), never data.
    let resp = get("getServerConfig")
        .query(&[("secret", "nope")])
        .header("cookie", &salt_cookie)
        .send()
        .await
        .expect("get");
    assert!(resp.headers().get("set-cookie").is_none());
    let wrong = json_of(resp).await;
    assert_eq!(
        wrong,
        json!({"code": -100, "msg": "Please login first", "cookie": salt})
    );

    // The cookie login: md5("zlmediakit:" + secret + ":" + salt).
    let digest = md5_hex(&format!("zlmediakit:{}:{salt}", api.secret));
    let bad = json_of(
        get("login")
            .query(&[("digest", "0".repeat(32).as_str())])
            .header("cookie", &salt_cookie)
            .send()
            .await
            .expect("login"),
    )
    .await;
    assert_eq!(
        bad,
        json!({"code": -100, "msg": "Digest does not match, incorrect secret?", "cookie": salt})
    );
    let resp = get("login")
        .query(&[("digest", digest.as_str())])
        .header("cookie", &salt_cookie)
        .send()
        .await
        .expect("login");
    let cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(
        cookies[0].starts_with("ZLM_LOGINED=") && cookies[0].contains(";Max-Age=86400;"),
        "{cookies:?}"
    );
    assert!(
        cookies[1].starts_with(&format!("{salt_cookie};expires="))
            && cookies[1].contains(";Max-Age=0;"),
        "the salt is cleared: {cookies:?}"
    );
    assert_eq!(json_of(resp).await, json!({"code": 0}));
    let token = cookies[0].split(';').next().expect("pair").to_owned();
    let listed = json_of(
        get("getMediaList")
            .header("cookie", &token)
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(
        listed,
        json!({"code": 0}),
        "no stream: no data, as ZLMediaKit answers"
    );
    // A salt is good for one login only.
    let again = json_of(
        get("login")
            .query(&[("digest", digest.as_str())])
            .header("cookie", &salt_cookie)
            .send()
            .await
            .expect("login"),
    )
    .await;
    assert_eq!(again["code"], -100);
    assert_ne!(again["cookie"], json!(salt));
    // Logout ends the login and hands out a salt for the next one.
    let out = json_of(
        get("logout")
            .header("cookie", &token)
            .send()
            .await
            .expect("logout"),
    )
    .await;
    assert_eq!(keys(&out), ["code", "cookie"]);
    assert_eq!(out["code"], 0);
    let out_again = json_of(
        get("logout")
            .header("cookie", &token)
            .send()
            .await
            .expect("logout"),
    )
    .await;
    assert_eq!(out_again["msg"], "You are not logined");
    let after = json_of(
        get("getMediaList")
            .header("cookie", &token)
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(after["code"], -100);

    // A client outside http.allow_ip_range is refused even with the secret.
    server
        .config
        .set([("http.allow_ip_range", "10.0.0.0-10.255.255.255")])
        .expect("set");
    let outside = api.call("getMediaList", &[]).await;
    assert_eq!(
        outside,
        json!({"code": -100, "msg": "Your ip is not allowed to access the service."})
    );
    // An empty list lets everyone in, as in ZLMediaKit.
    server
        .config
        .set([("http.allow_ip_range", "")])
        .expect("set");
    assert_eq!(api.call("getStatistic", &[]).await["code"], 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_paths_and_argument_forms() {
    let server = start_server().await;
    let api = Api::of(&server);
    // Unknown calls are a 404 with a JSON -500, not a plain page.
    let resp = api
        .client
        .get(api.url("noSuchCall"))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 404);
    let unknown: Value = resp.json().await.expect("json");
    assert_eq!(
        unknown,
        json!({"code": -500, "msg": "api not found: /index/api/noSuchCall"})
    );
    // Names are case-insensitive; getApiList lists every call, sorted as ZLMediaKit sorts.
    let list = api.call("GETAPILIST", &[]).await;
    let paths: Vec<&str> = list["data"]
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_str().expect("str"))
        .collect();
    assert_eq!(
        paths,
        [
            "/index/api/addStreamProxy",
            "/index/api/addStreamPusherProxy",
            "/index/api/close_stream",
            "/index/api/close_streams",
            "/index/api/closeRtpServer",
            "/index/api/connectRtpServer",
            "/index/api/delete_webrtc",
            "/index/api/deleteRecordDirectory",
            "/index/api/delStreamProxy",
            "/index/api/delStreamPusherProxy",
            "/index/api/getAllSession",
            "/index/api/getApiList",
            "/index/api/getMediaInfo",
            "/index/api/getMediaList",
            "/index/api/getMediaPlayerList",
            "/index/api/getMP4RecordFile",
            "/index/api/getProxyInfo",
            "/index/api/getProxyPusherInfo",
            "/index/api/getServerConfig",
            "/index/api/getSnap",
            "/index/api/getStatistic",
            "/index/api/getThreadsLoad",
            "/index/api/getWorkThreadsLoad",
            "/index/api/isMediaOnline",
            "/index/api/isRecording",
            "/index/api/kick_session",
            "/index/api/kick_sessions",
            "/index/api/listRtpServer",
            "/index/api/listStreamProxy",
            "/index/api/listStreamPusherProxy",
            "/index/api/login",
            "/index/api/logout",
            "/index/api/openRtpServer",
            "/index/api/restartServer",
            "/index/api/setServerConfig",
            "/index/api/startRecord",
            "/index/api/stopRecord",
            "/index/api/version",
            "/index/api/webrtc",
            "/index/api/whep",
            "/index/api/whip",
        ]
    );
    // The OpenAPI description names the same calls and paths, without the secret.
    let doc: Value = api
        .client
        .get(api.url("openapi.json"))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    let mut described: Vec<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    described.sort_by_key(|p| p.to_ascii_lowercase());
    assert_eq!(described, paths);
    // Argument names are case-insensitive too, and the secret may come as a header.
    let upper = json_of(
        api.client
            .get(api.url("getStatistic"))
            .query(&[("SECRET", api.secret.as_str())])
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(upper["code"], 0, "{upper}");
    let header = json_of(
        api.client
            .get(api.url("getStatistic"))
            .header("secret", &api.secret)
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(header["code"], 0, "{header}");
    // Missing arguments: ZLMediaKit's text, every required name, its spacing per call.
    let missing = api.call("isMediaOnline", &[("schema", "rtmp")]).await;
    assert_eq!(
        missing,
        json!({"code": -300, "msg": "Required parameter missed: \"schema\",\"vhost\",\"app\",\"stream\""})
    );
    let spaced = api.call("getMP4RecordFile", &[]).await;
    assert_eq!(
        spaced,
        json!({"code": -300, "msg": "Required parameter missed: \"vhost\", \"app\", \"stream\""})
    );
    // A stream name that is not one is -300, not a lookup.
    let bad = api
        .call(
            "isMediaOnline",
            &[
                ("schema", "rtmp"),
                ("vhost", "__defaultVhost__"),
                ("app", ".."),
                ("stream", "x"),
            ],
        )
        .await;
    assert_eq!(bad["code"], -300, "{bad}");

    // The same call as a form body and as a JSON body (numbers as strings).
    let form = json_of(
        api.client
            .post(api.url("isMediaOnline"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "secret={}&schema=rtmp&vhost=__defaultVhost__&app=live&stream=none",
                api.secret
            ))
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(form, json!({"code": 0, "online": false}));
    let body = json!({"secret": api.secret, "schema": "rtmp", "vhost": "__defaultVhost__", "app": "live", "stream": 7});
    let as_json = json_of(
        api.client
            .post(api.url("isMediaOnline"))
            .json(&body)
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(as_json, json!({"code": 0, "online": false}));
    // Query arguments win over the body's.
    let mixed = json_of(
        api.client
            .post(api.url("isMediaOnline"))
            .query(&[("secret", "wrong")])
            .json(&body)
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(mixed["code"], -100);

    // version and getStatistic with nothing live.
    // version: ZLMediaKit's build facts, from the checkout this was built from.
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|| "unknown".into())
    };
    let version = api.call("version", &[]).await;
    assert_eq!(
        version,
        json!({"code": 0, "data": {
            "branchName": git(&["rev-parse", "--abbrev-ref", "HEAD"]),
            "buildTime": git(&["log", "-1", "--format=%cI"]),
            "commitHash": git(&["rev-parse", "--short=12", "HEAD"]),
            "server": "ferrostream",
            "version": env!("CARGO_PKG_VERSION"),
        }})
    );
    let stats = api.call("getStatistic", &[]).await;
    assert_eq!(
        stats,
        json!({"code": 0, "data": {"MediaSource": 0, "MultiMediaSourceMuxer": 0, "readers": 0, "hooksDropped": 0}})
    );
    // One entry per runtime worker (the test runtime has 2).
    let load = api.call("getThreadsLoad", &[]).await;
    let workers = load["data"].as_array().expect("array");
    assert_eq!(workers.len(), 2, "{load}");
    for (i, w) in workers.iter().enumerate() {
        assert_eq!(keys(w), ["delay", "fd_count", "load", "name"]);
        assert_eq!(w["name"], format!("worker {i}"));
        assert!(
            w["load"].as_u64().is_some_and(|l| l <= 100)
                && w["delay"].is_u64()
                && w["fd_count"].as_u64().is_some_and(|n| n > 0),
            "{w}"
        );
    }
    assert_eq!(
        api.call("getWorkThreadsLoad", &[]).await["data"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_calls_describe_close_and_kick_a_published_stream() {
    if !have_ffmpeg() {
        return;
    }
    let backend = Backend::start().await;
    let server = start_server_with(|o| {
        o.hooks = backend.config();
        // Every session that moved a byte is reported.
        o.lifecycle.flow_threshold = 0;
    })
    .await;
    let api = Api::of(&server);
    let rtmp_port = server.rtmp_addr.expect("rtmp").port();
    let mut publisher = ffmpeg_publish(&rtmp_url(&server, "live/api"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "api").expect("key"), 2).await;

    // getMediaList: one entry per schema, every field of ZLMediaKit's MediaSource JSON.
    let list = api.call("getMediaList", &[]).await;
    assert_eq!(keys(&list), ["code", "data"]);
    let entries = list["data"].as_array().expect("array");
    let schemas: Vec<&str> = entries
        .iter()
        .map(|e| e["schema"].as_str().expect("schema"))
        .collect();
    assert_eq!(schemas, ["rtmp", "rtsp"]);
    for e in entries {
        assert_eq!(
            keys(e),
            [
                "aliveSecond",
                "app",
                "bytesSpeed",
                "createStamp",
                "isRecordingHLS",
                "isRecordingMP4",
                "originSock",
                "originType",
                "originTypeStr",
                "originUrl",
                "params",
                "readerCount",
                "schema",
                "stream",
                "totalBytes",
                "totalReaderCount",
                "tracks",
                "vhost"
            ]
        );
        assert_eq!(
            (&e["vhost"], &e["app"], &e["stream"], &e["params"]),
            (
                &json!("__defaultVhost__"),
                &json!("live"),
                &json!("api"),
                &json!("")
            )
        );
        assert_eq!(
            (&e["originType"], &e["originTypeStr"], &e["originUrl"]),
            (
                &json!(1),
                &json!("rtmp_push"),
                &json!("rtmp://__defaultVhost__/live/api")
            )
        );
        assert_eq!(
            (
                &e["readerCount"],
                &e["isRecordingMP4"],
                &e["isRecordingHLS"]
            ),
            (&json!(0), &json!(false), &json!(false))
        );
        for field in [
            "aliveSecond",
            "bytesSpeed",
            "createStamp",
            "totalBytes",
            "totalReaderCount",
        ] {
            assert!(e[field].is_u64(), "{field}: {e}");
        }
        let sock = &e["originSock"];
        assert_eq!(
            keys(sock),
            [
                "identifier",
                "local_ip",
                "local_port",
                "peer_ip",
                "peer_port"
            ]
        );
        assert_eq!(
            (&sock["local_ip"], &sock["local_port"], &sock["peer_ip"]),
            (&json!("127.0.0.1"), &json!(rtmp_port), &json!("127.0.0.1"))
        );
        let tracks = e["tracks"].as_array().expect("tracks");
        let names: Vec<&str> = tracks
            .iter()
            .map(|t| t["codec_id_name"].as_str().expect("name"))
            .collect();
        assert_eq!(names, ["H264", "mpeg4-generic"]);
        let video = &tracks[0];
        assert_eq!(
            keys(video),
            [
                "codec_id",
                "codec_id_name",
                "codec_type",
                "duration",
                "fps",
                "frames",
                "gop_interval_ms",
                "gop_size",
                "height",
                "key_frames",
                "loss",
                "ready",
                "width"
            ]
        );
        assert_eq!(
            (
                &video["codec_id"],
                &video["codec_type"],
                &video["width"],
                &video["height"],
                &video["ready"]
            ),
            (&json!(0), &json!(0), &json!(320), &json!(240), &json!(true))
        );
        let audio = &tracks[1];
        assert_eq!(
            keys(audio),
            [
                "channels",
                "codec_id",
                "codec_id_name",
                "codec_type",
                "duration",
                "frames",
                "loss",
                "ready",
                "sample_bit",
                "sample_rate"
            ]
        );
        assert_eq!(
            (
                &audio["codec_id"],
                &audio["codec_type"],
                &audio["sample_rate"],
                &audio["channels"]
            ),
            (&json!(2), &json!(1), &json!(44100), &json!(1))
        );
    }
    // Filters.
    let only_rtsp = api.call("getMediaList", &[("schema", "rtsp")]).await;
    assert_eq!(only_rtsp["data"].as_array().map(Vec::len), Some(1));
    let other_app = api.call("getMediaList", &[("app", "other")]).await;
    assert_eq!(other_app, json!({"code": 0}));

    let args = [
        ("schema", "rtmp"),
        ("vhost", "__defaultVhost__"),
        ("app", "live"),
        ("stream", "api"),
    ];
    assert_eq!(
        api.call("isMediaOnline", &args).await,
        json!({"code": 0, "online": true})
    );
    let info = api.call("getMediaInfo", &args).await;
    assert_eq!(info["code"], 0);
    assert_eq!(
        (
            &info["schema"],
            &info["stream"],
            info.get("data"),
            info.get("online")
        ),
        (&json!("rtmp"), &json!("api"), None, None)
    );
    assert_eq!(info["tracks"].as_array().map(Vec::len), Some(2));
    // The rtmp entry of getMediaList at the top level, beside `code`; only the figures that
    // move with time may differ.
    let mut expected = entries[0].as_object().expect("entry").clone();
    expected.insert("code".into(), json!(0));
    let mut got = info.as_object().expect("object").clone();
    for moving in ["aliveSecond", "bytesSpeed", "totalBytes", "tracks"] {
        expected.remove(moving);
        got.remove(moving);
    }
    assert_eq!(Value::Object(got), Value::Object(expected));
    let offline = [
        ("schema", "rtmp"),
        ("vhost", "__defaultVhost__"),
        ("app", "live"),
        ("stream", "gone"),
    ];
    assert_eq!(
        api.call("getMediaInfo", &offline).await,
        json!({"code": -500, "msg": "can not find the stream"})
    );

    // Two viewers; the session table lists them beside the publisher.
    let mut flv_viewer = ffmpeg_view(&http_url(&server, "live/api.live.flv"));
    let mut rtmp_viewer = ffmpeg_view(&rtmp_url(&server, "live/api"));
    let sessions = wait_sessions(&api, 3).await;
    for s in &sessions {
        assert_eq!(
            keys(s),
            [
                "app",
                "createStamp",
                "id",
                "identifier",
                "local_ip",
                "local_port",
                "peer_ip",
                "peer_port",
                "protocol",
                "role",
                "schema",
                "stream",
                "totalBytes",
                "type",
                "typeid",
                "vhost"
            ]
        );
        assert!(
            s["id"].is_string() && s["peer_port"].is_u64() && s["totalBytes"].is_u64(),
            "{s}"
        );
        assert_eq!(
            (&s["type"], &s["id"], &s["stream"]),
            (&json!("tcp"), &s["identifier"], &json!("api"))
        );
    }
    let mut roles: Vec<(String, String, String)> = sessions
        .iter()
        .map(|s| {
            (
                s["role"].as_str().unwrap_or("").to_owned(),
                s["typeid"].as_str().unwrap_or("").to_owned(),
                s["protocol"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    roles.sort();
    assert_eq!(
        roles,
        [
            (
                "player".into(),
                "mediakit::HttpSession".into(),
                "http".into()
            ),
            (
                "player".into(),
                "mediakit::RtmpSession".into(),
                "rtmp".into()
            ),
            (
                "publisher".into(),
                "mediakit::RtmpSession".into(),
                "rtmp".into()
            ),
        ]
    );
    // Both viewers read the rtmp schema (HTTP-FLV is the rtmp source over HTTP).
    let players = api.call("getMediaPlayerList", &args).await;
    let players = players["data"].as_array().expect("array").clone();
    assert_eq!(players.len(), 2);
    for p in &players {
        assert_eq!(
            keys(p),
            [
                "identifier",
                "local_ip",
                "local_port",
                "peer_ip",
                "peer_port",
                "typeid"
            ]
        );
    }
    let rtsp_args = [
        ("schema", "rtsp"),
        ("vhost", "__defaultVhost__"),
        ("app", "live"),
        ("stream", "api"),
    ];
    assert_eq!(
        api.call("getMediaPlayerList", &rtsp_args).await,
        json!({"code": 0, "data": []})
    );
    let flv_id = sessions
        .iter()
        .find(|s| s["protocol"] == "http")
        .expect("flv")["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // kick_session ends the FLV viewer at once, and on_flow_report tells the backend.
    assert_eq!(
        api.call("kick_session", &[("id", &flv_id)]).await,
        json!({"code": 0})
    );
    assert!(
        exits_within(&mut flv_viewer, Duration::from_secs(10)).await,
        "the kicked viewer still plays"
    );
    let reports = backend
        .wait_for("on_flow_report", 1, Duration::from_secs(10), |c| {
            c.body["id"] == json!(flv_id)
        })
        .await;
    assert_eq!(reports[0].body["player"], true);
    assert_eq!(wait_sessions(&api, 2).await.len(), 2);
    assert_eq!(
        api.call("kick_session", &[("id", &flv_id)]).await,
        json!({"code": -1, "msg": "can not find the target"})
    );

    // close_stream without force refuses a stream with a viewer; with force it ends it.
    let refused = api.call("close_stream", &args).await;
    assert_eq!(
        refused,
        json!({"code": -1, "msg": "close failed", "result": -1})
    );
    let forced = [args.as_slice(), &[("force", "1")]].concat();
    assert_eq!(
        api.call("close_stream", &forced).await,
        json!({"code": 0, "result": 0, "msg": "success"})
    );
    assert!(
        exits_within(&mut rtmp_viewer, Duration::from_secs(10)).await,
        "the viewer of a closed stream still plays"
    );
    assert!(
        exits_within(&mut publisher, Duration::from_secs(10)).await,
        "the publisher of a closed stream still sends"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while api.call("isMediaOnline", &args).await["online"] == true {
        assert!(
            tokio::time::Instant::now() < deadline,
            "closed stream still online"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_streams_and_kick_sessions_by_filter() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server().await;
    let api = Api::of(&server);
    let mut a = ffmpeg_publish(&rtmp_url(&server, "live/a"), &["-stream_loop", "-1"]);
    let mut b = ffmpeg_publish(&rtmp_url(&server, "live/b"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "a").expect("key"), 2).await;
    wait_live(&server, &StreamKey::new("live", "b").expect("key"), 2).await;
    let mut viewer = ffmpeg_view(&http_url(&server, "live/b.live.flv"));
    wait_sessions(&api, 3).await;
    // kick_sessions by the HTTP port: the FLV viewer only.
    let http_port = server.http_addr.expect("http").port().to_string();
    assert_eq!(
        api.call("kick_sessions", &[("local_port", &http_port)])
            .await,
        json!({"code": 0, "count_hit": 1})
    );
    assert!(exits_within(&mut viewer, Duration::from_secs(10)).await);
    wait_sessions(&api, 2).await;
    // close_streams of one stream: each of its schemas is a hit.
    let one = api
        .call("close_streams", &[("stream", "a"), ("force", "1")])
        .await;
    assert_eq!(one, json!({"code": 0, "count_hit": 2, "count_closed": 2}));
    assert!(exits_within(&mut a, Duration::from_secs(10)).await);
    let rest = api
        .call("close_streams", &[("app", "live"), ("force", "true")])
        .await;
    assert_eq!(rest, json!({"code": 0, "count_hit": 2, "count_closed": 2}));
    assert!(exits_within(&mut b, Duration::from_secs(10)).await);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_config_is_read_and_written_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.ini");
    std::fs::write(
        &path,
        "; our servers\n[hook]\n; the backend\non_play=\ntimeoutSec=10\n",
    )
    .expect("write");
    let loaded = server::config::Config::load(Some(&path), std::iter::empty()).expect("load");
    let live = server::config::Live::new(loaded.config, loaded.file);
    let server = start_server_with(|o| {
        let mut fresh = server::Options::from_live(live.clone());
        fresh.rtmp_addr = o.rtmp_addr;
        fresh.http_addr = o.http_addr;
        fresh.rtsp_addr = o.rtsp_addr;
        fresh.turn_addr = None;
        *o = fresh;
    })
    .await;
    let api = Api::of(&server);
    // The generated secret went to the file too (ZLMediaKit writes it back as well).
    let with_secret = std::fs::read_to_string(&path).expect("read back");
    assert_eq!(
        with_secret,
        format!(
            "; our servers\n[hook]\n; the backend\non_play=\ntimeoutSec=10\n\n# REST API (`/index/api/*`).\n[api]\n# Required `secret` argument; empty or ZLMediaKit's default = random, logged at start.\nsecret={}\n",
            api.secret
        )
    );
    let config = api.call("getServerConfig", &[]).await;
    assert_eq!(keys(&config), ["code", "data"]);
    let flat = config["data"].as_array().expect("array");
    assert_eq!(flat.len(), 1);
    let mut expected: Vec<String> = server::config::Config::keys()
        .iter()
        .map(|k| k.path.to_owned())
        .collect();
    expected.sort();
    assert_eq!(keys(&flat[0]), expected);
    assert!(flat[0]
        .as_object()
        .expect("object")
        .values()
        .all(Value::is_string));
    assert_eq!(flat[0]["hook.timeoutSec"], "10");
    assert_eq!(flat[0]["api.secret"], json!(api.secret));

    // Two keys changed, one unchanged, one unknown (skipped); the file keeps its comments.
    let same = flat[0]["rtmp.handshakeSecond"]
        .as_str()
        .expect("str")
        .to_owned();
    let set = api
        .call(
            "setServerConfig",
            &[
                ("hook.on_play", "http://127.0.0.1:1/play"),
                ("HOOK.timeoutSec", "3"),
                ("rtmp.handshakeSecond", &same),
                ("no.such", "1"),
            ],
        )
        .await;
    assert_eq!(set, json!({"code": 0, "changed": 2}));
    let text = std::fs::read_to_string(&path).expect("read back");
    assert_eq!(text, format!("; our servers\n[hook]\n; the backend\non_play=http://127.0.0.1:1/play\ntimeoutSec=3\n\n# REST API (`/index/api/*`).\n[api]\n# Required `secret` argument; empty or ZLMediaKit's default = random, logged at start.\nsecret={}\n", api.secret));
    assert_eq!(
        api.call("getServerConfig", &[]).await["data"][0]["hook.timeoutSec"],
        "3"
    );
    // A value the key cannot take changes nothing.
    let bad = api
        .call(
            "setServerConfig",
            &[("hook.timeoutSec", "soon"), ("hook.retry", "5")],
        )
        .await;
    assert_eq!(bad["code"], -300, "{bad}");
    assert_eq!(std::fs::read_to_string(&path).expect("read back"), text);
    assert_eq!(
        api.call("getServerConfig", &[]).await["data"][0]["hook.retry"],
        flat[0]["hook.retry"]
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_snap_answers_a_jpeg_of_the_latest_keyframe() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server().await;
    let api = Api::of(&server);
    let _publisher = ffmpeg_publish(&rtmp_url(&server, "live/snap"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "snap").expect("key"), 2).await;
    let snap = |url: String, expire: &'static str| {
        let api = &api;
        async move {
            api.client
                .get(api.url("getSnap"))
                .query(&[
                    ("secret", api.secret.as_str()),
                    ("url", url.as_str()),
                    ("timeout_sec", "10"),
                    ("expire_sec", expire),
                ])
                .send()
                .await
                .expect("getSnap")
        }
    };
    // Any of the stream's URLs names it; the host is not contacted.
    let resp = snap("rtmp://192.0.2.1/live/snap".into(), "30").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"image/jpeg"[..])
    );
    let jpeg = resp.bytes().await.expect("body");
    assert!(jpeg.starts_with(&[0xff, 0xd8]), "a JPEG");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("snap.jpg");
    std::fs::write(&file, &jpeg).expect("write");
    let probe = ffprobe(file.to_str().expect("utf-8"), 0).await;
    assert_eq!(codecs(&probe), ["mjpeg"]);
    assert_eq!(
        (
            &probe["streams"][0]["width"],
            &probe["streams"][0]["height"]
        ),
        (&json!(320), &json!(240))
    );
    // Within expire_sec the same picture comes from the cache; expire_sec=0 makes a new one.
    let again = snap(http_url(&server, "live/snap.live.flv"), "30").await;
    assert_eq!(again.bytes().await.expect("body"), jpeg);
    let fresh = snap(http_url(&server, "live/snap/hls.m3u8"), "0").await;
    assert_eq!(fresh.status(), 200);
    assert!(fresh
        .bytes()
        .await
        .expect("body")
        .starts_with(&[0xff, 0xd8]));
    // A stream that is not live, a URL that names none, missing arguments.
    let offline = json_of(snap("rtmp://127.0.0.1/live/none".into(), "0").await).await;
    assert_eq!(
        offline,
        json!({"code": -500, "msg": "can not find the stream"})
    );
    let bad = json_of(snap("not a url".into(), "0").await).await;
    assert_eq!(bad["code"], -300, "{bad}");
    let missing = api.call("getSnap", &[("url", "rtmp://h/live/snap")]).await;
    assert_eq!(
        missing,
        json!({"code": -300, "msg": "Required parameter missed: \"url\", \"timeout_sec\", \"expire_sec\""})
    );
    // setServerConfig never sets the program getSnap runs.
    let set = api
        .call("setServerConfig", &[("ffmpeg.bin", "/bin/sh")])
        .await;
    assert_eq!(set, json!({"code": 0, "changed": 0}));
    assert_eq!(server.config.get().ffmpeg.bin, "ffmpeg");
    server.shutdown().await;
}
