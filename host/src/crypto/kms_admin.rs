//! `sluice kms ...` and the admin API's KMS endpoint: one command type for both, run against the
//! configured key provider. Each command names the Cedar `kms` action that must allow it.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::keys::{KeyError, KeyService};
use crate::plugins::bindings::key_provider::exports::sluice::plugin::key_management::{
    KeyMetadata, KeyState,
};
use crate::plugins::plugin::KeyAdmin;

/// A KMS admin command, as the CLI sends it to a running server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum KmsCommand {
    Create {
        #[serde(default)]
        description: String,
    },
    List,
    Describe {
        key_id: String,
    },
    Enable {
        key_id: String,
    },
    Disable {
        key_id: String,
    },
    Rotate {
        key_id: String,
    },
    ScheduleDeletion {
        key_id: String,
        days: u32,
    },
    CancelDeletion {
        key_id: String,
    },
    /// A data key for client-side encryption; the answer carries the plaintext key.
    GenerateDataKey {
        #[serde(default)]
        key_id: Option<String>,
        #[serde(default)]
        context: Vec<(String, String)>,
    },
    /// Unwraps a data key made by `generate-data-key`.
    Decrypt {
        key_id: String,
        /// Base64.
        wrapped: String,
        #[serde(default)]
        context: Vec<(String, String)>,
    },
}

impl KmsCommand {
    /// The Cedar action that must allow the command.
    pub fn action(&self) -> &'static str {
        match self {
            KmsCommand::Create { .. } => "kms:CreateKey",
            KmsCommand::List => "kms:ListKeys",
            KmsCommand::Describe { .. } => "kms:DescribeKey",
            KmsCommand::Enable { .. } => "kms:EnableKey",
            KmsCommand::Disable { .. } => "kms:DisableKey",
            KmsCommand::Rotate { .. } => "kms:RotateKeyOnDemand",
            KmsCommand::ScheduleDeletion { .. } => "kms:ScheduleKeyDeletion",
            KmsCommand::CancelDeletion { .. } => "kms:CancelKeyDeletion",
            KmsCommand::GenerateDataKey { .. } => "kms:GenerateDataKey",
            KmsCommand::Decrypt { .. } => "kms:Decrypt",
        }
    }

    /// The key the command is about (`None` for create and list, which act on the node).
    pub fn key_id(&self) -> Option<&str> {
        match self {
            KmsCommand::Create { .. } | KmsCommand::List => None,
            KmsCommand::GenerateDataKey { key_id, .. } => {
                Some(key_id.as_deref().unwrap_or(super::keys::DEFAULT_KMS_KEY))
            }
            KmsCommand::Decrypt { key_id, .. } => Some(key_id),
            KmsCommand::Describe { key_id }
            | KmsCommand::Enable { key_id }
            | KmsCommand::Disable { key_id }
            | KmsCommand::Rotate { key_id }
            | KmsCommand::ScheduleDeletion { key_id, .. }
            | KmsCommand::CancelDeletion { key_id } => Some(key_id),
        }
    }

    fn op(&self) -> Option<KeyAdmin> {
        Some(match self.clone() {
            KmsCommand::Create { description } => KeyAdmin::Create(description),
            KmsCommand::List => KeyAdmin::List,
            KmsCommand::Describe { key_id } => KeyAdmin::Describe(key_id),
            KmsCommand::Enable { key_id } => KeyAdmin::Enable(key_id),
            KmsCommand::Disable { key_id } => KeyAdmin::Disable(key_id),
            KmsCommand::Rotate { key_id } => KeyAdmin::Rotate(key_id),
            KmsCommand::ScheduleDeletion { key_id, days } => {
                KeyAdmin::ScheduleDeletion(key_id, days)
            }
            KmsCommand::CancelDeletion { key_id } => KeyAdmin::CancelDeletion(key_id),
            KmsCommand::GenerateDataKey { .. } | KmsCommand::Decrypt { .. } => return None,
        })
    }
}

fn key_json(k: &KeyMetadata) -> serde_json::Value {
    json!({
        "key_id": k.key_id,
        "arn": k.arn,
        "description": k.description,
        "state": match k.state {
            KeyState::Enabled => "enabled",
            KeyState::Disabled => "disabled",
            KeyState::PendingDeletion => "pending-deletion",
        },
        "created_at": k.created_at,
        "deletion_date": k.deletion_date,
        "versions": k.versions,
    })
}

/// Runs `cmd`: one key's metadata as JSON, or an array for `list`.
pub async fn run(keys: &KeyService, cmd: &KmsCommand) -> Result<serde_json::Value, KeyError> {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;
    match cmd {
        KmsCommand::GenerateDataKey { key_id, context } => {
            let (arn, key, wrapped) = keys.client_data_key(key_id.as_deref(), context).await?;
            return Ok(json!({
                "key_id": arn,
                "plaintext": B64.encode(key.as_ref()),
                "wrapped": B64.encode(wrapped),
            }));
        }
        KmsCommand::Decrypt {
            key_id,
            wrapped,
            context,
        } => {
            let raw = B64.decode(wrapped).map_err(|_| KeyError::Kms {
                code: "KMS.InvalidCiphertextException".into(),
                message: "the wrapped key is not base64".into(),
            })?;
            let key = keys.client_decrypt(key_id, &raw, context).await?;
            return Ok(json!({ "key_id": key_id, "plaintext": B64.encode(key.as_ref()) }));
        }
        _ => {}
    }
    let Some(op) = cmd.op() else {
        return Ok(serde_json::Value::Null);
    };
    let listed = keys.admin(op).await?;
    Ok(match cmd {
        KmsCommand::List => serde_json::Value::Array(listed.iter().map(key_json).collect()),
        _ => listed
            .first()
            .map(key_json)
            .unwrap_or(serde_json::Value::Null),
    })
}
