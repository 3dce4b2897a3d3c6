//! The wire types and `openapi.yaml` describe the same API: each type's fields are exactly the
//! properties its schema lists, the fields that are always there exactly the schema's required
//! ones, each value of the JSON type the schema says, and the routes exactly the document's
//! paths. Checked both ways, so a field added to either side alone fails here.
// Tests may unwrap and index: a panic is how a test fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Value, json};

use jit_api::{
    AuditPage, BundleItemOutcome, BundleOutcome, BundleView, ConsoleLink, ConsoleRequest,
    CreateBundle, CreateRequest, Credentials, DurationInput, ExtendRequest, ExtensionView,
    GrantTrail, GrantView, HandoffView, LinkSlackRequest, LiveSessions, OpenHandoffRequest, Page,
    PostReviewRequest, ProblemBody, RequirementView, ReviewRequest, ReviewView, RevokeRequest,
    Revoked, Route, TargetList, TargetView, WebConfig,
};
use jit_core::clock::Timestamp;
use jit_core::domain::audit::ChainHead;
use jit_core::domain::{GrantState, ReviewDecision};
use jit_core::trust::CheckpointPeriod;

fn openapi() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openapi.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    jit_local::cfn::Node::parse(&text)
        .expect("openapi.yaml is YAML")
        .to_json()
}

/// The schema at `pointer`, with `$ref`s and `allOf`s followed into one object schema.
fn schema(doc: &Value, pointer: &str) -> Value {
    let found = doc
        .pointer(pointer)
        .unwrap_or_else(|| panic!("no {pointer}"));
    if let Some(target) = found["$ref"].as_str() {
        return schema(doc, target.trim_start_matches('#'));
    }
    if let Some(parts) = found["allOf"].as_array() {
        let mut merged = json!({"type": "object", "properties": {}, "required": []});
        for (i, _) in parts.iter().enumerate() {
            let part = schema(doc, &format!("{pointer}/allOf/{i}"));
            for (k, v) in part["properties"].as_object().unwrap() {
                merged["properties"][k] = v.clone();
            }
            for r in part["required"].as_array().into_iter().flatten() {
                merged["required"].as_array_mut().unwrap().push(r.clone());
            }
        }
        return merged;
    }
    found.clone()
}

/// The JSON types a property schema allows (following `$ref` and `oneOf`).
fn types_of(doc: &Value, property: &Value) -> BTreeSet<String> {
    if let Some(target) = property["$ref"].as_str() {
        return types_of(doc, &schema(doc, target.trim_start_matches('#')));
    }
    if let Some(options) = property["oneOf"].as_array() {
        return options.iter().flat_map(|o| types_of(doc, o)).collect();
    }
    match &property["type"] {
        Value::String(t) => [t.clone()].into(),
        Value::Array(ts) => ts.iter().map(|t| t.as_str().unwrap().to_owned()).collect(),
        _ => BTreeSet::new(),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `full` (every optional field set) and `least` (every optional field left out or null)
/// against the schema at `pointer`: a field `least` still carries (null or not) is always
/// there, so the schema must require it.
fn agree<T: Serialize>(doc: &Value, pointer: &str, full: &T, least: &T) {
    let schema = schema(doc, pointer);
    let full = serde_json::to_value(full).unwrap();
    let least = serde_json::to_value(least).unwrap();
    let properties: BTreeSet<&String> = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{pointer} lists no properties"))
        .keys()
        .collect();
    let fields: BTreeSet<&String> = full.as_object().unwrap().keys().collect();
    assert_eq!(
        fields, properties,
        "{pointer}: the type's fields and the schema's properties"
    );
    let required: BTreeSet<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r.as_str().unwrap())
        .collect();
    let always: BTreeSet<&str> = least
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        always, required,
        "{pointer}: fields always there and the schema's required"
    );
    for (name, value) in full.as_object().unwrap() {
        let allowed = types_of(doc, &schema["properties"][name]);
        assert!(
            allowed.is_empty() || allowed.contains(json_type(value)),
            "{pointer}: `{name}` is {} but the schema says {allowed:?}",
            json_type(value)
        );
    }
}

