//! Approvals in Slack: its own function (binary `slack`), built from the approver's code and
//! signing reviews with the approver's key, so unauthenticated traffic from the internet never
//! takes the approver's concurrency, and a click makes exactly the review
//! `POST /requests/{id}/reviews` makes.
//!
//! - `POST /slack/interactions`: Slack's signed requests. A slash command `/jit link` gives a
//!   one-time code the person redeems from an authenticated session (`jit slack link CODE`);
//!   a click on Approve or Deny is decided on the person the Slack user is linked to, with the
//!   groups intake last saw on an authenticated call of theirs.
//! - The table's stream (its second reader): each change of a request that needs people
//!   posts or updates its message in the target's channel. Slack being down or limiting only
//!   delays the message: the record is retried, and no decision waits for it.
// Reading a JSON value by key (`value["ok"]`) gives `Value::Null` when absent: it never
// panics (the lint cannot tell it from slice indexing). Values are only written through
// `as_object_mut`.
#![allow(clippy::indexing_slicing)]

use std::time::Duration;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use jit_api::Route;
use jit_core::cases::Cases;
use jit_core::clock::{Clock, Timestamp};
use jit_core::domain::{Grant, GrantId, ReviewDecision, Service, SlackReviewer, UserId};
use jit_core::identity::Caller;
use jit_core::policy::Rules;
use jit_core::slack::{
    Forged, HANDOFF_SECS, Handoff, Interaction, LINK_CODE_SECS, MAX_SKEW_SECS, SlackUser,
    code_digest, handoff_digest, new_code, new_handoff_token, replay_key, verify_signature,
};
use jit_core::store::{
    DynamoStore, GrantStore, PostedMessage, SignedStore, StoreError, StreamImage,
};
use jit_core::trust::PublicKeys;
use jit_http::{Problem, json as json_response, respond, route};

use crate::oncall::{CachedSecret, ProviderError, TokenSource};

/// What the Slack function answers each source.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum SlackResponse {
    /// The records to retry.
    Stream(DynamoDbEventResponse),
    /// The HTTP response.
    Http(Box<jit_http::ApiGatewayV2httpResponse>),
}

/// What Lambda delivers: a stream batch or an HTTP request.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SlackEvent {
    /// Changes of the table.
    Stream(Event),
    /// Slack's request.
    Http(Box<jit_http::ApiGatewayV2httpRequest>),
}

/// Why Slack's Web API did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackError {
    /// `ratelimited` (HTTP 429): try again after this long.
    #[error("Slack is rate limiting: retry after {0:?}")]
    RateLimited(Duration),
    /// Slack answered `ok: false`.
    #[error("Slack refused: {0}")]
    Api(String),
    /// Slack could not be reached, or answered something else.
    #[error("Slack could not be reached: {0}")]
    Transport(String),
}

/// A user as `users.info` describes them, as far as it is read.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SlackProfile {
    /// Their workspace.
    #[serde(default)]
    pub team_id: String,
    /// Deactivated.
    #[serde(default)]
    pub deleted: bool,
    /// A bot.
    #[serde(default)]
    pub is_bot: bool,
    /// A multi-channel guest.
    #[serde(default)]
    pub is_restricted: bool,
    /// A single-channel guest.
    #[serde(default)]
    pub is_ultra_restricted: bool,
}

/// Slack's Web API, with the bot token read from Secrets Manager when first needed.
pub struct SlackApi {
    http: std::sync::OnceLock<reqwest::Client>,
    base: String,
    token: CachedSecret,
}

impl SlackApi {
    /// The API at `base` (`https://slack.com/api`).
    pub fn new(base: &str, token: TokenSource) -> Self {
        Self {
            http: std::sync::OnceLock::new(),
            base: base.trim_end_matches('/').to_owned(),
            token: CachedSecret::new(token),
        }
    }

