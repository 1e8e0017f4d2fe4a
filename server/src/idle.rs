//! Idle shutdown (`--idle-shutdown-secs`, the reference's `server.idle_shutdown_secs`): a server
//! started for one desktop session stops once nobody has been connected for a while.
use std::time::Duration;

use crate::SharedState;

/// The reference's schedule for `idle_secs`: a grace period of min(idle, 60) s after start, then
/// a check every max(idle/2, 10) s. None when idle shutdown is off (0).
pub fn schedule(idle_secs: u64) -> Option<(Duration, Duration)> {
    (idle_secs > 0).then(|| {
        (
            Duration::from_secs(idle_secs.min(60)),
            Duration::from_secs((idle_secs / 2).max(10)),
        )
    })
}

/// Resolves when the server has been idle as `idle_secs` says: two checks in a row found no
/// WebSocket connection (one empty check could be a client between reconnects). Never
/// resolves when idle shutdown is off.
pub async fn idle(state: SharedState, idle_secs: u64) {
    let Some((grace, every)) = schedule(idle_secs) else {
        return std::future::pending().await;
    };
    tokio::time::sleep(grace).await;
    let mut empty_checks = 0;
    loop {
        if state.connections.open() == 0 {
            empty_checks += 1;
            if empty_checks >= 2 {
                tracing::info!(
                    idle_secs,
                    "no WebSocket connection for a while: shutting down"
                );
                return;
            }
        } else {
            empty_checks = 0;
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_references_schedule() {
        assert_eq!(schedule(0), None);
        let s = |g, e| Some((Duration::from_secs(g), Duration::from_secs(e)));
        assert_eq!(schedule(2), s(2, 10));
        assert_eq!(schedule(30), s(30, 15));
        assert_eq!(schedule(600), s(60, 300));
    }
}
