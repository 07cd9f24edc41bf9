//! RTSP messages on one TCP connection (RFC 2326): requests from the client, interleaved binary
//! frames (§10.12) mixed with them, and the responses the server writes back.
//!
//! [`Decoder`] is incremental: [`Decoder::push`] the bytes read from the socket, then call
//! [`Decoder::poll`] until it returns `Ok(None)` (it needs more bytes). Requests are parsed by
//! `rtsp-types`; this module frames them (header end, `Content-Length`, the size cap) so a
//! hostile peer cannot make the buffer grow past [`MAX_MESSAGE`] and so errors carry the byte
//! offset in the stream.

use bytes::{Buf, Bytes, BytesMut};
use rtsp_types::{HeaderName, Method, StatusCode, Version};

use crate::Error;

/// Default cap on one request, request line, headers and body together (64 KiB).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// The marker byte of an interleaved frame (RFC 2326 §10.12).
const INTERLEAVED: u8 = 0x24;

/// One unit read from an RTSP connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// An RTSP request.
    Request(Request),
    /// An interleaved binary frame: RTP or RTCP on the channel SETUP negotiated.
    Interleaved {
        /// The channel id (even: RTP, odd: RTCP, by convention).
        channel: u8,
        /// The RTP or RTCP packet.
        payload: Bytes,
    },
}

/// Splits a TCP byte stream into [`Input`]s.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    max_message: usize,
    /// Bytes consumed before `buf`, for error offsets.
    consumed: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(MAX_MESSAGE)
    }
}

