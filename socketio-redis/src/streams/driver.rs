//! The Redis glue of the Streams adapter: one ordered command queue
//! (`XADD`, `PUBLISH`, session writes; pipelined), one reader of the stream
//! (`XREAD BLOCK`, its own connection, resumed from the last id it read after
//! a reconnect), and one pub/sub subscriber (`K#N#`, `K#N#<uid>#` per
//! namespace), routing what they hear to the namespaces' adapters.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::Value as RValue;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot, watch};

use super::adapter::StreamsNsAdapter;
use super::config::RedisStreamsConfig;
use super::wire::StreamId;
use crate::error::Error;

/// One thing for the command queue.
pub(crate) enum Command {
    /// Run a command (result ignored).
    Run(redis::Cmd),
    /// Answer once everything queued before it was sent.
    Flush(oneshot::Sender<()>),
}

enum SubCmd {
    Subscribe(String),
    Unsubscribe(String),
}

/// A stream entry as read: id and raw fields.
pub(crate) struct RawEntry {
    pub(crate) id: StreamId,
    pub(crate) fields: Vec<(Vec<u8>, Vec<u8>)>,
}

#[derive(Default)]
struct State {
    /// Namespace → its adapter.
    namespaces: HashMap<String, Weak<StreamsNsAdapter>>,
    /// Pub/sub channel → namespace.
    channels: HashMap<String, String>,
}

