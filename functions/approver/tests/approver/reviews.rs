//! Human reviews and break-glass post-reviews over the API, including twenty reviewers at once.

use jit_test_support::Who;
use std::sync::Arc;

use crate::support::*;
use jit_core::domain::audit::{AuditAction, verify_against_head};
use jit_core::domain::{Grant, GrantState};
use jit_core::store::GrantStore;
use serde_json::json;

const SRE: &[&str] = &["sre"];
const SECURITY: &[&str] = &["security"];
const ENGINEERS: &[&str] = &["engineers"];
const LEADS: &[&str] = &["dba-leads"];

fn review(decision: &str) -> String {
    json!({"decision": decision, "comment": "checked the ticket"}).to_string()
}

/// A request decided by the rules to need reviewers.
async fn pending(h: &Harness, who: &str, groups: &[&str], target: &str) -> Grant {
    let g = h
        .request(who, groups, target, "1h", Some("CHG-7"), false)
        .await;
    let record = h.insert_record(&g.id).await;
    h.deliver(vec![record]).await;
    let g = h.grant(&g.id).await;
    assert_eq!(g.state, GrantState::Pending);
    assert!(g.approvals_required.is_some());
    g
}

async fn post(h: &Harness, who: Who<'_>, id: &str, body: &str) -> Reply {
    h.call(
        who,
        "POST /requests/{id}/reviews",
        &format!("/requests/{id}/reviews"),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn one_approval_activates_and_each_review_is_audited() {
    let h = Harness::new("approve").await;
    let g = pending(&h, "eve", ENGINEERS, "prod-logs-ro").await;
    let reply = post(&h, Some(("sam", SRE)), g.id.as_str(), &review("approve")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["state"], "ACTIVE");
    assert_eq!(reply.body["reviews"][0]["reviewer"], "sam");
    let last = jit_test_support::last_audit(h.store(), &g.id).await;
    assert_eq!(
        (last.action, last.to),
        (AuditAction::Approved, GrantState::Active)
    );
    assert_eq!(last.detail["comment"], "checked the ticket");
    assert_eq!(last.actor.to_string(), "user:sam");
}

/// prod-db-admin needs one dba-lead AND one security approval: two dba-leads do not make
/// it, and one person in both groups fills only one of the two.
#[tokio::test]
async fn two_distinct_approvers_are_needed_where_the_target_says_so() {
    let h = Harness::new("two").await;
    let g = pending(&h, "dan", &["dba"], "prod-db-admin").await;
    let id = g.id.as_str();
    let first = post(&h, Some(("lee", LEADS)), id, &review("approve")).await;
    first.assert_state("PENDING");
    let again = post(&h, Some(("lee", LEADS)), id, &review("approve")).await;
    again.assert_detail(
        409,
        &format!("user:lee has already reviewed request `{id}`"),
    );
    // Also through another group, the requester never counts.
    let own = post(
        &h,
        Some(("dan", &["dba", "dba-leads"])),
        id,
        &review("approve"),
    )
    .await;
    assert_eq!(own.status, 403);
    assert!(
        own.detail()
            .contains("a requester cannot review their own request"),
        "{}",
        own.detail()
    );
    let second = post(&h, Some(("lia", LEADS)), id, &review("approve")).await;
    second.assert_state("PENDING");
    assert_eq!(
        second.body["requirements"],
        json!([{"name": "dba-lead", "approvals": 1, "met": 1},
               {"name": "security", "approvals": 1, "met": 0}])
    );
    let third = post(&h, Some(("sue", SECURITY)), id, &review("approve")).await;
    third.assert_state("ACTIVE");
    let g = h.grant(&g.id).await;
    assert_eq!(g.approval_count(), 3);
    let last = jit_test_support::last_audit(h.store(), &g.id).await;
    assert_eq!(last.detail["fills"], "security");
    assert_eq!(
        last.detail["requirements_met"],
        "dba-lead 1/1, security 1/1"
    );
}

/// The issue's matching case, through the API: ann may fill both requirements (a dba-lead
/// and in security), ben only dba-lead. ann approving first must not take dba-lead from ben.
#[tokio::test]
async fn an_approver_who_may_fill_either_requirement_is_put_where_the_other_cannot_go() {
    let h = Harness::new("matching").await;
    let g = pending(&h, "dan", &["dba"], "prod-db-admin").await;
    let id = g.id.as_str();
    let ann = post(
        &h,
        Some(("ann", &["dba-leads", "security"])),
        id,
        &review("approve"),
    )
    .await;
    ann.assert_state("PENDING");
    assert_eq!(
        ann.body["reviews"][0]["fills"],
        json!(["dba-lead", "security"])
    );
    // An SRE may approve prod targets but not this admin one: to them it does not exist.
    let sre = post(&h, Some(("sam", SRE)), id, &review("approve")).await;
    assert_eq!(sre.status, 404, "{}", sre.body);
    let ben = post(&h, Some(("ben", LEADS)), id, &review("approve")).await;
    ben.assert_state("ACTIVE");
    assert_eq!(
        ben.body["requirements"],
        json!([{"name": "dba-lead", "approvals": 1, "met": 1},
               {"name": "security", "approvals": 1, "met": 1}])
    );
}

#[tokio::test]
async fn a_deny_ends_it_and_later_reviews_are_told_the_state() {
    let h = Harness::new("deny").await;
    let g = pending(&h, "dan", &["dba"], "prod-db-admin").await;
    let id = g.id.as_str();
    assert_eq!(
        post(&h, Some(("lee", LEADS)), id, &review("approve"))
            .await
            .status,
        200
    );
    let deny = post(&h, Some(("sue", SECURITY)), id, &review("deny")).await;
    deny.assert_state("DENIED");
    let late = post(&h, Some(("lia", LEADS)), id, &review("approve")).await;
    late.assert_detail(
        409,
        &format!("cannot approve request `{id}`: it is DENIED, which is final"),
    );
}

#[tokio::test]
async fn reviews_are_refused_to_the_wrong_people_in_the_wrong_states_and_for_bad_input() {
    let h = Harness::new("refusals").await;
    let g = pending(&h, "eve", ENGINEERS, "prod-logs-ro").await;
    let id = g.id.as_str();
    // Strangers are told nothing exists; auditors may see it but not review it.
    assert_eq!(
        post(&h, Some(("bob", ENGINEERS)), id, &review("approve"))
            .await
            .status,
        404
    );
    let auditor = post(&h, Some(("sue", SECURITY)), id, &review("approve")).await;
    auditor.assert_detail(
        403,
        "no policy permits you to Approve on target `prod-logs-ro`",
    );
    assert_eq!(post(&h, None, id, &review("approve")).await.status, 401);
    let unknown = jit_core::domain::GrantId::generate(WEDNESDAY_10);
    assert_eq!(
        post(&h, Some(("sam", SRE)), unknown.as_str(), &review("approve"))
            .await
            .status,
        404
    );
    for (body, status, detail) in [
        (
            json!({"decision": "maybe"}).to_string(),
            400,
            "unknown variant `maybe`",
        ),
        (
            json!({"decision": "approve", "approvals": 5}).to_string(),
            400,
            "unknown field `approvals`",
        ),
        ("{".to_owned(), 400, "not valid JSON"),
        (
            json!({"decision": "approve", "comment": "x".repeat(2001)}).to_string(),
            422,
            "at most 2000 characters",
        ),
    ] {
        let reply = post(&h, Some(("sam", SRE)), id, &body).await;
        assert_eq!(reply.status, status, "{body:.60}");
        assert!(
            reply.detail().contains(detail),
            "{body:.60}: {}",
            reply.detail()
        );
    }
    // Not yet decided by the rules, and past its deadline.
    let fresh = h
        .request("bob", ENGINEERS, "prod-logs-ro", "1h", None, false)
        .await;
    let early = post(
        &h,
        Some(("sam", SRE)),
        fresh.id.as_str(),
        &review("approve"),
    )
    .await;
    early.assert_refused(409, "still being evaluated");
    h.clock.advance(3 * 3600);
    let late = post(&h, Some(("sam", SRE)), id, &review("approve")).await;
    late.assert_refused(409, "its time ran out");
    let g = h.grant(&g.id).await;
    assert_eq!(
        (g.state, g.version),
        (GrantState::Pending, 2),
        "nothing was written"
    );
}

#[tokio::test]
async fn twenty_reviewers_at_once_end_in_one_legal_outcome() {
    let h = Arc::new(Harness::new("twenty").await);
    let g = pending(&h, "dan", &["dba"], "prod-db-admin").await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let h = Arc::clone(&h);
        let id = g.id.to_string();
        tasks.push(tokio::spawn(async move {
            // Half dba-leads, half security: the request needs one of each.
            let (who, groups) = if i % 2 == 0 {
                (format!("lead{i:02}"), LEADS)
            } else {
                (format!("sec{i:02}"), SECURITY)
            };
            let decision = if i % 3 == 2 { "deny" } else { "approve" };
            let reply = post(&h, Some((who.as_str(), groups)), &id, &review(decision)).await;
            (who, decision, reply.status, reply.detail().to_owned())
        }));
    }
    let mut accepted = Vec::new();
    for task in tasks {
        let (who, decision, status, detail) = task.await.unwrap();
        match status {
            200 => accepted.push((who, decision)),
            409 => assert!(
                detail.contains("it is ACTIVE")
                    || detail.contains("it is DENIED")
                    || detail.contains("kept changing"),
                "{who}: {detail}"
            ),
            other => panic!("{who} got {other}: {detail}"),
        }
    }
    let g = h.grant(&g.id).await;
    let audit = jit_test_support::audit(h.store(), &g.id).await;
    verify_against_head(&g.id, &audit, &g.audit_head).unwrap();
    let reviews: Vec<_> = audit
        .iter()
        .filter(|r| matches!(r.action, AuditAction::Approved | AuditAction::Denied))
        .map(|r| r.actor.to_string())
        .collect();
    assert_eq!(
        reviews.len(),
        accepted.len(),
        "one audit record per accepted review"
    );
    for (who, _) in &accepted {
        assert!(
            reviews.contains(&format!("user:{who}")),
            "{who} accepted without a record"
        );
    }
    match g.state {
        GrantState::Active => {
            // Approvals until one lead and one security were among them, and no more.
            assert!(accepted.iter().all(|(_, d)| *d == "approve"));
            assert_eq!(g.requirements_met(), [1, 1]);
            // In the order they were recorded, the last approval was the first to complete
            // the pair.
            let before_last = &reviews[..reviews.len() - 1];
            assert!(
                !(before_last.iter().any(|w| w.starts_with("user:lead"))
                    && before_last.iter().any(|w| w.starts_with("user:sec"))),
                "approved past activation: {reviews:?}"
            );
        }
        GrantState::Denied => {
            assert_eq!(accepted.iter().filter(|(_, d)| *d == "deny").count(), 1);
            let approvers: Vec<_> = accepted.iter().filter(|(_, d)| *d == "approve").collect();
            assert!(
                !(approvers.iter().any(|(w, _)| w.starts_with("lead"))
                    && approvers.iter().any(|(w, _)| w.starts_with("sec"))),
                "denied after it was met: {accepted:?}"
            );
        }
        other => panic!("ended {other}"),
    }
}

#[tokio::test]
async fn a_break_glass_grant_owes_a_post_review_that_someone_else_records() {
    let h = Harness::new("post-review").await;
    let g = h
        .request("sam", SRE, "break-glass-admin", "30m", Some("INC-9"), true)
        .await;
    let record = h.insert_record(&g.id).await;
    h.deliver(vec![record]).await;
    let path = format!("/grants/{}/post-review", g.id);
    let route = "POST /grants/{id}/post-review";
    let body = json!({"comment": "justified: INC-9 outage"}).to_string();
    let own = h.call(Some(("sam", SRE)), route, &path, Some(&body)).await;
    assert_eq!(own.status, 403);
    let extra = h
        .call(
            Some(("sue", SECURITY)),
            route,
            &path,
            Some(r#"{"verdict": "ok"}"#),
        )
        .await;
    extra.assert_refused(400, "unknown field `verdict`");
    assert_eq!(
        h.call(Some(("bob", ENGINEERS)), route, &path, Some(&body))
            .await
            .status,
        404
    );
    // It can be done after the grant has ended, too.
    h.clock.advance(3600);
    let expire = h
        .grant(&g.id)
        .await
        .apply(
            jit_core::domain::Command::Expire,
            &jit_core::domain::Actor::Service(jit_core::domain::Service::Sweeper),
            h.approver.clock.now(),
        )
        .unwrap();
    h.store().commit(&expire).await.unwrap();
    let done = h
        .call(Some(("sue", SECURITY)), route, &path, Some(&body))
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(
        (
            done.body["state"].as_str(),
            done.body["review_owed"].as_bool()
        ),
        (Some("EXPIRED"), Some(false))
    );
    let twice = h
        .call(Some(("sue", SECURITY)), route, &path, Some(&body))
        .await;
    twice.assert_refused(409, "owes no review");
    let audit = jit_test_support::audit(h.store(), &g.id).await;
    assert_eq!(audit.last().unwrap().action, AuditAction::PostReviewed);
    assert_eq!(
        audit.last().unwrap().detail["comment"],
        "justified: INC-9 outage"
    );
}

#[tokio::test]
async fn a_review_whose_request_keeps_changing_is_refused_with_a_409_and_records_nothing() {
    let h = Harness::new("kept-changing").await;
    let g = h
        .request("dan", &["dba"], "prod-db-admin", "1h", Some("CHG-1"), false)
        .await;
    h.deliver(vec![h.insert_record(&g.id).await]).await;
    let before = h.grant(&g.id).await;
    h.approver.store.fail_writes_with(
        jit_core::transition::Retry::STANDARD.attempts,
        jit_core::store::StoreError::Conflict { id: g.id.clone() },
    );
    let reply = post(&h, Some(("lee", LEADS)), g.id.as_str(), &review("approve")).await;
    reply.assert_detail(
        409,
        "the request kept changing while this was recorded; nothing was done, try again",
    );
    assert_eq!(h.grant(&g.id).await, before);
}

#[tokio::test]
async fn a_review_that_lost_a_race_reads_the_request_again_with_its_chain() {
    let h = Harness::new("lost-race").await;
    let g = h
        .request("dan", &["dba"], "prod-db-admin", "1h", Some("CHG-1"), false)
        .await;
    h.deliver(vec![h.insert_record(&g.id).await]).await;
    // The first commit loses its race: the review decides again on the request as read with
    // its whole chain and checked (a Query), never on a bare GetItem of the item.
    h.approver.store.fail_writes_with(
        1,
        jit_core::store::StoreError::Conflict { id: g.id.clone() },
    );
    h.table.calls.take();
    let reply = post(&h, Some(("lee", LEADS)), g.id.as_str(), &review("approve")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let calls = h.table.calls.take();
    assert_eq!(
        (
            calls.get("DynamoDB.Query").copied(),
            calls.get("DynamoDB.GetItem").copied(),
            calls.get("DynamoDB.TransactWriteItems").copied()
        ),
        (Some(2), None, Some(1)),
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_request_edited_in_the_table_is_not_reviewed() {
    let h = Harness::new("edited").await;
    let g = pending(&h, "dan", &["dba"], "prod-db-admin").await;
    assert_eq!(h.grant(&g.id).await.approvals_required, Some(2));
    // Someone with table access lowers the approvals the rules asked for, so one approval
    // would open it.
    let mut item = h.raw_item(&g.id).await;
    item.insert(
        "approvals_required".into(),
        aws_sdk_dynamodb::types::AttributeValue::N("1".into()),
    );
    h.table
        .client
        .put_item()
        .table_name(&h.table.name)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    let reply = post(&h, Some(("lee", LEADS)), g.id.as_str(), &review("approve")).await;
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert_eq!(
        reply.body["type"],
        "urn:jit-access:problem:evidence-unverified"
    );
    assert!(
        reply.detail().contains("approvals required")
            && reply.detail().contains("no review was recorded"),
        "{}",
        reply.detail()
    );
    let after = h.grant(&g.id).await;
    assert_eq!(
        (after.state, after.reviews.len()),
        (jit_core::domain::GrantState::Pending, 0)
    );
    // Someone who may not see it still gets the 404, not the tampering news.
    let stranger = post(
        &h,
        Some(("eve", &["engineers"])),
        g.id.as_str(),
        &review("approve"),
    )
    .await;
    assert_eq!(stranger.status, 404, "{}", stranger.body);
}
