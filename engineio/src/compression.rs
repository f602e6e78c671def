//! HTTP compression of long-polling responses (Node's `httpCompression`
//! option): a response body of at least `threshold` bytes is sent gzip'd or
//! deflated when the request's `Accept-Encoding` allows it. WebSocket frames
//! are never compressed by it.

use std::io::Write;

use bytes::Bytes;
use flate2::Compression;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

use crate::service::ResponseBody;

/// HTTP compression of polling responses, on by default (as in Node).
///
/// ```
/// use engineio::{EngineConfig, HttpCompression};
/// let c = EngineConfig::default().http_compression(Some(HttpCompression::default().threshold(4096)));
/// assert_eq!(c.http_compression.map(|h| h.threshold), Some(4096));
/// let off = EngineConfig::default().http_compression(None);
/// assert!(off.http_compression.is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpCompression {
    /// Smallest body, in bytes, that is compressed (default 1024, Node's).
    pub threshold: usize,
    /// zlib level 0–9 (default 6, zlib's and Node's default).
    pub level: u32,
}

impl Default for HttpCompression {
    fn default() -> Self {
        HttpCompression {
            threshold: 1024,
            level: 6,
        }
    }
}

impl HttpCompression {
    /// Sets [`threshold`](Self::threshold).
    pub fn threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// Sets [`level`](Self::level) (values over 9 are taken as 9).
    pub fn level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }
}

impl HttpCompression {
    /// Compresses a response as polling responses are: a `200` body of at
    /// least [`threshold`](Self::threshold) bytes, gzip'd or deflated as the
    /// request's `Accept-Encoding` prefers (with `Content-Encoding` and
    /// `Vary: Accept-Encoding`); anything else is returned unchanged. Used by
    /// `socketio` for the client bundle; usable for your own responses.
    ///
    /// ```
    /// # async fn f() {
    /// use engineio::{HttpCompression, ResponseBody};
    /// let mut req = http::HeaderMap::new();
    /// req.insert("accept-encoding", http::HeaderValue::from_static("gzip"));
    /// let res = http::Response::new(ResponseBody::from("x".repeat(4096)));
    /// let res = HttpCompression::default().compress(&req, res).await;
    /// assert_eq!(res.headers()["content-encoding"], "gzip");
    /// # }
    /// ```
    pub async fn compress(
        &self,
        request_headers: &HeaderMap,
        res: Response<ResponseBody>,
    ) -> Response<ResponseBody> {
        maybe_compress(self, negotiate(request_headers), res).await
    }
}

/// A content coding the server can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    Gzip,
    Deflate,
}

impl Coding {
    fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
        }
    }
}

/// The coding `Accept-Encoding` prefers among gzip and deflate (ties go to
/// gzip, as with Node's `accepts(req).encodings(["gzip", "deflate"])`);
/// `None` if neither is acceptable.
pub(crate) fn negotiate(req: &HeaderMap) -> Option<Coding> {
    let mut best: Option<(Coding, u16)> = None;
    let mut star: Option<u16> = None;
    let mut explicit = [None::<u16>; 2];
    for value in req.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim();
            let mut q = 1000u16;
            for p in parts {
                if let Some(v) = p.trim().strip_prefix("q=") {
                    q = parse_q(v.trim()).unwrap_or(0);
                }
            }
            let slot = if name.eq_ignore_ascii_case("gzip") {
                explicit.get_mut(0)
            } else if name.eq_ignore_ascii_case("deflate") {
                explicit.get_mut(1)
            } else if name == "*" {
                star = Some(star.map_or(q, |s| s.max(q)));
                None
            } else {
                None
            };
            if let Some(slot) = slot {
                *slot = Some(slot.map_or(q, |s| s.max(q)));
            }
        }
    }
    for (coding, q) in [Coding::Gzip, Coding::Deflate].into_iter().zip(explicit) {
        let q = q.or(star).unwrap_or(0);
        if q > 0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((coding, q));
        }
    }
    best.map(|(c, _)| c)
}

/// A q-value in thousandths (`1`, `0.5`, `0.123`); `None` if malformed.
fn parse_q(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int: u16 = match int {
        "0" => 0,
        "1" => 1,
        _ => return None,
    };
    let mut thousandths = 0u16;
    for (i, b) in frac.bytes().enumerate() {
        let scale = [100u16, 10, 1].get(i).copied().unwrap_or(0);
        thousandths += u16::from(b - b'0') * scale;
    }
    let q = int * 1000 + thousandths;
    (q <= 1000).then_some(q)
}

