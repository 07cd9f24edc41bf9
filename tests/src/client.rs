//! Our own clients for what ffmpeg 5.1 cannot do: an RTMP publisher and player driving
//! `rtmp::client::Session` over a real socket, a raw HTTP-FLV reader, and the H.265 helpers
//! (Annex B ↔ length-prefixed NAL units, an x265 sample) for Enhanced RTMP `hvc1` and legacy
//! FLV CodecID 12, which ffmpeg can only write from 6.1 on.

use bytes::{Buf, Bytes, BytesMut};
use media::{hevc, Codec, Frame, TrackInfo};
use rtmp::client::{Config, Event, Session};
use rtmp::flv::{DemuxEvent, Demuxer, FlvReader, TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO};
use rtmp::handshake::RANDOM_SIZE;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long connecting, publishing or starting to play may take before a test fails.
const SETUP_LIMIT: Duration = Duration::from_secs(10);

/// One RTMP client connection: a socket driven through the sans-IO session (the drive loop of
/// `crates/loadgen`).
pub struct RtmpClient {
    socket: TcpStream,
    session: Session,
    buf: Vec<u8>,
}

impl RtmpClient {
    /// Connects to `rtmp://{addr}/{app}` and waits for `connect`'s `_result`.
    pub async fn connect(addr: SocketAddr, app: &str) -> RtmpClient {
        let socket = TcpStream::connect(addr).await.expect("connect to RTMP");
        Self::over(socket, addr, app).await
    }

    /// Like [`RtmpClient::connect`], over a socket the caller connected (e.g. with a small
    /// receive buffer).
    pub async fn over(socket: TcpStream, addr: SocketAddr, app: &str) -> RtmpClient {
        socket.set_nodelay(true).expect("nodelay");
        // The handshake's random field needs no real randomness here.
        let mut session = Session::new(Config::default(), [0x5a; RANDOM_SIZE]);
        session.connect(app, &format!("rtmp://{addr}/{app}"));
        let mut client = RtmpClient {
            socket,
            session,
            buf: vec![0; 64 * 1024],
        };
        client.flush().await;
        client.wait_for(|e| matches!(e, Event::Connected)).await;
        client
    }

    /// Publishes `name` and waits for `NetStream.Publish.Start`.
    pub async fn publish(&mut self, name: &str) {
        self.session.publish(name);
        self.flush().await;
        self.wait_for(|e| matches!(e, Event::PublishStarted)).await;
    }

    /// Publishes `name`: `Ok` on `NetStream.Publish.Start`, `Err((code, description))` when
    /// refused.
    pub async fn try_publish(&mut self, name: &str) -> Result<(), (String, String)> {
        self.session.publish(name);
        self.flush().await;
        self.outcome(|e| matches!(e, Event::PublishStarted)).await
    }

    /// Plays `name`: `Ok` on `NetStream.Play.Start`, `Err((code, description))` when refused.
    pub async fn try_play(&mut self, name: &str) -> Result<(), (String, String)> {
        self.session.play(name);
        self.flush().await;
        self.outcome(|e| matches!(e, Event::PlayStarted)).await
    }

    async fn outcome(&mut self, want: impl Fn(&Event) -> bool) -> Result<(), (String, String)> {
        let deadline = Instant::now() + SETUP_LIMIT;
        loop {
            match self.next_event(deadline).await {
                Some(Event::Rejected { code, description }) => return Err((code, description)),
                Some(e) if want(&e) => return Ok(()),
                Some(_) => {}
                None => panic!("no answer from the server in time"),
            }
        }
    }

    /// Plays `name` and waits for `NetStream.Play.Start`. Media that arrives with it stays
    /// queued for [`RtmpClient::next_event`].
    pub async fn play(&mut self, name: &str) {
        self.session.play(name);
        self.flush().await;
        self.wait_for(|e| matches!(e, Event::PlayStarted)).await;
    }

