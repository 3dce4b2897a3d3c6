//! Approvals in Slack, without trusting Slack for identity.
//!
//! Slack vouches only that a request came from Slack ([`verify_signature`]: the app's signing
//! secret over the raw body) and which Slack user in which workspace clicked. Who that user is
//! to the broker comes from a [`SlackLink`] the person made once from an authenticated session,
//! signed by intake; what they may do comes from the groups intake last saw on an authenticated
//! call of theirs ([`SeenGroups`], also signed by intake), no older than a bound. Neither is
//! ever taken from Slack's profile (an email, a display name).

use std::collections::BTreeMap;

use aws_lc_rs::hmac;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::domain::{Grant, GrantId, GrantState, GroupName, UserId};

/// How far a request's timestamp may be from now, either way, as Slack recommends.
pub const MAX_SKEW_SECS: i64 = 300;

/// The `action_id` of the approve button.
pub const APPROVE: &str = "jit_approve";
/// The `action_id` of the deny button.
pub const DENY: &str = "jit_deny";

/// How long a one-time link code lasts.
pub const LINK_CODE_SECS: i64 = 600;

/// Why a request is not taken as Slack's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Forged {
    /// A header is missing.
    #[error("the request carries no `{0}` header")]
    Missing(&'static str),
    /// The timestamp is not a number of seconds.
    #[error("the request timestamp is not a number")]
    BadTimestamp,
    /// The timestamp is too far from now: an old request replayed, or a clock far off.
    #[error("the request timestamp is {0} s from now; at most {MAX_SKEW_SECS} s is accepted")]
    Stale(i64),
    /// The signature is not `v0=` and 64 hex digits.
    #[error("the signature is not of the form v0=<64 hex digits>")]
    BadSignature,
    /// The signature does not match.
    #[error("the signature does not match the request")]
    Mismatch,
}

/// Checks Slack's v0 signature: HMAC-SHA256 with the signing secret over
/// `v0:{timestamp}:{raw body}`, compared in constant time, with the timestamp within
/// [`MAX_SKEW_SECS`] of `now`.
pub fn verify_signature(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: Timestamp,
) -> Result<(), Forged> {
    let timestamp = timestamp.ok_or(Forged::Missing("X-Slack-Request-Timestamp"))?;
    let signature = signature.ok_or(Forged::Missing("X-Slack-Signature"))?;
    let at: i64 = timestamp.trim().parse().map_err(|_| Forged::BadTimestamp)?;
    let skew = now.unix_seconds().saturating_sub(at);
    if skew.abs() > MAX_SKEW_SECS {
        return Err(Forged::Stale(skew));
    }
    let tag = signature
        .strip_prefix("v0=")
        .filter(|h| h.len() == 64)
        .and_then(|h| hex::decode(h).ok())
        .ok_or(Forged::BadSignature)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, &signed_bytes(timestamp, body), &tag).map_err(|_| Forged::Mismatch)
}

/// The signature Slack would send for `body` at `timestamp`: what the local stand-in sends.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    format!(
        "v0={}",
        hex::encode(hmac::sign(&key, &signed_bytes(timestamp, body)))
    )
}

fn signed_bytes(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut message = format!("v0:{timestamp}:").into_bytes();
    message.extend_from_slice(body);
    message
}

/// Who clicked or typed, as Slack says: a user in a workspace (and an Enterprise Grid
/// organization, if any).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackUser {
    /// The workspace (`team_id`).
    pub team_id: String,
    /// The Enterprise Grid organization, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise_id: Option<String>,
    /// The user (`user_id`).
    pub user_id: String,
}

/// What a verified request from Slack asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interaction {
    /// A button on a request's message.
    Click {
        /// Who clicked.
        user: SlackUser,
        /// Approve or deny.
        approve: bool,
        /// The request's id, from the button's value.
        grant_id: String,
        /// When Slack says the click happened.
        action_ts: String,
    },
    /// The slash command (`/jit link`, `/jit help`).
    Command {
        /// Who typed it.
        user: SlackUser,
        /// What followed the command.
        text: String,
    },
}

