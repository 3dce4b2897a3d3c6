//! Rules as Cedar policies: loaded from a directory (schema, `*.cedar`, `targets.json`),
//! validated against the schema once at start-up, and asked one question per decision.

mod index;
mod isolation;
mod load;
mod targets;

use index::PolicyIndex;
use load::Names;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityUid, PolicyId, PolicySet, RestrictedExpression,
    Schema,
};

use crate::activity::Activity;
use crate::clock::Timestamp;
use crate::domain::{Grant, OnCall, TargetId};
use crate::identity::Caller;

pub use isolation::{BROKER_ACCOUNT_ENV, Isolation, TARGETS_IN_BROKER_ACCOUNT_ENV};
pub use targets::{
    MAX_APPROVALS, OnCallPeople, OnCallSettings, SESSION_POLICY_MAX_CHARS, SlackSettings, Target,
};

/// Where the Lambda layer puts the policy directory.
pub const DEFAULT_POLICY_DIR: &str = "/opt/policies";
/// The environment variable that overrides [`DEFAULT_POLICY_DIR`].
pub const POLICY_DIR_ENV: &str = "JIT_POLICY_DIR";

/// What a person (or the rules on their behalf) wants to do to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Ask for access.
    Request,
    /// Be granted at once, without reviewers.
    AutoApprove,
    /// Be granted at once in an emergency, with a review owed.
    BreakGlass,
    /// Review someone else's request.
    Approve,
    /// End someone's access early.
    Revoke,
    /// Read requests and the audit trail.
    ReadAudit,
    /// Have one's own active grant extended at once, without reviewers.
    Extend,
}

impl Action {
    /// Every action the schema declares.
    pub const ALL: [Self; 7] = [
        Self::Request,
        Self::AutoApprove,
        Self::BreakGlass,
        Self::Approve,
        Self::Revoke,
        Self::ReadAudit,
        Self::Extend,
    ];

    /// The action's name in policies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "Request",
            Self::AutoApprove => "AutoApprove",
            Self::BreakGlass => "BreakGlass",
            Self::Approve => "Approve",
            Self::Revoke => "Revoke",
            Self::ReadAudit => "ReadAudit",
            Self::Extend => "Extend",
        }
    }
}

/// What a guardrail does when it fires. Guardrails are detective: they are evaluated for each
/// event a grant's session made (what IAM can prevent belongs in the boundary or the session
/// policy, and a guardrail then fires on the `AccessDenied`). Each satisfied `permit` of the
/// action fires, named by its `@id`; a satisfied `forbid` silences every guardrail of its action
/// for that event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Guardrail {
    /// Tell people: the alarm topic and the trail.
    Alert,
    /// End the grant through the one revocation path, live sessions included.
    Revoke,
}

impl Guardrail {
    /// Both guardrail actions.
    pub const ALL: [Self; 2] = [Self::Alert, Self::Revoke];

    /// The action's name in policies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alert => "GuardrailAlert",
            Self::Revoke => "GuardrailRevoke",
        }
    }
}

/// The guardrails one event fired, by what they do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fired {
    /// The `@id`s of the alerting guardrails that fired.
    pub alerts: Vec<String>,
    /// The `@id`s of the revoking guardrails that fired.
    pub revokes: Vec<String>,
    /// Guardrails that failed to evaluate (skipped, as Cedar does).
    pub errors: Vec<String>,
}

/// What is known about a request when it is decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessContext {
    /// The duration asked for, in seconds.
    pub duration_secs: u32,
    /// The reason given.
    pub reason: String,
    /// The ticket given, if any.
    pub ticket: Option<String>,
    /// Whether break-glass is invoked.
    pub break_glass: bool,
    /// When the decision is made.
    pub at: Timestamp,
    /// The time the access would cover: from a scheduled start, or from the decision.
    pub window: Window,
    /// What the on-call provider said about the requester (only the approver asks; elsewhere
    /// not asked, so never on call).
    pub on_call: OnCall,
}

/// The time a decision is about: when access would open and end. The rules judge the window
/// (a request on Friday evening for Sunday night is a Sunday-night request), not only the
/// moment of asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// When access opens.
    pub start: Timestamp,
    /// When it ends (exclusive).
    pub end: Timestamp,
    /// Whether the start was scheduled ahead rather than "as soon as granted".
    pub scheduled: bool,
}

