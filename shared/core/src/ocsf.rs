//! The audit trail as OCSF events (the Open Cybersecurity Schema Framework, release
//! [`OCSF_VERSION`]), for SIEMs and the audit bucket: one event per audit record and per
//! attached activity event.
//!
//! | what | OCSF class | activity |
//! |---|---|---|
//! | a grant made active (`AUTO_APPROVED`, `APPROVED` that activated, `BREAK_GLASS_ACTIVATED`), or its end moved later (`EXTENDED`) | 3005 User Access Management | 1 Assign Privileges |
//! | a grant ended (`EXPIRED`, `REVOKED`) | 3005 User Access Management | 2 Revoke Privileges |
//! | every other record of a request's life (asked, reviewed, denied, cancelled, timed out, post-reviewed, revocation repaired or fallen back, activity covered, extension asked, approved or denied) | 3005 User Access Management | 99 Other, named |
//! | a session issued (`SESSION_ISSUED`) | 3003 Authorize Session | 1 Assign Privileges |
//! | a call made with a grant's session | 6003 API Activity | 1 Create, 2 Read, 3 Update, 4 Delete or 99 Other |
//!
//! People appear only by pseudonym (`user.uid`, `actor.user.uid`), given by the caller: the
//! events hold no identity provider subject, no email. The broker's own fields go under
//! `unmapped.jit`, with the record's hash, the previous hash and its signature, so a consumer
//! can check each signature and a period's digest without the table.

// Builds JSON by key (serde_json's IndexMut inserts, it cannot panic on an object).
#![allow(clippy::indexing_slicing)]

use serde_json::{Map, Value, json};

use crate::activity::Activity;
use crate::clock::Timestamp;
use crate::domain::audit::{AuditAction, AuditRecord};
use crate::domain::{Actor, GrantId, RoleArn, TargetId, UserId};

/// The OCSF release the events follow.
pub const OCSF_VERSION: &str = "1.8.0";

/// The version of the broker's own mapping, in `metadata.extension`-free form: raised when an
/// event's shape changes, so consumers (and the verifier) can tell formats apart.
pub const MAPPING_VERSION: &str = "1";

/// What the events of a grant's records say of the grant, beyond each record.
#[derive(Debug, Clone, Copy)]
pub struct GrantSubject<'a> {
    /// The grant.
    pub grant_id: &'a GrantId,
    /// The requester's pseudonym.
    pub requester: &'a str,
    /// The target.
    pub target: &'a TargetId,
    /// The target's role.
    pub role_arn: &'a RoleArn,
}

/// OCSF timestamps are milliseconds since the epoch.
fn millis(at: Timestamp) -> i64 {
    at.unix_seconds().saturating_mul(1000)
}

/// `metadata`, with the event's own id.
fn metadata(uid: String, correlation: &GrantId) -> Value {
    json!({
        "version": OCSF_VERSION,
        "uid": uid,
        "correlation_uid": correlation.as_str(),
        "profiles": ["cloud"],
        "log_name": "jit-access audit",
        "product": {
            "name": "jit-access",
            "vendor_name": "jit-access",
            "version": env!("CARGO_PKG_VERSION"),
        },
    })
}

/// `cloud`: AWS, the target's account.
fn cloud(account: Option<&str>, region: Option<&str>) -> Value {
    let mut cloud = json!({"provider": "AWS"});
    if let Some(account) = account {
        cloud["account"] = json!({"uid": account, "type": "AWS Account", "type_id": 10});
    }
    if let Some(region) = region {
        cloud["region"] = json!(region);
    }
    cloud
}

/// `actor`: a person by pseudonym, or one of the broker's functions.
fn actor(actor: &Actor, pseudonym: &dyn Fn(&UserId) -> String) -> Value {
    match actor {
        Actor::User(user) => {
            json!({"user": {"uid": pseudonym(user), "type_id": 1, "type": "User"}})
        }
        Actor::Service(service) => json!({"app_name": format!("jit-access {service}")}),
    }
}

