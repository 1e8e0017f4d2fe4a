//! A seconds-long run of every pm-bench scenario against a real pm-server started in-process
//! (loopback port, temporary SQLite file), so the bench cannot rot. It checks that the bench
//! works and that the server delivered every event exactly once, not how fast anything is.
use std::time::Duration;

use pm_bench::live::Op;
use pm_bench::net::Target;
use pm_bench::{
    run, Env, FanoutParams, GrowthParams, IdleParams, ResumeStormParams, Scenario,
    SlowConsumerParams, ThroughputParams,
};

async fn with_server<F, Fut>(test: F)
where
    F: FnOnce(Env) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temporary directory");
    let server = pm_server::testing::TestServer::start(dir, |config| {
        // As scripts/bench.sh does: the per-connection rate limit is policy, not capacity, and
        // a writer sends more than 1,000 requests a second.
        config.rate_limit_per_sec = 100_000_000;
        config.rate_limit_burst = 100_000_000;
    })
    .await
    .expect("start the server");
    let env = Env {
        target: Target::parse(&server.url()).expect("the server's URL"),
        subscriber_targets: Vec::new(),
        // The server runs in this process, so its memory is ours.
        server_pid: Some(std::process::id()),
        verbose: false,
        reference: false,
    };
    tokio::time::timeout(Duration::from_secs(120), test(env))
        .await
        .expect("smoke run timed out");
    server.stop().await.expect("a graceful stop");
}