impl Decoder {
    /// A decoder refusing requests longer than `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Decoder {
            buf: BytesMut::new(),
            max_message,
            consumed: 0,
        }
    }

    /// Appends bytes read from the socket. Call [`Decoder::poll`] until `Ok(None)` afterwards;
    /// the buffer then holds less than one message, so at most [`MAX_MESSAGE`] (or 64 KiB + 4 for
    /// an interleaved frame) plus what one read returned.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete input, `Ok(None)` when more bytes are needed.
    ///
    /// An error means the stream cannot be resynchronised: answer 400 and close.
    pub fn poll(&mut self) -> Result<Option<Input>, Error> {
        // Clients may send bare CRLFs between messages as keep-alives (RFC 2326 §4 allows
        // empty lines before a request).
        while matches!(self.buf.first(), Some(b'\r' | b'\n')) {
            self.advance(1);
        }
        let Some(&first) = self.buf.first() else {
            return Ok(None);
        };
        if first == INTERLEAVED {
            return Ok(self.interleaved());
        }
        self.request()
    }

    fn advance(&mut self, n: usize) {
        self.buf.advance(n);
        self.consumed += n;
    }

    fn interleaved(&mut self) -> Option<Input> {
        let header = self.buf.get(..4)?;
        let channel = header[1];
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        if self.buf.len() < 4 + len {
            return None;
        }
        self.advance(4);
        let payload = self.buf.split_to(len).freeze();
        self.consumed += len;
        Some(Input::Interleaved { channel, payload })
    }

    fn request(&mut self) -> Result<Option<Input>, Error> {
        let window = &self.buf[..self.buf.len().min(self.max_message)];
        // Reject binary garbage at once instead of buffering 64 KiB of it: the request line
        // and headers are text.
        if let Some(bad) = window
            .iter()
            .take_while(|&&b| b != b'\n')
            .position(|&b| b != b'\r' && b != b'\t' && !(0x20..0x7f).contains(&b))
        {
            return Err(Error::malformed(self.consumed + bad, "RTSP request line"));
        }
        let Some(head_len) = find(window, b"\r\n\r\n").map(|p| p + 4) else {
            if self.buf.len() >= self.max_message {
                return Err(Error::limit(
                    "RTSP request header",
                    self.buf.len(),
                    self.max_message,
                ));
            }
            return Ok(None);
        };
        let head = &self.buf[..head_len];
        let body_len = content_length(head)
            .map_err(|at| Error::malformed(self.consumed + at, "Content-Length"))?;
        let total = head_len.saturating_add(body_len);
        if total > self.max_message {
            return Err(Error::limit("RTSP request", total, self.max_message));
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let raw_uri = request_uri(head)
            .map_err(|at| Error::malformed(self.consumed + at, "RTSP request line"))?;
        let parsed = rtsp_types::Message::<Vec<u8>>::parse(&self.buf[..total]);
        let offset = self.consumed;
        let request = match parsed {
            Ok((rtsp_types::Message::Request(r), used)) if used == total => r,
            Ok((rtsp_types::Message::Request(_), _)) | Err(_) => {
                return Err(Error::malformed(offset, "RTSP request"))
            }
            Ok(_) => {
                return Err(Error::ProtocolViolation {
                    context: "a response or frame where a request must come",
                })
            }
        };
        self.advance(total);
        Ok(Some(Input::Request(Request {
            uri: raw_uri,
            inner: request.map_body(Bytes::from),
        })))
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The `Content-Length` of a header block, 0 when absent; `Err(offset)` when unparsable.
fn content_length(head: &[u8]) -> Result<usize, usize> {
    let mut pos = 0;
    for line in head.split(|&b| b == b'\n') {
        let start = pos;
        pos += line.len() + 1;
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if !line[..colon].eq_ignore_ascii_case(b"content-length") {
            continue;
        }
        let value = std::str::from_utf8(&line[colon + 1..]).map_err(|_| start)?;
        return value.trim().parse::<usize>().map_err(|_| start);
    }
    Ok(0)
}

/// The Request-URI exactly as the client wrote it (Digest hashes this string, so it must not go
/// through URL normalisation); `Err(offset)` when the request line has no URI.
fn request_uri(head: &[u8]) -> Result<String, usize> {
    let line_end = find(head, b"\r\n").unwrap_or(head.len());
    let line = std::str::from_utf8(&head[..line_end]).map_err(|_| 0usize)?;
    let mut parts = line.split(' ');
    let (_method, uri) = (parts.next(), parts.next().ok_or(0usize)?);
    Ok(uri.to_owned())
}

/// Most header lines one response may carry (RFC 2326 sets no bound; real servers send a
/// dozen): more is [`Error::LimitExceeded`].
pub const MAX_HEADERS: usize = 64;

/// One unit a client reads from its RTSP connection: a server's response, a request from the
/// server (RFC 2326 §10: OPTIONS, GET_PARAMETER, ANNOUNCE or TEARDOWN may go that way), or
/// an interleaved frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerInput {
    /// A response to one of the client's requests.
    Response(Reply),
    /// A request the server sent to the client.
    Request(Reply),
    /// An interleaved binary frame (§10.12).
    Interleaved {
        /// The channel id.
        channel: u8,
        /// The RTP or RTCP packet.
        payload: Bytes,
    },
}

/// A parsed response (or server request): the start line, the headers as sent (repeats kept,
/// so every `WWW-Authenticate` challenge is seen) and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code of a response; 0 for a request.
    pub status: u16,
    /// The method of a request; empty for a response.
    pub method: String,
    /// `(name, value)` in order, values trimmed.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes).
    pub body: Bytes,
}

impl Reply {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header called `name` (case-insensitive), in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `CSeq`.
    pub fn cseq(&self) -> Option<u32> {
        self.header("CSeq")?.trim().parse().ok()
    }
}

/// Splits the TCP byte stream a client reads into [`ServerInput`]s: the client side's
/// counterpart of [`Decoder`], with the same incremental contract (push, then poll until
/// `Ok(None)`) and bounds: a message (start line, headers and body) of at most `max_message`
/// bytes with at most [`MAX_HEADERS`] header lines.
#[derive(Debug)]
pub struct ResponseDecoder {
    buf: BytesMut,
    max_message: usize,
    consumed: usize,
}

impl Default for ResponseDecoder {
    fn default() -> Self {
        ResponseDecoder::new(MAX_MESSAGE)
    }
}

