//! `jit show`: one request or grant, whole.

use crate::api::Failure;
use crate::ctx::Ctx;

/// Shows it.
pub async fn run(ctx: &Ctx, id: &str) -> Result<u8, Failure> {
    let g = ctx.api.call(|api| api.get_request(id)).await?;
    ctx.forget_ended(&g);
    ctx.print(&g, |g| serde_json::to_string_pretty(g).unwrap_or_default());
    Ok(0)
}
