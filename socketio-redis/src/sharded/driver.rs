//! The Redis glue of the sharded adapter: `SPUBLISH` (pipelined, in order),
//! `PUBSUB SHARDNUMSUB`, and the sharded subscriptions, kept equal to the
//! set of channels the namespaces want.
//!
//! Two deployments:
//! - **one Redis** (`redis://…`): publishing and counting through a
//!   reconnecting `ConnectionManager`; subscribing on a connection of our own
//!   (RESP2, read by [`super::resp`]), because redis-rs 1.8 offers
//!   `SSUBSCRIBE` only on its cluster connection. It reconnects with backoff
//!   and subscribes every wanted channel again.
//! - **a Redis Cluster** (`redis+cluster://h1:p1,h2:p2`): one redis-rs
//!   cluster connection in RESP3 with a push sender. It routes `SPUBLISH` and
//!   `SSUBSCRIBE` to the shard owning the channel's slot, sums
//!   `SHARDNUMSUB` over every node, reconnects to a shard that went away and
//!   subscribes its channels again by itself.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
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
    /// Wakes the subscriber when `routes` changed.
    wake: Arc<Notify>,
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
        let wake = Arc::new(Notify::new());
        // Set when a cluster node's connection dropped (see `cluster_subscriber`).
        let lost = Arc::new(AtomicBool::new(false));
        let (msg_tx, msg_rx) = mpsc::channel::<(String, Bytes)>(config.max_queued_messages.max(1));
        let (conn, single_info) = match parse_target(url)? {
            Target::Single(url) => {
                let client = redis::Client::open(url.as_str())?;
                let manager_config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(config.requests_timeout))
                    .set_response_timeout(Some(config.requests_timeout))
                    .set_max_delay(config.max_reconnect_delay);
                let conn = client
                    .get_connection_manager_with_config(manager_config)
                    .await?;
                (
                    Conn::Single(conn),
                    Some(client.get_connection_info().clone()),
                )
            }
            Target::Cluster(nodes) => {
                let dropped = Arc::new(AtomicU64::new(0));
                let tx = msg_tx.clone();
                let (lost, wake) = (lost.clone(), wake.clone());
                let push = move |info: redis::PushInfo| -> Result<(), ()> {
                    if info.kind == redis::PushKind::Disconnection {
                        // A node's connection dropped: subscribe everything again.
                        lost.store(true, Ordering::Relaxed);
                        wake.notify_one();
                        return Ok(());
                    }
                    let Some((channel, payload)) = push_message(info) else {
                        return Ok(());
                    };
                    if tx.try_send((channel, payload)).is_err() {
                        let n = dropped.fetch_add(1, Ordering::Relaxed);
                        if n % 1000 == 0 {
                            tracing::error!(
                                dropped = n + 1,
                                "redis messages arrive faster than they are handled; message dropped"
                            );
                        }
                    }
                    Ok(())
                };
                let client = redis::cluster::ClusterClientBuilder::new(nodes)
                    .use_protocol(redis::ProtocolVersion::RESP3)
                    .push_sender(push)
                    .connection_timeout(config.requests_timeout)
                    .response_timeout(config.requests_timeout)
                    .build()?;
                (Conn::Cluster(client.get_async_connection().await?), None)
            }
        };
        // The subscriber of a single server must be reachable too before we say we are up.
        let first = match &single_info {
            Some(info) => Some(
                SingleSub::open(info, config.requests_timeout, config.max_message_bytes)
                    .await
                    .map_err(|e| {
                        Error::Redis(redis::RedisError::from((
                            redis::ErrorKind::Io,
                            "sharded subscriber",
                            e,
                        )))
                    })?,
            ),
            None => None,
        };
        let (publish_tx, publish_rx) = mpsc::channel(config.max_queued_publishes.max(1));
        let driver = Arc::new(Driver {
            uid: uid16(),
            config,
            conn: conn.clone(),
            publish_tx,
            dropped: AtomicU64::new(0),
            routes: Mutex::new(HashMap::new()),
            wake: wake.clone(),
            live: watch::Sender::new(HashSet::new()),
            tasks: Mutex::new(Vec::new()),
        });
        let weak = Arc::downgrade(&driver);
        let mut tasks = vec![
            tokio::spawn(publisher(conn.clone(), publish_rx)).abort_handle(),
            tokio::spawn(dispatcher(msg_rx, weak.clone())).abort_handle(),
        ];
        match (conn, single_info, first) {
            (Conn::Cluster(c), _, _) => {
                tasks.push(tokio::spawn(cluster_subscriber(c, weak, wake, lost)).abort_handle());
            }
            (Conn::Single(_), Some(info), Some(first)) => {
                tasks.push(
                    tokio::spawn(single_subscriber(info, first, weak, wake, msg_tx)).abort_handle(),
                );
            }
            _ => {}
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
        self.wake.notify_one();
    }

    /// No longer wants `channel`.
    pub(crate) fn remove_route(&self, channel: &str) {
        lock(&self.routes).remove(channel);
        self.wake.notify_one();
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

    fn clear_live(&self) {
        self.live.send_if_modified(|live| {
            let was = !live.is_empty();
            live.clear();
            was
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

/// A sharded message or a subscription confirmation from a RESP3 push:
/// `(channel, payload)`; a confirmation has the empty payload and the
/// channel prefixed with `\0`.
fn push_message(info: redis::PushInfo) -> Option<(String, Bytes)> {
    use redis::{PushKind, Value as V};
    let mut it = info.data.into_iter();
    let channel = match it.next()? {
        V::BulkString(b) => String::from_utf8(b).ok()?,
        _ => return None,
    };
    match info.kind {
        PushKind::SMessage | PushKind::Message => match it.next()? {
            V::BulkString(b) => Some((channel, Bytes::from(b))),
            _ => None,
        },
        PushKind::SSubscribe => Some((format!("\0{channel}"), Bytes::new())),
        _ => None,
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

/// Keeps the cluster connection's sharded subscriptions equal to the wanted
/// channels. A channel counts as subscribed once its confirmation push
/// arrived (see [`dispatcher`]); until then its `SSUBSCRIBE` is sent again
/// every second.
///
/// When the connection to a node drops (a `Disconnection` push sets
/// `lost`), every channel waits for a fresh confirmation: redis-rs 1.8.1
/// reconnects to a restarted primary but does not reliably renew the sharded
/// subscriptions there (seen in `conformance/test/cluster-redis-cluster.test.js`:
/// `ssub=0` on the new connection, or an `SSUBSCRIBE` answered `Ok` during
/// the outage without a subscription after it). `SSUBSCRIBE` of a channel
/// already subscribed is harmless.
async fn cluster_subscriber(
    mut conn: ClusterConnection,
    driver: Weak<Driver>,
    wake: Arc<Notify>,
    lost: Arc<AtomicBool>,
) {
    const RESEND: Duration = Duration::from_secs(1);
    let mut sent: HashMap<String, tokio::time::Instant> = HashMap::new();
    let mut failing = false;
    loop {
        let notified = wake.notified();
        let Some(d) = driver.upgrade() else { return };
        if lost.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                "a redis cluster node connection dropped; renewing the sharded subscriptions"
            );
            sent.clear();
            d.clear_live();
        }
        let wanted = d.wanted();
        let timeout = d.config.requests_timeout;
        let todo: Vec<String> = wanted
            .iter()
            .filter(|ch| !d.is_live(ch) && sent.get(*ch).is_none_or(|t| t.elapsed() >= RESEND))
            .cloned()
            .collect();
        drop(d);
        let mut errors = 0usize;
        for ch in todo {
            sent.insert(ch.clone(), tokio::time::Instant::now());
            let err = match tokio::time::timeout(timeout, conn.ssubscribe(&ch)).await {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e.to_string(),
                Err(_) => "timed out".to_owned(),
            };
            errors += 1;
            if !failing {
                tracing::error!(error = %err, channel = %ch, "redis SSUBSCRIBE failed; retrying every second");
                failing = true;
            }
        }
        if errors == 0 && failing {
            tracing::info!("redis SSUBSCRIBE works again");
            failing = false;
        }
        let gone: Vec<String> = sent
            .keys()
            .filter(|ch| !wanted.contains(*ch))
            .cloned()
            .collect();
        for ch in gone {
            sent.remove(&ch);
            if let Some(d) = driver.upgrade() {
                d.set_live(&ch, false);
            }
            if let Ok(Err(e)) = tokio::time::timeout(timeout, conn.sunsubscribe(&ch)).await {
                tracing::warn!(error = %e, channel = %ch, "redis SUNSUBSCRIBE failed");
            }
        }
        let pending = match driver.upgrade() {
            Some(d) => wanted.iter().any(|ch| !d.is_live(ch)),
            None => return,
        };
        if pending {
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        } else {
            notified.await;
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

/// Keeps a subscriber connection to one server with the wanted channels
/// subscribed, reconnecting with backoff; routes what it hears (through the
/// dispatcher, so that confirmations and messages keep one order).
async fn single_subscriber(
    info: redis::ConnectionInfo,
    first: SingleSub,
    driver: Weak<Driver>,
    wake: Arc<Notify>,
    out: mpsc::Sender<(String, Bytes)>,
) {
    let mut first = Some(first);
    let mut delay = Duration::from_millis(100);
    loop {
        let Some(d) = driver.upgrade() else { return };
        let (timeout, max_bulk, max_delay) = (
            d.config.requests_timeout,
            d.config.max_message_bytes,
            d.config.max_reconnect_delay,
        );
        drop(d);
        let sub = match first.take() {
            Some(s) => Ok(s),
            None => SingleSub::open(&info, timeout, max_bulk).await,
        };
        let err = match sub {
            Ok(sub) => {
                delay = Duration::from_millis(100);
                run_single(sub, &driver, &wake, &out).await
            }
            Err(e) => e,
        };
        let Some(d) = driver.upgrade() else { return };
        d.clear_live();
        drop(d);
        tracing::error!(error = %err, retry_in = ?delay, "redis sharded subscriber lost; reconnecting (until then other nodes' messages are missed)");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(max_delay);
    }
}

async fn run_single(
    mut sub: SingleSub,
    driver: &Weak<Driver>,
    wake: &Notify,
    out: &mpsc::Sender<(String, Bytes)>,
) -> String {
    let mut requested: HashSet<String> = HashSet::new();
    let mut dropped = 0u64;
    loop {
        let notified = wake.notified();
        let Some(d) = driver.upgrade() else {
            return "adapter dropped".to_owned();
        };
        let wanted = d.wanted();
        let mut cmds = Vec::new();
        for ch in wanted.difference(&requested) {
            cmds.extend(redis::cmd("SSUBSCRIBE").arg(ch).get_packed_command());
        }
        for ch in requested.difference(&wanted) {
            d.set_live(ch, false);
            cmds.extend(redis::cmd("SUNSUBSCRIBE").arg(ch).get_packed_command());
        }
        drop(d);
        requested = wanted;
        if !cmds.is_empty() {
            if let Err(e) = sub.write(&cmds).await {
                return e;
            }
        }
        loop {
            match sub.buffered_frame() {
                Ok(Some(frame)) => {
                    let item = match resp::pubsub_reply(frame) {
                        Ok(PubSubReply::Message { channel, payload }) => Some((channel, payload)),
                        Ok(PubSubReply::Subscribed(channel)) => {
                            Some((format!("\0{channel}"), Bytes::new()))
                        }
                        Ok(_) => None,
                        Err(e) => {
                            tracing::error!(error = %e, "redis refused a sharded subscription");
                            None
                        }
                    };
                    if let Some(item) = item {
                        if out.try_send(item).is_err() {
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
                Err(e) => return e,
            }
        }
        tokio::select! {
            r = sub.fill() => {
                if let Err(e) = r {
                    return e;
                }
            }
            () = notified => {}
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
    fn uids_are_16_hex() {
        let u = uid16();
        assert_eq!(u.len(), 16);
        assert!(u.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(u, uid16());
    }
}
