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

/// Every event of grant `id`'s activity as `token` reads it (one page of up to 100).
async fn events_of(api: &Api, id: &str, token: &str) -> Vec<jit_core::activity::Activity> {
    api.as_user(token)
        .request_activity(id, 100, None)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|a| a.activity)
        .collect()
}

/// A grant of `who`'s (in `sre`) on prod-logs-ro, active, with credentials pulled: the API,
/// the token, the grant's id and its session's credentials.
async fn granted(
    stack: &'static jit_stack::Stack,
    who: &str,
) -> (Api, String, String, Credentials) {
    let api = api(stack);
    let token = stack.token(who, &["sre"]);
    let id = active(&api, &token, "prod-logs-ro", "1h").await;
    let c = pull(&api, &id, &token).await;
    assert_eq!(c.status, 200, "{}", c.body);
    let credentials = c.read().unwrap();
    (api, token, id, credentials)
}

#[tokio::test]
async fn a_grants_calls_are_its_activity_and_a_revoking_guardrail_ends_it() {
    let stack = shared().unwrap();
    let (api, ann, id, credentials) = granted(stack, "ann-activity").await;
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
    // The live session is cut: the role's revocation policy names the grant (the sweeper puts
    // it in place right after recording REVOKED).
    let mut doc = Err(String::new());
    for _ in 0..100 {
        doc = jit_stack::demo::revocation_policy(stack, "prod-logs-ro").await;
        if doc.as_ref().is_ok_and(|d| d.to_string().contains(&id)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let doc = doc.unwrap();
    assert!(doc.to_string().contains(&id), "{doc}");
    let page = activity_until(&api, &id, &ann, |p| p.items.len() >= 3).await;
    assert!(
        page.items
            .iter()
            .any(|a| a.activity.action == "DeleteRolePolicy"),
        "{page:?}"
    );
}

#[tokio::test]
async fn a_session_the_broker_did_not_issue_is_unattributed_and_a_forged_event_is_kept_nowhere() {
    use jit_core::store::{ActivityStore, DynamoStore, PageRequest};

    let stack = shared().unwrap();
    let (api, ida, id, _) = granted(stack, "ida-activity").await;

    // Someone assumes the target role by hand, naming the session after ida's grant.
    let by_hand = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(&stack.aws)
            .endpoint_url(&stack.aws_endpoint)
            .build(),
    )
    .assume_role()
    .role_arn("arn:aws:iam::333333333333:role/jit/prod-logs-ro")
    .role_session_name(format!("mallory@{id}"))
    .source_identity("mallory")
    .send()
    .await
    .unwrap();
    let k = by_hand.credentials.unwrap();
    let stolen = Credentials {
        version: 1,
        access_key_id: k.access_key_id,
        secret_access_key: k.secret_access_key,
        session_token: k.session_token,
        expiration: String::new(),
    };
    let session = jit_stack::demo::session_config(stack, &stolen);
    aws_sdk_dynamodb::Client::new(&session)
        .list_tables()
        .send()
        .await
        .unwrap();

    // Kept as unattributed, with why, under the day; never on ida's grant.
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.aws), jit_stack::TABLE);
    let day = super::now().utc_day();
    let mut found = None;
    for _ in 0..120 {
        let page = store
            .unattributed_on(&day, &PageRequest::first(100))
            .await
            .unwrap();
        found = page
            .items
            .into_iter()
            .find(|e| e.session_name == format!("mallory@{id}"));
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let stray = found.expect("the by-hand session's call is kept as unattributed");
    assert_eq!(stray.activity.action, "ListTables");
    assert!(stray.why.contains("session name"), "{}", stray.why);
    let page = api
        .as_user(&ida)
        .request_activity(&id, 100, None)
        .await
        .unwrap();
    assert!(page.items.is_empty(), "{page:?}");

    // An event put on the bus by someone other than AWS (a custom source) claiming a call of
    // ida's real session: the activity function refuses it and keeps nothing.
    let mut forged = jit_stack::trail::api_call_event(
        &jit_stack::trail::Session::of_grant(
            "arn:aws:iam::333333333333:role/jit/prod-logs-ro",
            "ida-activity",
            &id,
        )
        .unwrap(),
        &jit_stack::trail::RecordedCall {
            service: "s3".into(),
            operation: "GetObject".into(),
            region: "us-east-1".into(),
            access_key: "ASIAFORGED".into(),
            error_code: None,
            resources: vec![],
            user_agent: None,
        },
        &super::now().to_rfc3339(),
    );
    forged["source"] = serde_json::json!("custom.forger");
    let answer = stack
        .function("activity")
        .unwrap()
        .invoke(forged)
        .await
        .unwrap();
    assert_eq!(answer["outcome"], "refused", "{answer}");
    let page = api
        .as_user(&ida)
        .request_activity(&id, 100, None)
        .await
        .unwrap();
    assert!(page.items.is_empty(), "{page:?}");
}