    /// Sends one FLV tag body as an RTMP message: audio, video or `@setDataFrame` metadata.
    /// Then reads whatever the server sent meanwhile (acknowledgements, pings) without
    /// waiting, so its window never fills.
    pub async fn send_tag(&mut self, tag_type: u8, timestamp: u32, body: &Bytes) {
        match tag_type {
            TAG_AUDIO => self.session.send_audio(timestamp, body),
            TAG_VIDEO => self.session.send_video(timestamp, body),
            TAG_SCRIPT => self.session.send_metadata(body),
            other => panic!("not an FLV tag type: {other}"),
        }
        self.flush().await;
        loop {
            match self.socket.try_read(&mut self.buf) {
                Ok(0) => panic!("server closed the publisher's connection"),
                Ok(n) => {
                    self.session
                        .handle_input(&self.buf[..n])
                        .expect("server bytes parse");
                    while self.session.poll_event().is_some() {}
                    self.flush().await;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("publisher socket: {e}"),
            }
        }
    }

    /// The next event, reading from the socket as needed; `None` once the server closes the
    /// connection or `deadline` passes.
    pub async fn next_event(&mut self, deadline: Instant) -> Option<Event> {
        loop {
            if let Some(event) = self.session.poll_event() {
                return Some(event);
            }
            let read = tokio::time::timeout_at(deadline, self.socket.read(&mut self.buf));
            let n = match read.await {
                Ok(Ok(n)) if n > 0 => n,
                _ => return None,
            };
            self.session
                .handle_input(&self.buf[..n])
                .expect("server bytes parse");
            self.flush().await;
        }
    }

    /// Sends `FCUnpublish`/`deleteStream` and closes the socket.
    pub async fn close(mut self) {
        self.session.delete_stream();
        self.flush().await;
        let _ = self.socket.shutdown().await;
    }

    async fn flush(&mut self) {
        let mut out = bytes::BytesMut::new();
        if self.session.poll_transmit(&mut out) {
            self.socket.write_all(&out).await.expect("write to server");
        }
    }

    /// Reads until an event matching `want`; panics on a rejection, a close or after
    /// [`SETUP_LIMIT`].
    async fn wait_for(&mut self, want: impl Fn(&Event) -> bool) {
        let deadline = Instant::now() + SETUP_LIMIT;
        loop {
            let event = self
                .next_event(deadline)
                .await
                .expect("the server answered in time");
            if let Event::Rejected { code, description } = &event {
                panic!("rejected: {code} {description}");
            }
            if want(&event) {
                return;
            }
        }
    }
}

/// A publisher looping over a list of tags in a background task until stopped.
pub struct Publisher {
    stop: oneshot::Sender<()>,
    task: JoinHandle<u64>,
}

impl Publisher {
    /// Connects to `rtmp://{addr}/{app}`, publishes `name` (panicking here if refused), sends
    /// `headers` (metadata, sequence headers) once and then `tags` over and over, one every
    /// `pace`. Pass `n` adds `n * period_ms` to the tags' timestamps so the timeline goes on.
    pub async fn start(
        addr: SocketAddr,
        app: &str,
        name: &str,
        headers: Vec<(u8, Bytes)>,
        tags: Vec<(u8, u32, Bytes)>,
        period_ms: u32,
        pace: Duration,
    ) -> Publisher {
        assert!(!tags.is_empty(), "nothing to publish");
        let mut client = RtmpClient::connect(addr, app).await;
        client.publish(name).await;
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            for (tag_type, body) in &headers {
                client.send_tag(*tag_type, 0, body).await;
            }
            let mut tick = tokio::time::interval(pace);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut sent = 0u64;
            for pass in 0u32.. {
                for (tag_type, ts, body) in &tags {
                    tokio::select! {
                        _ = &mut stopped => {
                            client.close().await;
                            return sent;
                        }
                        _ = tick.tick() => {}
                    }
                    client
                        .send_tag(*tag_type, pass * period_ms + ts, body)
                        .await;
                    sent += 1;
                }
            }
            sent
        });
        Publisher { stop, task }
    }

    /// Drops the connection without unpublishing, as a publisher whose network fails.
    pub fn abort(self) {
        self.task.abort();
    }

    /// Stops publishing and closes the connection; returns how many tags were sent.
    pub async fn stop(self) -> u64 {
        let _ = self.stop.send(());
        self.task.await.expect("publisher task")
    }
}

