//! `jit activity`: what a grant's sessions did, from CloudTrail, oldest first; `--follow`
//! keeps printing new events until the grant has ended and CloudTrail's delay has passed.

use std::time::{Duration, Instant};

use jit_api::ActivityView;

use crate::api::Failure;
use crate::ctx::Ctx;

/// How long `--follow` keeps reading after the grant ended: CloudTrail delivers events
/// minutes late (typically within five, documented as up to fifteen).
const SETTLE: Duration = Duration::from_secs(15 * 60);

/// How often `--follow` reads again.
const POLL: Duration = Duration::from_secs(5);

/// The table's heading.
const HEADER: &str =
    "TIME                  REGION       SERVICE        ACTION                       OUTCOME";

/// One event as a line of the table.
fn line(a: &ActivityView) -> String {
    let e = &a.activity;
    let outcome = match (&e.error_code, e.read_only) {
        (Some(code), _) => format!("refused ({code})"),
        (None, Some(true)) => "read".to_owned(),
        (None, Some(false)) => "write".to_owned(),
        (None, None) => "-".to_owned(),
    };
    let service = e.service.trim_end_matches(".amazonaws.com");
    let resource = e.resources.first().map_or("", String::as_str);
    format!(
        "{}  {:<12} {:<14} {:<28} {:<10} {resource}",
        a.at, e.region, service, e.action, outcome
    )
}

/// Prints every event of grant `id` (each page in turn: one JSON object a line with
/// `--output json`), then, with `follow`, new ones as they arrive.
pub async fn run(ctx: &Ctx, id: &str, follow: bool) -> Result<u8, Failure> {
    let mut next: Option<String> = None;
    let mut header = true;
    let mut seen = 0_u64;
    let mut ended: Option<Instant> = None;
    loop {
        let page = ctx
            .api
            .call(|api| api.request_activity(id, 100, next.as_deref()))
            .await?;
        for item in &page.items {
            seen += 1;
            ctx.print(item, |a| {
                let row = line(a);
                if std::mem::take(&mut header) {
                    format!("{HEADER}\n{row}")
                } else {
                    row
                }
            });
        }
        let had_items = !page.items.is_empty();
        next = page.next.or(next);
        if had_items {
            continue;
        }
        if !follow {
            if seen == 0 {
                note!("no activity recorded for {id} yet; CloudTrail delivers events minutes late");
            }
            if page.over_cap > 0 {
                note!(
                    "{} more events were counted past the grant's cap and not kept",
                    page.over_cap
                );
            }
            return Ok(0);
        }
        if !page.grant.is_open() && ended.get_or_insert_with(Instant::now).elapsed() >= SETTLE {
            return Ok(0);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Checks grant `id`'s activity against the signed records that cover it: the grant's chain
/// (every hash, link and signature, with the functions' public keys the API serves), then each
/// `ACTIVITY_COVERED` record against the events stored up to its time. Exit 7 when anything
/// does not verify; events stored after the last record are listed as not yet covered.
pub async fn verify(ctx: &Ctx, id: &str) -> Result<u8, Failure> {
    let trail = ctx.api.call(|api| api.request_trail(id)).await?;
    let grant_id = jit_core::domain::GrantId::parse(&trail.grant.id).map_err(|e| {
        Failure::Other(format!(
            "the API answered a grant id that does not parse: {e}"
        ))
    })?;
    let records: Vec<jit_core::domain::audit::AuditRecord> =
        trail.records.iter().map(|r| r.record.clone()).collect();
    let ring = jit_core::trust::KeyRing::new(trail.keys.clone());
    jit_core::trust::check_chain(&grant_id, &records, &ring)
        .map_err(|e| Failure::Tampered(format!("the grant's trail does not verify: {e}")))?;
    let mut events = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = ctx
            .api
            .call(|api| api.request_activity(id, 100, next.as_deref()))
            .await?;
        if page.items.is_empty() {
            break;
        }
        events.extend(page.items.into_iter().map(|a| a.activity));
        next = page.next;
    }
    let coverage = jit_core::trust::check_coverage(&records, &events)
        .map_err(|e| Failure::Tampered(format!("the grant's activity does not verify: {e}")))?;
    let summary = serde_json::json!({
        "grant": id,
        "records": records.len(),
        "covering_records": coverage.records,
        "covered": coverage.covered,
        "not_yet_covered": coverage.not_yet_covered,
    });
    ctx.print(&summary, |_| {
        let mut text = format!(
            "verified: {} records, each hash, link and signature; {} events covered by {} signed record(s)",
            records.len(),
            coverage.covered,
            coverage.records
        );
        if !coverage.not_yet_covered.is_empty() {
            text.push_str(&format!(
                "; {} stored since the last, not yet covered (CloudTrail delivers late; the sweeper covers them)",
                coverage.not_yet_covered.len()
            ));
        }
        text
    });
    Ok(0)
}
