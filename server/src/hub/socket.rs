//! A connection's socket, shared by its writer task and the hub.
//!
//! An event for a connection that has nothing waiting is written by the hub itself, with one
//! non-blocking write from the publishing task, instead of being queued for the connection's
//! writer task: fanning an event out to 1,000 idle subscribers then costs 1,000 system calls
//! in a row on one thread, not 1,000 task wake-ups spread over the runtime's threads, each
//! with its queue operations, its timer and its own system call (bench/NOTES.md, "Fan-out:
//! the hub writes to idle sockets itself"). Whatever cannot be written at once (the client
//! fell behind, its socket buffer is full) goes through the queue as before, and the writer
//! task waits for the socket; the hub never does.
//!
//! Bytes must reach the socket in the order they were handed over, and frames must never
//! interleave, so one writer at a time holds the socket's turn ([`ClientSocket::turn`]):
//! the hub only for a write that cannot wait, the writer task for as long as its writes take.
//! The hub writes only while nothing is queued or being written for the connection (its
//! queued bytes are zero, and they count an item until the writer has written all of it).
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use tokio::net::tcp::OwnedWriteHalf;

pub struct ClientSocket {
    socket: OwnedWriteHalf,
    /// Held by whoever writes (see [`Turn`]).
    busy: AtomicBool,
    /// The end of a frame the hub began to write and the socket did not take: the next bytes
    /// the writer task must write, before anything queued.
    rest: Mutex<Option<Bytes>>,
}

/// What [`ClientSocket::write_now`] did with a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum WrittenNow {
    /// All of it is on the socket.
    Whole,
    /// The socket took a part; the rest is the writer task's, counted in the queued bytes.
    /// The caller wakes the writer task (`CutOff::notify`).
    Begun,
    /// Nothing was written: the connection has bytes waiting, or its socket is full or
    /// broken. Queue it.
    No,
}

/// The right to write to the socket, given back when dropped.
pub struct Turn<'a>(&'a ClientSocket);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}

impl ClientSocket {
    pub fn new(socket: OwnedWriteHalf) -> ClientSocket {
        ClientSocket {
            socket,
            busy: AtomicBool::new(false),
            rest: Mutex::new(None),
        }
    }

    fn try_turn(&self) -> Option<Turn<'_>> {
        self.busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| Turn(self))
    }

    /// Waits for the turn. Whoever holds it otherwise is the hub, for one non-blocking write,
    /// so the wait is short and a yield is enough.
    pub async fn turn(&self) -> Turn<'_> {
        loop {
            if let Some(turn) = self.try_turn() {
                return turn;
            }
            tokio::task::yield_now().await;
        }
    }

    /// The hub's write: `framed` goes to the socket now if nothing else waits for it
    /// (`queued_bytes` is zero) and the socket takes it without waiting.
    pub fn write_now(&self, framed: &Bytes, queued_bytes: &AtomicUsize) -> WrittenNow {
        if queued_bytes.load(Ordering::Acquire) != 0 {
            return WrittenNow::No;
        }
        let Some(_turn) = self.try_turn() else {
            return WrittenNow::No;
        };
        // Looked at again under the turn: what the writer task took from the queue stays
        // counted until it is written, and it writes only under the turn.
        if queued_bytes.load(Ordering::Acquire) != 0 {
            return WrittenNow::No;
        }
        match self.socket.try_write(framed) {
            Ok(n) if n == framed.len() => WrittenNow::Whole,
            Ok(0) | Err(_) => WrittenNow::No,
            Ok(n) => {
                queued_bytes.fetch_add(framed.len() - n, Ordering::AcqRel);
                *lock(&self.rest) = Some(framed.slice(n..));
                WrittenNow::Begun
            }
        }
    }
}

impl Turn<'_> {
    /// Ends all writing: the client is told nothing more will come (TCP FIN), and the turn is
    /// never given back, so the hub writes nothing after the writer task's last frame (a
    /// Close): it queues, finds the queue closed and lets the connection go.
    pub fn close(self) {
        let _ = socket2::SockRef::from(self.0.socket.as_ref()).shutdown(std::net::Shutdown::Write);
        std::mem::forget(self);
    }

    /// The end of a frame the hub began, if one waits; its bytes are still counted as queued.
    pub fn take_rest(&self) -> Option<Bytes> {
        lock(&self.0.rest).take()
    }

    pub async fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        self.write_vectored_all(&mut [IoSlice::new(bytes)]).await
    }

    pub async fn write_vectored_all(&self, slices: &mut [IoSlice<'_>]) -> io::Result<()> {
        let mut unwritten = slices;
        // Empty slices are dropped first: nothing to write is not a write of zero bytes.
        IoSlice::advance_slices(&mut unwritten, 0);
        while !unwritten.is_empty() {
            match self.0.socket.try_write_vectored(unwritten) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut unwritten, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.0.socket.writable().await?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
