//! `pm completions <shell>`: a completion script on stdout.
use std::process::ExitCode;

use clap_complete::Shell;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  pm completions bash > ~/.local/share/bash-completion/completions/pm\n  \
                        pm completions zsh > ~/.zfunc/_pm\n  \
                        pm completions fish > ~/.config/fish/completions/pm.fish"
)]
pub struct CompletionsArgs {
    /// Shell to generate the script for
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn print(mut cmd: clap::Command, shell: Shell) -> ExitCode {
    let name = cmd.get_name().to_string();
    clap_complete::generate(shell, &mut cmd, name, &mut std::io::stdout());
    ExitCode::SUCCESS
}
