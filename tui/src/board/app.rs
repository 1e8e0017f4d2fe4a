//! The board's state and how every event changes it. No terminal and no drawing here: the
//! runtime feeds events in (`App::update`), and `ui::draw` renders whatever the state is.
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

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

use super::layout::{self, Hit};

use super::find::{Candidate, Query};
use super::input::TextInput;
use super::keymap::{Command, Keymap};
use super::pick::{self, Choice, PickKind};
use super::undo::{self, Change, Entry, Origin};

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
    /// The keys in use (the defaults and the config file's remaps).
    pub keymap: Keymap,
}

/// One write of mine to a card.
#[derive(Debug, Clone)]
struct Write {
    /// For messages: "Priority", "Move", "Edit"…
    what: String,
    /// The fields to change (`work_item_id` and `expected_version` are filled in when sent).
    req: proto::UpdateWorkItemRequest,
    /// The version the change was based on, when it must not silently override what happened
    /// since (a title edit carries the version the edit started from); otherwise the version of
    /// my previous answered write, or the card's current one.
    base: Option<i32>,
    /// For an edit of a text: which, and the text it started from (then a conflict on other
    /// fields is none).
    started: Option<(TextField, String)>,
    /// The card as the board knew it when the write was sent: on a conflict, when none of the
    /// fields it writes changed since, the write goes again on the current version.
    sent_from: Option<proto::WorkItem>,
    /// Conflicts already met and got over that way.
    retries: u8,
    /// What its acceptance adds to the undo / redo stacks.
    origin: Origin,
}

/// How often a write goes again on the current version after conflicts that did not touch its
/// fields (someone else keeps changing the card), before the user is told.
const RETRIES: u8 = 3;

/// True when `a` and `b` agree on every field `req` sets.
fn same_fields(
    a: &proto::WorkItem,
    b: &proto::WorkItem,
    req: &proto::UpdateWorkItemRequest,
) -> bool {
    (req.title.is_none() || a.title == b.title)
        && (req.description.is_none() || a.description == b.description)
        && (req.status.is_none() || a.status == b.status)
        && (req.assignee_id.is_none() || a.assignee_id == b.assignee_id)
        && (req.sprint_id.is_none() || a.sprint_id == b.sprint_id)
        && (req.position.is_none() || a.position == b.position)
        && (req.priority.is_none() || a.priority == b.priority)
        && (req.story_points.is_none() || a.story_points == b.story_points)
        && (!req.update_parent || a.parent_id == b.parent_id)
}

impl Write {
    /// An ordinary change: applied on whatever the card is when its turn comes.
    fn change(what: &str, req: proto::UpdateWorkItemRequest) -> Self {
        Write {
            what: what.to_string(),
            req,
            base: None,
            started: None,
            sent_from: None,
            retries: 0,
            origin: Origin::User,
        }
    }

    /// A change that must be applied on version `base` (it was decided on that version).
    fn on_version(what: &str, req: proto::UpdateWorkItemRequest, base: i32) -> Self {
        Write {
            base: Some(base),
            ..Write::change(what, req)
        }
    }

    /// An edit of a text that started from version `base`, where the text was `started`.
    fn edit(field: TextField, text: String, base: i32, started: String) -> Self {
        let mut req = proto::UpdateWorkItemRequest::default();
        field.set(&mut req, text);
        Write {
            what: "Edit".into(),
            req,
            base: Some(base),
            started: Some((field, started)),
            sent_from: None,
            retries: 0,
            origin: Origin::User,
        }
    }
}

/// My writes to one card: at most one in flight, the others wait for its answer.
#[derive(Debug, Default)]
struct CardWrites {
    in_flight: Option<Write>,
    queued: VecDeque<Write>,
}

/// Copies the fields a request sets onto `item`.
fn apply_fields(item: &mut proto::WorkItem, req: &proto::UpdateWorkItemRequest) {
    if let Some(v) = &req.title {
        item.title = v.clone();
    }
    if let Some(v) = &req.description {
        item.description = Some(v.clone());
    }
    if let Some(v) = &req.status {
        item.status = v.clone();
    }
    if let Some(v) = &req.assignee_id {
        item.assignee_id = (!v.is_empty()).then(|| v.clone());
    }
    if let Some(v) = &req.sprint_id {
        item.sprint_id = (!v.is_empty()).then(|| v.clone());
    }
    if let Some(v) = req.position {
        item.position = v;
    }
    if let Some(v) = &req.priority {
        item.priority = v.clone();
    }
    if let Some(v) = req.story_points {
        item.story_points = Some(v);
    }
    if req.update_parent {
        item.parent_id = req.parent_id.clone().filter(|p| !p.is_empty());
    }
}

/// Folds `later` into `earlier`: the later value of each field wins.
fn fold_fields(earlier: &mut proto::UpdateWorkItemRequest, later: proto::UpdateWorkItemRequest) {
    macro_rules! take {
        ($($f:ident),*) => {$( if later.$f.is_some() { earlier.$f = later.$f; } )*};
    }
    take!(
        title,
        description,
        status,
        assignee_id,
        sprint_id,
        position,
        priority,
        story_points
    );
    if later.update_parent {
        earlier.update_parent = true;
        earlier.parent_id = later.parent_id;
    }
}

