//! Where what a grant's sessions did is kept: not in the grant's partition (a session making
//! thousands of calls must not throttle the item its own revocation writes), but in
//! [`ACTIVITY_SHARDS`] partitions of its own, each event under CloudTrail's `eventID` so a
//! redelivered event is stored once, with a count per shard that stops storing at the cap and
//! only counts beyond it.

use std::future::Future;

use sha2::{Digest, Sha256};

use super::{Page, PageRequest, StoreError};
use crate::activity::{Activity, UnattributedEvent};
use crate::clock::Timestamp;
use crate::domain::GrantId;

/// How many partitions one grant's activity is spread over, by a hash of the event id.
pub const ACTIVITY_SHARDS: u32 = 8;

/// How many events one shard of a grant stores; beyond it they are only counted (the cap per
/// grant is this times [`ACTIVITY_SHARDS`]: 10,000 events, about 10 MB).
pub const ACTIVITY_CAP_PER_SHARD: u64 = 1_250;

/// What every activity item's sort key starts with (the shard's count item sorts before).
pub const EVENT_PREFIX: &str = "EVENT#";

/// The shard an event is kept in: a hash of its event id, so a redelivery finds its first copy.
pub fn activity_shard(event_id: &str) -> u32 {
    let digest = Sha256::digest(event_id.as_bytes());
    u32::from(digest.first().copied().unwrap_or(0)) % ACTIVITY_SHARDS
}

/// An event's sort key: its time, then its event id, so a grant's activity reads by time.
pub fn activity_sort_key(activity: &Activity) -> String {
    event_sort_key(activity.time, &activity.event_id)
}

/// The sort key of the event `event_id` made at `time`.
pub fn event_sort_key(time: Timestamp, event_id: &str) -> String {
    format!(
        "{EVENT_PREFIX}{:012}#{event_id}",
        time.unix_seconds().max(0)
    )
}

/// The cursor that reads on after `activity` in its grant's activity (or its day's
/// unattributed events): what a reader following late-arriving events keeps. (With the
/// adapters only: a build without them, such as the CLI's, has no cursors to make.)
#[cfg(any(test, feature = "test-util", feature = "aws"))]
pub fn cursor_after(activity: &Activity) -> super::Cursor {
    super::Cursor::encode(&super::adapter::Position::Activity {
        key: activity_sort_key(activity),
    })
}

/// How far back [`ActivityStore::refused_recently`] counts: this minute and the four before.
pub const REFUSED_WINDOW_MINUTES: i64 = 5;

/// What recording an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// It is stored now.
    Stored,
    /// It was stored before: a redelivery, which changes nothing.
    AlreadyStored,
    /// Its shard is at the cap: it is counted, not stored.
    OverCap,
}

/// How much activity a grant has: stored, and counted beyond the cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActivityCount {
    /// Events stored.
    pub stored: u64,
    /// Events counted past the cap and not stored (a redelivery there counts again).
    pub over_cap: u64,
}

/// The activity port: what the activity function writes and the API reads.
pub trait ActivityStore: Send + Sync {
    /// Keeps `activity` as `grant`'s, once per event id.
    fn record_activity(
        &self,
        grant: &GrantId,
        activity: &Activity,
    ) -> impl Future<Output = Result<Recorded, StoreError>> + Send;

    /// Keeps an event no grant could be found for, once per event id, under its UTC day.
    fn record_unattributed(
        &self,
        event: &UnattributedEvent,
    ) -> impl Future<Output = Result<Recorded, StoreError>> + Send;

    /// A grant's activity by time (then event id), oldest first.
    fn activity_of_grant(
        &self,
        grant: &GrantId,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<Activity>, StoreError>> + Send;

    /// How much activity a grant has.
    fn activity_count(
        &self,
        grant: &GrantId,
    ) -> impl Future<Output = Result<ActivityCount, StoreError>> + Send;

    /// One event of a grant, by its time and event id (what a guardrail's hand-over names).
    fn activity_event(
        &self,
        grant: &GrantId,
        time: Timestamp,
        event_id: &str,
    ) -> impl Future<Output = Result<Option<Activity>, StoreError>> + Send;

    /// How many calls of `grant`'s sessions IAM refused in the minute of `at` and the
    /// [`REFUSED_WINDOW_MINUTES`]` - 1` before it, after counting one more at `at` when
    /// `count_one` (the caller counts an event once: when it is first stored). One counter
    /// item per grant and minute, read in one query: cheap whatever the grant's activity.
    fn refused_recently(
        &self,
        grant: &GrantId,
        at: Timestamp,
        count_one: bool,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send;

    /// The unattributed events of one UTC day (`YYYY-MM-DD`), by time.
    fn unattributed_on(
        &self,
        day: &str,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<UnattributedEvent>, StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_spread_over_every_shard_and_stay_in_theirs() {
        let mut seen = [0_u32; ACTIVITY_SHARDS as usize];
        for i in 0..800 {
            let id = format!("3b5d2f7e-1c4a-4e8b-9f00-{i:012}");
            let shard = activity_shard(&id);
            assert_eq!(shard, activity_shard(&id));
            seen[shard as usize] += 1;
        }
        assert!(seen.iter().all(|n| (50..150).contains(n)), "{seen:?}");
    }
}
