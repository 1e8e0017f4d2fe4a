//! `pm board`: the live terminal Kanban board.
//!
//! Structure (after gitui and bottom): one [`app::App`] owns all state and is changed only by
//! [`app::AppEvent`]s arriving on one channel: keys from an input thread, server traffic from the
//! SDK session, and a tick. Drawing (`ui`) reads the state and changes nothing.
pub mod app;
pub mod config;
pub mod editor;
pub mod find;
pub mod input;
pub mod keymap;
pub mod layout;
pub mod markdown;
pub mod pick;
pub mod presence;
#[cfg(test)]
mod tests;
pub mod trace;
pub mod ui;
pub mod undo;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pm_client::rest_client::{discover, resolve_user_id, ServerSource};
use pm_client::sdk::{self, SessionConfig};
use ratatui::crossterm::event::{
    self, DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    Event,
};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use tokio::sync::mpsc;

use crate::cli::GlobalArgs;
use app::{App, AppEvent};
use keymap::Keymap;

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  \
    pm board --name alice --project PM\n  \
    pm board --mouse\n\n\
    On the board, ? lists every key and : (or Ctrl-P) runs any command or goes to any card.\n\
    Settings (server, name, project, color, mouse, theme, invisible, [keys] remaps) are read from\n\
    $XDG_CONFIG_HOME/pm/config.toml, else ~/.config/pm/config.toml; NO_COLOR is honoured.")]
pub struct BoardArgs {
    /// Open this project (its key, e.g. PM) instead of the project picker
    #[arg(long, value_name = "KEY")]
    pub project: Option<String>,
    /// Your display name, shown to the other users [default: $PM_USER_NAME, else $USER].
    /// Without --user-id / $PM_USER_ID the name is also your identity: same name, same user
    #[arg(long, env = "PM_USER_NAME")]
    pub name: Option<String>,
    /// Use the mouse: click a card to select it, a lane's title to move the card there, the
    /// wheel to scroll (off by default, so the terminal's own text selection keeps working)
    #[arg(long)]
    pub mouse: bool,
    /// See who else is on the board without being seen: the others' boards do not show you
    /// (`invisible = true` in the config file does the same)
    #[arg(long)]
    pub invisible: bool,
}

pub fn run(global: &GlobalArgs, args: BoardArgs) -> ExitCode {
    match try_run(global, args) {
        Ok(()) => ExitCode::SUCCESS,
        // `fail` keeps server text in the message from writing to the terminal.
        Err(e) => crate::cli::fail(&format!("{e:#}")),
    }
}

fn try_run(global: &GlobalArgs, args: BoardArgs) -> anyhow::Result<()> {
    let mut trace = trace::Trace::from_env();
    trace.mark("board started");
    // The config file first, so a mistake in it is reported wherever the board is started.
    let config_path = config::path(
        std::env::var("XDG_CONFIG_HOME").ok().as_deref(),
        std::env::var("HOME").ok().as_deref(),
    );
    let settings = match &config_path {
        Some(path) => config::load(path).map_err(anyhow::Error::msg)?,
        None => config::BoardConfig::default(),
    };
    let keymap = Keymap::with_remaps(&settings.keys).map_err(|e| {
        let file = config_path
            .as_ref()
            .map_or_else(String::new, |p| format!("{}: ", p.display()));
        anyhow::anyhow!("{file}[keys]: {e}")
    })?;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!("pm board needs an interactive terminal (run it in a terminal or in tmux)");
    }
    // --server, else $PM_SERVER, else the config file, else the port file.
    let server_given = global
        .server
        .clone()
        .or_else(|| std::env::var("PM_SERVER").ok().filter(|v| !v.is_empty()))
        .or(settings.server.clone());
    let server = discover(server_given.as_deref())?;
    let name = args
        .name
        .or(settings.name.clone())
        .or_else(|| std::env::var("USER").ok())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "me".to_string());
    let token = pm_client::rest_client::resolve_token(global.token.as_deref());
    let user_id = match (
        global.user_id.as_deref(),
        std::env::var("PM_USER_ID")
            .ok()
            .filter(|v| !v.trim().is_empty()),
    ) {
        // A token names its user; otherwise the name picks a stable identity.
        (None, None) => match token
            .as_deref()
            .and_then(pm_client::rest_client::token_subject)
        {
            Some(subject) => subject,
            None => name_user_id(&name),
        },
        (explicit, _) => resolve_user_id(explicit)?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let explicit = matches!(server.source, ServerSource::Explicit | ServerSource::Env);
    runtime.block_on(board(Setup {
        url: server.url.to_string(),
        fallbacks: server.fallbacks.iter().map(|u| u.to_string()).collect(),
        explicit,
        user_id,
        name,
        token,
        project: args.project.or(settings.project.clone()),
        keymap,
        no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
            || settings.color == Some(false),
        mouse: args.mouse || settings.mouse == Some(true),
        light: settings.theme.as_deref() == Some("light"),
        trace,
        invisible: args.invisible || settings.invisible == Some(true),
    }))
}

