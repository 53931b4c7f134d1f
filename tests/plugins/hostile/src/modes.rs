//! Misbehaviour shared by the hostile fixtures of every world (included with `#[path]`).

use crate::sluice::plugin::config;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingRequest, Scheme};

/// A GET to `url` through `wasi:http`; the status, or why it failed.
pub fn fetch(url: &str) -> Result<u16, String> {
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

/// Runs the configured `mode` when it never returns (loop, alloc, trap) or is an HTTP call;
/// returns the mode otherwise, for the world to misbehave with.
pub fn misbehave_common() -> Result<String, String> {
    let mode = config::get("mode").unwrap_or_default();
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
        "http" | "slow-http" => {
            let url = config::get("url").unwrap_or_default();
            match fetch(&url) {
                Ok(status) => Err(format!("fetch unexpectedly gave {status}")),
                Err(e) => Err(e),
            }
        }
        _ => Ok(mode),
    }
}
