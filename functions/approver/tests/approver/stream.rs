//! Auto-approval from the table stream: real-shaped batches, one write per decision, partial
//! batch failures, poison records and redelivery.

use std::collections::BTreeMap;

use crate::support::*;
use jit_core::domain::GrantState;
use jit_core::domain::audit::AuditAction;
use jit_core::store::GrantStore;
use serde_json::json;

fn one_write() -> BTreeMap<String, u64> {
    BTreeMap::from([("DynamoDB.TransactWriteItems".to_owned(), 1)])
}

#[tokio::test]
async fn a_request_the_rules_allow_is_activated_in_one_write() {
    let h = Harness::new("auto").await;
    let g = h
        .request(
            "sam",
            &["sre"],
            "prod-logs-ro",
            "30m",
            Some("INC-42"),
            false,
        )
        .await;
    let record = h.insert_record(&g.id).await;
    h.table.calls.take();
    h.clock.advance(2);
    let out = h.deliver(vec![record]).await;
    assert_eq!(out, json!({"batchItemFailures": []}));
    assert_eq!(
        h.table.calls.take(),
        one_write(),
        "the stream image is the read"
    );

    let g = h.grant(&g.id).await;
    assert_eq!(g.state, GrantState::Active);
    assert_eq!(
        g.ends_at,
        Some(WEDNESDAY_10.plus_secs(2 + 1800)),
        "counted from activation"
    );
    let last = jit_test_support::last_audit(h.store(), &g.id).await;
    assert_eq!(last.action, AuditAction::AutoApproved);
    assert_eq!(last.detail["policies"], "sre-read-only-with-ticket");
    assert_eq!(last.policy_hash.as_deref(), Some(h.approver.rules.hash()));
    assert_eq!(last.actor.to_string(), "service:approver");
    assert!(h.notices.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_request_the_rules_do_not_allow_waits_for_the_targets_reviewers() {
    let h = Harness::new("await").await;
    let g = h
        .request("eve", &["engineers"], "prod-logs-ro", "1h", None, false)
        .await;
    let db = h
        .request("dan", &["dba"], "prod-db-admin", "1h", Some("CHG-1"), false)
        .await;
    let records = vec![h.insert_record(&g.id).await, h.insert_record(&db.id).await];
    h.table.calls.take();
    let out = h.deliver(records).await;
    assert_eq!(out["batchItemFailures"], json!([]));
    assert_eq!(h.table.calls.take()["DynamoDB.TransactWriteItems"], 2);
    let g = h.grant(&g.id).await;
    let db = h.grant(&db.id).await;
    assert_eq!(
        (g.state, g.approvals_required),
        (GrantState::Pending, Some(1))
    );
    assert_eq!(
        (db.state, db.approvals_required),
        (GrantState::Pending, Some(2))
    );
    let audit = jit_test_support::audit(h.store(), &db.id).await;
    assert_eq!(audit.last().unwrap().action, AuditAction::AwaitingReview);
    assert_eq!(audit.last().unwrap().detail["approvals_required"], "2");
    assert_eq!(
        *h.notices.0.lock().unwrap(),
        [format!("review {} 1", g.id), format!("review {} 2", db.id)]
    );
}

/// The example rules with `extra` added as one more policy file.
fn example_rules_with(extra: &str) -> jit_core::policy::Rules {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/policies");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let mut files: Vec<(String, String)> =
        ["access.cedar", "auto-approve.cedar", "guardrails.cedar"]
            .iter()
            .map(|f| ((*f).to_owned(), read(f)))
            .collect();
    files.push(("extra.cedar".to_owned(), extra.to_owned()));
    jit_core::policy::Rules::from_sources(&read("schema.cedarschema"), files, &read("targets.json"))
        .unwrap()
}

#[tokio::test]
async fn reviewers_are_told_why_the_rules_did_not_approve_at_once() {
    let mut h = Harness::new("rules-said").await;
    // Sam's ticketed read would be approved at once, but for a forbid that says why; Sid's,
    // but for one that does not; Eve's no rule approves at once.
    h.approver.rules = std::sync::Arc::new(example_rules_with(
        r#"
@id("sam-is-reviewed")
@reason("Sam's access is always reviewed this week")
forbid (principal == Jit::User::"sam", action == Jit::Action::"AutoApprove", resource);

@id("sid-is-reviewed")
forbid (principal == Jit::User::"sid", action == Jit::Action::"AutoApprove", resource);
"#,
    ));
    let sam = h
        .request("sam", &["sre"], "prod-logs-ro", "30m", Some("INC-1"), false)
        .await;
    let sid = h
        .request("sid", &["sre"], "prod-logs-ro", "30m", Some("INC-2"), false)
        .await;
    let eve = h
        .request("eve", &["engineers"], "prod-logs-ro", "1h", None, false)
        .await;
    let records = vec![
        h.insert_record(&sam.id).await,
        h.insert_record(&sid.id).await,
        h.insert_record(&eve.id).await,
    ];
    assert_eq!(h.deliver(records).await["batchItemFailures"], json!([]));
    let ring = h.approver.keys.ring().await.unwrap();
    for (id, said) in [
        (
            &sam.id,
            "not approved at once: Sam's access is always reviewed this week",
        ),
        (
            &sid.id,
            "not approved at once: forbidden by sid-is-reviewed",
        ),
        (&eve.id, "no rule approves this at once"),
    ] {
        let g = h.grant(id).await;
        assert_eq!(g.state, GrantState::Pending, "{said}");
        assert_eq!(g.rules_said.as_deref(), Some(said));
        let audit = jit_test_support::audit(h.store(), id).await;
        let last = audit.last().unwrap();
        assert_eq!(last.action, AuditAction::AwaitingReview);
        assert_eq!(last.detail["rules_said"], said);
        // What a Slack message or the web page shows is what the signed record says: a
        // grant item edited to say otherwise fails the evidence check.
        let (grant, records) = h.store().evidence(id).await.unwrap().unwrap();
        jit_core::trust::check_grant(&grant, &records, ring).unwrap();
        let mut edited = grant.clone();
        edited.rules_said = Some("approved by the security team".to_owned());
        let refused = jit_core::trust::check_grant(&edited, &records, ring).unwrap_err();
        assert!(
            refused.to_string().contains("what the rules said"),
            "{refused}"
        );
    }
}

#[tokio::test]
async fn break_glass_opens_at_once_loudly_with_a_review_owed() {
    let h = Harness::new("glass").await;
    let g = h
        .request(
            "sam",
            &["sre"],
            "break-glass-admin",
            "30m",
            Some("INC-9"),
            true,
        )
        .await;
    // An engineer may not break glass: decided as a normal request instead.
    let e = h
        .request(
            "eve",
            &["engineers", "sre-trainee"],
            "prod-logs-ro",
            "30m",
            Some("INC-9"),
            true,
        )
        .await;
    let records = vec![h.insert_record(&g.id).await, h.insert_record(&e.id).await];
    h.deliver(records).await;
    let g = h.grant(&g.id).await;
    assert_eq!(
        (g.state, g.review_owed, g.break_glass),
        (GrantState::Active, true, true)
    );
    let audit = jit_test_support::audit(h.store(), &g.id).await;
    assert_eq!(
        audit.last().unwrap().action,
        AuditAction::BreakGlassActivated
    );
    assert_eq!(
        audit.last().unwrap().detail["policies"],
        "break-glass-for-sre"
    );
    let e = h.grant(&e.id).await;
    assert_eq!((e.state, e.review_owed), (GrantState::Pending, false));
    assert_eq!(
        h.notices.0.lock().unwrap()[0],
        format!("break-glass {}", g.id)
    );
}

#[tokio::test]
async fn a_redelivered_batch_changes_nothing() {
    let h = Harness::new("redeliver").await;
    let a = h
        .request("sam", &["sre"], "prod-logs-ro", "30m", Some("INC-1"), false)
        .await;
    let b = h
        .request("eve", &["engineers"], "prod-deploy", "1h", None, false)
        .await;
    let batch = vec![h.insert_record(&a.id).await, h.insert_record(&b.id).await];
    h.deliver(batch.clone()).await;
    let (a1, b1) = (h.grant(&a.id).await, h.grant(&b.id).await);
    let notices = h.notices.0.lock().unwrap().len();
    h.clock.advance(30);
    let out = h.deliver(batch).await;
    assert_eq!(out["batchItemFailures"], json!([]));
    assert_eq!(h.grant(&a.id).await, a1);
    assert_eq!(h.grant(&b.id).await, b1);
    assert_eq!(
        h.notices.0.lock().unwrap().len(),
        notices,
        "nobody is told twice"
    );
    let audit = jit_test_support::audit(h.store(), &b.id).await;
    assert_eq!(audit.len(), 2);
}

#[tokio::test]
async fn poison_and_foreign_records_are_skipped_without_blocking_the_rest() {
    let h = Harness::new("poison").await;
    let good = h
        .request("sam", &["sre"], "prod-logs-ro", "30m", Some("INC-1"), false)
        .await;
    let good_record = h.insert_record(&good.id).await;
    let mut poison = good_record.clone();
    poison["dynamodb"]["NewImage"]["state"] = json!({"S": "ON_FIRE"});
    poison["dynamodb"]["SequenceNumber"] = json!("1");
    let audit_item = jit_local::stream_record(
        "INSERT",
        json!({"pk": {"S": format!("GRANT#{}", good.id)}, "sk": {"S": "AUDIT#0000000001"}}),
        json!({"pk": {"S": format!("GRANT#{}", good.id)}, "sk": {"S": "AUDIT#0000000001"}}),
        2,
    );
    let mut modify = good_record.clone();
    modify["eventName"] = json!("MODIFY");
    let out = h
        .deliver(vec![poison, audit_item, modify, good_record])
        .await;
    assert_eq!(out["batchItemFailures"], json!([]));
    assert_eq!(h.grant(&good.id).await.state, GrantState::Active);
}

#[tokio::test]
async fn a_passing_failure_is_reported_for_its_record_only_and_the_retry_succeeds() {
    let h = Harness::new("partial").await;
    let a = h
        .request("sam", &["sre"], "prod-logs-ro", "30m", Some("INC-1"), false)
        .await;
    let b = h
        .request("eve", &["engineers"], "prod-logs-ro", "1h", None, false)
        .await;
    let batch = vec![h.insert_record(&a.id).await, h.insert_record(&b.id).await];
    h.approver.store.fail_writes(1);
    let out = h.deliver(batch.clone()).await;
    assert_eq!(
        out["batchItemFailures"],
        json!([{"itemIdentifier": batch[0]["dynamodb"]["SequenceNumber"]}])
    );
    assert_eq!(h.grant(&a.id).await.state, GrantState::Pending);
    assert_eq!(h.grant(&b.id).await.approvals_required, Some(1));
    // Lambda retries from the failed record: the first is decided, the second is unchanged.
    let out = h.deliver(batch).await;
    assert_eq!(out["batchItemFailures"], json!([]));
    assert_eq!(h.grant(&a.id).await.state, GrantState::Active);
    assert_eq!(h.grant(&b.id).await.version, 2);
}

#[tokio::test]
async fn a_request_cancelled_before_its_record_arrives_is_left_alone() {
    let h = Harness::new("cancelled").await;
    let g = h
        .request("sam", &["sre"], "prod-logs-ro", "30m", Some("INC-1"), false)
        .await;
    let record = h.insert_record(&g.id).await;
    let cancel = g
        .apply(
            jit_core::domain::Command::Cancel,
            &jit_core::domain::Actor::User(g.requester.clone()),
            WEDNESDAY_10,
        )
        .unwrap();
    h.store().commit(&cancel).await.unwrap();
    let out = h.deliver(vec![record]).await;
    assert_eq!(out["batchItemFailures"], json!([]));
    assert_eq!(h.grant(&g.id).await.state, GrantState::Cancelled);
}

#[test]
fn each_event_source_deserializes_to_its_variant_and_anything_else_is_refused() {
    use jit_approver::ApproverEvent;
    let http = jit_local::anonymous_event("POST /requests/{id}/reviews", "/requests/x/reviews");
    assert!(matches!(
        serde_json::from_value(http).unwrap(),
        ApproverEvent::Http(_)
    ));
    let record = jit_local::stream_record("INSERT", json!({}), json!({}), 1);
    assert!(matches!(
        serde_json::from_value(jit_local::stream_batch(vec![record])).unwrap(),
        ApproverEvent::Stream(_)
    ));
    // What Lambda never sends this function is refused before the handler runs.
    for other in [
        json!({"detail-type": "Scheduled Event"}),
        json!({"Records": "nope"}),
        json!({}),
    ] {
        assert!(
            serde_json::from_value::<ApproverEvent>(other.clone()).is_err(),
            "{other}"
        );
    }
}

#[tokio::test]
async fn a_record_the_database_refuses_is_not_retried_and_a_throttled_one_is() {
    let h = Harness::new("db-errors").await;
    let g = h
        .request(
            "alice",
            &["sre"],
            "prod-logs-ro",
            "30m",
            Some("INC-1"),
            false,
        )
        .await;
    let record = h.insert_record(&g.id).await;
    let sequence = record["dynamodb"]["SequenceNumber"].clone();
    let dynamo = jit_local::CannedEndpoint::start().await.unwrap();
    let approver = jit_approver::Approver {
        store: jit_core::store::DynamoStore::new(dynamo.dynamodb_client(2).await, "jit-grants"),
        rules: h.approver.rules.clone(),
        clock: h.clock.clone(),
        notifier: h.notices.clone(),
        config: jit_approver::ApproverConfig::default(),
        keys: std::sync::Arc::new(jit_core::trust::KeyRing::default().into()),
        on_call: Default::default(),
    };
    let deliver = |records| deliver_to(&approver, records);
    dynamo.dynamodb_error(
        400,
        "AccessDeniedException",
        "User is not authorized to perform: dynamodb:TransactWriteItems",
    );
    let out = deliver(vec![record.clone()]).await;
    assert_eq!(
        out["batchItemFailures"],
        json!([]),
        "retrying cannot fix a refusal"
    );
    dynamo.dynamodb_error(400, "ProvisionedThroughputExceededException", "slow down");
    let out = deliver(vec![record]).await;
    assert_eq!(
        out["batchItemFailures"],
        json!([{"itemIdentifier": sequence}]),
        "throttling is retried from that record"
    );
}
