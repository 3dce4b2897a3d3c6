//! `jit slack link CODE`: links the Slack user `/jit link` gave the code to, so clicks there
//! count as yours.

use crate::api::Failure;
use crate::ctx::Ctx;

/// Redeems `code`.
pub async fn link(ctx: &Ctx, code: &str) -> Result<u8, Failure> {
    let link = ctx.api.call(|api| api.link_slack(code)).await?;
    ctx.print(&link, |l| {
        format!(
            "Slack user {} of workspace {} is now linked to you ({}). Approve and Deny there count as your reviews, decided on the groups of your latest sign-in.",
            l.user_id, l.team_id, l.sub
        )
    });
    Ok(0)
}
