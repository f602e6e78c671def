//! The server side of the official Socket.IO Admin UI (`@socket.io/admin-ui`
//! 0.5): what its `instrument(io, options)` does for a Node server, so that
//! the unchanged UI (hosted at <https://admin.socket.io> or self-hosted)
//! watches and manages this one.
//!
//! - `buckets.rs`: the aggregated events of `server_stats` (atomics).
//! - `serialize.rs`: the shapes the UI reads (sockets, handshakes, dates).
//! - `auth.rs`: basic auth (bcrypt) and the session ids of logged-in UIs.
//! - `hooks.rs`: what the engine and the sockets report (counters in both
//!   modes; per-socket events in development mode) and the admin commands.

mod auth;
mod buckets;
mod hooks;
mod serialize;

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use serde_json::{Value, json};

use crate::encoded::Args;
use crate::error::Error;
use crate::io::{IoInner, SocketIo};
use crate::ns::NsInner;
use crate::operators::BroadcastOperator;
use crate::socket::{Socket, SocketId};

/// How the admin namespace authenticates the UI.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminAuth {
    /// Anyone who reaches the namespace is an admin (the reference's
    /// `auth: false`): only behind a trusted network.
    None,
    /// A username and a bcrypt hash of the password (the reference's
    /// `auth: {type: "basic", username, password}`), e.g. from
    /// `node -e 'console.log(require("bcryptjs").hashSync("pass", 10))'`
    /// or `htpasswd -bnBC 10 "" pass | tr -d ':\n'`.
    Basic {
        /// The username the UI must give.
        username: String,
        /// A bcrypt hash (`$2a$`, `$2b$` or `$2y$`) of the password.
        password_hash: String,
    },
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminAuth::None => f.write_str("None"),
            AdminAuth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .finish_non_exhaustive(),
        }
    }
}

/// What the admin namespace reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AdminMode {
    /// Every socket's connects, disconnects, rooms and events, live (the UI's
    /// sockets, rooms, clients and events pages), plus the aggregated stats.
    /// Costs work on every event of every socket: see BENCHMARKS.md.
    #[default]
    Development,
    /// Only `server_stats` (counts per second, namespaces, clients): the
    /// dashboard and servers pages. Counting is a few atomic additions per
    /// message; no per-socket work at all.
    Production,
}

/// Options of [`SocketIo::instrument`]: the reference's `InstrumentOptions`.
///
/// # Defaults
/// | option | default | reference |
/// |---|---|---|
/// | `namespace` | `/admin` | `namespaceName` |
/// | `auth` | [`AdminAuth::None`] | `auth` (which Node makes you spell out) |
/// | `readonly` | `false` | `readonly` |
/// | `mode` | [`AdminMode::Development`] | `mode` (`NODE_ENV` or `development`) |
/// | `server_id` | the host name | `serverId` |
/// | `stats_interval` | 2 s (100 ms to 10 s) | fixed 2 s |
/// | `max_sessions` | 1 000 session ids kept (the oldest go first) | unbounded `InMemoryStore` |
/// | `session_ttl` | 24 h | `RedisStore`'s `sessionDuration` |
///
/// ```
/// use std::time::Duration;
/// use socketio::{AdminConfig, AdminMode};
/// let config = AdminConfig::default()
///     .basic_auth("admin", "$2a$10$HiWr2LM5R2CbI1y2HzGo6.FLnUrWsvZKTCEcbVN1dVa/aoCgp09bm")
///     .mode(AdminMode::Production)
///     .readonly(true)
///     .server_id("eu-1")
///     .stats_interval(Duration::from_secs(5));
/// assert_eq!(config.namespace, "/admin");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AdminConfig {
    /// The admin namespace the UI connects to.
    pub namespace: String,
    /// How the UI authenticates.
    pub auth: AdminAuth,
    /// Whether the UI's commands (emit, join, leave, disconnect) are ignored.
    pub readonly: bool,
    /// What is reported.
    pub mode: AdminMode,
    /// This server's id in the UI (`None`: the host name).
    pub server_id: Option<String>,
    /// How often `server_stats` goes out.
    pub stats_interval: Duration,
    /// Session ids of logged-in UIs kept at most.
    pub max_sessions: usize,
    /// How long a session id is valid.
    pub session_ttl: Duration,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            namespace: "/admin".to_owned(),
            auth: AdminAuth::None,
            readonly: false,
            mode: AdminMode::Development,
            server_id: None,
            stats_interval: Duration::from_secs(2),
            max_sessions: 1_000,
            session_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

