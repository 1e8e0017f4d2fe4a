//! `pm-attack --url http://127.0.0.1:PORT <team|desktop|disk> [options]`: replays the attacks
//! of one kind against a live server and prints one line per attack, then
//! `N attacks, M succeeded`; exits 1 when any succeeded. `scripts/attack.sh` runs them all.
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use pm_bench::attack::{self, desktop, disk, team};
use pm_bench::net;

#[derive(Parser)]
#[command(
    name = "pm-attack",
    version,
    about = "Replays known attacks against a live pm-server"
)]
struct Cli {
    /// The server, as http://host:port.
    #[arg(long, env = "PM_ATTACK_URL", global = true)]
    url: Option<String>,
    #[command(subcommand)]
    kind: Kind,
}

#[derive(Subcommand)]
enum Kind {
    /// A token-mode server: Mallory holds a token but belongs to none of Alice's projects.
    Team {
        #[arg(long)]
        alice: String,
        #[arg(long, env = "PM_ATTACK_ALICE_TOKEN", hide_env_values = true)]
        alice_token: String,
        #[arg(long)]
        mallory: String,
        #[arg(long, env = "PM_ATTACK_MALLORY_TOKEN", hide_env_values = true)]
        mallory_token: String,
    },
    /// A desktop-mode server on loopback.
    Desktop {
        /// The server's header-read timeout, in seconds.
        #[arg(long, default_value_t = 2)]
        header_timeout_secs: u64,
        /// The server's incomplete-frame timeout, in seconds.
        #[arg(long, default_value_t = 2)]
        frame_timeout_secs: u64,
        /// The server's --send-buffer-bytes.
        #[arg(long, default_value_t = 8 * 1024 * 1024)]
        send_buffer_bytes: u64,
    },
    /// A server whose data directory is on a small filesystem.
    Disk,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let url = cli.url.context("--url http://host:port is required")?;
    let target = net::Target::parse(&url)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (total, succeeded) = runtime.block_on(async {
        match &cli.kind {
            Kind::Team {
                alice,
                alice_token,
                mallory,
                mallory_token,
            } => {
                let cast = team::Cast {
                    alice: alice.clone(),
                    alice_token: alice_token.clone(),
                    mallory: mallory.clone(),
                    mallory_token: mallory_token.clone(),
                };
                attack::run_all(team::attacks(&target, &cast)).await
            }
            Kind::Desktop {
                header_timeout_secs,
                frame_timeout_secs,
                send_buffer_bytes,
            } => {
                let setup = desktop::Setup {
                    header_timeout: Duration::from_secs(*header_timeout_secs),
                    frame_timeout: Duration::from_secs(*frame_timeout_secs),
                    send_buffer_bytes: *send_buffer_bytes,
                    pid: net::discover_pid(target.addr.port()),
                };
                attack::run_all(desktop::attacks(&target, &setup)).await
            }
            Kind::Disk => attack::run_all(disk::attacks(&target)).await,
        }
    });
    println!("{total} attacks, {succeeded} succeeded");
    runtime.shutdown_background();
    if succeeded > 0 {
        std::process::exit(1);
    }
    Ok(())
}
