//! Several targets in one request, end to end: refused whole when one target is forbidden
//! (naming it, nothing made); made whole otherwise, each item then decided by its own
//! target's reviewers (one call each, approving only what they may), each with its own
//! credentials; and the request revoked as a whole, each item's live sessions cut.

use jit_api::{CreateBundle, DurationInput, ReviewRequest};
use jit_core::domain::{GrantState, ReviewDecision};
use jit_e2e::shared;
use serde_json::json;

use super::{api, post, pull, refused_line, send};

#[tokio::test]
async fn a_request_of_several_targets_is_made_whole_decided_per_item_and_revoked_whole() {
    let stack = shared().unwrap();
    let api = api(stack);
    let api = &api;
    // An engineer who is also a DBA: read-only logs through an SRE, database admin through a
    // dba-lead and security. Neither is approved at once.
    let erin = stack.token("erin-bundle", &["engineers", "dba"]);
    let sam = stack.token("sam-bundle", &["sre"]);
    let lee = stack.token("lee-bundle", &["dba-leads"]);
    let sue = stack.token("sue-bundle", &["security"]);
    let ask = |targets: &[&str]| CreateBundle {
        targets: targets.iter().map(|t| (*t).to_owned()).collect(),
        duration: DurationInput::Text("1h".to_owned()),
        reason: "migrating the reporting database".to_owned(),
        ticket: Some("CHG-42".to_owned()),
        starts_at: None,
    };
    let as_erin = api.as_user(&erin);

    // One target the rules forbid refuses the whole request, naming it; nothing is made.
    let refused = send(
        api,
        post("/bundles".to_owned()),
        &erin,
        Some(serde_json::to_value(ask(&["prod-logs-ro", "break-glass-admin"])).unwrap()),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("target `break-glass-admin`: ") && detail.contains("nothing was made"),
        "{detail}"
    );
    // An Idempotency-Key is not taken for several targets: refused, nothing made.
    let keyed = as_erin
        .send(
            "POST",
            "/bundles",
            Some(&serde_json::to_value(ask(&["prod-logs-ro", "prod-db-admin"])).unwrap()),
            &[("idempotency-key", "bundle-1")],
        )
        .await
        .unwrap();
    assert_eq!(keyed.status, 400, "{}", keyed.body);
    let mine = as_erin.list_requests("mine", None, 50, None).await.unwrap();
    assert!(mine.items.is_empty(), "{:?}", mine.items);
    // As for one request, the refusal is on record in intake's log, under the target that
    // refused the whole.
    let line = refused_line(stack, "erin-bundle").await;
    assert_eq!(line["Target"], "break-glass-admin", "{line}");

    // Made whole: one grant per target, in one write.
    let made = as_erin
        .create_bundle(&ask(&["prod-logs-ro", "prod-db-admin"]))
        .await
        .unwrap();
    assert_eq!(made.items.len(), 2);
    let bundle = made.bundle.clone();
    assert_eq!(made.items[0].id, bundle);
    let (logs, db) = (made.items[0].id.clone(), made.items[1].id.clone());
    for item in &made.items {
        assert_eq!(item.bundle.as_deref(), Some(bundle.as_str()));
        api.wait_looked_at(&item.id, &erin).await.unwrap();
    }

    // The SRE approves, in one call, the item the rules let them: the logs, not the database.
    let approve = ReviewRequest {
        decision: ReviewDecision::Approve,
        comment: None,
    };
    let by_sam = api
        .as_user(&sam)
        .review_bundle(&bundle, &approve)
        .await
        .unwrap();
    let outcomes: Vec<(&str, &str)> = by_sam
        .items
        .iter()
        .map(|i| (i.target.as_str(), i.outcome.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [("prod-logs-ro", "approved")],
        "sam sees only what he may approve"
    );
    assert_eq!(by_sam.items[0].state, GrantState::Active);
    // The database needs a dba-lead and security: each approves it in one call.
    let by_lee = api
        .as_user(&lee)
        .review_bundle(&bundle, &approve)
        .await
        .unwrap();
    assert_eq!(by_lee.items.len(), 1);
    assert_eq!(by_lee.items[0].state, GrantState::Pending);
    let by_sue = api
        .as_user(&sue)
        .review_bundle(&bundle, &approve)
        .await
        .unwrap();
    assert_eq!(by_sue.items[0].state, GrantState::Active);
    // Nothing is left for the SRE; the requester may not review her own.
    let nothing = send(
        api,
        post(format!("/bundles/{bundle}/reviews")),
        &sam,
        Some(json!({"decision": "approve"})),
    )
    .await;
    assert_eq!(nothing.status, 403, "{}", nothing.body);
    let own = send(
        api,
        post(format!("/bundles/{bundle}/reviews")),
        &erin,
        Some(json!({"decision": "approve"})),
    )
    .await;
    assert_eq!(own.status, 403, "{}", own.body);

    // Each item has its own credentials, for its own role.
    for (id, role) in [(&logs, "prod-logs-ro"), (&db, "prod-db-admin")] {
        let pulled = pull(api, id, &erin).await;
        assert_eq!(pulled.status, 200, "{role}: {}", pulled.body);
        let credentials: jit_api::Credentials = serde_json::from_value(pulled.body).unwrap();
        let sts = jit_stack::demo::session_client(&stack.aws, &credentials);
        let arn = sts.get_caller_identity().send().await.unwrap().arn.unwrap();
        assert!(arn.contains(&format!(":assumed-role/{role}/")), "{arn}");
    }

    // A stranger is told there is no such request; the requester revokes it whole.
    let stranger = stack.token("mallory-bundle", &["engineers"]);
    let hidden = send(
        api,
        ("GET".to_owned(), format!("/bundles/{bundle}")),
        &stranger,
        None,
    )
    .await;
    assert_eq!(hidden.status, 404, "{}", hidden.body);
    let revoked = as_erin
        .revoke_bundle(&bundle, "the migration is finished")
        .await
        .unwrap();
    for item in &revoked.items {
        assert_eq!(item.outcome, "revoked", "{item:?}");
        assert_eq!(item.state, GrantState::Revoked);
        assert_eq!(
            item.live_sessions,
            Some(jit_api::LiveSessions::Cut),
            "{item:?}"
        );
    }
    let after = as_erin.get_bundle(&bundle).await.unwrap();
    assert!(after.items.iter().all(|g| g.state == GrantState::Revoked));
    for id in [&logs, &db] {
        assert_eq!(pull(api, id, &erin).await.status, 409);
    }
}

#[tokio::test]
async fn a_reviewer_denies_the_items_they_may_and_revoking_leaves_a_pending_item_to_its_requester()
{
    let stack = shared().unwrap();
    let api = api(stack);
    let api = &api;
    let dora = stack.token("dora-bundle", &["engineers", "dba"]);
    let sam = stack.token("sam-deny-bundle", &["sre"]);
    let asked = CreateBundle {
        targets: vec!["prod-logs-ro".to_owned(), "prod-db-admin".to_owned()],
        duration: DurationInput::Text("1h".to_owned()),
        reason: "comparing the replica with production".to_owned(),
        ticket: Some("CHG-43".to_owned()),
        starts_at: None,
    };
    let made = api.as_user(&dora).create_bundle(&asked).await.unwrap();
    let bundle = made.bundle.clone();
    for item in &made.items {
        api.wait_looked_at(&item.id, &dora).await.unwrap();
    }
    // The SRE denies, in one call, what the rules let him review: the logs only.
    let deny = ReviewRequest {
        decision: ReviewDecision::Deny,
        comment: Some("use the replica's own logs".to_owned()),
    };
    let denied = api
        .as_user(&sam)
        .review_bundle(&bundle, &deny)
        .await
        .unwrap();
    let outcomes: Vec<(&str, &str, GrantState)> = denied
        .items
        .iter()
        .map(|i| (i.target.as_str(), i.outcome.as_str(), i.state))
        .collect();
    assert_eq!(
        outcomes,
        [("prod-logs-ro", "denied", GrantState::Denied)],
        "{denied:?}"
    );
    // Revoking the whole: nothing active, the database item still pending and left to its
    // requester (a cancellation is intake's record), so nothing was revoked.
    let revoked = send(
        api,
        post(format!("/bundles/{bundle}/revoke")),
        &dora,
        Some(json!({"reason": "no longer needed"})),
    )
    .await;
    assert_eq!(revoked.status, 403, "{}", revoked.body);
    let after = api.as_user(&dora).get_bundle(&bundle).await.unwrap();
    let states: Vec<GrantState> = after.items.iter().map(|g| g.state).collect();
    assert_eq!(states, [GrantState::Denied, GrantState::Pending]);
    // The requester cancels the pending item as any request.
    let cancelled = send(
        api,
        post(format!("/requests/{}/cancel", made.items[1].id)),
        &dora,
        None,
    )
    .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
}
