//! Time: one value type and an injected clock, so expiry is testable without sleeping.

use std::fmt;
#[cfg(any(test, feature = "test-util"))]
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};

/// An instant, in whole seconds since the Unix epoch (UTC).
///
/// Whole seconds are what STS, IAM conditions and DynamoDB TTLs speak; ordering within a
/// second comes from sequence numbers, never from the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The instant `secs` seconds after the epoch.
    pub const fn from_unix_seconds(secs: i64) -> Self {
        Self(secs)
    }

    /// Seconds since the epoch.
    pub const fn unix_seconds(self) -> i64 {
        self.0
    }

    /// This instant plus `secs` seconds (saturating).
    pub const fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs))
    }

    /// The UTC calendar day, `YYYY-MM-DD`.
    pub fn utc_day(self) -> String {
        self.to_rfc3339().chars().take(10).collect()
    }

    /// RFC 3339 in UTC, such as `2026-11-27T20:37:00Z`.
    pub fn to_rfc3339(self) -> String {
        match time::OffsetDateTime::from_unix_timestamp(self.0) {
            Ok(t) => {
                let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
                let (h, mi, s) = (t.hour(), t.minute(), t.second());
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
            }
            // Outside the calendar range `time` supports: show the raw number.
            Err(_) => format!("@{}", self.0),
        }
    }

    /// Parses RFC 3339 (any offset), dropping fractions of a second.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(|t| Self(t.unix_timestamp()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Where time comes from. Domain code asks a `Clock`; only [`SystemClock`] reads the machine.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The machine's clock, for the deployed functions.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp(secs)
    }
}

/// A clock that moves only when told to, for tests and simulations.
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

#[cfg(any(test, feature = "test-util"))]
impl ManualClock {
    /// A clock standing at `start`.
    pub fn at(start: Timestamp) -> Self {
        Self(AtomicI64::new(start.0))
    }

    /// Moves the clock forward by `secs` seconds.
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: Timestamp) {
        self.0.store(to.0, Ordering::SeqCst);
    }
}

#[cfg(any(test, feature = "test-util"))]
impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_render_and_parse_as_rfc3339() {
        let t = Timestamp::from_unix_seconds(1_795_811_820);
        assert_eq!(t.to_rfc3339(), "2026-11-27T20:37:00Z");
        assert_eq!(t.utc_day(), "2026-11-27");
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-27T21:37:00.5+01:00"),
            Some(t)
        );
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::at(Timestamp::from_unix_seconds(100));
        assert_eq!(clock.now().unix_seconds(), 100);
        clock.advance(50);
        assert_eq!(clock.now().unix_seconds(), 150);
    }
}