fn grant(full: bool) -> GrantView {
    let some = |s: &str| full.then(|| s.to_owned());
    GrantView {
        id: "0190c0de-0000-7000-8000-000000000001".into(),
        state: GrantState::Active,
        requester: "alice".into(),
        target: "prod-logs-ro".into(),
        role_arn: "arn:aws:iam::222222222222:role/jit/prod-logs-ro".into(),
        duration: "1h".into(),
        duration_secs: 3600,
        reason: "checking error rates".into(),
        ticket: some("INC-1"),
        break_glass: false,
        starts_at: some("2027-01-13T10:00:00Z"),
        bundle: some("0190c0de-0000-7000-8000-000000000001"),
        created_at: "2027-01-13T10:00:00Z".into(),
        decide_by: "2027-01-13T11:00:00Z".into(),
        approvals_required: full.then_some(1),
        reviews: vec![ReviewView {
            reviewer: "bob".into(),
            decision: ReviewDecision::Approve,
            at: "2027-01-13T10:01:00Z".into(),
            fills: if full {
                vec!["dba-lead".into()]
            } else {
                Vec::new()
            },
        }],
        requirements: if full {
            vec![RequirementView {
                name: "dba-lead".into(),
                approvals: 1,
                met: 1,
            }]
        } else {
            Vec::new()
        },
        rules_said: full.then(|| "no rule approves this at once".to_owned()),
        activated_at: some("2027-01-13T10:01:00Z"),
        ends_at: some("2027-01-13T11:01:00Z"),
        closed_at: some("2027-01-13T10:30:00Z"),
        sessions_issued: 1,
        sessions_valid_until: some("2027-01-13T11:01:00Z"),
        review_owed: false,
        policy_hash: "abc".into(),
        extension: full.then(|| ExtensionView {
            duration: "30m".into(),
            duration_secs: 1800,
            reason: "the migration is still running".into(),
            requested_at: "2027-01-13T10:50:00Z".into(),
            ends_at: "2027-01-13T11:31:00Z".into(),
            approvals_required: 1,
            reviews: Vec::new(),
        }),
        version: 3,
        audit_head: ChainHead {
            seq: 3,
            hash: "def".into(),
        },
    }
}

const SCHEMAS: &str = "/components/schemas";

fn body(path: &str, method: &str) -> String {
    let path = path.replace('/', "~1");
    format!("/paths/{path}/{method}/requestBody/content/application~1json/schema")
}

fn answer(path: &str, method: &str) -> String {
    let path = path.replace('/', "~1");
    format!("/paths/{path}/{method}/responses/200/content/application~1json/schema")
}

