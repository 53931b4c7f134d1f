//! The key-provider chain: where each object's data key comes from and how it is unwrapped.
//!
//! - SSE-S3: the host wraps data keys itself under a key derived from the node master key.
//! - SSE-KMS: the configured key-provider plugin generates and unwraps them under its keys.
//! - SSE-C: the host wraps them under the customer's key, which it never stores.
//!
//! Unwrapped data keys are cached in memory only, for [`CACHE_TTL`], and zeroized on drop; a key
//! that is disabled or scheduled for deletion through Sluice is dropped from the cache at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::envelope::{Encryption, SseMode};
use super::master_key::MasterKey;
use super::segments::ObjectCipher;
use crate::plugins::plugin::KeyAdmin;
use crate::plugins::{LoadedPlugin, PluginError, Registry};

/// How long an unwrapped data key stays in memory.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
const CACHE_MAX: usize = 4096;
/// How long a KMS key's ARN and state are trusted without asking the provider again.
const DESCRIBE_TTL: Duration = Duration::from_secs(5);
/// The key SSE-KMS uses when the request names none (the provider creates it on first use).
pub const DEFAULT_KMS_KEY: &str = "alias/aws/s3";
const SSE_S3_PROVIDER: &str = "sluice";
const SSE_C_PROVIDER: &str = "customer";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no key provider plugin is configured for SSE-KMS")]
    NoProvider,
    /// A KMS error with its code (`KMS.DisabledException`, `KMS.NotFoundException`, ...).
    #[error("{code}: {message}")]
    Kms { code: String, message: String },
    #[error("the SSE-C key does not match the key the object was encrypted with")]
    CustomerKeyMismatch,
    #[error("{0}")]
    Plugin(PluginError),
    #[error("stored encryption metadata cannot be used: {0}")]
    Corrupt(&'static str),
}

/// A customer-provided key (SSE-C), checked against its MD5.
pub struct CustomerKey {
    pub key: Zeroizing<[u8; 32]>,
    /// Base64 MD5 of the key, as the client sent it.
    pub md5: String,
}

/// What a new object's encryption is asked to be.
pub struct KeyRequest<'a> {
    pub mode: SseMode,
    pub kms_key_id: Option<&'a str>,
    /// SSE-KMS context given by the client (else `aws:s3:arn` of the object).
    pub context: Option<BTreeMap<String, String>>,
    pub customer: Option<&'a CustomerKey>,
    pub bucket_key: bool,
    /// `aws:kms:dsse` was asked for (answered as such; sealed like `aws:kms`).
    pub dsse: bool,
    pub bucket: &'a str,
    pub key: &'a str,
}

struct Cached {
    at: Instant,
    kms_key_id: Option<String>,
    key: Zeroizing<[u8; 32]>,
}

pub struct KeyService {
    sse_s3: MasterKey,
    plugins: Arc<Registry>,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
    described: Mutex<HashMap<String, (Instant, String)>>,
    /// Bumped by [`KeyService::forget`]: an unwrap that began before a disable does not cache
    /// its key after it.
    generation: AtomicU64,
}

fn random_key() -> Zeroizing<[u8; 32]> {
    let mut k = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(k.as_mut());
    k
}

/// A data key a provider handed over: copied into a zeroizing array, and the provider's buffer
/// wiped whether or not it was the right length.
fn take_key(mut plain: Vec<u8>) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let key = key_from(&plain);
    zeroize::Zeroize::zeroize(&mut plain);
    key
}

fn key_from(raw: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let mut k = Zeroizing::new([0u8; 32]);
    if raw.len() != 32 {
        return Err(KeyError::Corrupt("a data key is not 32 bytes"));
    }
    k.copy_from_slice(raw);
    Ok(k)
}

/// KMS failures come back from plugins as `<Name>Exception: message`; they keep that code.
fn kms_error(e: PluginError) -> KeyError {
    use crate::plugins::bindings::types::Error as E;
    if let PluginError::Plugin {
        error: E::Invalid(m) | E::Denied(m) | E::Internal(m) | E::Unavailable(m),
        ..
    } = &e
        && let Some((code, message)) = m.split_once(':')
        && code.ends_with("Exception")
        && code.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return KeyError::Kms {
            code: format!("KMS.{code}"),
            message: message.trim().to_string(),
        };
    }
    KeyError::Plugin(e)
}

