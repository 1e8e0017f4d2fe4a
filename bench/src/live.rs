//! The machinery of the live scenarios (fan-out, throughput, slow consumer): subscribers that
//! check every event's seq and time it, and writers that record when they sent each mutation.
//!
//! Writers and subscribers live in this one process, so one monotonic clock ([`SendLog`]) times
//! both ends: the writer stamps mutation `k` just before sending it (titles are `b-<k>`,
//! message ids `w-<k>`), and a subscriber that receives an event whose work item title is `b-<k>`
//! takes `now - sent[k]` as that event's fan-out latency.
//!
//! Events are told apart by their `seq` on pm ([`Identity::Seq`]). A server that numbers no
//! events (the reference) gets [`Identity::Title`]: an event is the work item's id and its
//! title `b-<k>`, which is unique within a run because `k` is the run's mutation counter.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use pm_shared::proto::{Payload, WebSocketMessage};
use prost::Message as _;
use serde::Serialize;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::net::{self, ConnOptions, Target, Ws};
use crate::raw::{Incoming, RawWs};
use crate::scan::{self, field};

/// Title prefix of measured mutations.
pub const TITLE_PREFIX: &[u8] = b"b-";

/// When each mutation was sent, in nanoseconds since `base` (+1, so 0 means "not sent").
pub struct SendLog {
    base: Instant,
    at: Vec<AtomicU64>,
}

impl SendLog {
    pub fn new(capacity: usize) -> SendLog {
        SendLog {
            base: Instant::now(),
            at: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.at.len()
    }

    pub fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// Stamps mutation `k` as sent now.
    pub fn mark(&self, k: u64) {
        if let Some(slot) = self.at.get(k as usize) {
            slot.store(self.now_ns() + 1, Ordering::Release);
        }
    }

    pub fn sent(&self, k: u64) -> Option<u64> {
        match self.at.get(k as usize)?.load(Ordering::Acquire) {
            0 => None,
            t => Some(t - 1),
        }
    }
}

/// What the coordinator tells subscribers: the seq they must reach (u64::MAX: not known yet)
/// and whether to stop regardless. Under [`Identity::Title`] `final_seq` is the number of
/// distinct events to reach (every mutation the writers saw succeed).
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    pub final_seq: u64,
    pub stop: bool,
}

/// How a run tells one event from another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// By the event's `seq` on the run's stream (pm, the floor server).
    Seq,
    /// By the work item's id and title `b-<k>`, for a server whose events carry no seq (the
    /// reference). `items` are the only ids an event may carry (the items the writers update);
    /// empty when the writers create, so that every event has an id of its own.
    Title { items: Vec<String> },
}
pub struct Run {
    pub log: SendLog,
    pub project: String,
    /// Mutations with k below this are not timed (warm-up).
    pub measure_from: u64,
    /// One control channel per subscriber: a watch channel's `changed()` future costs a mutex
    /// per poll, which made one shared watch channel the bench's own bottleneck (measured:
    /// bench/NOTES.md, "Figures that used to live in comments").
    controls: std::sync::Mutex<Vec<mpsc::Sender<Phase>>>,
    /// Set by [`Run::stop_writers`]: rate-paced writers send nothing more.
    writers_stopped: std::sync::atomic::AtomicBool,
    pub identity: Identity,
}

impl Run {
    pub fn new(project: String, capacity: usize, measure_from: u64) -> Arc<Run> {
        Run::identified(project, capacity, measure_from, Identity::Seq)
    }

    pub fn identified(
        project: String,
        capacity: usize,
        measure_from: u64,
        identity: Identity,
    ) -> Arc<Run> {
        Arc::new(Run {
            log: SendLog::new(capacity),
            project,
            measure_from,
            controls: std::sync::Mutex::new(Vec::new()),
            writers_stopped: std::sync::atomic::AtomicBool::new(false),
            identity,
        })
    }

    /// Stops the run's writers before their count (for a writer that runs as long as some
    /// other activity lasts, with a count that is only an upper bound).
    pub fn stop_writers(&self) {
        self.writers_stopped.store(true, Ordering::Release);
    }

    fn writers_stopped(&self) -> bool {
        self.writers_stopped.load(Ordering::Acquire)
    }

    /// Tells every subscriber the new phase.
    pub fn set_phase(&self, phase: Phase) {
        for c in self.controls.lock().unwrap().iter() {
            let _ = c.try_send(phase);
        }
    }

