//! The HTTP file server for `http.rootPath` (recordings included): GET and HEAD, single byte
//! ranges (RFC 9110 §14) so players can seek, MIME types by extension, directory listings
//! when `http.dirMenu=1`, and on_http_access as ZLMediaKit applies it.
//!
//! Access: with on_http_access configured, each file is asked for, unless an earlier answer
//! covers it: the reply's `path` (a directory, default the file's own) and `second` (how long)
//! are remembered under a cookie set on the answer, as ZLMediaKit does. Without the hook, only
//! clients in `http.allow_ip_range` may read files. Paths are decoded, `..` and NUL are refused
//! whatever their encoding, and the resolved file must lie inside the root after symlinks.

use crate::tokens::Tokens;
use crate::AppState;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use registry::{Protocol, SessionInfo};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// The cookie carrying an on_http_access decision.
const COOKIE: &str = "FERROSTREAM_HTTP_ACCESS";
/// Decisions remembered at most; the oldest are forgotten first.
const MAX_GRANTS: usize = 10_000;

/// on_http_access decisions by cookie: the directory they cover.
pub(crate) struct Grants(Tokens<String>);

impl Default for Grants {
    fn default() -> Self {
        Grants(Tokens::new(MAX_GRANTS))
    }
}

impl Grants {
    fn allows(&self, cookie: &str, path: &str) -> bool {
        self.0
            .get(cookie)
            .is_some_and(|scope| path.starts_with(scope.as_str()))
    }

    fn grant(&self, scope: String, life: Duration) -> String {
        self.0.issue(scope, life)
    }
}

/// Serves `path` from the file root, or `None` when there is no file root.
pub(crate) async fn serve(
    state: &AppState,
    peer: SocketAddr,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
) -> Option<Response> {
    let root = state.options.file_root.as_ref()?;
    if method != Method::GET && method != Method::HEAD {
        return Some(StatusCode::METHOD_NOT_ALLOWED.into_response());
    }
    let Some(relative) = safe_relative(path) else {
        return Some((StatusCode::FORBIDDEN, "forbidden path").into_response());
    };
    let Ok(root) = tokio::fs::canonicalize(root).await else {
        return Some((StatusCode::NOT_FOUND, "not found").into_response());
    };
    let Ok(file) = tokio::fs::canonicalize(root.join(&relative)).await else {
        return Some((StatusCode::NOT_FOUND, "not found").into_response());
    };
    if !file.starts_with(&root) {
        // A symlink out of the root.
        return Some((StatusCode::FORBIDDEN, "forbidden path").into_response());
    }
    let is_dir = tokio::fs::metadata(&file).await.is_ok_and(|m| m.is_dir());
    let set_cookie = match access(state, peer, path, query, headers, &file, is_dir).await {
        Access::Allowed(cookie) => cookie,
        Access::Refused(msg) => return Some((StatusCode::FORBIDDEN, msg).into_response()),
    };
    let mut resp = if is_dir {
        if !path.ends_with('/') {
            let mut r = StatusCode::MOVED_PERMANENTLY.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("{path}/")) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        } else if tokio::fs::metadata(file.join("index.html")).await.is_ok() {
            send_file(&file.join("index.html"), method, headers).await
        } else if state.options.dir_menu {
            listing(&file, path).await
        } else {
            (StatusCode::FORBIDDEN, "directory listing is off").into_response()
        }
    } else {
        send_file(&file, method, headers).await
    };
    if let Some(cookie) = set_cookie {
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Some(resp)
}

/// The request path as a relative file path, or `None` for anything that could leave the root
/// (`..` in any encoding, NUL, backslashes) or is not valid UTF-8 once decoded.
fn safe_relative(path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(path)?;
    let mut out = PathBuf::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => return None,
            s if s.contains('\0') || s.contains('\\') => return None,
            s => out.push(s),
        }
    }
    Some(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

enum Access {
    /// Allowed; a cookie to set when the decision may be reused.
    Allowed(Option<String>),
    Refused(String),
}

async fn access(
    state: &AppState,
    peer: SocketAddr,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    file: &Path,
    is_dir: bool,
) -> Access {
    if !state.hooks.enabled(hooks::Hook::OnHttpAccess) {
        return if (state.options.allow_ip)(peer.ip()) {
            Access::Allowed(None)
        } else {
            Access::Refused("Your ip is not allowed to access the service.".into())
        };
    }
    let cookie = crate::tokens::cookie(headers, COOKIE);
    if cookie.is_some_and(|c| state.grants.allows(&c, path)) {
        return Access::Allowed(None);
    }
    let session = SessionInfo {
        id: state.registry.next_session_id(),
        protocol: Protocol::HttpFlv,
        peer,
        local: state.options.local_addr,
        params: query.to_owned(),
    };
    let header_list: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| Some((canonical_header(k.as_str()), v.to_str().ok()?.to_owned())))
        .collect();
    let file_path = file.display().to_string();
    match state
        .hooks
        .on_http_access(&session, path, &file_path, is_dir, &header_list)
        .await
    {
        Ok(Some(grant)) if grant.second > 0 => {
            let scope = if grant.path.is_empty() {
                // The requested file's directory.
                path.rsplit_once('/').map_or("/", |(dir, _)| dir).to_owned() + "/"
            } else {
                grant.path
            };
            let id = state
                .grants
                .grant(scope.clone(), Duration::from_secs(grant.second));
            Access::Allowed(Some(format!(
                "{COOKIE}={id}; Path={scope}; Max-Age={}; HttpOnly",
                grant.second
            )))
        }
        Ok(_) => Access::Allowed(None),
        Err(refused) => Access::Refused(refused.msg),
    }
}