/// A card as the board shows it.
pub struct Card<'a> {
    pub item: &'a proto::WorkItem,
    pub key: String,
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
            keymap: Keymap::default(),
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
        let mut lanes: Vec<Vec<Card<'_>>> = Status::ALL.iter().map(|_| Vec::new()).collect();
        let Some(project) = self.replica.project() else {
            return lanes;
        };
        let query = Query::parse(&self.filter);
        for item in self.replica.store.items_of(project) {
            let item = self.intended.get(&item.id).unwrap_or(item);
            if self
                .sprint
                .as_ref()
                .is_some_and(|s| item.sprint_id.as_ref() != Some(s))
            {
                continue;
            }
            let key = self.key_of(item);
            if !query.is_empty() {
                let assignee = item
                    .assignee_id
                    .as_ref()
                    .and_then(|a| self.replica.store.users.get(a));
                let candidate = Candidate {
                    item,
                    key: &key,
                    assignee: assignee.map(String::as_str),
                    mine: item.assignee_id.as_deref() == Some(self.me.as_str()),
                };
                if !query.matches(&candidate) {
                    continue;
                }
            }
            if let Some(i) =
                Status::parse(&item.status).and_then(|s| Status::ALL.iter().position(|x| *x == s))
            {
                lanes[i].push(Card { item, key });
            }
        }
        for lane in &mut lanes {
            lane.sort_by_key(|c| (c.item.position, c.item.item_number));
        }
        lanes
    }

    pub fn selected(&self) -> Option<&proto::WorkItem> {
        let id = match self.view {
            View::Board => self.lanes().get(self.lane)?.get(self.row)?.item.id.clone(),
            View::List(_) | View::Tree => self.list_cards().get(self.list_row)?.item.id.clone(),
        };
        self.card(&id)
    }

    /// The cards of every lane (found and filtered as the lanes are) in the list view's order.
    pub fn list_cards(&self) -> Vec<Card<'_>> {
        let mut cards: Vec<Card<'_>> = self.lanes().into_iter().flatten().collect();
        let rank = |p: &str| match Priority::parse(p) {
            Some(Priority::Critical) => 0,
            Some(Priority::High) => 1,
            Some(Priority::Medium) => 2,
            Some(Priority::Low) => 3,
            None => 4,
        };
        match self.view {
            View::List(Sort::Priority) => {
                cards.sort_by_key(|c| (rank(&c.item.priority), c.item.item_number))
            }
            View::List(Sort::Updated) => {
                cards.sort_by_key(|c| (std::cmp::Reverse(c.item.updated_at), c.item.item_number))
            }
            View::Tree => return self.in_tree_order(cards),
            _ => cards.sort_by_key(|c| c.item.item_number),
        }
        cards
    }

    /// Cards as a hierarchy: each epic followed by its stories, each story by its tasks; cards
    /// whose parent is not shown come at the top level (epics first, then by key).
    fn in_tree_order<'a>(&self, mut cards: Vec<Card<'a>>) -> Vec<Card<'a>> {
        let type_rank = |w: &proto::WorkItem| match ItemType::from_proto(w.item_type) {
            Some(ItemType::Epic) => 0,
            Some(ItemType::Story) => 1,
            _ => 2,
        };
        cards.sort_by_key(|c| (type_rank(c.item), c.item.item_number));
        let shown: std::collections::HashSet<String> =
            cards.iter().map(|c| c.item.id.clone()).collect();
        let mut children: HashMap<String, Vec<Card<'a>>> = HashMap::new();
        let mut roots = Vec::new();
        for card in cards {
            match card.item.parent_id.clone().filter(|p| shown.contains(p)) {
                Some(parent) => children.entry(parent).or_default().push(card),
                None => roots.push(card),
            }
        }
        let mut ordered = Vec::new();
        let mut stack: Vec<Card<'a>> = roots.into_iter().rev().collect();
        while let Some(card) = stack.pop() {
            if let Some(kids) = children.remove(&card.item.id) {
                stack.extend(kids.into_iter().rev());
            }
            ordered.push(card);
        }
        // Anything left (a cycle in bad data) still shows.
        ordered.extend(children.into_values().flatten());
        ordered
    }

    /// How deep a card is in its hierarchy (0 for a card without a parent).
    pub fn depth(&self, item: &proto::WorkItem) -> usize {
        let mut depth = 0;
        let mut next = item.parent_id.as_deref();
        while let Some(parent) = next.and_then(|p| self.replica.store.work_items.get(p)) {
            depth += 1;
            if depth >= 3 {
                break;
            }
            next = parent.parent_id.as_deref();
        }
        depth
    }

    /// Done and all of a card's descendants (for an epic, its stories and their tasks).
    pub fn progress(&self, item: &proto::WorkItem) -> (usize, usize) {
        let store = &self.replica.store;
        let mut done = 0;
        let mut total = 0;
        let mut frontier = vec![item.id.clone()];
        let mut rounds = 0;
        while !frontier.is_empty() && rounds < 3 {
            rounds += 1;
            let kids: Vec<&proto::WorkItem> = store
                .items_of(&item.project_id)
                .filter(|w| w.parent_id.as_ref().is_some_and(|p| frontier.contains(p)))
                .collect();
            total += kids.len();
            done += kids
                .iter()
                .filter(|w| Status::parse(&w.status) == Some(Status::Done))
                .count();
            frontier = kids.iter().map(|w| w.id.clone()).collect();
        }
        (done, total)
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
        if self.popup == Popup::None {
            if let Some(next) = self.waiting_popups.pop_front() {
                self.popup = next;
            }
        }
        if !matches!(self.popup, Popup::Detail { .. }) {
            self.history = None;
        }
        self.settle_selection();
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

    fn on_net(&mut self, event: NetEvent) {
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
                let lost: usize = self
                    .writes
                    .values()
                    .map(|w| w.queued.len() + usize::from(w.in_flight.is_some()))
                    .sum();
                self.writes.clear();
                if lost > 0 {
                    self.say(format!(
                        "{lost} change(s) may not have been saved: connection lost"
                    ));
                }
                let attempt = self.attempt.max(1);
                self.link = Link::Reconnecting {
                    attempt,
                    reason: reason.clone(),
                };
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
        let outcomes = self.replica.on_net(&self.handle, &event);
        for outcome in outcomes {
            if let Outcome::Applied(applied) = outcome {
                self.on_applied(&applied, description.clone());
            }
        }
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

    /// A line for the activity strip, written before the event is applied (so a deleted card
    /// still has its key).
    fn describe(&self, msg: &WebSocketMessage) -> Option<String> {
        let project = self.replica.project()?;
        let item_key = |id: &str| {
            self.replica
                .store
                .work_items
                .get(id)
                .map(|w| self.key_of(w))
        };
        match msg.payload.as_ref()? {
            Payload::WorkItemCreated(e) => {
                let w = e.work_item.as_ref().filter(|w| w.project_id == project)?;
                Some(format!("created {} \"{}\"", self.key_of(w), w.title))
            }
            Payload::WorkItemUpdated(e) => {
                let w = e.work_item.as_ref().filter(|w| w.project_id == project)?;
                let key = self.key_of(w);
                let parts: Vec<String> = e
                    .changes
                    .iter()
                    .map(|c| describe_change(c, &key, self))
                    .collect();
                Some(if parts.is_empty() {
                    format!("updated {key}")
                } else {
                    parts.join(", ")
                })
            }
            Payload::WorkItemDeleted(e) => Some(format!("deleted {}", item_key(&e.work_item_id)?)),
            Payload::CommentCreated(e) => {
                let c = e.comment.as_ref()?;
                Some(format!(
                    "commented on {}: \"{}\"",
                    item_key(&c.work_item_id)?,
                    first_line(&c.content, 40)
                ))
            }
            Payload::CommentUpdated(e) => Some(format!(
                "edited a comment on {}",
                item_key(&e.comment.as_ref()?.work_item_id)?
            )),
            Payload::CommentDeleted(e) => Some(format!(
                "deleted a comment on {}",
                item_key(&e.work_item_id)?
            )),
            Payload::SprintCreated(e) => {
                Some(format!("created sprint \"{}\"", e.sprint.as_ref()?.name))
            }
            Payload::SprintUpdated(e) => {
                Some(format!("updated sprint \"{}\"", e.sprint.as_ref()?.name))
            }
            Payload::SprintDeleted(_) => Some("deleted a sprint".into()),
            Payload::ProjectUpdated(e) => {
                Some(format!("updated project {}", e.project.as_ref()?.key))
            }
            Payload::DependencyCreated(e) => {
                let d = e.dependency.as_ref()?;
                let verb = if d.dependency_type == proto::DependencyType::Blocks as i32 {
                    "blocks"
                } else {
                    "relates to"
                };
                Some(format!(
                    "linked {} {verb} {}",
                    item_key(&d.blocking_item_id)?,
                    item_key(&d.blocked_item_id)?
                ))
            }
            Payload::DependencyDeleted(e) => Some(format!(
                "unlinked {} and {}",
                item_key(&e.blocking_item_id)?,
                item_key(&e.blocked_item_id)?
            )),
            Payload::TimerStarted(e) => Some(format!(
                "started a timer on {}",
                item_key(&e.time_entry.as_ref()?.work_item_id)?
            )),
            Payload::TimerStopped(e) => {
                let t = e.time_entry.as_ref()?;
                Some(format!(
                    "stopped the timer on {} after {}",
                    item_key(&t.work_item_id)?,
                    duration(i64::from(t.duration_seconds.unwrap_or(0)))
                ))
            }
            Payload::TimeEntryCreated(e) => {
                let t = e.time_entry.as_ref()?;
                Some(format!(
                    "logged {} on {}",
                    duration(i64::from(t.duration_seconds.unwrap_or(0))),
                    item_key(&t.work_item_id)?
                ))
            }
            Payload::TimeEntryUpdated(e) => Some(format!(
                "edited time on {}",
                item_key(&e.time_entry.as_ref()?.work_item_id)?
            )),
            Payload::TimeEntryDeleted(e) => {
                Some(format!("deleted time on {}", item_key(&e.work_item_id)?))
            }
            _ => None,
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

    /// Changes a card: sent at once when no write of mine to it is in flight, else queued
    /// behind it (folded into the last queued change when that one is an ordinary change too)
    /// and sent with the version the previous answer gave. The card shows the result at once.
    fn write(&mut self, item_id: &str, write: Write) {
        let entry = self.writes.entry(item_id.to_string()).or_default();
        if entry.in_flight.is_none() {
            entry.queued.push_back(write);
            self.send_next(item_id, None);
        } else {
            match entry.queued.back_mut() {
                Some(last) if last.base.is_none() && write.base.is_none() => {
                    last.what = write.what.clone();
                    fold_fields(&mut last.req, write.req);
                }
                _ => entry.queued.push_back(write),
            }
        }
        self.refresh_intended();
    }

    /// Sends the next queued write of a card; `answered` is the version my previous write left.
    fn send_next(&mut self, item_id: &str, answered: Option<i32>) {
        let Some(entry) = self.writes.get_mut(item_id) else {
            return;
        };
        let Some(mut next) = entry.queued.pop_front() else {
            if entry.in_flight.is_none() {
                self.writes.remove(item_id);
            }
            return;
        };
        // The card as my previous write left it, when its answer is newer than the store (the
        // event may come after the answer): what this write changes from, for undo.
        let stored = self.replica.store.work_items.get(item_id).cloned();
        let current = match (self.answered.remove(item_id), stored) {
            (Some(a), Some(s)) if a.version > s.version => Some(a),
            (_, s) => s,
        };
        next.sent_from = current.clone();
        let Some(version) = next.base.or(answered).or(current.map(|w| w.version)) else {
            // The card is gone.
            self.writes.remove(item_id);
            return;
        };
        next.req.work_item_id = item_id.to_string();
        next.req.expected_version = version;
        let what = next.what.clone();
        match self.transmit(&what, Payload::UpdateWorkItemRequest(next.req.clone())) {
            Some(id) => {
                self.write_ids.insert(id, item_id.to_string());
                if let Some(entry) = self.writes.get_mut(item_id) {
                    entry.in_flight = Some(next);
                }
            }
            None => {
                self.writes.remove(item_id);
            }
        }
    }

    /// The answer to one of my writes: send the next one on the version it left, or explain why
    /// it failed (and drop what was queued behind it, which was meant to follow it).
    fn on_write_answer(&mut self, item_id: &str, msg: &WebSocketMessage) {
        let done = self
            .writes
            .get_mut(item_id)
            .and_then(|e| e.in_flight.take());
        let Some(done) = done else { return };
        match &msg.payload {
            Some(Payload::Error(e)) => {
                if e.code == "CONFLICT" && done.started.is_some() {
                    self.on_edit_conflict(item_id, done);
                    return;
                }
                // Someone else changed other fields of the card in between: my change still
                // means what it meant, so it goes again on the current version.
                let current = self.replica.store.work_items.get(item_id).cloned();
                if let (true, Some(before), Some(now)) = (
                    e.code == "CONFLICT" && done.base.is_none() && done.retries < RETRIES,
                    done.sent_from.as_ref(),
                    current,
                ) {
                    if same_fields(before, &now, &done.req) {
                        let again = Write {
                            retries: done.retries + 1,
                            ..done
                        };
                        if let Some(entry) = self.writes.get_mut(item_id) {
                            entry.queued.push_front(again);
                        }
                        self.send_next(item_id, Some(now.version));
                        return;
                    }
                }
                self.writes.remove(item_id);
                self.say(format!("{} failed: {}", done.what, e.message));
                // A refused edit of a text opens again with the text, never lost.
                let field = done.started.as_ref().map(|(f, _)| *f);
                let mine = field.and_then(|f| f.get(&done.req)).cloned();
                let card = self.replica.store.work_items.get(item_id);
                match (field, mine, card) {
                    (Some(TextField::Title), Some(mine), Some(card)) => {
                        let popup = Popup::EditTitle {
                            item_id: item_id.to_string(),
                            title: TextInput::with_max(&mine, TITLE_MAX),
                            base: card.version,
                            started: card.title.clone(),
                        };
                        self.show(popup);
                    }
                    (Some(TextField::Description), Some(mine), Some(card)) => {
                        let request = description_request(card, mine);
                        self.show(Popup::Unsaved {
                            request,
                            reason: e.message.clone(),
                        })
                    }
                    _ => {}
                }
            }
            Some(Payload::WorkItemUpdated(e)) => {
                self.remember(item_id, &done);
                if let Some(w) = &e.work_item {
                    self.answered.insert(item_id.to_string(), w.clone());
                }
                let version = e.work_item.as_ref().map(|w| w.version);
                self.send_next(item_id, version);
            }
            _ => self.send_next(item_id, None),
        }
    }

    /// An accepted write of mine goes on the undo (or, for an undo, the redo) stack.
    fn remember(&mut self, item_id: &str, done: &Write) {
        let Some(before) = done.sent_from.as_ref() else {
            return;
        };
        let change = Change {
            item_id: item_id.to_string(),
            before: undo::values_of(before, &done.req),
            after: undo::fields_of(&done.req),
        };
        match done.origin {
            Origin::Auto => {}
            Origin::Undo => self.redo.push(change),
            Origin::User | Origin::Redo => {
                if done.origin == Origin::User {
                    self.redo.clear();
                }
                self.undo.push(Entry::Change(Box::new(change)));
                if self.undo.len() > undo::DEPTH {
                    self.undo.remove(0);
                }
            }
        }
    }

    /// `u`: my last change undone (or my last deleted card back); Ctrl-R: the last undo redone.
    fn undo_or_redo(&mut self, origin: Origin) {
        let entry = match origin {
            Origin::Redo => self.redo.pop().map(|c| Entry::Change(Box::new(c))),
            _ => self.undo.pop(),
        };
        let verb = if origin == Origin::Redo {
            "redo"
        } else {
            "undo"
        };
        let change = match entry {
            None => {
                self.say(format!("Nothing to {verb}"));
                return;
            }
            Some(Entry::Deleted(item)) => {
                self.restore(*item);
                return;
            }
            Some(Entry::Change(change)) => *change,
        };
        let Some(card) = self.card(&change.item_id).cloned() else {
            self.say(format!("Cannot {verb}: the card was deleted"));
            return;
        };
        let key = self.key_of(&card);
        // Refused when someone else changed those fields since.
        if !undo::holds(&card, &change.after) {
            self.say(format!(
                "Cannot {verb}: {key} was changed by someone else since"
            ));
            return;
        }
        if undo::is_empty(&change.before) {
            self.say(format!("Cannot {verb} that change of {key}"));
            return;
        }
        self.focus = Some(card.id.clone());
        let what = if origin == Origin::Redo {
            "Redo"
        } else {
            "Undo"
        };
        let write = Write {
            origin,
            ..Write::change(what, change.before)
        };
        self.write(&change.item_id, write);
        self.say(format!("{what}: {key}"));
    }

    /// A card I deleted, created again with its fields (a new key: the protocol has no
    /// undelete); the rest of its fields follow once it exists.
    fn restore(&mut self, item: proto::WorkItem) {
        let parent = item
            .parent_id
            .clone()
            .filter(|p| self.replica.store.work_items.contains_key(p));
        let req = proto::CreateWorkItemRequest {
            item_type: item.item_type,
            title: item.title.clone(),
            description: item.description.clone(),
            parent_id: parent,
            project_id: item.project_id.clone(),
            status: Some(item.status.clone()),
            priority: Some(item.priority.clone()),
        };
        if let Some(id) = self.transmit("Undo delete", Payload::CreateWorkItemRequest(req)) {
            self.pending.insert(id.clone(), "Undo delete".into());
            self.restores.insert(id, item);
        }
    }

    /// The answer to a restore: the fields creation cannot set go on the new card.
    fn on_restored(&mut self, old: proto::WorkItem, created: &proto::WorkItem) {
        let old_key = self.key_of(&old);
        let new_key = self.key_of(created);
        self.focus = Some(created.id.clone());
        let req = proto::UpdateWorkItemRequest {
            assignee_id: old.assignee_id.clone(),
            sprint_id: old.sprint_id.clone(),
            story_points: old.story_points,
            ..Default::default()
        };
        if !undo::is_empty(&req) {
            let write = Write {
                origin: Origin::Auto,
                ..Write::on_version("Undo delete", req, created.version)
            };
            self.write(&created.id, write);
        }
        self.say(format!(
            "Undo: {old_key} is back as {new_key} (its comments and history stay with {old_key})"
        ));
    }

    /// My edit of a text was refused because the card changed since the edit started. When
    /// that text did not change, the edit goes again on the current version; otherwise both
    /// texts are shown and the user decides. Writes queued behind the edit go on either way.
    fn on_edit_conflict(&mut self, item_id: &str, done: Write) {
        let Some((field, started)) = done.started.clone() else {
            return;
        };
        let mine = field.get(&done.req).cloned().unwrap_or_default();
        let Some(current) = self.replica.store.work_items.get(item_id).cloned() else {
            self.writes.remove(item_id);
            self.say(format!(
                "Edit failed: the card was deleted (your text: {})",
                first_line(&mine, 60)
            ));
            return;
        };
        let theirs = field.value(&current);
        if started == theirs {
            let again = Write::edit(field, mine, current.version, theirs);
            if let Some(entry) = self.writes.get_mut(item_id) {
                entry.queued.push_front(again);
            }
            self.send_next(item_id, None);
            return;
        }
        self.send_next(item_id, None);
        self.show(Popup::Conflict {
            item_id: item_id.to_string(),
            field,
            mine,
            theirs,
        });
    }

    /// Asks the runtime for `$EDITOR` on the card's description, opening with `text`; the
    /// edit is based on the card as it is now.
    fn open_editor(&mut self, card: &proto::WorkItem, text: String) {
        self.editor = Some(description_request(card, text));
    }

    /// `E`: the selected card's description in `$EDITOR`.
    fn edit_description(&mut self, item_id: &str) {
        // Based on the card as the server last said (my pending writes do not touch it).
        let Some(card) = self.replica.store.work_items.get(item_id).cloned() else {
            return;
        };
        let text = self
            .card(item_id)
            .map(|c| TextField::Description.value(c))
            .unwrap_or_default();
        self.open_editor(&card, text);
    }

    /// The editor closed: save the text (a description on the version the edit started
    /// from), or keep it in front of the user when it cannot be saved.
    fn on_edited(&mut self, request: EditorRequest, result: Result<String, String>) {
        let text = match result {
            Ok(text) => text,
            Err(e) => {
                self.say(format!("Editor failed: {e}"));
                return;
            }
        };
        // Editors end a file with a line break; the text does not need it.
        let text = text.trim_end_matches(['\n', '\r']).to_string();
        let what = request.target.what();
        let (unchanged, max) = match &request.target {
            EditorTarget::Description { started, .. } => (text == *started, DESCRIPTION_MAX),
            EditorTarget::NewComment => (text.trim().is_empty(), COMMENT_MAX),
            EditorTarget::Comment { started, .. } => (text.trim() == started.trim(), COMMENT_MAX),
        };
        if unchanged {
            self.say(format!("Nothing to save: the {what} is unchanged or empty"));
            return;
        }
        let count = text.chars().count();
        let reason = if count > max {
            Some(format!("it is too long ({count}/{max} characters)"))
        } else if self.outbox.is_none() && self.handle.state() != LinkState::Connected {
            Some("the board is not connected".to_string())
        } else {
            None
        };
        if let Some(reason) = reason {
            let request = EditorRequest { text, ..request };
            self.show(Popup::Unsaved { request, reason });
            return;
        }
        match request.target {
            EditorTarget::Description { base, started } => {
                let write = Write::edit(TextField::Description, text, base, started);
                self.write(&request.item_id, write);
            }
            EditorTarget::NewComment => {
                let req = proto::CreateCommentRequest {
                    work_item_id: request.item_id,
                    content: text.trim().to_string(),
                };
                self.send("Comment", Payload::CreateCommentRequest(req));
            }
            EditorTarget::Comment { comment_id, .. } => {
                let req = proto::UpdateCommentRequest {
                    comment_id,
                    content: text.trim().to_string(),
                };
                self.send("Edit comment", Payload::UpdateCommentRequest(req));
            }
        }
    }

    /// `M` (through the picker): one of my comments in `$EDITOR`.
    fn edit_comment(&mut self, comment_id: &str) {
        let Some(comment) = self.replica.store.comments.get(comment_id) else {
            return;
        };
        self.editor = Some(EditorRequest {
            item_id: comment.work_item_id.clone(),
            text: comment.content.clone(),
            target: EditorTarget::Comment {
                comment_id: comment.id.clone(),
                started: comment.content.clone(),
            },
        });
    }

    /// Shows a popup now, or once the one in front (e.g. a text being typed) is closed.
    fn show(&mut self, popup: Popup) {
        if self.popup == Popup::None {
            self.popup = popup;
        } else {
            self.waiting_popups.push_back(popup);
        }
    }

    /// Recomputes how each card with writes of mine pending will look.
    fn refresh_intended(&mut self) {
        self.intended.clear();
        for (id, writes) in &self.writes {
            let Some(item) = self.replica.store.work_items.get(id) else {
                continue;
            };
            let mut item = item.clone();
            for w in writes.in_flight.iter().chain(writes.queued.iter()) {
                apply_fields(&mut item, &w.req);
            }
            self.intended.insert(id.clone(), item);
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
            Command::Priority => self.cycle_priority(),
            Command::Activity => self.popup = Popup::Activity { scroll: 0 },
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

    /// The list view's own handling of a command: moving through its rows and sorting. True
    /// when handled; every other command acts on the selected card as on the board.
    fn on_list_key(&mut self, command: Command) -> bool {
        // The rows the list shows: the body less the table's header and borders.
        let page = usize::from(self.size.1.saturating_sub(8)).max(1);
        match command {
            Command::CardPrev => self.list_row = self.list_row.saturating_sub(1),
            Command::CardNext => self.list_row += 1,
            Command::FirstCard => self.list_row = 0,
            Command::LastCard => self.list_row = usize::MAX,
            Command::PageUp => self.list_row = self.list_row.saturating_sub(page),
            Command::PageDown => self.list_row = self.list_row.saturating_add(page),
            Command::LanePrev | Command::LaneNext => {}
            Command::Sort => {
                if let View::List(sort) = self.view {
                    self.focus = self.selected().map(|w| w.id.clone());
                    self.view = View::List(sort.next());
                } else {
                    self.say("The tree is in hierarchy order (v: the list sorts)".into());
                }
            }
            Command::MoveCardUp | Command::MoveCardDown => {
                self.say("Cards are reordered in their lane: v goes back to the board".into())
            }
            _ => {
                // A new card goes into the selected card's lane.
                if let Some(status) = self.selected().and_then(|w| Status::parse(&w.status)) {
                    self.lane = Status::ALL.iter().position(|s| *s == status).unwrap_or(0);
                }
                return false;
            }
        }
        true
    }

    /// What the palette offers for `filter`: the card whose key it is first, then the
    /// commands, then the cards, each whose label holds it (any case).
    pub fn palette(&self, filter: &str) -> Vec<PaletteEntry> {
        let needle = filter.trim().to_lowercase();
        let mut entries: Vec<PaletteEntry> = self
            .keymap
            .described()
            .filter(|(command, _, _)| *command != Command::Palette)
            .map(|(command, keys, help)| {
                PaletteEntry::Command(command, format!("{help}  ({keys})"))
            })
            .collect();
        let mut cards: Vec<&proto::WorkItem> = self
            .replica
            .project()
            .map(|p| self.replica.store.items_of(p).collect())
            .unwrap_or_default();
        cards.sort_by_key(|w| w.item_number);
        entries.extend(
            cards.into_iter().map(|w| {
                PaletteEntry::Card(w.id.clone(), format!("{} {}", self.key_of(w), w.title))
            }),
        );
        entries.retain(|e| e.label().to_lowercase().contains(&needle));
        // A card named by its exact key comes first.
        if let Some(i) = entries.iter().position(|e| match e {
            PaletteEntry::Card(_, label) => label
                .split(' ')
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case(filter.trim())),
            PaletteEntry::Command(..) => false,
        }) {
            let exact = entries.remove(i);
            entries.insert(0, exact);
        }
        entries
    }

    /// How many cards a lane shows at the current terminal size (PgUp/PgDn move by this).
    fn page(&self) -> usize {
        let (_, height) = self.size;
        // Header, activity, status bar and the lane's borders; three rows a card.
        let activity = if height >= 20 { 2 } else { 1 };
        let inner = height.saturating_sub(1 + activity + 1 + 2);
        usize::from(inner / 3).max(1)
    }

    fn on_popup_key(&mut self, key: KeyEvent) {
        let popup = std::mem::replace(&mut self.popup, Popup::None);
        self.popup = match popup {
            Popup::None => Popup::None,
            Popup::Help { scroll } => match key.code {
                KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q') | KeyCode::Enter => {
                    Popup::None
                }
                KeyCode::Down | KeyCode::Char('j') => Popup::Help {
                    scroll: scroll.saturating_add(1),
                },
                KeyCode::Up | KeyCode::Char('k') => Popup::Help {
                    scroll: scroll.saturating_sub(1),
                },
                _ => Popup::Help { scroll },
            },
            Popup::Pick {
                item_id,
                kind,
                mut filter,
                row,
                from_detail,
            } => {
                let choices = self.choices(kind, &item_id, filter.text());
                let back = |app: &mut App, item_id: String| {
                    if from_detail {
                        app.open_detail(item_id);
                        std::mem::replace(&mut app.popup, Popup::None)
                    } else {
                        Popup::None
                    }
                };
                match key.code {
                    KeyCode::Esc => back(self, item_id),
                    KeyCode::Enter => {
                        if let Some(choice) = choices.into_iter().nth(row) {
                            self.pick(kind, &item_id, choice.value);
                        }
                        back(self, item_id)
                    }
                    KeyCode::Up => Popup::Pick {
                        item_id,
                        kind,
                        filter,
                        row: row.saturating_sub(1),
                        from_detail,
                    },
                    KeyCode::Down => Popup::Pick {
                        item_id,
                        kind,
                        filter,
                        row: (row + 1).min(choices.len().saturating_sub(1)),
                        from_detail,
                    },
                    _ => {
                        let before = filter.text().to_string();
                        filter.on_key(key);
                        // A new filter starts at its first match.
                        let row = if filter.text() == before { row } else { 0 };
                        Popup::Pick {
                            item_id,
                            kind,
                            filter,
                            row,
                            from_detail,
                        }
                    }
                }
            }
            Popup::Activity { scroll } => match key.code {
                KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('A') => Popup::None,
                KeyCode::Down | KeyCode::Char('j') => Popup::Activity {
                    scroll: scroll.saturating_add(1),
                },
                KeyCode::Up | KeyCode::Char('k') => Popup::Activity {
                    scroll: scroll.saturating_sub(1),
                },
                KeyCode::PageDown => Popup::Activity {
                    scroll: scroll.saturating_add(self.size.1 / 2),
                },
                KeyCode::PageUp => Popup::Activity {
                    scroll: scroll.saturating_sub(self.size.1 / 2),
                },
                KeyCode::Home | KeyCode::Char('g') => Popup::Activity { scroll: 0 },
                _ => Popup::Activity { scroll },
            },
            Popup::Palette { mut filter, row } => {
                let count = self.palette(filter.text()).len();
                match key.code {
                    KeyCode::Esc => Popup::None,
                    KeyCode::Enter => {
                        match self.palette(filter.text()).into_iter().nth(row) {
                            Some(PaletteEntry::Command(command, _)) => {
                                self.popup = Popup::None;
                                self.run(command);
                                // The command may have opened a popup of its own.
                                std::mem::replace(&mut self.popup, Popup::None)
                            }
                            Some(PaletteEntry::Card(id, _)) => {
                                self.focus = Some(id);
                                Popup::None
                            }
                            None => Popup::Palette { filter, row },
                        }
                    }
                    KeyCode::Up => Popup::Palette {
                        filter,
                        row: row.saturating_sub(1),
                    },
                    KeyCode::Down => Popup::Palette {
                        filter,
                        row: (row + 1).min(count.saturating_sub(1)),
                    },
                    _ => {
                        let before = filter.text().to_string();
                        filter.on_key(key);
                        let row = if filter.text() == before { row } else { 0 };
                        Popup::Palette { filter, row }
                    }
                }
            }
            Popup::NewProject {
                mut title,
                key: mut project_key,
                on_key,
                key_typed,
            } => match key.code {
                KeyCode::Esc => Popup::None,
                KeyCode::Tab | KeyCode::BackTab => Popup::NewProject {
                    title,
                    key: project_key,
                    on_key: !on_key,
                    key_typed,
                },
                KeyCode::Enter => {
                    let checked = domain::project_key(project_key.text());
                    match (title.text().trim(), checked) {
                        ("", _) => {
                            self.say("A project needs a title".into());
                            Popup::NewProject {
                                title,
                                key: project_key,
                                on_key: false,
                                key_typed,
                            }
                        }
                        (_, Err(e)) => {
                            self.say(format!("Key: {}", e.message));
                            Popup::NewProject {
                                title,
                                key: project_key,
                                on_key: true,
                                key_typed,
                            }
                        }
                        (name, Ok(checked_key)) if !self.offline() => {
                            let req = proto::CreateProjectRequest {
                                title: name.to_string(),
                                description: None,
                                key: checked_key,
                            };
                            if let Some(id) =
                                self.transmit("New project", Payload::CreateProjectRequest(req))
                            {
                                self.pending.insert(id.clone(), "New project".into());
                                self.new_project = Some(id);
                            }
                            Popup::None
                        }
                        _ => Popup::NewProject {
                            title,
                            key: project_key,
                            on_key,
                            key_typed,
                        },
                    }
                }
                _ if on_key => {
                    project_key.on_key(key);
                    Popup::NewProject {
                        title,
                        key: project_key,
                        on_key,
                        key_typed: true,
                    }
                }
                _ => {
                    title.on_key(key);
                    if !key_typed {
                        project_key = TextInput::new(&suggested_key(title.text()));
                    }
                    Popup::NewProject {
                        title,
                        key: project_key,
                        on_key,
                        key_typed,
                    }
                }
            },
            Popup::Sprints {
                row,
                naming: Some(mut name),
            } => match key.code {
                KeyCode::Esc => Popup::Sprints { row, naming: None },
                KeyCode::Enter if name.too_long() => {
                    self.say_too_long("Sprint name", &name);
                    Popup::Sprints {
                        row,
                        naming: Some(name),
                    }
                }
                KeyCode::Enter if !name.text().trim().is_empty() => {
                    self.create_sprint(name.text().trim().to_string());
                    Popup::Sprints { row, naming: None }
                }
                _ => {
                    name.on_key(key);
                    Popup::Sprints {
                        row,
                        naming: Some(name),
                    }
                }
            },
            Popup::Sprints { row, naming: None } => {
                let sprints = self.sprints();
                let chosen = row.checked_sub(1).and_then(|i| sprints.get(i)).cloned();
                match key.code {
                    KeyCode::Esc | KeyCode::Char('q') => Popup::None,
                    KeyCode::Up | KeyCode::Char('k') => Popup::Sprints {
                        row: row.saturating_sub(1),
                        naming: None,
                    },
                    KeyCode::Down | KeyCode::Char('j') => Popup::Sprints {
                        row: (row + 1).min(sprints.len()),
                        naming: None,
                    },
                    KeyCode::Enter => {
                        self.sprint = chosen.map(|s| s.id);
                        self.row = 0;
                        Popup::None
                    }
                    KeyCode::Char('n') => Popup::Sprints {
                        row,
                        naming: Some(TextInput::with_max("", SPRINT_NAME_MAX)),
                    },
                    KeyCode::Char(c @ ('s' | 'c')) => {
                        let target = if c == 's' {
                            SprintStatus::Active
                        } else {
                            SprintStatus::Completed
                        };
                        if let Some(sprint) = chosen {
                            self.set_sprint_status(&sprint, target);
                        }
                        Popup::Sprints { row, naming: None }
                    }
                    _ => Popup::Sprints { row, naming: None },
                }
            }
            Popup::Points { item_id, mut input } => match key.code {
                KeyCode::Esc => Popup::None,
                KeyCode::Enter => match input.text().trim().parse::<i32>() {
                    Ok(points) if (0..=STORY_POINTS_MAX).contains(&points) => {
                        let unchanged = self
                            .card(&item_id)
                            .is_some_and(|w| w.story_points == Some(points));
                        if !unchanged {
                            let req = proto::UpdateWorkItemRequest {
                                story_points: Some(points),
                                ..Default::default()
                            };
                            self.write(&item_id, Write::change("Points", req));
                        }
                        Popup::None
                    }
                    _ => {
                        self.say(format!(
                            "Story points are a whole number from 0 to {STORY_POINTS_MAX}"
                        ));
                        Popup::Points { item_id, input }
                    }
                },
                _ => {
                    input.on_key(key);
                    Popup::Points { item_id, input }
                }
            },
            Popup::ConfirmDelete { item_id } => {
                if matches!(key.code, KeyCode::Char('y') | KeyCode::Char('Y')) {
                    let card = self.replica.store.work_items.get(&item_id).cloned();
                    let req = proto::DeleteWorkItemRequest {
                        work_item_id: item_id,
                    };
                    if let Some(id) = self.transmit("Delete", Payload::DeleteWorkItemRequest(req)) {
                        self.pending.insert(id.clone(), "Delete".into());
                        if let Some(card) = card {
                            self.deletes.insert(id, card);
                        }
                    }
                }
                Popup::None
            }
            Popup::Filter { mut text } => match key.code {
                KeyCode::Enter => {
                    self.filter = text.text().trim().to_string();
                    self.row = 0;
                    Popup::None
                }
                KeyCode::Esc => Popup::None,
                _ => {
                    text.on_key(key);
                    self.filter = text.text().trim().to_string();
                    Popup::Filter { text }
                }
            },
            Popup::NewCard {
                mut title,
                item_type,
            } => match key.code {
                KeyCode::Esc => Popup::None,
                KeyCode::Tab => Popup::NewCard {
                    title,
                    item_type: next_type(item_type),
                },
                KeyCode::Enter if title.too_long() => {
                    self.say_too_long("Title", &title);
                    Popup::NewCard { title, item_type }
                }
                KeyCode::Enter if self.offline() => Popup::NewCard { title, item_type },
                KeyCode::Enter if !title.text().trim().is_empty() => {
                    self.create_card(title.text().trim().to_string(), item_type);
                    Popup::None
                }
                _ => {
                    title.on_key(key);
                    Popup::NewCard { title, item_type }
                }
            },
            Popup::EditTitle {
                item_id,
                mut title,
                base,
                started,
            } => match key.code {
                KeyCode::Esc => Popup::None,
                KeyCode::Enter if title.too_long() || self.offline() => {
                    if title.too_long() {
                        self.say_too_long("Title", &title);
                    }
                    Popup::EditTitle {
                        item_id,
                        title,
                        base,
                        started,
                    }
                }
                KeyCode::Enter if !title.text().trim().is_empty() => {
                    let title = title.text().trim().to_string();
                    if title != started {
                        self.write(
                            &item_id,
                            Write::edit(TextField::Title, title, base, started),
                        );
                    }
                    Popup::None
                }
                _ => {
                    title.on_key(key);
                    Popup::EditTitle {
                        item_id,
                        title,
                        base,
                        started,
                    }
                }
            },
            Popup::Conflict {
                item_id,
                field,
                mine,
                theirs,
            } => {
                let current = self.replica.store.work_items.get(&item_id).cloned();
                let same = |item_id, mine, theirs| Popup::Conflict {
                    item_id,
                    field,
                    mine,
                    theirs,
                };
                match (key.code, current) {
                    // The card is gone: nothing to save to; the text stays readable until Esc.
                    (KeyCode::Esc, None) => Popup::None,
                    (_, None) => same(item_id, mine, theirs),
                    (KeyCode::Char('m'), Some(_)) if self.offline() => same(item_id, mine, theirs),
                    (KeyCode::Char('m'), Some(card)) => {
                        let started = field.value(&card);
                        self.write(&item_id, Write::edit(field, mine, card.version, started));
                        Popup::None
                    }
                    (KeyCode::Char('t'), Some(_)) => Popup::None,
                    (KeyCode::Char('e') | KeyCode::Esc, Some(card)) => match field {
                        TextField::Title => Popup::EditTitle {
                            item_id,
                            title: TextInput::with_max(&mine, TITLE_MAX),
                            base: card.version,
                            started: card.title,
                        },
                        TextField::Description => {
                            self.open_editor(&card, mine);
                            Popup::None
                        }
                    },
                    _ => same(item_id, mine, theirs),
                }
            }
            Popup::Unsaved { request, reason } => match key.code {
                KeyCode::Char('e') => {
                    let card = self.replica.store.work_items.get(&request.item_id).cloned();
                    match (&request.target, card) {
                        // A description is edited again from the card as it is now.
                        (EditorTarget::Description { .. }, Some(card)) => {
                            self.open_editor(&card, request.text)
                        }
                        (EditorTarget::Description { .. }, None) => {
                            self.say("The card was deleted".into())
                        }
                        _ => self.editor = Some(request),
                    }
                    Popup::None
                }
                KeyCode::Esc => Popup::None,
                _ => Popup::Unsaved { request, reason },
            },
            Popup::Detail {
                item_id,
                comment: Some(mut text),
            } => match key.code {
                KeyCode::Esc => Popup::Detail {
                    item_id,
                    comment: None,
                },
                KeyCode::Enter if text.too_long() || self.offline() => {
                    if text.too_long() {
                        self.say_too_long("Comment", &text);
                    }
                    Popup::Detail {
                        item_id,
                        comment: Some(text),
                    }
                }
                KeyCode::Enter if !text.text().trim().is_empty() => {
                    let req = proto::CreateCommentRequest {
                        work_item_id: item_id.clone(),
                        content: text.text().trim().to_string(),
                    };
                    self.send("Comment", Payload::CreateCommentRequest(req));
                    Popup::Detail {
                        item_id,
                        comment: None,
                    }
                }
                _ => {
                    text.on_key(key);
                    Popup::Detail {
                        item_id,
                        comment: Some(text),
                    }
                }
            },
            Popup::Detail {
                item_id,
                comment: None,
            } => match key.code {
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => Popup::None,
                KeyCode::Char('c') => Popup::Detail {
                    item_id,
                    comment: Some(TextInput::with_max("", COMMENT_MAX)),
                },
                KeyCode::Char('E') => {
                    self.edit_description(&item_id);
                    Popup::Detail {
                        item_id,
                        comment: None,
                    }
                }
                KeyCode::Char('C') => {
                    self.editor = Some(EditorRequest {
                        item_id: item_id.clone(),
                        text: String::new(),
                        target: EditorTarget::NewComment,
                    });
                    Popup::Detail {
                        item_id,
                        comment: None,
                    }
                }
                KeyCode::Char(c @ ('b' | 'B' | 'R' | 'x' | 'M' | 'D')) => {
                    let kind = match c {
                        'b' => PickKind::Blocks,
                        'B' => PickKind::BlockedBy,
                        'R' => PickKind::RelatesTo,
                        'M' => PickKind::EditComment,
                        'D' => PickKind::DeleteComment,
                        _ => PickKind::Unlink,
                    };
                    match self.pick_popup(kind, &item_id, true) {
                        Some(popup) => popup,
                        None => Popup::Detail {
                            item_id,
                            comment: None,
                        },
                    }
                }
                KeyCode::Char('t') => {
                    self.toggle_timer(&item_id);
                    Popup::Detail {
                        item_id,
                        comment: None,
                    }
                }
                KeyCode::Down | KeyCode::Char('j') => {
                    self.detail_scroll = self.detail_scroll.saturating_add(1);
                    Popup::Detail {
                        item_id,
                        comment: None,
                    }
                }
                KeyCode::Up | KeyCode::Char('k') => {
                    self.detail_scroll = self.detail_scroll.saturating_sub(1);
                    Popup::Detail {
                        item_id,
                        comment: None,
                    }
                }
                _ if !self.replica.store.work_items.contains_key(&item_id) => Popup::None,
                _ => Popup::Detail {
                    item_id,
                    comment: None,
                },
            },
        };
    }

    /// The mouse: the wheel moves the selection (or scrolls what is open), a click selects the
    /// card under it, a click on a lane's title moves the selected card into that lane.
    fn on_mouse(&mut self, mouse: MouseEvent) {
        let wheel = match mouse.kind {
            MouseEventKind::ScrollDown => Some(KeyCode::Down),
            MouseEventKind::ScrollUp => Some(KeyCode::Up),
            _ => None,
        };
        if let Some(code) = wheel {
            // As the arrow keys do, wherever the arrows scroll.
            let scrollable = matches!(
                self.popup,
                Popup::None | Popup::Help { .. } | Popup::Activity { .. }
            ) || matches!(self.popup, Popup::Detail { comment: None, .. });
            if scrollable {
                self.on_key(KeyEvent::new(code, KeyModifiers::NONE));
            }
            return;
        }
        if mouse.kind != MouseEventKind::Down(MouseButton::Left)
            || self.popup != Popup::None
            || self.picking
            || self.view != View::Board
            || self.replica.project().is_none()
        {
            return;
        }
        let area = Rect::new(0, 0, self.size.0, self.size.1);
        let (lane, row) = (self.lane, self.row);
        let hit = layout::hit(area, mouse.column, mouse.row, |l| {
            (l == lane).then_some(row)
        });
        match hit {
            Some(Hit::Card(l, r)) => {
                let len = self.lanes().get(l).map_or(0, Vec::len);
                if r < len {
                    self.lane = l;
                    self.row = r;
                }
            }
            Some(Hit::LaneTitle(l)) if l != self.lane => {
                let Some(item) = self.selected().cloned() else {
                    self.lane = l;
                    return;
                };
                self.focus = Some(item.id.clone());
                let req = proto::UpdateWorkItemRequest {
                    status: Some(Status::ALL[l].to_string()),
                    ..Default::default()
                };
                self.write(&item.id, Write::change("Move", req));
            }
            _ => {}
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
        let lanes = self.lanes();
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
        let (a, b) = (
            lane[self.row].item.clone(),
            lane[neighbour_row].item.clone(),
        );
        drop(lanes);
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

    /// The open project's sprints, by start date.
    pub fn sprints(&self) -> Vec<proto::Sprint> {
        let Some(project) = self.replica.project() else {
            return Vec::new();
        };
        let mut sprints: Vec<proto::Sprint> = self
            .replica
            .store
            .sprints
            .values()
            .filter(|s| s.project_id == project)
            .cloned()
            .collect();
        sprints.sort_by_key(|s| (s.start_date, s.id.clone()));
        sprints
    }

    /// A new sprint named `name`, from today (UTC) for two weeks.
    fn create_sprint(&mut self, name: String) {
        let Some(project) = self.replica.project().map(str::to_string) else {
            return;
        };
        let today = self.clock - self.clock.rem_euclid(86_400);
        let req = proto::CreateSprintRequest {
            project_id: project,
            name,
            goal: None,
            start_date: today,
            end_date: today + SPRINT_DAYS * 86_400,
        };
        self.send("New sprint", Payload::CreateSprintRequest(req));
    }

    /// Starts (or completes) a sprint, on the version the board knows.
    fn set_sprint_status(&mut self, sprint: &proto::Sprint, target: SprintStatus) {
        let current = SprintStatus::from_proto(sprint.status);
        if current.is_some_and(|c| !c.can_become(target)) {
            let from = current.map_or("?", |c| c.label());
            self.say(format!(
                "Sprint \"{}\" is {from}: it cannot become {}",
                sprint.name,
                target.label()
            ));
            return;
        }
        let what = if target == SprintStatus::Active {
            "Start sprint"
        } else {
            "Complete sprint"
        };
        let req = proto::UpdateSprintRequest {
            sprint_id: sprint.id.clone(),
            expected_version: sprint.version,
            status: Some(target.to_proto() as i32),
            ..Default::default()
        };
        self.send(what, Payload::UpdateSprintRequest(req));
    }

    fn cycle_sprint(&mut self) {
        let Some(project) = self.replica.project() else {
            return;
        };
        let mut sprints: Vec<&proto::Sprint> = self
            .replica
            .store
            .sprints
            .values()
            .filter(|s| s.project_id == project)
            .collect();
        sprints.sort_by_key(|s| (s.start_date, s.id.clone()));
        let next = match &self.sprint {
            None => sprints.first().map(|s| s.id.clone()),
            Some(cur) => {
                let i = sprints.iter().position(|s| &s.id == cur);
                i.and_then(|i| sprints.get(i + 1)).map(|s| s.id.clone())
            }
        };
        self.sprint = next;
        self.row = 0;
    }

    /// What a picker offers for a card (see [`pick::choices`]).
    pub fn choices(&self, kind: PickKind, item_id: &str, filter: &str) -> Vec<Choice> {
        match self.card(item_id) {
            Some(item) => pick::choices(self, kind, item, filter),
            None => Vec::new(),
        }
    }

    /// `a` / `S` / `P`: the picker, on the card's current value.
    fn open_pick(&mut self, kind: PickKind) {
        let Some(id) = self.selected().map(|w| w.id.clone()) else {
            return;
        };
        if let Some(popup) = self.pick_popup(kind, &id, false) {
            self.popup = popup;
        }
    }

    /// A picker for the card `item_id`, on its current value (None, with a word why, when the
    /// card has nothing to pick).
    fn pick_popup(&mut self, kind: PickKind, item_id: &str, from_detail: bool) -> Option<Popup> {
        let item = self.card(item_id)?;
        let no_parent = ItemType::from_proto(item.item_type)
            .and_then(ItemType::allowed_parent)
            .is_none();
        if kind == PickKind::Parent && no_parent {
            self.say("An epic has no parent".into());
            return None;
        }
        let current = kind.current(item);
        let item_id = item.id.clone();
        let choices = self.choices(kind, &item_id, "");
        if choices.is_empty() && !kind.is_field() {
            self.say(match kind {
                PickKind::Unlink => "This card has no links".into(),
                PickKind::EditComment | PickKind::DeleteComment => {
                    "You have no comments on this card".into()
                }
                _ => "Nothing to pick".into(),
            });
            return None;
        }
        let row = choices
            .iter()
            .position(|c| kind.is_field() && c.value == current)
            .unwrap_or(0);
        Some(Popup::Pick {
            item_id,
            kind,
            filter: TextInput::new(""),
            row,
            from_detail,
        })
    }

    /// Sets the picked field of the card to `value` (None clears it) unless it already is, or
    /// adds / removes the picked link.
    fn pick(&mut self, kind: PickKind, item_id: &str, value: Option<String>) {
        let Some(card) = self.card(item_id) else {
            return;
        };
        if kind.is_field() && kind.current(card) == value {
            return;
        }
        match kind.action(item_id, value) {
            pick::Action::Update(req) => self.write(item_id, Write::change(kind.what(), req)),
            pick::Action::Send(payload) => self.send(kind.what(), payload),
            pick::Action::EditComment(comment_id) => self.edit_comment(&comment_id),
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
        let lane_lens: Vec<usize>;
        let mut found = None;
        {
            let lanes = self.lanes();
            lane_lens = lanes.iter().map(Vec::len).collect();
            if let Some(id) = &self.focus {
                found = lanes.iter().enumerate().find_map(|(l, cards)| {
                    cards.iter().position(|c| &c.item.id == id).map(|r| (l, r))
                });
            }
        }
        let list_ids: Vec<String> = self
            .list_cards()
            .iter()
            .map(|c| c.item.id.clone())
            .collect();
        if let (View::List(_) | View::Tree, Some(id)) = (self.view, &self.focus) {
            if let Some(i) = list_ids.iter().position(|x| x == id) {
                self.list_row = i;
            }
        }
        self.list_row = self.list_row.min(list_ids.len().saturating_sub(1));
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
            if landed == Some(l) && !self.busy() {
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

/// The first line of `s`, cut to `max` columns.
fn first_line(s: &str, max: usize) -> String {
    crate::width::truncate(s.lines().next().unwrap_or(""), max)
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

/// One change in words, e.g. "moved PM-4 to Review".
fn describe_change(c: &proto::FieldChange, key: &str, app: &App) -> String {
    let new = c.new_value.clone().unwrap_or_default();
    match c.field_name.as_str() {
        "status" => format!(
            "moved {key} to {}",
            Status::parse(&new).map(|s| s.label()).unwrap_or(&new)
        ),
        "assignee_id" if new.is_empty() => format!("unassigned {key}"),
        "assignee_id" => format!("assigned {key} to {}", app.user_name(&new)),
        "title" => format!("renamed {key} to \"{}\"", first_line(&new, 30)),
        "position" => format!("reordered {key}"),
        "sprint_id" if new.is_empty() => format!("took {key} out of its sprint"),
        "sprint_id" => format!("put {key} in a sprint"),
        "parent_id" => format!("changed the parent of {key}"),
        "description" => format!("edited the description of {key}"),
        "priority" => format!("set {key} to {new} priority"),
        "story_points" if new.is_empty() => format!("cleared the points of {key}"),
        "story_points" => format!("estimated {key} at {new} points"),
        other => format!("set {} of {key} to {new}", other.replace('_', " ")),
    }
}

/// `$EDITOR` on a card's description, based on the card as it is.
fn description_request(card: &proto::WorkItem, text: String) -> EditorRequest {
    EditorRequest {
        item_id: card.id.clone(),
        text,
        target: EditorTarget::Description {
            base: card.version,
            started: TextField::Description.value(card),
        },
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
