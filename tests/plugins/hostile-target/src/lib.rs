//! Test fixture: a replication target that behaves as its config `mode` says: `accept` (reads
//! the whole body and counts it in `kv`), `unavailable` (a transient error), or one of the
//! hostile modes shared with the other fixtures (`loop`, `alloc`, `trap`, `http`), so tests can
//! show a broken target delays only its own queue.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "replication-target",
});

#[path = "../../hostile/src/modes.rs"]
mod modes;

use exports::sluice::plugin::plugin_info::Guest as PluginInfo;
use exports::sluice::plugin::replication::{
    DeleteInfo, Guest as Replication, ObjectInfo, TargetInfo,
};
use sluice::plugin::kv;
use sluice::plugin::object_body::BodyStream;
use sluice::plugin::types::Error;

struct Target;

fn bump(counter: &str, by: u64) -> Result<(), Error> {
    let now = kv::get(counter)
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0);
    kv::set(counter, &(now + by).to_be_bytes()).map_err(Error::Internal)
}

fn behave() -> Result<(), Error> {
    match modes::misbehave_common()
        .map_err(Error::Unavailable)?
        .as_str()
    {
        "" | "accept" => Ok(()),
        "unavailable" => Err(Error::Unavailable("the fixture target is down".into())),
        other => Err(Error::Internal(format!("unknown mode {other}"))),
    }
}

impl PluginInfo for Target {
    fn info() -> (String, String) {
        ("hostile-target".into(), env!("CARGO_PKG_VERSION").into())
    }

    fn health() -> Result<(), String> {
        Ok(())
    }
}

impl Replication for Target {
    fn replicate_put(
        _target: TargetInfo,
        object: ObjectInfo,
        body: BodyStream,
    ) -> Result<(), Error> {
        behave()?;
        let mut total = 0u64;
        loop {
            let chunk = body.read(1 << 20)?;
            if chunk.is_empty() {
                break;
            }
            total += chunk.len() as u64;
        }
        if total != object.size {
            return Err(Error::Invalid(format!(
                "body had {total} bytes, object info says {}",
                object.size
            )));
        }
        bump("puts", 1)?;
        bump("bytes", total)
    }

    fn replicate_delete(_target: TargetInfo, _object: DeleteInfo) -> Result<(), Error> {
        behave()?;
        bump("deletes", 1)
    }
}

export!(Target);
