//! Token buckets: how many of something a sender may have per second, with
//! a burst. The gateway's ICMP errors (Linux's defaults, shared by all of a
//! network's senders), the embedded DNS's per-client query budget, and the
//! per-source policing to come all count with one.

use crate::time::Time;

/// A token bucket: `rate` per second, bursts of up to `burst`.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate: u32,
    burst: u32,
    tokens: u32,
    last: Time,
}

impl RateLimiter {
    pub fn new(rate: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            rate,
            burst,
            tokens: burst,
            last: Time::ZERO,
        }
    }

    /// A bucket whose refills count from `now` (not from time zero).
    pub fn starting_at(mut self, now: Time) -> RateLimiter {
        self.last = now;
        self
    }

    pub fn allow(&mut self, now: Time) -> bool {
        let elapsed = now.saturating_sub(self.last);
        let add = (elapsed.as_nanos() * self.rate as u128 / 1_000_000_000) as u64;
        if add > 0 {
            self.tokens = (self.tokens as u64 + add).min(self.burst as u64) as u32;
            self.last = now;
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let mut r = RateLimiter::new(10, 3).starting_at(Time::from_secs(1));
        let t = Time::from_secs(1);
        assert!((0..3).all(|_| r.allow(t)));
        assert!(!r.allow(t), "the burst is spent");
        // 10 per second: one more every 100 ms, never above the burst.
        assert!(r.allow(Time(t.0 + 100_000_000)));
        assert!(!r.allow(Time(t.0 + 100_000_000)));
        let later = Time::from_secs(100);
        assert_eq!((0..10).filter(|_| r.allow(later)).count(), 3);
    }
}
