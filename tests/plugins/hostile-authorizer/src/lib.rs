//! Test fixture: an authorizer that misbehaves as its config `mode` says (the modes of the
//! hostile authenticator: `loop`, `alloc`, `trap`, `huge` (a 100 MB deny reason), `http`,
//! `slow-http`), so that tests can show a broken authorizer fails only the requests it is
//! asked about, and fails them closed.
//!
//! Only requests on objects whose key starts with `trigger` are misbehaved on; everything else
//! is let through, so the same instance can be shown to keep serving. Mode `deny-writes`
//! denies `s3:Put*` on those objects with a reason.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "authorizer",
});

#[path = "../../hostile/src/modes.rs"]
mod modes;

use exports::sluice::plugin::authorization::{AccessRequest, Decision, Guest as Authorization};
use exports::sluice::plugin::plugin_info::Guest as PluginInfo;
use sluice::plugin::types::Error;

struct Hostile;

impl PluginInfo for Hostile {
    fn info() -> (String, String) {
        (
            "hostile-authorizer".into(),
            env!("CARGO_PKG_VERSION").into(),
        )
    }

    fn health() -> Result<(), String> {
        Ok(())
    }
}

impl Authorization for Hostile {
    fn authorize(request: AccessRequest) -> Result<Decision, Error> {
        if !request.resource.contains("/trigger") {
            return Ok(Decision::AllowThrough);
        }
        let mode = modes::misbehave_common().map_err(Error::Unavailable)?;
        match mode.as_str() {
            "huge" => Ok(Decision::Deny("x".repeat(100 * 1024 * 1024))),
            "deny-writes" if request.action.starts_with("s3:Put") => Ok(Decision::Deny(format!(
                "{} is refused by the fixture",
                request.action
            ))),
            "deny-writes" => Ok(Decision::AllowThrough),
            other => Err(Error::Internal(format!("unknown mode {other}"))),
        }
    }
}

export!(Hostile);
