//! Who is calling: read only from what API Gateway's JWT authorizer vouched for, never from
//! anything the client controls.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

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

/// The scalar claims API Gateway's JWT authorizer passes that must equal, in the bearer
/// token's payload, what the authorizer verified, before the payload is read for groups.
const BOUND_CLAIMS: [&str; 7] = ["iss", "sub", "aud", "client_id", "iat", "exp", "jti"];

impl Caller {
    /// Reads the caller from JWT authorizer claims (`requestContext.authorizer.jwt.claims`),
    /// taking groups from `groups_claim` (such as `groups` or `cognito:groups`).
    ///
    /// API Gateway passes every claim as a string; a list arrives either in its bracketed form
    /// `[a b c]` or, when the identity provider put JSON in the claim, as `["a","b"]`. The
    /// bracketed form cannot carry a group whose name holds a space (`[Contractors sre]` is one
    /// group or two), so it is read only when it holds no white space; otherwise the caller is
    /// refused. [`Caller::from_authorizer`] reads the groups from the token itself instead.
    pub fn from_claims(
        claims: &HashMap<String, String>,
        groups_claim: &str,
    ) -> Result<Self, IdentityError> {
        Self::from_authorizer(claims, None, groups_claim)
    }

    /// Reads the caller from the authorizer's claims and, when the request carried exactly one
    /// `Authorization` header, from the bearer token in it: its payload counts only when every
    /// scalar claim the authorizer passed (`iss`, `sub`, `aud` or `client_id`, `iat`, `exp`,
    /// `jti`) is equal there, so it is the token the authorizer verified. Then the groups are
    /// the payload's array exactly as the identity provider sent it, and must agree with the
    /// authorizer's flattened form. Without a bound payload the flattened form is read as
    /// [`Caller::from_claims`] reads it.
    pub fn from_authorizer(
        claims: &HashMap<String, String>,
        authorization: Option<&str>,
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
        let bad = |why: String| IdentityError::BadGroups {
            claim: groups_claim.to_owned(),
            why,
        };
        let payload = authorization.and_then(|header| bound_payload(claims, header));
        let names = match (payload, claims.get(groups_claim)) {
            (Some(payload), flattened) => {
                let names = payload_groups(payload.get(groups_claim)).map_err(bad)?;
                let expected = payload.get(groups_claim).map(gateway_form);
                if flattened.map(String::as_str) != expected.as_deref() {
                    return Err(bad(
                        "the token's groups differ from what the authorizer passed".to_owned(),
                    ));
                }
                names
            }
            (None, None) => Vec::new(),
            (None, Some(raw)) => flattened_groups(raw).map_err(bad)?,
        };
        let mut groups = names
            .into_iter()
            .map(|n| GroupName::parse(n).map_err(|e| bad(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        groups.sort();
        groups.dedup();
        Ok(Self {
            user,
            email,
            groups,
        })
    }
}

/// A claim as API Gateway's JWT authorizer passes it to the function: strings as they are,
/// arrays as `[a b]`, other values as JSON text.
pub fn gateway_form(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The payload of the bearer token in `authorization` (`Bearer <jwt>` or the bare token),
/// when every scalar claim the authorizer passed is equal in it.
fn bound_payload(
    claims: &HashMap<String, String>,
    authorization: &str,
) -> Option<Map<String, Value>> {
    let token = authorization.trim();
    let token = match token.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        Some(_) => return None,
        None => token,
    };
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let payload: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    let bound = BOUND_CLAIMS.iter().all(|name| match claims.get(*name) {
        None => true,
        Some(passed) => payload
            .get(*name)
            .is_some_and(|v| gateway_form(v) == *passed),
    });
    bound.then_some(payload)
}

/// The groups in the token's own claim: an array of names, one name, or none.
fn payload_groups(value: Option<&Value>) -> Result<Vec<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) if s.trim_start().starts_with('[') => {
            serde_json::from_str::<Vec<String>>(s).map_err(|e| e.to_string())
        }
        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("`{i}` is not a group name"))
            })
            .collect(),
        Some(other) => Err(format!("`{other}` is not a list of group names")),
    }
}

