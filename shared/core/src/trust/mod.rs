//! Who may write what, and proof of who did.
//!
//! The hash chain proves order, not authorship: anyone who can write the table can append a
//! well-formed record. So every function signs the records it writes with its own asymmetric
//! key (KMS, ECC_NIST_P256, usable for `Sign` by that function's role alone), and one table,
//! [`author_of`], says which function may write which kind of record. A record signed by the
//! wrong function, by an unknown key, or not at all, does not count as evidence.
//!
//! What a signature covers: a tag naming what is signed, then the record's hash (32 bytes).
//! The hash already covers every field and the previous record's hash, so one signature per
//! record binds the whole chain up to it. KMS computes ECDSA with SHA-256 over that message;
//! verification runs locally against the public keys, read once per instance when first needed.

mod checkpoint;
mod coverage;
mod evidence;
mod export;
mod keys;
#[cfg(feature = "aws")]
mod kms;
mod public;

use std::future::Future;
use std::pin::Pin;

use crate::cause::Cause;
use crate::domain::Service;
use crate::domain::audit::AuditAction;
use crate::domain::audit::RecordSignature;

pub use checkpoint::{ArchivedPeriod, Checkpoint, CheckpointPeriod, digest_of, period_digest};
pub use coverage::{Coverage, CoverageBreak, check_coverage};
pub use evidence::{EvidenceBreak, check_chain, check_grant};
pub use export::{
    AuditExport, ExportBreak, ExportSummary, GrantHead, check_checkpoint, verify_export,
};
pub use keys::{KeyRing, LocalKey, LocalKeys, PublicKey, SignatureProblem};
#[cfg(feature = "aws")]
pub use kms::{KmsKey, kms_public_keys, load_key_ring};
pub use public::PublicKeys;

/// What a record signature's message starts with, so a signature over a record cannot be
/// passed off as one over a checkpoint, or the other way round.
const RECORD_TAG: &[u8] = b"jit-audit-record-v1\0";
const CHECKPOINT_TAG: &[u8] = b"jit-audit-checkpoint-v1\0";

/// The one function that may write each kind of audit record.
///
/// Requests are taken in and cancelled by `intake`; every decision that opens, refuses or
/// reviews a request is the `approver`'s (rules, reviews, break-glass, post-reviews); only the
/// `issuer` records credentials; only the `sweeper` (which also serves the revoke route)
/// expires, times out, revokes, notes what it did to a role's policy, and signs what covers a
/// grant's activity.
pub fn author_of(action: AuditAction) -> Service {
    match action {
        AuditAction::Requested | AuditAction::Cancelled => Service::Intake,
        AuditAction::AwaitingReview
        | AuditAction::AutoApproved
        | AuditAction::BreakGlassActivated
        | AuditAction::Approved
        | AuditAction::Denied
        | AuditAction::PostReviewed
        | AuditAction::ExtensionRequested
        | AuditAction::ExtensionApproved
        | AuditAction::ExtensionDenied
        | AuditAction::Extended => Service::Approver,
        AuditAction::SessionIssued => Service::Issuer,
        AuditAction::TimedOut
        | AuditAction::Expired
        | AuditAction::Revoked
        | AuditAction::RevocationFallback
        | AuditAction::RevocationRepaired
        | AuditAction::ActivityCovered => Service::Sweeper,
    }
}

/// The message a record's signature covers: the tag, then the hash's bytes.
pub fn record_message(hash: &str) -> Vec<u8> {
    tagged(RECORD_TAG, hash)
}

/// The message a checkpoint's signature covers.
pub fn checkpoint_message(hash: &str) -> Vec<u8> {
    tagged(CHECKPOINT_TAG, hash)
}

fn tagged(tag: &[u8], hash: &str) -> Vec<u8> {
    let mut message = tag.to_vec();
    // A hash that is not hex (only a forged record has one) is signed as text; it will not
    // verify against anything honest either way.
    match hex::decode(hash) {
        Ok(bytes) => message.extend_from_slice(&bytes),
        Err(_) => message.extend_from_slice(hash.as_bytes()),
    }
    message
}

/// Why a signature could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The key service could not be reached, throttled or timed out: retrying helps.
    #[error("the signing key is unavailable ({0})")]
    Unavailable(Cause),
    /// The key service refused: no permission, key disabled or deleted. The deployment needs
    /// fixing.
    #[error("the signing key refused ({0})")]
    Refused(Cause),
    /// This function may not write such a record: a bug, caught before anything is written.
    #[error("the {holder} function may not sign for the {needed} function")]
    NotAuthor {
        /// The function holding the key.
        holder: Service,
        /// The function the record needs.
        needed: Service,
    },
}

impl SignError {
    /// Refuses a key held by `holder` a record `author` must sign: the check every single-key
    /// signer makes before signing anything.
    pub fn require_author(holder: Service, author: Service) -> Result<(), Self> {
        if holder == author {
            Ok(())
        } else {
            Err(Self::NotAuthor {
                holder,
                needed: author,
            })
        }
    }
}

/// A boxed future, so signing keys can be shared as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What [`SigningKey::sign`] returns.
pub type Signing<'a> = BoxFuture<'a, Result<RecordSignature, SignError>>;

/// A key a function signs with. `author` is the function the record or checkpoint must be
/// signed by; a key that belongs to another function refuses.
pub trait SigningKey: Send + Sync + std::fmt::Debug {
    /// Signs `message` as `author`.
    fn sign(&self, author: Service, message: Vec<u8>) -> Signing<'_>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_one_author_and_activation_is_the_approvers() {
        use AuditAction::*;
        for action in AuditAction::ALL {
            let author = author_of(action);
            match action {
                AutoApproved | BreakGlassActivated | Approved => {
                    assert_eq!(author, Service::Approver, "{action}")
                }
                SessionIssued => assert_eq!(author, Service::Issuer),
                Expired | Revoked | TimedOut => assert_eq!(author, Service::Sweeper),
                _ => {}
            }
        }
    }

    #[test]
    fn record_and_checkpoint_messages_differ_for_one_hash() {
        let hash = "ab".repeat(32);
        assert_ne!(record_message(&hash), checkpoint_message(&hash));
        assert_eq!(record_message(&hash).len(), RECORD_TAG.len() + 32);
    }
}
