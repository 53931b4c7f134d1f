//! Cryptography owned by the host: the node master key that seals secrets at rest.
//! Envelope encryption of object bodies (SSE) arrives here in a later issue.

pub mod master_key;
