//! A stand-in for Slack on loopback, both ways:
//!
//! - the Web API methods the broker calls (`chat.postMessage`, `chat.update`,
//!   `chat.postEphemeral`, `users.info`, with the bot token checked, `ok: false` errors as
//!   Slack words them, and a settable `ratelimited` 429 with `Retry-After` or an outage);
//! - Slack's side of interactivity: a click on a message's button or a slash command, sent to
//!   the broker's `POST /slack/interactions` signed as Slack signs (v0 HMAC-SHA256 with the
//!   app's signing secret), from a user of the directory.
//!
//! Besides Slack's own routes it serves `GET /standin/channels/{channel}` (the channel as a
//! person would see it: each message's current text and buttons), `PUT /standin/users` (the
//! directory), `POST /standin/click` and `POST /standin/command`, so a person running the
//! local stack can click without a Slack workspace.
// Reading a JSON value by key (`value["ok"]`) gives `Value::Null` when absent: it never
// panics (the lint cannot tell it from slice indexing). Values are only written through
// `as_object_mut`.
#![allow(clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_lc_rs::hmac;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::http;

/// A user of the stand-in's workspace, as `users.info` describes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackMember {
    /// `U…`.
    pub id: String,
    /// Their workspace, `T…`.
    pub team_id: String,
    /// Deactivated.
    #[serde(default)]
    pub deleted: bool,
    /// A multi-channel guest.
    #[serde(default)]
    pub is_restricted: bool,
    /// A bot.
    #[serde(default)]
    pub is_bot: bool,
}

impl SlackMember {
    /// A full member of `team`.
    pub fn member(id: &str, team: &str) -> Self {
        Self {
            id: id.to_owned(),
            team_id: team.to_owned(),
            deleted: false,
            is_restricted: false,
            is_bot: false,
        }
    }
}

/// One message as posted and last updated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostedMessage {
    /// Its `ts`.
    pub ts: String,
    /// The channel.
    pub channel: String,
    /// Its current text.
    pub text: String,
    /// Its current blocks.
    pub blocks: Value,
    /// How many times it was updated.
    pub updates: u32,
}

impl PostedMessage {
    /// The `action_id`s of its buttons, in order.
    pub fn buttons(&self) -> Vec<String> {
        let mut out = Vec::new();
        for block in self.blocks.as_array().into_iter().flatten() {
            for element in block["elements"].as_array().into_iter().flatten() {
                if element["type"] == "button"
                    && let Some(id) = element["action_id"].as_str()
                {
                    out.push(id.to_owned());
                }
            }
        }
        out
    }

    /// All its text, blocks included, as one string.
    pub fn all_text(&self) -> String {
        format!("{}\n{}", self.text, self.blocks)
    }
}

/// What the stand-in holds.
#[derive(Debug, Default)]
pub struct SlackState {
    /// Messages by `ts`.
    pub messages: BTreeMap<String, PostedMessage>,
    /// Ephemeral messages: (channel, user, text).
    pub ephemeral: Vec<(String, String, String)>,
    /// The directory.
    pub users: BTreeMap<String, SlackMember>,
    /// The next this many Web API calls answer 429 `ratelimited`.
    pub limit_next: u32,
    /// The `Retry-After` those answers carry, in seconds.
    pub retry_after: u64,
    /// Every Web API call answers 503 while set.
    pub down: bool,
    /// Each Web API method called, in order, and whether it was limited or failed.
    pub calls: Vec<(String, u16)>,
    /// Archived channels: posting or updating there answers `is_archived`.
    pub archived: std::collections::BTreeSet<String>,
    next_ts: u64,
}

