//! Where things are on the screen: the one computation the drawing and the mouse share, so a
//! click lands on what was drawn there.
use ratatui::layout::{Constraint, Layout, Rect};

use pm_shared::domain::Status;

/// Rows a card takes in a lane.
pub const CARD_HEIGHT: u16 = 3;

/// The screen's bands: header, body (lanes or list), activity strip, status bar.
pub struct Bands {
    pub header: Rect,
    pub body: Rect,
    pub activity: Rect,
    pub status: Rect,
}

pub fn bands(area: Rect) -> Bands {
    let [header, body, activity, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(5),
        Constraint::Length(if area.height >= 20 { 2 } else { 1 }),
        Constraint::Length(1),
    ])
    .areas(area);
    Bands {
        header,
        body,
        activity,
        status,
    }
}

/// The five lanes (with their borders) across the body.
pub fn lanes(body: Rect) -> Vec<Rect> {
    Layout::horizontal(
        Status::ALL
            .iter()
            .map(|_| Constraint::Ratio(1, Status::ALL.len() as u32)),
    )
    .split(body)
    .to_vec()
}

/// The first card a lane shows: the selected card stays in view.
pub fn first_shown(inner_height: u16, selected: Option<usize>) -> usize {
    let fit = (inner_height / CARD_HEIGHT).max(1) as usize;
    selected.map_or(0, |s| s.saturating_sub(fit - 1))
}

/// What is at a point of the board: a lane's title row, or a slot (card row) in a lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    LaneTitle(usize),
    /// Lane and the index of the card in it (given which card of the lane is selected).
    Card(usize, usize),
}

/// The lane part at (`x`, `y`) on a screen of `area`, `selected` being the selected card of
/// each lane (only the focused lane has one).
pub fn hit(area: Rect, x: u16, y: u16, selected: impl Fn(usize) -> Option<usize>) -> Option<Hit> {
    let body = bands(area).body;
    let lane = lanes(body)
        .iter()
        .position(|r| x >= r.x && x < r.x + r.width)?;
    if y == body.y {
        return Some(Hit::LaneTitle(lane));
    }
    let inner_top = body.y + 1;
    let inner_height = body.height.saturating_sub(2);
    if y < inner_top || y >= inner_top + inner_height {
        return None;
    }
    let slot = usize::from((y - inner_top) / CARD_HEIGHT);
    Some(Hit::Card(
        lane,
        first_shown(inner_height, selected(lane)) + slot,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clicks_land_on_lane_titles_and_card_slots() {
        let area = Rect::new(0, 0, 80, 24);
        // 80 columns: five lanes of 16; the body starts on row 1.
        assert_eq!(hit(area, 0, 1, |_| None), Some(Hit::LaneTitle(0)));
        assert_eq!(hit(area, 70, 1, |_| None), Some(Hit::LaneTitle(4)));
        assert_eq!(hit(area, 35, 2, |_| None), Some(Hit::Card(2, 0)));
        assert_eq!(hit(area, 35, 5, |_| None), Some(Hit::Card(2, 1)));
        // A lane scrolled to its 10th card (6 fit in 18 rows): the first slot is card 4.
        assert_eq!(hit(area, 35, 2, |_| Some(9)), Some(Hit::Card(2, 4)));
        assert_eq!(hit(area, 35, 0, |_| None), None, "the header");
        assert_eq!(hit(area, 35, 22, |_| None), None, "the activity strip");
    }
}