fn result<'a>(report: &'a pm_bench::Report, key: &str) -> &'a serde_json::Value {
    &report.results[key]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_and_throughput_deliver_everything_once() {
    with_server(|env| async move {
        for op in [Op::Update, Op::Create] {
            let report = run(
                &env,
                &Scenario::Fanout(FanoutParams {
                    subscribers: 5,
                    rate: 50.0,
                    duration: 1.0,
                    warmup: 0.2,
                    op,
                }),
            )
            .await
            .unwrap();
            assert_eq!(result(&report, "mutations_ok"), 50, "{report:#?}");
            assert_eq!(result(&report, "mutation_errors"), 0, "{report:#?}");
            assert_eq!(result(&report, "deliveries"), 250, "{report:#?}");
            assert_eq!(result(&report, "lost"), 0, "{report:#?}");
            assert_eq!(result(&report, "duplicated"), 0, "{report:#?}");
            assert_eq!(result(&report, "seq_range_ok"), true, "{report:#?}");
            // 40 timed mutations (after the warm-up) × 5 subscribers.
            assert_eq!(report.results["fanout_latency"]["count"], 200);
            assert!(report.table().contains("fan-out latency"));
        }

        let report = run(
            &env,
            &Scenario::Throughput(ThroughputParams {
                writers: 2,
                subscribers: 3,
                duration: 1.0,
                window: 8,
                op: Op::Update,
                rounds: 2,
            }),
        )
        .await
        .unwrap();
        let ok = result(&report, "mutations_ok").as_u64().unwrap();
        assert!(ok > 0, "{report:#?}");
        assert_eq!(result(&report, "mutation_errors"), 0, "{report:#?}");
        assert_eq!(result(&report, "deliveries").as_u64(), Some(ok * 3));
        assert_eq!(result(&report, "lost"), 0);
        assert_eq!(result(&report, "duplicated"), 0);
        // Both rounds are kept, each on its own project and each checked; the median is shown.
        let runs = report.results["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 2, "{report:#?}");
        for r in runs {
            assert_eq!(r["lost"], 0, "{report:#?}");
            assert_eq!(r["mutation_errors"], 0, "{report:#?}");
        }
        assert!(report.table().contains("mutations/s per run"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_idle_and_growth_run() {
    with_server(|env| async move {
        let report = run(
            &env,
            &Scenario::SlowConsumer(SlowConsumerParams {
                subscribers: 3,
                rate: 50.0,
                duration: 1.0,
                warmup: 0.2,
                rounds: 1,
                slow_rcvbuf: 4096,
            }),
        )
        .await
        .unwrap();
        for kind in ["baseline_runs", "slow_runs"] {
            let runs = report.results[kind].as_array().unwrap();
            assert_eq!(runs.len(), 1);
            assert_eq!(runs[0]["lost"], 0, "{kind}: {report:#?}");
            assert_eq!(runs[0]["duplicated"], 0, "{kind}: {report:#?}");
            assert_eq!(runs[0]["deliveries"], 150, "{kind}: {report:#?}");
        }
        assert!(report.results["slow_runs"][0]["slow_consumer"].is_object());

        let report = run(
            &env,
            &Scenario::Idle(IdleParams {
                connections: 20,
                settle: 0.1,
                probe: true,
            }),
        )
        .await
        .unwrap();
        assert_eq!(result(&report, "connections"), 20);
        assert_eq!(report.results["probe"]["received"], 20, "{report:#?}");
        assert!(result(&report, "server_bytes_per_connection").is_number());

        let report = run(
            &env,
            &Scenario::Growth(GrowthParams {
                sizes: vec![0, 60],
                samples: 5,
                reads: 1,
                seed_connections: 2,
                seed_window: 4,
            }),
        )
        .await
        .unwrap();
        let points = report.results["points"].as_array().unwrap();
        assert_eq!(points.len(), 2);
        assert_eq!(points[0]["items_at_start"], 0);
        assert_eq!(points[1]["items_at_start"], 60);
        // Seeded up to 60, then 5 timed creates (+ 5 warm-up) at that size.
        assert_eq!(points[1]["get_work_items_count"], 60 + 10);
        assert_eq!(points[1]["control_create"]["count"], 5);
        assert_eq!(points[1]["control_update"]["count"], 5);
        assert!(report.results["ratios"].is_object());
    })
    .await;
}

/// The resume storm: every client gets exactly the events after its cursor, in order, in every
/// storm, the writer is timed in both phases, and `summarize` lists the goal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_storm_replays_everything_once() {
    with_server(|env| async move {
        let report = run(
            &env,
            &Scenario::ResumeStorm(ResumeStormParams {
                clients: 20,
                events: 50,
                duration: 1.0,
                rate: 100.0,
                warmup: 0.2,
            }),
        )
        .await
        .unwrap();
        let rounds = report.results["rounds"].as_array().unwrap().len() as u64;
        assert!(rounds >= 1, "{report:#?}");
        assert_eq!(
            result(&report, "events_received").as_u64(),
            Some(rounds * 20 * 50)
        );
        assert_eq!(
            result(&report, "expected_events").as_u64(),
            Some(rounds * 20 * 50)
        );
        for key in [
            "lost",
            "duplicated",
            "out_of_order",
            "beyond_history",
            "resyncs",
            "client_errors",
            "writer_errors",
        ] {
            assert_eq!(result(&report, key), 0, "{key}: {report:#?}");
        }
        assert!(report.results["baseline_writer"]["count"].as_u64() > Some(50));
        assert!(report.results["storm_writer"]["count"].as_u64() > Some(50));
        assert!(result(&report, "p99_ratio").is_number(), "{report:#?}");
        assert_eq!(
            report.results["replay_latency"]["count"].as_u64(),
            Some(rounds * 20)
        );

        let doc = serde_json::to_value(&report).unwrap();
        let md = pm_bench::summary::markdown(&[pm_bench::summary::Saved {
            path: "storm.json".into(),
            doc,
        }]);
        let goal = md.lines().find(|l| l.contains("resume storm")).unwrap();
        // 20 clients are not the goal's 1,000: measured, not met.
        assert!(goal.contains("20 clients × 50 events"), "{md}");
        assert!(goal.contains("| **no** |"), "{md}");
        assert!(md.contains("0 / 0 over 1 live runs"), "{md}");
    })
    .await;
}

/// The floor server answers everything the live scenarios send, delivers every event once, and
/// `summarize` keeps its figures apart from the server's (a floor throughput must never be
/// reported as the server's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_server_runs_the_live_scenarios_and_stays_out_of_the_goals() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let floor = tokio::spawn(pm_bench::floor::serve(listener));
    let env = Env {
        target: Target::parse(&format!("http://{addr}")).unwrap(),
        subscriber_targets: Vec::new(),
        server_pid: Some(std::process::id()),
        verbose: false,
        reference: false,
    };
    let mut saved = Vec::new();
    for (label, scenario) in [
        (
            "floor",
            Scenario::Fanout(FanoutParams {
                subscribers: 5,
                rate: 100.0,
                duration: 1.0,
                warmup: 0.2,
                op: Op::Update,
            }),
        ),
        (
            "floor",
            Scenario::Throughput(ThroughputParams {
                writers: 2,
                subscribers: 3,
                duration: 1.0,
                window: 8,
                op: Op::Create,
                rounds: 1,
            }),
        ),
    ] {
        let report = tokio::time::timeout(Duration::from_secs(60), run(&env, &scenario))
            .await
            .expect("floor run timed out")
            .unwrap();
        let ok = result(&report, "mutations_ok").as_u64().unwrap();
        assert!(ok > 0, "{report:#?}");
        assert_eq!(result(&report, "mutation_errors"), 0, "{report:#?}");
        assert_eq!(result(&report, "lost"), 0, "{report:#?}");
        assert_eq!(result(&report, "duplicated"), 0, "{report:#?}");
        assert_eq!(result(&report, "seq_range_ok"), true, "{report:#?}");
        let mut doc = serde_json::to_value(&report).unwrap();
        doc["label"] = label.into();
        saved.push(pm_bench::summary::Saved {
            path: format!("{label}.json"),
            doc,
        });
    }
    // What it does not answer is refused with an Error, and the connection stays usable.
    let mut ws = pm_bench::net::connect(&env.target, "floor-test", Default::default())
        .await
        .unwrap();
    let refused = pm_bench::net::rpc(
        &mut ws,
        pm_shared::proto::Payload::ListProjectsRequest(Default::default()),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(refused.contains("UNSUPPORTED"), "{refused}");
    let project = pm_bench::net::create_project(&env.target, "after")
        .await
        .unwrap();
    pm_bench::net::subscribe(&mut ws, &project).await.unwrap();
    floor.abort();

    let md = pm_bench::summary::markdown(&saved);
    // The goals table: the lines before the first scenario's table.
    let goals: Vec<&str> = md
        .split("\n### ")
        .next()
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("| "))
        .collect();
    let throughput = goals
        .iter()
        .find(|l| l.contains("sustained mutations/s"))
        .unwrap();
    let cells: Vec<&str> = throughput.split(" | ").collect();
    assert_eq!(cells[2], "not run", "{md}");
    assert!(cells[4].contains("/s ("), "{md}");
    assert!(md.contains("### throughput (floor server)"), "{md}");
    let lost = goals
        .iter()
        .find(|l| l.contains("lost / duplicated"))
        .unwrap();
    assert!(lost.contains("0 / 0 over 0 live runs"), "{md}");
}

/// Presence: every user gets its snapshot, heartbeats are not answered, and the movers' many
/// moves reach the others as at most one frame per flush (a second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_users_get_their_snapshot_and_moves_arrive_coalesced() {
    with_server(|env| async move {
        let report = run(
            &env,
            &Scenario::Presence(pm_bench::presence::PresenceParams {
                users: 30,
                duration: 2.0,
                heartbeat: 0.3,
                movers: 2,
                settle: 0.2,
            }),
        )
        .await
        .unwrap();
        assert_eq!(report.results["arrival"]["snapshots"], 30, "{report:#?}");
        let window = &report.results["window"];
        assert_eq!(window["replies"], 0, "accepted presence is not answered");
        assert_eq!(window["other"], 0, "{report:#?}");
        let sent = window["sent"].as_u64().unwrap();
        assert!(sent > 60, "the movers moved and everyone beat: {report:#?}");
        let frames = window["changes"].as_u64().unwrap() + window["snapshots"].as_u64().unwrap();
        // Two seconds of moves: each user gets about two frames, never one per move.
        assert!(
            (30..=30 * 4).contains(&frames),
            "{frames} frames: {report:#?}"
        );
    })
    .await;
}
