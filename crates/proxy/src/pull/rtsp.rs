//! Pulling an `rtsp://` source (a camera, another server) as an RTSP player does, around the
//! sans-IO [`rtsp::client::Client`]: OPTIONS, DESCRIBE (Digest or Basic from the URL's
//! credentials), SETUP of the tracks the server can carry (TCP interleaved or a UDP port pair
//! each), PLAY; the RTP goes through an [`rtsp::demux::Demuxer`] into the [`Ingest`], and an
//! RTCP receiver report per track goes back every 5 s (RFC 3550 §6.4.2: many cameras take
//! them as the sign their player is still there).
//!
//! This file also holds what the RTSP push ([`crate::push::rtsp`]) shares: the URL
//! ([`Target`]), the TCP connection with its timeouts ([`Conn`]) and the UDP port pairs
//! ([`UdpPairs`]).
//!
//! Bounds: the client caps every message at [`rtsp::RtspConfig::max_message`] and sets up at
//! most one video and one audio track, so at most two port pairs; the read buffer is 64 KiB;
//! UDP datagrams wait in a queue of [`UDP_QUEUE`] and are dropped beyond it; every connect,
//! write and request has `opts.timeout`, and a playing source that sends nothing for
//! `opts.timeout` ends the attempt with [`ProxyError::Timeout`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use rtsp::client::{Client, ClientOptions, ClientTimeout, Event, Login, RtpOver};
use rtsp::demux::{DemuxEvent, Demuxer};
use rtsp::rtp::{Reception, Rtcp};
use rtsp::RtspConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use url::Url;

use crate::{AttemptOptions, Ingest, ProxyError, RtpTransport};

/// UDP datagrams queued from the socket tasks to the attempt; more are dropped.
pub(crate) const UDP_QUEUE: usize = 1024;
/// The read buffer: a message is at most 64 KiB, an interleaved frame 64 KiB + 4.
const READ_BUF: usize = 64 * 1024 + 4;
/// Receive buffer of an RTP socket: any UDP payload (65 507 bytes at most) fits.
const UDP_BUF_RTP: usize = 64 * 1024;
/// Receive buffer of an RTCP socket: compounds stay within the path MTU (RFC 3550 §6.1).
const UDP_BUF_RTCP: usize = 2 * 1024;
/// Tracks a session may bind UDP pairs for (the client asks for one video, one audio).
const MAX_UDP_TRACKS: usize = 4;
/// How often a playing attempt sends RTCP receiver reports.
const REPORT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);
/// The RTSP port when the URL has none (RFC 2326 §3.2).
const DEFAULT_PORT: u16 = 554;

/// An `rtsp://` URL split for the client.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The URL without its user and password: the Request-URI.
    pub(crate) request_url: String,
    /// The URL's user and password, percent-decoded.
    pub(crate) login: Option<Login>,
}

impl Target {
    pub(crate) fn parse(url: &Url) -> Result<Target, ProxyError> {
        if !url.scheme().eq_ignore_ascii_case("rtsp") {
            return Err(ProxyError::BadUrl(format!(
                "scheme {} is not rtsp",
                url.scheme()
            )));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| ProxyError::BadUrl("no host".into()))?;
        // An IPv6 literal comes bracketed; the socket wants it bare.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let login = if url.username().is_empty() {
            None
        } else {
            Some(Login {
                username: percent_decode(url.username())?,
                password: percent_decode(url.password().unwrap_or(""))?,
            })
        };
        Ok(Target {
            host,
            port: url.port().unwrap_or(DEFAULT_PORT),
            request_url: crate::redacted(url),
            login,
        })
    }
}

