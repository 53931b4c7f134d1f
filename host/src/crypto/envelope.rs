//! What is stored about an encrypted object or upload: the SSE mode, who wraps its data key,
//! the wrapped key and the object's binding. Never the plaintext data key, never an SSE-C key.

use serde::{Deserialize, Serialize};

use super::segments::PieceSeal;

/// The server-side encryption modes S3 has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SseMode {
    /// `x-amz-server-side-encryption: AES256`: data keys wrapped by a key derived from the node
    /// master key.
    S3,
    /// `aws:kms` (and `aws:kms:dsse`): data keys from a key-provider plugin.
    Kms,
    /// SSE-C: data keys wrapped by the customer's key, which is never stored.
    Customer,
}

impl SseMode {
    /// The `x-amz-server-side-encryption` value (none for SSE-C, as S3 answers).
    pub fn header_value(self) -> Option<&'static str> {
        match self {
            SseMode::S3 => Some("AES256"),
            SseMode::Kms => Some("aws:kms"),
            SseMode::Customer => None,
        }
    }
}

/// Encryption of one object (or of one multipart upload, whose parts share it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    pub mode: SseMode,
    /// The key provider that wrapped the data key (a plugin's name; `sluice` for SSE-S3,
    /// `customer` for SSE-C).
    pub provider: String,
    /// SSE-KMS: the key as the provider names it (its ARN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// SSE-KMS: the encryption context, as a JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// SSE-C: base64 MD5 of the customer key, to answer with and to spot a wrong key early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_key_md5: Option<String>,
    #[serde(default)]
    pub bucket_key: bool,
    /// SSE-KMS asked as `aws:kms:dsse`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dsse: bool,
    /// The wrapped data key (base64).
    pub wrapped_key: String,
    /// 16 random bytes (hex) bound into every segment: segments of another object never open.
    pub binding: String,
    /// How a single-piece body was sealed (a multipart object keeps one per part).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub piece: Option<PieceSeal>,
}

impl Encryption {
    /// The `x-amz-server-side-encryption` value (none for SSE-C, as S3 answers).
    pub fn header_value(&self) -> Option<&'static str> {
        match self.mode {
            SseMode::Kms if self.dsse => Some("aws:kms:dsse"),
            m => m.header_value(),
        }
    }

    pub fn binding_bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        if let Ok(raw) = hex::decode(&self.binding)
            && raw.len() == 16
        {
            out.copy_from_slice(&raw);
        }
        out
    }

    /// The KMS encryption context as pairs, sorted by name.
    pub fn context_pairs(&self) -> Vec<(String, String)> {
        let Some(text) = &self.context else {
            return Vec::new();
        };
        let map: std::collections::BTreeMap<String, String> =
            serde_json::from_str(text).unwrap_or_default();
        map.into_iter().collect()
    }
}