    fn http(&self) -> Result<&reqwest::Client, SlackError> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| SlackError::Transport(format!("no HTTP client: {e}")))?;
        Ok(self.http.get_or_init(|| client))
    }

    /// Calls `method` with a JSON body; the answer when `ok`.
    pub async fn call(&self, method: &str, body: &Value) -> Result<Value, SlackError> {
        let token = self
            .token
            .get()
            .await
            .map_err(|ProviderError(e)| SlackError::Transport(e))?;
        let response = self
            .http()?
            .post(format!("{}/{method}", self.base))
            .bearer_auth(&token)
            .header("content-type", "application/json; charset=utf-8")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| SlackError::Transport(e.without_url().to_string()))?;
        if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(1);
            return Err(SlackError::RateLimited(Duration::from_secs(after)));
        }
        let text = response
            .text()
            .await
            .map_err(|e| SlackError::Transport(e.without_url().to_string()))?;
        let answer: Value = serde_json::from_str(&text)
            .map_err(|e| SlackError::Transport(format!("an answer that is not JSON: {e}")))?;
        if answer["ok"] == json!(true) {
            return Ok(answer);
        }
        let error = answer["error"].as_str().unwrap_or("unknown").to_owned();
        if error == "invalid_auth" || error == "token_revoked" {
            // A rotated token: read it again next time.
            self.token.forget().await;
        }
        if error == "ratelimited" {
            return Err(SlackError::RateLimited(Duration::from_secs(1)));
        }
        Err(SlackError::Api(error))
    }

    /// `users.info`: who `user` is now.
    pub async fn profile(&self, user: &str) -> Result<SlackProfile, SlackError> {
        let answer = self.call("users.info", &json!({"user": user})).await?;
        serde_json::from_value(answer["user"].clone())
            .map_err(|e| SlackError::Transport(format!("users.info answered another shape: {e}")))
    }
}

/// Everything the Slack function needs, built once per instance.
pub struct SlackApp {
    /// The grants, written with the approver's key.
    pub store: SignedStore<DynamoStore>,
    /// The rules.
    pub rules: std::sync::Arc<Rules>,
    /// Where time comes from.
    pub clock: std::sync::Arc<dyn Clock>,
    /// The functions' public keys: links, seen groups and evidence are verified.
    pub keys: std::sync::Arc<PublicKeys>,
    /// Slack's Web API.
    pub api: SlackApi,
    /// The app's signing secret.
    pub signing_secret: CachedSecret,
    /// The web page, where reviews that need a fresh sign-in are sent.
    pub web_url: Option<String>,
}

/// What a click or command comes to: the text the person sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer(pub String);

impl SlackApp {
    /// Handles whatever Lambda delivered.
    pub async fn handle_event(&self, event: SlackEvent) -> SlackResponse {
        match event {
            SlackEvent::Stream(batch) => SlackResponse::Stream(self.handle_stream(batch).await),
            SlackEvent::Http(request) => {
                let response = self.handle_http(jit_http::into_request(*request)).await;
                SlackResponse::Http(Box::new(jit_http::into_response_event(&response)))
            }
        }
    }

    /// `POST /slack/interactions`. Never fails: every outcome is a response.
    pub async fn handle_http(&self, request: Request) -> Response<Body> {
        respond(self.interaction(&request).await)
    }

    async fn interaction(&self, request: &Request) -> jit_http::Reply {
        if route(request) != Some(Route::SlackInteractions) {
            return Err(jit_http::no_such_route(request));
        }
        let now = self.clock.now();
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
        let body: &[u8] = request.body().as_ref();
        let secret = self
            .signing_secret
            .get()
            .await
            .map_err(|ProviderError(e)| {
                tracing::error!(error = %e, "the Slack signing secret cannot be read");
                Problem::unavailable("the Slack signing secret cannot be read; nothing was done")
            })?;
        let signature = header("x-slack-signature");
        if let Err(forged) = verify_signature(
            secret.as_bytes(),
            header("x-slack-request-timestamp"),
            signature,
            body,
            now,
        ) {
            tracing::warn!(why = %forged, "a request not from Slack was refused");
            return Err(Problem::unauthenticated(forged_detail(&forged)));
        }
        let interaction =
            Interaction::parse(body).map_err(|e| Problem::bad_request(e.to_string()))?;
        // The signature covers the timestamp and the body with its `action_ts`: seen once, it
        // is a replay, and changes nothing.
        let key = replay_key(signature.unwrap_or_default());
        if !self
            .store
            .inner()
            .claim_interaction(&key, now.plus_secs(2 * MAX_SKEW_SECS))
            .await?
        {
            tracing::warn!("a Slack request seen before was replayed; nothing was done");
            return Ok(reply(
                "This request was already handled; nothing more was done.",
            ));
        }
        match interaction {
            Interaction::Command { user, text } => {
                let Answer(text) = self.command(&user, &text, now).await?;
                Ok(reply(&text))
            }
            Interaction::Click {
                user,
                approve,
                grant_id,
                ..
            } => {
                let channel = click_channel(body);
                let Answer(text) = self.click(&user, approve, &grant_id, now).await;
                if let Some(channel) = channel {
                    let said = self
                        .api
                        .call(
                            "chat.postEphemeral",
                            &json!({"channel": channel, "user": user.user_id, "text": text}),
                        )
                        .await;
                    if let Err(e) = said {
                        tracing::warn!(error = %e, "could not tell the reviewer in Slack");
                    }
                }
                Ok(reply(&text))
            }
        }
    }

