//! `jit targets`: what the caller may ask for.

use crate::api::Failure;
use crate::ctx::Ctx;

/// Lists the targets.
pub async fn run(ctx: &Ctx) -> Result<u8, Failure> {
    let list = ctx.api.call(|api| api.targets()).await?;
    ctx.print(&list, |l| {
        if l.items.is_empty() {
            return "no target you may ask for".to_owned();
        }
        l.items
            .iter()
            .map(|t| {
                format!(
                    "{:<20} up to {:<4} {} approval(s){}  {}",
                    t.id,
                    t.max_duration,
                    t.approvals_required,
                    if t.ticket_required {
                        ", ticket needed"
                    } else {
                        ""
                    },
                    t.description
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(0)
}