/// What a player received, demuxed: tracks, frames and the raw headers of video tags.
#[derive(Debug, Default)]
pub struct Received {
    demuxer: Demuxer,
    /// Every track announcement, in order.
    pub tracks: Vec<TrackInfo>,
    /// Video frames, in order.
    pub video: Vec<Frame>,
    /// Audio frames, in order.
    pub audio: Vec<Frame>,
    /// The first byte of every video tag body (legacy CodecID or Enhanced RTMP header).
    pub video_tag_heads: Vec<u8>,
    /// `onMetaData` bodies.
    pub metadata: Vec<Bytes>,
}

impl Received {
    /// Takes one tag body as a player receives it.
    pub fn push(&mut self, tag_type: u8, timestamp: u32, body: Bytes) {
        let event = match tag_type {
            TAG_VIDEO => {
                if let Some(&head) = body.first() {
                    self.video_tag_heads.push(head);
                }
                self.demuxer.push_video(timestamp, &body)
            }
            TAG_AUDIO => self.demuxer.push_audio(timestamp, &body),
            TAG_SCRIPT => {
                self.metadata.push(body);
                return;
            }
            _ => return,
        };
        let first = event.expect("the server sends well-formed tags");
        for event in first.into_iter().chain(self.demuxer.pull()) {
            match event {
                DemuxEvent::Track(t) => self.tracks.push(t),
                DemuxEvent::Frame { frame, .. } => match frame.kind() {
                    media::TrackKind::Video => self.video.push(frame),
                    media::TrackKind::Audio => self.audio.push(frame),
                },
            }
        }
    }

    /// The current video track.
    pub fn video_track(&self) -> Option<&TrackInfo> {
        self.demuxer.video_track()
    }
}

/// Plays `name` over RTMP until `done` says so, the stream ends or `limit` passes.
pub async fn play_rtmp(
    addr: SocketAddr,
    app: &str,
    name: &str,
    limit: Duration,
    done: impl Fn(&Received) -> bool,
) -> Received {
    let deadline = Instant::now() + limit;
    let mut client = RtmpClient::connect(addr, app).await;
    client.play(name).await;
    let mut got = Received::default();
    while !done(&got) {
        match client.next_event(deadline).await {
            Some(Event::Video { timestamp, payload }) => got.push(TAG_VIDEO, timestamp, payload),
            Some(Event::Audio { timestamp, payload }) => got.push(TAG_AUDIO, timestamp, payload),
            Some(Event::Metadata { data }) => got.push(TAG_SCRIPT, 0, data),
            Some(Event::StreamEof) | None => break,
            Some(_) => {}
        }
    }
    client.close().await;
    got
}

