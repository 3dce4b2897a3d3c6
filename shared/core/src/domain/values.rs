//! Typed ids and values: each one checked once, where it enters the system.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// Why a value from outside was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The value is empty or only white space.
    #[error("{what} must not be empty")]
    Empty {
        /// Which value.
        what: &'static str,
    },
    /// The value is longer than allowed.
    #[error("{what} must be at most {max} characters, got {len}")]
    TooLong {
        /// Which value.
        what: &'static str,
        /// The limit.
        max: usize,
        /// What was given.
        len: usize,
    },
    /// The value is shorter than allowed.
    #[error("{what} must be at least {min} characters, got {len}")]
    TooShort {
        /// Which value.
        what: &'static str,
        /// The limit.
        min: usize,
        /// What was given.
        len: usize,
    },
    /// The value holds a character or shape that is not allowed.
    #[error("{what} `{value}` is not valid: {rule}")]
    Malformed {
        /// Which value.
        what: &'static str,
        /// The value as given.
        value: String,
        /// What a valid value looks like.
        rule: &'static str,
    },
    /// A duration outside the global bounds.
    #[error("duration must be between {min} and {max}, got {got}")]
    DurationOutOfBounds {
        /// The shortest allowed, rendered.
        min: GrantDuration,
        /// The longest allowed, rendered.
        max: GrantDuration,
        /// What was asked for, in seconds.
        got: String,
    },
}

fn check_text(
    what: &'static str,
    value: &str,
    max: usize,
    allowed: impl Fn(char) -> bool,
    rule: &'static str,
) -> Result<(), ValueError> {
    if value.trim().is_empty() {
        return Err(ValueError::Empty { what });
    }
    let len = value.chars().count();
    if len > max {
        return Err(ValueError::TooLong { what, max, len });
    }
    if !value.chars().all(allowed) {
        return Err(ValueError::Malformed {
            what,
            value: value.to_owned(),
            rule,
        });
    }
    Ok(())
}

macro_rules! string_value {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:expr, $allowed:expr, $rule:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks and wraps a value from outside.
            pub fn parse(value: impl Into<String>) -> Result<Self, ValueError> {
                let value = value.into();
                check_text($what, &value, $max, $allowed, $rule)?;
                Ok(Self(value))
            }

            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValueError;
            fn try_from(value: String) -> Result<Self, ValueError> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn printable(c: char) -> bool {
    !c.is_control()
}

fn slug(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
}

fn grant_id_char(c: char) -> bool {
    (c.is_ascii_hexdigit() && !c.is_ascii_uppercase()) || c == '-'
}

fn ticket_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.:/@+".contains(c)
}

string_value!(
    /// A person, as the identity provider names them (the JWT `sub`).
    UserId,
    "user id",
    256,
    printable,
    "no control characters"
);

string_value!(
    /// A group a person belongs to, as the identity provider names it.
    GroupName,
    "group",
    256,
    printable,
    "no control characters"
);

string_value!(
    /// A target: one role that access can be requested to, as the targets file names it.
    TargetId,
    "target",
    64,
    slug,
    "lower-case letters, digits, - and _ only"
);

string_value!(
    /// A ticket reference, such as `INC-1234`.
    Ticket,
    "ticket",
    64,
    ticket_char,
    "letters, digits and - _ . : / @ + only"
);

string_value!(
    /// The ARN of an IAM role that access is granted to.
    RoleArn,
    "role ARN",
    2048,
    printable,
    "no control characters"
);

impl RoleArn {
    /// The role's name: what follows the last `/` of its path.
    pub fn name(&self) -> &str {
        let arn = self.as_str();
        arn.rsplit('/').next().unwrap_or(arn)
    }

    /// The account the role is in: the fifth field of `arn:partition:iam::account:role/...`,
    /// when the ARN has that shape.
    pub fn account(&self) -> Option<&str> {
        let mut fields = self.as_str().splitn(6, ':');
        match (fields.next(), fields.nth(3), fields.next()) {
            (Some("arn"), Some(account), Some(resource))
                if account.len() == 12
                    && account.bytes().all(|b| b.is_ascii_digit())
                    && resource.starts_with("role/") =>
            {
                Some(account)
            }
            _ => None,
        }
    }
}

