//! `sluice plugin check FILE.wasm`: which world a component implements, what it imports, and
//! whether this host can load it.

use std::path::Path;

use super::Runtime;

pub struct Report {
    pub worlds: Vec<&'static str>,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    /// `Ok` when the host can link (and so load) it, else why not.
    pub verdict: Result<(), String>,
}

impl Report {
    fn refused(why: String) -> Report {
        Report {
            worlds: Vec::new(),
            imports: Vec::new(),
            exports: Vec::new(),
            verdict: Err(why),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "world": self.worlds.first(),
            "worlds": self.worlds,
            "imports": self.imports,
            "exports": self.exports,
            "loadable": self.verdict.is_ok(),
            "verdict": match &self.verdict {
                Ok(()) => "ok".to_string(),
                Err(e) => e.clone(),
            },
        })
    }
}

pub fn check(path: &Path) -> Report {
    let runtime = match Runtime::new(None, super::PluginLimits::default().memory_bytes) {
        Ok(r) => r,
        Err(e) => {
            return Report::refused(e.to_string());
        }
    };
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let component = match runtime.compile(&name, path) {
        Ok(c) => c,
        Err(e) => {
            return Report::refused(e.to_string());
        }
    };
    let worlds = runtime.worlds_of(&component);
    let verdict = match worlds.as_slice() {
        [] => Err(
            "exports no Sluice plugin world (authenticator, authorizer, key-provider, replication-target)"
                .to_string(),
        ),
        [world] => runtime
            .prepare(&name, *world, &component)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        _ => Err("exports more than one Sluice plugin world".to_string()),
    };
    Report {
        worlds: worlds.iter().map(|w| w.as_str()).collect(),
        imports: runtime.imports_of(&component),
        exports: runtime.exports_of(&component),
        verdict,
    }
}
