//! Test fixture: an authenticator that misbehaves as its config `mode` says, so that tests can
//! show a broken plugin fails only its own request.
//!
//! - `loop`: never returns (the epoch deadline must stop it).
//! - `alloc`: allocates without end (the memory limit must stop it).
//! - `trap`: panics (a trap).
//! - `huge`: returns a 100 MB secret (the host must refuse oversized output).
//! - `http`: fetches `url`, which is not in its `allowed_hosts` (the host must refuse to send).
//! - `slow-http`: like `http` but for a host that is allowed and never answers (the wall-clock
//!   timeout must stop it).
//!
//! Access keys starting with `SAFE` are answered normally, so the same instance can be shown to
//! keep serving.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "authenticator",
});

use exports::sluice::plugin::authentication::Guest as Authentication;
use exports::sluice::plugin::plugin_info::Guest as PluginInfo;
use sluice::plugin::types::{Credential, Error, Principal, RequestView};

mod modes;

fn misbehave(access_key: &str) -> Result<Option<Credential>, Error> {
    if access_key.starts_with("SAFE") {
        return Ok(Some(Credential {
            secret_key: "safe-secret-key".into(),
            principal: Principal {
                subject: access_key.to_lowercase(),
                display_name: String::new(),
                groups: Vec::new(),
                attributes: Vec::new(),
            },
            expires_at: None,
        }));
    }
    let mode = match modes::misbehave_common() {
        Ok(m) => m,
        Err(e) => return Err(Error::Unavailable(e)),
    };
    match mode.as_str() {
        "huge" => Ok(Some(Credential {
            secret_key: "x".repeat(100 * 1024 * 1024),
            principal: Principal {
                subject: "huge".into(),
                display_name: String::new(),
                groups: Vec::new(),
                attributes: Vec::new(),
            },
            expires_at: None,
        })),
        other => Err(Error::Internal(format!("unknown mode {other}"))),
    }
}

struct Hostile;

impl PluginInfo for Hostile {
    fn info() -> (String, String) {
        ("hostile".into(), env!("CARGO_PKG_VERSION").into())
    }

    fn health() -> Result<(), String> {
        Ok(())
    }
}

impl Authentication for Hostile {
    fn lookup_credential(access_key: String) -> Result<Option<Credential>, Error> {
        misbehave(&access_key)
    }

    fn authenticate(request: RequestView) -> Result<Option<Principal>, Error> {
        let bearer = request
            .headers
            .iter()
            .any(|(n, v)| n == "authorization" && v.starts_with("Bearer "));
        if !bearer {
            return Ok(None);
        }
        misbehave("").map(|c| c.map(|c| c.principal))
    }
}

export!(Hostile);
