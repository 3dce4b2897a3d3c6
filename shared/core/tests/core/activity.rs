//! Reading CloudTrail's events as EventBridge delivers them, and attaching each to the grant
//! whose session made it: genuine envelopes only, and only sessions the issuer named for that
//! grant. The events are written the way CloudTrail documents its records, not from what the
//! code emits.

use crate::support::*;
use jit_core::activity::{ActivityKind, Refused, TrailEvent, Unattributed};
use jit_core::domain::{Grant, GrantId, RoleArn};
use serde_json::{Value, json};

const ACCOUNT: &str = "222222222222";
const ROLE: &str = "arn:aws:iam::222222222222:role/jit/prod-logs-ro";

/// A grant for `alice` on a `/jit/` role, active, with one session issued when `issued`.
fn grant(issued: bool) -> Grant {
    let mut req = request("alice@example.com", "prod-logs-ro", 3600);
    req.binding.role_arn = RoleArn::parse(ROLE).unwrap();
    let g = Grant::open(GrantId::generate(T0), req, T0).grant().clone();
    let g = g
        .apply(auto_approve(), &approver(), T0.plus_secs(1))
        .unwrap()
        .grant()
        .clone();
    if !issued {
        return g;
    }
    g.apply(
        issue(T0.plus_secs(3600)),
        &as_user("alice@example.com"),
        T0.plus_secs(2),
    )
    .unwrap()
    .grant()
    .clone()
}

/// An API call made with a session named `session` carrying `source_identity`, as EventBridge
/// delivers CloudTrail's record (the documented `AWS API Call via CloudTrail` shape).
fn api_call(session: &str, source_identity: Option<&str>) -> Value {
    let mut context = json!({
        "sessionIssuer": {
            "type": "Role",
            "principalId": "AROAEXAMPLEID",
            "arn": ROLE,
            "accountId": ACCOUNT,
            "userName": "prod-logs-ro"
        },
        "attributes": {"creationDate": "2027-01-15T08:00:02Z", "mfaAuthenticated": "false"}
    });
    if let Some(source) = source_identity {
        context["sourceIdentity"] = json!(source);
    }
    json!({
        "version": "0",
        "id": "6f2b6c1e-0000-4000-8000-000000000001",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.s3",
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
                "sessionContext": context
            },
            "eventTime": "2027-01-15T08:04:58Z",
            "eventSource": "s3.amazonaws.com",
            "eventName": "GetObject",
            "awsRegion": "eu-west-1",
            "sourceIPAddress": "203.0.113.7",
            "userAgent": "aws-cli/2.17.0 Python/3.11",
            "requestParameters": {"bucketName": "prod-logs", "key": "app/2027-01-15.log"},
            "responseElements": null,
            "readOnly": true,
            "resources": [
                {"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::prod-logs/app/2027-01-15.log"},
                {"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::prod-logs"}
            ],
            "eventID": "3b5d2f7e-1c4a-4e8b-9f00-0123456789ab",
            "eventType": "AwsApiCall",
            "managementEvent": false,
            "recipientAccountId": ACCOUNT,
            "eventCategory": "Data"
        }
    })
}

/// A change to an event, named for the case it makes.
type Edit = Box<dyn Fn(&mut Value)>;

