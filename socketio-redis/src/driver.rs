//! The Redis glue: one connection that publishes (pipelined, in order), one
//! that subscribes (reconnected with backoff), and the routing of what it
//! hears to the namespaces' adapters.
//!
//! On a Redis Cluster (`redis+cluster://h1:p1,h2:p2`) a redis-rs cluster
//! connection publishes and counts (`PUBSUB NUMSUB` summed over the nodes),
//! and the subscriber is one plain connection to one seed node: a cluster
//! delivers every `PUBLISH` to every node, so one node is enough, and exactly
//! one (subscriptions on two nodes would deliver every message twice; the
//! cluster connection's own `SUBSCRIBE`, renewed after a node restart, can
//! land on a second node). When that node fails, the subscriber moves to the
//! next seed.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

use crate::adapter::NsAdapter;
use crate::config::RedisAdapterConfig;
use crate::error::Error;
use crate::sharded::driver::{Conn, Target, count_of, parse_target, publish_batch};
use crate::wire::Channels;

/// One message to publish.
pub(crate) struct Publish {
    pub(crate) channel: String,
    pub(crate) payload: Vec<u8>,
}

enum SubCmd {
    Subscribe(String),
    Unsubscribe(String),
}

#[derive(Clone, Copy)]
enum RouteKind {
    Broadcast,
    Request,
    Response,
}

struct Route {
    kind: RouteKind,
    adapter: Weak<NsAdapter>,
}

#[derive(Default)]
struct State {
    /// Registered namespaces and their channels.
    wanted: HashMap<String, (Channels, Weak<NsAdapter>)>,
    /// Pattern or channel → namespace adapter.
    routes: HashMap<String, Route>,
}

pub(crate) struct Driver {
    pub(crate) uid: String,
    pub(crate) config: RedisAdapterConfig,
    conn: Conn,
    publish_tx: mpsc::Sender<Publish>,
    dropped: AtomicU64,
    sub_tx: mpsc::UnboundedSender<SubCmd>,
    state: Mutex<State>,
    /// The namespaces whose subscriptions are live.
    subscribed: watch::Sender<HashSet<String>>,
}

