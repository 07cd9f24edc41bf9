//! The web console: the single-page app in the repository's `www/`, compiled into the binary
//! (rust-embed, which `include_bytes!`s every file) so that `cargo run` from any directory and
//! the Docker image serve the same bytes.
//!
//! It answers `GET`/`HEAD` of `/`, `/index.html` and `/assets/…`, and nothing else: every other
//! path goes on to the file server. When `http.rootPath` holds its own `index.html`, the console
//! steps aside entirely and the file server answers `/` as it always has (a deployment that
//! ships its own page, as with ZLMediaKit's `www/`, keeps it).
//!
//! The console is static: it reads nothing from the server but the public `/index/api/*` calls,
//! which check the secret or the login cookie themselves. Its answers carry a
//! `Content-Security-Policy` that allows scripts from this origin only, so a stream name that
//! somehow reached the page as markup still could not run.

use crate::AppState;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use std::fmt::Write as _;
use std::path::Path;

/// `www/` at build time.
#[derive(rust_embed::Embed)]
#[folder = "../../www/"]
#[exclude = "*.md"]
struct Assets;

/// Scripts and styles from this origin only; media from this origin and the players' `blob:`
/// MediaSource URLs; hls.js runs its transmuxer in a `blob:` worker.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                   img-src 'self' data:; media-src 'self' blob:; worker-src 'self' blob:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; \
                   frame-ancestors 'none'; form-action 'none'";

/// The console's answer for `path`, or `None` when the path is not the console's or the file
/// root holds its own `index.html`.
pub(crate) async fn serve(
    state: &AppState,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<Response> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let name = asset_name(path)?;
    let file = Assets::get(name)?;
    if let Some(root) = &state.options.file_root {
        if tokio::fs::metadata(root.join("index.html")).await.is_ok() {
            return None;
        }
    }
    let etag = etag(&file.metadata.sha256_hash());
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else if method == Method::HEAD {
        let mut r = StatusCode::OK.into_response();
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(file.data.len()));
        r
    } else {
        Body::from(file.data).into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::files::mime(Path::new(name))),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    // Revalidated on every load (the ETag makes that a 304), so a new binary's console is seen
    // at once instead of mixing cached and new modules.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Some(resp)
}

/// The embedded file a request path names: `/` is `index.html`; only `index.html` and files
/// under `assets/` are the console's.
fn asset_name(path: &str) -> Option<&str> {
    match path {
        "/" | "/index.html" => Some("index.html"),
        _ => path
            .strip_prefix('/')
            .filter(|p| p.starts_with("assets/") && !p.contains("..")),
    }
}

/// A strong ETag from the file's SHA-256 (its first 16 bytes, hex).
fn etag(hash: &[u8; 32]) -> String {
    let mut tag = String::with_capacity(34);
    tag.push('"');
    for b in &hash[..16] {
        let _ = write!(tag, "{b:02x}");
    }
    tag.push('"');
    tag
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{router, ApiOptions, AppState};
    use axum::extract::connect_info::MockConnectInfo;
    use axum::http::Request;
    use registry::Registry;
    use std::net::SocketAddr;
    use tower::ServiceExt;

    fn app(file_root: Option<std::path::PathBuf>) -> axum::Router {
        router(AppState::new(
            outputs::Outputs::new(Registry::default(), outputs::OutputsConfig::default()),
            hooks::Hooks::new(hooks::HookConfig::default()),
            config::Live::default(),
            ApiOptions {
                file_root,
                ..ApiOptions::default()
            },
        ))
        .layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 5000))))
    }

    async fn get(app: axum::Router, uri: &str, etag: Option<&str>) -> Response {
        let mut req = Request::get(uri);
        if let Some(tag) = etag {
            req = req.header(header::IF_NONE_MATCH, tag);
        }
        app.oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("response")
    }

    async fn text(resp: Response) -> String {
        let body = axum::body::to_bytes(resp.into_body(), 10 << 20)
            .await
            .expect("body");
        String::from_utf8(body.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn every_asset_is_served_with_its_type_and_revalidates() {
        let dir = tempfile_dir();
        for (uri, mime) in [
            ("/", "text/html; charset=utf-8"),
            ("/index.html", "text/html; charset=utf-8"),
            ("/assets/console.css", "text/css; charset=utf-8"),
            ("/assets/app.js", "text/javascript; charset=utf-8"),
            ("/assets/vendor/mpegts.js", "text/javascript; charset=utf-8"),
            (
                "/assets/vendor/hls.min.js",
                "text/javascript; charset=utf-8",
            ),
        ] {
            let resp = get(app(Some(dir.clone())), uri, None).await;
            assert_eq!(resp.status(), StatusCode::OK, "{uri}");
            assert_eq!(resp.headers()[header::CONTENT_TYPE], mime, "{uri}");
            assert_eq!(resp.headers()[header::CONTENT_SECURITY_POLICY], CSP);
            let tag = resp.headers()[header::ETAG]
                .to_str()
                .expect("etag")
                .to_owned();
            assert!(!text(resp).await.is_empty(), "{uri}");
            let again = get(app(Some(dir.clone())), uri, Some(&tag)).await;
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{uri}");
        }
        let page = text(get(app(None), "/", None).await).await;
        assert!(page.contains("<title>ferrostream</title>"), "{page}");
        // The licence notes are not part of what is served.
        let note = get(app(None), "/assets/vendor/mpegts.js.md", None).await;
        assert_eq!(note.status(), StatusCode::NOT_FOUND);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_root_with_its_own_index_html_wins() {
        let dir = tempfile_dir();
        std::fs::write(dir.join("index.html"), "their page").expect("write");
        assert_eq!(
            text(get(app(Some(dir.clone())), "/", None).await).await,
            "their page"
        );
        // Its assets step aside too: the file server answers (here, not found).
        let css = get(app(Some(dir.clone())), "/assets/console.css", None).await;
        assert_eq!(css.status(), StatusCode::NOT_FOUND);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn only_the_page_and_its_assets_are_the_consoles() {
        assert_eq!(asset_name("/"), Some("index.html"));
        assert_eq!(asset_name("/assets/app.js"), Some("assets/app.js"));
        assert_eq!(asset_name("/record/a/b.mp4"), None);
        assert_eq!(asset_name("/assets/../Cargo.toml"), None);
        assert_eq!(asset_name("/live/a/hls.m3u8"), None);
    }

    /// An empty directory of its own under the system temp dir.
    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ferrostream-console-{}-{:x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }
}
