//! Loading the rules: every file checked, every mistake reported with its file and line.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId, PolicySet,
    RestrictedExpression, Schema, ValidationMode, Validator,
};
use miette::Diagnostic;
use sha2::{Digest, Sha256};

use super::index::PolicyIndex;
use super::isolation::Isolation;
use super::targets::{self, Target};
use super::{Action, DEFAULT_POLICY_DIR, Guardrail, POLICY_DIR_ENV, PolicyError, Rules};
use crate::domain::TargetId;

const SCHEMA_FILE: &str = "schema.cedarschema";
const TARGETS_FILE: &str = "targets.json";

/// The schema's entity type names, parsed once.
#[derive(Debug, Clone)]
pub(super) struct Names {
    pub(super) user: EntityTypeName,
    pub(super) group: EntityTypeName,
    target: EntityTypeName,
    trail: EntityTypeName,
    pub(super) action: EntityTypeName,
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

    pub(super) fn uid(kind: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(kind.clone(), EntityId::new(id))
    }

    pub(super) fn audit_trail(&self) -> EntityUid {
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
        let isolation = Isolation::from_env().map_err(|why| PolicyError::Invalid {
            location: "the function's settings".to_owned(),
            why,
        })?;
        Ok(Self::load_dir(&dir)?.with_isolation(isolation))
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
        let (policies, annotations) = policy_set(&schema, &policy_files)?;
        let targets = targets_of(&names, &schema, targets_text)?;
        let on_call_people =
            targets::parse_on_call_people(targets_text).map_err(|why| PolicyError::Invalid {
                location: TARGETS_FILE.to_owned(),
                why,
            })?;
        let slack =
            targets::parse_slack(targets_text, |t| targets.contains_key(t)).map_err(|why| {
                PolicyError::Invalid {
                    location: TARGETS_FILE.to_owned(),
                    why,
                }
            })?;
        check_requirements(&annotations.requirements, &targets)?;
        let actions: Vec<EntityUid> = Action::ALL
            .iter()
            .map(|a| a.as_str())
            .chain(Guardrail::ALL.iter().map(|g| g.as_str()))
            .map(|a| Names::uid(&names.action, a))
            .collect();
        let index = PolicyIndex::build(&policies, &actions, &names.group).map_err(|why| {
            PolicyError::Invalid {
                location: "*.cedar".to_owned(),
                why,
            }
        })?;
        Ok(Self {
            schema,
            policies,
            index,
            targets,
            reasons: annotations.reasons,
            requirements: annotations
                .requirements
                .into_iter()
                .map(|(id, (name, _))| (id, name))
                .collect(),
            hash: rules_hash(schema_text, targets_text, &policy_files),
            names,
            authorizer: Authorizer::new(),
            isolation: Isolation::default(),
            on_call_people,
            slack,
        })
    }
}

/// The policies of `policy_files` (sorted by name) under their `@id`s (or `file#n`), each id
/// once, with their `@reason`s, validated strictly against `schema`; a broken one is reported
/// with its file and line.
fn policy_set(
    schema: &Schema,
    policy_files: &[(String, String)],
) -> Result<(PolicySet, Annotations), PolicyError> {
    let mut policies = PolicySet::new();
    let mut origin: HashMap<PolicyId, usize> = HashMap::new();
    let mut reasons = HashMap::new();
    let mut requirements = HashMap::new();
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
            if let Some(name) = policy.annotation("requirement") {
                let located = |why: String| PolicyError::Invalid {
                    location: file.clone(),
                    why: format!("policy `{id}`: {why}"),
                };
                if policy.effect() != cedar_policy::Effect::Permit {
                    return Err(located(
                        "@requirement only means something on a permit of Approve".to_owned(),
                    ));
                }
                if !targets::requirement_name(name) {
                    return Err(located(format!(
                        "@requirement(\"{name}\") is not a requirement name (1 to 40 lowercase letters, digits or dashes)"
                    )));
                }
                requirements.insert(id.clone(), (name.to_owned(), file.clone()));
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
    Ok((
        policies,
        Annotations {
            reasons,
            requirements,
        },
    ))
}

/// What the policies' annotations say: each forbid's `@reason`, and which requirement each
/// annotated permit fills (with the file it is in).
pub(super) struct Annotations {
    pub(super) reasons: HashMap<PolicyId, String>,
    pub(super) requirements: HashMap<PolicyId, (String, String)>,
}

/// Every `@requirement` names a requirement some target declares: Cedar does not look at
/// annotations, so a misspelt one would silently fill nothing.
fn check_requirements(
    requirements: &HashMap<PolicyId, (String, String)>,
    targets: &BTreeMap<TargetId, (Target, Entity)>,
) -> Result<(), PolicyError> {
    let declared: BTreeSet<&str> = targets
        .values()
        .flat_map(|(t, _)| t.requirements.iter().map(|r| r.name.as_str()))
        .collect();
    let mut annotated: Vec<_> = requirements.iter().collect();
    annotated.sort_by_key(|a| a.0.to_string());
    for (id, (name, file)) in annotated {
        if !declared.contains(name.as_str()) {
            let known: Vec<&str> = declared.iter().copied().collect();
            return Err(PolicyError::Invalid {
                location: file.clone(),
                why: format!(
                    "policy `{id}`: @requirement(\"{name}\") names no requirement of any target in {TARGETS_FILE} (declared: {})",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            });
        }
    }
    Ok(())
}

/// The targets file's targets with their Cedar entities, checked against `schema` once, here,
/// so a decision never meets an entity the policies were not validated for.
fn targets_of(
    names: &Names,
    schema: &Schema,
    targets_text: &str,
) -> Result<BTreeMap<TargetId, (Target, Entity)>, PolicyError> {
    let invalid = |why: String| PolicyError::Invalid {
        location: TARGETS_FILE.to_owned(),
        why,
    };
    let mut targets = BTreeMap::new();
    for target in targets::parse_targets(targets_text).map_err(invalid)? {
        let entity = target_entity(names, &target)
            .map_err(|why| invalid(format!("target `{}`: {why}", target.id)))?;
        targets.insert(target.id.clone(), (target, entity));
    }
    Entities::from_entities(
        targets
            .values()
            .map(|(_, e)| e.clone())
            .chain([Entity::new_no_attrs(names.audit_trail(), HashSet::new())]),
        Some(schema),
    )
    .map_err(|e| invalid(e.to_string()))?;
    Ok(targets)
}

/// The hash grants record: every file's name and text, length-prefixed, in a fixed order.
fn rules_hash(schema_text: &str, targets_text: &str, policy_files: &[(String, String)]) -> String {
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
    hex::encode(h.finalize())
}

fn target_entity(names: &Names, target: &Target) -> Result<Entity, String> {
    let s = |v: &str| RestrictedExpression::new_string(v.to_owned());
    let attrs = HashMap::from([
        ("account".to_owned(), s(&target.account)),
        ("environment".to_owned(), s(&target.environment)),
        ("tier".to_owned(), s(&target.tier)),
        ("role_arn".to_owned(), s(target.binding.role_arn.as_str())),
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
            RestrictedExpression::new_bool(target.binding.session_policy.is_some()),
        ),
    ]);
    Entity::new(
        Names::uid(&names.target, target.id.as_str()),
        attrs,
        HashSet::from([names.audit_trail()]),
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_counted_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
