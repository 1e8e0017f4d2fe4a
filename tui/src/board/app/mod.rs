//! The board's state and how every event changes it. No terminal and no drawing here: the
//! runtime feeds events in (`App::update`), and `ui::draw` renders whatever the state is.
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use pm_client::offline::OfflineQueue;
use pm_client::replica::Replica;
use pm_client::sdk::{LinkState, NetEvent, SessionHandle};
use pm_shared::domain::limits::{
    COMMENT_MAX, DESCRIPTION_MAX, SPRINT_NAME_MAX, STORY_POINTS_MAX, TITLE_MAX,
};
use pm_shared::domain::{self, display_key, ItemType, Priority, SprintStatus, Status};
use pm_shared::proto::{self, Payload, WebSocketMessage};
use pm_shared::store::{Action, Applied, EntityKind, Outcome};
use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::Rect;

use super::layout::{self, Hit, ListHit};

use super::find::{Candidate, Query};
use super::input::TextInput;
use super::keymap::{Command, Keymap};
use super::pick::{self, Choice, PickKind};
use super::undo::{self, Change, Entry, Origin};

mod describe;
mod editing;
mod mouse;
mod offline;
mod order;
mod pickers;
mod popup_keys;
mod presence;
mod undoing;
mod views;
mod writes;

use writes::{CardWrites, Write};

/// How long a card changed by someone else stays highlighted.
pub const HIGHLIGHT_FOR: Duration = Duration::from_secs(4);
/// Entries kept for the activity strip and the activity feed (`A`).
const ACTIVITY_LINES: usize = 500;
/// How long a sprint created on the board lasts.
const SPRINT_DAYS: i64 = 14;
/// History entries the detail pane asks for.
const HISTORY_ENTRIES: i32 = 20;

/// Everything that can happen to the board, in one channel.
#[derive(Debug)]
pub enum AppEvent {
    Key(KeyEvent),
    /// Text pasted into the terminal (bracketed paste): one edit, never replayed as keys.
    Paste(String),
    /// A click or the wheel (only with the mouse on: `--mouse`, `mouse = true`).
    Mouse(MouseEvent),
    Net(NetEvent),
    Tick,
    /// The terminal's new size (columns, rows).
    Resize(u16, u16),
    /// `$EDITOR` closed on a description (see [`EditorRequest`]): the text, or why it failed.
    Edited {
        request: EditorRequest,
        result: Result<String, String>,
    },
}

/// A text of a card edited from a known starting point: saving it on a later version of the
/// card is a conflict the user sees (with both texts), never a silent overwrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextField {
    Title,
    Description,
}

impl TextField {
    /// The field's current text on a card.
    pub fn value(self, item: &proto::WorkItem) -> String {
        match self {
            TextField::Title => item.title.clone(),
            TextField::Description => item.description.clone().unwrap_or_default(),
        }
    }

    fn set(self, req: &mut proto::UpdateWorkItemRequest, text: String) {
        match self {
            TextField::Title => req.title = Some(text),
            TextField::Description => req.description = Some(text),
        }
    }

    fn get(self, req: &proto::UpdateWorkItemRequest) -> Option<&String> {
        match self {
            TextField::Title => req.title.as_ref(),
            TextField::Description => req.description.as_ref(),
        }
    }
}

/// The board asks its runtime to open `$EDITOR` on a text of a card (its description, a new
/// comment, one of my comments): the terminal is handed to the editor and the result comes
/// back as [`AppEvent::Edited`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditorRequest {
    pub item_id: String,
    /// The text the editor opens with.
    pub text: String,
    pub target: EditorTarget,
}

/// What an editor's text is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditorTarget {
    /// The card's description, from the version and text the edit started from.
    Description {
        base: i32,
        started: String,
    },
    NewComment,
    /// One of my comments, and its text when the edit started.
    Comment {
        comment_id: String,
        started: String,
    },
}

impl EditorTarget {
    /// For messages: "description", "comment".
    pub fn what(&self) -> &'static str {
        match self {
            EditorTarget::Description { .. } => "description",
            EditorTarget::NewComment | EditorTarget::Comment { .. } => "comment",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    Connecting,
    Connected,
    Reconnecting { attempt: u32, reason: String },
}

/// One line of the command palette: a command, or a card to jump to (by id), with its label.
#[derive(Debug, Clone, PartialEq)]
pub enum PaletteEntry {
    Command(Command, String),
    Card(String, String),
}

impl PaletteEntry {
    pub fn label(&self) -> &str {
        match self {
            PaletteEntry::Command(_, label) | PaletteEntry::Card(_, label) => label,
        }
    }
}

/// The terminal's background the colours are chosen for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    Dark,
    Light,
}

/// How the cards are shown: in lanes, or as one list with full titles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Board,
    List(Sort),
    /// Epic → story → task, with each parent's progress.
    Tree,
}

/// The list view's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Key,
    Priority,
    /// Latest change first.
    Updated,
}

impl Sort {
    pub fn next(self) -> Sort {
        match self {
            Sort::Key => Sort::Priority,
            Sort::Priority => Sort::Updated,
            Sort::Updated => Sort::Key,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Sort::Key => "key",
            Sort::Priority => "priority",
            Sort::Updated => "last change",
        }
    }
}

