//! `--app client-suites`: the servers the official clients' own Node test
//! suites expect (see `CLIENT-APP.md`), in one process.
//!
//! - Part A, `127.0.0.1:3000` `/engine.io/`: plain Engine.IO for the
//!   `engine.io-client` suite (pingInterval 500, maxPayload 100, `hi` on open,
//!   echo, `sendHeaders`, four `Set-Cookie` headers, `deny` refused).
//! - Part B, `127.0.0.1:3210` `/socket.io/`: Socket.IO for the
//!   `socket.io-client` suite (pingInterval 2000, handshakes answered after
//!   10 ms, the namespaces, events and refusals of upstream's support server).
//!
//! Prints `listening on 127.0.0.1:PORT_A 127.0.0.1:PORT_B` once both are bound.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use engineio::{EngineConfig, EngineIo, Message};
use http::{HeaderMap, HeaderValue, header};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Value, json};
use socketio::{
    AckSender, Args, Binary, ConnectError, Handshake, RecoveryConfig, Socket, SocketIo,
    SocketIoConfig,
};

/// Listening ports of both parts (0 = ephemeral).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ports {
    pub(crate) a: u16,
    pub(crate) b: u16,
}

// ----- dates and headers, formatted by `socketio` as Node does ----------------------------------

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `new Date()` as `JSON.stringify` writes it.
fn now_iso() -> String {
    Handshake::iso_date(now_millis()).unwrap_or_default()
}

/// `JSON.stringify(req.headers)`.
fn headers_json(headers: &HeaderMap) -> String {
    Handshake::node_headers(headers).to_string()
}

// ----- part A: Engine.IO --------------------------------------------------------------------

/// The four cookies of upstream's `initial_headers` hook.
fn set_cookies(headers: &mut HeaderMap) {
    let expires = format!("4=4; Expires={}", Handshake::http_date(now_millis()));
    let cookies = [
        "1=1; Max-Age=86400".to_owned(),
        "2=2; Path=/; HttpOnly; Secure; SameSite=Strict".to_owned(),
        "3=3; Max-Age=0".to_owned(),
        expires,
    ];
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            headers.append(header::SET_COOKIE, v);
        }
    }
}

/// The reply to one message of part A.
fn part_a_reply(msg: Message, headers: &HeaderMap) -> Message {
    match &msg {
        Message::Text(t) if t == "give binary" => {
            Message::Binary(Bytes::from_static(&[0, 1, 2, 3, 4]))
        }
        Message::Text(t) if t == "give utf8" => {
            Message::Text("пойду спать всем спокойной ночи".into())
        }
        Message::Text(t) if t == "sendHeaders" => Message::Text(headers_json(headers).into()),
        _ => msg,
    }
}

/// Part A: the `engine.io-client` suite's server.
pub(crate) fn part_a() -> Result<EngineIo, engineio::Error> {
    let config = EngineConfig::default()
        .ping_interval(Duration::from_millis(500))
        .ping_timeout(Duration::from_millis(20_000))
        .max_payload(100);
    EngineIo::builder(config)
        .allow_request(|req| {
            let deny = req.query("deny").is_some();
            async move { !deny }
        })
        .initial_headers(|_req, headers| set_cookies(headers))
        .build(|socket, mut incoming| async move {
            if socket.send_text("hi").is_err() {
                return;
            }
            while let Some((msg, headers)) = incoming.recv_with_headers().await {
                if socket.send(part_a_reply(msg, &headers)).is_err() {
                    break;
                }
            }
        })
}

// ----- part B: Socket.IO --------------------------------------------------------------------

/// JavaScript truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// The attachment a placeholder value stands for, if it is one.
fn placeholder<'a>(v: &Value, bins: &'a [Bytes]) -> Option<&'a Bytes> {
    let obj = v.as_object()?;
    if obj.get("_placeholder") != Some(&Value::Bool(true)) {
        return None;
    }
    let num = usize::try_from(obj.get("num")?.as_u64()?).ok()?;
    bins.get(num)
}

/// Whether a value is a binary argument (`Buffer.isBuffer` on the server side).
fn is_binary(v: Option<&Value>, bins: &[Bytes]) -> bool {
    v.is_some_and(|v| placeholder(v, bins).is_some())
}

/// A received value re-serialized with its binary parts as binary again.
struct WithBins<'a>(&'a Value, &'a [Bytes]);

impl Serialize for WithBins<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let Some(b) = placeholder(self.0, self.1) {
            return Binary(b.clone()).serialize(s);
        }
        match self.0 {
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&WithBins(item, self.1))?;
                }
                seq.end()
            }
            Value::Object(obj) => {
                let mut map = s.serialize_map(Some(obj.len()))?;
                for (k, v) in obj {
                    map.serialize_entry(k, &WithBins(v, self.1))?;
                }
                map.end()
            }
            other => other.serialize(s),
        }
    }
}

/// The 8 bytes upstream sends as a Buffer.
fn asdfasdf() -> Binary {
    Binary(Bytes::from_static(b"asdfasdf"))
}

