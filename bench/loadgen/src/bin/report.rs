//! `report`: turns the JSON lines of `bench/run.sh` into BENCHMARKS.md.
//!
//! ```text
//! report --input results.jsonl --output BENCHMARKS.md --command "bench/run.sh"
//!        --notes "machine notes" [--profile bench/profile.md]
//! ```
//! Per scenario and metric: the median per server over the good rounds, and
//! the median of the per-round ratios vs socketioxide (paired by round).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

const SERVERS: [&str; 3] = ["ours", "socketioxide", "node"];

/// (metric field, label, higher is better, unit scale, unit name, target for ours/socketioxide)
struct Metric {
    field: &'static str,
    label: &'static str,
    higher_better: bool,
    scale: f64,
    unit: &'static str,
    target: Option<f64>,
}

const fn m(
    field: &'static str,
    label: &'static str,
    higher_better: bool,
    scale: f64,
    unit: &'static str,
    target: Option<f64>,
) -> Metric {
    Metric {
        field,
        label,
        higher_better,
        scale,
        unit,
        target,
    }
}

fn metrics(scenario: &str) -> Vec<Metric> {
    match scenario {
        // Targets: issue #17 (ratios ours / socketioxide).
        s if s.starts_with("connect") => vec![
            m(
                "conns_per_s",
                "connections/s",
                true,
                1.0,
                "/s",
                (s == "connect-5000").then_some(1.5),
            ),
            m(
                "rss_per_conn_bytes",
                "server RSS per connection",
                false,
                1.0 / 1024.0,
                "KB",
                None,
            ),
            m(
                "server_cpu_us_per_conn",
                "server CPU per connection",
                false,
                1.0,
                "µs",
                None,
            ),
        ],
        "echo" => vec![
            // Throughput is bound by the load generator and the kernel here.
            m("acks_per_s", "acks/s", true, 1.0, "/s", None),
            m("p50_us", "latency p50", false, 1.0, "µs", None),
            m("p99_us", "latency p99", false, 1.0, "µs", Some(0.8)),
            m(
                "server_cpu_us_per_msg",
                "server CPU per ack",
                false,
                1.0,
                "µs",
                Some(0.75),
            ),
        ],
        "fanout" => vec![
            m("msgs_per_s", "delivered msgs/s", true, 1.0, "/s", Some(2.0)),
            m("last_ms", "time per burst (to its last msg)", false, 1.0, "ms", None),
            m(
                "msgs_per_server_cpu_s",
                "msgs per server CPU-s",
                true,
                1.0,
                "/CPU-s",
                Some(2.0),
            ),
            m(
                "server_cpu_us_per_msg",
                "server CPU per msg",
                false,
                1.0,
                "µs",
                None,
            ),
        ],
        "rooms" => vec![
            m("msgs_per_s", "delivered msgs/s", true, 1.0, "/s", Some(3.0)),
            m("last_ms", "time per burst (to its last msg)", false, 1.0, "ms", None),
            m(
                "msgs_per_server_cpu_s",
                "msgs per server CPU-s",
                true,
                1.0,
                "/CPU-s",
                Some(3.0),
            ),
            m(
                "server_cpu_us_per_msg",
                "server CPU per msg",
                false,
                1.0,
                "µs",
                None,
            ),
        ],
        _ => vec![],
    }
}