impl AdminConfig {
    /// The admin namespace (a missing leading `/` is added).
    pub fn namespace(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.namespace = if name.starts_with('/') {
            name
        } else {
            format!("/{name}")
        };
        self
    }

    /// Basic auth with a username and a bcrypt hash of the password.
    pub fn basic_auth(
        mut self,
        username: impl Into<String>,
        password_hash: impl Into<String>,
    ) -> Self {
        self.auth = AdminAuth::Basic {
            username: username.into(),
            password_hash: password_hash.into(),
        };
        self
    }

    /// Ignore the UI's commands.
    pub fn readonly(mut self, readonly: bool) -> Self {
        self.readonly = readonly;
        self
    }

    /// Development (everything, live) or production (aggregated stats only).
    pub fn mode(mut self, mode: AdminMode) -> Self {
        self.mode = mode;
        self
    }

    /// This server's id in the UI (default: the host name).
    pub fn server_id(mut self, id: impl Into<String>) -> Self {
        self.server_id = Some(id.into());
        self
    }

    /// How often `server_stats` goes out (100 ms to 10 s).
    pub fn stats_interval(mut self, every: Duration) -> Self {
        self.stats_interval = every;
        self
    }

    /// How many session ids of logged-in UIs are kept, and for how long.
    pub fn sessions(mut self, max: usize, ttl: Duration) -> Self {
        self.max_sessions = max;
        self.session_ttl = ttl;
        self
    }

    fn validate(&self) -> Result<(), Error> {
        if let AdminAuth::Basic { password_hash, .. } = &self.auth {
            if !auth::is_bcrypt_hash(password_hash) {
                return Err(Error::InvalidConfig(
                    "admin password_hash must be a bcrypt hash ($2a$/$2b$/$2y$, 60 characters)",
                ));
            }
        }
        let ms = self.stats_interval.as_millis();
        if ms < 100 || ms > u128::from(buckets::MAX_INTERVAL_SECS) * 1000 {
            return Err(Error::InvalidConfig(
                "admin stats_interval must be within 100 ms and 10 s",
            ));
        }
        if self.namespace.len() > 256 || self.max_sessions == 0 {
            return Err(Error::InvalidConfig(
                "admin namespace must be at most 256 bytes and max_sessions at least 1",
            ));
        }
        Ok(())
    }
}

/// How often the counters' clock ([`Admin::second`]) is refreshed.
const CLOCK_TICK: Duration = Duration::from_millis(100);

/// The features the UI enables (`config.supportedFeatures`).
fn features(config: &AdminConfig) -> Vec<&'static str> {
    let mut f = if config.readonly {
        Vec::new()
    } else {
        vec![
            "EMIT",
            "JOIN",
            "LEAVE",
            "DISCONNECT",
            "MJOIN",
            "MLEAVE",
            "MDISCONNECT",
        ]
    };
    f.push("AGGREGATED_EVENTS");
    if config.mode == AdminMode::Development {
        f.push("ALL_EVENTS");
    }
    f
}

/// One instrumented server's admin state.
pub(crate) struct Admin {
    config: AdminConfig,
    features: Vec<&'static str>,
    server_id: String,
    hostname: String,
    io: Weak<IoInner>,
    admin_ns: Weak<NsInner>,
    buckets: buckets::EventBuckets,
    /// Sessions opened on polling and not (yet) upgraded or closed.
    polling: AtomicI64,
    /// Development mode: admin sockets connected to this node.
    local_admins: AtomicUsize,
    /// The current second since the Unix epoch, kept by the stats task
    /// every [`CLOCK_TICK`]: what counting reads instead of the system clock
    /// (a clock read costs ~100 ns on some VMs, more than the counting).
    second: AtomicU64,
    /// Nodes serving the admin namespace, as last asked (every stats tick).
    nodes: AtomicUsize,
    /// Development mode: the sockets of each Engine.IO session, for the
    /// `socket_updated` of an upgrade; emptied as sockets leave.
    clients: DashMap<engineio::Sid, Vec<(String, SocketId)>>,
    sessions: auth::Sessions,
    /// At most this many bcrypt checks run at once (each takes a CPU for
    /// tens of milliseconds): the others wait.
    verifying: tokio::sync::Semaphore,
    started: Instant,
    stats_task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Admin {
    /// The current second (to [`CLOCK_TICK`]), for the counters.
    fn second(&self) -> u64 {
        self.second.load(Ordering::Relaxed)
    }

    fn is_dev(&self) -> bool {
        self.config.mode == AdminMode::Development
    }

    /// Whether an admin may hear events now: one is connected here, or
    /// another node may have one (a cluster). Without, development mode skips
    /// the per-event reports (what an admin connecting later gets is
    /// `all_sockets`, as in Node).
    fn watched(&self) -> bool {
        self.local_admins.load(Ordering::Relaxed) > 0 || self.nodes.load(Ordering::Relaxed) > 1
    }

    /// Stops the `server_stats` task (the server is closing).
    pub(crate) fn stop(&self) {
        if let Some(t) = self
            .stats_task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            t.abort();
        }
    }

