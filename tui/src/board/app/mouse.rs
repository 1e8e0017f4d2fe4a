//! Clicks and the wheel (with the mouse on).
use super::*;

impl App {
    /// The mouse: the wheel moves the selection (or scrolls what is open), a click selects the
    /// card under it, a click on a lane's title moves the selected card into that lane. In the
    /// list, a click selects the row under it and a click on KEY, PRIO or CHANGED sorts by it.
    pub(super) fn on_mouse(&mut self, mouse: MouseEvent) {
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
            || self.replica.project().is_none()
        {
            return;
        }
        let area = Rect::new(0, 0, self.size.0, self.size.1);
        if self.view != View::Board {
            self.on_list_click(area, mouse);
            return;
        }
        let (lane, row) = (self.lane, self.row);
        let lanes = self.lanes();
        let hit = layout::hit(area, mouse.column, mouse.row, |l| {
            let titles = lanes.get(l).map_or_else(Vec::new, |cards| {
                cards.iter().map(Card::shown_title).collect()
            });
            (titles, (l == lane).then_some(row))
        });
        drop(lanes);
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

    /// A click in the list or the tree: on a row, selects it; on a sortable header, sorts.
    fn on_list_click(&mut self, area: Rect, mouse: MouseEvent) {
        let rows = self.list_cards().len();
        let tree = self.view == View::Tree;
        let hit = layout::list_hit(area, (mouse.column, mouse.row), tree, self.list_row, rows);
        let sort = match hit {
            Some(ListHit::Row(row)) => {
                self.list_row = row;
                return;
            }
            Some(ListHit::Header("KEY")) => Sort::Key,
            Some(ListHit::Header("PRIO")) => Sort::Priority,
            Some(ListHit::Header("CHANGED")) => Sort::Updated,
            _ => return,
        };
        if tree {
            self.say("The tree is in hierarchy order (v: the list sorts)".into());
            return;
        }
        self.focus = self.selected().map(|w| w.id.clone());
        self.view = View::List(sort);
    }
}
