//! WebAssembly plugins: one wasmtime `Engine` (pooling allocator, epoch interruption), one
//! `InstancePre` per plugin, a bounded pool of warm instances per plugin, per-call limits, and
//! hot reload. A plugin that traps, loops, eats memory or returns garbage fails its own call,
//! never the server.

pub mod bindings;
pub mod check;
pub mod host_imports;
pub mod kv;
pub mod plugin;
pub mod registry;
pub mod runtime;
pub mod state;
pub mod stats;

use std::path::PathBuf;
use std::time::Duration;

pub use plugin::LoadedPlugin;
pub use registry::Registry;
pub use runtime::Runtime;

/// The four plugin worlds of `sluice:plugin@0.1.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    Authenticator,
    Authorizer,
    KeyProvider,
    ReplicationTarget,
}

impl World {
    pub const ALL: [World; 4] = [
        World::Authenticator,
        World::Authorizer,
        World::KeyProvider,
        World::ReplicationTarget,
    ];

    pub fn parse(name: &str) -> Option<World> {
        World::ALL.into_iter().find(|w| w.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            World::Authenticator => "authenticator",
            World::Authorizer => "authorizer",
            World::KeyProvider => "key-provider",
            World::ReplicationTarget => "replication-target",
        }
    }

    /// The interface a component of this world exports besides `plugin-info`.
    pub fn export(self) -> &'static str {
        match self {
            World::Authenticator => "sluice:plugin/authentication@0.1.0",
            World::Authorizer => "sluice:plugin/authorization@0.1.0",
            World::KeyProvider => "sluice:plugin/key-management@0.1.0",
            World::ReplicationTarget => "sluice:plugin/replication@0.1.0",
        }
    }
}

/// What to do when a plugin call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Failure {
    /// The request fails (AccessDenied, or ServiceUnavailable when transient).
    Closed,
    /// Authenticators only: skip this plugin as if it did not know the request. Never an allow.
    Open,
}

/// Per-plugin resource limits.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginLimits {
    /// Linear memory an instance may grow to.
    pub memory_bytes: usize,
    /// Guest CPU time per call (epoch deadline).
    pub cpu_time: Duration,
    /// Wall-clock time per call, including waits on `wasi:http` and for a free instance.
    pub timeout: Duration,
    /// Warm instances kept (and the most calls in flight at once).
    pub instances: usize,
    /// An instance is replaced after this many calls.
    pub recycle_after: u64,
    /// How long an authenticator's credential answer is cached.
    pub cache_ttl: Duration,
    /// How long an authenticator's "unknown key" answer is cached.
    pub negative_ttl: Duration,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            memory_bytes: 64 << 20,
            cpu_time: Duration::from_millis(100),
            timeout: Duration::from_secs(2),
            instances: 8,
            recycle_after: 10_000,
            cache_ttl: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(5),
        }
    }
}

/// A `[[plugins]]` entry, validated.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    pub name: String,
    pub world: World,
    pub path: PathBuf,
    pub config: serde_json::Value,
    pub limits: PluginLimits,
    pub allowed_hosts: Vec<String>,
    pub failure: Failure,
}

/// Why a plugin could not be loaded or a call failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin `{name}`: cannot read `{path}`: {message}")]
    Read {
        name: String,
        path: PathBuf,
        message: String,
    },
    #[error("plugin `{name}`: not a loadable component: {message}")]
    Compile { name: String, message: String },
    #[error("plugin `{name}`: implements {found}, but the config says world `{expected}`")]
    WrongWorld {
        name: String,
        expected: &'static str,
        found: String,
    },
    #[error("plugin `{name}`: cannot be instantiated: {message}")]
    Instantiate { name: String, message: String },
    #[error("plugin `{name}`: health check failed: {message}")]
    Unhealthy { name: String, message: String },
    #[error("plugin `{name}`: exceeded its CPU time limit")]
    CpuLimit { name: String },
    #[error("plugin `{name}`: exceeded its memory limit")]
    MemoryLimit { name: String },
    #[error("plugin `{name}`: call timed out")]
    Timeout { name: String },
    #[error("plugin `{name}`: trapped: {message}")]
    Trap { name: String, message: String },
    #[error("plugin `{name}`: bad output: {message}")]
    BadOutput { name: String, message: String },
    #[error("plugin `{name}`: {error}")]
    Plugin {
        name: String,
        error: bindings::types::Error,
    },
    #[error("plugin runtime: {0}")]
    Runtime(String),
}

impl PluginError {
    /// Transient failures (time limits, unavailable upstreams) answer 503 so clients retry;
    /// everything else is an AccessDenied.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            PluginError::CpuLimit { .. }
                | PluginError::Timeout { .. }
                | PluginError::Plugin {
                    error: bindings::types::Error::Unavailable(_),
                    ..
                }
        )
    }
}
