//! The five emit forms of the Socket.IO docs, one event each:
//!
//! | client emits | server does | who receives `news` |
//! |---|---|---|
//! | `to-self` | `socket.emit` | the sender |
//! | `to-all` | `io.emit` | every socket of `/` |
//! | `to-others` | `socket.broadcast().emit` | everyone but the sender |
//! | `to-room`, room | `io.to(room).emit` | every member of the room |
//! | `to-room-others`, room | `socket.to(room).emit` | the members but the sender (`socket.broadcast.to(room)`) |
//!
//! plus `join` / `leave` with a room name.
//!
//! ```sh
//! cargo run -p socketio-examples --example rooms
//! ```
//! then, from two browser tabs with the client loaded:
//! `socket.emit("join", "a"); socket.on("news", console.log); socket.emit("to-room-others", "a")`.

use socketio::{Socket, SocketIo, SocketIoConfig};

fn port() -> u16 {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (Some("--port"), Some(p)) => p.parse().unwrap_or(3000),
        _ => 3000,
    }
}

fn handlers(io: &SocketIo) {
    // `io` is cheap to clone; handlers keep a clone for the server-wide forms.
    let server = io.clone();
    io.on_connection(move |socket: Socket| {
        let io = server.clone();
        async move {
            socket.on(
                "join",
                |s: Socket, room: String| async move { s.join(room) },
            );
            socket.on(
                "leave",
                |s: Socket, room: String| async move { s.leave(room) },
            );

            // 1. socket.emit: back to the sender only.
            socket.on("to-self", |s: Socket| async move {
                let _ = s.emit("news", "to you alone");
            });
            // 2. io.emit: every socket of the main namespace.
            let all = io.clone();
            socket.on("to-all", move |_s: Socket| {
                let io = all.clone();
                async move {
                    let _ = io.emit("news", "to everyone");
                }
            });
            // 3. socket.broadcast.emit: everyone but the sender.
            socket.on("to-others", |s: Socket| async move {
                let _ = s.broadcast().emit("news", "to everyone else");
            });
            // 4. io.to(room).emit: every member of the room.
            let rooms = io.clone();
            socket.on("to-room", move |_s: Socket, room: String| {
                let io = rooms.clone();
                async move {
                    let _ = io
                        .to(room.clone())
                        .emit("news", &format!("to all of {room}"));
                }
            });
            // 5. socket.broadcast.to(room).emit: the members but the sender.
            socket.on("to-room-others", |s: Socket, room: String| async move {
                let _ = s
                    .to(room.clone())
                    .emit("news", &format!("to the rest of {room}"));
            });
        }
    });
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let io = SocketIo::new(SocketIoConfig::default())?;
    handlers(&io);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port())).await?;
    println!("listening on {}", listener.local_addr()?);
    io.serve(listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
