//! `pm-bench --url http://127.0.0.1:PORT <scenario> [options]`; see `pm-bench --help`.
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use pm_bench::{net, summary, Env, Scenario};

#[derive(Parser)]
#[command(
    name = "pm-bench",
    version,
    about = "Load generator for pm-compatible servers (WebSocket protobuf + REST only)",
    after_help = "Examples:\n  pm-bench --url http://127.0.0.1:4000 fanout -n 1000 -r 100 -d 10\n  \
                  pm-bench --url http://127.0.0.1:4000 --json out.json throughput -w 4 -n 100\n  \
                  pm-bench --url http://127.0.0.1:4000 idle -c 10000   # needs `ulimit -n` > 10100\n  \
                  pm-bench summarize results/*.json"
)]
struct Cli {
    /// The server, as http://host:port. Several servers of one database (comma-separated or
    /// repeated): the writers use the first, the subscribers are spread over the others.
    #[arg(long, env = "PM_BENCH_URL", global = true, value_delimiter = ',')]
    url: Vec<String>,
    /// The server's pid, for its memory (/proc/<pid>/status VmRSS) and CPU time; found
    /// automatically for a server listening on this machine.
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Also write the results as JSON to this file.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// A name for the server under test, kept in the JSON (`summarize` reports runs labelled
    /// `floor` as the machine's floor and runs labelled `reference` as the reference's figures,
    /// beside the goals).
    #[arg(long, global = true)]
    label: Option<String>,
    /// The server is the reference (the Blazor Agile Board's pm-server): the writer creates
    /// each project over the WebSocket, and events, which carry no seq there, are told apart by
    /// work item id and title. Detected without this flag when `/ready` reports a circuit
    /// breaker, as only the reference's does.
    #[arg(long, global = true)]
    reference: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Scenario(Scenario),
    /// Prints Markdown (the goals with the measured figures, then every run's table) from the
    /// JSON files of earlier runs.
    Summarize {
        /// JSON files written with --json.
        files: Vec<String>,
        /// What the reference column says when no file is a reference run (labelled
        /// `reference`), e.g. "reference binary not found".
        #[arg(long)]
        reference_absent: Option<String>,
    },
    /// Serves the least the live scenarios need (no database, no validation, events broadcast
    /// from memory) and prints `listening on <addr>`: run a scenario against it to measure what
    /// this machine allows before any server logic runs.
    FloorServer {
        /// Address to listen on (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
    },
    /// Prints Markdown comparing the goals of two suite runs (e.g. before and after a change).
    Compare {
        /// JSON files of the first run.
        #[arg(long, num_args = 1.., required = true)]
        before: Vec<String>,
        /// JSON files of the second run.
        #[arg(long, num_args = 1.., required = true)]
        after: Vec<String>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let scenario = match cli.command {
        Command::Summarize {
            files,
            reference_absent,
        } => {
            let runs = summary::load(&files)?;
            let absent = summary::ReferenceAbsent(reference_absent.as_deref());
            print!("{}", summary::markdown_with(&runs, absent));
            return Ok(());
        }
        Command::Compare { before, after } => {
            let (before, after) = (summary::load(&before)?, summary::load(&after)?);
            print!("{}", summary::compare(&before, &after));
            return Ok(());
        }
        Command::FloorServer { listen } => {
            // Two workers, as pm-server's runtime has on this machine's two CPUs.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            return runtime.block_on(pm_bench::floor::run(listen));
        }
        Command::Scenario(s) => s,
    };
    let url = cli
        .url
        .first()
        .cloned()
        .context("--url http://host:port (or PM_BENCH_URL) is required")?;
    let target = net::Target::parse(&url)?;
    let subscriber_targets = cli.url[1..]
        .iter()
        .map(|u| net::Target::parse(u))
        .collect::<Result<Vec<_>>>()?;
    let fd_limit = net::raise_fd_limit();
    let local = target.addr.ip().is_loopback();
    let server_pid = cli.server_pid.or_else(|| {
        local
            .then(|| net::discover_pid(target.addr.port()))
            .flatten()
    });
    if !cli.quiet {
        eprintln!(
            "pm-bench: {url}, server pid {}, fd limit {fd_limit}",
            server_pid.map_or("unknown".into(), |p| p.to_string())
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let reference = cli.reference || runtime.block_on(net::is_reference(&target))?;
    if reference && !cli.reference && !cli.quiet {
        eprintln!("pm-bench: the reference server (its /ready reports a circuit breaker)");
    }
    let env = Env {
        target,
        subscriber_targets,
        server_pid,
        verbose: !cli.quiet,
        reference,
    };
    let report = runtime.block_on(pm_bench::run(&env, &scenario))?;
    print!("{}", report.table());
    if let Some(path) = cli.json {
        let mut doc = serde_json::to_value(&report)?;
        doc["url"] = url.clone().into();
        doc["urls"] = cli.url.clone().into();
        doc["server_pid"] = server_pid.into();
        doc["command"] = recorded_command().into();
        doc["label"] = cli.label.clone().into();
        doc["reference"] = reference.into();
        doc["pm_bench_version"] = env!("CARGO_PKG_VERSION").into();
        doc["unix_time"] = pm_shared::now_secs().into();
        std::fs::write(&path, serde_json::to_vec_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    // Thousands of connections close faster by exiting than by closing each one.
    runtime.shutdown_background();
    Ok(())
}

/// This invocation as `pm-bench <scenario> <options>`: the program path, the server's address
/// and pid and the output file change from run to run, so they are left out.
fn recorded_command() -> String {
    let mut out = vec!["pm-bench".to_string()];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--url" | "--server-pid" | "--json" | "--label" => {
                args.next();
            }
            _ if a.starts_with("--url=")
                || a.starts_with("--server-pid=")
                || a.starts_with("--json=")
                || a.starts_with("--label=") => {}
            "-q" | "--quiet" => {}
            _ => out.push(a),
        }
    }
    out.join(" ")
}
