//! Signed hooks: seed 003's URL signature and ferrostream's body signature.
//!
//! - URL (seed 003, what a ZLMediaKit-era receiver can check): `RequestTime=<unix seconds>` and
//!   `Sign=hex(sha256(token + RequestTime))` are appended to the hook URL's query. It proves the
//!   sender knows the token and bounds replay to the receiver's window, but does not cover the
//!   body: a man in the middle could replay a fresh URL with another body.
//! - Body: header `X-Ferrostream-Signature: t=<unix seconds>,v1=hex(hmac_sha256(token,
//!   t + "." + path + "." + body))` binds time, hook and body together. `path` is the request
//!   URL's path (`/index/hook/on_play`), so a captured call cannot be replayed to another hook
//!   of the same receiver either.
//!
//! A receiver recomputes both with [`verify`] and refuses anything older than 60 s.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The header carrying the body signature.
pub const SIGNATURE_HEADER: &str = "X-Ferrostream-Signature";

/// `hex(sha256(token + request_time))`, seed 003's `Sign`.
pub fn url_sign(token: &str, request_time: u64) -> String {
    let mut hash = Sha256::new();
    hash.update(token.as_bytes());
    hash.update(request_time.to_string().as_bytes());
    hex(&hash.finalize())
}

/// `url` with `RequestTime` and `Sign` appended to its query.
pub fn signed_url(url: &str, token: &str, request_time: u64) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{sep}RequestTime={request_time}&Sign={}",
        url_sign(token, request_time)
    )
}

/// The value of [`SIGNATURE_HEADER`]:
/// `t=<t>,v1=hex(hmac_sha256(token, t + "." + path + "." + body))`, `path` being the URL path
/// the request goes to.
pub fn body_signature(token: &str, t: u64, path: &str, body: &[u8]) -> String {
    format!("t={t},v1={}", hex(&body_mac(token, t, path, body)))
}

/// The path of a URL (`http://h:1/a/b?q` → `/a/b`), what [`body_signature`] covers.
pub fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    path.split(['?', '#']).next().unwrap_or("/")
}

fn body_mac(token: &str, t: u64, path: &str, body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(token.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return Vec::new(),
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(path.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Why [`verify`] refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// `RequestTime`, `Sign` or the header is missing or unreadable.
    #[error("missing or malformed signature")]
    Missing,
    /// The signature does not match.
    #[error("bad signature")]
    Mismatch,
    /// Signed more than `max_age` seconds from now (either way).
    #[error("signature expired")]
    Expired,
}

/// Checks a received hook as a receiver should: `path` and `query` are the request URL's path
/// and query string, `header` the [`SIGNATURE_HEADER`] value, `now` the receiver's clock (unix
/// seconds). Both signatures must match and both times be within `max_age` seconds of `now`.
pub fn verify(
    token: &str,
    path: &str,
    query: &str,
    header: Option<&str>,
    body: &[u8],
    now: u64,
    max_age: u64,
) -> Result<(), VerifyError> {
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    };
    let time: u64 = param("RequestTime")
        .and_then(|t| t.parse().ok())
        .ok_or(VerifyError::Missing)?;
    let sign = param("Sign").ok_or(VerifyError::Missing)?;
    if !constant_time_eq(sign.as_bytes(), url_sign(token, time).as_bytes()) {
        return Err(VerifyError::Mismatch);
    }
    let header = header.ok_or(VerifyError::Missing)?;
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<u64>().ok(),
            Some(("v1", value)) => v1 = Some(value),
            _ => {}
        }
    }
    let (t, v1) = t.zip(v1).ok_or(VerifyError::Missing)?;
    if !constant_time_eq(
        v1.as_bytes(),
        hex(&body_mac(token, t, path, body)).as_bytes(),
    ) {
        return Err(VerifyError::Mismatch);
    }
    if time.abs_diff(now) > max_age || t.abs_diff(now) > max_age {
        return Err(VerifyError::Expired);
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_003_example() {
        // The worked example of seed 003.
        assert_eq!(
            url_sign("xxxxyyyy", 1669872112),
            "17773bc39a671d7b9aa835458704d2a6db81360a5940292b587d6d760d484061"
        );
    }

    #[test]
    fn signed_url_keeps_the_query() {
        assert_eq!(
            signed_url("http://h/on_play?a=1", "k", 5),
            format!(
                "http://h/on_play?a=1&RequestTime=5&Sign={}",
                url_sign("k", 5)
            )
        );
        assert!(
            signed_url("http://h/on_play", "k", 5).starts_with("http://h/on_play?RequestTime=5&")
        );
    }

    #[test]
    fn url_paths() {
        assert_eq!(
            url_path("http://h:1/index/hook/on_play?a=1"),
            "/index/hook/on_play"
        );
        assert_eq!(url_path("https://h/x#frag"), "/x");
        assert_eq!(url_path("http://h"), "/");
        assert_eq!(url_path("http://h?q"), "/");
    }

    #[test]
    fn verify_accepts_fresh_and_refuses_tampered_or_old() {
        let body = br#"{"app":"live"}"#;
        let url = signed_url("http://h/on_play", "tok", 1000);
        let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
        let header = body_signature("tok", 1000, url_path(&url), body);
        let path = "/on_play";
        assert_eq!(
            verify("tok", path, query, Some(&header), body, 1030, 60),
            Ok(())
        );
        assert_eq!(
            verify(
                "tok",
                path,
                query,
                Some(&header),
                br#"{"app":"evil"}"#,
                1030,
                60
            ),
            Err(VerifyError::Mismatch)
        );
        // The same call replayed to another hook of the receiver.
        assert_eq!(
            verify("tok", "/on_publish", query, Some(&header), body, 1030, 60),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("other", path, query, Some(&header), body, 1030, 60),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("tok", path, query, Some(&header), body, 1061, 60),
            Err(VerifyError::Expired)
        );
        assert_eq!(
            verify("tok", path, query, None, body, 1000, 60),
            Err(VerifyError::Missing)
        );
    }
}
