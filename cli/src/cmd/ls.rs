//! `jit ls`: the caller's requests, or the ones they may review.

use crate::api::Failure;
use crate::ctx::{Ctx, summary};

/// Lists one page of up to 100.
pub async fn run(ctx: &Ctx, reviewable: bool, state: Option<String>) -> Result<u8, Failure> {
    let scope = if reviewable { "reviewable" } else { "mine" };
    let state = state.map(|s| s.to_ascii_uppercase());
    let list = ctx
        .api
        .call(|api| api.list_requests(scope, state.as_deref(), 100, None))
        .await?;
    if !reviewable {
        list.items.iter().for_each(|g| ctx.forget_ended(g));
    }
    ctx.print(&list, |list| {
        if list.items.is_empty() {
            "nothing".to_owned()
        } else {
            list.items
                .iter()
                .map(summary)
                .collect::<Vec<_>>()
                .join("\n")
        }
    });
    Ok(0)
}
