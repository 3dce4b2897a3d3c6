//! Why a use case did nothing, in the domain's terms.

use crate::clock::Timestamp;
use crate::domain::{Grant, TransitionError};
use crate::store::StoreError;
use crate::trust::EvidenceBreak;

/// What the caller calls the thing they asked about: a pending `request` or a `grant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noun {
    /// A request (pending or decided).
    Request,
    /// A grant (approved access).
    Grant,
}

impl Noun {
    /// The word, as refusals say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Grant => "grant",
        }
    }
}

impl std::fmt::Display for Noun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a use case did nothing. Every variant means nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// A value given is not acceptable here (an unknown target, a duration over the target's
    /// maximum).
    #[error("{0}")]
    Invalid(String),
    /// Nothing the caller may see has that id: unknown ids and grants hidden from the caller
    /// alike, so ids cannot be probed.
    #[error("no {0} with that id is visible to you")]
    NotFound(Noun),
    /// The caller may see it but the rules do not permit this.
    #[error("{why}")]
    Forbidden {
        /// What was refused and why.
        why: String,
        /// The policies that decided, when the rules name them.
        policies: Option<Vec<String>>,
    },
    /// The lifecycle does not allow the command (wrong state, not the requester, too late).
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The grant's record failed verification against its signed chain: the table was
    /// written outside the functions.
    #[error("this grant's record failed verification ({broken}); {nothing_done}")]
    Unverified {
        /// The grant as the table holds it.
        grant: Box<Grant>,
        /// What failed.
        broken: EvidenceBreak,
        /// When it was found.
        at: Timestamp,
        /// What was therefore not done ("no credentials were issued").
        nothing_done: &'static str,
    },
    /// The functions' public keys, which the grant's records are checked against, could not
    /// be read: nothing is decided on evidence that was not checked.
    #[error("the functions' public keys could not be read ({cause}); {nothing_done}")]
    KeysUnreadable {
        /// Why.
        cause: crate::trust::SignError,
        /// What was therefore not done.
        nothing_done: &'static str,
    },
    /// The target's role could reach the broker, or the broker could not cut its sessions.
    #[error("{0}")]
    NotIsolated(String),
    /// The target changed since the grant was asked for; the grant cannot be used.
    #[error("{0}")]
    TargetChanged(String),
    /// Other changes kept winning the race until the attempts ran out.
    #[error("the {0} kept changing while this was recorded; nothing was done, try again")]
    KeptChanging(Noun),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Refusal {
    /// The rules do not permit it, for a reason with no policy to name.
    pub fn forbidden(why: impl Into<String>) -> Self {
        Self::Forbidden {
            why: why.into(),
            policies: None,
        }
    }
}
