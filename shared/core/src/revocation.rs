//! The revocation policy of one target role, derived entirely from its revocation ledger.
//!
//! STS credentials cannot be recalled, but every session carries its grant id as the
//! `jit-grant` tag. An inline policy on the role that denies every action to sessions whose tag
//! is a revoked grant id cuts those sessions off at once. The document is recomputed from the
//! ledger every time, so applying it again is harmless and a failed apply is repaired by the
//! next one.
//!
//! A role's inline policies may total 10,240 characters, whitespace excluded. When the precise
//! document would not fit, the fallback denies every session of the role issued before now
//! (`aws:TokenIssueTime`): it cuts the revoked sessions and, loudly, any other live session of
//! that role. The precise form returns once the ledger shrinks.

use serde_json::{Value, json};

use crate::clock::Timestamp;
use crate::domain::{GrantId, RevocationEntry};

/// The inline policy's name on each target role.
pub const POLICY_NAME: &str = "jit-revocations";

/// The session tag that carries the grant id.
pub const GRANT_TAG: &str = "jit-grant";

/// IAM's limit on a role's inline policies, in characters excluding whitespace.
pub const INLINE_POLICY_LIMIT: usize = 10_240;

/// What a role's revocation policy should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationPolicy {
    /// No live revoked sessions: the policy should not exist.
    Absent,
    /// Deny the sessions of exactly these grants.
    Precise {
        /// The policy document, minified.
        document: String,
        /// The grants whose sessions it denies.
        grants: Vec<GrantId>,
    },
    /// The precise document would not fit: deny every session issued before `issued_before`.
    Fallback {
        /// The policy document, minified.
        document: String,
        /// The cut-off; sessions issued at or after it are untouched.
        issued_before: Timestamp,
        /// The grants in the ledger, each of which must be told in its audit trail.
        grants: Vec<GrantId>,
        /// How long the precise document would have been.
        precise_chars: usize,
    },
}

impl RevocationPolicy {
    /// The document to put, if any.
    pub fn document(&self) -> Option<&str> {
        match self {
            Self::Absent => None,
            Self::Precise { document, .. } | Self::Fallback { document, .. } => Some(document),
        }
    }
}

/// Characters as IAM counts them against the inline-policy limit: whitespace excluded.
pub fn policy_chars(document: &str) -> usize {
    document.chars().filter(|c| !c.is_whitespace()).count()
}

/// The entries still covering live sessions at `now`; the rest can be pruned.
pub fn live(
    entries: &[RevocationEntry],
    now: Timestamp,
) -> (Vec<&RevocationEntry>, Vec<&RevocationEntry>) {
    entries.iter().partition(|e| e.until > now)
}

fn statement_precise(grants: &[GrantId]) -> Value {
    json!({
        "Sid": "JitRevokedGrants",
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {
            "StringEquals": {
                format!("aws:PrincipalTag/{GRANT_TAG}"): grants.iter().map(GrantId::as_str).collect::<Vec<_>>(),
            }
        }
    })
}

fn statement_fallback(issued_before: Timestamp) -> Value {
    json!({
        "Sid": "JitRevokedAllOlderSessions",
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {
            "DateLessThan": { "aws:TokenIssueTime": issued_before.to_rfc3339() }
        }
    })
}

fn document(statement: Value) -> String {
    json!({ "Version": "2012-10-17", "Statement": [statement] }).to_string()
}

