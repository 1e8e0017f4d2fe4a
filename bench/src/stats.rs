//! Latency summaries from plain sorted vectors of nanoseconds, and server memory sampling.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// p50/p99/max of a set of latencies, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

fn ms(ns: u64) -> f64 {
    (ns as f64 / 1e6 * 1000.0).round() / 1000.0
}

impl Latency {
    /// Summarises `samples` (nanoseconds); sorts them in place.
    pub fn of(samples: &mut [u64]) -> Latency {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            ms(samples[i])
        };
        let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
        Latency {
            count: samples.len() as u64,
            mean_ms: ms((sum / samples.len() as u128) as u64),
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: ms(*samples.last().unwrap_or(&0)),
        }
    }

    pub fn brief(&self) -> String {
        if self.count == 0 {
            return "-".into();
        }
        format!(
            "p50 {:.3} ms · p99 {:.3} ms · max {:.3} ms (n={})",
            self.p50_ms, self.p99_ms, self.max_ms, self.count
        )
    }
}

/// Server memory (VmRSS) over time.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MemorySeries {
    pub pid: Option<u32>,
    /// (seconds since the scenario started, KiB)
    pub samples: Vec<(f64, u64)>,
    pub start_kib: Option<u64>,
    pub peak_kib: Option<u64>,
    pub end_kib: Option<u64>,
}

/// Samples a process's VmRSS every `every` until dropped.
pub struct MemorySampler {
    pid: Option<u32>,
    started: Instant,
    samples: Arc<Mutex<Vec<(f64, u64)>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl MemorySampler {
    pub fn start(pid: Option<u32>, every: Duration) -> MemorySampler {
        let started = Instant::now();
        let samples = Arc::new(Mutex::new(Vec::new()));
        let task = pid.map(|pid| {
            let samples = samples.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    if let Some(kib) = crate::net::rss_kib(pid) {
                        let t = (started.elapsed().as_secs_f64() * 100.0).round() / 100.0;
                        samples.lock().unwrap().push((t, kib));
                    }
                }
            })
        });
        MemorySampler {
            pid,
            started,
            samples,
            task,
        }
    }

    pub fn finish(mut self) -> MemorySeries {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if let Some(kib) = self.pid.and_then(crate::net::rss_kib) {
            let t = self.started.elapsed().as_secs_f64();
            self.samples
                .lock()
                .unwrap()
                .push(((t * 100.0).round() / 100.0, kib));
        }
        let samples = std::mem::take(&mut *self.samples.lock().unwrap());
        MemorySeries {
            pid: self.pid,
            start_kib: samples.first().map(|s| s.1),
            peak_kib: samples.iter().map(|s| s.1).max(),
            end_kib: samples.last().map(|s| s.1),
            samples,
        }
    }
}

impl Drop for MemorySampler {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut v: Vec<u64> = (1..=1000).map(|i| i * 1_000_000).collect();
        let l = Latency::of(&mut v);
        assert_eq!(l.count, 1000);
        assert_eq!(l.p50_ms, 500.0);
        assert_eq!(l.p99_ms, 990.0);
        assert_eq!(l.max_ms, 1000.0);
        assert_eq!(Latency::of(&mut []).count, 0);
    }
}