fn compress(coding: Coding, level: u32, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let level = Compression::new(level.min(9));
    let out = Vec::with_capacity(data.len() / 2);
    match coding {
        Coding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(out, level);
            e.write_all(data)?;
            e.finish()
        }
        Coding::Deflate => {
            // HTTP's "deflate" is the zlib format (RFC 9110 §8.4.1.2), which
            // is what Node's zlib.createDeflate writes.
            let mut e = flate2::write::ZlibEncoder::new(out, level);
            e.write_all(data)?;
            e.finish()
        }
    }
}

/// Compresses a polling response if it is big enough and the client accepts
/// a coding; anything else is returned as it is.
pub(crate) async fn maybe_compress(
    config: &HttpCompression,
    coding: Option<Coding>,
    res: Response<ResponseBody>,
) -> Response<ResponseBody> {
    let Some(coding) = coding else { return res };
    if res.status() != StatusCode::OK || res.headers().contains_key(header::CONTENT_ENCODING) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(collected) = body.collect().await;
    let data: Bytes = collected.to_bytes();
    if data.len() < config.threshold {
        return Response::from_parts(parts, Full::new(data));
    }
    match compress(coding, config.level, &data) {
        Ok(compressed) => {
            parts.headers.insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(coding.name()),
            );
            parts.headers.remove(header::CONTENT_LENGTH);
            parts
                .headers
                .append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
            Response::from_parts(parts, Full::new(Bytes::from(compressed)))
        }
        Err(e) => {
            tracing::warn!(error = %e, "compression failed; sending the body as it is");
            Response::from_parts(parts, Full::new(data))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn accept(v: &str) -> Option<Coding> {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        negotiate(&h)
    }

    #[test]
    fn negotiation_follows_q_values() {
        assert_eq!(negotiate(&HeaderMap::new()), None);
        assert_eq!(accept("gzip, deflate, br"), Some(Coding::Gzip));
        assert_eq!(accept("deflate"), Some(Coding::Deflate));
        assert_eq!(accept("deflate, gzip"), Some(Coding::Gzip));
        assert_eq!(accept("gzip;q=0.5, deflate"), Some(Coding::Deflate));
        assert_eq!(accept("gzip;q=0, deflate;q=0"), None);
        assert_eq!(accept("identity"), None);
        assert_eq!(accept("br"), None);
        assert_eq!(accept("*"), Some(Coding::Gzip));
        assert_eq!(accept("gzip;q=0, *;q=0.1"), Some(Coding::Deflate));
        assert_eq!(accept("GZIP;q=1.000"), Some(Coding::Gzip));
        assert_eq!(accept("gzip;q=2"), None);
        assert_eq!(accept("gzip;q=bad"), None);
    }

    #[test]
    fn q_values_parse_in_thousandths() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("0.123"), Some(123));
        assert_eq!(parse_q("1.0"), Some(1000));
        assert_eq!(parse_q("1.5"), None);
        assert_eq!(parse_q("0.1234"), None);
        assert_eq!(parse_q(""), None);
    }

    #[tokio::test]
    async fn bodies_over_the_threshold_are_compressed() {
        let cfg = HttpCompression::default();
        let big = "4hello".repeat(400);
        let res = maybe_compress(
            &cfg,
            Some(Coding::Gzip),
            Response::new(Full::new(Bytes::from(big.clone()))),
        )
        .await;
        assert_eq!(res.headers()[header::CONTENT_ENCODING], "gzip");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let mut out = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, big);

        let res = maybe_compress(
            &cfg,
            Some(Coding::Deflate),
            Response::new(Full::new(Bytes::from(big.clone()))),
        )
        .await;
        assert_eq!(res.headers()[header::CONTENT_ENCODING], "deflate");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let mut out = String::new();
        flate2::read::ZlibDecoder::new(&body[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, big);

        let small = "4hello".repeat(10);
        let res = maybe_compress(
            &cfg,
            Some(Coding::Gzip),
            Response::new(Full::new(Bytes::from(small.clone()))),
        )
        .await;
        assert!(!res.headers().contains_key(header::CONTENT_ENCODING));
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, small.as_bytes());
    }
}