/// Six random alphanumeric characters, as the reference's `uid2(6)`.
pub(crate) fn uid6() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut raw = [0u8; 6];
    if getrandom::fill(&mut raw).is_err() {
        // Not a secret: uniqueness across nodes is all that matters.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        raw = t.to_le_bytes()[..6].try_into().unwrap_or_default();
    }
    raw.iter()
        .map(|b| {
            let i = usize::from(*b) % ALPHABET.len();
            char::from(ALPHABET.get(i).copied().unwrap_or(b'x'))
        })
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Driver {
    pub(crate) async fn connect(
        url: &str,
        config: RedisAdapterConfig,
    ) -> Result<Arc<Driver>, Error> {
        let nodes = match parse_target(url)? {
            Target::Single(url) => return Self::connect_single(&url, config).await,
            Target::Cluster(nodes) => nodes,
        };
        let cluster = redis::cluster::ClusterClientBuilder::new(nodes.clone())
            .connection_timeout(config.requests_timeout)
            .response_timeout(config.requests_timeout)
            .build()?;
        let conn = Conn::Cluster(cluster.get_async_connection().await?);
        let clients = nodes
            .iter()
            .map(|u| redis::Client::open(u.as_str()))
            .collect::<Result<Vec<_>, _>>()?;
        // The subscriber must be reachable too before we say we are up: the
        // first seed that answers.
        let mut first = None;
        let mut last_err = None;
        for (i, c) in clients.iter().enumerate() {
            match c.get_async_pubsub().await {
                Ok(p) => {
                    first = Some((i, p));
                    break;
                }
                Err(e) => last_err = Some(e),
            }
        }
        let Some((start, first_pubsub)) = first else {
            return Err(last_err.map_or(Error::Timeout("a seed node"), Error::Redis));
        };
        let (publish_tx, publish_rx) = mpsc::channel(config.max_queued_publishes.max(1));
        let (sub_tx, sub_rx) = mpsc::unbounded_channel();
        let driver = Arc::new(Driver {
            uid: uid6(),
            config,
            conn: conn.clone(),
            publish_tx,
            dropped: AtomicU64::new(0),
            sub_tx,
            state: Mutex::new(State::default()),
            subscribed: watch::Sender::new(HashSet::new()),
        });
        tokio::spawn(publisher(conn, publish_rx));
        tokio::spawn(subscriber(
            clients,
            start,
            Some(first_pubsub),
            Arc::downgrade(&driver),
            sub_rx,
        ));
        tracing::info!(uid = %driver.uid, "redis adapter connected to a redis cluster");
        Ok(driver)
    }

    async fn connect_single(url: &str, config: RedisAdapterConfig) -> Result<Arc<Driver>, Error> {
        let client = redis::Client::open(url)?;
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.requests_timeout))
            .set_response_timeout(Some(config.requests_timeout))
            .set_max_delay(config.max_reconnect_delay);
        let conn = client
            .get_connection_manager_with_config(manager_config)
            .await?;
        // The subscriber must be reachable too before we say we are up.
        let first_pubsub = client.get_async_pubsub().await?;
        let (publish_tx, publish_rx) = mpsc::channel(config.max_queued_publishes.max(1));
        let (sub_tx, sub_rx) = mpsc::unbounded_channel();
        let driver = Arc::new(Driver {
            uid: uid6(),
            config,
            conn: Conn::Single(conn.clone()),
            publish_tx,
            dropped: AtomicU64::new(0),
            sub_tx,
            state: Mutex::new(State::default()),
            subscribed: watch::Sender::new(HashSet::new()),
        });
        tokio::spawn(publisher(Conn::Single(conn), publish_rx));
        tokio::spawn(subscriber(
            vec![client],
            0,
            Some(first_pubsub),
            Arc::downgrade(&driver),
            sub_rx,
        ));
        tracing::info!(uid = %driver.uid, "redis adapter connected");
        Ok(driver)
    }

    /// Queues a message for publishing; drops it (logged) when Redis cannot
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

    /// `PUBSUB NUMSUB` of a request channel: the nodes of the namespace.
    pub(crate) async fn numsub(&self, channel: &str) -> Result<usize, Error> {
        let mut cmd = redis::cmd("PUBSUB");
        cmd.arg("NUMSUB").arg(channel);
        let v = tokio::time::timeout(self.config.requests_timeout, self.conn.query(&cmd))
            .await
            .map_err(|_| Error::Timeout("PUBSUB NUMSUB"))??;
        Ok(count_of(&v, channel))
    }

    pub(crate) fn register(&self, nsp: &str, channels: Channels, adapter: Weak<NsAdapter>) {
        {
            let mut st = lock(&self.state);
            st.routes.insert(
                channels.pattern.clone(),
                Route {
                    kind: RouteKind::Broadcast,
                    adapter: adapter.clone(),
                },
            );
            st.routes.insert(
                channels.request.clone(),
                Route {
                    kind: RouteKind::Request,
                    adapter: adapter.clone(),
                },
            );
            for ch in [&channels.response, &channels.specific_response] {
                st.routes.insert(
                    ch.clone(),
                    Route {
                        kind: RouteKind::Response,
                        adapter: adapter.clone(),
                    },
                );
            }
            st.wanted.insert(nsp.to_owned(), (channels, adapter));
        }
        let _ = self.sub_tx.send(SubCmd::Subscribe(nsp.to_owned()));
    }

    pub(crate) fn unregister(&self, nsp: &str) {
        {
            let mut st = lock(&self.state);
            if let Some((ch, _)) = st.wanted.remove(nsp) {
                for c in [
                    &ch.pattern,
                    &ch.request,
                    &ch.response,
                    &ch.specific_response,
                ] {
                    st.routes.remove(c);
                }
            }
        }
        let _ = self.sub_tx.send(SubCmd::Unsubscribe(nsp.to_owned()));
    }

    fn channels_of(&self, nsp: &str) -> Option<Channels> {
        lock(&self.state).wanted.get(nsp).map(|(c, _)| c.clone())
    }

    /// Waits until every registered namespace's subscriptions are live.
    pub(crate) async fn ready(&self) {
        let mut rx = self.subscribed.subscribe();
        loop {
            let wanted: Vec<String> = lock(&self.state).wanted.keys().cloned().collect();
            let done = {
                let live = rx.borrow_and_update();
                wanted.iter().all(|n| live.contains(n))
            };
            if done {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    fn route(&self, msg: &redis::Msg) {
        let key = if msg.from_pattern() {
            match msg.get_pattern::<String>() {
                Ok(p) => p,
                Err(_) => return,
            }
        } else {
            msg.get_channel_name().to_owned()
        };
        let (kind, adapter) = {
            let st = lock(&self.state);
            match st.routes.get(&key) {
                Some(r) => (r.kind, r.adapter.upgrade()),
                None => return,
            }
        };
        let Some(adapter) = adapter else { return };
        let payload = msg.get_payload_bytes();
        match kind {
            RouteKind::Broadcast => adapter.on_broadcast(msg.get_channel_name(), payload),
            RouteKind::Request => adapter.on_request(payload),
            RouteKind::Response => adapter.on_response(payload),
        }
    }
}

/// Publishes in order, pipelining whatever is queued into one round trip
/// (on a cluster, one pipeline per channel).
async fn publisher(conn: Conn, mut rx: mpsc::Receiver<Publish>) {
    let mut batch = Vec::with_capacity(64);
    let mut failing = false;
    while rx.recv_many(&mut batch, 256).await > 0 {
        let items = batch.drain(..).map(|p| (p.channel, p.payload));
        match publish_batch(&conn, "PUBLISH", items).await {
            Ok(()) => {
                if failing {
                    tracing::info!("redis publishing works again");
                    failing = false;
                }
            }
            Err(e) => {
                if !failing {
                    tracing::error!(error = %e, "redis publish failed; other nodes miss these messages (local delivery goes on)");
                    failing = true;
                }
            }
        }
    }
}

async fn subscribe_ns(sink: &mut redis::aio::PubSubSink, ch: &Channels) -> redis::RedisResult<()> {
    sink.psubscribe(&ch.pattern).await?;
    sink.subscribe(&[&ch.request, &ch.response, &ch.specific_response])
        .await?;
    Ok(())
}

/// Keeps the subscriptions of every registered namespace live, reconnecting
/// with backoff when the connection drops (to the next of `clients`, the
/// seed nodes of a cluster); routes every message.
async fn subscriber(
    clients: Vec<redis::Client>,
    mut next: usize,
    mut first: Option<redis::aio::PubSub>,
    driver: Weak<Driver>,
    mut cmds: mpsc::UnboundedReceiver<SubCmd>,
) {
    let mut delay = Duration::from_millis(100);
    loop {
        let Some(d) = driver.upgrade() else { return };
        let max_delay = d.config.max_reconnect_delay;
        drop(d);
        let pubsub = match (first.take(), clients.get(next % clients.len().max(1))) {
            (Some(p), _) => Ok(p),
            (None, Some(client)) => client.get_async_pubsub().await,
            (None, None) => return,
        };
        let pubsub = match pubsub {
            Ok(p) => p,
            Err(e) => {
                next = next.wrapping_add(1);
                tracing::error!(error = %e, retry_in = ?delay, "redis subscriber cannot connect");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(max_delay);
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        // Subscribe every namespace registered so far.
        let Some(d) = driver.upgrade() else { return };
        let wanted: Vec<(String, Channels)> = lock(&d.state)
            .wanted
            .iter()
            .map(|(n, (c, _))| (n.clone(), c.clone()))
            .collect();
        let mut live = HashSet::new();
        let mut ok = true;
        for (nsp, ch) in &wanted {
            if let Err(e) = subscribe_ns(&mut sink, ch).await {
                tracing::error!(error = %e, %nsp, "redis subscribe failed");
                ok = false;
                break;
            }
            live.insert(nsp.clone());
        }
        if !ok {
            drop(d);
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(max_delay);
            continue;
        }
        delay = Duration::from_millis(100);
        tracing::debug!(namespaces = live.len(), "redis subscriptions live");
        d.subscribed.send_replace(live.clone());
        drop(d);
        loop {
            tokio::select! {
                msg = stream.next() => {
                    let Some(msg) = msg else { break };
                    let Some(d) = driver.upgrade() else { return };
                    d.route(&msg);
                }
                cmd = cmds.recv() => {
                    let Some(cmd) = cmd else { return };
                    let Some(d) = driver.upgrade() else { return };
                    match cmd {
                        SubCmd::Subscribe(nsp) => {
                            let Some(ch) = d.channels_of(&nsp) else { continue };
                            if let Err(e) = subscribe_ns(&mut sink, &ch).await {
                                tracing::error!(error = %e, %nsp, "redis subscribe failed");
                                break;
                            }
                            live.insert(nsp);
                            d.subscribed.send_replace(live.clone());
                        }
                        SubCmd::Unsubscribe(nsp) => {
                            live.remove(&nsp);
                            d.subscribed.send_replace(live.clone());
                            let ch = Channels::new(&d.config.key, &nsp, &d.uid);
                            let _ = sink.punsubscribe(&ch.pattern).await;
                            let _ = sink
                                .unsubscribe(&[&ch.request, &ch.response, &ch.specific_response])
                                .await;
                        }
                    }
                }
            }
        }
        if let Some(d) = driver.upgrade() {
            d.subscribed.send_replace(HashSet::new());
        }
        next = next.wrapping_add(1);
        tracing::error!(retry_in = ?delay, "redis subscription lost; reconnecting (until then other nodes' messages are missed)");
        tokio::time::sleep(delay).await;
    }
}
