//! Per-plugin counters and call-time percentiles for `/_sluice/admin/plugins` and metrics.
//! They live across reloads of the same plugin.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Call times kept for percentiles (the most recent ones).
const WINDOW: usize = 4096;

#[derive(Default)]
pub struct Stats {
    pub calls: AtomicU64,
    pub errors: AtomicU64,
    pub traps: AtomicU64,
    pub timeouts: AtomicU64,
    pub instantiations: AtomicU64,
    pub reloads: AtomicU64,
    pub reload_failures: AtomicU64,
    recent: Mutex<VecDeque<u32>>,
}

impl Stats {
    pub fn record(&self, took: Duration, ok: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        let micros = took.as_micros().min(u32::MAX as u128) as u32;
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() == WINDOW {
                recent.pop_front();
            }
            recent.push_back(micros);
        }
    }

    /// p50 and p99 of recent call times, in microseconds.
    pub fn percentiles(&self) -> (u32, u32) {
        let mut v: Vec<u32> = match self.recent.lock() {
            Ok(r) => r.iter().copied().collect(),
            Err(_) => Vec::new(),
        };
        if v.is_empty() {
            return (0, 0);
        }
        v.sort_unstable();
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        (at(0.50), at(0.99))
    }
}
