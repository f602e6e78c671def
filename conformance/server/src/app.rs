//! The Socket.IO application the conformance tests and benchmarks drive.
//!
//! Namespace `/`:
//! - on connect: emit `auth` with the CONNECT auth payload (`{}` if none);
//! - `message` (args…): emit `message-back` with the same args;
//! - `message-with-ack` (args…): ack with the same args;
//! - bench events: `echo` (ack with the same args), `join` (room; join, then ack),
//!   `bcast` (room, payload: emit `msg` with payload to every member of the
//!   room, sender included), `ping-all` (n, payload: n times emit `msg` with
//!   payload to all sockets of `/` through the broadcast path).
//!
//! Namespace `/custom`: emit `auth` with the CONNECT auth payload.

use socketio::{AckSender, Args, Socket, SocketIo, SocketIoConfig};

fn emit_auth(socket: &Socket) {
    let auth = socket.handshake().auth.clone();
    let _ = socket.emit("auth", &auth);
}

/// Builds the Socket.IO app.
pub(crate) fn socketio_app(config: SocketIoConfig) -> Result<SocketIo, socketio::Error> {
    let io = SocketIo::new(config)?;
    let io2 = io.clone();
    io.on_connection(move |socket: Socket| {
        let io = io2.clone();
        async move {
            emit_auth(&socket);
            socket.on_args("message", |socket: Socket, args: Args, _ack| async move {
                let _ = socket.emit_args("message-back", args);
            });
            socket.on_args("message-with-ack", |_s, args: Args, ack: AckSender| async move {
                let _ = ack.send_args(args);
            });
            socket.on_args("echo", |_s, args: Args, ack: AckSender| async move {
                let _ = ack.send_args(args);
            });
            socket.on("join", |socket: Socket, room: String, ack: AckSender| async move {
                socket.join(room);
                let _ = ack.send_many(&());
            });
            let io_b = io.clone();
            socket.on_args("bcast", move |_s, args: Args, _ack| {
                let io = io_b.clone();
                async move {
                    let Ok(room) = args.get::<String>(0) else { return };
                    let payload = args.get::<serde_json::Value>(1).unwrap_or_default();
                    let _ = io.to(room).emit("msg", &payload);
                }
            });
            let io_p = io.clone();
            socket.on_args("ping-all", move |_s, args: Args, _ack| {
                let io = io_p.clone();
                async move {
                    let n = args.get::<u64>(0).unwrap_or(0).min(100_000);
                    let payload = args.get::<serde_json::Value>(1).unwrap_or_default();
                    for _ in 0..n {
                        let _ = io.emit("msg", &payload);
                    }
                }
            });
        }
    });
    io.of("/custom").on_connection(|socket: Socket| async move {
        emit_auth(&socket);
    });
    Ok(io)
}
