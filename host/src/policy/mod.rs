//! Authorization: every access decision is a Cedar evaluation. The schema and the shipped
//! policies live in `policies/`; operators add `*.cedar` files, attach policies to users,
//! groups and roles, and S3 users write bucket policies and ACLs, all decided by one engine.

pub mod attached;
pub mod bucket_policy;
pub mod engine;
pub mod entities;
pub mod explain;
pub mod files;
pub mod schema;
pub mod trust;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cedar_policy::Policy;

pub use engine::{AccessRequest, BucketPolicySet, Decision, PolicyEngine, Resource};
pub use files::PolicyLoadError;

use crate::auth::iam::{Iam, IamError};

/// The policy files of `dir`, or the shipped defaults when no directory is configured.
pub fn load_files(dir: Option<&Path>) -> Result<Vec<Policy>, PolicyLoadError> {
    match dir {
        Some(d) => files::load_dir(d),
        None => files::load_defaults(),
    }
}

/// IAM user id -> names of its groups.
pub type GroupMemberships = HashMap<String, Vec<String>>;

/// The policies attached in the IAM store, bound to their principals, and group memberships.
/// A stored policy that no longer compiles (after a schema change) is logged and left out.
pub fn identity(iam: &Iam) -> Result<(Vec<Policy>, GroupMemberships), IamError> {
    let mut out = Vec::new();
    for record in iam.attached_policies()? {
        let target = record.target();
        match attached::compile(&target, &record.name, &record.text) {
            Ok(p) => out.extend(p),
            Err(e) => tracing::error!(
                policy = %attached::prefix(&target, &record.name),
                "attached policy left out: {e}"
            ),
        }
    }
    Ok((out, iam.group_memberships()?))
}

impl PolicyEngine {
    /// Loads files (refusing to start on any error) and the IAM store's policies.
    pub fn open(dir: Option<&Path>, iam: &Iam) -> anyhow::Result<PolicyEngine> {
        let files = load_files(dir).map_err(|e| anyhow::anyhow!("policies: {e}"))?;
        let engine = PolicyEngine::new(files);
        engine.refresh_identity(iam)?;
        Ok(engine)
    }

    /// Reloads attached policies and group memberships after an IAM change.
    pub fn refresh_identity(&self, iam: &Iam) -> Result<(), IamError> {
        let (policies, groups) = identity(iam)?;
        self.replace_identity(policies, groups);
        Ok(())
    }

    /// Watches `dir`: on a change (polled every second) or SIGHUP the files are loaded again
    /// and swapped in only if the whole set validates; otherwise the old set keeps serving.
    pub fn spawn_reloader(self: &Arc<Self>, dir: PathBuf) {
        let engine = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut stamp = files::dir_stamp(&dir);
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut hup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            loop {
                let forced = match hup.as_mut() {
                    Some(h) => tokio::select! {
                        _ = tick.tick() => false,
                        _ = h.recv() => true,
                    },
                    None => {
                        tick.tick().await;
                        false
                    }
                };
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                let now = files::dir_stamp(&dir);
                if !forced && now == stamp {
                    continue;
                }
                stamp = now;
                let d = dir.clone();
                match tokio::task::spawn_blocking(move || files::load_dir(&d)).await {
                    Ok(Ok(policies)) => {
                        let n = policies.len();
                        engine.replace_files(policies);
                        engine.set_reload_error(None);
                        tracing::info!(policies = n, dir = %dir.display(), "policies reloaded");
                    }
                    Ok(Err(e)) => {
                        tracing::error!(
                            "policies not reloaded, the previous set keeps serving: {e}"
                        );
                        engine.set_reload_error(Some(e.to_string()));
                    }
                    Err(e) => tracing::error!("policy reload task failed: {e}"),
                }
            }
        });
    }
}
