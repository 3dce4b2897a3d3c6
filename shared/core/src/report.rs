//! Reports for auditors, from a verified trail: for a period, one row per grant (who asked for
//! what and why, what decided, who approved, how long was asked for and used, sessions,
//! activity, how it ended and by whom), totals per target and per person, and the exceptions
//! an auditor asks about first (break-glass grants whose owed review is missing or late,
//! grants a guardrail revoked, requests the rules refused, activity no grant accounts for).
//!
//! Nothing here reads the table: the caller hands in records it verified (`jit report` checks
//! the export, and each whole chain it adds, before building a report).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::activity::Activity;
use crate::clock::Timestamp;
use crate::domain::audit::{AuditAction, AuditRecord};
use crate::domain::{Actor, GrantId, GrantState, Service};

/// A request the rules refused, as intake's `RequestRefused` log line states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// When.
    pub at: Timestamp,
    /// Who asked.
    pub requester: String,
    /// For which target.
    pub target: String,
    /// For how long, in seconds.
    pub duration_secs: u64,
    /// Whether as break-glass.
    pub break_glass: bool,
    /// The policies that decided (forbids), comma-separated.
    pub policies: String,
    /// Cedar's reason.
    pub why: String,
}

impl Refusal {
    /// Reads one line of intake's log (as CloudWatch Logs gives it, or with the local stack's
    /// `[intake#1] ` prefix): `None` unless it is a `RequestRefused` line.
    pub fn from_log_line(line: &str) -> Option<Self> {
        let json = line.get(line.find('{')?..)?;
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        if v.get("RequestRefused").and_then(serde_json::Value::as_u64) != Some(1) {
            return None;
        }
        let text = |name: &str| {
            v.get(name)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let millis = v.get("_aws")?.get("Timestamp")?.as_i64()?;
        Some(Self {
            at: Timestamp::from_unix_seconds(millis.div_euclid(1000)),
            requester: text("requester"),
            target: text("Target"),
            duration_secs: text("duration_secs").parse().unwrap_or_default(),
            break_glass: text("break_glass") == "true",
            policies: text("policies"),
            why: text("why"),
        })
    }
}

/// A call no grant accounts for, as the activity function kept it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unattributed {
    /// The call.
    pub activity: Activity,
    /// Why it was not attributed.
    pub why: String,
}

/// What a report is built from.
#[derive(Debug, Clone, Default)]
pub struct ReportInput {
    /// The period's first second.
    pub from: Option<Timestamp>,
    /// The second after it.
    pub to: Option<Timestamp>,
    /// When the report is made: what was owed by then and not done is an exception.
    pub as_of: Option<Timestamp>,
    /// Verified records: every record of the period, and the whole chains of grants whose
    /// records begin before it or owe a review (more records of a grant are harmless).
    pub records: Vec<AuditRecord>,
    /// The kept activity of grants whose activity a verified record covers.
    pub activity: BTreeMap<GrantId, Vec<Activity>>,
    /// The rules' refusals in the period, from intake's log; `None` when none were given.
    pub refusals: Option<Vec<Refusal>>,
    /// The calls no grant accounts for, in the period; `None` when not read.
    pub unattributed: Option<Vec<Unattributed>>,
    /// How long after a break-glass activation its review is due.
    pub review_within_secs: i64,
}

