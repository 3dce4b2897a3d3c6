//! The activity function over DynamoDB on the emulator: what it keeps, refuses and reports of
//! each event EventBridge delivers, and that a revocation it could not hand over fails the
//! event so it is delivered again. (The hand-over that reaches the sweeper is the end-to-end
//! suite's, through the real binaries.)
// Tests may unwrap and index: a panic is how a test fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use jit_activity::{ActivityError, ActivityFunction, Handled, LambdaHandover};
use jit_core::clock::{ManualClock, Timestamp};
use jit_core::domain::{Actor, Command, Grant, SessionKind};
use jit_core::store::{ActivityStore, DynamoStore, GrantStore, PageRequest};
use jit_test_support::{auto_approve, by_approver, create, request, signed_table};
use serde_json::{Value, json};

const T0: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);
const ACCOUNT: &str = "333333333333";
const ROLE: &str = "arn:aws:iam::333333333333:role/jit/prod-logs-ro";

struct Harness {
    function: ActivityFunction<DynamoStore, LambdaHandover>,
    store: DynamoStore,
    grant: Grant,
    _table: jit_local::TestTable,
}

/// An active grant of alice's on `prod-logs-ro` with a session issued; the function on the
/// same table, handing revocations to a sweeper that cannot be reached (nothing listens on
/// port 9 of loopback).
async fn harness(label: &str) -> Harness {
    let fixture = signed_table(label).await;
    let rules = fixture.rules.clone();
    let asked = request(&rules, "alice", &["sre"], "prod-logs-ro", "1h");
    let g = create(&fixture.store, asked, T0).await;
    for (command, actor, at) in [
        (auto_approve(), by_approver(), 1),
        (
            Command::IssueSession {
                kind: SessionKind::Cli,
                expires_at: T0.plus_secs(3600),
            },
            Actor::User(g.requester.clone()),
            2,
        ),
    ] {
        let current = fixture.store.get(&g.id).await.unwrap().unwrap();
        let change = current.apply(command, &actor, T0.plus_secs(at)).unwrap();
        fixture.store.commit(&change).await.unwrap();
    }
    let grant = fixture.store.get(&g.id).await.unwrap().unwrap();
    let store = DynamoStore::new(fixture.table.client.clone(), &fixture.table.name);
    let aws = jit_local::Emulator::shared().unwrap().sdk_config().await;
    let lambda = aws_sdk_lambda::Client::from_conf(
        aws_sdk_lambda::config::Builder::from(&aws)
            .endpoint_url("http://127.0.0.1:9")
            .build(),
    );
    Harness {
        function: ActivityFunction {
            store: store.clone(),
            rules,
            handover: LambdaHandover::new(lambda, "SweeperFunction"),
            clock: Arc::new(ManualClock::at(T0.plus_secs(300))),
        },
        store,
        grant,
        _table: fixture.table,
    }
}

/// `action` of `service` made with `grant`'s own session, as EventBridge delivers CloudTrail's
/// record (the documented `AWS API Call via CloudTrail` shape), under `event_id`.
fn call(grant: &Grant, event_id: &str, service: &str, action: &str, read_only: bool) -> Value {
    let session = jit_core::naming::role_session_name(&grant.requester, &grant.id);
    json!({
        "version": "0",
        "id": format!("delivery-{event_id}"),
        "detail-type": "AWS API Call via CloudTrail",
        "source": format!("aws.{}", service.trim_end_matches(".amazonaws.com")),
        "account": ACCOUNT,
        "time": "2027-01-15T08:05:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": format!("AROAEXAMPLEID:{session}"),
                "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/prod-logs-ro/{session}"),
                "accountId": ACCOUNT,
                "accessKeyId": "ASIAEXAMPLE",
                "sessionContext": {
                    "sessionIssuer": {"type": "Role", "arn": ROLE, "accountId": ACCOUNT},
                    "sourceIdentity": jit_core::naming::source_identity(&grant.requester),
                }
            },
            "eventTime": "2027-01-15T08:04:58Z",
            "eventSource": service,
            "eventName": action,
            "awsRegion": "eu-west-1",
            "sourceIPAddress": "203.0.113.7",
            "userAgent": "aws-cli/2.17.0",
            "readOnly": read_only,
            "eventID": event_id,
            "eventType": "AwsApiCall",
            "recipientAccountId": ACCOUNT
        }
    })
}

