//! CORS, with the options of Node's `cors` package as socket.io's `cors`
//! option passes them: origin (any / list / predicate / reflect),
//! credentials, methods, allowed and exposed headers, max age.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::service::{ResponseBody, plain_response};

/// Which origins may make cross-origin requests.
#[derive(Clone)]
#[non_exhaustive]
pub enum CorsOrigin {
    /// `Access-Control-Allow-Origin: *` (the request's origin is reflected
    /// instead when credentials are on, since browsers refuse `*` with them).
    Any,
    /// The request's origin, whatever it is, is reflected (Node's `origin: true`).
    Reflect,
    /// Only these exact origins (e.g. `https://example.com`) are reflected;
    /// others get no CORS headers.
    List(Vec<String>),
    /// Origins for which the predicate returns `true` are reflected (Node's
    /// `origin: RegExp` or function).
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl std::fmt::Debug for CorsOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CorsOrigin::Any => f.write_str("Any"),
            CorsOrigin::Reflect => f.write_str("Reflect"),
            CorsOrigin::List(l) => f.debug_tuple("List").field(l).finish(),
            CorsOrigin::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

/// The methods a preflight allows when none are set (the `cors` package's default).
pub const DEFAULT_CORS_METHODS: &str = "GET,HEAD,PUT,PATCH,POST,DELETE";

/// CORS policy, applied to every Engine.IO HTTP response and to preflight
/// `OPTIONS` requests (answered `204` before any protocol check).
///
/// # Defaults
/// | option | default | as in Node's `cors` |
/// |---|---|---|
/// | `origin` | set by the constructor | `origin` |
/// | `credentials` | `false` | `credentials` |
/// | `methods` | `GET,HEAD,PUT,PATCH,POST,DELETE` | `methods` |
/// | `allowed_headers` | `None`: the preflight's `Access-Control-Request-Headers` are reflected | `allowedHeaders` |
/// | `exposed_headers` | none | `exposedHeaders` |
/// | `max_age` | `None` (no header) | `maxAge` |
///
/// ```
/// use std::time::Duration;
/// use engineio::Cors;
/// let cors = Cors::origins(["https://example.com"])
///     .credentials(true)
///     .methods(["GET", "POST"])
///     .allowed_headers(["content-type", "authorization"])
///     .exposed_headers(["x-request-id"])
///     .max_age(Duration::from_secs(600));
/// # let _ = cors;
/// let by_suffix = Cors::predicate(|origin| origin.ends_with(".example.com"));
/// # let _ = by_suffix;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Cors {
    /// Allowed origins.
    pub origin: CorsOrigin,
    /// Whether to send `Access-Control-Allow-Credentials: true`.
    pub credentials: bool,
    /// `Access-Control-Allow-Methods` of a preflight.
    pub methods: Vec<String>,
    /// `Access-Control-Allow-Headers` of a preflight; `None` reflects the
    /// request's `Access-Control-Request-Headers`.
    pub allowed_headers: Option<Vec<String>>,
    /// `Access-Control-Expose-Headers` of every response.
    pub exposed_headers: Vec<String>,
    /// `Access-Control-Max-Age` of a preflight (whole seconds).
    pub max_age: Option<Duration>,
}

impl Cors {
    fn with_origin(origin: CorsOrigin) -> Self {
        Cors {
            origin,
            credentials: false,
            methods: DEFAULT_CORS_METHODS.split(',').map(str::to_owned).collect(),
            allowed_headers: None,
            exposed_headers: Vec::new(),
            max_age: None,
        }
    }

    /// Any origin, no credentials (what `cors: {origin: "*"}` does in Node).
    pub fn any() -> Self {
        Self::with_origin(CorsOrigin::Any)
    }

    /// The request's origin reflected, whatever it is (Node's `origin: true`).
    pub fn reflect() -> Self {
        Self::with_origin(CorsOrigin::Reflect)
    }