fn key(line: &Value) -> String {
    let s = line["scenario"].as_str().unwrap_or("?");
    if s == "connect" {
        format!("connect-{}", line["clients"].as_u64().unwrap_or(0))
    } else {
        s.to_owned()
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn fmt_num(x: f64) -> String {
    if x >= 100.0 {
        let s = format!("{x:.0}");
        // thousands separators for readability
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push('\u{202f}');
            }
            out.push(c);
        }
        out
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn main() -> std::process::ExitCode {
    let mut input = String::new();
    let mut output = String::new();
    let mut command = String::new();
    let mut notes = String::new();
    let mut profile = String::new();
    let mut codec = String::new();
    let mut raw = "bench/results/last-run.jsonl".to_owned();
    let mut it = std::env::args().skip(1);
    while let Some(f) = it.next() {
        let v = it.next().unwrap_or_default();
        match f.as_str() {
            "--input" => input = v,
            "--output" => output = v,
            "--command" => command = v,
            "--notes" => notes = v,
            "--profile" => profile = v,
            "--codec" => codec = v,
            "--raw" => raw = v,
            other => {
                eprintln!("report: unknown flag {other}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let text = match std::fs::read_to_string(&input) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("report: {input}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    // scenario -> server -> round -> line (good runs only)
    let mut good: BTreeMap<String, BTreeMap<String, BTreeMap<u64, Value>>> = BTreeMap::new();
    let mut failed = Vec::new();
    let mut order: Vec<String> = Vec::new();
    for l in &lines {
        let k = key(l);
        if !order.contains(&k) {
            order.push(k.clone());
        }
        if l["ok"].as_bool() == Some(true) {
            let server = l["server"].as_str().unwrap_or("?").to_owned();
            let round = l["round"].as_u64().unwrap_or(0);
            good.entry(k)
                .or_default()
                .entry(server)
                .or_default()
                .insert(round, l.clone());
        } else {
            failed.push(l.clone());
        }
    }
    let rounds = lines
        .iter()
        .filter_map(|l| l["round"].as_u64())
        .max()
        .unwrap_or(0);

    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks: ours vs socketioxide vs Node socket.io\n");
    let _ = writeln!(
        md,
        "Generated by `bench/run.sh` (do not edit by hand; the profile section comes from `bench/profile.md`).\n"
    );
    let _ = writeln!(md, "- Command: `{command}`");
    let _ = writeln!(md, "- {notes}");
    let _ = writeln!(
        md,
        "- Rounds: {rounds}; servers interleaved ours → socketioxide → node per scenario, a fresh server process per run; server on CPU 0, load generator on CPU 1 (`taskset`)."
    );
    let _ = writeln!(
        md,
        "- Values are medians over the good rounds; **ratios are the median of per-round ratios vs socketioxide = 1.00** (for every metric, > 1 means more of it, whether that is good or bad); `[min–max]` over rounds."
    );
    let _ = writeln!(
        md,
        "- Raw lines: `{raw}`. Load generator: `bench/loadgen` (raw Engine.IO v4 / Socket.IO v5 over WebSocket, hand-rolled framing; every delivered frame compared byte for byte with the expected one).\n- CPU seconds are the scheduler's nanosecond run time of every thread (`/proc/<pid>/task/*/schedstat`) around the measured window; `fanout` and `rooms` repeat their 100-message burst (1000 clients, 100 000 deliveries) several times back to back (`bursts` in the raw lines), and measure the whole window.\n"
    );
    let _ = writeln!(
        md,
        "| scenario | metric | ours | socketioxide | node | ours/sx | node/sx | target (ours/sx) |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---|");
    for sc in &order {
        let Some(by_server) = good.get(sc) else {
            continue;
        };
        for metric in metrics(sc) {
            let val = |server: &str| -> Option<f64> {
                let runs = by_server.get(server)?;
                median(
                    runs.values()
                        .filter_map(|l| l[metric.field].as_f64())
                        .collect(),
                )
            };
            let ratio = |server: &str| -> Option<(f64, f64, f64)> {
                let runs = by_server.get(server)?;
                let base = by_server.get("socketioxide")?;
                let rs: Vec<f64> = runs
                    .iter()
                    .filter_map(|(r, l)| {
                        Some(l[metric.field].as_f64()? / base.get(r)?[metric.field].as_f64()?)
                    })
                    .filter(|x| x.is_finite())
                    .collect();
                let lo = rs.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = rs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                Some((median(rs)?, lo, hi))
            };
            let cell = |s: &str| {
                val(s)
                    .map(|v| format!("{} {}", fmt_num(v * metric.scale), metric.unit))
                    .unwrap_or("–".into())
            };
            let rcell = |s: &str| {
                ratio(s)
                    .map(|(m, lo, hi)| {
                        if lo < hi {
                            format!("**{m:.2}×** [{lo:.2}–{hi:.2}]")
                        } else {
                            format!("**{m:.2}×**")
                        }
                    })
                    .unwrap_or("–".into())
            };
            let target = match (metric.target, ratio("ours")) {
                (Some(t), Some((r, _, _))) => {
                    let met = if metric.higher_better { r >= t } else { r <= t };
                    let op = if metric.higher_better { "≥" } else { "≤" };
                    format!("{op} {t:.1}×: {}", if met { "met" } else { "**missed**" })
                }
                _ if metric.field == "rss_per_conn_bytes" && sc == "connect-5000" => {
                    match val("ours") {
                        Some(v) => format!(
                            "≤ 8 KB: {}",
                            if v / 1024.0 <= 8.0 {
                                "met"
                            } else {
                                "**missed**"
                            }
                        ),
                        None => String::new(),
                    }
                }
                _ => String::new(),
            };
            let _ = writeln!(
                md,
                "| {sc} | {} | {} | {} | {} | {} | {} | {target} |",
                metric.label,
                cell("ours"),
                cell("socketioxide"),
                cell("node"),
                rcell("ours"),
                rcell("node"),
            );
        }
    }
    // Who was busy? CPU share of the measured window for the server (on its
    // own pinned core) and the load generator.
    let _ = writeln!(
        md,
        "\nCPU busy during the measured window, median % of one core, server / load generator. The server is pinned to a core that other builds on this VM also used, so a server well below 100 % was waiting for its core or for the network, not for work: **compare CPU per message first, throughput second**.\n"
    );
    let _ = writeln!(
        md,
        "| scenario | ours | socketioxide | node |\n|---|---:|---:|---:|"
    );
    for sc in &order {
        let Some(by_server) = good.get(sc) else {
            continue;
        };
        let busy = |s: &str| -> String {
            let share = |field: &str| {
                by_server.get(s).and_then(|runs| {
                    median(
                        runs.values()
                            .filter_map(|l| {
                                Some(100.0 * l[field].as_f64()? / l["elapsed_s"].as_f64()?)
                            })
                            .collect(),
                    )
                })
            };
            match (share("server_cpu_s"), share("loadgen_cpu_s")) {
                (Some(a), Some(b)) => format!("{a:.0} % / {b:.0} %"),
                _ => "–".into(),
            }
        };
        let _ = writeln!(
            md,
            "| {sc} | {} | {} | {} |",
            busy("ours"),
            busy("socketioxide"),
            busy("node")
        );
    }
    let _ = write!(
        md,
        "\nGood runs per server: {}",
        SERVERS
            .iter()
            .map(|s| {
                let n: usize = good
                    .values()
                    .map(|b| b.get(*s).map_or(0, BTreeMap::len))
                    .sum();
                format!("{s} {n} good")
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    if failed.is_empty() {
        let _ = writeln!(md, "; no run lost or corrupted a message or failed.");
    } else {
        let _ = writeln!(md, "; **failed runs (left out of the medians)**:\n");
        for l in &failed {
            let _ = writeln!(
                md,
                "- {} {} round {}: lost {}, corrupt {}, error: {}",
                l["server"].as_str().unwrap_or("?"),
                key(l),
                l["round"],
                l["lost"],
                l["corrupt"],
                l["error"].as_str().unwrap_or("-"),
            );
        }
    }
    if !codec.is_empty() {
        codec_section(&mut md, std::path::Path::new(&codec));
    }
    if !profile.is_empty()
        && let Ok(p) = std::fs::read_to_string(&profile)
    {
        let _ = writeln!(md, "\n{}", p.trim_end());
    }
    if let Err(e) = std::fs::write(&output, md) {
        eprintln!("report: {output}: {e}");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}

/// Every `new/benchmark.json` under `dir` (criterion's output), as
/// (group, id, bytes per iteration, mean ns per iteration).
fn criterion_results(dir: &std::path::Path, out: &mut Vec<(String, String, f64, f64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "new") {
                let read = |f: &str| -> Option<Value> {
                    serde_json::from_str(&std::fs::read_to_string(path.join(f)).ok()?).ok()
                };
                if let (Some(b), Some(est)) = (read("benchmark.json"), read("estimates.json")) {
                    let bytes = b["throughput"]["Bytes"]
                        .as_f64()
                        .or_else(|| b["throughput"]["BytesDecimal"].as_f64());
                    if let (Some(bytes), Some(ns)) = (bytes, est["mean"]["point_estimate"].as_f64())
                    {
                        let id = [b["function_id"].as_str(), b["value_str"].as_str()]
                            .into_iter()
                            .flatten()
                            .collect::<Vec<_>>()
                            .join("/");
                        out.push((
                            b["group_id"].as_str().unwrap_or("?").to_owned(),
                            id,
                            bytes,
                            ns,
                        ));
                    }
                }
            } else {
                criterion_results(&path, out);
            }
        }
    }
}

fn codec_section(md: &mut String, dir: &std::path::Path) {
    let mut rows = Vec::new();
    criterion_results(dir, &mut rows);
    if rows.is_empty() {
        return;
    }
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let _ = writeln!(md, "\n## Codec micro-benchmarks (ours only)\n");
    let _ = writeln!(
        md,
        "`cd bench/codec && cargo bench` (criterion, mean time per iteration; MB/s = wire bytes / time, 1 MB = 10^6 B). Absolute numbers on the same noisy VM: compare rows with each other, not with other machines.\n"
    );
    let _ = writeln!(
        md,
        "| group | benchmark | wire bytes | time | MB/s |\n|---|---|---:|---:|---:|"
    );
    for (group, id, bytes, ns) in rows {
        let time = if ns >= 1000.0 {
            format!("{:.2} µs", ns / 1000.0)
        } else {
            format!("{ns:.0} ns")
        };
        let _ = writeln!(
            md,
            "| {group} | {id} | {bytes:.0} | {time} | {:.0} |",
            bytes / ns * 1000.0
        );
    }
}
