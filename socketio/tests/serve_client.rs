//! serveClient: the bundle files of a directory under the Socket.IO path,
//! with the reference's content types, ETag (the client's version), cache
//! header and 304s; missing files fall through to the protocol. (The
//! conformance suite checks the real npm bundle byte for byte.)

// Helpers outside `#[test]` fns are test code too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;

use socketio::{SocketIo, SocketIoConfig};
use support::http_raw;

/// A fresh `<tmp>/pkg/dist` with a few bundle files; `version` goes into
/// `<tmp>/pkg/package.json` when given.
fn bundle_dir(tag: &str, version: Option<&str>) -> PathBuf {
    let root = std::env::temp_dir().join(format!("sio-serve-client-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let dist = root.join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(dist.join("socket.io.js"), "/* full */ var io;\n").unwrap();
    std::fs::write(
        dist.join("socket.io.min.js"),
        "var io;//# sourceMappingURL=socket.io.min.js.map",
    )
    .unwrap();
    std::fs::write(dist.join("socket.io.min.js.map"), r#"{"version":3}"#).unwrap();
    std::fs::write(dist.join("socket.io.esm.min.js"), "export{};").unwrap();
    std::fs::write(dist.join("unrelated.txt"), "not served").unwrap();
    if let Some(v) = version {
        std::fs::write(
            root.join("package.json"),
            format!(r#"{{"name":"socket.io-client","version":"{v}"}}"#),
        )
        .unwrap();
    }
    dist
}

async fn serve(config: SocketIoConfig) -> SocketAddr {
    let io = SocketIo::new(config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { io.serve(listener, std::future::pending()).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundle_files_with_types_etag_and_304() {
    let dir = bundle_dir("etag", Some("4.8.4"));
    let addr = serve(SocketIoConfig::default().serve_client(&dir)).await;
    for (name, ctype) in [
        ("socket.io.js", "application/javascript; charset=utf-8"),
        ("socket.io.min.js", "application/javascript; charset=utf-8"),
        (
            "socket.io.esm.min.js",
            "application/javascript; charset=utf-8",
        ),
        ("socket.io.min.js.map", "application/json; charset=utf-8"),
    ] {
        // A query string (cache busting) is ignored, as in Node.
        let res = http_raw(addr, "GET", &format!("/socket.io/{name}?v=1"), &[], b"").await;
        assert_eq!(res.status, 200, "{name}");
        assert_eq!(res.body, std::fs::read(dir.join(name)).unwrap(), "{name}");
        assert_eq!(res.header("content-type"), Some(ctype), "{name}");
        assert_eq!(res.header("etag"), Some("\"4.8.4\""), "{name}");
        assert_eq!(res.header("cache-control"), Some("public, max-age=0"));
    }
    for tag in ["\"4.8.4\"", "W/\"4.8.4\""] {
        let res = http_raw(
            addr,
            "GET",
            "/socket.io/socket.io.js",
            &[("If-None-Match", tag)],
            b"",
        )
        .await;
        assert_eq!(res.status, 304, "{tag}");
        assert!(res.body.is_empty());
    }
    let res = http_raw(
        addr,
        "GET",
        "/socket.io/socket.io.js",
        &[("If-None-Match", "\"4.7.0\"")],
        b"",
    )
    .await;
    assert_eq!(res.status, 200);
    // Files that are not there, or not bundle files, are not served: the
    // Engine.IO layer answers (a bad request without its query).
    for path in [
        "/socket.io/socket.io.msgpack.min.js",
        "/socket.io/unrelated.txt",
        "/socket.io/../dist/socket.io.js",
    ] {
        let res = http_raw(addr, "GET", path, &[], b"").await;
        assert_eq!(res.status, 400, "{path}");
    }
    // The protocol is still there.
    support::Polling::open(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_are_compressed_when_the_request_accepts_it() {
    let dir = bundle_dir("gzip", Some("4.8.4"));
    let big = format!("/* big */{}", "var a = 1;\n".repeat(500));
    std::fs::write(dir.join("socket.io.js"), &big).unwrap();
    let addr = serve(SocketIoConfig::default().serve_client(&dir)).await;
    let res = http_raw(
        addr,
        "GET",
        "/socket.io/socket.io.js",
        &[("Accept-Encoding", "gzip")],
        b"",
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-encoding"), Some("gzip"));
    assert_eq!(res.header("etag"), Some("\"4.8.4\""));
    let mut out = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&res.body[..]), &mut out)
        .unwrap();
    assert_eq!(out, big);
    // Not asked, or compression off: as it is.
    let res = http_raw(addr, "GET", "/socket.io/socket.io.js", &[], b"").await;
    assert_eq!(res.header("content-encoding"), None);
    assert_eq!(res.text(), big);
    let engine = SocketIoConfig::default().engine.http_compression(None);
    let off = SocketIoConfig::default().serve_client(&dir).engine(engine);
    let addr = serve(off).await;
    let res = http_raw(
        addr,
        "GET",
        "/socket.io/socket.io.js",
        &[("Accept-Encoding", "gzip")],
        b"",
    )
    .await;
    assert_eq!(res.header("content-encoding"), None);
    assert_eq!(res.text(), big);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_package_json_the_etag_is_a_content_hash() {
    let dir = bundle_dir("hash", None);
    let addr = serve(SocketIoConfig::default().serve_client(&dir)).await;
    let res = http_raw(addr, "GET", "/socket.io/socket.io.js", &[], b"").await;
    let etag = res.header("etag").unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.len() == 18, "{etag}");
    let res = http_raw(
        addr,
        "GET",
        "/socket.io/socket.io.js",
        &[("If-None-Match", &etag)],
        b"",
    )
    .await;
    assert_eq!(res.status, 304);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_by_default_and_an_empty_directory_is_a_config_error() {
    let addr = serve(SocketIoConfig::default()).await;
    let res = http_raw(addr, "GET", "/socket.io/socket.io.js", &[], b"").await;
    assert_eq!(res.status, 400);
    let empty = std::env::temp_dir().join(format!("sio-serve-client-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let err = SocketIo::new(SocketIoConfig::default().serve_client(&empty)).unwrap_err();
    assert!(err.to_string().contains("serve_client"), "{err}");
}
