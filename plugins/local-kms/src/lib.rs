//! `local-kms`: a key provider that keeps its master keys in its own `kv` namespace, each one
//! sealed by the host with a key derived for this plugin from the node master key (the
//! `sealing` import), so neither a config file nor the database holds a usable key.
//!
//! ```toml
//! [[plugins]]
//! name = "local-kms"
//! world = "key-provider"
//! path = "plugins/dist/local_kms.wasm"
//! [plugins.config]
//! region = "us-east-1"        # used in key ARNs (default us-east-1)
//! ```
//!
//! - Keys are versioned: `rotate` adds a version that new data keys use; every older version
//!   still unwraps the data keys it wrapped.
//! - A wrapped data key is `01 | version (u32 BE) | nonce (12) | AES-256-GCM(data key)` with
//!   the key id and the encryption context (sorted, length-prefixed) as associated data, so a
//!   wrapped key only unwraps under the same key and context.
//! - `alias/aws/s3` (what SSE-KMS uses when a request names no key) is created on first use.
//! - Disabled keys and keys pending deletion refuse to wrap or unwrap. Once a key's deletion
//!   date has passed, its material is erased on the next call that names it: objects under it
//!   are unreadable from then on.
//! - Errors carry KMS codes as `<Code>Exception: message` (`NotFoundException`,
//!   `DisabledException`, `KMSInvalidStateException`, `InvalidCiphertextException`,
//!   `ValidationException`), which the host answers as `KMS.<Code>Exception`.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

wit_bindgen::generate!({
    path: "../../wit",
    world: "key-provider",
});

use exports::sluice::plugin::key_management::{
    DataKey, EncryptionContext, Guest as KeyManagement, KeyMetadata, KeyState,
};
use exports::sluice::plugin::plugin_info::Guest as PluginInfo;
use sluice::plugin::types::Error;
use sluice::plugin::{clock, config, kv, random, sealing};

const DEFAULT_ALIAS: &str = "alias/aws/s3";
const WRAP_VERSION: u8 = 1;
const MIN_DELETION_DAYS: u32 = 7;
const MAX_DELETION_DAYS: u32 = 30;
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

#[derive(Serialize, Deserialize, Clone)]
struct KeyRecord {
    id: String,
    description: String,
    state: String,
    /// Unix seconds.
    created_at: u64,
    /// Unix milliseconds after which the key is erased, while pending deletion.
    #[serde(default)]
    deletion_at_ms: Option<u64>,
    versions: u32,
}

fn now_ms() -> u64 {
    clock::now_millis()
}

fn region() -> String {
    config::get("region")
        .filter(|r| !r.is_empty() && r.len() <= 64)
        .unwrap_or_else(|| "us-east-1".into())
}

fn arn(id: &str) -> String {
    format!("arn:aws:kms:{}:000000000000:key/{id}", region())
}

fn not_found(name: &str) -> Error {
    Error::Invalid(format!("NotFoundException: Key '{name}' does not exist"))
}

fn storage(e: String) -> Error {
    Error::Unavailable(format!("KMSInternalException: key store: {e}"))
}

