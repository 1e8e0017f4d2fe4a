//! Per-connection and server-wide limits: a token bucket per WebSocket (a sustained rate plus a
//! burst), connection counts overall and per user, and the bytes of incomplete WebSocket
//! messages held for a user and overall (see [`PartialBudget`]). Token buckets are told the
//! time by their owner, who reads it from a [`Clock`].
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The time the limits go by: the system's, unless it was stopped ([`Clock::stop`]) to be
/// moved by hand ([`Clock::advance`]), so that a test sees a bucket refill exactly as far as it
/// says instead of sleeping and hoping the machine kept up.
#[derive(Default)]
pub struct Clock {
    /// Read first, so a running clock (every clock outside tests) costs one relaxed load.
    stopped: AtomicBool,
    at: Mutex<Option<Instant>>,
}

impl Clock {
    pub fn now(&self) -> Instant {
        if !self.stopped.load(Ordering::Acquire) {
            return Instant::now();
        }
        self.at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or_else(Instant::now)
    }

    /// Stops the clock where it is; from now on it moves only by [`Clock::advance`].
    pub fn stop(&self) {
        let mut at = self.at.lock().unwrap_or_else(|p| p.into_inner());
        at.get_or_insert_with(Instant::now);
        self.stopped.store(true, Ordering::Release);
    }

    /// Moves a stopped clock forward by `by` (stopping it first if it runs).
    pub fn advance(&self, by: Duration) {
        let mut at = self.at.lock().unwrap_or_else(|p| p.into_inner());
        let now = at.unwrap_or_else(Instant::now);
        *at = Some(now + by);
        self.stopped.store(true, Ordering::Release);
    }
}

