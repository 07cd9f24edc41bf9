//! RTSP authentication: Digest (RFC 2617 §3, MD5) and Basic (RFC 2617 §2), as ZLMediaKit
//! offers them through `on_rtsp_realm` / `on_rtsp_auth`.
//!
//! The challenge carries no `qop`, which is what ffmpeg, VLC and GStreamer answer most reliably
//! (and what ZLMediaKit sends); a response that does use `qop=auth` is still verified. The nonce
//! is the caller's (it owns the randomness). The password is known either in plain text or as
//! ZLMediaKit's `encrypted` form, the hex `MD5(user:realm:password)` (HA1). Comparisons run in
//! constant time.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use md5::{Digest as _, Md5};

use crate::Error;

/// `WWW-Authenticate` value of a Digest challenge (RFC 2617 §3.2.1), without `qop`.
pub fn digest_challenge(realm: &str, nonce: &str) -> String {
    format!(
        "Digest realm=\"{}\", nonce=\"{}\"",
        quote(realm),
        quote(nonce)
    )
}

/// `WWW-Authenticate` value of a Basic challenge (RFC 2617 §2).
pub fn basic_challenge(realm: &str) -> String {
    format!("Basic realm=\"{}\"", quote(realm))
}

/// Drops the characters that cannot appear in a quoted string.
fn quote(s: &str) -> String {
    s.chars()
        .filter(|&c| c != '"' && c != '\\' && !c.is_control())
        .collect()
}

/// The credentials of an `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `Authorization: Digest …`.
    Digest(DigestResponse),
    /// `Authorization: Basic …`.
    Basic {
        /// The user name.
        username: String,
        /// The password in plain text.
        password: String,
    },
}

impl Credentials {
    /// The user name, for the `on_rtsp_auth` hook.
    pub fn username(&self) -> &str {
        match self {
            Credentials::Digest(d) => &d.username,
            Credentials::Basic { username, .. } => username,
        }
    }
}

/// The fields of a Digest `Authorization` header (RFC 2617 §3.2.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestResponse {
    /// `username`.
    pub username: String,
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `uri`: the Request-URI as the client hashed it.
    pub uri: String,
    /// `response`: 32 hex digits.
    pub response: String,
    /// `qop`, when the client used one.
    pub qop: Option<String>,
    /// `nc`, with `qop`.
    pub nc: Option<String>,
    /// `cnonce`, with `qop`.
    pub cnonce: Option<String>,
}

/// The password to verify against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Password<'a> {
    /// The password itself.
    Plain(&'a str),
    /// ZLMediaKit's `encrypted: true` form: hex `MD5(username:realm:password)`.
    Ha1(&'a str),
}

/// Parses an `Authorization` header value.
pub fn parse_authorization(value: &str) -> Result<Credentials, Error> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("Basic") {
        let decoded = STANDARD
            .decode(rest.trim())
            .map_err(|_| Error::malformed(0, "Basic credentials"))?;
        let decoded =
            String::from_utf8(decoded).map_err(|_| Error::malformed(0, "Basic credentials"))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or(Error::malformed(0, "Basic credentials"))?;
        return Ok(Credentials::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        });
    }
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(Error::Unsupported(format!("auth scheme {scheme}")));
    }
    let mut d = DigestResponse::default();
    for (key, val) in params(rest)? {
        match key.to_ascii_lowercase().as_str() {
            "username" => d.username = val,
            "realm" => d.realm = val,
            "nonce" => d.nonce = val,
            "uri" => d.uri = val,
            "response" => d.response = val,
            "qop" => d.qop = Some(val),
            "nc" => d.nc = Some(val),
            "cnonce" => d.cnonce = Some(val),
            "algorithm" if !val.eq_ignore_ascii_case("MD5") => {
                return Err(Error::Unsupported(format!("digest algorithm {val}")));
            }
            _ => {}
        }
    }
    if d.username.is_empty() || d.nonce.is_empty() || d.response.is_empty() {
        return Err(Error::malformed(0, "Digest credentials"));
    }
    Ok(Credentials::Digest(d))
}

