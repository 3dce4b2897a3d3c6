//! `GET /audit`: the audit trail for a time range, for auditors.

use lambda_http::Request;
use lambda_http::http::StatusCode;

use jit_core::clock::Timestamp;
use jit_core::domain::GrantId;
use jit_core::policy::Action;
use jit_core::store::{Cursor, GrantStore, PageRequest};

use crate::{App, Problem};
use jit_api::{AuditPage, AuditRecordView};
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

impl<S: GrantStore> App<S> {
    pub(crate) async fn export_audit(&self, call: &Call<'_>) -> Reply {
        let decision = self.rules.decide_audit(&call.caller, call.now);
        if !decision.allowed {
            return Err(Problem::forbidden(
                decision.explain_denial(Action::ReadAudit, "the audit trail"),
            ));
        }
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
        let limit = match query(call.request, "limit") {
            None => PageRequest::MAX_LIMIT,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=PageRequest::MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    Problem::bad_request(format!(
                        "limit `{text}` must be a number from 1 to {}",
                        PageRequest::MAX_LIMIT
                    ))
                })?,
        };
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
