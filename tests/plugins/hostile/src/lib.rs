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
use sluice::plugin::config;
use sluice::plugin::types::{Credential, Error, Principal, RequestView};

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingRequest, Scheme};

fn fetch(url: &str) -> Result<u16, String> {
    let (scheme, rest) = match url.split_once("://") {
        Some(("https", rest)) => (Scheme::Https, rest),
        Some(("http", rest)) => (Scheme::Http, rest),
        _ => return Err(format!("unsupported url {url}")),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_method(&Method::Get);
    let _ = request.set_scheme(Some(&scheme));
    let _ = request.set_authority(Some(authority));
    let _ = request.set_path_with_query(Some(path));
    let pending = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    pending.subscribe().block();
    let response = pending
        .get()
        .ok_or("no response")?
        .map_err(|_| "response taken twice")?
        .map_err(|e| format!("{e:?}"))?;
    Ok(response.status())
}

fn misbehave(access_key: &str) -> Result<Option<Credential>, Error> {
    let mode = config::get("mode").unwrap_or_default();
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
    match mode.as_str() {
        "loop" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "alloc" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "trap" => panic!("hostile plugin traps on purpose"),
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
        "http" | "slow-http" => {
            let url = config::get("url").unwrap_or_default();
            match fetch(&url) {
                Ok(status) => Err(Error::Internal(format!("fetch unexpectedly gave {status}"))),
                Err(e) => Err(Error::Unavailable(e)),
            }
        }
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
