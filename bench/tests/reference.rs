//! pm-bench against the reference (the Blazor Agile Board's pm-server), whose events carry no
//! seq: how its events are told apart (unit tests, always run), and a tiny fan-out against the
//! reference's own binary when it is there (`../shared/reference/bin/bab-pm-server` beside the
//! repository, or `PM_BENCH_REFERENCE`); without it that test says so and passes.
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pm_bench::live::{current_version, Identity, Op, Run, SubStats};
use pm_bench::net::Target;
use pm_bench::summary::{markdown_with, ReferenceAbsent, Saved};
use pm_bench::{run, Env, FanoutParams, Scenario};
use pm_shared::proto::{self, Payload, WebSocketMessage};
use prost::Message as _;

const PROJECT: &str = "7f000000-0000-4000-8000-000000000001";
const ITEM: &str = "7f000000-0000-4000-8000-0000000000aa";

/// A WorkItemUpdated event as the reference sends it: no seq, epoch or stream.
fn updated(project: &str, item: &str, title: &str) -> Vec<u8> {
    WebSocketMessage {
        message_id: uuid::Uuid::new_v4().to_string(),
        timestamp: 1_700_000_000,
        payload: Some(Payload::WorkItemUpdated(proto::WorkItemUpdated {
            work_item: Some(proto::WorkItem {
                id: item.into(),
                project_id: project.into(),
                title: title.into(),
                description: Some("d".repeat(100)),
                version: 3,
                ..Default::default()
            }),
            changes: Vec::new(),
            user_id: "u".into(),
        })),
        ..Default::default()
    }
    .encode_to_vec()
}

