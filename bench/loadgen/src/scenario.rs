//! The four scenarios. Each returns the fields of its JSON line; `ok` is
//! false when a message was lost or corrupted or a client failed.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::{Instant, sleep, timeout_at};

use crate::Args;
use crate::client::{AUTH_PREFIX, Client, payload};
use crate::procfs::{CpuMark, rss_bytes};

/// How long one handshake or ack, or a receiver's next message, may take.
const OP_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(args: &Args) -> Result<Value, String> {
    match args.scenario.as_str() {
        "connect" => connect(args).await,
        "echo" => echo(args).await,
        "fanout" => fanout(args).await,
        "rooms" => rooms(args).await,
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
        if let Err(e) = c.send(format!("42{id}[\"echo\",{p}]")).await {
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
                Ok(Ok(m)) if m.as_str() == expected => break,
                Ok(Ok(m)) if m.starts_with(AUTH_PREFIX) => {}
                Ok(Ok(m)) => {
                    s.corrupt += 1;
                    s.first_bad
                        .get_or_insert_with(|| m.as_str().chars().take(200).collect());
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

struct Received {
    got: usize,
    corrupt: usize,
    last: Option<Instant>,
    first_bad: Option<String>,
    error: Option<String>,
}

/// Reads until `n` frames equal to `expected` arrived (ignoring the `auth`
/// event), or an error, or `deadline`.
async fn receive(c: &mut Client, expected: &str, n: usize, deadline: Instant) -> Received {
    let mut r = Received {
        got: 0,
        corrupt: 0,
        last: None,
        first_bad: None,
        error: None,
    };
    while r.got < n {
        match timeout_at(deadline, c.recv()).await {
            Err(_) => {
                r.error = Some(format!("deadline with {} of {n} messages", r.got));
                break;
            }
            Ok(Err(e)) => {
                r.error = Some(e);
                break;
            }
            Ok(Ok(m)) if m.as_str() == expected => {
                r.got += 1;
                r.last = Some(Instant::now());
            }
            Ok(Ok(m)) if m.starts_with(AUTH_PREFIX) => {}
            Ok(Ok(m)) => {
                r.corrupt += 1;
                r.first_bad
                    .get_or_insert_with(|| m.as_str().chars().take(200).collect());
            }
        }
    }
    r
}

/// Sums the receivers' results into the JSON line of `fanout` / `rooms`.
fn delivery_report(
    n_clients: usize,
    expected: usize,
    results: Vec<Received>,
    t0: Instant,
    cpu: (Option<f64>, Option<f64>),
) -> Value {
    let delivered: usize = results.iter().map(|r| r.got).sum();
    let corrupt: usize = results.iter().map(|r| r.corrupt).sum();
    let last = results.iter().filter_map(|r| r.last).max();
    let errors = results.iter().filter(|r| r.error.is_some()).count();
    let first_error = results.iter().find_map(|r| r.error.clone());
    let first_bad = results.iter().find_map(|r| r.first_bad.clone());
    let elapsed = last.map(|l| (l - t0).as_secs_f64()).unwrap_or(0.0);
    let (server_cpu, own_cpu) = cpu;
    let d = delivered as f64;
    json!({
        "ok": delivered == expected && corrupt == 0 && errors == 0,
        "clients": n_clients,
        "delivered": delivered,
        "expected": expected,
        "lost": expected.saturating_sub(delivered),
        "corrupt": corrupt,
        "failed_clients": errors,
        "error": first_error,
        "first_bad": first_bad,
        "elapsed_s": elapsed,
        "last_ms": elapsed * 1e3,
        "msgs_per_s": per(d, elapsed),
        "server_cpu_s": server_cpu,
        "server_cpu_us_per_msg": server_cpu.map(|c| c * 1e6 / d),
        "msgs_per_server_cpu_s": server_cpu.map(|c| per(d, c)),
        "loadgen_cpu_s": own_cpu,
    })
}

/// `fanout`: client 0 sends `ping-all` (n, payload); everyone counts `msg`s.
async fn fanout(args: &Args) -> Result<Value, String> {
    let n = args.clients.unwrap_or(1000);
    let m = args.messages;
    let clients = connect_all(args, n).await?;
    let p = payload("fanout-", args.payload);
    let expected = Arc::new(format!("42[\"msg\",{p}]"));
    let command = format!("42[\"ping-all\",{m},{p}]");
    let (go_tx, go_rx) = watch::channel(false);
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout * 0.8);
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let expected = expected.clone();
            let command = command.clone();
            let mut go = go_rx.clone();
            tokio::spawn(async move {
                if i == 0 {
                    let _ = go.wait_for(|g| *g).await;
                    if let Err(e) = c.send(command).await {
                        return Received {
                            got: 0,
                            corrupt: 0,
                            last: None,
                            first_bad: None,
                            error: Some(e),
                        };
                    }
                }
                receive(&mut c, &expected, m, deadline).await
            })
        })
        .collect();
    sleep(Duration::from_millis(500)).await;
    let cpu = CpuMark::now(args.server_pid);
    let t0 = Instant::now();
    let _ = go_tx.send(true);
    let mut results = Vec::with_capacity(n);
    for t in tasks {
        results.push(t.await.map_err(|e| e.to_string())?);
    }
    let cpu = cpu.since(args.server_pid);
    Ok(delivery_report(n, n * m, results, t0, cpu))
}

/// `rooms`: clients join rooms of `--room-size` (ack), then the first member
/// of each room sends `bcast` (room, payload) `--messages` times.
async fn rooms(args: &Args) -> Result<Value, String> {
    let n = args.clients.unwrap_or(1000);
    let m = args.messages;
    let size = args.room_size;
    let clients = connect_all(args, n).await?;
    let (go_tx, go_rx) = watch::channel(false);
    let (joined_tx, mut joined_rx) = mpsc::channel::<Result<(), String>>(n.max(1));
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout * 0.8);
    let payload_size = args.payload;
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let mut go = go_rx.clone();
            let joined = joined_tx.clone();
            tokio::spawn(async move {
                let room = format!("r{}", i / size);
                let fail = |e: String| Received {
                    got: 0,
                    corrupt: 0,
                    last: None,
                    first_bad: None,
                    error: Some(e),
                };
                let join = async {
                    c.send(format!("421[\"join\",\"{room}\"]")).await?;
                    loop {
                        let msg = c.recv().await?;
                        if msg.starts_with("431[") {
                            return Ok(());
                        }
                        if !msg.starts_with(AUTH_PREFIX) {
                            return Err(format!("expected the join ack, got {msg:?}"));
                        }
                    }
                };
                let r = tokio::time::timeout(OP_TIMEOUT, join)
                    .await
                    .unwrap_or_else(|_| Err("join ack timed out".into()));
                let _ = joined.send(r.clone()).await;
                if let Err(e) = r {
                    return fail(e);
                }
                let p = payload(&format!("{room}:"), payload_size);
                let expected = format!("42[\"msg\",{p}]");
                let _ = go.wait_for(|g| *g).await;
                if i % size == 0 {
                    let cmd = format!("42[\"bcast\",\"{room}\",{p}]");
                    if let Err(e) = c.send_all(std::iter::repeat_n(cmd, m)).await {
                        return fail(e);
                    }
                }
                receive(&mut c, &expected, m, deadline).await
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
    let _ = go_tx.send(true);
    let mut results = Vec::with_capacity(n);
    for t in tasks {
        results.push(t.await.map_err(|e| e.to_string())?);
    }
    let cpu = cpu.since(args.server_pid);
    Ok(delivery_report(n, n * m, results, t0, cpu))
}
