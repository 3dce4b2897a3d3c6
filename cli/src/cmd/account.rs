//! `jit login` and `jit logout`: the caller's sign-in, kept or forgotten.

use serde_json::json;

use crate::Output;
use crate::api::Failure;
use crate::cache::Cache;
use crate::config::{cache_dir, config_dir, load_config};
use crate::login;

/// What `jit login` was asked.
pub struct SignIn {
    /// The provider's issuer, if given.
    pub issuer: Option<String>,
    /// The client id, if given.
    pub client_id: Option<String>,
    /// Sign in with a code on another device.
    pub device: bool,
    /// Try to open a browser.
    pub open: bool,
}

/// Signs in with the provider and keeps the tokens.
pub async fn login(sign_in: SignIn, output: Output) -> Result<u8, Failure> {
    let config = load_config()?;
    let issuer = sign_in.issuer.or(config.issuer).ok_or_else(|| {
        Failure::Usage(
            "no identity provider: pass --issuer, set JIT_ISSUER, or put `issuer` in the config \
             file"
                .into(),
        )
    })?;
    let client_id = sign_in
        .client_id
        .or(config.client_id)
        .unwrap_or_else(|| "jit-cli".to_owned());
    let session = login::login(&issuer, &client_id, sign_in.device, sign_in.open).await?;
    let path = login::path(config_dir());
    login::save(&path, &session)?;
    note!("signed in; the token is kept in {}", path.display());
    if output == Output::Json {
        println!("{}", json!({"signed_in": true, "token_file": path}));
    }
    Ok(0)
}

/// Forgets the sign-in and every AWS session pulled while signed in.
pub fn logout(output: Output) -> u8 {
    let path = login::path(config_dir());
    match std::fs::remove_file(&path) {
        Ok(()) => note!("signed out"),
        Err(_) => note!("not signed in"),
    }
    // Sessions pulled while signed in go too: signing out ends local access.
    let dropped = Cache::new(cache_dir()).clear();
    if dropped > 0 {
        note!("{dropped} cached AWS session(s) removed");
    }
    if output == Output::Json {
        println!("{}", json!({"signed_in": false}));
    }
    0
}
