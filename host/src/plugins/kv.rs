//! The `kv` host import: small values in redb, namespaced per plugin.

use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

/// Keys are `<plugin>\0<key>`.
const PLUGIN_KV: TableDefinition<&str, &[u8]> = TableDefinition::new("plugin_kv");

pub const MAX_KEY: usize = 1024;
pub const MAX_VALUE: usize = 64 * 1024;
/// Most keys one plugin may hold.
pub const MAX_KEYS: usize = 10_000;

#[derive(Clone)]
pub struct PluginKv {
    db: Arc<Database>,
    plugin: String,
}

impl PluginKv {
    pub fn new(db: Arc<Database>, plugin: &str) -> PluginKv {
        PluginKv {
            db,
            plugin: plugin.to_string(),
        }
    }

    fn full(&self, key: &str) -> String {
        format!("{}\0{key}", self.plugin)
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let tx = self.db.begin_read().ok()?;
        let table = tx.open_table(PLUGIN_KV).ok()?;
        let value = table.get(self.full(key).as_str()).ok()??;
        Some(value.value().to_vec())
    }

    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        if key.is_empty() || key.len() > MAX_KEY || key.contains('\0') {
            return Err(format!("keys must be 1..={MAX_KEY} bytes without NUL"));
        }
        if value.len() > MAX_VALUE {
            return Err(format!("values must be at most {MAX_VALUE} bytes"));
        }
        let count = self.list("", MAX_KEYS).len();
        let tx = self.db.begin_write().map_err(|e| e.to_string())?;
        {
            let mut table = tx.open_table(PLUGIN_KV).map_err(|e| e.to_string())?;
            let full = self.full(key);
            let exists = table
                .get(full.as_str())
                .map_err(|e| e.to_string())?
                .is_some();
            if !exists && count >= MAX_KEYS {
                return Err(format!("a plugin may hold at most {MAX_KEYS} keys"));
            }
            table
                .insert(full.as_str(), value)
                .map_err(|e| e.to_string())?;
        }
        tx.commit().map_err(|e| e.to_string())
    }

    pub fn delete(&self, key: &str) -> Result<(), String> {
        let tx = self.db.begin_write().map_err(|e| e.to_string())?;
        {
            let mut table = tx.open_table(PLUGIN_KV).map_err(|e| e.to_string())?;
            table
                .remove(self.full(key).as_str())
                .map_err(|e| e.to_string())?;
        }
        tx.commit().map_err(|e| e.to_string())
    }

    pub fn list(&self, prefix: &str, limit: usize) -> Vec<String> {
        let Ok(tx) = self.db.begin_read() else {
            return Vec::new();
        };
        let Ok(table) = tx.open_table(PLUGIN_KV) else {
            return Vec::new();
        };
        let start = self.full(prefix);
        let ns = format!("{}\0", self.plugin);
        let Ok(range) = table.range(start.as_str()..) else {
            return Vec::new();
        };
        range
            .filter_map(Result::ok)
            .map(|(k, _)| k.value().to_string())
            .take_while(|k| k.starts_with(&start))
            .filter_map(|k| k.strip_prefix(&ns).map(String::from))
            .take(limit)
            .collect()
    }
}
