//! Configuration: a TOML file, `SLUICE_*` environment overrides and command-line flags, merged
//! and validated once at start-up (flags > env > file > built-in defaults).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::plugins::{Failure, PluginLimits, PluginSpec, World};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file `{path}`: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("unknown environment variable `{0}` (not a Sluice setting)")]
    UnknownEnv(String),
    #[error("bad value for `{key}`: {message}")]
    BadValue { key: String, message: String },
}

/// The settings as a file spells them. Every field is optional so that the file, the environment
/// and the flags can each supply part of them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    address: Option<String>,
    data_dir: Option<PathBuf>,
    region: Option<String>,
    domains: Option<Vec<String>>,
    master_key_file: Option<PathBuf>,
    master_key: Option<String>,
    root_access_key: Option<String>,
    root_secret_key: Option<String>,
    log: Option<String>,
    max_object_size: Option<u64>,
    inline_threshold: Option<u64>,
    cors_origins: Option<Vec<String>>,
    post_max_size: Option<u64>,
    max_put_size: Option<u64>,
    max_parts: Option<u64>,
    max_header_bytes: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_address: Option<String>,
    trusted_proxies: Option<Vec<String>>,
    allow_insecure_secrets: Option<bool>,
    policies_dir: Option<PathBuf>,
    lifecycle_interval_secs: Option<u64>,
    lifecycle_day_secs: Option<u64>,
    plugins: Option<Vec<PluginEntry>>,
    replication_targets: Option<Vec<TargetEntry>>,
}

/// A `[[replication_targets]]` entry as the file spells it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetEntry {
    name: String,
    plugin: String,
    endpoint: String,
    region: Option<String>,
    /// Deliveries to this target in flight at once (default 4).
    workers: Option<usize>,
}

/// A `[[plugins]]` entry as the file spells it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginEntry {
    name: String,
    world: String,
    path: PathBuf,
    #[serde(default)]
    config: toml::Table,
    #[serde(default)]
    limits: PluginLimitsEntry,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    failure: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginLimitsEntry {
    memory_mb: Option<u64>,
    cpu_ms: Option<u64>,
    timeout_ms: Option<u64>,
    instances: Option<u64>,
    recycle_after: Option<u64>,
    cache_ttl_secs: Option<u64>,
    negative_ttl_secs: Option<u64>,
}

/// Flags given on the command line; they win over everything else.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ConfigFlags {
    /// Configuration file (TOML); paths inside it are relative to the file
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Data directory (metadata and object bodies)
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Listen address for S3
    #[arg(long, global = true)]
    pub address: Option<String>,
    /// Region reported and expected in signatures
    #[arg(long, global = true)]
    pub region: Option<String>,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub address: SocketAddr,
    pub data_dir: PathBuf,
    pub region: String,
    pub domains: Vec<String>,
    pub master_key_file: PathBuf,
    pub master_key: Option<String>,
    pub root_access_key: Option<String>,
    pub root_secret_key: Option<String>,
    pub log: String,
    pub max_object_size: u64,
    pub inline_threshold: u64,
    /// Origins allowed by the server-wide CORS default (buckets without their own rules).
    pub cors_origins: Vec<String>,
    /// Largest file a browser POST upload may carry.
    pub post_max_size: u64,
    /// Largest single PUT or part (S3: 5 GiB).
    pub max_put_size: u64,
    /// Most parts in a multipart upload (S3: 10000).
    pub max_parts: u32,
    /// Largest request head (request line and headers) accepted.
    pub max_header_bytes: usize,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// A second listener for HTTPS next to plain HTTP on `address`.
    pub tls_address: Option<SocketAddr>,
    /// Peers whose X-Forwarded-Host / X-Forwarded-Proto are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Accept SSE-C keys over plain HTTP from non-loopback peers (AWS never does).
    pub allow_insecure_secrets: bool,
    /// Directory of `*.cedar` policy files, watched for changes; `None` = the built-in defaults.
    pub policies_dir: Option<PathBuf>,
    /// How often bucket lifecycle rules are applied (seconds).
    pub lifecycle_interval_secs: u64,
    /// How long a lifecycle day lasts (seconds; 86400). Shorter days are for trying rules out.
    pub lifecycle_day_secs: u64,
    /// Where replication rules may send writes (`arn:sluice:replication::NAME:BUCKET`).
    pub replication_targets: Vec<crate::replication::TargetSpec>,
    /// WebAssembly plugins, in the order they are consulted.
    pub plugins: Vec<PluginSpec>,
}

