//! `jit cancel`: withdraw a pending request, or a scheduled grant before it opens.

use crate::api::Failure;
use crate::ctx::{Ctx, summary};

/// Cancels request `id`.
pub async fn run(ctx: &Ctx, id: &str) -> Result<u8, Failure> {
    let g = ctx.api.call(|api| api.cancel(id)).await?;
    ctx.print(&g, summary);
    Ok(0)
}
