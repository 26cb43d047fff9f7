//! Exponential backoff with full jitter, bounded by a deadline.
//!
//! Transient failures are retried quickly at first and never by sleeping past the
//! time the shot has left: nothing waits minutes after an error.

use std::time::{Duration, Instant};

use crate::ids;

/// Backoff state for one call.
pub struct Backoff {
    attempt: u32,
    base: Duration,
    cap: Duration,
    until: Instant,
}

impl Backoff {
    /// Retry until `until`, starting near `base` and never waiting more than `cap` at once.
    pub fn new(base: Duration, cap: Duration, until: Instant) -> Backoff {
        Backoff {
            attempt: 0,
            base,
            cap,
            until,
        }
    }

    /// How long to wait before the next try, or `None` when the time is up.
    /// A server's `Retry-After` replaces the jittered delay (still within the deadline).
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
        let exp = self
            .base
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.cap);
        self.attempt += 1;
        let delay = retry_after.unwrap_or_else(|| exp.mul_f64(ids::unit_random()));
        let left = self.until.saturating_duration_since(Instant::now());
        (delay < left).then_some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_under_the_cap_and_stop_at_the_deadline() {
        let mut b = Backoff::new(
            Duration::from_millis(100),
            Duration::from_millis(800),
            Instant::now() + Duration::from_secs(3600),
        );
        for _ in 0..20 {
            let d = b.next_delay(None).unwrap();
            assert!(d <= Duration::from_millis(800), "{d:?}");
        }
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(7))),
            Some(Duration::from_secs(7))
        );
        let mut done = Backoff::new(
            Duration::from_millis(100),
            Duration::from_secs(1),
            Instant::now(),
        );
        assert_eq!(done.next_delay(None), None);
        let mut late = Backoff::new(
            Duration::from_millis(1),
            Duration::from_millis(1),
            Instant::now() + Duration::from_secs(1),
        );
        assert_eq!(late.next_delay(Some(Duration::from_secs(5))), None);
    }
}
