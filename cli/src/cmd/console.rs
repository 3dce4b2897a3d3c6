//! `jit console`: a console sign-in link for a grant.

use jit_api::ConsoleRequest;

use crate::api::Failure;
use crate::cmd::session::resolve_grant;
use crate::ctx::Ctx;

/// Prints the link, and with `open`, opens it in the browser.
pub async fn run(
    ctx: &Ctx,
    grant_or_target: &str,
    destination: Option<String>,
    open: bool,
) -> Result<u8, Failure> {
    let grant = resolve_grant(ctx, grant_or_target).await?;
    let body = ConsoleRequest { destination };
    let link = ctx.api.call(|api| api.console(&grant.id, &body)).await?;
    if open && let Err(e) = crate::login::open_browser(&link.url) {
        note!("could not open a browser ({e}); the link is below");
    }
    ctx.print(&link, |l| l.url.clone());
    Ok(0)
}
