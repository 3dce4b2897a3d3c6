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