/// The overlay in front of the board, if any.
#[derive(Debug, Clone, PartialEq)]
pub enum Popup {
    None,
    /// The keys and the legend, scrolled down by `scroll` lines.
    Help {
        scroll: u16,
    },
    Detail {
        item_id: String,
        comment: Option<TextInput>,
    },
    NewCard {
        title: TextInput,
        item_type: ItemType,
    },
    EditTitle {
        item_id: String,
        title: TextInput,
        /// The card's version when the edit started: saving on any later version is a conflict.
        base: i32,
        /// The title the edit started from.
        started: String,
    },
    /// My edit of a title or description met someone else's: both texts, and what to do.
    Conflict {
        item_id: String,
        field: TextField,
        mine: String,
        theirs: String,
    },
    /// A text from `$EDITOR` that could not be saved (too long, offline, refused): kept (as
    /// the request that edits it again) until the user edits it again or lets it go.
    Unsaved {
        request: EditorRequest,
        reason: String,
    },
    ConfirmDelete {
        item_id: String,
    },
    /// The activity feed: every change seen since the board opened, newest first.
    Activity {
        scroll: u16,
    },
    /// Every command and every card, found by typing: Enter runs the command or selects the
    /// card.
    Palette {
        filter: TextInput,
        row: usize,
    },
    /// A new project from the picker: its title and key (Tab switches; the key follows the
    /// title's initials until it is typed).
    NewProject {
        title: TextInput,
        key: TextInput,
        on_key: bool,
        key_typed: bool,
    },
    /// The project's sprints: filter the board by one, create one, start or complete one.
    /// Row 0 is "all cards".
    Sprints {
        row: usize,
        /// The name of a sprint being created.
        naming: Option<TextInput>,
    },
    /// Story points for the card, typed.
    Points {
        item_id: String,
        input: TextInput,
    },
    /// A picker for one field of the card (assignee, sprint, parent), filtered by what is typed.
    Pick {
        item_id: String,
        kind: PickKind,
        filter: TextInput,
        /// The highlighted row of the filtered list.
        row: usize,
        /// Opened from the detail pane, which comes back when the picker closes.
        from_detail: bool,
    },
    Filter {
        text: TextInput,
    },
    /// The conflict inbox: my offline edits the server refused, the selected one's values.
    Inbox {
        row: usize,
    },
}

/// The history (activity log) of the card the detail pane shows, read from the server when
/// the pane opens and again whenever the card changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub item_id: String,
    pub entries: Vec<proto::ActivityLogEntry>,
    pub total: i32,
    pub loaded: bool,
    /// The request in flight, if any.
    request: Option<String>,
    /// The card changed while a request was in flight: ask again when it is answered.
    stale: bool,
}

impl History {
    pub fn new(item_id: &str) -> Self {
        History {
            item_id: item_id.to_string(),
            ..Default::default()
        }
    }
}

pub struct App {
    pub replica: Replica,
    handle: SessionHandle,
    pub me: String,
    pub my_name: String,
    /// `--project KEY`, opened as soon as the project list is known.
    wanted_key: Option<String>,
    pub lane: usize,
    pub row: usize,
    /// A card to select once it shows up (after moving or creating it).
    focus: Option<String>,
    pub picker_row: usize,
    /// The project picker opened from the board with `o`: the board stays loaded behind it,
    /// and Esc/q go back to it.
    pub picking: bool,
    pub popup: Popup,
    pub filter: String,
    pub sprint: Option<String>,
    pub link: Link,
    /// The server's address as given (shown while it cannot be reached).
    pub server_url: String,
    /// The session's current connection attempt (1 after a success).
    attempt: u32,
    pub last_event: Option<Instant>,
    /// Cards someone else just changed: card → (when, who). The user id is kept, not the name,
    /// so a name that arrives later (a new user's first change) still shows.
    pub highlights: HashMap<String, (Instant, String)>,
    /// Latest first: (who, what). Names are looked up when drawn, so they fill in late.
    pub activity: VecDeque<(String, String)>,
    pub notice: Option<(String, Instant)>,
    /// Requests in flight: message_id → what they were for (to explain a failure).
    pending: HashMap<String, String>,
    /// My writes to each card: one in flight at a time, the rest queued behind it, so that
    /// quick presses never race each other into a false conflict.
    writes: HashMap<String, CardWrites>,
    /// Write requests in flight: message_id → card.
    write_ids: HashMap<String, String>,
    /// Each card with writes of mine pending, as it will be once they land (shown at once).
    intended: HashMap<String, proto::WorkItem>,
    /// Changes whenever `intended` may have (the lanes depend on it).
    intended_revision: u64,
    /// The lanes as last computed (see `order`).
    lane_cache: order::LaneCache,
    /// Card creations in flight: message_id → the title and type (to give them back on
    /// failure) and the sprint the board was filtered by (the card is put in it once created).
    creates: HashMap<String, (String, ItemType, Option<String>)>,
    /// Tests only: requests are recorded here (with made-up message ids) instead of sent.
    pub outbox: Option<Vec<(String, Payload)>>,
    /// Popups to show once the current one closes (an edit conflict while typing).
    waiting_popups: VecDeque<Popup>,
    asked_for_users: std::collections::HashSet<String>,
    pub now: Instant,
    /// Wall-clock time in Unix seconds, for running timers.
    pub clock: i64,
    /// The history shown in the detail pane.
    pub history: Option<History>,
    /// Lines the detail pane is scrolled down by.
    pub detail_scroll: u16,
    pub quit: bool,
    /// The terminal's size (columns, rows), for paging.
    pub size: (u16, u16),
    /// Lanes or the list, and the list's selected row.
    pub view: View,
    pub list_row: usize,
    /// My accepted changes, latest last, and my undone ones.
    undo: Vec<Entry>,
    redo: Vec<Change>,
    /// Deletions in flight (message id → the card as it was) and re-creations of deleted cards.
    deletes: HashMap<String, proto::WorkItem>,
    restores: HashMap<String, proto::WorkItem>,
    /// A project creation in flight: the board opens the project once it exists.
    new_project: Option<String>,
    /// The card as the answer to my last write to it left it (read by the next write).
    answered: HashMap<String, proto::WorkItem>,
    /// `$EDITOR` to open on a description, taken by the runtime after the update.
    pub editor: Option<EditorRequest>,
    /// `NO_COLOR` is set: draw without colours.
    pub no_color: bool,
    /// Colours for a dark (default) or a light terminal background.
    pub theme: Theme,
    /// The keys in use (the defaults and the config file's remaps).
    pub keymap: Keymap,
    /// My writes made while disconnected, and those the server refused on replay (the inbox).
    pub offline: OfflineQueue,
    /// The inbox entry whose value is being edited (it leaves the inbox once the edit is saved).
    resolving: Option<String>,
    /// Who else is on the board (what the server tells).
    pub presence: crate::board::presence::Presence,
    /// `--invisible`: others do not see me.
    pub invisible: bool,
    /// Where the SDK was last told I am (see `publish_presence`).
    pub presence_told: Option<proto::SetPresenceRequest>,
}