/// `%XX` escapes of a URL's user or password undone (RFC 3986 §2.1).
fn percent_decode(s: &str) -> Result<String, ProxyError> {
    let bad = || ProxyError::BadUrl("credentials are not valid percent-encoded UTF-8".into());
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// The client's settings for an attempt.
pub(crate) fn client_options(opts: &AttemptOptions) -> ClientOptions {
    ClientOptions {
        transport: match opts.rtp_transport {
            RtpTransport::Tcp => RtpOver::Tcp,
            RtpTransport::Udp => RtpOver::Udp,
        },
        request_timeout: opts.timeout,
        media_timeout: opts.timeout,
        user_agent: concat!("ferrostream/", env!("CARGO_PKG_VERSION")).into(),
        cnonce: format!("{:016x}", rand::random::<u64>()),
    }
}

/// What a client's refusal or timeout means for the attempt.
pub(crate) fn end_of(event: &Event) -> Option<ProxyError> {
    match event {
        Event::Refused { method, status } => {
            Some(ProxyError::Refused(format!("{method} answered {status}")))
        }
        Event::Ended => Some(ProxyError::Ended),
        Event::TimedOut { reason } => Some(ProxyError::Timeout(match reason {
            ClientTimeout::Silence => "the RTSP source sent nothing",
            _ => "the RTSP server did not answer",
        })),
        _ => None,
    }
}

/// Undecodable input from the server, or a response the client cannot use.
pub(crate) fn protocol(e: rtsp::Error) -> ProxyError {
    ProxyError::Protocol(e.to_string())
}

/// The time as the sans-IO client counts it; tokio's clock, so paused-time tests move it too.
pub(crate) fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Sleeps until `at`; never, when no clock runs.
pub(crate) async fn sleep_until(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// The RTSP connection of one attempt.
pub(crate) struct Conn {
    pub(crate) socket: TcpStream,
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    buf: BytesMut,
    pub(crate) out: BytesMut,
}

impl Conn {
    /// Connects within `opts.timeout`.
    pub(crate) async fn connect(
        target: &Target,
        opts: &AttemptOptions,
    ) -> Result<Conn, ProxyError> {
        let connect = TcpStream::connect((target.host.as_str(), target.port));
        let socket = tokio::time::timeout(opts.timeout, connect)
            .await
            .map_err(|_| ProxyError::Timeout("connecting to the RTSP server"))?
            .map_err(ProxyError::io("connecting to the RTSP server"))?;
        let _ = socket.set_nodelay(true);
        let peer = socket
            .peer_addr()
            .map_err(ProxyError::io("RTSP peer address"))?;
        let local = socket
            .local_addr()
            .map_err(ProxyError::io("RTSP local address"))?;
        Ok(Conn {
            socket,
            peer,
            local,
            buf: BytesMut::with_capacity(READ_BUF),
            out: BytesMut::new(),
        })
    }

    /// Writes the client's requests and whatever media is in `out`, within `opts.timeout`.
    pub(crate) async fn flush(
        &mut self,
        client: &mut Client,
        opts: &AttemptOptions,
    ) -> Result<(), ProxyError> {
        client.poll_transmit(&mut self.out);
        if self.out.is_empty() {
            return Ok(());
        }
        let out = self.out.split();
        tokio::time::timeout(opts.timeout, self.socket.write_all(&out))
            .await
            .map_err(|_| ProxyError::Timeout("the RTSP server takes nothing"))?
            .map_err(ProxyError::io("writing to the RTSP server"))
    }

    /// Reads once and hands the bytes to the client; EOF is `Err(eof)`.
    pub(crate) async fn read(
        &mut self,
        client: &mut Client,
        eof: fn() -> ProxyError,
    ) -> Result<(), ProxyError> {
        self.buf.clear();
        let n = self
            .socket
            .read_buf(&mut self.buf)
            .await
            .map_err(ProxyError::io("reading from the RTSP server"))?;
        if n == 0 {
            return Err(eof());
        }
        client.handle_input(now(), &self.buf).map_err(protocol)
    }
}

/// A datagram from one of an attempt's UDP sockets.
pub(crate) struct Datagram {
    pub(crate) track: usize,
    /// From the RTCP socket of the pair.
    pub(crate) rtcp: bool,
    pub(crate) data: Bytes,
}

/// One track's UDP port pair and the tasks reading it; dropping it closes both sockets.
pub(crate) struct UdpPair {
    pub(crate) rtp: Arc<UdpSocket>,
    pub(crate) rtcp: Arc<UdpSocket>,
    /// Where the server's RTP and RTCP for this track come from (and go to, for a push).
    pub(crate) server: Option<(SocketAddr, SocketAddr)>,
    readers: [JoinHandle<()>; 2],
}

impl Drop for UdpPair {
    fn drop(&mut self) {
        for reader in &self.readers {
            reader.abort();
        }
    }
}

/// The UDP port pairs of an attempt (one per track) and the queue their datagrams come on.
pub(crate) struct UdpPairs {
    pub(crate) pairs: Vec<Option<UdpPair>>,
    tx: mpsc::Sender<Datagram>,
    rx: mpsc::Receiver<Datagram>,
}

impl UdpPairs {
    pub(crate) fn new() -> UdpPairs {
        let (tx, rx) = mpsc::channel(UDP_QUEUE);
        UdpPairs {
            pairs: Vec::new(),
            tx,
            rx,
        }
    }

    /// Binds `track`'s even/odd pair on `local`, reading what `peer` sends to it; returns the
    /// RTP port.
    pub(crate) async fn bind(
        &mut self,
        track: usize,
        local: IpAddr,
        peer: IpAddr,
    ) -> Result<u16, ProxyError> {
        if track >= MAX_UDP_TRACKS {
            return Err(ProxyError::Protocol(format!("UDP asked for track {track}")));
        }
        let (rtp, rtcp) = udp_pair(local)
            .await
            .map_err(ProxyError::io("binding an RTP/RTCP port pair"))?;
        let port = rtp.local_addr().map_err(ProxyError::io("RTP port"))?.port();
        let (rtp, rtcp) = (Arc::new(rtp), Arc::new(rtcp));
        let readers = [
            tokio::spawn(udp_reader(
                Arc::clone(&rtp),
                peer,
                track,
                false,
                UDP_BUF_RTP,
                self.tx.clone(),
            )),
            tokio::spawn(udp_reader(
                Arc::clone(&rtcp),
                peer,
                track,
                true,
                UDP_BUF_RTCP,
                self.tx.clone(),
            )),
        ];
        if self.pairs.len() <= track {
            self.pairs.resize_with(track + 1, || None);
        }
        if let Some(slot) = self.pairs.get_mut(track) {
            *slot = Some(UdpPair {
                rtp,
                rtcp,
                server: None,
                readers,
            });
        }
        Ok(port)
    }

    /// The server's ports for `track`, from its SETUP answer.
    pub(crate) fn set_server(&mut self, track: usize, ip: IpAddr, ports: Option<(u16, u16)>) {
        if let (Some(Some(pair)), Some((rtp, rtcp))) = (self.pairs.get_mut(track), ports) {
            pair.server = Some((SocketAddr::new(ip, rtp), SocketAddr::new(ip, rtcp)));
        }
    }

    pub(crate) fn get(&self, track: usize) -> Option<&UdpPair> {
        self.pairs.get(track)?.as_ref()
    }

    /// The next datagram; never, while no pair is bound.
    pub(crate) async fn recv(&mut self) -> Datagram {
        if self.pairs.is_empty() {
            return std::future::pending().await;
        }
        match self.rx.recv().await {
            Some(d) => d,
            // The sender half lives in `self`: the channel never closes.
            None => std::future::pending().await,
        }
    }
}

/// Binds an RTP/RTCP UDP port pair (even, even + 1) on `ip` (RFC 3550 §11).
async fn udp_pair(ip: IpAddr) -> std::io::Result<(UdpSocket, UdpSocket)> {
    for _ in 0..64 {
        let rtp = UdpSocket::bind((ip, 0)).await?;
        let port = rtp.local_addr()?.port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        if let Ok(rtcp) = UdpSocket::bind((ip, port + 1)).await {
            return Ok((rtp, rtcp));
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        "no free even/odd UDP port pair",
    ))
}

/// Forwards the datagrams `peer` sends to the attempt, dropping what does not fit in the
/// queue; one that fills `buf_size` may have been cut short and is dropped too.
async fn udp_reader(
    socket: Arc<UdpSocket>,
    peer: IpAddr,
    track: usize,
    rtcp: bool,
    buf_size: usize,
    tx: mpsc::Sender<Datagram>,
) {
    let mut buf = vec![0u8; buf_size];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            return;
        };
        if from.ip() != peer || n == buf.len() {
            continue;
        }
        let data = Bytes::copy_from_slice(&buf[..n]);
        if tx.try_send(Datagram { track, rtcp, data }).is_err() && tx.is_closed() {
            return;
        }
    }
}

