//! Where things are on the screen: the one computation the drawing and the mouse share, so a
//! click lands on what was drawn there.
use ratatui::layout::{Constraint, Layout, Rect};

use pm_shared::domain::Status;

use crate::width::width;

/// Rows a card takes in a lane when its title fits on one line: the key, the title, the type
/// and who.
pub const CARD_HEIGHT: u16 = 3;

/// Rows of a card whose title (as drawn) is `title`, in a lane `inner_width` columns wide: a
/// narrow lane wraps a title that does not fit onto a second line rather than cutting it.
pub fn card_height(title: &str, inner_width: u16) -> u16 {
    if width(title) > usize::from(inner_width) {
        CARD_HEIGHT + 1
    } else {
        CARD_HEIGHT
    }
}

/// Where a card is drawn in its lane: its index, the row inside the lane and its height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub index: usize,
    pub y: u16,
    pub height: u16,
}

/// The cards a lane `inner_height` rows high shows, given every card's height: from the first
/// one that keeps the selected card in view, as many whole cards as fit (at least one, cut off
/// at the bottom when even that one does not fit).
pub fn slots(inner_height: u16, heights: &[u16], selected: Option<usize>) -> Vec<Slot> {
    slots_of(inner_height, heights.len(), |i| heights[i], selected)
}

/// [`slots`] for a lane of `len` cards whose heights are asked for (by index) only for the cards
/// near the selected one: a lane of thousands of cards measures the few a screen can show.
pub fn slots_of(
    inner_height: u16,
    len: usize,
    height: impl Fn(usize) -> u16,
    selected: Option<usize>,
) -> Vec<Slot> {
    let first = first_shown(inner_height, len, &height, selected);
    let mut shown = Vec::new();
    let mut y = 0u16;
    for index in first..len {
        if y >= inner_height {
            break;
        }
        let h = height(index);
        if y.saturating_add(h) > inner_height && !shown.is_empty() {
            break;
        }
        shown.push(Slot {
            index,
            y,
            height: h.min(inner_height - y),
        });
        y = y.saturating_add(h);
    }
    shown
}

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

/// The first card a lane shows: the selected card stays in view, as the last one shown when
/// the lane scrolled down to it.
fn first_shown(
    inner_height: u16,
    len: usize,
    height: impl Fn(usize) -> u16,
    selected: Option<usize>,
) -> usize {
    let Some(selected) = selected.filter(|s| *s < len) else {
        return 0;
    };
    let mut first = selected;
    let mut used = height(selected);
    while first > 0 {
        let above = height(first - 1);
        if used.saturating_add(above) > inner_height {
            break;
        }
        first -= 1;
        used += above;
    }
    first
}

/// What is at a point of the board: a lane's title row, or a slot (card row) in a lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    LaneTitle(usize),
    /// Lane and the index of the card in it (given which card of the lane is selected).
    Card(usize, usize),
}

/// The lane part at (`x`, `y`) on a screen of `area`; `lane_cards` gives a lane's card titles
/// (as drawn) and its selected card (only the focused lane has one).
pub fn hit(
    area: Rect,
    x: u16,
    y: u16,
    lane_cards: impl Fn(usize) -> (Vec<String>, Option<usize>),
) -> Option<Hit> {
    let body = bands(area).body;
    let columns = lanes(body);
    let lane = columns.iter().position(|r| x >= r.x && x < r.x + r.width)?;
    if y == body.y {
        return Some(Hit::LaneTitle(lane));
    }
    let inner_top = body.y + 1;
    let inner_height = body.height.saturating_sub(2);
    if y < inner_top || y >= inner_top + inner_height {
        return None;
    }
    let inner_width = columns[lane].width.saturating_sub(2);
    let (titles, selected) = lane_cards(lane);
    let heights: Vec<u16> = titles.iter().map(|t| card_height(t, inner_width)).collect();
    let row = y - inner_top;
    let shown = slots(inner_height, &heights, selected);
    shown
        .iter()
        .find(|s| row >= s.y && row < s.y + s.height)
        .map(|slot| Hit::Card(lane, slot.index))
}

/// The list view's columns before the title (which takes the rest), as (header, width): the
/// progress only in the tree, the sprint and the last change only where the terminal is wide.
pub fn list_columns(width: u16, tree: bool) -> Vec<(&'static str, u16)> {
    let mut columns = vec![
        ("KEY", 8),
        ("TYPE", 5),
        ("STATUS", 11),
        ("PRIO", 8),
        ("PTS", 3),
        ("ASSIGNEE", 10),
    ];
    if tree {
        columns.push(("DONE", 7));
    }
    if width >= 110 {
        columns.extend([("SPRINT", 10), ("CHANGED", 11)]);
    }
    columns
}

/// The title column's header.
pub const LIST_TITLE: &str = "TITLE";

/// What is at a point of the list view: a column's header, or a row (its index in the list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListHit {
    Header(&'static str),
    Row(usize),
}