impl ResponseDecoder {
    /// A decoder refusing messages longer than `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        ResponseDecoder {
            buf: BytesMut::new(),
            max_message,
            consumed: 0,
        }
    }

    /// Appends bytes read from the socket; then call [`ResponseDecoder::poll`] until `Ok(None)`.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn advance(&mut self, n: usize) {
        self.buf.advance(n);
        self.consumed += n;
    }

    /// The next complete input, `Ok(None)` when more bytes are needed. An error means the
    /// stream cannot be resynchronised: close the connection.
    pub fn poll(&mut self) -> Result<Option<ServerInput>, Error> {
        while matches!(self.buf.first(), Some(b'\r' | b'\n')) {
            self.advance(1);
        }
        let Some(&first) = self.buf.first() else {
            return Ok(None);
        };
        if first == INTERLEAVED {
            let Some(header) = self.buf.get(..4) else {
                return Ok(None);
            };
            let channel = header[1];
            let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
            if self.buf.len() < 4 + len {
                return Ok(None);
            }
            self.advance(4);
            let payload = self.buf.split_to(len).freeze();
            self.consumed += len;
            return Ok(Some(ServerInput::Interleaved { channel, payload }));
        }
        let window = &self.buf[..self.buf.len().min(self.max_message)];
        if let Some(bad) = window
            .iter()
            .take_while(|&&b| b != b'\n')
            .position(|&b| b != b'\r' && b != b'\t' && !(0x20..0x7f).contains(&b))
        {
            return Err(Error::malformed(self.consumed + bad, "RTSP status line"));
        }
        let Some(head_len) = find(window, b"\r\n\r\n").map(|p| p + 4) else {
            if self.buf.len() >= self.max_message {
                return Err(Error::limit(
                    "RTSP response header",
                    self.buf.len(),
                    self.max_message,
                ));
            }
            return Ok(None);
        };
        let head = &self.buf[..head_len];
        let body_len = content_length(head)
            .map_err(|at| Error::malformed(self.consumed + at, "Content-Length"))?;
        let total = head_len.saturating_add(body_len);
        if total > self.max_message {
            return Err(Error::limit("RTSP response", total, self.max_message));
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let offset = self.consumed;
        let (start, headers) = parse_head(&self.buf[..head_len - 4], offset)?;
        self.advance(head_len);
        let body = self.buf.split_to(body_len).freeze();
        self.consumed += body_len;
        Ok(Some(match start {
            Start::Status(status) => ServerInput::Response(Reply {
                status,
                method: String::new(),
                headers,
                body,
            }),
            Start::Request(method) => ServerInput::Request(Reply {
                status: 0,
                method,
                headers,
                body,
            }),
        }))
    }
}

enum Start {
    Status(u16),
    Request(String),
}

/// The start line and headers of a message head (without its final blank line); `offset` is
/// where it starts in the stream, for errors.
fn parse_head(head: &[u8], offset: usize) -> Result<(Start, Vec<(String, String)>), Error> {
    // The head was checked to be ASCII up to the first line; the rest may hold UTF-8 in
    // values, which is kept lossily.
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or("");
    let start = if let Some(rest) = line.strip_prefix("RTSP/") {
        let mut parts = rest.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        if !version.starts_with('1') && !version.starts_with('2') {
            return Err(Error::malformed(offset, "RTSP version"));
        }
        let status = parts
            .next()
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|s| (100..1000).contains(s))
            .ok_or(Error::malformed(offset, "RTSP status code"))?;
        Start::Status(status)
    } else {
        let mut parts = line.split(' ');
        let method = parts.next().unwrap_or("");
        let version = parts.nth(1).unwrap_or("");
        if method.is_empty()
            || !method
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            || !version.starts_with("RTSP/")
        {
            return Err(Error::malformed(offset, "RTSP status line"));
        }
        Start::Request(method.to_owned())
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            // Folded continuation of the previous header (RFC 2326 §4.2 via RFC 2616 §2.2).
            match headers.last_mut() {
                Some((_, value)) => {
                    value.push(' ');
                    value.push_str(line.trim());
                    continue;
                }
                None => return Err(Error::malformed(offset, "RTSP header")),
            }
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(Error::malformed(offset, "RTSP header"));
        };
        if headers.len() >= MAX_HEADERS {
            return Err(Error::limit(
                "RTSP header lines",
                headers.len() + 1,
                MAX_HEADERS,
            ));
        }
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    Ok((start, headers))
}

/// Writes a client request (RFC 2326 §6): `METHOD uri RTSP/1.0`, `CSeq`, the headers, and
/// `Content-Length` with the body when there is one. Header values lose any CR or LF.
pub fn write_request(
    method: &str,
    uri: &str,
    cseq: u32,
    headers: &[(&str, &str)],
    body: &[u8],
    out: &mut BytesMut,
) {
    let clean = |s: &str| -> String { s.chars().filter(|c| *c != '\r' && *c != '\n').collect() };
    out.extend_from_slice(
        format!("{method} {} RTSP/1.0\r\nCSeq: {cseq}\r\n", clean(uri)).as_bytes(),
    );
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {}\r\n", clean(value)).as_bytes());
    }
    if !body.is_empty() {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// One RTSP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    uri: String,
    inner: rtsp_types::Request<Bytes>,
}

