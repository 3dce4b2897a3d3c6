//! On-call as an input to the rules: "is this person on call for this target's service now,
//! and at which escalation level", asked of a provider (PagerDuty) when the approver decides.
//!
//! Every question of one stream batch is asked at once, each distinct question once, under
//! one deadline for the whole batch; the answers are kept for that batch only. Whatever does
//! not answer in time, refuses, or cannot name the person is "not on call": the rules then
//! decide as they would for anyone else, and the decision's record says why.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jit_core::clock::Timestamp;
use jit_core::domain::{Grant, OnCall, TargetId, UserId};
use jit_core::policy::{OnCallSettings, Rules};
use serde::Deserialize;

/// The deadline when `JIT_ON_CALL_DEADLINE_MS` does not say.
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(2000);

/// The most pages of on-call entries read for one question (100 entries each).
const MAX_PAGES: usize = 10;

/// One on-call entry that has the person on call now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shift {
    /// Its escalation level (1 is paged first).
    pub level: u32,
    /// When it ends; `None` for a permanent entry.
    pub ends_at: Option<Timestamp>,
    /// The escalation policy, or schedule, it came from.
    pub from: String,
}

/// Why a provider gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProviderError(pub String);

/// The future a provider answers with.
pub type Answer<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Shift>, ProviderError>> + Send + 'a>>;

/// Who is on call, as some provider keeps it.
pub trait OnCallProvider: Send + Sync {
    /// The provider's name, for records.
    fn name(&self) -> &'static str;

    /// The lowest-level entry that has `user` (the provider's own id) on call at `now` for
    /// any of `settings`' escalation policies or schedules; `None` when there is none.
    fn shift<'a>(
        &'a self,
        user: &'a str,
        settings: &'a OnCallSettings,
        now: Timestamp,
    ) -> Answer<'a>;
}

/// Asks the provider, under a deadline, the questions the rules need.
#[derive(Clone)]
pub struct OnCallAsker {
    /// The provider; `None` when none is configured (then nobody is on call).
    pub provider: Option<Arc<dyn OnCallProvider>>,
    /// How long one batch's questions may take together.
    pub deadline: Duration,
}

impl Default for OnCallAsker {
    fn default() -> Self {
        Self {
            provider: None,
            deadline: DEFAULT_DEADLINE,
        }
    }
}

/// The answers of one batch: by requester and target.
pub type Answers = HashMap<(UserId, TargetId), OnCall>;

