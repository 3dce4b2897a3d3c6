//! How sessions are named and tagged, so every CloudTrail event maps back to its grant and
//! person, within STS's character sets and lengths.

use jit_core::domain::{GrantId, UserId};

/// The session tag that carries the grant id: the one revocation policies match on.
pub use jit_core::revocation::GRANT_TAG;
/// The session tag that carries the requester.
pub const REQUESTER_TAG: &str = "jit-requester";

/// STS allows `[\w+=,.@-]` in role session names and source identities.
fn sts_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// Replaces every character STS refuses with `-`, collapsing runs, trimmed of `-`.
fn sanitise(text: &str, allowed: impl Fn(char) -> bool) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let c = if allowed(c) { c } else { '-' };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out.trim_matches('-').to_owned()
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The role session name: the user (sanitised, up to 27 characters), `@`, the grant id.
/// Always 2 to 64 characters from STS's set, and always ends in the full grant id.
pub fn role_session_name(user: &UserId, grant: &GrantId) -> String {
    let mut who = truncate(&sanitise(user.as_str(), sts_char), 27);
    if who.is_empty() {
        who = "user".to_owned();
    }
    format!("{who}@{grant}")
}

/// The source identity: the user, sanitised to STS's set, 2 to 64 characters. It stays with
/// the session through role chaining, so it names the person in every downstream event.
pub fn source_identity(user: &UserId) -> String {
    let who = truncate(&sanitise(user.as_str(), sts_char), 64);
    match who.chars().count() {
        0 => "unknown-user".to_owned(),
        1 => format!("user-{who}"),
        _ => who,
    }
}

/// A session tag value: letters, digits, spaces and `_.:/=+-@`, at most 256 characters.
pub fn tag_value(text: &str) -> String {
    let allowed = |c: char| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c);
    truncate(&sanitise(text, allowed), 256)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jit_core::clock::Timestamp;

    fn id() -> GrantId {
        GrantId::generate(Timestamp::from_unix_seconds(1_800_000_000))
    }

    fn valid_session_name(name: &str) -> bool {
        (2..=64).contains(&name.chars().count()) && name.chars().all(sts_char)
    }

    #[test]
    fn hostile_users_still_give_valid_names_that_end_in_the_grant() {
        let grant = id();
        for user in [
            "alice",
            "auth0|5f7c8ec7c33c6c004bbafe82",
            "Jörg Müller",
            "a b  c",
            "team/alice",
            "alice@example.com",
            &"x".repeat(200),
            "----",
            "@",
            "日本語",
        ] {
            let user = UserId::parse(user).unwrap();
            let name = role_session_name(&user, &grant);
            assert!(valid_session_name(&name), "{user}: {name}");
            assert!(name.ends_with(grant.as_str()), "{name}");
            let source = source_identity(&user);
            assert!(valid_session_name(&source), "{user}: {source}");
        }
        let user = UserId::parse("alice@example.com").unwrap();
        assert_eq!(source_identity(&user), "alice@example.com");
        assert_eq!(
            role_session_name(&user, &grant),
            format!("alice@example.com@{grant}")
        );
        let pipes = UserId::parse("auth0|abc").unwrap();
        assert_eq!(source_identity(&pipes), "auth0-abc");
    }

    #[test]
    fn tag_values_keep_what_tags_allow() {
        assert_eq!(tag_value("auth0|abc def"), "auth0-abc def");
        assert_eq!(tag_value(&"y".repeat(300)).len(), 256);
        assert_eq!(tag_value("Jörg"), "Jörg");
    }
}
