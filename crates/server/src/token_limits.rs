//! The personal API tokens' rate limits: requests per token per minute, counted by this
//! instance (a fixed window per token).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// Requests per token per minute, counted by this instance.
#[derive(Clone)]
pub struct TokenLimits {
    per_minute: u32,
    windows: Arc<Mutex<HashMap<String, (Instant, u32)>>>,
}

impl TokenLimits {
    /// `per_minute` requests per token per minute.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            windows: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Counts a request of `token`: `None` when allowed, else how long until it would be.
    pub fn take(&self, token: &str) -> Option<Duration> {
        let now = Instant::now();
        let minute = Duration::from_secs(60);
        let mut windows = self.windows.lock().ok()?;
        if windows.len() > 100_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < minute);
        }
        let (start, count) = windows.entry(token.to_owned()).or_insert((now, 0));
        if now.duration_since(*start) >= minute {
            (*start, *count) = (now, 0);
        }
        *count += 1;
        (*count > self.per_minute).then(|| minute.saturating_sub(now.duration_since(*start)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_past_its_rate_waits_for_the_next_minute() {
        let limits = TokenLimits::new(2);
        assert_eq!(limits.take("t"), None);
        assert_eq!(limits.take("t"), None);
        let wait = limits.take("t");
        assert!(
            wait.is_some_and(|w| w <= Duration::from_secs(60)),
            "{wait:?}"
        );
        assert_eq!(limits.take("u"), None);
    }
}
