//! A typed client of the API: each route a method taking and returning its types, and the raw
//! call beneath them for callers that check refusals themselves.

use std::collections::BTreeMap;

use jit_core::trust::{AuditExport, GrantHead};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Route;
use crate::types::{
    ActivityPage, AuditPage, BundleOutcome, BundleView, ConsoleLink, ConsoleRequest, CreateBundle,
    CreateRequest, Credentials, Empty, ExtendRequest, GrantTrail, GrantView, HandoffView,
    LinkSlackRequest, OpenHandoffRequest, Page, PostReviewRequest, ProblemBody, ReviewRequest,
    RevokeRequest, Revoked, SlackLinkView, TargetList, UnattributedPage,
};

/// What a call answers: its value, or why there is none.
pub type ApiResult<T> = Result<T, ApiError>;

/// Why a call did not return what the route promises.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The API could not be reached, or its answer could not be read.
    #[error("the API at {base} cannot be reached ({why})")]
    Unreachable {
        /// Where it was called.
        base: String,
        /// What failed.
        why: String,
    },
    /// The API answered with a status other than success.
    #[error("{status}: {}", .problem.as_ref().map_or(.text.as_str(), |p| p.detail.as_str()))]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The problem a function wrote, when it was one.
        problem: Option<Box<ProblemBody>>,
        /// The body as text (API Gateway's own refusals carry `{"message": ...}`).
        text: String,
    },
    /// A success whose body is not what the route returns.
    #[error("the answer to {route} is not what the API documents: {why}")]
    Unexpected {
        /// The route.
        route: &'static str,
        /// What did not fit.
        why: String,
    },
}

impl ApiError {
    /// The status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// What a refusal says: the problem's detail, API Gateway's message, or the body.
    pub fn detail(&self) -> String {
        match self {
            Self::Refused { problem, text, .. } => match problem {
                Some(p) => p.detail.clone(),
                None => serde_json::from_str::<Value>(text)
                    .ok()
                    .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_else(|| text.clone()),
            },
            other => other.to_string(),
        }
    }
}

/// One answer, as it came: status, headers and body, for callers that check refusals.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body as text.
    pub text: String,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
}

impl Answer {
    /// The body as `T`.
    pub fn read<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.text)
    }

    /// The problem a function wrote, if the body is one.
    pub fn problem(&self) -> Option<ProblemBody> {
        self.read().ok()
    }

    fn into_result<T: DeserializeOwned>(self, route: &'static str) -> ApiResult<T> {
        if (200..300).contains(&self.status) {
            return self.read().map_err(|e| ApiError::Unexpected {
                route,
                why: e.to_string(),
            });
        }
        Err(ApiError::Refused {
            status: self.status,
            problem: self.problem().map(Box::new),
            text: self.text,
        })
    }
}

/// The API at one address, calling as one person (or no one).
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    /// How many times a throttled request (429) is sent again before its 429 is answered.
    throttled_retries: u32,
}

impl Client {
    /// The API at `base`, with no token.
    pub fn new(base: &str) -> Self {
        Self::with_http(base, reqwest::Client::new())
    }

