//! The server's numbers for `GET /metrics`, in the Prometheus text format.
//!
//! Each server has a registry of its own (a `PrometheusRecorder` held here, never installed as
//! the process's global recorder): tests run many servers in one process, and each server's
//! `/metrics` must count that server's traffic only. The parts of the server that count hold a
//! clone of [`Metrics`] and add to its handles directly (an atomic add each).
//!
//! What is a count of things that happened is a counter or a histogram kept here; what is a
//! state (open connections, subscribers per stream, the size of SQLite's write-ahead log) is
//! read when scraped ([`Metrics::render`] with a [`Snapshot`]) into a registry made for that
//! scrape, so a stream that is gone leaves no stale line behind.
use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, Histogram, Key, Label, Metadata, Recorder as _};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

/// How many streams `pm_stream_subscribers` lists: the ones with the most subscribers.
pub const TOP_STREAMS: usize = 10;

/// Buckets of `pm_write_seconds` (a group of writes, from its start to its answers).
const WRITE_SECONDS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Buckets of `pm_write_group_size` (the writer takes up to 64 commands at once).
const GROUP_SIZES: [f64; 7] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];
/// Buckets of `pm_replay_events` (events one resume replayed).
const REPLAY_SIZES: [f64; 7] = [0.0, 1.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0];

/// Where a request was refused before it was served (`pm_refused_total{reason}`).
#[derive(Debug, Clone, Copy)]
pub enum Refused {
    /// A WebSocket over --max-connections (503).
    ServerFull,
    /// A WebSocket over --max-connections-per-user (429).
    UserFull,
    /// A TCP connection over --max-http-connections-per-ip (closed at once).
    PeerConnections,
    /// A request whose Host or Origin the server does not serve (403 / 421).
    HostOrOrigin,
    /// A request or WebSocket upgrade without valid credentials (401).
    Unauthenticated,
}

impl Refused {
    const ALL: [Refused; 5] = [
        Refused::ServerFull,
        Refused::UserFull,
        Refused::PeerConnections,
        Refused::HostOrOrigin,
        Refused::Unauthenticated,
    ];

    fn label(self) -> &'static str {
        match self {
            Refused::ServerFull => "server_full",
            Refused::UserFull => "user_full",
            Refused::PeerConnections => "peer_connections",
            Refused::HostOrOrigin => "host_or_origin",
            Refused::Unauthenticated => "unauthenticated",
        }
    }
}

/// One server's counters. Cloning shares them.
#[derive(Clone)]
pub struct Metrics(Arc<Handles>);

/// The handles the server adds to; see [`describe`] for what each one counts.
pub struct Handles {
    recorder: PrometheusRecorder,
    pub ws_connections_opened: Counter,
    pub events_published: Counter,
    pub frames_sent: Counter,
    pub bytes_sent: Counter,
    pub slow_consumers_cut_off: Counter,
    pub resyncs: Counter,
    pub replays: Counter,
    pub replay_events: Histogram,
    pub write_seconds: Histogram,
    pub write_group_size: Histogram,
    pub publish_seconds: Histogram,
    pub rest_rate_limited: Counter,
    pub ws_rate_limited: Counter,
    /// By HTTP status class: `1xx` … `5xx`.
    http_requests: [Counter; 5],
    refused: [Counter; Refused::ALL.len()],
}

/// What the server is at the moment of a scrape.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// `desktop` or `token`.
    pub mode: &'static str,
    pub ws_connections: usize,
    /// (stream, subscribers), at most [`TOP_STREAMS`] of them.
    pub stream_subscribers: Vec<(String, usize)>,
    /// Bytes in SQLite's `-wal` file (0 when there is none).
    pub wal_bytes: u64,
    /// Presence sessions known, this server's and the others' (see `crate::presence`).
    pub presence_sessions: usize,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::ops::Deref for Metrics {
    type Target = Handles;
    fn deref(&self) -> &Handles {
        &self.0
    }
}

fn metadata() -> Metadata<'static> {
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()))
}