impl Request {
    /// The method.
    pub fn method(&self) -> &Method {
        self.inner.method()
    }

    /// The Request-URI as sent (`*` for `OPTIONS *`).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The protocol version of the request line.
    pub fn version(&self) -> Version {
        self.inner.version()
    }

    /// The value of the header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner
            .headers()
            .find(|(n, _)| n.as_str().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `CSeq` (RFC 2326 §12.17), which every response must echo.
    pub fn cseq(&self) -> Option<u32> {
        self.header("CSeq")?.trim().parse().ok()
    }

    /// The `Session` id without its `;timeout=` parameter.
    pub fn session(&self) -> Option<&str> {
        let v = self.header("Session")?;
        Some(v.split(';').next().unwrap_or(v).trim())
    }

    /// The body (an SDP for ANNOUNCE, parameters for SET_PARAMETER).
    pub fn body(&self) -> &Bytes {
        self.inner.body()
    }

    /// The request as `rtsp-types` parsed it, for typed headers.
    pub fn as_rtsp_types(&self) -> &rtsp_types::Request<Bytes> {
        &self.inner
    }
}

/// A response to write back, built from the status and the request's `CSeq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
}

impl Response {
    /// A response with `status` that echoes `cseq` (RFC 2326 §12.17).
    pub fn new(status: u16, cseq: Option<u32>) -> Self {
        let mut r = Response {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        };
        if let Some(cseq) = cseq {
            r.headers.push(("CSeq", cseq.to_string()));
        }
        r
    }

    /// The response to `request` with `status`, echoing its `CSeq`.
    pub fn to(request: &Request, status: u16) -> Self {
        Response::new(status, request.cseq())
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Adds a header. The value must not contain CR or LF; any are removed.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        let mut value = value.into();
        value.retain(|c| c != '\r' && c != '\n');
        self.headers.push((name, value));
        self
    }

    /// `Session: <id>[;timeout=<s>]` (RFC 2326 §12.37).
    pub fn session(self, id: &str, timeout_secs: Option<u32>) -> Self {
        match timeout_secs {
            Some(t) => self.header("Session", format!("{id};timeout={t}")),
            None => self.header("Session", id),
        }
    }

    /// `Transport:` as the server chose it (RFC 2326 §12.39).
    pub fn transport(self, transport: &Transport) -> Self {
        self.header("Transport", transport.to_string())
    }

    /// `WWW-Authenticate:` with a challenge built by [`crate::auth`].
    pub fn www_authenticate(self, challenge: impl Into<String>) -> Self {
        self.header("WWW-Authenticate", challenge)
    }

    /// `Content-Base:` for DESCRIBE, ending in `/` so `trackID=N` resolves below it.
    pub fn content_base(self, url: &str) -> Self {
        if url.ends_with('/') {
            self.header("Content-Base", url)
        } else {
            self.header("Content-Base", format!("{url}/"))
        }
    }

    /// `RTP-Info:` for PLAY (RFC 2326 §12.33): one `url=..;seq=..;rtptime=..` per track.
    pub fn rtp_info(self, tracks: &[RtpInfo]) -> Self {
        let value = tracks
            .iter()
            .map(|t| format!("url={};seq={};rtptime={}", t.url, t.seq, t.rtptime))
            .collect::<Vec<_>>()
            .join(",");
        self.header("RTP-Info", value)
    }

    /// `Public:` for OPTIONS: the methods the server implements.
    pub fn public(self, methods: &[Method]) -> Self {
        let value = methods
            .iter()
            .map(|m| <&str>::from(m).to_owned())
            .collect::<Vec<_>>()
            .join(", ");
        self.header("Public", value)
    }

    /// A body with its `Content-Type` (`Content-Length` is written for it).
    pub fn body(mut self, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        self.headers.push(("Content-Type", content_type.to_owned()));
        self.body = body.into();
        self
    }