/// The list part at (`x`, `y`) on a screen of `area`, the list holding `rows` rows of which
/// `selected` is selected. The table sits inside a border, its header on the first row; it
/// scrolls as ratatui's does from the top: just far enough that the selected row is the last
/// one shown.
pub fn list_hit(
    area: Rect,
    (x, y): (u16, u16),
    tree: bool,
    selected: usize,
    rows: usize,
) -> Option<ListHit> {
    let body = bands(area).body;
    let inner = Rect {
        x: body.x + 1,
        y: body.y + 1,
        width: body.width.saturating_sub(2),
        height: body.height.saturating_sub(2),
    };
    if x < inner.x || x >= inner.x + inner.width || y < inner.y || y >= inner.y + inner.height {
        return None;
    }
    if y == inner.y {
        let mut left = inner.x;
        for (header, width) in list_columns(body.width, tree) {
            if x < left + width {
                return Some(ListHit::Header(header));
            }
            // The space between two columns belongs to neither.
            if x == left + width {
                return None;
            }
            left += width + 1;
        }
        return Some(ListHit::Header(LIST_TITLE));
    }
    let shown = usize::from(inner.height - 1);
    let first = (selected.min(rows.saturating_sub(1)) + 1).saturating_sub(shown);
    let row = first + usize::from(y - inner.y - 1);
    (row < rows).then_some(ListHit::Row(row))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_clicks_land_on_headers_and_rows() {
        let area = Rect::new(0, 0, 80, 24);
        // The body starts on row 1: its border, then the header on row 2, the rows below.
        let at = |x, y, selected| list_hit(area, (x, y), false, selected, 30);
        assert_eq!(at(1, 2, 0), Some(ListHit::Header("KEY")));
        assert_eq!(at(9, 2, 0), None, "between KEY and TYPE");
        assert_eq!(at(30, 2, 0), Some(ListHit::Header("PRIO")));
        assert_eq!(at(70, 2, 0), Some(ListHit::Header(LIST_TITLE)));
        assert_eq!(at(5, 3, 0), Some(ListHit::Row(0)));
        assert_eq!(at(5, 7, 0), Some(ListHit::Row(4)));
        // 17 rows show (20 body rows less the borders and the header): the 20th selected is
        // the last shown, so the first shown is the 4th.
        assert_eq!(at(5, 3, 19), Some(ListHit::Row(3)));
        assert_eq!(at(0, 3, 0), None, "the border");
        assert_eq!(
            list_hit(area, (5, 5), false, 0, 2),
            None,
            "below the last row"
        );
        // Wide: the last change has a column.
        let wide = Rect::new(0, 0, 120, 40);
        assert_eq!(
            list_hit(wide, (68, 2), false, 0, 3),
            Some(ListHit::Header("CHANGED"))
        );
    }

    fn titles(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("card {i}")).collect()
    }

    #[test]
    fn clicks_land_on_lane_titles_and_card_slots() {
        let area = Rect::new(0, 0, 80, 24);
        let short = |_| (titles(12), None);
        // 80 columns: five lanes of 16; the body starts on row 1.
        assert_eq!(hit(area, 0, 1, short), Some(Hit::LaneTitle(0)));
        assert_eq!(hit(area, 70, 1, short), Some(Hit::LaneTitle(4)));
        assert_eq!(hit(area, 35, 2, short), Some(Hit::Card(2, 0)));
        assert_eq!(hit(area, 35, 5, short), Some(Hit::Card(2, 1)));
        // A lane scrolled to its 10th card (6 fit in 18 rows): the first slot is card 4.
        assert_eq!(
            hit(area, 35, 2, |_| (titles(12), Some(9))),
            Some(Hit::Card(2, 4))
        );
        assert_eq!(hit(area, 35, 0, short), None, "the header");
        assert_eq!(hit(area, 35, 22, short), None, "the activity strip");
    }

    #[test]
    fn a_wrapped_title_makes_its_card_a_row_taller() {
        let area = Rect::new(0, 0, 80, 24);
        // Lanes are 14 columns wide inside: the first card's title takes two lines.
        let cards = |_| {
            (
                vec![
                    "A title wider than the lane".to_string(),
                    "short".to_string(),
                ],
                None,
            )
        };
        assert_eq!(
            hit(area, 35, 5, cards),
            Some(Hit::Card(2, 0)),
            "its 4th row"
        );
        assert_eq!(hit(area, 35, 6, cards), Some(Hit::Card(2, 1)));
        assert_eq!(hit(area, 35, 9, cards), None, "below the cards");
    }

    #[test]
    fn the_selected_card_stays_in_view_whatever_the_heights() {
        // 9 rows: cards of 4, 3, 4, 3 rows; the 4th selected shows the 3rd and the 4th.
        let heights = [4, 3, 4, 3];
        let shown = slots(9, &heights, Some(3));
        let rows: Vec<(usize, u16, u16)> = shown.iter().map(|s| (s.index, s.y, s.height)).collect();
        assert_eq!(rows, vec![(2, 0, 4), (3, 4, 3)]);
        // Nothing selected: from the top, whole cards only.
        let rows: Vec<usize> = slots(9, &heights, None).iter().map(|s| s.index).collect();
        assert_eq!(rows, vec![0, 1]);
        // A lane lower than one card still shows the selected one, cut.
        assert_eq!(
            slots(2, &heights, Some(2)),
            vec![Slot {
                index: 2,
                y: 0,
                height: 2
            }]
        );
        assert!(slots(0, &heights, Some(2)).is_empty());
        assert!(slots(10, &[], Some(0)).is_empty());
    }
}
