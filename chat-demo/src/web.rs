//! HTTP routing: the page (embedded at compile time), the official
//! `socket.io-client` bundle (read from disk at startup), and everything
//! under `/socket.io/` handed to the Socket.IO service.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use engineio::ResponseBody;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use socketio::SocketIo;

/// Where the client bundle is unless `--client-js` says otherwise.
pub(crate) const DEFAULT_CLIENT_JS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/node_modules/socket.io-client/dist/socket.io.min.js"
);

/// The URL the page loads the client from (as the Node server serves it).
const CLIENT_JS_PATH: &str = "/socket.io/socket.io.js";
/// Its source map, as the bundle's `sourceMappingURL` names it.
const CLIENT_MAP_PATH: &str = "/socket.io/socket.io.min.js.map";

const INDEX_HTML: &str = include_str!("../static/index.html");
const APP_JS: &str = include_str!("../static/app.js");
const STYLE_CSS: &str = include_str!("../static/style.css");

/// Same-origin everything; no inline script or style.
const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Files read at startup.
#[derive(Debug, Default)]
pub(crate) struct Assets {
    client_js: Option<Bytes>,
    client_map: Option<Bytes>,
}

impl Assets {
    /// Reads the client bundle at `path` and its `.map` beside it. A missing
    /// bundle is logged (the page then says what to do) but is not fatal.
    pub(crate) fn load(path: &Path) -> Assets {
        let client_js = match std::fs::read(path) {
            Ok(b) => Some(Bytes::from(b)),
            Err(e) => {
                tracing::error!(
                    path = %path.display(),
                    error = %e,
                    "socket.io client bundle not found: run `npm ci` in chat-demo/ \
                     (or pass --client-js <path>); the page cannot connect without it"
                );
                None
            }
        };
        let mut map_path = PathBuf::from(path).into_os_string();
        map_path.push(".map");
        let client_map = std::fs::read(&map_path).ok().map(Bytes::from);
        Assets {
            client_js,
            client_map,
        }
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<ResponseBody> {
    let mut res = Response::new(ResponseBody::new(body));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

fn text(status: StatusCode, body: &'static str) -> Response<ResponseBody> {
    respond(
        status,
        "text/plain; charset=utf-8",
        Bytes::from_static(body.as_bytes()),
    )
}

/// The static routes; `None` for a path that is not one of them.
fn static_file(path: &str, assets: &Assets) -> Option<Response<ResponseBody>> {
    let res = match path {
        "/" | "/index.html" => {
            let mut res = respond(
                StatusCode::OK,
                "text/html; charset=utf-8",
                Bytes::from_static(INDEX_HTML.as_bytes()),
            );
            res.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            );
            res
        }
        "/app.js" => respond(
            StatusCode::OK,
            "text/javascript; charset=utf-8",
            Bytes::from_static(APP_JS.as_bytes()),
        ),
        "/style.css" => respond(
            StatusCode::OK,
            "text/css; charset=utf-8",
            Bytes::from_static(STYLE_CSS.as_bytes()),
        ),
        CLIENT_JS_PATH => match &assets.client_js {
            Some(b) => respond(StatusCode::OK, "text/javascript; charset=utf-8", b.clone()),
            None => text(
                StatusCode::NOT_FOUND,
                "socket.io client bundle missing: run `npm ci` in chat-demo/\n",
            ),
        },
        CLIENT_MAP_PATH => match &assets.client_map {
            Some(b) => respond(StatusCode::OK, "application/json", b.clone()),
            None => text(StatusCode::NOT_FOUND, "no source map\n"),
        },
        "/favicon.ico" => respond(StatusCode::NO_CONTENT, "image/x-icon", Bytes::new()),
        _ => return None,
    };
    Some(res)
}

/// Routes one request. The client bundle lives under the Socket.IO path, so
/// its exact paths are checked before handing `/socket.io/...` to `io`.
pub(crate) async fn route(
    req: Request<Incoming>,
    io: SocketIo,
    assets: Arc<Assets>,
) -> Result<Response<ResponseBody>, Infallible> {
    let path = req.uri().path();
    let is_client_file = path == CLIENT_JS_PATH || path == CLIENT_MAP_PATH;
    if !is_client_file && io.matches(&req) {
        return Ok(io.handle(req).await);
    }
    let Some(mut res) = static_file(path, &assets) else {
        return Ok(text(StatusCode::NOT_FOUND, "not found\n"));
    };
    match *req.method() {
        Method::GET => {}
        Method::HEAD => *res.body_mut() = ResponseBody::default(),
        _ => {
            let mut res = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return Ok(res);
        }
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_routes() {
        let assets = Assets::default();
        let ok = |p: &str| static_file(p, &assets).map(|r| r.status());
        assert_eq!(ok("/"), Some(StatusCode::OK));
        assert_eq!(ok("/app.js"), Some(StatusCode::OK));
        assert_eq!(ok("/style.css"), Some(StatusCode::OK));
        assert_eq!(ok(CLIENT_JS_PATH), Some(StatusCode::NOT_FOUND));
        assert_eq!(ok("/socket.io/"), None);
        assert_eq!(ok("/nope"), None);
    }

    #[test]
    fn page_loads_the_local_client() {
        assert!(INDEX_HTML.contains(r#"src="/socket.io/socket.io.js""#));
        assert!(INDEX_HTML.contains(r#"src="/app.js""#));
        // User data is never put in the page as HTML.
        assert!(!APP_JS.contains("innerHTML"));
    }

    /// The `data-testid` contract of README.md: each id is in the page or
    /// set by the script (the e2e test checks what they do).
    #[test]
    fn automation_contract_is_in_the_page() {
        for id in [
            "nick-input",
            "nick-submit",
            "room-list",
            "room-create-input",
            "room-create-submit",
            "message-input",
            "message-send",
            "messages",
            "users",
            "typing",
            "connection-state",
            "error",
        ] {
            let attr = format!(r#"data-testid="{id}""#);
            assert_eq!(INDEX_HTML.matches(&attr).count(), 1, "{id}");
        }
        for id in ["room", "message", "message-text", "user"] {
            assert!(APP_JS.contains(&format!("dataset.testid = '{id}'")), "{id}");
        }
        for attr in ["author", "room", "delivered"] {
            assert!(APP_JS.contains(&format!("li.dataset.{attr} = ")), "{attr}");
        }
    }

    #[test]
    fn bundle_is_read_from_disk() {
        let dir = std::env::temp_dir().join(format!("chat-demo-web-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let js = dir.join("client.min.js");
        std::fs::write(&js, "/* js */").unwrap();
        std::fs::write(dir.join("client.min.js.map"), "{}").unwrap();
        let assets = Assets::load(&js);
        assert_eq!(assets.client_js.as_deref(), Some(&b"/* js */"[..]));
        assert_eq!(assets.client_map.as_deref(), Some(&b"{}"[..]));
        assert!(Assets::load(&dir.join("missing.js")).client_js.is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
