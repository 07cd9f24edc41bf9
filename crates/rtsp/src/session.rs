//! The server side of one RTSP session (RFC 2326 §A.1), without IO: which requests are valid
//! in which state, the session id and its checks, the transports each track was set up with.
//!
//! The driver feeds every request to [`Session::request`]. Requests the session can answer by
//! itself (OPTIONS, GET_PARAMETER/SET_PARAMETER keep-alives, anything malformed or out of order)
//! come back as [`Step::Answer`]; the others come back as a [`Step`] naming what the driver
//! must decide (policy: hooks, the registry, sockets), and the driver reports the outcome with
//! [`Session::described`], [`Session::announced`], [`Session::set_up`], [`Session::playing`],
//! [`Session::recording`], building its answer with [`Session::ok`].
//!
//! ```text
//!  Init ──DESCRIBE──▶ Play (tracks known) ──SETUP…──▶ ──PLAY──▶ playing ⇄ PAUSE
//!    └───ANNOUNCE──▶ Record (tracks known) ──SETUP…──▶ ──RECORD──▶ recording
//!  any state ──TEARDOWN──▶ closed
//! ```

use crate::message::{Request, Response, Transport};
use crate::RtspConfig;

/// The methods the server answers, for OPTIONS' `Public`.
pub const PUBLIC: &str =
    "OPTIONS, DESCRIBE, ANNOUNCE, SETUP, PLAY, RECORD, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER";

/// What the driver must do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this answer; nothing else to do.
    Answer(Response),
    /// DESCRIBE: authorize, find the stream, then [`Session::described`].
    Describe,
    /// ANNOUNCE: authorize the publisher, then [`Session::announced`].
    Announce,
    /// SETUP of `track` with `transport` (validated: unicast, and a client port pair for UDP;
    /// interleaved channels already chosen for TCP): bind what it needs, then
    /// [`Session::set_up`].
    Setup {
        /// Index of the track the URL names.
        track: usize,
        /// The transport to set up, as the server will answer it.
        transport: Transport,
    },
    /// PLAY (or resume after PAUSE); then [`Session::playing`].
    Play,
    /// RECORD; then [`Session::recording`].
    Record,
    /// PAUSE: stop sending.
    Pause,
    /// TEARDOWN: end the session after answering.
    Teardown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Init,
    Play,
    Record,
}

/// One RTSP session's state.
#[derive(Debug, Clone)]
pub struct Session {
    id: String,
    timeout_secs: u32,
    mode: Mode,
    /// Track controls, once described or announced.
    controls: Vec<String>,
    setups: Vec<(usize, Transport)>,
    /// SETUPs completed, repeats included, against `max_setups`.
    setups_done: usize,
    max_setups: usize,
    /// SETUPs refused for the cap: the first is logged as a warning, the rest at debug.
    setups_refused: usize,
    started: bool,
    paused: bool,
}

impl Session {
    /// A session with id `id` (random, from the driver) that times out after `timeout_secs`
    /// without requests or media, as its `Session` header says, and takes at most
    /// `config.max_setups` SETUPs.
    pub fn new(id: String, timeout_secs: u32, config: &RtspConfig) -> Session {
        Session {
            id,
            timeout_secs,
            mode: Mode::Init,
            controls: Vec::new(),
            setups: Vec::new(),
            setups_done: 0,
            max_setups: config.max_setups,
            setups_refused: 0,
            started: false,
            paused: false,
        }
    }

    /// The session id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A 200 (or `status`) answer to `req` carrying the `Session` header.
    pub fn ok(&self, req: &Request) -> Response {
        Response::to(req, 200).session(&self.id, Some(self.timeout_secs))
    }

    /// The tracks set up so far: (track index, transport).
    pub fn setups(&self) -> &[(usize, Transport)] {
        &self.setups
    }

    /// True between PLAY and PAUSE.
    pub fn is_playing(&self) -> bool {
        self.mode == Mode::Play && self.started && !self.paused
    }

    /// True after RECORD.
    pub fn is_recording(&self) -> bool {
        self.mode == Mode::Record && self.started
    }

