//! The authenticator chain: for an access key the IAM store does not know, each authenticator
//! plugin is asked in config order; the answer (or "unknown") is cached. Requests without an
//! AWS signature are offered to each authenticator's `authenticate`. Principals a plugin vouches
//! for are namespaced `<plugin>:<subject>`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::Principal;
use crate::plugins::bindings::types::{self, RequestView};
use crate::plugins::{Failure, LoadedPlugin, PluginError, Registry};

/// Most access keys remembered; beyond that expired entries are purged, then all.
const MAX_CACHED: usize = 100_000;

enum Cached {
    Found {
        secret: Zeroizing<String>,
        principal: Principal,
        until: Instant,
    },
    Missing {
        until: Instant,
    },
}

/// A credential an authenticator vouched for.
pub struct ExternalCredential {
    pub secret: Zeroizing<String>,
    pub principal: Principal,
}

pub struct AuthenticatorChain {
    registry: Arc<Registry>,
    cache: Mutex<HashMap<String, (String, Cached)>>,
}

fn principal_of(plugin: &str, p: types::Principal, access_key: Option<&str>) -> Principal {
    let name = if p.display_name.is_empty() {
        p.subject.clone()
    } else {
        p.display_name
    };
    Principal::External {
        id: format!("{plugin}:{}", p.subject),
        plugin: plugin.to_string(),
        subject: p.subject,
        name,
        groups: p.groups,
        attributes: p.attributes,
        access_key: access_key.map(String::from),
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl AuthenticatorChain {
    pub fn new(registry: Arc<Registry>) -> Arc<AuthenticatorChain> {
        let chain = Arc::new(AuthenticatorChain {
            registry: registry.clone(),
            cache: Mutex::new(HashMap::new()),
        });
        // A replaced plugin's answers are forgotten (its keys may have changed).
        let weak = Arc::downgrade(&chain);
        registry.on_reload(move |plugin| {
            if let Some(chain) = weak.upgrade()
                && let Ok(mut cache) = chain.cache.lock()
            {
                // A replaced plugin may now claim keys that a later plugin answered, or keys it
                // used to refuse: forget everything rather than reason about the order.
                let _ = plugin;
                cache.clear();
            }
        });
        chain
    }

    pub fn is_empty(&self) -> bool {
        self.registry.authenticators().next().is_none()
    }

    fn remember(&self, key: &str, plugin: &str, entry: Cached) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.len() >= MAX_CACHED {
            let now = Instant::now();
            cache.retain(|_, (_, e)| match e {
                Cached::Found { until, .. } | Cached::Missing { until } => *until > now,
            });
            // Still full: unknown keys (cheap to ask again, and what a flood consists of) go
            // first; known credentials stay.
            if cache.len() >= MAX_CACHED {
                cache.retain(|_, (_, e)| matches!(e, Cached::Found { .. }));
            }
            if cache.len() >= MAX_CACHED {
                return;
            }
        }
        cache.insert(key.to_string(), (plugin.to_string(), entry));
    }

    /// The credential for an access key the IAM store does not know; `None` when no
    /// authenticator knows it. A failing closed plugin fails the lookup.
    pub async fn lookup(
        &self,
        access_key: &str,
    ) -> Result<Option<ExternalCredential>, PluginError> {
        if let Ok(cache) = self.cache.lock()
            && let Some((_, entry)) = cache.get(access_key)
        {
            match entry {
                Cached::Found {
                    secret,
                    principal,
                    until,
                } if *until > Instant::now() => {
                    return Ok(Some(ExternalCredential {
                        secret: secret.clone(),
                        principal: principal.clone(),
                    }));
                }
                Cached::Missing { until } if *until > Instant::now() => return Ok(None),
                _ => {}
            }
        }
        let mut negative_ttl: Option<Duration> = None;
        // A plugin skipped because it failed (failure = "open") might have known the key: an
        // answer of "unknown" is then not cached.
        let mut skipped = false;
        for plugin in self.registry.authenticators() {
            let limits = &plugin.spec.limits;
            negative_ttl =
                Some(negative_ttl.map_or(limits.negative_ttl, |t| t.min(limits.negative_ttl)));
            let answer = match plugin.lookup_credential(access_key).await {
                Ok(answer) => answer,
                Err(e) => {
                    self.failed(&plugin, e)?;
                    skipped = true;
                    continue;
                }
            };
            let Some(credential) = answer else {
                continue;
            };
            let now = now_unix();
            let mut ttl = limits.cache_ttl;
            if let Some(expires) = credential.expires_at {
                if expires <= now {
                    // An expired credential is as good as none.
                    continue;
                }
                ttl = ttl.min(Duration::from_secs(expires - now));
            }
            let secret = Zeroizing::new(credential.secret_key);
            let principal = principal_of(plugin.name(), credential.principal, Some(access_key));
            if !ttl.is_zero() {
                self.remember(
                    access_key,
                    plugin.name(),
                    Cached::Found {
                        secret: secret.clone(),
                        principal: principal.clone(),
                        until: Instant::now() + ttl,
                    },
                );
            }
            return Ok(Some(ExternalCredential { secret, principal }));
        }
        if let Some(ttl) = negative_ttl.filter(|t| !t.is_zero() && !skipped) {
            self.remember(
                access_key,
                "",
                Cached::Missing {
                    until: Instant::now() + ttl,
                },
            );
        }
        Ok(None)
    }

    /// Offers a request without an AWS signature to each authenticator in turn.
    pub async fn authenticate(&self, view: &RequestView) -> Result<Option<Principal>, PluginError> {
        for plugin in self.registry.authenticators() {
            match plugin.authenticate(view).await {
                Ok(Some(p)) => return Ok(Some(principal_of(plugin.name(), p, None))),
                Ok(None) => {}
                Err(e) => self.failed(&plugin, e)?,
            }
        }
        Ok(None)
    }

    /// A failed call: `failure = "open"` skips the plugin, `"closed"` fails the request.
    fn failed(&self, plugin: &LoadedPlugin, e: PluginError) -> Result<(), PluginError> {
        let refusal = matches!(
            &e,
            PluginError::Plugin {
                error: types::Error::Denied(_) | types::Error::Invalid(_),
                ..
            }
        );
        if refusal {
            tracing::info!(plugin = plugin.name(), "authenticator refused: {e}");
        } else {
            tracing::warn!(plugin = plugin.name(), "authenticator failed: {e}");
        }
        match plugin.spec.failure {
            // A plugin's explicit refusal is an answer, not a failure: it is never skipped.
            Failure::Open if !refusal => Ok(()),
            _ => Err(e),
        }
    }
}