pub(crate) struct Driver {
    pub(crate) uid: String,
    pub(crate) config: RedisStreamsConfig,
    conn: ConnectionManager,
    queue: mpsc::Sender<Command>,
    dropped: AtomicU64,
    sub_tx: mpsc::UnboundedSender<SubCmd>,
    state: Mutex<State>,
    /// Namespaces whose pub/sub subscriptions are live.
    subscribed: watch::Sender<HashSet<String>>,
    /// The id of the last entry the reader handed to the namespaces (`None`
    /// until the reader has its starting point).
    position: watch::Sender<Option<StreamId>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// 16 hex characters from 8 random bytes, as the cluster adapter's `randomId()`.
pub(crate) fn random_id() -> String {
    let mut raw = [0u8; 8];
    if getrandom::fill(&mut raw).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        raw = (t as u64).to_le_bytes();
    }
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn public_channel(prefix: &str, nsp: &str) -> String {
    format!("{prefix}#{nsp}#")
}

pub(crate) fn private_channel(prefix: &str, nsp: &str, uid: &str) -> String {
    format!("{prefix}#{nsp}#{uid}#")
}

impl Driver {
    pub(crate) async fn connect(
        url: &str,
        config: RedisStreamsConfig,
    ) -> Result<Arc<Driver>, Error> {
        let client = redis::Client::open(url)?;
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.requests_timeout))
            .set_response_timeout(Some(config.requests_timeout))
            .set_max_delay(config.max_reconnect_delay);
        let conn = client
            .get_connection_manager_with_config(manager_config)
            .await?;
        let first_pubsub = client.get_async_pubsub().await?;
        let (queue, queue_rx) = mpsc::channel(config.max_queued_commands.max(1));
        let (sub_tx, sub_rx) = mpsc::unbounded_channel();
        let driver = Arc::new(Driver {
            uid: random_id(),
            config,
            conn: conn.clone(),
            queue,
            dropped: AtomicU64::new(0),
            sub_tx,
            state: Mutex::new(State::default()),
            subscribed: watch::Sender::new(HashSet::new()),
            position: watch::Sender::new(None),
        });
        tokio::spawn(sender(conn, queue_rx));
        tokio::spawn(subscriber(
            client.clone(),
            Some(first_pubsub),
            Arc::downgrade(&driver),
            sub_rx,
        ));
        tokio::spawn(reader(client, Arc::downgrade(&driver)));
        tracing::info!(uid = %driver.uid, stream = %driver.config.stream_name, "redis streams adapter connected");
        Ok(driver)
    }

    /// Queues a command; drops it (logged) when Redis cannot keep up.
    pub(crate) fn run(&self, cmd: redis::Cmd) -> bool {
        match self.queue.try_send(Command::Run(cmd)) {
            Ok(()) => true,
            Err(e) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed);
                if n % 1000 == 0 {
                    tracing::error!(dropped = n + 1, reason = %e, "redis command queue full; command dropped");
                }
                false
            }
        }
    }

    /// Waits until everything queued so far was sent (bounded by the requests timeout).
    pub(crate) async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.queue.send(Command::Flush(tx)).await.is_ok() {
            let _ = tokio::time::timeout(self.config.requests_timeout, rx).await;
        }
    }

    /// `XADD <stream> MAXLEN ~ <max_len> * <fields>`, queued.
    pub(crate) fn xadd(&self, fields: &[(&'static str, String); 4]) -> bool {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.config.stream_name)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.config.max_len)
            .arg("*");
        for (k, v) in fields {
            cmd.arg(*k).arg(v.as_str());
        }
        self.run(cmd)
    }

    /// `PUBLISH`, queued.
    pub(crate) fn publish(&self, channel: String, payload: Vec<u8>) -> bool {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(channel).arg(payload);
        self.run(cmd)
    }

    /// A command now, on the shared connection, within the requests timeout.
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
        what: &'static str,
    ) -> Result<T, Error> {
        let mut conn = self.conn.clone();
        tokio::time::timeout(
            self.config.requests_timeout,
            cmd.query_async::<T>(&mut conn),
        )
        .await
        .map_err(|_| Error::Timeout(what))?
        .map_err(Error::from)
    }

    /// `GET` + `DEL` of a key in one transaction (`GETDEL` needs Redis 6.2).
    pub(crate) async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("GET")
            .arg(key)
            .cmd("DEL")
            .arg(key)
            .ignore();
        let mut conn = self.conn.clone();
        let (v,): (Option<Vec<u8>>,) =
            tokio::time::timeout(self.config.requests_timeout, pipe.query_async(&mut conn))
                .await
                .map_err(|_| Error::Timeout("GET+DEL"))??;
        Ok(v)
    }

    /// `XRANGE <stream> <start> <end> COUNT <n>`.
    pub(crate) async fn xrange(
        &self,
        start: &str,
        end: &str,
        count: u64,
    ) -> Result<Vec<RawEntry>, Error> {
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(&self.config.stream_name)
            .arg(start)
            .arg(end)
            .arg("COUNT")
            .arg(count);
        let v: RValue = self.query(&cmd, "XRANGE").await?;
        Ok(parse_entries(v))
    }

    /// `PUBSUB NUMSUB` of a channel.
    pub(crate) async fn numsub(&self, channel: &str) -> Result<usize, Error> {
        let mut cmd = redis::cmd("PUBSUB");
        cmd.arg("NUMSUB").arg(channel);
        let res: Vec<(String, usize)> = self.query(&cmd, "PUBSUB NUMSUB").await?;
        Ok(res.first().map_or(0, |(_, n)| *n))
    }

    /// The last entry the reader handed to the namespaces (`None` before it started).
    pub(crate) fn position(&self) -> Option<StreamId> {
        *self.position.borrow()
    }

    pub(crate) fn register(&self, nsp: &str, adapter: Weak<StreamsNsAdapter>) {
        {
            let mut st = lock(&self.state);
            let prefix = &self.config.channel_prefix;
            st.channels
                .insert(public_channel(prefix, nsp), nsp.to_owned());
            st.channels
                .insert(private_channel(prefix, nsp, &self.uid), nsp.to_owned());
            st.namespaces.insert(nsp.to_owned(), adapter);
        }
        let _ = self.sub_tx.send(SubCmd::Subscribe(nsp.to_owned()));
    }

    pub(crate) fn unregister(&self, nsp: &str) {
        {
            let mut st = lock(&self.state);
            st.namespaces.remove(nsp);
            st.channels.retain(|_, n| n != nsp);
        }
        let _ = self.sub_tx.send(SubCmd::Unsubscribe(nsp.to_owned()));
    }

    fn adapter_of(&self, nsp: &str) -> Option<Arc<StreamsNsAdapter>> {
        lock(&self.state).namespaces.get(nsp)?.upgrade()
    }

    /// Waits until the reader has its starting point and every registered
    /// namespace's subscriptions are live.
    pub(crate) async fn ready(&self) {
        let mut pos = self.position.subscribe();
        while pos.borrow_and_update().is_none() {
            if pos.changed().await.is_err() {
                return;
            }
        }
        let mut rx = self.subscribed.subscribe();
        loop {
            let wanted: Vec<String> = lock(&self.state).namespaces.keys().cloned().collect();
            let done = {
                let live = rx.borrow_and_update();
                wanted.iter().all(|n| live.contains(n))
            };
            if done || rx.changed().await.is_err() {
                return;
            }
        }
    }

    fn route_pubsub(&self, msg: &redis::Msg) {
        let nsp = lock(&self.state)
            .channels
            .get(msg.get_channel_name())
            .cloned();
        if let Some(adapter) = nsp.and_then(|n| self.adapter_of(&n)) {
            adapter.on_pubsub(msg.get_payload_bytes());
        }
    }

    fn route_entry(&self, entry: &RawEntry) {
        let nsp = entry
            .fields
            .iter()
            .find(|(k, _)| k.as_slice() == b"nsp")
            .and_then(|(_, v)| std::str::from_utf8(v).ok());
        match nsp.and_then(|n| self.adapter_of(n)) {
            Some(adapter) => adapter.on_entry(entry),
            None => {
                tracing::trace!(id = %entry.id, nsp = ?nsp, "stream entry of no namespace here")
            }
        }
    }
}

