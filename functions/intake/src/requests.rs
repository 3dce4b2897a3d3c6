//! `/requests`: create, read, list and cancel.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambda_http::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use jit_api::{ActivityPage, ActivityView, BundleView, GrantView, Page as PageView};
use jit_core::cases::{Cases, Noun, OpenRequest, Refusal};
use jit_core::clock::Timestamp;
use jit_core::domain::{Grant, GrantDuration, GrantState, Reason, TargetId, Ticket};
use jit_core::identity::Caller;
use jit_core::policy::{AccessContext, Action};
use jit_core::store::{
    ActivityStore, Created, Cursor, GrantStore, IdempotencyKey, Page, PageRequest, StoreError,
    cursor_after,
};
use jit_http::{Call, Reply, body_text, duration_of, json, optional_body, parse_body, query};

use crate::{App, Problem};

/// The body of `POST /requests`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    target: String,
    duration: Value,
    reason: String,
    #[serde(default)]
    ticket: Option<String>,
    #[serde(default)]
    break_glass: bool,
    /// RFC 3339; when access is to open, if scheduled ahead.
    #[serde(default)]
    starts_at: Option<String>,
}

/// The body of `POST /bundles`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBundleBody {
    targets: Vec<String>,
    duration: Value,
    reason: String,
    #[serde(default)]
    ticket: Option<String>,
    #[serde(default)]
    starts_at: Option<String>,
}

/// The body of `POST /requests/{id}/cancel`: empty, or an empty object.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {}

/// How many results a listing returns unless asked otherwise.
const DEFAULT_LIMIT: u32 = 50;

/// How many store queries one listing call may make: a filter that passes few items (a
/// caller who may approve little, `limit=1`) ends the page early with a `next` cursor rather
/// than reading every pending request in one call.
const QUERIES_PER_LISTING: u32 = 8;

/// A `reviewable` listing's position: which target, and where within it.
#[derive(Debug, Serialize, Deserialize)]
struct ReviewCursor {
    t: usize,
    c: Option<String>,
}

