//! Serving the official client bundle (Node's `serveClient`): the files of a
//! `socket.io-client/dist` directory at `<path>socket.io.js`, `.min.js`,
//! `.esm.min.js`, `.msgpack.min.js` and their `.map`, with the reference
//! server's content types, ETag and cache header.

use std::path::Path;

use bytes::Bytes;
use engineio::ResponseBody;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};

use crate::error::Error;

/// The bundle files the reference server answers for.
const FILES: [&str; 8] = [
    "socket.io.js",
    "socket.io.js.map",
    "socket.io.min.js",
    "socket.io.min.js.map",
    "socket.io.esm.min.js",
    "socket.io.esm.min.js.map",
    "socket.io.msgpack.min.js",
    "socket.io.msgpack.min.js.map",
];

/// A bundle file larger than this is refused at start (the official ones are
/// under 400 KB).
const MAX_FILE: u64 = 16 << 20;

/// The client files, read once when the server is built.
pub(crate) struct ClientFiles {
    files: Vec<(&'static str, Bytes)>,
    etag: HeaderValue,
    weak_etag: HeaderValue,
}

impl std::fmt::Debug for ClientFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientFiles")
            .field(
                "files",
                &self.files.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("etag", &self.etag)
            .finish()
    }
}

/// The `version` of `package.json` in `dir`'s parent (the npm package the
/// `dist` directory belongs to).
fn package_version(dir: &Path) -> Option<String> {
    let json = std::fs::read(dir.parent()?.join("package.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&json).ok()?;
    let version = v.get("version")?.as_str()?;
    // Only what is safe inside a quoted ETag.
    version
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".-+_".contains(&b))
        .then(|| version.to_owned())
}

/// FNV-1a over every file: an ETag when there is no `package.json`.
fn content_hash(files: &[(&'static str, Bytes)]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, data) in files {
        for b in name.bytes().chain(data.iter().copied()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

impl ClientFiles {
    /// Reads the bundle files found in `dir`.
    ///
    /// # Errors
    /// If `dir` holds none of them, or one cannot be read or is too large.
    pub(crate) fn load(dir: &Path) -> Result<ClientFiles, Error> {
        let mut files = Vec::new();
        for name in FILES {
            let path = dir.join(name);
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if meta.len() > MAX_FILE {
                tracing::error!(path = %path.display(), "client bundle file too large");
                return Err(Error::InvalidConfig(
                    "serve_client: a bundle file is over 16 MiB",
                ));
            }
            let data = std::fs::read(&path).map_err(|e| Error::Engine(e.into()))?;
            files.push((name, Bytes::from(data)));
        }
        if files.is_empty() {
            tracing::error!(dir = %dir.display(), "no socket.io client bundle in serve_client's directory");
            return Err(Error::InvalidConfig(
                "serve_client: the directory holds no socket.io client bundle",
            ));
        }
        // The reference uses the client's version as the ETag.
        let tag = package_version(dir).unwrap_or_else(|| content_hash(&files));
        let etag = HeaderValue::from_str(&format!("\"{tag}\""))
            .map_err(|_| Error::InvalidConfig("serve_client: bad version"))?;
        let weak_etag = HeaderValue::from_str(&format!("W/\"{tag}\""))
            .map_err(|_| Error::InvalidConfig("serve_client: bad version"))?;
        tracing::debug!(dir = %dir.display(), files = files.len(), etag = ?etag, "serving the client bundle");
        Ok(ClientFiles {
            files,
            etag,
            weak_etag,
        })
    }

    /// The answer if `req` asks for a bundle file under `prefix` (the
    /// Socket.IO path, e.g. `/socket.io/`); `None` otherwise.
    pub(crate) fn answer<B>(
        &self,
        prefix: &str,
        req: &Request<B>,
    ) -> Option<Response<ResponseBody>> {
        if req.method() != Method::GET {
            return None;
        }
        let name = req.uri().path().strip_prefix(prefix)?;
        let (name, data) = self.files.iter().find(|(n, _)| *n == name)?;
        Some(self.respond(name, data, req.headers()))
    }

    fn respond(&self, name: &str, data: &Bytes, req: &HeaderMap) -> Response<ResponseBody> {
        let matches = req.get_all(header::IF_NONE_MATCH).iter().any(|v| {
            v.to_str().is_ok_and(|s| {
                s.split(',').any(|t| {
                    let t = t.trim();
                    t == "*" || t == self.etag || t == self.weak_etag
                })
            })
        });
        let body = if matches { Bytes::new() } else { data.clone() };
        let mut res = Response::new(ResponseBody::new(body));
        if matches {
            *res.status_mut() = StatusCode::NOT_MODIFIED;
            res.headers_mut().insert(header::ETAG, self.etag.clone());
            return res;
        }
        let content_type = if name.ends_with(".map") {
            "application/json; charset=utf-8"
        } else {
            "application/javascript; charset=utf-8"
        };
        let h = res.headers_mut();
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=0"),
        );
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        h.insert(header::ETAG, self.etag.clone());
        res
    }
}