    /// Serialises the response (RTSP/1.0) onto `out`.
    pub fn write(&self, out: &mut BytesMut) {
        let mut builder =
            rtsp_types::Response::builder(Version::V1_0, StatusCode::from(self.status));
        if let Some(reason) = reason_phrase(self.status) {
            builder = builder.reason_phrase(reason);
        }
        for (name, value) in &self.headers {
            if let Ok(name) = HeaderName::from_static_str(name) {
                builder = builder.header(name, value.as_str());
            }
        }
        let response = builder.build(self.body.clone());
        let mut v = Vec::with_capacity(256 + self.body.len());
        // Writing into a Vec cannot fail.
        let _ = response.write(&mut v);
        out.extend_from_slice(&v);
    }

    /// The serialised response.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.write(&mut out);
        out.freeze()
    }
}

/// RFC 2326 §7.1.1's reason phrases for the statuses an RTSP server sends most (rtsp-types
/// writes RFC 7826's spelling, e.g. `Ok`, which some RTSP/1.0 clients log as odd).
fn reason_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Time-out",
        453 => "Not Enough Bandwidth",
        454 => "Session Not Found",
        455 => "Method Not Valid in This State",
        459 => "Aggregate operation not allowed",
        461 => "Unsupported transport",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => return None,
    })
}

/// Writes an interleaved frame header and payload (RFC 2326 §10.12). Payloads longer than
/// 65 535 bytes cannot be framed and are refused.
pub fn write_interleaved(channel: u8, payload: &[u8], out: &mut BytesMut) -> Result<(), Error> {
    let len = u16::try_from(payload.len())
        .map_err(|_| Error::limit("interleaved frame", payload.len(), usize::from(u16::MAX)))?;
    out.extend_from_slice(&[INTERLEAVED, channel]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// One track's entry in `RTP-Info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpInfo {
    /// The track URL (the SETUP Request-URI).
    pub url: String,
    /// Sequence number of the first packet sent after PLAY.
    pub seq: u16,
    /// RTP timestamp of that packet.
    pub rtptime: u32,
}

/// How RTP flows for one track: the parts of a `Transport` header (RFC 2326 §12.39) a server
/// needs to answer SETUP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transport {
    /// `RTP/AVP/TCP`: interleaved on the RTSP connection; otherwise UDP.
    pub tcp: bool,
    /// `multicast` was asked for.
    pub multicast: bool,
    /// `interleaved=a-b`.
    pub interleaved: Option<(u8, u8)>,
    /// `client_port=a-b`.
    pub client_port: Option<(u16, u16)>,
    /// `server_port=a-b` (set by the server in its answer).
    pub server_port: Option<(u16, u16)>,
    /// `ssrc=` in hex.
    pub ssrc: Option<u32>,
    /// `mode=record` (publish) instead of play.
    pub record: bool,
}

impl Transport {
    /// Parses the first acceptable transport of a client's list: the first one whose profile is
    /// `RTP/AVP` (UDP or TCP).
    pub fn parse(value: &str) -> Result<Transport, Error> {
        let mut unsupported = None;
        for spec in value.split(',') {
            match Transport::parse_one(spec.trim()) {
                Ok(t) => return Ok(t),
                Err(e) => unsupported = Some(e),
            }
        }
        Err(unsupported.unwrap_or(Error::malformed(0, "Transport")))
    }

    fn parse_one(spec: &str) -> Result<Transport, Error> {
        let mut parts = spec.split(';');
        let proto = parts.next().unwrap_or("").trim();
        let mut t = Transport::default();
        match proto.to_ascii_uppercase().as_str() {
            "RTP/AVP" | "RTP/AVP/UDP" => {}
            "RTP/AVP/TCP" => t.tcp = true,
            other => return Err(Error::Unsupported(format!("transport {other}"))),
        }
        for p in parts {
            let (key, value) = match p.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (p.trim(), None),
            };
            match (key.to_ascii_lowercase().as_str(), value) {
                ("multicast", None) => t.multicast = true,
                ("interleaved", Some(v)) => t.interleaved = Some(pair(v)?),
                ("client_port", Some(v)) => t.client_port = Some(pair(v)?),
                ("server_port", Some(v)) => t.server_port = Some(pair(v)?),
                ("ssrc", Some(v)) => {
                    t.ssrc = u32::from_str_radix(v, 16).ok();
                }
                ("mode", Some(v)) => {
                    t.record = v.trim_matches('"').eq_ignore_ascii_case("record");
                }
                _ => {}
            }
        }
        Ok(t)
    }
}