/// An IP network (`10.0.0.0/8`, `::1/128`, or a bare address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(text: &str) -> Option<IpNet> {
        let (a, p) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: std::net::IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse().ok().filter(|n| *n <= max)?,
            None => max,
        };
        Some(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map(std::net::IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (std::net::IpAddr::V4(net), std::net::IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (std::net::IpAddr::V6(net), std::net::IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Environment variables that name a setting (plus `SLUICE_CONFIG`, which names the file).
const ENV_KEYS: &[&str] = &[
    "address",
    "data_dir",
    "region",
    "domains",
    "master_key_file",
    "master_key",
    "root_access_key",
    "root_secret_key",
    "log",
    "max_object_size",
    "inline_threshold",
    "cors_origins",
    "post_max_size",
    "max_put_size",
    "max_parts",
    "max_header_bytes",
    "tls_cert",
    "tls_key",
    "tls_address",
    "trusted_proxies",
    "allow_insecure_secrets",
    "policies_dir",
    "lifecycle_interval_secs",
    "lifecycle_day_secs",
];

/// S3's largest single PUT (and part).
pub const MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// S3's largest object (assembled from parts).
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024 * 1024;

impl Config {
    /// How long a lifecycle day lasts, in milliseconds.
    pub fn lifecycle_day_ms(&self) -> i64 {
        self.lifecycle_day_secs.saturating_mul(1000) as i64
    }

    /// Loads the configuration from the process environment and the given flags.
    pub fn load(flags: &ConfigFlags) -> Result<Config, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("SLUICE_"))
            .collect();
        Self::load_from(flags, &env)
    }

    fn load_from(
        flags: &ConfigFlags,
        env: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let config_path = flags
            .config
            .clone()
            .or_else(|| env.get("SLUICE_CONFIG").map(PathBuf::from));
        let (mut file, base) = match &config_path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                let file: FileConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.clone(),
                    message: e.to_string().trim().replace('\n', " "),
                })?;
                let base = path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from("."));
                (file, Some(base))
            }
            None => (FileConfig::default(), None),
        };
        // Paths in a file are relative to that file.
        if let Some(base) = &base {
            for p in [
                &mut file.data_dir,
                &mut file.master_key_file,
                &mut file.tls_cert,
                &mut file.tls_key,
                &mut file.policies_dir,
            ]
            .into_iter()
            .flatten()
            {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
            for plugin in file.plugins.iter_mut().flatten() {
                if plugin.path.is_relative() {
                    plugin.path = base.join(&plugin.path);
                }
            }
        }

        for (name, value) in env {
            if name == "SLUICE_CONFIG" {
                continue;
            }
            let key = name["SLUICE_".len()..].to_ascii_lowercase();
            if !ENV_KEYS.contains(&key.as_str()) {
                return Err(ConfigError::UnknownEnv(name.clone()));
            }
            let v = value.clone();
            match key.as_str() {
                "address" => file.address = Some(v),
                "data_dir" => file.data_dir = Some(v.into()),
                "region" => file.region = Some(v),
                "domains" => file.domains = Some(split_list(&v)),
                "master_key_file" => file.master_key_file = Some(v.into()),
                "master_key" => file.master_key = Some(v),
                "root_access_key" => file.root_access_key = Some(v),
                "root_secret_key" => file.root_secret_key = Some(v),
                "log" => file.log = Some(v),
                "max_object_size" => file.max_object_size = Some(parse_u64(name, &v)?),
                "inline_threshold" => file.inline_threshold = Some(parse_u64(name, &v)?),
                "cors_origins" => file.cors_origins = Some(split_list(&v)),
                "post_max_size" => file.post_max_size = Some(parse_u64(name, &v)?),
                "max_put_size" => file.max_put_size = Some(parse_u64(name, &v)?),
                "max_parts" => file.max_parts = Some(parse_u64(name, &v)?),
                "max_header_bytes" => file.max_header_bytes = Some(parse_u64(name, &v)?),
                "tls_cert" => file.tls_cert = Some(v.into()),
                "policies_dir" => file.policies_dir = Some(v.into()),
                "lifecycle_interval_secs" => {
                    file.lifecycle_interval_secs = Some(parse_u64(name, &v)?)
                }
                "lifecycle_day_secs" => file.lifecycle_day_secs = Some(parse_u64(name, &v)?),
                "tls_key" => file.tls_key = Some(v.into()),
                "tls_address" => file.tls_address = Some(v),
                "trusted_proxies" => file.trusted_proxies = Some(split_list(&v)),
                "allow_insecure_secrets" => {
                    file.allow_insecure_secrets = Some(match v.trim() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(ConfigError::BadValue {
                                key: name.clone(),
                                message: format!("`{v}` is not true or false"),
                            });
                        }
                    })
                }
                _ => return Err(ConfigError::UnknownEnv(name.clone())),
            }
        }

        if let Some(a) = &flags.address {
            file.address = Some(a.clone());
        }
        if let Some(d) = &flags.data_dir {
            file.data_dir = Some(d.clone());
        }
        if let Some(r) = &flags.region {
            file.region = Some(r.clone());
        }

        let address_text = file.address.unwrap_or_else(|| "127.0.0.1:9000".into());
        let address: SocketAddr = address_text.parse().map_err(|_| ConfigError::BadValue {
            key: "address".into(),
            message: format!("`{address_text}` is not an IP:port socket address"),
        })?;
        let region = file.region.unwrap_or_else(|| "us-east-1".into());
        if region.is_empty()
            || !region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(ConfigError::BadValue {
                key: "region".into(),
                message: format!("`{region}` is not a region name"),
            });
        }
        let domains = file.domains.unwrap_or_default();
        for d in &domains {
            if d.is_empty() || d.contains('/') || d.contains(' ') {
                return Err(ConfigError::BadValue {
                    key: "domains".into(),
                    message: format!("`{d}` is not a domain name"),
                });
            }
        }
        if let (Some(_), None) | (None, Some(_)) = (&file.root_access_key, &file.root_secret_key) {
            return Err(ConfigError::BadValue {
                key: "root_access_key".into(),
                message: "root_access_key and root_secret_key must be set together".into(),
            });
        }
        if let Some(ak) = &file.root_access_key
            && (ak.len() < 3 || ak.len() > 128 || !ak.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            return Err(ConfigError::BadValue {
                key: "root_access_key".into(),
                message: "must be 3..128 ASCII letters and digits".into(),
            });
        }
        if let Some(sk) = &file.root_secret_key
            && (sk.len() < 8 || sk.len() > 128)
        {
            return Err(ConfigError::BadValue {
                key: "root_secret_key".into(),
                message: "must be 8..128 characters".into(),
            });
        }
        let log = file.log.unwrap_or_else(|| "info".into());
        if tracing_subscriber::EnvFilter::try_new(&log).is_err() {
            return Err(ConfigError::BadValue {
                key: "log".into(),
                message: format!("`{log}` is not a log filter"),
            });
        }
        let max_object_size = file.max_object_size.unwrap_or(MAX_OBJECT_SIZE);
        if max_object_size == 0 || max_object_size > MAX_OBJECT_SIZE {
            return Err(ConfigError::BadValue {
                key: "max_object_size".into(),
                message: format!("must be 1..={MAX_OBJECT_SIZE}"),
            });
        }
        let post_max_size = file.post_max_size.unwrap_or(MAX_PUT_SIZE);
        if post_max_size == 0 || post_max_size > MAX_PUT_SIZE {
            return Err(ConfigError::BadValue {
                key: "post_max_size".into(),
                message: format!("must be 1..={MAX_PUT_SIZE}"),
            });
        }
        let max_put_size = file.max_put_size.unwrap_or(MAX_PUT_SIZE);
        if max_put_size == 0 || max_put_size > MAX_PUT_SIZE {
            return Err(ConfigError::BadValue {
                key: "max_put_size".into(),
                message: format!("must be 1..={MAX_PUT_SIZE}"),
            });
        }
        let max_parts = file.max_parts.unwrap_or(10_000);
        if max_parts == 0 || max_parts > 10_000 {
            return Err(ConfigError::BadValue {
                key: "max_parts".into(),
                message: "must be 1..=10000".into(),
            });
        }
        let max_parts = max_parts as u32;
        let lifecycle_interval_secs = file.lifecycle_interval_secs.unwrap_or(3600);
        if !(1..=86_400).contains(&lifecycle_interval_secs) {
            return Err(ConfigError::BadValue {
                key: "lifecycle_interval_secs".into(),
                message: "must be 1..=86400".into(),
            });
        }
        let lifecycle_day_secs = file.lifecycle_day_secs.unwrap_or(86_400);
        if !(1..=86_400).contains(&lifecycle_day_secs) {
            return Err(ConfigError::BadValue {
                key: "lifecycle_day_secs".into(),
                message: "must be 1..=86400".into(),
            });
        }
        let max_header_bytes = file.max_header_bytes.unwrap_or(64 * 1024);
        if !(8192..=1024 * 1024).contains(&max_header_bytes) {
            return Err(ConfigError::BadValue {
                key: "max_header_bytes".into(),
                message: "must be 8192..=1048576".into(),
            });
        }
        let max_header_bytes = max_header_bytes as usize;
        if file.tls_cert.is_some() != file.tls_key.is_some() {
            return Err(ConfigError::BadValue {
                key: "tls_cert".into(),
                message: "tls_cert and tls_key must be set together".into(),
            });
        }
        let tls_address = match &file.tls_address {
            None => None,
            Some(t) => {
                if file.tls_cert.is_none() {
                    return Err(ConfigError::BadValue {
                        key: "tls_address".into(),
                        message: "needs tls_cert and tls_key".into(),
                    });
                }
                Some(t.parse::<SocketAddr>().map_err(|_| ConfigError::BadValue {
                    key: "tls_address".into(),
                    message: format!("`{t}` is not an IP:port socket address"),
                })?)
            }
        };
        let mut trusted_proxies = Vec::new();
        for p in file.trusted_proxies.unwrap_or_default() {
            trusted_proxies.push(IpNet::parse(&p).ok_or_else(|| ConfigError::BadValue {
                key: "trusted_proxies".into(),
                message: format!("`{p}` is not an IP address or CIDR network"),
            })?);
        }
        let inline_threshold = file.inline_threshold.unwrap_or(64 * 1024);
        if inline_threshold > 1024 * 1024 {
            return Err(ConfigError::BadValue {
                key: "inline_threshold".into(),
                message: "must be at most 1048576".into(),
            });
        }
        let plugins = file
            .plugins
            .take()
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, entry)| plugin_spec(i, entry))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, p) in plugins.iter().enumerate() {
            if plugins[..i].iter().any(|q| q.name == p.name) {
                return Err(ConfigError::BadValue {
                    key: format!("plugins[{i}].name"),
                    message: format!("plugin name `{}` is used twice", p.name),
                });
            }
        }
        let replication_targets = file
            .replication_targets
            .take()
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, entry)| target_spec(i, entry, &plugins, &region))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, t) in replication_targets.iter().enumerate() {
            if replication_targets[..i].iter().any(|o| o.name == t.name) {
                return Err(ConfigError::BadValue {
                    key: format!("replication_targets[{i}].name"),
                    message: format!("target name `{}` is used twice", t.name),
                });
            }
        }
        Ok(Config {
            plugins,
            replication_targets,
            address,
            data_dir: file.data_dir.unwrap_or_else(|| PathBuf::from("./data")),
            region,
            domains,
            master_key_file: file
                .master_key_file
                .unwrap_or_else(|| PathBuf::from("./sluice-master.key")),
            master_key: file.master_key,
            root_access_key: file.root_access_key,
            root_secret_key: file.root_secret_key,
            log,
            max_object_size,
            inline_threshold,
            cors_origins: file.cors_origins.unwrap_or_default(),
            post_max_size,
            max_put_size,
            max_parts,
            max_header_bytes,
            tls_cert: file.tls_cert,
            tls_key: file.tls_key,
            tls_address,
            trusted_proxies,
            allow_insecure_secrets: file.allow_insecure_secrets.unwrap_or(false),
            policies_dir: file.policies_dir,
            lifecycle_interval_secs,
            lifecycle_day_secs,
        })
    }
}