/// Why a verified body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(String);

fn field(fields: &BTreeMap<String, String>, name: &str) -> Result<String, Unreadable> {
    fields
        .get(name)
        .filter(|v| !v.is_empty())
        .cloned()
        .ok_or_else(|| Unreadable(format!("the request has no `{name}`")))
}

fn slack_id(value: String, what: &str) -> Result<String, Unreadable> {
    if (2..=32).contains(&value.len()) && value.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(value)
    } else {
        Err(Unreadable(format!("`{what}` is not a Slack id")))
    }
}

impl Interaction {
    /// Reads a form-encoded body: an interaction's `payload` (a `block_actions` click on one
    /// of the broker's buttons) or a slash command's fields.
    pub fn parse(body: &[u8]) -> Result<Self, Unreadable> {
        let fields: BTreeMap<String, String> = url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        match fields.get("payload") {
            Some(payload) => Self::click(payload),
            None => Ok(Self::Command {
                user: SlackUser {
                    team_id: slack_id(field(&fields, "team_id")?, "team_id")?,
                    enterprise_id: fields
                        .get("enterprise_id")
                        .filter(|v| !v.is_empty())
                        .cloned()
                        .map(|e| slack_id(e, "enterprise_id"))
                        .transpose()?,
                    user_id: slack_id(field(&fields, "user_id")?, "user_id")?,
                },
                text: fields.get("text").cloned().unwrap_or_default(),
            }),
        }
    }

    fn click(payload: &str) -> Result<Self, Unreadable> {
        #[derive(Deserialize)]
        struct Payload {
            #[serde(rename = "type")]
            kind: String,
            user: PayloadUser,
            team: Option<Id>,
            enterprise: Option<Id>,
            #[serde(default)]
            actions: Vec<Action>,
        }
        #[derive(Deserialize)]
        struct PayloadUser {
            id: String,
            team_id: Option<String>,
        }
        #[derive(Deserialize)]
        struct Id {
            id: String,
        }
        #[derive(Deserialize)]
        struct Action {
            action_id: String,
            #[serde(default)]
            value: String,
            action_ts: String,
        }
        let p: Payload = serde_json::from_str(payload).map_err(|e| {
            Unreadable(format!(
                "the interaction payload is not as Slack sends: {e}"
            ))
        })?;
        if p.kind != "block_actions" {
            return Err(Unreadable(format!(
                "interactions of type `{}` are not handled",
                p.kind
            )));
        }
        let [action] = p.actions.as_slice() else {
            return Err(Unreadable("a click carries exactly one action".into()));
        };
        let approve = match action.action_id.as_str() {
            APPROVE => true,
            DENY => false,
            other => return Err(Unreadable(format!("unknown action `{other}`"))),
        };
        let team = p
            .team
            .map(|t| t.id)
            .or(p.user.team_id)
            .ok_or_else(|| Unreadable("the interaction names no workspace".into()))?;
        Ok(Self::Click {
            user: SlackUser {
                team_id: slack_id(team, "team.id")?,
                enterprise_id: p
                    .enterprise
                    .map(|e| slack_id(e.id, "enterprise.id"))
                    .transpose()?,
                user_id: slack_id(p.user.id, "user.id")?,
            },
            approve,
            grant_id: action.value.clone(),
            action_ts: action.action_ts.clone(),
        })
    }
}

/// A Slack user linked to a person: made by intake on an authenticated call, from a one-time
/// code the person got from the slash command, and signed by intake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackLink {
    /// The Slack user.
    pub slack: SlackUser,
    /// The person (`sub`).
    pub sub: UserId,
    /// When the link was made.
    pub linked_at: Timestamp,
}

/// The groups intake last saw on an authenticated call of a person, signed by intake: what a
/// click from Slack is decided on, while recent enough.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenGroups {
    /// The person.
    pub sub: UserId,
    /// Their groups, as the identity provider vouched for them on that call.
    pub groups: Vec<GroupName>,
    /// When.
    pub at: Timestamp,
}

