//! Exponential back-off between retries of a failing call (Redis, broker, AP connection).
//! One helper so that every retry loop waits the same documented way: the pause starts at
//! `first`, doubles after each failure and stays at `max`; a success resets it.

use std::time::Duration;

/// Doubling pauses from `first` up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

/// The services' retry policy for Redis and egress calls: 100 ms doubling up to 5 s.
impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(5))
    }
}

impl Backoff {
    /// Pauses of `first`, `2 × first`, … never longer than `max`.
    pub fn new(first: Duration, max: Duration) -> Backoff {
        let first = first.min(max);
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// The pause to wait now; the following one is twice as long (up to the maximum).
    pub fn next_pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        pause
    }

    /// The pause [`Backoff::next_pause`] would return, without advancing.
    pub fn peek(&self) -> Duration {
        self.next
    }

    /// Back to the first pause (after a success).
    pub fn reset(&mut self) {
        self.next = self.first;
    }

    /// Waits the next pause.
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next_pause()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubles_up_to_the_maximum_and_resets() {
        let mut b = Backoff::new(ms(100), ms(500));
        let got: Vec<_> = (0..5).map(|_| b.next_pause()).collect();
        assert_eq!(got, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
        b.reset();
        assert_eq!(b.peek(), ms(100));
        assert_eq!(b.next_pause(), ms(100));
    }

    #[test]
    fn never_overflows() {
        let mut b = Backoff::new(Duration::MAX, Duration::MAX);
        for _ in 0..3 {
            assert_eq!(b.next_pause(), Duration::MAX);
        }
        let mut b = Backoff::new(ms(800), ms(300));
        assert_eq!(b.next_pause(), ms(300), "first is capped by max");
    }
}
