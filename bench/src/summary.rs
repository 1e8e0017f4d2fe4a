//! `pm-bench summarize`: turns the JSON files of a suite run into Markdown: the goals with the
//! measured figure next to each, then every scenario's table. Runs labelled `floor` (the floor
//! server) and `reference` (the reference's own server) are kept apart from pm's and shown in
//! columns of their own beside each goal, the reference with the ratio pm / reference.
use anyhow::{Context, Result};
use serde_json::{json, Value};

const STORM_GOAL: &str = "resume storm: writer p99, 1,000 clients resuming 1,000 events each";

/// One saved run of a scenario (what `--json` writes).
pub struct Saved {
    pub path: String,
    pub doc: Value,
}

pub fn load(paths: &[String]) -> Result<Vec<Saved>> {
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {p}"))?;
            let doc = serde_json::from_str(&text).with_context(|| format!("parsing {p}"))?;
            Ok(Saved {
                path: p.clone(),
                doc,
            })
        })
        .collect()
}

fn of<'a>(runs: &'a [&'a Saved], scenario: &str) -> impl Iterator<Item = &'a Value> {
    let scenario = scenario.to_string();
    runs.iter()
        .map(|s| &s.doc)
        .filter(move |d| d["scenario"] == scenario.as_str())
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// How busy the machine was during a live run: "CPU-s used: server 9.5, pm-bench 7.8, other
/// processes 0.1, stolen by the hypervisor 0.0, of 20 available".
fn noise(results: &Value) -> String {
    let cpu = &results["cpu"];
    let cpus = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
    match (
        f(&cpu["server_cpu_secs"]),
        f(&cpu["bench_cpu_secs"]),
        f(&cpu["other_cpu_secs"]),
        f(&cpu["wall_secs"]),
    ) {
        (Some(server), Some(bench), Some(other), Some(wall)) => {
            // Older result files have no stolen time.
            let stolen = f(&cpu["stolen_cpu_secs"]).map_or(String::new(), |s| {
                format!(", stolen by the hypervisor {s:.1}")
            });
            format!(
                "; CPU-s used: server {server:.1}, pm-bench {bench:.1}, other processes \
                 {other:.1}{stolen}, of {:.0} available",
                wall * cpus
            )
        }
        _ => String::new(),
    }
}

struct Goal {
    name: &'static str,
    target: &'static str,
    measured: String,
    met: Option<bool>,
    /// The one number two servers are compared by, and what it is (for the ratio's cell).
    figure: Option<(f64, String)>,
}

/// A row with no target: measured for comparison only.
const NO_TARGET: &str = "—";

fn met_cell(g: &Goal) -> &'static str {
    match g.met {
        Some(true) => "yes",
        Some(false) => "**no**",
        None if g.target == NO_TARGET => "—",
        None => "?",
    }
}

fn goals(runs: &[&Saved]) -> Vec<Goal> {
    let mut out = Vec::new();

    // Fan-out: the runs with the most subscribers at 100/s (ideally 1,000); of several such
    // runs (scripts/bench.sh makes three, alternating with the floor's), the median by p99.
    let rate_100: Vec<&Value> = of(runs, "fanout")
        .filter(|d| f(&d["params"]["rate"]) == Some(100.0))
        .collect();
    let most = rate_100
        .iter()
        .filter_map(|d| d["params"]["subscribers"].as_u64())
        .max();
    let p99_of = |d: &Value| f(&d["results"]["fanout_latency"]["p99_ms"]).unwrap_or(f64::NAN);
    let mut widest: Vec<&Value> = rate_100
        .into_iter()
        .filter(|d| d["params"]["subscribers"].as_u64() == most)
        .collect();
    widest.sort_by(|a, b| p99_of(a).total_cmp(&p99_of(b)));
    let runs_of_fan = widest.len();
    let fan = widest.get(runs_of_fan / 2).copied();
    out.push(match fan {
        Some(d) => {
            let p99 = f(&d["results"]["fanout_latency"]["p99_ms"]).unwrap_or(f64::NAN);
            Goal {
                name: "fan-out p99, 1,000 subscribers at 100 mutations/s",
                target: "< 5 ms",
                measured: format!(
                    "{p99:.2} ms ({}{} subscribers; p50 {:.2} ms, max {:.2} ms{})",
                    if runs_of_fan > 1 {
                        format!("median of {runs_of_fan} runs by p99; ")
                    } else {
                        String::new()
                    },
                    d["params"]["subscribers"],
                    f(&d["results"]["fanout_latency"]["p50_ms"]).unwrap_or(f64::NAN),
                    f(&d["results"]["fanout_latency"]["max_ms"]).unwrap_or(f64::NAN),
                    noise(&d["results"])
                ),
                met: Some(p99 < 5.0 && d["params"]["subscribers"].as_u64() >= Some(1000)),
                figure: Some((p99, "fan-out p99".into())),
            }
        }
        None => missing(
            "fan-out p99, 1,000 subscribers at 100 mutations/s",
            "< 5 ms",
        ),
    });

    // The goal is measured by updates, or by creates when no update run was made. Creates
    // (another row) are measured for the comparison.
    let is_create = |d: &&Value| d["params"]["op"] == "create";
    let any_updates = of(runs, "throughput").any(|d| !is_create(&d));
    let thr = of(runs, "throughput")
        .filter(|d| !(any_updates && is_create(d)))
        .max_by(|a, b| {
            f(&a["results"]["mutations_per_sec"])
                .unwrap_or(0.0)
                .total_cmp(&f(&b["results"]["mutations_per_sec"]).unwrap_or(0.0))
        });
    out.push(match thr {
        Some(d) => {
            let m = f(&d["results"]["mutations_per_sec"]).unwrap_or(0.0);
            Goal {
                name: "sustained mutations/s with 100 subscribers",
                target: ">= 10,000/s",
                measured: throughput_cell(d),
                met: Some(m >= 10_000.0),
                figure: Some((
                    m,
                    if is_create(&d) {
                        "creates/s"
                    } else {
                        "updates/s"
                    }
                    .into(),
                )),
            }
        }
        None => missing("sustained mutations/s with 100 subscribers", ">= 10,000/s"),
    });
    let creates = of(runs, "throughput").filter(is_create).max_by(|a, b| {
        f(&a["results"]["mutations_per_sec"])
            .unwrap_or(0.0)
            .total_cmp(&f(&b["results"]["mutations_per_sec"]).unwrap_or(0.0))
    });
    out.push(match creates {
        Some(d) => Goal {
            name: CREATES,
            target: NO_TARGET,
            measured: throughput_cell(d),
            met: None,
            figure: f(&d["results"]["mutations_per_sec"]).map(|m| (m, "creates/s".into())),
        },
        None => missing(CREATES, NO_TARGET),
    });

    let idle = of(runs, "idle").max_by_key(|d| d["results"]["connections"].as_u64());
    out.push(match idle {
        Some(d) => match f(&d["results"]["server_bytes_per_connection"]) {
            Some(b) => Goal {
                name: "server memory per idle connection",
                target: "<= 10 KiB",
                measured: format!(
                    "{:.2} KiB ({} connections)",
                    b / 1024.0,
                    d["results"]["connections"]
                ),
                met: Some(b <= 10.0 * 1024.0),
                figure: Some((b, "memory per connection".into())),
            },
            None => Goal {
                name: "server memory per idle connection",
                target: "<= 10 KiB",
                measured: "no server pid: memory not measured".into(),
                met: None,
                figure: None,
            },
        },
        None => missing("server memory per idle connection", "<= 10 KiB"),
    });

    let slow = of(runs, "slow-consumer").next();
    out.push(match slow {
        Some(d) => {
            let change = f(&d["results"]["p99_change_percent"]).unwrap_or(f64::NAN);
            // A p99 over the events that arrived says nothing of those that did not.
            let slow_runs = d["results"]["slow_runs"].as_array();
            let sum = |key: &str| {
                slow_runs
                    .into_iter()
                    .flatten()
                    .map(|r| r[key].as_u64().unwrap_or(0))
                    .sum::<u64>()
            };
            let (lost, expected) = (sum("lost"), sum("expected_deliveries"));
            let losses = if lost > 0 {
                format!("; with the slow consumer the others lost {lost} of {expected} events")
            } else {
                String::new()
            };
            Goal {
                name: "others' p99 with one slow consumer",
                target: "changes < 10 %",
                measured: format!(
                    "{change:+.1} % (median of {} rounds; {:.2} ms → {:.2} ms; {} subscribers at \
                     {}/s{losses})",
                    d["params"]["rounds"],
                    f(&d["results"]["baseline_p99_ms"]).unwrap_or(f64::NAN),
                    f(&d["results"]["slow_p99_ms"]).unwrap_or(f64::NAN),
                    d["params"]["subscribers"],
                    d["params"]["rate"]
                ),
                met: Some(change.abs() < 10.0 && lost == 0),
                figure: f(&d["results"]["slow_p99_ms"])
                    .map(|p| (p, "others' p99 with the slow consumer".into())),
            }
        }
        None => missing("others' p99 with one slow consumer", "changes < 10 %"),
    });

    out.extend(board_goals(runs));

    let growth = of(runs, "growth").next();
    out.push(match growth.map(|d| &d["results"]["ratios"]) {
        Some(r) if r.is_object() => {
            let c = f(&r["create_p50"]).unwrap_or(f64::NAN);
            let u = f(&r["update_p50"]).unwrap_or(f64::NAN);
            let slowdown = format!("create p50 slowdown at {} items", r["size"]);
            Goal {
                name: "create/update latency, 50,000 items vs empty",
                target: "<= 1.2x",
                measured: format!(
                    "create ×{c:.2}, update ×{u:.2} (p50; p99 ×{} / ×{}) at {} items, \
                     against an empty project measured interleaved",
                    r["create_p99"], r["update_p99"], r["size"]
                ),
                met: Some(c <= 1.2 && u <= 1.2),
                figure: Some((c, slowdown)),
            }
        }
        _ => missing("create/update latency, 50,000 items vs empty", "<= 1.2x"),
    });

    // The write side under a reconnect storm: the run with the most clients.
    let storm = of(runs, "resume-storm").max_by_key(|d| d["results"]["clients"].as_u64());
    out.push(match storm {
        Some(d) => {
            let r = &d["results"];
            let ratio = f(&r["p99_ratio"]).unwrap_or(f64::NAN);
            let clients = r["clients"].as_u64().unwrap_or(0);
            let events = r["events"].as_u64().unwrap_or(0);
            Goal {
                name: STORM_GOAL,
                target: "<= 2x baseline",
                measured: format!(
                    "×{ratio:.2} (p99 {:.2} → {:.2} ms, max {:.2} → {:.2} ms; {clients} clients × \
                     {events} events, {} storms, replay p50 {:.0} ms, p99 {:.0} ms; writer at {}/s{})",
                    f(&r["baseline_writer"]["p99_ms"]).unwrap_or(f64::NAN),
                    f(&r["storm_writer"]["p99_ms"]).unwrap_or(f64::NAN),
                    f(&r["baseline_writer"]["max_ms"]).unwrap_or(f64::NAN),
                    f(&r["storm_writer"]["max_ms"]).unwrap_or(f64::NAN),
                    r["rounds"].as_array().map_or(0, Vec::len),
                    f(&r["replay_latency"]["p50_ms"]).unwrap_or(f64::NAN),
                    f(&r["replay_latency"]["p99_ms"]).unwrap_or(f64::NAN),
                    d["params"]["rate"],
                    noise(&json!({ "cpu": r["cpu_storm"] }))
                ),
                met: Some(ratio <= 2.0 && clients >= 1000 && events >= 1000),
                figure: None,
            }
        }
        None => missing(STORM_GOAL, "<= 2x baseline"),
    });

    // Correctness of every live run.
    let mut lost = 0u64;
    let mut dup = 0u64;
    let mut live = 0;
    for d in runs.iter().map(|s| &s.doc) {
        let mut add = |r: &Value| {
            lost += r["lost"].as_u64().unwrap_or(0);
            dup += r["duplicated"].as_u64().unwrap_or(0);
            live += 1;
        };
        match d["scenario"].as_str() {
            Some("throughput") if d["results"]["runs"].is_array() => {
                for r in d["results"]["runs"].as_array().into_iter().flatten() {
                    add(r);
                }
            }
            Some("fanout" | "throughput" | "resume-storm") => add(&d["results"]),
            Some("slow-consumer") => {
                for k in ["baseline_runs", "slow_runs"] {
                    for r in d["results"][k].as_array().into_iter().flatten() {
                        add(r);
                    }
                }
            }
            _ => {}
        }
    }
    out.push(Goal {
        name: LOST,
        target: "0 / 0",
        measured: format!("{lost} / {dup} over {live} live runs"),
        met: Some(live > 0 && lost == 0 && dup == 0),
        figure: None,
    });
    out
}

const BOARD_OPEN: &str = "`pm board` on 50,000 items: first screen, memory";
const BOARD_KEYS: &str = "`pm board` with 5,000 cards: key to screen";

/// The board's goals, from `scripts/bench-board.py`'s run (scenario `board`): the real `pm
/// board` in tmux.
fn board_goals(runs: &[&Saved]) -> Vec<Goal> {
    let Some(d) = of(runs, "board").next() else {
        return vec![
            missing(BOARD_OPEN, "< 1 s, < 100 MB resident"),
            missing(BOARD_KEYS, NO_TARGET),
        ];
    };
    let r = &d["results"];
    let num = |k: &str| f(&r[k]).unwrap_or(f64::NAN);
    let (first, hwm, rss) = (
        num("start_to_first_screen_ms"),
        num("vm_hwm_mib"),
        num("vm_rss_mib"),
    );
    let whole = f(&r["whole_loaded_ms"]).map_or(String::new(), |w| {
        format!("; the whole project loaded at {w:.0} ms")
    });
    vec![
        Goal {
            name: BOARD_OPEN,
            target: "< 1 s, < 100 MB resident",
            measured: format!(
                "first screen {first:.0} ms{whole}; peak {hwm:.1} MiB, {rss:.1} MiB after (VmHWM / \
                 VmRSS; {} items, median of {} runs)",
                r["items"], d["params"]["runs"]
            ),
            met: Some(first < 1000.0 && hwm < 100.0 && r["items"].as_u64() >= Some(50_000)),
            figure: Some((first, "ms to the first screen".into())),
        },
        Goal {
            name: BOARD_KEYS,
            target: NO_TARGET,
            measured: format!(
                "j / k (next / previous card) {:.1} ms, L / H (card to the next / previous \
                 lane) {:.1} ms ({} cards; tmux's own floor, 20 cards: {:.1} / {:.1} ms)",
                num("next_card_ms"),
                num("move_card_ms"),
                r["keys_items"],
                num("floor_next_card_ms"),
                num("floor_move_card_ms")
            ),
            met: None,
            figure: None,
        },
    ]
}

const CREATES: &str = "sustained creates/s with 100 subscribers";
const LOST: &str = "lost / duplicated events (checked by seq)";

/// A throughput run: its rate, what ran and, when any failed, how many mutations did.
fn throughput_cell(d: &Value) -> String {
    let r = &d["results"];
    let errors = r["mutation_errors"].as_u64().unwrap_or(0);
    let failed = if errors > 0 {
        let sent = r["mutations_sent"].as_u64().unwrap_or(0).max(1);
        format!(
            "; {errors} of {sent} failed ({:.0} %): {}",
            errors as f64 * 100.0 / sent as f64,
            r["first_error"].as_str().unwrap_or("?")
        )
    } else {
        String::new()
    };
    format!(
        "{:.0}/s ({} writers, {} subscribers, {:.0} deliveries/s{failed}{})",
        f(&r["mutations_per_sec"]).unwrap_or(0.0),
        d["params"]["writers"],
        d["params"]["subscribers"],
        f(&r["deliveries_per_sec"]).unwrap_or(0.0),
        noise(r)
    )
}

fn missing(name: &'static str, target: &'static str) -> Goal {
    Goal {
        name,
        target,
        measured: "not run".into(),
        met: None,
        figure: None,
    }
}

/// Runs against `pm-bench floor-server` (labelled `floor`) measure the machine, not a server:
/// they are kept apart from the server's figures and shown beside them.
fn is_floor(s: &Saved) -> bool {
    s.doc["label"] == "floor"
}

/// Runs against the reference's own server (labelled `reference`): shown beside pm's, never
/// counted as pm's.
fn is_reference(s: &Saved) -> bool {
    s.doc["label"] == "reference"
}

fn split(runs: &[Saved]) -> (Vec<&Saved>, Vec<&Saved>) {
    runs.iter()
        .filter(|s| !is_reference(s))
        .partition(|s| !is_floor(s))
}

/// The goals set against the floor server's figures from the same run: pm's fan-out p99 to
/// 1,000 subscribers at most 1.25× the floor's, its updates/s with 100 subscribers at least
/// 0.9× the floor's. Empty without floor runs.
fn floor_ratios(server: &[Goal], floor: &[Goal]) -> String {
    // (goal's index in `goals`, what, target, the most (true) or the least the ratio may be,
    // the figure's unit)
    let rows = [
        (0, "fan-out p99, 1,000 subscribers", 1.25, true, " ms"),
        (1, "sustained updates/s, 100 subscribers", 0.9, false, "/s"),
    ];
    let mut md = String::new();
    for (i, what, target, at_most, unit) in rows {
        let (Some(g), Some(fl)) = (server.get(i), floor.get(i)) else {
            continue;
        };
        let (Some((pm, _)), Some((base, _))) = (&g.figure, &fl.figure) else {
            continue;
        };
        if md.is_empty() {
            md.push_str(
                "\n**Against the floor** (the floor server's runs beside pm's, from the same \
                 suite):\n\n| goal | target | pm | floor | pm / floor | met |\n\
                 |---|---|---|---|---|---|\n",
            );
        }
        let ratio = pm / base;
        let met = if at_most {
            ratio <= target
        } else {
            ratio >= target
        };
        md.push_str(&format!(
            "| {what} | {} {target}× the floor's | {}{unit} | {}{unit} | ×{ratio:.2} | {} |\n",
            if at_most { "at most" } else { "at least" },
            figure(*pm),
            figure(*base),
            if met { "yes" } else { "**no**" },
        ));
    }
    md
}

/// A figure as the tables print it: whole above 100 (updates/s), else two decimals (ms).
fn figure(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// What the reference column says for a goal without a reference run, when the suite ran no
/// reference at all (e.g. "reference binary not found").
pub struct ReferenceAbsent<'a>(pub Option<&'a str>);

/// Markdown: the goals table (with the floor runs' and the reference runs' figures beside the
/// server's), then each run's table.
pub fn markdown(runs: &[Saved]) -> String {
    markdown_with(runs, ReferenceAbsent(None))
}

/// [`markdown`], saying `absent` in the reference column when there are no reference runs.
pub fn markdown_with(runs: &[Saved], absent: ReferenceAbsent<'_>) -> String {
    let (server, floor) = split(runs);
    let reference: Vec<&Saved> = runs.iter().filter(|s| is_reference(s)).collect();
    let server_goals = goals(&server);
    let floor_goals = goals(&floor);
    let reference_goals = goals(&reference);
    let against_floor = floor_ratios(&server_goals, &floor_goals);
    let mut md = String::new();
    md.push_str(
        "| goal | target | measured | met | machine floor (`pm-bench floor-server`) \
         | reference (`bab-pm-server`) | pm / reference |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for ((g, fl), rf) in server_goals.iter().zip(&floor_goals).zip(&reference_goals) {
        let floor_cell = match fl.measured.as_str() {
            "not run" => "—".to_string(),
            _ if g.name.starts_with("lost") => "—".to_string(),
            m => m.to_string(),
        };
        let (reference_cell, ratio_cell) = reference_cells(g, rf, &reference, &absent);
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            g.name,
            g.target,
            g.measured,
            met_cell(g),
            floor_cell,
            reference_cell,
            ratio_cell
        ));
    }
    md.push_str(&against_floor);
    for s in server.iter().chain(&floor).chain(&reference) {
        let d = &s.doc;
        md.push_str(&format!(
            "\n### {}{} `{}`\n\n",
            d["scenario"].as_str().unwrap_or("?"),
            if is_floor(s) {
                " (floor server)"
            } else if is_reference(s) {
                " (reference server)"
            } else {
                ""
            },
            d["params"]
        ));
        md.push_str(&format!(
            "`{}`\n\n| metric | value |\n|---|---|\n",
            d["command"].as_str().unwrap_or(&s.path)
        ));
        for row in d["table"].as_array().into_iter().flatten() {
            md.push_str(&format!(
                "| {} | {} |\n",
                row[0].as_str().unwrap_or(""),
                row[1].as_str().unwrap_or("").replace('|', "\\|")
            ));
        }
    }
    md
}

