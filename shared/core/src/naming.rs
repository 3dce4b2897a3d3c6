//! How the broker names the STS sessions it issues, so every CloudTrail event made with one
//! maps back to its grant (the role session name ends in the grant id) and its person (the
//! source identity, which survives role chaining). The issuer names sessions with these; the
//! activity function reads events back by the same rules.

use sha2::{Digest, Sha256};

use crate::domain::{GrantId, UserId};

/// STS allows `[\w+=,.@-]` in role session names and source identities (`\w` being ASCII
/// letters, digits and `_`).
fn sts_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// Replaces every character `allowed` refuses with `-`, collapsing runs, trimmed of `-`.
pub fn sanitise(text: &str, allowed: impl Fn(char) -> bool) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let c = if allowed(c) { c } else { '-' };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out.trim_matches('-').to_owned()
}

/// The first `max` characters of `text`.
pub fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The role session name: the user (sanitised, up to 27 characters), `@`, the grant id.
/// Always 2 to 64 characters from STS's set, and always ends in the full grant id, which makes
/// it unique.
pub fn role_session_name(user: &UserId, grant: &GrantId) -> String {
    let mut who = truncate(&sanitise(user.as_str(), sts_char), 27);
    if who.is_empty() {
        who = "user".to_owned();
    }
    format!("{who}@{grant}")
}

/// The longest source identity STS accepts.
const SOURCE_IDENTITY_MAX: usize = 64;

/// The source identity: the user, encoded so that distinct people never share one. It stays
/// with the session through role chaining, so it names the person in every downstream event.
///
/// Letters, digits and `_+,.@` stand as they are; every other byte of the UTF-8 text (`-` and
/// `=` included) becomes `-` and two lowercase hex digits, so `team/alice` is `team-2falice`
/// and `team-alice` is `team-2dalice`: a one-to-one encoding. One that would pass 64
/// characters is cut to its first 39 (never inside an escape), then `=` and 24 hex digits of
/// the user's SHA-256; `=` appears only there, so the two forms never meet. One character is
/// padded with `=` to STS's minimum of two.
pub fn source_identity(user: &UserId) -> String {
    let mut encoded = String::new();
    for c in user.as_str().chars() {
        if c.is_ascii_alphanumeric() || "_+,.@".contains(c) {
            encoded.push(c);
        } else {
            let mut buf = [0_u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                encoded.push_str(&format!("-{byte:02x}"));
            }
        }
    }
    match encoded.len() {
        0 => "=".repeat(2),
        1 => format!("{encoded}="),
        n if n <= SOURCE_IDENTITY_MAX => encoded,
        _ => {
            let mut cut: usize = 39;
            // Back off to the start of an escape cut through.
            while cut > 0
                && encoded
                    .get(cut.saturating_sub(2)..cut)
                    .is_some_and(|t| t.contains('-'))
            {
                cut -= 1;
            }
            let digest = hex::encode(Sha256::digest(user.as_str().as_bytes()));
            format!(
                "{}={}",
                encoded.get(..cut).unwrap_or(""),
                digest.get(..24).unwrap_or("")
            )
        }
    }
}

/// The grant a role session name claims: what follows its *last* `@` (a user id may hold `@`
/// itself), when that is a grant id. A claim only: the activity function accepts it when the
/// event's role, account and source identity are what that grant recorded.
pub fn claimed_grant(session_name: &str) -> Option<GrantId> {
    let (_, id) = session_name.rsplit_once('@')?;
    GrantId::parse(id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn id() -> GrantId {
        GrantId::generate(Timestamp::from_unix_seconds(1_800_000_000))
    }

    /// STS's documented pattern for role session names and source identities, written
    /// independently of the code under test (`[\w+=,.@-]{2,64}`).
    fn sts_name(text: &str) -> bool {
        (2..=64).contains(&text.chars().count())
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
    }

    const HOSTILE: [&str; 14] = [
        "alice",
        "auth0|5f7c8ec7c33c6c004bbafe82",
        "Jörg Müller",
        "a b  c",
        "team/alice",
        "alice@example.com",
        "----",
        "@",
        "日本語",
        "अनिल कुमार",
        "สมชาย",
        "e\u{301}mile",
        "aws:internal",
        "x",
    ];

    #[test]
    fn hostile_users_still_give_valid_names_that_end_in_the_grant() {
        let grant = id();
        let long = "x".repeat(200);
        for user in HOSTILE.iter().copied().chain([long.as_str()]) {
            let user = UserId::parse(user).unwrap();
            let name = role_session_name(&user, &grant);
            assert!(sts_name(&name), "{user}: {name}");
            assert!(name.ends_with(grant.as_str()), "{name}");
            assert_eq!(claimed_grant(&name), Some(grant.clone()), "{name}");
            let source = source_identity(&user);
            assert!(sts_name(&source), "{user}: {source}");
            assert!(!source.starts_with("aws:"), "{source}");
        }
        let user = UserId::parse("alice@example.com").unwrap();
        assert_eq!(source_identity(&user), "alice@example.com");
        assert_eq!(
            role_session_name(&user, &grant),
            format!("alice@example.com@{grant}")
        );
        let pipes = UserId::parse("auth0|abc").unwrap();
        assert_eq!(source_identity(&pipes), "auth0-7cabc");
    }

    #[test]
    fn a_session_name_claims_only_the_grant_after_its_last_at() {
        let grant = id();
        assert_eq!(claimed_grant(&format!("a@b@{grant}")), Some(grant.clone()));
        // Someone's own session named like a grant, but the id is not the last part.
        assert_eq!(claimed_grant(&format!("{grant}@alice")), None);
        assert_eq!(claimed_grant(grant.as_str()), None);
        assert_eq!(claimed_grant("alice@"), None);
        assert_eq!(claimed_grant("alice@../GRANT"), None);
    }

    #[test]
    fn people_whose_names_sanitise_alike_keep_distinct_source_identities() {
        let pairs = [
            ("team/alice", "team-alice"),
            ("team-alice", "team-2dalice"),
            ("a|b", "a-b"),
            ("Jörg", "J-rg"),
            ("x", "x="),
        ];
        for (a, b) in pairs {
            let (a, b) = (UserId::parse(a).unwrap(), UserId::parse(b).unwrap());
            assert_ne!(source_identity(&a), source_identity(&b), "{a} / {b}");
        }
        // Long names that share their first 64 characters still differ.
        let a = UserId::parse(format!("{}a", "y".repeat(100))).unwrap();
        let b = UserId::parse(format!("{}b", "y".repeat(100))).unwrap();
        assert_ne!(source_identity(&a), source_identity(&b));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn every_user_gives_names_sts_accepts(user in "\\PC{1,120}") {
            prop_assume!(UserId::parse(user.as_str()).is_ok());
            let user = UserId::parse(user).unwrap();
            let grant = id();
            let name = role_session_name(&user, &grant);
            prop_assert!(sts_name(&name), "{}", name);
            prop_assert_eq!(claimed_grant(&name), Some(grant));
            let source = source_identity(&user);
            prop_assert!(sts_name(&source), "{}", source);
        }

        #[test]
        fn distinct_users_never_share_a_source_identity(
            users in proptest::collection::vec("[a-z/|_.=+-]{1,6}|\\PC{1,80}", 2..40)
        ) {
            let mut seen: HashMap<String, String> = HashMap::new();
            for user in users {
                let Ok(id) = UserId::parse(user.as_str()) else { continue };
                let source = source_identity(&id);
                if let Some(other) = seen.insert(source.clone(), user.clone()) {
                    prop_assert_eq!(&other, &user, "both give {}", source);
                }
            }
        }
    }
}
