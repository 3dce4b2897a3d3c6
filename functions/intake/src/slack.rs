//! Intake's part of approvals in Slack: it links a Slack user to the caller from a one-time
//! code (`POST /slack/links`), and records the groups of authenticated callers (at most every
//! few minutes each), both signed with intake's key. A click in Slack is decided on these,
//! never on anything Slack says about the person.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lambda_http::http::StatusCode;

use jit_api::{LinkSlackRequest, SlackLinkView};
use jit_core::clock::Timestamp;
use jit_core::domain::Service;
use jit_core::identity::Caller;
use jit_core::slack::{SeenGroups, SlackLink, code_digest};
use jit_core::store::DynamoStore;
use jit_core::trust::SigningKey;
use jit_http::{Call, Problem, Reply, body_text, json, parse_body};

/// How often one instance records the same person's unchanged groups.
pub const SEEN_EVERY_SECS: i64 = 300;

/// Links and seen groups, kept in the table and signed by intake.
pub struct SlackLinks {
    store: DynamoStore,
    key: Arc<dyn SigningKey>,
    /// The groups this instance last recorded for each person, and when.
    recorded: Mutex<HashMap<String, (Vec<String>, i64)>>,
}

impl SlackLinks {
    /// Links kept in `store`, signed with `key` (intake's).
    pub fn new(store: DynamoStore, key: Arc<dyn SigningKey>) -> Self {
        Self {
            store,
            key,
            recorded: Mutex::new(HashMap::new()),
        }
    }

    fn groups(caller: &Caller) -> Vec<String> {
        let mut groups: Vec<String> = caller
            .groups
            .iter()
            .map(|g| g.as_str().to_owned())
            .collect();
        groups.sort();
        groups
    }

    /// Records `caller`'s groups unless this instance recorded the same ones less than
    /// [`SEEN_EVERY_SECS`] ago. A failure is logged: it never fails the call.
    pub async fn saw(&self, caller: &Caller, now: Timestamp) {
        let groups = Self::groups(caller);
        let fresh = self
            .recorded
            .lock()
            .ok()
            .and_then(|r| r.get(caller.user.as_str()).cloned())
            .is_some_and(|(g, at)| g == groups && now.unix_seconds() - at < SEEN_EVERY_SECS);
        if fresh {
            return;
        }
        match self.record(caller, now).await {
            Ok(()) => {
                if let Ok(mut r) = self.recorded.lock() {
                    r.insert(
                        caller.user.as_str().to_owned(),
                        (groups, now.unix_seconds()),
                    );
                }
            }
            Err(e) => tracing::warn!(error = ?e, "could not record the caller's groups for Slack"),
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
}
