//! Sweeps and revokes at once, with the window held open by gates, not luck.

use super::*;

#[tokio::test]
async fn two_sweeps_at_once_settle_each_grant_once() {
    let h = Harness::new("twice", 10_240).await;
    for i in 0..9 {
        h.pending(&format!("user{i}"), "prod-deploy", "1h").await;
    }
    h.clock.advance(31 * 60);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (a, b) = tokio::join!(h.sweeper.sweep(deadline), h.sweeper.sweep(deadline));
    assert_eq!(a.timed_out + b.timed_out, 9, "{a:?} {b:?}");
    assert!(
        a.failures.is_empty() && b.failures.is_empty(),
        "{a:?} {b:?}"
    );
}

#[tokio::test]
async fn two_revokes_racing_on_one_role_both_end_denied() {
    // Revoke A reads the ledger {A} and its PutRolePolicy is slow; revoke B reads {A, B},
    // puts its document, and its write of the applied marker is slow. A's stale document
    // then lands last in IAM. Without ordering, IAM kept {A} while the marker claimed {A, B},
    // and no sweep ever looked again.
    let h = Harness::new("race-revokes", 10_240).await;
    let a = h.with_session("alice", "prod-logs-ro", "1h", 1800).await;
    let b = h.with_session("bob", "prod-logs-ro", "1h", 1800).await;
    let why = reason();
    let (a_in_iam, release_a) = h.gates.arm("iam-write");
    let revoke_a = h.revoke(Some(("sam", SRE)), &a.id, &why);
    let choreography = async {
        a_in_iam.await.unwrap();
        let (b_recording, release_b) = h.gates.arm("record-applied");
        let revoke_b = h.revoke(Some(("sam", SRE)), &b.id, &why);
        let steer = async {
            b_recording.await.unwrap();
            assert_eq!(
                denied(h.policy("prod-logs-ro").await),
                sorted(&[&a.id, &b.id]),
                "B's document is in IAM"
            );
            // A's stale put lands now, then B's marker write.
            release_a.send(()).unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            release_b.send(()).unwrap();
        };
        tokio::join!(revoke_b, steer).0
    };
    let ((status_a, body_a), (status_b, body_b)) = tokio::join!(revoke_a, choreography);
    assert_eq!((status_a, status_b), (200, 200), "{body_a} {body_b}");
    assert_eq!(
        (
            body_a["live_sessions"].as_str(),
            body_b["live_sessions"].as_str()
        ),
        (Some("cut"), Some("cut"))
    );
    assert_eq!(
        denied(h.policy("prod-logs-ro").await),
        sorted(&[&a.id, &b.id]),
        "every revoked grant is denied once both answered"
    );
    let report = h.sweep().await;
    assert_eq!(report["policies_changed"], 0, "{report}");
    assert_eq!(
        denied(h.policy("prod-logs-ro").await),
        sorted(&[&a.id, &b.id])
    );
}

#[tokio::test]
async fn a_sweep_that_read_the_ledger_before_a_revoke_cannot_undo_it() {
    // An earlier revocation's session lapses, so the sweep derives "no policy" and deletes
    // it, slowly; meanwhile a new revoke puts its deny. The sweep's delete lands last.
    let h = Harness::new("race-sweep", 10_240).await;
    let old = h.with_session("olga", "prod-logs-ro", "1h", 900).await;
    assert_eq!(
        h.revoke(Some(("sam", SRE)), &old.id, &reason()).await.0,
        200
    );
    h.clock.advance(901);
    let fresh = h.with_session("alice", "prod-logs-ro", "1h", 1800).await;
    let (sweep_in_iam, release_sweep) = h.gates.arm("iam-write");
    let sweep = h.try_sweep();
    let choreography = async {
        sweep_in_iam.await.unwrap();
        let answer = h.revoke(Some(("sam", SRE)), &fresh.id, &reason()).await;
        assert_eq!(denied(h.policy("prod-logs-ro").await), sorted(&[&fresh.id]));
        release_sweep.send(()).unwrap();
        answer
    };
    let (report, (status, body)) = tokio::join!(sweep, choreography);
    let report = report.unwrap();
    assert_eq!(
        (status, body["live_sessions"].as_str()),
        (200, Some("cut")),
        "{body}"
    );
    assert_eq!(
        report["failures"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );
    assert_eq!(
        denied(h.policy("prod-logs-ro").await),
        sorted(&[&fresh.id]),
        "the sweep re-derived after losing and put the deny back"
    );
}
