//! The writer's memory of each stream's last seq.
//!
//! A write numbers its event before anything reaches the database, so that its activity row,
//! the stream's new last seq and the event (whose stored frame carries the seq) go in ONE
//! round trip: every statement is a hand-off to sqlx's SQLite thread, the largest cost of a
//! write. A seq counts as taken once the statement that records it succeeded, or, for an
//! update whose writes wait to be sent with others (`write_behind`), once it is queued;
//! whenever a command's savepoint or the transaction is rolled back, or waiting writes fail,
//! the memory is forgotten and re-read from `pm_streams`. (Were it ever wrong, the event's
//! primary key refuses the duplicate seq and the write fails; it is never silently renumbered.)
//!
//! Only the writer task has one, so it needs no lock.
use std::collections::HashMap;

use crate::store::{events, Conn};

#[derive(Default)]
pub struct SeqCounter {
    last: HashMap<String, u64>,
}

impl SeqCounter {
    /// The seq the next event of `stream` gets.
    pub async fn next(&mut self, conn: &mut Conn<'_>, stream: &str) -> sqlx::Result<u64> {
        if let Some(last) = self.last.get(stream) {
            return Ok(last + 1);
        }
        let last = events::current_seq(conn, stream).await?;
        self.last.insert(stream.to_string(), last);
        Ok(last + 1)
    }

    /// `seq` of `stream` is written (in the open transaction).
    pub fn taken(&mut self, stream: &str, seq: u64) {
        self.last.insert(stream.to_string(), seq);
    }

    /// A transaction did not commit: what it numbered is void.
    pub fn forget(&mut self) {
        self.last.clear();
    }
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection, SqliteConnection};

    use super::*;
    use crate::store::events::{APPEND_INSERT, TAKE_SEQ_INSERT, TAKE_SEQ_ON_CONFLICT};

    async fn take(conn: &mut SqliteConnection, seq: u64) -> sqlx::Result<()> {
        sqlx::query(&format!(
            "{TAKE_SEQ_INSERT}VALUES (?, ?){TAKE_SEQ_ON_CONFLICT}; {APPEND_INSERT}VALUES (?, ?, ?, ?)"
        ))
            .bind("s")
            .bind(seq as i64)
            .bind("s")
            .bind(seq as i64)
            .bind(&b"frame"[..])
            .bind(0)
            .execute(&mut *conn)
            .await
            .map(|_| ())
    }

    /// Numbers taken in a transaction that did not commit are void once forgotten; remembered,
    /// they would be a gap (and the primary key refuses a number taken twice).
    #[tokio::test]
    async fn seqs_of_a_rolled_back_transaction_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, writer) = crate::store::Store::open(&dir.path().join("t.db"))
            .await
            .unwrap();
        let mut conn = writer.into_connection();
        let mut seqs = SeqCounter::default();
        let mut tx = conn.begin().await.unwrap();
        assert_eq!(seqs.next(&mut Conn::Sqlite(&mut tx), "s").await.unwrap(), 1);
        take(&mut tx, 1).await.unwrap();
        seqs.taken("s", 1);
        assert_eq!(seqs.next(&mut Conn::Sqlite(&mut tx), "s").await.unwrap(), 2);
        tx.commit().await.unwrap();

        let mut tx = conn.begin().await.unwrap();
        take(&mut tx, 2).await.unwrap();
        seqs.taken("s", 2);
        tx.rollback().await.unwrap();
        seqs.forget();

        let mut tx = conn.begin().await.unwrap();
        assert_eq!(
            seqs.next(&mut Conn::Sqlite(&mut tx), "s").await.unwrap(),
            2,
            "re-read"
        );
        take(&mut tx, 2).await.unwrap();
        assert!(take(&mut tx, 2).await.is_err(), "a seq is never used twice");
    }
}
