//! `static-keys`: the simplest external key store. Access keys, secrets and the principals they
//! stand for come from the plugin's config table:
//!
//! ```toml
//! [[plugins]]
//! name = "static-keys"
//! world = "authenticator"
//! path = "plugins/dist/static_keys.wasm"
//! [[plugins.config.keys]]
//! access_key = "AKEXAMPLE"
//! secret_key = "..."
//! subject = "alice"
//! display_name = "Alice"        # optional
//! groups = ["readers"]          # optional
//! expires_at = 1893456000       # optional, Unix seconds
//! ```

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

wit_bindgen::generate!({
    path: "../../wit",
    world: "authenticator",
});

use exports::sluice::plugin::authentication::Guest as Authentication;
use exports::sluice::plugin::plugin_info::Guest as PluginInfo;
use sluice::plugin::config;
use sluice::plugin::log::{Level, log};
use sluice::plugin::types::{Credential, Error, Principal, RequestView};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    keys: Vec<KeyEntry>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    access_key: String,
    secret_key: String,
    subject: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    expires_at: Option<u64>,
}

/// Keys by access key, parsed once per instance from the config table.
fn keys() -> Result<&'static HashMap<String, KeyEntry>, String> {
    static KEYS: OnceLock<Result<HashMap<String, KeyEntry>, String>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let settings: Settings = serde_json::from_str(&config::get_all())
            .map_err(|e| format!("static-keys config: {e}"))?;
        let mut map = HashMap::new();
        for entry in settings.keys {
            if entry.access_key.is_empty() || entry.secret_key.is_empty() {
                return Err(
                    "static-keys config: access_key and secret_key must not be empty".into(),
                );
            }
            if entry.subject.is_empty() {
                return Err(format!(
                    "static-keys config: key {} has an empty subject",
                    entry.access_key
                ));
            }
            if map.insert(entry.access_key.clone(), entry).is_some() {
                return Err("static-keys config: an access key is listed twice".into());
            }
        }
        Ok(map)
    })
    .as_ref()
    .map_err(Clone::clone)
}

struct StaticKeys;

impl PluginInfo for StaticKeys {
    fn info() -> (String, String) {
        ("static-keys".into(), env!("CARGO_PKG_VERSION").into())
    }

    fn health() -> Result<(), String> {
        let keys = keys()?;
        log(Level::Debug, &format!("static-keys: {} keys", keys.len()));
        Ok(())
    }
}

impl Authentication for StaticKeys {
    fn lookup_credential(access_key: String) -> Result<Option<Credential>, Error> {
        let keys = keys().map_err(Error::Internal)?;
        Ok(keys.get(&access_key).map(|entry| Credential {
            secret_key: entry.secret_key.clone(),
            principal: Principal {
                subject: entry.subject.clone(),
                display_name: entry.display_name.clone().unwrap_or_default(),
                groups: entry.groups.clone(),
                attributes: Vec::new(),
            },
            expires_at: entry.expires_at,
        }))
    }

    fn authenticate(_request: RequestView) -> Result<Option<Principal>, Error> {
        Ok(None)
    }
}

export!(StaticKeys);
