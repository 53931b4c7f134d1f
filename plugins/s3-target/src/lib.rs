//! Sluice replication target for any S3-compatible endpoint: objects up to `part_size` go as one
//! PutObject, larger ones as a multipart upload (one part in memory at a time, so memory is
//! bounded by the part size, never the object), deletes as DeleteObject. Requests are path-style,
//! signed with SigV4 (`aws-sigv4`) with the credentials the host passes for the target, and sent
//! over `wasi:http`, which reaches only the plugin's `allowed_hosts`.
//!
//! Every write carries `x-sluice-replica-source-time` (see `wit/replication-target.wit`): another
//! Sluice stores it as a replica and answers 412 when it already holds something newer, which
//! counts as done. Other S3 stores ignore the header.
//!
//! Config (`[plugins.config]`): `part_size` (bytes, default 8 MiB, 5 MiB..=64 MiB; the plugin's
//! `memory_mb` limit must leave room for one part plus a few MiB, and parts grow for objects over
//! 10,000 parts);
//! `encrypted_objects` (`"AES256"`, the default, asks the destination to encrypt objects the
//! source stores encrypted with its own keys; `"none"` sends no encryption header).

wit_bindgen::generate!({
    path: "../../wit",
    world: "replication-target",
});

mod http;
mod s3;

use exports::sluice::plugin::plugin_info::Guest as PluginInfo;
use exports::sluice::plugin::replication::{
    DeleteInfo, Guest as Replication, ObjectInfo, TargetInfo,
};
use sluice::plugin::config;
use sluice::plugin::object_body::BodyStream;
use sluice::plugin::types::Error;

const MIB: u64 = 1024 * 1024;
const DEFAULT_PART_SIZE: u64 = 8 * MIB;
const MAX_PART_SIZE: u64 = 64 * MIB;
const MAX_PARTS: u64 = 10_000;

struct Settings {
    part_size: u64,
    encrypt_header: Option<String>,
}

fn settings() -> Result<Settings, Error> {
    let part_size = match config::get("part_size") {
        None => DEFAULT_PART_SIZE,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| (5 * MIB..=MAX_PART_SIZE).contains(n))
            .ok_or_else(|| {
                Error::Internal(format!("part_size `{v}` must be 5242880..=67108864 bytes"))
            })?,
    };
    let encrypt_header = match config::get("encrypted_objects").as_deref() {
        None | Some("AES256") => Some("AES256".to_string()),
        Some("none") => None,
        Some(other) => {
            return Err(Error::Internal(format!(
                "encrypted_objects `{other}` must be AES256 or none"
            )));
        }
    };
    Ok(Settings {
        part_size,
        encrypt_header,
    })
}

struct Target;

impl PluginInfo for Target {
    fn info() -> (String, String) {
        ("s3-target".into(), env!("CARGO_PKG_VERSION").into())
    }

    fn health() -> Result<(), String> {
        settings().map(|_| ()).map_err(|e| format!("{e:?}"))
    }
}

/// Reads from `body` until `buf` holds `want` bytes or the body ends.
fn fill(body: &BodyStream, buf: &mut Vec<u8>, want: u64) -> Result<(), Error> {
    buf.clear();
    buf.reserve_exact(want.min(MAX_PART_SIZE + 1) as usize);
    while (buf.len() as u64) < want {
        let ask = (want - buf.len() as u64).min(MIB) as u32;
        let chunk = body.read(ask)?;
        if chunk.is_empty() {
            break;
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(())
}

impl Replication for Target {
    fn replicate_put(
        target: TargetInfo,
        object: ObjectInfo,
        body: BodyStream,
    ) -> Result<(), Error> {
        let settings = settings()?;
        let dest = s3::Destination::new(&target)?;
        let headers = s3::object_headers(&object, settings.encrypt_header.as_deref());
        let mut buf = Vec::new();
        if object.size <= settings.part_size {
            fill(&body, &mut buf, object.size + 1)?;
            if buf.len() as u64 != object.size {
                return Err(Error::Unavailable(format!(
                    "the body had {} bytes, the object {}",
                    buf.len(),
                    object.size
                )));
            }
            let mut headers = headers;
            if let Some((algorithm, value)) = &object.checksum {
                headers.push((format!("x-amz-checksum-{algorithm}"), value.clone()));
            }
            return dest.put_object(
                &object.bucket,
                &object.key,
                headers,
                &buf,
                object.last_modified,
            );
        }
        // S3 takes at most 10,000 parts: larger objects get larger parts, up to the most this
        // plugin holds in memory.
        let part_size = settings.part_size.max(object.size.div_ceil(MAX_PARTS));
        if part_size > MAX_PART_SIZE {
            return Err(Error::Invalid(format!(
                "{} bytes need parts over {MAX_PART_SIZE} bytes (10,000 parts at most)",
                object.size
            )));
        }
        // A CRC full-object checksum survives a multipart upload: the destination combines the
        // parts' CRCs and checks the result against the source's value on completion.
        let crc = object
            .checksum
            .clone()
            .filter(|(alg, _)| matches!(alg.as_str(), "crc32" | "crc32c" | "crc64nvme"));
        let mut headers = headers;
        if let Some((alg, _)) = &crc {
            headers.push(("x-amz-checksum-algorithm".into(), alg.to_ascii_uppercase()));
            headers.push(("x-amz-checksum-type".into(), "FULL_OBJECT".into()));
        }
        let upload = dest.create_upload(&object.bucket, &object.key, headers)?;
        let result = (|| {
            let mut parts = Vec::new();
            let mut sent = 0u64;
            loop {
                fill(&body, &mut buf, part_size)?;
                if buf.is_empty() {
                    break;
                }
                sent += buf.len() as u64;
                let number = parts.len() as u32 + 1;
                parts.push(dest.upload_part(&upload, number, &buf)?);
            }
            if sent != object.size {
                return Err(Error::Unavailable(format!(
                    "the body had {sent} bytes, the object {}",
                    object.size
                )));
            }
            dest.complete_upload(&upload, &parts, object.last_modified, crc.as_ref())
        })();
        if result.is_err() {
            dest.abort_upload(&upload);
        }
        result
    }

    fn replicate_delete(target: TargetInfo, object: DeleteInfo) -> Result<(), Error> {
        s3::Destination::new(&target)?.delete_object(&object.bucket, &object.key, object.deleted_at)
    }
}

export!(Target);