/// What woke the attempt up.
enum Wake {
    Read(Result<(), ProxyError>),
    Timer,
    Udp(Datagram),
    Closed,
    Report,
}

/// Plays `url` into `ingest` until the source ends or fails.
pub(crate) async fn pull(
    url: &Url,
    opts: &AttemptOptions,
    ingest: &mut Ingest,
) -> Result<(), ProxyError> {
    let target = Target::parse(url)?;
    let config = RtspConfig::default();
    let mut conn = Conn::connect(&target, opts).await?;
    let mut client = Client::play(
        &target.request_url,
        target.login.clone(),
        client_options(opts),
        &config,
        now(),
    )
    .map_err(|e| ProxyError::BadUrl(e.to_string()))?;
    let started = Instant::now();
    let mut media: Option<Media> = None;
    // RTCP receiver reports every 5 s (RFC 3550 §6.2's minimum interval) once playing.
    let mut reports = tokio::time::interval_at(started + REPORT_INTERVAL, REPORT_INTERVAL);
    reports.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let own_ssrc: u32 = rand::random();
    let mut udp = UdpPairs::new();
    let mut live = false;
    loop {
        while let Some(event) = client.poll_event() {
            if let Some(end) = end_of(&event) {
                return Err(end);
            }
            match event {
                Event::Described { tracks } => {
                    let codecs: Vec<_> = tracks.iter().map(|t| t.info.codec).collect();
                    tracing::debug!(?codecs, "described");
                    media = Some(Media {
                        demuxer: Demuxer::new(&tracks, &config),
                        order: Interleaver::new(&tracks),
                        reception: vec![Reception::default(); tracks.len()],
                        started,
                    });
                }
                Event::BindUdp { track } => {
                    let port = udp.bind(track, conn.local.ip(), conn.peer.ip()).await?;
                    client.udp_bound(now(), track, port).map_err(protocol)?;
                }
                Event::SetUp { track, transport } => {
                    udp.set_server(track, conn.peer.ip(), transport.server_port);
                }
                Event::Playing => {
                    ingest.live(conn.peer, conn.local).await?;
                    // on_publish may have taken a while; the camera's bytes wait in the socket.
                    client.resume_clocks(now());
                    live = true;
                    if let Some(media) = media.as_mut() {
                        // The tracks whose configuration the SDP gave.
                        drain(&mut media.demuxer, &mut media.order, ingest)?;
                    }
                }
                Event::Media {
                    track,
                    rtcp,
                    payload,
                } => {
                    if let (true, Some(media)) = (live, media.as_mut()) {
                        media.feed(ingest, track, rtcp, payload)?;
                    }
                }
                _ => {}
            }
        }
        conn.flush(&mut client, opts).await?;
        if client.is_closed() {
            return Err(ProxyError::Ended);
        }
        let deadline = client.poll_timeout();
        let wake = tokio::select! {
            read = conn.read(&mut client, || ProxyError::Ended) => Wake::Read(read),
            () = sleep_until(deadline) => Wake::Timer,
            datagram = udp.recv() => Wake::Udp(datagram),
            () = ingest.closed() => Wake::Closed,
            _ = reports.tick(), if live => Wake::Report,
        };
        match wake {
            Wake::Read(read) => read?,
            Wake::Timer => client.handle_timeout(now()),
            Wake::Udp(Datagram { track, rtcp, data }) => {
                client.handle_udp_activity(now());
                if let (true, Some(media)) = (live, media.as_mut()) {
                    media.feed(ingest, track, rtcp, data)?;
                }
            }
            Wake::Report => {
                if let Some(media) = media.as_mut() {
                    media.report(own_ssrc, &client, &udp, &mut conn.out);
                }
            }
            Wake::Closed => {
                client.teardown(now());
                let _ = conn.flush(&mut client, opts).await;
                return Err(ProxyError::Closed);
            }
        }
    }
}

