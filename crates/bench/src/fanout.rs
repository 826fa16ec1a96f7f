//! Scenarios 4 and 5: 1,000 and 10,000 WebSocket subscribers on one server process while commands
//! arrive at a steady rate: delivery latency p50/p99 from sending the command to receipt, and the
//! server's RSS idle and at its peak. The server is this binary re-run as a child process, so its
//! memory is its own.

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use doetank_api::auth::{Auth, Role};
use doetank_api::server::ServerConfig;
use doetank_api::App;
use doetank_store::EventStore;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Mutex;

use crate::db::Backend;
use crate::fanout_client::Subscriber;
use crate::report::{Report, Target};
use crate::Options;

const SECRET: &str = "bench-secret";

/// The child: serves until killed.
pub async fn serve_child(database_url: &str) -> anyhow::Result<()> {
    let store = EventStore::connect_with(database_url, 16).await?;
    store.migrate().await?;
    let app = App::new(store);
    app.projector.catch_up().await?;
    let listener = doetank_api::server::listen(([127, 0, 0, 1], 0).into())?;
    println!("listening on {}", listener.local_addr()?);
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let config = ServerConfig { auth: Auth::hs256(SECRET.as_bytes()), ..ServerConfig::default() };
    doetank_api::server::serve(app, config, listener, shutdown).await?;
    Ok(())
}

/// (current RSS, peak RSS) of a process, in MB.
fn rss_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The CPU seconds a process has used so far, user and system, its ended threads included.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The name (field 2) may hold spaces and parentheses; the fields after its last `)` are
    // plain, starting with field 3: `utime` and `stime` (14 and 15) are the 12th and 13th.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map_or_else(Vec::new, |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| fields.get(i).and_then(|t| t.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf only reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks(11) + ticks(12)) / if per_second > 0 { per_second as f64 } else { 100.0 }
}

/// The machine's CPU time so far, (busy, all), in ticks of `/proc/stat`: with the client and
/// the server on the same cores, a phase with no idle time left measures queueing as well.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    // user nice system idle iowait irq softirq steal (guest time is counted in user).
    let times: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|t| t.parse().ok())
        .collect();
    let all: u64 = times.iter().sum();
    let idle = times.get(3).copied().unwrap_or(0) + times.get(4).copied().unwrap_or(0);
    (all.saturating_sub(idle), all)
}