    fn control(&self) -> mpsc::Receiver<Phase> {
        let (tx, rx) = mpsc::channel(4);
        self.controls.lock().unwrap().push(tx);
        rx
    }
}

/// One subscriber's view of a run.
#[derive(Debug, Default)]
pub struct SubStats {
    pub events: u64,
    pub activity: u64,
    pub other: u64,
    pub first_seq: Option<u64>,
    pub last_seq: u64,
    /// Seqs skipped over (a later seq arrived before them and they never came).
    pub gaps: u64,
    /// Seqs received again.
    pub dups: u64,
    pub resyncs: u64,
    pub closed: bool,
    /// When the last event arrived (run clock, ns).
    pub last_event_ns: u64,
    /// Fan-out latencies (ns) of timed events.
    pub latencies: Vec<u64>,
    /// Under [`Identity::Title`]: bit k is set once the event of mutation k arrived.
    pub seen: Vec<u64>,
    /// Under [`Identity::Title`]: events of distinct mutations received.
    pub distinct: u64,
}

impl SubStats {
    /// Counts one frame received at `recv_ns` (run clock).
    pub fn on_frame(&mut self, bytes: &[u8], recv_ns: u64, run: &Run) {
        let Some(p) = scan::peek(bytes) else {
            self.other += 1;
            return;
        };
        match p.payload {
            field::ACTIVITY_LOG_CREATED => self.activity += 1,
            field::RESYNC_REQUIRED => self.resyncs += 1,
            _ if p.seq > 0 && p.stream == run.project.as_bytes() => {
                self.events += 1;
                self.last_event_ns = recv_ns;
                match self.first_seq {
                    None => {
                        self.first_seq = Some(p.seq);
                        self.last_seq = p.seq;
                    }
                    Some(_) if p.seq == self.last_seq + 1 => self.last_seq = p.seq,
                    Some(_) if p.seq <= self.last_seq => self.dups += 1,
                    Some(_) => {
                        self.gaps += p.seq - self.last_seq - 1;
                        self.last_seq = p.seq;
                    }
                }
                if let Some(title) = p.title.filter(|t| t.starts_with(TITLE_PREFIX)) {
                    if let Some(k) = scan::trailing_number(title) {
                        if k >= run.measure_from {
                            if let Some(sent) = run.log.sent(k) {
                                self.latencies.push(recv_ns.saturating_sub(sent));
                            }
                        }
                    }
                }
            }
            field::WORK_ITEM_CREATED | field::WORK_ITEM_UPDATED
                if matches!(run.identity, Identity::Title { .. }) =>
            {
                self.on_titled_event(&p, recv_ns, run)
            }
            _ => self.other += 1,
        }
    }

    /// A work item event under [`Identity::Title`]: the run's project, a bench title `b-<k>`
    /// and (for updates) one of the writers' items, or it is not the run's.
    fn on_titled_event(&mut self, p: &scan::Peek<'_>, recv_ns: u64, run: &Run) {
        let Identity::Title { items } = &run.identity else {
            return;
        };
        let k = match (p.item_project, p.title, p.item_id) {
            (Some(project), Some(title), Some(id))
                if project == run.project.as_bytes()
                    && title.starts_with(TITLE_PREFIX)
                    && (items.is_empty() || items.iter().any(|i| i.as_bytes() == id)) =>
            {
                scan::trailing_number(title).filter(|&k| (k as usize) < run.log.capacity())
            }
            _ => None,
        };
        let Some(k) = k else {
            self.other += 1;
            return;
        };
        self.events += 1;
        self.last_event_ns = recv_ns;
        if self.seen.is_empty() {
            self.seen = vec![0; run.log.capacity().div_ceil(64)];
        }
        let (word, bit) = ((k / 64) as usize, 1u64 << (k % 64));
        if self.seen[word] & bit != 0 {
            self.dups += 1;
            return;
        }
        self.seen[word] |= bit;
        self.distinct += 1;
        if k >= run.measure_from {
            if let Some(sent) = run.log.sent(k) {
                self.latencies.push(recv_ns.saturating_sub(sent));
            }
        }
    }

    /// Under [`Identity::Title`]: whether the event of mutation `k` arrived.
    pub fn saw(&self, k: u64) -> bool {
        self.seen
            .get((k / 64) as usize)
            .is_some_and(|w| w & (1u64 << (k % 64)) != 0)
    }