/// A playing attempt's media side: the demuxer and what the receiver reports say.
struct Media {
    demuxer: Demuxer,
    order: Interleaver,
    /// Per track.
    reception: Vec<Reception>,
    started: Instant,
}

impl Media {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// One RTP or RTCP packet of `track` into the demuxer, and what it gives into the stream.
    fn feed(
        &mut self,
        ingest: &mut Ingest,
        track: usize,
        rtcp: bool,
        payload: Bytes,
    ) -> Result<(), ProxyError> {
        let now_ms = self.now_ms();
        let Some(reception) = self.reception.get_mut(track) else {
            return Ok(());
        };
        if rtcp {
            if let Ok(reports) = rtsp::rtp::parse_rtcp(&payload) {
                for r in reports {
                    if let Rtcp::SenderReport(sr) = r {
                        reception.on_sender_report(sr.ntp_time, now_ms);
                    }
                }
            }
            if let Err(e) = self.demuxer.push_rtcp(track, &payload) {
                tracing::trace!("RTCP packet dropped: {e}");
            }
            return Ok(());
        }
        if let (Some(seq), Some(ssrc)) = (payload.get(2..4), payload.get(8..12)) {
            let seq = u16::from_be_bytes([seq[0], seq[1]]);
            reception.on_rtp(
                u32::from_be_bytes([ssrc[0], ssrc[1], ssrc[2], ssrc[3]]),
                seq,
            );
        }
        if let Err(e) = self.demuxer.push(track, payload, now_ms) {
            tracing::debug!("RTP packet dropped: {e}");
            return Ok(());
        }
        drain(&mut self.demuxer, &mut self.order, ingest)
    }

