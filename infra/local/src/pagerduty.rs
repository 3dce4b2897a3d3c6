//! A stand-in for PagerDuty's REST API on loopback: `GET /oncalls` as PagerDuty documents it
//! (its filters, `earliest`, `include[]=users`, `limit`/`offset` paging with `more`, the
//! `Authorization: Token token=…` header and its 401), over a roster the tests or the local
//! stack set. It can be made slow, to show a provider that does not answer in time.
//!
//! Besides PagerDuty's own route it serves `PUT /standin/oncalls` (the roster, as JSON) and
//! `PUT /standin/delay-ms`, so a person running the local stack can set who is on call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::http;

/// One on-call entry: `user` is on call for `escalation_policy` at `escalation_level`
/// (through `schedule` when a schedule puts them there) from `start` to `end`, in Unix
/// seconds; no `start` or `end` is a permanent entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterEntry {
    /// The PagerDuty user id, such as `PSAMSRE`.
    pub user: String,
    /// Their email (shown with `include[]=users`).
    pub email: String,
    /// The escalation policy id.
    pub escalation_policy: String,
    /// The level, 1 first.
    pub escalation_level: u32,
    /// The schedule id, when a schedule puts them there.
    #[serde(default)]
    pub schedule: Option<String>,
    /// When it starts (Unix seconds); `None` for a permanent entry.
    #[serde(default)]
    pub start: Option<i64>,
    /// When it ends (Unix seconds); `None` for a permanent entry.
    #[serde(default)]
    pub end: Option<i64>,
}

impl RosterEntry {
    /// `user` on call for `escalation_policy` at `level`, permanently (no start, no end),
    /// with an email made from the id.
    pub fn permanent(user: &str, escalation_policy: &str, level: u32) -> Self {
        Self {
            user: user.to_owned(),
            email: format!("{}@example.com", user.to_lowercase()),
            escalation_policy: escalation_policy.to_owned(),
            escalation_level: level,
            schedule: None,
            start: None,
            end: None,
        }
    }

    /// The same entry from `start` to `end` (Unix seconds; `None`: unbounded).
    pub fn between(mut self, start: Option<i64>, end: Option<i64>) -> Self {
        self.start = start;
        self.end = end;
        self
    }
}

/// What the stand-in holds; shared with whoever started it.
#[derive(Debug, Default)]
pub struct PagerDutyState {
    /// Who is on call.
    pub roster: Vec<RosterEntry>,
    /// How long each `GET /oncalls` waits before answering.
    pub delay: Duration,
    /// The most entries one page holds (PagerDuty's own cap is 100); 0 for 100.
    pub page_size: usize,
    /// Each `GET /oncalls` query string received, in order.
    pub queries: Vec<String>,
}

/// A running stand-in; it stops when dropped.
#[derive(Debug)]
pub struct PagerDutyStandIn {
    /// Its base address, such as `http://127.0.0.1:40123`.
    pub url: String,
    /// The token it accepts.
    pub token: String,
    /// Its roster, delay, page size and what it received.
    pub state: Arc<Mutex<PagerDutyState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PagerDutyStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PagerDutyStandIn {
    /// Starts it on a free loopback port, accepting `token`.
    pub async fn start(token: &str) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(PagerDutyState::default()));
        let (shared, expected) = (Arc::clone(&state), token.to_owned());
        let (task, url) = http::spawn(move |request: hyper::Request<hyper::body::Incoming>| {
            let (state, expected) = (Arc::clone(&shared), expected.clone());
            async move {
                let method = request.method().clone();
                let path = request.uri().path().to_owned();
                let query = request.uri().query().unwrap_or_default().to_owned();
                let authorization = request
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = http::body_bytes(request).await;
                let (status, body) = match (method.as_str(), path.as_str()) {
                    ("GET", "/oncalls") => {
                        let delay = lock(&state).delay;
                        tokio::time::sleep(delay).await;
                        oncalls(&state, &query, authorization.as_deref(), &expected)
                    }
                    ("PUT", "/standin/oncalls") => match serde_json::from_slice(&body) {
                        Ok(roster) => {
                            lock(&state).roster = roster;
                            (204, Value::Null)
                        }
                        Err(e) => (400, json!({"error": e.to_string()})),
                    },
                    ("PUT", "/standin/delay-ms") => {
                        match String::from_utf8_lossy(&body).trim().parse::<u64>() {
                            Ok(ms) => {
                                lock(&state).delay = Duration::from_millis(ms);
                                (204, Value::Null)
                            }
                            Err(e) => (400, json!({"error": e.to_string()})),
                        }
                    }
                    _ => (
                        404,
                        json!({"error": {"message": "Not Found", "code": 2100}}),
                    ),
                };
                let text = if body.is_null() {
                    String::new()
                } else {
                    body.to_string()
                };
                http::reply(status, "application/json", text)
            }
        })
        .await?;
        Ok(Self {
            url,
            token: token.to_owned(),
            state,
            task,
        })
    }

    /// Sets who is on call.
    pub fn set_roster(&self, roster: Vec<RosterEntry>) {
        lock(&self.state).roster = roster;
    }

    /// Makes every `GET /oncalls` wait `delay` first.
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.state).delay = delay;
    }

    /// Makes pages hold at most `size` entries.
    pub fn set_page_size(&self, size: usize) {
        lock(&self.state).page_size = size;
    }

    /// The query strings of the `GET /oncalls` received so far, and forgets them.
    pub fn take_queries(&self) -> Vec<String> {
        std::mem::take(&mut lock(&self.state).queries)
    }
}