impl OnCallAsker {
    /// What the rules see about `grants`' requesters: each question at most once, all at once,
    /// all within the deadline. Grants whose target does not ask get nothing here (so
    /// [`OnCall::not_asked`]).
    pub async fn ask(&self, rules: &Rules, grants: &[&Grant], now: Timestamp) -> Answers {
        let mut answers = Answers::new();
        // The distinct questions: provider id and settings; each grant waiting on one.
        let mut questions: Vec<(String, OnCallSettings)> = Vec::new();
        let mut waiting: Vec<((UserId, TargetId), usize, bool)> = Vec::new();
        for grant in grants {
            let Some(settings) = rules.target(&grant.target).and_then(|t| t.on_call.clone()) else {
                continue;
            };
            let key = (grant.requester.clone(), grant.target.clone());
            let end_with_shift = settings.end_with_shift;
            let unanswered = |said: String| OnCall {
                asked: true,
                end_with_shift,
                said,
                ..OnCall::default()
            };
            if grant.starts_at.is_some() {
                let said = "not asked: the request is scheduled ahead, and on-call is known only for now; not on call".to_owned();
                answers.insert(key, unanswered(said));
                continue;
            }
            if self.provider.is_none() {
                let said = "no on-call provider is configured; not on call".to_owned();
                answers.insert(key, unanswered(said));
                continue;
            }
            // The record names nobody: the archive holds people only by pseudonym.
            let Some(user) = rules.on_call_id(&grant.requester) else {
                let said =
                    "the requester is not in targets.json's on_call.people; not on call".to_owned();
                answers.insert(key, unanswered(said));
                continue;
            };
            let question = (user.to_owned(), settings);
            let index = questions
                .iter()
                .position(|q| q == &question)
                .unwrap_or_else(|| {
                    questions.push(question);
                    questions.len() - 1
                });
            waiting.push((key, index, end_with_shift));
        }
        let Some(provider) = self.provider.as_deref() else {
            return answers;
        };
        if questions.is_empty() {
            return answers;
        }
        let started = Instant::now();
        // One deadline for the whole batch: whatever answered by then counts.
        let until = tokio::time::Instant::now() + self.deadline;
        let found = futures::future::join_all(questions.iter().map(|(user, settings)| {
            tokio::time::timeout_at(until, provider.shift(user, settings, now))
        }))
        .await;
        tracing::info!(
            questions = questions.len(),
            on_call_ms = started.elapsed().as_millis(),
            timed_out = found.iter().filter(|f| f.is_err()).count(),
            "on-call asked"
        );
        for (key, index, end_with_shift) in waiting {
            let name = provider.name();
            let said_for = |answer: Option<&Result<Option<Shift>, ProviderError>>| match answer {
                None => (
                    None,
                    format!(
                        "{name} did not answer within {} ms; not on call",
                        self.deadline.as_millis()
                    ),
                ),
                Some(Err(e)) => (None, format!("{name} gave no answer ({e}); not on call")),
                Some(Ok(None)) => (None, format!("{name}: not on call")),
                Some(Ok(Some(shift))) => {
                    let until = shift
                        .ends_at
                        .map_or_else(|| "with no end".to_owned(), |t| format!("until {t}"));
                    (
                        Some(shift.clone()),
                        format!(
                            "{name}: on call at level {} ({}) {until}",
                            shift.level, shift.from
                        ),
                    )
                }
            };
            let (shift, said) = said_for(found.get(index).and_then(|f| f.as_ref().ok()));
            answers.insert(
                key,
                OnCall {
                    asked: true,
                    level: shift.as_ref().map(|s| s.level),
                    shift_ends_at: shift.and_then(|s| s.ends_at),
                    end_with_shift,
                    said,
                },
            );
        }
        answers
    }
}

/// PagerDuty's REST API: `GET /oncalls`, with the token read from Secrets Manager when first
/// needed (and again after PagerDuty refuses it, so a rotated token is picked up).
pub struct PagerDuty {
    /// Built when first asked: a deployment whose targets never ask does not pay for it at
    /// start-up.
    http: std::sync::OnceLock<reqwest::Client>,
    timeout: Duration,
    base: String,
    token: CachedSecret,
}

/// Where the API token comes from.
pub enum TokenSource {
    /// A Secrets Manager secret (its name or ARN); the secret string is the token.
    Secret {
        /// The client.
        client: aws_sdk_secretsmanager::Client,
        /// The secret's name or ARN.
        id: String,
    },
}

impl TokenSource {
    /// The secret's text, trimmed; refused when empty.
    pub async fn read(&self) -> Result<String, ProviderError> {
        match self {
            Self::Secret { client, id } => {
                let out = client
                    .get_secret_value()
                    .secret_id(id)
                    .send()
                    .await
                    .map_err(|e| {
                        ProviderError(format!(
                            "the token secret `{id}` could not be read: {}",
                            aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                        ))
                    })?;
                let token = out.secret_string().map(str::trim).unwrap_or_default();
                if token.is_empty() {
                    return Err(ProviderError(format!(
                        "the token secret `{id}` holds no text"
                    )));
                }
                Ok(token.to_owned())
            }
        }
    }
}

/// A secret read from its source when first needed, then kept until forgotten (after the
/// service refuses it, so a rotated secret is read again).
pub struct CachedSecret {
    source: TokenSource,
    value: tokio::sync::Mutex<Option<String>>,
}

impl CachedSecret {
    /// The secret `source` holds, not read yet.
    pub fn new(source: TokenSource) -> Self {
        Self {
            source,
            value: tokio::sync::Mutex::new(None),
        }
    }

    /// The secret, read now if it is not kept.
    pub async fn get(&self) -> Result<String, ProviderError> {
        let mut value = self.value.lock().await;
        if let Some(v) = value.as_ref() {
            return Ok(v.clone());
        }
        let v = self.source.read().await?;
        *value = Some(v.clone());
        Ok(v)
    }

    /// Forgets the kept value: the next `get` reads it again.
    pub async fn forget(&self) {
        *self.value.lock().await = None;
    }
}