fn created(project: &str, item: &str, title: &str) -> Vec<u8> {
    WebSocketMessage {
        message_id: uuid::Uuid::new_v4().to_string(),
        payload: Some(Payload::WorkItemCreated(proto::WorkItemCreated {
            work_item: Some(proto::WorkItem {
                id: item.into(),
                project_id: project.into(),
                title: title.into(),
                ..Default::default()
            }),
            user_id: "u".into(),
            ..Default::default()
        })),
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn events_without_seq_are_told_apart_by_item_id_and_title() {
    let run = Run::identified(
        PROJECT.into(),
        16,
        1,
        Identity::Title {
            items: vec![ITEM.into()],
        },
    );
    for k in 0..4 {
        run.log.mark(k);
    }
    let mut s = SubStats::default();
    let frames = [
        updated(PROJECT, ITEM, "b-0"),
        updated(PROJECT, ITEM, "b-1"),
        // The same event again: a duplicate.
        updated(PROJECT, ITEM, "b-1"),
        // Not the run's: another project, another item, a title the bench did not set, a
        // mutation number beyond the run.
        updated("another project", ITEM, "b-2"),
        updated(PROJECT, "another item", "b-2"),
        updated(PROJECT, ITEM, "title"),
        updated(PROJECT, ITEM, "b-99"),
        // ActivityLogCreated comes with every mutation and is no event of the run.
        WebSocketMessage {
            payload: Some(Payload::ActivityLogCreated(proto::ActivityLogCreated {
                entry: Some(proto::ActivityLogEntry::default()),
            })),
            ..Default::default()
        }
        .encode_to_vec(),
        updated(PROJECT, ITEM, "b-3"),
    ];
    for (i, f) in frames.iter().enumerate() {
        s.on_frame(f, 1_000_000 * (i as u64 + 10), &run);
    }
    assert_eq!(s.events, 4, "{s:?}");
    assert_eq!(s.distinct, 3, "{s:?}");
    assert_eq!(s.dups, 1, "{s:?}");
    assert_eq!(s.other, 4, "{s:?}");
    assert_eq!(s.activity, 1, "{s:?}");
    assert!(s.saw(0) && s.saw(1) && s.saw(3) && !s.saw(2), "{s:?}");
    // Mutation 2 succeeded but never arrived; 0 is before the timed part (measure_from 1).
    assert_eq!(s.lost_of(&[0, 1, 2, 3]), 1);
    assert_eq!(s.lost_of(&[0, 1, 3]), 0);
    assert_eq!(
        s.latencies.len(),
        2,
        "only the first receipt of a timed event is timed"
    );

    // Created items each have an id of their own: any id in the run's project counts.
    let run = Run::identified(PROJECT.into(), 8, 0, Identity::Title { items: Vec::new() });
    let mut s = SubStats::default();
    s.on_frame(&created(PROJECT, "a", "b-0"), 1, &run);
    s.on_frame(&created(PROJECT, "b", "b-1"), 2, &run);
    s.on_frame(&created(PROJECT, "b", "b-1"), 3, &run);
    s.on_frame(&created("elsewhere", "c", "b-2"), 4, &run);
    assert_eq!(
        (s.events, s.distinct, s.dups, s.other),
        (3, 2, 1, 1),
        "{s:?}"
    );

    // By seq (pm), the same frames without a seq are nobody's events.
    let run = Run::new(PROJECT.into(), 8, 0);
    let mut s = SubStats::default();
    s.on_frame(&updated(PROJECT, ITEM, "b-0"), 1, &run);
    assert_eq!((s.events, s.other), (0, 1));
}

#[test]
fn a_conflict_names_the_current_version() {
    assert_eq!(
        current_version("Conflict: resource was modified (current version: 17)"),
        Some(17)
    );
    assert_eq!(current_version("database is locked"), None);
}

fn saved(label: &str, scenario: &str, results: serde_json::Value) -> Saved {
    Saved {
        path: format!("{label}-{scenario}.json"),
        doc: serde_json::json!({
            "scenario": scenario,
            "label": label,
            "params": { "writers": 4, "subscribers": 100, "op": "update" },
            "results": results,
            "table": [],
        }),
    }
}

/// The goals table has the reference's figure and the ratio beside pm's, or says why not.
#[test]
fn summarize_puts_the_reference_beside_each_goal() {
    let throughput = |rate: f64| {
        serde_json::json!({ "mutations_per_sec": rate, "deliveries_per_sec": rate * 100.0,
                            "lost": 0, "duplicated": 0 })
    };
    let runs = vec![
        saved("pm", "throughput", throughput(15_000.0)),
        saved("reference", "throughput", throughput(1_500.0)),
    ];
    let md = markdown_with(&runs, ReferenceAbsent(None));
    let row = md
        .lines()
        .find(|l| l.contains("sustained mutations/s"))
        .unwrap();
    let cells: Vec<&str> = row.split(" | ").collect();
    assert!(cells[2].starts_with("15000/s"), "{md}");
    assert!(cells[5].starts_with("1500/s"), "{md}");
    assert!(cells[6].starts_with("×10 (updates/s)"), "{md}");
    assert!(md.contains("### throughput (reference server)"), "{md}");
    let storm = md.lines().find(|l| l.contains("resume storm")).unwrap();
    assert!(storm.contains("does not apply"), "{md}");
    // The reference's runs are never pm's: its lost/duplicated count stands apart.
    let lost = md
        .lines()
        .find(|l| l.contains("lost / duplicated"))
        .unwrap();
    assert!(lost.contains("| 0 / 0 over 1 live runs | yes |"), "{md}");
    assert!(lost.contains("work item id + title"), "{md}");

    let md = markdown_with(
        &runs[..1],
        ReferenceAbsent(Some("reference binary not found")),
    );
    let row = md
        .lines()
        .find(|l| l.contains("sustained mutations/s"))
        .unwrap();
    assert!(row.contains("| reference binary not found | — |"), "{md}");
}

/// The reference's server binary, if this checkout has one beside it.
fn reference_binary() -> Option<PathBuf> {
    let path = match std::env::var_os("PM_BENCH_REFERENCE") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/reference/bin/bab-pm-server"),
    };
    path.is_file().then_some(path)
}

/// The reference's server, stopped when dropped.
struct Reference {
    child: Child,
    _home: tempfile::TempDir,
    port: u16,
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts it as its README says: its own HOME and working directory outside any checkout (it
/// keeps its database in $HOME/.pm), port 0, the port read from $HOME/.pm/server.json.
fn start_reference(binary: &PathBuf) -> Reference {
    let home = tempfile::tempdir().expect("a temporary HOME");
    let child = Command::new(binary)
        .current_dir(home.path())
        .env("HOME", home.path())
        .env("PM_SERVER_HOST", "127.0.0.1")
        .env("PM_SERVER_PORT", "0")
        .env("PM_LOG_LEVEL", "warn")
        .env("PM_RATE_LIMIT_MAX_REQUESTS", "10000")
        .env("PM_RATE_LIMIT_WINDOW_SECS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the reference");
    let mut reference = Reference {
        child,
        _home: home,
        port: 0,
    };
    let port_file = reference._home.path().join(".pm/server.json");
    let started = Instant::now();
    while reference.port == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the reference wrote no {}",
            port_file.display()
        );
        if let Ok(text) = std::fs::read_to_string(&port_file) {
            if let Ok(info) = serde_json::from_str::<serde_json::Value>(&text) {
                reference.port = info["port"].as_u64().unwrap_or(0) as u16;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reference
}

/// A tiny fan-out against the reference itself: detected as the reference, every event to
/// every subscriber exactly once, told apart by item id and title.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_fanout_against_the_reference() {
    let Some(binary) = reference_binary() else {
        println!(
            "skipped: no reference binary (../shared/reference/bin/bab-pm-server beside the \
             repository, or PM_BENCH_REFERENCE)"
        );
        return;
    };
    let reference = start_reference(&binary);
    let target = Target::parse(&format!("http://127.0.0.1:{}", reference.port)).unwrap();
    assert!(pm_bench::net::is_reference(&target).await.unwrap());
    let env = Env {
        target,
        subscriber_targets: Vec::new(),
        server_pid: Some(reference.child.id()),
        verbose: false,
        reference: true,
    };
    for op in [Op::Update, Op::Create] {
        let report = tokio::time::timeout(
            Duration::from_secs(60),
            run(
                &env,
                &Scenario::Fanout(FanoutParams {
                    subscribers: 5,
                    rate: 50.0,
                    duration: 1.0,
                    warmup: 0.2,
                    op,
                }),
            ),
        )
        .await
        .expect("the fan-out timed out")
        .unwrap();
        let r = &report.results;
        assert_eq!(r["mutations_ok"], 50, "{report:#?}");
        assert_eq!(r["mutation_errors"], 0, "{report:#?}");
        assert_eq!(r["deliveries"], 250, "{report:#?}");
        assert_eq!(r["lost"], 0, "{report:#?}");
        assert_eq!(r["duplicated"], 0, "{report:#?}");
        assert_eq!(r["identified_by"], "work item id + title", "{report:#?}");
        assert!(r["seq_range_ok"].is_null(), "{report:#?}");
        assert_eq!(r["fanout_latency"]["count"], 200, "{report:#?}");
    }
    // pm's own server is not taken for the reference.
    let dir = tempfile::tempdir().unwrap();
    let pm = pm_server::testing::TestServer::start(dir, |_| {})
        .await
        .unwrap();
    let pm_target = Target::parse(&pm.url()).unwrap();
    assert!(!pm_bench::net::is_reference(&pm_target).await.unwrap());
    pm.stop().await.unwrap();
}