/// The reference's figure for goal `g` (as `rf`, measured on `reference`) and the ratio
/// pm / reference.
fn reference_cells(
    g: &Goal,
    rf: &Goal,
    reference: &[&Saved],
    absent: &ReferenceAbsent<'_>,
) -> (String, String) {
    if reference.is_empty() {
        return (absent.0.unwrap_or("not run").to_string(), "—".into());
    }
    if g.name == STORM_GOAL {
        return (
            "does not apply: the reference's events have no seq and it keeps no history, so \
             nothing can be resumed"
                .into(),
            "—".into(),
        );
    }
    if g.name == BOARD_OPEN || g.name == BOARD_KEYS {
        return (
            "does not apply: the reference has no terminal board".into(),
            "—".into(),
        );
    }
    if g.name == LOST {
        // The reference's events carry no seq: they are told apart by work item id and title.
        return (
            format!("{} (told apart by work item id + title)", rf.measured),
            "—".into(),
        );
    }
    let ratio = match (&g.figure, &rf.figure) {
        (Some((pm, what)), Some((r, reference_what))) if *r > 0.0 && pm.is_finite() => {
            if what == reference_what {
                format!("×{} ({what})", ratio_digits(pm / r))
            } else {
                format!(
                    "×{} (pm's {what} / the reference's {reference_what})",
                    ratio_digits(pm / r)
                )
            }
        }
        _ => "—".into(),
    };
    (rf.measured.clone(), ratio)
}

/// Two significant digits, at least two decimals below 1 (0.042, 0.42, 4.7, 47).
fn ratio_digits(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.0}")
    } else if x >= 1.0 {
        format!("{x:.1}")
    } else if x >= 0.1 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// Markdown: each goal measured by two suite runs side by side.
pub fn compare(before: &[Saved], after: &[Saved]) -> String {
    let mut md =
        String::from("| goal | target | before | after | met after |\n|---|---|---|---|---|\n");
    let (before, after) = (split(before).0, split(after).0);
    for (b, a) in goals(&before).into_iter().zip(goals(&after)) {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            a.name,
            a.target,
            b.measured,
            a.measured,
            met_cell(&a)
        ));
    }
    md
}
