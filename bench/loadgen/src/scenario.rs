//! The four scenarios. Each returns the fields of its JSON line; `ok` is
//! false when a message was lost or corrupted or a client failed.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use std::sync::atomic::Ordering;

use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::time::{Instant, sleep, timeout_at};

use crate::Args;
use crate::client::{AUTH_PREFIX, Client, Counted, payload, show};
use crate::procfs::{CpuMark, rss_bytes};

/// How long one handshake or ack, or a receiver's next message, may take.
const OP_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(args: &Args) -> Result<Value, String> {
    match args.scenario.as_str() {
        "connect" => connect(args).await,
        "echo" => echo(args).await,
        "fanout" => fanout(args).await,
        "rooms" => rooms(args).await,
        "hold" => hold(args).await,
        other => Err(format!("unknown scenario {other:?}")),
    }
}

/// Connects `n` clients with at most `--concurrency` handshakes in flight.
/// All must succeed: the first failure is the error.
async fn connect_all(args: &Args, n: usize) -> Result<Vec<Client>, String> {
    let permits = Arc::new(Semaphore::new(args.concurrency));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let addr = args.addr.clone();
        tasks.push(tokio::spawn(async move {
            let r = tokio::time::timeout(OP_TIMEOUT, Client::connect(&addr)).await;
            drop(permit);
            r.unwrap_or_else(|_| Err("handshake timed out".into()))
        }));
    }
    let mut clients = Vec::with_capacity(n);
    let mut failed = 0;
    let mut first_error = None;
    for t in tasks {
        match t.await.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(c) => clients.push(c),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        None => Ok(clients),
        Some(e) => Err(format!(
            "{failed} of {n} clients failed to connect; first: {e}"
        )),
    }
}

fn per(num: f64, den: f64) -> Value {
    if den > 0.0 {
        json!(num / den)
    } else {
        Value::Null
    }
}

/// `connect`: connections/s, then server RSS per connection after settling.
async fn connect(args: &Args) -> Result<Value, String> {
    let n = args.clients.unwrap_or(1000);
    let rss_before = args.server_pid.and_then(rss_bytes);
    let cpu = CpuMark::now(args.server_pid);
    let t0 = Instant::now();
    let clients = connect_all(args, n).await?;
    let elapsed = t0.elapsed().as_secs_f64();
    let (server_cpu, own_cpu) = cpu.since(args.server_pid);
    // Keep every connection alive (pongs) while the server settles.
    let (stop_tx, stop_rx) = watch::channel(false);
    for mut c in clients {
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = async { while c.recv().await.is_ok() {} } => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        });
    }
    sleep(Duration::from_secs_f64(args.settle)).await;
    let rss_after = args.server_pid.and_then(rss_bytes);
    let _ = stop_tx.send(true);
    let rss_per_conn = match (rss_before, rss_after) {
        (Some(b), Some(a)) => json!((a as f64 - b as f64) / n as f64),
        _ => Value::Null,
    };
    Ok(json!({
        "ok": true,
        "clients": n,
        "elapsed_s": elapsed,
        "conns_per_s": n as f64 / elapsed,
        "rss_before": rss_before,
        "rss_after": rss_after,
        "rss_per_conn_bytes": rss_per_conn,
        "server_cpu_s": server_cpu,
        "server_cpu_us_per_conn": server_cpu.map(|c| c * 1e6 / n as f64),
        "loadgen_cpu_s": own_cpu,
    }))
}

#[derive(Default)]
struct EchoStats {
    /// Latencies in microseconds of the acks after the warm-up.
    latencies: Vec<u32>,
    warmup_acks: u64,
    corrupt: u64,
    first_bad: Option<String>,
    error: Option<String>,
}

/// One client's sequential emit-with-ack loop until `end`.
async fn echo_client(
    mut c: Client,
    idx: usize,
    size: usize,
    measure_from: Instant,
    end: Instant,
) -> EchoStats {
    let mut s = EchoStats::default();
    let mut id: u64 = 0;
    while Instant::now() < end {
        id += 1;
        let p = payload(&format!("c{idx}s{id}-"), size);
        let expected = format!("43{id}[{p}]");
        let sent = Instant::now();
        if let Err(e) = c.send(&format!("42{id}[\"echo\",{p}]")).await {
            s.error = Some(e);
            return s;
        }
        loop {
            match timeout_at(sent + OP_TIMEOUT, c.recv()).await {
                Err(_) => {
                    s.error = Some(format!("no ack for id {id} within {OP_TIMEOUT:?}"));
                    return s;
                }
                Ok(Err(e)) => {
                    s.error = Some(e);
                    return s;
                }
                Ok(Ok(m)) if m == expected.as_bytes() => break,
                Ok(Ok(m)) if m.starts_with(AUTH_PREFIX) => {}
                Ok(Ok(m)) => {
                    s.corrupt += 1;
                    s.first_bad.get_or_insert_with(|| show(m));
                }
            }
        }
        if sent >= measure_from {
            let us = sent.elapsed().as_micros();
            s.latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
        } else {
            s.warmup_acks += 1;
        }
    }
    s
}