/// The class, activity and names of a record's event.
fn classify(record: &AuditRecord) -> (u32, u32, &'static str) {
    match record.action {
        AuditAction::AutoApproved | AuditAction::BreakGlassActivated => {
            (3005, 1, "Assign Privileges")
        }
        AuditAction::Approved if record.to == crate::domain::GrantState::Active => {
            (3005, 1, "Assign Privileges")
        }
        AuditAction::Extended => (3005, 1, "Assign Privileges"),
        AuditAction::Expired | AuditAction::Revoked => (3005, 2, "Revoke Privileges"),
        AuditAction::SessionIssued => (3003, 1, "Assign Privileges"),
        _ => (3005, 99, "Other"),
    }
}

/// The OCSF event of `record`, one of `subject`'s grant's records; people by `pseudonym`.
pub fn record_event(
    record: &AuditRecord,
    subject: GrantSubject<'_>,
    pseudonym: &dyn Fn(&UserId) -> String,
) -> Value {
    let (class_uid, activity_id, activity) = classify(record);
    let (class_name, category_uid, category_name) = match class_uid {
        3003 => ("Authorize Session", 3, "Identity & Access Management"),
        _ => ("User Access Management", 3, "Identity & Access Management"),
    };
    let action = record.action.as_str();
    let activity_name = if activity_id == 99 { action } else { activity };
    let role = subject.role_arn.as_str();
    let mut event = json!({
        "class_uid": class_uid,
        "class_name": class_name,
        "category_uid": category_uid,
        "category_name": category_name,
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": u64::from(class_uid) * 100 + u64::from(activity_id),
        "type_name": format!("{class_name}: {activity_name}"),
        "time": millis(record.at),
        "severity_id": 1,
        "severity": "Informational",
        "status_id": 1,
        "status": "Success",
        "message": format!("{action} {} on {}", subject.grant_id, subject.target),
        "metadata": metadata(format!("{}#{}", subject.grant_id, record.seq), subject.grant_id),
        "cloud": cloud(subject.role_arn.account(), None),
        "actor": actor(&record.actor, pseudonym),
        "user": {"uid": subject.requester, "type_id": 1, "type": "User"},
        "privileges": [role],
        "resources": [{
            "uid": role,
            "name": subject.target.as_str(),
            "type": "AWS::IAM::Role",
        }],
        "unmapped": {"jit": unmapped(record)},
    });
    if matches!(
        record.action,
        AuditAction::Denied | AuditAction::TimedOut | AuditAction::ExtensionDenied
    ) {
        event["status_id"] = json!(2);
        event["status"] = json!("Failure");
    }
    if record.action == AuditAction::BreakGlassActivated {
        event["severity_id"] = json!(3);
        event["severity"] = json!("Medium");
    }
    if class_uid == 3003 {
        // Authorize Session: the session's role and when it expires.
        if let Some(map) = event.as_object_mut() {
            map.remove("resources");
        }
        let mut session = json!({
            "issuer": role,
            "uid": format!("{}#{}", subject.grant_id, record.detail.get("session").map_or("", String::as_str)),
        });
        if let Some(expires) = record
            .detail
            .get("session_expires_at")
            .and_then(|t| t.parse::<i64>().ok())
        {
            session["expiration_time"] = json!(expires.saturating_mul(1000));
        }
        event["session"] = session;
    }
    event
}

/// Details that name a person: left out of the archive, as the actor is.
const PERSONAL_DETAIL: [&str; 1] = ["slack_user"];

/// The broker's own fields of `record`: what a consumer needs to check its signature and its
/// place in the chain. The actor is left out (it is `actor`, by pseudonym), and so is any
/// detail naming a person (the Slack user of a review made there; comments and reasons are
/// the requester's and reviewers' own words, kept as written).
fn unmapped(record: &AuditRecord) -> Value {
    let mut jit = Map::new();
    jit.insert("mapping_version".into(), json!(MAPPING_VERSION));
    jit.insert("grant_id".into(), json!(record.grant_id.as_str()));
    jit.insert("seq".into(), json!(record.seq));
    jit.insert("action".into(), json!(record.action.as_str()));
    if let Some(from) = record.from {
        jit.insert("from".into(), json!(from.as_str()));
    }
    jit.insert("to".into(), json!(record.to.as_str()));
    let detail: std::collections::BTreeMap<&String, &String> = record
        .detail
        .iter()
        .filter(|(k, _)| !PERSONAL_DETAIL.contains(&k.as_str()))
        .collect();
    jit.insert("detail".into(), json!(detail));
    if let Some(policy_hash) = &record.policy_hash {
        jit.insert("policy_hash".into(), json!(policy_hash));
    }
    jit.insert("prev_hash".into(), json!(record.prev_hash));
    jit.insert("hash".into(), json!(record.hash));
    if let Some(signature) = &record.signature {
        jit.insert(
            "signature".into(),
            json!({
                "signer": signature.signer.as_str(),
                "key_id": signature.key_id,
                "value": signature.value,
            }),
        );
    }
    Value::Object(jit)
}