impl Window {
    /// `duration_secs` from `starts_at`, or from `at` when nothing is scheduled.
    pub fn of(starts_at: Option<Timestamp>, at: Timestamp, duration_secs: u32) -> Self {
        let start = starts_at.unwrap_or(at);
        Self {
            start,
            end: start.plus_secs(i64::from(duration_secs)),
            scheduled: starts_at.is_some(),
        }
    }
}

impl AccessContext {
    /// The context of a stored request, decided at `at`: its window is its scheduled start,
    /// or its activation, or `at` while it waits to open at once.
    pub fn of_grant(grant: &Grant, at: Timestamp) -> Self {
        let start = grant.starts_at.or(grant.activated_at);
        let mut window = Window::of(start, at, grant.duration.as_secs());
        window.scheduled = grant.starts_at.is_some();
        if let Some(end) = grant.ends_at {
            window.end = end;
        }
        Self {
            duration_secs: grant.duration.as_secs(),
            reason: grant.reason.as_str().to_owned(),
            ticket: grant.ticket.as_ref().map(ToString::to_string),
            break_glass: grant.break_glass,
            at,
            window,
            on_call: OnCall::not_asked(),
        }
    }
}

/// A rules decision, with what made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the action is permitted.
    pub allowed: bool,
    /// The policies that decided: the permits that allowed it, or the forbids that denied it
    /// (empty when nothing permitted it).
    pub policies: Vec<String>,
    /// The `@reason` annotations of the forbids that denied it.
    pub reasons: Vec<String>,
    /// Policies that failed to evaluate (they are skipped, as Cedar does).
    pub errors: Vec<String>,
}

impl Decision {
    /// The refusal for a target that is not declared.
    fn unknown_target(target: &TargetId) -> Self {
        Self {
            allowed: false,
            policies: Vec::new(),
            reasons: Vec::new(),
            errors: vec![format!("unknown target `{target}`")],
        }
    }

    /// Why it was denied, in words for the caller.
    pub fn explain_denial(&self, action: Action, target: &str) -> String {
        if !self.reasons.is_empty() {
            format!(
                "{} (policy {})",
                self.reasons.join("; "),
                self.policies.join(", ")
            )
        } else if !self.policies.is_empty() {
            format!("forbidden by policy {}", self.policies.join(", "))
        } else {
            format!(
                "no policy permits you to {} on target `{target}`",
                action.as_str()
            )
        }
    }
}

/// Why the rules could not be loaded. Each message names the file (and line) to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A file could not be read.
    #[error("cannot read `{path}`: {why}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What failed.
        why: String,
    },
    /// A file is not valid.
    #[error("{location}: {why}")]
    Invalid {
        /// `file` or `file:line`.
        location: String,
        /// What is wrong.
        why: String,
    },
}

/// The loaded rules: schema, policies and targets, with the hash that identifies them.
#[derive(Debug)]
pub struct Rules {
    schema: Schema,
    policies: PolicySet,
    targets: BTreeMap<TargetId, (Target, Entity)>,
    index: PolicyIndex,
    reasons: HashMap<PolicyId, String>,
    /// The requirement each `@requirement`-annotated permit fills.
    requirements: HashMap<PolicyId, String>,
    hash: String,
    names: Names,
    authorizer: Authorizer,
    isolation: Isolation,
    on_call_people: OnCallPeople,
    slack: Option<SlackSettings>,
}