    /// Classifies a request: answered here, or what the driver must do.
    pub fn request(&mut self, req: &Request) -> Step {
        let method: &str = req.method().into();
        if req.cseq().is_none() {
            return Step::Answer(Response::to(req, 400));
        }
        let stateful = matches!(method, "PLAY" | "RECORD" | "PAUSE" | "TEARDOWN");
        if stateful && req.session().is_some_and(|s| s != self.id) {
            return Step::Answer(Response::to(req, 454)); // Session Not Found
        }
        let invalid = || Step::Answer(Response::to(req, 455)); // Method Not Valid in This State
        match method {
            "OPTIONS" => Step::Answer(Response::to(req, 200).header("Public", PUBLIC)),
            "GET_PARAMETER" | "SET_PARAMETER" => Step::Answer(self.ok(req)),
            "DESCRIBE" if self.mode == Mode::Init => Step::Describe,
            "ANNOUNCE" if self.mode == Mode::Init => Step::Announce,
            "DESCRIBE" | "ANNOUNCE" => invalid(),
            "SETUP" => self.setup(req),
            "PLAY" if self.mode == Mode::Play && !self.setups.is_empty() => Step::Play,
            "RECORD" if self.mode == Mode::Record && !self.setups.is_empty() => Step::Record,
            "PAUSE" if self.mode == Mode::Play && !self.setups.is_empty() => Step::Pause,
            "PLAY" | "RECORD" | "PAUSE" => invalid(),
            "TEARDOWN" => Step::Teardown,
            _ => Step::Answer(Response::to(req, 501)),
        }
    }

    fn setup(&mut self, req: &Request) -> Step {
        if self.mode == Mode::Init {
            return Step::Answer(Response::to(req, 455));
        }
        let Some(track) = track_of(req.uri(), &self.controls) else {
            return Step::Answer(Response::to(req, 404));
        };
        if self.setups_done >= self.max_setups {
            // Every UDP SETUP binds a port pair; a client repeating them without end is
            // refused the way RFC 2326 §11.3.3 refuses a failed resource reservation.
            let cseq = req.cseq();
            if self.setups_refused == 0 {
                tracing::warn!(
                    cseq,
                    max = self.max_setups,
                    "SETUP refused: too many SETUPs"
                );
            } else {
                tracing::debug!(cseq, "SETUP refused: too many SETUPs");
            }
            self.setups_refused = self.setups_refused.saturating_add(1);
            return Step::Answer(Response::to(req, 453)); // Not Enough Bandwidth
        }
        let unsupported = || Step::Answer(Response::to(req, 461)); // Unsupported Transport
        let Some(mut transport) = req
            .header("Transport")
            .and_then(|t| Transport::parse(t).ok())
        else {
            return unsupported();
        };
        if transport.multicast {
            return unsupported();
        }
        if transport.tcp {
            let (rtp, rtcp) = match transport.interleaved {
                Some(pair) => pair,
                None => {
                    let base = u8::try_from(track * 2).unwrap_or(u8::MAX - 1);
                    (base, base.saturating_add(1))
                }
            };
            let taken = self.setups.iter().any(|(t, s)| {
                *t != track
                    && s.interleaved
                        .is_some_and(|(a, b)| [a, b].contains(&rtp) || [a, b].contains(&rtcp))
            });
            if taken {
                return unsupported();
            }
            transport.interleaved = Some((rtp, rtcp));
        } else if transport.client_port.is_none() {
            return unsupported();
        }
        Step::Setup { track, transport }
    }

    /// DESCRIBE succeeded with tracks whose `a=control` values are `controls`.
    pub fn described(&mut self, controls: Vec<String>) {
        self.mode = Mode::Play;
        self.controls = controls;
    }

    /// ANNOUNCE succeeded with tracks whose `a=control` values are `controls`.
    pub fn announced(&mut self, controls: Vec<String>) {
        self.mode = Mode::Record;
        self.controls = controls;
    }

    /// SETUP of `track` is done with `transport` (the answer, server ports filled in).
    pub fn set_up(&mut self, track: usize, transport: Transport) {
        self.setups_done += 1;
        self.setups.retain(|(t, _)| *t != track);
        self.setups.push((track, transport));
    }

    /// PLAY is answered; returns true the first time (the driver starts sending then).
    pub fn playing(&mut self) -> bool {
        self.paused = false;
        !std::mem::replace(&mut self.started, true)
    }