impl KeyService {
    pub fn new(master: &MasterKey, plugins: Arc<Registry>) -> KeyService {
        KeyService {
            sse_s3: master.derive(b"sse-s3"),
            plugins,
            cache: Mutex::new(HashMap::new()),
            described: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    /// The key provider SSE-KMS uses: the first configured one.
    pub fn provider(&self) -> Result<Arc<LoadedPlugin>, KeyError> {
        self.plugins
            .key_providers()
            .next()
            .ok_or(KeyError::NoProvider)
    }

    /// A fresh data key for a new object or upload, and its encryption record (without a piece).
    pub async fn new_key(
        &self,
        req: &KeyRequest<'_>,
    ) -> Result<(Encryption, ObjectCipher), KeyError> {
        let mut binding = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut binding);
        let aad = |label: &[u8]| [label, &binding[..]].concat();
        let mut enc = Encryption {
            mode: req.mode,
            provider: String::new(),
            kms_key_id: None,
            context: None,
            customer_key_md5: None,
            bucket_key: req.bucket_key,
            dsse: req.dsse && req.mode == SseMode::Kms,
            wrapped_key: String::new(),
            binding: hex::encode(binding),
            piece: None,
        };
        let key = match req.mode {
            SseMode::S3 => {
                let key = random_key();
                enc.provider = SSE_S3_PROVIDER.into();
                enc.wrapped_key = B64.encode(self.sse_s3.seal(&aad(b"sse-s3"), key.as_ref()));
                key
            }
            SseMode::Customer => {
                let customer = req.customer.ok_or(KeyError::CustomerKeyMismatch)?;
                let key = random_key();
                enc.provider = SSE_C_PROVIDER.into();
                enc.customer_key_md5 = Some(customer.md5.clone());
                enc.wrapped_key = B64.encode(customer_wrap(customer, &aad(b"sse-c"), &key));
                key
            }
            SseMode::Kms => {
                let provider = self.provider()?;
                let asked = req.kms_key_id.unwrap_or(DEFAULT_KMS_KEY);
                let arn = self.describe(&provider, asked).await?;
                let context = match &req.context {
                    Some(c) => c.clone(),
                    None => BTreeMap::from([(
                        "aws:s3:arn".to_string(),
                        format!("arn:aws:s3:::{}/{}", req.bucket, req.key),
                    )]),
                };
                let pairs: Vec<(String, String)> = context.clone().into_iter().collect();
                let dk = provider
                    .generate_data_key(&arn, &pairs)
                    .await
                    .map_err(kms_error)?;
                let key = take_key(dk.plaintext)?;
                enc.provider = provider.spec.name.clone();
                enc.kms_key_id = Some(arn);
                enc.context = serde_json::to_string(&context).ok();
                enc.wrapped_key = B64.encode(&dk.wrapped);
                key
            }
        };
        Ok((enc, ObjectCipher::new(&key, binding)))
    }

    /// The ARN of a KMS key (cached briefly); fails as the provider does for unknown keys.
    async fn describe(&self, provider: &LoadedPlugin, key_id: &str) -> Result<String, KeyError> {
        if let Ok(d) = self.described.lock()
            && let Some((at, arn)) = d.get(key_id)
            && at.elapsed() < DESCRIBE_TTL
        {
            return Ok(arn.clone());
        }
        let meta = provider
            .key_admin(KeyAdmin::Describe(key_id.to_string()))
            .await
            .map_err(kms_error)?;
        let arn = meta
            .first()
            .map(|m| m.arn.clone())
            .ok_or(KeyError::Corrupt("describe-key returned nothing"))?;
        if let Ok(mut d) = self.described.lock() {
            if d.len() > CACHE_MAX {
                d.clear();
            }
            d.insert(key_id.to_string(), (Instant::now(), arn.clone()));
        }
        Ok(arn)
    }

    /// Fails as the provider does when `key_id` (or the default key) cannot be used.
    pub async fn check_kms_key(&self, key_id: Option<&str>) -> Result<String, KeyError> {
        let provider = self.provider()?;
        self.describe(&provider, key_id.unwrap_or(DEFAULT_KMS_KEY))
            .await
    }

    /// The data key of a stored object or upload.
    pub async fn open(
        &self,
        enc: &Encryption,
        customer: Option<&CustomerKey>,
    ) -> Result<ObjectCipher, KeyError> {
        let binding = enc.binding_bytes();
        let aad = |label: &[u8]| [label, &binding[..]].concat();
        let wrapped = B64
            .decode(&enc.wrapped_key)
            .map_err(|_| KeyError::Corrupt("wrapped key is not base64"))?;
        let key = match enc.mode {
            SseMode::S3 => {
                let plain = self
                    .sse_s3
                    .open(&aad(b"sse-s3"), &wrapped)
                    .map_err(|_| KeyError::Corrupt("SSE-S3 key does not unwrap"))?;
                key_from(&plain)?
            }
            SseMode::Customer => {
                let customer = customer.ok_or(KeyError::CustomerKeyMismatch)?;
                if enc.customer_key_md5.as_deref() != Some(customer.md5.as_str()) {
                    return Err(KeyError::CustomerKeyMismatch);
                }
                customer_unwrap(customer, &aad(b"sse-c"), &wrapped)?
            }
            SseMode::Kms => self.kms_unwrap(enc, &wrapped).await?,
        };
        Ok(ObjectCipher::new(&key, binding))
    }

    async fn kms_unwrap(
        &self,
        enc: &Encryption,
        wrapped: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        let key_id = enc
            .kms_key_id
            .as_deref()
            .ok_or(KeyError::Corrupt("SSE-KMS object without a key id"))?;
        let context = enc.context_pairs();
        let mut h = Sha256::new();
        for part in [enc.provider.as_bytes(), key_id.as_bytes(), wrapped] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        h.update(enc.context.as_deref().unwrap_or("").as_bytes());
        let slot: [u8; 32] = h.finalize().into();
        if let Ok(c) = self.cache.lock()
            && let Some(hit) = c.get(&slot)
            && hit.at.elapsed() < CACHE_TTL
        {
            return Ok(hit.key.clone());
        }
        let provider = self
            .plugins
            .key_providers()
            .find(|p| p.spec.name == enc.provider)
            .ok_or_else(|| KeyError::Kms {
                code: "KMS.KMSInternalException".into(),
                message: format!("the key provider `{}` is not loaded", enc.provider),
            })?;
        let generation = self.generation.load(Ordering::SeqCst);
        let key = take_key(
            provider
                .decrypt_data_key(key_id, wrapped, &context)
                .await
                .map_err(kms_error)?,
        )?;
        if let Ok(mut c) = self.cache.lock()
            && self.generation.load(Ordering::SeqCst) == generation
        {
            c.retain(|_, v| v.at.elapsed() < CACHE_TTL);
            if c.len() >= CACHE_MAX {
                c.clear();
            }
            c.insert(
                slot,
                Cached {
                    at: Instant::now(),
                    kms_key_id: Some(key_id.to_string()),
                    key: key.clone(),
                },
            );
        }
        Ok(key)
    }

    /// A data key for client-side encryption (`sluice encrypt`): the key's ARN, the plaintext
    /// key and its wrapping.
    pub async fn client_data_key(
        &self,
        key_id: Option<&str>,
        context: &[(String, String)],
    ) -> Result<(String, Zeroizing<[u8; 32]>, Vec<u8>), KeyError> {
        let provider = self.provider()?;
        let arn = self
            .describe(&provider, key_id.unwrap_or(DEFAULT_KMS_KEY))
            .await?;
        let dk = provider
            .generate_data_key(&arn, context)
            .await
            .map_err(kms_error)?;
        Ok((arn, take_key(dk.plaintext)?, dk.wrapped))
    }

    /// Unwraps a data key made by [`KeyService::client_data_key`].
    pub async fn client_decrypt(
        &self,
        key_id: &str,
        wrapped: &[u8],
        context: &[(String, String)],
    ) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        let provider = self.provider()?;
        take_key(
            provider
                .decrypt_data_key(key_id, wrapped, context)
                .await
                .map_err(kms_error)?,
        )
    }

