//! Per-connection and server-wide limits: a token bucket per WebSocket (a sustained rate plus a
//! burst), and connection counts overall and per user.
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A token bucket: `burst` tokens, refilled at `per_sec` tokens a second.
pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub fn new(per_sec: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        RateLimiter {
            per_sec: f64::from(per_sec),
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Takes one token if there is one.
    pub fn allow(&mut self) -> bool {
        self.allow_at(Instant::now())
    }

    fn allow_at(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Open WebSocket connections, counted overall and per user.
#[derive(Default)]
pub struct ConnectionLimits {
    total: AtomicUsize,
    per_user: Mutex<HashMap<String, usize>>,
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
        if *mine >= max_per_user {
            return Err(Refusal::UserFull(max_per_user));
        }
        *mine += 1;
        self.total.fetch_add(1, Ordering::AcqRel);
        Ok(ConnectionPermit {
            limits: self.clone(),
            user: user.to_string(),
        })
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
        if let Some(n) = per_user.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                per_user.remove(&self.user);
            }
        }
        self.limits.total.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_a_burst_then_the_sustained_rate() {
        let mut r = RateLimiter::new(10, 5);
        let t0 = r.last;
        assert!((0..5).all(|_| r.allow_at(t0)));
        assert!(!r.allow_at(t0), "burst used up");
        assert!(
            r.allow_at(t0 + Duration::from_millis(100)),
            "one token per 100 ms at 10/s"
        );
        assert!(!r.allow_at(t0 + Duration::from_millis(110)));
        assert!(
            (0..5).all(|_| r.allow_at(t0 + Duration::from_secs(10))),
            "refills up to the burst only"
        );
        assert!(!r.allow_at(t0 + Duration::from_secs(10)));
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
}
