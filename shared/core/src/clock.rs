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

/// The environment variable that puts a function on the local stack's movable clock: the
/// path of a file holding an offset in seconds from the machine's time.
pub const STACK_CLOCK_ENV: &str = "JIT_STACK_CLOCK_FILE";

/// The local stack's clock: the machine's, moved by the whole seconds the file at its path
/// says (read on every call, so the stack moves every function's time at once). A missing
/// or unreadable file moves nothing. Only [`clock_from_env`] makes one, and only where every
/// AWS endpoint is on this machine.
#[derive(Debug, Clone)]
pub struct StackClock {
    file: std::path::PathBuf,
}

impl StackClock {
    /// The offset the file says now.
    pub fn offset_secs(&self) -> i64 {
        std::fs::read_to_string(&self.file)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Clock for StackClock {
    fn now(&self) -> Timestamp {
        SystemClock.now().plus_secs(self.offset_secs())
    }
}

/// The clock a function runs on, from its environment (`var` reads it): the machine's, or
/// with [`STACK_CLOCK_ENV`] set, the local stack's movable one. That is refused unless
/// `AWS_ENDPOINT_URL` names this machine (a loopback address or `localhost`): a deployed
/// function talks to AWS, never to a loopback endpoint, so it can never run on moved time.
pub fn clock_from_env(
    var: impl Fn(&str) -> Option<String>,
) -> Result<std::sync::Arc<dyn Clock>, String> {
    let Some(file) = var(STACK_CLOCK_ENV).filter(|f| !f.is_empty()) else {
        return Ok(std::sync::Arc::new(SystemClock));
    };
    let endpoint = var("AWS_ENDPOINT_URL").unwrap_or_default();
    if !is_loopback_url(&endpoint) {
        return Err(format!(
            "{STACK_CLOCK_ENV} is set, but a movable clock is for the local stack only: AWS_ENDPOINT_URL must name this machine (it is `{endpoint}`); unset {STACK_CLOCK_ENV}"
        ));
    }
    Ok(std::sync::Arc::new(StackClock { file: file.into() }))
}

/// Whether `url` is `http(s)://` a loopback address or `localhost`, with any port and path.
fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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
    fn only_a_function_talking_to_this_machine_runs_on_the_stacks_clock() {
        let dir = std::env::temp_dir().join(format!("jit-clock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("clock");
        let path = file.display().to_string();
        let env = |endpoint: Option<&'static str>, clock: Option<String>| {
            move |name: &str| match name {
                STACK_CLOCK_ENV => clock.clone(),
                "AWS_ENDPOINT_URL" => endpoint.map(str::to_owned),
                _ => None,
            }
        };
        // Without the variable: the machine's time.
        let plain = clock_from_env(env(None, None)).unwrap();
        assert!((plain.now().unix_seconds() - SystemClock.now().unix_seconds()).abs() <= 1);
        // With it, outside the stack: refused, saying why.
        for endpoint in [
            None,
            Some("https://dynamodb.us-east-1.amazonaws.com"),
            Some("http://127.0.0.1.example.com:4566"),
            Some("http://user@127.0.0.1:4566"),
            Some("http://10.0.0.8:4566"),
        ] {
            let refused = clock_from_env(env(endpoint, Some(path.clone()))).err();
            assert!(
                refused
                    .as_deref()
                    .is_some_and(|why| why.contains("for the local stack only")),
                "{endpoint:?}: {refused:?}"
            );
        }
        // In the stack: the machine's time moved by what the file says, read on every call.
        for endpoint in [
            "http://127.0.0.1:4566",
            "http://localhost:9/x",
            "http://[::1]:80",
        ] {
            assert!(
                clock_from_env(env(Some(endpoint), Some(path.clone()))).is_ok(),
                "{endpoint}"
            );
        }
        let clock = clock_from_env(env(Some("http://127.0.0.1:4566"), Some(path))).unwrap();
        let before = SystemClock.now().unix_seconds();
        assert!(
            (clock.now().unix_seconds() - before).abs() <= 1,
            "no file: not moved"
        );
        std::fs::write(&file, "86400\n").unwrap();
        assert!((clock.now().unix_seconds() - before - 86_400).abs() <= 1);
        std::fs::write(&file, "3600").unwrap();
        assert!((clock.now().unix_seconds() - before - 3600).abs() <= 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::at(Timestamp::from_unix_seconds(100));
        assert_eq!(clock.now().unix_seconds(), 100);
        clock.advance(50);
        assert_eq!(clock.now().unix_seconds(), 150);
    }
}