/// `key=value` and `key="quoted, value"` pairs separated by commas (RFC 2617 §1.2).
fn params(s: &str) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    loop {
        while chars
            .next_if(|(_, c)| *c == ',' || c.is_whitespace())
            .is_some()
        {}
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key_end = start;
        while let Some((i, c)) = chars.next() {
            if c == '=' {
                key_end = i;
                break;
            }
            key_end = i + c.len_utf8();
            if chars.peek().is_none() {
                return Err(Error::malformed(start, "auth parameter"));
            }
        }
        let key = s.get(start..key_end).unwrap_or("").trim().to_owned();
        let mut value = String::new();
        if chars.next_if(|(_, c)| *c == '"').is_some() {
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(Error::malformed(start, "auth quoted string"));
            }
        } else {
            while let Some((_, c)) = chars.next_if(|(_, c)| *c != ',') {
                value.push(c);
            }
            value = value.trim().to_owned();
        }
        out.push((key, value));
    }
    Ok(out)
}

fn md5_hex(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares without an early exit, so timing does not reveal how much of a guess matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl DigestResponse {
    /// The expected `response` for `method` with this header's user, realm, nonce and uri.
    pub fn expected(&self, method: &str, password: Password<'_>) -> String {
        let ha1 = match password {
            Password::Plain(p) => md5_hex(&[&self.username, &self.realm, p]),
            Password::Ha1(h) => h.to_ascii_lowercase(),
        };
        let ha2 = md5_hex(&[method, &self.uri]);
        match (&self.qop, &self.nc, &self.cnonce) {
            (Some(qop), Some(nc), Some(cnonce)) => {
                md5_hex(&[&ha1, &self.nonce, nc, cnonce, qop, &ha2])
            }
            _ => md5_hex(&[&ha1, &self.nonce, &ha2]),
        }
    }

    /// True when the header answers the challenge of `realm` and `nonce` for `method` with the
    /// right password.
    pub fn verify(&self, method: &str, realm: &str, nonce: &str, password: Password<'_>) -> bool {
        let expected = self.expected(method, password);
        let response = self.response.to_ascii_lowercase();
        // Evaluate every comparison so timing depends on none of them.
        let ok_realm = constant_time_eq(self.realm.as_bytes(), realm.as_bytes());
        let ok_nonce = constant_time_eq(self.nonce.as_bytes(), nonce.as_bytes());
        let ok_response = constant_time_eq(response.as_bytes(), expected.as_bytes());
        ok_realm & ok_nonce & ok_response
    }
}

/// True when Basic credentials match `username` and `password` (plain, or HA1 computed with
/// `realm` when the hook answered `encrypted`).
pub fn verify_basic(
    given_user: &str,
    given_password: &str,
    realm: &str,
    password: Password<'_>,
) -> bool {
    match password {
        Password::Plain(p) => constant_time_eq(given_password.as_bytes(), p.as_bytes()),
        Password::Ha1(h) => {
            let ha1 = md5_hex(&[given_user, realm, given_password]);
            constant_time_eq(ha1.as_bytes(), h.to_ascii_lowercase().as_bytes())
        }
    }
}

/// A server's `WWW-Authenticate` challenge, as a client answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Digest` (RFC 2617 §3.2.1, MD5; RFC 7616 keeps MD5 as the default algorithm).
    Digest {
        /// `realm`.
        realm: String,
        /// `nonce`.
        nonce: String,
        /// `opaque`, echoed back when present.
        opaque: Option<String>,
        /// The server offered `qop=auth`: the answer uses it, with a client nonce.
        qop_auth: bool,
        /// `stale=true`: the nonce expired but the credentials were right.
        stale: bool,
    },
    /// `Basic` (RFC 2617 §2).
    Basic {
        /// `realm`.
        realm: String,
    },
}

/// Longest challenge field kept; longer ones are refused as [`Error::LimitExceeded`].
const MAX_CHALLENGE_FIELD: usize = 1024;