/// Covering a grant's activity, on the shared stack (sweeps each minute; a checkpoint once a
/// grant has been active two minutes, the record 40 s after its end, the recheck 120 s after):
/// about five minutes of waiting, on a thread of its own.
pub(super) static COVERAGE: super::LongScenario =
    super::LongScenario::new(|| Box::pin(coverage_scenario()));

#[tokio::test]
async fn a_grants_activity_is_covered_while_active_after_its_end_and_for_late_events() {
    COVERAGE.join().await;
}

/// The activity counts signed by grant `id`'s covering records, once `done` holds of them
/// (within 240 s), with the trail that holds them.
async fn covered_until(
    api: &Api,
    id: &str,
    token: &str,
    done: impl Fn(&[String]) -> bool,
) -> (Vec<String>, jit_api::GrantTrail) {
    use jit_core::domain::audit::AuditAction;
    let mut last = Vec::new();
    for _ in 0..120 {
        let trail = api.as_user(token).request_trail(id).await.unwrap();
        let counts: Vec<String> = trail
            .records
            .iter()
            .filter(|r| r.record.action == AuditAction::ActivityCovered)
            .map(|r| r.record.detail["activity_count"].clone())
            .collect();
        if done(&counts) {
            return (counts, trail);
        }
        last = counts;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    panic!("the covering records of {id} never got there: {last:?}");
}

/// A call made with grant `id`'s session (of `requester`) at `at`, delivered by EventBridge
/// only now (CloudTrail's delay), straight to the activity function; what it answered.
async fn delivered_late(stack: &jit_stack::Stack, event: &serde_json::Value) -> serde_json::Value {
    stack
        .function("activity")
        .unwrap()
        .invoke(event.clone())
        .await
        .unwrap()
}

async fn coverage_scenario() {
    use jit_core::domain::audit::AuditAction;
    use jit_core::store::{activity_shard, activity_sort_key};
    use jit_core::trust::{CoverageBreak, KeyRing, check_chain, check_coverage};

    let stack = shared().unwrap();
    let (api, jo, id, credentials) = granted(stack, "jo-activity").await;
    let dynamodb =
        aws_sdk_dynamodb::Client::new(&jit_stack::demo::session_config(stack, &credentials));
    for _ in 0..2 {
        dynamodb.list_tables().send().await.unwrap();
    }
    activity_until(&api, &id, &jo, |p| p.items.len() == 2).await;

    // While the grant is active, a checkpoint signs what it did so far.
    let (_, trail) = covered_until(&api, &id, &jo, |c| c == ["2"]).await;
    let checkpoint = trail
        .records
        .iter()
        .find(|r| r.record.action == AuditAction::ActivityCovered)
        .unwrap();
    assert_eq!(checkpoint.record.actor, Actor::Service(Service::Sweeper));
    assert_eq!(
        super::state_of(&api, &id, &jo).await.state,
        GrantState::Active
    );
    let records: Vec<_> = trail.records.iter().map(|r| r.record.clone()).collect();
    let grant_id = jit_core::domain::GrantId::parse(&id).unwrap();
    check_chain(&grant_id, &records, &KeyRing::new(trail.keys.clone())).unwrap();
    let coverage = check_coverage(&records, &events_of(&api, &id, &jo).await).unwrap();
    assert_eq!((coverage.covered, coverage.not_yet_covered.len()), (2, 0));

    let r = super::revoke(&api, &id, &jo).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // A call made just before the revoke reaches the broker only now, and twice (EventBridge
    // delivers at least once): it is kept once, not yet covered, and the record signed a
    // settling window after the end covers it.
    let session = jit_stack::trail::Session::of_grant(
        "arn:aws:iam::333333333333:role/jit/prod-logs-ro",
        "jo-activity",
        &id,
    )
    .unwrap();
    let late_call = |operation: &str| {
        jit_stack::trail::api_call_event(
            &session,
            &jit_stack::trail::RecordedCall {
                service: "dynamodb".into(),
                operation: operation.into(),
                region: "us-east-1".into(),
                access_key: credentials.access_key_id.clone(),
                error_code: None,
                resources: vec![],
                user_agent: None,
            },
            &super::now().plus_secs(-5).to_rfc3339(),
        )
    };
    let late = late_call("DescribeLimits");
    for recorded in ["stored", "already-stored"] {
        let answer = delivered_late(stack, &late).await;
        assert_eq!(
            (&answer["outcome"], &answer["recorded"]),
            (&serde_json::json!("attached"), &serde_json::json!(recorded)),
            "{answer}"
        );
    }
    let events = events_of(&api, &id, &jo).await;
    assert_eq!(events.len(), 3);
    let (_, trail) = covered_until(&api, &id, &jo, |c| c == ["2", "3"]).await;

    // One delivered after that record waits for the recheck's addendum; meanwhile a check
    // says it is not yet covered, and breaks nothing.
    let later = late_call("DescribeEndpoints");
    delivered_late(stack, &later).await;
    let records: Vec<_> = trail.records.iter().map(|r| r.record.clone()).collect();
    let coverage = check_coverage(&records, &events_of(&api, &id, &jo).await).unwrap();
    assert_eq!(
        coverage.not_yet_covered,
        [later["detail"]["eventID"].as_str().unwrap()]
    );
    let (_, trail) = covered_until(&api, &id, &jo, |c| c == ["2", "3", "4"]).await;
    let records: Vec<_> = trail.records.iter().map(|r| r.record.clone()).collect();
    check_chain(&grant_id, &records, &KeyRing::new(trail.keys.clone())).unwrap();
    let events = events_of(&api, &id, &jo).await;
    let coverage = check_coverage(&records, &events).unwrap();
    assert_eq!((coverage.covered, coverage.not_yet_covered.len()), (4, 0));

    // An auditor's export carrying the grant's activity checks it against the record; one
    // without it says the grant's activity went unchecked.
    let sue = stack.token("sue-activity", &["security"]);
    let mut export = super::exported(&api, &sue).await;
    let pinned = stack.key_ring().await.unwrap();
    let without = jit_core::trust::verify_export(&export, Some(&pinned), super::now()).unwrap();
    assert!(without.activity_unchecked >= 1, "{without:?}");
    export.activity.insert(grant_id.clone(), events.clone());
    let with = jit_core::trust::verify_export(&export, Some(&pinned), super::now()).unwrap();
    assert_eq!(with.activity_unchecked, without.activity_unchecked - 1);
    assert!(with.activity_covered >= 4, "{with:?}");

    // Someone with write access to the table deletes one event: the signed record catches it.
    let gone = &events[0];
    aws_sdk_dynamodb::Client::new(&stack.aws)
        .delete_item()
        .table_name(jit_stack::TABLE)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!(
                "ACTIVITY#{id}#{}",
                activity_shard(&gone.event_id)
            )),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(activity_sort_key(gone)),
        )
        .send()
        .await
        .unwrap();
    let left = events_of(&api, &id, &jo).await;
    assert_eq!(left.len(), 3);
    match check_coverage(&records, &left) {
        Err(CoverageBreak::Mismatch {
            signed_count: 2,
            found_count: 1,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    export.activity.insert(grant_id.clone(), left);
    match jit_core::trust::verify_export(&export, Some(&pinned), super::now()) {
        Err(jit_core::trust::ExportBreak::Activity { grant_id: g, .. }) => assert_eq!(g, grant_id),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_flood_of_events_on_a_grant_does_not_hold_up_its_revocation() {
    use futures::StreamExt;
    /// More events than the activity function's instances store in the time a revoke takes.
    const FLOOD: u64 = 600;

    let stack = shared().unwrap();
    let (api, kim, id, credentials) = granted(stack, "kim-activity").await;
    let session = jit_stack::trail::Session::of_grant(
        "arn:aws:iam::333333333333:role/jit/prod-logs-ro",
        "kim-activity",
        &id,
    )
    .unwrap();
    let at = super::now().to_rfc3339();
    let events: Vec<_> = (0..FLOOD)
        .map(|_| {
            jit_stack::trail::api_call_event(
                &session,
                &jit_stack::trail::RecordedCall {
                    service: "dynamodb".into(),
                    operation: "ListTables".into(),
                    region: "us-east-1".into(),
                    access_key: credentials.access_key_id.clone(),
                    error_code: None,
                    resources: vec![],
                    user_agent: None,
                },
                &at,
            )
        })
        .collect();
    let activity = stack.function("activity").unwrap();
    // Sixteen deliveries at a time, as EventBridge would send a busy session's calls.
    let flood = futures::stream::iter(events)
        .map(|event| activity.invoke(event))
        .buffer_unordered(16)
        .collect::<Vec<_>>();
    // Once the flood is under way, the requester revokes the grant.
    let revoking = async {
        activity_until(&api, &id, &kim, |p| p.stored > 0).await;
        let r = super::revoke(&api, &id, &kim).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let state = super::state_of(&api, &id, &kim).await.state;
        let page = api
            .as_user(&kim)
            .request_activity(&id, 1, None)
            .await
            .unwrap();
        (state, page.stored)
    };
    let (answers, (state, stored_by_then)) = tokio::join!(flood, revoking);
    assert_eq!(state, GrantState::Revoked);
    assert!(
        stored_by_then < FLOOD,
        "the revocation was done only after all {FLOOD} events were stored"
    );
    // Every event of the flood was kept (each once), after the revocation as before it.
    for answer in answers {
        let answer = answer.unwrap();
        assert_eq!(answer["outcome"], "attached", "{answer}");
    }
    let page = api
        .as_user(&kim)
        .request_activity(&id, 1, None)
        .await
        .unwrap();
    assert_eq!(page.stored, FLOOD);
}
