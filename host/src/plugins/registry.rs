//! The plugins a server runs, in config order, and their hot reload: on a change of the
//! `.wasm` file (polled) or on SIGHUP, the new version is loaded and health-checked beside the
//! old one and only then swapped in; a broken replacement is logged and the old one kept.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use redb::Database;

use super::kv::PluginKv;
use super::state::PluginShared;
use super::stats::Stats;
use super::{LoadedPlugin, PluginError, PluginSpec, Runtime, World};
use crate::crypto::master_key::MasterKey;
use crate::locks;

/// How often plugin files are checked for changes.
const POLL: Duration = Duration::from_secs(1);

/// Identity of a file version: modification time and size.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

pub struct Slot {
    pub spec: PluginSpec,
    pub stats: Arc<Stats>,
    shared: Arc<PluginShared>,
    current: RwLock<Arc<LoadedPlugin>>,
    stamp: RwLock<Stamp>,
    /// The last reload error, shown by the admin API until a reload succeeds.
    pub last_error: RwLock<Option<String>>,
}

impl Slot {
    pub fn current(&self) -> Arc<LoadedPlugin> {
        locks::read(&self.current).clone()
    }
}

type ReloadHook = Box<dyn Fn(&str) + Send + Sync>;

pub struct Registry {
    pub runtime: Option<Arc<Runtime>>,
    pub slots: Vec<Slot>,
    /// Called with a plugin's name after it was replaced (caches drop its answers).
    on_reload: RwLock<Vec<ReloadHook>>,
}

impl Registry {
    /// A registry with no plugins (no engine is built).
    pub fn empty() -> Arc<Registry> {
        Arc::new(Registry {
            runtime: None,
            slots: Vec::new(),
            on_reload: RwLock::new(Vec::new()),
        })
    }

    /// Loads every plugin; the first that fails stops start-up with its error.
    pub async fn load(
        specs: &[PluginSpec],
        db: Option<Arc<Database>>,
        master: Option<&MasterKey>,
    ) -> Result<Arc<Registry>, PluginError> {
        if specs.is_empty() {
            return Ok(Registry::empty());
        }
        // Every plugin's pool, twice (a reload runs beside the old version), plus headroom.
        let slots: usize = specs.iter().map(|s| s.limits.instances * 2).sum::<usize>() + 16;
        let max_memory = specs
            .iter()
            .map(|s| s.limits.memory_bytes)
            .max()
            .unwrap_or_default();
        let runtime = Runtime::new(Some(slots.min(10_000) as u32), max_memory)?;
        let mut slots = Vec::new();
        for spec in specs {
            let shared = Arc::new(PluginShared {
                name: spec.name.clone(),
                config: spec.config.clone(),
                kv: db.clone().map(|db| PluginKv::new(db, &spec.name)),
                sealing: master.map(|m| m.derive(format!("plugin/{}", spec.name).as_bytes())),
                allowed_hosts: spec.allowed_hosts.clone(),
                denied_requests: Default::default(),
            });
            let stats = Arc::new(Stats::default());
            let file_stamp = stamp(&spec.path);
            let loaded =
                LoadedPlugin::load(runtime.clone(), spec.clone(), shared.clone(), stats.clone())
                    .await?;
            tracing::info!(
                plugin = %spec.name,
                world = spec.world.as_str(),
                version = %loaded.info.1,
                "plugin loaded"
            );
            slots.push(Slot {
                spec: spec.clone(),
                stats,
                shared,
                current: RwLock::new(loaded),
                stamp: RwLock::new(file_stamp),
                last_error: RwLock::new(None),
            });
        }
        Ok(Arc::new(Registry {
            runtime: Some(runtime),
            slots,
            on_reload: RwLock::new(Vec::new()),
        }))
    }