/// Parses one `WWW-Authenticate` value. Digest with an algorithm other than MD5 (SHA-256,
/// `-sess`) is [`Error::Unsupported`], as is an unknown scheme.
pub fn parse_challenge(value: &str) -> Result<Challenge, Error> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let fields = params(rest)?;
    if let Some((_, v)) = fields.iter().find(|(_, v)| v.len() > MAX_CHALLENGE_FIELD) {
        return Err(Error::limit(
            "challenge field",
            v.len(),
            MAX_CHALLENGE_FIELD,
        ));
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    if scheme.eq_ignore_ascii_case("Basic") {
        return Ok(Challenge::Basic {
            realm: field("realm").unwrap_or_default(),
        });
    }
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(Error::Unsupported(format!("auth scheme {scheme}")));
    }
    if let Some(algorithm) = field("algorithm") {
        if !algorithm.eq_ignore_ascii_case("MD5") {
            return Err(Error::Unsupported(format!("digest algorithm {algorithm}")));
        }
    }
    let nonce = field("nonce").ok_or(Error::malformed(0, "Digest challenge without nonce"))?;
    Ok(Challenge::Digest {
        realm: field("realm").unwrap_or_default(),
        nonce,
        opaque: field("opaque"),
        qop_auth: field("qop")
            .is_some_and(|q| q.split(',').any(|o| o.trim().eq_ignore_ascii_case("auth"))),
        stale: field("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
    })
}

/// Picks the challenge to answer from a 401's `WWW-Authenticate` values: Digest (MD5) over
/// Basic, as RFC 7235 §2.1 lets the client choose the strongest it supports.
pub fn choose_challenge<'a>(values: impl Iterator<Item = &'a str>) -> Option<Challenge> {
    let mut basic = None;
    for value in values {
        match parse_challenge(value) {
            Ok(c @ Challenge::Digest { .. }) => return Some(c),
            Ok(c @ Challenge::Basic { .. }) => basic = Some(c),
            Err(e) => tracing::debug!(error = %e, "challenge skipped"),
        }
    }
    basic
}

