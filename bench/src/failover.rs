//! `failover`: several servers on one database; subscribers on one of them, which is killed
//! (SIGKILL) in the middle of a fan-out run. Each subscriber connects to the next server and
//! resumes from its cursor there (a Subscribe with its last seq and the epoch), as pm's client
//! SDK does. Measured: from the kill until each subscriber is back and has every event committed
//! before the kill ("recovered"), and over the whole run, every event received exactly once, in
//! order.
//!
//! `--url WRITER,VICTIM,FALLBACK`: the writer on the first server, the subscribers on the second
//! (whose pid `--victim-pid` names), moving to the third.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use pm_shared::proto::{self, Payload, WebSocketMessage};
use prost::Message as _;
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

use crate::live;
use crate::net::{self, ConnOptions, Target};
use crate::scenarios::{Env, Report};
use crate::stats::Latency;

#[derive(Debug, Clone, Serialize, clap::Args)]
pub struct FailoverParams {
    /// Subscribers, all on the second server.
    #[arg(long, short = 'n', default_value_t = 300)]
    pub subscribers: usize,
    /// Updates per second from the writer (on the first server).
    #[arg(long, short = 'r', default_value_t = 200.0)]
    pub rate: f64,
    /// Seconds of writing.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds into the writing when the second server is killed.
    #[arg(long, default_value_t = 3.0)]
    pub kill_at: f64,
    /// The pid of the second server, killed with SIGKILL.
    #[arg(long)]
    pub victim_pid: u32,
}

/// One subscriber's run.
#[derive(Debug, Default)]
struct Seen {
    last: u64,
    received: u64,
    out_of_order: u64,
    /// Nanoseconds after the kill when it was back with every event committed before it.
    recovered_ns: Option<u64>,
    reconnects: u64,
}

/// Shared by the subscribers: what the kill left behind.
struct Kill {
    started: Instant,
    /// The seq acknowledged to the writer when the victim was killed (0: not yet killed).
    seq: AtomicU64,
    /// When, as nanoseconds since `started` (u64::MAX: not yet).
    at_ns: AtomicU64,
    /// The writer's last acknowledged seq once it is done (u64::MAX: still writing).
    final_seq: AtomicU64,
}

pub async fn failover(env: &Env, p: &FailoverParams) -> Result<Report> {
    let [victim, fallback] = env.subscriber_targets.as_slice() else {
        bail!("failover needs three --url: the writer's server, the victim, the fallback");
    };
    let project = env.new_project("failover").await?;
    let mut setup = net::connect(&env.target, live::WRITER_USER, ConnOptions::default()).await?;
    let item = net::create_item(&mut setup, &project, "failover").await?;
    let (_, epoch) = net::project_position(&mut setup, &project).await?;
    let kill = Arc::new(Kill {
        started: Instant::now(),
        seq: AtomicU64::new(0),
        at_ns: AtomicU64::new(u64::MAX),
        final_seq: AtomicU64::new(u64::MAX),
    });

    env.say(format!(
        "failover: {} subscribers on {}",
        p.subscribers, victim.http
    ));
    let mut subscribers = tokio::task::JoinSet::new();
    for i in 0..p.subscribers {
        let mut ws = net::connect(victim, &live::subscriber_user(i), small()).await?;
        let base = subscribe_from(&mut ws, &project, None).await?;
        let (fallback, project, epoch, kill) = (
            fallback.clone(),
            project.clone(),
            epoch.clone(),
            kill.clone(),
        );
        subscribers
            .spawn(async move { follow(ws, base, i, &fallback, &project, &epoch, &kill).await });
    }

    // The writer: one update at a time, paced.
    let acked = Arc::new(AtomicU64::new(0));
    let killer = {
        let (kill, acked, pid, at) = (kill.clone(), acked.clone(), p.victim_pid, p.kill_at);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(at)).await;
            kill.seq
                .store(acked.load(Ordering::Acquire), Ordering::Release);
            kill.at_ns
                .store(kill.started.elapsed().as_nanos() as u64, Ordering::Release);
            // SAFETY: kill(2) with a pid and a signal number has no memory effects.
            unsafe { libc::kill(p32(pid), libc::SIGKILL) };
        })
    };
    let count = (p.rate * p.duration).round() as u64;
    let mut version = item.version;
    let mut errors = 0u64;
    let begun = Instant::now();
    for k in 0..count {
        let due = begun + Duration::from_secs_f64(k as f64 / p.rate);
        tokio::time::sleep_until(due.into()).await;
        let reply = net::rpc(
            &mut setup,
            net::update_title_request(&item.id, version, format!("failover {k}")),
        )
        .await?;
        match reply.payload {
            Some(Payload::WorkItemUpdated(_)) => {
                version += 1;
                acked.fetch_max(reply.seq, Ordering::AcqRel);
            }
            _ => errors += 1,
        }
    }
    killer.await.context("the killer")?;
    kill.final_seq
        .store(acked.load(Ordering::Acquire), Ordering::Release);

    let mut seen = Vec::new();
    while let Some(s) = subscribers.join_next().await {
        seen.push(s??);
    }
    let mut recovered: Vec<u64> = seen.iter().filter_map(|s| s.recovered_ns).collect();
    let moved = recovered.len();
    let lost: u64 = seen
        .iter()
        .map(|s| {
            kill.final_seq
                .load(Ordering::Acquire)
                .saturating_sub(s.last)
        })
        .sum();
    let out_of_order: u64 = seen.iter().map(|s| s.out_of_order).sum();
    let reconnects: u64 = seen.iter().map(|s| s.reconnects).sum();
    let latency = Latency::of(&mut recovered);
    let rows = vec![
        (
            "recovered".into(),
            format!(
                "{moved} of {} subscribers back and caught up: p50 {:.0} ms · p99 {:.0} ms · max {:.0} ms after the kill",
                p.subscribers, latency.p50_ms, latency.p99_ms, latency.max_ms
            ),
        ),
        (
            "lost / out of order".into(),
            format!("{lost} / {out_of_order} ({reconnects} reconnects)"),
        ),
        (
            "writer".into(),
            format!("{count} updates, {errors} refused, last seq {}", kill.final_seq.load(Ordering::Acquire)),
        ),
    ];
    Ok(Report {
        scenario: "failover".into(),
        params: serde_json::to_value(p)?,
        rows,
        results: serde_json::json!({
            "recovered": latency,
            "moved": moved,
            "lost": lost,
            "out_of_order": out_of_order,
            "reconnects": reconnects,
            "writer_errors": errors,
        }),
    })
}