/// Entries of an `XRANGE` reply, or of the one stream of an `XREAD` reply's
/// `[[name, entries]]`; malformed items are skipped.
fn parse_entries(v: RValue) -> Vec<RawEntry> {
    let RValue::Array(items) = v else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| {
            let RValue::Array(parts) = item else {
                return None;
            };
            let mut parts = parts.into_iter();
            let id = match parts.next()? {
                RValue::BulkString(b) => StreamId::parse(std::str::from_utf8(&b).ok()?).ok()?,
                RValue::SimpleString(s) => StreamId::parse(&s).ok()?,
                _ => return None,
            };
            let RValue::Array(flat) = parts.next()? else {
                return None;
            };
            let mut fields = Vec::with_capacity(flat.len() / 2);
            let mut flat = flat.into_iter();
            while let (Some(RValue::BulkString(k)), Some(RValue::BulkString(v))) =
                (flat.next(), flat.next())
            {
                fields.push((k, v));
            }
            Some(RawEntry { id, fields })
        })
        .collect()
}

fn parse_xread(v: RValue) -> Vec<RawEntry> {
    match v {
        RValue::Array(streams) => streams
            .into_iter()
            .next()
            .and_then(|s| match s {
                RValue::Array(parts) => parts.into_iter().nth(1),
                _ => None,
            })
            .map(parse_entries)
            .unwrap_or_default(),
        RValue::Map(streams) => streams
            .into_iter()
            .next()
            .map(|(_, entries)| parse_entries(entries))
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Sends queued commands in order, pipelining whatever is waiting.
async fn sender(mut conn: ConnectionManager, mut rx: mpsc::Receiver<Command>) {
    let mut batch = Vec::with_capacity(64);
    let mut failing = false;
    while rx.recv_many(&mut batch, 256).await > 0 {
        let mut pipe = redis::pipe();
        let mut flushes = Vec::new();
        for c in batch.drain(..) {
            match c {
                Command::Run(cmd) => {
                    pipe.add_command(cmd).ignore();
                }
                Command::Flush(tx) => flushes.push(tx),
            }
        }
        if !pipe.is_empty() {
            match pipe.query_async::<()>(&mut conn).await {
                Ok(()) => {
                    if failing {
                        tracing::info!("redis commands go through again");
                        failing = false;
                    }
                }
                Err(e) => {
                    if !failing {
                        tracing::error!(error = %e, "redis command failed; other nodes miss these messages");
                        failing = true;
                    }
                }
            }
        }
        for tx in flushes {
            let _ = tx.send(());
        }
    }
}

/// Where the reader starts: after the stream's last entry (`0-0` if there is
/// no stream yet), so that nothing added after this point is missed.
async fn start_id(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
) -> redis::RedisResult<StreamId> {
    let v: RValue = redis::cmd("XREVRANGE")
        .arg(stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(parse_entries(v).first().map(|e| e.id).unwrap_or_default())
}

/// Reads the stream from where it started, in order, forever; reconnects
/// with backoff and resumes after the last entry it handed on.
async fn reader(client: redis::Client, driver: Weak<Driver>) {
    let mut delay = Duration::from_millis(100);
    let mut last: Option<StreamId> = None;
    loop {
        let Some(d) = driver.upgrade() else { return };
        let (stream, block, count, max_delay) = (
            d.config.stream_name.clone(),
            d.config.block_time,
            d.config.read_count,
            d.config.max_reconnect_delay,
        );
        drop(d);
        let config = redis::AsyncConnectionConfig::new()
            .set_response_timeout(Some(block + Duration::from_secs(5)))
            .set_connection_timeout(Some(Duration::from_secs(5)));
        let mut conn = match client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, retry_in = ?delay, "redis stream reader cannot connect");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(max_delay);
                continue;
            }
        };
        if last.is_none() {
            match start_id(&mut conn, &stream).await {
                Ok(id) => {
                    last = Some(id);
                    if let Some(d) = driver.upgrade() {
                        d.position.send_replace(Some(id));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, retry_in = ?delay, "redis stream reader cannot start");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(max_delay);
                    continue;
                }
            }
        }
        delay = Duration::from_millis(100);
        loop {
            let from = last.unwrap_or_default();
            let reply: redis::RedisResult<RValue> = redis::cmd("XREAD")
                .arg("BLOCK")
                .arg(u64::try_from(block.as_millis()).unwrap_or(u64::MAX))
                .arg("COUNT")
                .arg(count)
                .arg("STREAMS")
                .arg(&stream)
                .arg(from.to_string())
                .query_async(&mut conn)
                .await;
            let Some(d) = driver.upgrade() else { return };
            match reply {
                Ok(v) => {
                    let entries = parse_xread(v);
                    tracing::trace!(%from, n = entries.len(), "xread");
                    for entry in entries {
                        if entry.id <= from {
                            continue;
                        }
                        d.route_entry(&entry);
                        last = Some(entry.id);
                        d.position.send_replace(last);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, retry_in = ?delay, "redis stream read failed; reconnecting");
                    break;
                }
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(max_delay);
    }
}

/// Keeps each namespace's two channels subscribed, reconnecting with
/// backoff; routes every message.
async fn subscriber(
    client: redis::Client,
    mut first: Option<redis::aio::PubSub>,
    driver: Weak<Driver>,
    mut cmds: mpsc::UnboundedReceiver<SubCmd>,
) {
    let mut delay = Duration::from_millis(100);
    loop {
        let Some(d) = driver.upgrade() else { return };
        let max_delay = d.config.max_reconnect_delay;
        drop(d);
        let pubsub = match first.take() {
            Some(p) => Ok(p),
            None => client.get_async_pubsub().await,
        };
        let pubsub = match pubsub {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, retry_in = ?delay, "redis subscriber cannot connect");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(max_delay);
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        let Some(d) = driver.upgrade() else { return };
        let prefix = d.config.channel_prefix.clone();
        let uid = d.uid.clone();
        let wanted: Vec<String> = lock(&d.state).namespaces.keys().cloned().collect();
        drop(d);
        let mut live = HashSet::new();
        let mut ok = true;
        for nsp in &wanted {
            let chans = [
                public_channel(&prefix, nsp),
                private_channel(&prefix, nsp, &uid),
            ];
            if let Err(e) = sink.subscribe(&chans).await {
                tracing::error!(error = %e, %nsp, "redis subscribe failed");
                ok = false;
                break;
            }
            live.insert(nsp.clone());
        }
        if !ok {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(max_delay);
            continue;
        }
        delay = Duration::from_millis(100);
        if let Some(d) = driver.upgrade() {
            d.subscribed.send_replace(live.clone());
        }
        loop {
            tokio::select! {
                msg = stream.next() => {
                    let Some(msg) = msg else { break };
                    let Some(d) = driver.upgrade() else { return };
                    d.route_pubsub(&msg);
                }
                cmd = cmds.recv() => {
                    let Some(cmd) = cmd else { return };
                    let Some(d) = driver.upgrade() else { return };
                    match cmd {
                        SubCmd::Subscribe(nsp) => {
                            let chans = [public_channel(&prefix, &nsp), private_channel(&prefix, &nsp, &uid)];
                            if let Err(e) = sink.subscribe(&chans).await {
                                tracing::error!(error = %e, %nsp, "redis subscribe failed");
                                break;
                            }
                            live.insert(nsp);
                            d.subscribed.send_replace(live.clone());
                        }
                        SubCmd::Unsubscribe(nsp) => {
                            live.remove(&nsp);
                            d.subscribed.send_replace(live.clone());
                            let chans = [public_channel(&prefix, &nsp), private_channel(&prefix, &nsp, &uid)];
                            let _ = sink.unsubscribe(&chans).await;
                        }
                    }
                }
            }
        }
        if let Some(d) = driver.upgrade() {
            d.subscribed.send_replace(HashSet::new());
        }
        tracing::error!(retry_in = ?delay, "redis subscription lost; reconnecting");
        tokio::time::sleep(delay).await;
    }
}
