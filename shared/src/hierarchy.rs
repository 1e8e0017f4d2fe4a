//! ancestor_ids / descendant_ids from parent links: computed the same way by the server (for
//! snapshots) and by the client store (after every change), so both always agree.
//!
//! Ancestors: nearest parent first, up to the root (stopping at an unknown id or a cycle).
//! Descendants: breadth first; within one depth, ordered by id.
use std::collections::{BTreeMap, HashMap, HashSet};

use crate::proto::WorkItem;

/// Chains deeper than this are cut (only corrupt data could build one).
pub const MAX_DEPTH: usize = 100;

/// Computes both lists for every item of a set, given (id, parent_id) pairs.
pub fn compute<'a>(
    links: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> HashMap<String, (Vec<String>, Vec<String>)> {
    let parent: BTreeMap<&str, Option<&str>> = links.into_iter().collect();
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for (&id, p) in &parent {
        if let Some(p) = p {
            children.entry(p).or_default().push(id);
        }
    }
    parent
        .keys()
        .map(|&id| {
            let mut up = Vec::new();
            let mut seen = HashSet::from([id]);
            let mut cur = parent.get(id).copied().flatten();
            while let Some(p) = cur {
                if up.len() >= MAX_DEPTH || !parent.contains_key(p) || !seen.insert(p) {
                    break;
                }
                up.push(p.to_string());
                cur = parent.get(p).copied().flatten();
            }
            let mut down = Vec::new();
            // A fresh guard: an ancestor may also be a descendant when the links form a cycle.
            let mut seen = HashSet::from([id]);
            let mut frontier = vec![id];
            let mut depth = 0;
            while !frontier.is_empty() && depth < MAX_DEPTH {
                let mut next: Vec<&str> = frontier
                    .iter()
                    .flat_map(|f| children.get(f).into_iter().flatten().copied())
                    .filter(|k| seen.insert(k))
                    .collect();
                next.sort_unstable();
                down.extend(next.iter().map(|k| k.to_string()));
                frontier = next;
                depth += 1;
            }
            (id.to_string(), (up, down))
        })
        .collect()
}

/// Fills the lists of every item in `items` (all items of one project).
pub fn fill(items: &mut [WorkItem]) {
    let lists = compute(
        items
            .iter()
            .map(|w| (w.id.as_str(), w.parent_id.as_deref())),
    );
    apply(items.iter_mut(), lists);
}

/// Writes computed lists into items.
pub fn apply<'a>(
    items: impl Iterator<Item = &'a mut WorkItem>,
    mut lists: HashMap<String, (Vec<String>, Vec<String>)>,
) {
    for item in items {
        if let Some((up, down)) = lists.remove(&item.id) {
            item.ancestor_ids = up;
            item.descendant_ids = down;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_follow_parent_links() {
        let lists = compute([
            ("e", None),
            ("s1", Some("e")),
            ("s2", Some("e")),
            ("t", Some("s2")),
            ("x", Some("gone")),
        ]);
        assert_eq!(lists["t"].0, vec!["s2", "e"]);
        assert_eq!(lists["e"].1, vec!["s1", "s2", "t"]);
        assert!(lists["x"].0.is_empty(), "an unknown parent ends the chain");
    }

    #[test]
    fn cycles_terminate() {
        let lists = compute([("a", Some("b")), ("b", Some("a"))]);
        assert_eq!(lists["a"].0, vec!["b"]);
        assert_eq!(lists["a"].1, vec!["b"]);
    }
}