/// A running stand-in; it stops when dropped.
#[derive(Debug)]
pub struct SlackStandIn {
    /// Its base address; the Web API is under `/api`.
    pub url: String,
    /// The bot token it accepts.
    pub bot_token: String,
    /// The app's signing secret it signs interactions with.
    pub signing_secret: String,
    /// Its workspace.
    pub team_id: String,
    /// Where it sends interactions (the broker's `POST /slack/interactions`).
    pub interactions_url: Arc<Mutex<Option<String>>>,
    /// Its messages, directory and settings.
    pub state: Arc<Mutex<SlackState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SlackStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Slack's v0 signature of `body` at `timestamp` with `secret`.
pub fn slack_signature(secret: &str, timestamp: &str, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, format!("v0:{timestamp}:{body}").as_bytes());
    format!(
        "v0={}",
        tag.as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// An interaction as Slack would send it: the form body, and its headers.
#[derive(Debug, Clone)]
pub struct SignedInteraction {
    /// `application/x-www-form-urlencoded`.
    pub body: String,
    /// `X-Slack-Request-Timestamp`.
    pub timestamp: String,
    /// `X-Slack-Signature`.
    pub signature: String,
}

impl SlackStandIn {
    /// Starts it on a free loopback port, with its workspace `team_id`, accepting
    /// `bot_token` and signing with `signing_secret`.
    pub async fn start(
        team_id: &str,
        bot_token: &str,
        signing_secret: &str,
    ) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(SlackState::default()));
        let interactions_url = Arc::new(Mutex::new(None::<String>));
        let (shared, token) = (Arc::clone(&state), bot_token.to_owned());
        let (target, secret, team) = (
            Arc::clone(&interactions_url),
            signing_secret.to_owned(),
            team_id.to_owned(),
        );
        let (task, url) = http::spawn(move |request: hyper::Request<hyper::body::Incoming>| {
            let (state, token) = (Arc::clone(&shared), token.clone());
            let (target, secret, team) = (Arc::clone(&target), secret.clone(), team.clone());
            async move {
                let method = request.method().clone();
                let path = request.uri().path().to_owned();
                let authorization = request
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = http::body_bytes(request).await;
                let (status, retry_after, answer) = if let Some(api) = path.strip_prefix("/api/") {
                    web_api(&state, api, authorization.as_deref(), &token, &body)
                } else {
                    let stand_in = StandInRoutes {
                        state: &state,
                        target: &target,
                        secret: &secret,
                        team: &team,
                    };
                    let (status, answer) = stand_in.route(method.as_str(), &path, &body).await;
                    (status, None, answer)
                };
                let mut reply = http::reply(status, "application/json", answer.to_string());
                if let Some(after) = retry_after
                    && let Ok(v) = hyper::header::HeaderValue::from_str(&after.to_string())
                {
                    reply.headers_mut().insert("retry-after", v);
                }
                reply
            }
        })
        .await?;
        Ok(Self {
            url,
            bot_token: bot_token.to_owned(),
            signing_secret: signing_secret.to_owned(),
            team_id: team_id.to_owned(),
            interactions_url,
            state,
            task,
        })
    }