fn lock(state: &Mutex<PagerDutyState>) -> std::sync::MutexGuard<'_, PagerDutyState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `GET /oncalls`, as PagerDuty answers it.
fn oncalls(
    state: &Mutex<PagerDutyState>,
    query: &str,
    authorization: Option<&str>,
    token: &str,
) -> (u16, Value) {
    let mut state = lock(state);
    state.queries.push(query.to_owned());
    if authorization != Some(format!("Token token={token}").as_str()) {
        return (
            401,
            json!({"error": {"message": "Unauthorized", "code": 2006}}),
        );
    }
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let all = |name: &str| -> Vec<&str> {
        params
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let one = |name: &str| all(name).first().map(|v| (*v).to_owned());
    let (users, policies, schedules) = (
        all("user_ids[]"),
        all("escalation_policy_ids[]"),
        all("schedule_ids[]"),
    );
    let earliest = one("earliest").as_deref() == Some("true");
    let users_included = all("include[]").contains(&"users");
    let number = |name: &str, default: usize| {
        one(name)
            .map(|v| v.parse::<usize>().map_err(|_| name.to_owned()))
            .transpose()
            .map(|v| v.unwrap_or(default))
    };
    let (limit, offset) = match (number("limit", 25), number("offset", 0)) {
        (Ok(l), Ok(o)) => (l, o),
        (Err(name), _) | (_, Err(name)) => {
            return (
                400,
                json!({"error": {"message": "Invalid Input Provided", "code": 2001, "errors": [format!("{name} must be a number")]}}),
            );
        }
    };
    let cap = if state.page_size == 0 {
        100
    } else {
        state.page_size
    };
    let limit = limit.clamp(1, 100).min(cap);
    // `since` and `until` default to now: who is on call now.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let at = |name: &str| {
        one(name)
            .and_then(|t| {
                time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok()
            })
            .map_or(now, |t| t.unix_timestamp())
    };
    let (since, until) = (at("since"), at("until"));
    let mut matching: Vec<&RosterEntry> = state
        .roster
        .iter()
        .filter(|e| users.is_empty() || users.contains(&e.user.as_str()))
        .filter(|e| policies.is_empty() || policies.contains(&e.escalation_policy.as_str()))
        .filter(|e| {
            schedules.is_empty()
                || e.schedule
                    .as_deref()
                    .is_some_and(|s| schedules.contains(&s))
        })
        .filter(|e| e.start.is_none_or(|s| s <= until) && e.end.is_none_or(|x| x > since))
        .collect();
    if earliest {
        // Only the earliest entry for each escalation policy, level and user.
        let mut first: BTreeMap<(String, u32, String), &RosterEntry> = BTreeMap::new();
        for e in matching {
            let key = (
                e.escalation_policy.clone(),
                e.escalation_level,
                e.user.clone(),
            );
            let keep = first
                .get(&key)
                .is_none_or(|kept| e.start.unwrap_or(i64::MIN) < kept.start.unwrap_or(i64::MIN));
            if keep {
                first.insert(key, e);
            }
        }
        matching = first.into_values().collect();
    }
    let more = matching.len() > offset + limit;
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|e| entry_json(e, users_included))
        .collect();
    (
        200,
        json!({"oncalls": page, "limit": limit, "offset": offset, "more": more, "total": null}),
    )
}

fn rfc3339(secs: Option<i64>) -> Value {
    secs.and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map_or(Value::Null, Value::String)
}

fn entry_json(e: &RosterEntry, users_included: bool) -> Value {
    let reference = |kind: &str, id: &str| {
        json!({
            "id": id,
            "type": format!("{kind}_reference"),
            "summary": id,
            "self": format!("https://api.pagerduty.com/{kind}s/{id}"),
            "html_url": format!("https://example.pagerduty.com/{kind}s/{id}"),
        })
    };
    let user = if users_included {
        json!({
            "id": e.user,
            "type": "user",
            "name": e.email.split('@').next().unwrap_or_default(),
            "email": e.email,
            "summary": e.email,
            "self": format!("https://api.pagerduty.com/users/{}", e.user),
            "html_url": format!("https://example.pagerduty.com/users/{}", e.user),
        })
    } else {
        reference("user", &e.user)
    };
    json!({
        "escalation_policy": reference("escalation_policy", &e.escalation_policy),
        "escalation_level": e.escalation_level,
        "schedule": e.schedule.as_deref().map_or(Value::Null, |s| reference("schedule", s)),
        "user": user,
        "start": rfc3339(e.start),
        "end": rfc3339(e.end),
    })
}
