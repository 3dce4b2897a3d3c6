//! How sessions are named and tagged, so every CloudTrail event maps back to its grant and
//! person, within STS's character sets and lengths. The names themselves are
//! `jit_core::naming`'s, which the activity function reads events back by; the tags are the
//! issuer's own.

use std::sync::LazyLock;

use regex::Regex;

pub use jit_core::naming::{role_session_name, source_identity};
use jit_core::naming::{sanitise, truncate};

/// The session tag that carries the grant id: the one revocation policies match on.
pub use jit_core::revocation::GRANT_TAG;
/// The session tag that carries the requester.
pub const REQUESTER_TAG: &str = "jit-requester";

/// STS's documented pattern for session tag values: `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`, by
/// Unicode general category (letters, separators, numbers), so combining marks (`\p{M}`), which
/// `char::is_alphanumeric` lets through, are out.
fn tag_char(c: char) -> bool {
    static ALLOWED: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r"^[\p{L}\p{Z}\p{N}_.:/=+\-@]$").ok());
    let mut buf = [0_u8; 4];
    ALLOWED
        .as_ref()
        .is_some_and(|re| re.is_match(c.encode_utf8(&mut buf)))
}

/// A session tag value: STS's characters only, at most 256 characters.
pub fn tag_value(text: &str) -> String {
    let allowed = |c: char| tag_char(c) || c == ' ';
    truncate(&sanitise(text, allowed), 256)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The value pattern, with its length limit checked apart (a bounded repeat of these
    /// Unicode classes is past the regex crate's size limit).
    struct TagPattern(Regex);

    impl TagPattern {
        fn is_match(&self, value: &str) -> bool {
            value.chars().count() <= 256 && self.0.is_match(value)
        }
    }

    fn sts_tag_pattern() -> TagPattern {
        TagPattern(Regex::new(r"^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$").unwrap())
    }

    /// Names whose characters tags refuse or treat differently from session names.
    const HOSTILE: [&str; 7] = [
        "auth0|5f7c8ec7c33c6c004bbafe82",
        "Jörg Müller",
        "team/alice",
        "日本語",
        "अनिल कुमार",
        "e\u{301}mile",
        "aws:internal",
    ];

    #[test]
    fn hostile_users_still_give_valid_tags() {
        let long = "x".repeat(200);
        for user in HOSTILE.iter().copied().chain([long.as_str()]) {
            let tag = tag_value(user);
            assert!(sts_tag_pattern().is_match(&tag), "{user}: {tag:?}");
        }
    }

    #[test]
    fn tag_values_keep_what_tags_allow_and_drop_combining_marks() {
        assert_eq!(tag_value("auth0|abc def"), "auth0-abc def");
        assert_eq!(tag_value(&"y".repeat(300)).chars().count(), 256);
        assert_eq!(tag_value("Jörg"), "Jörg");
        // Devanagari vowel signs and the virama are marks (Mc/Mn), not letters.
        assert_eq!(tag_value("अनिल"), "अन-ल");
        assert!(sts_tag_pattern().is_match(&tag_value("สมชาย")));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn every_user_gives_tags_sts_accepts(user in "\\PC{1,120}") {
            let tag = tag_value(&user);
            prop_assert!(sts_tag_pattern().is_match(&tag), "{:?}", tag);
        }
    }
}