impl<S: GrantStore> App<S> {
    fn cases(&self) -> Cases<'_, S> {
        Cases::new(&self.store, &self.rules, &self.keys)
    }

    /// The ticket given, if any, in the form this deployment expects.
    fn ticket(&self, text: Option<String>) -> Result<Option<Ticket>, Problem> {
        let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
            return Ok(None);
        };
        let ticket = Ticket::parse(text.trim()).map_err(|e| Problem::invalid(e.to_string()))?;
        if let Some(pattern) = &self.config.ticket_pattern
            && !pattern.is_match(ticket.as_str())
        {
            return Err(Problem::invalid(format!(
                "ticket `{ticket}` does not look like a ticket here (expected {})",
                pattern
                    .as_str()
                    .trim_start_matches("^(?:")
                    .trim_end_matches(")$")
            )));
        }
        Ok(Some(ticket))
    }

    pub(crate) async fn create(&self, call: &Call<'_>) -> Reply {
        let body: CreateBody = parse_body(body_text(call.request)?)?;
        let idempotency_key = match call.request.headers().get("idempotency-key") {
            None => None,
            Some(value) => {
                let text = value
                    .to_str()
                    .map_err(|_| Problem::bad_request("the Idempotency-Key header is not text"))?;
                Some(IdempotencyKey::parse(text).map_err(|e| Problem::bad_request(e.to_string()))?)
            }
        };
        let input = OpenRequest {
            target: TargetId::parse(body.target).map_err(|e| Problem::invalid(e.to_string()))?,
            duration: duration_of(&body.duration)?,
            reason: Reason::parse(body.reason).map_err(|e| Problem::invalid(e.to_string()))?,
            ticket: self.ticket(body.ticket)?,
            break_glass: body.break_glass,
            starts_at: starts_at(body.starts_at)?,
        };
        let asked = (input.target.clone(), input.duration, input.break_glass);
        let created = match self
            .cases()
            .open_request(
                &call.caller,
                input,
                idempotency_key,
                self.config.idempotency_ttl_secs,
                call.now,
            )
            .await
        {
            Ok(created) => created,
            Err(refusal) => {
                if let Refusal::Forbidden { why, policies } = &refusal {
                    refused_by_the_rules(call, &asked, why, policies.as_deref());
                }
                return Err(refusal.into());
            }
        };
        let grant = created.grant();
        let mut response = json(StatusCode::CREATED, &GrantView::from(grant));
        let headers = response.headers_mut();
        if let Ok(location) = format!("/requests/{}", grant.id).parse() {
            headers.insert("location", location);
        }
        if matches!(created, Created::Replayed(_)) {
            headers.insert(
                "idempotent-replayed",
                lambda_http::http::HeaderValue::from_static("true"),
            );
        } else {
            tracing::info!(grant = %grant.id, target = %grant.target, requester = %grant.requester, "request created");
        }
        Ok(response)
    }

    /// `POST /bundles`: one request of several targets, all made or none.
    pub(crate) async fn create_bundle(&self, call: &Call<'_>) -> Reply {
        let body: CreateBundleBody = parse_body(body_text(call.request)?)?;
        if call.request.headers().contains_key("idempotency-key") {
            return Err(Problem::bad_request(
                "an Idempotency-Key is not taken for a request of several targets: a retry that \
                 lands twice is refused anyway (409), since each target is then open",
            ));
        }
        let targets = body
            .targets
            .into_iter()
            .map(|t| TargetId::parse(t).map_err(|e| Problem::invalid(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let first = targets
            .first()
            .cloned()
            .ok_or_else(|| Problem::invalid("targets names no target"))?;
        let input = OpenRequest {
            target: first,
            duration: duration_of(&body.duration)?,
            reason: Reason::parse(body.reason).map_err(|e| Problem::invalid(e.to_string()))?,
            ticket: self.ticket(body.ticket)?,
            break_glass: false,
            starts_at: starts_at(body.starts_at)?,
        };
        let asked = (input.duration, input.break_glass);
        let items = match self
            .cases()
            .open_bundle(&call.caller, targets, input, call.now)
            .await
        {
            Ok(items) => items,
            Err(refused) => {
                // As for one request: a refusal by the rules is on record, under the target
                // that refused the whole.
                if let (Some(target), Refusal::Forbidden { why, policies }) =
                    (&refused.target, &refused.refusal)
                {
                    let (duration, break_glass) = asked;
                    let asked = (target.clone(), duration, break_glass);
                    refused_by_the_rules(call, &asked, why, policies.as_deref());
                }
                return Err(Refusal::from(refused).into());
            }
        };
        let bundle = items
            .first()
            .map(|g| g.id.as_str().to_owned())
            .unwrap_or_default();
        tracing::info!(%bundle, items = items.len(), requester = %call.caller.user, "request of several targets created");
        let mut response = json(
            StatusCode::CREATED,
            &BundleView {
                bundle: bundle.clone(),
                items: items.iter().map(GrantView::from).collect(),
            },
        );
        if let Ok(location) = format!("/bundles/{bundle}").parse() {
            response.headers_mut().insert("location", location);
        }
        Ok(response)
    }

    /// `GET /bundles/{id}`: the items of a request of several targets the caller may see.
    pub(crate) async fn get_bundle(&self, call: &Call<'_>, id: &str) -> Reply {
        let items = self.cases().bundle(&call.caller, id, call.now).await?;
        Ok(json(
            StatusCode::OK,
            &BundleView {
                bundle: id.to_owned(),
                items: items.iter().map(GrantView::from).collect(),
            },
        ))
    }

    pub(crate) async fn get(&self, call: &Call<'_>, id: &str) -> Reply {
        let grant = self
            .cases()
            .visible(&call.caller, id, Noun::Request, call.now)
            .await?;
        Ok(json(StatusCode::OK, &GrantView::from(&grant)))
    }

    /// `GET /requests/{id}/activity`: what the grant's sessions did, one page oldest first,
    /// for whoever may see the grant (anyone else is told there is no such request).
    pub(crate) async fn activity(&self, call: &Call<'_>, id: &str) -> Reply
    where
        S: ActivityStore,
    {
        let limit = page_limit(call)?;
        let grant = self
            .cases()
            .visible(&call.caller, id, Noun::Request, call.now)
            .await?;
        let page = PageRequest {
            limit,
            cursor: query(call.request, "next").map(Cursor::from_client),
        };
        let (events, count) = tokio::try_join!(
            self.store.activity_of_grant(&grant.id, &page),
            self.store.activity_count(&grant.id)
        )?;
        Ok(json(
            StatusCode::OK,
            &ActivityPage {
                grant: GrantView::from(&grant),
                items: events.items.iter().map(ActivityView::from).collect(),
                stored: count.stored,
                over_cap: count.over_cap,
                // After the last event, whether or not the page was full: CloudTrail delivers
                // late, so a reader keeps it to read on from.
                next: events
                    .items
                    .last()
                    .map(|last| cursor_after(last).as_str().to_owned()),
            },
        ))
    }

    pub(crate) async fn cancel(&self, call: &Call<'_>, id: &str) -> Reply {
        let _: CancelBody = optional_body(call.request)?;
        let grant = self.cases().cancel(&call.caller, id, call.now).await?;
        Ok(json(StatusCode::OK, &GrantView::from(&grant)))
    }

    pub(crate) async fn list(&self, call: &Call<'_>) -> Reply {
        let limit = page_limit(call)?;
        let state = match query(call.request, "state") {
            None => None,
            Some(text) => Some(
                jit_core::domain::GrantState::ALL
                    .into_iter()
                    .find(|s| s.as_str().eq_ignore_ascii_case(text))
                    .ok_or_else(|| {
                        let all: Vec<&str> = GrantState::ALL.iter().map(|s| s.as_str()).collect();
                        Problem::bad_request(format!(
                            "state `{text}` is not one of {}",
                            all.join(", ")
                        ))
                    })?,
            ),
        };
        let next = query(call.request, "next").map(str::to_owned);
        let (items, next) = match query(call.request, "scope").unwrap_or("mine") {
            "mine" => self.list_mine(&call.caller, state, limit, next).await?,
            "reviewable" => {
                self.list_reviewable(&call.caller, state, limit, next, call.now)
                    .await?
            }
            other => {
                return Err(Problem::bad_request(format!(
                    "scope `{other}` is not `mine` or `reviewable`"
                )));
            }
        };
        Ok(json(
            StatusCode::OK,
            &PageView {
                items: items.iter().map(GrantView::from).collect(),
                next,
            },
        ))
    }

    /// Pages through `fetch` until `limit` items pass `keep` or `budget` store queries are
    /// spent; every item fetched is either returned or skipped, so the store's cursor is
    /// exactly where the next page starts. A page cut short by the budget says `next` like any
    /// other, so one call costs at most `budget` queries however few items pass.
    async fn collect<F, Fut>(
        limit: u32,
        mut cursor: Option<Cursor>,
        budget: &mut u32,
        mut fetch: F,
        keep: impl Fn(&Grant) -> bool,
    ) -> Result<(Vec<Grant>, Option<Cursor>), Problem>
    where
        F: FnMut(PageRequest) -> Fut,
        Fut: Future<Output = Result<Page<Grant>, StoreError>>,
    {
        let mut items = Vec::new();
        loop {
            let remaining = limit.saturating_sub(u32::try_from(items.len()).unwrap_or(u32::MAX));
            *budget = budget.saturating_sub(1);
            let page = fetch(PageRequest {
                limit: remaining,
                cursor: cursor.take(),
            })
            .await?;
            items.extend(page.items.into_iter().filter(|g| keep(g)));
            match page.next {
                Some(next) if items.len() < limit as usize && *budget > 0 => cursor = Some(next),
                next => return Ok((items, next)),
            }
        }
    }

    async fn list_mine(
        &self,
        caller: &Caller,
        state: Option<GrantState>,
        limit: u32,
        next: Option<String>,
    ) -> Result<(Vec<Grant>, Option<String>), Problem> {
        let store = &self.store;
        let user = &caller.user;
        let mut budget = QUERIES_PER_LISTING;
        let (items, next) = Self::collect(
            limit,
            next.map(Cursor::from_client),
            &mut budget,
            |page| async move { store.list_by_requester(user, &page).await },
            |g| state.is_none_or(|s| g.state == s),
        )
        .await?;
        Ok((items, next.map(|c| c.as_str().to_owned())))
    }

    /// What waits for reviewers, target by target (pending requests, and active grants whose
    /// extension waits), that the caller may approve and has not reviewed; `state` narrows it
    /// to one of the two.
    async fn list_reviewable(
        &self,
        caller: &Caller,
        state: Option<GrantState>,
        limit: u32,
        next: Option<String>,
        now: Timestamp,
    ) -> Result<(Vec<Grant>, Option<String>), Problem> {
        let bad_cursor = || Problem::bad_request(StoreError::BadCursor.to_string());
        let start = match next {
            None => ReviewCursor { t: 0, c: None },
            Some(text) => URL_SAFE_NO_PAD
                .decode(text)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .ok_or_else(bad_cursor)?,
        };
        let targets: Vec<TargetId> = self.rules.targets().map(|t| t.id.clone()).collect();
        if start.t > targets.len() {
            return Err(bad_cursor());
        }
        let mut items = Vec::new();
        let mut inner = start.c.map(Cursor::from_client);
        let mut budget = QUERIES_PER_LISTING;
        let cursor = |t: usize, c: Option<Cursor>| {
            let cursor = ReviewCursor {
                t,
                c: c.map(|c| c.as_str().to_owned()),
            };
            Some(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&cursor).unwrap_or_default()))
        };
        for (index, target) in targets.iter().enumerate().skip(start.t) {
            if budget == 0 {
                return Ok((items, cursor(index, None)));
            }
            let store = &self.store;
            let remaining = limit.saturating_sub(u32::try_from(items.len()).unwrap_or(u32::MAX));
            let (found, after) = Self::collect(
                remaining,
                inner.take(),
                &mut budget,
                |page| async move { store.list_pending_for_target(target, &page).await },
                |g| {
                    g.requester != caller.user
                        && state.is_none_or(|s| g.state == s)
                        && g.awaiting_review().is_some_and(|reviews| {
                            !reviews.iter().any(|r| r.reviewer == caller.user)
                        })
                        && self
                            .rules
                            .decide(
                                caller,
                                Action::Approve,
                                &g.target,
                                &AccessContext::of_grant(g, now),
                            )
                            .allowed
                },
            )
            .await?;
            items.extend(found);
            if let Some(after) = after {
                return Ok((items, cursor(index, Some(after))));
            }
            if items.len() >= limit as usize && index + 1 < targets.len() {
                return Ok((items, cursor(index + 1, None)));
            }
        }
        Ok((items, None))
    }
}

/// The `limit` a listing asks for: [`DEFAULT_LIMIT`] when absent, else 1 to the store's most.
fn page_limit(call: &Call<'_>) -> Result<u32, Problem> {
    match query(call.request, "limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=PageRequest::MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(Problem::bad_request(format!(
                "limit `{text}` must be a number from 1 to {}",
                PageRequest::MAX_LIMIT
            ))),
        },
    }
}

