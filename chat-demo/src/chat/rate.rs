//! A token bucket with an explicit clock, written as GCRA: one instant (the
//! "theoretical arrival time") instead of a token count, so it needs no
//! floating point and no background refill.

use std::time::{Duration, Instant};

/// Allows bursts of `burst` events, then one event per `interval`
/// (`burst` events per `burst × interval` on average).
///
/// ```text
/// RateLimiter::new(10, Duration::from_secs(5))  // 10 at once, then 2 per second
/// ```
#[derive(Debug, Clone)]
pub(crate) struct RateLimiter {
    /// Time one token takes to come back.
    interval: Duration,
    /// How far ahead of `now` the arrival time may run before refusing:
    /// `(burst - 1) × interval`.
    tolerance: Duration,
    /// When the bucket will be full again; `None` = full now.
    tat: Option<Instant>,
}

impl RateLimiter {
    /// `burst` events per `period`, all of them allowed at once. A `burst`
    /// of 0 is taken as 1.
    pub(crate) fn new(burst: u32, period: Duration) -> Self {
        let burst = burst.max(1);
        let interval = period / burst;
        RateLimiter {
            interval,
            tolerance: interval * (burst - 1),
            tat: None,
        }
    }

    /// Takes a token at `now`; `false` (and nothing taken) if none is left.
    pub(crate) fn check(&mut self, now: Instant) -> bool {
        let tat = self.tat.map_or(now, |t| t.max(now));
        if tat.saturating_duration_since(now) > self.tolerance {
            return false;
        }
        self.tat = Some(tat + self.interval);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refused_then_refilled() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(10, Duration::from_secs(5));
        for i in 0..10 {
            assert!(rl.check(t0), "event {i} of the burst");
        }
        assert!(!rl.check(t0), "11th at once is refused");
        assert!(!rl.check(t0 + Duration::from_millis(499)));
        // One token comes back every 500 ms.
        assert!(rl.check(t0 + Duration::from_millis(500)));
        assert!(!rl.check(t0 + Duration::from_millis(500)));
        // After a full period of silence the whole burst is back.
        let later = t0 + Duration::from_secs(11);
        for _ in 0..10 {
            assert!(rl.check(later));
        }
        assert!(!rl.check(later));
    }

    #[test]
    fn steady_rate_is_allowed() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(10, Duration::from_secs(5));
        for i in 0..100u32 {
            assert!(rl.check(t0 + Duration::from_millis(500) * i));
        }
    }

    #[test]
    fn refused_events_take_nothing() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(2, Duration::from_secs(2));
        assert!(rl.check(t0));
        assert!(rl.check(t0));
        for _ in 0..50 {
            assert!(!rl.check(t0));
        }
        assert!(rl.check(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn zero_burst_is_one() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(0, Duration::from_secs(1));
        assert!(rl.check(t0));
        assert!(!rl.check(t0));
        assert!(rl.check(t0 + Duration::from_secs(1)));
    }
}