fn target_spec(
    i: usize,
    entry: TargetEntry,
    plugins: &[PluginSpec],
    region: &str,
) -> Result<crate::replication::TargetSpec, ConfigError> {
    let bad = |field: &str, message: String| ConfigError::BadValue {
        key: format!("replication_targets[{i}].{field}"),
        message,
    };
    let name_ok = !entry.name.is_empty()
        && entry.name.len() <= 63
        && entry
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !name_ok {
        return Err(bad(
            "name",
            format!(
                "`{}` must be 1..=63 lower-case letters, digits or `-`",
                entry.name
            ),
        ));
    }
    match plugins.iter().find(|p| p.name == entry.plugin) {
        Some(p) if p.world == World::ReplicationTarget => {}
        Some(_) => {
            return Err(bad(
                "plugin",
                format!("plugin `{}` is not a replication-target", entry.plugin),
            ));
        }
        None => {
            return Err(bad(
                "plugin",
                format!("no [[plugins]] entry is named `{}`", entry.plugin),
            ));
        }
    }
    let endpoint = entry.endpoint.trim_end_matches('/').to_string();
    let scheme_ok = endpoint.starts_with("http://") || endpoint.starts_with("https://");
    if !scheme_ok || endpoint.parse::<http::Uri>().is_err() {
        return Err(bad(
            "endpoint",
            format!("`{}` is not an http:// or https:// URL", entry.endpoint),
        ));
    }
    let workers = entry.workers.unwrap_or(crate::replication::DEFAULT_WORKERS);
    if !(1..=64).contains(&workers) {
        return Err(bad("workers", format!("{workers} must be 1..=64")));
    }
    Ok(crate::replication::TargetSpec {
        name: entry.name,
        plugin: entry.plugin,
        endpoint,
        region: entry.region.unwrap_or_else(|| region.to_string()),
        workers,
    })
}

