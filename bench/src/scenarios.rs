//! The scenarios. Each takes its parameters (the same structs the command line parses) and
//! returns a [`Report`]: rows for the table and a JSON document.
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use pm_shared::proto::{self, Payload};
use prost::Message as _;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::live::{self, Counter, Identity, Op, Pace, Phase, Run, SubStats, WriterStats};
use crate::net::{self, ConnOptions, Target, Ws};
use crate::raw::{Incoming, RawWs};
use crate::scan;
use crate::stats::{Latency, MemorySampler, MemorySeries};

/// Handshakes in flight at once while opening many connections.
const CONNECT_CONCURRENCY: usize = 128;
/// How long subscribers may take to receive everything after the writers stop.
const DRAIN: Duration = Duration::from_secs(15);

/// What every scenario needs besides its own parameters.
#[derive(Debug, Clone)]
pub struct Env {
    /// The server the writers (and setup) use.
    pub target: Target,
    /// Where subscribers connect, in turn: other servers on the same database (several
    /// `--url`s), else just `target`.
    pub subscriber_targets: Vec<Target>,
    /// The server's pid, for /proc memory and CPU figures (local servers only).
    pub server_pid: Option<u32>,
    /// Progress lines on stderr.
    pub verbose: bool,
    /// The server is the reference (the Blazor Agile Board's pm-server): projects are created
    /// over the WebSocket by the writer (only members may write, and a project made over REST
    /// has none), the writer's user is introduced by a WebSocket before it writes, and events,
    /// which carry no seq, are told apart by work item id and title.
    pub reference: bool,
}

impl Env {
    /// The servers subscribers are spread over.
    pub fn subscribers_on(&self) -> &[Target] {
        if self.subscriber_targets.is_empty() {
            std::slice::from_ref(&self.target)
        } else {
            &self.subscriber_targets
        }
    }

    pub(crate) fn say(&self, msg: impl AsRef<str>) {
        if self.verbose {
            eprintln!("pm-bench: {}", msg.as_ref());
        }
    }

    /// A new project the bench's writer may write to.
    pub async fn new_project(&self, label: &str) -> Result<String> {
        if self.reference {
            let mut ws = net::introduce_user(&self.target, live::WRITER_USER).await?;
            net::create_project_ws(&mut ws, label).await
        } else {
            net::create_project(&self.target, label).await
        }
    }

    /// How the live runs on this server tell events apart; `items` are the items the writers
    /// update (none when they create).
    fn identity(&self, items: &[String]) -> Identity {
        if self.reference {
            Identity::Title {
                items: items.to_vec(),
            }
        } else {
            Identity::Seq
        }
    }
}

/// A scenario's result.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub params: Value,
    pub results: Value,
    /// (metric, value) for the table.
    #[serde(rename = "table")]
    pub rows: Vec<(String, String)>,
}

