//! Scheduled sweeps: expiry, time-outs, outliving sessions, deadlines, IAM failures, the oversized-ledger fallback and drift repair.

use super::*;

#[tokio::test]
async fn the_sweep_expires_times_out_cuts_outliving_sessions_then_prunes() {
    let h = Harness::new("sweep", 10_240).await;
    let stale = h.pending("erin", "prod-deploy", "1h").await;
    let short = h.with_session("alice", "prod-logs-ro", "5m", 900).await;
    let plain = {
        let g = h.pending("bob", "prod-deploy", "5m").await;
        h.apply(
            &g,
            jit_test_support::auto_approve(),
            jit_test_support::by_approver(),
        )
        .await
    };
    let report = h.sweep().await;
    assert_eq!(
        (report["expired"].as_u64(), report["timed_out"].as_u64()),
        (Some(0), Some(0)),
        "{report}"
    );
    h.clock.advance(31 * 60);
    let report = h.sweep().await;
    assert_eq!(report["finished"], true, "{report}");
    assert_eq!(
        (report["expired"].as_u64(), report["timed_out"].as_u64()),
        (Some(2), Some(1)),
        "{report}"
    );
    assert_eq!(h.grant(&stale.id).await.state, GrantState::TimedOut);
    assert_eq!(h.grant(&short.id).await.state, GrantState::Expired);
    assert_eq!(h.grant(&plain.id).await.state, GrantState::Expired);
    // The short grant's session (900 s) was issued with 5 minutes left... and has lapsed too by
    // now; a grant whose session outlives the sweep is cut:
    let long = h.with_session("carol", "prod-logs-ro", "5m", 3600).await;
    h.clock.advance(6 * 60);
    let report = h.sweep().await;
    assert_eq!(report["expired"], 1, "{report}");
    assert_eq!(
        denied_grants(&h.policy("prod-logs-ro").await.unwrap()),
        [long.id.to_string()]
    );
    // A second sweep changes nothing.
    let again = h.sweep().await;
    assert_eq!(
        (
            again["expired"].as_u64(),
            again["policies_changed"].as_u64()
        ),
        (Some(0), Some(0)),
        "{again}"
    );
    // Once the session has lapsed, the entry is pruned and the policy removed.
    h.clock.advance(3600);
    let report = h.sweep().await;
    assert_eq!(
        (
            report["pruned"].as_u64(),
            report["policies_changed"].as_u64()
        ),
        (Some(1), Some(1)),
        "{report}"
    );
    assert!(h.policy("prod-logs-ro").await.is_none());
}

#[tokio::test]
async fn a_sweep_stopped_by_its_deadline_is_finished_by_the_next() {
    let h = Harness::new("deadline", 10_240).await;
    for i in 0..7 {
        h.pending(&format!("user{i}"), "prod-deploy", "1h").await;
    }
    h.clock.advance(31 * 60);
    let cut_short = h.sweeper.sweep(Instant::now()).await;
    assert!(!cut_short.finished);
    assert_eq!(cut_short.timed_out, 0);
    let report = h.sweep().await;
    assert_eq!(
        (report["timed_out"].as_u64(), report["finished"].as_bool()),
        (Some(7), Some(true)),
        "{report}"
    );
}