/// Without an explicit user id, a board user is named: the same name is the same user on every
/// machine and every run (a UUID v5 of the name), and two names are two users.
fn name_user_id(name: &str) -> String {
    const PM_USERS: uuid::Uuid = uuid::Uuid::from_u128(0x6f1c_2a5e_9b7d_4c1e_8a3f_5d2b_7c9e_0a41);
    uuid::Uuid::new_v5(&PM_USERS, name.to_lowercase().as_bytes()).to_string()
}

/// Waits between reconnection attempts grow to at most this: a board is one person's, so it
/// looks for its server again every few seconds (the SDK's default is 10 s) and is back soon
/// after the server is.
const BOARD_MAX_BACKOFF: Duration = Duration::from_secs(3);

/// The board's session: who it is, and how patiently it reconnects.
fn session_config(url: &str, user_id: &str, name: &str, token: Option<String>) -> SessionConfig {
    let mut config = SessionConfig::new(url, user_id);
    config.name = Some(name.to_string());
    config.token = token;
    config.max_backoff = BOARD_MAX_BACKOFF;
    config
}

/// Everything the board needs to start.
struct Setup {
    url: String,
    /// Further servers of the same database (`--server URL1,URL2,…`), tried in turn.
    fallbacks: Vec<String>,
    /// The server was named explicitly (flag or env), not found through its port file.
    explicit: bool,
    user_id: String,
    name: String,
    token: Option<String>,
    project: Option<String>,
    keymap: Keymap,
    /// NO_COLOR or `color = false`.
    no_color: bool,
    /// `--mouse` or `mouse = true`.
    mouse: bool,
    /// `theme = "light"`.
    light: bool,
    trace: trace::Trace,
    /// `--invisible` or `invisible = true`.
    invisible: bool,
}

async fn board(setup: Setup) -> anyhow::Result<()> {
    let Setup {
        url,
        fallbacks,
        explicit,
        user_id,
        name,
        token,
        project,
        keymap,
        no_color,
        mouse,
        light,
        mut trace,
        invisible,
    } = setup;
    let (tx, mut rx) = mpsc::unbounded_channel::<AppEvent>();

    let mut config = session_config(&url, &user_id, &name, token);
    config.fallbacks = fallbacks;
    if !explicit {
        // Found through the port file: look again before each reconnect, so a restarted server
        // on a new port is found by itself.
        config.locate = Some(std::sync::Arc::new(|| {
            discover(None).ok().map(|d| d.url.to_string())
        }));
    }
    let net = tx.clone();
    let handle = sdk::spawn(config, move |e| {
        let _ = net.send(AppEvent::Net(e));
    });

    // Keys and resizes: crossterm's blocking reader on its own thread, which stops reading
    // while an editor has the terminal.
    let keys = tx.clone();
    let gate = std::sync::Arc::new(InputGate::default());
    let reader_gate = gate.clone();
    std::thread::spawn(move || loop {
        if reader_gate.paused.load(Ordering::SeqCst) {
            reader_gate.idle.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        match event::poll(Duration::from_millis(100)) {
            Ok(true) => {
                let sent = match event::read() {
                    Ok(Event::Key(k)) => keys.send(AppEvent::Key(k)),
                    // Bracketed paste: the whole paste as one event, however large.
                    Ok(Event::Paste(text)) => keys.send(AppEvent::Paste(text)),
                    Ok(Event::Mouse(m)) => keys.send(AppEvent::Mouse(m)),
                    Ok(Event::Resize(w, h)) => keys.send(AppEvent::Resize(w, h)),
                    Ok(_) => Ok(()),
                    Err(_) => break,
                };
                if sent.is_err() {
                    break;
                }
            }
            Ok(false) => {
                if keys.is_closed() {
                    break;
                }
            }
            Err(_) => break,
        }
    });

    // The clock: highlights fade and "last event" ages.
    let ticks = tx.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(250));
        loop {
            every.tick().await;
            if ticks.send(AppEvent::Tick).is_err() {
                break;
            }
        }
    });
    drop(tx);

    // ratatui::init enters raw mode and the alternate screen and installs a panic hook that
    // restores the terminal, so a crash never leaves it in raw mode.
    let mut terminal = ratatui::try_init()?;
    // Bracketed paste: a paste arrives as one event instead of thousands of keys (which would
    // be read as commands once a dialog closed). Turned off again on exit and on a panic (this
    // hook runs before ratatui's, which restores the rest of the terminal).
    let _ = execute!(std::io::stdout(), EnableBracketedPaste);
    if mouse {
        let _ = execute!(std::io::stdout(), EnableMouseCapture);
    }
    let restore_terminal = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = execute!(
            std::io::stdout(),
            DisableBracketedPaste,
            DisableMouseCapture
        );
        restore_terminal(info);
    }));
    let mut app = App::new(handle.clone(), user_id, name, project);
    app.server_url = url;
    app.no_color = no_color;
    if light {
        app.theme = app::Theme::Light;
    }
    app.keymap = keymap;
    // My offline writes and inbox, kept per server and user across runs.
    let data_dir = pm_client::offline::data_dir(
        std::env::var("XDG_DATA_HOME").ok().as_deref(),
        std::env::var("HOME").ok().as_deref(),
    );
    if let Some(dir) = data_dir {
        let path = pm_client::offline::queue_file(&dir, &app.server_url, &app.me);
        load_offline_queue(&mut app, &path);
    }
    app.invisible = invisible;
    if let Ok(size) = terminal.size() {
        app.size = (size.width, size.height);
    }
    let result = async {
        terminal.draw(|f| ui::draw(f, &app))?;
        let mut cards_drawn = false;
        while let Some(event) = rx.recv().await {
            let snapshot = trace.on() && is_snapshot(&event);
            if snapshot {
                trace.mark("project snapshot (or preview) received and decoded");
            }
            if trace.on() {
                if let AppEvent::Net(sdk::NetEvent::Connected) = &event {
                    trace.mark("connected");
                }
            }
            app.update(event);
            if snapshot {
                trace.mark("project snapshot loaded");
            }
            // Apply whatever else is already waiting before drawing once.
            while let Ok(event) = rx.try_recv() {
                app.update(event);
            }
            if app.quit {
                break;
            }
            if let Some(request) = app.editor.take() {
                let result = tokio::task::block_in_place(|| {
                    run_editor(&mut terminal, &gate, &request.text, mouse)
                })?;
                app.update(AppEvent::Edited { request, result });
            }
            terminal.draw(|f| ui::draw(f, &app))?;
            if trace.on() && !cards_drawn && app.lane_ids().iter().any(|l| !l.is_empty()) {
                cards_drawn = true;
                trace.mark("first frame with cards drawn");
            }
        }
        anyhow::Ok(())
    }
    .await;
    let _ = execute!(
        std::io::stdout(),
        DisableBracketedPaste,
        DisableMouseCapture
    );
    ratatui::restore();
    handle.close();
    result
}

