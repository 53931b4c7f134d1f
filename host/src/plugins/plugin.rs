//! One loaded plugin: its prepared component, a bounded pool of warm instances and the typed
//! calls the host makes. Every call runs under the plugin's limits: a free instance must be
//! found and the call finished within the wall-clock timeout, guest CPU time is bounded by the
//! epoch deadline, memory by `StoreLimits`. An instance that failed in any way is dropped,
//! never reused; a healthy one is recycled after `recycle_after` calls.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use wasmtime::{CallHook, Store, Trap, UpdateDeadline};

use super::bindings::authorizer::exports::sluice::plugin::authorization::{
    AccessRequest, Decision as AuthzDecision,
};
use super::bindings::key_provider::exports::sluice::plugin::key_management::{
    DataKey, KeyMetadata,
};
use super::bindings::replication_target::exports::sluice::plugin::replication::{
    DeleteInfo, ObjectInfo, TargetInfo,
};
use super::bindings::types::{self, Credential, Principal, RequestView};
use super::runtime::{Bindings, EPOCH_TICK, Prepared, Runtime};
use super::state::{PluginShared, PluginState};
use super::stats::Stats;
use super::{PluginError, PluginSpec, World};

/// Calls a `plugin-info` export, which every world has, whatever world `$bindings` is.
macro_rules! plugin_info {
    ($bindings:expr, $call:ident, $store:expr) => {
        match $bindings {
            Bindings::Authenticator(b) => b.sluice_plugin_plugin_info().$call($store).await,
            Bindings::Authorizer(b) => b.sluice_plugin_plugin_info().$call($store).await,
            Bindings::KeyProvider(b) => b.sluice_plugin_plugin_info().$call($store).await,
            Bindings::ReplicationTarget(b) => b.sluice_plugin_plugin_info().$call($store).await,
        }
    };
}

struct Warm {
    store: Store<PluginState>,
    bindings: Bindings,
    calls: u64,
}

pub struct LoadedPlugin {
    pub spec: PluginSpec,
    /// `(name, version)` from the plugin's own `info()`.
    pub info: (String, String),
    pub stats: Arc<Stats>,
    /// When this version was loaded (Unix seconds).
    pub loaded_at: u64,
    runtime: Arc<Runtime>,
    shared: Arc<PluginShared>,
    prepared: Prepared,
    idle: Mutex<Vec<Warm>>,
    slots: Arc<Semaphore>,
}

/// Largest string or list a plugin may hand back in one field.
const MAX_FIELD: usize = 4096;
const MAX_ITEMS: usize = 256;

/// A replication put may take one second more (wall clock and guest CPU) per this many bytes
/// of body on top of the plugin's limits, so large objects are not cut off by limits meant for
/// small calls.
pub const REPLICATION_BYTES_PER_SECOND: u64 = 4 << 20;