#[tokio::test]
async fn iam_failing_on_one_role_leaves_the_others_and_the_next_sweep_repairs_it() {
    let h = Harness::new("iam-fail", 10_240).await;
    let logs = h.with_session("alice", "prod-logs-ro", "1h", 1800).await;
    let deploy = h.with_session("bob", "prod-deploy", "1h", 1800).await;
    *h.sweeper.policies.broken_role.lock().unwrap() = Some("prod-logs-ro".into());
    let (status, body) = h.revoke(Some(("sam", SRE)), &logs.id, &reason()).await;
    assert_eq!(
        (status, body["live_sessions"].as_str()),
        (200, Some("pending")),
        "{body}"
    );
    assert_eq!(
        h.grant(&logs.id).await.state,
        GrantState::Revoked,
        "the revocation stands"
    );
    assert_eq!(
        h.revoke(Some(("sam", SRE)), &deploy.id, &reason()).await.0,
        200
    );
    assert!(h.policy("prod-logs-ro").await.is_none());
    assert!(h.policy("prod-deploy").await.is_some());
    // The sweep that cannot reconcile a role fails its invocation, so Lambda's error metric
    // and the template's alarm fire.
    let err = h.try_sweep().await.unwrap_err();
    assert!(
        err.starts_with("sweep incomplete: 1 role(s) left unreconciled, 1 failure(s)")
            && err.contains("injected failure"),
        "{err}"
    );
    *h.sweeper.policies.broken_role.lock().unwrap() = None;
    let report = h.sweep().await;
    assert!(
        report["failures"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert_eq!(
        denied_grants(&h.policy("prod-logs-ro").await.unwrap()),
        [logs.id.to_string()]
    );
}

#[tokio::test]
async fn an_oversized_ledger_falls_back_to_a_cut_off_audits_it_and_returns() {
    // A budget that holds one grant id (210 characters) but not two (249).
    let h = Harness::new("fallback", 230).await;
    let a = h.with_session("alice", "prod-logs-ro", "1h", 600).await;
    let b = h.with_session("bob", "prod-logs-ro", "1h", 3000).await;
    // Carol's active grant has a live session the cut-off will deny too; Dave has none yet,
    // and Erin's is on another role.
    let carol = h.with_session("carol", "prod-logs-ro", "1h", 1800).await;
    let dave = {
        let g = h.pending("dave", "prod-logs-ro", "1h").await;
        h.apply(
            &g,
            jit_test_support::auto_approve(),
            jit_test_support::by_approver(),
        )
        .await
    };
    let erin = h.with_session("erin", "prod-deploy", "1h", 1800).await;
    assert_eq!(h.revoke(Some(("sam", SRE)), &a.id, &reason()).await.0, 200);
    assert_eq!(
        denied_grants(&h.policy("prod-logs-ro").await.unwrap()),
        [a.id.to_string()]
    );
    h.clock.advance(10);
    assert_eq!(h.revoke(Some(("sam", SRE)), &b.id, &reason()).await.0, 200);
    let policy = h.policy("prod-logs-ro").await.unwrap();
    let cutoff = policy["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"].clone();
    assert_eq!(cutoff, json!(h.now().to_rfc3339()), "{policy}");
    for g in [&a, &b, &carol] {
        assert_eq!(
            h.actions(&g.id).await.last(),
            Some(&AuditAction::RevocationFallback),
            "{}",
            g.requester
        );
    }
    // Carol is told what it means for her: her older sessions are cut, new ones are not.
    let records = h
        .store()
        .audit_of_grant(&carol.id, &PageRequest::first(50))
        .await
        .unwrap()
        .items;
    let note = records.last().unwrap();
    assert_eq!(
        (
            note.to,
            note.detail
                .get("sessions_issued_before")
                .map(String::as_str),
            note.detail.get("effect").map(String::as_str)
        ),
        (
            GrantState::Active,
            Some(h.now().to_string().as_str()),
            Some("live sessions issued before the cut-off are denied; new credentials are not")
        )
    );
    for g in [&dave, &erin] {
        assert!(
            !h.actions(&g.id)
                .await
                .contains(&AuditAction::RevocationFallback),
            "{} has no session the cut-off denies",
            g.requester
        );
    }
    // The next sweep keeps the cut-off and audits nothing new (it only settles the other,
    // untouched roles, whose policies it records as absent).
    h.clock.advance(60);
    let report = h.sweep().await;
    assert_eq!(
        (
            report["fallbacks"].as_u64(),
            report["failures"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0)),
        "{report}"
    );
    assert_eq!(h.policy("prod-logs-ro").await.unwrap(), policy);
    assert_eq!(
        h.actions(&a.id)
            .await
            .iter()
            .filter(|x| **x == AuditAction::RevocationFallback)
            .count(),
        1
    );
    // When a's session lapses, the ledger fits again: precise, and a's entry is pruned.
    h.clock.advance(600);
    let report = h.sweep().await;
    assert_eq!(
        (
            report["policies_changed"].as_u64(),
            report["pruned"].as_u64()
        ),
        (Some(1), Some(1)),
        "{report}"
    );
    assert_eq!(
        denied_grants(&h.policy("prod-logs-ro").await.unwrap()),
        [b.id.to_string()]
    );
}

#[tokio::test]
async fn a_policy_removed_or_edited_out_of_band_is_restored_by_the_next_sweep() {
    let h = Harness::new("drift", 10_240).await;
    let g = h.with_session("alice", "prod-logs-ro", "1h", 1800).await;
    assert_eq!(h.revoke(Some(("sam", SRE)), &g.id, &reason()).await.0, 200);
    let wanted = h.policy("prod-logs-ro").await.unwrap();
    let role = jit_sweeper::role_name(&g.role_arn).to_owned();
    let iam = h.iam_of(&g.role_arn);
    let loosened = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny",
        "Action": "s3:DeleteBucket", "Resource": "*"}]});
    let recreate = || async {
        iam.delete_role_policy()
            .role_name(&role)
            .policy_name("jit-revocations")
            .send()
            .await
            .unwrap();
        iam.delete_role().role_name(&role).send().await.unwrap();
        iam.create_role()
            .role_name(&role)
            .path("/jit/")
            .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
            .send()
            .await
            .unwrap();
    };
    for (how, found) in [
        ("deleted", "no revocation policy on the role"),
        ("edited", "a different revocation policy on the role"),
        ("role recreated", "no revocation policy on the role"),
    ] {
        match how {
            "deleted" => {
                iam.delete_role_policy()
                    .role_name(&role)
                    .policy_name("jit-revocations")
                    .send()
                    .await
                    .unwrap();
            }
            "edited" => {
                iam.put_role_policy()
                    .role_name(&role)
                    .policy_name("jit-revocations")
                    .policy_document(loosened.to_string())
                    .send()
                    .await
                    .unwrap();
            }
            _ => recreate().await,
        }
        let report = h.sweep().await;
        assert_eq!(
            (
                report["repaired"].as_u64(),
                report["policies_changed"].as_u64()
            ),
            (Some(1), Some(1)),
            "{how}: {report}"
        );
        assert_eq!(h.policy("prod-logs-ro").await.unwrap(), wanted, "{how}");
        let records = h
            .store()
            .audit_of_grant(&g.id, &PageRequest::first(50))
            .await
            .unwrap()
            .items;
        let note = records.last().unwrap();
        assert_eq!(
            (note.action, note.detail.get("found").map(String::as_str)),
            (AuditAction::RevocationRepaired, Some(found)),
            "{how}"
        );
        // Once in place again, a sweep finds nothing to repair.
        let again = h.sweep().await;
        assert_eq!(again["repaired"], 0, "{how}: {again}");
    }
}