fn plugin_spec(i: usize, entry: PluginEntry) -> Result<PluginSpec, ConfigError> {
    let bad = |field: &str, message: String| ConfigError::BadValue {
        key: format!("plugins[{i}].{field}"),
        message,
    };
    let name = entry.name;
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(bad(
            "name",
            format!("`{name}` must be 1..=64 lower-case letters, digits, `-` or `_`"),
        ));
    }
    let world = World::parse(&entry.world).ok_or_else(|| {
        bad(
            "world",
            format!(
                "`{}` is not one of authenticator, authorizer, key-provider, replication-target",
                entry.world
            ),
        )
    })?;
    let failure = match entry.failure.as_deref() {
        None | Some("closed") => Failure::Closed,
        Some("open") if world == World::Authenticator => Failure::Open,
        Some("open") => {
            return Err(bad(
                "failure",
                "`open` is allowed for authenticators only".into(),
            ));
        }
        Some(other) => return Err(bad("failure", format!("`{other}` is not closed or open"))),
    };
    let defaults = PluginLimits::default();
    let l = entry.limits;
    let ranged = |field: &str, v: Option<u64>, min: u64, max: u64, default: u64| {
        let v = v.unwrap_or(default);
        if v < min || v > max {
            return Err(bad(
                &format!("limits.{field}"),
                format!("must be {min}..={max}"),
            ));
        }
        Ok(v)
    };
    let max_mb = (crate::plugins::runtime::MAX_MEMORY_BYTES >> 20) as u64;
    let limits = PluginLimits {
        memory_bytes: (ranged("memory_mb", l.memory_mb, 1, max_mb, 64)? << 20) as usize,
        cpu_time: std::time::Duration::from_millis(ranged(
            "cpu_ms",
            l.cpu_ms,
            1,
            60_000,
            defaults.cpu_time.as_millis() as u64,
        )?),
        timeout: std::time::Duration::from_millis(ranged(
            "timeout_ms",
            l.timeout_ms,
            1,
            300_000,
            defaults.timeout.as_millis() as u64,
        )?),
        instances: ranged("instances", l.instances, 1, 64, defaults.instances as u64)? as usize,
        recycle_after: ranged(
            "recycle_after",
            l.recycle_after,
            1,
            u64::MAX,
            defaults.recycle_after,
        )?,
        cache_ttl: std::time::Duration::from_secs(ranged(
            "cache_ttl_secs",
            l.cache_ttl_secs,
            0,
            86_400,
            defaults.cache_ttl.as_secs(),
        )?),
        negative_ttl: std::time::Duration::from_secs(ranged(
            "negative_ttl_secs",
            l.negative_ttl_secs,
            0,
            3_600,
            defaults.negative_ttl.as_secs(),
        )?),
    };
    for host in &entry.allowed_hosts {
        if host.is_empty() || host.contains('/') || host.contains(' ') || host.contains('*') {
            return Err(bad(
                "allowed_hosts",
                format!("`{host}` is not a host or host:port"),
            ));
        }
    }
    let config = serde_json::to_value(&entry.config)
        .map_err(|e| bad("config", format!("cannot be passed to the plugin: {e}")))?;
    Ok(PluginSpec {
        name,
        world,
        path: entry.path,
        config,
        limits,
        allowed_hosts: entry.allowed_hosts,
        failure,
    })
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn parse_u64(key: &str, v: &str) -> Result<u64, ConfigError> {
    v.trim().parse().map_err(|_| ConfigError::BadValue {
        key: key.into(),
        message: format!("`{v}` is not a non-negative integer"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn networks_match_addresses() {
        let net = IpNet::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(
            IpNet::parse("127.0.0.1")
                .unwrap()
                .contains("127.0.0.1".parse().unwrap())
        );
        assert!(
            IpNet::parse("::1")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(IpNet::parse("10.0.0.0/33").is_none());
    }

    #[test]
    fn defaults_apply_without_file_or_env() {
        let c = Config::load_from(&ConfigFlags::default(), &env(&[])).unwrap();
        assert_eq!(c.address.to_string(), "127.0.0.1:9000");
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn unknown_env_var_is_named() {
        let e =
            Config::load_from(&ConfigFlags::default(), &env(&[("SLUICE_BOGUS", "1")])).unwrap_err();
        assert!(e.to_string().contains("SLUICE_BOGUS"), "{e}");
    }

    #[test]
    fn flags_win_over_env() {
        let flags = ConfigFlags {
            address: Some("127.0.0.1:1234".into()),
            ..Default::default()
        };
        let c = Config::load_from(
            &flags,
            &env(&[
                ("SLUICE_ADDRESS", "127.0.0.1:5555"),
                ("SLUICE_DOMAINS", "a.test, b.test"),
            ]),
        )
        .unwrap();
        assert_eq!(c.address.port(), 1234);
        assert_eq!(c.domains, vec!["a.test", "b.test"]);
    }

    #[test]
    fn unknown_file_key_and_bad_value_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "bogus = 1\n").unwrap();
        let flags = ConfigFlags {
            config: Some(path.clone()),
            ..Default::default()
        };
        let e = Config::load_from(&flags, &env(&[])).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        std::fs::write(&path, "address = \"nope\"\ndata_dir = \"d\"\n").unwrap();
        let e = Config::load_from(&flags, &env(&[])).unwrap_err();
        assert!(e.to_string().contains("address"), "{e}");
        std::fs::write(&path, "data_dir = \"d\"\n").unwrap();
        let c = Config::load_from(&flags, &env(&[])).unwrap();
        assert_eq!(c.data_dir, dir.path().join("d"));
    }
}