impl Rules {
    /// The same rules in a deployment placed as `isolation` says.
    pub fn with_isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = isolation;
        self
    }

    /// Where the broker runs and whether targets may share its account.
    pub fn isolation(&self) -> &Isolation {
        &self.isolation
    }

    /// Why `target` may not be asked for in this deployment (its role in the broker's account
    /// without the opt-in, or elsewhere without a revoker role), naming where it is declared.
    pub fn isolation_problem(&self, target: &Target) -> Option<String> {
        self.isolation
            .problem(
                &target.binding.role_arn,
                target.binding.revoker_role_arn.as_ref(),
            )
            .map(|why| format!("target `{}` ({}): {why}", target.id, target.location))
    }

    /// The SHA-256 of the schema, targets and policy files: which rules made a decision.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// One target, if declared.
    pub fn target(&self, id: &TargetId) -> Option<&Target> {
        self.targets.get(id).map(|(t, _)| t)
    }

    /// `person`'s user id at the on-call provider, as the targets file maps it; `None` for
    /// someone it does not name (never on call).
    pub fn on_call_id(&self, person: &crate::domain::UserId) -> Option<&str> {
        self.on_call_people
            .people
            .get(person.as_str())
            .map(String::as_str)
    }

    /// Approvals in Slack, when the targets file sets them up.
    pub fn slack(&self) -> Option<&SlackSettings> {
        self.slack.as_ref()
    }

    /// Every target, by id.
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.targets.values().map(|(t, _)| t)
    }

    /// How many policies are loaded.
    pub fn policy_count(&self) -> usize {
        self.policies.policies().count()
    }

    /// May `caller` do `action` on `target` in `context`? An unknown target is never permitted.
    pub fn decide(
        &self,
        caller: &Caller,
        action: Action,
        target: &TargetId,
        context: &AccessContext,
    ) -> Decision {
        let Some((_, target_entity)) = self.targets.get(target) else {
            return Decision::unknown_target(target);
        };
        let mut pairs = time_context(context.at);
        pairs.extend([
            (
                "duration_secs".to_owned(),
                RestrictedExpression::new_long(i64::from(context.duration_secs)),
            ),
            (
                "reason".to_owned(),
                RestrictedExpression::new_string(context.reason.clone()),
            ),
            (
                "break_glass".to_owned(),
                RestrictedExpression::new_bool(context.break_glass),
            ),
            ("window".to_owned(), window_context(&context.window)),
            ("on_call".to_owned(), on_call_context(&context.on_call)),
        ]);
        if let Some(ticket) = &context.ticket {
            pairs.push((
                "ticket".to_owned(),
                RestrictedExpression::new_string(ticket.clone()),
            ));
        }
        self.ask(
            caller,
            action.as_str(),
            target_entity.uid(),
            Some(target_entity.clone()),
            pairs,
        )
    }

    /// Whether `caller` may see `grant`: its requester, someone who may approve it, or an
    /// auditor of its target. Everyone else is to be told it does not exist.
    pub fn may_see(&self, grant: &Grant, caller: &Caller, at: Timestamp) -> bool {
        grant.requester == caller.user
            || self
                .decide(
                    caller,
                    Action::Approve,
                    &grant.target,
                    &AccessContext::of_grant(grant, at),
                )
                .allowed
            || self.decide_read(caller, &grant.target, at).allowed
    }

    /// The requirements of `grant` that an approver may fill, given the rules' `Approve`
    /// `decision` for them: for each permit that let them, its `@requirement`, or every
    /// requirement for a permit without one. Empty when the decision refused, or the grant
    /// has no named requirements.
    pub fn fills(&self, grant: &Grant, decision: &Decision) -> Vec<String> {
        if grant.requirements.is_empty() || !decision.allowed {
            return Vec::new();
        }
        let named: Vec<Option<&String>> = decision
            .policies
            .iter()
            .map(|p| self.requirements.get(&PolicyId::new(p)))
            .collect();
        grant
            .requirements
            .iter()
            .filter(|r| named.iter().any(|n| n.is_none_or(|name| name == &r.name)))
            .map(|r| r.name.clone())
            .collect()
    }

    /// May `caller` read the whole audit trail at `at`?
    pub fn decide_audit(&self, caller: &Caller, at: Timestamp) -> Decision {
        let trail = self.names.audit_trail();
        self.ask(
            caller,
            Action::ReadAudit.as_str(),
            trail,
            None,
            time_context(at),
        )
    }

    /// May `caller` read requests for `target` as an auditor at `at`?
    pub fn decide_read(&self, caller: &Caller, target: &TargetId, at: Timestamp) -> Decision {
        let Some((_, entity)) = self.targets.get(target) else {
            return Decision::unknown_target(target);
        };
        let (uid, entity) = (entity.uid(), Some(entity.clone()));
        self.ask(
            caller,
            Action::ReadAudit.as_str(),
            uid,
            entity,
            time_context(at),
        )
    }

    /// The guardrails that `activity`, made with a session of `grant`, fires at `at`, when the
    /// grant's sessions had `denied_recently` calls refused in the last five minutes (this one
    /// included). The principal is the requester with the groups recorded on the grant, the
    /// resource its target, and the context the event and the grant (see the schema's
    /// `GuardrailContext`).
    pub fn guardrails(
        &self,
        grant: &Grant,
        activity: &Activity,
        denied_recently: u32,
        at: Timestamp,
    ) -> Fired {
        let Some((_, target)) = self.targets.get(&grant.target) else {
            return Fired {
                errors: Decision::unknown_target(&grant.target).errors,
                ..Fired::default()
            };
        };
        let requester = Caller {
            user: grant.requester.clone(),
            email: None,
            groups: grant.requester_groups.clone(),
        };
        let text = |s: &str| RestrictedExpression::new_string(s.to_owned());
        let secs_left = grant
            .ends_at
            .map_or(0, |end| (end.unix_seconds() - at.unix_seconds()).max(0));
        let mut context = time_context(at);
        context.extend([
            ("kind".to_owned(), text(activity.kind.as_str())),
            ("service".to_owned(), text(&activity.service)),
            ("action".to_owned(), text(&activity.action)),
            ("region".to_owned(), text(&activity.region)),
            (
                "read_only".to_owned(),
                RestrictedExpression::new_bool(activity.read_only == Some(true)),
            ),
            (
                "resources".to_owned(),
                RestrictedExpression::new_set(activity.resources.iter().map(|r| text(r))),
            ),
            ("reason".to_owned(), text(grant.reason.as_str())),
            (
                "break_glass".to_owned(),
                RestrictedExpression::new_bool(grant.break_glass),
            ),
            (
                "secs_left".to_owned(),
                RestrictedExpression::new_long(secs_left),
            ),
            (
                "denied_recently".to_owned(),
                RestrictedExpression::new_long(i64::from(denied_recently)),
            ),
        ]);
        let optional = [
            ("error_code", activity.error_code.as_deref()),
            ("source_ip", activity.source_ip.as_deref()),
            ("ticket", grant.ticket.as_ref().map(|t| t.as_str())),
        ];
        context.extend(
            optional
                .into_iter()
                .filter_map(|(name, value)| value.map(|v| (name.to_owned(), text(v)))),
        );
        let mut fired = Fired::default();
        for guardrail in Guardrail::ALL {
            let decision = self.ask(
                &requester,
                guardrail.as_str(),
                target.uid(),
                Some(target.clone()),
                context.clone(),
            );
            fired.errors.extend(decision.errors);
            if decision.allowed {
                match guardrail {
                    Guardrail::Alert => fired.alerts = decision.policies,
                    Guardrail::Revoke => fired.revokes = decision.policies,
                }
            }
        }
        fired
    }

    fn ask(
        &self,
        caller: &Caller,
        action: &str,
        resource: EntityUid,
        resource_entity: Option<Entity>,
        context: Vec<(String, RestrictedExpression)>,
    ) -> Decision {
        let action_uid = Names::uid(&self.names.action, action);
        let prepared = self
            .entities(caller, resource_entity)
            .and_then(|(principal, entities)| {
                let context = Context::from_pairs(context).map_err(|e| e.to_string())?;
                let request = cedar_policy::Request::new(
                    principal,
                    action_uid.clone(),
                    resource,
                    context,
                    Some(&self.schema),
                )
                .map_err(|e| e.to_string())?;
                Ok((request, entities))
            });
        let (request, entities) = match prepared {
            Ok(prepared) => prepared,
            Err(why) => {
                return Decision {
                    allowed: false,
                    policies: Vec::new(),
                    reasons: Vec::new(),
                    errors: vec![why],
                };
            }
        };
        let answer = self.index.decide(
            &self.authorizer,
            &request,
            &action_uid,
            caller.groups.iter().map(|g| g.as_str()),
            &entities,
        );
        let reasons = if answer.allowed {
            Vec::new()
        } else {
            answer
                .policies
                .iter()
                .filter_map(|p| self.reasons.get(&PolicyId::new(p)).cloned())
                .collect()
        };
        Decision {
            allowed: answer.allowed,
            policies: answer.policies,
            reasons,
            errors: answer.errors,
        }
    }

    /// The caller as a Cedar principal, and the entities a question about `resource` needs:
    /// the caller, their groups, the audit trail and the resource.
    fn entities(
        &self,
        caller: &Caller,
        resource: Option<Entity>,
    ) -> Result<(EntityUid, Entities), String> {
        let principal = Names::uid(&self.names.user, caller.user.as_str());
        let groups: HashSet<EntityUid> = caller
            .groups
            .iter()
            .map(|g| Names::uid(&self.names.group, g.as_str()))
            .collect();
        let mut attrs = HashMap::new();
        if let Some(email) = &caller.email {
            attrs.insert(
                "email".to_owned(),
                RestrictedExpression::new_string(email.clone()),
            );
        }
        let user =
            Entity::new(principal.clone(), attrs, groups.clone()).map_err(|e| e.to_string())?;
        let entities = groups
            .into_iter()
            .map(|g| Entity::new_no_attrs(g, HashSet::new()))
            .chain([
                user,
                Entity::new_no_attrs(self.names.audit_trail(), HashSet::new()),
            ])
            .chain(resource);
        let entities = Entities::from_entities(entities, None).map_err(|e| e.to_string())?;
        Ok((principal, entities))
    }
}