string_value!(
    /// A grant's id: a time-ordered UUID, so ids sort by creation.
    GrantId,
    "grant id",
    36,
    grant_id_char,
    "a lower-case UUID"
);

impl GrantId {
    /// A fresh id for a grant created at `now`.
    pub fn generate(now: Timestamp) -> Self {
        let seconds = u64::try_from(now.unix_seconds()).unwrap_or(0);
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, seconds, 0);
        Self(uuid::Uuid::new_v7(ts).hyphenated().to_string())
    }

    /// When the grant was created, as its id (a UUIDv7) records it; `None` for an id that is
    /// not a UUIDv7.
    pub fn created_at(&self) -> Option<Timestamp> {
        let (seconds, _) = uuid::Uuid::parse_str(&self.0)
            .ok()?
            .get_timestamp()?
            .to_unix();
        i64::try_from(seconds)
            .ok()
            .map(Timestamp::from_unix_seconds)
    }
}

/// Why access is wanted, in the requester's words.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reason(String);

impl Reason {
    /// The fewest characters a reason may have: enough to say something.
    pub const MIN_CHARS: usize = 10;
    /// The most characters a reason may have.
    pub const MAX_CHARS: usize = 1000;

    /// Checks and wraps a reason; surrounding white space is dropped.
    pub fn parse(value: impl Into<String>) -> Result<Self, ValueError> {
        let value = value.into();
        let value = value.trim();
        let what = "reason";
        if value.is_empty() {
            return Err(ValueError::Empty { what });
        }
        let len = value.chars().count();
        if len < Self::MIN_CHARS {
            return Err(ValueError::TooShort {
                what,
                min: Self::MIN_CHARS,
                len,
            });
        }
        check_text(
            what,
            value,
            Self::MAX_CHARS,
            |c| !c.is_control() || c == '\n',
            "no control characters",
        )?;
        Ok(Self(value.to_owned()))
    }

    /// The reason as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Reason {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, ValueError> {
        Self::parse(value)
    }
}

impl From<Reason> for String {
    fn from(value: Reason) -> String {
        value.0
    }
}

/// How long access is wanted for, within global bounds (a target may set a lower maximum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct GrantDuration(u32);

impl GrantDuration {
    /// The shortest grant: five minutes.
    pub const MIN: Self = Self(5 * 60);
    /// The longest grant: twelve hours.
    pub const MAX: Self = Self(12 * 60 * 60);

    /// A duration of this many seconds, if within bounds.
    pub fn from_secs(secs: u64) -> Result<Self, ValueError> {
        match u32::try_from(secs) {
            Ok(s) if (Self::MIN.0..=Self::MAX.0).contains(&s) => Ok(Self(s)),
            _ => Err(ValueError::DurationOutOfBounds {
                min: Self::MIN,
                max: Self::MAX,
                got: secs.to_string() + "s",
            }),
        }
    }

    /// Parses `90m`, `1h30m`, `2h`, `900s` or a bare number of seconds.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let malformed = || ValueError::Malformed {
            what: "duration",
            value: text.to_owned(),
            rule: "a number of seconds, or hours/minutes/seconds such as `1h30m`",
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(ValueError::Empty { what: "duration" });
        }
        if let Ok(secs) = text.parse::<u64>() {
            return Self::from_secs(secs);
        }
        let mut total: u64 = 0;
        let mut digits = String::new();
        let mut last_unit = u64::MAX;
        for c in text.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit = match c {
                'h' => 3600,
                'm' => 60,
                's' => 1,
                _ => return Err(malformed()),
            };
            // Units must come once each, largest first: `1h30m`, not `30m1h` or `1h1h`.
            if digits.is_empty() || unit >= last_unit {
                return Err(malformed());
            }
            last_unit = unit;
            let n: u64 = digits.parse().map_err(|_| malformed())?;
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(malformed)?;
            digits.clear();
        }
        if !digits.is_empty() {
            return Err(malformed());
        }
        Self::from_secs(total)
    }

    /// The duration in seconds.
    pub fn as_secs(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for GrantDuration {
    type Error = ValueError;
    fn try_from(secs: u32) -> Result<Self, ValueError> {
        Self::from_secs(u64::from(secs))
    }
}

impl From<GrantDuration> for u32 {
    fn from(value: GrantDuration) -> u32 {
        value.0
    }
}

impl fmt::Display for GrantDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s) = (self.0 / 3600, self.0 / 60 % 60, self.0 % 60);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 || self.0 == 0 {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_form_and_render_back() {
        for (text, secs) in [
            ("900", 900),
            ("90m", 5400),
            ("1h30m", 5400),
            ("2h", 7200),
            ("600s", 600),
            ("1h0m5s", 3605),
        ] {
            let d = GrantDuration::parse(text).unwrap();
            assert_eq!(d.as_secs(), secs, "{text}");
            assert_eq!(GrantDuration::parse(&d.to_string()).unwrap(), d);
        }
    }

