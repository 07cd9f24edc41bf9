//! The [`Handler`] API: password lookup, vetoes and notifications.

use super::*;

#[derive(Default)]
pub(super) struct Log(pub(super) Vec<String>);

struct Recording {
    log: Arc<Mutex<Log>>,
    veto_allocate: bool,
    veto_send: bool,
}

impl Recording {
    fn push(&self, s: String) {
        self.log.lock().unwrap().0.push(s);
    }
}

impl Handler for Recording {
    fn password(&mut self, username: &str, _: &str, _: SocketAddr) -> Authorization {
        self.push(format!("password {username}"));
        if username == "h" {
            Authorization::Password("hp".into())
        } else {
            Authorization::Unknown
        }
    }
    fn before_allocate(&mut self, name: &str, _: SocketAddr, relay: SocketAddr) -> bool {
        self.push(format!("before_allocate {name} {relay}"));
        !self.veto_allocate
    }
    fn allocation_created(&mut self, name: &str, _: SocketAddr, _: SocketAddr) {
        self.push(format!("created {name}"));
    }
    fn allocation_deleted(&mut self, name: &str, _: SocketAddr, _: SocketAddr) {
        self.push(format!("deleted {name}"));
    }
    fn before_relay_send(&mut self, _: SocketAddr, _: SocketAddr, len: usize) -> bool {
        self.push(format!("send {len}"));
        !self.veto_send
    }
    fn before_relay_channel_data(
        &mut self,
        _: SocketAddr,
        _: SocketAddr,
        channel: u16,
        _: usize,
    ) -> bool {
        self.push(format!("channel {channel:#x}"));
        !self.veto_send
    }
    fn channel_data_discarded(&mut self, _: SocketAddr, channel: u16, reason: DiscardReason) {
        self.push(format!("cd discarded {channel:#x} {reason:?}"));
    }
    fn message_discarded(&mut self, _: SocketAddr, reason: DiscardReason) {
        self.push(format!("discarded {reason:?}"));
    }
    fn on_request_error(&mut self, _: &Message, code: u16) -> bool {
        self.push(format!("error {code}"));
        code != 442
    }
}

fn recording(veto_allocate: bool, veto_send: bool) -> (Pair, Arc<Mutex<Log>>) {
    recording_with(Config::default(), veto_allocate, veto_send)
}

/// A [`Pair`] whose server has `config` and logs every handler call.
pub(super) fn recording_with(
    config: Config,
    veto_allocate: bool,
    veto_send: bool,
) -> (Pair, Arc<Mutex<Log>>) {
    let log = Arc::new(Mutex::new(Log::default()));
    let h = Recording {
        log: log.clone(),
        veto_allocate,
        veto_send,
    };
    let s = Server::with_handler(config, [1; 32], Box::new(h));
    (Pair::with(s), log)
}

#[test]
fn handler_password_and_callbacks() {
    let (mut p, log) = recording(false, true);
    let relay = p.allocate_as(p.client, "h", "hp");
    let n = p.nonce();
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(6)],
        Some(("h", "hp", &n)),
    );
    // 442 suppressed by on_request_error.
    assert!(p.input(udp("203.0.113.5:9"), &raw).is_empty());
    let (_, raw) = p.build(
        Class::Request,
        Method::ChannelBind,
        &[
            Attribute::ChannelNumber(0x4000),
            Attribute::XorPeerAddress(addr(PEER)),
        ],
        Some(("h", "hp", &n)),
    );
    assert_eq!(p.call(p.client, &raw).0.class, Class::Success);
    assert!(p.send(addr(PEER), b"abc").is_empty());
    assert!(p.input(p.client, &[0x40, 0x00, 0, 1, 0]).is_empty());
    assert!(p.input(p.client, &[0x40, 0x01, 0, 1, 0]).is_empty());
    p.s.handle_peer(p.now, relay, addr("203.0.113.99:1"), b"x");
    p.advance(600);
    let log = log.lock().unwrap().0.clone();
    for want in [
        "password h",
        &format!("before_allocate h {relay}"),
        "created h",
        "error 442",
        "send 3",
        "discarded Vetoed",
        "channel 0x4000",
        "cd discarded 0x4000 Vetoed",
        "cd discarded 0x4001 UnboundChannel",
        "discarded NoPermission",
        "deleted h",
    ] {
        assert!(log.iter().any(|l| l == want), "{want} missing from {log:?}");
    }
    // Unknown from the handler (no hook configured): 401.
    let n = p.nonce();
    let (_, raw) = p.build(Class::Request, Method::Refresh, &[], Some(("zed", "x", &n)));
    assert_eq!(code(&p.call(p.client, &raw).0), Some(401));
}

#[test]
fn handler_vetoes_allocation_with_403() {
    let (mut p, _) = recording(true, false);
    let n = p.nonce();
    let (_, raw) = p.build(
        Class::Request,
        Method::Allocate,
        &[Attribute::RequestedTransport(17)],
        Some(("h", "hp", &n)),
    );
    let outs = p.input(p.client, &raw);
    let [Output::AllocateRelay { request, .. }] = outs.as_slice() else {
        panic!("{outs:?}")
    };
    let relay = addr("198.51.100.1:50000");
    p.s.relay_allocated(p.now, *request, Ok(relay));
    let (m, _, rest) = split(p.drain());
    assert_eq!(code(&m), Some(403));
    assert_eq!(rest, vec![Output::ReleaseRelay { relay }]);
}
