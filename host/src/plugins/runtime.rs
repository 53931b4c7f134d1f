//! The wasmtime `Engine` shared by every plugin, the epoch ticker, one `Linker` per world, and
//! compiling / classifying / pre-instantiating components.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::{authenticator, authorizer, key_provider, replication_target};
use super::state::PluginState;
use super::{PluginError, World};

/// How often the epoch advances; CPU limits are enforced to this granularity.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Largest memory limit a plugin may ask for.
pub const MAX_MEMORY_BYTES: usize = 1 << 30;

/// A component ready to instantiate quickly, with its typed entry points.
pub enum Prepared {
    Authenticator(authenticator::AuthenticatorPre<PluginState>),
    Authorizer(authorizer::AuthorizerPre<PluginState>),
    KeyProvider(key_provider::KeyProviderPre<PluginState>),
    ReplicationTarget(replication_target::ReplicationTargetPre<PluginState>),
}

/// A live instance's typed exports.
pub enum Bindings {
    Authenticator(authenticator::Authenticator),
    Authorizer(authorizer::Authorizer),
    KeyProvider(key_provider::KeyProvider),
    ReplicationTarget(replication_target::ReplicationTarget),
}

pub struct Runtime {
    pub engine: Engine,
    authenticator: Linker<PluginState>,
    authorizer: Linker<PluginState>,
    key_provider: Linker<PluginState>,
    replication_target: Linker<PluginState>,
}

fn runtime_error(e: impl std::fmt::Display) -> PluginError {
    PluginError::Runtime(e.to_string())
}

impl Runtime {
    /// Builds the engine. `pool_slots` sizes the pooling allocator (the server: room for every
    /// plugin's instances, twice over for reloads); `None` (the one-shot `plugin check`) uses
    /// on-demand allocation. `max_memory` is the largest memory limit of any plugin.
    pub fn new(pool_slots: Option<u32>, max_memory: usize) -> Result<Arc<Runtime>, PluginError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.max_wasm_stack(1 << 20);
        if let Some(slots) = pool_slots {
            let mut pool = PoolingAllocationConfig::default();
            pool.total_component_instances(slots)
                .total_core_instances(slots * 8)
                .total_memories(slots * 2)
                .total_tables(slots * 8)
                .total_stacks(slots)
                .max_memory_size(max_memory.clamp(1 << 20, MAX_MEMORY_BYTES))
                .max_core_instances_per_component(64)
                .max_memories_per_component(8)
                .max_tables_per_component(64);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&config).map_err(runtime_error)?;
        let linker = |world: World| -> Result<Linker<PluginState>, PluginError> {
            let mut l = Linker::new(&engine);
            wasmtime_wasi::p2::add_to_linker_async(&mut l).map_err(runtime_error)?;
            wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut l).map_err(runtime_error)?;
            type D = wasmtime::component::HasSelf<PluginState>;
            match world {
                World::Authenticator => {
                    authenticator::Authenticator::add_to_linker::<_, D>(&mut l, |s| s)
                }
                World::Authorizer => authorizer::Authorizer::add_to_linker::<_, D>(&mut l, |s| s),
                World::KeyProvider => {
                    key_provider::KeyProvider::add_to_linker::<_, D>(&mut l, |s| s)
                }
                World::ReplicationTarget => {
                    replication_target::ReplicationTarget::add_to_linker::<_, D>(&mut l, |s| s)
                }
            }
            .map_err(runtime_error)?;
            Ok(l)
        };
        let runtime = Runtime {
            authenticator: linker(World::Authenticator)?,
            authorizer: linker(World::Authorizer)?,
            key_provider: linker(World::KeyProvider)?,
            replication_target: linker(World::ReplicationTarget)?,
            engine,
        };
        let runtime = Arc::new(runtime);
        spawn_epoch_ticker(&runtime);
        Ok(runtime)
    }

    pub fn compile(&self, name: &str, path: &Path) -> Result<Component, PluginError> {
        let bytes = std::fs::read(path).map_err(|e| PluginError::Read {
            name: name.to_string(),
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Component::new(&self.engine, &bytes).map_err(|e| PluginError::Compile {
            name: name.to_string(),
            message: format!("{e:#}"),
        })
    }

    /// The worlds whose export interface the component exports (normally exactly one).
    pub fn worlds_of(&self, component: &Component) -> Vec<World> {
        let exports: Vec<String> = self.exports_of(component);
        World::ALL
            .into_iter()
            .filter(|w| exports.iter().any(|e| e == w.export()))
            .collect()
    }

    pub fn exports_of(&self, component: &Component) -> Vec<String> {
        component
            .component_type()
            .exports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    pub fn imports_of(&self, component: &Component) -> Vec<String> {
        component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// Links a component against `world`'s host imports and typed exports.
    pub fn prepare(
        &self,
        name: &str,
        world: World,
        component: &Component,
    ) -> Result<Prepared, PluginError> {
        let found = self.worlds_of(component);
        if !found.contains(&world) {
            return Err(PluginError::WrongWorld {
                name: name.to_string(),
                expected: world.as_str(),
                found: if found.is_empty() {
                    "no Sluice plugin world".to_string()
                } else {
                    found
                        .iter()
                        .map(|w| format!("world `{}`", w.as_str()))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            });
        }
        let inst = |e: wasmtime::Error| PluginError::Instantiate {
            name: name.to_string(),
            message: format!("{e:#}"),
        };
        Ok(match world {
            World::Authenticator => Prepared::Authenticator(
                authenticator::AuthenticatorPre::new(
                    self.authenticator
                        .instantiate_pre(component)
                        .map_err(inst)?,
                )
                .map_err(inst)?,
            ),
            World::Authorizer => Prepared::Authorizer(
                authorizer::AuthorizerPre::new(
                    self.authorizer.instantiate_pre(component).map_err(inst)?,
                )
                .map_err(inst)?,
            ),
            World::KeyProvider => Prepared::KeyProvider(
                key_provider::KeyProviderPre::new(
                    self.key_provider.instantiate_pre(component).map_err(inst)?,
                )
                .map_err(inst)?,
            ),
            World::ReplicationTarget => Prepared::ReplicationTarget(
                replication_target::ReplicationTargetPre::new(
                    self.replication_target
                        .instantiate_pre(component)
                        .map_err(inst)?,
                )
                .map_err(inst)?,
            ),
        })
    }
}

impl Prepared {
    pub async fn instantiate(
        &self,
        store: &mut wasmtime::Store<PluginState>,
    ) -> wasmtime::Result<Bindings> {
        Ok(match self {
            Prepared::Authenticator(p) => {
                Bindings::Authenticator(p.instantiate_async(store).await?)
            }
            Prepared::Authorizer(p) => Bindings::Authorizer(p.instantiate_async(store).await?),
            Prepared::KeyProvider(p) => Bindings::KeyProvider(p.instantiate_async(store).await?),
            Prepared::ReplicationTarget(p) => {
                Bindings::ReplicationTarget(p.instantiate_async(store).await?)
            }
        })
    }
}

/// One thread advances the engine's epoch; it stops when the runtime is dropped.
fn spawn_epoch_ticker(runtime: &Arc<Runtime>) {
    let weak = Arc::downgrade(runtime);
    let spawned = std::thread::Builder::new()
        .name("sluice-epoch".into())
        .spawn(move || {
            while let Some(runtime) = weak.upgrade() {
                runtime.engine.increment_epoch();
                drop(runtime);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the plugin epoch thread: {e}");
    }
}
