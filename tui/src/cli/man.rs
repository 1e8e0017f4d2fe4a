//! `pm man --dir <DIR>` (hidden): the man pages of `pm` and of each subcommand (`pm.1`,
//! `pm-work-item-update.1`, …), generated from the clap definitions, so they say exactly what
//! `--help` says. `scripts/install.sh` installs them.
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Directory to write the pages into (created when missing)
    #[arg(long)]
    pub dir: PathBuf,
}

pub fn write(cmd: clap::Command, args: &ManArgs) -> ExitCode {
    let written =
        std::fs::create_dir_all(&args.dir).and_then(|()| clap_mangen::generate_to(cmd, &args.dir));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "Error: cannot write the man pages into {}: {e}",
                args.dir.display()
            );
            ExitCode::FAILURE
        }
    }
}
