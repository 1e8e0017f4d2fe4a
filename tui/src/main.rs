//! `pm`: the command-line client of pm-server (and, with `pm board`, its terminal board).
//!
//! `main` parses the command line and dispatches; each resource's subcommands live in their
//! own module under `cli/`.
mod board;
mod cli;
mod width;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use cli::GlobalArgs;

const EXAMPLES: &str = "\
Examples:
  pm project create --title \"Platform\" --key PM
  pm work-item create --project-id PM --type task --title \"Test\"
  pm work-item list PM --format table
  pm work-item update PM-1 --status in_progress --expected-version 1
  pm --server http://127.0.0.1:8000 project list --pretty
  pm work-item get PM-1 --output-toml pm-1.toml   (edit it, then:)
  pm work-item update PM-1 --from-toml pm-1.toml --expected-version 2
  pm init                                          (.pm/: config template, .gitignore, agent skill)

The server is found through --server, else $PM_SERVER, else the port file server.json that
pm-server writes into its data directory ($PM_DATA_DIR, else <git root>/.pm, else ~/.pm).
Output is the server's JSON on stdout; errors go to stderr as `Error: <message>`.
Exit status: 0 success, 1 runtime or API error, 2 usage error.";

#[derive(Debug, Parser)]
#[command(
    name = "pm",
    version,
    about = "pm: the command-line client of the pm agile board",
    after_help = EXAMPLES,
    subcommand_required = true,
    arg_required_else_help = true
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The live Kanban board in your terminal (two side by side show real-time sync)
    Board(board::BoardArgs),
    /// Projects: list, get, create, update, delete
    #[command(subcommand)]
    Project(cli::project::ProjectCommand),
    /// Work items (epics, stories, tasks): list, get, create, update, delete
    #[command(subcommand)]
    WorkItem(cli::work_item::WorkItemCommand),
    /// Sprints: list, get, create, update, delete
    #[command(subcommand)]
    Sprint(cli::sprint::SprintCommand),
    /// Comments on work items: list, get, create, update, delete
    #[command(subcommand)]
    Comment(cli::comment::CommentCommand),
    /// The board's columns of a project
    #[command(subcommand)]
    SwimLane(cli::swim_lane::SwimLaneCommand),
    /// Links between work items (blocks, relates_to): list, create, delete
    #[command(subcommand)]
    Dependency(cli::dependency::DependencyCommand),
    /// Time tracking: list, get, create (start a timer), update (stop, edit), delete
    #[command(subcommand)]
    TimeEntry(cli::time_entry::TimeEntryCommand),
    /// The history of an entity, every changed field, newest first
    Activity(cli::activity::ActivityArgs),
    /// Export and import whole projects (the reference's JSON format)
    #[command(subcommand)]
    Sync(cli::sync::SyncCommand),
    /// Print a shell completion script
    Completions(cli::completions::CompletionsArgs),
    /// Set up .pm/ here: a config template, a .gitignore and a skill document for coding agents
    Init(cli::init::InitArgs),
    /// Write the man pages of pm and its subcommands into a directory (scripts/install.sh)
    #[command(hide = true)]
    Man(cli::man::ManArgs),
}

fn main() -> ExitCode {
    let Cli { global, command } = Cli::parse();
    match command {
        Command::Board(args) => board::run(&global, args),
        Command::Project(c) => cli::execute(&global, |client| cli::project::run(client, c)),
        Command::WorkItem(c) => cli::execute(&global, |client| cli::work_item::run(client, c)),
        Command::Sprint(c) => cli::execute(&global, |client| cli::sprint::run(client, c)),
        Command::Comment(c) => cli::execute(&global, |client| cli::comment::run(client, c)),
        Command::SwimLane(c) => cli::execute(&global, |client| cli::swim_lane::run(client, c)),
        Command::Dependency(c) => cli::execute(&global, |client| cli::dependency::run(client, c)),
        Command::TimeEntry(c) => cli::execute(&global, |client| cli::time_entry::run(client, c)),
        Command::Activity(a) => cli::execute(&global, |client| cli::activity::run(client, a)),
        Command::Sync(c) => cli::execute(&global, |client| cli::sync::run(client, c)),
        Command::Completions(args) => cli::completions::print(Cli::command(), args.shell),
        Command::Init(args) => cli::init::run(args),
        Command::Man(args) => cli::man::write(Cli::command(), &args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clap's own consistency checks (duplicate flags, bad defaults, ...): these are what made
    /// the reference's debug build panic on `work-item update --version`.
    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn expected_version_has_a_version_alias_on_work_item_update() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|c| c.command);
        for flag in ["--expected-version", "--version"] {
            let cmd = parse(&["pm", "work-item", "update", "PM-1", flag, "3"]);
            let Ok(Command::WorkItem(cli::work_item::WorkItemCommand::Update(u))) = cmd else {
                panic!("{flag} did not parse: {cmd:?}");
            };
            assert_eq!(u.expected_version, 3);
        }
    }

    /// The skill document `pm init` writes shows every subcommand, so an agent reading it
    /// knows the whole CLI; a new subcommand fails this until it is documented there.
    #[test]
    fn the_skill_document_shows_every_subcommand() {
        fn paths(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
            // Hidden ones (`man`, for the installer) are not for agents.
            let shown = cmd.get_subcommands().filter(|s| !s.is_hide_set());
            for sub in shown.filter(|s| s.get_name() != "help") {
                let path = format!("{prefix} {}", sub.get_name());
                if sub.has_subcommands() && !sub.is_subcommand_required_set() {
                    out.push(path.clone());
                }
                if sub.has_subcommands() {
                    paths(sub, &path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut all = Vec::new();
        paths(&Cli::command(), "pm", &mut all);
        let skill = cli::init::FILES[2].1;
        let missing: Vec<&String> = all
            .iter()
            .filter(|p| {
                !skill
                    .lines()
                    .any(|l| l.trim_start().starts_with(p.as_str()))
            })
            .collect();
        assert!(
            missing.is_empty(),
            "SKILL.md lacks an example of {missing:?}"
        );
        assert!(all.len() > 30, "{all:?}");
    }

    #[test]
    fn global_flags_are_accepted_anywhere() {
        let cli = Cli::try_parse_from([
            "pm", "project", "list", "--pretty", "--format", "table", "--server", "h:1",
        ])
        .unwrap();
        assert!(cli.global.pretty);
        assert_eq!(cli.global.format, cli::Format::Table);
        assert_eq!(cli.global.server.as_deref(), Some("h:1"));
    }
}