/// The scheduled start given, if any.
fn starts_at(text: Option<String>) -> Result<Option<Timestamp>, Problem> {
    text.map(|text| {
        Timestamp::parse_rfc3339(&text).ok_or_else(|| {
            Problem::invalid(format!(
                "starts_at `{text}` is not an RFC 3339 time, such as 2026-12-07T09:00:00Z"
            ))
        })
    })
    .transpose()
}

/// A request the rules refused leaves no table write (a flood of refusals must not write) but
/// one log line, in Embedded Metric Format: the `RequestRefused` metric by target, with who
/// asked for what, the policies that decided and why, for an auditor's Logs Insights query
/// (README: Denials on record) and `jit report`.
fn refused_by_the_rules(
    call: &Call<'_>,
    (target, duration, break_glass): &(TargetId, GrantDuration, bool),
    why: &str,
    policies: Option<&[String]>,
) {
    let duration = duration.as_secs().to_string();
    let policies = policies.unwrap_or_default().join(",");
    println!(
        "{}",
        jit_http::metric::count(
            "RequestRefused",
            1,
            call.now,
            &["Target"],
            &[
                ("Target", target.as_str()),
                ("event", "request refused by the rules"),
                ("requester", call.caller.user.as_str()),
                ("duration_secs", &duration),
                ("break_glass", if *break_glass { "true" } else { "false" }),
                ("policies", &policies),
                ("why", why),
            ],
        )
    );
}
