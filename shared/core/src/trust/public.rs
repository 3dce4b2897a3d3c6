//! The functions' public keys as a use case meets them: known from the start, or read once,
//! when first needed, from wherever the deployment keeps them.

use futures::future::BoxFuture;
use tokio::sync::OnceCell;

use super::{KeyRing, SignError};

/// How the ring is read when it is not known yet (KMS `GetPublicKey`, all four at once).
type Read = Box<dyn Fn() -> BoxFuture<'static, Result<KeyRing, SignError>> + Send + Sync>;

/// The functions' public keys, against which evidence is checked.
///
/// A function starts without them: reading them is a network round trip its init need not
/// wait for, and not every invocation verifies anything. The first caller that needs them
/// reads them; callers at the same moment wait on that one read; a read that fails is not
/// kept, so the next caller tries again. A caller that cannot get them refuses with nothing
/// done (a retryable 503), since nothing is decided on evidence that was not checked.
pub struct PublicKeys {
    ring: OnceCell<KeyRing>,
    read: Option<Read>,
}

impl std::fmt::Debug for PublicKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKeys")
            .field("ring", &self.ring.get())
            .finish_non_exhaustive()
    }
}

impl From<KeyRing> for PublicKeys {
    fn from(ring: KeyRing) -> Self {
        Self {
            ring: OnceCell::from(ring),
            read: None,
        }
    }
}

impl PublicKeys {
    /// Keys read by `read` when first needed.
    pub fn read_with(
        read: impl Fn() -> BoxFuture<'static, Result<KeyRing, SignError>> + Send + Sync + 'static,
    ) -> Self {
        Self {
            ring: OnceCell::new(),
            read: Some(Box::new(read)),
        }
    }

    /// The ring, read now if it was not yet.
    pub async fn ring(&self) -> Result<&KeyRing, SignError> {
        self.ring
            .get_or_try_init(|| async {
                match &self.read {
                    Some(read) => read().await,
                    // Only a ring that was known from the start has no way to be read.
                    None => Ok(KeyRing::default()),
                }
            })
            .await
    }

    /// Whether the ring was read (or known from the start).
    pub fn is_read(&self) -> bool {
        self.ring.initialized()
    }
}
