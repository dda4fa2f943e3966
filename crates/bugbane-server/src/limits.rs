//! In-memory caches for the ingest hot path: DSN keys (so authenticating a request needs
//! no database query) and per-key rate-limit windows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bugbane_store::{ProjectKey, Store};

use crate::error::ApiError;

/// How long a key lookup is trusted; revoking a key takes effect within this time.
const KEY_TTL: Duration = Duration::from_secs(5);

/// Cached DSN keys, including negative lookups.
#[derive(Default)]
pub(crate) struct KeyCache {
    entries: Mutex<HashMap<String, (Option<ProjectKey>, Instant)>>,
}

impl KeyCache {
    pub(crate) async fn get(
        &self,
        store: &Store,
        public_key: &str,
    ) -> Result<Option<ProjectKey>, ApiError> {
        if let Ok(map) = self.entries.lock()
            && let Some((key, at)) = map.get(public_key)
            && at.elapsed() < KEY_TTL
        {
            return Ok(key.clone());
        }
        let key = store.key_by_public(public_key.to_owned()).await?;
        if let Ok(mut map) = self.entries.lock() {
            if map.len() > 100_000 {
                map.clear();
            }
            map.insert(public_key.to_owned(), (key.clone(), Instant::now()));
        }
        Ok(key)
    }

    /// Forgets a key, so a change made through this process applies at once.
    pub(crate) fn invalidate(&self, public_key: &str) {
        if let Ok(mut map) = self.entries.lock() {
            map.remove(public_key);
        }
    }
}

/// Fixed one-minute windows per key.
#[derive(Default)]
pub(crate) struct RateLimiter {
    windows: Mutex<HashMap<i64, (u64, u64)>>,
}

impl RateLimiter {
    /// Counts one envelope against `key_id`; `Err(seconds)` when over `limit` this minute.
    pub(crate) fn check(&self, key_id: i64, limit: u64, now: f64) -> Result<(), u64> {
        if limit == 0 {
            return Ok(());
        }
        let minute = (now / 60.0) as u64;
        let Ok(mut map) = self.windows.lock() else {
            return Ok(());
        };
        let w = map.entry(key_id).or_insert((minute, 0));
        if w.0 != minute {
            *w = (minute, 0);
        }
        if w.1 >= limit {
            let retry = ((minute + 1) as f64 * 60.0 - now).ceil().max(1.0) as u64;
            return Err(retry);
        }
        w.1 += 1;
        Ok(())
    }
}