fn p32(pid: u32) -> i32 {
    i32::try_from(pid).unwrap_or(i32::MAX)
}

fn small() -> ConnOptions {
    ConnOptions {
        recv_buffer: None,
        small_buffers: true,
    }
}

/// Subscribes (resuming after `cursor`'s seq when given) and returns the seq the stream is at
/// for this subscriber: the cursor, or the server's snapshot seq.
async fn subscribe_from(
    ws: &mut net::Ws,
    project: &str,
    cursor: Option<(u64, &str)>,
) -> Result<u64> {
    match cursor {
        None => {
            net::subscribe(ws, project).await?;
            Ok(net::project_seq(ws, project).await?)
        }
        Some((last, epoch)) => {
            let resume = Payload::Subscribe(proto::Subscribe {
                cursors: vec![proto::ResumeCursor {
                    stream: project.to_string(),
                    last_seq: last,
                    epoch: epoch.to_string(),
                }],
                ..Default::default()
            });
            // The replay comes before the answer: the reading loop takes both.
            ws.send(net::frame("resume".into(), resume)).await?;
            Ok(last)
        }
    }
}

/// One subscriber: reads its events, moves to `fallback` when its server goes away, and stops
/// once it has the writer's last seq.
async fn follow(
    mut ws: net::Ws,
    mut last: u64,
    i: usize,
    fallback: &Target,
    project: &str,
    epoch: &str,
    kill: &Kill,
) -> Result<Seen> {
    let mut seen = Seen {
        last,
        ..Default::default()
    };
    loop {
        let done = kill.final_seq.load(Ordering::Acquire);
        if done != u64::MAX && last >= done {
            return Ok(seen);
        }
        let next = tokio::time::timeout(Duration::from_secs(20), ws.next()).await;
        let frame = match next {
            Ok(Some(Ok(Message::Binary(bytes)))) => bytes,
            Ok(Some(Ok(_))) => continue,
            Err(_) => bail!("subscriber {i}: nothing for 20 s at seq {last}"),
            // Its server went away: the next one, resuming after what it has.
            Ok(Some(Err(_))) | Ok(None) => {
                seen.reconnects += 1;
                let deadline = Instant::now() + Duration::from_secs(10);
                ws = loop {
                    match net::connect(fallback, &live::subscriber_user(i), small()).await {
                        Ok(ws) => break ws,
                        Err(e) if Instant::now() > deadline => return Err(e),
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                };
                subscribe_from(&mut ws, project, Some((last, epoch))).await?;
                continue;
            }
        };
        let Ok(message) = WebSocketMessage::decode(frame.as_ref()) else {
            continue;
        };
        if message.stream != project || message.seq == 0 {
            continue;
        }
        if message.seq != last + 1 {
            seen.out_of_order += 1;
            last = last.max(message.seq);
        } else {
            last = message.seq;
        }
        seen.last = last;
        seen.received += 1;
        let killed_at = kill.at_ns.load(Ordering::Acquire);
        if seen.recovered_ns.is_none()
            && seen.reconnects > 0
            && killed_at != u64::MAX
            && last >= kill.seq.load(Ordering::Acquire)
        {
            let now = kill.started.elapsed().as_nanos() as u64;
            seen.recovered_ns = Some(now.saturating_sub(killed_at));
        }
    }
}