    /// The Web API's base, as `JIT_SLACK_API_URL` takes it.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.url)
    }

    /// Sends interactions to `url` from now on.
    pub fn deliver_to(&self, url: &str) {
        *lock(&self.interactions_url) = Some(url.to_owned());
    }

    /// Puts `members` in the directory.
    pub fn add_users(&self, members: impl IntoIterator<Item = SlackMember>) {
        let mut state = lock(&self.state);
        for m in members {
            state.users.insert(m.id.clone(), m);
        }
    }

    /// Makes the next `n` Web API calls answer 429 `ratelimited` with `Retry-After: secs`.
    pub fn limit_next(&self, n: u32, secs: u64) {
        let mut state = lock(&self.state);
        state.limit_next = n;
        state.retry_after = secs;
    }

    /// Deletes the message `ts`, as a person in Slack may: updating it answers
    /// `message_not_found`.
    pub fn delete_message(&self, ts: &str) {
        lock(&self.state).messages.remove(ts);
    }

    /// Archives `channel`: posting or updating there answers `is_archived`.
    pub fn archive(&self, channel: &str) {
        lock(&self.state).archived.insert(channel.to_owned());
    }

    /// Makes every Web API call answer 503 while `down`.
    pub fn set_down(&self, down: bool) {
        lock(&self.state).down = down;
    }

    /// The messages of `channel`, oldest first.
    pub fn channel(&self, channel: &str) -> Vec<PostedMessage> {
        lock(&self.state)
            .messages
            .values()
            .filter(|m| m.channel == channel)
            .cloned()
            .collect()
    }

    /// The message about request `grant` (or one of its items), in any channel.
    pub fn message_about(&self, grant: &str) -> Option<PostedMessage> {
        lock(&self.state)
            .messages
            .values()
            .find(|m| m.all_text().contains(grant))
            .cloned()
    }

    /// The ephemeral messages `user` was shown, oldest first.
    pub fn ephemeral_to(&self, user: &str) -> Vec<String> {
        lock(&self.state)
            .ephemeral
            .iter()
            .filter(|(_, u, _)| u == user)
            .map(|(_, _, t)| t.clone())
            .collect()
    }

    /// The Web API methods called so far, with the status each got.
    pub fn calls(&self) -> Vec<(String, u16)> {
        lock(&self.state).calls.clone()
    }

    /// A click on `action_id` (`jit_approve`, `jit_deny`) of the message about `grant` by
    /// `user` of `team`, signed now.
    pub fn click(&self, user: &str, team: &str, action_id: &str, grant: &str) -> SignedInteraction {
        sign_now(
            &self.signing_secret,
            &click_body(user, team, action_id, grant),
        )
    }

    /// The slash command `/jit text` by `user` of `team`, signed now.
    pub fn command(&self, user: &str, team: &str, text: &str) -> SignedInteraction {
        sign_now(&self.signing_secret, &command_body(user, team, text))
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

fn sign_now(secret: &str, body: &str) -> SignedInteraction {
    let timestamp = now_secs().to_string();
    SignedInteraction {
        signature: slack_signature(secret, &timestamp, body),
        timestamp,
        body: body.to_owned(),
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    out.finish()
}

/// A `block_actions` payload as Slack sends for a button click.
pub fn click_body(user: &str, team: &str, action_id: &str, grant: &str) -> String {
    let action_ts = format!(
        "{}.{:06}",
        now_secs(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_micros())
    );
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user, "username": user.to_lowercase(), "team_id": team},
        "api_app_id": "A0JITLOCAL",
        "token": "deprecated-verification-token",
        "team": {"id": team, "domain": "jit-local"},
        "channel": {"id": "C0REVIEWS", "name": "reviews"},
        "trigger_id": "1.2.3",
        "response_url": "https://hooks.slack.com/actions/local",
        "actions": [{
            "type": "button",
            "action_id": action_id,
            "block_id": format!("review:{grant}"),
            "value": grant,
            "action_ts": action_ts,
        }],
    });
    form(&[("payload", &payload.to_string())])
}

/// A slash command's form body as Slack sends it.
pub fn command_body(user: &str, team: &str, text: &str) -> String {
    form(&[
        ("token", "deprecated-verification-token"),
        ("team_id", team),
        ("team_domain", "jit-local"),
        ("channel_id", "C0REVIEWS"),
        ("user_id", user),
        ("user_name", &user.to_lowercase()),
        ("command", "/jit"),
        ("text", text),
        ("response_url", "https://hooks.slack.com/commands/local"),
        ("trigger_id", "1.2.3"),
    ])
}

/// Slack's Web API: (status, `Retry-After`, answer).
fn web_api(
    state: &Mutex<SlackState>,
    method: &str,
    authorization: Option<&str>,
    token: &str,
    body: &[u8],
) -> (u16, Option<u64>, Value) {
    let mut state = lock(state);
    if state.down {
        state.calls.push((method.to_owned(), 503));
        return (
            503,
            None,
            json!({"ok": false, "error": "service_unavailable"}),
        );
    }
    if state.limit_next > 0 {
        state.limit_next -= 1;
        state.calls.push((method.to_owned(), 429));
        let after = state.retry_after;
        return (
            429,
            Some(after),
            json!({"ok": false, "error": "ratelimited"}),
        );
    }
    state.calls.push((method.to_owned(), 200));
    if authorization != Some(format!("Bearer {token}").as_str()) {
        return (200, None, json!({"ok": false, "error": "invalid_auth"}));
    }
    let Ok(args) = serde_json::from_slice::<Value>(body) else {
        return (200, None, json!({"ok": false, "error": "invalid_json"}));
    };
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    if method.starts_with("chat.") && state.archived.contains(&text(&args["channel"])) {
        return (200, None, json!({"ok": false, "error": "is_archived"}));
    }
    let answer = match method {
        "chat.postMessage" => {
            let channel = text(&args["channel"]);
            if channel.is_empty() {
                json!({"ok": false, "error": "channel_not_found"})
            } else {
                state.next_ts += 1;
                let ts = format!("{}.{:06}", now_secs(), state.next_ts);
                state.messages.insert(
                    ts.clone(),
                    PostedMessage {
                        ts: ts.clone(),
                        channel: channel.clone(),
                        text: text(&args["text"]),
                        blocks: args["blocks"].clone(),
                        updates: 0,
                    },
                );
                json!({"ok": true, "channel": channel, "ts": ts})
            }
        }
        "chat.update" => {
            let ts = text(&args["ts"]);
            match state.messages.get_mut(&ts) {
                Some(m) if m.channel == text(&args["channel"]) => {
                    m.text = text(&args["text"]);
                    m.blocks = args["blocks"].clone();
                    m.updates += 1;
                    json!({"ok": true, "channel": m.channel, "ts": ts})
                }
                _ => json!({"ok": false, "error": "message_not_found"}),
            }
        }
        "chat.postEphemeral" => {
            state.ephemeral.push((
                text(&args["channel"]),
                text(&args["user"]),
                text(&args["text"]),
            ));
            json!({"ok": true, "message_ts": "1.1"})
        }
        "users.info" => match state.users.get(&text(&args["user"])) {
            Some(m) => json!({"ok": true, "user": m}),
            None => json!({"ok": false, "error": "user_not_found"}),
        },
        _ => json!({"ok": false, "error": "unknown_method"}),
    };
    (200, None, answer)
}