const LINK_TAG: &[u8] = b"jit-access slack link v1\n";
const SEEN_TAG: &[u8] = b"jit-access seen groups v1\n";

fn tagged_digest(tag: &[u8], value: &impl Serialize) -> Vec<u8> {
    let json = serde_json::to_vec(value).unwrap_or_default();
    let mut message = tag.to_vec();
    message.extend_from_slice(&Sha256::digest(&json));
    message
}

impl SlackLink {
    /// What intake signs.
    pub fn message(&self) -> Vec<u8> {
        tagged_digest(LINK_TAG, self)
    }
}

impl SeenGroups {
    /// What intake signs.
    pub fn message(&self) -> Vec<u8> {
        tagged_digest(SEEN_TAG, self)
    }
}

/// A one-time link code's digest: codes are kept only as digests.
pub fn code_digest(code: &str) -> String {
    sha256_hex(&code.trim().to_ascii_uppercase())
}

/// A new one-time code: 10 characters from an alphabet without look-alikes (about 50 bits),
/// or `None` when the system has no randomness.
pub fn new_code() -> Option<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 10];
    aws_lc_rs::rand::fill(&mut bytes).ok()?;
    Some(
        bytes
            .iter()
            .filter_map(|b| ALPHABET.get(usize::from(*b) % ALPHABET.len()))
            .map(|b| char::from(*b))
            .collect(),
    )
}

/// How long a link to the web page's review view, given for a click Slack may not decide,
/// can be opened.
pub const HANDOFF_SECS: i64 = 600;

/// A click Slack may not decide, handed to the web page: the request, the person the clicking
/// Slack user is linked to, and when. Kept (`SLACKVIEW#<digest>`) under the digest of a random
/// token that only the clicker's link carries; opened once, by that person, signed in after
/// the click, within [`HANDOFF_SECS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    /// The request the click was on.
    pub grant: GrantId,
    /// The person the Slack user is linked to: the only one who may open it.
    pub sub: UserId,
    /// When the click was.
    pub clicked_at: Timestamp,
}

/// A new handoff token, 32 random bytes in hex, or `None` when the system has no randomness.
pub fn new_handoff_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).ok()?;
    Some(hex::encode(bytes))
}

/// The digest a handoff token is kept under.
pub fn handoff_digest(token: &str) -> String {
    sha256_hex(token)
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A replay key: the signature covers the timestamp and the body (with its `action_ts`), so
/// the same signature is the same request.
pub fn replay_key(signature: &str) -> String {
    sha256_hex(signature)
}

/// How a request's message reads now: who asked, why, the ticket, and for each target (one,
/// or every item of a request of several) its account, duration, window, why the rules did not
/// approve it at once, and where it stands
/// (approvals still needed, named requirements), with Approve and Deny while that item waits
/// for reviewers (or its extension does). `items` are (grant, the target's account).
pub fn message(items: &[(&Grant, &str)], now: Timestamp) -> Value {
    let Some((first, _)) = items.first() else {
        return json!({"text": "", "blocks": []});
    };
    let mut about = vec![
        format!("*Requester:* {}", first.requester),
        format!("*Reason:* {}", first.reason.as_str()),
    ];
    if let Some(ticket) = &first.ticket {
        about.push(format!("*Ticket:* {}", ticket.as_str()));
    }
    let title = if items.len() > 1 {
        format!("*Access request of {} targets* `{}`", items.len(), first.id)
    } else {
        format!("*Access request* `{}`", first.id)
    };
    let mut blocks = vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": title}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": about.join("\n")}}),
    ];
    let mut statuses = Vec::new();
    for (grant, account) in items {
        let mut lines = vec![
            format!("*Target:* `{}` (account {account})", grant.target),
            format!("*Duration:* {}", grant.duration),
        ];
        if items.len() > 1 {
            lines.push(format!("*Item:* `{}`", grant.id));
        }
        if let Some(starts) = grant.starts_at {
            lines.push(format!("*Starts:* {starts}"));
        }
        if let Some(ends) = grant.ends_at {
            lines.push(format!("*Ends:* {ends}"));
        }
        if let Some(said) = &grant.rules_said {
            lines.push(format!("*Rules:* {said}"));
        }
        let status = status_line(grant, now);
        blocks
            .push(json!({"type": "section", "text": {"type": "mrkdwn", "text": lines.join("\n")}}));
        blocks.push(
            json!({"type": "context", "elements": [{"type": "mrkdwn", "text": status.clone()}]}),
        );
        let waiting = grant.state == GrantState::Pending && grant.approvals_required.is_some()
            || grant.extension.is_some();
        if waiting {
            blocks.push(json!({
                "type": "actions",
                "block_id": format!("review:{}", grant.id),
                "elements": [
                    {"type": "button", "action_id": APPROVE, "style": "primary", "value": grant.id.as_str(),
                     "text": {"type": "plain_text", "text": "Approve"}},
                    {"type": "button", "action_id": DENY, "style": "danger", "value": grant.id.as_str(),
                     "text": {"type": "plain_text", "text": "Deny"}},
                ]
            }));
        }
        statuses.push(if items.len() > 1 {
            format!("{}: {status}", grant.target)
        } else {
            status
        });
    }
    json!({
        "text": format!("Access request {} for {}: {}", first.id, first.requester, statuses.join("; ")),
        "blocks": blocks,
    })
}

