//! What callers see of grants and audit records.

use serde_json::{Value, json};

use jit_core::clock::Timestamp;
use jit_core::domain::Grant;
use jit_core::domain::audit::AuditRecord;

fn time(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| json!(t.to_rfc3339()))
}

/// A request or grant as JSON.
pub fn grant(g: &Grant) -> Value {
    json!({
        "id": g.id.as_str(),
        "state": g.state.as_str(),
        "requester": g.requester.as_str(),
        "target": g.target.as_str(),
        "role_arn": g.role_arn.as_str(),
        "duration": g.duration.to_string(),
        "duration_secs": g.duration.as_secs(),
        "reason": g.reason.as_str(),
        "ticket": g.ticket.as_ref().map(|t| t.as_str()),
        "break_glass": g.break_glass,
        "created_at": g.created_at.to_rfc3339(),
        "decide_by": g.decide_by.to_rfc3339(),
        "approvals_required": g.approvals_required,
        "reviews": g.reviews.iter().map(|r| json!({
            "reviewer": r.reviewer.as_str(),
            "decision": r.decision,
            "at": r.at.to_rfc3339(),
        })).collect::<Vec<_>>(),
        "activated_at": time(g.activated_at),
        "ends_at": time(g.ends_at),
        "closed_at": time(g.closed_at),
        "sessions_issued": g.sessions_issued,
        "sessions_valid_until": time(g.sessions_valid_until),
        "review_owed": g.review_owed,
        "policy_hash": g.policy_hash,
        "version": g.version,
        "audit_head": { "seq": g.audit_head.seq, "hash": g.audit_head.hash },
    })
}

/// An audit record as JSON: exactly the stored record (so an export deserialises and verifies
/// as it is), plus its time in RFC 3339 for people.
pub fn audit(r: &AuditRecord) -> Value {
    let mut value = serde_json::to_value(r).unwrap_or(Value::Null);
    if let Value::Object(fields) = &mut value {
        fields.insert("time".to_owned(), json!(r.at.to_rfc3339()));
    }
    value
}
