//! `sluice admin replication ...` and `POST /_sluice/admin/v1/replication`: a bucket's queue
//! status, pausing and resuming it, and the credentials Sluice signs with for a target.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::iam::{Iam, IamError};
use crate::config::Config;
use crate::store::replication_queue::{PAUSED_CONFIG, RULES_CONFIG};
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum ReplicationCommand {
    /// Rules, whether the queue is paused, what waits in it and how late it is.
    Status {
        bucket: String,
    },
    /// Holds the bucket's queue: writes are still enqueued, nothing is sent.
    Pause {
        bucket: String,
    },
    Resume {
        bucket: String,
    },
    /// Stores (sealed) the access key and secret Sluice signs with for `target`.
    Credentials {
        target: String,
        access_key: String,
        secret_key: String,
    },
}

impl ReplicationCommand {
    /// The Cedar action (on the node) that allows the command.
    pub fn action(&self) -> &'static str {
        match self {
            ReplicationCommand::Status { .. } => "sluice:GetReplicationStatus",
            ReplicationCommand::Pause { .. } => "sluice:PauseReplication",
            ReplicationCommand::Resume { .. } => "sluice:ResumeReplication",
            ReplicationCommand::Credentials { .. } => "sluice:SetReplicationCredentials",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplicationAdminError {
    #[error("no such bucket `{0}`")]
    NoSuchBucket(String),
    #[error("no replication target is named `{0}` in the configuration")]
    NoSuchTarget(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Iam(#[from] IamError),
}

pub async fn run(
    config: &Config,
    store: &dyn Store,
    iam: &Iam,
    cmd: &ReplicationCommand,
) -> Result<serde_json::Value, ReplicationAdminError> {
    let existing = |bucket: &str| {
        let bucket = bucket.to_string();
        async move {
            match store.bucket(&bucket).await? {
                Some(_) => Ok(bucket),
                None => Err(ReplicationAdminError::NoSuchBucket(bucket)),
            }
        }
    };
    match cmd {
        ReplicationCommand::Status { bucket } => {
            let bucket = existing(bucket).await?;
            let rules = store.bucket_config(&bucket, RULES_CONFIG).await?;
            let paused = store.bucket_config(&bucket, PAUSED_CONFIG).await?.is_some();
            let backlog = store.replication_backlog(Some(&bucket)).await?;
            let lag = backlog.lag_seconds(crate::store::precise_now_ms());
            Ok(json!({
                "bucket": bucket,
                "configured": rules.is_some(),
                "paused": paused,
                "pending": backlog.tasks,
                "retrying": backlog.retrying,
                "lag_seconds": lag,
                "last_error": backlog.last_error,
            }))
        }
        ReplicationCommand::Pause { bucket } | ReplicationCommand::Resume { bucket } => {
            let bucket = existing(bucket).await?;
            let pause = matches!(cmd, ReplicationCommand::Pause { .. });
            store
                .put_bucket_config(&bucket, PAUSED_CONFIG, pause.then(|| b"1".to_vec()))
                .await?;
            Ok(json!({ "bucket": bucket, "paused": pause }))
        }
        ReplicationCommand::Credentials {
            target,
            access_key,
            secret_key,
        } => {
            if !config.replication_targets.iter().any(|t| &t.name == target) {
                return Err(ReplicationAdminError::NoSuchTarget(target.clone()));
            }
            iam.set_target_credentials(target, access_key, secret_key)?;
            Ok(json!({ "target": target, "access_key": access_key }))
        }
    }
}