/// `a-b` or `a` (then `b = a + 1`).
fn pair<T: std::str::FromStr + Copy + TryFrom<u32> + Into<u32>>(v: &str) -> Result<(T, T), Error> {
    let bad = || Error::malformed(0, "Transport port or channel pair");
    let (a, b) = match v.split_once('-') {
        Some((a, b)) => (a.trim().parse::<T>().ok(), b.trim().parse::<T>().ok()),
        None => {
            let a = v.trim().parse::<T>().ok();
            let b = a.and_then(|a| T::try_from(a.into() + 1).ok());
            (a, b)
        }
    };
    Ok((a.ok_or_else(bad)?, b.ok_or_else(bad)?))
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.tcp { "RTP/AVP/TCP" } else { "RTP/AVP" })?;
        f.write_str(if self.multicast {
            ";multicast"
        } else {
            ";unicast"
        })?;
        if let Some((a, b)) = self.interleaved {
            write!(f, ";interleaved={a}-{b}")?;
        }
        if let Some((a, b)) = self.client_port {
            write!(f, ";client_port={a}-{b}")?;
        }
        if let Some((a, b)) = self.server_port {
            write!(f, ";server_port={a}-{b}")?;
        }
        if let Some(ssrc) = self.ssrc {
            write!(f, ";ssrc={ssrc:08X}")?;
        }
        if self.record {
            f.write_str(";mode=record")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESCRIBE: &[u8] = b"DESCRIBE rtsp://127.0.0.1:8554/live/cam RTSP/1.0\r\n\
        Accept: application/sdp\r\nCSeq: 2\r\nUser-Agent: Lavf60.16.100\r\n\r\n";

    fn announce() -> Vec<u8> {
        let sdp = b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\n";
        let mut v = format!(
            "ANNOUNCE rtsp://h/live/cam RTSP/1.0\r\nContent-Type: application/sdp\r\n\
             CSeq: 3\r\nContent-Length: {}\r\n\r\n",
            sdp.len()
        )
        .into_bytes();
        v.extend_from_slice(sdp);
        v
    }

    fn request(input: Option<Input>) -> Request {
        match input {
            Some(Input::Request(r)) => r,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn parses_describe() {
        let mut d = Decoder::default();
        d.push(DESCRIBE);
        let r = request(d.poll().expect("parses"));
        assert_eq!(r.method(), &Method::Describe);
        assert_eq!(r.uri(), "rtsp://127.0.0.1:8554/live/cam");
        assert_eq!(r.cseq(), Some(2));
        assert_eq!(r.header("accept"), Some("application/sdp"));
        assert_eq!(d.poll(), Ok(None));
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn split_at_every_offset_gives_the_same_inputs() {
        let mut stream = announce();
        stream.extend_from_slice(&[0x24, 1, 0, 3, 9, 8, 7]);
        stream.extend_from_slice(b"\r\n");
        stream.extend_from_slice(DESCRIBE);
        let mut whole = Decoder::default();
        whole.push(&stream);
        let expected: Vec<Input> = std::iter::from_fn(|| whole.poll().expect("valid")).collect();
        assert_eq!(expected.len(), 3);
        for split in 0..=stream.len() {
            let mut d = Decoder::default();
            let mut got = Vec::new();
            for part in [&stream[..split], &stream[split..]] {
                d.push(part);
                while let Some(i) = d.poll().expect("valid") {
                    got.push(i);
                }
            }
            assert_eq!(got, expected, "split at {split}");
        }
        let r = request(Some(expected[0].clone()));
        assert_eq!(&r.body()[..4], b"v=0\r");
        assert_eq!(
            expected[1],
            Input::Interleaved {
                channel: 1,
                payload: Bytes::from_static(&[9, 8, 7])
            }
        );
    }

    #[test]
    fn limits_and_garbage() {
        let mut d = Decoder::new(100);
        d.push(b"OPTIONS * RTSP/1.0\r\nX: ");
        assert_eq!(d.poll(), Ok(None));
        d.push(&[b'a'; 100]);
        assert!(matches!(d.poll(), Err(Error::LimitExceeded { .. })));

        let mut d = Decoder::new(100);
        d.push(b"ANNOUNCE rtsp://h/a RTSP/1.0\r\nContent-Length: 5000\r\n\r\n");
        assert!(matches!(d.poll(), Err(Error::LimitExceeded { .. })));

        let mut d = Decoder::default();
        d.push(b"\r\nOPT\x00IONS");
        assert_eq!(
            d.poll(),
            Err(Error::Malformed {
                offset: 5,
                context: "RTSP request line"
            })
        );

        let mut d = Decoder::default();
        d.push(b"OPTIONS * RTSP/1.0\r\nContent-Length: x\r\n\r\n");
        assert!(matches!(d.poll(), Err(Error::Malformed { .. })));

        let mut d = Decoder::default();
        d.push(b"HELLO\r\n\r\n");
        assert!(matches!(d.poll(), Err(Error::Malformed { .. })));

        let mut d = Decoder::default();
        d.push(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n");
        assert!(matches!(d.poll(), Err(Error::ProtocolViolation { .. })));
    }

    #[test]
    fn builds_responses() {
        let mut d = Decoder::default();
        d.push(DESCRIBE);
        let req = request(d.poll().expect("parses"));
        let out = Response::to(&req, 200)
            .content_base("rtsp://127.0.0.1:8554/live/cam")
            .session("abc", Some(60))
            .body("application/sdp", Bytes::from_static(b"v=0\r\n"))
            .to_bytes();
        let text = std::str::from_utf8(&out).expect("utf-8");
        assert!(text.starts_with("RTSP/1.0 200 OK\r\n"), "{text}");
        assert!(text.contains("CSeq: 2\r\n"));
        assert!(text.contains("Content-Base: rtsp://127.0.0.1:8554/live/cam/\r\n"));
        assert!(text.contains("Session: abc;timeout=60\r\n"));
        assert!(text.contains("Content-Length: 5\r\n"));
        assert!(text.ends_with("\r\n\r\nv=0\r\n"));

        let out = Response::new(401, Some(4))
            .www_authenticate("Digest realm=\"r\", nonce=\"n\"")
            .public(&[Method::Options, Method::Describe])
            .rtp_info(&[RtpInfo {
                url: "rtsp://h/a/trackID=0".into(),
                seq: 7,
                rtptime: 9,
            }])
            .header("X", "a\r\nInjected: 1")
            .to_bytes();
        let text = std::str::from_utf8(&out).expect("utf-8");
        assert!(text.starts_with("RTSP/1.0 401 Unauthorized\r\n"), "{text}");
        assert!(text.contains("Public: OPTIONS, DESCRIBE\r\n"));
        assert!(text.contains("RTP-Info: url=rtsp://h/a/trackID=0;seq=7;rtptime=9\r\n"));
        assert!(text.contains("X: aInjected: 1\r\n"));
    }

    #[test]
    fn transport_round_trip() {
        let t = Transport::parse("RTP/AVP/TCP;unicast;interleaved=0-1;mode=record").expect("ok");
        assert!(t.tcp && t.record);
        assert_eq!(t.interleaved, Some((0, 1)));
        let t = Transport::parse("RTP/SAVP;unicast, RTP/AVP;unicast;client_port=5000-5001")
            .expect("second is acceptable");
        assert!(!t.tcp);
        assert_eq!(t.client_port, Some((5000, 5001)));
        let answer = Transport {
            server_port: Some((6000, 6001)),
            ssrc: Some(0x1234),
            ..t
        };
        assert_eq!(
            answer.to_string(),
            "RTP/AVP;unicast;client_port=5000-5001;server_port=6000-6001;ssrc=00001234"
        );
        assert_eq!(Transport::parse(&answer.to_string()), Ok(answer));
        assert_eq!(
            Transport::parse("RTP/AVP/TCP;interleaved=4")
                .expect("ok")
                .interleaved,
            Some((4, 5))
        );
        assert!(Transport::parse("RTP/AVP;client_port=x-y").is_err());
        assert!(matches!(
            Transport::parse("RAW/RAW/UDP"),
            Err(Error::Unsupported(_))
        ));
        let mut out = BytesMut::new();
        write_interleaved(2, &[1, 2], &mut out).expect("fits");
        assert_eq!(&out[..], &[0x24, 2, 0, 2, 1, 2]);
        assert!(write_interleaved(0, &vec![0; 70_000], &mut out).is_err());
    }
}