/// The groups from the authorizer's flattened claim alone.
fn flattened_groups(raw: &str) -> Result<Vec<String>, String> {
    let raw = raw.trim();
    if raw.starts_with("[\"") || raw == "[]" {
        serde_json::from_str::<Vec<String>>(raw).map_err(|e| e.to_string())
    } else if let Some(inner) = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        if inner.trim().contains(char::is_whitespace) {
            return Err(
                "API Gateway flattened the list to `[a b]`, which cannot tell a group \
                        whose name holds a space from two groups; send the token in exactly one \
                        `Authorization` header so its own list can be read"
                    .to_owned(),
            );
        }
        Ok(vec![inner.trim().to_owned()]
            .into_iter()
            .filter(|n| !n.is_empty())
            .collect())
    } else if raw.is_empty() {
        Ok(Vec::new())
    } else {
        Ok(vec![raw.to_owned()])
    }
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
        let bracketed = claims(&[("sub", "u1"), ("groups", "[sre]")]);
        assert_eq!(
            groups(&Caller::from_claims(&bracketed, "groups").unwrap()),
            ["sre"]
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

    /// A token as the identity provider signed it (the signature is not read here: the
    /// authorizer checked it), and the claims API Gateway passes for it.
    fn token_and_claims(payload: &Value) -> (String, HashMap<String, String>) {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let token = format!(
            "{}.{}.c2ln",
            part(&serde_json::json!({"alg": "RS256", "kid": "k"})),
            part(payload)
        );
        let passed = payload
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), gateway_form(v)))
            .collect();
        (format!("Bearer {token}"), passed)
    }

    fn payload(groups: Value) -> Value {
        serde_json::json!({
            "iss": "https://idp.example.com/", "sub": "u1", "aud": "jit-access",
            "iat": 1_799_834_400, "exp": 1_799_838_000, "jti": "t1", "groups": groups,
        })
    }

    #[test]
    fn a_group_name_with_a_space_stays_one_group() {
        // The identity provider sent one group, "Contractors sre". API Gateway flattens it
        // to "[Contractors sre]", which reads as two groups, one of them `sre`.
        let (header, passed) = token_and_claims(&payload(serde_json::json!(["Contractors sre"])));
        assert_eq!(passed["groups"], "[Contractors sre]");
        let caller = Caller::from_authorizer(&passed, Some(&header), "groups").unwrap();
        assert_eq!(groups(&caller), ["Contractors sre"]);
        assert!(!caller.groups.iter().any(|g| g.as_str() == "sre"));

        let (header, passed) =
            token_and_claims(&payload(serde_json::json!(["Platform Team", "sre", "dba"])));
        let caller = Caller::from_authorizer(&passed, Some(&header), "groups").unwrap();
        assert_eq!(groups(&caller), ["Platform Team", "dba", "sre"]);
        // The bare token (no scheme) is read the same way.
        let bare = header.trim_start_matches("Bearer ");
        let caller = Caller::from_authorizer(&passed, Some(bare), "groups").unwrap();
        assert_eq!(groups(&caller), ["Platform Team", "dba", "sre"]);
    }

    #[test]
    fn without_the_token_a_flattened_list_with_a_space_is_refused_not_split() {
        let (_, passed) = token_and_claims(&payload(serde_json::json!(["Contractors sre"])));
        for header in [None, Some("Bearer not-a-jwt"), Some("Basic dTpw")] {
            let refused = Caller::from_authorizer(&passed, header, "groups").unwrap_err();
            assert!(
                refused
                    .to_string()
                    .contains("exactly one `Authorization` header"),
                "{refused}"
            );
        }
        // One group without a space needs no token.
        let (_, passed) = token_and_claims(&payload(serde_json::json!(["sre"])));
        let caller = Caller::from_authorizer(&passed, None, "groups").unwrap();
        assert_eq!(groups(&caller), ["sre"]);
    }

    #[test]
    fn a_token_that_is_not_the_verified_one_is_not_read() {
        // Another token (a different `sub`, `jti`, `exp`, ... than the authorizer verified)
        // cannot supply the groups: each bound claim is checked.
        let (_, passed) = token_and_claims(&payload(serde_json::json!(["Contractors sre"])));
        for (claim, other) in [
            ("sub", serde_json::json!("u2")),
            ("iss", serde_json::json!("https://evil.example/")),
            ("aud", serde_json::json!("other")),
            ("iat", serde_json::json!(1)),
            ("exp", serde_json::json!(2_000_000_000)),
            ("jti", serde_json::json!("t2")),
        ] {
            let mut forged = payload(serde_json::json!(["sre"]));
            forged[claim] = other;
            let (header, _) = token_and_claims(&forged);
            let refused = Caller::from_authorizer(&passed, Some(&header), "groups");
            assert!(refused.is_err(), "{claim}: {refused:?}");
        }
        // A bound payload whose groups differ from what the authorizer passed is refused.
        let (header, _) = token_and_claims(&payload(serde_json::json!(["sre"])));
        let refused = Caller::from_authorizer(&passed, Some(&header), "groups").unwrap_err();
        assert!(refused.to_string().contains("differ"), "{refused}");
    }
}
