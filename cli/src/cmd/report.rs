//! `jit report`: an auditor's report of a period, built only from a trail that verifies.
//!
//! The export of the period is checked as `jit audit verify` checks it (links, heads,
//! signatures, checkpoints); the grants whose chain begins before the period, or that owe a
//! break-glass review, are read whole (`GET /requests/{id}/audit`) and checked against the same
//! keys. Then `jit_core::report` builds the rows, totals and exceptions; requests the rules
//! refused come from intake's log (`--refused`), since a refusal writes nothing to the table.

use std::collections::BTreeSet;
use std::path::PathBuf;

use jit_core::clock::Timestamp;
use jit_core::domain::audit::{AuditAction, AuditRecord};
use jit_core::report::{Refusal, Report, ReportInput, build, csv};
use jit_core::trust::{KeyRing, check_chain, verify_export};

use crate::api::Failure;
use crate::audit;
use crate::ctx::Ctx;

/// What `jit report` was asked for (its flags).
#[derive(clap::Args)]
pub struct Ask {
    /// The period's first second, RFC 3339, e.g. 2026-11-01T00:00:00Z (with --export, the
    /// export's own range is reported).
    #[arg(long)]
    pub from: String,
    /// The second after the period.
    #[arg(long)]
    pub to: String,
    /// Report on an export file (`jit audit export`) instead of asking the API (offline: no
    /// whole chains and no unattributed calls read).
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// The functions' public keys as obtained separately (a JSON list).
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// Intake's log lines (e.g. `aws logs filter-log-events --filter-pattern
    /// '{ $.RequestRefused = 1 }'`'s messages): the requests the rules refused.
    #[arg(long)]
    pub refused: Option<PathBuf>,
    /// Hours after a break-glass activation its review is due.
    #[arg(long, default_value_t = 24)]
    pub review_within_hours: i64,
    /// Print one table as CSV: grants, targets, people or exceptions.
    #[arg(long, value_name = "TABLE")]
    pub csv: Option<String>,
}

fn read(path: &PathBuf) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))
}

fn now() -> Timestamp {
    Timestamp::from_unix_seconds(time::OffsetDateTime::now_utc().unix_timestamp())
}

/// Builds and prints the report.
pub async fn run(ctx: &Ctx, ask: Ask) -> Result<u8, Failure> {
    let text = match &ask.export {
        Some(path) => read(path)?,
        None => audit::export(&ctx.api, &ask.from, &ask.to).await?,
    };
    let export = audit::read(&text)?;
    let pinned = ask.keys.as_ref().map(read).transpose()?;
    let ring = match pinned.as_deref() {
        Some(keys) => audit::pinned_ring(keys)?,
        None => KeyRing::new(export.keys.clone()),
    };
    let as_of = now();
    verify_export(&export, Some(&ring), as_of).map_err(|broken| {
        Failure::Tampered(format!(
            "the trail of the period does not verify, so no report is made: {broken}"
        ))
    })?;
    let mut records = export.records.clone();
    let mut not_included = Vec::new();
    let widen: BTreeSet<_> = export
        .records
        .iter()
        .filter(|r| {
            (r.action == AuditAction::Requested && r.detail.contains_key("break_glass"))
                || r.action == AuditAction::BreakGlassActivated
        })
        .map(|r| r.grant_id.clone())
        .chain(begun_before(&export.records))
        .collect();
    if ask.export.is_some() {
        if !widen.is_empty() {
            not_included.push(format!(
                "the records outside the period of {} grant(s) begun before it or owing a \
                 review (an export file only holds the period)",
                widen.len()
            ));
        }
    } else {
        for grant in &widen {
            let trail = ctx
                .api
                .call(|api| api.request_trail(grant.as_str()))
                .await?;
            let chain: Vec<AuditRecord> = trail.records.into_iter().map(|r| r.record).collect();
            check_chain(grant, &chain, &ring).map_err(|e| {
                Failure::Tampered(format!(
                    "grant {grant}'s whole trail does not verify, so no report is made: {e}"
                ))
            })?;
            records.extend(chain);
        }
    }
    let refusals = match &ask.refused {
        Some(path) => Some(
            read(path)?
                .lines()
                .filter_map(Refusal::from_log_line)
                .collect(),
        ),
        None => None,
    };
    // The calls no grant accounts for, day by day (the API keeps them per UTC day); an
    // export file carries none.
    let unattributed = match (&ask.export, export.from, export.to) {
        (None, Some(from), Some(to)) => Some(unattributed(ctx, from, to).await?),
        _ => None,
    };
    let mut report = build(&ReportInput {
        from: export.from,
        to: export.to,
        as_of: Some(as_of),
        records,
        activity: export.activity.clone(),
        refusals,
        unattributed,
        review_within_secs: ask.review_within_hours.saturating_mul(3600),
    });
    report.not_included.extend(not_included);
    if let Some(table) = &ask.csv {
        let text = csv(&report, table).ok_or_else(|| {
            Failure::Usage(format!(
                "no table `{table}`: grants, targets, people or exceptions"
            ))
        })?;
        print!("{text}");
        return Ok(0);
    }
    ctx.print(&report, summary);
    Ok(0)
}

/// Every call no grant accounts for on the UTC days `[from, to)` touches.
async fn unattributed(
    ctx: &Ctx,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<jit_core::report::Unattributed>, Failure> {
    let mut out = Vec::new();
    let mut day_start = from.unix_seconds().div_euclid(86_400) * 86_400;
    while day_start < to.unix_seconds() {
        let day = Timestamp::from_unix_seconds(day_start).utc_day();
        let mut next: Option<String> = None;
        loop {
            let page = ctx
                .api
                .call(|api| api.unattributed(&day, 100, next.as_deref()))
                .await?;
            out.extend(
                page.items
                    .into_iter()
                    .map(|u| jit_core::report::Unattributed {
                        why: format!(
                            "{} (role {}, session {})",
                            u.why, u.role_arn, u.session_name
                        ),
                        activity: u.event.activity,
                    }),
            );
            match page.next {
                Some(n) => next = Some(n),
                None => break,
            }
        }
        day_start += 86_400;
    }
    Ok(out)
}

/// Grants whose first record in the period is not their first.
fn begun_before(records: &[AuditRecord]) -> Vec<jit_core::domain::GrantId> {
    let mut first: std::collections::BTreeMap<&jit_core::domain::GrantId, u64> =
        std::collections::BTreeMap::new();
    for r in records {
        let seq = first.entry(&r.grant_id).or_insert(r.seq);
        *seq = (*seq).min(r.seq);
    }
    first
        .into_iter()
        .filter(|(_, seq)| *seq > 1)
        .map(|(g, _)| g.clone())
        .collect()
}

fn summary(report: &Report) -> String {
    let mut out = format!(
        "report of {} to {}, from a verified trail: {} grants, {} targets, {} people, {} exceptions",
        report.from.map(|t| t.to_string()).unwrap_or_default(),
        report.to.map(|t| t.to_string()).unwrap_or_default(),
        report.grants.len(),
        report.by_target.len(),
        report.by_person.len(),
        report.exceptions.len()
    );
    for e in &report.exceptions {
        out.push_str(&format!(
            "\n  {}  {}  {}  {}  {}",
            e.at,
            e.kind.as_str(),
            if e.grant_id.is_empty() {
                "-"
            } else {
                &e.grant_id
            },
            if e.who.is_empty() { "-" } else { &e.who },
            e.detail
        ));
    }
    for missing in &report.not_included {
        out.push_str(&format!("\nnot included: {missing}"));
    }
    out
}
