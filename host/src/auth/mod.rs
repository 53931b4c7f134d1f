//! Identity: who a request acts as. The IAM store holds users and access keys; the S3 layer
//! verifies signatures and turns the result into a [`Principal`].

pub mod chain;
pub mod groups;
pub mod iam;
pub mod sts;
pub mod target_credentials;

use serde::Serialize;

/// The identity a request acts as, after authentication.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
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
    /// Vouched for by an authenticator plugin; `id` is `<plugin>:<subject>`, so it can never be
    /// root or an IAM user.
    External {
        id: String,
        plugin: String,
        subject: String,
        name: String,
        groups: Vec<String>,
        attributes: Vec<(String, String)>,
        access_key: Option<String>,
    },
    /// A session of an assumed role (STS temporary credentials). `id` is the role's id, so
    /// every session of a role acts as the role.
    Role {
        id: String,
        role: String,
        session: String,
        /// Who assumed the role (`<plugin>:<subject>` or an IAM user id).
        source: String,
        access_key: String,
    },
    Anonymous,
}

impl Principal {
    /// Canonical id (the S3 Owner ID); none for anonymous.
    pub fn id(&self) -> Option<&str> {
        match self {
            Principal::Root { id, .. }
            | Principal::User { id, .. }
            | Principal::External { id, .. }
            | Principal::Role { id, .. } => Some(id),
            Principal::Anonymous => None,
        }
    }

    pub fn display_name(&self) -> &str {
        match self {
            Principal::Root { .. } => "root",
            Principal::User { name, .. } | Principal::External { name, .. } => name,
            Principal::Role { role, .. } => role,
            Principal::Anonymous => "anonymous",
        }
    }

    pub fn is_root(&self) -> bool {
        matches!(self, Principal::Root { .. })
    }
}