impl Challenge {
    /// The `Authorization` value answering this challenge for `method` on `uri` (the
    /// Request-URI exactly as sent). With `qop=auth`, `cnonce` and the nonce count `nc` (from
    /// 1, incremented per request with the same nonce) go in too (RFC 2617 §3.2.2).
    pub fn authorization(
        &self,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
        cnonce: &str,
        nc: u32,
    ) -> String {
        match self {
            Challenge::Basic { .. } => {
                format!(
                    "Basic {}",
                    STANDARD.encode(format!("{username}:{password}"))
                )
            }
            Challenge::Digest {
                realm,
                nonce,
                opaque,
                qop_auth,
                ..
            } => {
                let ha1 = md5_hex(&[username, realm, password]);
                let ha2 = md5_hex(&[method, uri]);
                let mut header = format!(
                    "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\"",
                    quote(username),
                    quote(realm),
                    quote(nonce),
                    quote(uri)
                );
                let response = if *qop_auth {
                    let nc = format!("{nc:08x}");
                    let r = md5_hex(&[&ha1, nonce, &nc, cnonce, "auth", &ha2]);
                    header.push_str(&format!(
                        ", qop=auth, nc={nc}, cnonce=\"{}\"",
                        quote(cnonce)
                    ));
                    r
                } else {
                    md5_hex(&[&ha1, nonce, &ha2])
                };
                header.push_str(&format!(", response=\"{response}\""));
                if let Some(opaque) = opaque {
                    header.push_str(&format!(", opaque=\"{}\"", quote(opaque)));
                }
                header.push_str(", algorithm=MD5");
                header
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5's example, with qop=auth.
    #[test]
    fn rfc2617_example() {
        let header = "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
            nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, \
            nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", \
            opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
        let Ok(Credentials::Digest(d)) = parse_authorization(header) else {
            panic!("digest");
        };
        assert_eq!(d.uri, "/dir/index.html");
        let (realm, nonce) = ("testrealm@host.com", "dcd98b7102dd2f0e8b11d0f600bfb0c093");
        assert!(d.verify("GET", realm, nonce, Password::Plain("Circle Of Life")));
        assert!(!d.verify("GET", realm, nonce, Password::Plain("circle of life")));
        assert!(!d.verify("GET", realm, "other", Password::Plain("Circle Of Life")));
        let ha1 = md5_hex(&["Mufasa", realm, "Circle Of Life"]);
        assert!(d.verify("GET", realm, nonce, Password::Ha1(&ha1.to_uppercase())));
    }

    #[test]
    fn digest_without_qop_as_ffmpeg_sends() {
        let challenge = digest_challenge("ferrostream", "abc123");
        assert_eq!(challenge, "Digest realm=\"ferrostream\", nonce=\"abc123\"");
        let uri = "rtsp://127.0.0.1:8554/live/cam";
        let ha1 = md5_hex(&["admin", "ferrostream", "s3cret"]);
        let response = md5_hex(&[&ha1, "abc123", &md5_hex(&["DESCRIBE", uri])]);
        let header = format!(
            "Digest username=\"admin\", realm=\"ferrostream\", nonce=\"abc123\", \
             uri=\"{uri}\", response=\"{response}\""
        );
        let creds = parse_authorization(&header).expect("parses");
        assert_eq!(creds.username(), "admin");
        let Credentials::Digest(d) = creds else {
            panic!("digest");
        };
        assert!(d.verify(
            "DESCRIBE",
            "ferrostream",
            "abc123",
            Password::Plain("s3cret")
        ));
        assert!(d.verify("DESCRIBE", "ferrostream", "abc123", Password::Ha1(&ha1)));
        assert!(!d.verify("SETUP", "ferrostream", "abc123", Password::Plain("s3cret")));
    }

    #[test]
    fn basic() {
        assert_eq!(basic_challenge("r\"x"), "Basic realm=\"rx\"");
        let creds = parse_authorization("Basic YWRtaW46czNjcmV0").expect("parses");
        let Credentials::Basic { username, password } = creds else {
            panic!("basic");
        };
        assert_eq!((username.as_str(), password.as_str()), ("admin", "s3cret"));
        assert!(verify_basic(
            &username,
            &password,
            "r",
            Password::Plain("s3cret")
        ));
        assert!(!verify_basic(
            &username,
            &password,
            "r",
            Password::Plain("s3cre")
        ));
        let ha1 = md5_hex(&["admin", "r", "s3cret"]);
        assert!(verify_basic(&username, &password, "r", Password::Ha1(&ha1)));
    }

    /// The client's answer verifies against the server side's check, with and without qop.
    #[test]
    fn client_answers_verify() {
        let uri = "rtsp://127.0.0.1:8554/live/cam";
        for value in [
            "Digest realm=\"cam\", nonce=\"n0\"",
            "Digest realm=\"cam\", nonce=\"n0\", qop=\"auth,auth-int\", opaque=\"o\"",
        ] {
            let c = parse_challenge(value).expect("parses");
            let header = c.authorization("admin", "s3cret", "DESCRIBE", uri, "c0ffee", 1);
            let Ok(Credentials::Digest(d)) = parse_authorization(&header) else {
                panic!("digest: {header}");
            };
            assert_eq!(d.uri, uri);
            assert!(
                d.verify("DESCRIBE", "cam", "n0", Password::Plain("s3cret")),
                "{header}"
            );
            assert!(!d.verify("DESCRIBE", "cam", "n0", Password::Plain("wrong")));
        }
        let c = choose_challenge(
            [
                "Basic realm=\"cam\"",
                "Digest realm=\"cam\", nonce=\"n\", stale=TRUE",
            ]
            .into_iter(),
        )
        .expect("one");
        assert!(matches!(c, Challenge::Digest { stale: true, .. }));
        let basic = choose_challenge(["Basic realm=\"cam\""].into_iter()).expect("basic");
        assert_eq!(
            basic.authorization("admin", "s3cret", "DESCRIBE", uri, "", 1),
            "Basic YWRtaW46czNjcmV0"
        );
        assert!(parse_challenge("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256").is_err());
        assert!(parse_challenge("Digest realm=\"r\"").is_err());
        assert!(parse_challenge("Negotiate abc").is_err());
        assert_eq!(choose_challenge(["Bearer x"].into_iter()), None);
    }

    #[test]
    fn bad_headers() {
        for bad in [
            "Basic !!!",
            "Basic YWRtaW4=",
            "Bearer x",
            "Digest username=\"a\"",
            "Digest username=\"a, nonce=\"b\"",
            "Digest username",
            "Digest username=a, nonce=b, response=c, algorithm=SHA-256",
            "",
        ] {
            assert!(parse_authorization(bad).is_err(), "{bad}");
        }
        assert!(constant_time_eq(b"ab", b"ab"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert_eq!(
            params("a=\"x\\\"y\", b = z ,c=").expect("ok"),
            vec![
                ("a".into(), "x\"y".into()),
                ("b".into(), "z".into()),
                ("c".into(), String::new())
            ]
        );
    }
}
