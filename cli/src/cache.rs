//! The credentials cache: one file per grant, readable by its owner only, reused until five
//! minutes before the session expires, dropped as soon as `jit` learns the grant ended. The
//! AWS CLI does not cache process credentials, so without this every `aws` call would pull a
//! new session.

use std::io::Write;
use std::path::{Path, PathBuf};

use jit_api::Credentials;
use serde::{Deserialize, Serialize};

/// How long before expiry a cached session stops being handed out.
pub const REFRESH_MARGIN_SECS: i64 = 300;

/// One cached session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// The grant it belongs to.
    pub grant: String,
    /// The grant's target.
    pub target: String,
    /// The `credential_process` JSON as the issuer answered it.
    pub credentials: Credentials,
}

impl Entry {
    fn expires_at(&self) -> Option<i64> {
        let text = &self.credentials.expiration;
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(|t| t.unix_timestamp())
    }

    /// Whether it may still be handed out at `now`.
    pub fn fresh(&self, now: i64) -> bool {
        self.expires_at()
            .is_some_and(|e| now + REFRESH_MARGIN_SECS < e)
    }
}

/// The cache directory.
pub struct Cache {
    dir: PathBuf,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Cache {
    /// The cache in `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn path(&self, grant: &str) -> PathBuf {
        // Grant ids are UUIDs; anything else never names a file here.
        let safe: String = grant
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        self.dir.join(format!("{safe}.json"))
    }

    fn read(path: &Path) -> Option<Entry> {
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// A fresh entry for grant `grant`.
    pub fn by_grant(&self, grant: &str) -> Option<Entry> {
        Self::read(&self.path(grant)).filter(|e| e.fresh(now()))
    }

    /// A fresh entry for any grant of `target`.
    pub fn by_target(&self, target: &str) -> Option<Entry> {
        let entries = std::fs::read_dir(&self.dir).ok()?;
        entries
            .flatten()
            .filter_map(|e| Self::read(&e.path()))
            .filter(|e| e.target == target && e.fresh(now()))
            .max_by_key(|e| e.expires_at())
    }

    /// Stores `entry`, readable and writable by its owner only.
    pub fn put(&self, entry: &Entry) -> Result<(), String> {
        create_private_dir(&self.dir)?;
        let path = self.path(&entry.grant);
        let text = serde_json::to_string(entry).map_err(|e| e.to_string())?;
        let tmp = path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(&tmp)
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        file.write_all(text.as_bytes())
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Forgets every cached session; how many there were.
    pub fn clear(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter(|e| std::fs::remove_file(e.path()).is_ok())
            .count()
    }

    /// Forgets grant `grant`'s session.
    pub fn drop_grant(&self, grant: &str) {
        let _ = std::fs::remove_file(self.path(grant));
    }
}

pub fn create_private_dir(dir: &Path) -> Result<(), String> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))
}