    /// The API at `base` through `http` (its timeouts, its proxy).
    pub fn with_http(base: &str, http: reqwest::Client) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token: None,
            http,
            throttled_retries: 5,
        }
    }

    /// The same API, answering a throttled request's 429 at once instead of sending it again
    /// (to see the throttle itself).
    pub fn without_throttle_retries(&self) -> Self {
        Self {
            throttled_retries: 0,
            ..self.clone()
        }
    }

    /// The same API, calling as `token`.
    pub fn as_user(&self, token: impl Into<String>) -> Self {
        Self {
            token: Some(token.into()),
            ..self.clone()
        }
    }

    /// Where the API is.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends `method path` (path with any query) with the token and a JSON body, and returns
    /// the answer whatever its status. A throttled request (429) is sent again, waiting
    /// longer each time ([`crate::throttled_wait`]), up to five times.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> ApiResult<Answer> {
        let mut retries = 0;
        loop {
            let answer = self.send_once(method, path, body, headers).await?;
            if answer.status != 429 || retries >= self.throttled_retries {
                return Ok(answer);
            }
            let retry_after = answer
                .headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok());
            tokio::time::sleep(crate::throttled_wait(retries, retry_after)).await;
            retries += 1;
        }
    }

    /// Sends the request once, whatever the answer.
    async fn send_once(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> ApiResult<Answer> {
        let unreachable = |why: String| ApiError::Unreachable {
            base: self.base.clone(),
            why,
        };
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| unreachable(e.to_string()))?;
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| unreachable(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .map_err(|e| unreachable(e.without_url().to_string()))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            headers,
            text,
            body,
        })
    }

    /// Calls `route` with `body` (and `query`), returning what it answers on success.
    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        route: Route<'_>,
        query: &str,
        body: Option<&B>,
    ) -> ApiResult<T> {
        let body =
            body.map(serde_json::to_value)
                .transpose()
                .map_err(|e| ApiError::Unexpected {
                    route: route.key(),
                    why: e.to_string(),
                })?;
        let path = format!("{}{query}", route.path());
        self.send(route.method(), &path, body.as_ref(), &[])
            .await?
            .into_result(route.key())
    }

    /// `POST /requests`.
    pub async fn create_request(&self, request: &CreateRequest) -> ApiResult<GrantView> {
        self.call(Route::CreateRequest, "", Some(request)).await
    }

    /// `POST /bundles`: one request of several targets.
    pub async fn create_bundle(&self, request: &CreateBundle) -> ApiResult<BundleView> {
        self.call(Route::CreateBundle, "", Some(request)).await
    }

    /// `GET /bundles/{id}`.
    pub async fn get_bundle(&self, id: &str) -> ApiResult<BundleView> {
        self.call::<Empty, _>(Route::GetBundle(id), "", None).await
    }

    /// `POST /bundles/{id}/reviews`: one review of every item the caller may decide.
    pub async fn review_bundle(
        &self,
        id: &str,
        review: &ReviewRequest,
    ) -> ApiResult<BundleOutcome> {
        self.call(Route::ReviewBundle(id), "", Some(review)).await
    }

    /// `POST /bundles/{id}/revoke`: every active item the caller may revoke.
    pub async fn revoke_bundle(&self, id: &str, reason: &str) -> ApiResult<BundleOutcome> {
        let body = RevokeRequest {
            reason: reason.to_owned(),
        };
        self.call(Route::RevokeBundle(id), "", Some(&body)).await
    }

    /// `GET /requests`: `scope` is `mine` or `reviewable`.
    pub async fn list_requests(
        &self,
        scope: &str,
        state: Option<&str>,
        limit: u32,
        next: Option<&str>,
    ) -> ApiResult<Page<GrantView>> {
        let mut query = url::form_urlencoded::Serializer::new(String::from("?"));
        query
            .append_pair("scope", scope)
            .append_pair("limit", &limit.to_string());
        if let Some(state) = state {
            query.append_pair("state", state);
        }
        if let Some(next) = next {
            query.append_pair("next", next);
        }
        let query = query.finish();
        self.call::<Empty, _>(Route::ListRequests, &query, None)
            .await
    }

    /// `GET /requests/{id}/activity`: one page of what the grant's sessions did.
    pub async fn request_activity(
        &self,
        id: &str,
        limit: u32,
        next: Option<&str>,
    ) -> ApiResult<ActivityPage> {
        let mut query = url::form_urlencoded::Serializer::new(String::from("?"));
        query.append_pair("limit", &limit.to_string());
        if let Some(next) = next {
            query.append_pair("next", next);
        }
        let query = query.finish();
        self.call::<Empty, _>(Route::RequestActivity(id), &query, None)
            .await
    }

    /// `GET /audit/unattributed`: one page of a UTC day's calls no grant accounts for.
    pub async fn unattributed(
        &self,
        day: &str,
        limit: u32,
        next: Option<&str>,
    ) -> ApiResult<UnattributedPage> {
        let mut query = url::form_urlencoded::Serializer::new(String::from("?"));
        query.append_pair("day", day);
        query.append_pair("limit", &limit.to_string());
        if let Some(next) = next {
            query.append_pair("next", next);
        }
        let query = query.finish();
        self.call::<Empty, _>(Route::Unattributed, &query, None)
            .await
    }

    /// `GET /requests/{id}`.
    pub async fn get_request(&self, id: &str) -> ApiResult<GrantView> {
        self.call::<Empty, _>(Route::GetRequest(id), "", None).await
    }

    /// `GET /requests/{id}/audit`.
    pub async fn request_trail(&self, id: &str) -> ApiResult<GrantTrail> {
        self.call::<Empty, _>(Route::RequestTrail(id), "", None)
            .await
    }

    /// `POST /requests/{id}/cancel`.
    pub async fn cancel(&self, id: &str) -> ApiResult<GrantView> {
        self.call(Route::Cancel(id), "", Some(&Empty {})).await
    }

    /// `POST /requests/{id}/reviews`.
    pub async fn review(&self, id: &str, review: &ReviewRequest) -> ApiResult<GrantView> {
        self.call(Route::Review(id), "", Some(review)).await
    }

    /// `POST /grants/{id}/post-review`.
    pub async fn post_review(&self, id: &str, review: &PostReviewRequest) -> ApiResult<GrantView> {
        self.call(Route::PostReview(id), "", Some(review)).await
    }

    /// `POST /grants/{id}/credentials`.
    pub async fn credentials(&self, id: &str) -> ApiResult<Credentials> {
        self.call(Route::Credentials(id), "", Some(&Empty {})).await
    }

    /// `POST /grants/{id}/console`.
    pub async fn console(&self, id: &str, request: &ConsoleRequest) -> ApiResult<ConsoleLink> {
        self.call(Route::Console(id), "", Some(request)).await
    }

    /// `POST /grants/{id}/revoke`.
    pub async fn revoke(&self, id: &str, reason: &str) -> ApiResult<Revoked> {
        let body = RevokeRequest {
            reason: reason.to_owned(),
        };
        self.call(Route::Revoke(id), "", Some(&body)).await
    }

    /// `POST /grants/{id}/extend`: the grant, extended (200) or with its extension waiting
    /// for reviewers (202).
    pub async fn extend(&self, id: &str, request: &ExtendRequest) -> ApiResult<GrantView> {
        self.call(Route::Extend(id), "", Some(request)).await
    }

    /// `POST /slack/links`: links the Slack user `code` was given to.
    pub async fn link_slack(&self, code: &str) -> ApiResult<SlackLinkView> {
        let body = LinkSlackRequest {
            code: code.to_owned(),
        };
        self.call(Route::LinkSlack, "", Some(&body)).await
    }

    /// `POST /slack/handoffs`: opens, once, the link a click in Slack was answered with.
    pub async fn open_slack_handoff(&self, token: &str) -> ApiResult<HandoffView> {
        let body = OpenHandoffRequest {
            token: token.to_owned(),
        };
        self.call(Route::OpenHandoff, "", Some(&body)).await
    }

    /// `GET /targets`.
    pub async fn targets(&self) -> ApiResult<TargetList> {
        self.call::<Empty, _>(Route::Targets, "", None).await
    }

    /// One page of `GET /audit` for `[from, to)` (RFC 3339).
    pub async fn audit_page(
        &self,
        from: &str,
        to: &str,
        next: Option<&str>,
    ) -> ApiResult<AuditPage> {
        let mut query = url::form_urlencoded::Serializer::new(String::from("?"));
        query
            .append_pair("from", from)
            .append_pair("to", to)
            .append_pair("limit", "100");
        if let Some(next) = next {
            query.append_pair("next", next);
        }
        let query = query.finish();
        self.call::<Empty, _>(Route::Audit, &query, None).await
    }
}