/// What reading `genuine` changed by each edit refuses, by case.
fn refused_after(
    genuine: &Value,
    edits: Vec<(&'static str, Edit)>,
) -> Vec<(&'static str, Refused)> {
    edits
        .into_iter()
        .map(|(case, edit)| {
            let mut event = genuine.clone();
            edit(&mut event);
            (case, read(&event).unwrap().read().unwrap_err())
        })
        .collect()
}

fn read(event: &Value) -> Result<TrailEvent, serde_json::Error> {
    serde_json::from_value(event.clone())
}

fn own_session(g: &Grant) -> (String, String) {
    (
        jit_core::naming::role_session_name(&g.requester, &g.id),
        jit_core::naming::source_identity(&g.requester),
    )
}

#[test]
fn a_call_made_with_a_grants_session_is_attached_to_that_grant() {
    let g = grant(true);
    let (name, source) = own_session(&g);
    assert_eq!(name, format!("alice@example.com@{}", g.id));
    let event = read(&api_call(&name, Some(&source))).unwrap();
    let (activity, session) = event.read().unwrap();
    assert_eq!(session.attribute(Some(&g)), Ok(g.id.clone()));
    assert_eq!(activity.event_id, "3b5d2f7e-1c4a-4e8b-9f00-0123456789ab");
    assert_eq!(activity.kind, ActivityKind::ApiCall);
    assert_eq!(activity.time.to_rfc3339(), "2027-01-15T08:04:58Z");
    assert_eq!(activity.account, ACCOUNT);
    assert_eq!(activity.region, "eu-west-1");
    assert_eq!(activity.service, "s3.amazonaws.com");
    assert_eq!(activity.action, "GetObject");
    assert_eq!(activity.read_only, Some(true));
    assert_eq!(activity.error_code, None);
    assert_eq!(
        activity.resources,
        [
            "arn:aws:s3:::prod-logs/app/2027-01-15.log",
            "arn:aws:s3:::prod-logs"
        ]
    );
    assert_eq!(activity.source_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(
        activity.user_agent.as_deref(),
        Some("aws-cli/2.17.0 Python/3.11")
    );
}

#[test]
fn a_denied_call_keeps_its_error_code() {
    let g = grant(true);
    let (name, source) = own_session(&g);
    let mut event = api_call(&name, Some(&source));
    event["detail"]["errorCode"] = json!("AccessDenied");
    event["detail"]["eventName"] = json!("DeleteBucket");
    event["detail"]["readOnly"] = json!(false);
    let (activity, _) = read(&event).unwrap().read().unwrap();
    assert_eq!(activity.error_code.as_deref(), Some("AccessDenied"));
    assert_eq!(activity.read_only, Some(false));
}

#[test]
fn envelopes_aws_did_not_put_are_refused_as_forged() {
    let g = grant(true);
    let (name, source) = own_session(&g);
    let genuine = api_call(&name, Some(&source));
    let cases: Vec<(&'static str, Edit)> = vec![
        (
            "a source PutEvents allows",
            Box::new(|e| e["source"] = json!("jit.activity")),
        ),
        (
            "a source that only looks like AWS",
            Box::new(|e| e["source"] = json!("awsx.s3")),
        ),
        (
            "another account's envelope",
            Box::new(|e| e["account"] = json!("333333333333")),
        ),
        (
            "a caller of another account",
            Box::new(|e| e["detail"]["userIdentity"]["accountId"] = json!("333333333333")),
        ),
        (
            "a session issuer of another account",
            Box::new(|e| {
                e["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["accountId"] =
                    json!("333333333333")
            }),
        ),
        (
            "a role of another account",
            Box::new(|e| {
                e["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] =
                    json!("arn:aws:iam::333333333333:role/jit/prod-logs-ro")
            }),
        ),
    ];
    for (case, refused) in refused_after(&genuine, cases) {
        assert!(
            matches!(refused, Refused::Forged { .. }),
            "{case}: {refused:?}"
        );
    }
}

#[test]
fn events_of_other_shapes_or_identities_are_refused() {
    let g = grant(true);
    let (name, source) = own_session(&g);
    let genuine = api_call(&name, Some(&source));

    // Other detail types are not an event the function serves.
    for detail_type in ["Scheduled Event", "AWS Service Event via CloudTrail", ""] {
        let mut event = genuine.clone();
        event["detail-type"] = json!(detail_type);
        assert!(read(&event).is_err(), "{detail_type}");
    }
    let mut event = genuine.clone();
    event["detail"].as_object_mut().unwrap().remove("eventID");
    assert!(read(&event).is_err(), "no eventID");

    // Not a session of a /jit/ role.
    let mut user = genuine.clone();
    user["detail"]["userIdentity"] = json!({
        "type": "IAMUser", "arn": "arn:aws:iam::222222222222:user/alice",
        "accountId": ACCOUNT, "userName": "alice"
    });
    let mut other_path = genuine.clone();
    other_path["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] =
        json!("arn:aws:iam::222222222222:role/ops/prod-logs-ro");
    for event in [user, other_path] {
        let refused = read(&event).unwrap().read().unwrap_err();
        assert!(matches!(refused, Refused::NotJitRole { .. }), "{refused:?}");
    }

    // Malformed fields.
    let edits: Vec<(&'static str, Edit)> = vec![
        (
            "event time",
            Box::new(|e| e["detail"]["eventTime"] = json!("yesterday")),
        ),
        (
            "event id",
            Box::new(|e| e["detail"]["eventID"] = json!(" ")),
        ),
        (
            "an assumed role that is not the issuer's",
            Box::new(|e| {
                e["detail"]["userIdentity"]["arn"] =
                    json!("arn:aws:sts::222222222222:assumed-role/other-role/alice@x")
            }),
        ),
    ];
    for (case, refused) in refused_after(&genuine, edits) {
        assert!(
            matches!(refused, Refused::Malformed { .. }),
            "{case}: {refused:?}"
        );
    }
}

#[test]
fn sessions_the_broker_did_not_issue_for_the_grant_are_unattributed() {
    let g = grant(true);
    let (name, source) = own_session(&g);
    let session =
        |name: &str, source: Option<&str>| read(&api_call(name, source)).unwrap().read().unwrap().1;

    // A name that claims no grant, and one that claims a grant the broker does not have.
    let err = session("alice-debugging", Some(&source))
        .attribute(None)
        .unwrap_err();
    assert!(matches!(err, Unattributed::NoGrant { .. }), "{err:?}");
    let stranger = GrantId::generate(T0);
    let err = session(&format!("alice@{stranger}"), Some(&source))
        .attribute(None)
        .unwrap_err();
    assert_eq!(
        err,
        Unattributed::UnknownGrant {
            grant: stranger.clone()
        }
    );
    // A lookup that found another grant than the one claimed attaches nothing.
    let err = session(&format!("alice@{stranger}"), Some(&source))
        .attribute(Some(&g))
        .unwrap_err();
    assert_eq!(err, Unattributed::UnknownGrant { grant: stranger });

    // The grant's id, but not the session the issuer would have made.
    let mallory = format!("mallory@{}", g.id);
    let err = session(&mallory, Some(&source))
        .attribute(Some(&g))
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Unattributed::Mismatch {
                field: "session name",
                ..
            }
        ),
        "{err:?}"
    );
    for other_source in [None, Some("mallory@example.com")] {
        let err = session(&name, other_source)
            .attribute(Some(&g))
            .unwrap_err();
        assert!(
            matches!(
                &err,
                Unattributed::Mismatch {
                    field: "source identity",
                    ..
                }
            ),
            "{err:?}"
        );
    }
    // The grant recorded another role.
    let mut elsewhere = g.clone();
    elsewhere.role_arn = RoleArn::parse("arn:aws:iam::222222222222:role/jit/prod-admin").unwrap();
    let err = session(&name, Some(&source))
        .attribute(Some(&elsewhere))
        .unwrap_err();
    assert!(
        matches!(&err, Unattributed::Mismatch { field: "role", .. }),
        "{err:?}"
    );

    // Everything matches, but the broker never handed out a session for it.
    let unissued = grant(false);
    let (name, source) = own_session(&unissued);
    let err = session(&name, Some(&source))
        .attribute(Some(&unissued))
        .unwrap_err();
    assert_eq!(
        err,
        Unattributed::NeverIssued {
            grant: unissued.id.clone()
        }
    );
}

#[test]
fn console_sign_ins_keep_their_outcome() {
    let g = grant(true);
    let (name, source) = own_session(&g);
    let sign_in = |outcome: &str, error: Option<&str>| {
        let mut event = api_call(&name, Some(&source));
        event["detail-type"] = json!("AWS Console Sign In via CloudTrail");
        event["source"] = json!("aws.signin");
        event["region"] = json!("us-east-1");
        let detail = &mut event["detail"];
        detail["eventSource"] = json!("signin.amazonaws.com");
        detail["eventName"] = json!("ConsoleLogin");
        detail["awsRegion"] = json!("us-east-1");
        detail["eventType"] = json!("AwsConsoleSignIn");
        detail["responseElements"] = json!({"ConsoleLogin": outcome});
        detail.as_object_mut().unwrap().remove("readOnly");
        detail.as_object_mut().unwrap().remove("resources");
        if let Some(error) = error {
            detail["errorMessage"] = json!(error);
            detail["errorCode"] = json!(error);
        }
        read(&event).unwrap()
    };
    let ok = sign_in("Success", None);
    assert!(matches!(ok, TrailEvent::ConsoleSignIn(_)));
    let (activity, session) = ok.read().unwrap();
    assert_eq!(activity.kind, ActivityKind::ConsoleSignIn);
    assert_eq!(activity.action, "ConsoleLogin");
    assert_eq!(activity.error_code, None);
    assert!(activity.resources.is_empty());
    assert_eq!(session.attribute(Some(&g)), Ok(g.id.clone()));
    let (failed, _) = sign_in("Failure", Some("Failed authentication"))
        .read()
        .unwrap();
    assert_eq!(failed.error_code.as_deref(), Some("Failed authentication"));
}

#[test]
fn what_is_kept_of_an_event_is_bounded() {
    let g = grant(true);
    let (name, source) = own_session(&g);
    let mut event = api_call(&name, Some(&source));
    event["detail"]["userAgent"] = json!(format!("agent\u{7}{}", "x".repeat(5000)));
    event["detail"]["resources"] = json!(
        (0..40)
            .map(|i| json!({"ARN": format!("arn:aws:s3:::bucket-{i}")}))
            .collect::<Vec<_>>()
    );
    let (activity, _) = read(&event).unwrap().read().unwrap();
    let agent = activity.user_agent.unwrap();
    assert_eq!(agent.chars().count(), jit_core::activity::MAX_FIELD_CHARS);
    assert!(agent.starts_with("agentxxx"), "control characters dropped");
    assert_eq!(activity.resources.len(), jit_core::activity::MAX_RESOURCES);
    assert_eq!(
        activity.resources_dropped as usize,
        40 - jit_core::activity::MAX_RESOURCES
    );
}

/// A store holding one active grant of alice's with a session issued, and the example rules.
async fn stored_grant() -> (jit_core::store::MemoryStore, Grant, jit_core::policy::Rules) {
    use jit_core::store::{GrantStore, MemoryStore};
    let store = MemoryStore::new();
    let mut req = request("alice@example.com", "prod-logs-ro", 3600);
    req.binding.role_arn = RoleArn::parse(ROLE).unwrap();
    let created = Grant::open(GrantId::generate(T0), req, T0);
    store.create(&created, None).await.unwrap();
    let g = created.grant().clone();
    for (command, actor, at) in [
        (auto_approve(), approver(), 1),
        (issue(T0.plus_secs(3600)), as_user("alice@example.com"), 2),
    ] {
        let current = store.get(&g.id).await.unwrap().unwrap();
        let change = current.apply(command, &actor, T0.plus_secs(at)).unwrap();
        store.commit(&change).await.unwrap();
    }
    let g = store.get(&g.id).await.unwrap().unwrap();
    let rules =
        jit_core::policy::Rules::load_dir(&jit_local::workspace_root().join("infra/policies"))
            .unwrap();
    (store, g, rules)
}

#[tokio::test]
async fn recording_keeps_each_event_where_it_belongs_and_nothing_of_a_forgery() {
    use jit_core::cases::{ActivityOutcome as Outcome, record_activity};
    use jit_core::policy::Fired;
    use jit_core::store::{ActivityStore, PageRequest, Recorded};

    let (store, g, rules) = stored_grant().await;
    let (store, rules) = (&store, &rules);
    let record = |event: &TrailEvent| {
        let event = event.clone();
        async move { record_activity(store, rules, &event, T0.plus_secs(300)).await }
    };
    let (name, source) = own_session(&g);

    let event = read(&api_call(&name, Some(&source))).unwrap();
    assert_eq!(
        record(&event).await.unwrap(),
        Outcome::Attached {
            grant: g.id.clone(),
            recorded: Recorded::Stored,
            fired: Fired::default(),
        }
    );
    assert_eq!(
        record(&event).await.unwrap(),
        Outcome::Attached {
            grant: g.id.clone(),
            recorded: Recorded::AlreadyStored,
            fired: Fired::default(),
        }
    );

    // Someone assumed the role by hand, naming their session after the grant.
    let mut by_hand = api_call(&format!("mallory@{}", g.id), Some("mallory"));
    by_hand["detail"]["eventID"] = json!("by-hand-1");
    let outcome = record(&read(&by_hand).unwrap()).await.unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::Unattributed {
                recorded: Recorded::Stored,
                ..
            }
        ),
        "{outcome:?}"
    );

    let mut forged = api_call(&name, Some(&source));
    forged["source"] = json!("jit.forged");
    forged["detail"]["eventID"] = json!("forged-1");
    let outcome = record(&read(&forged).unwrap()).await.unwrap();
    assert!(
        matches!(outcome, Outcome::Refused(Refused::Forged { .. })),
        "{outcome:?}"
    );

    // The grant holds its one event; the by-hand call is unattributed; the forgery nowhere.
    let kept = store
        .activity_of_grant(&g.id, &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(kept.items.len(), 1);
    assert_eq!(
        kept.items[0].event_id,
        "3b5d2f7e-1c4a-4e8b-9f00-0123456789ab"
    );
    let day = jit_core::clock::Timestamp::parse_rfc3339("2027-01-15T08:04:58Z")
        .unwrap()
        .utc_day();
    let stray = store
        .unattributed_on(&day, &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(stray.items.len(), 1);
    assert_eq!(stray.items[0].activity.event_id, "by-hand-1");
    assert_eq!(stray.items[0].session_name, format!("mallory@{}", g.id));
    assert!(
        stray.items[0].why.contains("session name"),
        "{}",
        stray.items[0].why
    );
}

/// The hashes and digest below were computed by an independent Python implementation of the
/// encoding the README describes (hashlib, struct.pack(">I", len)), not by this code.
#[test]
fn activity_hashes_and_digests_match_an_independent_implementation() {
    use jit_core::activity::{Activity, activity_digest};
    use jit_core::clock::Timestamp;
    let call = call("ev-1", T0);
    let sign_in = Activity {
        event_id: "ev-0".to_owned(),
        kind: ActivityKind::ConsoleSignIn,
        time: Timestamp::from_unix_seconds(1_800_000_060),
        region: "us-east-1".to_owned(),
        service: "signin.amazonaws.com".to_owned(),
        action: "ConsoleLogin".to_owned(),
        read_only: None,
        error_code: Some("Failed authentication".to_owned()),
        resources: vec![],
        source_ip: None,
        user_agent: None,
        ..call.clone()
    };
    assert_eq!(
        call.hash(),
        "ac741365353b154092c09581e42aacfb9d20a9d26f843414ea22c1a8f90cc841"
    );
    assert_eq!(
        sign_in.hash(),
        "3f880a0095b86cbc4e50c6cb80f3104eb485c9389ccb28de085ffbe33c5e1c56"
    );
    let expected = (
        2,
        "a626de65c9b46384b748b247e4fcf3b3eee8e79ed1eb3454e556a4b22c820814".to_owned(),
    );
    // By time, whatever order the events are read in.
    assert_eq!(activity_digest([&call, &sign_in]), expected);
    assert_eq!(activity_digest([&sign_in, &call]), expected);
    // A deleted or edited event shows.
    assert_ne!(activity_digest([&call]).1, expected.1);
    let mut edited = call.clone();
    edited.error_code = Some("AccessDenied".to_owned());
    assert_ne!(activity_digest([&edited, &sign_in]).1, expected.1);
    // Fields cannot be shifted into their neighbours.
    let mut shifted = call.clone();
    shifted.region = "eu-west-1s".to_owned();
    shifted.service = "3.amazonaws.com".to_owned();
    assert_ne!(shifted.hash(), call.hash());
}

/// The example guardrails that ship in `infra/policies/guardrails.cedar`, each firing on the
/// events it names and on nothing else.
#[test]
fn the_example_guardrails_fire_on_what_they_name() {
    use jit_core::activity::Activity;
    use jit_core::policy::{Fired, Rules};
    let rules = Rules::load_dir(&jit_local::workspace_root().join("infra/policies")).unwrap();
    let g = grant(true);
    let (name, source) = own_session(&g);
    let (read_call, _) = read(&api_call(&name, Some(&source)))
        .unwrap()
        .read()
        .unwrap();
    let at = T0.plus_secs(300);
    let with = |edit: &dyn Fn(&mut Activity)| {
        let mut a = read_call.clone();
        edit(&mut a);
        a
    };
    let fired = |g: &Grant, a: &Activity, denied: u32| rules.guardrails(g, a, denied, at);

    // A read on the read-only target fires nothing.
    assert_eq!(fired(&g, &read_call, 0), Fired::default());

    // Destroying IAM or a KMS key, tried or done, revokes.
    for (service, action, error) in [
        ("iam.amazonaws.com", "DeleteRole", None),
        (
            "iam.amazonaws.com",
            "DetachRolePolicy",
            Some("AccessDenied"),
        ),
        (
            "kms.amazonaws.com",
            "ScheduleKeyDeletion",
            Some("AccessDeniedException"),
        ),
    ] {
        let call = with(&|a| {
            a.service = service.to_owned();
            a.action = action.to_owned();
            a.read_only = Some(false);
            a.error_code = error.map(str::to_owned);
        });
        let f = fired(&g, &call, u32::from(error.is_some()));
        assert_eq!(f.revokes, ["revoke-on-iam-or-key-destruction"], "{action}");
        assert!(f.errors.is_empty(), "{:?}", f.errors);
    }
    // Reading IAM does not.
    let list = with(&|a| {
        a.service = "iam.amazonaws.com".to_owned();
        a.action = "ListRoles".to_owned();
    });
    assert!(fired(&g, &list, 0).revokes.is_empty());

    // Any write under a read-only target alerts (prod-logs-ro's tier is read-only).
    let write = with(&|a| {
        a.action = "PutObject".to_owned();
        a.read_only = Some(false);
        a.error_code = Some("AccessDenied".to_owned());
    });
    assert_eq!(
        fired(&g, &write, 1).alerts,
        ["alert-on-write-under-read-only"]
    );

    // A burst of refused calls alerts; one refused read does not.
    let denied_read = with(&|a| a.error_code = Some("AccessDenied".to_owned()));
    assert!(fired(&g, &denied_read, 1).alerts.is_empty());
    assert_eq!(
        fired(&g, &denied_read, 10).alerts,
        ["alert-on-denied-burst"]
    );

    // A console sign-in alerts only for a break-glass grant.
    let sign_in = with(&|a| {
        a.kind = ActivityKind::ConsoleSignIn;
        a.service = "signin.amazonaws.com".to_owned();
        a.action = "ConsoleLogin".to_owned();
        a.read_only = None;
    });
    assert!(fired(&g, &sign_in, 0).alerts.is_empty());
    let mut glass = g.clone();
    glass.break_glass = true;
    assert_eq!(
        fired(&glass, &sign_in, 0).alerts,
        ["alert-on-break-glass-console-sign-in"]
    );
    // A grant whose target the rules no longer declare fires nothing, and says why.
    let mut gone = g.clone();
    gone.target = jit_core::domain::TargetId::parse("decommissioned").unwrap();
    let f = fired(&gone, &with(&|a| a.action = "DeleteRole".to_owned()), 0);
    assert!(f.alerts.is_empty() && f.revokes.is_empty(), "{f:?}");
    assert!(
        f.errors.iter().any(|e| e.contains("decommissioned")),
        "{f:?}"
    );
}

#[test]
fn a_forbid_silences_a_guardrail_and_guardrails_are_validated_at_load() {
    use jit_core::policy::Rules;
    let dir = jit_local::workspace_root().join("infra/policies");
    let read_file = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap();
    let files = |extra: &str| {
        vec![
            ("access.cedar".to_owned(), read_file("access.cedar")),
            ("guardrails.cedar".to_owned(), read_file("guardrails.cedar")),
            ("extra.cedar".to_owned(), extra.to_owned()),
        ]
    };
    let load = |extra: &str| {
        Rules::from_sources(
            &read_file("schema.cedarschema"),
            files(extra),
            &read_file("targets.json"),
        )
    };
    // A team's own exception: no revoke while the reason names a drill.
    let rules = load(
        r#"@id("drills-are-exempt")
forbid (principal, action == Jit::Action::"GuardrailRevoke", resource)
when { context.reason like "*game day*" };"#,
    )
    .unwrap();
    let mut g = grant(true);
    let (name, source) = own_session(&g);
    let (mut call, _) = read(&api_call(&name, Some(&source)))
        .unwrap()
        .read()
        .unwrap();
    call.service = "iam.amazonaws.com".to_owned();
    call.action = "DeleteRole".to_owned();
    let at = T0.plus_secs(60);
    assert_eq!(rules.guardrails(&g, &call, 0, at).revokes.len(), 1);
    g.reason = jit_core::domain::Reason::parse("game day: practise the IAM restore").unwrap();
    assert!(rules.guardrails(&g, &call, 0, at).revokes.is_empty());

    // A guardrail naming what its context does not have is refused at load, with its line.
    let err = load(
        "\n\npermit (principal, action == Jit::Action::\"GuardrailAlert\", resource)\nwhen { context.duration_secs > 1 };",
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("extra.cedar:4"), "{text}");
    assert!(text.contains("duration_secs"), "{text}");
}

/// An event of `g`'s own session: `service`'s `action` at `at`, refused with `error` if given,
/// under `event_id`.
fn own_call(g: &Grant, event_id: &str, service: &str, action: &str, error: Option<&str>) -> Value {
    let (name, source) = own_session(g);
    let mut event = api_call(&name, Some(&source));
    event["detail"]["eventID"] = json!(event_id);
    event["detail"]["eventSource"] = json!(service);
    event["detail"]["eventName"] = json!(action);
    event["detail"]["readOnly"] = json!(false);
    if let Some(code) = error {
        event["detail"]["errorCode"] = json!(code);
    }
    event
}

#[tokio::test]
async fn refused_calls_are_counted_once_each_and_ten_in_five_minutes_alert() {
    use jit_core::cases::{ActivityOutcome as Outcome, record_activity};
    let (store, g, rules) = stored_grant().await;
    let mut alerts = Vec::new();
    for i in 0..10 {
        let event = own_call(
            &g,
            &format!("denied-{i}"),
            "s3.amazonaws.com",
            "PutObject",
            Some("AccessDenied"),
        );
        let outcome = record_activity(&store, &rules, &read(&event).unwrap(), T0.plus_secs(300))
            .await
            .unwrap();
        let Outcome::Attached { fired, .. } = outcome else {
            panic!("{outcome:?}")
        };
        alerts.push(fired.alerts.contains(&"alert-on-denied-burst".to_owned()));
        // Each is delivered twice; the second delivery is not counted again.
        let again = record_activity(&store, &rules, &read(&event).unwrap(), T0.plus_secs(300))
            .await
            .unwrap();
        let Outcome::Attached { fired, .. } = again else {
            panic!("{again:?}")
        };
        assert_eq!(
            fired.alerts.contains(&"alert-on-denied-burst".to_owned()),
            alerts[i]
        );
    }
    // Nine refusals alert nothing; the tenth does.
    assert_eq!(alerts.iter().filter(|a| **a).count(), 1, "{alerts:?}");
    assert!(alerts[9]);
}

#[tokio::test]
async fn a_revoking_guardrail_is_acted_on_only_as_the_stored_event_is_judged_again() {
    use jit_core::cases::{
        ActivityOutcome as Outcome, Cases, GuardrailRevocation, record_activity,
    };
    use jit_core::domain::{Actor, GrantState, Service};
    use jit_core::store::GrantStore;
    use jit_core::trust::{KeyRing, PublicKeys};

    let (store, g, rules) = stored_grant().await;
    let keys: PublicKeys = KeyRing::new([]).into();
    let cases = Cases::new(&store, &rules, &keys);
    let now = T0.plus_secs(400);
    let time = jit_core::clock::Timestamp::parse_rfc3339("2027-01-15T08:04:58Z").unwrap();

    // A read fires nothing: handed over anyway, the sweeper judges it again and does nothing.
    let read_call = own_call(&g, "read-1", "s3.amazonaws.com", "GetObject", None);
    record_activity(
        &store,
        &rules,
        &read(&read_call).unwrap(),
        T0.plus_secs(300),
    )
    .await
    .unwrap();
    let id = g.id.to_string();
    assert!(matches!(
        cases
            .revoke_for_guardrail(&id, time, "read-1", now)
            .await
            .unwrap(),
        GuardrailRevocation::NotFired
    ));
    // An event the grant never recorded is nothing to act on.
    assert!(matches!(
        cases
            .revoke_for_guardrail(&id, time, "never-recorded", now)
            .await
            .unwrap(),
        GuardrailRevocation::NoSuchEvent
    ));
    assert_eq!(
        store.get(&g.id).await.unwrap().unwrap().state,
        GrantState::Active
    );

    // Deleting a role fires the revoking guardrail; the sweeper's revocation ends the grant.
    let delete = own_call(
        &g,
        "delete-1",
        "iam.amazonaws.com",
        "DeleteRole",
        Some("AccessDenied"),
    );
    let outcome = record_activity(&store, &rules, &read(&delete).unwrap(), T0.plus_secs(300))
        .await
        .unwrap();
    let Outcome::Attached { fired, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(fired.revokes, ["revoke-on-iam-or-key-destruction"]);
    let done = cases
        .revoke_for_guardrail(&id, time, "delete-1", now)
        .await
        .unwrap();
    let GuardrailRevocation::Revoked { change, guardrail } = done else {
        panic!("{done:?}")
    };
    assert_eq!(guardrail, "revoke-on-iam-or-key-destruction");
    assert!(
        change.revocation().is_some(),
        "the role's sessions are to be cut"
    );
    let (revoked, records) = store.evidence(&g.id).await.unwrap().unwrap();
    assert_eq!(revoked.state, GrantState::Revoked);
    let last = records.last().unwrap();
    assert_eq!(last.actor, Actor::Service(Service::Sweeper));
    let reason = last.detail.get("reason").unwrap();
    assert!(
        reason.contains("revoke-on-iam-or-key-destruction")
            && reason.contains("iam.amazonaws.com DeleteRole")
            && reason.contains("delete-1"),
        "{reason}"
    );
    // Handed over again (a retry), it finds the grant ended and does nothing more.
    assert!(matches!(
        cases
            .revoke_for_guardrail(&id, time, "delete-1", now)
            .await
            .unwrap(),
        GuardrailRevocation::NotActive(GrantState::Revoked)
    ));
    assert_eq!(
        store.evidence(&g.id).await.unwrap().unwrap().1.len(),
        records.len()
    );
}

#[tokio::test]
async fn activity_is_covered_by_signed_records_a_late_event_waits_for_the_next_and_tampering_breaks_it()
 {
    use jit_core::cases::{Cases, CoverWhen, record_activity};
    use jit_core::domain::audit::AuditAction;
    use jit_core::store::{ActivityStore, GrantStore, PageRequest};
    use jit_core::trust::{CoverageBreak, KeyRing, PublicKeys, check_coverage};

    let (store, g, rules) = stored_grant().await;
    let keys: PublicKeys = KeyRing::new([]).into();
    let cases = Cases::new(&store, &rules, &keys);
    let stored = |n: i64| T0.plus_secs(n);
    for (id, at) in [("a-1", 300), ("a-2", 300), ("a-3", 310)] {
        let event = own_call(&g, id, "logs.amazonaws.com", "FilterLogEvents", None);
        record_activity(&store, &rules, &read(&event).unwrap(), stored(at))
            .await
            .unwrap();
    }
    let events = || async {
        store
            .activity_of_grant(&g.id, &PageRequest::first(100))
            .await
            .unwrap()
            .items
    };
    let records = || async { store.evidence(&g.id).await.unwrap().unwrap().1 };

    // Nothing covers it yet: every event is not yet covered, and nothing is broken.
    let none = check_coverage(&records().await, &events().await).unwrap();
    assert_eq!((none.records, none.not_yet_covered.len()), (0, 3));

    // Covered at 1,000 s with a 300 s lag: what was stored by 700 s.
    let change = cases
        .cover_activity(&g.id, stored(1000), 300, CoverWhen::Always)
        .await
        .unwrap();
    let record = change.unwrap().audit().clone();
    assert_eq!(record.action, AuditAction::ActivityCovered);
    assert_eq!(
        record.actor,
        jit_core::domain::Actor::Service(jit_core::domain::Service::Sweeper)
    );
    assert_eq!(record.detail["activity_count"], "3");
    // Covering again with nothing new writes nothing.
    assert!(
        cases
            .cover_activity(&g.id, stored(1100), 300, CoverWhen::Always)
            .await
            .unwrap()
            .is_none()
    );

    // A late event (stored at 1,200 s) breaks nothing: it is not yet covered.
    let late = own_call(&g, "a-late", "logs.amazonaws.com", "FilterLogEvents", None);
    record_activity(&store, &rules, &read(&late).unwrap(), stored(1200))
        .await
        .unwrap();
    let held = check_coverage(&records().await, &events().await).unwrap();
    assert_eq!((held.records, held.covered), (1, 3));
    assert_eq!(held.not_yet_covered, ["a-late"]);
    // The next covering record takes it in; the first still holds.
    assert!(
        cases
            .cover_activity(&g.id, stored(2000), 300, CoverWhen::Always)
            .await
            .unwrap()
            .is_some()
    );
    let all = check_coverage(&records().await, &events().await).unwrap();
    assert_eq!((all.records, all.covered), (2, 4));
    assert!(all.not_yet_covered.is_empty());

    // Tampering with what was covered breaks the record that covered it.
    let kept = events().await;
    let deleted: Vec<_> = kept
        .iter()
        .filter(|e| e.event_id != "a-2")
        .cloned()
        .collect();
    let mut edited = kept.clone();
    edited[0].action = "PutObject".to_owned();
    let mut slipped = kept.clone();
    let mut extra = kept[0].clone();
    extra.event_id = "a-0".to_owned();
    slipped.push(extra);
    let mut backdated = kept.clone();
    for e in backdated.iter_mut().filter(|e| e.event_id == "a-late") {
        e.stored_at = Some(stored(300));
    }
    for (case, tampered) in [
        ("deleted", deleted),
        ("edited", edited),
        ("slipped in", slipped),
        ("a late one backdated", backdated),
    ] {
        match check_coverage(&records().await, &tampered) {
            Err(CoverageBreak::Mismatch { seq, .. }) => {
                assert!(seq >= records().await[0].seq, "{case}")
            }
            other => panic!("{case}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_grant_that_was_never_active_has_no_activity_to_cover() {
    use jit_core::cases::{Cases, CoverWhen};
    use jit_core::store::{GrantStore, MemoryStore};
    use jit_core::trust::{KeyRing, PublicKeys};
    let store = MemoryStore::new();
    let mut req = request("alice@example.com", "prod-logs-ro", 3600);
    req.binding.role_arn = RoleArn::parse(ROLE).unwrap();
    let created = Grant::open(GrantId::generate(T0), req, T0);
    store.create(&created, None).await.unwrap();
    let rules =
        jit_core::policy::Rules::load_dir(&jit_local::workspace_root().join("infra/policies"))
            .unwrap();
    let keys: PublicKeys = KeyRing::new([]).into();
    let cases = Cases::new(&store, &rules, &keys);
    let id = created.grant().id.clone();
    assert!(
        cases
            .cover_activity(&id, T0.plus_secs(5000), 300, CoverWhen::Always)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.evidence(&id).await.unwrap().unwrap().1.len(), 1);
}
