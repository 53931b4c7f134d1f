//! Replication: bucket rules (which writes go where) and the targets they name. The durable
//! queue and its workers build on these.

pub mod admin;
pub mod rules;
pub mod worker;

pub use rules::{Destination, ReplicationConfig, Rule, RuleFilter};

/// A `[[replication_targets]]` entry: a name rules refer to, the `replication-target` plugin that
/// carries writes there, and where it sends them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    pub name: String,
    /// Name of a `[[plugins]]` entry whose world is `replication-target`.
    pub plugin: String,
    /// Base URL of the destination service (`http://host:port`).
    pub endpoint: String,
    /// Region the destination expects in signatures.
    pub region: String,
    /// Deliveries to this target in flight at once. Each target has its own workers, so a
    /// slow or broken target delays only its own queue.
    pub workers: usize,
}

/// Deliveries per target in flight at once unless `workers` says otherwise.
pub const DEFAULT_WORKERS: usize = 4;