    /// Emits to every admin (on every node, through the adapter).
    fn emit(&self, event: &str, values: Vec<Value>, bins: Vec<bytes::Bytes>) {
        let Some(ns) = self.admin_ns.upgrade() else {
            return;
        };
        let _ = BroadcastOperator::new(ns).emit_args(event, Args::from_parts(values, bins));
    }

    fn emit_stats(&self) {
        let Some(io) = self.io.upgrade() else {
            return;
        };
        let namespaces: Vec<Value> = io
            .namespace_list()
            .iter()
            .map(|ns| json!({"name": ns.name(), "socketsCount": ns.inner.socket_count()}))
            .collect();
        let uptime =
            hooks::process_uptime().unwrap_or_else(|| self.started.elapsed().as_secs_f64());
        let polling = self.polling.load(Ordering::Relaxed).max(0);
        let stats = json!({
            "serverId": self.server_id,
            "hostname": self.hostname,
            "pid": std::process::id(),
            "uptime": uptime,
            "clientsCount": io.engine.session_count(),
            "pollingClientsCount": polling,
            "aggregatedEvents": self.buckets.drain(),
            "namespaces": namespaces,
        });
        self.emit("server_stats", vec![stats], Vec::new());
    }

    /// Every socket of every namespace, on every node (development mode).
    async fn all_sockets(&self) -> Vec<Value> {
        let Some(io) = self.io.upgrade() else {
            return Vec::new();
        };
        let namespaces = io.namespace_list();
        drop(io);
        let mut out = Vec::new();
        for ns in namespaces {
            match ns.all().fetch_sockets().await {
                Ok(sockets) => out.extend(sockets.iter().map(|s| hooks::remote_view(ns.name(), s))),
                Err(e) => {
                    tracing::warn!(nsp = ns.name(), error = %e, "admin: could not fetch every node's sockets");
                }
            }
        }
        out
    }

    /// The admin namespace's connection handler: commands, `config`, and in
    /// development mode `all_sockets`.
    async fn on_admin_connection(self: Arc<Self>, socket: Socket) {
        if !self.config.readonly {
            hooks::register_commands(&self, &socket);
        }
        let _ = socket.emit("config", &json!({ "supportedFeatures": self.features }));
        if self.is_dev() {
            let all = self.all_sockets().await;
            let _ = socket.emit("all_sockets", &all);
        }
    }
}