    fn workspace_problem(&self, user: &SlackUser) -> Option<String> {
        let Some(settings) = self.rules.slack() else {
            return Some("approvals in Slack are not set up in this deployment".into());
        };
        if user.team_id != settings.team_id || user.enterprise_id != settings.enterprise_id {
            return Some(format!(
                "this workspace ({}) is not the one this broker takes approvals from",
                user.team_id
            ));
        }
        None
    }

    async fn command(
        &self,
        user: &SlackUser,
        text: &str,
        now: Timestamp,
    ) -> Result<Answer, Problem> {
        if let Some(problem) = self.workspace_problem(user) {
            return Ok(Answer(format!("Refused: {problem}.")));
        }
        if text.trim() != "link" {
            return Ok(Answer(
                "Usage: `/jit link` gives a one-time code; run `jit slack link <code>` (signed in) to link this Slack user to you, so you can review requests here.".into(),
            ));
        }
        let code = new_code().ok_or_else(|| Problem::unavailable("no randomness for a code"))?;
        self.store
            .inner()
            .put_link_code(&code_digest(&code), user, now.plus_secs(LINK_CODE_SECS))
            .await?;
        Ok(Answer(format!(
            "Your one-time code is `{code}`. Within 10 minutes, run `jit slack link {code}` signed in as yourself: that links this Slack user to you. Nobody else can use it once you have."
        )))
    }

    /// Hands a click Slack may not decide to the web page: a link, for this person only, to
    /// the request's review view, opened once within 10 minutes and after a sign-in made after
    /// the click (the page signs in again, with the provider's MFA). Without the web page, or
    /// when the handoff cannot be kept, the answer says where to review instead.
    async fn to_web(&self, why: &str, grant: &GrantId, sub: &UserId, now: Timestamp) -> Answer {
        let Some(url) = &self.web_url else {
            return Answer(format!(
                "{why}: review it on the web page or with `jit review`."
            ));
        };
        let url = url.trim_end_matches('/');
        let handoff = Handoff {
            grant: grant.clone(),
            sub: sub.clone(),
            clicked_at: now,
        };
        let kept = match new_handoff_token() {
            Some(token) => self
                .store
                .inner()
                .put_handoff(
                    &handoff_digest(&token),
                    &handoff,
                    now.plus_secs(HANDOFF_SECS),
                )
                .await
                .inspect_err(
                    |e| tracing::warn!(error = %e, "a handoff to the web page could not be kept"),
                )
                .ok()
                .map(|()| token),
            None => None,
        };
        match kept {
            Some(token) => Answer(format!(
                "{why}: review it on the web page, where you sign in again: {url}/#/slack/{token} (for you only, once, within 10 minutes)"
            )),
            None => Answer(format!(
                "{why}: review it on the web page, where you sign in as usual: {url}/#/review"
            )),
        }
    }

    /// Decides one click; the answer says what happened or why nothing did.
    pub async fn click(
        &self,
        user: &SlackUser,
        approve: bool,
        grant_id: &str,
        now: Timestamp,
    ) -> Answer {
        match self.try_click(user, approve, grant_id, now).await {
            Ok(answer) | Err(answer) => answer,
        }
    }

