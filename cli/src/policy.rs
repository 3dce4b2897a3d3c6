//! `jit policy check` and `jit policy explain`: the rules as the functions load and apply
//! them, offline.

use std::collections::HashMap;
use std::path::Path;

use jit_core::clock::Timestamp;
use jit_core::domain::{GrantDuration, OnCall, TargetId};
use jit_core::identity::Caller;
use jit_core::policy::{AccessContext, Action, Decision, Isolation, Rules, Window};
use serde::Serialize;

use crate::api::Failure;

/// Loads the rules in `dir` as a function would: schema, policies, targets. A broken file is
/// reported with its name and line, and so is every target a deployment placed as `isolation`
/// says would refuse (intake and the issuer refuse them at run time).
/// What `jit policy check` found.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Always true: a broken set is a failure instead.
    pub ok: bool,
    /// How many policies loaded.
    pub policies: usize,
    /// The targets declared.
    pub targets: Vec<String>,
    /// The hash grants record.
    pub policy_hash: String,
}

/// What `jit policy explain` says the rules would do.
#[derive(Debug, Serialize)]
pub struct Explained {
    /// `refused`, `break-glass`, `auto-approved` or `needs-approval`.
    pub outcome: &'static str,
    /// Approvals needed, when it needs approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approvals_required: Option<u32>,
    /// Why, in words.
    pub why: String,
    /// The policies that decided.
    pub policies: Vec<String>,
}

pub fn check(dir: &Path, isolation: Isolation) -> Result<Report, Failure> {
    if let Some(a) = &isolation.broker_account
        && (a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(Failure::Usage(format!(
            "--broker-account `{a}` is not a 12-digit AWS account id"
        )));
    }
    let rules = Rules::load_dir(dir)
        .map_err(|e| Failure::Usage(e.to_string()))?
        .with_isolation(isolation);
    let refused: Vec<String> = rules
        .targets()
        .filter_map(|t| rules.isolation_problem(t))
        .collect();
    if !refused.is_empty() {
        return Err(Failure::Usage(refused.join("\n")));
    }
    Ok(Report {
        ok: true,
        policies: rules.policy_count(),
        targets: rules.targets().map(|t| t.id.to_string()).collect(),
        policy_hash: rules.hash().to_owned(),
    })
}

/// What the rules would do with a request: what intake and the approver decide, in order.
pub struct Question<'a> {
    /// The requester.
    pub user: &'a str,
    /// Their groups.
    pub groups: &'a [String],
    /// The target asked for.
    pub target: &'a str,
    /// For how long (`30m`, `1h`).
    pub duration: &'a str,
    /// The ticket, if any.
    pub ticket: Option<&'a str>,
    /// The reason.
    pub reason: &'a str,
    /// Whether break-glass is invoked.
    pub break_glass: bool,
    /// When (RFC 3339); now when absent.
    pub at: Option<&'a str>,
    /// The scheduled start (RFC 3339), if any: the window the rules judge starts there.
    pub starts_at: Option<&'a str>,
    /// The escalation level the on-call provider would say the requester is on call at.
    pub on_call_level: Option<u32>,
}

/// Refused (by which policy and why), needs N approvals, or auto-approved (by which policy).
pub fn explain(dir: &Path, q: &Question<'_>) -> Result<Explained, Failure> {
    let rules = Rules::load_dir(dir).map_err(|e| Failure::Usage(e.to_string()))?;
    let claims = HashMap::from([
        ("sub".to_owned(), q.user.to_owned()),
        (
            "groups".to_owned(),
            serde_json::to_string(&q.groups).unwrap_or_default(),
        ),
    ]);
    let caller =
        Caller::from_claims(&claims, "groups").map_err(|e| Failure::Usage(e.to_string()))?;
    let target = TargetId::parse(q.target).map_err(|e| Failure::Usage(e.to_string()))?;
    let declared = rules
        .target(&target)
        .ok_or_else(|| Failure::Usage(format!("target `{target}` is not declared")))?;
    let duration = GrantDuration::parse(q.duration).map_err(|e| Failure::Usage(e.to_string()))?;
    let parse_time = |text: &str| {
        Timestamp::parse_rfc3339(text)
            .ok_or_else(|| Failure::Usage(format!("`{text}` is not an RFC 3339 time")))
    };
    let at = match q.at {
        Some(text) => parse_time(text)?,
        None => Timestamp::from_unix_seconds(time::OffsetDateTime::now_utc().unix_timestamp()),
    };
    let starts_at = q.starts_at.map(parse_time).transpose()?;
    let context = AccessContext {
        duration_secs: duration.as_secs(),
        reason: q.reason.to_owned(),
        ticket: q.ticket.map(str::to_owned),
        break_glass: q.break_glass,
        at,
        window: Window::of(starts_at, at, duration.as_secs()),
        on_call: OnCall::not_asked(),
    };
    // The approver asks only for a target whose `on_call` says where to look.
    let mut decided = context.clone();
    // and never for a request scheduled ahead (on-call is known only for now).
    if declared.on_call.is_some() {
        decided.on_call = OnCall {
            asked: true,
            level: q.on_call_level.filter(|_| starts_at.is_none()),
            said: "as --on-call-level says".to_owned(),
            ..OnCall::default()
        };
    }
    let request = rules.decide(&caller, Action::Request, &target, &context);
    if !request.allowed {
        return Ok(refusal(request, Action::Request, &target));
    }
    if q.break_glass {
        let glass = rules.decide(&caller, Action::BreakGlass, &target, &decided);
        if !glass.allowed {
            return Ok(refusal(glass, Action::BreakGlass, &target));
        }
        return Ok(Explained {
            outcome: "break-glass",
            approvals_required: None,
            why: "opens at once, loudly, with a review owed afterwards".to_owned(),
            policies: glass.policies,
        });
    }
    let auto = rules.decide(&caller, Action::AutoApprove, &target, &decided);
    if auto.allowed {
        return Ok(Explained {
            outcome: "auto-approved",
            approvals_required: None,
            why: format!("approved at once by {}", auto.policies.join(", ")),
            policies: auto.policies,
        });
    }
    Ok(Explained {
        outcome: "needs-approval",
        approvals_required: Some(declared.approvals_required.max(1)),
        why: format!(
            "permitted to ask (by {}); waits for {} approval(s) from people the rules permit to \
             Approve, never the requester",
            request.policies.join(", "),
            declared.approvals_required.max(1)
        ),
        policies: request.policies,
    })
}

/// What the rules' refusal of `action` on `target` says.
fn refusal(decision: Decision, action: Action, target: &TargetId) -> Explained {
    Explained {
        outcome: "refused",
        approvals_required: None,
        why: decision.explain_denial(action, target.as_str()),
        policies: decision.policies,
    }
}