fn emit0(socket: &Socket, event: &str) {
    let _ = socket.emit_args(event, Args::none());
}

/// The `ack` event: ask the client for an ack, emit `got it` when it answers
/// `(5, {test: truthy})`. Runs beside the socket's handlers, so that it does
/// not hold up the next events while it waits.
fn ack_roundtrip(socket: Socket) {
    tokio::spawn(async move {
        let answer = socket
            .timeout(Duration::from_secs(120))
            .emit_args_with_ack::<Vec<Value>>("ack", Args::none())
            .await;
        if let Ok(args) = answer {
            let five = args
                .first()
                .and_then(Value::as_f64)
                .is_some_and(|a| a == 5.0);
            let test = args.get(1).and_then(|b| b.get("test")).is_some_and(truthy);
            if five && test {
                emit0(&socket, "got it");
            }
        }
    });
}

/// Flags of the ordered-binary cases, per socket.
#[derive(Debug, Default)]
struct Order {
    abuff1: AtomicBool,
    blob1: AtomicBool,
    blob2: AtomicBool,
}

/// The main namespace's events (upstream `server.on("connection")`).
fn main_events(socket: &Socket) {
    socket.on_args("hi", |socket: Socket, _args: Args, _ack| async move {
        emit0(&socket, "hi");
    });
    // (arg, cb) => cb(arg): with no argument at all, `cb` is undefined in
    // Node and nothing is answered.
    socket.on_args("echo", |_s, args: Args, ack: AckSender| async move {
        if let Some(arg) = args.values().first() {
            if let Ok(reply) = Args::one(&WithBins(arg, args.binary())) {
                let _ = ack.send_args(reply);
            }
        }
    });
    socket.on_args("ack", |socket: Socket, _args: Args, _ack| async move {
        ack_roundtrip(socket);
    });
    socket.on_args("getAckDate", |_s, _args: Args, ack: AckSender| async move {
        let _ = ack.send(&now_iso());
    });
    socket.on_args("getDate", |socket: Socket, _args: Args, _ack| async move {
        let _ = socket.emit("takeDate", &now_iso());
    });
    socket.on_args(
        "getDateObj",
        |socket: Socket, _args: Args, _ack| async move {
            let _ = socket.emit("takeDateObj", &json!({ "date": now_iso() }));
        },
    );
    socket.on_args("getUtf8", |socket: Socket, _args: Args, _ack| async move {
        for s in [
            "てすと",
            "Я Б Г Д Ж Й",
            "Ä ä Ü ü ß",
            "utf8 — string",
            "utf8 — string",
        ] {
            let _ = socket.emit("takeUtf8", s);
        }
    });
    socket.on_args("false", |socket: Socket, _args: Args, _ack| async move {
        let _ = socket.emit("false", &false);
    });
    socket.on_args("doge", |socket: Socket, _args: Args, _ack| async move {
        let _ = socket.emit("doge", &asdfasdf());
    });
    socket.on_args("getbin", |socket: Socket, _args: Args, _ack| async move {
        let _ = socket.emit("takebin", &asdfasdf());
    });
    for (event, reply) in [("buffa", "buffack"), ("blob", "back")] {
        socket.on_args(event, move |socket: Socket, args: Args, _ack| async move {
            if is_binary(args.values().first(), args.binary()) {
                emit0(&socket, reply);
            }
        });
    }
    for (event, reply) in [("jsonbuff", "jsonbuff-ack"), ("jsonblob", "jsonblob-ack")] {
        socket.on_args(event, move |socket: Socket, args: Args, _ack| async move {
            let Some(a) = args.values().first() else {
                return;
            };
            if a.get("hello").and_then(Value::as_str) == Some("lol")
                && is_binary(a.get("message"), args.binary())
                && a.get("goodbye").and_then(Value::as_str) == Some("gotcha")
            {
                emit0(&socket, reply);
            }
        });
    }
    let order = Arc::new(Order::default());
    let o = order.clone();
    socket.on_args("abuff1", move |_s, args: Args, _ack| {
        let o = o.clone();
        async move {
            if is_binary(args.values().first(), args.binary()) {
                o.abuff1.store(true, Ordering::Release);
            }
        }
    });
    let o = order.clone();
    socket.on_args("abuff2", move |socket: Socket, _args: Args, _ack| {
        let o = o.clone();
        async move {
            if o.abuff1.load(Ordering::Acquire) {
                emit0(&socket, "abuff2-ack");
            }
        }
    });
    let o = order.clone();
    socket.on_args("blob1", move |_s, args: Args, _ack| {
        let o = o.clone();
        async move {
            if is_binary(args.values().first(), args.binary()) {
                o.blob1.store(true, Ordering::Release);
            }
        }
    });
    let o = order.clone();
    socket.on_args("blob2", move |_s, args: Args, _ack| {
        let o = o.clone();
        async move {
            let second = args.values().first().and_then(Value::as_str) == Some("second");
            if o.blob1.load(Ordering::Acquire) && second {
                o.blob2.store(true, Ordering::Release);
            }
        }
    });
    let o = order;
    socket.on_args("blob3", move |socket: Socket, args: Args, _ack| {
        let o = o.clone();
        async move {
            if is_binary(args.values().first(), args.binary())
                && o.blob1.load(Ordering::Acquire)
                && o.blob2.load(Ordering::Acquire)
            {
                emit0(&socket, "blob3-ack");
            }
        }
    });
    socket.on_args(
        "getHandshake",
        |socket: Socket, _args: Args, ack: AckSender| async move {
            let _ = ack.send(&socket.handshake().to_json());
        },
    );
    get_id(socket);
}