    async fn try_click(
        &self,
        user: &SlackUser,
        approve: bool,
        grant_id: &str,
        now: Timestamp,
    ) -> Result<Answer, Answer> {
        let how_to_link = "type `/jit link` here and follow it to link your Slack user";
        if let Some(problem) = self.workspace_problem(user) {
            return Err(Answer(format!("Refused: {problem}. Nothing was recorded.")));
        }
        let settings = self
            .rules
            .slack()
            .ok_or_else(|| Answer("Refused.".into()))?;
        let unavailable = |e: &dyn std::fmt::Display| {
            tracing::warn!(error = %e, "a click could not be decided");
            Answer("The broker could not decide this now; nothing was recorded. Try again in a moment.".into())
        };
        // Who Slack says the user is now: a deactivated user, a guest or a bot never reviews.
        let profile = self
            .api
            .profile(&user.user_id)
            .await
            .map_err(|e| unavailable(&e))?;
        if profile.deleted || profile.is_bot || profile.is_restricted || profile.is_ultra_restricted
        {
            return Err(Answer(
                "Refused: deactivated users, guests and bots cannot review. Nothing was recorded."
                    .into(),
            ));
        }
        if profile.team_id != user.team_id {
            return Err(Answer(
                "Refused: your Slack user is not a member of this workspace. Nothing was recorded."
                    .into(),
            ));
        }
        let ring = self.keys.ring().await.map_err(|e| unavailable(&e))?;
        let link = self
            .store
            .inner()
            .link(user)
            .await
            .map_err(|e| unavailable(&e))?
            .filter(|l| {
                l.value.slack == *user
                    && ring
                        .verify(l.signature.as_ref(), Service::Intake, &l.value.message())
                        .inspect_err(|e| tracing::error!(error = %e, "a Slack link failed verification"))
                        .is_ok()
            })
            .ok_or_else(|| {
                Answer(format!(
                    "Refused: your Slack user is not linked to anyone here; {how_to_link}. Nothing was recorded."
                ))
            })?;
        let id = GrantId::parse(grant_id)
            .map_err(|_| Answer("Refused: that button names no request.".into()))?;
        let grant = self
            .store
            .get(&id)
            .await
            .map_err(|e| unavailable(&e))?
            .ok_or_else(|| Answer("Refused: no such request.".into()))?;
        if settings.fresh_sign_in.contains(&grant.target) {
            let why = format!("Requests for `{}` need a fresh sign-in", grant.target);
            return Err(self.to_web(&why, &id, &link.value.sub, now).await);
        }
        let bound = self
            .rules
            .target(&grant.target)
            .map_or(settings.groups_max_age_secs, |t| {
                settings.groups_max_age_secs(t)
            });
        let seen = self
            .store
            .inner()
            .seen(&link.value.sub)
            .await
            .map_err(|e| unavailable(&e))?
            .filter(|s| {
                s.value.sub == link.value.sub
                    && ring
                        .verify(s.signature.as_ref(), Service::Intake, &s.value.message())
                        .is_ok()
            });
        let Some(seen) =
            seen.filter(|s| now.unix_seconds() - s.value.at.unix_seconds() <= i64::from(bound))
        else {
            let why = format!(
                "Your groups were last confirmed by a sign-in more than {} ago",
                human_secs(bound)
            );
            return Err(self.to_web(&why, &id, &link.value.sub, now).await);
        };
        let caller = Caller {
            user: link.value.sub.clone(),
            email: None,
            groups: seen.value.groups,
        };
        let decision = if approve {
            ReviewDecision::Approve
        } else {
            ReviewDecision::Deny
        };
        let cases = Cases::new(&self.store, &self.rules, &self.keys);
        let reviewer = SlackReviewer {
            team_id: user.team_id.clone(),
            user_id: user.user_id.clone(),
        };
        match cases
            .review_from_slack(&caller, grant_id, decision, reviewer, now)
            .await
        {
            Ok(grant) => Ok(Answer(format!(
                "You {} request `{}` for `{}`. {}",
                if approve { "approved" } else { "denied" },
                grant.id,
                grant.target,
                jit_core::slack::status_line(&grant, now)
            ))),
            Err(refusal) => Err(Answer(format!("Refused: {refusal}. Nothing was recorded."))),
        }
    }

