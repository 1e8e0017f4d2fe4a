//! The two databases pm runs on, behind one connection type.
//!
//! SQLite (the default, one file beside the project) and PostgreSQL (several servers sharing
//! one database, issue "Several pm-servers, one PostgreSQL") run the same statements wherever
//! their dialects agree: placeholders are written `$1, $2 …`, which both accept, and upserts use
//! `ON CONFLICT`. A statement runs on whichever connection a [`Conn`] holds through [`on!`],
//! which type-checks the statement once per backend, so each keeps its native driver (no
//! `sqlx::Any` and its row copies on the hot path). Where the dialects differ, a module picks
//! the text by [`Conn::backend`].
use sqlx::{PgConnection, SqliteConnection};

/// Which database a connection or a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection (or an open transaction's connection) of either backend, borrowed.
pub enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut sqlx::PgConnection),
}

impl Conn<'_> {
    pub fn backend(&self) -> Backend {
        match self {
            Conn::Sqlite(_) => Backend::Sqlite,
            Conn::Postgres(_) => Backend::Postgres,
        }
    }

    /// The same connection, borrowed for a shorter time (to hand to a callee and keep using).
    pub fn reborrow(&mut self) -> Conn<'_> {
        match self {
            Conn::Sqlite(c) => Conn::Sqlite(c),
            Conn::Postgres(c) => Conn::Postgres(c),
        }
    }

    /// The SQLite connection, for the statements only SQLite runs (the writer's one-round-trip
    /// tails, the write-behind); None on PostgreSQL.
    pub fn sqlite(&mut self) -> Option<&mut SqliteConnection> {
        match self {
            Conn::Sqlite(c) => Some(c),
            Conn::Postgres(_) => None,
        }
    }

    pub fn postgres(&mut self) -> Option<&mut PgConnection> {
        match self {
            Conn::Sqlite(_) => None,
            Conn::Postgres(c) => Some(c),
        }
    }
}

/// `sql` with its plain `?` parameters numbered `$1, $2 …`, for a statement written for
/// SQLite's multi-statement round trips (where `?` is required) that also runs on its own.
/// Quoted SQL strings are left alone.
pub fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    let mut quoted = false;
    for ch in sql.chars() {
        match ch {
            '\'' => {
                quoted = !quoted;
                out.push(ch);
            }
            '?' if !quoted => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(ch),
        }
    }
    out
}

/// Runs `$body` with `$c` bound to the backend's own `&mut` connection, once per backend:
/// `on!(conn, |c| sqlx::query(SQL).bind(id).execute(c).await.map(|r| r.rows_affected()))`. `$conn` is a `&mut Conn`.
/// Both arms must produce the same type (so `execute` results are reduced to
/// `rows_affected()` inside the body).
#[macro_export]
macro_rules! on {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::Conn::Sqlite($c) => {
                let $c = &mut **$c;
                $body
            }
            $crate::store::Conn::Postgres($c) => {
                let $c = &mut **$c;
                $body
            }
        }
    };
}
