//! Users the writer knows to have a committed row in `users` (rows are never deleted), so a
//! write does not spend a statement on `INSERT OR IGNORE` for someone it has seen before. Only
//! the writer task has one; it forgets everything when its connection is reset.
use std::collections::HashSet;

/// Bound on the memory; past it the set starts over.
const KNOWN_USERS_MAX: usize = 100_000;

#[derive(Default)]
pub struct KnownUsers {
    users: HashSet<String>,
}

impl KnownUsers {
    pub fn contains(&self, user_id: &str) -> bool {
        self.users.contains(user_id)
    }

    /// Records that `user_id`'s row is committed.
    pub fn note(&mut self, user_id: &str) {
        if self.users.len() >= KNOWN_USERS_MAX {
            self.users.clear();
        }
        self.users.insert(user_id.to_string());
    }

    pub fn clear(&mut self) {
        self.users.clear();
    }
}