async fn kept(h: &Harness) -> Vec<String> {
    h.store
        .activity_of_grant(&h.grant.id, &PageRequest::first(50))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|a| a.event_id)
        .collect()
}

#[tokio::test]
async fn events_are_kept_once_and_judged_and_nothing_else_blocks_them() {
    let h = harness("activity-kept").await;
    let g = &h.grant;

    // What is not a genuine CloudTrail event of a /jit/ role is refused, and the invocation
    // still succeeds: the events after it are not held up.
    let mut forged = call(g, "forged-1", "s3.amazonaws.com", "GetObject", true);
    forged["source"] = json!("custom.forger");
    let mut not_jit = call(g, "other-1", "s3.amazonaws.com", "GetObject", true);
    not_jit["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] =
        json!("arn:aws:iam::333333333333:role/ops/admin");
    for (case, event) in [
        ("not an event", json!({"hello": "world"})),
        (
            "another detail type",
            json!({"detail-type": "Scheduled Event", "source": "aws.events"}),
        ),
        ("forged", forged),
        ("not a /jit/ role", not_jit),
    ] {
        let handled = h.function.handle(event).await.unwrap();
        assert_eq!(handled.outcome, "refused", "{case}: {handled:?}");
        assert!(handled.why.is_some(), "{case}");
    }

    // A read: kept, no guardrail; delivered again, kept once.
    let read = call(g, "read-1", "logs.amazonaws.com", "FilterLogEvents", true);
    let first = h.function.handle(read.clone()).await.unwrap();
    assert_eq!(
        first,
        Handled {
            outcome: "attached",
            grant: Some(g.id.to_string()),
            recorded: Some("stored"),
            why: None,
            alerts: vec![],
            revokes: vec![],
        }
    );
    let again = h.function.handle(read).await.unwrap();
    assert_eq!(again.recorded, Some("already-stored"));

    // A write under a read-only target: kept, and the example alert fires.
    let write = call(g, "write-1", "logs.amazonaws.com", "DeleteLogGroup", false);
    let handled = h.function.handle(write).await.unwrap();
    assert_eq!(handled.alerts, ["alert-on-write-under-read-only"]);
    assert!(handled.revokes.is_empty());

    // A session the broker never issued for the grant: kept as unattributed, not the grant's.
    let mut by_hand = call(g, "hand-1", "logs.amazonaws.com", "FilterLogEvents", true);
    by_hand["detail"]["userIdentity"]["sessionContext"]["sourceIdentity"] = json!("mallory");
    let handled = h.function.handle(by_hand).await.unwrap();
    assert_eq!(handled.outcome, "unattributed");
    assert!(handled.why.unwrap().contains("source identity"));

    assert_eq!(kept(&h).await, ["read-1", "write-1"]);
}

#[tokio::test]
async fn a_revocation_the_sweeper_did_not_make_fails_the_event_which_stays_kept() {
    let h = harness("activity-handover").await;
    let destroy = call(&h.grant, "iam-1", "iam.amazonaws.com", "DeleteRole", false);
    let failed = h.function.handle(destroy.clone()).await.unwrap_err();
    match &failed {
        ActivityError::Handover {
            guardrail, grant, ..
        } => {
            assert_eq!(guardrail, "revoke-on-iam-or-key-destruction");
            assert_eq!(grant, h.grant.id.as_str());
        }
        other => panic!("{other:?}"),
    }
    let diagnostic = lambda_runtime::Diagnostic::from(failed);
    assert_eq!(diagnostic.error_type, "GuardrailHandoverFailed");
    // The event is kept; delivered again, it is judged again and handed over again.
    assert_eq!(kept(&h).await, ["iam-1"]);
    assert!(matches!(
        h.function.handle(destroy).await,
        Err(ActivityError::Handover { .. })
    ));
    assert_eq!(kept(&h).await, ["iam-1"]);
}
