//! The durable replication queue: a write that matches one of its bucket's replication rules
//! enqueues a task in the same redb transaction that commits it, so an acknowledged write is
//! never lost to replication (also across kill -9). Workers take due tasks, and finish or
//! reschedule them.

use redb::{ReadableTable, Table};
use serde::{Deserialize, Serialize};

use super::local::{decode, encode};
use super::{ObjectMeta, StoreError};
use crate::replication::ReplicationConfig;

/// The bucket-config kind replication rules are stored under (see `s3::replication`).
pub const RULES_CONFIG: &str = "replication";

/// What a worker must carry to a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskOp {
    Put,
    Delete,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicationTask {
    pub bucket: String,
    pub key: String,
    pub op: TaskOp,
    pub rule_id: String,
    pub target: String,
    pub dest_bucket: String,
    /// The version this task is for (a put): a newer write makes it moot.
    pub etag: String,
    pub last_modified: i64,
    pub enqueued_ms: i64,
    pub attempts: u32,
    /// Unix milliseconds before which the task is not tried again.
    pub next_attempt_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

pub const PENDING: &str = "PENDING";
pub const COMPLETED: &str = "COMPLETED";
pub const FAILED: &str = "FAILED";

/// The bucket's rules. They were validated when stored; rules that no longer decode (a damaged
/// record) are logged and ignored rather than failing the write after it began.
fn rules(
    config: &Table<'_, (&'static str, &'static str), &'static [u8]>,
    bucket: &str,
) -> Result<Option<ReplicationConfig>, StoreError> {
    match config.get((bucket, RULES_CONFIG))? {
        Some(v) => match decode(v.value()) {
            Ok(rules) => Ok(Some(rules)),
            Err(e) => {
                tracing::error!(bucket, error = %e, "replication rules unreadable; not replicating");
                Ok(None)
            }
        },
        None => Ok(None),
    }
}

/// Row 0 of the queue holds the next sequence number, so numbers are never reused.
const COUNTER: u64 = 0;

fn push(
    queue: &mut Table<'_, u64, &'static [u8]>,
    task: &ReplicationTask,
) -> Result<(), StoreError> {
    let next = match queue.get(COUNTER)? {
        Some(v) => <[u8; 8]>::try_from(v.value())
            .map(u64::from_be_bytes)
            .unwrap_or(1),
        None => 1,
    }
    .max(1);
    queue.insert(
        COUNTER,
        next.wrapping_add(1).max(1).to_be_bytes().as_slice(),
    )?;
    queue.insert(next, encode(task).as_slice())?;
    Ok(())
}

/// Enqueues a put of `meta` when a rule of `bucket` matches; marks `meta` PENDING then.
pub fn enqueue_put(
    config: &Table<'_, (&'static str, &'static str), &'static [u8]>,
    queue: &mut Table<'_, u64, &'static [u8]>,
    bucket: &str,
    key: &str,
    meta: &mut ObjectMeta,
    now: i64,
) -> Result<bool, StoreError> {
    let Some(cfg) = rules(config, bucket)? else {
        return Ok(false);
    };
    let Some(rule) = cfg.rule_for(key, &meta.tags) else {
        return Ok(false);
    };
    push(
        queue,
        &ReplicationTask {
            bucket: bucket.to_string(),
            key: key.to_string(),
            op: TaskOp::Put,
            rule_id: rule.id.clone(),
            target: rule.destination.target.clone(),
            dest_bucket: rule.destination.bucket.clone(),
            etag: meta.etag.clone(),
            last_modified: meta.last_modified,
            enqueued_ms: now,
            attempts: 0,
            next_attempt_ms: 0,
            last_error: None,
        },
    )?;
    meta.replication_status = Some(PENDING.to_string());
    Ok(true)
}

/// Enqueues the delete of `old` when a rule that replicates deletes matches it.
pub fn enqueue_delete(
    config: &Table<'_, (&'static str, &'static str), &'static [u8]>,
    queue: &mut Table<'_, u64, &'static [u8]>,
    bucket: &str,
    key: &str,
    old: &ObjectMeta,
    now: i64,
) -> Result<(), StoreError> {
    let Some(cfg) = rules(config, bucket)? else {
        return Ok(());
    };
    let Some(rule) = cfg.rule_for(key, &old.tags).filter(|r| r.replicate_deletes) else {
        return Ok(());
    };
    push(
        queue,
        &ReplicationTask {
            bucket: bucket.to_string(),
            key: key.to_string(),
            op: TaskOp::Delete,
            rule_id: rule.id.clone(),
            target: rule.destination.target.clone(),
            dest_bucket: rule.destination.bucket.clone(),
            etag: old.etag.clone(),
            last_modified: old.last_modified,
            enqueued_ms: now,
            attempts: 0,
            next_attempt_ms: 0,
            last_error: None,
        },
    )
}

/// Tasks whose time has come, oldest first, at most one per key: a key whose oldest task is
/// still waiting out its backoff yields nothing, so a key's writes and deletes are carried in
/// the order they were made. Rows that do not decode are logged and skipped.
pub fn due(
    queue: &impl ReadableTable<u64, &'static [u8]>,
    now: i64,
    limit: usize,
) -> Result<Vec<(u64, ReplicationTask)>, StoreError> {
    let mut out = Vec::new();
    let mut keys = std::collections::HashSet::new();
    for row in queue.range(1..)? {
        let (k, v) = row?;
        let task: ReplicationTask = match decode(v.value()) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(seq = k.value(), error = %e, "replication task unreadable; skipped");
                continue;
            }
        };
        if !keys.insert((task.bucket.clone(), task.key.clone())) {
            continue;
        }
        if task.next_attempt_ms <= now {
            out.push((k.value(), task));
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}
