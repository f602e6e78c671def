//! HTTP routing: the page (embedded at compile time), and everything under
//! `/socket.io/` handed to the Socket.IO service, which also serves the
//! official `socket.io-client` bundle (`SocketIoConfig::serve_client`).

use std::convert::Infallible;

use bytes::Bytes;
use engineio::ResponseBody;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use socketio::SocketIo;

/// Where the client bundle is unless `--client-dir` says otherwise.
pub(crate) const DEFAULT_CLIENT_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/node_modules/socket.io-client/dist"
);

const INDEX_HTML: &str = include_str!("../static/index.html");
const APP_JS: &str = include_str!("../static/app.js");
const STYLE_CSS: &str = include_str!("../static/style.css");

/// Same-origin everything; no inline script or style.
const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

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
fn static_file(path: &str) -> Option<Response<ResponseBody>> {
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
        "/favicon.ico" => respond(StatusCode::NO_CONTENT, "image/x-icon", Bytes::new()),
        _ => return None,
    };
    Some(res)
}

/// Routes one request: `/socket.io/...` (the protocol and the client bundle)
/// to `io`, the rest to the static page.
pub(crate) async fn route(
    req: Request<Incoming>,
    io: SocketIo,
) -> Result<Response<ResponseBody>, Infallible> {
    if io.matches(&req) {
        return Ok(io.handle(req).await);
    }
    let path = req.uri().path();
    let Some(mut res) = static_file(path) else {
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
        let ok = |p: &str| static_file(p).map(|r| r.status());
        assert_eq!(ok("/"), Some(StatusCode::OK));
        assert_eq!(ok("/app.js"), Some(StatusCode::OK));
        assert_eq!(ok("/style.css"), Some(StatusCode::OK));
        assert_eq!(ok("/socket.io/socket.io.js"), None);
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
}