    /// The loaded authenticators, in config order.
    pub fn authenticators(&self) -> impl Iterator<Item = Arc<LoadedPlugin>> + '_ {
        self.slots
            .iter()
            .filter(|s| s.spec.world == World::Authenticator)
            .map(Slot::current)
    }

    /// The loaded authorizers, in config order.
    pub fn authorizers(&self) -> impl Iterator<Item = Arc<LoadedPlugin>> + '_ {
        self.slots
            .iter()
            .filter(|s| s.spec.world == World::Authorizer)
            .map(Slot::current)
    }

    /// The loaded plugin named `name`, if any.
    pub fn named(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.slots
            .iter()
            .find(|s| s.spec.name == name)
            .map(Slot::current)
    }

    /// The loaded key providers, in config order.
    pub fn key_providers(&self) -> impl Iterator<Item = Arc<LoadedPlugin>> + '_ {
        self.slots
            .iter()
            .filter(|s| s.spec.world == World::KeyProvider)
            .map(Slot::current)
    }

    pub fn has_authorizers(&self) -> bool {
        self.slots.iter().any(|s| s.spec.world == World::Authorizer)
    }

    pub fn on_reload(&self, f: impl Fn(&str) + Send + Sync + 'static) {
        if let Ok(mut hooks) = self.on_reload.write() {
            hooks.push(Box::new(f));
        }
    }

    /// Reloads the plugins whose file changed (all of them when `force`).
    pub async fn reload(&self, force: bool) {
        let Some(runtime) = &self.runtime else {
            return;
        };
        for slot in &self.slots {
            let now = stamp(&slot.spec.path);
            let old = slot.stamp.read().map(|s| *s).unwrap_or(None);
            if !force && now == old {
                continue;
            }
            if let Ok(mut s) = slot.stamp.write() {
                *s = now;
            }
            let result = LoadedPlugin::load(
                runtime.clone(),
                slot.spec.clone(),
                slot.shared.clone(),
                slot.stats.clone(),
            )
            .await;
            match result {
                Ok(loaded) => {
                    tracing::info!(
                        plugin = %slot.spec.name,
                        version = %loaded.info.1,
                        "plugin reloaded"
                    );
                    slot.stats
                        .reloads
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    *locks::write(&slot.current) = loaded;
                    if let Ok(mut e) = slot.last_error.write() {
                        *e = None;
                    }
                    if let Ok(hooks) = self.on_reload.read() {
                        for hook in hooks.iter() {
                            hook(&slot.spec.name);
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(
                        plugin = %slot.spec.name,
                        "reload refused, the running version stays: {e}"
                    );
                    slot.stats
                        .reload_failures
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if let Ok(mut last) = slot.last_error.write() {
                        *last = Some(e.to_string());
                    }
                }
            }
        }
    }

    /// Watches plugin files and SIGHUP for as long as the registry lives.
    pub fn spawn_reloader(self: &Arc<Self>) {
        if self.slots.is_empty() {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut hup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            loop {
                let force = match &mut hup {
                    Some(hup) => tokio::select! {
                        _ = hup.recv() => true,
                        _ = tokio::time::sleep(POLL) => false,
                    },
                    None => {
                        tokio::time::sleep(POLL).await;
                        false
                    }
                };
                let Some(registry) = weak.upgrade() else {
                    return;
                };
                registry.reload(force).await;
            }
        });
    }

    /// The admin view: one JSON object per plugin.
    pub fn describe(&self) -> serde_json::Value {
        use std::sync::atomic::Ordering::Relaxed;
        let list: Vec<serde_json::Value> = self
            .slots
            .iter()
            .map(|slot| {
                let current = slot.current();
                let (p50, p99) = slot.stats.percentiles();
                serde_json::json!({
                    "name": slot.spec.name,
                    "world": slot.spec.world.as_str(),
                    "path": slot.spec.path.display().to_string(),
                    "plugin_name": current.info.0,
                    "version": current.info.1,
                    "failure": slot.spec.failure,
                    "loaded_at": current.loaded_at,
                    "calls": slot.stats.calls.load(Relaxed),
                    "errors": slot.stats.errors.load(Relaxed),
                    "traps": slot.stats.traps.load(Relaxed),
                    "timeouts": slot.stats.timeouts.load(Relaxed),
                    "instantiations": slot.stats.instantiations.load(Relaxed),
                    "idle_instances": current.idle_instances(),
                    "denied_http_requests": current.denied_requests(),
                    "reloads": slot.stats.reloads.load(Relaxed),
                    "reload_failures": slot.stats.reload_failures.load(Relaxed),
                    "last_reload_error": slot.last_error.read().ok().and_then(|e| e.clone()),
                    "p50_us": p50,
                    "p99_us": p99,
                    "limits": slot.spec.limits,
                    "allowed_hosts": slot.spec.allowed_hosts,
                })
            })
            .collect();
        serde_json::json!({ "plugins": list })
    }
}