pub async fn run(backend: &Backend, o: &Options, report: &mut Report) -> anyhow::Result<()> {
    // A quick run checks that fan-out works, at one size (two kept it over a minute).
    let counts = o.subscribers.clone().unwrap_or(if o.quick { vec![200] } else { vec![1_000, 10_000] });
    let name = backend.name();
    for subscribers in counts {
        // The targets are set at 10,000 subscribers.
        let at_10_000 = |target| if subscribers == 10_000 { vec![target] } else { vec![] };
        let limit = one(backend, o, subscribers, Server::Limit).await?;
        let doetank = one(backend, o, subscribers, Server::FromNow).await?;
        let resuming = one(backend, o, subscribers, Server::Resuming).await?;
        let phases = limit.phases.iter().zip(&doetank.phases).zip(&resuming.phases);
        for (rate, ((limit_run, run), resumed_run)) in o.fanout_rates().into_iter().zip(phases) {
            let subject = format!("{subscribers} subscribers, {rate} commands/s");
            let limit_subject = format!("{subject}: raw broadcast (baseline)");
            // Against doetank's from now: what it costs that every subscriber came back with
            // a cursor (after a deploy, say) and replayed before it took a seat.
            let resumed_subject = format!("{subject}: each subscribed with `after: 0`, against from now");
            for (subject, run, baseline) in [
                (&limit_subject, limit_run, None),
                (&subject, run, Some(limit_run)),
                (&resumed_subject, resumed_run, Some(run)),
            ] {
                report.add(
                    "fanout",
                    name,
                    subject,
                    "delivered %",
                    run.delivered,
                    None,
                    "every event to every subscriber",
                );
                report.add(
                    "fanout",
                    name,
                    subject,
                    "latency p50 ms",
                    run.p50_ms,
                    baseline.map(|b| b.p50_ms),
                    "",
                );
                let note = if baseline.is_some() { "target < 100 ms at 10,000" } else { "the limit" };
                report
                    .add(
                        "fanout",
                        name,
                        subject,
                        "latency p99 ms",
                        run.p99_ms,
                        baseline.map(|b| b.p99_ms),
                        note,
                    )
                    .aim(&if baseline.is_some() { at_10_000(Target::ValueBelow(100.0)) } else { vec![] });
                report.add(
                    "fanout",
                    name,
                    subject,
                    "server CPU µs per delivery",
                    run.server_cpu_us_per_delivery,
                    baseline.map(|b| b.server_cpu_us_per_delivery),
                    "user and system, from sending the first command until the last had time to arrive",
                );
                report.add(
                    "fanout",
                    name,
                    subject,
                    "machine CPU busy %",
                    run.machine_busy_percent,
                    None,
                    "both cores, client and server, while commands were sent",
                );
            }
        }
        report.add(
            "memory",
            name,
            &format!("server idle (before {subscribers} subscribers)"),
            "RSS MB",
            doetank.idle_mb,
            None,
            "",
        );
        report
            .add(
                "memory",
                name,
                &format!("server peak with {subscribers} subscribers"),
                "RSS MB",
                doetank.peak_mb,
                Some(limit.peak_mb),
                "target < 500 MB at 10,000; against the raw broadcast's",
            )
            .aim(&at_10_000(Target::ValueBelow(500.0)));
        report.add(
            "memory",
            name,
            &format!("server after the run, {subscribers} subscribers still connected"),
            "RSS MB",
            doetank.after_mb,
            Some(limit.after_mb),
            "against the raw broadcast's",
        );
    }
    Ok(())
}

/// What one fan-out run measured: a phase per command rate, the server's memory.
struct Run {
    phases: Vec<Phase>,
    idle_mb: f64,
    peak_mb: f64,
    after_mb: f64,
}

/// Deliveries at one command rate.
struct Phase {
    delivered: f64,
    p50_ms: f64,
    p99_ms: f64,
    server_cpu_us_per_delivery: f64,
    machine_busy_percent: f64,
}

/// What was sent at one rate, and the CPU it took.
struct Sending {
    sent: Vec<(i64, Instant)>,
    server_cpu_s: f64,
    machine_busy_percent: f64,
}

/// Which server a fan-out run measures, and what its subscribers ask.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Server {
    /// The raw broadcast.
    Limit,
    /// doetank, every subscriber from now on.
    FromNow,
    /// doetank, every subscriber with `after: 0`, as dashboards that come back with the last
    /// position they saw: each replays on its own, then takes a seat in a shared execution.
    Resuming,
}

