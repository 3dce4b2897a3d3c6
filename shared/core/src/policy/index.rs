//! The policy set, split so that a decision evaluates only the policies that could apply.
//!
//! Cedar evaluates every policy in a set. With many teams and targets most policies are about
//! other actions or other groups, so at load time the set is split by action and, within an
//! action, by the group a policy's principal must be in. A decision evaluates the action's
//! general policies plus those of the caller's own groups, and combines the partial answers
//! exactly as Cedar would over the whole set: any satisfied `forbid` denies; otherwise any
//! satisfied `permit` allows; otherwise it is denied.
//!
//! This is sound for this schema: actions have no action groups, and groups have no parents,
//! so `principal in Group::"g"` holds only for members of `g`.

use std::collections::HashMap;

use cedar_policy::{
    ActionConstraint, Authorizer, Decision as CedarDecision, Entities, EntityTypeName, EntityUid,
    Policy, PolicySet, PrincipalConstraint, Request,
};

/// The policies that may apply to one action.
#[derive(Debug, Default)]
struct ActionPolicies {
    /// Policies not tied to one group: evaluated for every caller.
    general: PolicySet,
    /// Policies whose principal must be in a group, by group id.
    by_group: HashMap<String, PolicySet>,
}

/// The partial answer of one subset of policies.
#[derive(Debug, Default)]
pub(crate) struct Answer {
    pub(crate) allowed: bool,
    /// The permits that allowed it, or the forbids that denied it.
    pub(crate) policies: Vec<String>,
    pub(crate) errors: Vec<String>,
}

/// Policies by action uid, then by group.
#[derive(Debug, Default)]
pub(crate) struct PolicyIndex {
    by_action: HashMap<EntityUid, ActionPolicies>,
}

impl PolicyIndex {
    /// Splits `policies` for the actions `actions` (the schema's actions).
    pub(crate) fn build(
        policies: &PolicySet,
        actions: &[EntityUid],
        group_type: &EntityTypeName,
    ) -> Result<Self, String> {
        let mut index = Self::default();
        for action in actions {
            let mut subset = ActionPolicies::default();
            for policy in policies.policies() {
                let applies = match policy.action_constraint() {
                    ActionConstraint::Any => true,
                    ActionConstraint::Eq(a) => &a == action,
                    ActionConstraint::In(list) => list.contains(action),
                };
                if !applies {
                    continue;
                }
                let set = match group_of(policy, group_type) {
                    Some(group) => subset.by_group.entry(group).or_default(),
                    None => &mut subset.general,
                };
                set.add(policy.clone()).map_err(|e| e.to_string())?;
            }
            index.by_action.insert(action.clone(), subset);
        }
        Ok(index)
    }

    /// Decides `request` for a caller in `groups`, over the policies that may apply.
    pub(crate) fn decide<'a>(
        &self,
        authorizer: &Authorizer,
        request: &Request,
        action: &EntityUid,
        groups: impl Iterator<Item = &'a str>,
        entities: &Entities,
    ) -> Answer {
        let Some(subset) = self.by_action.get(action) else {
            return Answer::default();
        };
        let sets = std::iter::once(&subset.general)
            .chain(groups.filter_map(|g| subset.by_group.get(g)))
            .filter(|set| !set.is_empty());
        let mut permits = Vec::new();
        let mut forbids = Vec::new();
        let mut errors = Vec::new();
        for set in sets {
            let response = authorizer.is_authorized(request, set, entities);
            let reasons = response.diagnostics().reason().map(ToString::to_string);
            // Allow: its reasons are satisfied permits. Deny: its reasons are satisfied
            // forbids (none when simply nothing permitted it).
            match response.decision() {
                CedarDecision::Allow => permits.extend(reasons),
                CedarDecision::Deny => forbids.extend(reasons),
            }
            errors.extend(response.diagnostics().errors().map(ToString::to_string));
        }
        let allowed = forbids.is_empty() && !permits.is_empty();
        let mut policies = if forbids.is_empty() { permits } else { forbids };
        policies.sort();
        policies.dedup();
        Answer {
            allowed,
            policies,
            errors,
        }
    }
}

/// The group a policy's principal must be in, if that is all its principal scope says.
fn group_of(policy: &Policy, group_type: &EntityTypeName) -> Option<String> {
    match policy.principal_constraint() {
        PrincipalConstraint::In(uid) | PrincipalConstraint::IsIn(_, uid)
            if uid.type_name() == group_type =>
        {
            Some(uid.id().unescaped().to_owned())
        }
        _ => None,
    }
}
