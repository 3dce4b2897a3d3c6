//! Covering a grant's activity with signed records: checkpoints while it is active, the record
//! a settling window after it ends, and the addendum for what CloudTrail delivered later.

use super::*;
use jit_core::cases::{ActivityOutcome, record_activity};
use jit_core::store::{ActivityStore, every_page};
use jit_core::trust::check_coverage;

impl Harness {
    /// Stores a read-only call made with `g`'s session, as the activity function would when it
    /// arrives now (made `made_secs_ago` before).
    async fn call_arrives(&self, g: &Grant, event_id: &str, made_secs_ago: i64) {
        let now = self.now();
        let event = jit_test_support::cloudtrail_call(
            g,
            event_id,
            "ListTables",
            now.plus_secs(-made_secs_ago),
        );
        let outcome = record_activity(
            self.store(),
            &self.sweeper.rules,
            &serde_json::from_value(event).unwrap(),
            now,
        )
        .await
        .unwrap();
        assert!(
            matches!(outcome, ActivityOutcome::Attached { .. }),
            "{outcome:?}"
        );
    }

    /// The activity counts the grant's covering records signed, in order, and whether what is
    /// stored now still matches them all.
    async fn covering_counts(&self, id: &GrantId) -> Vec<String> {
        let records = jit_test_support::audit(self.store(), id).await;
        let events =
            every_page(|page| async move { self.store().activity_of_grant(id, &page).await })
                .await
                .unwrap();
        check_coverage(&records, &events).unwrap();
        records
            .iter()
            .filter(|r| r.action == AuditAction::ActivityCovered)
            .map(|r| r.detail["activity_count"].clone())
            .collect()
    }

    /// Moves the clock to `secs` after `from` and sweeps; how many grants got a covering record.
    async fn sweep_at(&self, from: Timestamp, secs: i64) -> u64 {
        self.clock.set(from.plus_secs(secs));
        let report = self.sweep().await;
        assert!(
            report["failures"].as_array().unwrap().is_empty(),
            "{report}"
        );
        report["activity_covered"].as_u64().unwrap()
    }
}

#[tokio::test]
async fn a_long_grant_is_covered_hourly_while_active_then_after_its_end_and_again_for_late_events()
{
    let h = Harness::new("activity-cover", 10_240).await;
    let t0 = h.now();
    let g = h.with_session("ann", "prod-logs-ro", "4h", 3600).await;
    let other = h.with_session("bob", "prod-logs-ro", "4h", 3600).await;
    h.clock.advance(60);
    h.call_arrives(&g, "call-1", 5).await;
    h.call_arrives(&g, "call-2", 5).await;

    // Half an hour in: no checkpoint yet.
    assert_eq!(h.sweep_at(t0, 1800).await, 0);
    assert!(h.covering_counts(&g.id).await.is_empty());

    // An hour in: the checkpoint covers both calls; the grant stays active. The grant that has
    // done nothing gets no checkpoint (its end's record will say so).
    assert_eq!(h.sweep_at(t0, 3630).await, 1);
    assert_eq!(h.covering_counts(&g.id).await, ["2"]);
    assert!(h.covering_counts(&other.id).await.is_empty());
    assert_eq!(h.grant(&g.id).await.state, GrantState::Active);

    // A call arrives; the sweeps later in the same window do not cover it again.
    h.clock.set(t0.plus_secs(3660));
    h.call_arrives(&g, "call-3", 30).await;
    assert_eq!(h.sweep_at(t0, 3600 + 400).await, 0);
    assert_eq!(h.sweep_at(t0, 3600 + 580).await, 0);
    assert_eq!(h.covering_counts(&g.id).await, ["2"]);
    // Until the window ends the new call is not yet covered; a check says so and breaks nothing.

    // Two hours in it is; three hours in nothing new happened, so nothing new is signed.
    assert_eq!(h.sweep_at(t0, 7230).await, 1);
    assert_eq!(h.covering_counts(&g.id).await, ["2", "3"]);
    assert_eq!(h.sweep_at(t0, 3 * 3600 + 30).await, 0);

    // The grant expires at four hours. A call made before the end arrives a minute after it.
    assert_eq!(h.sweep_at(t0, 4 * 3600 + 10).await, 0);
    assert_eq!(h.grant(&g.id).await.state, GrantState::Expired);
    h.clock.set(t0.plus_secs(4 * 3600 + 60));
    h.call_arrives(&g, "call-4", 120).await;
    // The settling window (15 minutes) after the end: covered.
    assert_eq!(h.sweep_at(t0, 4 * 3600 + 900 + 60).await, 2);
    assert_eq!(h.covering_counts(&g.id).await, ["2", "3", "4"]);
    // One delivered twenty minutes late waits for the recheck two hours after the end, which
    // signs an addendum; every earlier record still holds.
    h.clock.set(t0.plus_secs(4 * 3600 + 1200));
    h.call_arrives(&g, "call-5", 1300).await;
    assert_eq!(h.sweep_at(t0, 4 * 3600 + 3600).await, 0);
    assert_eq!(h.sweep_at(t0, 4 * 3600 + 7200 + 30).await, 1);
    assert_eq!(h.covering_counts(&g.id).await, ["2", "3", "4", "5"]);
    assert_eq!(h.covering_counts(&other.id).await, ["0"]);
}