/// One grant's row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GrantRow {
    /// The grant.
    pub grant_id: String,
    /// Who asked.
    pub requester: String,
    /// For which target.
    pub target: String,
    /// Why.
    pub reason: String,
    /// The ticket, when given.
    pub ticket: String,
    /// Whether break-glass.
    pub break_glass: bool,
    /// When asked.
    pub requested_at: Option<Timestamp>,
    /// How long was asked for, in seconds.
    pub requested_secs: Option<u64>,
    /// Time added by extensions, in seconds (0 when never extended).
    pub extended_secs: u64,
    /// The policies that opened it at once, comma-separated (empty when people decided).
    pub policies: String,
    /// How many approvals the rules required (none when they decided at once).
    pub approvals_required: Option<u64>,
    /// Who approved, in order, comma-separated.
    pub approvers: String,
    /// When it became active.
    pub activated_at: Option<Timestamp>,
    /// When its access was scheduled to open, if it was scheduled ahead.
    pub starts_at: Option<Timestamp>,
    /// How long it was open, from its activation or its scheduled start: to its end, or
    /// while still open to the earliest of its time running out, the period's end and the
    /// report's time. A grant cancelled before its start was open for none.
    pub used_secs: Option<u64>,
    /// Sessions issued.
    pub sessions: u64,
    /// Calls its sessions made, when its activity was carried.
    pub calls: Option<u64>,
    /// Of those, calls that changed something.
    pub writes: Option<u64>,
    /// Of those, calls AWS refused.
    pub denied: Option<u64>,
    /// Its state at its last record.
    pub state: String,
    /// How it ended: the closing record's action (empty while open).
    pub ended: String,
    /// By whom (`user:…` or `service:…`).
    pub ended_by: String,
    /// When.
    pub ended_at: Option<Timestamp>,
    /// The revocation's reason, or the denial's comment.
    pub end_reason: String,
}

/// Totals for one target or one person.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// The target or person.
    pub name: String,
    /// Grants asked for in the period (or with records in it).
    pub grants: u64,
    /// Of those, made active.
    pub activated: u64,
    /// Break-glass grants.
    pub break_glass: u64,
    /// Seconds active, summed.
    pub used_secs: u64,
    /// Sessions issued.
    pub sessions: u64,
    /// Calls that changed something.
    pub writes: u64,
    /// Calls AWS refused.
    pub denied: u64,
    /// Requests the rules refused.
    pub refused: u64,
}

/// What an exception is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionKind {
    /// A break-glass grant whose review was due and is not recorded.
    BreakGlassReviewMissing,
    /// A break-glass grant reviewed after its review was due.
    BreakGlassReviewLate,
    /// A grant the sweeper revoked because a guardrail fired.
    RevokedByGuardrail,
    /// A request the rules refused.
    RefusedByRules,
    /// A call through a broker role that no grant accounts for.
    UnattributedActivity,
}

impl ExceptionKind {
    /// Its name, as the CSV and JSON say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BreakGlassReviewMissing => "break_glass_review_missing",
            Self::BreakGlassReviewLate => "break_glass_review_late",
            Self::RevokedByGuardrail => "revoked_by_guardrail",
            Self::RefusedByRules => "refused_by_rules",
            Self::UnattributedActivity => "unattributed_activity",
        }
    }
}

/// One exception.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exception {
    /// What it is.
    pub kind: ExceptionKind,
    /// When it happened (or was due).
    pub at: Timestamp,
    /// The grant, when there is one.
    pub grant_id: String,
    /// The person (the requester; for a call, the session's role).
    pub who: String,
    /// The target.
    pub target: String,
    /// What happened, in words.
    pub detail: String,
}

/// A report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The period's first second.
    pub from: Option<Timestamp>,
    /// The second after it.
    pub to: Option<Timestamp>,
    /// When it was made.
    pub as_of: Option<Timestamp>,
    /// One row per grant with a record in the period, by request time.
    pub grants: Vec<GrantRow>,
    /// Per target.
    pub by_target: Vec<Totals>,
    /// Per person.
    pub by_person: Vec<Totals>,
    /// The exceptions, by time.
    pub exceptions: Vec<Exception>,
    /// Sources the exceptions could not include, named (refusals without intake's log,
    /// unattributed calls not read): an empty list there means none were looked for.
    pub not_included: Vec<String>,
}

fn in_range(input: &ReportInput, at: Timestamp) -> bool {
    input.from.is_none_or(|f| f <= at) && input.to.is_none_or(|t| at < t)
}