impl Client {
    /// Every page of `GET /audit` for `[from, to)` (RFC 3339) as one export: the records of
    /// all pages, the longest chain head read of each grant, and the first page's time (a
    /// checkpoint due by then is due on every later page too).
    pub async fn audit_export(&self, from: &str, to: &str) -> ApiResult<AuditExport> {
        let mut export = AuditExport::default();
        let mut heads: BTreeMap<String, GrantHead> = BTreeMap::new();
        let mut next: Option<String> = None;
        loop {
            let page = self.audit_page(from, to, next.as_deref()).await?;
            export.from = Some(page.from);
            export.to = Some(page.to);
            export.keys = page.keys;
            export.checkpoints = page.checkpoints;
            export.checkpoint_period = Some(page.checkpoint_period);
            export.exported_at = export.exported_at.or(Some(page.exported_at));
            export
                .records
                .extend(page.records.into_iter().map(|r| r.record));
            // A grant on two pages has two heads: the later read is the longer chain.
            for head in page.heads {
                let id = head.grant_id.to_string();
                if heads.get(&id).is_none_or(|h| h.head.seq <= head.head.seq) {
                    heads.insert(id, head);
                }
            }
            match page.next {
                Some(cursor) => next = Some(cursor),
                None => break,
            }
        }
        export.heads = heads.into_values().collect();
        Ok(export)
    }
}
