//! Rules as Cedar policies: loaded from a directory (schema, `*.cedar`, `targets.json`),
//! validated against the schema once at start-up, and asked one question per decision.

mod targets;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityId, EntityTypeName,
    EntityUid, PolicyId, PolicySet, RestrictedExpression, Schema, ValidationMode, Validator,
};
use miette::Diagnostic;
use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::domain::{Grant, TargetId};
use crate::identity::Caller;

pub use targets::{MAX_APPROVALS, SESSION_POLICY_MAX_CHARS, Target};

/// Where the Lambda layer puts the policy directory.
pub const DEFAULT_POLICY_DIR: &str = "/opt/policies";
/// The environment variable that overrides [`DEFAULT_POLICY_DIR`].
pub const POLICY_DIR_ENV: &str = "JIT_POLICY_DIR";

const SCHEMA_FILE: &str = "schema.cedarschema";
const TARGETS_FILE: &str = "targets.json";

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
}

impl Action {
    /// The action's name in policies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "Request",
            Self::AutoApprove => "AutoApprove",
            Self::BreakGlass => "BreakGlass",
            Self::Approve => "Approve",
            Self::Revoke => "Revoke",
            Self::ReadAudit => "ReadAudit",
        }
    }
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
}

impl AccessContext {
    /// The context of a stored request, decided at `at`.
    pub fn of_grant(grant: &Grant, at: Timestamp) -> Self {
        Self {
            duration_secs: grant.duration.as_secs(),
            reason: grant.reason.as_str().to_owned(),
            ticket: grant.ticket.as_ref().map(ToString::to_string),
            break_glass: grant.break_glass,
            at,
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
    reasons: HashMap<PolicyId, String>,
    hash: String,
    names: Names,
    authorizer: Authorizer,
}

/// The schema's entity type names, parsed once.
#[derive(Debug, Clone)]
struct Names {
    user: EntityTypeName,
    group: EntityTypeName,
    target: EntityTypeName,
    trail: EntityTypeName,
    action: EntityTypeName,
}

impl Names {
    fn new() -> Result<Self, PolicyError> {
        let parse = |name: &str| {
            EntityTypeName::from_str(name).map_err(|e| PolicyError::Invalid {
                location: SCHEMA_FILE.to_owned(),
                why: format!("entity type `{name}`: {e}"),
            })
        };
        Ok(Self {
            user: parse("Jit::User")?,
            group: parse("Jit::Group")?,
            target: parse("Jit::Target")?,
            trail: parse("Jit::AuditTrail")?,
            action: parse("Jit::Action")?,
        })
    }

    fn uid(kind: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(kind.clone(), EntityId::new(id))
    }

    fn audit_trail(&self) -> EntityUid {
        Self::uid(&self.trail, "all")
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .map_or(1, |before| before.matches('\n').count() + 1)
}

/// `file:line` for the first labelled span of a Cedar diagnostic, else `file`.
fn locate(file: &str, text: &str, diagnostic: &dyn Diagnostic) -> String {
    diagnostic
        .labels()
        .and_then(|mut labels| labels.next())
        .map_or_else(
            || file.to_owned(),
            |label| format!("{file}:{}", line_of(text, label.offset())),
        )
}

impl Rules {
    /// Loads the rules from the directory `JIT_POLICY_DIR` names, or [`DEFAULT_POLICY_DIR`].
    pub fn load_from_env() -> Result<Self, PolicyError> {
        let dir = std::env::var_os(POLICY_DIR_ENV)
            .map_or_else(|| PathBuf::from(DEFAULT_POLICY_DIR), PathBuf::from);
        Self::load_dir(&dir)
    }

    /// Loads `schema.cedarschema`, every `*.cedar` file and `targets.json` from `dir`.
    pub fn load_dir(dir: &Path) -> Result<Self, PolicyError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|e| PolicyError::Read {
                path: path.to_owned(),
                why: e.to_string(),
            })
        };
        let entries = std::fs::read_dir(dir).map_err(|e| PolicyError::Read {
            path: dir.to_owned(),
            why: e.to_string(),
        })?;
        let mut policy_files = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|e| PolicyError::Read {
                    path: dir.to_owned(),
                    why: e.to_string(),
                })?
                .path();
            if path.extension().is_some_and(|e| e == "cedar") {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                policy_files.push((name, read(&path)?));
            }
        }
        Self::from_sources(
            &read(&dir.join(SCHEMA_FILE))?,
            policy_files,
            &read(&dir.join(TARGETS_FILE))?,
        )
    }

    /// Builds the rules from the texts of the schema, the policy files (name, text) and the
    /// targets file.
    pub fn from_sources(
        schema_text: &str,
        mut policy_files: Vec<(String, String)>,
        targets_text: &str,
    ) -> Result<Self, PolicyError> {
        policy_files.sort();
        let names = Names::new()?;
        let (schema, _warnings) =
            Schema::from_cedarschema_str(schema_text).map_err(|e| PolicyError::Invalid {
                location: locate(SCHEMA_FILE, schema_text, &e),
                why: e.to_string(),
            })?;

        let mut policies = PolicySet::new();
        let mut origin: HashMap<PolicyId, usize> = HashMap::new();
        let mut reasons = HashMap::new();
        for (index, (file, text)) in policy_files.iter().enumerate() {
            let parsed = PolicySet::from_str(text).map_err(|e| PolicyError::Invalid {
                location: locate(file, text, &e),
                why: e.to_string(),
            })?;
            let stem = file.trim_end_matches(".cedar");
            for (n, policy) in parsed.policies().enumerate() {
                let id = policy
                    .annotation("id")
                    .map_or_else(|| format!("{stem}#{n}"), str::to_owned);
                let id = PolicyId::new(id);
                if let Some(reason) = policy.annotation("reason") {
                    reasons.insert(id.clone(), reason.to_owned());
                }
                if let Some(other) = origin.insert(id.clone(), index) {
                    let other = policy_files.get(other).map_or("", |(f, _)| f.as_str());
                    return Err(PolicyError::Invalid {
                        location: file.clone(),
                        why: format!("policy id `{id}` is also used in `{other}`"),
                    });
                }
                policies
                    .add(policy.new_id(id))
                    .map_err(|e| PolicyError::Invalid {
                        location: file.clone(),
                        why: e.to_string(),
                    })?;
            }
        }
        if policies.is_empty() {
            return Err(PolicyError::Invalid {
                location: "*.cedar".to_owned(),
                why: "no policies found: every request would be refused".to_owned(),
            });
        }
        let validation = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        if let Some(error) = validation.validation_errors().next() {
            let file_index = origin.get(error.policy_id()).copied().unwrap_or(0);
            let (file, text) = policy_files
                .get(file_index)
                .map_or(("?", ""), |(f, t)| (f.as_str(), t.as_str()));
            return Err(PolicyError::Invalid {
                location: locate(file, text, error),
                why: format!("policy `{}`: {error}", error.policy_id()),
            });
        }

        let parsed_targets =
            targets::parse_targets(targets_text).map_err(|why| PolicyError::Invalid {
                location: TARGETS_FILE.to_owned(),
                why,
            })?;
        let mut targets = BTreeMap::new();
        for target in parsed_targets {
            let entity = target_entity(&names, &target).map_err(|why| PolicyError::Invalid {
                location: TARGETS_FILE.to_owned(),
                why: format!("target `{}`: {why}", target.id),
            })?;
            targets.insert(target.id.clone(), (target, entity));
        }
        // Check the target entities against the schema once, here, so a decision never meets
        // an entity the policies were not validated for.
        Entities::from_entities(
            targets
                .values()
                .map(|(_, e)| e.clone())
                .chain([Entity::new_no_attrs(names.audit_trail(), HashSet::new())]),
            Some(&schema),
        )
        .map_err(|e| PolicyError::Invalid {
            location: TARGETS_FILE.to_owned(),
            why: e.to_string(),
        })?;

        let mut h = Sha256::new();
        for (name, text) in [(SCHEMA_FILE, schema_text), (TARGETS_FILE, targets_text)]
            .into_iter()
            .chain(policy_files.iter().map(|(n, t)| (n.as_str(), t.as_str())))
        {
            h.update((name.len() as u64).to_be_bytes());
            h.update(name);
            h.update((text.len() as u64).to_be_bytes());
            h.update(text);
        }
        Ok(Self {
            schema,
            policies,
            targets,
            reasons,
            hash: hex::encode(h.finalize()),
            names,
            authorizer: Authorizer::new(),
        })
    }

    /// The SHA-256 of the schema, targets and policy files: which rules made a decision.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// One target, if declared.
    pub fn target(&self, id: &TargetId) -> Option<&Target> {
        self.targets.get(id).map(|(t, _)| t)
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
            return Decision {
                allowed: false,
                policies: Vec::new(),
                reasons: Vec::new(),
                errors: vec![format!("unknown target `{target}`")],
            };
        };
        let (hour, weekday) = utc_hour_and_weekday(context.at);
        let mut pairs = vec![
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
            ("utc_hour".to_owned(), RestrictedExpression::new_long(hour)),
            (
                "utc_weekday".to_owned(),
                RestrictedExpression::new_long(weekday),
            ),
        ];
        if let Some(ticket) = &context.ticket {
            pairs.push((
                "ticket".to_owned(),
                RestrictedExpression::new_string(ticket.clone()),
            ));
        }
        self.ask(
            caller,
            action,
            target_entity.uid(),
            Some(target_entity.clone()),
            pairs,
        )
    }

    /// May `caller` read the whole audit trail at `at`?
    pub fn decide_audit(&self, caller: &Caller, at: Timestamp) -> Decision {
        let (hour, weekday) = utc_hour_and_weekday(at);
        let pairs = vec![
            ("utc_hour".to_owned(), RestrictedExpression::new_long(hour)),
            (
                "utc_weekday".to_owned(),
                RestrictedExpression::new_long(weekday),
            ),
        ];
        self.ask(
            caller,
            Action::ReadAudit,
            self.names.audit_trail(),
            None,
            pairs,
        )
    }

    /// May `caller` read requests for `target` as an auditor at `at`?
    pub fn decide_read(&self, caller: &Caller, target: &TargetId, at: Timestamp) -> Decision {
        let Some((_, target_entity)) = self.targets.get(target) else {
            return Decision {
                allowed: false,
                policies: Vec::new(),
                reasons: Vec::new(),
                errors: vec![format!("unknown target `{target}`")],
            };
        };
        let (hour, weekday) = utc_hour_and_weekday(at);
        let pairs = vec![
            ("utc_hour".to_owned(), RestrictedExpression::new_long(hour)),
            (
                "utc_weekday".to_owned(),
                RestrictedExpression::new_long(weekday),
            ),
        ];
        self.ask(
            caller,
            Action::ReadAudit,
            target_entity.uid(),
            Some(target_entity.clone()),
            pairs,
        )
    }

    fn ask(
        &self,
        caller: &Caller,
        action: Action,
        resource: EntityUid,
        resource_entity: Option<Entity>,
        context: Vec<(String, RestrictedExpression)>,
    ) -> Decision {
        let denied = |why: String| Decision {
            allowed: false,
            policies: Vec::new(),
            reasons: Vec::new(),
            errors: vec![why],
        };
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
        let user = match Entity::new(principal.clone(), attrs, groups.clone()) {
            Ok(user) => user,
            Err(e) => return denied(e.to_string()),
        };
        let entities = groups
            .into_iter()
            .map(|g| Entity::new_no_attrs(g, HashSet::new()))
            .chain([
                user,
                Entity::new_no_attrs(self.names.audit_trail(), HashSet::new()),
            ])
            .chain(resource_entity);
        let entities = match Entities::from_entities(entities, None) {
            Ok(entities) => entities,
            Err(e) => return denied(e.to_string()),
        };
        let context = match Context::from_pairs(context) {
            Ok(context) => context,
            Err(e) => return denied(e.to_string()),
        };
        let request = match cedar_policy::Request::new(
            principal,
            Names::uid(&self.names.action, action.as_str()),
            resource,
            context,
            Some(&self.schema),
        ) {
            Ok(request) => request,
            Err(e) => return denied(e.to_string()),
        };
        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, &entities);
        let mut policies: Vec<String> = response
            .diagnostics()
            .reason()
            .map(ToString::to_string)
            .collect();
        policies.sort();
        let allowed = response.decision() == CedarDecision::Allow;
        let reasons = if allowed {
            Vec::new()
        } else {
            policies
                .iter()
                .filter_map(|p| self.reasons.get(&PolicyId::new(p)).cloned())
                .collect()
        };
        Decision {
            allowed,
            policies,
            reasons,
            errors: response
                .diagnostics()
                .errors()
                .map(ToString::to_string)
                .collect(),
        }
    }
}

fn target_entity(names: &Names, target: &Target) -> Result<Entity, String> {
    let s = |v: &str| RestrictedExpression::new_string(v.to_owned());
    let attrs = HashMap::from([
        ("account".to_owned(), s(&target.account)),
        ("environment".to_owned(), s(&target.environment)),
        ("tier".to_owned(), s(&target.tier)),
        ("role_arn".to_owned(), s(target.role_arn.as_str())),
        (
            "max_duration_secs".to_owned(),
            RestrictedExpression::new_long(i64::from(target.max_duration.as_secs())),
        ),
        (
            "approvals_required".to_owned(),
            RestrictedExpression::new_long(i64::from(target.approvals_required)),
        ),
        (
            "has_session_policy".to_owned(),
            RestrictedExpression::new_bool(target.session_policy.is_some()),
        ),
    ]);
    Entity::new(
        Names::uid(&names.target, target.id.as_str()),
        attrs,
        HashSet::from([names.audit_trail()]),
    )
    .map_err(|e| e.to_string())
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

    #[test]
    fn lines_are_counted_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
