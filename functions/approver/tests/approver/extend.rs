//! More time on an active grant (`POST /grants/{id}/extend`): at once where the rules say so,
//! otherwise through the target's reviewers, never past the target's longest total, and only
//! from an end the signed records give.

use jit_test_support::Who;

use crate::support::*;
use aws_sdk_dynamodb::types::AttributeValue;
use jit_core::cases::Cases;
use jit_core::clock::{Clock, Timestamp};
use jit_core::domain::audit::AuditAction;
use jit_core::domain::{Grant, GrantState, Reason};
use jit_core::identity::Caller;
use serde_json::json;

const SRE: &[&str] = &["sre"];
const ENGINEERS: &[&str] = &["engineers"];
const LEADS: &[&str] = &["dba-leads"];
const HOUR: i64 = 3600;

/// `who`'s request for `target`, approved by `approver`: active from now for an hour.
async fn active(h: &Harness, who: (&str, &[&str]), target: &str, approver: Who<'_>) -> Grant {
    let g = h
        .request(who.0, who.1, target, "1h", Some("CHG-7"), false)
        .await;
    let record = h.insert_record(&g.id).await;
    h.deliver(vec![record]).await;
    let body = json!({"decision": "approve"}).to_string();
    let path = format!("/requests/{}/reviews", g.id);
    h.call(approver, "POST /requests/{id}/reviews", &path, Some(&body))
        .await
        .assert_state("ACTIVE");
    let g = h.grant(&g.id).await;
    assert_eq!(g.ends_at, Some(h.clock.now().plus_secs(HOUR)));
    g
}

async fn extend(h: &Harness, who: Who<'_>, id: &str, duration: &str) -> Reply {
    let body = json!({"duration": duration, "reason": "the migration is still running"});
    h.call(
        who,
        "POST /grants/{id}/extend",
        &format!("/grants/{id}/extend"),
        Some(&body.to_string()),
    )
    .await
}

async fn review(h: &Harness, who: Who<'_>, id: &str, decision: &str) -> Reply {
    let body = json!({"decision": decision}).to_string();
    let path = format!("/requests/{id}/reviews");
    h.call(who, "POST /requests/{id}/reviews", &path, Some(&body))
        .await
}