    /// Under [`Identity::Title`]: mutations of `delivered` (the ones that succeeded) whose
    /// event this subscriber never received.
    pub fn lost_of(&self, delivered: &[u64]) -> u64 {
        delivered.iter().filter(|&&k| !self.saw(k)).count() as u64
    }

    /// Whether this subscriber has everything `phase` asks for.
    fn reached(&self, phase: &Phase, run: &Run) -> bool {
        match run.identity {
            Identity::Seq => self.first_seq.is_some() && self.last_seq >= phase.final_seq,
            Identity::Title { .. } => self.distinct >= phase.final_seq,
        }
    }

    /// Events of (base, final] this subscriber never received.
    pub fn lost(&self, base: u64, final_seq: u64) -> u64 {
        match self.first_seq {
            None => final_seq.saturating_sub(base),
            Some(first) => {
                first.saturating_sub(base + 1) + self.gaps + final_seq.saturating_sub(self.last_seq)
            }
        }
    }
}

/// Reads events until the run's final seq is reached, the run is stopped, or the socket ends.
/// Subscribers must be spawned (this registers their control channel) before
/// [`Run::set_phase`] is first called.
pub fn subscriber(
    ws: RawWs,
    run: Arc<Run>,
    expected: usize,
) -> impl std::future::Future<Output = SubStats> {
    let control = run.control();
    subscribe_loop(ws, run, expected, control)
}

async fn subscribe_loop(
    mut ws: RawWs,
    run: Arc<Run>,
    expected: usize,
    mut control: mpsc::Receiver<Phase>,
) -> SubStats {
    let mut stats = SubStats {
        latencies: Vec::with_capacity(expected.min(200_000)),
        ..Default::default()
    };
    let mut phase = Phase {
        final_seq: u64::MAX,
        stop: false,
    };
    // Frames the subscribe call read past its reply.
    let mut more = Ok(true);
    loop {
        // Everything one read brought arrived at once: one clock reading for all of it.
        let recv = run.log.now_ns();
        let drained = match more {
            Ok(true) => ws.drain(|incoming| match incoming {
                Incoming::Binary(bytes) => {
                    stats.on_frame(bytes, recv, &run);
                    true
                }
                Incoming::Close => {
                    stats.closed = true;
                    false
                }
            }),
            Ok(false) | Err(_) => {
                stats.closed = true;
                Ok(())
            }
        };
        if drained.is_err() {
            stats.closed = true;
        }
        loop {
            if stats.closed || phase.stop || stats.reached(&phase, &run) {
                return stats;
            }
            tokio::select! {
                biased;
                m = ws.fill() => {
                    more = m;
                    break;
                }
                p = control.recv() => match p {
                    Some(p) => phase = p,
                    None => return stats,
                },
            }
        }
    }
}

/// Opens `n` connections subscribed to `project`, at most `concurrency` handshakes at a time.
/// Opens `n` subscribers of `project`, spread over `targets` in turn.
pub async fn open_subscribers(
    targets: &[Target],
    project: &str,
    n: usize,
    concurrency: usize,
    opts: ConnOptions,
) -> Result<Vec<RawWs>> {
    open_spread(targets, Some(project), n, concurrency, opts).await
}

/// Opens `n` connections (user `subscriber_user(i)` each), subscribed to `project` when one is
/// given, at most `concurrency` handshakes at a time.
pub async fn open_connections(
    target: &Target,
    project: Option<&str>,
    n: usize,
    concurrency: usize,
    opts: ConnOptions,
) -> Result<Vec<RawWs>> {
    open_spread(std::slice::from_ref(target), project, n, concurrency, opts).await
}

/// [`open_connections`] over several servers, connection `i` on `targets[i % len]`.
async fn open_spread(
    targets: &[Target],
    project: Option<&str>,
    n: usize,
    concurrency: usize,
    opts: ConnOptions,
) -> Result<Vec<RawWs>> {
    anyhow::ensure!(!targets.is_empty(), "no server to connect to");
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    for i in 0..n {
        let target = targets[i % targets.len()].clone();
        let (project, gate) = (project.map(str::to_string), gate.clone());
        set.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let user = subscriber_user(i);
            let mut ws = RawWs::new(net::connect(&target, &user, opts).await?);
            if let Some(project) = project {
                ws.subscribe(&project).await?;
            }
            anyhow::Ok(ws)
        });
    }
    let mut conns = Vec::with_capacity(n);
    while let Some(joined) = set.join_next().await {
        conns.push(joined??);
    }
    Ok(conns)
}