/// The context every action has: the decision's UTC hour and ISO weekday.
fn time_context(at: Timestamp) -> Vec<(String, RestrictedExpression)> {
    let (hour, weekday) = utc_hour_and_weekday(at);
    vec![
        ("utc_hour".to_owned(), RestrictedExpression::new_long(hour)),
        (
            "utc_weekday".to_owned(),
            RestrictedExpression::new_long(weekday),
        ),
    ]
}

/// The window as the rules see it: its start and end in Unix seconds, whether it was
/// scheduled, and the UTC hour and weekday of its start and of its last second (a window
/// ending at 19:00 ends within the 18:00 hour).
fn window_context(window: &Window) -> RestrictedExpression {
    let (start_hour, start_weekday) = utc_hour_and_weekday(window.start);
    let last = window.end.plus_secs(-1).max(window.start);
    let (end_hour, end_weekday) = utc_hour_and_weekday(last);
    let long = RestrictedExpression::new_long;
    RestrictedExpression::new_record([
        ("starts_at".to_owned(), long(window.start.unix_seconds())),
        ("ends_at".to_owned(), long(window.end.unix_seconds())),
        (
            "scheduled".to_owned(),
            RestrictedExpression::new_bool(window.scheduled),
        ),
        ("start_utc_hour".to_owned(), long(start_hour)),
        ("start_utc_weekday".to_owned(), long(start_weekday)),
        ("end_utc_hour".to_owned(), long(end_hour)),
        ("end_utc_weekday".to_owned(), long(end_weekday)),
    ])
    .unwrap_or_else(|_| RestrictedExpression::new_bool(false))
}