/// The policy a role should carry at `now`, from its ledger, within `budget` characters (the
/// limit less what the role's other inline policies use).
pub fn derive(entries: &[RevocationEntry], now: Timestamp, budget: usize) -> RevocationPolicy {
    let (live, _) = live(entries, now);
    if live.is_empty() {
        return RevocationPolicy::Absent;
    }
    let mut grants: Vec<GrantId> = live.iter().map(|e| e.grant_id.clone()).collect();
    grants.sort();
    grants.dedup();
    let precise = document(statement_precise(&grants));
    let precise_chars = policy_chars(&precise);
    if precise_chars <= budget {
        return RevocationPolicy::Precise {
            document: precise,
            grants,
        };
    }
    RevocationPolicy::Fallback {
        document: document(statement_fallback(now)),
        issued_before: now,
        grants,
        precise_chars,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RoleArn;

    const NOW: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);

    fn entry(n: u32, until: i64) -> RevocationEntry {
        RevocationEntry {
            role_arn: RoleArn::parse("arn:aws:iam::111111111111:role/jit/prod-logs-ro").unwrap(),
            revoker_role_arn: None,
            grant_id: GrantId::parse(format!("0190c0de-0000-7000-8000-{n:012}")).unwrap(),
            until: NOW.plus_secs(until),
        }
    }

    #[test]
    fn no_live_entries_means_no_policy() {
        assert_eq!(
            derive(&[], NOW, INLINE_POLICY_LIMIT),
            RevocationPolicy::Absent
        );
        let expired = [entry(1, 0), entry(2, -60)];
        assert_eq!(
            derive(&expired, NOW, INLINE_POLICY_LIMIT),
            RevocationPolicy::Absent
        );
        let (kept, pruned) = live(&expired, NOW);
        assert_eq!((kept.len(), pruned.len()), (0, 2));
    }

    #[test]
    fn the_precise_policy_denies_exactly_the_live_revoked_grants() {
        let entries = [entry(2, 600), entry(1, 60), entry(3, -1), entry(2, 900)];
        let policy = derive(&entries, NOW, INLINE_POLICY_LIMIT);
        let RevocationPolicy::Precise { document, grants } = &policy else {
            panic!("{policy:?}")
        };
        assert_eq!(grants.len(), 2);
        let doc: Value = serde_json::from_str(document).unwrap();
        assert_eq!(
            doc,
            json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "JitRevokedGrants",
                    "Effect": "Deny",
                    "Action": "*",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:PrincipalTag/jit-grant": [
                        "0190c0de-0000-7000-8000-000000000001",
                        "0190c0de-0000-7000-8000-000000000002",
                    ]}}
                }]
            })
        );
        // Derived, not accumulated: the same ledger gives the same document.
        assert_eq!(derive(&entries, NOW, INLINE_POLICY_LIMIT), policy);
    }

    #[test]
    fn too_many_grants_fall_back_to_a_cut_off_and_return_when_the_ledger_shrinks() {
        // Each grant id costs 39 characters in the document: about 260 fit in 10,240.
        let many: Vec<_> = (0..300).map(|n| entry(n, 600 + i64::from(n))).collect();
        let policy = derive(&many, NOW, INLINE_POLICY_LIMIT);
        let RevocationPolicy::Fallback {
            document,
            issued_before,
            grants,
            precise_chars,
        } = &policy
        else {
            panic!("{policy:?}")
        };
        assert_eq!(*issued_before, NOW);
        assert_eq!(grants.len(), 300);
        assert!(*precise_chars > INLINE_POLICY_LIMIT);
        let doc: Value = serde_json::from_str(document).unwrap();
        assert_eq!(
            doc["Statement"][0]["Condition"],
            json!({"DateLessThan": {"aws:TokenIssueTime": "2027-01-15T08:00:00Z"}})
        );
        assert!(policy_chars(document) < 300);
        // 700 s on, entries 0 to 100 have lapsed (until = 600 + n): precise again.
        let later = NOW.plus_secs(700);
        assert!(
            matches!(derive(&many, later, INLINE_POLICY_LIMIT), RevocationPolicy::Precise { ref grants, .. } if grants.len() == 199)
        );
    }

    #[test]
    fn the_budget_counts_characters_without_whitespace_and_is_exact_at_the_edge() {
        assert_eq!(policy_chars("{ \"a\" :\n\t1 }"), 7);
        let entries: Vec<_> = (0..10).map(|n| entry(n, 600)).collect();
        let RevocationPolicy::Precise { document, .. } = derive(&entries, NOW, INLINE_POLICY_LIMIT)
        else {
            panic!()
        };
        let exact = policy_chars(&document);
        assert!(matches!(
            derive(&entries, NOW, exact),
            RevocationPolicy::Precise { .. }
        ));
        assert!(matches!(
            derive(&entries, NOW, exact - 1),
            RevocationPolicy::Fallback { .. }
        ));
    }
}
