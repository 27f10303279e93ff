//! The requests-per-minute and tokens-per-minute limits of one endpoint: a sliding 60 s window
//! of what was sent, so that no 60 s window, wherever it starts, holds more than the limits.
//! A call waits (asleep, on the judge's I/O runtime, holding no worker) until it fits.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window the limits are counted over: 60 s.
pub const WINDOW: Duration = Duration::from_secs(60);

/// One endpoint's limits and what was sent in the last [`WINDOW`].
#[derive(Debug)]
pub(super) struct RateLimits {
    requests_per_minute: Option<u32>,
    tokens_per_minute: Option<u64>,
    window: Mutex<Window>,
}

/// A request counted in the window: its tokens are settled when the answer reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Ticket(u64);

#[derive(Debug, Default)]
struct Window {
    /// (ticket, when it was sent, tokens charged), oldest first.
    sent: VecDeque<(u64, Instant, u64)>,
    tokens: u64,
    next: u64,
}

impl Window {
    fn expire(&mut self, now: Instant) {
        while let Some(&(_, at, tokens)) = self.sent.front() {
            if now.duration_since(at) < WINDOW {
                break;
            }
            self.tokens -= tokens;
            self.sent.pop_front();
        }
    }
}

impl RateLimits {
    pub(super) fn new(requests_per_minute: Option<u32>, tokens_per_minute: Option<u64>) -> RateLimits {
        RateLimits { requests_per_minute, tokens_per_minute, window: Mutex::new(Window::default()) }
    }

    /// Whether a request of `tokens` could ever fit.
    pub(super) fn fits(&self, tokens: u64) -> bool {
        self.tokens_per_minute.is_none_or(|tpm| tokens <= tpm)
    }

    /// Counts a request of `tokens` sent at `now` if it fits the window; otherwise the instant it
    /// will (when enough of the window's requests have aged out).
    pub(super) fn try_take(&self, now: Instant, tokens: u64) -> Result<Ticket, Instant> {
        let mut w = self.window.lock().expect("rate window poisoned");
        w.expire(now);
        let mut ready = now;
        if let Some(rpm) = self.requests_per_minute
            && w.sent.len() >= rpm as usize
        {
            // The request that must age out for one more to fit.
            let (_, at, _) = w.sent[w.sent.len() - rpm as usize];
            ready = ready.max(at + WINDOW);
        }
        if let Some(tpm) = self.tokens_per_minute
            && w.tokens + tokens > tpm
        {
            let mut freed = 0;
            for &(_, at, t) in &w.sent {
                freed += t;
                if w.tokens - freed + tokens <= tpm {
                    ready = ready.max(at + WINDOW);
                    break;
                }
            }
        }
        if ready > now {
            return Err(ready);
        }
        let ticket = w.next;
        w.next += 1;
        w.sent.push_back((ticket, now, tokens));
        w.tokens += tokens;
        Ok(Ticket(ticket))
    }

    /// Waits until a request of `tokens` fits, then counts it. `tokens` must [`fits`](Self::fits).
    pub(super) async fn take(&self, tokens: u64) -> Ticket {
        loop {
            match self.try_take(Instant::now(), tokens) {
                Ok(ticket) => return ticket,
                Err(ready) => tokio::time::sleep_until(ready.into()).await,
            }
        }
    }

    /// Replaces a request's estimated tokens with what the endpoint reported it used.
    pub(super) fn settle(&self, ticket: Ticket, tokens: u64) {
        let mut w = self.window.lock().expect("rate window poisoned");
        if let Some(entry) = w.sent.iter_mut().find(|(t, _, _)| *t == ticket.0) {
            let old = std::mem::replace(&mut entry.2, tokens);
            w.tokens = w.tokens - old + tokens;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_per_minute_hold_over_any_window() {
        let limits = RateLimits::new(Some(3), None);
        let t0 = Instant::now();
        for i in 0..3 {
            limits.try_take(t0 + Duration::from_secs(i), 1).unwrap();
        }
        // The fourth waits until the first is 60 s old, not a moment less.
        let ready = limits.try_take(t0 + Duration::from_secs(10), 1).unwrap_err();
        assert_eq!(ready, t0 + WINDOW);
        assert!(limits.try_take(t0 + WINDOW - Duration::from_millis(1), 1).is_err());
        limits.try_take(t0 + WINDOW, 1).unwrap();
        // And the next one waits for the second.
        assert_eq!(limits.try_take(t0 + WINDOW, 1).unwrap_err(), t0 + Duration::from_secs(1) + WINDOW);
    }

    #[test]
    fn tokens_per_minute_wait_for_enough_to_age_out() {
        let limits = RateLimits::new(None, Some(100));
        let t0 = Instant::now();
        limits.try_take(t0, 40).unwrap();
        limits.try_take(t0 + Duration::from_secs(5), 40).unwrap();
        // 50 more needs the first 40 gone (80 - 40 + 50 = 90 <= 100).
        assert_eq!(limits.try_take(t0 + Duration::from_secs(6), 50).unwrap_err(), t0 + WINDOW);
        // 95 more needs both gone.
        assert_eq!(limits.try_take(t0 + Duration::from_secs(6), 95).unwrap_err(), t0 + Duration::from_secs(5) + WINDOW);
        assert!(limits.fits(100) && !limits.fits(101));
    }

    #[test]
    fn settling_replaces_the_estimate() {
        let limits = RateLimits::new(None, Some(100));
        let t0 = Instant::now();
        let ticket = limits.try_take(t0, 90).unwrap();
        assert!(limits.try_take(t0, 20).is_err());
        // The answer used 10 tokens, not the 90 estimated: 20 more fit now.
        limits.settle(ticket, 10);
        limits.try_take(t0, 20).unwrap();
    }
}