/// What the on-call provider said, as the rules see it: whether the target asks, whether
/// the person is on call, at which escalation level (0 when not on call), and when the shift
/// ends (absent for a permanent entry, or when not on call).
fn on_call_context(on_call: &OnCall) -> RestrictedExpression {
    let mut pairs = vec![
        (
            "asked".to_owned(),
            RestrictedExpression::new_bool(on_call.asked),
        ),
        (
            "on_call".to_owned(),
            RestrictedExpression::new_bool(on_call.on_call()),
        ),
        (
            "level".to_owned(),
            RestrictedExpression::new_long(i64::from(on_call.level.unwrap_or(0))),
        ),
    ];
    if let Some(end) = on_call.shift_ends_at.filter(|_| on_call.on_call()) {
        pairs.push((
            "shift_ends_at".to_owned(),
            RestrictedExpression::new_long(end.unix_seconds()),
        ));
    }
    RestrictedExpression::new_record(pairs)
        .unwrap_or_else(|_| RestrictedExpression::new_bool(false))
}

/// The UTC hour (0-23) and ISO weekday (1 = Monday .. 7 = Sunday) of `at`.
fn utc_hour_and_weekday(at: Timestamp) -> (i64, i64) {
    let secs = at.unix_seconds();
    let hour = secs.rem_euclid(86_400) / 3600;
    // 1970-01-01 was a Thursday (ISO 4).
    let weekday = (secs.div_euclid(86_400) + 3).rem_euclid(7) + 1;
    (hour, weekday)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Caller;

    #[test]
    fn hours_and_weekdays_are_utc_and_iso() {
        // 2026-11-27 was a Friday; 20:37 UTC.
        assert_eq!(
            utc_hour_and_weekday(Timestamp::from_unix_seconds(1_795_811_820)),
            (20, 5)
        );
        // 1970-01-04 was a Sunday.
        assert_eq!(
            utc_hour_and_weekday(Timestamp::from_unix_seconds(3 * 86_400)),
            (0, 7)
        );
    }

    /// The split policy set answers exactly as Cedar does over the whole set.
    #[test]
    fn the_index_decides_exactly_as_the_whole_set() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/policies");
        let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap_or_default();
        let tricky = r#"
            permit (principal == Jit::User::"u0", action, resource);
            permit (principal is Jit::User in Jit::Group::"g1", action in [Jit::Action::"Approve", Jit::Action::"Revoke"], resource);
            forbid (principal in Jit::Group::"g2", action == Jit::Action::"Request", resource) when { context.duration_secs > 1800 };
            permit (principal, action == Jit::Action::"Request", resource) when { principal in Jit::Group::"g3" };
            forbid (principal, action, resource) when { context has ticket && context.ticket == "BLOCKED-1" };
            permit (principal in Jit::Group::"g3", action == Jit::Action::"ReadAudit", resource in Jit::AuditTrail::"all");
        "#;
        let rules = Rules::from_sources(
            &read("schema.cedarschema"),
            vec![
                ("access.cedar".to_owned(), read("access.cedar")),
                ("auto-approve.cedar".to_owned(), read("auto-approve.cedar")),
                ("tricky.cedar".to_owned(), tricky.to_owned()),
            ],
            &read("targets.json"),
        )
        .unwrap();
        let groups = [
            "",
            "g1",
            "g2",
            "g3",
            "g1 g2",
            "g2 g3",
            "sre",
            "sre g2",
            "dba security",
            "engineers g3",
        ];
        let mut compared = 0;
        for (n, group_list) in groups.iter().enumerate() {
            let claims = std::collections::HashMap::from([
                ("sub".to_owned(), format!("u{}", n % 3)),
                (
                    "groups".to_owned(),
                    serde_json::to_string(&group_list.split_whitespace().collect::<Vec<_>>())
                        .unwrap(),
                ),
            ]);
            let caller = Caller::from_claims(&claims, "groups").unwrap();
            for action in Action::ALL {
                for (target, entity) in rules.targets.values() {
                    for (secs, ticket) in [
                        (900, None),
                        (3600, Some("INC-1")),
                        (7200, Some("BLOCKED-1")),
                    ] {
                        let at = Timestamp::from_unix_seconds(1_799_834_400 + i64::from(secs));
                        let (hour, weekday) = utc_hour_and_weekday(at);
                        let mut pairs = vec![
                            ("utc_hour".to_owned(), RestrictedExpression::new_long(hour)),
                            (
                                "utc_weekday".to_owned(),
                                RestrictedExpression::new_long(weekday),
                            ),
                        ];
                        let resource = if action == Action::ReadAudit {
                            entity.uid()
                        } else {
                            pairs.extend([
                                (
                                    "duration_secs".to_owned(),
                                    RestrictedExpression::new_long(i64::from(secs)),
                                ),
                                (
                                    "reason".to_owned(),
                                    RestrictedExpression::new_string("r".to_owned()),
                                ),
                                (
                                    "break_glass".to_owned(),
                                    RestrictedExpression::new_bool(secs == 900),
                                ),
                                (
                                    "window".to_owned(),
                                    window_context(&Window::of(None, at, secs)),
                                ),
                                (
                                    "on_call".to_owned(),
                                    on_call_context(&OnCall {
                                        asked: true,
                                        level: (secs == 3600).then_some(1),
                                        ..OnCall::default()
                                    }),
                                ),
                            ]);
                            if let Some(t) = ticket {
                                pairs.push((
                                    "ticket".to_owned(),
                                    RestrictedExpression::new_string(t.to_owned()),
                                ));
                            }
                            entity.uid()
                        };
                        let (principal, entities) =
                            rules.entities(&caller, Some(entity.clone())).unwrap();
                        let request = cedar_policy::Request::new(
                            principal,
                            Names::uid(&rules.names.action, action.as_str()),
                            resource,
                            Context::from_pairs(pairs.clone()).unwrap(),
                            Some(&rules.schema),
                        )
                        .unwrap();
                        let whole =
                            rules
                                .authorizer
                                .is_authorized(&request, &rules.policies, &entities);
                        let mut whole_policies: Vec<String> = whole
                            .diagnostics()
                            .reason()
                            .map(ToString::to_string)
                            .collect();
                        whole_policies.sort();
                        let split = rules.ask(
                            &caller,
                            action.as_str(),
                            entity.uid(),
                            Some(entity.clone()),
                            pairs,
                        );
                        assert_eq!(
                            (split.allowed, &split.policies),
                            (
                                whole.decision() == cedar_policy::Decision::Allow,
                                &whole_policies
                            ),
                            "{group_list:?} {action:?} {} {secs}",
                            target.id
                        );
                        compared += 1;
                    }
                }
            }
        }
        assert_eq!(compared, 10 * 7 * 4 * 3);
    }
}
