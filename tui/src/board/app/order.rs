//! The board's lanes in order: which cards each lane shows (found, filtered) and in what order,
//! computed once per change of what they depend on, not once per frame or key. On a project of
//! 50,000 items one computation walks and sorts them all; a key that only moves the selection
//! then costs what the few cards on screen cost.
use std::cell::RefCell;
use std::rc::Rc;

use super::*;

/// Card ids of each lane (in `Status::ALL` order), in board order.
pub type LaneIds = Vec<Vec<String>>;

/// Everything the lanes are computed from: equal inputs, equal lanes.
#[derive(Debug, Clone, PartialEq)]
struct Inputs {
    project: Option<String>,
    /// The store's revision (items, projects' keys and users' names for the filter).
    store: u64,
    /// The revision of my pending writes as the board shows them.
    intended: u64,
    filter: String,
    sprint: Option<String>,
}

/// The last computed lanes and what they were computed from.
#[derive(Debug, Default)]
pub struct LaneCache(RefCell<Option<(Inputs, Rc<LaneIds>)>>);

impl App {
    fn lane_inputs(&self) -> Inputs {
        Inputs {
            project: self.replica.project().map(str::to_string),
            store: self.replica.store.revision(),
            intended: self.intended_revision,
            filter: self.filter.clone(),
            sprint: self.sprint.clone(),
        }
    }

    /// The ids of each lane's cards, filtered and in board order (computed again only when
    /// the store, my pending writes, the filter, the sprint or the project changed).
    pub fn lane_ids(&self) -> Rc<LaneIds> {
        let inputs = self.lane_inputs();
        if let Some((cached, lanes)) = self.lane_cache.0.borrow().as_ref() {
            if *cached == inputs {
                return lanes.clone();
            }
        }
        let lanes = Rc::new(self.compute_lane_ids());
        *self.lane_cache.0.borrow_mut() = Some((inputs, lanes.clone()));
        lanes
    }

    /// The card at `row` of `lane`, as the board shows it.
    pub fn card_at(&self, lane: usize, row: usize) -> Option<&proto::WorkItem> {
        let id = self.lane_ids().get(lane)?.get(row)?.clone();
        self.card(&id)
    }

    fn compute_lane_ids(&self) -> LaneIds {
        let mut lanes: Vec<Vec<(i32, i32, &str)>> =
            Status::ALL.iter().map(|_| Vec::new()).collect();
        let Some(project) = self.replica.project() else {
            return lanes.into_iter().map(|_| Vec::new()).collect();
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
            if !query.is_empty() {
                let key = self.key_of(item);
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
                lanes[i].push((item.position, item.item_number, item.id.as_str()));
            }
        }
        lanes
            .into_iter()
            .map(|mut lane| {
                lane.sort_unstable();
                lane.into_iter().map(|(_, _, id)| id.to_string()).collect()
            })
            .collect()
    }
}
