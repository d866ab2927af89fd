//! Who may ask a node what, and how often: the decisions the actors apply to
//! every request before decoding it. Input: the authenticated peer name
//! (from the pinned TLS certificate, `actors::transport`) and the time,
//! passed in; output: allowed, or the refusal to send back. No I/O.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Relays and authorities answer the configured processor only.
pub fn only_processor(node: &str, processor: &str, peer: &str) -> Result<(), String> {
    if peer == processor {
        Ok(())
    } else {
        Err(format!("{node} only answers the processor"))
    }
}

/// The processor answers its configured users only.
pub fn only_users(users: &[String], peer: &str) -> Result<(), String> {
    if users.iter().any(|u| u == peer) {
        Ok(())
    } else {
        Err(format!("{peer} is not a user of this processor"))
    }
}

/// What a rate limit counts: queries and status-like requests separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RateClass {
    Query,
    Status,
}

impl RateClass {
    fn noun(self) -> &'static str {
        match self {
            RateClass::Query => "queries",
            RateClass::Status => "status requests",
        }
    }
}

/// A sliding one-minute window per (user, class), each up to `per_minute`.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    recent: HashMap<(String, RateClass), VecDeque<Instant>>,
}

const WINDOW: Duration = Duration::from_secs(60);

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        RateLimiter { per_minute, recent: HashMap::new() }
    }

    /// Counts one request of `user` at `now`, or says why it is refused.
    pub fn admit(&mut self, user: &str, class: RateClass, now: Instant) -> Result<(), String> {
        // forget users whose window is empty, so the map stays small
        self.recent.retain(|_, times| times.back().is_some_and(|t| now.saturating_duration_since(*t) < WINDOW));
        let times = self.recent.entry((user.to_string(), class)).or_default();
        while times.front().is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW) {
            times.pop_front();
        }
        if times.len() >= usize::try_from(self.per_minute).unwrap_or(usize::MAX) {
            return Err(format!(
                "rate limit: at most {} {} per minute per user; wait and retry",
                self.per_minute,
                class.noun()
            ));
        }
        times.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_slides_and_classes_are_separate() {
        let mut limiter = RateLimiter::new(2);
        let t0 = Instant::now();
        assert!(limiter.admit("alice", RateClass::Query, t0).is_ok());
        assert!(limiter.admit("alice", RateClass::Query, t0 + Duration::from_secs(1)).is_ok());
        let refused = limiter.admit("alice", RateClass::Query, t0 + Duration::from_secs(2));
        assert_eq!(refused, Err("rate limit: at most 2 queries per minute per user; wait and retry".into()));
        // other users and the other class are counted apart
        assert!(limiter.admit("bob", RateClass::Query, t0 + Duration::from_secs(2)).is_ok());
        assert!(limiter.admit("alice", RateClass::Status, t0 + Duration::from_secs(2)).is_ok());
        // a minute after the first, one slot is free again, not two
        assert!(limiter.admit("alice", RateClass::Query, t0 + Duration::from_secs(60)).is_ok());
        assert!(limiter.admit("alice", RateClass::Query, t0 + Duration::from_secs(60)).is_err());
    }

    #[test]
    fn only_the_configured_peers_are_answered() {
        assert!(only_processor("relay-1", "processor", "processor").is_ok());
        assert_eq!(only_processor("relay-1", "processor", "relay-2"), Err("relay-1 only answers the processor".into()));
        let users = vec!["user".to_string()];
        assert!(only_users(&users, "user").is_ok());
        assert_eq!(only_users(&users, "relay-1"), Err("relay-1 is not a user of this processor".into()));
    }
}