    /// PAUSE is answered.
    pub fn paused(&mut self) {
        self.paused = true;
    }

    /// RECORD is answered.
    pub fn recording(&mut self) {
        self.started = true;
    }
}

/// The track a SETUP URL names: the one whose control URL it is or ends with; the only track
/// when there is just one.
pub fn track_of(url: &str, controls: &[String]) -> Option<usize> {
    let url = url.trim_end_matches('/');
    controls
        .iter()
        .position(|control| {
            let control = control.trim_end_matches('/');
            !control.is_empty() && (url == control || url.ends_with(&format!("/{control}")))
        })
        .or_else(|| (controls.len() == 1).then_some(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Decoder, Input};

    fn req(text: &str) -> Request {
        let mut d = Decoder::default();
        d.push(text.replace('\n', "\r\n").as_bytes());
        match d.poll() {
            Ok(Some(Input::Request(r))) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    fn status(step: Step) -> u16 {
        match step {
            Step::Answer(r) => r.status(),
            other => panic!("not answered: {other:?}"),
        }
    }

    const URL: &str = "rtsp://h/live/cam";

    #[test]
    fn play_session_in_order() {
        let mut s = Session::new("abc".into(), 60, &RtspConfig::default());
        assert_eq!(
            status(s.request(&req(&format!("OPTIONS {URL} RTSP/1.0\nCSeq: 1\n\n")))),
            200
        );
        assert_eq!(
            status(s.request(&req(&format!("PLAY {URL} RTSP/1.0\nCSeq: 2\n\n")))),
            455
        );
        assert_eq!(status(s.request(&req(&format!("SETUP {URL}/trackID=0 RTSP/1.0\nCSeq: 3\nTransport: RTP/AVP/TCP;interleaved=0-1\n\n")))), 455);
        assert_eq!(
            s.request(&req(&format!("DESCRIBE {URL} RTSP/1.0\nCSeq: 4\n\n"))),
            Step::Describe
        );
        s.described(vec!["trackID=0".into(), "trackID=1".into()]);
        let step = s.request(&req(&format!(
            "SETUP {URL}/trackID=1 RTSP/1.0\nCSeq: 5\nTransport: RTP/AVP/TCP;unicast\n\n"
        )));
        let Step::Setup { track, transport } = step else {
            panic!("{step:?}")
        };
        assert_eq!((track, transport.interleaved), (1, Some((2, 3))));
        s.set_up(track, transport);
        // The same channels for another track are refused.
        assert_eq!(status(s.request(&req(&format!("SETUP {URL}/trackID=0 RTSP/1.0\nCSeq: 6\nTransport: RTP/AVP/TCP;interleaved=2-3\n\n")))), 461);
        // UDP needs the client's ports; multicast is not offered.
        assert_eq!(
            status(s.request(&req(&format!(
                "SETUP {URL}/trackID=0 RTSP/1.0\nCSeq: 7\nTransport: RTP/AVP;unicast\n\n"
            )))),
            461
        );
        assert_eq!(
            status(s.request(&req(&format!(
                "SETUP {URL}/trackID=0 RTSP/1.0\nCSeq: 8\nTransport: RTP/AVP;multicast\n\n"
            )))),
            461
        );
        assert_eq!(
            status(s.request(&req(&format!(
                "PLAY {URL} RTSP/1.0\nCSeq: 9\nSession: other\n\n"
            )))),
            454
        );
        assert_eq!(
            s.request(&req(&format!(
                "PLAY {URL} RTSP/1.0\nCSeq: 10\nSession: abc\n\n"
            ))),
            Step::Play
        );
        assert!(s.playing() && s.is_playing());
        assert_eq!(
            s.request(&req(&format!(
                "PAUSE {URL} RTSP/1.0\nCSeq: 11\nSession: abc\n\n"
            ))),
            Step::Pause
        );
        s.paused();
        assert!(
            !s.is_playing() && !s.playing(),
            "resuming is not a new start"
        );
        assert_eq!(
            status(s.request(&req(&format!("RECORD {URL} RTSP/1.0\nCSeq: 12\n\n")))),
            455
        );
        assert_eq!(
            status(s.request(&req(&format!("GET_PARAMETER {URL} RTSP/1.0\nCSeq: 13\n\n")))),
            200
        );
        assert_eq!(
            s.request(&req(&format!("TEARDOWN {URL} RTSP/1.0\nCSeq: 14\n\n"))),
            Step::Teardown
        );
    }

    #[test]
    fn record_session_and_odd_requests() {
        let mut s = Session::new("x".into(), 60, &RtspConfig::default());
        assert_eq!(
            s.request(&req(&format!("ANNOUNCE {URL} RTSP/1.0\nCSeq: 1\n\n"))),
            Step::Announce
        );
        s.announced(vec!["streamid=0".into()]);
        assert_eq!(
            status(s.request(&req(&format!("DESCRIBE {URL} RTSP/1.0\nCSeq: 2\n\n")))),
            455
        );
        let step = s.request(&req(&format!(
            "SETUP {URL}/streamid=0 RTSP/1.0\nCSeq: 3\nTransport: RTP/AVP/UDP;unicast;client_port=5000-5001;mode=record\n\n"
        )));
        let Step::Setup {
            track: 0,
            transport,
        } = step
        else {
            panic!("{step:?}")
        };
        assert!(transport.record && !transport.tcp);
        s.set_up(0, transport);
        assert_eq!(
            status(s.request(&req(&format!("PLAY {URL} RTSP/1.0\nCSeq: 4\n\n")))),
            455
        );
        assert_eq!(
            s.request(&req(&format!("RECORD {URL} RTSP/1.0\nCSeq: 5\n\n"))),
            Step::Record
        );
        s.recording();
        assert!(s.is_recording());
        assert_eq!(
            status(s.request(&req(&format!("FLY {URL} RTSP/1.0\nCSeq: 6\n\n")))),
            501
        );
        assert_eq!(
            status(s.request(&req(&format!("OPTIONS {URL} RTSP/1.0\n\n")))),
            400
        );
    }

    #[test]
    fn setups_are_capped_and_repeats_replace() {
        let config = RtspConfig {
            max_setups: 3,
            ..RtspConfig::default()
        };
        let mut s = Session::new("abc".into(), 60, &config);
        s.described(vec!["trackID=0".into(), "trackID=1".into()]);
        let setup = |cseq: u32| {
            req(&format!(
                "SETUP {URL}/trackID=0 RTSP/1.0\nCSeq: {cseq}\nTransport: RTP/AVP;unicast;client_port=5000-5001\n\n"
            ))
        };
        for cseq in 1..=3 {
            let step = s.request(&setup(cseq));
            let Step::Setup { track, transport } = step else {
                panic!("{step:?}")
            };
            s.set_up(track, transport);
            assert_eq!(
                s.setups().len(),
                1,
                "a repeat replaces the track's transport"
            );
        }
        assert_eq!(status(s.request(&setup(4))), 453);
        assert_eq!(status(s.request(&setup(5))), 453);
        // A track the SDP does not have is still a 404, and the session goes on.
        assert_eq!(
            status(s.request(&req(&format!(
                "SETUP {URL}/trackID=9 RTSP/1.0\nCSeq: 6\nTransport: RTP/AVP;unicast;client_port=5000-5001\n\n"
            )))),
            404
        );
        assert_eq!(
            s.request(&req(&format!(
                "PLAY {URL} RTSP/1.0\nCSeq: 7\nSession: abc\n\n"
            ))),
            Step::Play
        );
    }

    #[test]
    fn setup_urls() {
        let controls = vec!["trackID=0".to_owned(), "trackID=1".to_owned()];
        assert_eq!(track_of("rtsp://h/live/a/trackID=1", &controls), Some(1));
        assert_eq!(track_of("rtsp://h/live/a/trackID=1/", &controls), Some(1));
        assert_eq!(track_of("rtsp://h/live/a/trackID=2", &controls), None);
        assert_eq!(track_of("rtsp://h/live/a", &["x".to_owned()]), Some(0));
        let absolute = vec!["rtsp://h/live/a/streamid=0".to_owned()];
        assert_eq!(track_of("rtsp://h/live/a/streamid=0", &absolute), Some(0));
    }
}