/// `echo`: clients in sequential emit-with-ack loops: acks/s, p50/p99.
async fn echo(args: &Args) -> Result<Value, String> {
    let n = args.clients.unwrap_or(50);
    let clients = connect_all(args, n).await?;
    sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let end = measure_from + Duration::from_secs_f64(args.duration);
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, c)| tokio::spawn(echo_client(c, i, args.payload, measure_from, end)))
        .collect();
    tokio::time::sleep_until(measure_from).await;
    let cpu = CpuMark::now(args.server_pid);
    let mut all = Vec::new();
    let (mut corrupt, mut errors, mut first_bad, mut first_error) = (0, 0, None, None);
    for t in tasks {
        let s = t.await.map_err(|e| e.to_string())?;
        all.extend_from_slice(&s.latencies);
        corrupt += s.corrupt;
        first_bad = first_bad.or(s.first_bad);
        if let Some(e) = s.error {
            errors += 1;
            first_error.get_or_insert(e);
        }
    }
    let window = measure_from.elapsed().as_secs_f64();
    let (server_cpu, own_cpu) = cpu.since(args.server_pid);
    all.sort_unstable();
    let pct = |p: f64| -> Value {
        if all.is_empty() {
            return Value::Null;
        }
        let i = ((all.len() as f64 - 1.0) * p).round() as usize;
        json!(all.get(i).copied().unwrap_or(0))
    };
    let acks = all.len() as f64;
    Ok(json!({
        "ok": corrupt == 0 && errors == 0 && !all.is_empty(),
        "clients": n,
        "acks": all.len(),
        "corrupt": corrupt,
        "failed_clients": errors,
        "error": first_error,
        "first_bad": first_bad,
        "elapsed_s": window,
        "acks_per_s": acks / window,
        "p50_us": pct(0.50),
        "p99_us": pct(0.99),
        "max_us": all.last(),
        "server_cpu_s": server_cpu,
        "server_cpu_us_per_msg": server_cpu.map(|c| c * 1e6 / acks),
        "msgs_per_server_cpu_s": server_cpu.map(|c| per(acks, c)),
        "loadgen_cpu_s": own_cpu,
    }))
}

/// One receiver's result over all bursts.
struct Received {
    c: Counted,
    error: Option<String>,
}

impl Received {
    fn failed(e: String) -> Received {
        Received {
            c: Counted::default(),
            error: Some(e),
        }
    }
}

/// The bursts of `fanout` / `rooms`: the coordinator publishes burst `k` on
/// `go`; every receiver adds one to `done` when it has all `k` bursts (or
/// the remaining bursts at once when it fails) and pokes `notify`. Burst
/// `k + 1` starts only when every receiver has burst `k`, so no server ever
/// queues more than one burst per socket (socketioxide drops messages past
/// 128 queued packets, ours closes the session past 1024).
#[derive(Clone)]
struct Sync {
    go: watch::Receiver<usize>,
    done: Arc<std::sync::atomic::AtomicUsize>,
    notify: Arc<Notify>,
}

impl Sync {
    fn mark(&self, bursts: usize) {
        self.done.fetch_add(bursts, Ordering::Relaxed);
        self.notify.notify_one();
    }
}

