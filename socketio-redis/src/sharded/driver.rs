//! The Redis glue of the sharded adapter: `SPUBLISH` (pipelined, in order),
//! `PUBSUB SHARDNUMSUB`, and the sharded subscriptions, kept equal to the
//! set of channels the namespaces want.
//!
//! Publishing and counting go through redis-rs: a reconnecting
//! `ConnectionManager` on one Redis, its cluster connection on a Redis Cluster
//! (`redis+cluster://h1:p1,h2:p2`: it routes `SPUBLISH` to the shard owning
//! the channel's slot and sums `SHARDNUMSUB` over the nodes).
//!
//! Subscribing uses connections of our own (RESP2, read by [`super::resp`]):
//! one to the single Redis, or one per primary of a cluster, each serving the
//! wanted channels whose slot that primary owns (`CLUSTER SLOTS`, refreshed
//! every 5 s, on a `MOVED` reply and when a connection fails). Each
//! reconnects with backoff and subscribes its channels again; a channel is
//! live once Redis confirmed it on the connection that holds it. Why not
//! redis-rs: 1.8 offers `SSUBSCRIBE` only on its cluster connection, and
//! there, after a primary was killed and restarted, the subscriptions were
//! not renewed (`ssub=0` on the new connection) or were lost after being
//! confirmed (seen in `conformance/test/cluster-redis-cluster.test.js`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use redis::IntoConnectionInfo;
use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::AbortHandle;

use super::adapter::ShardedNs;
use super::config::ShardedAdapterConfig;
use super::resp::{self, PubSubReply};
use crate::error::Error;

/// One message to publish.
struct Publish {
    channel: String,
    payload: Vec<u8>,
}

/// What a channel carries.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum RouteKind {
    /// The namespace's channel or a room's: messages from other nodes.
    Message,
    /// This node's response channel.
    Response,
}

struct Route {
    kind: RouteKind,
    adapter: Weak<ShardedNs>,
}

/// Where Redis is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// One server (`redis://`, `redis+unix://`).
    Single(String),
    /// The seed nodes of a cluster, each as a `redis://` URL.
    Cluster(Vec<String>),
}

/// `redis+cluster://[user:pass@]h1:p1,h2:p2[,…]` is a cluster (the
/// credentials apply to every node); anything else one server.
pub(crate) fn parse_target(url: &str) -> Result<Target, Error> {
    let Some(rest) = url.strip_prefix("redis+cluster://") else {
        return Ok(Target::Single(url.to_owned()));
    };
    let (auth, hosts) = match rest.rsplit_once('@') {
        Some((a, h)) => (format!("{a}@"), h),
        None => (String::new(), rest),
    };
    let nodes: Vec<String> = hosts
        .trim_end_matches('/')
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| format!("redis://{auth}{h}"))
        .collect();
    if nodes.is_empty() {
        return Err(Error::Redis(redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "redis+cluster:// URL without a node",
        ))));
    }
    Ok(Target::Cluster(nodes))
}

/// A connection for commands: one server or a cluster.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    pub(crate) async fn query(&self, cmd: &redis::Cmd) -> redis::RedisResult<redis::Value> {
        match self.clone() {
            Conn::Single(mut c) => cmd.query_async(&mut c).await,
            Conn::Cluster(mut c) => cmd.query_async(&mut c).await,
        }
    }

    async fn pipe(&self, p: &redis::Pipeline) -> redis::RedisResult<()> {
        match self.clone() {
            Conn::Single(mut c) => p.query_async(&mut c).await,
            Conn::Cluster(mut c) => p.query_async(&mut c).await,
        }
    }
}

pub(crate) struct Driver {
    pub(crate) uid: String,
    pub(crate) config: ShardedAdapterConfig,
    conn: Conn,
    publish_tx: mpsc::Sender<Publish>,
    dropped: AtomicU64,
    /// Wanted channel → who handles it.
    routes: Mutex<HashMap<String, Route>>,
    /// Bumped when `routes` (or a cluster's slot map) changed: every
    /// subscriber connection looks again at what it must hold.
    changes: watch::Sender<u64>,
    /// The channels whose subscription Redis confirmed.
    live: watch::Sender<HashSet<String>>,
    tasks: Mutex<Vec<AbortHandle>>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
    }
}