#[test]
fn the_wire_types_are_the_documents_schemas() {
    let doc = openapi();
    agree(
        &doc,
        &format!("{SCHEMAS}/Grant"),
        &grant(true),
        &grant(false),
    );
    let review = grant(true).reviews.remove(0);
    let bare = grant(false).reviews.remove(0);
    agree(&doc, &format!("{SCHEMAS}/Review"), &review, &bare);
    let requirement = grant(true).requirements.remove(0);
    agree(
        &doc,
        &format!("{SCHEMAS}/Grant/properties/requirements/items"),
        &requirement,
        &requirement,
    );
    let extension = grant(true).extension.unwrap();
    agree(
        &doc,
        &format!("{SCHEMAS}/Grant/properties/extension"),
        &extension,
        &extension,
    );
    let page = |full| Page {
        items: vec![grant(full)],
        next: full.then(|| "cursor".to_owned()),
    };
    agree(
        &doc,
        &format!("{SCHEMAS}/GrantPage"),
        &page(true),
        &page(false),
    );
    let credentials = Credentials {
        version: 1,
        access_key_id: "ASIA".into(),
        secret_access_key: "secret".into(),
        session_token: "token".into(),
        expiration: "2027-01-13T11:00:00Z".into(),
    };
    agree(
        &doc,
        &format!("{SCHEMAS}/Credentials"),
        &credentials,
        &credentials,
    );
    let target = TargetView {
        id: "prod-logs-ro".into(),
        description: "logs".into(),
        account: "222222222222".into(),
        environment: "prod".into(),
        tier: "read-only".into(),
        max_duration: "4h".into(),
        approvals_required: 1,
        ticket_required: true,
    };
    agree(&doc, &format!("{SCHEMAS}/Target"), &target, &target);
    let targets = TargetList {
        items: vec![target],
    };
    agree(&doc, &answer("/targets", "get"), &targets, &targets);
    let problem = ProblemBody {
        kind: "urn:jit-access:problem:conflict".into(),
        title: "Conflict".into(),
        status: 409,
        detail: "it is ACTIVE".into(),
        extra: serde_json::Map::new(),
    };
    agree(&doc, &format!("{SCHEMAS}/Problem"), &problem, &problem);

    let create = |full: bool| CreateRequest {
        target: "prod-logs-ro".into(),
        duration: DurationInput::Text("1h".into()),
        reason: "checking error rates".into(),
        ticket: full.then(|| "INC-1".to_owned()),
        break_glass: full,
        starts_at: full.then(|| "2027-01-13T10:00:00Z".to_owned()),
    };
    agree(
        &doc,
        &format!("{SCHEMAS}/NewRequest"),
        &create(true),
        &create(false),
    );
    let secs = serde_json::to_value(DurationInput::Secs(3600)).unwrap();
    assert_eq!(secs, json!(3600), "a duration in seconds is a number");
    let review = |full: bool| ReviewRequest {
        decision: ReviewDecision::Deny,
        comment: full.then(|| "no".to_owned()),
    };
    agree(
        &doc,
        &body("/requests/{id}/reviews", "post"),
        &review(true),
        &review(false),
    );
    let post = |full: bool| PostReviewRequest {
        comment: full.then(|| "fine".to_owned()),
    };
    agree(
        &doc,
        &body("/grants/{id}/post-review", "post"),
        &post(true),
        &post(false),
    );
    let extend = ExtendRequest {
        duration: DurationInput::Text("30m".into()),
        reason: "the migration is still running".into(),
    };
    agree(&doc, &body("/grants/{id}/extend", "post"), &extend, &extend);
    let revoke = RevokeRequest {
        reason: "the work is done".into(),
    };
    agree(&doc, &body("/grants/{id}/revoke", "post"), &revoke, &revoke);
    let console = |full: bool| ConsoleRequest {
        destination: full.then(|| "https://console.aws.amazon.com/s3/".to_owned()),
    };
    agree(
        &doc,
        &body("/grants/{id}/console", "post"),
        &console(true),
        &console(false),
    );
    let link = ConsoleLink {
        url: "https://signin.aws.amazon.com/federation?x".into(),
        expires_at: "2027-01-13T11:00:00Z".into(),
        grant: "0190c0de-0000-7000-8000-000000000001".into(),
    };
    agree(&doc, &answer("/grants/{id}/console", "post"), &link, &link);
    let revoked = |full| Revoked {
        grant: grant(full),
        live_sessions: LiveSessions::Cut,
    };
    agree(
        &doc,
        &answer("/grants/{id}/revoke", "post"),
        &revoked(true),
        &revoked(false),
    );
    let bundle = |full: bool| CreateBundle {
        targets: vec!["prod-logs-ro".into(), "prod-db-admin".into()],
        duration: DurationInput::Text("1h".into()),
        reason: "migrating the reporting database".into(),
        ticket: full.then(|| "CHG-1".to_owned()),
        starts_at: full.then(|| "2027-01-13T10:00:00Z".to_owned()),
    };
    agree(
        &doc,
        &body("/bundles", "post"),
        &bundle(true),
        &bundle(false),
    );
    let view = |full| BundleView {
        bundle: "0190c0de-0000-7000-8000-000000000001".into(),
        items: vec![grant(full)],
    };
    agree(
        &doc,
        &answer("/bundles/{id}", "get"),
        &view(true),
        &view(false),
    );
    let outcome = |full: bool| BundleOutcome {
        bundle: "0190c0de-0000-7000-8000-000000000001".into(),
        items: vec![BundleItemOutcome {
            id: "0190c0de-0000-7000-8000-000000000001".into(),
            target: "prod-logs-ro".into(),
            outcome: "revoked".into(),
            state: GrantState::Revoked,
            detail: full.then(|| "why".to_owned()),
            live_sessions: full.then_some(LiveSessions::Cut),
        }],
    };
    for path in ["/bundles/{id}/reviews", "/bundles/{id}/revoke"] {
        agree(&doc, &answer(path, "post"), &outcome(true), &outcome(false));
    }
    let trail = GrantTrail {
        grant: grant(true),
        records: Vec::new(),
        keys: Vec::new(),
    };
    agree(&doc, &answer("/requests/{id}/audit", "get"), &trail, &trail);
    let web = WebConfig {
        issuer: "https://id.example.com".into(),
        client_id: "jit-web".into(),
        groups_claim: "groups".into(),
        slack: true,
    };
    agree(&doc, &answer("/web/{file}", "get"), &web, &web);
    let link = LinkSlackRequest {
        code: "ABCDEFGHJK".into(),
    };
    agree(&doc, &body("/slack/links", "post"), &link, &link);
    let open = OpenHandoffRequest {
        token: "ab".repeat(32),
    };
    agree(&doc, &body("/slack/handoffs", "post"), &open, &open);
    let opened = HandoffView {
        request_id: "0190c0de-0000-7000-8000-000000000001".into(),
        clicked_at: "2026-12-07T11:00:00Z".into(),
    };
    agree(&doc, &answer("/slack/handoffs", "post"), &opened, &opened);
    let audit = |full: bool| AuditPage {
        from: Timestamp::from_unix_seconds(1_799_834_400),
        to: Timestamp::from_unix_seconds(1_799_838_000),
        records: Vec::new(),
        heads: Vec::new(),
        checkpoints: Vec::new(),
        keys: Vec::new(),
        checkpoint_period: CheckpointPeriod::HOURLY,
        exported_at: Timestamp::from_unix_seconds(1_799_840_000),
        next: full.then(|| "cursor".to_owned()),
    };
    agree(&doc, &answer("/audit", "get"), &audit(true), &audit(false));
    for sessions in [
        LiveSessions::Cut,
        LiveSessions::NoneLive,
        LiveSessions::Pending,
    ] {
        let allowed = &schema(&doc, &answer("/grants/{id}/revoke", "post"))["properties"]["live_sessions"]
            ["enum"];
        assert!(
            allowed
                .as_array()
                .unwrap()
                .contains(&json!(sessions.as_str())),
            "{sessions:?}"
        );
        assert_eq!(
            serde_json::to_value(sessions).unwrap(),
            json!(sessions.as_str())
        );
    }
}

