//! `presence`: U users on one board, each saying where it is (SetPresenceRequest) and repeating
//! it as a heartbeat, as `pm board` does; then, for the measured window, idle (and optionally a
//! few "movers" running their cursor over the cards ten times a second). Reports the messages
//! each user receives per second (presence frames and the answers to its heartbeats), in total,
//! and the server's CPU time.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use pm_shared::proto::{self, Payload, WebSocketMessage};
use prost::Message as _;
use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::live;
use crate::net::ConnOptions;
use crate::raw::{Incoming, RawWs};
use crate::scenarios::{Cpu, Env, Report};

/// Handshakes in flight at once while the users arrive.
const CONNECT_CONCURRENCY: usize = 128;

#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct PresenceParams {
    /// Users on the board, one connection each.
    #[arg(long, short = 'u', default_value_t = 1000)]
    pub users: usize,
    /// Seconds measured, once everyone is here and the snapshots are read.
    #[arg(long, short = 'd', default_value_t = 60.0)]
    pub duration: f64,
    /// Seconds between a user's heartbeats (pm board: 15), spread evenly over the users.
    #[arg(long, default_value_t = 15.0)]
    pub heartbeat: f64,
    /// Users among them who move their cursor to another card ten times a second.
    #[arg(long, default_value_t = 0)]
    pub movers: usize,
    /// Seconds to wait after the last arrival before measuring.
    #[arg(long, default_value_t = 3.0)]
    pub settle: f64,
}

/// What the users received, all together.
#[derive(Default)]
struct Counts {
    snapshots: AtomicU64,
    changes: AtomicU64,
    replies: AtomicU64,
    other: AtomicU64,
    bytes: AtomicU64,
    sent: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
struct Totals {
    snapshots: u64,
    changes: u64,
    replies: u64,
    other: u64,
    bytes: u64,
    sent: u64,
}

impl Counts {
    fn totals(&self) -> Totals {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Totals {
            snapshots: get(&self.snapshots),
            changes: get(&self.changes),
            replies: get(&self.replies),
            other: get(&self.other),
            bytes: get(&self.bytes),
            sent: get(&self.sent),
        }
    }