/// A stable user id per subscriber index.
pub fn subscriber_user(i: usize) -> String {
    format!("5eb5c41b-0000-4000-8000-{i:012x}")
}

/// The writer's id.
pub const WRITER_USER: &str = "b0000000-0000-4000-8000-00000000b0b0";

/// What kind of mutation a writer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Update the title of an item the writer owns (expected_version tracked locally).
    Update,
    /// Create a new task.
    Create,
}

/// One writer's outcome.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub sent: u64,
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub min_seq: u64,
    pub max_seq: u64,
    /// The k of every mutation that succeeded (its response was no Error): the events every
    /// subscriber must receive, for a server whose events carry no seq.
    pub ok_keys: Vec<u64>,
    /// Send → own response (ns).
    pub response_latencies: Vec<u64>,
    /// When each of `response_latencies` was sent (run clock, ns), to tell phases apart.
    pub response_sent_ns: Vec<u64>,
    pub finished_ns: u64,
}

/// How a writer paces itself.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// Open loop: mutation i at start + i / rate, `count` of them.
    Rate { per_sec: f64, count: u64 },
    /// Closed loop: at most `window` outstanding, until `until_ns` on the run clock.
    Window { window: usize, until_ns: u64 },
}

/// Global mutation counter shared by a run's writers.
pub struct Counter(AtomicU64);