fn detail(r: &AuditRecord, key: &str) -> String {
    r.detail.get(key).cloned().unwrap_or_default()
}

fn is_activation(r: &AuditRecord) -> bool {
    r.to == GrantState::Active && r.from == Some(GrantState::Pending)
}

/// Builds the report of `input`.
pub fn build(input: &ReportInput) -> Report {
    let mut chains: BTreeMap<&GrantId, BTreeMap<u64, &AuditRecord>> = BTreeMap::new();
    for r in &input.records {
        chains.entry(&r.grant_id).or_default().insert(r.seq, r);
    }
    let as_of = input.as_of;
    let mut report = Report {
        from: input.from,
        to: input.to,
        as_of,
        ..Report::default()
    };
    let mut by_target: BTreeMap<String, Totals> = BTreeMap::new();
    let mut by_person: BTreeMap<String, Totals> = BTreeMap::new();
    for (grant_id, chain) in &chains {
        if !chain.values().any(|r| in_range(input, r.at)) {
            continue;
        }
        let row = grant_row(input, grant_id, chain);
        exceptions_of(input, &row, chain, &mut report.exceptions);
        for (map, name) in [
            (&mut by_target, row.target.clone()),
            (&mut by_person, row.requester.clone()),
        ] {
            let t = map.entry(name.clone()).or_insert_with(|| Totals {
                name,
                ..Totals::default()
            });
            t.grants += 1;
            t.activated += u64::from(row.activated_at.is_some());
            t.break_glass += u64::from(row.break_glass);
            t.used_secs += row.used_secs.unwrap_or_default();
            t.sessions += row.sessions;
            t.writes += row.writes.unwrap_or_default();
            t.denied += row.denied.unwrap_or_default();
        }
        report.grants.push(row);
    }
    match &input.refusals {
        Some(refusals) => {
            for r in refusals.iter().filter(|r| in_range(input, r.at)) {
                for (map, name) in [
                    (&mut by_target, r.target.clone()),
                    (&mut by_person, r.requester.clone()),
                ] {
                    map.entry(name.clone())
                        .or_insert_with(|| Totals {
                            name,
                            ..Totals::default()
                        })
                        .refused += 1;
                }
                report.exceptions.push(Exception {
                    kind: ExceptionKind::RefusedByRules,
                    at: r.at,
                    grant_id: String::new(),
                    who: r.requester.clone(),
                    target: r.target.clone(),
                    detail: format!(
                        "asked for {} s{}; refused by {}: {}",
                        r.duration_secs,
                        if r.break_glass { " as break-glass" } else { "" },
                        if r.policies.is_empty() {
                            "no permitting rule"
                        } else {
                            &r.policies
                        },
                        r.why
                    ),
                });
            }
        }
        None => report
            .not_included
            .push("requests refused by the rules (no intake log given)".to_owned()),
    }
    match &input.unattributed {
        Some(calls) => {
            for u in calls.iter().filter(|u| in_range(input, u.activity.time)) {
                report.exceptions.push(Exception {
                    kind: ExceptionKind::UnattributedActivity,
                    at: u.activity.time,
                    grant_id: String::new(),
                    who: String::new(),
                    target: u.activity.account.clone(),
                    detail: format!(
                        "{} {} in {}: {}",
                        u.activity.service, u.activity.action, u.activity.region, u.why
                    ),
                });
            }
        }
        None => report
            .not_included
            .push("activity no grant accounts for (not read)".to_owned()),
    }
    report
        .grants
        .sort_by(|a, b| (a.requested_at, &a.grant_id).cmp(&(b.requested_at, &b.grant_id)));
    report
        .exceptions
        .sort_by(|a, b| (a.at, a.kind, &a.grant_id).cmp(&(b.at, b.kind, &b.grant_id)));
    report.by_target = by_target.into_values().collect();
    report.by_person = by_person.into_values().collect();
    report
}

