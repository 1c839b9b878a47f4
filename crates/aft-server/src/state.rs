//! The state every REST handler shares.

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

use aft_store::SecretsKey;
use aft_store::Store;

use crate::auth::FailedAuthLimiter;
use crate::metrics::Metrics;
use crate::runner::Runner;

/// Shared handler state (cheap to clone).
#[derive(Clone)]
pub struct AppState(pub Arc<AppInner>);

/// What [`AppState`] holds.
pub struct AppInner {
    /// The store.
    pub store: Store,
    /// This node's job runner.
    pub runner: Arc<Runner>,
    /// The token of `service.json` (local-admin access).
    pub local_token: String,
    /// Failed-authentication counter per address.
    pub limiter: FailedAuthLimiter,
    /// Run-time metrics of this node.
    pub metrics: Arc<Metrics>,
    /// Key that seals secrets.
    pub secrets_key: Arc<SecretsKey>,
    /// The data directory.
    pub data_dir: PathBuf,
}

impl Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}