    /// Posts or updates the message of every request in the batch that needs people. A record
    /// Slack did not take (down, limiting) is reported, so Lambda retries from it; decisions
    /// never wait for this.
    pub async fn handle_stream(&self, batch: Event) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        for record in batch.records {
            if let Err(e) = self.show(&record).await {
                tracing::warn!(event = %record.event_id, error = %e, "a request's Slack message is not up to date; it will be retried");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = record.change.sequence_number.clone();
                response.batch_item_failures.push(failure);
                // Lambda retries from the first failure: the rest would only be sent again.
                break;
            }
        }
        response
    }

    async fn show(&self, record: &EventRecord) -> Result<(), String> {
        let grant = match DynamoStore::stream_image(&record.change.keys, &record.change.new_image) {
            Ok(StreamImage::Grant(grant)) => *grant,
            Ok(StreamImage::Other) => return Ok(()),
            Err(e) => {
                tracing::error!(event = %record.event_id, error = %e, "unreadable request image skipped");
                return Ok(());
            }
        };
        let Some(settings) = self.rules.slack() else {
            return Ok(());
        };
        let Some(channel) = settings.channel(&grant.target) else {
            return Ok(());
        };
        // A request of several targets is one message, under its first item, showing them all.
        let (key, items) = match grant.bundle.as_ref().and_then(|b| b.id().cloned()) {
            Some(first) => {
                let ids = grant
                    .bundle
                    .as_ref()
                    .map(|b| b.items.clone())
                    .unwrap_or_default();
                let read = futures::future::join_all(ids.iter().map(|id| self.store.get(id))).await;
                let mut items = Vec::with_capacity(ids.len());
                for item in read {
                    match item.map_err(|e| e.to_string())? {
                        Some(g) => items.push(g),
                        None => return Err("an item of the request is not stored yet".into()),
                    }
                }
                (first, items)
            }
            None => (grant.id.clone(), vec![grant]),
        };
        // Each item's version only grows, so their sum orders the message's versions.
        let version: u64 = items.iter().map(|g| g.version).sum();
        let store = self.store.inner();
        let posted = store
            .posted_message(&key)
            .await
            .map_err(|e| e.to_string())?;
        if posted.as_ref().is_some_and(|p| p.version >= version) {
            return Ok(());
        }
        if posted.is_none() && !items.iter().any(needs_people) {
            return Ok(());
        }
        let shown: Vec<(&Grant, &str)> = items
            .iter()
            .map(|g| {
                let account = self
                    .rules
                    .target(&g.target)
                    .map_or("?", |t| t.account.as_str());
                (g, account)
            })
            .collect();
        let mut message = jit_core::slack::message(&shown, self.clock.now());
        let sent = match &posted {
            Some(p) => {
                let mut update = message.clone();
                if let Some(fields) = update.as_object_mut() {
                    fields.insert("channel".into(), json!(p.channel));
                    fields.insert("ts".into(), json!(p.ts));
                }
                match self.send("chat.update", &update).await {
                    Ok(_) => PostedMessage {
                        version,
                        ..p.clone()
                    },
                    // Someone deleted the message, or it can no longer be edited: the request
                    // as it stands now is posted again, and followed there.
                    Err(SlackError::Api(code)) if GONE.contains(&code.as_str()) => {
                        tracing::warn!(grant = %key, error = %code, "the request's message is gone from Slack; posting it again");
                        if let Some(fields) = message.as_object_mut() {
                            fields.insert("channel".into(), json!(channel));
                        }
                        match self.send("chat.postMessage", &message).await {
                            Ok(answer) => posted_at(&answer, channel, version)?,
                            Err(e) => return unposted(&key, e),
                        }
                    }
                    Err(e) => return unposted(&key, e),
                }
            }
            None => {
                // Another item's invocation may be posting it: this record is retried, and then
                // updates what that one posted.
                if !store
                    .claim_message(&key, self.clock.now(), 30)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    return Err("the message is being posted by another invocation".into());
                }
                if let Some(fields) = message.as_object_mut() {
                    fields.insert("channel".into(), json!(channel));
                }
                match self.send("chat.postMessage", &message).await {
                    Ok(answer) => posted_at(&answer, channel, version)?,
                    Err(e) => {
                        if let Err(released) = store.release_message(&key).await {
                            tracing::warn!(error = %released, "a claim on a message could not be released; it lapses in 30 s");
                        }
                        return unposted(&key, e);
                    }
                }
            }
        };
        store
            .record_message(&key, &sent)
            .await
            .map_err(|e: StoreError| e.to_string())?;
        Ok(())
    }

    /// One Web API call, waiting out a short `Retry-After` once (about a second per channel
    /// is Slack's pace); a longer one is left to the stream's retry.
    async fn send(&self, method: &str, body: &Value) -> Result<Value, SlackError> {
        match self.api.call(method, body).await {
            Err(SlackError::RateLimited(after)) if after <= Duration::from_secs(3) => {
                tokio::time::sleep(after).await;
                self.api.call(method, body).await
            }
            other => other,
        }
    }
}

