//! Intake's part of approvals in Slack: it links a Slack user to the caller from a one-time
//! code (`POST /slack/links`), and records the groups of authenticated callers (at most every
//! few minutes each), both signed with intake's key. A click in Slack is decided on these,
//! never on anything Slack says about the person.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lambda_http::http::StatusCode;

use jit_api::{HandoffView, LinkSlackRequest, OpenHandoffRequest, SlackLinkView};
use jit_core::clock::Timestamp;
use jit_core::domain::Service;
use jit_core::identity::Caller;
use jit_core::slack::{SeenGroups, SlackLink, code_digest, handoff_digest};
use jit_core::store::DynamoStore;
use jit_core::trust::SigningKey;
use jit_http::{Call, Problem, Reply, body_text, json, parse_body};

/// How often one instance looks at a person's stored groups again, and how old unchanged
/// stored groups may grow before they are recorded again.
pub const SEEN_EVERY_SECS: i64 = 300;

/// How long after a call its groups are looked at: by then its response is sent.
pub const AFTER_RESPONSE: std::time::Duration = std::time::Duration::from_millis(100);

/// What an instance last learned of a person's stored groups: `None` when nothing is stored
/// (they never linked a Slack user), else the groups (sorted) and when they were seen.
type Known = Option<(Vec<String>, i64)>;

/// Links and seen groups, kept in the table and signed by intake.
pub struct SlackLinks {
    store: DynamoStore,
    key: Arc<dyn SigningKey>,
    /// What this instance last learned of each person's stored groups, and when it looked.
    known: Mutex<HashMap<String, (Known, i64)>>,
}

impl SlackLinks {
    /// Links kept in `store`, signed with `key` (intake's).
    pub fn new(store: DynamoStore, key: Arc<dyn SigningKey>) -> Self {
        Self {
            store,
            key,
            known: Mutex::new(HashMap::new()),
        }
    }

    fn sorted(groups: &[jit_core::domain::GroupName]) -> Vec<String> {
        let mut groups: Vec<String> = groups.iter().map(|g| g.as_str().to_owned()).collect();
        groups.sort();
        groups
    }

    fn remember(&self, caller: &Caller, known: Known, now: Timestamp) {
        if let Ok(mut k) = self.known.lock() {
            k.insert(caller.user.as_str().to_owned(), (known, now.unix_seconds()));
        }
    }

    /// Keeps `caller`'s stored groups current, for people who linked a Slack user (only they
    /// have any stored: the link records them first). What is stored is read at most every
    /// [`SEEN_EVERY_SECS`] per person and instance; it is written again when the groups
    /// differ, or are that old. So a caller who never linked costs one read per person,
    /// instance and 5 minutes. A failure is logged: it never fails the call.
    pub async fn saw(&self, caller: &Caller, now: Timestamp) {
        let groups = Self::sorted(&caller.groups);
        let fresh = |known: &Known| match known {
            None => true,
            Some((g, at)) => *g == groups && now.unix_seconds() - at < SEEN_EVERY_SECS,
        };
        let remembered = self
            .known
            .lock()
            .ok()
            .and_then(|k| k.get(caller.user.as_str()).cloned());
        if let Some((known, looked)) = remembered
            && now.unix_seconds() - looked < SEEN_EVERY_SECS
            && fresh(&known)
        {
            return;
        }
        let stored = match self.store.seen(&caller.user).await {
            Ok(stored) => {
                stored.map(|s| (Self::sorted(&s.value.groups), s.value.at.unix_seconds()))
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the caller's recorded groups for Slack");
                return;
            }
        };
        if fresh(&stored) {
            self.remember(caller, stored, now);
            return;
        }
        if let Err(e) = self.record(caller, now).await {
            tracing::warn!(error = ?e, "could not record the caller's groups for Slack");
        }
    }