/// `user-agent` → `User-Agent`, as ZLMediaKit's `header.*` keys are spelled.
fn canonical_header(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The MIME type of a file by its extension.
pub(crate) fn mime(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "mp4" | "m4v" => "video/mp4",
        "m4s" => "video/iso.segment",
        "m4a" => "audio/mp4",
        "ts" => "video/mp2t",
        "m3u8" => "application/vnd.apple.mpegurl",
        "flv" => "video/x-flv",
        "mp3" => "audio/mpeg",
        "aac" => "audio/aac",
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "txt" | "log" => "text/plain; charset=utf-8",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// A byte range of a file of `len` bytes from a `Range` header (one range only).
fn byte_range(value: &str, len: u64) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            (len.saturating_sub(n), len.checked_sub(1)?)
        }
        (s, "") => (s.parse().ok()?, len.checked_sub(1)?),
        (s, e) => (
            s.parse().ok()?,
            e.parse::<u64>().ok()?.min(len.checked_sub(1)?),
        ),
    };
    (start <= end && start < len).then_some((start, end))
}

async fn send_file(path: &Path, method: &Method, headers: &HeaderMap) -> Response {
    let Ok(mut file) = tokio::fs::File::open(path).await else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let Ok(len) = file.metadata().await.map(|m| m.len()) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, len.saturating_sub(1)),
        Some(value) => match byte_range(value, len) {
            Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e),
            None => {
                let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    r.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return r;
            }
        },
    };
    let count = if len == 0 { 0 } else { end - start + 1 };
    let body = if method == Method::HEAD || count == 0 {
        Body::empty()
    } else {
        if file.seek(std::io::SeekFrom::Start(start)).await.is_err() {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Body::from_stream(tokio_util::io::ReaderStream::new(file.take(count)))
    };
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime(path)));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&count.to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    resp
}

/// A directory's listing as HTML. Entry names are the file system's, so anyone who can create
/// a file (an app or stream name ends up in a recording's path) chooses them: each href is the
/// name percent-encoded as one path segment (RFC 3986 §2.1, §3.3) behind `./`, so that no name
/// can be read as a scheme (`javascript:…`, §4.2) or as a query or fragment, and each text is
/// HTML-escaped.
async fn listing(dir: &Path, url_path: &str) -> Response {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mut names = Vec::new();
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_dir = entry.file_type().await.is_ok_and(|t| t.is_dir());
        names.push((name, is_dir));
    }
    names.sort();
    let title = escape(&percent_decode(url_path).unwrap_or_else(|| url_path.to_owned()));
    let mut html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><ul><li><a href=\"../\">../</a></li>"
    );
    for (name, is_dir) in names {
        let slash = if is_dir { "/" } else { "" };
        html.push_str(&format!(
            "<li><a href=\"./{}{slash}\">{}{slash}</a></li>",
            encode_segment(&name),
            escape(&name)
        ));
    }
    html.push_str("</ul></body></html>");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

/// `segment` percent-encoded (RFC 3986 §2.1): every byte but the unreserved characters
/// (§2.3), so the result is one path segment whatever the name holds (`/`, `:`, `?`, `#`, `%`).
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for &b in segment.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `s` as HTML text or attribute value (the five characters HTML gives meaning to).
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_is_refused_in_every_spelling() {
        for bad in [
            "/../etc/passwd",
            "/a/%2e%2e/b",
            "/%2E%2E/x",
            "/a/..",
            "/a%00b",
            "/a%5c..%5cb",
            "/%ff",
        ] {
            assert_eq!(safe_relative(bad), None, "{bad}");
        }
        assert_eq!(
            safe_relative("/record/a%20b.mp4"),
            Some(PathBuf::from("record/a b.mp4"))
        );
        assert_eq!(safe_relative("/./a//b/"), Some(PathBuf::from("a/b")));
    }

    #[test]
    fn ranges() {
        assert_eq!(byte_range("bytes=0-99", 1000), Some((0, 99)));
        assert_eq!(byte_range("bytes=900-", 1000), Some((900, 999)));
        assert_eq!(byte_range("bytes=-100", 1000), Some((900, 999)));
        assert_eq!(byte_range("bytes=990-2000", 1000), Some((990, 999)));
        assert_eq!(byte_range("bytes=1000-", 1000), None);
        assert_eq!(byte_range("bytes=5-1", 1000), None);
        assert_eq!(byte_range("bytes=0-1,5-6", 1000), None);
        assert_eq!(byte_range("items=0-1", 1000), None);
    }

    #[test]
    fn segments_are_encoded_whole_and_decode_back() {
        let name = "javascript:alert(1) <a href=\"x\">&#?%/ü";
        let encoded = encode_segment(name);
        assert_eq!(
            encoded,
            "javascript%3Aalert%281%29%20%3Ca%20href%3D%22x%22%3E%26%23%3F%25%2F%C3%BC"
        );
        assert_eq!(percent_decode(&encoded).as_deref(), Some(name));
        assert_eq!(encode_segment("a-b.c_d~1"), "a-b.c_d~1");
    }

    #[test]
    fn header_names_as_zlm_spells_them() {
        assert_eq!(canonical_header("user-agent"), "User-Agent");
        assert_eq!(canonical_header("host"), "Host");
    }
}