    /// Only the given origins.
    pub fn origins<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::with_origin(CorsOrigin::List(
            origins.into_iter().map(Into::into).collect(),
        ))
    }

    /// Origins the predicate accepts.
    pub fn predicate<F>(f: F) -> Self
    where
        F: Fn(&str) -> bool + Send + Sync + 'static,
    {
        Self::with_origin(CorsOrigin::Predicate(Arc::new(f)))
    }

    /// Sets whether credentials are allowed.
    pub fn credentials(mut self, yes: bool) -> Self {
        self.credentials = yes;
        self
    }

    /// Sets the methods a preflight allows.
    pub fn methods<I, S>(mut self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.methods = methods.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the headers a preflight allows (instead of reflecting the request's).
    pub fn allowed_headers<I, S>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_headers = Some(headers.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the response headers scripts may read.
    pub fn exposed_headers<I, S>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.exposed_headers = headers.into_iter().map(Into::into).collect();
        self
    }

    /// Sets how long a browser may cache a preflight's answer.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// The `Access-Control-Allow-Origin` value for a request's origin, if any.
    fn allow_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        match (&self.origin, origin) {
            (CorsOrigin::Any, Some(o)) if self.credentials => Some(o.clone()),
            (CorsOrigin::Any, _) => Some(HeaderValue::from_static("*")),
            (CorsOrigin::Reflect, o) => o.cloned(),
            (CorsOrigin::List(list), Some(o)) => list
                .iter()
                .any(|allowed| allowed.as_bytes() == o.as_bytes())
                .then(|| o.clone()),
            (CorsOrigin::Predicate(f), Some(o)) => {
                o.to_str().ok().is_some_and(|s| f(s)).then(|| o.clone())
            }
            (CorsOrigin::List(_) | CorsOrigin::Predicate(_), None) => None,
        }
    }
}

fn joined(values: &[String]) -> Option<HeaderValue> {
    if values.is_empty() {
        return None;
    }
    HeaderValue::from_str(&values.join(",")).ok()
}

/// Adds the CORS headers of a response to `req` (every answer, refusals included).
pub(crate) fn apply(cors: &Cors, req: &HeaderMap, res: &mut HeaderMap) {
    let Some(v) = cors.allow_origin(req.get(header::ORIGIN)) else {
        return;
    };
    let reflected = v != "*";
    res.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    if reflected {
        res.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    if cors.credentials {
        res.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    if let Some(v) = joined(&cors.exposed_headers) {
        res.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
    }
}

/// The answer to a preflight `OPTIONS` (its origin headers are added by [`apply`]).
pub(crate) fn preflight(cors: &Cors, req: &HeaderMap) -> http::Response<ResponseBody> {
    let mut res = plain_response(StatusCode::NO_CONTENT, "");
    let h = res.headers_mut();
    if let Some(v) = joined(&cors.methods) {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
    }
    match &cors.allowed_headers {
        Some(list) => {
            if let Some(v) = joined(list) {
                h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
            }
        }
        None => {
            if let Some(v) = req.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
                h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
                h.append(
                    header::VARY,
                    HeaderValue::from_static("Access-Control-Request-Headers"),
                );
            }
        }
    }
    if let Some(age) = cors.max_age {
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from(age.as_secs()),
        );
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(o: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        h
    }

    fn applied(cors: &Cors, req: &HeaderMap) -> HeaderMap {
        let mut res = HeaderMap::new();
        apply(cors, req, &mut res);
        res
    }

    #[test]
    fn origin_policies() {
        let good = origin("https://a.example");
        let none = HeaderMap::new();
        let allow = |c: &Cors, r: &HeaderMap| {
            applied(c, r)
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(allow(&Cors::any(), &good).as_deref(), Some("*"));
        assert_eq!(
            allow(&Cors::any().credentials(true), &good).as_deref(),
            Some("https://a.example")
        );
        assert_eq!(
            allow(&Cors::reflect(), &good).as_deref(),
            Some("https://a.example")
        );
        assert_eq!(allow(&Cors::reflect(), &none), None);
        let pred = Cors::predicate(|o| o.ends_with(".example"));
        assert_eq!(allow(&pred, &good).as_deref(), Some("https://a.example"));
        assert_eq!(allow(&pred, &origin("https://evil.test")), None);
        assert_eq!(allow(&pred, &none), None);
        let list = Cors::origins(["https://b.example"]);
        assert_eq!(allow(&list, &good), None);
    }

    #[test]
    fn preflight_options() {
        let cors = Cors::reflect()
            .credentials(true)
            .methods(["GET", "POST"])
            .allowed_headers(["content-type", "x-token"])
            .exposed_headers(["x-id"])
            .max_age(Duration::from_secs(600));
        let mut req = origin("https://a.example");
        req.insert(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("x-other"),
        );
        let mut res = preflight(&cors, &req);
        apply(&cors, &req, res.headers_mut());
        let h = res.headers();
        let get = |n: header::HeaderName| h.get(n).unwrap().to_str().unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(get(header::ACCESS_CONTROL_ALLOW_METHODS), "GET,POST");
        assert_eq!(
            get(header::ACCESS_CONTROL_ALLOW_HEADERS),
            "content-type,x-token"
        );
        assert_eq!(get(header::ACCESS_CONTROL_MAX_AGE), "600");
        assert_eq!(get(header::ACCESS_CONTROL_EXPOSE_HEADERS), "x-id");
        assert_eq!(get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS), "true");
        assert_eq!(
            get(header::ACCESS_CONTROL_ALLOW_ORIGIN),
            "https://a.example"
        );
    }
}