/// A token bucket: `burst` tokens, refilled at `per_sec` tokens a second.
pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// A full bucket at `now`.
    pub fn new(per_sec: u32, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        RateLimiter {
            per_sec: f64::from(per_sec),
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes one token if there is one at `now`. A time before the latest one asked about
    /// counts as that one (callers that read the clock before taking a lock may arrive out of
    /// order), so the bucket never refills twice for the same moment.
    pub fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Open WebSocket connections, counted overall and per user, and the bytes of their incomplete
/// messages.
#[derive(Default)]
pub struct ConnectionLimits {
    /// What the WebSocket connections' token buckets read the time from.
    pub clock: Clock,
    total: AtomicUsize,
    per_user: Mutex<HashMap<String, UserSlots>>,
    /// Bytes of incomplete messages on all connections.
    partial_total: AtomicUsize,
}

#[derive(Default)]
struct UserSlots {
    connections: usize,
    /// Bytes of incomplete messages on this user's connections.
    partial: Arc<AtomicUsize>,
}

/// Why a connection was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    ServerFull(usize),
    UserFull(usize),
}

/// Holds one connection slot; frees it when dropped.
pub struct ConnectionPermit {
    limits: Arc<ConnectionLimits>,
    user: String,
    partial: Arc<AtomicUsize>,
}

impl ConnectionPermit {
    /// The budget this connection's incomplete messages are counted against: at most
    /// `max_user` bytes for all of the user's connections, `max_total` for all connections.
    pub fn partial_budget(&self, max_user: usize, max_total: usize) -> PartialBudget {
        PartialBudget {
            limits: self.limits.clone(),
            user: self.partial.clone(),
            max_user,
            max_total,
            mine: 0,
        }
    }
}

/// One connection's share of the bytes of incomplete messages. A message is charged the length
/// its frame headers announce as soon as a header arrives (the frame reader reserves that much
/// at once), and released when its last frame is complete, or when the connection ends.
pub struct PartialBudget {
    limits: Arc<ConnectionLimits>,
    user: Arc<AtomicUsize>,
    max_user: usize,
    max_total: usize,
    mine: usize,
}

/// A charge that would take the user or the server over its budget.
#[derive(Debug, PartialEq, Eq)]
pub struct OverBudget;

impl PartialBudget {
    /// Charges `bytes` more, unless that goes over either budget (then nothing is charged).
    pub fn charge(&mut self, bytes: u64) -> Result<(), OverBudget> {
        let Ok(bytes) = usize::try_from(bytes) else {
            return Err(OverBudget);
        };
        if bytes == 0 {
            return Ok(());
        }
        if bytes > self.max_user || bytes > self.max_total {
            return Err(OverBudget);
        }
        let user = self.user.fetch_add(bytes, Ordering::AcqRel) + bytes;
        let total = self.limits.partial_total.fetch_add(bytes, Ordering::AcqRel) + bytes;
        if user > self.max_user || total > self.max_total {
            self.user.fetch_sub(bytes, Ordering::AcqRel);
            self.limits.partial_total.fetch_sub(bytes, Ordering::AcqRel);
            return Err(OverBudget);
        }
        self.mine += bytes;
        Ok(())
    }

    /// Releases everything this connection was charged.
    pub fn release(&mut self) {
        if self.mine > 0 {
            self.user.fetch_sub(self.mine, Ordering::AcqRel);
            self.limits
                .partial_total
                .fetch_sub(self.mine, Ordering::AcqRel);
            self.mine = 0;
        }
    }
}

impl Drop for PartialBudget {
    fn drop(&mut self) {
        self.release();
    }
}

impl ConnectionLimits {
    pub fn try_acquire(
        self: &Arc<Self>,
        user: &str,
        max_total: usize,
        max_per_user: usize,
    ) -> Result<ConnectionPermit, Refusal> {
        let mut per_user = self.per_user.lock().unwrap_or_else(|p| p.into_inner());
        let total = self.total.load(Ordering::Acquire);
        if total >= max_total {
            return Err(Refusal::ServerFull(max_total));
        }
        let mine = per_user.entry(user.to_string()).or_default();
        if mine.connections >= max_per_user {
            return Err(Refusal::UserFull(max_per_user));
        }
        mine.connections += 1;
        self.total.fetch_add(1, Ordering::AcqRel);
        Ok(ConnectionPermit {
            limits: self.clone(),
            user: user.to_string(),
            partial: mine.partial.clone(),
        })
    }

    /// Bytes of incomplete messages held on all connections.
    pub fn partial_bytes(&self) -> usize {
        self.partial_total.load(Ordering::Acquire)
    }

    pub fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut per_user = self
            .limits
            .per_user
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(slots) = per_user.get_mut(&self.user) {
            slots.connections -= 1;
            if slots.connections == 0 {
                per_user.remove(&self.user);
            }
        }
        self.limits.total.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Open HTTP connections per peer address (until they end or become WebSockets), so that one
/// address cannot take every file descriptor with sockets that never finish a request.
#[derive(Default)]
pub struct PeerConnections {
    open: Mutex<HashMap<std::net::IpAddr, usize>>,
}

/// One counted connection; uncounted when dropped.
pub struct PeerSlot {
    peers: Arc<PeerConnections>,
    ip: std::net::IpAddr,
}

impl PeerConnections {
    /// Counts a connection from `ip`, unless it already has `max` (0: no limit).
    pub fn try_open(self: &Arc<Self>, ip: std::net::IpAddr, max: usize) -> Option<PeerSlot> {
        let ip = ip.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_default();
        if max > 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            peers: self.clone(),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.peers.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_the_sustained_rate() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(10, 5, t0);
        assert!((0..5).all(|_| r.allow(t0)));
        assert!(!r.allow(t0), "burst used up");
        assert!(
            r.allow(t0 + Duration::from_millis(100)),
            "one token per 100 ms at 10/s"
        );
        assert!(!r.allow(t0 + Duration::from_millis(110)));
        assert!(
            (0..5).all(|_| r.allow(t0 + Duration::from_secs(10))),
            "refills up to the burst only"
        );
        assert!(!r.allow(t0 + Duration::from_secs(10)));
    }

    #[test]
    fn a_bucket_never_refills_backwards() {
        let t0 = Instant::now() + Duration::from_secs(5);
        let mut r = RateLimiter::new(1, 1, t0);
        assert!(r.allow(t0));
        assert!(
            !r.allow(t0 - Duration::from_secs(5)),
            "earlier counts as t0"
        );
        assert!(!r.allow(t0 + Duration::from_millis(900)));
        assert!(r.allow(t0 + Duration::from_millis(1000)));
    }

    #[test]
    fn a_stopped_clock_moves_only_when_told() {
        let clock = Clock::default();
        let before = Instant::now();
        assert!(clock.now() >= before, "a running clock is the system's");
        clock.stop();
        let stopped = clock.now();
        assert!(stopped >= before);
        std::thread::yield_now();
        assert_eq!(clock.now(), stopped);
        clock.advance(Duration::from_millis(250));
        assert_eq!(clock.now(), stopped + Duration::from_millis(250));
        clock.stop();
        assert_eq!(
            clock.now(),
            stopped + Duration::from_millis(250),
            "stopping again keeps the time"
        );
        // A bucket read by the clock refills by what the clock says, however long the test took.
        let mut r = RateLimiter::new(4, 2, clock.now());
        assert!(r.allow(clock.now()) && r.allow(clock.now()));
        assert!(!r.allow(clock.now()));
        clock.advance(Duration::from_millis(249));
        assert!(!r.allow(clock.now()));
        clock.advance(Duration::from_millis(1));
        assert!(r.allow(clock.now()), "one token per 250 ms at 4/s");
    }

    #[test]
    fn connections_are_counted_overall_and_per_user() {
        let limits = Arc::new(ConnectionLimits::default());
        let a1 = limits.try_acquire("a", 3, 2).expect("a1");
        let _a2 = limits.try_acquire("a", 3, 2).expect("a2");
        assert_eq!(
            limits.try_acquire("a", 3, 2).err(),
            Some(Refusal::UserFull(2))
        );
        let _b = limits.try_acquire("b", 3, 2).expect("b");
        assert_eq!(
            limits.try_acquire("c", 3, 2).err(),
            Some(Refusal::ServerFull(3))
        );
        drop(a1);
        let _c = limits.try_acquire("c", 3, 2).expect("a slot was freed");
        assert_eq!(limits.open(), 3);
    }

    #[test]
    fn http_connections_are_counted_per_address() {
        let peers = Arc::new(PeerConnections::default());
        let v4: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: std::net::IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let a = peers.try_open(v4, 2).expect("a");
        let _b = peers.try_open(mapped, 2).expect("b: the same address");
        assert!(peers.try_open(v4, 2).is_none());
        assert!(peers.try_open("10.0.0.2".parse().unwrap(), 2).is_some());
        drop(a);
        assert!(peers.try_open(v4, 2).is_some());
        assert!(peers.try_open(v4, 0).is_some(), "0: no limit");
    }

    #[test]
    fn incomplete_messages_are_charged_per_user_and_overall() {
        let limits = Arc::new(ConnectionLimits::default());
        let a1 = limits.try_acquire("a", 10, 10).expect("a1");
        let a2 = limits.try_acquire("a", 10, 10).expect("a2");
        let b = limits.try_acquire("b", 10, 10).expect("b");
        let (mut a1, mut a2, mut b) = (
            a1.partial_budget(100, 150),
            a2.partial_budget(100, 150),
            b.partial_budget(100, 150),
        );
        a1.charge(60).expect("a1");
        assert_eq!(a2.charge(50), Err(OverBudget), "a's connections share 100");
        a2.charge(40).expect("a2 fits");
        assert_eq!(b.charge(60), Err(OverBudget), "150 in all");
        b.charge(50).expect("b fits");
        assert_eq!(limits.partial_bytes(), 150);
        a1.release();
        assert_eq!(limits.partial_bytes(), 90);
        drop(a2);
        assert_eq!(limits.partial_bytes(), 50);
        assert_eq!(b.charge(u64::MAX), Err(OverBudget));
        a1.charge(100).expect("a's budget is free again");
    }
}
