//! Sluice: an S3-compatible object store whose gates (authentication, authorization, key
//! providers, replication targets) are pluggable. This crate is the host.

pub mod admin_cli;
pub mod auth;
pub mod checksum;
pub mod config;
pub mod crypto;
pub mod lifecycle;
pub(crate) mod locks;
pub mod node;
pub mod plugins;
pub mod policy;
pub mod replication;
pub mod s3;
pub mod server;
pub mod store;