    /// A receiver report per track that has had packets, on its RTCP channel or port.
    fn report(&mut self, own_ssrc: u32, client: &Client, udp: &UdpPairs, out: &mut BytesMut) {
        let now_ms = self.now_ms();
        for (track, reception) in self.reception.iter_mut().enumerate() {
            let Some(block) = reception.block(now_ms) else {
                continue;
            };
            let report = rtsp::rtp::receiver_report(own_ssrc, vec![block]);
            if let Ok(true) = client.interleave(track, true, &report, out) {
                continue;
            }
            if let Some((_, rtcp_to)) = udp.get(track).and_then(|p| p.server) {
                // Lossy by nature: a full socket buffer drops the report.
                if let Some(pair) = udp.get(track) {
                    let _ = pair.rtcp.try_send_to(&report, rtcp_to);
                }
            }
        }
    }
}

/// Hands what the demuxer has to the stream, frames through `order`.
fn drain(
    demuxer: &mut Demuxer,
    order: &mut Interleaver,
    ingest: &mut Ingest,
) -> Result<(), ProxyError> {
    while let Some(event) = demuxer.pull() {
        match event {
            DemuxEvent::Track(info) => {
                tracing::debug!(codec = ?info.codec, width = info.width, height = info.height, "track");
                // Frames made with the old configuration go first.
                while let Some(frame) = order.pop(true) {
                    ingest.push(frame)?;
                }
                ingest.set_track(info);
            }
            DemuxEvent::Frame(frame) => {
                order.push(frame);
                while let Some(frame) = order.pop(false) {
                    ingest.push(frame)?;
                }
            }
        }
    }
    Ok(())
}

/// Frames held for at most this much media time to put the tracks in dts order.
const INTERLEAVE_MS: u64 = 500;
/// Frames held at most, whatever their times.
const INTERLEAVE_FRAMES: usize = 128;

/// Puts the tracks' frames in dts order before they reach the stream. A depacketizer finishes
/// a video frame only with its last packet, after audio frames that started later, so the
/// demuxer's order is not time order across tracks; the stream's timeline (rebased from the
/// first frame of an attempt) and every muxer want it to be. A frame waits until every track
/// has one queued, or at most [`INTERLEAVE_MS`] / [`INTERLEAVE_FRAMES`], so a track that
/// sends nothing holds the other up only that long.
struct Interleaver {
    /// Per kind of the stream's tracks: video, audio.
    queues: Vec<(media::TrackKind, std::collections::VecDeque<media::Frame>)>,
    queued: usize,
}

impl Interleaver {
    fn new(tracks: &[rtsp::sdp::Track]) -> Interleaver {
        let mut queues: Vec<(media::TrackKind, std::collections::VecDeque<media::Frame>)> =
            Vec::new();
        for t in tracks {
            if !queues.iter().any(|(k, _)| *k == t.info.kind()) {
                queues.push((t.info.kind(), Default::default()));
            }
        }
        Interleaver { queues, queued: 0 }
    }

    fn push(&mut self, frame: media::Frame) {
        match self.queues.iter_mut().find(|(k, _)| *k == frame.kind()) {
            Some((_, q)) => {
                q.push_back(frame);
                self.queued += 1;
            }
            None => tracing::debug!(codec = ?frame.codec, "frame of no announced track dropped"),
        }
    }