    fn count(&self, frame: &[u8]) {
        self.bytes.fetch_add(frame.len() as u64, Ordering::Relaxed);
        let counter = match WebSocketMessage::decode(frame).map(|m| m.payload) {
            Ok(Some(Payload::PresenceSnapshot(_))) => &self.snapshots,
            Ok(Some(Payload::PresenceChanged(_))) => &self.changes,
            Ok(None) => &self.replies,
            _ => &self.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Totals {
    fn since(self, before: Totals) -> Totals {
        Totals {
            snapshots: self.snapshots - before.snapshots,
            changes: self.changes - before.changes,
            replies: self.replies - before.replies,
            other: self.other - before.other,
            bytes: self.bytes - before.bytes,
            sent: self.sent - before.sent,
        }
    }

    fn received(&self) -> u64 {
        self.snapshots + self.changes + self.replies + self.other
    }
}

fn here(project: &str, item: Option<String>) -> Payload {
    Payload::SetPresenceRequest(proto::SetPresenceRequest {
        project_id: project.to_string(),
        work_item_id: item,
        field: None,
        invisible: false,
    })
}

/// One user: says where it is, then beats every `every` (the first after `offset`), moves
/// every 100 ms when a mover, and counts everything it receives, until `stop`.
async fn user(
    mut ws: RawWs,
    project: String,
    every: Duration,
    offset: Duration,
    mover: bool,
    counts: Arc<Counts>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    ws.send("arrive", here(&project, None)).await?;
    counts.sent.fetch_add(1, Ordering::Relaxed);
    let mut beat = tokio::time::Instant::now() + offset;
    let mut moves = tokio::time::interval(Duration::from_millis(100));
    let mut card: Option<String> = None;
    loop {
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            _ = tokio::time::sleep_until(beat) => {
                beat += every;
                ws.send("beat", here(&project, card.clone())).await?;
                counts.sent.fetch_add(1, Ordering::Relaxed);
            }
            _ = moves.tick(), if mover => {
                card = Some(uuid::Uuid::new_v4().to_string());
                ws.send("move", here(&project, card.clone())).await?;
                counts.sent.fetch_add(1, Ordering::Relaxed);
            }
            more = ws.fill() => {
                if !more? {
                    anyhow::bail!("the server ended a user's connection");
                }
                let mut closed = false;
                ws.drain(|incoming| match incoming {
                    Incoming::Binary(frame) => {
                        counts.count(frame);
                        true
                    }
                    Incoming::Close => {
                        closed = true;
                        false
                    }
                })?;
                if closed {
                    anyhow::bail!("the server closed a user's connection");
                }
            }
        }
    }
}

pub async fn presence(env: &Env, p: &PresenceParams) -> Result<Report> {
    let target = &env.target;
    let project = env.new_project("presence").await?;
    env.say(format!("presence: {} users arrive", p.users));
    let started = Instant::now();
    let conns = live::open_connections(
        target,
        None,
        p.users,
        CONNECT_CONCURRENCY,
        ConnOptions {
            recv_buffer: None,
            small_buffers: true,
        },
    )
    .await
    .context("opening the users' connections")?;
    let counts = Arc::new(Counts::default());
    let (stop_tx, stop) = watch::channel(false);
    let every = Duration::from_secs_f64(p.heartbeat.max(0.1));
    let mut set = JoinSet::new();
    let n = conns.len().max(1);
    for (i, ws) in conns.into_iter().enumerate() {
        let offset = every.mul_f64(i as f64 / n as f64);
        set.spawn(user(
            ws,
            project.clone(),
            every,
            offset,
            i < p.movers,
            counts.clone(),
            stop.clone(),
        ));
    }
    // Everyone has its snapshot (and the changes of those who came after it).
    let deadline = Instant::now() + Duration::from_secs(120);
    while counts.totals().snapshots < p.users as u64 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {} users got their snapshot",
            counts.totals().snapshots,
            p.users
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let arrival_secs = started.elapsed().as_secs_f64();
    let arrival = counts.totals();
    tokio::time::sleep(Duration::from_secs_f64(p.settle)).await;

    env.say(format!("presence: measuring {} s", p.duration));
    let before = counts.totals();
    let cpu = Cpu::start(env.server_pid);
    tokio::time::sleep(Duration::from_secs_f64(p.duration)).await;
    let used = cpu.finish();
    let window = counts.totals().since(before);
    let _ = stop_tx.send(true);
    while let Some(joined) = set.join_next().await {
        joined??;
    }

    let secs = used.wall_secs.max(0.001);
    let users = p.users.max(1) as f64;
    let per_user = |x: u64| x as f64 / secs / users;
    let idle = (p.users - p.movers.min(p.users)) as f64;
    let server_share = used.server_cpu_secs.map(|s| s / secs * 100.0);
    let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
    let rows = vec![
        (
            "users".into(),
            format!(
                "{} on one board ({} moving), heartbeat every {} s; all arrived with their \
                 snapshot in {arrival_secs:.1} s ({} snapshots, {} changes, {:.1} MiB)",
                p.users,
                p.movers,
                p.heartbeat,
                arrival.snapshots,
                arrival.changes,
                arrival.bytes as f64 / (1 << 20) as f64
            ),
        ),
        (
            "messages per user".into(),
            format!(
                "{:.3}/s received ({:.3}/s presence changes, {:.3}/s heartbeat answers), \
                 {:.3}/s sent",
                per_user(window.received()),
                per_user(window.changes + window.snapshots),
                per_user(window.replies),
                per_user(window.sent)
            ),
        ),
        (
            "messages in total".into(),
            format!(
                "{:.1}/s received by all users, {:.0} bytes/s",
                window.received() as f64 / secs,
                window.bytes as f64 / secs
            ),
        ),
        (
            "server CPU".into(),
            format!(
                "{} ({})",
                server_share.map_or("?".into(), |s| format!("{s:.2} % of one CPU")),
                used.row()
            ),
        ),
    ];
    Ok(Report {
        scenario: "presence".into(),
        params: serde_json::to_value(p)?,
        results: json!({
            "users": p.users,
            "idle_users": idle,
            "arrival_secs": round(arrival_secs),
            "arrival": arrival,
            "window": window,
            "received_per_user_per_sec": round(per_user(window.received())),
            "presence_frames_per_user_per_sec": round(per_user(window.changes + window.snapshots)),
            "heartbeat_answers_per_user_per_sec": round(per_user(window.replies)),
            "received_per_sec": round(window.received() as f64 / secs),
            "server_cpu_percent": server_share.map(round),
            "cpu": used,
        }),
        rows,
    })
}