#[test]
fn the_routes_are_the_documents_paths() {
    let doc = openapi();
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| *m != "parameters")
                .map(move |m| format!("{} {path}", m.to_ascii_uppercase()))
        })
        .collect();
    let ours: BTreeSet<String> = Route::KEYS.iter().map(|k| (*k).to_owned()).collect();
    assert_eq!(ours, documented);
}

/// `jit request --wait` looks often while an answer is likely (auto-approval), then rarely:
/// ten minutes of waiting for a person is a few dozen requests, and a decision is never seen
/// more than 15 s late.
#[test]
fn waiting_for_a_person_backs_off_to_a_few_requests_a_minute() {
    let first = jit_api::poll_interval(0);
    assert!(first <= std::time::Duration::from_millis(500), "{first:?}");
    let (mut waited, mut looks) = (std::time::Duration::ZERO, 1);
    while waited < std::time::Duration::from_secs(600) {
        let next = jit_api::poll_interval(looks - 1);
        assert!(
            next <= std::time::Duration::from_secs(15),
            "look {looks}: {next:?}"
        );
        waited += next;
        looks += 1;
    }
    assert!((30..=50).contains(&looks), "{looks} looks in ten minutes");
}

/// A throttled request is sent again after what API Gateway's `Retry-After` says, never more
/// than four seconds, and without one after a quarter second doubling: five retries wait out
/// about eight seconds, a route's refill of some 150 requests.
#[test]
fn a_throttled_request_waits_as_told_or_backs_off_within_seconds() {
    use std::time::Duration;
    assert_eq!(
        jit_api::throttled_wait(0, Some("2")),
        Duration::from_secs(2)
    );
    assert_eq!(
        jit_api::throttled_wait(3, Some(" 1 ")),
        Duration::from_secs(1)
    );
    assert_eq!(
        jit_api::throttled_wait(0, Some("3600")),
        Duration::from_secs(4)
    );
    let waits: Vec<Duration> = (0..5)
        .map(|n| jit_api::throttled_wait(n, Some("soon")))
        .collect();
    assert_eq!(waits[0], Duration::from_millis(250));
    assert!(waits.windows(2).all(|w| w[1] >= w[0]), "{waits:?}");
    let total: Duration = waits.iter().sum();
    assert!(
        (Duration::from_secs(6)..=Duration::from_secs(9)).contains(&total),
        "{total:?}"
    );
}