/// The API Activity (6003) activity of a call: CloudTrail's read-only flag, else the verb.
fn api_activity(activity: &Activity) -> (u32, &'static str) {
    if activity.read_only == Some(true) {
        return (2, "Read");
    }
    let verb = |prefixes: &[&str]| prefixes.iter().any(|p| activity.action.starts_with(p));
    if verb(&["Create", "Put", "Add", "Run", "Start", "Register", "Import"]) {
        (1, "Create")
    } else if verb(&[
        "Get", "List", "Describe", "Head", "Lookup", "Search", "Select", "Scan", "Query",
        "BatchGet",
    ]) {
        (2, "Read")
    } else if verb(&[
        "Update",
        "Modify",
        "Set",
        "Attach",
        "Associate",
        "Enable",
        "Disable",
        "Tag",
        "Untag",
        "Change",
        "Reset",
        "Replace",
        "Stop",
    ]) {
        (3, "Update")
    } else if verb(&[
        "Delete",
        "Remove",
        "Detach",
        "Disassociate",
        "Terminate",
        "Deregister",
        "Revoke",
        "Schedule",
    ]) {
        (4, "Delete")
    } else {
        (99, "Other")
    }
}

/// The OCSF event of a call made with grant `subject`'s session, as CloudTrail delivered it.
pub fn activity_event(activity: &Activity, subject: GrantSubject<'_>) -> Value {
    let (activity_id, activity_name) = api_activity(activity);
    let activity_name = if activity_id == 99 {
        activity.action.as_str()
    } else {
        activity_name
    };
    let failed = activity.error_code.is_some();
    let mut api = json!({
        "operation": activity.action,
        "service": {"name": activity.service},
    });
    if let Some(code) = &activity.error_code {
        api["response"] = json!({"error": code});
    }
    let mut src = Map::new();
    if let Some(ip) = &activity.source_ip {
        // CloudTrail gives an address or, for calls made by an AWS service, its name.
        if ip.parse::<std::net::IpAddr>().is_ok() {
            src.insert("ip".into(), json!(ip));
        } else {
            src.insert("svc_name".into(), json!(ip));
        }
    }
    if src.is_empty() {
        // OCSF requires the endpoint (and something that names it); CloudTrail gave nothing.
        src.insert("name".into(), json!("unknown"));
    }
    let mut event = json!({
        "class_uid": 6003,
        "class_name": "API Activity",
        "category_uid": 6,
        "category_name": "Application Activity",
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": 600_300 + u64::from(activity_id),
        "type_name": format!("API Activity: {activity_name}"),
        "time": millis(activity.time),
        "severity_id": 1,
        "severity": "Informational",
        "status_id": if failed { 2 } else { 1 },
        "status": if failed { "Failure" } else { "Success" },
        "message": format!("{} {} with {}'s session", activity.service, activity.action, subject.grant_id),
        "metadata": metadata(activity.event_id.clone(), subject.grant_id),
        "cloud": cloud(Some(&activity.account), Some(&activity.region)),
        "actor": {
            "user": {"uid": subject.requester, "type_id": 1, "type": "User"},
            "session": {"issuer": subject.role_arn.as_str(), "uid": subject.grant_id.as_str()},
        },
        "api": api,
        "src_endpoint": Value::Object(src),
        "resources": activity
            .resources
            .iter()
            .map(|arn| json!({"uid": arn}))
            .collect::<Vec<_>>(),
        "unmapped": {"jit": {
            "mapping_version": MAPPING_VERSION,
            "grant_id": subject.grant_id.as_str(),
            "event_id": activity.event_id,
            "kind": activity.kind,
            "read_only": activity.read_only,
            "resources_dropped": activity.resources_dropped,
            "hash": activity.hash(),
        }},
    });
    if let Some(agent) = &activity.user_agent {
        event["http_request"] = json!({"user_agent": agent});
    }
    event
}
