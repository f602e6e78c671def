//! Two Socket.IO nodes sharing rooms through Redis (`socketio-redis`, the
//! `@socket.io/redis-adapter` 8.x format), in one process on two ports.
//!
//! Every client joins `lobby`; a `shout` on either node reaches the lobby on
//! both. Needs a Redis server:
//!
//! ```sh
//! redis-server --port 6379 &
//! cargo run -p socketio-examples --example redis -- --redis redis://127.0.0.1:6379
//! ```
//! Connect one client to each printed port: they hear each other's shouts.
//! With several machines, run one node per machine behind a sticky load
//! balancer (see the README's "Scaling out").

use socketio::{Socket, SocketIo, SocketIoConfig};
use socketio_redis::{RedisAdapter, RedisAdapterConfig};

async fn node(redis_url: &str, name: &'static str) -> Result<(), Box<dyn std::error::Error>> {
    let redis = RedisAdapter::connect(redis_url, RedisAdapterConfig::default()).await?;
    let io = SocketIo::builder(SocketIoConfig::default())
        .adapter(redis.factory())
        .build()?;
    let server = io.clone();
    io.on_connection(move |socket: Socket| {
        let io = server.clone();
        async move {
            socket.join("lobby");
            socket.on("shout", move |_s: Socket, (text,): (String,)| {
                let io = io.clone();
                async move {
                    // Members of "lobby" on every node, this one included.
                    if let Err(e) = io.to("lobby").emit("shout", &format!("{name}: {text}")) {
                        tracing::warn!(error = %e, "shout not sent");
                    }
                }
            });
        }
    });
    // Subscriptions are live: the other node's broadcasts reach us.
    redis.ready().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{name} listening on {}", listener.local_addr()?);
    io.serve(listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let url = match (args.next().as_deref(), args.next()) {
        (Some("--redis"), Some(url)) => url,
        _ => "redis://127.0.0.1:6379".to_owned(),
    };
    let (a, b) = tokio::join!(node(&url, "node-a"), node(&url, "node-b"));
    a?;
    b?;
    Ok(())
}