/// One line saying where the request stands and what it still needs.
pub fn status_line(grant: &Grant, now: Timestamp) -> String {
    let approvals = grant
        .reviews
        .iter()
        .filter(|r| r.decision == crate::domain::ReviewDecision::Approve)
        .count();
    match grant.state {
        GrantState::Pending => match grant.approvals_required {
            None => "Waiting for the rules".to_owned(),
            Some(required) => {
                let mut line = format!(
                    "Waiting for reviewers: {approvals} of {required} approvals; decide by {}",
                    grant.decide_by
                );
                if !grant.requirements.is_empty() {
                    let names: Vec<&str> =
                        grant.requirements.iter().map(|r| r.name.as_str()).collect();
                    line.push_str(&format!(" (requirements: {})", names.join(", ")));
                }
                line
            }
        },
        GrantState::Active if grant.extension.is_some() => {
            "Active; an extension waits for reviewers".to_owned()
        }
        GrantState::Active if grant.starts_at.is_some_and(|s| s > now) => {
            "Approved; opens at its scheduled start".to_owned()
        }
        GrantState::Active if grant.break_glass && grant.review_owed => {
            "BREAK-GLASS: active, a review is owed".to_owned()
        }
        GrantState::Active => "Approved: active.".to_owned(),
        other => format!("Closed: {}", other.as_str().to_ascii_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slack's published example ("Verifying requests from Slack").
    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const TIMESTAMP: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_seconds(secs)
    }

    #[test]
    fn slacks_published_example_verifies_and_nothing_near_it_does() {
        let now = at(1_531_420_618 + 10);
        assert_eq!(
            verify_signature(
                SECRET,
                Some(TIMESTAMP),
                Some(SIGNATURE),
                BODY.as_bytes(),
                now
            ),
            Ok(())
        );
        assert_eq!(sign(SECRET, TIMESTAMP, BODY.as_bytes()), SIGNATURE);
        let other_body = BODY.replacen("roadrunner", "coyote", 1);
        let flipped = SIGNATURE.replacen("a2114", "a2115", 1);
        /// A case: its name, the two headers, the body, when it is checked, and the refusal.
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            &'a [u8],
            Timestamp,
            Forged,
        );
        let cases: [Case; 8] = [
            (
                "another body",
                Some(TIMESTAMP),
                Some(SIGNATURE),
                other_body.as_bytes(),
                now,
                Forged::Mismatch,
            ),
            (
                "another secret",
                Some(TIMESTAMP),
                Some(SIGNATURE),
                BODY.as_bytes(),
                now,
                Forged::Mismatch,
            ),
            (
                "one digit off",
                Some(TIMESTAMP),
                Some(&flipped),
                BODY.as_bytes(),
                now,
                Forged::Mismatch,
            ),
            (
                "another timestamp",
                Some("1531420619"),
                Some(SIGNATURE),
                BODY.as_bytes(),
                now,
                Forged::Mismatch,
            ),
            (
                "six minutes late",
                Some(TIMESTAMP),
                Some(SIGNATURE),
                BODY.as_bytes(),
                at(1_531_420_618 + 301),
                Forged::Stale(301),
            ),
            (
                "six minutes early",
                Some(TIMESTAMP),
                Some(SIGNATURE),
                BODY.as_bytes(),
                at(1_531_420_618 - 301),
                Forged::Stale(-301),
            ),
            (
                "no signature",
                Some(TIMESTAMP),
                None,
                BODY.as_bytes(),
                now,
                Forged::Missing("X-Slack-Signature"),
            ),
            (
                "v1 scheme",
                Some(TIMESTAMP),
                Some(&SIGNATURE.replacen("v0=", "v1=", 1)),
                BODY.as_bytes(),
                now,
                Forged::BadSignature,
            ),
        ];
        for (name, ts, sig, body, now, want) in cases {
            let secret: &[u8] = if name == "another secret" {
                b"8f742231b10e8888abcd99yyyzzz85a6"
            } else {
                SECRET
            };
            assert_eq!(
                verify_signature(secret, ts, sig, body, now),
                Err(want),
                "{name}"
            );
        }
    }

    #[test]
    fn a_slash_command_and_a_click_are_read_as_slack_sends_them() {
        let Ok(Interaction::Command { user, text }) = Interaction::parse(BODY.as_bytes()) else {
            panic!("the example is a slash command");
        };
        assert_eq!(user.team_id, "T1DC2JH3J");
        assert_eq!(user.user_id, "U2CERLKJA");
        assert_eq!(text, "");
        let payload = json!({
            "type": "block_actions",
            "user": {"id": "U0REVIEW", "team_id": "T0JIT"},
            "team": {"id": "T0JIT", "domain": "example"},
            "enterprise": null,
            "actions": [{"action_id": APPROVE, "block_id": "review:x", "value": "g-1", "action_ts": "1700000000.000100", "type": "button"}]
        });
        let body = format!(
            "payload={}",
            url::form_urlencoded::byte_serialize(payload.to_string().as_bytes())
                .collect::<String>()
        );
        assert_eq!(
            Interaction::parse(body.as_bytes()),
            Ok(Interaction::Click {
                user: SlackUser {
                    team_id: "T0JIT".into(),
                    enterprise_id: None,
                    user_id: "U0REVIEW".into()
                },
                approve: true,
                grant_id: "g-1".into(),
                action_ts: "1700000000.000100".into(),
            })
        );
        for bad in [
            json!({"type": "view_submission", "user": {"id": "U1"}, "team": {"id": "T1"}}),
            json!({"type": "block_actions", "user": {"id": "U1"}, "team": {"id": "T1"}, "actions": []}),
            json!({"type": "block_actions", "user": {"id": "U1"}, "team": {"id": "T1"},
                   "actions": [{"action_id": "other", "value": "g", "action_ts": "1"}]}),
            json!({"type": "block_actions", "user": {"id": "U1/../x"}, "team": {"id": "T1"},
                   "actions": [{"action_id": APPROVE, "value": "g", "action_ts": "1"}]}),
        ] {
            let body = format!(
                "payload={}",
                url::form_urlencoded::byte_serialize(bad.to_string().as_bytes())
                    .collect::<String>()
            );
            assert!(Interaction::parse(body.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn codes_are_ten_unambiguous_characters_and_match_whatever_the_case() {
        let code = new_code().unwrap();
        assert_eq!(code.len(), 10);
        assert!(!code.contains(['0', 'O', '1', 'I', 'L']));
        assert_eq!(code_digest(&code), code_digest(&code.to_ascii_lowercase()));
        assert_ne!(new_code(), Some(code));
    }
}