/// Slack's answers to `chat.update` that mean the message is gone: deleted, or no longer
/// editable.
const GONE: [&str; 3] = [
    "message_not_found",
    "cant_update_message",
    "edit_window_closed",
];

/// Slack's answers that no retry of the same message mends: the channel is gone, archived or
/// closed to the app, or the message itself is refused. Retrying would hold up every later
/// record of the shard for a day, so such a record is logged and passed over: the request's
/// next change tries again. Anything else (limits, outages, a bad or rotated token) is retried.
const NEVER_LANDS: [&str; 9] = [
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "msg_too_long",
    "invalid_blocks",
    "no_text",
    "message_not_found",
    "cant_update_message",
    "edit_window_closed",
];

/// What a failed post or update means for the stream record: retried, or passed over (logged)
/// when Slack's answer says no retry would land it.
fn unposted(key: &GrantId, e: SlackError) -> Result<(), String> {
    match &e {
        SlackError::Api(code) if NEVER_LANDS.contains(&code.as_str()) => {
            tracing::error!(grant = %key, error = %code, "the request's message cannot land in Slack; passed over until the request changes again");
            Ok(())
        }
        _ => Err(e.to_string()),
    }
}

/// Where `chat.postMessage` put the message.
fn posted_at(answer: &Value, channel: &str, version: u64) -> Result<PostedMessage, String> {
    Ok(PostedMessage {
        channel: answer["channel"].as_str().unwrap_or(channel).to_owned(),
        ts: answer["ts"]
            .as_str()
            .ok_or("chat.postMessage answered no ts")?
            .to_owned(),
        version,
    })
}

/// Whether a request with no message yet should get one: it waits for reviewers (or an
/// extension does), or break-glass opened it.
fn needs_people(grant: &Grant) -> bool {
    grant.approvals_required.is_some() && grant.state == jit_core::domain::GrantState::Pending
        || grant.extension.is_some()
        || grant.break_glass
}

fn forged_detail(forged: &Forged) -> String {
    format!("not a request from Slack: {forged}")
}

fn reply(text: &str) -> lambda_http::Response<Body> {
    json_response(
        StatusCode::OK,
        &json!({"response_type": "ephemeral", "text": text}),
    )
}

/// The channel a click came from, to answer the person there.
fn click_channel(body: &[u8]) -> Option<String> {
    let payload = url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())?;
    let value: Value = serde_json::from_str(&payload).ok()?;
    value["channel"]["id"].as_str().map(str::to_owned)
}

fn human_secs(secs: u32) -> String {
    if secs.is_multiple_of(3600) {
        format!("{} h", secs / 3600)
    } else {
        format!("{} min", secs / 60)
    }
}

/// Reads the Slack function's settings: `JIT_SLACK_SIGNING_SECRET` and
/// `JIT_SLACK_BOT_TOKEN_SECRET` (Secrets Manager names), `JIT_SLACK_API_URL` (HTTPS, or HTTP to
/// loopback) and `JIT_WEB_URL`.
pub fn from_env(
    aws: &aws_config::SdkConfig,
) -> Result<(SlackApi, CachedSecret, Option<String>), String> {
    let secrets = aws_sdk_secretsmanager::Client::new(aws);
    let named = |name: &str| {
        jit_http::startup::setting(name)
            .ok_or_else(|| format!("{name} must name a Secrets Manager secret"))
    };
    let signing = named("JIT_SLACK_SIGNING_SECRET")?;
    let bot = named("JIT_SLACK_BOT_TOKEN_SECRET")?;
    let base = jit_http::startup::setting("JIT_SLACK_API_URL")
        .unwrap_or_else(|| "https://slack.com/api".to_owned());
    crate::oncall::check_url("JIT_SLACK_API_URL", &base)?;
    let api = SlackApi::new(
        &base,
        TokenSource::Secret {
            client: secrets.clone(),
            id: bot,
        },
    );
    let secret = CachedSecret::new(TokenSource::Secret {
        client: secrets,
        id: signing,
    });
    Ok((api, secret, jit_http::startup::setting("JIT_WEB_URL")))
}
