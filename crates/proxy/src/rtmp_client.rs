//! The client side of RTMP for pulls and pushes: what an `rtmp://` URL names, as RTMP
//! clients split it, and one connection's socket and session.

use bytes::BytesMut;
use rtmp::client::{Config, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use url::Url;

use crate::{AttemptOptions, ProxyError};

/// The parts of an `rtmp://host[:port]/app/stream[?query]` URL an RTMP client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RtmpUrl {
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `connect`'s `app`: the first path segment.
    pub(crate) app: String,
    /// `connect`'s `tcUrl`: the URL up to the app.
    pub(crate) tc_url: String,
    /// `play`'s or `publish`'s stream name: the rest of the path, with the query.
    pub(crate) name: String,
}

impl RtmpUrl {
    pub(crate) fn parse(url: &Url) -> Result<RtmpUrl, ProxyError> {
        if url.scheme() != "rtmp" {
            return Err(ProxyError::BadUrl(format!(
                "{} is not rtmp://",
                url.scheme()
            )));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| ProxyError::BadUrl("no host".into()))?
            .to_owned();
        let port = url.port().unwrap_or(1935);
        let path = url.path().trim_start_matches('/');
        let (app, stream) = path
            .split_once('/')
            .filter(|(app, stream)| !app.is_empty() && !stream.is_empty())
            .ok_or_else(|| ProxyError::BadUrl("the path must be /app/stream".into()))?;
        let mut name = stream.to_owned();
        if let Some(query) = url.query() {
            name.push('?');
            name.push_str(query);
        }
        let host_port = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        Ok(RtmpUrl {
            tc_url: format!("rtmp://{host_port}/{app}"),
            host,
            port,
            app: app.to_owned(),
            name,
        })
    }
}

/// One RTMP client connection: the socket and its session.
pub(crate) struct Conn {
    socket: TcpStream,
    pub(crate) session: Session,
    pub(crate) peer: std::net::SocketAddr,
    pub(crate) local: std::net::SocketAddr,
    input: BytesMut,
    output: BytesMut,
}

impl Conn {
    /// Connects to `target` within `opts.timeout`.
    pub(crate) async fn connect(
        target: &RtmpUrl,
        opts: &AttemptOptions,
        config: Config,
    ) -> Result<Conn, ProxyError> {
        let socket = timeout(
            opts.timeout,
            TcpStream::connect((target.host.as_str(), target.port)),
        )
        .await
        .map_err(|_| ProxyError::Timeout("connect"))?
        .map_err(ProxyError::io("connect"))?;
        let _ = socket.set_nodelay(true);
        let peer = socket.peer_addr().map_err(ProxyError::io("connect"))?;
        let local = socket.local_addr().map_err(ProxyError::io("connect"))?;
        Ok(Conn {
            socket,
            session: Session::new(config, rand::random()),
            peer,
            local,
            input: BytesMut::with_capacity(16 << 10),
            output: BytesMut::new(),
        })
    }

    /// Writes what the session has to say, within `opts.timeout`.
    pub(crate) async fn flush(&mut self, opts: &AttemptOptions) -> Result<(), ProxyError> {
        while self.session.poll_transmit(&mut self.output) {
            timeout(opts.timeout, self.socket.write_all(&self.output))
                .await
                .map_err(|_| ProxyError::Timeout("the peer does not read"))?
                .map_err(ProxyError::io("write"))?;
            self.output.clear();
        }
        Ok(())
    }

    /// Reads once from the socket into the session; `what` names the wait in a timeout.
    pub(crate) async fn read(
        &mut self,
        opts: &AttemptOptions,
        what: &'static str,
    ) -> Result<(), ProxyError> {
        self.input.clear();
        let n = timeout(opts.timeout, self.socket.read_buf(&mut self.input))
            .await
            .map_err(|_| ProxyError::Timeout(what))?
            .map_err(ProxyError::io("read"))?;
        if n == 0 {
            return Err(ProxyError::Ended);
        }
        self.session
            .handle_input(&self.input)
            .map_err(|e| ProxyError::Protocol(e.to_string()))
    }

    /// Reads once without a deadline (a pusher waits on its stream, not on the server).
    pub(crate) async fn read_any(&mut self) -> Result<(), ProxyError> {
        self.input.clear();
        let n = self
            .socket
            .read_buf(&mut self.input)
            .await
            .map_err(ProxyError::io("read"))?;
        if n == 0 {
            return Err(ProxyError::Io {
                context: "read",
                source: std::io::ErrorKind::UnexpectedEof.into(),
            });
        }
        self.session
            .handle_input(&self.input)
            .map_err(|e| ProxyError::Protocol(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<RtmpUrl, ProxyError> {
        RtmpUrl::parse(&Url::parse(s).expect("url"))
    }

    #[test]
    fn splits_app_and_stream() {
        let u = parse("rtmp://cam.example:1936/live/a/b?token=1").expect("parts");
        assert_eq!(
            u,
            RtmpUrl {
                host: "cam.example".into(),
                port: 1936,
                app: "live".into(),
                tc_url: "rtmp://cam.example:1936/live".into(),
                name: "a/b?token=1".into(),
            }
        );
        let u = parse("rtmp://10.0.0.1/live/x").expect("parts");
        assert_eq!((u.port, u.tc_url.as_str()), (1935, "rtmp://10.0.0.1/live"));
    }

    #[test]
    fn refuses_what_is_not_app_and_stream() {
        for bad in ["rtmp://h/live", "rtmp://h/", "rtmp://h//x", "rtsp://h/a/b"] {
            assert!(matches!(parse(bad), Err(ProxyError::BadUrl(_))), "{bad}");
        }
    }
}