/// `getId` (cb) → cb(socket.id).
fn get_id(socket: &Socket) {
    socket.on_args(
        "getId",
        |socket: Socket, _args: Args, ack: AckSender| async move {
            let _ = ack.send(socket.id().as_str());
        },
    );
}

/// Part B: the `socket.io-client` suite's server.
pub(crate) fn part_b() -> Result<SocketIo, socketio::Error> {
    let config = SocketIoConfig::default().engine(
        EngineConfig::default()
            .path("/socket.io/")
            .ping_interval(Duration::from_millis(2000))
            .ping_timeout(Duration::from_millis(20_000))
            .max_payload(1_000_000),
    );
    // CLIENT-APP.md part B: connection state recovery on, 120 s, skip middlewares.
    let config = config.connection_state_recovery(
        RecoveryConfig::default()
            .max_disconnection_duration(Duration::from_millis(120_000))
            .skip_middlewares(true),
    );
    let io = SocketIo::builder(config)
        .allow_request(|_req| async {
            // Upstream's allowRequest answers after 10 ms; the client's
            // `timeout: 0` cases race against it.
            tokio::time::sleep(Duration::from_millis(10)).await;
            true
        })
        .build()?;

    let main = io.of("/");
    main.use_middleware(|socket: Socket| async move {
        // `socket.request._query.fail` is truthy.
        if socket
            .handshake()
            .query("fail")
            .is_some_and(|v| !v.is_empty())
        {
            Err(ConnectError::new("Auth failed (main namespace)"))
        } else {
            Ok(())
        }
    });
    main.on_connection(|socket: Socket| async move { main_events(&socket) });

    io.of("/foo")
        .on_connection(|socket: Socket| async move { get_id(&socket) });
    io.of("/abc").on_connection(|socket: Socket| async move {
        let _ = socket.emit("handshake", &socket.handshake().to_json());
    });
    let no = io.of("/no");
    no.use_middleware(|_socket: Socket| async {
        Err(ConnectError::new("Auth failed (custom namespace)"))
    });
    no.on_connection(|_socket: Socket| async {});
    for name in ["/timeout_socket", "/valid", "/asd"] {
        io.of(name).on_connection(|_socket: Socket| async {});
    }
    Ok(io)
}

// ----- running both -------------------------------------------------------------------------

/// Binds both parts, prints the listening line, serves until `shutdown`.
///
/// # Errors
/// A message for the command line if a part cannot be built or bound.
pub(crate) async fn run(ports: Ports, shutdown: impl Future<Output = ()>) -> Result<(), String> {
    let engine = part_a().map_err(|e| format!("part A: {e}"))?;
    let io = part_b().map_err(|e| format!("part B: {e}"))?;
    let bind = |port: u16| tokio::net::TcpListener::bind(("127.0.0.1", port));
    let la = bind(ports.a)
        .await
        .map_err(|e| format!("bind 127.0.0.1:{}: {e}", ports.a))?;
    let lb = bind(ports.b)
        .await
        .map_err(|e| format!("bind 127.0.0.1:{}: {e}", ports.b))?;
    let aa = la.local_addr().map_err(|e| e.to_string())?;
    let ab = lb.local_addr().map_err(|e| e.to_string())?;
    println!("listening on {aa} {ab}");

    let (tx, rx) = tokio::sync::watch::channel(false);
    let stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let serve_a = engine.serve(la, stop(rx.clone()));
    let serve_b = io.serve(lb, stop(rx));
    let signal = async move {
        shutdown.await;
        let _ = tx.send(true);
    };
    let ((), ra, rb) = tokio::join!(signal, serve_a, serve_b);
    tokio::time::sleep(Duration::from_millis(100)).await;
    ra.map_err(|e| format!("part A: {e}"))?;
    rb.map_err(|e| format!("part B: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_headers() {
        let mut h = HeaderMap::new();
        h.append("accept", HeaderValue::from_static("x"));
        h.append("accept", HeaderValue::from_static("y"));
        assert_eq!(headers_json(&h), r#"{"accept":"x, y"}"#);
    }

    #[test]
    fn truthiness() {
        assert!(truthy(&json!(true)) && truthy(&json!(1)) && truthy(&json!({})));
        assert!(!truthy(&json!(0)) && !truthy(&json!("")) && !truthy(&Value::Null));
    }
}
