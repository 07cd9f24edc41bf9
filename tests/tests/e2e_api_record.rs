//! Recording through the REST API: startRecord on a stream ffmpeg publishes (recording off by
//! config), isRecording and getMediaList say so, stopRecord closes the file and fires
//! on_record_mp4 at a real backend, getMP4RecordFile lists the day and the file, the file
//! plays in ffprobe, and deleteRecordDirectory removes it without reaching outside.

use e2e::api::Api;
use e2e::backend::Backend;
use e2e::*;
use media::StreamKey;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_stop_list_and_delete_a_recording() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let save = dir.path().to_str().expect("utf-8").to_owned();
    let backend = Backend::start().await;
    let server = start_server_with(|o| {
        o.hooks = backend.config();
        o.protocol.mp4_save_path = dir.path().to_owned();
        o.config
            .set([("protocol.mp4_save_path", save.as_str())])
            .expect("set");
    })
    .await;
    let api = Api::of(&server);
    let key = [
        ("vhost", "__defaultVhost__"),
        ("app", "live"),
        ("stream", "rec"),
    ];
    let mp4 = [&[("type", "1")][..], &key].concat();

    // Not live yet: -500.
    assert_eq!(
        api.call("startRecord", &mp4).await,
        json!({"code": -500, "msg": "can not find the stream"})
    );
    let _publisher = ffmpeg_publish(&rtmp_url(&server, "live/rec"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "rec").expect("key"), 2).await;
    assert_eq!(
        api.call("isRecording", &mp4).await,
        json!({"code": 0, "status": false})
    );
    // A type that is none of ZLMediaKit's.
    let odd = [&[("type", "7")][..], &key].concat();
    assert_eq!(api.call("startRecord", &odd).await["code"], -300);

    assert_eq!(
        api.call("startRecord", &mp4).await,
        json!({"code": 0, "msg": "success", "result": true})
    );
    // Starting again is not an error and starts nothing new.
    assert_eq!(
        api.call("startRecord", &mp4).await,
        json!({"code": 0, "msg": "success", "result": true})
    );
    assert_eq!(
        api.call("isRecording", &mp4).await,
        json!({"code": 0, "status": true})
    );
    let listed = api.call("getMediaList", &[("schema", "rtmp")]).await;
    assert_eq!(listed["data"][0]["isRecordingMP4"], true);

    // Record ~3 s, then stop: the file is closed and reported.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        api.call("stopRecord", &mp4).await,
        json!({"code": 0, "msg": "success", "result": true})
    );
    let hooks = backend
        .wait_for("on_record_mp4", 1, Duration::from_secs(15), |_| true)
        .await;
    assert_eq!(hooks.len(), 1);
    let body = &hooks[0].body;
    assert_eq!(
        api.call("isRecording", &mp4).await,
        json!({"code": 0, "status": false})
    );
    let day = body["folder"]
        .as_str()
        .and_then(|f| f.rsplit('/').next())
        .expect("folder")
        .to_owned();
    let file = body["file_name"].as_str().expect("file name").to_owned();
    let stream_dir = format!(
        "{}/record/live/rec/",
        std::path::absolute(dir.path()).expect("abs").display()
    );

    // getMP4RecordFile: the month lists the day, the day lists the file.
    let month = api
        .call(
            "getMP4RecordFile",
            &[&key[..], &[("period", &day[..7])]].concat(),
        )
        .await;
    assert_eq!(
        month,
        json!({"code": 0, "data": {"rootPath": stream_dir, "paths": [day]}})
    );
    let files = api
        .call(
            "getMP4RecordFile",
            &[&key[..], &[("period", day.as_str())]].concat(),
        )
        .await;
    assert_eq!(
        files,
        json!({"code": 0, "data": {"rootPath": format!("{stream_dir}{day}/"), "paths": [file]}})
    );
    let path = format!("{stream_dir}{day}/{file}");
    let probe = ffprobe(&path, 0).await;
    assert_eq!(codecs(&probe), ["aac", "h264"]);

    // Nothing outside the stream's folder can be named.
    for (name, value) in [
        ("period", "../.."),
        ("period", "2026-12-03/.."),
        ("name", "../x"),
    ] {
        let mut args = key.to_vec();
        if name == "name" {
            args.push(("period", day.as_str()));
        }
        args.push((name, value));
        let answer = api.call("deleteRecordDirectory", &args).await;
        assert_eq!(answer["code"], -300, "{name}={value}: {answer}");
    }
    let other = api
        .call(
            "deleteRecordDirectory",
            &[
                ("vhost", "__defaultVhost__"),
                ("app", ".."),
                ("stream", "rec"),
                ("period", day.as_str()),
            ],
        )
        .await;
    assert_eq!(other["code"], -300, "{other}");
    // The file, then an absent one.
    let one = [
        &key[..],
        &[("period", day.as_str()), ("name", file.as_str())],
    ]
    .concat();
    assert_eq!(
        api.call("deleteRecordDirectory", &one).await,
        json!({"code": 0, "path": path})
    );
    assert!(!std::path::Path::new(&path).exists());
    assert_eq!(
        api.call("deleteRecordDirectory", &one).await,
        json!({"code": -1, "path": path})
    );
    // The day folder is still there (empty), and goes as a whole.
    let whole = [&key[..], &[("period", day.as_str())]].concat();
    assert_eq!(
        api.call("deleteRecordDirectory", &whole).await,
        json!({"code": 0, "path": format!("{stream_dir}{day}/")})
    );
    assert_eq!(
        api.call(
            "getMP4RecordFile",
            &[&key[..], &[("period", &day[..7])]].concat()
        )
        .await,
        json!({"code": 0, "data": {"rootPath": stream_dir, "paths": []}})
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_recording_writes_a_keep_all_playlist_to_disk() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server_with(|o| o.protocol.hls_save_path = dir.path().to_owned()).await;
    let api = Api::of(&server);
    let key = [
        ("vhost", "__defaultVhost__"),
        ("app", "live"),
        ("stream", "hlsrec"),
    ];
    let ts = [&[("type", "0")][..], &key].concat();
    let _publisher = ffmpeg_publish(&rtmp_url(&server, "live/hlsrec"), &["-stream_loop", "-1"]);
    wait_live(&server, &StreamKey::new("live", "hlsrec").expect("key"), 2).await;
    assert_eq!(
        api.call("startRecord", &ts).await,
        json!({"code": 0, "msg": "success", "result": true})
    );
    assert_eq!(
        api.call("isRecording", &ts).await,
        json!({"code": 0, "status": true})
    );
    let fmp4 = [&[("type", "2")][..], &key].concat();
    assert_eq!(
        api.call("isRecording", &fmp4).await,
        json!({"code": 0, "status": false})
    );
    let listed = api.call("getMediaList", &[("schema", "rtmp")]).await;
    assert_eq!(
        (
            &listed["data"][0]["isRecordingHLS"],
            &listed["data"][0]["isRecordingMP4"]
        ),
        (&json!(true), &json!(false))
    );
    // Nobody watches HLS, yet segments and the playlist reach the disk.
    let playlist = dir.path().join("live/hlsrec/hls.m3u8");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&playlist).unwrap_or_default();
        if text.matches("#EXTINF").count() >= 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no HLS on disk: {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let probe = ffprobe(playlist.to_str().expect("utf-8"), 0).await;
    assert_eq!(codecs(&probe), ["aac", "h264"]);
    assert_eq!(
        api.call("stopRecord", &ts).await,
        json!({"code": 0, "msg": "success", "result": true})
    );
    assert_eq!(
        api.call("isRecording", &ts).await,
        json!({"code": 0, "status": false})
    );
    assert!(playlist.exists(), "what was recorded stays");
    server.shutdown().await;
}
