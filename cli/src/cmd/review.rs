//! `jit approve`, `jit deny` and `jit post-review`: decisions on someone else's access.

use jit_api::{PostReviewRequest, ReviewRequest};
use jit_core::domain::ReviewDecision;

use crate::api::Failure;
use crate::ctx::{Ctx, bundle_lines, summary};

/// Approves or denies request `id`; with `bundle`, every item of the request of several
/// targets `id` names that the caller may decide.
pub async fn run(
    ctx: &Ctx,
    id: &str,
    decision: ReviewDecision,
    comment: Option<String>,
    bundle: bool,
) -> Result<u8, Failure> {
    let body = ReviewRequest { decision, comment };
    if bundle {
        let done = ctx.api.call(|api| api.review_bundle(id, &body)).await?;
        ctx.print(&done, bundle_lines);
        return Ok(0);
    }
    let g = ctx.api.call(|api| api.review(id, &body)).await?;
    ctx.print(&g, summary);
    Ok(0)
}

/// Records the review break-glass grant `id` owes.
pub async fn post(ctx: &Ctx, id: &str, comment: Option<String>) -> Result<u8, Failure> {
    let body = PostReviewRequest { comment };
    let g = ctx.api.call(|api| api.post_review(id, &body)).await?;
    ctx.print(&g, summary);
    Ok(0)
}
