//! Who may call the API (ZLMediaKit's `check_secret`) and its cookie login.
//!
//! 1. The client's address must be in `http.allow_ip_range`.
//! 2. A `ZLM_LOGINED` cookie from [`login`] lets it in for 24 hours.
//! 3. Otherwise the `secret` argument must equal `api.secret` (compared in constant time).
//!
//! A refusal is -100 "Please login first" with a fresh `cookie` field, also set as the
//! `ZLM_UNLOGIN` cookie (60 s): a client that knows the secret logs in with
//! `/index/api/login?digest=hex(md5("zlmediakit:" + secret + ":" + cookie))`, so the secret
//! itself never travels (what the web console does). `/index/api/logout` ends the login.

use super::{Answer, ApiError, ApiResult, Call, Code};
use crate::tokens::{cookie, Tokens};
use axum::http::{header, HeaderValue};
use md5::{Digest, Md5};
use std::time::Duration;

/// The cookie of a client that asked without credentials: the salt of its login digest.
pub(crate) const UNLOGIN_COOKIE: &str = "ZLM_UNLOGIN";
/// The cookie of a logged-in client.
pub(crate) const LOGIN_COOKIE: &str = "ZLM_LOGINED";
/// How long a login lasts.
const LOGIN_LIFE: Duration = Duration::from_secs(24 * 3600);
/// How long a login salt may be used (ZLMediaKit's 60 s).
const SALT_LIFE: Duration = Duration::from_secs(60);
/// Logins and salts kept at most (each).
const MAX_TOKENS: usize = 4096;

/// Salts handed out and logins made.
pub(crate) struct Logins {
    salts: Tokens<()>,
    logins: Tokens<()>,
}

impl Default for Logins {
    fn default() -> Self {
        Logins {
            salts: Tokens::new(MAX_TOKENS),
            logins: Tokens::new(MAX_TOKENS),
        }
    }
}

/// Whether `call` may run `name`.
pub(crate) fn check(call: &Call<'_>, name: &str) -> Result<(), ApiError> {
    let config = call.state.config.get();
    if !crate::ip_allowed(&config.http.allow_ip_range, call.peer.ip()) {
        return Err(ApiError::new(
            Code::Auth,
            "Your ip is not allowed to access the service.",
        ));
    }
    if matches!(name, "login" | "logout") {
        return Ok(());
    }
    let logins = &call.state.logins;
    if cookie(&call.headers, LOGIN_COOKIE).is_some_and(|c| logins.logins.get(&c).is_some()) {
        return Ok(());
    }
    let secret = config.api.secret.expose();
    if let Some(given) = call.args.get("secret") {
        if !secret.is_empty() && constant_time_eq(given.as_bytes(), secret.as_bytes()) {
            return Ok(());
        }
    }
    Err(refusal(call))
}

/// -100 "Please login first" with the client's login salt: the valid one it sent, or a new
/// one (then also set as its `ZLM_UNLOGIN` cookie).
fn refusal(call: &Call<'_>) -> ApiError {
    salted(call, ApiError::new(Code::Auth, "Please login first"))
}

fn salted(call: &Call<'_>, e: ApiError) -> ApiError {
    let salts = &call.state.logins.salts;
    match cookie(&call.headers, UNLOGIN_COOKIE).filter(|s| salts.get(s).is_some()) {
        Some(salt) => e.with("cookie", salt),
        None => {
            let salt = salts.issue((), SALT_LIFE);
            e.with("cookie", salt.clone()).with(SET_SALT, salt)
        }
    }
}

/// The extra field of an error that asks for a salt cookie to be set (taken out of the body
/// by the envelope).
pub(crate) const SET_SALT: &str = "\u{0}set-salt";

/// `login?digest=`: a login cookie when the digest matches the client's salt.
pub(crate) fn login(call: &Call<'_>) -> ApiResult {
    let [digest] = call.args.require(["digest"])?;
    let state = call.state;
    let secret = state.config.get().api.secret.expose().to_owned();
    let salt =
        cookie(&call.headers, UNLOGIN_COOKIE).filter(|s| state.logins.salts.get(s).is_some());
    let matches = salt.as_ref().is_some_and(|salt| {
        let expected = hex(&Md5::digest(format!("zlmediakit:{secret}:{salt}")));
        !secret.is_empty() && constant_time_eq(digest.as_bytes(), expected.as_bytes())
    });
    let Some(salt) = salt.filter(|_| matches) else {
        tracing::info!(peer = %call.peer, "api login refused: digest does not match");
        return Err(salted(
            call,
            ApiError::new(Code::Auth, "Digest does not match, incorrect secret?"),
        ));
    };
    state.logins.salts.remove(&salt);
    let token = state.logins.logins.issue((), LOGIN_LIFE);
    tracing::info!(peer = %call.peer, "api login");
    Ok(with_cookies(
        serde_json::Map::new(),
        &[
            set_cookie(LOGIN_COOKIE, &token, LOGIN_LIFE),
            set_cookie(UNLOGIN_COOKIE, &salt, Duration::ZERO),
        ],
    ))
}

/// `logout`: the login cookie is forgotten and cleared; the answer carries a salt for the
/// next login (`cookie`), as ZLMediaKit's does.
pub(crate) fn logout(call: &Call<'_>) -> ApiResult {
    let logins = &call.state.logins;
    let mut body = serde_json::Map::new();
    let mut cookies = Vec::new();
    match cookie(&call.headers, LOGIN_COOKIE).filter(|t| logins.logins.remove(t).is_some()) {
        Some(token) => cookies.push(set_cookie(LOGIN_COOKIE, &token, Duration::ZERO)),
        None => {
            body.insert("msg".into(), "You are not logined".into());
        }
    }
    let salt = match cookie(&call.headers, UNLOGIN_COOKIE).filter(|s| logins.salts.get(s).is_some())
    {
        Some(salt) => salt,
        None => {
            let salt = logins.salts.issue((), SALT_LIFE);
            cookies.push(set_cookie(UNLOGIN_COOKIE, &salt, SALT_LIFE));
            salt
        }
    };
    body.insert("cookie".into(), salt.into());
    Ok(with_cookies(body, &cookies))
}

/// The salt cookie a -100 answer sets.
pub(crate) fn salt_cookie(salt: &str) -> String {
    set_cookie(UNLOGIN_COOKIE, salt, SALT_LIFE)
}

/// A `Set-Cookie` value: ZLMediaKit's `name=value;expires=…;path=/` (an IMF-fixdate), plus
/// `Max-Age`, `HttpOnly` and `SameSite=Strict` (the console never reads them from script).
/// A zero `life` clears the cookie.
fn set_cookie(name: &str, value: &str, life: Duration) -> String {
    let expires = httpdate::fmt_http_date(std::time::SystemTime::now() + life);
    format!(
        "{name}={value};expires={expires};path=/;Max-Age={};HttpOnly;SameSite=Strict",
        life.as_secs()
    )
}

fn with_cookies(body: serde_json::Map<String, serde_json::Value>, cookies: &[String]) -> Answer {
    let mut full = serde_json::Map::new();
    full.insert("code".into(), 0.into());
    full.extend(body);
    let mut resp = super::json_response(&serde_json::Value::Object(full), false);
    for cookie in cookies {
        if let Ok(v) = HeaderValue::from_str(cookie) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Answer::Raw(resp)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equality whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_zlms() {
        // RFC 1321's test vector: lower-case hex, as ZLMediaKit's console sends it.
        assert_eq!(hex(&Md5::digest("abc")), "900150983cd24fb0d6963f7d28e17f72");
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