fn end_of(reply: &Reply) -> Timestamp {
    Timestamp::parse_rfc3339(reply.body["ends_at"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn the_rules_extend_at_once_or_send_the_extension_to_reviewers() {
    let h = Harness::new("extend").await;
    let eve = Some(("eve", ENGINEERS));
    let g = active(&h, ("eve", ENGINEERS), "prod-logs-ro", Some(("sam", SRE))).await;
    let id = g.id.as_str();
    let first_end = g.ends_at.unwrap();
    h.clock.advance(600);

    // Thirty minutes more on read-only: the example rules extend an engineer at once.
    let at_once = extend(&h, eve, id, "30m").await;
    at_once.assert_state("ACTIVE");
    assert_eq!(end_of(&at_once), first_end.plus_secs(1800));
    let last = jit_test_support::last_audit(h.store(), &g.id).await;
    assert_eq!(
        (last.action, last.from, last.to),
        (
            AuditAction::Extended,
            Some(GrantState::Active),
            GrantState::Active
        )
    );
    assert_eq!(last.actor.to_string(), "user:eve");
    assert_eq!(
        last.detail["ends_at"],
        first_end.plus_secs(1800).to_string()
    );
    assert_eq!(
        last.detail["policies"],
        "engineers-extend-read-only-briefly"
    );

    // An hour more is not theirs to take: it waits for one approval, as a request would.
    let waits = extend(&h, eve, id, "1h").await;
    assert_eq!(waits.status, 202, "{}", waits.body);
    assert_eq!(end_of(&waits), first_end.plus_secs(1800), "not moved yet");
    assert_eq!(waits.body["extension"]["approvals_required"], 1);
    assert_eq!(waits.body["extension"]["duration"], "1h");
    assert_eq!(
        h.notices.0.lock().unwrap().last().unwrap(),
        &format!("extension {id} 1")
    );
    // One at a time.
    extend(&h, eve, id, "30m").await.assert_refused(
        409,
        &format!("request `{id}` already has an extension waiting for review"),
    );
    // The requester cannot approve their own, whatever their groups.
    review(&h, Some(("eve", &["engineers", "sre"])), id, "approve")
        .await
        .assert_refused(403, "a requester cannot review their own request");
    // A reviewer approves: the end moves by the hour asked.
    let approved = review(&h, Some(("sam", SRE)), id, "approve").await;
    approved.assert_state("ACTIVE");
    assert_eq!(end_of(&approved), first_end.plus_secs(1800 + HOUR));
    assert!(
        approved.body.get("extension").is_none(),
        "{}",
        approved.body
    );
    let last = jit_test_support::last_audit(h.store(), &g.id).await;
    assert_eq!(
        (last.action, last.actor.to_string()),
        (AuditAction::Extended, "user:sam".to_owned())
    );
    assert_eq!(last.detail["approvals"], "1/1");
    // Nothing waits now: a review has nothing to decide.
    review(&h, Some(("sam", SRE)), id, "approve")
        .await
        .assert_detail(
            409,
            &format!(
                "cannot approve request `{id}`: it is ACTIVE, with no extension waiting for review"
            ),
        );

    // prod-logs-ro allows 8 hours from activation: 2h30m so far, 5h30m more would pass it.
    let activated = h.grant(&g.id).await.activated_at.unwrap();
    let limit = activated.plus_secs(8 * HOUR);
    extend(&h, eve, id, "6h").await.assert_detail(
        422,
        &format!(
            "cannot extend request `{id}` to {}: its target allows access until {limit} at most (its longest total from activation)",
            first_end.plus_secs(1800 + HOUR + 6 * HOUR)
        ),
    );
    assert_eq!(
        jit_test_support::actions(h.store(), &g.id).await,
        [
            AuditAction::Requested,
            AuditAction::AwaitingReview,
            AuditAction::Approved,
            AuditAction::Extended,
            AuditAction::ExtensionRequested,
            AuditAction::Extended,
        ]
    );
}

#[tokio::test]
async fn only_the_requester_extends_only_an_active_grant_before_its_end() {
    let h = Harness::new("extend-refused").await;
    let g = active(&h, ("eve", ENGINEERS), "prod-deploy", Some(("sam", SRE))).await;
    let id = g.id.as_str();
    // A reviewer of the target sees it, but it is not theirs; a stranger does not see it.
    extend(&h, Some(("sam", SRE)), id, "30m")
        .await
        .assert_refused(403, "only the requester may extend their access");
    extend(&h, Some(("mallory", &[])), id, "30m")
        .await
        .assert_problem(404, "not-found");
    extend(&h, None, id, "30m")
        .await
        .assert_problem(401, "unauthenticated");
    // Bodies that make no sense.
    extend(&h, Some(("eve", ENGINEERS)), id, "1m")
        .await
        .assert_refused(422, "duration");
    let no_reason = json!({"duration": "30m"}).to_string();
    let path = format!("/grants/{id}/extend");
    let reply = h
        .call(
            Some(("eve", ENGINEERS)),
            "POST /grants/{id}/extend",
            &path,
            Some(&no_reason),
        )
        .await;
    reply.assert_refused(400, "missing field `reason`");

    // Past its end (the sweeper has not come yet): too late.
    h.clock.advance(HOUR);
    extend(&h, Some(("eve", ENGINEERS)), id, "30m")
        .await
        .assert_refused(409, "its time ran out at");

    // A pending request is not extended; a revoked grant never again.
    let pending = h
        .request("eve", ENGINEERS, "prod-logs-ro", "1h", None, false)
        .await;
    extend(&h, Some(("eve", ENGINEERS)), pending.id.as_str(), "30m")
        .await
        .assert_refused(409, "it is PENDING");
    let other = active(&h, ("ann", ENGINEERS), "prod-logs-ro", Some(("sam", SRE))).await;
    let cases = Cases::new(h.store(), &h.approver.rules, &h.approver.keys);
    let sam = Caller {
        user: jit_core::domain::UserId::parse("sam").unwrap(),
        email: None,
        groups: vec![jit_core::domain::GroupName::parse("sre").unwrap()],
    };
    let reason = Reason::parse("done with the deploy now".to_owned()).unwrap();
    cases
        .revoke(&sam, other.id.as_str(), reason, h.clock.now())
        .await
        .unwrap();
    extend(&h, Some(("ann", ENGINEERS)), other.id.as_str(), "30m")
        .await
        .assert_refused(409, "it is REVOKED, which is final");
}

#[tokio::test]
async fn an_extension_needs_the_approvals_a_request_needs_and_a_denial_keeps_the_end() {
    let h = Harness::new("extend-two").await;
    // prod-db-admin needs a dba-lead and a security approval; its longest total is its longest grant (1h), so
    // nothing can be added to an hour-long grant.
    let g = h
        .request("dan", &["dba"], "prod-db-admin", "1h", Some("CHG-7"), false)
        .await;
    let record = h.insert_record(&g.id).await;
    h.deliver(vec![record]).await;
    let body = json!({"decision": "approve"}).to_string();
    let path = format!("/requests/{}/reviews", g.id);
    let route = "POST /requests/{id}/reviews";
    h.call(Some(("lee", LEADS)), route, &path, Some(&body))
        .await
        .assert_state("PENDING");
    h.call(Some(("sue", &["security"])), route, &path, Some(&body))
        .await
        .assert_state("ACTIVE");
    let id = g.id.as_str();
    extend(&h, Some(("dan", &["dba"])), id, "10m")
        .await
        .assert_refused(422, "its longest total from activation");

    // prod-deploy: one approval, 4 hours in all. A denial leaves the end where it was.
    let g = active(&h, ("eve", ENGINEERS), "prod-deploy", Some(("sam", SRE))).await;
    let id = g.id.as_str();
    let end = g.ends_at.unwrap();
    let waits = extend(&h, Some(("eve", ENGINEERS)), id, "1h").await;
    assert_eq!(waits.status, 202, "{}", waits.body);
    let denied = review(&h, Some(("sam", SRE)), id, "deny").await;
    denied.assert_state("ACTIVE");
    assert_eq!(end_of(&denied), end);
    assert_eq!(
        jit_test_support::last_audit(h.store(), &g.id).await.action,
        AuditAction::ExtensionDenied
    );
    // Asked again, approved, the end moves; the approver cannot review it twice.
    assert_eq!(
        extend(&h, Some(("eve", ENGINEERS)), id, "1h").await.status,
        202
    );
    review(&h, Some(("sam", SRE)), id, "approve")
        .await
        .assert_state("ACTIVE");
    assert_eq!(h.grant(&g.id).await.ends_at, Some(end.plus_secs(HOUR)));
}

#[tokio::test]
async fn an_end_edited_in_the_table_is_refused_and_moves_nothing() {
    let h = Harness::new("extend-edited").await;
    let g = active(&h, ("eve", ENGINEERS), "prod-deploy", Some(("sam", SRE))).await;
    let id = g.id.as_str();
    let end = g.ends_at.unwrap();
    // Someone with write access to the table gives the grant a day.
    let forged = end.plus_secs(24 * HOUR);
    h.table
        .client
        .update_item()
        .table_name(&h.table.name)
        .key("pk", AttributeValue::S(format!("GRANT#{id}")))
        .key("sk", AttributeValue::S("GRANT".to_owned()))
        .update_expression("SET ends_at = :e")
        .expression_attribute_values(":e", AttributeValue::N(forged.unix_seconds().to_string()))
        .send()
        .await
        .unwrap();
    let reply = extend(&h, Some(("eve", ENGINEERS)), id, "30m").await;
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert!(
        reply.detail().contains(&format!(
            "the grant's end time is `{forged}` but its signed audit record 3 says `{end}`"
        )),
        "{}",
        reply.detail()
    );
    assert_eq!(
        jit_test_support::last_audit(h.store(), &g.id).await.action,
        AuditAction::Approved,
        "nothing recorded"
    );
}