/// `GET /oncalls`' answer, as far as it is read.
#[derive(Debug, Deserialize)]
struct OnCallsPage {
    #[serde(default)]
    oncalls: Vec<OnCallEntry>,
    #[serde(default)]
    more: bool,
}

#[derive(Debug, Deserialize)]
struct OnCallEntry {
    #[serde(default)]
    escalation_policy: Option<Reference>,
    #[serde(default)]
    schedule: Option<Reference>,
    user: Reference,
    escalation_level: u32,
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Reference {
    id: String,
}

impl PagerDuty {
    /// A client of the API at `base` (`https://api.pagerduty.com`), each call bounded by
    /// `timeout`.
    pub fn new(base: &str, token: TokenSource, timeout: Duration) -> Self {
        Self {
            http: std::sync::OnceLock::new(),
            timeout,
            base: base.trim_end_matches('/').to_owned(),
            token: CachedSecret::new(token),
        }
    }

    /// The HTTP client, built now if it was not yet.
    fn http(&self) -> Result<&reqwest::Client, ProviderError> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .build()
            .map_err(|e| ProviderError(format!("no HTTP client: {e}")))?;
        Ok(self.http.get_or_init(|| client))
    }

    async fn page(
        &self,
        user: &str,
        settings: &OnCallSettings,
        now: Timestamp,
        offset: usize,
    ) -> Result<OnCallsPage, ProviderError> {
        // Who is on call at `now` (the second after it: PagerDuty wants a range).
        let mut query: Vec<(&str, String)> = vec![
            ("user_ids[]", user.to_owned()),
            ("since", now.to_string()),
            ("until", now.plus_secs(1).to_string()),
            ("earliest", "true".to_owned()),
            ("include[]", "users".to_owned()),
            ("limit", "100".to_owned()),
            ("offset", offset.to_string()),
        ];
        for id in &settings.escalation_policy_ids {
            query.push(("escalation_policy_ids[]", id.clone()));
        }
        for id in &settings.schedule_ids {
            query.push(("schedule_ids[]", id.clone()));
        }
        let mut url = url::Url::parse(&format!("{}/oncalls", self.base))
            .map_err(|e| ProviderError(format!("the PagerDuty address: {e}")))?;
        url.query_pairs_mut().extend_pairs(&query);
        let token = self.token.get().await?;
        let response = self
            .http()?
            .get(url)
            .header("Authorization", format!("Token token={token}"))
            .header("Accept", "application/vnd.pagerduty+json;version=2")
            .send()
            .await
            // Without the address: its query names the person, and records name nobody.
            .map_err(|e| ProviderError(format!("GET /oncalls failed: {}", e.without_url())))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            // Read the secret again next time: it may have been rotated.
            self.token.forget().await;
        }
        if !status.is_success() {
            return Err(ProviderError(format!("GET /oncalls answered {status}")));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| ProviderError(format!("GET /oncalls broke off: {}", e.without_url())))?;
        serde_json::from_slice(&body)
            .map_err(|e| ProviderError(format!("GET /oncalls answered what is not its shape: {e}")))
    }

    async fn find(
        &self,
        user: &str,
        settings: &OnCallSettings,
        now: Timestamp,
    ) -> Result<Option<Shift>, ProviderError> {
        let mut best: Option<Shift> = None;
        let mut offset = 0;
        for _ in 0..MAX_PAGES {
            let page = self.page(user, settings, now, offset).await?;
            offset += page.oncalls.len();
            for entry in &page.oncalls {
                if let Some(shift) = shift_of(entry, user, settings, now)? {
                    best = Some(match best {
                        Some(b) if better(&b, &shift) => b,
                        _ => shift,
                    });
                }
            }
            if !page.more || page.oncalls.is_empty() {
                return Ok(best);
            }
        }
        Err(ProviderError(format!(
            "more than {MAX_PAGES} pages of on-call entries"
        )))
    }
}

/// Whether `a` says more than `b`: a lower level, or at the same level a later end (no end
/// is latest).
fn better(a: &Shift, b: &Shift) -> bool {
    match a.level.cmp(&b.level) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Greater => false,
        std::cmp::Ordering::Equal => match (a.ends_at, b.ends_at) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(x), Some(y)) => x >= y,
        },
    }
}