fn grant_row(
    input: &ReportInput,
    grant_id: &GrantId,
    chain: &BTreeMap<u64, &AuditRecord>,
) -> GrantRow {
    let mut row = GrantRow {
        grant_id: grant_id.to_string(),
        ..GrantRow::default()
    };
    let mut approvers: Vec<String> = Vec::new();
    for r in chain.values() {
        match r.action {
            AuditAction::Requested => {
                if let Actor::User(u) = &r.actor {
                    row.requester = u.to_string();
                }
                row.target = detail(r, "target");
                row.reason = detail(r, "reason");
                row.ticket = detail(r, "ticket");
                row.break_glass = detail(r, "break_glass") == "true";
                row.requested_at = Some(r.at);
                row.requested_secs = detail(r, "duration_secs").parse().ok();
                row.starts_at = Timestamp::parse_rfc3339(&detail(r, "starts_at"));
            }
            AuditAction::AwaitingReview => {
                row.approvals_required = detail(r, "approvals_required").parse().ok();
            }
            AuditAction::AutoApproved | AuditAction::BreakGlassActivated => {
                row.policies = detail(r, "policies");
            }
            AuditAction::Approved => {
                if let Actor::User(u) = &r.actor {
                    approvers.push(u.to_string());
                }
            }
            AuditAction::SessionIssued => row.sessions += 1,
            AuditAction::Extended => {
                row.extended_secs += detail(r, "extension_secs").parse::<u64>().unwrap_or(0);
            }
            AuditAction::Denied
            | AuditAction::Cancelled
            | AuditAction::TimedOut
            | AuditAction::Expired
            | AuditAction::Revoked => {
                row.ended = r.action.as_str().to_owned();
                row.ended_by = r.actor.to_string();
                row.ended_at = Some(r.at);
                row.end_reason = match r.action {
                    AuditAction::Revoked => detail(r, "reason"),
                    AuditAction::Denied => detail(r, "comment"),
                    _ => String::new(),
                };
            }
            AuditAction::PostReviewed
            | AuditAction::RevocationFallback
            | AuditAction::RevocationRepaired
            | AuditAction::ActivityCovered
            | AuditAction::ExtensionRequested
            | AuditAction::ExtensionApproved
            | AuditAction::ExtensionDenied => {}
        }
        if is_activation(r) {
            row.activated_at = Some(r.at);
        }
        row.state = r.to.as_str().to_owned();
    }
    row.approvers = approvers.join(",");
    if let Some(activated) = row.activated_at {
        // Open from its activation, or from its scheduled start.
        let active = row.starts_at.map_or(activated, |s| s.max(activated));
        // Its end: the closing record, or else the earliest of when its time ran out (an
        // expiry not yet swept), the period's end and the report's time.
        let ends_at = row
            .requested_secs
            .map(|d| d.saturating_add(row.extended_secs))
            .and_then(|d| i64::try_from(d).ok().map(|d| active.plus_secs(d)));
        let end = row
            .ended_at
            .filter(|_| ["EXPIRED", "REVOKED", "CANCELLED"].contains(&row.ended.as_str()))
            .or_else(|| [ends_at, input.to, input.as_of].into_iter().flatten().min());
        row.used_secs = end.map(|e| {
            u64::try_from((e.unix_seconds() - active.unix_seconds()).max(0)).unwrap_or_default()
        });
    }
    if let Some(events) = input.activity.get(grant_id) {
        row.calls = Some(events.len() as u64);
        row.writes = Some(
            events
                .iter()
                .filter(|a| a.read_only == Some(false) && !a.refused())
                .count() as u64,
        );
        row.denied = Some(events.iter().filter(|a| a.refused()).count() as u64);
    }
    row
}