impl SocketIo {
    /// Serves the official Socket.IO Admin UI (`@socket.io/admin-ui`) from
    /// this server: what its `instrument(io, options)` does for a Node one.
    /// The UI connects to the admin namespace (`/admin` by default) with the
    /// official client; it gets `config`, `server_stats` every 2 s and, in
    /// [development mode](AdminMode::Development), every socket and its
    /// events live; unless read-only, its commands (emit, join, leave,
    /// disconnect) act on the sockets. With a cluster adapter, each node's
    /// reports reach the admins of every node and `all_sockets` covers the
    /// cluster.
    ///
    /// The hosted UI (`https://admin.socket.io`) is another origin and its
    /// client sends credentials: allow that origin with credentials in the
    /// engine's CORS (below). The admin namespace belongs to the UI: do not
    /// give it handlers of your own; server-wide middlewares
    /// ([`SocketIo::use_middleware`]) run for it too.
    ///
    /// Needs a tokio runtime (it spawns the `server_stats` task, stopped by
    /// [`close`](SocketIo::close)). Sessions opened before this call are
    /// counted in `clientsCount` only.
    ///
    /// ```no_run
    /// use socketio::{AdminConfig, SocketIo, SocketIoConfig};
    /// use engineio::{Cors, EngineConfig};
    ///
    /// # async fn run() -> Result<(), socketio::Error> {
    /// let io = SocketIo::new(SocketIoConfig::default().engine(
    ///     EngineConfig::default().cors(
    ///         Cors::origins(["https://admin.socket.io"]).credentials(true),
    ///     ),
    /// ))?;
    /// io.instrument(AdminConfig::default().basic_auth(
    ///     "admin",
    ///     // bcrypt hash of the password
    ///     "$2a$10$HiWr2LM5R2CbI1y2HzGo6.FLnUrWsvZKTCEcbVN1dVa/aoCgp09bm",
    /// ))?;
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000")
    ///     .await
    ///     .map_err(engineio::Error::from)?;
    /// io.serve(listener, std::future::pending()).await
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the hash is not a bcrypt hash, the
    /// interval is out of range, there is no tokio runtime, or the server is
    /// instrumented already.
    pub fn instrument(&self, config: AdminConfig) -> Result<(), Error> {
        config.validate()?;
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::InvalidConfig("instrument needs a tokio runtime"))?;
        let inner = &self.inner;
        if inner.admin.get().is_some() {
            return Err(Error::InvalidConfig("this server is instrumented already"));
        }
        let admin_ns = self.of(&config.namespace);
        let hostname = hooks::hostname();
        let admin = Arc::new(Admin {
            features: features(&config),
            server_id: config.server_id.clone().unwrap_or_else(|| hostname.clone()),
            hostname,
            io: Arc::downgrade(inner),
            admin_ns: Arc::downgrade(&admin_ns.inner),
            buckets: buckets::EventBuckets::default(),
            polling: AtomicI64::new(0),
            local_admins: AtomicUsize::new(0),
            second: AtomicU64::new(serialize::now_millis() / 1000),
            nodes: AtomicUsize::new(1),
            clients: DashMap::new(),
            sessions: auth::Sessions::new(config.max_sessions, config.session_ttl),
            verifying: tokio::sync::Semaphore::new(2),
            started: Instant::now(),
            stats_task: Mutex::new(None),
            config,
        });
        if inner.admin.set(admin.clone()).is_err() {
            return Err(Error::InvalidConfig("this server is instrumented already"));
        }
        if let AdminAuth::Basic { .. } = admin.config.auth {
            let a = admin.clone();
            admin_ns.use_middleware(move |socket| hooks::authenticate(a.clone(), socket));
        }
        {
            let a = admin.clone();
            admin_ns.on_connection(move |socket| a.clone().on_admin_connection(socket));
        }
        if !inner.engine.set_observer(admin.clone()) {
            tracing::warn!("the engine has an observer already: no aggregated events");
        }
        if admin.is_dev() {
            let observer: Arc<dyn crate::observe::SocketObserver> = admin.clone();
            let _ = inner.observer.set(observer);
        }
        let weak = Arc::downgrade(&admin);
        let every = admin.config.stats_interval;
        let task = rt.spawn(async move {
            let mut tick = tokio::time::interval(CLOCK_TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut next_stats = tokio::time::Instant::now();
            loop {
                tick.tick().await;
                let Some(a) = weak.upgrade() else {
                    return;
                };
                a.second
                    .store(serialize::now_millis() / 1000, Ordering::Relaxed);
                let now = tokio::time::Instant::now();
                if now < next_stats {
                    continue;
                }
                next_stats = now + every;
                a.emit_stats();
                if let Some(ns) = a.admin_ns.upgrade() {
                    drop(a);
                    let n = crate::Namespace { inner: ns }.server_count().await;
                    match (n, weak.upgrade()) {
                        (Ok(n), Some(a)) => a.nodes.store(n, Ordering::Relaxed),
                        (_, None) => return,
                        (Err(_), Some(_)) => {}
                    }
                }
            }
        });
        *admin
            .stats_task
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(task.abort_handle());
        tracing::info!(
            nsp = %admin.config.namespace,
            mode = ?admin.config.mode,
            readonly = admin.config.readonly,
            auth = ?admin.config.auth,
            "admin UI namespace ready"
        );
        Ok(())
    }
}