    #[test]
    fn durations_outside_bounds_or_malformed_are_refused() {
        for text in [
            "",
            "0",
            "60",
            "13h",
            "1d",
            "h",
            "30m1h",
            "1h1h",
            "1.5h",
            "-5m",
            "99999999999999999999h",
        ] {
            assert!(GrantDuration::parse(text).is_err(), "{text:?} was accepted");
        }
        let err = GrantDuration::parse("13h").unwrap_err();
        assert_eq!(
            err.to_string(),
            "duration must be between 5m and 12h, got 46800s"
        );
    }

    #[test]
    fn reasons_are_trimmed_and_bounded() {
        assert_eq!(
            Reason::parse("  investigating INC-1  ").unwrap().as_str(),
            "investigating INC-1"
        );
        assert!(matches!(
            Reason::parse("   "),
            Err(ValueError::Empty { .. })
        ));
        assert!(matches!(
            Reason::parse("too short"),
            Err(ValueError::TooShort { .. })
        ));
        assert!(matches!(
            Reason::parse("x".repeat(1001)),
            Err(ValueError::TooLong { .. })
        ));
        assert!(matches!(
            Reason::parse("bell \u{7} in reason"),
            Err(ValueError::Malformed { .. })
        ));
    }

    #[test]
    fn ids_refuse_what_keys_cannot_hold() {
        assert!(TargetId::parse("prod-logs-ro").is_ok());
        assert!(TargetId::parse("Prod Logs").is_err());
        assert!(TargetId::parse("a#b").is_err());
        assert!(GroupName::parse("cognito:sre").is_ok());
        assert!(GroupName::parse("Platform Team").is_ok());
        assert!(GroupName::parse("sre\nadmins").is_err());
        assert!(UserId::parse("user\u{0}").is_err());
        assert!(GrantId::parse("../../etc").is_err());
        let id = GrantId::generate(Timestamp::from_unix_seconds(1_800_000_000));
        assert_eq!(GrantId::parse(id.as_str()).unwrap(), id);
        assert_eq!(
            id.created_at(),
            Some(Timestamp::from_unix_seconds(1_800_000_000))
        );
    }

    #[test]
    fn a_role_arn_names_its_account() {
        for (arn, account) in [
            (
                "arn:aws:iam::222222222222:role/jit/prod-logs-ro",
                Some("222222222222"),
            ),
            (
                "arn:aws-us-gov:iam::333333333333:role/x",
                Some("333333333333"),
            ),
            ("arn:aws:iam::22222222222:role/short", None),
            ("arn:aws:iam::222222222222:user/alice", None),
            ("prod-logs-ro", None),
        ] {
            assert_eq!(RoleArn::parse(arn).unwrap().account(), account, "{arn}");
        }
    }

    #[test]
    fn grant_ids_sort_by_creation_time() {
        let a = GrantId::generate(Timestamp::from_unix_seconds(1_800_000_000));
        let b = GrantId::generate(Timestamp::from_unix_seconds(1_800_000_001));
        assert!(a < b);
    }

    #[test]
    fn values_deserialize_through_their_checks() {
        assert!(serde_json::from_str::<TargetId>("\"BAD ID\"").is_err());
        assert!(serde_json::from_str::<GrantDuration>("10").is_err());
        assert_eq!(
            serde_json::from_str::<GrantDuration>("3600")
                .unwrap()
                .as_secs(),
            3600
        );
    }
}
