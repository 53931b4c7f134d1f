//! Credentials Sluice signs with when it replicates to a target (`[[replication_targets]]`),
//! sealed with the node master key like every other secret at rest.

use redb::{ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::iam::{Iam, IamError};

/// target name -> sealed `Stored`
const TARGET_CREDENTIALS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("replication_credentials");

#[derive(Serialize, Deserialize)]
struct Stored {
    access_key: String,
    /// Base64 of the secret sealed with the master key, bound to the target's name.
    sealed_secret: String,
}

/// A target's access key and secret.
pub struct TargetCredentials {
    pub access_key: String,
    pub secret_key: Zeroizing<String>,
}

fn context(target: &str) -> Vec<u8> {
    format!("replication-target:{target}").into_bytes()
}

impl Iam {
    /// Stores (replacing) the credentials for `target`.
    pub fn set_target_credentials(
        &self,
        target: &str,
        access_key: &str,
        secret_key: &str,
    ) -> Result<(), IamError> {
        use base64::Engine as _;
        if access_key.is_empty() || secret_key.is_empty() {
            return Err(IamError::Invalid(
                "the access key and secret key must not be empty".into(),
            ));
        }
        let stored = Stored {
            access_key: access_key.to_string(),
            sealed_secret: base64::engine::general_purpose::STANDARD
                .encode(self.master.seal(&context(target), secret_key.as_bytes())),
        };
        let txn = self.db.begin_write()?;
        txn.open_table(TARGET_CREDENTIALS)?
            .insert(target, serde_json::to_vec(&stored)?.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// The credentials stored for `target`, if any.
    pub fn target_credentials(&self, target: &str) -> Result<Option<TargetCredentials>, IamError> {
        use base64::Engine as _;
        let txn = self.db.begin_read()?;
        let table = match txn.open_table(TARGET_CREDENTIALS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(raw) = table.get(target)? else {
            return Ok(None);
        };
        let stored: Stored = serde_json::from_slice(raw.value())?;
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(&stored.sealed_secret)
            .map_err(|e| IamError::Meta(format!("sealed target secret: {e}")))?;
        let secret = self.master.open(&context(target), &sealed)?;
        let secret_key = Zeroizing::new(
            String::from_utf8(secret.to_vec())
                .map_err(|_| IamError::Meta("sealed target secret is not UTF-8".into()))?,
        );
        Ok(Some(TargetCredentials {
            access_key: stored.access_key,
            secret_key,
        }))
    }
}