fn exceptions_of(
    input: &ReportInput,
    row: &GrantRow,
    chain: &BTreeMap<u64, &AuditRecord>,
    out: &mut Vec<Exception>,
) {
    let exception = |kind, at, detail: String| Exception {
        kind,
        at,
        grant_id: row.grant_id.clone(),
        who: row.requester.clone(),
        target: row.target.clone(),
        detail,
    };
    let activated = chain
        .values()
        .find(|r| r.action == AuditAction::BreakGlassActivated);
    if let Some(activated) = activated {
        let due = activated.at.plus_secs(input.review_within_secs);
        let reviewed = chain
            .values()
            .find(|r| r.action == AuditAction::PostReviewed);
        match reviewed {
            Some(r) if r.at > due => out.push(exception(
                ExceptionKind::BreakGlassReviewLate,
                r.at,
                format!("reviewed by {} at {}; due by {due}", r.actor, r.at),
            )),
            Some(_) => {}
            None if input.as_of.is_some_and(|now| now >= due) => out.push(exception(
                ExceptionKind::BreakGlassReviewMissing,
                due,
                format!(
                    "break-glass activated at {} under {}; its review was due by {due} and is not recorded",
                    activated.at, row.policies
                ),
            )),
            None => {}
        }
    }
    for r in chain.values() {
        if r.action == AuditAction::Revoked && r.actor == Actor::Service(Service::Sweeper) {
            out.push(exception(
                ExceptionKind::RevokedByGuardrail,
                r.at,
                detail(r, "reason"),
            ));
        }
    }
}

/// The columns of each table, in order.
pub const GRANT_COLUMNS: [&str; 24] = [
    "grant_id",
    "requester",
    "target",
    "reason",
    "ticket",
    "break_glass",
    "requested_at",
    "requested_secs",
    "extended_secs",
    "policies",
    "approvals_required",
    "approvers",
    "activated_at",
    "starts_at",
    "used_secs",
    "sessions",
    "calls",
    "writes",
    "denied",
    "state",
    "ended",
    "ended_by",
    "ended_at",
    "end_reason",
];
/// The columns of the per-target and per-person tables.
pub const TOTALS_COLUMNS: [&str; 9] = [
    "name",
    "grants",
    "activated",
    "break_glass",
    "used_secs",
    "sessions",
    "writes",
    "denied",
    "refused",
];
/// The columns of the exceptions table.
pub const EXCEPTION_COLUMNS: [&str; 6] = ["kind", "at", "grant_id", "who", "target", "detail"];

/// The CSV of one of a report's tables: `grants`, `targets`, `people` or `exceptions`.
pub fn csv(report: &Report, table: &str) -> Option<String> {
    let (columns, rows): (&[&str], Vec<serde_json::Value>) = match table {
        "grants" => (&GRANT_COLUMNS, report.grants.iter().map(to_value).collect()),
        "targets" => (
            &TOTALS_COLUMNS,
            report.by_target.iter().map(to_value).collect(),
        ),
        "people" => (
            &TOTALS_COLUMNS,
            report.by_person.iter().map(to_value).collect(),
        ),
        "exceptions" => (
            &EXCEPTION_COLUMNS,
            report.exceptions.iter().map(to_value).collect(),
        ),
        _ => return None,
    };
    let mut out = columns.join(",");
    out.push_str("\r\n");
    for row in rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| cell(row.get(*c).unwrap_or(&serde_json::Value::Null)))
            .collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    Some(out)
}

fn to_value<T: Serialize>(t: &T) -> serde_json::Value {
    serde_json::to_value(t).unwrap_or_default()
}

/// One CSV cell (RFC 4180). A text starting with `=`, `+`, `-`, `@`, a tab or a carriage
/// return gets a leading `'`, so a spreadsheet shows a requester's reason instead of running
/// it as a formula.
fn cell(value: &serde_json::Value) -> String {
    let text = match value {
        serde_json::Value::Null => return String::new(),
        serde_json::Value::String(s) => {
            if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{s}")
            } else {
                s.clone()
            }
        }
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}
