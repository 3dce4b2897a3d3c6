//! The domain: values, grants and their lifecycle. Nothing here knows about Lambda or AWS.

pub mod audit;
mod grant;
mod lifecycle;
mod step;
mod values;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use grant::{
    Bundle, Creation, Grant, NewRequest, OnCall, PendingExtension, Requirement, Review,
    ReviewDecision, RoleBinding, requirements_met,
};
pub use lifecycle::{
    Change, Command, RevocationEntry, SessionKind, SlackReviewer, TargetRole, TransitionError,
};
pub use values::{
    GrantDuration, GrantId, GroupName, Reason, RoleArn, TargetId, Ticket, UserId, ValueError,
};

/// Where a request or grant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GrantState {
    /// Asked for; waiting for the rules or for reviewers.
    Pending,
    /// Access is open until its end time.
    Active,
    /// A reviewer said no.
    Denied,
    /// The requester withdrew it.
    Cancelled,
    /// Nobody decided in time.
    TimedOut,
    /// Access ran its course.
    Expired,
    /// Access was ended early.
    Revoked,
}

impl GrantState {
    /// Every state, for exhaustive tests and listings.
    pub const ALL: [Self; 7] = [
        Self::Pending,
        Self::Active,
        Self::Denied,
        Self::Cancelled,
        Self::TimedOut,
        Self::Expired,
        Self::Revoked,
    ];

    /// Whether the state is final: a terminal grant never changes again.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Pending | Self::Active)
    }

    /// The state's name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Active => "ACTIVE",
            Self::Denied => "DENIED",
            Self::Cancelled => "CANCELLED",
            Self::TimedOut => "TIMED_OUT",
            Self::Expired => "EXPIRED",
            Self::Revoked => "REVOKED",
        }
    }
}

impl fmt::Display for GrantState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One of the system's own functions, when it (not a person) causes a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// Takes requests in.
    Intake,
    /// Applies the auto-approval rules.
    Approver,
    /// Hands out credentials.
    Issuer,
    /// Expires, times out and revokes.
    Sweeper,
}

impl Service {
    /// Every function, in a fixed order.
    pub const ALL: [Service; 4] = [Self::Intake, Self::Approver, Self::Issuer, Self::Sweeper];

    /// The function's name, as in `intake`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Intake => "intake",
            Self::Approver => "approver",
            Self::Issuer => "issuer",
            Self::Sweeper => "sweeper",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who or what causes a change: a person the identity provider vouched for, or a function.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Actor {
    /// A person, by their identity provider id.
    User(UserId),
    /// One of the system's functions.
    Service(Service),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(u) => write!(f, "user:{u}"),
            Self::Service(s) => write!(f, "service:{}", s.as_str()),
        }
    }
}

impl From<Actor> for String {
    fn from(actor: Actor) -> String {
        actor.to_string()
    }
}

impl TryFrom<String> for Actor {
    type Error = ValueError;
    fn try_from(text: String) -> Result<Self, ValueError> {
        if let Some(user) = text.strip_prefix("user:") {
            return UserId::parse(user).map(Self::User);
        }
        let service = match text.as_str() {
            "service:intake" => Service::Intake,
            "service:approver" => Service::Approver,
            "service:issuer" => Service::Issuer,
            "service:sweeper" => Service::Sweeper,
            _ => {
                return Err(ValueError::Malformed {
                    what: "actor",
                    value: text,
                    rule: "`user:<id>` or `service:<function>`",
                });
            }
        };
        Ok(Self::Service(service))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_round_trip_through_text() {
        for actor in [
            Actor::User(UserId::parse("user:with:colons").unwrap()),
            Actor::Service(Service::Sweeper),
        ] {
            assert_eq!(Actor::try_from(actor.to_string()).unwrap(), actor);
        }
        assert!(Actor::try_from("service:root".to_owned()).is_err());
    }

    #[test]
    fn only_pending_and_active_are_open() {
        let open: Vec<_> = GrantState::ALL
            .into_iter()
            .filter(|s| !s.is_terminal())
            .collect();
        assert_eq!(open, [GrantState::Pending, GrantState::Active]);
    }
}
