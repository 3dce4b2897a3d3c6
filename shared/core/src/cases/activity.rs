//! Keeping what a grant's sessions did: one CloudTrail event, read, attributed, stored and
//! judged by the guardrails.

use super::Refusal;
use crate::activity::{
    Activity, Refused, TrailEvent, Unattributed, UnattributedEvent, activity_digest,
};
use crate::clock::Timestamp;
use crate::domain::audit::AuditAction;
use crate::domain::{Actor, Change, Command, Grant, GrantId, GrantState, Service};
use crate::policy::{Fired, Rules};
use crate::store::{ActivityStore, GrantStore, Recorded, StoreError, every_page};

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

/// Reads `event`, finds the grant its session claims and keeps it, stored at `now`, as that
/// grant's activity (judged by `rules`' guardrails) or as unattributed; a refused event keeps
/// nothing. Only a
/// store that cannot be reached or written fails, so the event is delivered again.
pub async fn record_activity<S: GrantStore + ActivityStore>(
    store: &S,
    rules: &Rules,
    event: &TrailEvent,
    now: Timestamp,
) -> Result<ActivityOutcome, StoreError> {
    let (mut activity, session) = match event.read() {
        Ok(read) => read,
        Err(refused) => return Ok(ActivityOutcome::Refused(refused)),
    };
    activity.stored_at = Some(now);
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

/// How long after an event is stored it may still be on its way into the table: the activity
/// function's timeout (30 s) with room for clock skew. A covering record covers the events
/// stored up to this long before it is written, so none still being written is left out of a
/// count that claims it.
pub const COVER_LAG_SECS: i64 = 300;

/// When [`Cases::cover_activity`](super::Cases::cover_activity) covers a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoverWhen {
    /// Only while it is active: a checkpoint of a long grant.
    Active,
    /// Whatever its state (once it was active): after its end, and again for late events.
    Always,
}

impl<S: GrantStore + ActivityStore> super::Cases<'_, S> {
    /// Signs what covers grant `id`'s activity at `now`: the count and digest of its events
    /// stored up to `now - lag_secs`, as the sweeper (an `ACTIVITY_COVERED` record; the
    /// grant's state never changes). Nothing is written when the grant was never active, or
    /// when its last covering record already says the same. The sweeper calls it once the
    /// grant has ended and CloudTrail's delay has passed, and again later for events delivered
    /// since ([`CoverWhen::Always`]), and at checkpoints while a long grant is active
    /// ([`CoverWhen::Active`]: nothing is written once it has ended, nor before its first
    /// event).
    pub async fn cover_activity(
        &self,
        id: &GrantId,
        now: Timestamp,
        lag_secs: i64,
        when: CoverWhen,
    ) -> Result<Option<Change>, Refusal> {
        let noun = super::Noun::Grant;
        let (grant, records) = self
            .store
            .evidence(id)
            .await?
            .ok_or(Refusal::NotFound(noun))?;
        if grant.activated_at.is_none()
            || (when == CoverWhen::Active && grant.state != GrantState::Active)
        {
            return Ok(None);
        }
        let through = now.plus_secs(-lag_secs);
        let events =
            every_page(|page| async move { self.store.activity_of_grant(id, &page).await }).await?;
        let (count, digest) = activity_digest(
            events
                .iter()
                .filter(|e| e.stored_at.is_none_or(|at| at <= through)),
        );
        let last = records
            .iter()
            .rev()
            .find(|r| r.action == AuditAction::ActivityCovered);
        match last {
            Some(last) => {
                let same = last.detail.get("activity_count") == Some(&count.to_string())
                    && last.detail.get("activity_digest") == Some(&digest);
                if same {
                    return Ok(None);
                }
            }
            // A checkpoint of a grant that has done nothing yet would say nothing the record
            // after its end will not.
            None if count == 0 && when == CoverWhen::Active => return Ok(None),
            None => {}
        }
        let actor = Actor::Service(Service::Sweeper);
        let change = super::commit(self.store, grant, noun, |grant| {
            let command = Command::CoverActivity {
                count,
                digest: digest.clone(),
                through,
            };
            Ok(grant.apply(command, &actor, now)?)
        })
        .await?;
        Ok(Some(change))
    }
}
