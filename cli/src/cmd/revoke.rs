//! `jit revoke`: end a grant now, live sessions included.

use crate::api::Failure;
use crate::ctx::Ctx;

/// Revokes grant `id` (with `bundle`, every active item of the request of several targets
/// `id` names) and forgets the cached sessions.
pub async fn run(ctx: &Ctx, id: &str, reason: &str, bundle: bool) -> Result<u8, Failure> {
    if bundle {
        let done = ctx.api.call(|api| api.revoke_bundle(id, reason)).await?;
        for item in &done.items {
            if item.outcome == "revoked" {
                ctx.cache.drop_grant(&item.id);
            }
        }
        ctx.print(&done, crate::ctx::bundle_lines);
        return Ok(0);
    }
    let revoked = ctx.api.call(|api| api.revoke(id, reason)).await?;
    ctx.cache.drop_grant(id);
    ctx.print(&revoked, |r| {
        format!("revoked {id}; live sessions: {}", r.live_sessions.as_str())
    });
    Ok(0)
}
