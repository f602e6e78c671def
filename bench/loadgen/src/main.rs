//! `loadgen`: drives one Socket.IO v5 server over raw WebSocket through one
//! scenario and prints one JSON line with the result.
//!
//! ```text
//! loadgen --addr 127.0.0.1:PORT --scenario connect|echo|fanout|rooms|hold
//!         [--server-pid PID] [--label NAME] [--round R] [--clients N]
//!         [--concurrency 100] [--payload 100] [--messages 100] [--bursts 1] [--room-size 10]
//!         [--duration 10] [--warmup 1] [--settle 2] [--timeout 120] [--sources 0]
//! ```
//! A run that loses or corrupts a message prints `"ok": false` with the
//! counts; `bench/run.sh` leaves such runs out of the medians.
//!
//! # Layout
//! - `client.rs`: one Engine.IO / Socket.IO client (handshake, pings);
//! - `procfs.rs`: server RSS and CPU time from /proc, RLIMIT_NOFILE;
//! - `scenario.rs`: connect, echo, fanout, rooms, hold (C100K);
//! - `bin/report.rs`: the JSON lines → BENCHMARKS.md tables.

use std::time::Duration;

use serde_json::{Value, json};

mod client;
mod procfs;
mod scenario;

#[derive(Debug, Clone)]
pub struct Args {
    pub addr: String,
    pub scenario: String,
    pub server_pid: Option<u32>,
    pub label: String,
    pub round: u32,
    pub clients: Option<usize>,
    pub concurrency: usize,
    pub payload: usize,
    pub messages: usize,
    pub bursts: usize,
    pub room_size: usize,
    pub duration: f64,
    pub warmup: f64,
    pub settle: f64,
    pub timeout: f64,
    /// `hold`: spread the clients over this many loopback source addresses
    /// (127.0.0.1, 127.0.0.2, ...); 0 lets the kernel pick.
    pub sources: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        addr: String::new(),
        scenario: String::new(),
        server_pid: None,
        label: "server".into(),
        round: 1,
        clients: None,
        concurrency: 100,
        payload: 100,
        messages: 100,
        bursts: 1,
        room_size: 10,
        duration: 10.0,
        warmup: 1.0,
        settle: 2.0,
        timeout: 120.0,
        sources: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {v}: {e}");
        match flag.as_str() {
            "--addr" => a.addr = v,
            "--scenario" => a.scenario = v,
            "--server-pid" => a.server_pid = Some(v.parse().map_err(|e| bad(&e))?),
            "--label" => a.label = v,
            "--round" => a.round = v.parse().map_err(|e| bad(&e))?,
            "--clients" => a.clients = Some(v.parse().map_err(|e| bad(&e))?),
            "--concurrency" => a.concurrency = v.parse().map_err(|e| bad(&e))?,
            "--payload" => a.payload = v.parse().map_err(|e| bad(&e))?,
            "--messages" => a.messages = v.parse().map_err(|e| bad(&e))?,
            "--bursts" => a.bursts = v.parse().map_err(|e| bad(&e))?,
            "--room-size" => a.room_size = v.parse().map_err(|e| bad(&e))?,
            "--duration" => a.duration = v.parse().map_err(|e| bad(&e))?,
            "--warmup" => a.warmup = v.parse().map_err(|e| bad(&e))?,
            "--settle" => a.settle = v.parse().map_err(|e| bad(&e))?,
            "--timeout" => a.timeout = v.parse().map_err(|e| bad(&e))?,
            "--sources" => a.sources = v.parse().map_err(|e| bad(&e))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.addr.is_empty() {
        return Err("--addr is required".into());
    }
    if a.concurrency == 0 || a.room_size == 0 || a.bursts == 0 {
        return Err("--concurrency, --room-size and --bursts must be > 0".into());
    }
    Ok(a)
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let nofile = procfs::raise_nofile();
    // One thread: the load generator is pinned to one core by run.sh.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let hard = Duration::from_secs_f64(args.timeout);
    let result = rt.block_on(async {
        match tokio::time::timeout(hard, scenario::run(&args)).await {
            Ok(r) => r,
            Err(_) => Err(format!("timed out after {}s", args.timeout)),
        }
    });
    let mut line = json!({
        "scenario": args.scenario,
        "server": args.label,
        "round": args.round,
        "nofile": nofile,
    });
    if let Some(n) = args.clients {
        // Also on failure: the report keys `connect` runs by client count.
        line["clients"] = n.into();
    }
    let ok = match result {
        Ok(Value::Object(fields)) => {
            let ok = fields.get("ok").and_then(Value::as_bool).unwrap_or(false);
            if let Value::Object(l) = &mut line {
                l.extend(fields);
            }
            ok
        }
        Ok(other) => {
            line["ok"] = false.into();
            line["error"] = format!("scenario returned {other}").into();
            false
        }
        Err(e) => {
            line["ok"] = false.into();
            line["error"] = e.into();
            false
        }
    };
    println!("{line}");
    // Dropping the runtime with thousands of sockets is slow; just exit.
    std::process::exit(if ok { 0 } else { 1 });
}