/// Receives `bursts` bursts of `m` frames equal to `expected`; before each,
/// waits for `go`, then sends `send` (text, times), if any: the sender's emit.
async fn receive_bursts(
    c: &mut Client,
    expected: &[u8],
    m: usize,
    bursts: usize,
    deadline: Instant,
    mut sync: Sync,
    send: Option<(&str, usize)>,
) -> Received {
    let mut r = Received {
        c: Counted::default(),
        error: None,
    };
    for k in 1..=bursts {
        let _ = sync.go.wait_for(|g| *g >= k).await;
        let res = match send {
            Some((text, times)) => c.send_all(std::iter::repeat_n(text, times)).await,
            None => Ok(()),
        };
        let res = match res {
            Ok(()) => match timeout_at(deadline, c.count(expected, m, &mut r.c)).await {
                Ok(res) => res,
                Err(_) => Err(format!(
                    "deadline with {} of {} messages",
                    r.c.got,
                    m * bursts
                )),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = res {
            r.error = Some(e);
            sync.mark(bursts - k + 1);
            return r;
        }
        sync.mark(1);
    }
    r
}

/// Runs the bursts: publishes each on `go` once every receiver has the
/// previous one. Returns how many bursts were started.
async fn coordinate(
    go: &watch::Sender<usize>,
    sync: &Sync,
    n: usize,
    bursts: usize,
    deadline: Instant,
) -> usize {
    for k in 1..=bursts {
        let _ = go.send(k);
        while sync.done.load(Ordering::Relaxed) < n * k {
            // A notify_one without a waiter leaves a permit: no lost wake-up.
            if timeout_at(deadline, sync.notify.notified()).await.is_err() {
                return k;
            }
        }
    }
    bursts
}

fn sync_pair() -> (watch::Sender<usize>, Sync) {
    let (go_tx, go_rx) = watch::channel(0);
    (
        go_tx,
        Sync {
            go: go_rx,
            done: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            notify: Arc::new(Notify::new()),
        },
    )
}

/// Sums the receivers' results into the JSON line of `fanout` / `rooms`.
fn delivery_report(
    n_clients: usize,
    m: usize,
    bursts: usize,
    results: Vec<Received>,
    t0: Instant,
    cpu: (Option<f64>, Option<f64>),
) -> Value {
    let expected = n_clients * m * bursts;
    let delivered: usize = results.iter().map(|r| r.c.got).sum();
    let corrupt: usize = results.iter().map(|r| r.c.corrupt).sum();
    let last = results.iter().filter_map(|r| r.c.last).max();
    let errors = results.iter().filter(|r| r.error.is_some()).count();
    let first_error = results.iter().find_map(|r| r.error.clone());
    let first_bad = results.iter().find_map(|r| r.c.first_bad.clone());
    let elapsed = last.map(|l| (l - t0).as_secs_f64()).unwrap_or(0.0);
    let (server_cpu, own_cpu) = cpu;
    let d = delivered as f64;
    json!({
        "ok": delivered == expected && corrupt == 0 && errors == 0,
        "clients": n_clients,
        "messages": m,
        "bursts": bursts,
        "delivered": delivered,
        "expected": expected,
        "lost": expected.saturating_sub(delivered),
        "corrupt": corrupt,
        "failed_clients": errors,
        "error": first_error,
        "first_bad": first_bad,
        "elapsed_s": elapsed,
        // Mean time from a burst's trigger to its last message.
        "last_ms": elapsed * 1e3 / bursts.max(1) as f64,
        "msgs_per_s": per(d, elapsed),
        "server_cpu_s": server_cpu,
        "server_cpu_us_per_msg": server_cpu.map(|c| c * 1e6 / d),
        "msgs_per_server_cpu_s": server_cpu.map(|c| per(d, c)),
        "loadgen_cpu_s": own_cpu,
    })
}

/// `fanout`: `--bursts` times, client 0 sends `ping-all` (n, payload) and
/// everyone counts the `msg`s.
async fn fanout(args: &Args) -> Result<Value, String> {
    let n = args.clients.unwrap_or(1000);
    let m = args.messages;
    let bursts = args.bursts;
    let clients = connect_all(args, n).await?;
    let p = payload("fanout-", args.payload);
    let expected: Arc<[u8]> = format!("42[\"msg\",{p}]").into_bytes().into();
    let command: Arc<str> = format!("42[\"ping-all\",{m},{p}]").into();
    let (go_tx, sync) = sync_pair();
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout * 0.8);
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let expected = expected.clone();
            let command = command.clone();
            let sync = sync.clone();
            tokio::spawn(async move {
                let send = (i == 0).then_some((&*command, 1));
                receive_bursts(&mut c, &expected, m, bursts, deadline, sync, send).await
            })
        })
        .collect();
    sleep(Duration::from_millis(500)).await;
    let cpu = CpuMark::now(args.server_pid);
    let t0 = Instant::now();
    coordinate(&go_tx, &sync, n, bursts, deadline).await;
    let mut results = Vec::with_capacity(n);
    for t in tasks {
        results.push(t.await.map_err(|e| e.to_string())?);
    }
    let cpu = cpu.since(args.server_pid);
    Ok(delivery_report(n, m, bursts, results, t0, cpu))
}