/// A card as the board shows it.
pub struct Card<'a> {
    pub item: &'a proto::WorkItem,
    pub key: String,
}

impl Card<'_> {
    /// The title as the board draws it (controls made visible): what its width, and so the
    /// card's height, is measured on.
    pub fn shown_title(&self) -> String {
        pm_shared::terminal::sanitize_for_terminal(&self.item.title).into_owned()
    }
}

impl App {
    pub fn new(
        handle: SessionHandle,
        me: String,
        my_name: String,
        wanted_key: Option<String>,
    ) -> Self {
        let mut replica = Replica::new(None);
        replica.store.users.insert(me.clone(), my_name.clone());
        App {
            replica,
            handle,
            me,
            my_name,
            wanted_key: wanted_key.map(|k| k.to_ascii_uppercase()),
            lane: 0,
            row: 0,
            focus: None,
            picker_row: 0,
            picking: false,
            popup: Popup::None,
            filter: String::new(),
            sprint: None,
            link: Link::Connecting,
            server_url: String::new(),
            attempt: 0,
            last_event: None,
            highlights: HashMap::new(),
            activity: VecDeque::new(),
            notice: None,
            pending: HashMap::new(),
            writes: HashMap::new(),
            write_ids: HashMap::new(),
            intended: HashMap::new(),
            intended_revision: 0,
            lane_cache: Default::default(),
            outbox: None,
            creates: HashMap::new(),
            waiting_popups: VecDeque::new(),
            asked_for_users: Default::default(),
            now: Instant::now(),
            clock: pm_shared::now_secs(),
            history: None,
            detail_scroll: 0,
            quit: false,
            size: (80, 24),
            view: View::Board,
            list_row: 0,
            editor: None,
            undo: Vec::new(),
            redo: Vec::new(),
            deletes: HashMap::new(),
            restores: HashMap::new(),
            answered: HashMap::new(),
            new_project: None,
            no_color: false,
            theme: Theme::Dark,
            keymap: Keymap::default(),
            offline: OfflineQueue::in_memory(),
            resolving: None,
            presence: Default::default(),
            invisible: false,
            presence_told: None,
        }
    }

    pub fn project(&self) -> Option<&proto::Project> {
        self.replica
            .project()
            .and_then(|p| self.replica.store.projects.get(p))
    }

    pub fn projects(&self) -> Vec<&proto::Project> {
        let mut v: Vec<&proto::Project> = self.replica.store.projects.values().collect();
        v.sort_by(|a, b| {
            a.title
                .to_lowercase()
                .cmp(&b.title.to_lowercase())
                .then(a.key.cmp(&b.key))
        });
        v
    }

    pub fn key_of(&self, item: &proto::WorkItem) -> String {
        let key = self
            .replica
            .store
            .projects
            .get(&item.project_id)
            .map(|p| p.key.as_str())
            .unwrap_or("?");
        display_key(key, item.item_number)
    }