fn builder() -> PrometheusBuilder {
    let buckets = [
        ("pm_write_seconds", &WRITE_SECONDS[..]),
        ("pm_publish_seconds", &WRITE_SECONDS[..]),
        ("pm_write_group_size", &GROUP_SIZES[..]),
        ("pm_replay_events", &REPLAY_SIZES[..]),
    ];
    buckets
        .into_iter()
        .fold(PrometheusBuilder::new(), |builder, (name, values)| {
            builder
                .set_buckets_for_metric(Matcher::Full(name.into()), values)
                .expect("the bucket lists are not empty")
        })
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = builder().build_recorder();
        describe(&recorder);
        let counter = |name: &'static str, labels: Vec<Label>| {
            recorder.register_counter(&Key::from_parts(name, labels), &metadata())
        };
        let histogram = |name: &'static str| {
            recorder.register_histogram(&Key::from_static_name(name), &metadata())
        };
        let class =
            |c: &'static str| counter("pm_http_requests_total", vec![Label::new("class", c)]);
        let refused = Refused::ALL
            .map(|r| counter("pm_refused_total", vec![Label::new("reason", r.label())]));
        let rate_limited =
            |t: &'static str| counter("pm_rate_limited_total", vec![Label::new("transport", t)]);
        let handles = Handles {
            ws_connections_opened: counter("pm_ws_connections_opened_total", vec![]),
            events_published: counter("pm_events_published_total", vec![]),
            frames_sent: counter("pm_ws_frames_sent_total", vec![]),
            bytes_sent: counter("pm_ws_bytes_sent_total", vec![]),
            slow_consumers_cut_off: counter("pm_slow_consumers_cut_off_total", vec![]),
            resyncs: counter("pm_resyncs_total", vec![]),
            replays: counter("pm_replays_total", vec![]),
            replay_events: histogram("pm_replay_events"),
            write_seconds: histogram("pm_write_seconds"),
            write_group_size: histogram("pm_write_group_size"),
            publish_seconds: histogram("pm_publish_seconds"),
            rest_rate_limited: rate_limited("rest"),
            ws_rate_limited: rate_limited("ws"),
            http_requests: ["1xx", "2xx", "3xx", "4xx", "5xx"].map(class),
            refused,
            recorder,
        };
        Metrics(Arc::new(handles))
    }

    /// One group of writes: how many commands, and how long it took.
    pub fn write_group(&self, commands: usize, took: Duration) {
        self.write_group_size.record(commands as f64);
        self.write_seconds.record(took.as_secs_f64());
    }

    /// A REST (or upgrade) request answered with `status`.
    pub fn http_request(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.http_requests[class].increment(1);
    }

    pub fn refused(&self, why: Refused) {
        let at = Refused::ALL
            .iter()
            .position(|r| r.label() == why.label())
            .unwrap_or_default();
        self.refused[at].increment(1);
    }

    /// Folds the histograms' recent samples into their buckets. Without it, samples recorded
    /// between two scrapes are kept one by one: a server nobody scrapes would grow.
    pub fn upkeep(&self) {
        self.recorder.handle().run_upkeep();
    }

    /// The Prometheus text: the counters and histograms, then the state in `now`.
    pub fn render(&self, now: &Snapshot) -> String {
        let mut text = self.recorder.handle().render();
        let scrape = PrometheusBuilder::new().build_recorder();
        describe(&scrape);
        let gauge = |name: &'static str, labels: Vec<Label>, value: f64| {
            scrape
                .register_gauge(&Key::from_parts(name, labels), &metadata())
                .set(value);
        };
        gauge(
            "pm_ws_connections",
            vec![Label::new("mode", now.mode)],
            now.ws_connections as f64,
        );
        for (stream, subscribers) in &now.stream_subscribers {
            gauge(
                "pm_stream_subscribers",
                vec![Label::new("stream", stream.clone())],
                *subscribers as f64,
            );
        }
        gauge("pm_sqlite_wal_bytes", vec![], now.wal_bytes as f64);
        gauge("pm_presence_sessions", vec![], now.presence_sessions as f64);
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&scrape.handle().render());
        text
    }
}

/// The HELP line of every metric.
fn describe(recorder: &PrometheusRecorder) {
    use metrics::SharedString;
    let help: &[(&'static str, &'static str)] = &[
        (
            "pm_ws_connections",
            "Open WebSocket connections, by auth mode",
        ),
        (
            "pm_ws_connections_opened_total",
            "WebSocket connections accepted since start",
        ),
        (
            "pm_stream_subscribers",
            "Live subscribers of the streams with the most of them (top 10)",
        ),
        (
            "pm_events_published_total",
            "Events published to the hub after their commit",
        ),
        (
            "pm_ws_frames_sent_total",
            "Queued items (events, replies, replay chunks) written to WebSockets",
        ),
        ("pm_ws_bytes_sent_total", "Bytes written to WebSockets"),
        (
            "pm_slow_consumers_cut_off_total",
            "Connections cut off from live delivery because their queue was full",
        ),
        ("pm_resyncs_total", "ResyncRequired messages sent"),
        ("pm_replays_total", "Resumes served from the replay log"),
        ("pm_replay_events", "Events one resume replayed"),
        (
            "pm_write_seconds",
            "Duration of one group of writes (one transaction), in seconds",
        ),
        ("pm_write_group_size", "Commands in one group of writes"),
        (
            "pm_publish_seconds",
            "Delivery of one group of writes' events to the hub and answers to its callers, in seconds",
        ),
        (
            "pm_rate_limited_total",
            "Requests refused by a rate limit, by transport",
        ),
        (
            "pm_refused_total",
            "Requests or connections refused before being served, by reason",
        ),
        (
            "pm_http_requests_total",
            "HTTP requests answered, by status class",
        ),
        (
            "pm_sqlite_wal_bytes",
            "Size of the SQLite write-ahead log file, in bytes",
        ),
        (
            "pm_presence_sessions",
            "Connections present on a board (this server's and the other servers'), invisible ones included",
        ),
    ];
    for &(name, text) in help {
        recorder.describe_counter(name.into(), None, SharedString::const_str(text));
    }
}