    /// The next frame in dts order, when it may go (`all`: whatever waits).
    fn pop(&mut self, all: bool) -> Option<media::Frame> {
        let (earliest, oldest) = self
            .queues
            .iter()
            .enumerate()
            .filter_map(|(i, (_, q))| q.front().map(|f| (i, f.dts)))
            .min_by_key(|&(_, dts)| dts)?;
        let newest = self
            .queues
            .iter()
            .filter_map(|(_, q)| q.back().map(|f| f.dts))
            .max()
            .unwrap_or(oldest);
        let every_track = self.queues.iter().all(|(_, q)| !q.is_empty());
        let go = all
            || every_track
            || self.queued > INTERLEAVE_FRAMES
            || newest.saturating_sub(oldest) > INTERLEAVE_MS;
        if !go {
            return None;
        }
        let frame = self.queues.get_mut(earliest)?.1.pop_front()?;
        self.queued -= 1;
        Some(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaves_by_dts_within_a_bounded_window() {
        use media::{Codec, Frame, TrackInfo};
        let tracks: Vec<rtsp::sdp::Track> = [Codec::H264, Codec::Aac]
            .iter()
            .enumerate()
            .filter_map(|(i, c)| rtsp::sdp::Track::offer(&TrackInfo::new(*c, Bytes::new()), i))
            .collect();
        let frame = |codec, dts| Frame {
            codec,
            dts,
            cts: 0,
            keyframe: true,
            data: Bytes::from_static(&[1]),
        };
        let mut order = Interleaver::new(&tracks);
        let mut out = Vec::new();
        // Audio at 23 and 46 is finished before the video frame at 0 is.
        for f in [
            frame(Codec::Aac, 23),
            frame(Codec::Aac, 46),
            frame(Codec::H264, 0),
            frame(Codec::H264, 40),
            frame(Codec::Aac, 69),
        ] {
            order.push(f);
            while let Some(f) = order.pop(false) {
                out.push(f.dts);
            }
        }
        // 46 waits: the next video frame may still come before it.
        assert_eq!(out, [0, 23, 40]);
        // Video stops: audio waits at most INTERLEAVE_MS of media time.
        for dts in (92..700).step_by(23) {
            order.push(frame(Codec::Aac, dts));
            while let Some(f) = order.pop(false) {
                out.push(f.dts);
            }
        }
        let last = *out.last().expect("some");
        assert!(
            (690 - INTERLEAVE_MS - 23..=690 - INTERLEAVE_MS).contains(&last),
            "{last}"
        );
        assert!(out.windows(2).all(|w| w[1] > w[0]));
        while let Some(f) = order.pop(true) {
            out.push(f.dts);
        }
        assert_eq!(out.last(), Some(&690));
        assert_eq!(order.queued, 0);
    }

    /// An attempt's port pairs are even/odd, bounded in number, and closed with the attempt.
    #[tokio::test]
    async fn udp_pairs_close_with_the_attempt() {
        let lo = IpAddr::from([127, 0, 0, 1]);
        let mut pairs = UdpPairs::new();
        let rtp = pairs.bind(0, lo, lo).await.expect("bound");
        assert_eq!(rtp % 2, 0);
        assert!(
            UdpSocket::bind((lo, rtp + 1)).await.is_err(),
            "RTCP is rtp + 1"
        );
        assert!(matches!(
            pairs.bind(MAX_UDP_TRACKS, lo, lo).await,
            Err(ProxyError::Protocol(_))
        ));
        // What the peer sends arrives on the queue; others are ignored.
        let peer = UdpSocket::bind((lo, 0)).await.expect("peer");
        peer.send_to(&[1, 2, 3], (lo, rtp)).await.expect("send");
        let got = tokio::time::timeout(std::time::Duration::from_secs(2), pairs.recv())
            .await
            .expect("received");
        assert_eq!(
            (got.track, got.rtcp, &got.data[..]),
            (0, false, &[1u8, 2, 3][..])
        );
        drop(pairs);
        let deadline = Instant::now() + std::time::Duration::from_secs(2);
        loop {
            if UdpSocket::bind((lo, rtp)).await.is_ok()
                && UdpSocket::bind((lo, rtp + 1)).await.is_ok()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the pair stays bound after the attempt"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    #[test]
    fn targets() {
        let url = Url::parse("rtsp://ad%40min:p%3Ass@cam.local/live/ch0?x=1").expect("url");
        let t = Target::parse(&url).expect("rtsp");
        assert_eq!((t.host.as_str(), t.port), ("cam.local", 554));
        assert_eq!(t.request_url, "rtsp://cam.local/live/ch0?x=1");
        let login = t.login.expect("login");
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("ad@min", "p:ss")
        );
        let t = Target::parse(&Url::parse("rtsp://[::1]:8554/a").expect("url")).expect("v6");
        assert_eq!((t.host.as_str(), t.port, t.login), ("::1", 8554, None));
        assert!(matches!(
            Target::parse(&Url::parse("rtsps://h/a").expect("url")),
            Err(ProxyError::BadUrl(_))
        ));
        assert!(Target::parse(&Url::parse("rtsp://u:%ff@h/a").expect("url")).is_err());
        assert!(Target::parse(&Url::parse("rtsp://u:%4@h/a").expect("url")).is_err());
    }
}