fn new_id() -> String {
    let b = random::bytes(16);
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

fn load(id: &str) -> Option<KeyRecord> {
    kv::get(&format!("key/{id}")).and_then(|raw| serde_json::from_slice(&raw).ok())
}

fn save(rec: &KeyRecord) -> Result<(), Error> {
    let raw = serde_json::to_vec(rec).map_err(|e| Error::Internal(e.to_string()))?;
    kv::set(&format!("key/{}", rec.id), &raw).map_err(storage)
}

fn material_name(id: &str, version: u32) -> String {
    format!("mat/{id}/{version:08}")
}

fn seal_context(id: &str, version: u32) -> Vec<u8> {
    format!("local-kms/{id}/{version}").into_bytes()
}

fn new_material(id: &str, version: u32) -> Result<(), Error> {
    let key = Zeroizing::new(random::bytes(32));
    if key.len() != 32 {
        return Err(Error::Internal("host gave too few random bytes".into()));
    }
    let sealed = sealing::seal(&key, &seal_context(id, version));
    if sealed.is_empty() {
        return Err(Error::Internal("the host cannot seal keys here".into()));
    }
    kv::set(&material_name(id, version), &sealed).map_err(storage)
}

fn material(id: &str, version: u32) -> Result<Zeroizing<Vec<u8>>, Error> {
    let sealed = kv::get(&material_name(id, version)).ok_or_else(|| not_found(id))?;
    sealing::unseal(&sealed, &seal_context(id, version))
        .map(Zeroizing::new)
        .map_err(|e| {
            Error::Internal(format!(
                "KMSInternalException: key material does not unseal: {e}"
            ))
        })
}

/// Erases a key whose deletion date has passed; true when it did.
fn expire(rec: &KeyRecord) -> Result<bool, Error> {
    match rec.deletion_at_ms {
        Some(at) if rec.state == "pending-deletion" && now_ms() >= at => {
            for v in 1..=rec.versions {
                kv::delete(&material_name(&rec.id, v)).map_err(storage)?;
            }
            kv::delete(&format!("key/{}", rec.id)).map_err(storage)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// The key a caller names: its id, its ARN, an alias or an alias ARN.
fn resolve(name: &str) -> Result<KeyRecord, Error> {
    let tail = match name.rsplit_once(':') {
        Some((prefix, rest)) if prefix.starts_with("arn:") => rest,
        _ => name,
    };
    let rec = if let Some(alias) = tail.strip_prefix("alias/") {
        let target = kv::get(&format!("alias/{alias}")).and_then(|raw| String::from_utf8(raw).ok());
        match target.and_then(|id| load(&id)) {
            Some(rec) => rec,
            None if tail == DEFAULT_ALIAS => create("Default key for SSE-KMS", Some(alias))?,
            None => return Err(not_found(name)),
        }
    } else {
        let id = tail.strip_prefix("key/").unwrap_or(tail);
        load(id).ok_or_else(|| not_found(name))?
    };
    if expire(&rec)? {
        return Err(not_found(name));
    }
    Ok(rec)
}

fn create(description: &str, alias: Option<&str>) -> Result<KeyRecord, Error> {
    if description.len() > 8192 {
        return Err(Error::Invalid(
            "ValidationException: the description is longer than 8192 characters".into(),
        ));
    }
    let rec = KeyRecord {
        id: new_id(),
        description: description.to_string(),
        state: "enabled".into(),
        created_at: now_ms() / 1000,
        deletion_at_ms: None,
        versions: 1,
    };
    new_material(&rec.id, 1)?;
    save(&rec)?;
    if let Some(a) = alias {
        kv::set(&format!("alias/{a}"), rec.id.as_bytes()).map_err(storage)?;
    }
    Ok(rec)
}

fn metadata(rec: &KeyRecord) -> KeyMetadata {
    KeyMetadata {
        key_id: rec.id.clone(),
        arn: arn(&rec.id),
        description: rec.description.clone(),
        state: match rec.state.as_str() {
            "disabled" => KeyState::Disabled,
            "pending-deletion" => KeyState::PendingDeletion,
            _ => KeyState::Enabled,
        },
        created_at: rec.created_at,
        deletion_date: rec.deletion_at_ms.map(|ms| ms / 1000),
        versions: rec.versions,
    }
}

/// `KMSInvalidStateException`: the key's state does not allow the call (`what` says why).
fn invalid_state(rec: &KeyRecord, what: &str) -> Error {
    Error::Denied(format!(
        "KMSInvalidStateException: {} {what}.",
        arn(&rec.id)
    ))
}

fn usable(rec: &KeyRecord) -> Result<(), Error> {
    match rec.state.as_str() {
        "enabled" => Ok(()),
        "disabled" => Err(Error::Denied(format!(
            "DisabledException: {} is disabled.",
            arn(&rec.id)
        ))),
        _ => Err(invalid_state(rec, "is pending deletion")),
    }
}

fn aad(id: &str, context: &EncryptionContext) -> Vec<u8> {
    let mut pairs: Vec<&(String, String)> = context.iter().collect();
    pairs.sort();
    let mut out = b"local-kms/v1".to_vec();
    for part in std::iter::once(id).chain(pairs.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]))
    {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

fn cipher(id: &str, version: u32) -> Result<Aes256Gcm, Error> {
    let key = material(id, version)?;
    Aes256Gcm::new_from_slice(&key)
        .map_err(|_| Error::Internal("key material is not 32 bytes".into()))
}

fn update(
    name: &str,
    change: impl FnOnce(&mut KeyRecord) -> Result<(), Error>,
) -> Result<KeyMetadata, Error> {
    let mut rec = resolve(name)?;
    change(&mut rec)?;
    save(&rec)?;
    Ok(metadata(&rec))
}

struct LocalKms;

impl PluginInfo for LocalKms {
    fn info() -> (String, String) {
        ("local-kms".into(), env!("CARGO_PKG_VERSION").into())
    }

    fn health() -> Result<(), String> {
        Ok(())
    }
}

impl KeyManagement for LocalKms {
    fn generate_data_key(key_id: String, context: EncryptionContext) -> Result<DataKey, Error> {
        let rec = resolve(&key_id)?;
        usable(&rec)?;
        let plaintext = random::bytes(32);
        let nonce = random::bytes(12);
        if plaintext.len() != 32 || nonce.len() != 12 {
            return Err(Error::Internal("host gave too few random bytes".into()));
        }
        let sealed = cipher(&rec.id, rec.versions)?
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plaintext,
                    aad: &aad(&rec.id, &context),
                },
            )
            .map_err(|_| Error::Internal("wrapping failed".into()))?;
        let mut wrapped = vec![WRAP_VERSION];
        wrapped.extend_from_slice(&rec.versions.to_be_bytes());
        wrapped.extend_from_slice(&nonce);
        wrapped.extend_from_slice(&sealed);
        Ok(DataKey { plaintext, wrapped })
    }

    fn decrypt_data_key(
        key_id: String,
        wrapped: Vec<u8>,
        context: EncryptionContext,
    ) -> Result<Vec<u8>, Error> {
        let rec = resolve(&key_id)?;
        usable(&rec)?;
        let bad = || {
            Error::Denied("InvalidCiphertextException: the wrapped key does not unwrap under this key and context".into())
        };
        if wrapped.len() < 17 || wrapped[0] != WRAP_VERSION {
            return Err(bad());
        }
        let version = u32::from_be_bytes([wrapped[1], wrapped[2], wrapped[3], wrapped[4]]);
        if version == 0 || version > rec.versions {
            return Err(bad());
        }
        cipher(&rec.id, version)?
            .decrypt(
                Nonce::from_slice(&wrapped[5..17]),
                Payload {
                    msg: &wrapped[17..],
                    aad: &aad(&rec.id, &context),
                },
            )
            .map_err(|_| bad())
    }

    fn create_key(description: String) -> Result<KeyMetadata, Error> {
        create(&description, None).map(|r| metadata(&r))
    }

    fn list_keys() -> Result<Vec<KeyMetadata>, Error> {
        let mut out = Vec::new();
        for name in kv::list_keys("key/", 10_000) {
            if let Some(rec) = load(name.trim_start_matches("key/"))
                && !expire(&rec)?
            {
                out.push(metadata(&rec));
            }
        }
        Ok(out)
    }

    fn describe_key(key_id: String) -> Result<KeyMetadata, Error> {
        resolve(&key_id).map(|r| metadata(&r))
    }

    fn enable_key(key_id: String) -> Result<KeyMetadata, Error> {
        update(&key_id, |rec| {
            if rec.state == "pending-deletion" {
                return Err(invalid_state(rec, "is pending deletion"));
            }
            rec.state = "enabled".into();
            Ok(())
        })
    }

    fn disable_key(key_id: String) -> Result<KeyMetadata, Error> {
        update(&key_id, |rec| {
            if rec.state == "pending-deletion" {
                return Err(invalid_state(rec, "is pending deletion"));
            }
            rec.state = "disabled".into();
            Ok(())
        })
    }

    fn rotate_key(key_id: String) -> Result<KeyMetadata, Error> {
        update(&key_id, |rec| {
            usable(rec)?;
            let next = rec.versions + 1;
            new_material(&rec.id, next)?;
            rec.versions = next;
            Ok(())
        })
    }

    fn schedule_key_deletion(key_id: String, pending_days: u32) -> Result<KeyMetadata, Error> {
        if !(MIN_DELETION_DAYS..=MAX_DELETION_DAYS).contains(&pending_days) {
            return Err(Error::Invalid(format!(
                "ValidationException: the pending window must be {MIN_DELETION_DAYS} to {MAX_DELETION_DAYS} days"
            )));
        }
        update(&key_id, |rec| {
            if rec.state == "pending-deletion" {
                return Err(invalid_state(rec, "is already pending deletion"));
            }
            rec.state = "pending-deletion".into();
            rec.deletion_at_ms = Some(now_ms() + pending_days as u64 * DAY_MS);
            Ok(())
        })
    }

    fn cancel_key_deletion(key_id: String) -> Result<KeyMetadata, Error> {
        update(&key_id, |rec| {
            if rec.state != "pending-deletion" {
                return Err(invalid_state(rec, "is not pending deletion"));
            }
            // As in AWS KMS, a key whose deletion was cancelled comes back disabled.
            rec.state = "disabled".into();
            rec.deletion_at_ms = None;
            Ok(())
        })
    }
}

export!(LocalKms);
