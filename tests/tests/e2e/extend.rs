//! More time on an active grant, end to end: asked through the API, approved by a reviewer,
//! the new end what credentials then run to; refused past the target's longest total, on a
//! revoked grant and to anyone but the requester; and an end edited in the table refused by
//! the issuer, which hands out nothing until it is put back.

use aws_sdk_dynamodb::types::AttributeValue;
use jit_core::clock::Timestamp;
use jit_e2e::shared;
use serde_json::json;

use super::{api, ask, asking, post, pull, revoke, send, state_of};

fn time(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

/// Sets the stored grant's `ends_at` as someone with write access to the table would.
async fn set_end(stack: &jit_stack::Stack, id: &str, end: Timestamp) {
    aws_sdk_dynamodb::Client::new(&stack.aws)
        .update_item()
        .table_name(&stack.table)
        .key("pk", AttributeValue::S(format!("GRANT#{id}")))
        .key("sk", AttributeValue::S("GRANT".to_owned()))
        .update_expression("SET ends_at = :e")
        .expression_attribute_values(":e", AttributeValue::N(end.unix_seconds().to_string()))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn an_extension_moves_the_end_credentials_follow_and_an_edited_end_is_refused() {
    let stack = shared().unwrap();
    let api = api(stack);
    let erin = stack.token("erin-extend", &["engineers"]);
    let sam = stack.token("sam-extend", &["sre"]);
    let api = &api;
    let extend = |id: &str, who: &str, duration: &str| {
        let body = json!({"duration": duration, "reason": "the rollout needs another wave"});
        let path = post(format!("/grants/{id}/extend"));
        let who = who.to_owned();
        async move { send(api, path, &who, Some(body)).await }
    };

    // Read-only logs for an hour, without a ticket: an SRE approves it.
    let mut asked = asking("prod-logs-ro", "1h");
    asked.ticket = None;
    let id = ask(api, &erin, asked).await;
    api.wait_looked_at(&id, &erin).await.unwrap();
    let approve = json!({"decision": "approve"});
    let approved = send(
        api,
        post(format!("/requests/{id}/reviews")),
        &sam,
        Some(approve.clone()),
    )
    .await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    let first_end = time(state_of(api, &id, &erin).await.ends_at.as_deref().unwrap());

    // Only the requester asks; the rules extend an engineer by half an hour at most at once,
    // so an hour goes to reviewers.
    let other = extend(&id, &sam, "1h").await;
    assert_eq!(other.status, 403, "{}", other.body);
    let waits = extend(&id, &erin, "1h").await;
    assert_eq!(waits.status, 202, "{}", waits.body);
    assert_eq!(waits.body["extension"]["approvals_required"], 1);
    // The reviewer finds it among what waits for them, and approves it.
    let reviewable = send(
        api,
        ("GET".to_owned(), "/requests?scope=reviewable".to_owned()),
        &sam,
        None,
    )
    .await;
    let waiting: Vec<&str> = reviewable.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["id"].as_str())
        .collect();
    assert!(waiting.contains(&id.as_str()), "{}", reviewable.body);
    let extended = send(
        api,
        post(format!("/requests/{id}/reviews")),
        &sam,
        Some(approve),
    )
    .await;
    assert_eq!(extended.status, 200, "{}", extended.body);
    let new_end = first_end.plus_secs(3600);
    assert_eq!(
        time(extended.body["ends_at"].as_str().unwrap()),
        new_end,
        "{}",
        extended.body
    );

    // Past the target's longest total (8 hours from activation): refused, nothing moves.
    let too_far = extend(&id, &erin, "7h").await;
    assert_eq!(too_far.status, 422, "{}", too_far.body);
    assert!(
        too_far.body["detail"]
            .as_str()
            .unwrap()
            .contains("its target allows access until"),
        "{}",
        too_far.body
    );

    // Credentials run to the new end at most (an hour at a time, as STS chains roles).
    let c = pull(api, &id, &erin).await;
    assert_eq!(c.status, 200, "{}", c.body);
    assert!(time(c.body["Expiration"].as_str().unwrap()) <= new_end);

    // A day more, written straight into the table: the issuer checks the end against the
    // signed records and hands out nothing.
    set_end(stack, &id, new_end.plus_secs(24 * 3600)).await;
    let forged = pull(api, &id, &erin).await;
    assert_eq!(forged.status, 409, "{}", forged.body);
    let detail = forged.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("the grant's end time is") && detail.contains(&new_end.to_string()),
        "{detail}"
    );
    assert_eq!(state_of(api, &id, &erin).await.sessions_issued, 1);
    // Put back, it works again; revoked, it is never extended.
    set_end(stack, &id, new_end).await;
    assert_eq!(pull(api, &id, &erin).await.status, 200);
    assert_eq!(revoke(api, &id, &erin).await.status, 200);
    let after = extend(&id, &erin, "30m").await;
    assert_eq!(after.status, 409, "{}", after.body);
    assert!(
        after.body["detail"].as_str().unwrap().contains("REVOKED"),
        "{}",
        after.body
    );
    let trail: Vec<String> = api
        .as_user(&erin)
        .request_trail(&id)
        .await
        .unwrap()
        .records
        .iter()
        .map(|r| r.record.action.as_str().to_owned())
        .collect();
    assert_eq!(
        trail,
        [
            "REQUESTED",
            "AWAITING_REVIEW",
            "APPROVED",
            "EXTENSION_REQUESTED",
            "EXTENDED",
            "SESSION_ISSUED",
            "SESSION_ISSUED",
            "REVOKED"
        ]
    );
}
