//! Identity: who a request acts as. The IAM store holds users and access keys; the S3 layer
//! verifies signatures and turns the result into a [`Principal`].

pub mod iam;

use serde::Serialize;

/// The identity a request acts as, after authentication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Principal {
    Root {
        id: String,
        access_key: String,
    },
    User {
        id: String,
        name: String,
        access_key: String,
    },
    Anonymous,
}

impl Principal {
    /// Canonical id (the S3 Owner ID); none for anonymous.
    pub fn id(&self) -> Option<&str> {
        match self {
            Principal::Root { id, .. } | Principal::User { id, .. } => Some(id),
            Principal::Anonymous => None,
        }
    }

    pub fn display_name(&self) -> &str {
        match self {
            Principal::Root { .. } => "root",
            Principal::User { name, .. } => name,
            Principal::Anonymous => "anonymous",
        }
    }

    pub fn is_root(&self) -> bool {
        matches!(self, Principal::Root { .. })
    }
}