struct StandInRoutes<'a> {
    state: &'a Mutex<SlackState>,
    target: &'a Mutex<Option<String>>,
    secret: &'a str,
    team: &'a str,
}

#[derive(Deserialize)]
struct ClickAsked {
    user: String,
    #[serde(default)]
    approve: bool,
    grant: String,
}

#[derive(Deserialize)]
struct CommandAsked {
    user: String,
    text: String,
}

impl StandInRoutes<'_> {
    async fn route(&self, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
        match (method, path) {
            ("GET", p) if p.starts_with("/standin/channels/") => {
                let channel = p.trim_start_matches("/standin/channels/");
                let messages: Vec<Value> = lock(self.state)
                    .messages
                    .values()
                    .filter(|m| m.channel == channel)
                    .map(|m| json!({"ts": m.ts, "text": m.text, "buttons": m.buttons(), "updates": m.updates}))
                    .collect();
                (200, json!({"channel": channel, "messages": messages}))
            }
            ("PUT", "/standin/users") => match serde_json::from_slice::<Vec<SlackMember>>(body) {
                Ok(users) => {
                    let mut state = lock(self.state);
                    for u in users {
                        state.users.insert(u.id.clone(), u);
                    }
                    (204, Value::Null)
                }
                Err(e) => (400, json!({"error": e.to_string()})),
            },
            ("POST", "/standin/click") => match serde_json::from_slice::<ClickAsked>(body) {
                Ok(c) => {
                    let action = if c.approve { "jit_approve" } else { "jit_deny" };
                    let signed = sign_now(
                        self.secret,
                        &click_body(&c.user, self.team, action, &c.grant),
                    );
                    self.deliver(&signed).await
                }
                Err(e) => (400, json!({"error": e.to_string()})),
            },
            ("POST", "/standin/command") => match serde_json::from_slice::<CommandAsked>(body) {
                Ok(c) => {
                    let signed = sign_now(self.secret, &command_body(&c.user, self.team, &c.text));
                    self.deliver(&signed).await
                }
                Err(e) => (400, json!({"error": e.to_string()})),
            },
            _ => (404, json!({"ok": false, "error": "not_found"})),
        }
    }

    /// Sends `signed` to the broker and answers with what it said.
    async fn deliver(&self, signed: &SignedInteraction) -> (u16, Value) {
        let Some(url) = lock(self.target).clone() else {
            return (409, json!({"error": "no interactions URL is set"}));
        };
        match post_form(&url, signed).await {
            Ok((status, body)) => (
                200,
                json!({"status": status, "answer": serde_json::from_str::<Value>(&body).unwrap_or(Value::String(body))}),
            ),
            Err(e) => (502, json!({"error": e})),
        }
    }
}

/// Posts `signed` to `url` as Slack would: (status, body).
pub async fn post_form(url: &str, signed: &SignedInteraction) -> Result<(u16, String), String> {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let request = hyper::Request::post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", &signed.timestamp)
        .header("x-slack-signature", &signed.signature)
        .body(Full::new(bytes::Bytes::from(signed.body.clone())))
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .map_err(|_| "the broker did not answer in 10 s".to_owned())?
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    Ok((status, body))
}