/// 16 hex characters, as the reference's `randomBytes(8).toString("hex")`.
pub(crate) fn uid16() -> String {
    let mut raw = [0u8; 8];
    if getrandom::fill(&mut raw).is_err() {
        // Not a secret: uniqueness across nodes is all that matters.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        raw = (t as u64).to_le_bytes();
    }
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The count of `channel` in a `PUBSUB SHARDNUMSUB` reply (an array of
/// name / count pairs from one server, a map once the cluster connection
/// summed the nodes' replies).
pub(crate) fn count_of(v: &redis::Value, channel: &str) -> usize {
    use redis::Value as V;
    let name_is = |k: &V| matches!(k, V::BulkString(b) if b == channel.as_bytes());
    let num = |n: &V| match n {
        V::Int(i) => usize::try_from(*i).unwrap_or(0),
        _ => 0,
    };
    match v {
        V::Array(items) => items
            .chunks(2)
            .filter_map(|pair| match pair {
                [k, n] if name_is(k) => Some(num(n)),
                _ => None,
            })
            .sum(),
        V::Map(pairs) => pairs
            .iter()
            .filter(|(k, _)| name_is(k))
            .map(|(_, n)| num(n))
            .sum(),
        _ => 0,
    }
}

impl Driver {
    pub(crate) async fn connect(
        url: &str,
        config: ShardedAdapterConfig,
    ) -> Result<Arc<Driver>, Error> {
        let (msg_tx, msg_rx) = mpsc::channel::<(String, Bytes)>(config.max_queued_messages.max(1));
        let sub_error = |e: String| {
            Error::Redis(redis::RedisError::from((
                redis::ErrorKind::Io,
                "sharded subscriber",
                e,
            )))
        };
        let (conn, subscribers) = match parse_target(url)? {
            Target::Single(url) => {
                let client = redis::Client::open(url.as_str())?;
                let manager_config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(config.requests_timeout))
                    .set_response_timeout(Some(config.requests_timeout))
                    .set_max_delay(config.max_reconnect_delay);
                let conn = client
                    .get_connection_manager_with_config(manager_config)
                    .await?;
                let info = client.get_connection_info().clone();
                // The subscriber must be reachable too before we say we are up.
                let first =
                    SingleSub::open(&info, config.requests_timeout, config.max_message_bytes)
                        .await
                        .map_err(sub_error)?;
                (Conn::Single(conn), Subscribers::Single(info, first))
            }
            Target::Cluster(nodes) => {
                let auth = nodes
                    .first()
                    .and_then(|u| u.strip_prefix("redis://"))
                    .and_then(|rest| rest.rsplit_once('@'))
                    .map(|(a, _)| format!("{a}@"))
                    .unwrap_or_default();
                let client = redis::cluster::ClusterClientBuilder::new(nodes)
                    .connection_timeout(config.requests_timeout)
                    .response_timeout(config.requests_timeout)
                    .build()?;
                let conn = Conn::Cluster(client.get_async_connection().await?);
                let slots = fetch_slots(&conn, config.requests_timeout)
                    .await
                    .map_err(sub_error)?;
                (conn, Subscribers::Cluster { auth, slots })
            }
        };
        let (publish_tx, publish_rx) = mpsc::channel(config.max_queued_publishes.max(1));
        let driver = Arc::new(Driver {
            uid: uid16(),
            config,
            conn: conn.clone(),
            publish_tx,
            dropped: AtomicU64::new(0),
            routes: Mutex::new(HashMap::new()),
            changes: watch::Sender::new(0),
            live: watch::Sender::new(HashSet::new()),
            tasks: Mutex::new(Vec::new()),
        });
        let weak = Arc::downgrade(&driver);
        let mut tasks = vec![
            tokio::spawn(publisher(conn.clone(), publish_rx)).abort_handle(),
            tokio::spawn(dispatcher(msg_rx, weak.clone())).abort_handle(),
        ];
        let changes = driver.changes.subscribe();
        match subscribers {
            Subscribers::Single(info, first) => {
                let sub = ShardSub {
                    info,
                    owner: Owner::All,
                    driver: weak,
                    changes,
                    out: msg_tx,
                    topology: None,
                };
                tasks.push(tokio::spawn(sub.run(Some(first))).abort_handle());
            }
            Subscribers::Cluster { auth, slots } => {
                let topo = Topology {
                    conn,
                    auth,
                    map: Arc::new(Mutex::new(slots)),
                    refresh: Arc::new(Notify::new()),
                    driver: weak,
                    changes,
                    out: msg_tx,
                };
                tasks.push(tokio::spawn(topo.run()).abort_handle());
            }
        }
        *lock(&driver.tasks) = tasks;
        tracing::info!(uid = %driver.uid, "redis sharded adapter connected");
        Ok(driver)
    }

    /// Queues a message for `SPUBLISH`; drops it (logged) when Redis cannot
    /// keep up and the queue is full.
    pub(crate) fn publish(&self, channel: String, payload: Vec<u8>) -> bool {
        match self.publish_tx.try_send(Publish { channel, payload }) {
            Ok(()) => true,
            Err(e) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed);
                if n % 1000 == 0 {
                    tracing::error!(dropped = n + 1, reason = %e, "redis publish queue full; message dropped");
                }
                false
            }
        }
    }

    /// `PUBSUB SHARDNUMSUB channel`, summed over a cluster's nodes.
    pub(crate) async fn shard_numsub(&self, channel: &str) -> Result<usize, Error> {
        let mut cmd = redis::cmd("PUBSUB");
        cmd.arg("SHARDNUMSUB").arg(channel);
        let v = tokio::time::timeout(self.config.requests_timeout, self.conn.query(&cmd))
            .await
            .map_err(|_| Error::Timeout("PUBSUB SHARDNUMSUB"))??;
        Ok(count_of(&v, channel))
    }

    /// Wants `channel` subscribed, its messages handed to `adapter`.
    pub(crate) fn add_route(&self, channel: String, kind: RouteKind, adapter: Weak<ShardedNs>) {
        lock(&self.routes).insert(channel, Route { kind, adapter });
        self.changes.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// No longer wants `channel`.
    pub(crate) fn remove_route(&self, channel: &str) {
        lock(&self.routes).remove(channel);
        self.changes.send_modify(|g| *g = g.wrapping_add(1));
    }

    fn wanted(&self) -> HashSet<String> {
        lock(&self.routes).keys().cloned().collect()
    }

    /// Waits until Redis confirmed the subscription of every channel given.
    pub(crate) async fn ready(&self, channels: &[String]) {
        let mut rx = self.live.subscribe();
        loop {
            if channels.iter().all(|c| rx.borrow_and_update().contains(c)) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Whether Redis confirmed the subscription of `channel`.
    pub(crate) fn is_live(&self, channel: &str) -> bool {
        self.live.borrow().contains(channel)
    }

    fn set_live(&self, channel: &str, on: bool) {
        self.live.send_if_modified(|live| {
            if on {
                // Only channels still wanted (a late confirmation of one
                // given up since is not live).
                lock(&self.routes).contains_key(channel) && live.insert(channel.to_owned())
            } else {
                live.remove(channel)
            }
        });
    }

    fn route(&self, channel: &str, payload: &[u8]) {
        let (kind, adapter) = {
            let routes = lock(&self.routes);
            match routes.get(channel) {
                Some(r) => (r.kind, r.adapter.upgrade()),
                None => return,
            }
        };
        let Some(adapter) = adapter else { return };
        match kind {
            RouteKind::Message => adapter.on_message(payload),
            RouteKind::Response => adapter.on_response(payload),
        }
    }
}

/// Hands what was heard to the namespaces, in order.
async fn dispatcher(mut rx: mpsc::Receiver<(String, Bytes)>, driver: Weak<Driver>) {
    while let Some((channel, payload)) = rx.recv().await {
        let Some(d) = driver.upgrade() else { return };
        match channel.strip_prefix('\0') {
            Some(confirmed) => d.set_live(confirmed, true),
            None => d.route(&channel, &payload),
        }
    }
}

/// Publishes in order. On one server, whatever is queued goes in one
/// pipeline (one round trip). On a cluster a pipeline must stay within one
/// slot: the batch is split by channel, each channel's messages in order in
/// its own pipeline, the pipelines sent together (Redis orders messages per
/// channel only, across shards there is no order to keep).
async fn publisher(conn: Conn, mut rx: mpsc::Receiver<Publish>) {
    let mut batch = Vec::with_capacity(64);
    let mut failing = false;
    while rx.recv_many(&mut batch, 256).await > 0 {
        let items = batch.drain(..).map(|p| (p.channel, p.payload));
        match publish_batch(&conn, "SPUBLISH", items).await {
            Ok(()) => {
                if failing {
                    tracing::info!("redis publishing works again");
                    failing = false;
                }
            }
            Err(e) => {
                if !failing {
                    tracing::error!(error = %e, "redis SPUBLISH failed; other nodes miss these messages (local delivery goes on)");
                    failing = true;
                }
            }
        }
    }
}

/// Sends `command channel payload` for each item, in order: one pipeline on
/// one server; on a cluster one pipeline per channel (a pipeline may not
/// cross slots), sent together.
pub(crate) async fn publish_batch(
    conn: &Conn,
    command: &str,
    items: impl Iterator<Item = (String, Vec<u8>)>,
) -> redis::RedisResult<()> {
    match conn {
        Conn::Single(_) => {
            let mut pipe = redis::pipe();
            for (channel, payload) in items {
                pipe.cmd(command).arg(channel).arg(payload).ignore();
            }
            conn.pipe(&pipe).await
        }
        Conn::Cluster(_) => {
            let mut order: Vec<String> = Vec::new();
            let mut by_channel: HashMap<String, redis::Pipeline> = HashMap::new();
            for (channel, payload) in items {
                let pipe = by_channel.entry(channel.clone()).or_insert_with(|| {
                    order.push(channel.clone());
                    redis::pipe()
                });
                pipe.cmd(command).arg(channel).arg(payload).ignore();
            }
            let pipes: Vec<redis::Pipeline> =
                order.iter().filter_map(|c| by_channel.remove(c)).collect();
            let results = futures_util::future::join_all(pipes.iter().map(|p| conn.pipe(p))).await;
            results.into_iter().find(Result::is_err).unwrap_or(Ok(()))
        }
    }
}

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// A subscriber connection of our own to one server (RESP2).
struct SingleSub {
    reader: Reader,
    writer: Writer,
    buf: BytesMut,
    max_bulk: usize,
}

impl SingleSub {
    async fn open(
        info: &redis::ConnectionInfo,
        timeout: Duration,
        max_bulk: usize,
    ) -> Result<SingleSub, String> {
        let connect = async {
            let (reader, writer): (Reader, Writer) = match info.addr() {
                redis::ConnectionAddr::Tcp(host, port) => {
                    let s = tokio::net::TcpStream::connect((host.as_str(), *port))
                        .await
                        .map_err(|e| e.to_string())?;
                    let _ = s.set_nodelay(true);
                    let (r, w) = tokio::io::split(s);
                    (Box::new(r), Box::new(w))
                }
                #[cfg(unix)]
                redis::ConnectionAddr::Unix(path) => {
                    let s = tokio::net::UnixStream::connect(path)
                        .await
                        .map_err(|e| e.to_string())?;
                    let (r, w) = tokio::io::split(s);
                    (Box::new(r), Box::new(w))
                }
                other => {
                    return Err(format!(
                        "unsupported address {other} (TLS is not compiled in)"
                    ));
                }
            };
            let mut sub = SingleSub {
                reader,
                writer,
                buf: BytesMut::with_capacity(16 * 1024),
                max_bulk,
            };
            let settings = info.redis_settings();
            if let Some(password) = settings.password() {
                let mut auth = redis::cmd("AUTH");
                if let Some(user) = settings.username() {
                    auth.arg(user);
                }
                auth.arg(password);
                sub.write(&auth.get_packed_command()).await?;
                if let resp::Frame::Error(e) = sub.next_frame().await? {
                    return Err(format!("AUTH refused: {e}"));
                }
            }
            Ok(sub)
        };
        tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| "connection timed out".to_owned())?
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.writer
            .write_all(bytes)
            .await
            .map_err(|e| e.to_string())?;
        self.writer.flush().await.map_err(|e| e.to_string())
    }

    /// A complete frame already read, if any.
    fn buffered_frame(&mut self) -> Result<Option<resp::Frame>, String> {
        match resp::parse(&self.buf, self.max_bulk) {
            Ok(Some((f, used))) => {
                let _ = self.buf.split_to(used);
                Ok(Some(f))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Reads more bytes; an error when the connection closed.
    async fn fill(&mut self) -> Result<(), String> {
        match self.reader.read_buf(&mut self.buf).await {
            Ok(0) => Err("connection closed by redis".to_owned()),
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn next_frame(&mut self) -> Result<resp::Frame, String> {
        loop {
            if let Some(f) = self.buffered_frame()? {
                return Ok(f);
            }
            self.fill().await?;
        }
    }
}

/// How the subscriber connections are set up.
enum Subscribers {
    /// One server: one connection, already open.
    Single(redis::ConnectionInfo, SingleSub),
    /// A cluster: one connection per primary of the slot map.
    Cluster {
        /// `user:pass@` of the seed URL, for every node.
        auth: String,
        slots: SlotMap,
    },
}

/// Redis Cluster key slot of a channel (CRC16-XMODEM of the name, or of its
/// `{hash tag}`, modulo 16384), as the server computes it.
pub(crate) fn key_slot(key: &str) -> u16 {
    let mut bytes = key.as_bytes();
    if let Some(open) = bytes.iter().position(|b| *b == b'{') {
        let rest = bytes.get(open + 1..).unwrap_or_default();
        if let Some(close) = rest.iter().position(|b| *b == b'}') {
            if close > 0 {
                bytes = rest.get(..close).unwrap_or_default();
            }
        }
    }
    let mut crc: u16 = 0;
    for b in bytes {
        crc ^= u16::from(*b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// Which primary serves which slots: `(first, last, host, port)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SlotMap(Vec<(u16, u16, String, u16)>);

impl SlotMap {
    fn owner(&self, slot: u16) -> Option<(&str, u16)> {
        self.0
            .iter()
            .find(|(a, b, _, _)| (*a..=*b).contains(&slot))
            .map(|(_, _, h, p)| (h.as_str(), *p))
    }

    fn primaries(&self) -> HashSet<(String, u16)> {
        self.0.iter().map(|(_, _, h, p)| (h.clone(), *p)).collect()
    }

    /// From a `CLUSTER SLOTS` reply.
    fn parse(v: &redis::Value) -> Option<SlotMap> {
        use redis::Value as V;
        let V::Array(ranges) = v else { return None };
        let mut out = Vec::new();
        for r in ranges {
            let V::Array(parts) = r else { continue };
            let (Some(V::Int(a)), Some(V::Int(b)), Some(V::Array(node))) =
                (parts.first(), parts.get(1), parts.get(2))
            else {
                continue;
            };
            let host = match node.first() {
                Some(V::BulkString(h)) => String::from_utf8_lossy(h).into_owned(),
                Some(V::SimpleString(h)) => h.clone(),
                _ => continue,
            };
            let Some(V::Int(port)) = node.get(1) else {
                continue;
            };
            let (Ok(a), Ok(b), Ok(port)) =
                (u16::try_from(*a), u16::try_from(*b), u16::try_from(*port))
            else {
                continue;
            };
            if host.is_empty() || host == "?" {
                continue;
            }
            out.push((a, b, host, port));
        }
        out.sort();
        (!out.is_empty()).then_some(SlotMap(out))
    }
}

async fn fetch_slots(conn: &Conn, timeout: Duration) -> Result<SlotMap, String> {
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("SLOTS");
    let v = tokio::time::timeout(timeout, conn.query(&cmd))
        .await
        .map_err(|_| "CLUSTER SLOTS timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    SlotMap::parse(&v).ok_or_else(|| "CLUSTER SLOTS: no slot served".to_owned())
}

/// The wanted channels a subscriber connection holds.
#[derive(Clone)]
enum Owner {
    /// All of them (one server).
    All,
    /// Those whose slot this primary serves.
    Primary {
        map: Arc<Mutex<SlotMap>>,
        host: String,
        port: u16,
    },
}

impl Owner {
    fn serves(&self, channel: &str) -> bool {
        match self {
            Owner::All => true,
            Owner::Primary { map, host, port } => lock(map)
                .owner(key_slot(channel))
                .is_some_and(|(h, p)| h == host && p == *port),
        }
    }

    /// Still a primary of the cluster (a task for a node that left ends).
    fn exists(&self) -> bool {
        match self {
            Owner::All => true,
            Owner::Primary { map, host, port } => {
                lock(map).primaries().contains(&(host.clone(), *port))
            }
        }
    }
}

/// Keeps one subscriber connection per primary of a cluster, and the slot
/// map they share up to date.
struct Topology {
    conn: Conn,
    auth: String,
    map: Arc<Mutex<SlotMap>>,
    refresh: Arc<Notify>,
    driver: Weak<Driver>,
    changes: watch::Receiver<u64>,
    out: mpsc::Sender<(String, Bytes)>,
}

impl Topology {
    async fn run(self) {
        let mut running: HashMap<(String, u16), tokio::task::JoinHandle<()>> = HashMap::new();
        let mut first = true;
        loop {
            let Some(d) = self.driver.upgrade() else {
                return;
            };
            let timeout = d.config.requests_timeout;
            drop(d);
            if !first {
                match fetch_slots(&self.conn, timeout).await {
                    Ok(m) => {
                        let changed = {
                            let mut cur = lock(&self.map);
                            let changed = *cur != m;
                            *cur = m;
                            changed
                        };
                        if changed {
                            tracing::info!("redis cluster slot map changed");
                            if let Some(d) = self.driver.upgrade() {
                                d.changes.send_modify(|g| *g = g.wrapping_add(1));
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "redis cluster slot map not refreshed"),
                }
            }
            first = false;
            running.retain(|_, h| !h.is_finished());
            let primaries = lock(&self.map).primaries();
            for (host, port) in primaries {
                if running.contains_key(&(host.clone(), port)) {
                    continue;
                }
                let url = format!("redis://{}{host}:{port}", self.auth);
                let info = match url.as_str().into_connection_info() {
                    Ok(i) => i,
                    Err(e) => {
                        tracing::error!(error = %e, %url, "bad cluster node address");
                        continue;
                    }
                };
                let sub = ShardSub {
                    info,
                    owner: Owner::Primary {
                        map: self.map.clone(),
                        host: host.clone(),
                        port,
                    },
                    driver: self.driver.clone(),
                    changes: self.changes.clone(),
                    out: self.out.clone(),
                    topology: Some(self.refresh.clone()),
                };
                running.insert((host, port), tokio::spawn(sub.run(None)));
            }
            tokio::select! {
                () = self.refresh.notified() => {
                    // Let a burst of failures settle into one refresh.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }
}

/// One subscriber connection (to the single server, or to one primary),
/// holding the wanted channels its [`Owner`] serves; reconnects with backoff.
struct ShardSub {
    info: redis::ConnectionInfo,
    owner: Owner,
    driver: Weak<Driver>,
    changes: watch::Receiver<u64>,
    out: mpsc::Sender<(String, Bytes)>,
    /// Asked to refresh the slot map (cluster only).
    topology: Option<Arc<Notify>>,
}

impl ShardSub {
    async fn run(mut self, mut first: Option<SingleSub>) {
        let mut delay = Duration::from_millis(100);
        let mut requested: HashSet<String> = HashSet::new();
        loop {
            if !self.owner.exists() {
                return;
            }
            let Some(d) = self.driver.upgrade() else {
                return;
            };
            let (timeout, max_bulk, max_delay) = (
                d.config.requests_timeout,
                d.config.max_message_bytes,
                d.config.max_reconnect_delay,
            );
            drop(d);
            let sub = match first.take() {
                Some(s) => Ok(s),
                None => SingleSub::open(&self.info, timeout, max_bulk).await,
            };
            let err = match sub {
                Ok(sub) => {
                    delay = Duration::from_millis(100);
                    match self.hold(sub, &mut requested).await {
                        Some(e) => e,
                        None => return,
                    }
                }
                Err(e) => e,
            };
            if let Some(d) = self.driver.upgrade() {
                for ch in requested.drain() {
                    d.set_live(&ch, false);
                }
            }
            if let Some(t) = &self.topology {
                t.notify_one();
            }
            tracing::error!(error = %err, node = %self.info.addr(), retry_in = ?delay, "redis sharded subscriber lost; reconnecting (until then other nodes' messages are missed)");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(max_delay);
        }
    }

    /// Holds the subscriptions on one open connection; `Some(error)` when
    /// the connection failed, `None` when the adapter is gone (or this node
    /// is no longer a primary).
    async fn hold(
        &mut self,
        mut sub: SingleSub,
        requested: &mut HashSet<String>,
    ) -> Option<String> {
        let mut dropped = 0u64;
        loop {
            if !self.owner.exists() {
                return None;
            }
            let d = self.driver.upgrade()?;
            let wanted: HashSet<String> = d
                .wanted()
                .into_iter()
                .filter(|ch| self.owner.serves(ch))
                .collect();
            let mut cmds = Vec::new();
            for ch in wanted.difference(requested) {
                cmds.extend(redis::cmd("SSUBSCRIBE").arg(ch).get_packed_command());
            }
            for ch in requested.difference(&wanted) {
                d.set_live(ch, false);
                cmds.extend(redis::cmd("SUNSUBSCRIBE").arg(ch).get_packed_command());
            }
            drop(d);
            *requested = wanted;
            if !cmds.is_empty() {
                if let Err(e) = sub.write(&cmds).await {
                    return Some(e);
                }
            }
            loop {
                match sub.buffered_frame() {
                    Ok(Some(frame)) => {
                        let item = match resp::pubsub_reply(frame) {
                            Ok(PubSubReply::Message { channel, payload }) => {
                                Some((channel, payload))
                            }
                            Ok(PubSubReply::Subscribed(channel)) => {
                                Some((format!("\0{channel}"), Bytes::new()))
                            }
                            Ok(_) => None,
                            Err(e) => {
                                tracing::warn!(error = %e, node = %self.info.addr(), "redis refused a sharded subscription");
                                if let Some(t) = &self.topology {
                                    // MOVED: the slot map is stale.
                                    t.notify_one();
                                }
                                None
                            }
                        };
                        if let Some(item) = item {
                            if self.out.try_send(item).is_err() {
                                dropped += 1;
                                if dropped % 1000 == 1 {
                                    tracing::error!(
                                        dropped,
                                        "redis messages arrive faster than they are handled; message dropped"
                                    );
                                }
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Some(e),
                }
            }
            tokio::select! {
                r = sub.fill() => {
                    if let Err(e) = r {
                        return Some(e);
                    }
                }
                r = self.changes.changed() => {
                    if r.is_err() {
                        return None;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            parse_target("redis://127.0.0.1:6379").unwrap(),
            Target::Single("redis://127.0.0.1:6379".into())
        );
        assert_eq!(
            parse_target("redis+cluster://a:1,b:2/").unwrap(),
            Target::Cluster(vec!["redis://a:1".into(), "redis://b:2".into()])
        );
        assert_eq!(
            parse_target("redis+cluster://u:p@a:1,b:2").unwrap(),
            Target::Cluster(vec!["redis://u:p@a:1".into(), "redis://u:p@b:2".into()])
        );
        assert!(parse_target("redis+cluster://").is_err());
    }

    #[test]
    fn shardnumsub_replies() {
        use redis::Value as V;
        let ch = "socket.io#/#";
        let one = V::Array(vec![V::BulkString(ch.as_bytes().to_vec()), V::Int(3)]);
        assert_eq!(count_of(&one, ch), 3);
        let summed = V::Map(vec![(V::BulkString(ch.as_bytes().to_vec()), V::Int(2))]);
        assert_eq!(count_of(&summed, ch), 2);
        assert_eq!(count_of(&V::Nil, ch), 0);
        assert_eq!(count_of(&one, "other"), 0);
    }

    #[test]
    fn key_slots_as_redis_computes_them() {
        // CRC16-XMODEM("123456789") = 0x31C3; `CLUSTER KEYSLOT foo` = 12182.
        assert_eq!(key_slot("123456789"), 0x31C3);
        assert_eq!(key_slot("foo"), 12182);
        assert_eq!(key_slot("{foo}.bar"), 12182);
        assert_eq!(key_slot("x{}y"), key_slot("x{}y"));
        assert_ne!(key_slot("{}foo"), key_slot("foo"));
    }

    #[test]
    fn slot_maps() {
        use redis::Value as V;
        let node = |h: &str, p| {
            V::Array(vec![
                V::BulkString(h.as_bytes().to_vec()),
                V::Int(p),
                V::BulkString(b"id".to_vec()),
            ])
        };
        let v = V::Array(vec![
            V::Array(vec![V::Int(5461), V::Int(16383), node("127.0.0.1", 7001)]),
            V::Array(vec![V::Int(0), V::Int(5460), node("127.0.0.1", 7000)]),
            V::Array(vec![V::Int(1), V::Int(2), node("?", 7002)]),
        ]);
        let m = SlotMap::parse(&v).unwrap();
        assert_eq!(m.owner(0), Some(("127.0.0.1", 7000)));
        assert_eq!(m.owner(16383), Some(("127.0.0.1", 7001)));
        assert_eq!(m.primaries().len(), 2);
        assert_eq!(SlotMap::parse(&V::Array(vec![])), None);
    }

    #[test]
    fn uids_are_16_hex() {
        let u = uid16();
        assert_eq!(u.len(), 16);
        assert!(u.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(u, uid16());
    }
}