/// Opens my offline queue and inbox kept at `path`; a damaged file is set aside and said so,
/// and the board starts with an empty queue.
fn load_offline_queue(app: &mut App, path: &std::path::Path) {
    let (queue, set_aside) = pm_client::offline::OfflineQueue::open(path);
    app.set_offline(queue);
    if let Some(problem) = set_aside {
        app.warn(format!("{problem}; starting with an empty queue"));
    }
}

fn is_snapshot(event: &AppEvent) -> bool {
    matches!(
        event,
        AppEvent::Net(sdk::NetEvent::Message(m))
            if matches!(m.payload, Some(pm_shared::proto::Payload::ProjectSnapshot(_)))
    )
}

/// Lets the runtime stop the key reader while another program (the editor) reads the terminal.
#[derive(Default)]
struct InputGate {
    /// Set by the runtime: the reader must not read.
    paused: AtomicBool,
    /// Set by the reader once it has seen `paused` (it is not inside a read).
    idle: AtomicBool,
}

/// Hands the terminal to `$EDITOR` on `text` and takes it back: the key reader pauses, the
/// board leaves the alternate screen and raw mode, and returns to both afterwards, redrawn
/// in full. The editor's text, or why there is none; an error only when the terminal cannot
/// be restored.
fn run_editor(
    terminal: &mut ratatui::DefaultTerminal,
    gate: &InputGate,
    text: &str,
    mouse: bool,
) -> anyhow::Result<Result<String, String>> {
    gate.idle.store(false, Ordering::SeqCst);
    gate.paused.store(true, Ordering::SeqCst);
    // The reader finishes its current wait (at most 100 ms) before it stops.
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while !gate.idle.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut out = std::io::stdout();
    let _ = execute!(
        out,
        DisableBracketedPaste,
        DisableMouseCapture,
        LeaveAlternateScreen
    );
    let _ = disable_raw_mode();
    let result = editor::edit_with(&editor::editor_command(), text);
    enable_raw_mode()?;
    execute!(out, EnterAlternateScreen, EnableBracketedPaste)?;
    if mouse {
        execute!(out, EnableMouseCapture)?;
    }
    terminal.clear()?;
    gate.paused.store(false, Ordering::SeqCst);
    Ok(result)
}

#[cfg(test)]
mod session_tests {
    use super::*;

    #[test]
    fn the_board_reconnects_within_a_few_seconds_of_its_server() {
        let config = session_config("http://127.0.0.1:1", "u1", "alice", None);
        assert_eq!(config.max_backoff, Duration::from_secs(3));
        assert_eq!(config.name.as_deref(), Some("alice"));
    }
}
