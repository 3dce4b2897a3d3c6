//! `jit revoke`: end a grant now, live sessions included.

use crate::api::Failure;
use crate::ctx::Ctx;

/// Revokes grant `id` and forgets its cached session.
pub async fn run(ctx: &Ctx, id: &str, reason: &str) -> Result<u8, Failure> {
    let revoked = ctx.api.call(|api| api.revoke(id, reason)).await?;
    ctx.cache.drop_grant(id);
    ctx.print(&revoked, |r| {
        format!("revoked {id}; live sessions: {}", r.live_sessions.as_str())
    });
    Ok(0)
}
