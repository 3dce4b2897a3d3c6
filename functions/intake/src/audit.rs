//! `GET /audit`: the audit trail for a time range, for auditors; `GET /audit/unattributed`:
//! a day's calls through broker roles that no grant accounts for.

use lambda_http::Request;
use lambda_http::http::StatusCode;

use jit_core::clock::Timestamp;
use jit_core::domain::GrantId;
use jit_core::policy::Action;
use jit_core::store::{ActivityStore, Cursor, GrantStore, PageRequest};

use crate::{App, Problem};
use jit_api::{AuditPage, AuditRecordView, UnattributedPage, UnattributedView};
use jit_http::{Call, Reply, json, query};

/// The longest range one export may span, so one call stays within the function's time.
pub const MAX_RANGE_DAYS: i64 = 31;

fn time_param(request: &Request, name: &str) -> Result<Timestamp, Problem> {
    let text = query(request, name).ok_or_else(|| {
        Problem::bad_request(format!(
            "`{name}` is required: an RFC 3339 time such as 2026-11-27T00:00:00Z"
        ))
    })?;
    Timestamp::parse_rfc3339(text).ok_or_else(|| {
        Problem::bad_request(format!(
            "`{name}` = `{text}` is not an RFC 3339 time such as 2026-11-27T00:00:00Z"
        ))
    })
}

fn limit_param(request: &Request) -> Result<u32, Problem> {
    match query(request, "limit") {
        None => Ok(PageRequest::MAX_LIMIT),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=PageRequest::MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                Problem::bad_request(format!(
                    "limit `{text}` must be a number from 1 to {}",
                    PageRequest::MAX_LIMIT
                ))
            }),
    }
}

impl<S: GrantStore + ActivityStore> App<S> {
    fn may_read_audit(&self, call: &Call<'_>) -> Result<(), Problem> {
        let decision = self.rules.decide_audit(&call.caller, call.now);
        if decision.allowed {
            Ok(())
        } else {
            Err(Problem::forbidden(
                decision.explain_denial(Action::ReadAudit, "the audit trail"),
            ))
        }
    }

    /// One page of a UTC day's calls that no grant accounts for, for whoever may read the
    /// audit trail: what `jit report` lists as unattributed activity.
    pub(crate) async fn unattributed(&self, call: &Call<'_>) -> Reply {
        self.may_read_audit(call)?;
        let day = query(call.request, "day").ok_or_else(|| {
            Problem::bad_request("`day` is required: a UTC day such as 2026-11-27")
        })?;
        let valid = Timestamp::parse_rfc3339(&format!("{day}T00:00:00Z"))
            .is_some_and(|t| t.utc_day() == day);
        if !valid {
            return Err(Problem::bad_request(format!(
                "`day` = `{day}` is not a UTC day such as 2026-11-27"
            )));
        }
        let page = PageRequest {
            limit: limit_param(call.request)?,
            cursor: query(call.request, "next").map(Cursor::from_client),
        };
        let page = self.store.unattributed_on(day, &page).await?;
        Ok(json(
            StatusCode::OK,
            &UnattributedPage {
                day: day.to_owned(),
                items: page.items.iter().map(UnattributedView::from).collect(),
                next: page.next.map(|c| c.as_str().to_owned()),
            },
        ))
    }

    pub(crate) async fn export_audit(&self, call: &Call<'_>) -> Reply {
        self.may_read_audit(call)?;
        let from = time_param(call.request, "from")?;
        let to = time_param(call.request, "to")?;
        if to <= from {
            return Err(Problem::bad_request("`to` must be after `from`"));
        }
        if to.unix_seconds() - from.unix_seconds() > MAX_RANGE_DAYS * 86_400 {
            return Err(Problem::bad_request(format!(
                "the range may span at most {MAX_RANGE_DAYS} days; export longer periods in parts"
            )));
        }
        let limit = limit_param(call.request)?;
        let page = PageRequest {
            limit,
            cursor: query(call.request, "next").map(Cursor::from_client),
        };
        let page = self.store.audit_between(from, to, &page).await?;
        // What an auditor needs to check the page offline: the heads of its grants (records
        // dropped from a chain's end), the checkpoints of the range (whole grants dropped),
        // and the keys the signatures verify under.
        let mut ids: Vec<GrantId> = page.items.iter().map(|r| r.grant_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let heads = self.store.heads(&ids).await?;
        let checkpoints = self.store.checkpoints_between(from, to).await?;
        let keys = jit_core::cases::ring(&self.keys, "nothing was exported").await?;
        tracing::info!(auditor = %call.caller.user, from = %from, to = %to, records = page.items.len(), "audit exported");
        Ok(json(
            StatusCode::OK,
            &AuditPage {
                from,
                to,
                records: page.items.iter().map(AuditRecordView::from).collect(),
                heads,
                checkpoints,
                keys: keys.public_keys(),
                checkpoint_period: self.config.checkpoint_period,
                exported_at: call.now,
                next: page.next.map(|c| c.as_str().to_owned()),
            },
        ))
    }
}
