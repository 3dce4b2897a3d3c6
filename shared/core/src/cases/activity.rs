//! Keeping what a grant's sessions did: one CloudTrail event, read, attributed and stored.

use crate::activity::{Refused, TrailEvent, Unattributed, UnattributedEvent};
use crate::domain::GrantId;
use crate::store::{ActivityStore, GrantStore, Recorded, StoreError};

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivityOutcome {
    /// Kept as the grant's (or found kept already, or counted past the cap).
    Attached {
        /// The grant whose session made the call.
        grant: GrantId,
        /// What the store did.
        recorded: Recorded,
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

/// Reads `event`, finds the grant its session claims and keeps it as that grant's activity or
/// as unattributed; a refused event keeps nothing. Only a store that cannot be reached or
/// written fails, so the event is delivered again.
pub async fn record_activity<S: GrantStore + ActivityStore>(
    store: &S,
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
        Ok(grant) => {
            let recorded = store.record_activity(&grant, &activity).await?;
            Ok(ActivityOutcome::Attached { grant, recorded })
        }
        Err(why) => {
            let unattributed = UnattributedEvent::new(activity, session, &why);
            let recorded = store.record_unattributed(&unattributed).await?;
            Ok(ActivityOutcome::Unattributed { why, recorded })
        }
    }
}
