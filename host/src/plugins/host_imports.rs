//! The host side of the imports every plugin world has: `log`, `config`, `kv`, `clock`,
//! `random` (and, for replication targets, `object-body`).

use wasmtime::component::Resource;

use super::bindings::authenticator::sluice::plugin::{
    clock, config, kv, log, random, sealing, types,
};
use super::bindings::replication_target::sluice::plugin::object_body;
use super::state::PluginState;

/// Longest log line a plugin may write; longer ones are cut.
const MAX_LOG_LINE: usize = 4096;
const MAX_RANDOM: u32 = 1 << 20;

impl types::Host for PluginState {}

impl log::Host for PluginState {
    fn log(&mut self, level: log::Level, message: String) {
        // Control characters (newlines among them) are escaped so a plugin cannot forge lines.
        let mut message: String = message
            .chars()
            .flat_map(|c| {
                let escaped: Vec<char> = if c.is_control() {
                    c.escape_default().collect()
                } else {
                    vec![c]
                };
                escaped
            })
            .collect();
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let plugin = self.shared.name.as_str();
        match level {
            log::Level::Trace => tracing::trace!(plugin, "{message}"),
            log::Level::Debug => tracing::debug!(plugin, "{message}"),
            log::Level::Info => tracing::info!(plugin, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, "{message}"),
            log::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

impl config::Host for PluginState {
    fn get(&mut self, key: String) -> Option<String> {
        match self.shared.config.get(&key)? {
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    fn get_all(&mut self) -> String {
        self.shared.config.to_string()
    }
}

impl kv::Host for PluginState {
    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        self.shared.kv.as_ref()?.get(&key)
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        self.timing.kv_writes += 1;
        if self.timing.kv_writes > super::state::MAX_KV_WRITES_PER_CALL {
            return Err("too many kv writes in one call".into());
        }
        match &self.shared.kv {
            Some(kv) => kv.set(&key, &value),
            None => Err("no key-value store in this context".into()),
        }
    }

    fn delete(&mut self, key: String) -> Result<(), String> {
        self.timing.kv_writes += 1;
        if self.timing.kv_writes > super::state::MAX_KV_WRITES_PER_CALL {
            return Err("too many kv writes in one call".into());
        }
        match &self.shared.kv {
            Some(kv) => kv.delete(&key),
            None => Err("no key-value store in this context".into()),
        }
    }

    fn list_keys(&mut self, prefix: String, limit: u32) -> Vec<String> {
        match &self.shared.kv {
            Some(kv) => kv.list(&prefix, limit.min(10_000) as usize),
            None => Vec::new(),
        }
    }
}

impl clock::Host for PluginState {
    fn now_millis(&mut self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

impl random::Host for PluginState {
    fn bytes(&mut self, len: u32) -> Vec<u8> {
        let mut out = vec![0u8; len.min(MAX_RANDOM) as usize];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut out);
        out
    }
}

/// Most bytes one `seal` call takes (a key provider seals 32-byte keys).
const MAX_SEAL: usize = 64 * 1024;

impl sealing::Host for PluginState {
    fn seal(&mut self, plaintext: Vec<u8>, context: Vec<u8>) -> Vec<u8> {
        match &self.shared.sealing {
            Some(key) if plaintext.len() <= MAX_SEAL => key.seal(&context, &plaintext),
            // Without a node key (offline checks) or oversized input there is nothing to seal
            // with; an empty value never unseals, so nothing is stored in the clear.
            _ => Vec::new(),
        }
    }

    fn unseal(&mut self, sealed: Vec<u8>, context: Vec<u8>) -> Result<Vec<u8>, String> {
        let key = self
            .shared
            .sealing
            .as_ref()
            .ok_or_else(|| "no sealing key in this context".to_string())?;
        key.open(&context, &sealed)
            .map(|plain| plain.to_vec())
            .map_err(|e| e.to_string())
    }
}

/// An object body offered to a replication target: the store's stream, read on demand so the
/// body is never buffered whole.
pub struct BodyStream {
    pub stream: Option<crate::store::BodyStream>,
    pub pending: bytes::Bytes,
    /// Once reading failed, every later read fails the same way (never a clean end).
    pub failed: Option<String>,
}

/// Most bytes one `read` hands out.
const MAX_READ: u32 = 1 << 20;

impl object_body::Host for PluginState {}

impl object_body::HostBodyStream for PluginState {
    async fn read(
        &mut self,
        stream: Resource<BodyStream>,
        len: u32,
    ) -> Result<Vec<u8>, types::Error> {
        use futures::StreamExt;
        let body = self
            .table
            .get_mut(&stream)
            .map_err(|e| types::Error::Internal(e.to_string()))?;
        if len == 0 {
            return Err(types::Error::Invalid("read of 0 bytes".into()));
        }
        if let Some(e) = &body.failed {
            return Err(types::Error::Unavailable(e.clone()));
        }
        let want = len.min(MAX_READ) as usize;
        // Empty chunks are skipped: only the real end of the body reads as empty.
        while body.pending.is_empty() {
            let next = match body.stream.as_mut() {
                Some(s) => s.next().await,
                None => None,
            };
            match next {
                Some(Ok(chunk)) => body.pending = chunk,
                Some(Err(e)) => {
                    body.stream = None;
                    let message = format!("reading the body: {e}");
                    body.failed = Some(message.clone());
                    return Err(types::Error::Unavailable(message));
                }
                None => {
                    body.stream = None;
                    return Ok(Vec::new());
                }
            }
        }
        let n = want.min(body.pending.len());
        Ok(body.pending.split_to(n).to_vec())
    }

    fn drop(&mut self, stream: Resource<BodyStream>) -> wasmtime::Result<()> {
        self.table.delete(stream)?;
        Ok(())
    }
}
