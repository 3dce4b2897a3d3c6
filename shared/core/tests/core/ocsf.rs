//! The audit trail as OCSF events: every record kind and every kind of call, validated against
//! the JSON Schema generated from OCSF 1.8.0 itself (`infra/ocsf/generate-schema.py`, committed
//! as `tests/data/ocsf-1.8.0.schema.json`), with the classes and activities the README's table
//! names, and no identity provider subject anywhere in them.

use crate::support::*;
use jit_core::domain::audit::AuditRecord;
use jit_core::domain::{Command, Grant, GrantId, ReviewDecision, UserId};
use jit_core::ocsf::{GrantSubject, activity_event, record_event};
use serde_json::{Value, json};

/// A change to an event, named for the case it makes.
type Edit = Box<dyn Fn(&mut Value)>;

fn schema() -> Value {
    let text = include_str!("../data/ocsf-1.8.0.schema.json");
    serde_json::from_str(text).unwrap()
}

/// The errors of validating `event` against OCSF class `class_uid` (empty when it is valid).
fn invalid(schema: &Value, class_uid: u64, event: &Value) -> Vec<String> {
    let one = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/$defs/class_{class_uid}"),
        "$defs": schema["$defs"],
    });
    let validator = jsonschema::validator_for(&one).unwrap();
    validator
        .iter_errors(event)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Applies `command` by `actor` at `at`; the new grant, with the record appended to `records`.
fn step(
    g: &Grant,
    command: Command,
    actor: &jit_core::domain::Actor,
    at: jit_core::clock::Timestamp,
    records: &mut Vec<AuditRecord>,
) -> Grant {
    let change = g.apply(command, actor, at).unwrap();
    records.push(change.audit().clone());
    change.grant().clone()
}

/// What the events of `g`'s records say of it, its requester as `requester`.
fn subject_of<'a>(g: &'a Grant, requester: &'a str) -> GrantSubject<'a> {
    GrantSubject {
        grant_id: &g.id,
        requester,
        target: &g.target,
        role_arn: &g.role_arn,
    }
}

/// A pseudonym that is visibly not the subject.
fn pseudonym(user: &UserId) -> String {
    format!("p-{:x}", user.as_str().len() * 7919)
}

