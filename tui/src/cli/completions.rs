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

/// The script is built in memory and written like every other output, so a reader that goes
/// away (`pm completions bash | head -1`) ends pm quietly instead of panicking in
/// clap_complete's writer.
pub fn print(mut cmd: clap::Command, shell: Shell) -> ExitCode {
    let name = cmd.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut script);
    super::print_text(String::from_utf8_lossy(&script).trim_end().to_string())
}
