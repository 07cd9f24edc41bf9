//! Credentials: the long-term credential key (RFC 8489 §9.2.2) and the time-limited "REST API"
//! credentials of coturn and WebRTC applications (draft-uberti-behave-turn-rest-00).
//!
//! The crate does not apply SASLprep / OpaqueString (RFC 8265) to passwords: the caller passes
//! them already prepared (plain ASCII passwords, the common case, are unchanged by it).

use base64::Engine;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;

/// The long-term credential key: `MD5(username ":" realm ":" password)` (RFC 8489 §9.2.2), used
/// as the HMAC key of MESSAGE-INTEGRITY.
pub fn long_term_key(username: &str, realm: &str, password: &str) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(username.as_bytes());
    md5.update(b":");
    md5.update(realm.as_bytes());
    md5.update(b":");
    md5.update(password.as_bytes());
    md5.finalize().into()
}

/// The password of a REST credential: `base64(HMAC-SHA1(secret, username))`, as coturn's
/// `use-auth-secret` computes it. The username is `expiry:name` (see [`RestUsername`]).
pub fn rest_password(secret: &[u8], username: &str) -> String {
    // HMAC accepts keys of any length, so this never fails; an empty password never matches.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A REST credential username, `expiry` (UNIX seconds) then optionally `:name`, split at the
/// first colon as coturn does (its default `rest-api-separator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestUsername<'a> {
    /// When the credential stops being valid, in seconds since the UNIX epoch.
    pub expiry: u64,
    /// The application's user name; empty when the username is just the timestamp.
    pub name: &'a str,
}

impl<'a> RestUsername<'a> {
    /// Parses `expiry[:name]`; `None` when the part before the first colon is not a decimal
    /// number (then the username is not a REST credential).
    pub fn parse(username: &'a str) -> Option<Self> {
        let (expiry, name) = username.split_once(':').unwrap_or((username, ""));
        if expiry.is_empty() || !expiry.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(RestUsername {
            expiry: expiry.parse().ok()?,
            name,
        })
    }

    /// True when the credential has expired at `now_unix` (seconds; the caller reads the
    /// clock).
    pub fn is_expired(&self, now_unix: u64) -> bool {
        now_unix >= self.expiry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_username_parses() {
        let u = RestUsername::parse("1700000000:alice").expect("parses");
        assert_eq!((u.expiry, u.name), (1_700_000_000, "alice"));
        assert!(!u.is_expired(1_699_999_999));
        assert!(u.is_expired(1_700_000_000));
        let u = RestUsername::parse("42").expect("parses");
        assert_eq!((u.expiry, u.name), (42, ""));
        assert_eq!(RestUsername::parse("alice:1700000000"), None);
        assert_eq!(RestUsername::parse(":x"), None);
        assert_eq!(RestUsername::parse("+1:x"), None);
        assert_eq!(RestUsername::parse("99999999999999999999999:x"), None);
    }

    #[test]
    fn rest_password_is_base64_hmac_sha1() {
        // HMAC-SHA1 of RFC 2202 test case 2: key "Jefe", data "what do ya want for nothing?"
        // = effcdf6ae5eb2fa2d27416d5f184df9c259a7c79.
        let p = rest_password(b"Jefe", "what do ya want for nothing?");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(p)
            .expect("base64");
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    }

    #[test]
    fn long_term_key_is_md5_of_the_triple() {
        // MD5("a:b:c") computed independently (coreutils md5sum).
        let key = long_term_key("a", "b", "c");
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, MD5_A_B_C);
    }

    const MD5_A_B_C: &str = "02cc8f08398a4f3113b554e8105ebe4c";
}
