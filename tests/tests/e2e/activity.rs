//! What each grant did: calls made with a grant's session, through the stack's AWS endpoint
//! (the local CloudTrail and forwarding rule), reach the real activity binary, are kept as
//! the grant's and shown to whoever may see the grant; a call a revoking guardrail names ends
//! the grant through the sweeper, live session included.

use std::time::Duration;

use jit_api::{ActivityPage, ApiError, Credentials};
use jit_core::domain::{Actor, GrantState, Service};
use jit_e2e::Api;

use super::{active, api, pull, shared};

/// Reads grant `id`'s activity as `token` until `done` holds or 30 s pass.
async fn activity_until(
    api: &Api,
    id: &str,
    token: &str,
    done: impl Fn(&ActivityPage) -> bool,
) -> ActivityPage {
    let mut last = None;
    for _ in 0..120 {
        let page = api.as_user(token).request_activity(id, 100, None).await;
        let page = page.unwrap_or_else(|e| panic!("the activity of {id}: {e}"));
        if done(&page) {
            return page;
        }
        last = Some(page);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the activity never got there: {last:?}");
}

#[tokio::test]
async fn a_grants_calls_are_its_activity_and_a_revoking_guardrail_ends_it() {
    let stack = shared().unwrap();
    let api = api(stack);
    let ann = stack.token("ann-activity", &["sre"]);
    let id = active(&api, &ann, "prod-logs-ro", "1h").await;
    let c = pull(&api, &id, &ann).await;
    assert_eq!(c.status, 200, "{}", c.body);
    let credentials: Credentials = c.read().unwrap();
    let session = jit_stack::demo::session_config(stack, &credentials);

    // A read, and a call the service refuses.
    let dynamodb = aws_sdk_dynamodb::Client::new(&session);
    dynamodb.list_tables().send().await.unwrap();
    let missing = dynamodb
        .describe_table()
        .table_name("no-such-table")
        .send()
        .await;
    assert!(missing.is_err());

    let page = activity_until(&api, &id, &ann, |p| p.items.len() >= 2).await;
    let actions: Vec<(&str, &str, Option<bool>, Option<&str>)> = page
        .items
        .iter()
        .map(|a| {
            let e = &a.activity;
            (
                e.service.as_str(),
                e.action.as_str(),
                e.read_only,
                e.error_code.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("dynamodb.amazonaws.com", "ListTables", Some(true), None),
            (
                "dynamodb.amazonaws.com",
                "DescribeTable",
                Some(true),
                Some("ResourceNotFoundException")
            ),
        ]
    );
    let first = &page.items[0];
    assert_eq!(first.activity.account, "333333333333");
    assert_eq!(first.activity.source_ip.as_deref(), Some("127.0.0.1"));
    assert_ne!(first.activity.event_id, page.items[1].activity.event_id);
    assert_eq!(page.stored, 2);
    assert!(page.next.is_some(), "a cursor to read on from");
    // Reading on from it finds nothing new yet.
    let on = api
        .as_user(&ann)
        .request_activity(&id, 100, page.next.as_deref())
        .await
        .unwrap();
    assert!(on.items.is_empty(), "{on:?}");

    // Someone who may not see the grant is told there is no such request.
    let eve = stack.token("eve-activity", &["engineers"]);
    match api.as_user(&eve).request_activity(&id, 10, None).await {
        Err(ApiError::Refused { status: 404, .. }) => {}
        other => panic!("{other:?}"),
    }

    // Trying to delete a role's policy fires the revoking guardrail: the sweeper ends the grant.
    let iam = aws_sdk_iam::Client::new(&session);
    let _ = iam
        .delete_role_policy()
        .role_name("prod-logs-ro")
        .policy_name("jit-revocations")
        .send()
        .await;
    let ended = api
        .wait_for(&id, &ann, Duration::from_secs(30), |g| {
            g.state != GrantState::Active
        })
        .await
        .unwrap();
    assert_eq!(ended.state, GrantState::Revoked, "{ended:?}");
    let trail = api.as_user(&ann).request_trail(&id).await.unwrap();
    let last = &trail.records.last().unwrap().record;
    assert_eq!(last.actor, Actor::Service(Service::Sweeper));
    let reason = last.detail.get("reason").unwrap();
    assert!(
        reason.contains("revoke-on-iam-or-key-destruction")
            && reason.contains("iam.amazonaws.com DeleteRolePolicy"),
        "{reason}"
    );
    // The live session is cut: the role's revocation policy names the grant.
    let doc = jit_stack::demo::revocation_policy(stack, "prod-logs-ro")
        .await
        .unwrap();
    assert!(doc.to_string().contains(&id), "{doc}");
    let page = activity_until(&api, &id, &ann, |p| p.items.len() >= 3).await;
    assert!(
        page.items
            .iter()
            .any(|a| a.activity.action == "DeleteRolePolicy"),
        "{page:?}"
    );
}