/// `rooms`: clients join rooms of `--room-size` (ack); then, `--bursts`
/// times, the first member of each room sends `bcast` (room, payload)
/// `--messages` times and every member counts the `msg`s of its room.
async fn rooms(args: &Args) -> Result<Value, String> {
    let n = args.clients.unwrap_or(1000);
    let m = args.messages;
    let size = args.room_size;
    let bursts = args.bursts;
    let clients = connect_all(args, n).await?;
    let (go_tx, sync) = sync_pair();
    let (joined_tx, mut joined_rx) = mpsc::channel::<Result<(), String>>(n.max(1));
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout * 0.8);
    let payload_size = args.payload;
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let sync = sync.clone();
            let joined = joined_tx.clone();
            tokio::spawn(async move {
                let room = format!("r{}", i / size);
                let join = async {
                    c.send(&format!("421[\"join\",\"{room}\"]")).await?;
                    loop {
                        let msg = c.recv().await?;
                        if msg.starts_with(b"431[") {
                            return Ok(());
                        }
                        if !msg.starts_with(AUTH_PREFIX) {
                            return Err(format!("expected the join ack, got {}", show(msg)));
                        }
                    }
                };
                let r = tokio::time::timeout(OP_TIMEOUT, join)
                    .await
                    .unwrap_or_else(|_| Err("join ack timed out".into()));
                let _ = joined.send(r.clone()).await;
                if let Err(e) = r {
                    sync.mark(bursts);
                    return Received::failed(e);
                }
                let p = payload(&format!("{room}:"), payload_size);
                let expected = format!("42[\"msg\",{p}]");
                let cmd = format!("42[\"bcast\",\"{room}\",{p}]");
                let send = (i % size == 0).then_some((cmd.as_str(), m));
                receive_bursts(&mut c, expected.as_bytes(), m, bursts, deadline, sync, send).await
            })
        })
        .collect();
    drop(joined_tx);
    for _ in 0..n {
        match joined_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(format!("join failed: {e}")),
            None => return Err("a client task ended before joining".into()),
        }
    }
    sleep(Duration::from_millis(300)).await;
    let cpu = CpuMark::now(args.server_pid);
    let t0 = Instant::now();
    coordinate(&go_tx, &sync, n, bursts, deadline).await;
    let mut results = Vec::with_capacity(n);
    for t in tasks {
        results.push(t.await.map_err(|e| e.to_string())?);
    }
    let cpu = cpu.since(args.server_pid);
    Ok(delivery_report(n, m, bursts, results, t0, cpu))
}

/// Read buffer of a `hold` client: enough for the upgrade response and the
/// small messages of the scenario (it grows for a larger frame).
const HOLD_READ_BUF: usize = 1024;

/// The loopback source address of client `i` (`--sources` > 0), in turn.
fn source_of(args: &Args, i: usize) -> Option<std::net::IpAddr> {
    if args.sources == 0 {
        return None;
    }
    let k = (i % args.sources) as u32 + 1; // 127.0.0.1 ..= 127.0.0.<sources>
    Some(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
        0x7f00_0000 | k,
    )))
}