/// Every kind of record a grant's life writes, in five grants.
fn every_record() -> Vec<(Grant, Vec<AuditRecord>)> {
    let mut out = Vec::new();
    let end = T0.plus_secs(3600 + 10);
    // Asked, approved at once, a session, revoked, its activity covered; then a fallback and
    // a repair noted.
    {
        let created = open("alice@example.com", "prod-logs-ro", T0);
        let mut records = vec![created.audit().clone()];
        let g = created.grant().clone();
        let g = step(
            &g,
            auto_approve(),
            &approver(),
            T0.plus_secs(1),
            &mut records,
        );
        let g = step(
            &g,
            issue(T0.plus_secs(1800)),
            &as_user("alice@example.com"),
            T0.plus_secs(2),
            &mut records,
        );
        let g = step(
            &g,
            revoke(),
            &as_user("alice@example.com"),
            T0.plus_secs(60),
            &mut records,
        );
        let g = step(
            &g,
            Command::CoverActivity {
                count: 2,
                digest: "d".repeat(64),
                through: T0.plus_secs(900),
            },
            &sweeper(),
            T0.plus_secs(1200),
            &mut records,
        );
        let g = step(
            &g,
            Command::NoteRevocationFallback {
                issued_before: T0.plus_secs(60),
            },
            &sweeper(),
            T0.plus_secs(1300),
            &mut records,
        );
        let g = step(
            &g,
            Command::NoteRevocationRepaired {
                found: "absent".to_owned(),
            },
            &sweeper(),
            T0.plus_secs(1400),
            &mut records,
        );
        out.push((g, records));
    }
    // Reviewed and approved, then expired.
    {
        let created = open("bob@example.com", "prod-deploy", T0);
        let mut records = vec![created.audit().clone()];
        let g = created.grant().clone();
        let g = step(
            &g,
            await_review(1),
            &approver(),
            T0.plus_secs(1),
            &mut records,
        );
        let g = step(
            &g,
            review(ReviewDecision::Approve),
            &as_user("sam@example.com"),
            T0.plus_secs(10),
            &mut records,
        );
        let g = step(&g, Command::Expire, &sweeper(), end, &mut records);
        out.push((g, records));
    }
    // Denied; cancelled; timed out.
    for (who, last) in [
        ("carol@example.com", "deny"),
        ("dan@example.com", "cancel"),
        ("erin@example.com", "time-out"),
    ] {
        let created = open(who, "prod-deploy", T0);
        let mut records = vec![created.audit().clone()];
        let g = created.grant().clone();
        let g = step(
            &g,
            await_review(1),
            &approver(),
            T0.plus_secs(1),
            &mut records,
        );
        let g = match last {
            "deny" => step(
                &g,
                review(ReviewDecision::Deny),
                &as_user("sam@example.com"),
                T0.plus_secs(5),
                &mut records,
            ),
            "cancel" => step(
                &g,
                Command::Cancel,
                &as_user(who),
                T0.plus_secs(5),
                &mut records,
            ),
            _ => step(
                &g,
                Command::TimeOut,
                &sweeper(),
                T0.plus_secs(WINDOW + 1),
                &mut records,
            ),
        };
        out.push((g, records));
    }
    // Break-glass, then its owed review.
    {
        let mut request = request("fay@example.com", "break-glass-admin", 3600);
        request.break_glass = true;
        let created = Grant::open(GrantId::generate(T0), request, T0);
        let mut records = vec![created.audit().clone()];
        let g = created.grant().clone();
        let g = step(
            &g,
            Command::BreakGlass {
                policies: vec!["break-glass".to_owned()],
                policy_hash: "policy-hash-2".to_owned(),
                on_call: Default::default(),
            },
            &approver(),
            T0.plus_secs(1),
            &mut records,
        );
        let g = step(
            &g,
            Command::PostReview {
                comment: Some("justified".to_owned()),
            },
            &as_user("sue@example.com"),
            T0.plus_secs(600),
            &mut records,
        );
        out.push((g, records));
    }
    out
}

#[test]
fn every_record_maps_to_a_valid_ocsf_event_of_its_class_without_naming_anyone() {
    let schema = schema();
    let mut seen = Vec::new();
    for (g, records) in every_record() {
        let requester = pseudonym(&g.requester);
        let subject = subject_of(&g, &requester);
        for record in &records {
            let event = record_event(record, subject, &pseudonym);
            let class = event["class_uid"].as_u64().unwrap();
            let errors = invalid(&schema, class, &event);
            assert!(
                errors.is_empty(),
                "{}: {errors:#?}\n{event:#}",
                record.action.as_str()
            );
            let activity = event["activity_id"].as_u64().unwrap();
            assert_eq!(event["type_uid"].as_u64(), Some(class * 100 + activity));
            assert_eq!(event["metadata"]["version"], "1.8.0");
            assert_eq!(event["metadata"]["product"]["name"], "jit-access");
            assert_eq!(
                event["time"].as_i64(),
                Some(record.at.unix_seconds() * 1000)
            );
            // What a consumer needs to check the record's signature and place in the chain.
            assert_eq!(event["unmapped"]["jit"]["hash"], record.hash.as_str());
            assert_eq!(
                event["unmapped"]["jit"]["prev_hash"],
                record.prev_hash.as_str()
            );
            assert_eq!(event["unmapped"]["jit"]["seq"].as_u64(), Some(record.seq));
            // People only by pseudonym: no subject (all end in @example.com) anywhere.
            let text = event.to_string();
            assert!(!text.contains("example.com"), "{text}");
            assert_eq!(event["user"]["uid"], requester.as_str());
            seen.push((
                record.action.as_str(),
                class,
                activity,
                event["status_id"].as_u64().unwrap(),
            ));
        }
    }
    seen.sort();
    seen.dedup();
    // The README's table, written out: (record, class, activity, status).
    assert_eq!(
        seen,
        [
            ("ACTIVITY_COVERED", 3005, 99, 1),
            ("APPROVED", 3005, 1, 1),
            ("AUTO_APPROVED", 3005, 1, 1),
            ("AWAITING_REVIEW", 3005, 99, 1),
            ("BREAK_GLASS_ACTIVATED", 3005, 1, 1),
            ("CANCELLED", 3005, 99, 1),
            ("DENIED", 3005, 99, 2),
            ("EXPIRED", 3005, 2, 1),
            ("POST_REVIEWED", 3005, 99, 1),
            ("REQUESTED", 3005, 99, 1),
            ("REVOCATION_FALLBACK", 3005, 99, 1),
            ("REVOCATION_REPAIRED", 3005, 99, 1),
            ("REVOKED", 3005, 2, 1),
            ("SESSION_ISSUED", 3003, 1, 1),
            ("TIMED_OUT", 3005, 99, 2),
        ]
    );
}