    /// Drops every cached data key (and description) of a KMS key, after it was disabled or
    /// scheduled for deletion, so the change takes effect at once.
    pub fn forget(&self, key_arn: &str, key_id: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut c) = self.cache.lock() {
            c.retain(|_, v| {
                v.kms_key_id
                    .as_deref()
                    .is_none_or(|k| k != key_arn && k != key_id)
            });
        }
        if let Ok(mut d) = self.described.lock() {
            d.clear();
        }
    }

    /// Drops expired data keys from memory (run periodically, so a quiet server does not keep
    /// them).
    pub fn sweep(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.retain(|_, v| v.at.elapsed() < CACHE_TTL);
        }
    }

    /// Sweeps the data-key cache every few seconds for as long as the service lives.
    pub fn spawn_sweeper(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(keys) => keys.sweep(),
                    None => return,
                }
            }
        });
    }

    /// A key provider admin call through the configured provider.
    pub async fn admin(
        &self,
        op: KeyAdmin,
    ) -> Result<
        Vec<crate::plugins::bindings::key_provider::exports::sluice::plugin::key_management::KeyMetadata>,
        KeyError,
    >{
        let provider = self.provider()?;
        let forget = matches!(op, KeyAdmin::Disable(_) | KeyAdmin::ScheduleDeletion(..));
        let keys = provider.key_admin(op).await.map_err(kms_error)?;
        if forget {
            for k in &keys {
                self.forget(&k.arn, &k.key_id);
            }
        }
        Ok(keys)
    }
}

fn customer_wrap(customer: &CustomerKey, aad: &[u8], key: &[u8; 32]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(customer.key.as_ref().into());
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: key, aad })
        .expect("AES-GCM over 32 bytes cannot fail");
    [&nonce[..], &ct].concat()
}

fn customer_unwrap(
    customer: &CustomerKey,
    aad: &[u8],
    wrapped: &[u8],
) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    if wrapped.len() < 12 {
        return Err(KeyError::Corrupt("SSE-C wrapped key is too short"));
    }
    let cipher = Aes256Gcm::new(customer.key.as_ref().into());
    let plain = Zeroizing::new(
        cipher
            .decrypt(
                Nonce::from_slice(&wrapped[..12]),
                Payload {
                    msg: &wrapped[12..],
                    aad,
                },
            )
            .map_err(|_| KeyError::CustomerKeyMismatch)?,
    );
    key_from(&plain)
}