    async fn record(&self, caller: &Caller, now: Timestamp) -> Result<(), Problem> {
        let seen = SeenGroups {
            sub: caller.user.clone(),
            groups: caller.groups.clone(),
            at: now,
        };
        let signature = self
            .key
            .sign(Service::Intake, seen.message())
            .await
            .map_err(|e| Problem::unavailable(format!("could not sign: {e}")))?;
        self.store.put_seen(&seen, &signature).await?;
        let groups = Self::sorted(&caller.groups);
        self.remember(caller, Some((groups, now.unix_seconds())), now);
        Ok(())
    }

    /// `POST /slack/links`: takes the one-time code and links its Slack user to the caller.
    pub async fn link(&self, call: &Call<'_>) -> Reply {
        let body: LinkSlackRequest = parse_body(body_text(call.request)?)?;
        let code = body.code.trim();
        if code.is_empty() || code.len() > 64 {
            return Err(Problem::invalid(
                "code must be the one `/jit link` gave you in Slack",
            ));
        }
        let Some(slack) = self
            .store
            .take_link_code(&code_digest(code), call.now)
            .await?
        else {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "no such link code, or it expired or was used: type `/jit link` in Slack for a new one",
            ));
        };
        let link = SlackLink {
            slack,
            sub: call.caller.user.clone(),
            linked_at: call.now,
        };
        let signature = self
            .key
            .sign(Service::Intake, link.message())
            .await
            .map_err(|e| Problem::unavailable(format!("could not sign the link: {e}")))?;
        self.store.put_link(&link, &signature).await?;
        // A click right after linking is decided on groups as of now.
        self.record(&call.caller, call.now).await?;
        tracing::info!(team = %link.slack.team_id, "Slack user linked");
        Ok(json(
            StatusCode::CREATED,
            &SlackLinkView {
                team_id: link.slack.team_id,
                user_id: link.slack.user_id,
                sub: link.sub.as_str().to_owned(),
                linked_at: link.linked_at.to_rfc3339(),
            },
        ))
    }

    /// `POST /slack/handoffs`: opens the link a click in Slack was answered with, when Slack
    /// could not decide it (a target that needs a fresh sign-in, or groups seen too long ago).
    /// The link is taken whatever happens next, so it opens once; it must be within its 10
    /// minutes, for the person the clicking Slack user is linked to, and with a token whose
    /// sign-in (`auth_time`, else `iat`) came after the click. The answer names the request;
    /// reviewing it is the normal `POST /requests/{id}/reviews`.
    pub async fn open_handoff(&self, call: &Call<'_>) -> Reply {
        let body: OpenHandoffRequest = parse_body(body_text(call.request)?)?;
        let token = body.token.trim();
        if token.is_empty() || token.len() > 128 {
            return Err(Problem::invalid(
                "token must be the one in the link Slack's answer gave you",
            ));
        }
        let again = "click the button in Slack again for a new link";
        let Some((handoff, expires_at)) = self.store.take_handoff(&handoff_digest(token)).await?
        else {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("no such link, or it was opened already: {again}"),
            ));
        };
        if expires_at <= call.now {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("this link expired 10 minutes after the click: {again}"),
            ));
        }
        if handoff.sub != call.caller.user {
            tracing::warn!(grant = %handoff.grant, "a Slack handoff was opened by someone else; it is spent");
            return Err(Problem::forbidden(format!(
                "this link is for the person the clicking Slack user is linked to, not you; it cannot be used again: {again}"
            )));
        }
        let signed_in = jit_http::claim(call.request, "auth_time")
            .or_else(|| jit_http::claim(call.request, "iat"))
            .and_then(|t| t.parse::<i64>().ok());
        if signed_in.is_none_or(|t| t < handoff.clicked_at.unix_seconds()) {
            return Err(Problem::forbidden(format!(
                "this link needs a sign-in made after the click, and yours is older: {again}, and sign in when the page asks"
            )));
        }
        Ok(json(
            StatusCode::OK,
            &HandoffView {
                request_id: handoff.grant.as_str().to_owned(),
                clicked_at: handoff.clicked_at.to_rfc3339(),
            },
        ))
    }
}