/// Plays `url` (`http://host:port/path`) over HTTP-FLV with a plain HTTP/1.1 GET, decoding
/// chunked transfer encoding by hand, until `done` says so, the body ends or `limit` passes.
/// The tags are read with [`FlvReader`].
pub async fn play_http_flv(
    url: &str,
    limit: Duration,
    done: impl Fn(&Received) -> bool,
) -> Received {
    let deadline = Instant::now() + limit;
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut socket = TcpStream::connect(host).await.expect("connect to HTTP");
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    socket
        .write_all(request.as_bytes())
        .await
        .expect("send request");

    let mut raw = BytesMut::new();
    let mut buf = vec![0u8; 64 * 1024];
    let head_end = loop {
        if let Some(i) = find(&raw, b"\r\n\r\n") {
            break i;
        }
        assert!(
            read_until(&mut socket, &mut buf, &mut raw, deadline).await,
            "no HTTP response head from {url}"
        );
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{url}: {head}");
    let chunked = head
        .lines()
        .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
    raw.advance(head_end + 4);

    let mut chunks = Chunked::default();
    let mut body = BytesMut::new();
    let mut flv_header: Option<Bytes> = None;
    let mut got = Received::default();
    loop {
        let ended = if chunked {
            chunks.decode(&mut raw, &mut body)
        } else {
            body.extend_from_slice(&raw.split());
            false
        };
        if flv_header.is_none() && body.len() >= 13 {
            flv_header = Some(body.split_to(13).freeze());
        }
        if let Some(header) = &flv_header {
            take_tags(header, &mut body, &mut got);
        }
        if ended || done(&got) || !read_until(&mut socket, &mut buf, &mut raw, deadline).await {
            break;
        }
    }
    got
}

/// Appends one read's bytes to `raw`; false at the end of the stream or at `deadline`.
async fn read_until(
    socket: &mut TcpStream,
    buf: &mut [u8],
    raw: &mut BytesMut,
    deadline: Instant,
) -> bool {
    match tokio::time::timeout_at(deadline, socket.read(buf)).await {
        Ok(Ok(n)) if n > 0 => {
            raw.extend_from_slice(&buf[..n]);
            true
        }
        _ => false,
    }
}

/// Moves every complete tag at the start of `body` into `got`, reading them with
/// [`FlvReader`] over the file header followed by the pending bytes.
fn take_tags(header: &Bytes, body: &mut BytesMut, got: &mut Received) {
    let mut file = BytesMut::with_capacity(header.len() + body.len());
    file.extend_from_slice(header);
    file.extend_from_slice(body);
    let mut used = 0;
    for tag in FlvReader::new(file.freeze()).expect("an FLV header") {
        // A truncated last tag is an error here: the rest has not arrived yet.
        let Ok(tag) = tag else { break };
        let len = 11 + tag.body.len() + 4;
        if used + len > body.len() {
            break;
        }
        used += len;
        got.push(tag.tag_type, tag.timestamp, tag.body);
    }
    body.advance(used);
}

/// An HTTP/1.1 chunked transfer-coding decoder (RFC 9112 §7.1).
#[derive(Debug, Default)]
struct Chunked {
    /// Bytes left in the current chunk; `None` while reading a size line.
    left: Option<usize>,
}

impl Chunked {
    /// Decodes what it can of `raw` into `out`; true once the last chunk arrived.
    fn decode(&mut self, raw: &mut BytesMut, out: &mut BytesMut) -> bool {
        loop {
            match self.left {
                None => {
                    let Some(eol) = find(raw, b"\r\n") else {
                        return false;
                    };
                    let line = raw.split_to(eol + 2);
                    let line = String::from_utf8_lossy(&line[..eol]);
                    let size = line.split(';').next().unwrap_or_default().trim();
                    let size = usize::from_str_radix(size, 16).expect("a chunk size");
                    if size == 0 {
                        return true;
                    }
                    self.left = Some(size);
                }
                Some(0) => {
                    if raw.len() < 2 {
                        return false;
                    }
                    assert_eq!(&raw[..2], b"\r\n", "chunk data ends with CRLF");
                    raw.advance(2);
                    self.left = None;
                }
                Some(n) => {
                    if raw.is_empty() {
                        return false;
                    }
                    let k = n.min(raw.len());
                    out.extend_from_slice(&raw.split_to(k));
                    self.left = Some(n - k);
                }
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// H.265 NAL unit type (ITU-T H.265 §7.3.1.2).
pub fn hevc_nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0xff, |h| (h >> 1) & 0x3f)
}

/// NAL unit type of an access unit delimiter.
pub const HEVC_NAL_AUD: u8 = 35;

/// Whether a NAL unit type is an IRAP picture (BLA, IDR or CRA: 16..=21).
pub fn hevc_is_irap(nal_type: u8) -> bool {
    (16..=21).contains(&nal_type)
}

/// The NAL units of an Annex B byte stream (ITU-T H.265 Annex B), without start codes or
/// trailing zero bytes.
pub fn annexb_nals(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::with_capacity(starts.len());
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).map_or(data.len(), |&next| next - 3);
        let mut nal = &data[start..end];
        while let [rest @ .., 0] = nal {
            nal = rest;
        }
        if !nal.is_empty() {
            nals.push(nal);
        }
    }
    nals
}

/// NAL units with 4-byte big-endian length prefixes (the AVCC/hvcC layout FLV carries).
pub fn length_prefixed(nals: &[&[u8]]) -> Bytes {
    let mut out = BytesMut::new();
    for nal in nals {
        out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        out.extend_from_slice(nal);
    }
    out.freeze()
}

/// The NAL units of a payload with 4-byte length prefixes; panics if it is malformed.
pub fn split_length_prefixed(mut data: &[u8]) -> Vec<&[u8]> {
    let mut nals = Vec::new();
    while !data.is_empty() {
        let (len, rest) = data.split_at_checked(4).expect("a 4-byte NAL length");
        let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
        let (nal, rest) = rest.split_at_checked(len).expect("a whole NAL unit");
        nals.push(nal);
        data = rest;
    }
    nals
}

/// An Annex B stream a decoder can read: the parameter sets of `hvcc`, then every frame's NAL
/// units, each after a 4-byte start code.
pub fn hevc_annexb(hvcc: &[u8], frames: &[Frame]) -> Vec<u8> {
    let config = hevc::DecoderConfig::parse(hvcc).expect("a valid hvcC");
    assert_eq!(config.length_size, 4);
    let mut out = Vec::new();
    let parameter_sets = config.arrays.iter().flat_map(|(_, nals)| nals.iter());
    for nal in parameter_sets {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    }
    for frame in frames {
        for nal in split_length_prefixed(&frame.data) {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
        }
    }
    out
}

/// An H.265 stream ready to publish: its `hvcC` and its frames.
#[derive(Debug, Clone)]
pub struct HevcSample {
    /// The HEVCDecoderConfigurationRecord built from the stream's VPS, SPS and PPS.
    pub hvcc: Bytes,
    /// One frame per access unit, VCL NAL units only, `dts = i * 40` ms.
    pub frames: Vec<Frame>,
}

impl HevcSample {
    /// Encodes `seconds` of 352x288, 25 fps `testsrc` with libx265 (a keyframe every second,
    /// no B-frames, an AUD before every access unit) in a temp dir and splits it.
    pub fn encode(seconds: u32) -> HevcSample {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sample.hevc");
        let out = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc=size=352x288:rate=25"])
            .args(["-t", &seconds.to_string(), "-pix_fmt", "yuv420p"])
            .args(["-c:v", "libx265", "-x265-params"])
            .arg("keyint=25:min-keyint=25:bframes=0:aud=1:log-level=error")
            .args(["-f", "hevc"])
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .expect("run ffmpeg");
        assert!(
            out.status.success(),
            "ffmpeg could not encode HEVC: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let data = std::fs::read(&path).expect("read the HEVC sample");
        HevcSample::from_annexb(&data)
    }

    /// Splits an Annex B stream whose access units each start with an AUD.
    pub fn from_annexb(data: &[u8]) -> HevcSample {
        let (mut vps, mut sps, mut pps) = (None, None, None);
        let mut units: Vec<Vec<&[u8]>> = Vec::new();
        for nal in annexb_nals(data) {
            match hevc_nal_type(nal) {
                HEVC_NAL_AUD => units.push(Vec::new()),
                hevc::NAL_VPS => vps = vps.or(Some(nal)),
                hevc::NAL_SPS => sps = sps.or(Some(nal)),
                hevc::NAL_PPS => pps = pps.or(Some(nal)),
                // VCL NAL units (0..=31) make the picture; SEI and the rest are left out.
                t if t < 32 => units
                    .last_mut()
                    .expect("an AUD starts every access unit")
                    .push(nal),
                _ => {}
            }
        }
        let hvcc = hevc::DecoderConfig::build(
            vps.expect("a VPS"),
            sps.expect("an SPS"),
            pps.expect("a PPS"),
        )
        .expect("an hvcC from x265's parameter sets");
        let frames = units
            .iter()
            .filter(|nals| !nals.is_empty())
            .enumerate()
            .map(|(i, nals)| Frame {
                codec: Codec::H265,
                dts: i as u64 * 40,
                cts: 0,
                keyframe: nals.iter().any(|n| hevc_is_irap(hevc_nal_type(n))),
                data: length_prefixed(nals),
            })
            .collect();
        HevcSample { hvcc, frames }
    }
}

/// ffprobe's view of an H.265 elementary stream file, every frame decoded (`-count_frames`).
pub async fn ffprobe_hevc_file(path: &std::path::Path) -> serde_json::Value {
    let mut cmd = tokio::process::Command::new("ffprobe");
    cmd.args([
        "-v",
        "error",
        "-f",
        "hevc",
        "-count_frames",
        "-show_streams",
    ])
    .args(["-of", "json"])
    .arg(path);
    let out = crate::output_within(&mut cmd, Duration::from_secs(30)).await;
    assert!(
        out.status.success(),
        "ffprobe {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe json")
}
