//! HTTP-FLV has two paths through the HTTP listener: a complete `GET ….live.flv HTTP/1.1` head
//! in the connection's first read is served on the socket itself, anything else (a head split
//! over several reads, HTTP/1.0) by hyper. A player must not be able to tell them apart: the
//! same status, the same headers, the same FLV; refusals as the router gives them.

use e2e::*;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// What a player sees of a response: the status line, every header but `date` (lowercased
/// names), and the first `want` body bytes after de-chunking.
#[derive(Debug, PartialEq)]
struct Seen {
    status: String,
    headers: BTreeMap<String, String>,
    dated: bool,
    body: Vec<u8>,
}

/// Sends `parts` of a request (with a pause between them, so they arrive as separate reads)
/// and reads the response head and the first `want` bytes of its body.
async fn get(addr: std::net::SocketAddr, parts: &[&str], want: usize) -> Seen {
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    socket.set_nodelay(true).expect("nodelay");
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        socket.write_all(part.as_bytes()).await.expect("send");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = tokio::time::timeout_at(deadline, socket.read(&mut buf))
            .await
            .expect("a response head in time")
            .expect("read");
        assert!(
            n > 0,
            "closed before the head: {:?}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8(raw[..head_end].to_vec()).expect("utf-8 head");
    let mut lines = head.split("\r\n");
    let status = lines.next().expect("status line").to_owned();
    let mut headers = BTreeMap::new();
    let mut dated = false;
    for line in lines {
        let (name, value) = line.split_once(':').expect("a header line");
        let name = name.trim().to_ascii_lowercase();
        if name == "date" {
            dated = true;
            continue;
        }
        assert!(
            headers
                .insert(name.clone(), value.trim().to_owned())
                .is_none(),
            "{name} sent twice"
        );
    }
    let mut rest = raw[head_end + 4..].to_vec();
    let chunked = headers.get("transfer-encoding").map(String::as_str) == Some("chunked");
    let mut body = Vec::new();
    let length: Option<usize> = headers
        .get("content-length")
        .map(|l| l.parse().expect("length"));
    loop {
        if chunked {
            // Whole chunks only: `size\r\n data \r\n`.
            while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
                let size = usize::from_str_radix(
                    std::str::from_utf8(&rest[..line_end]).expect("chunk size"),
                    16,
                )
                .expect("hex chunk size");
                if rest.len() < line_end + 2 + size + 2 {
                    break;
                }
                body.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
                assert_eq!(&rest[line_end + 2 + size..line_end + 4 + size], b"\r\n");
                rest.drain(..line_end + 4 + size);
            }
        } else {
            body.append(&mut rest);
        }
        if body.len() >= want || length.is_some_and(|l| body.len() >= l) {
            break;
        }
        let n = tokio::time::timeout_at(deadline, socket.read(&mut buf))
            .await
            .expect("the body in time")
            .expect("read");
        if n == 0 {
            break;
        }
        rest.extend_from_slice(&buf[..n]);
    }
    body.truncate(want);
    Seen {
        status,
        headers,
        dated,
        body,
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_paths_answer_alike() {
    if !have_ffmpeg() {
        return;
    }
    let server = start_server_with(|o| o.max_stream_wait = Duration::from_millis(300)).await;
    let addr = server.http_addr.expect("http");
    let mut publisher = publish_looped(&server, "live/a").await;

    let request = "GET /live/a.live.flv HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: t\r\n\r\n";
    // The FLV file header (audio and video) and PreviousTagSize0: 13 bytes.
    let flv_header = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
    let playing = Seen {
        status: "HTTP/1.1 200 OK".into(),
        headers: map(&[
            ("access-control-allow-origin", "*"),
            ("cache-control", "no-cache"),
            ("content-type", "video/x-flv"),
            ("transfer-encoding", "chunked"),
        ]),
        dated: true,
        body: flv_header.clone(),
    };
    // In one read: served on the socket.
    assert_eq!(
        get(addr, &[request], 13).await,
        playing,
        "the whole head at once"
    );
    // Split after the request line: hyper serves it.
    let (line, rest) = request.split_at(request.find("\r\n").expect("line") + 2);
    assert_eq!(
        get(addr, &[line, rest], 13).await,
        playing,
        "the head in two reads"
    );

    // HTTP/1.0 (hyper): no chunking, the same FLV.
    let old = get(addr, &["GET /live/a.live.flv HTTP/1.0\r\n\r\n"], 13).await;
    assert_eq!(old.status, "HTTP/1.0 200 OK");
    assert_eq!(
        old.headers,
        map(&[
            ("access-control-allow-origin", "*"),
            ("cache-control", "no-cache"),
            ("content-type", "video/x-flv"),
        ])
    );
    assert_eq!(old.body, flv_header);

    // A stream nobody publishes: the router's 404, on both paths.
    let missing = "GET /live/none.live.flv HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let (line, rest) = missing.split_at(missing.find("\r\n").expect("line") + 2);
    for seen in [
        get(addr, &[missing], 64).await,
        get(addr, &[line, rest], 64).await,
    ] {
        assert_eq!(seen.status, "HTTP/1.1 404 Not Found");
        assert_eq!(
            seen.headers.get("content-type").map(String::as_str),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(
            seen.headers.get("content-length").map(String::as_str),
            Some("16")
        );
        assert_eq!(
            seen.headers
                .get("access-control-allow-origin")
                .map(String::as_str),
            Some("*")
        );
        assert!(seen.dated);
        assert_eq!(seen.body, b"stream not found");
    }
    // Bad stream names (a dot segment, a name past the length bound): the router's 400.
    let long = format!(
        "GET /live/{}.live.flv HTTP/1.1\r\nHost: h\r\n\r\n",
        "x".repeat(300)
    );
    for request in [
        "GET /live/../a.live.flv HTTP/1.1\r\nHost: h\r\n\r\n",
        long.as_str(),
    ] {
        let (line, rest) = request.split_at(request.find("\r\n").expect("line") + 2);
        for seen in [
            get(addr, &[request], 256).await,
            get(addr, &[line, rest], 256).await,
        ] {
            assert_eq!(seen.status, "HTTP/1.1 400 Bad Request", "{seen:?}");
            assert!(
                String::from_utf8_lossy(&seen.body).starts_with("bad stream name: "),
                "{seen:?}"
            );
        }
    }

    publisher.kill().await.expect("kill publisher");
    server.shutdown().await;
}
