//! The list and hierarchy views and the command palette: the cards in their order, moving
//! through them, and what the palette offers.
use super::*;

impl App {
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
    pub(super) fn in_tree_order<'a>(&self, mut cards: Vec<Card<'a>>) -> Vec<Card<'a>> {
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

    /// The list view's own handling of a command: moving through its rows and sorting. True
    /// when handled; every other command acts on the selected card as on the board.
    pub(super) fn on_list_key(&mut self, command: Command) -> bool {
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
    pub(super) fn page(&self) -> usize {
        let (_, height) = self.size;
        // Header, activity, status bar and the lane's borders; three rows a card (a wrapped
        // title makes a card one row taller: a page then moves a little past the last one shown).
        let activity = if height >= 20 { 2 } else { 1 };
        let inner = height.saturating_sub(1 + activity + 1 + 2);
        usize::from(inner / 3).max(1)
    }
}
