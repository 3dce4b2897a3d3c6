//! Who is calling: read only from what API Gateway's JWT authorizer vouched for, never from
//! anything the client controls.

use std::collections::HashMap;

use crate::domain::{GroupName, UserId};

/// A caller the identity provider vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The `sub` claim.
    pub user: UserId,
    /// The `email` claim, when present.
    pub email: Option<String>,
    /// The groups from the configured claim.
    pub groups: Vec<GroupName>,
}

/// Why no caller could be established.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The request carried no authorizer claims at all.
    #[error("the request carries no verified identity")]
    Missing,
    /// The claims have no usable `sub`.
    #[error("the token has no usable `sub` claim")]
    NoSubject,
    /// The groups claim could not be read.
    #[error("the `{claim}` claim is not a list of groups: {why}")]
    BadGroups {
        /// The claim's name.
        claim: String,
        /// What is wrong.
        why: String,
    },
}

impl Caller {
    /// Reads the caller from JWT authorizer claims (`requestContext.authorizer.jwt.claims`),
    /// taking groups from `groups_claim` (such as `groups` or `cognito:groups`).
    ///
    /// API Gateway passes every claim as a string; a list arrives either in its bracketed form
    /// `[a b c]` or, when the identity provider put JSON in the claim, as `["a","b"]`.
    pub fn from_claims(
        claims: &HashMap<String, String>,
        groups_claim: &str,
    ) -> Result<Self, IdentityError> {
        if claims.is_empty() {
            return Err(IdentityError::Missing);
        }
        let user = claims
            .get("sub")
            .and_then(|s| UserId::parse(s.as_str()).ok())
            .ok_or(IdentityError::NoSubject)?;
        let email = claims.get("email").filter(|e| !e.is_empty()).cloned();
        let groups = match claims.get(groups_claim) {
            None => Vec::new(),
            Some(raw) => parse_groups(raw).map_err(|why| IdentityError::BadGroups {
                claim: groups_claim.to_owned(),
                why,
            })?,
        };
        Ok(Self {
            user,
            email,
            groups,
        })
    }

    /// Whether the caller belongs to `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g.as_str() == group)
    }
}

fn parse_groups(raw: &str) -> Result<Vec<GroupName>, String> {
    let raw = raw.trim();
    let names: Vec<String> = if raw.starts_with("[\"") || raw == "[]" {
        serde_json::from_str::<Vec<String>>(raw).map_err(|e| e.to_string())?
    } else if let Some(inner) = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        inner.split_whitespace().map(str::to_owned).collect()
    } else if raw.is_empty() {
        Vec::new()
    } else {
        vec![raw.to_owned()]
    };
    let mut groups = names
        .into_iter()
        .map(|n| GroupName::parse(n).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    groups.sort();
    groups.dedup();
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn groups(c: &Caller) -> Vec<&str> {
        c.groups.iter().map(GroupName::as_str).collect()
    }

    #[test]
    fn groups_arrive_bracketed_as_json_or_single() {
        let bracketed = claims(&[("sub", "u1"), ("groups", "[sre security]")]);
        assert_eq!(
            groups(&Caller::from_claims(&bracketed, "groups").unwrap()),
            ["security", "sre"]
        );
        let json = claims(&[("sub", "u1"), ("cognito:groups", r#"["sre","dba"]"#)]);
        assert_eq!(
            groups(&Caller::from_claims(&json, "cognito:groups").unwrap()),
            ["dba", "sre"]
        );
        let single = claims(&[("sub", "u1"), ("groups", "sre")]);
        assert_eq!(
            groups(&Caller::from_claims(&single, "groups").unwrap()),
            ["sre"]
        );
        let none = claims(&[("sub", "u1")]);
        assert!(
            Caller::from_claims(&none, "groups")
                .unwrap()
                .groups
                .is_empty()
        );
        let empty = claims(&[("sub", "u1"), ("groups", "[]")]);
        assert!(
            Caller::from_claims(&empty, "groups")
                .unwrap()
                .groups
                .is_empty()
        );
    }

    #[test]
    fn no_claims_or_no_subject_is_no_caller() {
        assert_eq!(
            Caller::from_claims(&HashMap::new(), "groups"),
            Err(IdentityError::Missing)
        );
        assert_eq!(
            Caller::from_claims(&claims(&[("email", "a@b.c")]), "groups"),
            Err(IdentityError::NoSubject)
        );
        assert_eq!(
            Caller::from_claims(&claims(&[("sub", "")]), "groups"),
            Err(IdentityError::NoSubject)
        );
    }

    #[test]
    fn a_malformed_groups_claim_is_refused_not_ignored() {
        let bad = claims(&[("sub", "u1"), ("groups", r#"["sre", 5]"#)]);
        assert!(matches!(
            Caller::from_claims(&bad, "groups"),
            Err(IdentityError::BadGroups { .. })
        ));
    }
}
