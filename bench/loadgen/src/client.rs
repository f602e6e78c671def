//! One Socket.IO v5 client over a raw Engine.IO v4 WebSocket: the handshake,
//! then text frames in and out with pings (`2`) answered (`3`) on the way.

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// What every server sends each socket on connect (`auth` event); ignored.
pub const AUTH_PREFIX: &str = "42[\"auth\",";

#[derive(Debug)]
pub struct Client {
    ws: WebSocketStream<TcpStream>,
}

impl Client {
    /// TCP connect, WebSocket upgrade, read the Engine.IO open packet, send
    /// the Socket.IO CONNECT `40` for `/`, wait for `40{"sid":...}`.
    pub async fn connect(addr: &str) -> Result<Client, String> {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("tcp connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        // A small read buffer: 5000 clients at the 128 KiB default would
        // cost the load generator 640 MB.
        let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
        let (ws, _) = tokio_tungstenite::client_async_with_config(url, tcp, Some(config))
            .await
            .map_err(|e| format!("websocket handshake: {e}"))?;
        let mut client = Client { ws };
        let open = client.recv().await?;
        if !(open.starts_with("0{") && open.contains("\"sid\"")) {
            return Err(format!("expected an Engine.IO open packet, got {open:?}"));
        }
        client.send("40".to_owned()).await?;
        loop {
            let msg = client.recv().await?;
            if msg.starts_with("40{") && msg.contains("\"sid\"") {
                return Ok(client);
            }
            if !msg.starts_with(AUTH_PREFIX) {
                return Err(format!("expected a CONNECT ack, got {msg:?}"));
            }
        }
    }

    /// The next text frame that is not an Engine.IO ping; a ping is answered
    /// with a pong. An error on close, EOF, a binary frame or a transport error.
    pub async fn recv(&mut self) -> Result<Utf8Bytes, String> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                    self.send("3".to_owned()).await?;
                }
                Some(Ok(Message::Text(t))) => return Ok(t),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Binary(_))) => return Err("unexpected binary frame".into()),
                Some(Ok(Message::Close(c))) => return Err(format!("closed by server: {c:?}")),
                Some(Err(e)) => return Err(format!("websocket: {e}")),
                None => return Err("connection ended".into()),
            }
        }
    }

    /// Sends one text frame and flushes it.
    pub async fn send(&mut self, text: String) -> Result<(), String> {
        self.ws
            .send(Message::text(text))
            .await
            .map_err(|e| format!("send: {e}"))
    }

    /// Queues text frames and flushes them together (one write where possible).
    pub async fn send_all(
        &mut self,
        texts: impl IntoIterator<Item = String>,
    ) -> Result<(), String> {
        for t in texts {
            self.ws
                .feed(Message::text(t))
                .await
                .map_err(|e| format!("send: {e}"))?;
        }
        self.ws.flush().await.map_err(|e| format!("flush: {e}"))
    }
}

/// A JSON string literal of `len` printable bytes that starts with `tag`.
pub fn payload(tag: &str, len: usize) -> String {
    const FILL: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut s = String::with_capacity(len + 2);
    s.push('"');
    s.push_str(tag);
    let mut i = 0;
    while s.len() < len + 1 {
        s.push(char::from(FILL[i % FILL.len()]));
        i += 1;
    }
    s.push('"');
    s
}