impl Counter {
    pub fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }
    fn take(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

impl Default for Counter {
    fn default() -> Self {
        Self::new()
    }
}

/// A writer: sends mutations on its own connection and reads its responses on a second task.
pub async fn writer(
    ws: Ws,
    run: Arc<Run>,
    counter: Arc<Counter>,
    op: Op,
    item: (String, i32),
    pace: Pace,
) -> WriterStats {
    let (sink, stream) = ws.split();
    let window = match pace {
        Pace::Window { window, .. } => window,
        Pace::Rate { .. } => 1 << 20,
    };
    let permits = Arc::new(Semaphore::new(window));
    let total = Arc::new(AtomicU64::new(u64::MAX));
    let rebase = Arc::new(Rebase::default());
    let reader = tokio::spawn(read_responses(
        stream,
        run.clone(),
        permits.clone(),
        total.clone(),
        rebase.clone(),
    ));
    let (sent, sink) = send_loop(sink, &run, &counter, op, item, pace, &permits, &rebase).await;
    total.store(sent, Ordering::Release);
    // The reader gives up by itself RESPONSE_GRACE after the last send, with what it has.
    let mut stats = reader.await.unwrap_or_else(|e| WriterStats {
        first_error: Some(format!("the response reader failed: {e}")),
        ..Default::default()
    });
    stats.sent = sent;
    drop(sink);
    stats
}

/// How long a writer waits for its responses after its last send. What arrived by then counts
/// (a server that stalls, as the reference does behind a slow consumer, still has its answered
/// mutations checked for lost events).
const RESPONSE_GRACE: Duration = Duration::from_secs(60);

/// An update writer predicts each expected_version (it pipelines), so one update that fails for
/// another reason (the reference's `database is locked`) would make every later one a
/// conflict. The conflict names the item's current version; the writer carries on from it.
/// pm fails no update, so this never acts there.
#[derive(Default)]
struct Rebase {
    /// The item's current version + 1, from a conflict (0: nothing to apply).
    version: std::sync::atomic::AtomicI64,
    /// Conflicts of mutations before this k were answered to requests sent before the last
    /// rebase: stale, they are ignored.
    from_k: AtomicU64,
}

impl Rebase {
    /// Reader: mutation `k` got a conflict naming the current version.
    fn conflict(&self, k: u64, message: &str) {
        if k < self.from_k.load(Ordering::Acquire) {
            return;
        }
        if let Some(current) = current_version(message) {
            self.version
                .store(i64::from(current) + 1, Ordering::Release);
        }
    }

    /// Sender, before sending mutation `k`: the version to expect instead of its prediction.
    fn take(&self, k: u64) -> Option<i32> {
        match self.version.swap(0, Ordering::AcqRel) {
            0 => None,
            v => {
                self.from_k.store(k, Ordering::Release);
                i32::try_from(v - 1).ok()
            }
        }
    }
}

/// N in a conflict's "... (current version: N)".
pub fn current_version(message: &str) -> Option<i32> {
    let rest = &message[message.find("current version:")? + "current version:".len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[allow(clippy::too_many_arguments)]
async fn send_loop(
    mut sink: SplitSink<Ws, Message>,
    run: &Run,
    counter: &Counter,
    op: Op,
    (item_id, mut version): (String, i32),
    pace: Pace,
    permits: &Semaphore,
    rebase: &Rebase,
) -> (u64, SplitSink<Ws, Message>) {
    let start = tokio::time::Instant::now();
    let mut sent = 0u64;
    loop {
        match pace {
            Pace::Rate { per_sec, count } => {
                if sent >= count || run.writers_stopped() {
                    break;
                }
                let at = start + Duration::from_secs_f64(sent as f64 / per_sec);
                tokio::time::sleep_until(at).await;
                if run.writers_stopped() {
                    break;
                }
            }
            Pace::Window { until_ns, .. } => {
                if run.log.now_ns() >= until_ns {
                    break;
                }
                match permits.acquire().await {
                    Ok(p) => p.forget(),
                    Err(_) => break,
                }
            }
        }
        let k = counter.take();
        if k as usize >= run.log.capacity() {
            break;
        }
        let title = format!("b-{k}");
        if let Some(current) = rebase.take(k) {
            version = current;
        }
        let payload = match op {
            Op::Create => net::create_item_request(&run.project, title),
            Op::Update => net::update_title_request(&item_id, version, title),
        };
        version += 1;
        run.log.mark(k);
        if sink
            .send(net::frame(format!("w-{k}"), payload))
            .await
            .is_err()
        {
            break;
        }
        sent += 1;
    }
    let _ = sink.flush().await;
    // The caller keeps the sink (and so the connection) open until the reader is done.
    (sent, sink)
}

async fn read_responses(
    mut stream: SplitStream<Ws>,
    run: Arc<Run>,
    permits: Arc<Semaphore>,
    total: Arc<AtomicU64>,
    rebase: Arc<Rebase>,
) -> WriterStats {
    let mut stats = WriterStats {
        min_seq: u64::MAX,
        ..Default::default()
    };
    let mut received = 0u64;
    let mut give_up_at = None;
    while received < total.load(Ordering::Acquire) {
        if total.load(Ordering::Acquire) != u64::MAX {
            let at = *give_up_at.get_or_insert_with(|| Instant::now() + RESPONSE_GRACE);
            if Instant::now() >= at {
                let missing = total.load(Ordering::Acquire) - received;
                stats.first_error.get_or_insert(format!(
                    "{missing} responses did not arrive within {} s of the last send",
                    RESPONSE_GRACE.as_secs()
                ));
                break;
            }
        }
        // The sender publishes `total` when it stops; poll for it while idle.
        let next = match tokio::time::timeout(Duration::from_millis(50), stream.next()).await {
            Err(_) => continue,
            Ok(next) => next,
        };
        let recv = run.log.now_ns();
        let bytes = match next {
            Some(Ok(Message::Binary(b))) => b,
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => break,
        };
        let Some(p) = scan::peek(&bytes) else {
            continue;
        };
        if !p.message_id.starts_with(b"w-") {
            continue;
        }
        received += 1;
        permits.add_permits(1);
        let k = scan::trailing_number(p.message_id);
        if let Some(sent) = k.and_then(|k| run.log.sent(k)) {
            stats.response_latencies.push(recv.saturating_sub(sent));
            stats.response_sent_ns.push(sent);
        }
        if p.payload == field::ERROR {
            stats.errors += 1;
            if let Ok(WebSocketMessage {
                payload: Some(Payload::Error(e)),
                ..
            }) = WebSocketMessage::decode(bytes.as_ref())
            {
                if let (Some(k), "CONFLICT") = (k, e.code.as_str()) {
                    rebase.conflict(k, &e.message);
                }
                if stats.first_error.is_none() {
                    stats.first_error = Some(format!("{}: {}", e.code, e.message));
                }
            }
        } else {
            stats.ok += 1;
            stats.ok_keys.extend(k);
            if p.seq > 0 {
                stats.min_seq = stats.min_seq.min(p.seq);
                stats.max_seq = stats.max_seq.max(p.seq);
            }
        }
        stats.finished_ns = recv;
    }
    if stats.min_seq == u64::MAX {
        stats.min_seq = 0;
    }
    stats
}
