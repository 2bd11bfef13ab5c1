//! Pacing to TvMaze's rate limit ("at least 20 calls every 10 seconds per IP"): a
//! request starts only once fewer than `calls` requests were answered within the last
//! `window_ms`. Counting from answers (TvMaze counted each request before it answered)
//! keeps every window TvMaze sees under the limit whatever the network's jitter. The
//! instants of the latest `calls` answers are kept in the cursor, so back-to-back ticks
//! (a Durable Object's alarm chain, a tight cron) pace across tick boundaries too, and a
//! tick's first requests do not burst on top of the last tick's.

use std::collections::VecDeque;

/// At most `calls` requests in any `window_ms` milliseconds; `calls = 0` paces nothing
/// (a source without a limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub calls: u32,
    pub window_ms: i64,
}

impl Rate {
    /// TvMaze's published limit.
    pub const TVMAZE: Rate = Rate {
        calls: 20,
        window_ms: 10_000,
    };
}

/// When (host clock, unix ms) the latest requests were answered.
#[derive(Debug, Clone)]
pub struct Pacer {
    rate: Rate,
    recent: VecDeque<i64>,
}

impl Pacer {
    pub fn new(rate: Rate, recent: &[i64]) -> Self {
        let mut pacer = Self {
            rate,
            recent: VecDeque::with_capacity(rate.calls as usize + 1),
        };
        for &at in recent {
            pacer.record(at);
        }
        pacer
    }

    /// The earliest instant the next request may start. A wait is never longer than one
    /// window: a start time after `now` can only come from a clock that jumped back.
    pub fn next_slot(&self, now_ms: i64) -> i64 {
        if self.rate.calls == 0 || self.recent.len() < self.rate.calls as usize {
            return now_ms;
        }
        let window = self.rate.window_ms.max(0);
        self.recent.front().map_or(now_ms, |&oldest| {
            oldest
                .saturating_add(window)
                .min(now_ms.saturating_add(window))
                .max(now_ms)
        })
    }

    /// Notes a request answered at `at_ms`.
    pub fn record(&mut self, at_ms: i64) {
        if self.rate.calls == 0 {
            return;
        }
        self.recent.push_back(at_ms);
        while self.recent.len() > self.rate.calls as usize {
            self.recent.pop_front();
        }
    }

    /// What the cursor keeps.
    pub fn recent(&self) -> Vec<i64> {
        self.recent.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        calls: 3,
        window_ms: 1000,
    };

    #[test]
    fn next_slot_is_now_until_the_window_holds_the_limit() {
        let mut pacer = Pacer::new(RATE, &[]);
        assert_eq!(pacer.next_slot(50), 50);
        pacer.record(100);
        pacer.record(200);
        assert_eq!(pacer.next_slot(250), 250);
        pacer.record(300);
        // Three starts in the window: the fourth waits for the first to leave it.
        assert_eq!(pacer.next_slot(350), 1100);
        assert_eq!(pacer.next_slot(1500), 1500);
    }

    #[test]
    fn no_window_ever_holds_more_than_the_limit() {
        let mut pacer = Pacer::new(RATE, &[]);
        let mut now = 0;
        let mut starts = Vec::new();
        for _ in 0..20 {
            now = pacer.next_slot(now + 7);
            pacer.record(now);
            starts.push(now);
        }
        for (i, &start) in starts.iter().enumerate() {
            let within = starts[i..]
                .iter()
                .filter(|&&s| s < start + RATE.window_ms)
                .count();
            assert!(within <= RATE.calls as usize, "{starts:?}");
        }
        // ...and it runs at the limit, not below it: 20 calls in ~6 windows.
        assert!(now < 6 * RATE.window_ms + 100, "{now}");
    }

    #[test]
    fn starts_kept_from_the_last_tick_pace_the_next_one() {
        let pacer = Pacer::new(RATE, &[10, 20, 30, 40]);
        assert_eq!(pacer.recent(), vec![20, 30, 40]);
        assert_eq!(pacer.next_slot(500), 1020);
    }

    #[test]
    fn zero_calls_paces_nothing() {
        let mut pacer = Pacer::new(
            Rate {
                calls: 0,
                window_ms: 1000,
            },
            &[1, 2, 3],
        );
        pacer.record(4);
        assert_eq!(pacer.next_slot(5), 5);
        assert!(pacer.recent().is_empty());
    }

    #[test]
    fn a_clock_that_jumped_back_waits_at_most_one_window() {
        let pacer = Pacer::new(RATE, &[90_000, 90_001, 90_002]);
        assert_eq!(pacer.next_slot(1_000), 2_000);
    }
}
