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
/// Bucket config kind present while `sluice admin replication pause` holds a bucket's queue.
pub const PAUSED_CONFIG: &str = "replication-paused";

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
    /// Tasks the same write made (one per destination); the object's status waits for all.
    #[serde(default = "one")]
    pub fanout: u32,
}

fn one() -> u32 {
    1
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

/// Woken after a commit that enqueued tasks, so idle workers start at once rather than at
/// their next poll.
pub static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();
/// Set by `push` in the committer's transaction; taken after its commit.
static PUSHED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Wakes the workers when the transaction just committed enqueued anything.
pub fn wake_after_commit() {
    if PUSHED.swap(false, std::sync::atomic::Ordering::AcqRel) {
        WAKE.notify_waiters();
    }
}

fn push(
    queue: &mut Table<'_, u64, &'static [u8]>,
    task: &ReplicationTask,
) -> Result<(), StoreError> {
    PUSHED.store(true, std::sync::atomic::Ordering::Release);
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

/// A write or delete to be carried to the destinations of `rules`.
struct Write<'a> {
    bucket: &'a str,
    key: &'a str,
    op: TaskOp,
    /// The object written, or the one deleted.
    object: &'a ObjectMeta,
    /// When (Unix ms).
    at: i64,
}

/// One task per rule (each a distinct destination).
fn push_all(
    queue: &mut Table<'_, u64, &'static [u8]>,
    write: &Write<'_>,
    rules: &[&crate::replication::Rule],
) -> Result<(), StoreError> {
    for rule in rules {
        push(
            queue,
            &ReplicationTask {
                bucket: write.bucket.to_string(),
                key: write.key.to_string(),
                op: write.op.clone(),
                rule_id: rule.id.clone(),
                target: rule.destination.target.clone(),
                dest_bucket: rule.destination.bucket.clone(),
                etag: write.object.etag.clone(),
                last_modified: write.object.last_modified,
                enqueued_ms: write.at,
                attempts: 0,
                next_attempt_ms: 0,
                last_error: None,
                fanout: rules.len() as u32,
            },
        )?;
    }
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
    // A replica from another site is never sent onwards (loop prevention).
    if meta.replication_status.as_deref() == Some(super::REPLICA) {
        return Ok(false);
    }
    let Some(cfg) = rules(config, bucket)? else {
        return Ok(false);
    };
    let rules = cfg.rules_for(key, &meta.tags);
    if rules.is_empty() {
        return Ok(false);
    }
    let write = Write {
        bucket,
        key,
        op: TaskOp::Put,
        object: meta,
        at: now,
    };
    push_all(queue, &write, &rules)?;
    meta.replication_status = Some(PENDING.to_string());
    Ok(true)
}

/// Whether `bucket` has replication rules (its deletes then leave tombstones).
pub fn has_rules(
    config: &Table<'_, (&'static str, &'static str), &'static [u8]>,
    bucket: &str,
) -> Result<bool, StoreError> {
    Ok(config.get((bucket, RULES_CONFIG))?.is_some())
}

/// Enqueues the delete of `old` (made at `deleted_at`, Unix ms) when a rule that replicates
/// deletes matches it.
pub fn enqueue_delete(
    config: &Table<'_, (&'static str, &'static str), &'static [u8]>,
    queue: &mut Table<'_, u64, &'static [u8]>,
    bucket: &str,
    key: &str,
    old: &ObjectMeta,
    deleted_at: i64,
) -> Result<(), StoreError> {
    let Some(cfg) = rules(config, bucket)? else {
        return Ok(());
    };
    let rules: Vec<_> = cfg
        .rules_for(key, &old.tags)
        .into_iter()
        .filter(|r| r.replicate_deletes)
        .collect();
    let write = Write {
        bucket,
        key,
        op: TaskOp::Delete,
        object: old,
        // The time of the delete (last-writer-wins at the destination compares it).
        at: deleted_at,
    };
    push_all(queue, &write, &rules)?;
    Ok(())
}

/// Whether another task for the same write as `task` (another destination) is still queued.
pub fn has_siblings(
    queue: &impl ReadableTable<u64, &'static [u8]>,
    seq: u64,
    task: &ReplicationTask,
) -> Result<bool, StoreError> {
    if task.fanout <= 1 {
        return Ok(false);
    }
    for row in queue.range(1..)? {
        let (k, v) = row?;
        if k.value() == seq {
            continue;
        }
        if let Ok(other) = decode::<ReplicationTask>(v.value())
            && other.bucket == task.bucket
            && other.key == task.key
            && other.etag == task.etag
            && other.last_modified == task.last_modified
            && other.op == task.op
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Tasks for `target` whose time has come, oldest first, at most one per key: a key whose oldest task is
/// still waiting out its backoff yields nothing, so a key's writes and deletes are carried in
/// the order they were made. Buckets whose replication is paused yield nothing. Rows that do
/// not decode are logged and skipped.
pub fn due(
    queue: &impl ReadableTable<u64, &'static [u8]>,
    config: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    target: &str,
    now: i64,
    limit: usize,
) -> Result<Vec<(u64, ReplicationTask)>, StoreError> {
    let mut out = Vec::new();
    let mut keys = std::collections::HashSet::new();
    let mut paused: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
    for row in queue.range(1..)? {
        let (k, v) = row?;
        let task: ReplicationTask = match decode(v.value()) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(seq = k.value(), error = %e, "replication task unreadable; skipped");
                continue;
            }
        };
        if task.target != target || !keys.insert((task.bucket.clone(), task.key.clone())) {
            continue;
        }
        let held = match paused.get(&task.bucket) {
            Some(p) => *p,
            None => {
                let p = config.get((task.bucket.as_str(), PAUSED_CONFIG))?.is_some();
                paused.insert(task.bucket.clone(), p);
                p
            }
        };
        if !held && task.next_attempt_ms <= now {
            out.push((k.value(), task));
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}

/// What waits in the queue, for one bucket or all.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Backlog {
    /// Tasks not yet carried.
    pub tasks: u64,
    /// Of those, tasks that failed at least once and wait out a backoff.
    pub retrying: u64,
    /// When the oldest waiting task was enqueued (Unix milliseconds).
    pub oldest_enqueued_ms: Option<i64>,
    /// The most recent failure reason among waiting tasks.
    pub last_error: Option<String>,
    /// Targets the waiting tasks go to.
    #[serde(skip)]
    pub targets: std::collections::BTreeSet<String>,
}

impl Backlog {
    /// How long the oldest waiting task has waited at `now_ms`, in seconds.
    pub fn lag_seconds(&self, now_ms: i64) -> Option<f64> {
        self.oldest_enqueued_ms
            .map(|t| (now_ms - t).max(0) as f64 / 1000.0)
    }
}

pub fn backlog(
    queue: &impl ReadableTable<u64, &'static [u8]>,
    bucket: Option<&str>,
) -> Result<Backlog, StoreError> {
    let mut out = Backlog::default();
    for row in queue.range(1..)? {
        let (_, v) = row?;
        let Ok(task) = decode::<ReplicationTask>(v.value()) else {
            continue;
        };
        if bucket.is_some_and(|b| b != task.bucket) {
            continue;
        }
        out.tasks += 1;
        if !out.targets.contains(&task.target) {
            out.targets.insert(task.target.clone());
        }
        if task.attempts > 0 {
            out.retrying += 1;
            if task.last_error.is_some() {
                out.last_error = task.last_error.clone();
            }
        }
        let oldest = out.oldest_enqueued_ms.get_or_insert(task.enqueued_ms);
        *oldest = (*oldest).min(task.enqueued_ms);
    }
    Ok(out)
}
