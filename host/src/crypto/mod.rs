//! Cryptography owned by the host: the node master key that seals secrets at rest, and envelope
//! encryption of object bodies (SSE-S3, SSE-KMS, SSE-C) with data keys from the key-provider
//! chain.

pub mod envelope;
pub mod file_envelope;
pub mod keys;
pub mod kms_admin;
pub mod master_key;
pub mod segments;

pub use envelope::{Encryption, SseMode};
pub use keys::{CustomerKey, KeyError, KeyRequest, KeyService};
pub use segments::{ObjectCipher, PieceSeal, Sealer};