    /// The cards of each lane, filtered and in board order.
    pub fn lanes(&self) -> Vec<Vec<Card<'_>>> {
        self.lane_ids()
            .iter()
            .map(|lane| {
                lane.iter()
                    .filter_map(|id| self.card(id))
                    .map(|item| Card {
                        item,
                        key: self.key_of(item),
                    })
                    .collect()
            })
            .collect()
    }

    pub fn selected(&self) -> Option<&proto::WorkItem> {
        match self.view {
            View::Board => self.card_at(self.lane, self.row),
            View::List(_) | View::Tree => {
                let id = self.list_cards().get(self.list_row)?.item.id.clone();
                self.card(&id)
            }
        }
    }

    /// True while requests of mine (writes, creates…) wait for their answers.
    pub fn busy(&self) -> bool {
        !self.writes.is_empty() || !self.pending.is_empty()
    }

    /// A card as the board shows it: with my pending writes applied.
    pub fn card(&self, id: &str) -> Option<&proto::WorkItem> {
        self.intended
            .get(id)
            .or_else(|| self.replica.store.work_items.get(id))
    }

    pub fn user_name(&self, id: &str) -> String {
        self.replica.store.user_name(id)
    }

    pub fn update(&mut self, event: AppEvent) {
        match event {
            AppEvent::Key(key) if key.kind != KeyEventKind::Release => self.on_key(key),
            AppEvent::Key(_) => {}
            AppEvent::Resize(width, height) => self.size = (width, height),
            AppEvent::Edited { request, result } => self.on_edited(request, result),
            AppEvent::Paste(text) => self.on_paste(&text),
            AppEvent::Mouse(mouse) => self.on_mouse(mouse),
            AppEvent::Net(net) => self.on_net(net),
            AppEvent::Tick => {
                self.now = Instant::now();
                self.clock = pm_shared::now_secs();
                self.expire();
            }
        }
        // A write the user just let through the inbox goes at once when connected.
        self.replay();
        if self.popup == Popup::None {
            if let Some(next) = self.waiting_popups.pop_front() {
                self.popup = next;
            }
        }
        if !matches!(self.popup, Popup::Detail { .. }) {
            self.history = None;
        }
        self.settle_selection();
        self.publish_presence();
    }

    fn expire(&mut self) {
        let now = self.now;
        self.highlights
            .retain(|_, (at, _)| now.duration_since(*at) < HIGHLIGHT_FOR);
        if self
            .notice
            .as_ref()
            .is_some_and(|(_, at)| now.duration_since(*at) > Duration::from_secs(6))
        {
            self.notice = None;
        }
    }

    // ---- server side -------------------------------------------------------------------

    fn on_net(&mut self, mut event: NetEvent) {
        match &event {
            NetEvent::Connecting { attempt } => {
                self.attempt = *attempt;
                if let Link::Reconnecting { attempt: a, .. } = &mut self.link {
                    *a = *attempt;
                }
            }
            NetEvent::Connected => self.link = Link::Connected,
            NetEvent::Disconnected { reason, .. } => {
                // Requests in flight died with the connection.
                self.pending.clear();
                self.deletes.clear();
                self.restores.clear();
                self.answered.clear();
                self.creates.clear();
                self.write_ids.clear();
                self.offline.on_disconnect();
                // My writes in flight or waiting: kept to be sent again once reconnected (one
                // whose answer was lost, but which landed, is recognised then).
                let kept = self.keep_writes_offline();
                if kept > 0 {
                    self.say(format!(
                        "Connection lost: {kept} change(s) kept, sent again once reconnected"
                    ));
                }
                self.presence.clear();
                let attempt = self.attempt.max(1);
                self.link = Link::Reconnecting {
                    attempt,
                    reason: reason.clone(),
                };
            }
            NetEvent::Message(msg) if self.presence.apply(msg) => {
                self.learn_present_names();
                return;
            }
            NetEvent::Message(msg) => {
                self.on_history_reply(msg);
                if let Some(item_id) = self.write_ids.remove(&msg.message_id) {
                    self.on_write_answer(&item_id, msg);
                }
                let create = self.creates.remove(&msg.message_id);
                if self.new_project.as_deref() == Some(msg.message_id.as_str()) {
                    self.new_project = None;
                    if let Some(Payload::ProjectCreated(e)) = &msg.payload {
                        if let Some(p) = &e.project {
                            self.open_project(p.id.clone());
                        }
                    }
                }
                let ok = !matches!(msg.payload, Some(Payload::Error(_)));
                if let Some(item) = self.deletes.remove(&msg.message_id).filter(|_| ok) {
                    self.undo.push(Entry::Deleted(Box::new(item)));
                }
                if let (Some(old), Some(Payload::WorkItemCreated(e))) =
                    (self.restores.remove(&msg.message_id), &msg.payload)
                {
                    if let Some(created) = &e.work_item {
                        self.on_restored(old, created);
                    }
                }
                if let Some(what) = self.pending.remove(&msg.message_id) {
                    match &msg.payload {
                        Some(Payload::Error(e)) => {
                            self.say(format!("{what} failed: {}", e.message));
                            if let Some((title, item_type, _)) = create {
                                self.show(Popup::NewCard {
                                    title: TextInput::with_max(&title, TITLE_MAX),
                                    item_type,
                                });
                            }
                        }
                        Some(Payload::WorkItemCreated(e)) => {
                            self.focus = e.work_item.as_ref().map(|w| w.id.clone());
                            // Created under a sprint filter: into that sprint, so it stays in
                            // view (creation cannot name a sprint).
                            if let (Some((_, _, Some(sprint))), Some(w)) = (create, &e.work_item) {
                                if w.sprint_id.as_ref() != Some(&sprint) {
                                    let req = proto::UpdateWorkItemRequest {
                                        sprint_id: Some(sprint),
                                        ..Default::default()
                                    };
                                    let write = Write {
                                        origin: Origin::Auto,
                                        ..Write::on_version("Put in sprint", req, w.version)
                                    };
                                    self.write(&w.id, write);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        let description = match &event {
            NetEvent::Message(msg) => self.describe(msg),
            _ => None,
        };
        let open_key = self.project().map(|p| p.key.clone());
        // Moved, not copied: a big project's snapshot would otherwise be held twice.
        let outcomes = self.replica.take_net(&self.handle, &mut event);
        for outcome in outcomes {
            if let Outcome::Applied(applied) = outcome {
                self.on_applied(&applied, description.clone());
            }
        }
        if let NetEvent::Message(msg) = &event {
            self.on_replayed(msg);
        }
        self.replay();
        self.leave_a_vanished_project(open_key, &event);
        self.refresh_intended();
        if matches!(event, NetEvent::Connected) {
            if let Some(h) = &mut self.history {
                // Whatever was in flight died with the old connection.
                h.request = None;
            }
            self.request_history();
        }
        self.open_wanted_project();
    }

    /// The open project is gone (deleted, or no longer visible to me): back to the picker, saying
    /// why, instead of a board that silently became a list of other projects.
    fn leave_a_vanished_project(&mut self, open_key: Option<String>, event: &NetEvent) {
        let Some(open) = self.replica.project().map(str::to_string) else {
            return;
        };
        if self.replica.store.projects.contains_key(&open) {
            return;
        }
        let deleted_by = match event {
            NetEvent::Message(msg) => match &msg.payload {
                Some(Payload::ProjectDeleted(e)) if e.project_id == open => {
                    Some(self.user_name(&e.user_id))
                }
                _ => None,
            },
            _ => None,
        };
        self.replica.follow(&self.handle, None);
        self.picking = false;
        self.popup = Popup::None;
        self.filter.clear();
        self.sprint = None;
        self.writes.clear();
        self.write_ids.clear();
        let key = open_key.unwrap_or_else(|| "the open project".into());
        self.say(match deleted_by {
            Some(who) => format!("Project {key} was deleted by {who}"),
            None => format!("Project {key} is no longer available"),
        });
    }

    /// Opens the detail pane of a card and asks for its history.
    fn open_detail(&mut self, item_id: String) {
        self.detail_scroll = 0;
        self.history = Some(History::new(&item_id));
        self.popup = Popup::Detail {
            item_id,
            comment: None,
        };
        self.request_history();
    }

    /// Asks for the open card's history, unless a request is already in flight.
    fn request_history(&mut self) {
        let Some(h) = &mut self.history else { return };
        if h.request.is_some() {
            h.stale = true;
            return;
        }
        let req = proto::GetActivityLogRequest {
            entity_type: "work_item".into(),
            entity_id: h.item_id.clone(),
            limit: HISTORY_ENTRIES,
            offset: 0,
        };
        if let Ok(id) = self.handle.send(Payload::GetActivityLogRequest(req)) {
            h.request = Some(id);
            h.stale = false;
        }
    }

    fn on_history_reply(&mut self, msg: &WebSocketMessage) {
        let Some(h) = &mut self.history else { return };
        if h.request.as_deref() != Some(msg.message_id.as_str()) {
            return;
        }
        h.request = None;
        if let Some(Payload::ActivityLogList(list)) = &msg.payload {
            h.entries = list.entries.clone();
            h.total = list.total_count;
            h.loaded = true;
        }
        if h.stale {
            self.request_history();
        }
    }

    /// Starts your timer on the card, or stops it when it is already running there.
    fn toggle_timer(&mut self, item_id: &str) {
        let running = self
            .replica
            .store
            .running_timer(&self.me)
            .filter(|t| t.work_item_id == item_id)
            .map(|t| t.id.clone());
        match running {
            Some(id) => self.send(
                "Stop timer",
                Payload::StopTimerRequest(proto::StopTimerRequest { time_entry_id: id }),
            ),
            None => self.send(
                "Start timer",
                Payload::StartTimerRequest(proto::StartTimerRequest {
                    work_item_id: item_id.to_string(),
                    description: None,
                }),
            ),
        }
    }

    fn on_applied(&mut self, applied: &Applied, description: Option<String>) {
        self.last_event = Some(self.now);
        if !self.replica.store.users.contains_key(&applied.user_id)
            && self.asked_for_users.insert(applied.user_id.clone())
        {
            self.replica.refresh_users(&self.handle);
        }
        if applied.user_id != self.me {
            if let Some(item) = &applied.work_item_id {
                if applied.kind != EntityKind::WorkItem || applied.action != Action::Deleted {
                    self.highlights
                        .insert(item.clone(), (self.now, applied.user_id.clone()));
                }
            }
        }
        if let Some(text) = description {
            self.activity.push_front((applied.user_id.clone(), text));
            self.activity.truncate(ACTIVITY_LINES);
        }
        let shown = self.history.as_ref().map(|h| h.item_id.clone());
        if shown.is_some() && shown == applied.work_item_id {
            self.request_history();
        }
    }

    /// Opens `--project KEY` once the project list has arrived.
    fn open_wanted_project(&mut self) {
        if self.replica.project().is_some() || self.replica.store.cursor("").is_none() {
            return;
        }
        let Some(key) = self.wanted_key.take() else {
            return;
        };
        let found = self
            .replica
            .store
            .projects
            .values()
            .find(|p| p.key == key || p.id == key)
            .map(|p| p.id.clone());
        match found {
            Some(id) => self.replica.follow(&self.handle, Some(id)),
            None => self.say(format!("No project with key {key}; pick one")),
        }
    }

    fn say(&mut self, text: String) {
        self.notice = Some((text, self.now));
    }

    /// A notice that stays a while (about a minute): something the user must not miss.
    pub fn warn(&mut self, text: String) {
        // Notices go after 6 s: this one is dated a minute ahead.
        self.notice = Some((text, self.now + Duration::from_secs(54)));
    }

    fn send(&mut self, what: &str, payload: Payload) {
        if let Some(id) = self.transmit(what, payload) {
            self.pending.insert(id, what.to_string());
        }
    }

    /// Sends a request; its message id, or None (and a notice) when it could not be sent.
    fn transmit(&mut self, what: &str, payload: Payload) -> Option<String> {
        if let Some(outbox) = &mut self.outbox {
            let id = format!("req{}", outbox.len() + 1);
            outbox.push((id.clone(), payload));
            return Some(id);
        }
        match self.handle.send(payload) {
            Ok(id) => Some(id),
            Err(e) => {
                self.say(format!("{what}: {e}"));
                None
            }
        }
    }

    /// Shows a popup now, or once the one in front (e.g. a text being typed) is closed.
    fn show(&mut self, popup: Popup) {
        if self.popup == Popup::None {
            self.popup = popup;
        } else {
            self.waiting_popups.push_back(popup);
        }
    }

    // ---- keys --------------------------------------------------------------------------

    fn on_key(&mut self, key: KeyEvent) {
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            self.quit = true;
            return;
        }
        if self.keymap.command(&key) == Some(Command::Reconnect)
            && self.popup == Popup::None
            && matches!(self.link, Link::Reconnecting { .. })
        {
            // Retry now instead of waiting out the backoff (once per failure: the link shows
            // "connecting" until this attempt ends).
            self.handle.reconnect();
            self.link = Link::Connecting;
            return;
        }
        if self.popup != Popup::None {
            self.on_popup_key(key);
        } else if self.replica.project().is_none() || self.picking {
            self.on_picker_key(key);
        } else {
            self.on_board_key(key);
        }
    }

    fn on_picker_key(&mut self, key: KeyEvent) {
        let count = self.replica.store.projects.len();
        match key.code {
            // Only the picker shown at start-up, with no board behind it, quits.
            KeyCode::Char('q') | KeyCode::Esc if self.replica.project().is_some() => {
                self.picking = false
            }
            KeyCode::Char('q') | KeyCode::Esc => self.quit = true,
            KeyCode::Char('?') => self.popup = Popup::Help { scroll: 0 },
            KeyCode::Char('n') => {
                self.popup = Popup::NewProject {
                    title: TextInput::with_max("", TITLE_MAX),
                    key: TextInput::new(""),
                    on_key: false,
                    key_typed: false,
                }
            }
            KeyCode::Up | KeyCode::Char('k') => self.picker_row = self.picker_row.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                self.picker_row = (self.picker_row + 1).min(count.saturating_sub(1))
            }
            KeyCode::Enter => {
                if let Some(p) = self.projects().get(self.picker_row).map(|p| p.id.clone()) {
                    self.open_project(p);
                }
            }
            _ => {}
        }
    }

    /// Shows the project `id` (from the picker, or once a project I created exists).
    fn open_project(&mut self, id: String) {
        self.picking = false;
        if self.replica.project() != Some(id.as_str()) {
            self.lane = 0;
            self.row = 0;
            self.filter.clear();
            self.sprint = None;
            self.highlights.clear();
            self.replica.follow(&self.handle, Some(id));
        }
    }

    fn on_board_key(&mut self, key: KeyEvent) {
        if let Some(command) = self.keymap.command(&key) {
            self.run(command);
        }
    }

    /// What a command does, from its key or from the palette.
    fn run(&mut self, command: Command) {
        if self.view != View::Board && self.on_list_key(command) {
            return;
        }
        match command {
            Command::ToggleView | Command::TreeView => {
                self.focus = self.selected().map(|w| w.id.clone());
                self.view = match (command, self.view) {
                    (Command::ToggleView, View::Board | View::Tree) => View::List(Sort::Key),
                    (Command::TreeView, View::Board | View::List(_)) => View::Tree,
                    _ => View::Board,
                };
            }
            Command::Sort => self.say("Sorting is for the list view (v)".into()),
            Command::Quit => self.quit = true,
            Command::Help => self.popup = Popup::Help { scroll: 0 },
            Command::ClearFilters => {
                self.filter.clear();
                self.sprint = None;
            }
            Command::OtherProject => {
                self.picking = true;
                let current = self.replica.project().map(str::to_string);
                if let Some(i) = self
                    .projects()
                    .iter()
                    .position(|p| Some(&p.id) == current.as_ref())
                {
                    self.picker_row = i;
                }
            }
            // Only while disconnected (see on_key).
            Command::Reconnect => {}
            Command::MoveCardPrev => self.move_card(-1),
            Command::MoveCardNext => self.move_card(1),
            Command::MoveCardUp => self.reorder(-1),
            Command::MoveCardDown => self.reorder(1),
            Command::LanePrev => self.lane = self.lane.saturating_sub(1),
            Command::LaneNext => self.lane = (self.lane + 1).min(Status::ALL.len() - 1),
            Command::CardPrev => self.row = self.row.saturating_sub(1),
            Command::CardNext => self.row += 1,
            Command::FirstCard => self.row = 0,
            // settle_selection keeps the row inside the lane.
            Command::LastCard => self.row = usize::MAX,
            Command::PageUp => self.row = self.row.saturating_sub(self.page()),
            Command::PageDown => self.row = self.row.saturating_add(self.page()),
            Command::NewCard => {
                self.popup = Popup::NewCard {
                    title: TextInput::with_max("", TITLE_MAX),
                    item_type: ItemType::Task,
                }
            }
            Command::EditDescription => {
                if let Some(id) = self.selected().map(|w| w.id.clone()) {
                    self.edit_description(&id);
                }
            }
            Command::EditTitle => {
                if let Some(item) = self.selected() {
                    let stored = self.replica.store.work_items.get(&item.id);
                    self.popup = Popup::EditTitle {
                        item_id: item.id.clone(),
                        title: TextInput::with_max(&item.title, TITLE_MAX),
                        base: stored.map_or(item.version, |w| w.version),
                        started: item.title.clone(),
                    };
                }
            }
            Command::Delete => {
                if let Some(item) = self.selected() {
                    self.popup = Popup::ConfirmDelete {
                        item_id: item.id.clone(),
                    };
                }
            }
            Command::Details => {
                if let Some(id) = self.selected().map(|w| w.id.clone()) {
                    self.open_detail(id);
                }
            }
            Command::Timer => {
                if let Some(id) = self.selected().map(|w| w.id.clone()) {
                    self.toggle_timer(&id);
                }
            }
            Command::Filter => {
                self.popup = Popup::Filter {
                    text: TextInput::new(&self.filter),
                }
            }
            Command::SprintFilter => self.cycle_sprint(),
            Command::Assign => self.open_pick(PickKind::Assignee),
            Command::PickSprint => self.open_pick(PickKind::Sprint),
            Command::Sprints => {
                let row = self
                    .sprint
                    .as_ref()
                    .and_then(|s| self.sprints().iter().position(|x| &x.id == s))
                    .map_or(0, |i| i + 1);
                self.popup = Popup::Sprints { row, naming: None };
            }
            Command::Points => {
                if let Some(item) = self.selected() {
                    let points = item.story_points.map(|p| p.to_string()).unwrap_or_default();
                    self.popup = Popup::Points {
                        item_id: item.id.clone(),
                        input: TextInput::new(&points),
                    };
                }
            }
            Command::PickParent => self.open_pick(PickKind::Parent),
            Command::PickType => self.open_pick(PickKind::Type),
            Command::Priority => self.cycle_priority(),
            Command::Activity => self.popup = Popup::Activity { scroll: 0 },
            Command::Inbox => self.open_inbox(),
            Command::Palette => {
                self.popup = Popup::Palette {
                    filter: TextInput::new(""),
                    row: 0,
                }
            }
            Command::Undo => self.undo_or_redo(Origin::Undo),
            Command::Redo => self.undo_or_redo(Origin::Redo),
        }
    }

    /// Pasted text goes into the focused field as one edit; with no field open it is dropped
    /// (never replayed as board commands).
    fn on_paste(&mut self, text: &str) {
        match &mut self.popup {
            Popup::NewCard { title: input, .. }
            | Popup::EditTitle { title: input, .. }
            | Popup::Detail {
                comment: Some(input),
                ..
            } => input.insert(text),
            Popup::Filter { text: input } => {
                input.insert(text);
                self.filter = input.text().trim().to_string();
            }
            Popup::Palette { filter, row } => {
                filter.insert(text);
                *row = 0;
            }
            Popup::NewProject {
                title, key, on_key, ..
            } => {
                if *on_key {
                    key.insert(text)
                } else {
                    title.insert(text)
                }
            }
            Popup::Points { input, .. }
            | Popup::Sprints {
                naming: Some(input),
                ..
            } => input.insert(text),
            Popup::Pick { filter, row, .. } => {
                filter.insert(text);
                *row = 0;
            }
            _ => self.say("Paste ignored: no text field is open".into()),
        }
    }

    /// True (with a notice) when nothing can be sent: a dialog then stays open with its text.
    fn offline(&mut self) -> bool {
        if self.outbox.is_some() || self.handle.state() == LinkState::Connected {
            return false;
        }
        self.say("Not connected: your text stays here; Enter again once connected".into());
        true
    }

    fn say_too_long(&mut self, what: &str, input: &TextInput) {
        let max = input.max().unwrap_or(0);
        self.say(format!(
            "{what} too long ({}/{max}): shorten it to save",
            input.count()
        ));
    }

    fn create_card(&mut self, title: String, item_type: ItemType) {
        let Some(project) = self.replica.project().map(str::to_string) else {
            return;
        };
        let status = Status::ALL[self.lane.min(Status::ALL.len() - 1)];
        let req = proto::CreateWorkItemRequest {
            item_type: item_type.to_proto() as i32,
            title: title.clone(),
            project_id: project,
            status: Some(status.to_string()),
            ..Default::default()
        };
        // The response selects the new card (see on_net); a refusal opens the dialog again
        // with the text.
        if let Some(id) = self.transmit("Create", Payload::CreateWorkItemRequest(req)) {
            self.pending.insert(id.clone(), "Create".into());
            self.creates
                .insert(id, (title, item_type, self.sprint.clone()));
        }
    }

    fn update_selected(
        &mut self,
        what: &str,
        build: impl FnOnce(&proto::WorkItem) -> Option<proto::UpdateWorkItemRequest>,
    ) {
        let Some(item) = self.selected().cloned() else {
            return;
        };
        if let Some(req) = build(&item) {
            self.write(&item.id, Write::change(what, req));
        }
    }

    fn move_card(&mut self, delta: i32) {
        let Some(item) = self.selected().cloned() else {
            return;
        };
        let Some(status) = Status::parse(&item.status) else {
            return;
        };
        let target = if delta < 0 {
            status.prev()
        } else {
            status.next()
        };
        let Some(target) = target else { return };
        self.focus = Some(item.id.clone());
        self.update_selected("Move", |_| {
            Some(proto::UpdateWorkItemRequest {
                status: Some(target.to_string()),
                ..Default::default()
            })
        });
    }

    /// Moves the selected card past its neighbour in the lane.
    fn reorder(&mut self, delta: i32) {
        let lanes = self.lane_ids();
        let Some(lane) = lanes.get(self.lane) else {
            return;
        };
        let Some(neighbour_row) = self
            .row
            .checked_add_signed(delta as isize)
            .filter(|r| *r < lane.len())
        else {
            return;
        };
        let (Some(a), Some(b)) = (
            self.card_at(self.lane, self.row).cloned(),
            self.card_at(self.lane, neighbour_row).cloned(),
        ) else {
            return;
        };
        self.focus = Some(a.id.clone());
        // Just before (or after) the neighbour, when no other card of the lane (shown or not)
        // is in the way: one write, and the neighbour's history stays as it was.
        let target = b.position.checked_add(delta.signum());
        let (low, high) = match target {
            Some(t) if delta < 0 => (t, b.position),
            Some(t) => (b.position, t),
            None => (-1, -1),
        };
        let in_the_way = self
            .replica
            .project()
            .map(|project| {
                self.replica.store.items_of(project).any(|w| {
                    let w = self.intended.get(&w.id).unwrap_or(w);
                    w.id != a.id
                        && w.id != b.id
                        && w.status == a.status
                        && (low..=high).contains(&w.position)
                })
            })
            .unwrap_or(true);
        if let Some(target) = target.filter(|t| *t >= 0 && !in_the_way) {
            let req = proto::UpdateWorkItemRequest {
                position: Some(target),
                ..Default::default()
            };
            self.write(&a.id, Write::change("Reorder", req));
            return;
        }
        // No room: the two swap places.
        let (mut pa, mut pb) = (b.position, a.position);
        if pa == pb {
            // Equal positions: make the order explicit.
            if delta < 0 {
                pa = (pb - 1).max(0);
                if pa == pb {
                    pb += 1;
                }
            } else {
                pa = pb + 1;
            }
        }
        for (item, pos) in [(&a, pa), (&b, pb)] {
            if item.position != pos {
                let req = proto::UpdateWorkItemRequest {
                    position: Some(pos),
                    ..Default::default()
                };
                self.write(&item.id, Write::change("Reorder", req));
            }
        }
    }

    fn cycle_priority(&mut self) {
        self.update_selected("Priority", |item| {
            let next = Priority::parse(&item.priority)
                .unwrap_or(Priority::Medium)
                .cycle();
            Some(proto::UpdateWorkItemRequest {
                priority: Some(next.to_string()),
                ..Default::default()
            })
        });
    }

    /// Keeps lane/row inside the board, and moves to a focused card once it is there.
    fn settle_selection(&mut self) {
        let lanes = self.lane_ids();
        let lane_lens: Vec<usize> = lanes.iter().map(Vec::len).collect();
        let found = self.focus.as_ref().and_then(|id| {
            lanes
                .iter()
                .enumerate()
                .find_map(|(l, ids)| ids.iter().position(|x| x == id).map(|r| (l, r)))
        });
        drop(lanes);
        // The list's rows are ordered only for the list (on the board that would be a sort of
        // every card at every key).
        if self.view != View::Board {
            let list_ids: Vec<String> = self
                .list_cards()
                .iter()
                .map(|c| c.item.id.clone())
                .collect();
            if let Some(id) = &self.focus {
                if let Some(i) = list_ids.iter().position(|x| x == id) {
                    self.list_row = i;
                }
            }
            self.list_row = self.list_row.min(list_ids.len().saturating_sub(1));
        }
        if let (Some(id), Some((l, r))) = (self.focus.clone(), found) {
            self.lane = l;
            self.row = r;
            // Keep following the card until the move it was waiting for has landed.
            let landed = self
                .replica
                .store
                .work_items
                .get(&id)
                .and_then(|w| Status::parse(&w.status))
                .and_then(|s| Status::ALL.iter().position(|x| *x == s));
            // A move queued offline lands only once reconnected: found is enough.
            let queued = self.offline.is_pending(&id);
            if (landed == Some(l) || queued) && !self.busy() {
                self.focus = None;
            }
        }
        let len = lane_lens.get(self.lane).copied().unwrap_or(0);
        self.row = self.row.min(len.saturating_sub(1));
        let count = self.replica.store.projects.len();
        self.picker_row = self.picker_row.min(count.saturating_sub(1));
    }
}

fn next_type(t: ItemType) -> ItemType {
    match t {
        ItemType::Task => ItemType::Story,
        ItemType::Story => ItemType::Epic,
        ItemType::Epic => ItemType::Task,
    }
}

/// Why a connection failed, for people: "connect failed: IO error: Connection refused (os
/// error 111)" becomes "Connection refused".
pub fn short_reason(reason: &str) -> String {
    let mut r = reason.trim();
    for prefix in [
        "connect failed: ",
        "IO error: ",
        "io error: ",
        "connection error: ",
    ] {
        r = r.strip_prefix(prefix).unwrap_or(r);
    }
    let r = match r.rfind(" (os error ") {
        Some(i) if r.ends_with(')') => &r[..i],
        _ => r,
    };
    r.to_string()
}

/// A duration for people: `45s`, `12m`, `1h05m`.
pub fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// A project key from a title's initials (`Mobile banking app` → `MBA`), or its first letters
/// when it is one word (`Platform` → `PLAT`).
pub fn suggested_key(title: &str) -> String {
    let words: Vec<&str> = title
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let key: String = match words.as_slice() {
        [] => String::new(),
        [one] => one.chars().take(4).collect(),
        many => many
            .iter()
            .filter_map(|w| w.chars().next())
            .take(6)
            .collect(),
    };
    key.to_ascii_uppercase()
}
