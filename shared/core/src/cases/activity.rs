//! Keeping what a grant's sessions did: one CloudTrail event, read, attributed, stored and
//! judged by the guardrails.

use crate::activity::{Activity, Refused, TrailEvent, Unattributed, UnattributedEvent};
use crate::domain::{Grant, GrantId};
use crate::policy::{Fired, Rules};
use crate::store::{ActivityStore, GrantStore, Recorded, StoreError};

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivityOutcome {
    /// Kept as the grant's (or found kept already, or counted past the cap), and judged.
    Attached {
        /// The grant whose session made the call.
        grant: GrantId,
        /// What the store did.
        recorded: Recorded,
        /// The guardrails it fired. A redelivered event is judged again, so a hand-over lost
        /// with the first delivery is made by the next (alerts may repeat; a revocation
        /// happens once).
        fired: Fired,
    },
    /// Kept as unattributed: a genuine event of a `/jit/` role that no grant accounts for.
    Unattributed {
        /// Why no grant accounts for it.
        why: Unattributed,
        /// What the store did.
        recorded: Recorded,
    },
    /// Not kept: the envelope is forged, the identity not a `/jit/` session, or a field
    /// malformed.
    Refused(Refused),
}

/// Reads `event`, finds the grant its session claims and keeps it as that grant's activity
/// (judged by `rules`' guardrails) or as unattributed; a refused event keeps nothing. Only a
/// store that cannot be reached or written fails, so the event is delivered again.
pub async fn record_activity<S: GrantStore + ActivityStore>(
    store: &S,
    rules: &Rules,
    event: &TrailEvent,
) -> Result<ActivityOutcome, StoreError> {
    let (activity, session) = match event.read() {
        Ok(read) => read,
        Err(refused) => return Ok(ActivityOutcome::Refused(refused)),
    };
    let grant = match session.claimed_grant() {
        Ok(id) => store.get(&id).await?,
        Err(_) => None,
    };
    match session.attribute(grant.as_ref()) {
        Ok(id) => {
            let recorded = store.record_activity(&id, &activity).await?;
            let fired = match grant {
                Some(grant) => {
                    let first = recorded != Recorded::AlreadyStored;
                    judge(store, rules, &grant, &activity, first).await?
                }
                None => Fired::default(),
            };
            Ok(ActivityOutcome::Attached {
                grant: id,
                recorded,
                fired,
            })
        }
        Err(why) => {
            let unattributed = UnattributedEvent::new(activity, session, &why);
            let recorded = store.record_unattributed(&unattributed).await?;
            Ok(ActivityOutcome::Unattributed { why, recorded })
        }
    }
}

/// The guardrails `activity` of `grant` fires, with the grant's refused calls counted at the
/// event's time (this one included when it was refused and `first` seen).
pub async fn judge<S: ActivityStore>(
    store: &S,
    rules: &Rules,
    grant: &Grant,
    activity: &Activity,
    first: bool,
) -> Result<Fired, StoreError> {
    let refused = store
        .refused_recently(&grant.id, activity.time, first && activity.refused())
        .await?;
    Ok(rules.guardrails(grant, activity, refused, activity.time))
}