/// `hold` (the C100K scenario): `--clients` WebSocket clients connect
/// (`--concurrency` handshakes in flight, spread over `--sources` loopback
/// addresses) and stay connected for `--duration` seconds, answering the
/// server's heartbeat at its default interval; then one more client sends
/// `ping-all` (1, payload): a single `io.emit` that every client must
/// receive. Reports the clients lost during the hold (a ping timeout or any
/// other close), the server's RSS (after connecting, peak and end of the
/// hold, sampled every 5 s), its CPU during the idle hold, and the time
/// from that emit to the last client's copy.
async fn hold(args: &Args) -> Result<Value, String> {
    let n = args.clients.unwrap_or(10_000);
    let rss_before = args.server_pid.and_then(rss_bytes);
    let p = payload("hold-", args.payload);
    let expected: Arc<[u8]> = format!("42[\"msg\",{p}]").into_bytes().into();
    let connected = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let emitted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let progress = Arc::new(Notify::new());
    let permits = Arc::new(Semaphore::new(args.concurrency));
    // Every client's task ends by this instant at the latest.
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout * 0.9);
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let (addr, source) = (args.addr.clone(), source_of(args, i));
        let (expected, connected, failed, emitted, progress) = (
            expected.clone(),
            connected.clone(),
            failed.clone(),
            emitted.clone(),
            progress.clone(),
        );
        // Each client reads (and so answers pings) from the moment it is
        // connected: a long connect phase must not time the first ones out.
        tasks.push(tokio::spawn(async move {
            let c = tokio::time::timeout(
                OP_TIMEOUT,
                Client::connect_from(&addr, source, HOLD_READ_BUF),
            )
            .await
            .unwrap_or_else(|_| Err("handshake timed out".into()));
            drop(permit);
            let mut c = match c {
                Ok(c) => c,
                Err(e) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    progress.notify_one();
                    return (Received::failed(e), false);
                }
            };
            connected.fetch_add(1, Ordering::Relaxed);
            progress.notify_one();
            let mut r = Received {
                c: Counted::default(),
                error: None,
            };
            let res = match timeout_at(deadline, c.count(&expected, 1, &mut r.c)).await {
                Ok(res) => res,
                Err(_) => Err("deadline without the emitted message".into()),
            };
            // Lost during the hold: closed before the emit was sent.
            let lost_in_hold = res.is_err() && !emitted.load(Ordering::Relaxed);
            r.error = res.err();
            (r, lost_in_hold)
        }));
    }
    while connected.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < n {
        if timeout_at(deadline, progress.notified()).await.is_err() {
            break;
        }
    }
    let connect_s = t0.elapsed().as_secs_f64();
    let connect_failed = failed.load(Ordering::Relaxed);
    let rss_connected = args.server_pid.and_then(rss_bytes);
    let cpu = CpuMark::now(args.server_pid);
    let hold_end = Instant::now() + Duration::from_secs_f64(args.duration);
    let mut rss_peak = rss_connected;
    while Instant::now() < hold_end {
        sleep((hold_end - Instant::now()).min(Duration::from_secs(5))).await;
        let now = args.server_pid.and_then(rss_bytes);
        rss_peak = rss_peak.max(now);
    }
    let (hold_cpu, own_cpu) = cpu.since(args.server_pid);
    let rss_end = args.server_pid.and_then(rss_bytes);
    let mut trigger = Client::connect_from(&args.addr, source_of(args, n), HOLD_READ_BUF).await?;
    emitted.store(true, Ordering::Relaxed);
    let t_emit = Instant::now();
    trigger.send(&format!("42[\"ping-all\",1,{p}]")).await?;
    let mut own = Counted::default();
    let trigger_ok = timeout_at(deadline, trigger.count(&expected, 1, &mut own))
        .await
        .is_ok_and(|r| r.is_ok());
    let mut received = usize::from(trigger_ok);
    let (mut lost_in_hold, mut errors, mut first_error, mut last) = (0, 0, None, own.last);
    let mut corrupt = own.corrupt;
    for t in tasks {
        let (r, lost) = t.await.map_err(|e| e.to_string())?;
        received += r.c.got;
        corrupt += r.c.corrupt;
        last = last.max(r.c.last);
        lost_in_hold += usize::from(lost);
        if let Some(e) = r.error {
            errors += 1;
            first_error.get_or_insert(e);
        }
    }
    let expected_total = n + 1;
    let emit_ms = last.map(|l| (l - t_emit).as_secs_f64() * 1e3);
    let per_conn = |rss: Option<u64>| match (rss_before, rss) {
        (Some(b), Some(a)) => json!((a as f64 - b as f64) / n as f64),
        _ => Value::Null,
    };
    Ok(json!({
        "ok": connect_failed == 0 && lost_in_hold == 0 && errors == 0 && corrupt == 0
            && received == expected_total,
        "clients": n,
        "sources": args.sources,
        "connect_s": connect_s,
        "connect_failed": connect_failed,
        "hold_s": args.duration,
        "lost_in_hold": lost_in_hold,
        "failed_clients": errors,
        "error": first_error,
        "corrupt": corrupt,
        "received": received,
        "expected": expected_total,
        "emit_to_all_ms": emit_ms,
        "rss_before": rss_before,
        "rss_connected": rss_connected,
        "rss_peak": rss_peak,
        "rss_end": rss_end,
        "rss_per_conn_bytes": per_conn(rss_end),
        "hold_server_cpu_s": hold_cpu,
        "loadgen_cpu_s": own_cpu,
    }))
}
