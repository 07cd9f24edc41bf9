//! The directory listing under `http.rootPath` is safe whatever the names in it: a directory
//! named `javascript:alert(1)` is an inert relative link, not a script in the server's origin,
//! and `<`, `"`, `&`, space, `#`, `?` and non-ASCII are percent-encoded in the href and
//! HTML-escaped in the text; following each link opens that directory.

use e2e::*;

const SCRIPT: &str = "javascript:alert(1)";
const ODD: &str = "a <b> \"c\" & d #e ?f ü";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_hrefs_are_percent_encoded_and_texts_escaped() {
    let root = tempfile::tempdir().expect("tempdir");
    for name in [SCRIPT, ODD] {
        std::fs::create_dir_all(root.path().join("dir").join(name)).expect("mkdir");
    }
    std::fs::write(root.path().join("dir").join(SCRIPT).join("inside.txt"), "x").expect("write");
    let server = start_server_with(|o| o.file_root = Some(root.path().to_owned())).await;
    let client = reqwest::Client::new();

    let resp = client
        .get(http_url(&server, "dir/"))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
    let html = resp.text().await.expect("html");
    assert_eq!(
        html,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>/dir/</title></head>\
         <body><h1>/dir/</h1><ul><li><a href=\"../\">../</a></li>\
         <li><a href=\"./a%20%3Cb%3E%20%22c%22%20%26%20d%20%23e%20%3Ff%20%C3%BC/\">\
         a &lt;b&gt; &quot;c&quot; &amp; d #e ?f ü/</a></li>\
         <li><a href=\"./javascript%3Aalert%281%29/\">javascript:alert(1)/</a></li>\
         </ul></body></html>"
    );

    // A browser resolves each href against the page's URL (RFC 3986 §5.2); the result is the
    // directory itself, listed in turn.
    let page = reqwest::Url::parse(&http_url(&server, "dir/")).expect("url");
    for (href, name) in [
        ("./javascript%3Aalert%281%29/", SCRIPT),
        (
            "./a%20%3Cb%3E%20%22c%22%20%26%20d%20%23e%20%3Ff%20%C3%BC/",
            ODD,
        ),
    ] {
        let url = page.join(href).expect("join");
        assert_eq!(url.scheme(), "http", "{href}");
        let resp = client.get(url.clone()).send().await.expect("GET");
        assert_eq!(resp.status().as_u16(), 200, "{url}");
        let html = resp.text().await.expect("html");
        let title = name
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;");
        assert!(
            html.contains(&format!("<h1>/dir/{title}/</h1>")),
            "{url}: {html}"
        );
        if name == SCRIPT {
            assert!(
                html.contains("<li><a href=\"./inside.txt\">inside.txt</a></li>"),
                "{html}"
            );
        }
    }
    server.shutdown().await;
}