impl Report {
    pub fn table(&self) -> String {
        let width = self.rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let mut out = format!("== {} {}\n", self.scenario, self.params);
        for (k, v) in &self.rows {
            out.push_str(&format!("  {k:<width$}  {v}\n"));
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// CPU accounting
// ---------------------------------------------------------------------------------------------

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime of a process in seconds.
fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// CPU seconds of the whole machine (all CPUs) from /proc/stat: busy (processes, interrupts),
/// and stolen: time the hypervisor gave this virtual machine's CPUs to other machines.
fn machine_cpu_secs() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<f64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let total: f64 = v.iter().take(7).sum();
    let idle = v.get(3)? + v.get(4).unwrap_or(&0.0);
    let steal = v.get(7).copied().unwrap_or(0.0);
    Some(((total - idle) / clock_ticks(), steal / clock_ticks()))
}

/// CPU seconds the server, the bench and everything else used between `start` and `finish`.
pub(crate) struct Cpu {
    server_pid: Option<u32>,
    server: Option<f64>,
    bench: Option<f64>,
    machine: Option<(f64, f64)>,
    wall: Instant,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuUse {
    pub wall_secs: f64,
    pub server_cpu_secs: Option<f64>,
    pub bench_cpu_secs: Option<f64>,
    /// Busy CPU time of other processes (and interrupts) meanwhile: the noise of a shared
    /// machine.
    pub other_cpu_secs: Option<f64>,
    /// CPU time the hypervisor gave to other virtual machines meanwhile: the rest of the noise.
    pub stolen_cpu_secs: Option<f64>,
}

impl Cpu {
    pub(crate) fn start(server_pid: Option<u32>) -> Cpu {
        Cpu {
            server_pid,
            server: server_pid.and_then(cpu_secs),
            bench: cpu_secs(std::process::id()),
            machine: machine_cpu_secs(),
            wall: Instant::now(),
        }
    }

    pub(crate) fn finish(&self) -> CpuUse {
        let r = |x: f64| (x * 100.0).round() / 100.0;
        let server = self
            .server_pid
            .and_then(cpu_secs)
            .zip(self.server)
            .map(|(b, a)| b - a);
        let bench = cpu_secs(std::process::id())
            .zip(self.bench)
            .map(|(b, a)| b - a);
        let machine = machine_cpu_secs()
            .zip(self.machine)
            .map(|(b, a)| (b.0 - a.0, b.1 - a.1));
        // A server inside the bench process (the smoke test) is counted once.
        let server_other = if self.server_pid == Some(std::process::id()) {
            0.0
        } else {
            server.unwrap_or(0.0)
        };
        CpuUse {
            wall_secs: r(self.wall.elapsed().as_secs_f64()),
            server_cpu_secs: server.map(r),
            bench_cpu_secs: bench.map(r),
            other_cpu_secs: machine
                .map(|(busy, _)| r((busy - server_other - bench.unwrap_or(0.0)).max(0.0))),
            stolen_cpu_secs: machine.map(|(_, stolen)| r(stolen.max(0.0))),
        }
    }
}

impl CpuUse {
    pub(crate) fn row(&self) -> String {
        let f = |x: Option<f64>| x.map_or("?".into(), |v| format!("{v:.1} s"));
        format!(
            "server {} · bench {} · other processes {} · stolen {} in {:.1} s wall ({} CPUs)",
            f(self.server_cpu_secs),
            f(self.bench_cpu_secs),
            f(self.other_cpu_secs),
            f(self.stolen_cpu_secs),
            self.wall_secs,
            std::thread::available_parallelism().map_or(0, |n| n.get())
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The live run shared by fanout, throughput and slow-consumer
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct LiveCfg {
    label: &'static str,
    subscribers: usize,
    writers: usize,
    op: Op,
    pace: PaceCfg,
    /// One extra subscriber that never reads, with this SO_RCVBUF.
    slow: Option<u32>,
}

#[derive(Debug, Clone, Copy)]
enum PaceCfg {
    Rate {
        per_sec: f64,
        duration: f64,
        warmup: f64,
    },
    Window {
        window: usize,
        duration: f64,
    },
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LiveOutcome {
    pub subscribers: usize,
    pub writers: usize,
    /// Writer's send → each subscriber's receipt, over every timed event and subscriber.
    pub fanout_latency: Latency,
    /// Writer's send → its own response.
    pub response_latency: Latency,
    pub mutations_sent: u64,
    pub mutations_ok: u64,
    pub mutation_errors: u64,
    pub first_error: Option<String>,
    pub writer_secs: f64,
    pub mutations_per_sec: f64,
    pub deliveries: u64,
    pub deliveries_per_sec: f64,
    pub expected_deliveries: u64,
    /// Events some subscriber never got, summed over subscribers (must be 0).
    pub lost: u64,
    /// Events some subscriber got twice (must be 0).
    pub duplicated: u64,
    pub resyncs: u64,
    pub subscribers_closed: u64,
    /// How events were told apart: "seq", or "work item id + title" on a server whose events
    /// carry no seq (the reference).
    pub identified_by: &'static str,
    /// The writers' response seqs agree with (base, final] (None: the server numbers nothing).
    pub seq_range_ok: Option<bool>,
    pub memory: MemorySeries,
    pub cpu: CpuUse,
    pub slow_consumer: Option<SlowOutcome>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SlowOutcome {
    /// What the non-reading subscriber found in its socket when it finally read.
    pub events_received: u64,
    pub resync_required: u64,
    pub closed_by_server: bool,
}

async fn live_run(env: &Env, cfg: LiveCfg) -> Result<LiveOutcome> {
    let target = &env.target;
    let project = env.new_project(cfg.label).await?;
    let mut setup = net::connect(target, live::WRITER_USER, ConnOptions::default()).await?;
    let mut items = Vec::new();
    for w in 0..cfg.writers {
        let item = net::create_item(&mut setup, &project, &format!("writer {w}")).await?;
        items.push((item.id, item.version));
    }
    env.say(format!(
        "{}: opening {} subscribers",
        cfg.label, cfg.subscribers
    ));
    let subs = live::open_subscribers(
        env.subscribers_on(),
        &project,
        cfg.subscribers,
        CONNECT_CONCURRENCY,
        ConnOptions {
            recv_buffer: None,
            small_buffers: true,
        },
    )
    .await
    .context("opening subscribers")?;
    let mut slow = match cfg.slow {
        Some(rcvbuf) => {
            let opts = ConnOptions {
                recv_buffer: Some(rcvbuf),
                small_buffers: true,
            };
            let mut ws = net::connect(target, &live::subscriber_user(1 << 30), opts).await?;
            net::subscribe(&mut ws, &project).await?;
            Some(ws)
        }
        None => None,
    };
    let updated: Vec<String> = match cfg.op {
        Op::Update => items.iter().map(|(id, _)| id.clone()).collect(),
        Op::Create => Vec::new(),
    };
    let identity = env.identity(&updated);
    let base = match identity {
        Identity::Seq => net::project_seq(&mut setup, &project).await?,
        Identity::Title { .. } => 0,
    };
    let mut writer_conns = Vec::new();
    for _ in 0..cfg.writers {
        writer_conns.push(net::connect(target, live::WRITER_USER, ConnOptions::default()).await?);
    }

    let (capacity, measure_from, expected) = match cfg.pace {
        PaceCfg::Rate {
            per_sec,
            duration,
            warmup,
        } => {
            let count = (per_sec * duration).round() as u64 * cfg.writers as u64;
            (
                count as usize,
                (per_sec * warmup).round() as u64,
                count as usize,
            )
        }
        PaceCfg::Window { duration, .. } => {
            let cap = (duration * 100_000.0) as usize + 100_000;
            (cap, 0, 100_000)
        }
    };
    let run = Run::identified(project.clone(), capacity, measure_from, identity.clone());
    let counter = Arc::new(Counter::new());
    let memory = MemorySampler::start(env.server_pid, Duration::from_millis(250));
    let cpu = Cpu::start(env.server_pid);

    let mut sub_tasks = JoinSet::new();
    for ws in subs {
        sub_tasks.spawn(live::subscriber(ws, run.clone(), expected));
    }
    env.say(format!("{}: writing", cfg.label));
    let t0 = run.log.now_ns();
    let mut writer_tasks = JoinSet::new();
    for (ws, item) in writer_conns.into_iter().zip(items) {
        let pace = match cfg.pace {
            PaceCfg::Rate {
                per_sec, duration, ..
            } => Pace::Rate {
                per_sec,
                count: (per_sec * duration).round() as u64,
            },
            PaceCfg::Window { window, duration } => Pace::Window {
                window,
                until_ns: t0 + (duration * 1e9) as u64,
            },
        };
        writer_tasks.spawn(live::writer(
            ws,
            run.clone(),
            counter.clone(),
            cfg.op,
            item,
            pace,
        ));
    }
    let mut writers: Vec<WriterStats> = Vec::new();
    while let Some(w) = writer_tasks.join_next().await {
        writers.push(w?);
    }
    let ok: u64 = writers.iter().map(|w| w.ok).sum();
    let final_seq = base + ok;
    run.set_phase(Phase {
        final_seq,
        stop: false,
    });
    let mut stats: Vec<SubStats> = join_all(&mut sub_tasks, &run, final_seq, || {
        env.say("drain deadline passed; stopping subscribers")
    })
    .await?;
    let memory = memory.finish();
    let cpu = cpu.finish();

    let slow_outcome = match slow.take() {
        Some(ws) => Some(drain_slow(ws, &run).await),
        None => None,
    };

    let writer_end = writers.iter().map(|w| w.finished_ns).max().unwrap_or(t0);
    let writer_secs = (writer_end.saturating_sub(t0)) as f64 / 1e9;
    let last_delivery = stats.iter().map(|s| s.last_event_ns).max().unwrap_or(t0);
    let delivery_secs = (last_delivery.saturating_sub(t0)) as f64 / 1e9;
    let deliveries: u64 = stats.iter().map(|s| s.events).sum();
    let mut latencies: Vec<u64> = Vec::with_capacity(stats.iter().map(|s| s.latencies.len()).sum());
    for s in &mut stats {
        latencies.append(&mut s.latencies);
    }
    let mut responses: Vec<u64> = Vec::new();
    for w in &mut writers {
        responses.append(&mut w.response_latencies);
    }
    let min_seq = writers
        .iter()
        .map(|w| w.min_seq)
        .filter(|&s| s > 0)
        .min()
        .unwrap_or(0);
    let max_seq = writers.iter().map(|w| w.max_seq).max().unwrap_or(0);
    let by_title = matches!(identity, Identity::Title { .. });
    let seq_range_ok =
        (!by_title).then_some(ok == 0 || (min_seq == base + 1 && max_seq == final_seq));
    let delivered: Vec<u64> = writers.iter().flat_map(|w| w.ok_keys.clone()).collect();
    let lost = stats
        .iter()
        .map(|s| match identity {
            Identity::Seq => s.lost(base, final_seq),
            Identity::Title { .. } => s.lost_of(&delivered),
        })
        .sum();
    let per_sec = |n: u64, secs: f64| {
        if secs > 0.0 {
            (n as f64 / secs).round()
        } else {
            0.0
        }
    };
    Ok(LiveOutcome {
        subscribers: cfg.subscribers,
        writers: cfg.writers,
        fanout_latency: Latency::of(&mut latencies),
        response_latency: Latency::of(&mut responses),
        mutations_sent: writers.iter().map(|w| w.sent).sum(),
        mutations_ok: ok,
        mutation_errors: writers.iter().map(|w| w.errors).sum(),
        first_error: writers.iter().find_map(|w| w.first_error.clone()),
        writer_secs: (writer_secs * 1000.0).round() / 1000.0,
        mutations_per_sec: per_sec(ok, writer_secs),
        deliveries,
        deliveries_per_sec: per_sec(deliveries, delivery_secs),
        expected_deliveries: ok * cfg.subscribers as u64,
        lost,
        duplicated: stats.iter().map(|s| s.dups).sum(),
        resyncs: stats.iter().map(|s| s.resyncs).sum(),
        subscribers_closed: stats.iter().filter(|s| s.closed).count() as u64,
        identified_by: if by_title {
            "work item id + title"
        } else {
            "seq"
        },
        seq_range_ok,
        memory,
        cpu,
        slow_consumer: slow_outcome,
    })
}

/// Waits for every subscriber to reach `final_seq`; after [`DRAIN`] stops the stragglers.
async fn join_all(
    set: &mut JoinSet<SubStats>,
    run: &Run,
    final_seq: u64,
    on_deadline: impl FnOnce(),
) -> Result<Vec<SubStats>> {
    let deadline = tokio::time::Instant::now() + DRAIN;
    let mut stats = Vec::new();
    let mut on_deadline = Some(on_deadline);
    loop {
        let next = if on_deadline.is_some() {
            tokio::time::timeout_at(deadline, set.join_next()).await
        } else {
            Ok(set.join_next().await)
        };
        match next {
            Ok(Some(s)) => stats.push(s?),
            Ok(None) => break,
            Err(_) => {
                if let Some(f) = on_deadline.take() {
                    f();
                }
                run.set_phase(Phase {
                    final_seq,
                    stop: true,
                });
            }
        }
    }
    Ok(stats)
}

/// Reads what the non-reading subscriber's socket holds, for at most a few seconds.
async fn drain_slow(mut ws: Ws, run: &Run) -> SlowOutcome {
    let mut out = SlowOutcome::default();
    let project = run.project.as_bytes();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => break,
            Ok(Some(Ok(Message::Binary(b)))) => match scan::peek(&b) {
                Some(p) if p.payload == scan::field::RESYNC_REQUIRED => out.resync_required += 1,
                Some(p) if p.seq > 0 && p.stream == project => out.events_received += 1,
                Some(p)
                    if run.identity != Identity::Seq
                        && p.title.is_some()
                        && p.item_project == Some(project) =>
                {
                    out.events_received += 1
                }
                _ => {}
            },
            Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) => {
                out.closed_by_server = true;
                break;
            }
            Ok(Some(Ok(_))) => {}
        }
    }
    out
}

fn live_rows(o: &LiveOutcome) -> Vec<(String, String)> {
    let mut rows = vec![
        ("fan-out latency".into(), o.fanout_latency.brief()),
        ("writer round trip".into(), o.response_latency.brief()),
        (
            "mutations".into(),
            format!(
                "{} ok / {} sent, {} errors in {:.2} s = {:.0}/s",
                o.mutations_ok,
                o.mutations_sent,
                o.mutation_errors,
                o.writer_secs,
                o.mutations_per_sec
            ),
        ),
        (
            "deliveries".into(),
            format!(
                "{} of {} expected = {:.0}/s",
                o.deliveries, o.expected_deliveries, o.deliveries_per_sec
            ),
        ),
        (
            "lost / duplicated".into(),
            match o.seq_range_ok {
                Some(range_ok) => format!(
                    "{} / {} (seq range {}, resyncs {}, closed {})",
                    o.lost,
                    o.duplicated,
                    if range_ok { "ok" } else { "WRONG" },
                    o.resyncs,
                    o.subscribers_closed
                ),
                None => format!(
                    "{} / {} (told apart by {}: the server numbers no events; closed {})",
                    o.lost, o.duplicated, o.identified_by, o.subscribers_closed
                ),
            },
        ),
        ("cpu".into(), o.cpu.row()),
        ("server memory".into(), memory_row(&o.memory)),
    ];
    if let Some(e) = &o.first_error {
        rows.push(("first error".into(), e.clone()));
    }
    rows
}

fn memory_row(m: &MemorySeries) -> String {
    match (m.start_kib, m.peak_kib, m.end_kib) {
        (Some(a), Some(p), Some(b)) => format!(
            "VmRSS start {:.1} MiB, peak {:.1} MiB, end {:.1} MiB",
            a as f64 / 1024.0,
            p as f64 / 1024.0,
            b as f64 / 1024.0
        ),
        _ => "unknown (no --server-pid and not discoverable)".into(),
    }
}

fn downsample(m: &mut MemorySeries, keep: usize) {
    if m.samples.len() > keep {
        let step = m.samples.len().div_ceil(keep);
        let last = *m.samples.last().unwrap();
        m.samples = m.samples.iter().step_by(step).copied().collect();
        if m.samples.last() != Some(&last) {
            m.samples.push(last);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// fanout
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct FanoutParams {
    /// Subscribed connections on the project.
    #[arg(long, short = 'n', default_value_t = 100)]
    pub subscribers: usize,
    /// Mutations per second from the one writer.
    #[arg(long, short = 'r', default_value_t = 100.0)]
    pub rate: f64,
    /// Seconds of writing.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds at the start whose events are checked but not timed.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// What the writer sends.
    #[arg(long, value_enum, default_value_t = Op::Update)]
    pub op: Op,
}

pub async fn fanout(env: &Env, p: &FanoutParams) -> Result<Report> {
    let mut o = live_run(
        env,
        LiveCfg {
            label: "fanout",
            subscribers: p.subscribers,
            writers: 1,
            op: p.op,
            pace: PaceCfg::Rate {
                per_sec: p.rate,
                duration: p.duration,
                warmup: p.warmup,
            },
            slow: None,
        },
    )
    .await?;
    downsample(&mut o.memory, 200);
    Ok(Report {
        scenario: "fanout".into(),
        params: serde_json::to_value(p)?,
        rows: live_rows(&o),
        results: serde_json::to_value(&o)?,
    })
}

// ---------------------------------------------------------------------------------------------
// throughput
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct ThroughputParams {
    /// Concurrent writers, each on its own connection and its own work item.
    #[arg(long, short = 'w', default_value_t = 4)]
    pub writers: usize,
    /// Subscribed connections on the project.
    #[arg(long, short = 'n', default_value_t = 100)]
    pub subscribers: usize,
    /// Seconds of writing.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    pub duration: f64,
    /// Requests each writer keeps in flight.
    #[arg(long, default_value_t = 32)]
    pub window: usize,
    /// What the writers send.
    #[arg(long, value_enum, default_value_t = Op::Update)]
    pub op: Op,
    /// Runs, each on a new project; the report shows the run with the median mutations/s
    /// (a shared machine's speed drifts between runs; measured: bench/NOTES.md, "Figures that
    /// used to live in comments").
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
}

/// The run with the median rate, and every run (each is checked for lost events).
#[derive(Debug, Serialize)]
struct ThroughputOutcome {
    #[serde(flatten)]
    median: LiveOutcome,
    runs: Vec<LiveOutcome>,
}

pub async fn throughput(env: &Env, p: &ThroughputParams) -> Result<Report> {
    let mut runs = Vec::new();
    for _ in 0..p.rounds.max(1) {
        let mut o = live_run(
            env,
            LiveCfg {
                label: "throughput",
                subscribers: p.subscribers,
                writers: p.writers.max(1),
                op: p.op,
                pace: PaceCfg::Window {
                    window: p.window.max(1),
                    duration: p.duration,
                },
                slow: None,
            },
        )
        .await?;
        downsample(&mut o.memory, 200);
        runs.push(o);
    }
    let mut by_rate: Vec<&LiveOutcome> = runs.iter().collect();
    by_rate.sort_by(|a, b| a.mutations_per_sec.total_cmp(&b.mutations_per_sec));
    let median = by_rate[by_rate.len() / 2].clone();
    let mut rows = live_rows(&median);
    if runs.len() > 1 {
        let rates: Vec<String> = runs
            .iter()
            .map(|o| format!("{:.0}/s", o.mutations_per_sec))
            .collect();
        rows.insert(
            0,
            (
                "mutations/s per run".into(),
                format!("{} (the median run below)", rates.join(", ")),
            ),
        );
    }
    Ok(Report {
        scenario: "throughput".into(),
        params: serde_json::to_value(p)?,
        rows,
        results: serde_json::to_value(ThroughputOutcome { median, runs })?,
    })
}

// ---------------------------------------------------------------------------------------------
// slow-consumer
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct SlowConsumerParams {
    /// Reading subscribers (the slow one comes on top).
    #[arg(long, short = 'n', default_value_t = 100)]
    pub subscribers: usize,
    /// Mutations per second from the one writer.
    #[arg(long, short = 'r', default_value_t = 100.0)]
    pub rate: f64,
    /// Seconds of writing per run.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds at the start of each run whose events are not timed.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Baseline/slow pairs, alternating; the figures pool each kind.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// SO_RCVBUF of the subscriber that stops reading (small: its backlog reaches the server
    /// sooner).
    #[arg(long, default_value_t = 4096)]
    pub slow_rcvbuf: u32,
}

pub async fn slow_consumer(env: &Env, p: &SlowConsumerParams) -> Result<Report> {
    let cfg = |slow: Option<u32>| LiveCfg {
        label: if slow.is_some() { "slow" } else { "baseline" },
        subscribers: p.subscribers,
        writers: 1,
        op: Op::Update,
        pace: PaceCfg::Rate {
            per_sec: p.rate,
            duration: p.duration,
            warmup: p.warmup,
        },
        slow,
    };
    let mut baselines = Vec::new();
    let mut slows = Vec::new();
    for round in 0..p.rounds.max(1) {
        // Alternating which run goes first (ABBA) keeps drift and whatever one run leaves
        // behind for the next (a growing database, a closing connection) from counting against
        // one side only.
        if round % 2 == 0 {
            baselines.push(live_run(env, cfg(None)).await?);
            slows.push(live_run(env, cfg(Some(p.slow_rcvbuf))).await?);
        } else {
            slows.push(live_run(env, cfg(Some(p.slow_rcvbuf))).await?);
            baselines.push(live_run(env, cfg(None)).await?);
        }
    }
    // A shared machine drifts between runs, so each round compares its two adjacent runs and
    // the figure is the median of those per-round ratios.
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let base_p99 = median(baselines.iter().map(|r| r.fanout_latency.p99_ms).collect());
    let slow_p99 = median(slows.iter().map(|r| r.fanout_latency.p99_ms).collect());
    let ratios: Vec<f64> = baselines
        .iter()
        .zip(&slows)
        .map(|(b, s)| s.fanout_latency.p99_ms / b.fanout_latency.p99_ms.max(1e-9))
        .collect();
    let change = (median(ratios.clone()) - 1.0) * 100.0;
    let mut rows = vec![
        (
            "baseline p99 (median run)".into(),
            format!("{base_p99:.3} ms"),
        ),
        ("with slow consumer p99".into(), format!("{slow_p99:.3} ms")),
        (
            "p99 change (median of rounds)".into(),
            format!(
                "{change:+.1} % (per round: {})",
                ratios
                    .iter()
                    .map(|r| format!("{:+.1} %", (r - 1.0) * 100.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    ];
    for (i, (b, s)) in baselines.iter().zip(&slows).enumerate() {
        rows.push((
            format!("round {} baseline", i + 1),
            b.fanout_latency.brief(),
        ));
        rows.push((format!("round {} slow", i + 1), s.fanout_latency.brief()));
        rows.push((
            format!("round {} lost/dup", i + 1),
            format!(
                "baseline {}/{}, slow run {}/{} (others)",
                b.lost, b.duplicated, s.lost, s.duplicated
            ),
        ));
        rows.push((format!("round {} cpu baseline", i + 1), b.cpu.row()));
        rows.push((format!("round {} cpu slow", i + 1), s.cpu.row()));
        rows.push((
            format!("round {} memory baseline", i + 1),
            memory_row(&b.memory),
        ));
        rows.push((
            format!("round {} memory slow", i + 1),
            memory_row(&s.memory),
        ));
        if let Some(so) = &s.slow_consumer {
            rows.push((
                format!("round {} slow consumer", i + 1),
                format!(
                    "had {} events buffered, ResyncRequired {}, closed by server {}",
                    so.events_received, so.resync_required, so.closed_by_server
                ),
            ));
        }
    }
    for r in baselines.iter_mut().chain(slows.iter_mut()) {
        downsample(&mut r.memory, 200);
    }
    Ok(Report {
        scenario: "slow-consumer".into(),
        params: serde_json::to_value(p)?,
        rows,
        results: json!({
            "baseline_p99_ms": base_p99,
            "slow_p99_ms": slow_p99,
            "p99_change_percent": (change * 10.0).round() / 10.0,
            "p99_ratio_per_round": ratios,
            "baseline_runs": baselines,
            "slow_runs": slows,
        }),
    })
}

// ---------------------------------------------------------------------------------------------
// idle
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct IdleParams {
    /// Idle connections, each subscribed to one project.
    #[arg(long, short = 'c', default_value_t = 1000)]
    pub connections: usize,
    /// Seconds to wait after the last connection before reading memory.
    #[arg(long, default_value_t = 3.0)]
    pub settle: f64,
    /// After measuring, publish one event and time its arrival on every connection.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub probe: bool,
}

pub async fn idle(env: &Env, p: &IdleParams) -> Result<Report> {
    let fd_limit = net::raise_fd_limit();
    let headroom = 64;
    let connections = if (p.connections as u64) + headroom > fd_limit {
        let capped = fd_limit.saturating_sub(headroom) as usize;
        eprintln!(
            "pm-bench: RLIMIT_NOFILE is {fd_limit}; capping idle connections at {capped} \
             (raise it with `ulimit -n`)"
        );
        capped
    } else {
        p.connections
    };
    let target = &env.target;
    let project = env.new_project("idle").await?;
    let mut setup = net::connect(target, live::WRITER_USER, ConnOptions::default()).await?;
    let item = net::create_item(&mut setup, &project, "idle probe").await?;
    let pid = env.server_pid;
    let rss = || pid.and_then(net::rss_kib);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss();
    let bench_before = net::rss_kib(std::process::id());
    env.say(format!("idle: opening {connections} connections"));
    let started = Instant::now();
    // On the server whose memory is measured.
    let conns = live::open_subscribers(
        std::slice::from_ref(target),
        &project,
        connections,
        CONNECT_CONCURRENCY,
        ConnOptions {
            recv_buffer: None,
            small_buffers: true,
        },
    )
    .await
    .context("opening idle connections")?;
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs_f64(p.settle)).await;
    let after = rss();
    let bench_after = net::rss_kib(std::process::id());
    let per_conn = before
        .zip(after)
        .map(|(b, a)| (a.saturating_sub(b) as f64 * 1024.0 / connections.max(1) as f64).round());
    let bench_per_conn = bench_before
        .zip(bench_after)
        .map(|(b, a)| (a.saturating_sub(b) as f64 * 1024.0 / connections.max(1) as f64).round());

    // Probe: one update reaches every idle connection.
    let mut probe = None;
    if p.probe {
        let identity = env.identity(std::slice::from_ref(&item.id));
        let run = Run::identified(project.clone(), 1, 0, identity.clone());
        let mut set = JoinSet::new();
        for ws in conns {
            set.spawn(live::subscriber(ws, run.clone(), 1));
        }
        let base = match identity {
            Identity::Seq => net::project_seq(&mut setup, &project).await?,
            Identity::Title { .. } => 0,
        };
        run.log.mark(0);
        net::rpc(
            &mut setup,
            net::update_title_request(&item.id, item.version, "b-0".into()),
        )
        .await?;
        run.set_phase(Phase {
            final_seq: base + 1,
            stop: false,
        });
        let mut stats = join_all(&mut set, &run, base + 1, || {}).await?;
        let mut lat: Vec<u64> = stats
            .iter_mut()
            .flat_map(|s| s.latencies.drain(..))
            .collect();
        let received = stats.iter().filter(|s| s.events > 0).count();
        probe = Some(json!({
            "received": received,
            "latency": Latency::of(&mut lat),
        }));
    } else {
        drop(conns);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_close = rss();

    let kib =
        |v: Option<u64>| v.map_or("?".to_string(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    let mut rows = vec![
        (
            "connections".into(),
            format!("{connections} subscribed in {connect_secs:.1} s (fd limit {fd_limit})"),
        ),
        (
            "server VmRSS".into(),
            format!(
                "before {}, with connections {}, after closing {}",
                kib(before),
                kib(after),
                kib(after_close)
            ),
        ),
        (
            "server memory per connection".into(),
            per_conn.map_or("unknown (no --server-pid)".into(), |b| {
                format!("{:.2} KiB", b / 1024.0)
            }),
        ),
        (
            "bench memory per connection".into(),
            bench_per_conn.map_or("?".into(), |b| format!("{:.2} KiB", b / 1024.0)),
        ),
    ];
    if let Some(pr) = &probe {
        rows.push((
            "probe event".into(),
            format!(
                "reached {} of {connections}; {}",
                pr["received"],
                serde_json::from_value::<Latency>(pr["latency"].clone())
                    .map(|l| l.brief())
                    .unwrap_or_default()
            ),
        ));
    }
    Ok(Report {
        scenario: "idle".into(),
        params: serde_json::to_value(p)?,
        rows,
        results: json!({
            "connections": connections,
            "fd_limit": fd_limit,
            "connect_secs": connect_secs,
            "server_rss_before_kib": before,
            "server_rss_after_kib": after,
            "server_rss_after_close_kib": after_close,
            "server_bytes_per_connection": per_conn,
            "bench_bytes_per_connection": bench_per_conn,
            "probe": probe,
        }),
    })
}

// ---------------------------------------------------------------------------------------------
// growth
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct GrowthParams {
    /// Project sizes (live items) to measure at, ascending.
    #[arg(long, value_delimiter = ',', default_value = "0,10000,50000")]
    pub sizes: Vec<usize>,
    /// Creates and updates timed at each size (one at a time, on one connection).
    #[arg(long, default_value_t = 200)]
    pub samples: usize,
    /// GetWorkItems requests timed at each size.
    #[arg(long, default_value_t = 3)]
    pub reads: usize,
    /// Connections used to seed items.
    #[arg(long, default_value_t = 4)]
    pub seed_connections: usize,
    /// Creates each seeding connection keeps in flight.
    #[arg(long, default_value_t = 32)]
    pub seed_window: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct GrowthPoint {
    pub size: usize,
    pub items_at_start: usize,
    pub seed_secs: f64,
    pub seed_per_sec: f64,
    /// Seeding creates that failed and were sent again (the reference only; pm's must not fail).
    pub seed_resent: u64,
    pub create: Latency,
    pub update: Latency,
    /// The same operations in an empty project, interleaved one by one with the ones above,
    /// so that drift in machine load affects both alike.
    pub control_create: Latency,
    pub control_update: Latency,
    pub get_work_items: Latency,
    pub get_work_items_bytes: usize,
    pub get_work_items_count: usize,
}

pub async fn growth(env: &Env, p: &GrowthParams) -> Result<Report> {
    let mut sizes = p.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let target = &env.target;
    let project = env.new_project("growth").await?;
    let mut ws = net::connect(target, live::WRITER_USER, ConnOptions::default()).await?;
    let mut count = 0usize;
    let mut seeded = 0usize;
    let mut points = Vec::new();
    let warm = 5usize;
    for &size in &sizes {
        let need = size.saturating_sub(count);
        let started = Instant::now();
        let mut seed_resent = 0;
        if need > 0 {
            env.say(format!("growth: seeding {need} items (to {size})"));
            seed_resent = seed(
                env,
                &project,
                seeded,
                need,
                p.seed_connections,
                p.seed_window,
            )
            .await?;
            seeded += need;
            count += need;
        }
        let seed_secs = started.elapsed().as_secs_f64();
        env.say(format!("growth: measuring at {count} items"));
        let control = env.new_project("growth control").await?;
        let items_at_start = count;
        // [project, control] for each kind of operation.
        let mut created: [Vec<proto::WorkItem>; 2] = [Vec::new(), Vec::new()];
        let mut create_lat: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
        let mut update_lat: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
        for i in 0..p.samples + warm {
            for (side, pid) in [&project, &control].into_iter().enumerate() {
                let t = Instant::now();
                let item = net::create_item(&mut ws, pid, &format!("g-{size}-{i}")).await?;
                if i >= warm {
                    create_lat[side].push(t.elapsed().as_nanos() as u64);
                }
                created[side].push(item);
            }
            count += 1;
        }
        for i in 0..p.samples + warm {
            for (side, items) in created.iter().enumerate() {
                let item = &items[i];
                let t = Instant::now();
                let reply = net::rpc(
                    &mut ws,
                    net::update_title_request(&item.id, item.version, format!("u-{size}-{i}")),
                )
                .await?;
                if !matches!(reply.payload, Some(Payload::WorkItemUpdated(_))) {
                    bail!("expected WorkItemUpdated, got {:?}", reply.payload);
                }
                if i >= warm {
                    update_lat[side].push(t.elapsed().as_nanos() as u64);
                }
            }
        }
        let mut read_lat = Vec::new();
        let (mut bytes, mut n) = (0, 0);
        for _ in 0..p.reads.max(1) {
            let (elapsed, b, items) = timed_get_work_items(&mut ws, &project).await?;
            read_lat.push(elapsed);
            (bytes, n) = (b, items);
        }
        let [create, control_create] = create_lat.map(|mut v| Latency::of(&mut v));
        let [update, control_update] = update_lat.map(|mut v| Latency::of(&mut v));
        points.push(GrowthPoint {
            size,
            items_at_start,
            seed_secs: (seed_secs * 100.0).round() / 100.0,
            seed_resent,
            seed_per_sec: if need > 0 {
                (need as f64 / seed_secs).round()
            } else {
                0.0
            },
            create,
            update,
            control_create,
            control_update,
            get_work_items: Latency::of(&mut read_lat),
            get_work_items_bytes: bytes,
            get_work_items_count: n,
        });
    }
    let r = |a: f64, b: f64| {
        if a > 0.0 {
            (b / a * 100.0).round() / 100.0
        } else {
            0.0
        }
    };
    let mut rows = Vec::new();
    for pt in &points {
        let n = pt.items_at_start;
        rows.push((format!("{n} items: create"), pt.create.brief()));
        rows.push((
            format!("{n} items: create, empty project"),
            pt.control_create.brief(),
        ));
        rows.push((format!("{n} items: update"), pt.update.brief()));
        rows.push((
            format!("{n} items: update, empty project"),
            pt.control_update.brief(),
        ));
        rows.push((
            format!("{n} items: ratio to empty (p50)"),
            format!(
                "create ×{} · update ×{}",
                r(pt.control_create.p50_ms, pt.create.p50_ms),
                r(pt.control_update.p50_ms, pt.update.p50_ms)
            ),
        ));
        rows.push((
            format!("{n} items: GetWorkItems"),
            format!(
                "{} ({} items, {:.1} MiB)",
                pt.get_work_items.brief(),
                pt.get_work_items_count,
                pt.get_work_items_bytes as f64 / 1048576.0
            ),
        ));
        if pt.seed_per_sec > 0.0 {
            rows.push((
                format!("{n} items: seeding"),
                format!(
                    "{:.1} s, {:.0} creates/s{}",
                    pt.seed_secs,
                    pt.seed_per_sec,
                    if pt.seed_resent > 0 {
                        format!(" ({} failed and were sent again)", pt.seed_resent)
                    } else {
                        String::new()
                    }
                ),
            ));
        }
    }
    // The goal compares the largest project with an empty one.
    let ratios = points.last().map(|last| {
        json!({
            "size": last.items_at_start,
            "create_p50": r(last.control_create.p50_ms, last.create.p50_ms),
            "create_p99": r(last.control_create.p99_ms, last.create.p99_ms),
            "update_p50": r(last.control_update.p50_ms, last.update.p50_ms),
            "update_p99": r(last.control_update.p99_ms, last.update.p99_ms),
        })
    });
    Ok(Report {
        scenario: "growth".into(),
        params: serde_json::to_value(p)?,
        rows,
        results: json!({ "points": points, "ratios": ratios }),
    })
}

/// GetWorkItems round trip: (ns until the whole reply frame arrived, its size, its item count).
async fn timed_get_work_items(ws: &mut Ws, project: &str) -> Result<(u64, usize, usize)> {
    let id = uuid::Uuid::new_v4().to_string();
    let t = Instant::now();
    ws.send(net::frame(
        id.clone(),
        Payload::GetWorkItemsRequest(proto::GetWorkItemsRequest {
            project_id: project.to_string(),
            since_timestamp: None,
        }),
    ))
    .await?;
    loop {
        let next = tokio::time::timeout(net::REQUEST_TIMEOUT, ws.next())
            .await
            .context("GetWorkItems timed out")?;
        match next {
            Some(Ok(Message::Binary(b))) => {
                if scan::peek(&b).is_some_and(|p| p.message_id == id.as_bytes()) {
                    let elapsed = t.elapsed().as_nanos() as u64;
                    let msg = proto::WebSocketMessage::decode(b.as_ref())?;
                    let n = match msg.payload {
                        Some(Payload::WorkItemsList(l)) => l.work_items.len(),
                        other => bail!("expected WorkItemsList, got {other:?}"),
                    };
                    return Ok((elapsed, b.len(), n));
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => bail!("connection ended"),
        }
    }
}

/// Requests the reference takes on one connection: it allows a burst of at most 10,000
/// (`PM_RATE_LIMIT_MAX_REQUESTS`' ceiling), then one a window; seeding stays under it, retries
/// included.
const REFERENCE_REQUESTS_PER_CONNECTION: usize = 8_000;

/// Creates `n` items as fast as the server takes them: `conns` connections, each with
/// `window` creates in flight. On the reference a create that fails (`database is locked`
/// under concurrent writers) is sent again, and more connections are used when one would pass
/// its rate limit; returns the creates that had to be sent again.
async fn seed(
    env: &Env,
    project: &str,
    offset: usize,
    n: usize,
    conns: usize,
    window: usize,
) -> Result<u64> {
    let conns = if env.reference {
        conns.max(n.div_ceil(REFERENCE_REQUESTS_PER_CONNECTION / 2))
    } else {
        conns
    };
    let conns = conns.clamp(1, n.max(1));
    let mut set = JoinSet::new();
    for c in 0..conns {
        let share = n / conns + usize::from(c < n % conns);
        let ws = net::connect(&env.target, live::WRITER_USER, ConnOptions::default()).await?;
        let project = project.to_string();
        let start = offset
            + (0..c)
                .map(|i| n / conns + usize::from(i < n % conns))
                .sum::<usize>();
        // Half the connection's allowance for first sends, half for sending failures again.
        let retries = if env.reference { share } else { 0 };
        set.spawn(seed_one(ws, project, start, share, window.max(1), retries));
    }
    let mut resent = 0;
    while let Some(r) = set.join_next().await {
        resent += r??;
    }
    Ok(resent)
}

/// One seeding connection: `n` creates, up to `retries` of them sent again after an Error.
async fn seed_one(
    ws: Ws,
    project: String,
    start: usize,
    n: usize,
    window: usize,
    retries: usize,
) -> Result<u64> {
    let (mut sink, mut stream) = ws.split();
    let permits = Arc::new(Semaphore::new(window));
    let gate = permits.clone();
    let (again, mut again_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let sender = tokio::spawn(async move {
        for i in start..start + n {
            gate.acquire().await?.forget();
            sink.send(net::frame(
                format!("seed-{i}"),
                net::create_item_request(&project, format!("s-{i}")),
            ))
            .await?;
        }
        // Creates that failed, until the reader has all it needs and drops its sender.
        let mut r = 0;
        while again_rx.recv().await.is_some() {
            gate.acquire().await?.forget();
            sink.send(net::frame(
                format!("seed-again-{start}-{r}"),
                net::create_item_request(&project, format!("s-{start}-again-{r}")),
            ))
            .await?;
            r += 1;
        }
        anyhow::Ok(sink)
    });
    let mut resent = 0u64;
    let mut done = 0;
    while done < n {
        let next = tokio::time::timeout(net::REQUEST_TIMEOUT, stream.next())
            .await
            .context("seeding stalled")?;
        match next {
            Some(Ok(Message::Binary(b))) => {
                let Some(p) = scan::peek(&b) else { continue };
                if !p.message_id.starts_with(b"seed-") {
                    continue;
                }
                permits.add_permits(1);
                if p.payload == scan::field::ERROR {
                    if resent as usize >= retries {
                        bail!(
                            "seeding failed ({resent} creates already sent again): {:?}",
                            proto::WebSocketMessage::decode(b.as_ref())
                        );
                    }
                    resent += 1;
                    again.send(()).context("the seeding sender stopped")?;
                    continue;
                }
                done += 1;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => bail!("connection ended while seeding"),
        }
    }
    drop(again);
    let _sink = sender.await??;
    Ok(resent)
}

// ---------------------------------------------------------------------------------------------
// resume-storm
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct ResumeStormParams {
    /// Clients that resume at once, each on its own connection (connected, idle, before).
    #[arg(long, short = 'c', default_value_t = 1000)]
    pub clients: usize,
    /// Events each client resumes: the history project gets this many updates, and every
    /// cursor is its seq minus this.
    #[arg(long, short = 'e', default_value_t = 1000)]
    pub events: usize,
    /// Seconds of each phase: the baseline (clients idle), then the storm (all clients resume
    /// at once, again and again until the phase is over).
    #[arg(long, short = 'd', default_value_t = 10.0)]
    pub duration: f64,
    /// Updates per second of the concurrent writer (open loop, on a project of its own).
    #[arg(long, short = 'r', default_value_t = 200.0)]
    pub rate: f64,
    /// Seconds the writer writes before the baseline starts (not timed).
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
}

/// One client's resume in one storm.
#[derive(Debug, Default)]
struct Resumed {
    /// Numbered events of the history stream received.
    events: u64,
    /// Events of (cursor, cursor + e] never received, counted by seq.
    lost: u64,
    /// Events received again (seq not above the last one).
    dups: u64,
    /// A seq that skipped ahead (the ones skipped are in `lost`).
    out_of_order: u64,
    /// Events beyond cursor + e (there are no writes to the history project: must be 0).
    extra: u64,
    resyncs: u64,
    error: Option<String>,
    /// Subscribe sent → last replayed event arrived.
    sent_at: Option<Instant>,
    last_at: Option<Instant>,
    /// The Subscribe reply arrived: the resume is over (the live subscription is in place).
    replied_at: Option<Instant>,
}

/// Waits for `go`, sends `Subscribe{cursors: [cursor]}`, reads the replay up to the Subscribe
/// reply (the server sends the replay before it), then unsubscribes (untimed) so the next storm
/// can resume the same history again.
async fn resume_once(
    mut ws: RawWs,
    mut go: tokio::sync::watch::Receiver<bool>,
    cursor: proto::ResumeCursor,
    events: u64,
) -> (RawWs, Resumed) {
    let mut r = Resumed::default();
    if go.wait_for(|g| *g).await.is_err() {
        r.error = Some("storm cancelled".into());
        return (ws, r);
    }
    let stream = cursor.stream.clone();
    let (first, last) = (cursor.last_seq + 1, cursor.last_seq + events);
    let id = "storm";
    r.sent_at = Some(Instant::now());
    let subscribe = Payload::Subscribe(proto::Subscribe {
        cursors: vec![cursor],
        ..Default::default()
    });
    if let Err(e) = ws.send(id, subscribe).await {
        r.error = Some(format!("sending Subscribe: {e}"));
        r.lost = events;
        return (ws, r);
    }
    let mut next = first;
    let deadline = tokio::time::Instant::now() + 2 * net::REQUEST_TIMEOUT;
    let outcome: Result<()> = async {
        loop {
            let now = Instant::now();
            let mut answer = None;
            let mut closed = false;
            ws.drain(|incoming| match incoming {
                Incoming::Binary(bytes) => match scan::peek(bytes) {
                    Some(p) if p.message_id == id.as_bytes() => {
                        answer = net::reply_to(id, bytes);
                        false
                    }
                    Some(p) if p.payload == scan::field::RESYNC_REQUIRED => {
                        r.resyncs += 1;
                        true
                    }
                    Some(p) if p.seq > 0 && p.stream == stream.as_bytes() => {
                        r.events += 1;
                        r.last_at = Some(now);
                        if p.seq > last {
                            r.extra += 1;
                        } else if p.seq == next {
                            next += 1;
                        } else if p.seq < next {
                            r.dups += 1;
                        } else {
                            r.out_of_order += 1;
                            r.lost += p.seq - next;
                            next = p.seq + 1;
                        }
                        true
                    }
                    _ => true,
                },
                Incoming::Close => {
                    closed = true;
                    false
                }
            })?;
            if let Some(answer) = answer {
                answer?;
                r.replied_at = Some(now);
                return Ok(());
            }
            if closed {
                bail!("connection closed during the replay");
            }
            let more = tokio::time::timeout_at(deadline, ws.fill())
                .await
                .context("replay not complete within 120 s")??;
            if !more {
                bail!("connection ended during the replay");
            }
        }
    }
    .await;
    r.lost += (last + 1).saturating_sub(next);
    if let Err(e) = outcome {
        r.error = Some(format!("{e:#}"));
        return (ws, r);
    }
    let unsubscribe = Payload::Unsubscribe(proto::Unsubscribe {
        project_ids: vec![stream],
        ..Default::default()
    });
    if let Err(e) = ws.rpc(unsubscribe).await {
        r.error = Some(format!("Unsubscribe: {e:#}"));
    }
    (ws, r)
}

/// One storm: every client resumes at once.
#[derive(Debug, Clone, Serialize)]
struct StormRound {
    /// The go signal → the last client's Subscribe reply (the end of the last resume).
    secs: f64,
    /// The same span on the writer's clock (ns), to place its samples within the storm.
    #[serde(skip)]
    span_ns: (u64, u64),
    clients: usize,
    events: u64,
    lost: u64,
    duplicated: u64,
    errors: u64,
}

/// The storms' durations: each when there are a few, else min / median / max.
fn round_spans(rounds: &[StormRound]) -> String {
    let mut secs: Vec<f64> = rounds.iter().map(|r| r.secs).collect();
    if secs.len() <= 8 {
        return secs
            .iter()
            .map(|s| format!("{s:.2} s"))
            .collect::<Vec<_>>()
            .join(", ");
    }
    secs.sort_by(f64::total_cmp);
    format!(
        "min {:.3} s, median {:.3} s, max {:.3} s",
        secs[0],
        secs[secs.len() / 2],
        secs[secs.len() - 1]
    )
}

pub async fn resume_storm(env: &Env, p: &ResumeStormParams) -> Result<Report> {
    let fd_limit = net::raise_fd_limit();
    let headroom = 64;
    let clients = if (p.clients as u64) + headroom > fd_limit {
        let capped = fd_limit.saturating_sub(headroom) as usize;
        eprintln!(
            "pm-bench: RLIMIT_NOFILE is {fd_limit}; capping resume-storm clients at {capped} \
             (raise it with `ulimit -n`)"
        );
        capped
    } else {
        p.clients
    };
    let events = p.events.max(1);
    let target = &env.target;
    if env.reference {
        bail!(
            "resume-storm does not apply to the reference: its events carry no seq and it \
             keeps no history, so there is nothing to resume (a client that reconnects there \
             reloads the whole project instead)"
        );
    }

    // The history: `events` updates of one item, pipelined as throughput's writers send them.
    let history = env.new_project("resume-storm history").await?;
    let mut setup = net::connect(target, live::WRITER_USER, ConnOptions::default()).await?;
    let item = net::create_item(&mut setup, &history, "history").await?;
    env.say(format!(
        "resume-storm: writing a history of {events} events"
    ));
    let seeded = Instant::now();
    {
        let run = Run::new(history.clone(), events, 0);
        let ws = net::connect(target, live::WRITER_USER, ConnOptions::default()).await?;
        let w = live::writer(
            ws,
            run,
            Arc::new(Counter::new()),
            Op::Update,
            (item.id.clone(), item.version),
            Pace::Window {
                window: 32,
                until_ns: u64::MAX,
            },
        )
        .await;
        if w.ok != events as u64 || w.errors > 0 {
            bail!(
                "seeding the history: {} of {events} updates ok, {} errors ({:?})",
                w.ok,
                w.errors,
                w.first_error
            );
        }
    }
    let seed_secs = seeded.elapsed().as_secs_f64();
    let (current, epoch) = net::project_position(&mut setup, &history).await?;
    if current < events as u64 {
        bail!("the history project is at seq {current}, below {events}");
    }
    let cursor = proto::ResumeCursor {
        stream: history.clone(),
        last_seq: current - events as u64,
        epoch,
    };

    // The writer's own project: its events reach nobody, so what it measures is the write side
    // (the store's single writer, shared by every project), not a fan-out to the clients.
    let project = env.new_project("resume-storm writer").await?;
    let witem = net::create_item(&mut setup, &project, "writer").await?;

    env.say(format!("resume-storm: opening {clients} connections"));
    let opened = Instant::now();
    let mut conns = live::open_connections(
        target,
        None,
        clients,
        CONNECT_CONCURRENCY,
        ConnOptions {
            recv_buffer: None,
            small_buffers: true,
        },
    )
    .await
    .context("opening the storm's connections")?;
    let connect_secs = opened.elapsed().as_secs_f64();

    // An upper bound: the writer is stopped when the storm phase ends.
    let cap_secs = p.warmup + 2.0 * p.duration + 600.0;
    let capacity = (p.rate * cap_secs).ceil() as usize;
    let run = Run::new(project.clone(), capacity, 0);
    let memory = MemorySampler::start(env.server_pid, Duration::from_millis(250));
    let wws = net::connect(target, live::WRITER_USER, ConnOptions::default()).await?;
    let writer = tokio::spawn(live::writer(
        wws,
        run.clone(),
        Arc::new(Counter::new()),
        Op::Update,
        (witem.id, witem.version),
        Pace::Rate {
            per_sec: p.rate,
            count: capacity as u64,
        },
    ));
    tokio::time::sleep(Duration::from_secs_f64(p.warmup)).await;

    env.say(format!(
        "resume-storm: baseline ({clients} clients idle, writer at {}/s)",
        p.rate
    ));
    let base_from = run.log.now_ns();
    let cpu = Cpu::start(env.server_pid);
    tokio::time::sleep(Duration::from_secs_f64(p.duration)).await;
    let base_to = run.log.now_ns();
    let base_cpu = cpu.finish();

    env.say(format!(
        "resume-storm: storm ({clients} clients resuming {events} events each, again and again)"
    ));
    let storm_from = run.log.now_ns();
    let cpu = Cpu::start(env.server_pid);
    let phase = Instant::now();
    let mut rounds = Vec::new();
    let mut replay_ns: Vec<u64> = Vec::new();
    let (mut lost, mut dups, mut out_of_order, mut extra, mut resyncs, mut errors) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let mut received = 0u64;
    let mut first_error: Option<String> = None;
    let mut busy_secs = 0.0;
    while rounds.is_empty() || phase.elapsed().as_secs_f64() < p.duration {
        let (go, ready) = tokio::sync::watch::channel(false);
        let mut set = JoinSet::new();
        for ws in conns.drain(..) {
            set.spawn(resume_once(
                ws,
                ready.clone(),
                cursor.clone(),
                events as u64,
            ));
        }
        // Every client parked on the signal, then all at once.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = Instant::now();
        let started_ns = run.log.now_ns();
        go.send_replace(true);
        let mut round = StormRound {
            secs: 0.0,
            span_ns: (started_ns, started_ns),
            clients: 0,
            events: 0,
            lost: 0,
            duplicated: 0,
            errors: 0,
        };
        let mut end = started;
        while let Some(joined) = set.join_next().await {
            let (ws, r) = joined?;
            conns.push(ws);
            round.clients += 1;
            round.events += r.events;
            round.lost += r.lost;
            round.duplicated += r.dups;
            if let (Some(a), Some(b)) = (r.sent_at, r.last_at) {
                replay_ns.push(b.duration_since(a).as_nanos() as u64);
            }
            end = end.max(r.replied_at.or(r.last_at).unwrap_or(started));
            out_of_order += r.out_of_order;
            extra += r.extra;
            resyncs += r.resyncs;
            if let Some(e) = r.error {
                round.errors += 1;
                first_error.get_or_insert(e);
            }
        }
        let span = end.duration_since(started);
        round.secs = (span.as_secs_f64() * 1000.0).round() / 1000.0;
        round.span_ns.1 = started_ns + span.as_nanos() as u64;
        busy_secs += round.secs;
        received += round.events;
        lost += round.lost;
        dups += round.duplicated;
        errors += round.errors;
        env.say(format!(
            "resume-storm: storm {}: {} events to {} clients in {:.2} s",
            rounds.len() + 1,
            round.events,
            round.clients,
            round.secs
        ));
        rounds.push(round);
    }
    let storm_to = run.log.now_ns();
    let storm_cpu = cpu.finish();
    let storm_secs = phase.elapsed().as_secs_f64();
    run.stop_writers();
    let w = writer.await?;
    let mut memory = memory.finish();
    downsample(&mut memory, 200);

    let (mut base, mut storm) = (Vec::new(), Vec::new());
    // Storm-phase samples by when they were sent within their storm (tenths of its span), and
    // those sent between storms: where in a storm the writer waits.
    let mut tenths: Vec<Vec<u64>> = vec![Vec::new(); 11];
    for (&lat, &sent) in w.response_latencies.iter().zip(&w.response_sent_ns) {
        if (base_from..base_to).contains(&sent) {
            base.push(lat);
        } else if (storm_from..storm_to).contains(&sent) {
            storm.push(lat);
            let at = rounds
                .iter()
                .map(|r| r.span_ns)
                .find(|&(a, b)| (a..b).contains(&sent))
                .map_or(10, |(a, b)| ((sent - a) * 10 / (b - a).max(1)) as usize);
            tenths[at.min(10)].push(lat);
        }
    }
    let tenths: Vec<Latency> = tenths.iter_mut().map(|v| Latency::of(v)).collect();
    let (base, storm) = (Latency::of(&mut base), Latency::of(&mut storm));
    let ratio = if base.p99_ms > 0.0 {
        (storm.p99_ms / base.p99_ms * 100.0).round() / 100.0
    } else {
        f64::NAN
    };
    let replay = Latency::of(&mut replay_ns);
    let expected = (clients * events * rounds.len()) as u64;
    let coverage = (busy_secs / storm_secs * 100.0).round();

    let mut rows = vec![
        ("writer, baseline (clients idle)".into(), base.brief()),
        ("writer, storm".into(), storm.brief()),
        (
            "writer p99, storm / baseline".into(),
            format!("×{ratio:.2} (goal ≤ ×2)"),
        ),
        (
            "storms".into(),
            format!(
                "{} × {clients} clients resuming {events} events each in {storm_secs:.1} s; \
                 replays in flight {coverage:.0} % of the phase; each storm {}",
                rounds.len(),
                round_spans(&rounds)
            ),
        ),
        (
            "writer p99 by tenth of a storm".into(),
            format!(
                "{} ms; between storms {}",
                tenths[..10]
                    .iter()
                    .map(|l| if l.count > 0 {
                        format!("{:.0}", l.p99_ms)
                    } else {
                        "-".into()
                    })
                    .collect::<Vec<_>>()
                    .join(" · "),
                tenths[10].brief()
            ),
        ),
        ("replay: Subscribe sent → last event".into(), replay.brief()),
        (
            "replayed events".into(),
            format!(
                "{received} of {expected} expected ({:.0}/s over the storms)",
                if busy_secs > 0.0 {
                    received as f64 / busy_secs
                } else {
                    0.0
                }
            ),
        ),
        (
            "lost / duplicated".into(),
            format!(
                "{lost} / {dups} (out of order {out_of_order}, beyond the history {extra}, \
                 resyncs {resyncs}, client errors {errors})"
            ),
        ),
        (
            "writer".into(),
            format!(
                "{} ok / {} sent, {} errors at {}/s on its own project",
                w.ok, w.sent, w.errors, p.rate
            ),
        ),
        ("cpu baseline".into(), base_cpu.row()),
        ("cpu storm".into(), storm_cpu.row()),
        ("server memory".into(), memory_row(&memory)),
        (
            "setup".into(),
            format!(
                "history of {events} updates in {seed_secs:.2} s; {clients} connections in \
                 {connect_secs:.1} s (fd limit {fd_limit})"
            ),
        ),
    ];
    for e in first_error.iter().chain(&w.first_error) {
        rows.push(("first error".into(), e.clone()));
    }
    Ok(Report {
        scenario: "resume-storm".into(),
        params: serde_json::to_value(p)?,
        rows,
        results: json!({
            "clients": clients,
            "events": events,
            "baseline_writer": base,
            "storm_writer": storm,
            "storm_writer_by_tenth": &tenths[..10],
            "between_storms_writer": &tenths[10],
            "p99_ratio": ratio,
            "rounds": rounds,
            "storm_secs": storm_secs,
            "replay_busy_percent": coverage,
            "replay_latency": replay,
            "events_received": received,
            "expected_events": expected,
            "lost": lost,
            "duplicated": dups,
            "out_of_order": out_of_order,
            "beyond_history": extra,
            "resyncs": resyncs,
            "client_errors": errors,
            "first_error": first_error,
            "writer_ok": w.ok,
            "writer_sent": w.sent,
            "writer_errors": w.errors,
            "writer_first_error": w.first_error,
            "history_seed_secs": seed_secs,
            "connect_secs": connect_secs,
            "fd_limit": fd_limit,
            "cpu_baseline": base_cpu,
            "cpu_storm": storm_cpu,
            "memory": memory,
        }),
    })
}