/// The entry as a shift of `user` now for `settings`, checked again here rather than trusted
/// to the query's filters: its user, its escalation policy or schedule, and its times.
fn shift_of(
    entry: &OnCallEntry,
    user: &str,
    settings: &OnCallSettings,
    now: Timestamp,
) -> Result<Option<Shift>, ProviderError> {
    if entry.user.id != user {
        return Ok(None);
    }
    let policy = entry
        .escalation_policy
        .as_ref()
        .filter(|p| settings.escalation_policy_ids.contains(&p.id))
        .map(|p| format!("escalation policy {}", p.id));
    let schedule = entry
        .schedule
        .as_ref()
        .filter(|s| settings.schedule_ids.contains(&s.id))
        .map(|s| format!("schedule {}", s.id));
    let Some(from) = policy.or(schedule) else {
        return Ok(None);
    };
    let time = |text: &Option<String>| -> Result<Option<Timestamp>, ProviderError> {
        text.as_deref()
            .map(|t| {
                Timestamp::parse_rfc3339(t)
                    .ok_or_else(|| ProviderError(format!("`{t}` is not an RFC 3339 time")))
            })
            .transpose()
    };
    let (start, end) = (time(&entry.start)?, time(&entry.end)?);
    if start.is_some_and(|s| s > now) || end.is_some_and(|e| e <= now) {
        return Ok(None);
    }
    Ok(Some(Shift {
        level: entry.escalation_level,
        ends_at: end,
        from,
    }))
}

impl OnCallProvider for PagerDuty {
    fn name(&self) -> &'static str {
        "pagerduty"
    }

    fn shift<'a>(
        &'a self,
        user: &'a str,
        settings: &'a OnCallSettings,
        now: Timestamp,
    ) -> Answer<'a> {
        Box::pin(self.find(user, settings, now))
    }
}

/// The settings the approver reads at start-up: the provider (`JIT_PAGERDUTY_TOKEN_SECRET`
/// names the token's secret; none, no provider), its address (`JIT_PAGERDUTY_URL`, HTTPS, or
/// HTTP to loopback for the local stack's stand-in) and the batch deadline
/// (`JIT_ON_CALL_DEADLINE_MS`, 100 to 5000).
pub fn from_env(aws: &aws_config::SdkConfig) -> Result<OnCallAsker, String> {
    let deadline = match jit_http::startup::setting("JIT_ON_CALL_DEADLINE_MS") {
        None => DEFAULT_DEADLINE,
        Some(text) => match text.parse::<u64>() {
            Ok(ms) if (100..=5000).contains(&ms) => Duration::from_millis(ms),
            _ => {
                return Err(format!(
                    "JIT_ON_CALL_DEADLINE_MS must be 100 to 5000 milliseconds, got `{text}`"
                ));
            }
        },
    };
    let Some(secret) = jit_http::startup::setting("JIT_PAGERDUTY_TOKEN_SECRET") else {
        return Ok(OnCallAsker {
            provider: None,
            deadline,
        });
    };
    let base = jit_http::startup::setting("JIT_PAGERDUTY_URL")
        .unwrap_or_else(|| "https://api.pagerduty.com".to_owned());
    check_base(&base)?;
    let token = TokenSource::Secret {
        client: aws_sdk_secretsmanager::Client::new(aws),
        id: secret,
    };
    // The batch deadline is what ends a slow answer; the client's own bound only backs it up.
    let provider = PagerDuty::new(&base, token, deadline + Duration::from_secs(1));
    Ok(OnCallAsker {
        provider: Some(Arc::new(provider)),
        deadline,
    })
}

/// The token goes only over HTTPS, or to a stand-in on loopback.
pub fn check_base(base: &str) -> Result<(), String> {
    check_url("JIT_PAGERDUTY_URL", base)
}

/// `base`, the setting `name`, must be HTTPS, or HTTP to loopback (a local stand-in): a token
/// travels with every call.
pub fn check_url(name: &str, base: &str) -> Result<(), String> {
    let url = url::Url::parse(base).map_err(|e| format!("{name} `{base}`: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    if url.scheme() == "https" || (url.scheme() == "http" && loopback) {
        Ok(())
    } else {
        Err(format!(
            "{name} `{base}` must be https (plain http only to loopback): the token travels with every call"
        ))
    }
}
