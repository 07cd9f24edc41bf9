//! An in-memory client+server pair (quinn's `Pair`) at a fixed simulated time: what these tests
//! check never waits long enough for the server's clocks (`src/server/tests.rs` tests those).
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use rtmp::flv::FlvReader;
use rtmp::handshake::RANDOM_SIZE;
use rtmp::{client, server};
use std::time::Instant;

/// The FLV file ffmpeg wrote from the captured publish (see tests/data/*.md).
pub const FFMPEG_FLV: &[u8] = include_bytes!("../data/ffmpeg5_h264_aac.flv");
/// The client->server bytes of a real ffmpeg publish.
pub const FFMPEG_PUBLISH: &[u8] = include_bytes!("../data/ffmpeg5_publish_h264_aac.bin");

/// One connection: a client session, a server session and the bytes each sent.
pub struct Pair {
    pub client: client::Session,
    pub server: server::Session,
    /// Everything the client wrote, in order: a replayable transcript.
    pub client_bytes: Vec<u8>,
    pub client_events: Vec<client::Event>,
    pub server_events: Vec<server::Event>,
    /// Largest piece the server's output reaches the client in, like a socket read size.
    pub read_size: usize,
    /// The simulated time every input and answer happens at.
    pub now: Instant,
}

impl Pair {
    pub fn new(client_config: client::Config, server_config: server::Config) -> Self {
        let now = Instant::now();
        Pair {
            now,
            client: client::Session::new(client_config, [0x11; RANDOM_SIZE]),
            server: server::Session::new(server_config, [0x22; RANDOM_SIZE], now),
            client_bytes: Vec::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
            read_size: usize::MAX,
        }
    }

    pub fn default_pair() -> Self {
        Pair::new(client::Config::default(), server::Config::default())
    }

    /// Moves bytes both ways until neither side has anything to say. `policy` sees each server
    /// event (and may answer it, at the time it is given) before it is recorded.
    pub fn pump(&mut self, mut policy: impl FnMut(Instant, &mut server::Session, &server::Event)) {
        let mut wire = BytesMut::new();
        for _ in 0..1000 {
            let mut moved = false;
            while self.client.poll_transmit(&mut wire) {
                let b = wire.split();
                self.client_bytes.extend_from_slice(&b);
                self.server
                    .handle_input(self.now, &b)
                    .expect("server accepts client bytes");
                moved = true;
            }
            while let Some(ev) = self.server.poll_event() {
                policy(self.now, &mut self.server, &ev);
                self.server_events.push(ev);
            }
            while self.server.poll_transmit(&mut wire) {
                let b = wire.split();
                for piece in b.chunks(self.read_size) {
                    self.client
                        .handle_input(piece)
                        .expect("client accepts server bytes");
                }
                moved = true;
            }
            while let Some(ev) = self.client.poll_event() {
                self.client_events.push(ev);
            }
            if !moved {
                return;
            }
        }
        panic!("the pair never went quiet");
    }

    /// Pumps, accepting every publish and play.
    pub fn pump_accept(&mut self) {
        self.pump(accept_all);
    }

    pub fn take_client_events(&mut self) -> Vec<client::Event> {
        std::mem::take(&mut self.client_events)
    }

    pub fn take_server_events(&mut self) -> Vec<server::Event> {
        std::mem::take(&mut self.server_events)
    }
}

pub fn accept_all(now: Instant, s: &mut server::Session, ev: &server::Event) {
    match ev {
        server::Event::PublishRequested { stream_id, .. } => s.accept_publish(now, *stream_id),
        server::Event::PlayRequested { stream_id, .. } => s.accept_play(now, *stream_id),
        _ => {}
    }
}

/// The tags of the ffmpeg-written FLV file: (tag type, timestamp, body).
pub fn ffmpeg_tags() -> Vec<(u8, u32, Bytes)> {
    FlvReader::new(Bytes::from_static(FFMPEG_FLV))
        .expect("FLV header")
        .map(|t| t.map(|t| (t.tag_type, t.timestamp, t.body)))
        .collect::<Result<_, _>>()
        .expect("FLV tags")
}

/// Publishes `tags` through `pair.client` (connect, publish, media) and pumps.
pub fn publish_tags(pair: &mut Pair, name: &str, tags: &[(u8, u32, Bytes)]) {
    pair.client.connect("live", "rtmp://127.0.0.1/live");
    pair.client.publish(name);
    pair.pump_accept();
    assert!(
        pair.client_events.contains(&client::Event::PublishStarted),
        "{:?}",
        pair.client_events
    );
    for (tag_type, ts, body) in tags {
        match tag_type {
            8 => pair.client.send_audio(*ts, body),
            9 => pair.client.send_video(*ts, body),
            18 => pair.client.send_metadata(body),
            _ => {}
        }
    }
    pair.pump_accept();
}

/// Feeds `bytes` to a fresh server session in the given pieces and returns its events.
pub fn replay<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Vec<server::Event> {
    let now = Instant::now();
    let mut s = server::Session::new(server::Config::default(), [0x33; RANDOM_SIZE], now);
    let mut events = Vec::new();
    let mut out = BytesMut::new();
    for p in pieces {
        s.handle_input(now, p).expect("replay input");
        events.extend(std::iter::from_fn(|| s.poll_event()));
        let _ = s.poll_transmit(&mut out);
        out.clear();
    }
    events
}
