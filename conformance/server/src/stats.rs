//! `GET /stats`: what the Socket.IO app holds right now, as JSON, for the
//! soak test (`conformance/soak/soak.js`) and anyone watching a run:
//!
//! ```text
//! {"sessions":0,"websockets":0,"namespaces":3,"sockets":0,"rooms":0,"pendingAcks":0,
//!  "recoverySessions":0,"recoveryPackets":0,"rssBytes":9437184}
//! ```
//! Every field but `rssBytes` is [`socketio::ServerStats`] (see its docs for
//! what each counts); `rssBytes` is the process's resident set (`VmRSS` of
//! `/proc/self/status`; `null` where that file does not exist).

use engineio::ResponseBody;
use serde_json::Value;
use socketio::SocketIo;

/// The answer to `GET /stats`, or `None` for any other request.
pub(crate) fn route<B>(
    req: &http::Request<B>,
    io: &SocketIo,
) -> Option<http::Response<ResponseBody>> {
    if req.uri().path() != "/stats" || req.method() != http::Method::GET {
        return None;
    }
    let mut body = serde_json::to_value(io.stats()).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut body {
        map.insert(
            "rssBytes".to_owned(),
            rss_bytes().map_or(Value::Null, Value::from),
        );
    }
    let mut res = http::Response::new(ResponseBody::from(body.to_string()));
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    Some(res)
}

/// `VmRSS` of `/proc/self/status`, in bytes.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn rss_is_read() {
        assert!(super::rss_bytes().is_some_and(|b| b > 0));
    }
}