#[test]
fn every_kind_of_call_maps_to_a_valid_api_activity_event() {
    let schema = schema();
    let created = open("alice@example.com", "prod-logs-ro", T0);
    let g = created.grant().clone();
    let requester = pseudonym(&g.requester);
    let subject = subject_of(&g, &requester);
    let mut cases = Vec::new();
    for (action, read_only, error, source) in [
        ("GetObject", Some(true), None, Some("203.0.113.7")),
        ("PutObject", Some(false), None, Some("2001:db8::1")),
        (
            "UpdateItem",
            Some(false),
            Some("AccessDenied"),
            Some("203.0.113.7"),
        ),
        (
            "DeleteRolePolicy",
            Some(false),
            None,
            Some("cloudformation.amazonaws.com"),
        ),
        ("ListBuckets", None, None, None),
        ("ConsoleLogin", None, None, Some("203.0.113.7")),
    ] {
        let mut call = call(&format!("event-{action}"), T0.plus_secs(30));
        call.action = action.to_owned();
        call.read_only = read_only;
        call.error_code = error.map(str::to_owned);
        call.source_ip = source.map(str::to_owned);
        let event = activity_event(&call, subject);
        let errors = invalid(&schema, 6003, &event);
        assert!(errors.is_empty(), "{action}: {errors:#?}\n{event:#}");
        assert!(!event.to_string().contains("example.com"), "{event}");
        assert_eq!(event["unmapped"]["jit"]["hash"], call.hash().as_str());
        assert_eq!(event["metadata"]["uid"], call.event_id.as_str());
        cases.push((
            action,
            event["activity_id"].as_u64().unwrap(),
            event["status_id"].as_u64().unwrap(),
        ));
    }
    assert_eq!(
        cases,
        [
            ("GetObject", 2, 1),
            ("PutObject", 1, 1),
            ("UpdateItem", 3, 2),
            ("DeleteRolePolicy", 4, 1),
            ("ListBuckets", 2, 1),
            ("ConsoleLogin", 99, 1),
        ]
    );
}

#[test]
fn the_schema_refuses_what_ocsf_does_not_allow() {
    // The schema is strict where it matters, so a valid verdict above means something.
    let schema = schema();
    let (g, records) = every_record().remove(0);
    let requester = pseudonym(&g.requester);
    let subject = subject_of(&g, &requester);
    let good = record_event(&records[1], subject, &pseudonym);
    let broken: Vec<(&str, Edit)> = vec![
        (
            "no time",
            Box::new(|e| {
                e.as_object_mut().unwrap().remove("time");
            }),
        ),
        (
            "an activity the class lacks",
            Box::new(|e| e["activity_id"] = json!(7)),
        ),
        (
            "a field OCSF does not have",
            Box::new(|e| e["grant"] = json!("x")),
        ),
        (
            "a user with neither uid nor name",
            Box::new(|e| e["user"] = json!({"type_id": 1})),
        ),
        (
            "time as text",
            Box::new(|e| e["time"] = json!("2027-01-15T08:00:00Z")),
        ),
    ];
    assert!(invalid(&schema, 3005, &good).is_empty());
    for (case, edit) in broken {
        let mut event = good.clone();
        edit(&mut event);
        assert!(!invalid(&schema, 3005, &event).is_empty(), "{case}");
    }
}