fn ticks(d: Duration) -> u64 {
    (d.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64
}

impl LoadedPlugin {
    /// Compiles, links, instantiates and health-checks the plugin at `spec.path`.
    pub async fn load(
        runtime: Arc<Runtime>,
        spec: PluginSpec,
        shared: Arc<PluginShared>,
        stats: Arc<Stats>,
    ) -> Result<Arc<LoadedPlugin>, PluginError> {
        let (rt, name, world, path) = (
            runtime.clone(),
            spec.name.clone(),
            spec.world,
            spec.path.clone(),
        );
        let prepared = tokio::task::spawn_blocking(move || {
            let component = rt.compile(&name, &path)?;
            rt.prepare(&name, world, &component)
        })
        .await
        .map_err(|e| PluginError::Runtime(e.to_string()))??;
        let mut plugin = LoadedPlugin {
            slots: Arc::new(Semaphore::new(spec.limits.instances.max(1))),
            spec,
            info: (String::new(), String::new()),
            stats,
            loaded_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            runtime,
            shared,
            prepared,
            idle: Mutex::new(Vec::new()),
        };
        let info = plugin.info().await?;
        plugin.info = info;
        if let Err(message) = plugin.health().await? {
            return Err(PluginError::Unhealthy {
                name: plugin.spec.name.clone(),
                message,
            });
        }
        Ok(Arc::new(plugin))
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn world(&self) -> World {
        self.spec.world
    }

    pub fn idle_instances(&self) -> usize {
        self.idle.lock().map(|i| i.len()).unwrap_or(0)
    }

    pub fn denied_requests(&self) -> u64 {
        self.shared
            .denied_requests
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn instantiate(&self) -> Result<Warm, PluginError> {
        let mut store = Store::new(
            &self.runtime.engine,
            PluginState::new(self.shared.clone(), self.spec.limits.memory_bytes),
        );
        store.limiter(|s| &mut s.limits);
        store.call_hook(|mut ctx, hook| {
            let timing = &mut ctx.data_mut().timing;
            match hook {
                CallHook::CallingHost => timing.host_since = Some(Instant::now()),
                CallHook::ReturningFromHost => {
                    if let Some(since) = timing.host_since.take() {
                        timing.host_total += since.elapsed();
                    }
                }
                _ => {}
            }
            Ok(())
        });
        // The deadline charges guest time only: time spent in host calls (waiting on
        // `wasi:http`) is handed back; the wall-clock timeout bounds that.
        store.epoch_deadline_callback(|ctx| {
            let timing = &ctx.data().timing;
            let used = timing.guest_time();
            if used >= timing.cpu_budget || timing.elapsed() >= timing.wall_budget {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Continue(ticks(timing.cpu_budget - used)))
            }
        });
        let budget = self.spec.limits.cpu_time;
        store
            .data_mut()
            .timing
            .begin(budget, self.spec.limits.timeout);
        store.set_epoch_deadline(ticks(budget));
        self.stats
            .instantiations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let bindings = self.prepared.instantiate(&mut store).await.map_err(|e| {
            let message = format!("{e:#}");
            if message.contains("concurrent") || message.contains("pooling") {
                // Every slot of the instance pool is taken: retry later.
                tracing::warn!(plugin = %self.spec.name, "no free instance slot: {message}");
                PluginError::Timeout {
                    name: self.spec.name.clone(),
                }
            } else {
                self.classify(e)
            }
        })?;
        Ok(Warm {
            store,
            bindings,
            calls: 0,
        })
    }

    fn classify(&self, e: wasmtime::Error) -> PluginError {
        let name = self.spec.name.clone();
        if let Some(trap) = e.downcast_ref::<Trap>() {
            self.stats
                .traps
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return match trap {
                Trap::Interrupt => PluginError::CpuLimit { name },
                Trap::AllocationTooLarge | Trap::StackOverflow => PluginError::MemoryLimit { name },
                other => PluginError::Trap {
                    name,
                    message: other.to_string(),
                },
            };
        }
        let message = format!("{e:#}");
        self.stats
            .traps
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if message.contains("forcing trap when growing memory")
            || message.contains("memory") && (message.contains("limit") || message.contains("grow"))
        {
            return PluginError::MemoryLimit { name };
        }
        PluginError::Trap { name, message }
    }

    /// Runs one call on a warm instance under the plugin's limits.
    async fn call<R, F>(&self, f: F) -> Result<R, PluginError>
    where
        F: for<'a> FnOnce(
            &'a mut Store<PluginState>,
            &'a Bindings,
        ) -> std::pin::Pin<
            Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>,
        >,
    {
        self.call_with_allowance(Duration::ZERO, f).await
    }

    /// A call whose wall-clock and CPU limits are the plugin's plus `allowance` (a streamed
    /// object body needs time in proportion to its size).
    async fn call_with_allowance<R, F>(&self, allowance: Duration, f: F) -> Result<R, PluginError>
    where
        F: for<'a> FnOnce(
            &'a mut Store<PluginState>,
            &'a Bindings,
        ) -> std::pin::Pin<
            Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>,
        >,
    {
        let started = Instant::now();
        let mut limits = self.spec.limits.clone();
        limits.timeout += allowance;
        limits.cpu_time += allowance;
        let limits = &limits;
        let result = tokio::time::timeout(limits.timeout, async {
            let _permit = self
                .slots
                .acquire()
                .await
                .map_err(|e| PluginError::Runtime(e.to_string()))?;
            let idle = self.idle.lock().ok().and_then(|mut i| i.pop());
            let mut warm = match idle {
                Some(w) => w,
                None => self.instantiate().await?,
            };
            warm.store
                .data_mut()
                .timing
                .begin(limits.cpu_time, limits.timeout);
            warm.store.set_epoch_deadline(ticks(limits.cpu_time));
            let Warm {
                store, bindings, ..
            } = &mut warm;
            let out = f(store, bindings).await.map_err(|e| self.classify(e))?;
            warm.calls += 1;
            if warm.calls < limits.recycle_after
                && let Ok(mut idle) = self.idle.lock()
            {
                idle.push(warm);
            }
            Ok(out)
        })
        .await
        .unwrap_or_else(|_| {
            self.stats
                .timeouts
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(PluginError::Timeout {
                name: self.spec.name.clone(),
            })
        });
        self.stats.record(started.elapsed(), result.is_ok());
        result
    }

    /// An error the plugin returned. Refusals (`denied`, `invalid`) are answers; the others
    /// count as errors of the plugin.
    fn plugin_error(&self, error: types::Error) -> PluginError {
        if matches!(
            error,
            types::Error::Unavailable(_) | types::Error::Internal(_)
        ) {
            self.stats
                .errors
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        PluginError::Plugin {
            name: self.spec.name.clone(),
            error,
        }
    }

    fn bad_output(&self, message: impl Into<String>) -> PluginError {
        self.stats
            .errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        PluginError::BadOutput {
            name: self.spec.name.clone(),
            message: message.into(),
        }
    }

    pub async fn info(&self) -> Result<(String, String), PluginError> {
        let (name, version) = self
            .call(|store, b| Box::pin(async move { plugin_info!(b, call_info, store) }))
            .await?;
        if name.len() > 128 || version.len() > 64 {
            return Err(self.bad_output("info() is too long"));
        }
        Ok((name, version))
    }

    pub async fn health(&self) -> Result<Result<(), String>, PluginError> {
        let result = self
            .call(|store, b| Box::pin(async move { plugin_info!(b, call_health, store) }))
            .await?;
        Ok(result.map_err(|m| m.chars().take(MAX_FIELD).collect()))
    }

    fn check_principal(&self, p: &Principal) -> Result<(), PluginError> {
        let bad_text = |s: &str| s.len() > MAX_FIELD || s.chars().any(char::is_control);
        if p.subject.is_empty() || p.subject.len() > 256 || bad_text(&p.subject) {
            return Err(self.bad_output("principal subject must be 1..=256 printable characters"));
        }
        if bad_text(&p.display_name)
            || p.groups.len() > MAX_ITEMS
            || p.groups.iter().any(|g| bad_text(g))
            || p.attributes.len() > MAX_ITEMS
            || p.attributes.iter().any(|(k, v)| bad_text(k) || bad_text(v))
        {
            return Err(self.bad_output("principal fields are too large or not printable"));
        }
        Ok(())
    }

    /// Asks an authenticator for the credential of `access_key`.
    pub async fn lookup_credential(
        &self,
        access_key: &str,
    ) -> Result<Option<Credential>, PluginError> {
        let key = access_key.to_string();
        let result = self
            .call(move |store, b| {
                Box::pin(async move {
                    match b {
                        Bindings::Authenticator(b) => {
                            b.sluice_plugin_authentication()
                                .call_lookup_credential(store, &key)
                                .await
                        }
                        _ => Err(wasmtime::Error::msg("not an authenticator")),
                    }
                })
            })
            .await?;
        let credential = result.map_err(|error| self.plugin_error(error))?;
        if let Some(c) = &credential {
            if c.secret_key.is_empty() || c.secret_key.len() > 1024 {
                return Err(self.bad_output("secret key must be 1..=1024 bytes"));
            }
            self.check_principal(&c.principal)?;
        }
        Ok(credential)
    }

    /// Asks an authorizer about a request Cedar allowed. `Ok(None)` lets it through,
    /// `Ok(Some(reason))` denies it.
    pub async fn authorize(&self, request: &AccessRequest) -> Result<Option<String>, PluginError> {
        let request = request.clone();
        let result = self
            .call(move |store, b| {
                Box::pin(async move {
                    match b {
                        Bindings::Authorizer(b) => {
                            b.sluice_plugin_authorization()
                                .call_authorize(store, &request)
                                .await
                        }
                        _ => Err(wasmtime::Error::msg("not an authorizer")),
                    }
                })
            })
            .await?;
        match result.map_err(|error| self.plugin_error(error))? {
            AuthzDecision::AllowThrough => Ok(None),
            AuthzDecision::Deny(reason) => {
                if reason.len() > MAX_FIELD {
                    return Err(self.bad_output("deny reason is too long"));
                }
                Ok(Some(reason))
            }
        }
    }

    /// Asks an authenticator to vouch for a request without an AWS signature.
    pub async fn authenticate(
        &self,
        request: &RequestView,
    ) -> Result<Option<Principal>, PluginError> {
        let request = request.clone();
        let result = self
            .call(move |store, b| {
                Box::pin(async move {
                    match b {
                        Bindings::Authenticator(b) => {
                            b.sluice_plugin_authentication()
                                .call_authenticate(store, &request)
                                .await
                        }
                        _ => Err(wasmtime::Error::msg("not an authenticator")),
                    }
                })
            })
            .await?;
        let principal = result.map_err(|error| self.plugin_error(error))?;
        if let Some(p) = &principal {
            self.check_principal(p)?;
        }
        Ok(principal)
    }

    /// Asks a key provider for a fresh data key under `key_id`.
    pub async fn generate_data_key(
        &self,
        key_id: &str,
        context: &[(String, String)],
    ) -> Result<DataKey, PluginError> {
        let (key, ctx) = (key_id.to_string(), context.to_vec());
        let result = self
            .call(move |store, b| {
                Box::pin(async move {
                    match b {
                        Bindings::KeyProvider(b) => {
                            b.sluice_plugin_key_management()
                                .call_generate_data_key(store, &key, &ctx)
                                .await
                        }
                        _ => Err(wasmtime::Error::msg("not a key provider")),
                    }
                })
            })
            .await?;
        let key = result.map_err(|error| self.plugin_error(error))?;
        if key.plaintext.len() != 32 || key.wrapped.is_empty() || key.wrapped.len() > MAX_FIELD {
            return Err(self.bad_output("a data key is 32 bytes with a 1..=4096-byte wrapping"));
        }
        Ok(key)
    }

    /// Asks a key provider to unwrap a data key it wrapped.
    pub async fn decrypt_data_key(
        &self,
        key_id: &str,
        wrapped: &[u8],
        context: &[(String, String)],
    ) -> Result<Vec<u8>, PluginError> {
        let (key, w, ctx) = (key_id.to_string(), wrapped.to_vec(), context.to_vec());
        let result = self
            .call(move |store, b| {
                Box::pin(async move {
                    match b {
                        Bindings::KeyProvider(b) => {
                            b.sluice_plugin_key_management()
                                .call_decrypt_data_key(store, &key, &w, &ctx)
                                .await
                        }
                        _ => Err(wasmtime::Error::msg("not a key provider")),
                    }
                })
            })
            .await?;
        let plain = result.map_err(|error| self.plugin_error(error))?;
        if plain.len() != 32 {
            return Err(self.bad_output("a data key is 32 bytes"));
        }
        Ok(plain)
    }

    /// One of the key provider's admin calls (`create`, `list`, `describe`, ...).
    pub async fn key_admin(&self, op: KeyAdmin) -> Result<Vec<KeyMetadata>, PluginError> {
        let result = self
            .call(move |store, b| {
                Box::pin(async move {
                    let Bindings::KeyProvider(b) = b else {
                        return Err(wasmtime::Error::msg("not a key provider"));
                    };
                    let km = b.sluice_plugin_key_management();
                    let one = |r: Result<KeyMetadata, types::Error>| r.map(|m| vec![m]);
                    Ok(match &op {
                        KeyAdmin::Create(d) => one(km.call_create_key(store, d).await?),
                        KeyAdmin::List => km.call_list_keys(store).await?,
                        KeyAdmin::Describe(k) => one(km.call_describe_key(store, k).await?),
                        KeyAdmin::Enable(k) => one(km.call_enable_key(store, k).await?),
                        KeyAdmin::Disable(k) => one(km.call_disable_key(store, k).await?),
                        KeyAdmin::Rotate(k) => one(km.call_rotate_key(store, k).await?),
                        KeyAdmin::ScheduleDeletion(k, days) => {
                            one(km.call_schedule_key_deletion(store, k, *days).await?)
                        }
                        KeyAdmin::CancelDeletion(k) => {
                            one(km.call_cancel_key_deletion(store, k).await?)
                        }
                    })
                })
            })
            .await?;
        let keys = result.map_err(|error| self.plugin_error(error))?;
        if keys.len() > 100_000
            || keys.iter().any(|k| {
                k.key_id.len() > 256 || k.arn.len() > 512 || k.description.len() > MAX_FIELD
            })
        {
            return Err(self.bad_output("key metadata is too large"));
        }
        Ok(keys)
    }

    /// Hands a replication target one object write; the body is read from `body` on demand.
    /// Hands a replication target one object and its body. The call may take the plugin's
    /// limits plus one second per `REPLICATION_BYTES_PER_SECOND` of body.
    pub async fn replicate_put(
        &self,
        target: TargetInfo,
        object: ObjectInfo,
        body: crate::store::BodyStream,
    ) -> Result<(), PluginError> {
        let allowance = Duration::from_secs(object.size / REPLICATION_BYTES_PER_SECOND);
        let result = self
            .call_with_allowance(allowance, move |store, b| {
                Box::pin(async move {
                    let Bindings::ReplicationTarget(b) = b else {
                        return Err(wasmtime::Error::msg("not a replication target"));
                    };
                    let stream = store
                        .data_mut()
                        .table
                        .push(super::host_imports::BodyStream {
                            stream: Some(body),
                            pending: bytes::Bytes::new(),
                            failed: None,
                        })
                        .map_err(wasmtime::Error::msg)?;
                    let rep = stream.rep();
                    let out = b
                        .sluice_plugin_replication()
                        .call_replicate_put(&mut *store, &target, &object, stream)
                        .await;
                    // A guest that kept the body handle past the call gets nothing more from
                    // it, and the object's file is closed now rather than when the instance
                    // is recycled.
                    let kept =
                        wasmtime::component::Resource::<super::host_imports::BodyStream>::new_own(
                            rep,
                        );
                    if let Ok(s) = store.data_mut().table.get_mut(&kept) {
                        s.stream = None;
                        s.pending = bytes::Bytes::new();
                        s.failed = Some("the body stream ended with its call".into());
                    }
                    out
                })
            })
            .await?;
        result.map_err(|error| self.plugin_error(error))
    }

    /// Hands a replication target one delete.
    pub async fn replicate_delete(
        &self,
        target: TargetInfo,
        object: DeleteInfo,
    ) -> Result<(), PluginError> {
        let result = self
            .call(move |store, b| {
                Box::pin(async move {
                    let Bindings::ReplicationTarget(b) = b else {
                        return Err(wasmtime::Error::msg("not a replication target"));
                    };
                    b.sluice_plugin_replication()
                        .call_replicate_delete(store, &target, &object)
                        .await
                })
            })
            .await?;
        result.map_err(|error| self.plugin_error(error))
    }
}

/// A key provider's admin calls.
#[derive(Debug, Clone)]
pub enum KeyAdmin {
    Create(String),
    List,
    Describe(String),
    Enable(String),
    Disable(String),
    Rotate(String),
    ScheduleDeletion(String, u32),
    CancelDeletion(String),
}