/// One run against `server`.
async fn one(backend: &Backend, o: &Options, subscribers: usize, server: Server) -> anyhow::Result<Run> {
    let limit = server == Server::Limit;
    let query = match server {
        Server::Resuming => "subscription { events(after: 0) { position } }",
        Server::Limit | Server::FromNow => "subscription { events { position } }",
    };
    let fresh = backend.fresh().await?;
    let mut args = vec!["serve-child".to_string(), fresh.url.clone()];
    if limit {
        args.push("--limit".into());
    }
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(&args)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().unwrap_or_default();
    let mut lines = BufReader::new(child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?).lines();
    let addr = loop {
        let line = lines.next_line().await?.ok_or_else(|| anyhow::anyhow!("server exited"))?;
        if let Some(addr) = line.strip_prefix("listening on ") {
            break addr.to_string();
        }
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (idle, _) = rss_mb(pid);
    let token =
        Auth::hs256(SECRET.as_bytes()).mint("bench", Role::Facilitator, chrono::Duration::hours(2))?;

    // Connect every subscriber.
    let received: Arc<Mutex<Vec<(i64, Instant)>>> = Arc::default();
    // Events heard so far by every subscriber, and subscribers the server ended (an `error`
    // or `complete`: a subscriber too far behind is told `LAGGED` and let go).
    let (heard, ended) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let started = Instant::now();
    let mut clients = Vec::new();
    let ready = Arc::new(tokio::sync::Semaphore::new(0));
    for batch in 0..subscribers.div_ceil(250) {
        let mut connecting = Vec::new();
        for _ in 0..250.min(subscribers - batch * 250) {
            let (addr, token, received, ready) =
                (addr.clone(), token.clone(), received.clone(), ready.clone());
            let (heard, ended) = (heard.clone(), ended.clone());
            connecting.push(tokio::spawn(async move {
                let mut socket = Subscriber::connect(&addr).await?;
                socket
                    .send(&json!({ "type": "connection_init", "payload": { "token": token } }).to_string())
                    .await?;
                socket
                    .send(
                        &json!({ "type": "subscribe", "id": "1", "payload": { "query": query } }).to_string(),
                    )
                    .await?;
                anyhow::Ok(tokio::spawn(async move {
                    let mut mine = Vec::new();
                    let mut acked = false;
                    while let Ok(Some((text, at))) = socket.next_text().await {
                        let v: Value = serde_json::from_slice(text).unwrap_or_default();
                        match v["type"].as_str() {
                            Some("connection_ack") if !acked => {
                                acked = true;
                                ready.add_permits(1);
                            }
                            Some("next") => {
                                if let Some(p) = v["payload"]["data"]["events"]["position"].as_i64() {
                                    mine.push((p, at));
                                    heard.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            Some("error" | "complete") => {
                                ended.fetch_add(1, Ordering::Relaxed);
                            }
                            Some("ping") => {
                                let _ = socket.send(&json!({ "type": "pong" }).to_string()).await;
                            }
                            _ => {}
                        }
                    }
                    received.lock().await.extend(mine);
                }))
            }));
        }
        for c in connecting {
            clients.push(c.await??);
        }
    }
    let _all_acked = ready.acquire_many(subscribers as u32).await?;
    tokio::time::sleep(Duration::from_millis(if o.quick { 200 } else { 500 })).await;
    eprintln!(
        "   {subscribers} subscribers connected to {} in {:.1}s",
        match server {
            Server::Limit => "the raw broadcast",
            Server::FromNow => "doetank",
            Server::Resuming => "doetank, each with `after: 0`",
        },
        started.elapsed().as_secs_f64()
    );

    // A second of commands not measured: the first events after connecting pay for warming up
    // (buffers, caches) on both ends.
    let mut expected = 0;
    if !o.quick {
        let rate = o.fanout_rates().first().copied().unwrap_or(10);
        let sent = commands_at(rate, Duration::from_secs(1), &addr, &token).await?;
        expected += sent.len() * subscribers;
        settled(&heard, expected, o.quick).await;
    }
    // The rates in turn, on the same subscribers, each after the one before has been delivered.
    let mut sent_per_rate = Vec::new();
    for rate in o.fanout_rates() {
        let (cpu, machine) = (cpu_seconds(pid), machine_ticks());
        // At least 3 s in a full run; a quick run only checks that it works.
        let writing_for = if o.quick { o.duration() } else { o.duration().max(Duration::from_secs(3)) };
        let sent = commands_at(rate, writing_for, &addr, &token).await?;
        let ((busy, all), (busy_before, all_before)) = (machine_ticks(), machine);
        expected += sent.len() * subscribers;
        let waited = Instant::now();
        settled(&heard, expected, o.quick).await;
        eprintln!(
            "   every event heard {:.1}s after the last was answered ({} of {}; {} subscribers ended by the server)",
            waited.elapsed().as_secs_f64(),
            heard.load(Ordering::Relaxed),
            expected,
            ended.load(Ordering::Relaxed)
        );
        sent_per_rate.push(Sending {
            sent,
            server_cpu_s: cpu_seconds(pid) - cpu,
            machine_busy_percent: 100.0 * busy.saturating_sub(busy_before) as f64
                / all.saturating_sub(all_before).max(1) as f64,
        });
    }
    let (after, peak) = rss_mb(pid);
    child.kill().await?;
    for c in clients {
        let _ = tokio::time::timeout(Duration::from_secs(10), c).await;
    }
    let received = received.lock().await;
    let phases = sent_per_rate.into_iter().map(|sent| deliveries(&received, sent, subscribers)).collect();
    Ok(Run { phases, idle_mb: idle, peak_mb: peak, after_mb: after })
}

/// Waits for the last events to reach every subscriber: until `heard` reaches `expected`, or
/// has not grown for two seconds (half a second in a quick run). A saturated machine delivers
/// seconds late: a fixed two seconds counted 26% of the deliveries at 10,000 subscribers and 20
/// commands/s as lost (forty-second session's run), where they only came later.
async fn settled(heard: &AtomicUsize, expected: usize, quick: bool) {
    let still = Duration::from_millis(if quick { 500 } else { 2_000 });
    let (mut last, mut since) = (heard.load(Ordering::Relaxed), Instant::now());
    while last < expected && since.elapsed() < still {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = heard.load(Ordering::Relaxed);
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
}

/// Sends commands at `rate` per second for `writing_for`, each on its tick whether or not
/// the one before has been answered: a server slow to answer must not slow the load it is
/// measured under. The position each command wrote and when it was sent.
async fn commands_at(
    rate: u64,
    writing_for: Duration,
    addr: &str,
    token: &str,
) -> anyhow::Result<Vec<(i64, Instant)>> {
    let http = reqwest::Client::new();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    let writing = Instant::now();
    let mut commands = tokio::task::JoinSet::new();
    while writing.elapsed() < writing_for {
        tick.tick().await;
        let t0 = Instant::now();
        let (http, addr, token) = (http.clone(), addr.to_string(), token.to_string());
        commands.spawn(async move {
            let body: Value = http
                .post(format!("http://{addr}/graphql"))
                .bearer_auth(&token)
                .json(&json!({ "query": "mutation { registerMember(input: { name: \"Bench\", organisation: \"TNO\", sector: PUBLIC }) { result { position } } }" }))
                .send()
                .await?
                .json()
                .await?;
            let position = body["data"]["registerMember"]["result"]["position"]
                .as_i64()
                .ok_or_else(|| anyhow::anyhow!("write failed: {body}"))?;
            anyhow::Ok((position, t0))
        });
    }
    let sending_took = writing.elapsed();
    let mut sent = Vec::new();
    while let Some(command) = commands.join_next().await {
        sent.push(command??);
    }
    eprintln!(
        "   {} commands at {:.1}/s; the last answered {:.0} ms after the last was sent",
        sent.len(),
        sent.len() as f64 / sending_took.as_secs_f64(),
        (writing.elapsed() - sending_took).as_secs_f64() * 1000.0
    );
    Ok(sent)
}

/// Delivery of the events `sent` to `subscribers`, from what they `received`.
fn deliveries(received: &[(i64, Instant)], sending: Sending, subscribers: usize) -> Phase {
    let Sending { sent, server_cpu_s, machine_busy_percent } = sending;
    let sent: std::collections::HashMap<i64, Instant> = sent.into_iter().collect();
    let mut latencies: Vec<Duration> =
        received.iter().filter_map(|(p, at)| sent.get(p).map(|t0| at.duration_since(*t0))).collect();
    let expected = sent.len() * subscribers;
    let delivered = latencies.len();
    latencies.sort();
    let pct = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Phase {
        delivered: 100.0 * delivered as f64 / expected.max(1) as f64,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        server_cpu_us_per_delivery: server_cpu_s * 1e6 / delivered.max(1) as f64,
        machine_busy_percent,
    }
}
