//! `pm-attack`: replays what an attacker tried against a live pm-server, over its public
//! protocol only, and says for each attack whether it was refused. `scripts/attack.sh` starts
//! the servers (token mode, desktop mode, a data directory on a full disk) and runs it.
//!
//! Every attack answers [`Verdict::Refused`] with what the server did instead, or
//! [`Verdict::Succeeded`] with what the attacker got.
pub mod desktop;
pub mod disk;
pub mod http;
pub mod team;

use std::future::Future;
use std::pin::Pin;

use anyhow::Result;

/// What became of one attack.
#[derive(Debug)]
pub enum Verdict {
    Refused(String),
    Succeeded(String),
}

pub fn refused(why: impl Into<String>) -> Result<Verdict> {
    Ok(Verdict::Refused(why.into()))
}

pub fn succeeded(what: impl Into<String>) -> Result<Verdict> {
    Ok(Verdict::Succeeded(what.into()))
}

/// One attack: its name (the wording) and the run.
pub struct Attack<'a> {
    pub name: &'static str,
    pub run: Pin<Box<dyn Future<Output = Result<Verdict>> + 'a>>,
}

pub fn attack<'a>(
    name: &'static str,
    run: impl Future<Output = Result<Verdict>> + 'a,
) -> Attack<'a> {
    Attack {
        name,
        run: Box::pin(run),
    }
}

/// Runs the attacks one after another, printing one line each; returns (attacks, succeeded).
/// An attack that could not be carried out at all (the tool's own error) counts as succeeded:
/// a check that did not run proves nothing.
pub async fn run_all(attacks: Vec<Attack<'_>>) -> (usize, usize) {
    let total = attacks.len();
    let mut succeeded = 0;
    for a in attacks {
        match a.run.await {
            Ok(Verdict::Refused(why)) => println!("refused    {}: {why}", a.name),
            Ok(Verdict::Succeeded(what)) => {
                succeeded += 1;
                println!("SUCCEEDED  {}: {what}", a.name);
            }
            Err(e) => {
                succeeded += 1;
                println!("NOT RUN    {}: {e:#}", a.name);
            }
        }
    }
    (total, succeeded)
}
