//! The durable replication queue: a write that matches one of its bucket's replication rules
//! enqueues a task in the same redb transaction that commits it, so an acknowledged write is
//! never lost to replication (also across kill -9). Workers take due tasks, and finish or
//! reschedule them.

use redb::{ReadableTable, Table, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::local::{decode, encode};
use super::tables::{
    REPLICATION_KEY_ORDER, REPLICATION_QUEUE, REPLICATION_RETRYING, REPLICATION_SCHEDULE,
};
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

/// The queue's tables, open in one write transaction: the tasks by sequence number and the
/// indexes over them, which every change below keeps in step.
pub struct Queue<'t> {
    tasks: Table<'t, u64, &'static [u8]>,
    indexes: Indexes<'t>,
}

struct Indexes<'t> {
    schedule: Table<'t, (&'static str, i64, u64), (&'static str, &'static str)>,
    key_order: Table<'t, (&'static str, &'static str, &'static str, u64), ()>,
    retrying: Table<'t, u64, ()>,
}

impl<'t> Indexes<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self, StoreError> {
        Ok(Indexes {
            schedule: txn.open_table(REPLICATION_SCHEDULE)?,
            key_order: txn.open_table(REPLICATION_KEY_ORDER)?,
            retrying: txn.open_table(REPLICATION_RETRYING)?,
        })
    }

    /// Puts task `seq` in every index.
    fn insert(&mut self, seq: u64, task: &ReplicationTask) -> Result<(), StoreError> {
        self.schedule.insert(
            (task.target.as_str(), task.next_attempt_ms, seq),
            (task.bucket.as_str(), task.key.as_str()),
        )?;
        self.key_order.insert(
            (
                task.target.as_str(),
                task.bucket.as_str(),
                task.key.as_str(),
                seq,
            ),
            (),
        )?;
        if task.attempts > 0 {
            self.retrying.insert(seq, ())?;
        }
        Ok(())
    }

    /// Takes task `seq` out of every index.
    fn remove(&mut self, seq: u64, task: &ReplicationTask) -> Result<(), StoreError> {
        self.schedule
            .remove((task.target.as_str(), task.next_attempt_ms, seq))?;
        self.key_order.remove((
            task.target.as_str(),
            task.bucket.as_str(),
            task.key.as_str(),
            seq,
        ))?;
        if task.attempts > 0 {
            self.retrying.remove(seq)?;
        }
        Ok(())
    }
}

impl<'t> Queue<'t> {
    pub fn open(txn: &'t WriteTransaction) -> Result<Self, StoreError> {
        Ok(Queue {
            tasks: txn.open_table(REPLICATION_QUEUE)?,
            indexes: Indexes::open(txn)?,
        })
    }

    /// Rebuilds the indexes from the tasks (at start-up: a queue written before the indexes
    /// existed gets them, and they can never drift from the tasks across restarts). Returns the
    /// number of tasks indexed.
    pub fn reindex(txn: &'t WriteTransaction) -> Result<u64, StoreError> {
        txn.delete_table(REPLICATION_SCHEDULE)?;
        txn.delete_table(REPLICATION_KEY_ORDER)?;
        txn.delete_table(REPLICATION_RETRYING)?;
        let Queue { tasks, mut indexes } = Queue::open(txn)?;
        let mut indexed = 0;
        for row in tasks.range(1..)? {
            let (k, v) = row?;
            match decode::<ReplicationTask>(v.value()) {
                Ok(task) => {
                    indexes.insert(k.value(), &task)?;
                    indexed += 1;
                }
                Err(e) => {
                    tracing::error!(seq = k.value(), error = %e, "replication task unreadable; skipped");
                }
            }
        }
        Ok(indexed)
    }

    fn push(&mut self, task: &ReplicationTask) -> Result<(), StoreError> {
        PUSHED.store(true, std::sync::atomic::Ordering::Release);
        let next = match self.tasks.get(COUNTER)? {
            Some(v) => <[u8; 8]>::try_from(v.value())
                .map(u64::from_be_bytes)
                .unwrap_or(1),
            None => 1,
        }
        .max(1);
        self.tasks.insert(
            COUNTER,
            next.wrapping_add(1).max(1).to_be_bytes().as_slice(),
        )?;
        self.tasks.insert(next, encode(task).as_slice())?;
        self.indexes.insert(next, task)
    }

    /// Removes task `seq` and its index entries; returns it as it was stored.
    pub fn remove(&mut self, seq: u64) -> Result<Option<ReplicationTask>, StoreError> {
        let stored = match self.tasks.remove(seq)? {
            Some(v) => decode::<ReplicationTask>(v.value()),
            None => return Ok(None),
        };
        match stored {
            Ok(task) => {
                self.indexes.remove(seq, &task)?;
                Ok(Some(task))
            }
            // Not indexed either (see `reindex`).
            Err(_) => Ok(None),
        }
    }

    /// Stores `task` (a new attempt count and time) for `seq`, if it is still queued.
    pub fn reschedule(&mut self, seq: u64, task: &ReplicationTask) -> Result<(), StoreError> {
        if self.remove(seq)?.is_some() {
            self.tasks.insert(seq, encode(task).as_slice())?;
            self.indexes.insert(seq, task)?;
        }
        Ok(())
    }

    /// Whether another task for the same write as `task` (another destination) is still queued.
    /// One write's tasks are pushed together in one transaction, so their sequence numbers are
    /// consecutive: only the `fanout - 1` numbers on either side can hold one.
    pub fn has_siblings(&self, seq: u64, task: &ReplicationTask) -> Result<bool, StoreError> {
        if task.fanout <= 1 {
            return Ok(false);
        }
        let span = u64::from(task.fanout - 1);
        let (first, last) = (seq.saturating_sub(span).max(1), seq.saturating_add(span));
        for row in self.tasks.range(first..=last)? {
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
    queue: &mut Queue<'_>,
    write: &Write<'_>,
    rules: &[&crate::replication::Rule],
) -> Result<(), StoreError> {
    let now = super::precise_now_ms();
    for rule in rules {
        queue.push(&ReplicationTask {
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
            // Due from now: a retry that falls due at T sorts among the writes made at T, not
            // behind every later one.
            next_attempt_ms: now,
            last_error: None,
            fanout: rules.len() as u32,
        })?;
    }
    Ok(())
}

/// Enqueues a put of `meta` when a rule of `bucket` matches; marks `meta` PENDING then.
pub fn enqueue_put(
    config: &Table<'_, (&'static str, &'static str), &'static [u8]>,
    queue: &mut Queue<'_>,
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
    queue: &mut Queue<'_>,
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

/// Tasks for `target` whose time has come, soonest due first, at most one per key: a key whose
/// oldest task is still waiting out its backoff yields nothing, so a key's writes and deletes
/// are carried in the order they were made. Buckets whose replication is paused yield nothing.
/// Reads only the target's due entries of the schedule (and each one's key order), however
/// many tasks wait out a backoff behind them.
pub fn due(
    tasks: &impl ReadableTable<u64, &'static [u8]>,
    schedule: &impl ReadableTable<(&'static str, i64, u64), (&'static str, &'static str)>,
    key_order: &impl ReadableTable<(&'static str, &'static str, &'static str, u64), ()>,
    config: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    target: &str,
    now: i64,
    limit: usize,
) -> Result<Vec<(u64, ReplicationTask)>, StoreError> {
    let mut out = Vec::new();
    let mut paused: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
    for row in
        schedule.range::<(&str, i64, u64)>((target, i64::MIN, 0)..=(target, now, u64::MAX))?
    {
        let (k, v) = row?;
        let (_, at, seq) = k.value();
        let (bucket, key) = v.value();
        let held = match paused.get(bucket) {
            Some(p) => *p,
            None => {
                let p = config.get((bucket, PAUSED_CONFIG))?.is_some();
                paused.insert(bucket.to_string(), p);
                p
            }
        };
        if held {
            continue;
        }
        let oldest = key_order
            .range::<(&str, &str, &str, u64)>((target, bucket, key, 0)..)?
            .next()
            .transpose()?
            .map(|(k, _)| k.value().3);
        if oldest != Some(seq) {
            continue;
        }
        let Some(row) = tasks.get(seq)? else {
            continue;
        };
        let task: ReplicationTask = match decode(row.value()) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(seq, error = %e, "replication task unreadable; skipped");
                continue;
            }
        };
        // An index entry that does not describe its task (only a damaged store makes one) is
        // passed over rather than trusted.
        if task.target != target
            || task.next_attempt_ms != at
            || task.bucket != bucket
            || task.key != key
        {
            tracing::error!(
                seq,
                "replication schedule entry does not match its task; skipped"
            );
            continue;
        }
        out.push((seq, task));
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// The targets that have tasks queued: one look-up per target, not a read of every task.
pub fn queued_targets(
    schedule: &impl ReadableTable<(&'static str, i64, u64), (&'static str, &'static str)>,
) -> Result<std::collections::BTreeSet<String>, StoreError> {
    let mut out = std::collections::BTreeSet::new();
    // Every key of a target sorts after (target, ..) and before (target + NUL, ..); target
    // names are lowercase letters, digits and hyphens.
    let mut from = String::new();
    while let Some(row) = schedule
        .range::<(&str, i64, u64)>((from.as_str(), i64::MIN, 0)..)?
        .next()
    {
        let (k, _) = row?;
        let target = k.value().0.to_string();
        from = format!("{target}\0");
        out.insert(target);
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
}

impl Backlog {
    /// How long the oldest waiting task has waited at `now_ms`, in seconds.
    pub fn lag_seconds(&self, now_ms: i64) -> Option<f64> {
        self.oldest_enqueued_ms
            .map(|t| (now_ms - t).max(0) as f64 / 1000.0)
    }
}

/// The whole queue's backlog, for the metrics, without reading every task: the counts are the
/// tables' lengths (a task row that cannot be read counts too: it never drains) and the lag runs
/// from the first readable task in queue order, the one waiting longest. No failure reason is
/// given.
pub fn totals(
    queue: &impl ReadableTable<u64, &'static [u8]>,
    retrying: &impl ReadableTable<u64, ()>,
) -> Result<Backlog, StoreError> {
    let counter = u64::from(queue.get(COUNTER)?.is_some());
    let mut oldest_enqueued_ms = None;
    for row in queue.range(1..)?.take(1000) {
        if let Ok(task) = decode::<ReplicationTask>(row?.1.value()) {
            oldest_enqueued_ms = Some(task.enqueued_ms);
            break;
        }
    }
    Ok(Backlog {
        tasks: queue.len()?.saturating_sub(counter),
        retrying: retrying.len()?,
        oldest_enqueued_ms,
        last_error: None,
    })
}

/// The backlog of one bucket's tasks (or of all), read task by task, with the latest failure
/// reason (`sluice admin replication status`).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tables::BUCKET_CONFIG;
    use redb::{Database, ReadableDatabase};

    fn db() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("q.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(BUCKET_CONFIG).unwrap();
        Queue::open(&txn).unwrap();
        txn.commit().unwrap();
        (dir, db)
    }

    fn task(target: &str, key: &str, etag: &str, fanout: u32) -> ReplicationTask {
        ReplicationTask {
            bucket: "b".into(),
            key: key.into(),
            op: TaskOp::Put,
            rule_id: "r".into(),
            target: target.into(),
            dest_bucket: "d".into(),
            etag: etag.into(),
            last_modified: 1,
            enqueued_ms: 1,
            attempts: 0,
            next_attempt_ms: 0,
            last_error: None,
            fanout,
        }
    }

    fn push(db: &Database, tasks: &[ReplicationTask]) {
        let txn = db.begin_write().unwrap();
        {
            let mut q = Queue::open(&txn).unwrap();
            for t in tasks {
                q.push(t).unwrap();
            }
        }
        txn.commit().unwrap();
    }

    fn with_queue<R>(db: &Database, f: impl FnOnce(&mut Queue<'_>) -> R) -> R {
        let txn = db.begin_write().unwrap();
        let r = {
            let mut q = Queue::open(&txn).unwrap();
            f(&mut q)
        };
        txn.commit().unwrap();
        r
    }

    /// (seq, key) of what `due` gives `target` at `now`.
    fn due_keys(db: &Database, target: &str, now: i64) -> Vec<(u64, String)> {
        due_keys_limited(db, target, now, 100)
    }

    fn due_keys_limited(db: &Database, target: &str, now: i64, limit: usize) -> Vec<(u64, String)> {
        let txn = db.begin_read().unwrap();
        due(
            &txn.open_table(REPLICATION_QUEUE).unwrap(),
            &txn.open_table(REPLICATION_SCHEDULE).unwrap(),
            &txn.open_table(REPLICATION_KEY_ORDER).unwrap(),
            &txn.open_table(BUCKET_CONFIG).unwrap(),
            target,
            now,
            limit,
        )
        .unwrap()
        .into_iter()
        .map(|(seq, t)| (seq, t.key))
        .collect()
    }

    #[test]
    fn due_gives_each_key_its_oldest_task_and_skips_backoffs_and_other_targets() {
        let (_dir, db) = db();
        push(
            &db,
            &[
                task("dr", "a", "1", 1),    // 1
                task("dr", "b", "1", 1),    // 2
                task("other", "a", "1", 1), // 3
                task("dr", "a", "2", 1),    // 4: waits for 1
                task("dr", "c", "1", 1),    // 5
            ],
        );
        let k = |v: &[(u64, &str)]| -> Vec<(u64, String)> {
            v.iter().map(|(s, k)| (*s, k.to_string())).collect()
        };
        assert_eq!(due_keys(&db, "dr", 10), k(&[(1, "a"), (2, "b"), (5, "c")]));
        assert_eq!(due_keys(&db, "other", 10), k(&[(3, "a")]));
        // Task 1 fails and backs off until 100: key a yields nothing (4 must not overtake it).
        let mut retry = task("dr", "a", "1", 1);
        retry.attempts = 1;
        retry.next_attempt_ms = 100;
        with_queue(&db, |q| q.reschedule(1, &retry).unwrap());
        assert_eq!(due_keys(&db, "dr", 10), k(&[(2, "b"), (5, "c")]));
        // Its time comes; then it is done and 4 is next for key a.
        assert_eq!(due_keys(&db, "dr", 100), k(&[(2, "b"), (5, "c"), (1, "a")]));
        let removed = with_queue(&db, |q| q.remove(1).unwrap());
        assert_eq!(removed.map(|t| t.attempts), Some(1));
        assert_eq!(due_keys(&db, "dr", 10), k(&[(2, "b"), (4, "a"), (5, "c")]));
        // A reschedule of a task already done stores nothing.
        with_queue(&db, |q| q.reschedule(1, &retry).unwrap());
        assert_eq!(due_keys(&db, "dr", 1000).len(), 3);
    }

    #[test]
    fn paused_buckets_yield_nothing() {
        let (_dir, db) = db();
        push(&db, &[task("dr", "a", "1", 1)]);
        let txn = db.begin_write().unwrap();
        txn.open_table(BUCKET_CONFIG)
            .unwrap()
            .insert(("b", PAUSED_CONFIG), b"{}".as_slice())
            .unwrap();
        txn.commit().unwrap();
        assert!(due_keys(&db, "dr", 10).is_empty());
    }

    #[test]
    fn siblings_are_the_same_writes_other_destinations_only() {
        let (_dir, db) = db();
        push(&db, &[task("x", "a", "0", 1)]); // 1
        push(&db, &[task("dr", "a", "1", 2), task("up", "a", "1", 2)]); // 2, 3
        push(&db, &[task("dr", "a", "2", 2), task("up", "a", "2", 2)]); // 4, 5
        with_queue(&db, |q| {
            let t2 = q.remove(2).unwrap().unwrap();
            assert!(q.has_siblings(2, &t2).unwrap(), "3 is still queued");
            let t3 = q.remove(3).unwrap().unwrap();
            // Only 2..=4 can hold a sibling of 3 (fanout 2): 2 is gone, 4 is another write.
            assert!(!q.has_siblings(3, &t3).unwrap());
            let t5 = q.remove(5).unwrap().unwrap();
            assert!(q.has_siblings(5, &t5).unwrap(), "4 is still queued");
        });
    }

    /// The metrics' totals (from the tables' sizes) agree with reading every task.
    fn assert_totals_match(db: &Database) -> Backlog {
        let txn = db.begin_read().unwrap();
        let tasks = txn.open_table(REPLICATION_QUEUE).unwrap();
        let fast = totals(&tasks, &txn.open_table(REPLICATION_RETRYING).unwrap()).unwrap();
        let slow = backlog(&tasks, None).unwrap();
        assert_eq!(
            (fast.tasks, fast.retrying, fast.oldest_enqueued_ms),
            (slow.tasks, slow.retrying, slow.oldest_enqueued_ms)
        );
        fast
    }

    #[test]
    fn totals_count_tasks_and_retries_without_reading_them() {
        let (_dir, db) = db();
        assert_eq!(assert_totals_match(&db).tasks, 0);
        let mut tasks: Vec<ReplicationTask> = (0..6)
            .map(|i| task("dr", &format!("k{i}"), "1", 1))
            .collect();
        for (i, t) in tasks.iter_mut().enumerate() {
            t.enqueued_ms = 100 + i as i64;
        }
        push(&db, &tasks);
        let b = assert_totals_match(&db);
        assert_eq!(
            (b.tasks, b.retrying, b.oldest_enqueued_ms),
            (6, 0, Some(100))
        );
        // Two fail and are rescheduled (one twice); the oldest is carried.
        with_queue(&db, |q| {
            for (seq, attempts) in [(2, 1), (3, 1), (3, 2)] {
                let mut t = tasks[seq as usize - 1].clone();
                t.attempts = attempts;
                t.next_attempt_ms = 50 * i64::from(attempts);
                q.reschedule(seq, &t).unwrap();
            }
            q.remove(1).unwrap();
        });
        let b = assert_totals_match(&db);
        assert_eq!(
            (b.tasks, b.retrying, b.oldest_enqueued_ms),
            (5, 2, Some(101))
        );
        // A retried task carried at last leaves the count; a rebuild keeps the counts.
        with_queue(&db, |q| q.remove(3).unwrap());
        let b = assert_totals_match(&db);
        assert_eq!((b.tasks, b.retrying), (4, 1));
        let txn = db.begin_write().unwrap();
        Queue::reindex(&txn).unwrap();
        txn.commit().unwrap();
        let b = assert_totals_match(&db);
        assert_eq!((b.tasks, b.retrying), (4, 1));
    }

    #[test]
    fn reindex_rebuilds_the_schedule_from_the_tasks() {
        let (_dir, db) = db();
        push(
            &db,
            &[
                task("dr", "a", "1", 1),
                task("dr", "a", "2", 1),
                task("up", "b", "1", 1),
            ],
        );
        // As a queue written before the indexes existed: tasks only.
        let txn = db.begin_write().unwrap();
        txn.delete_table(REPLICATION_SCHEDULE).unwrap();
        txn.delete_table(REPLICATION_KEY_ORDER).unwrap();
        txn.commit().unwrap();
        let txn = db.begin_write().unwrap();
        assert_eq!(Queue::reindex(&txn).unwrap(), 3);
        txn.commit().unwrap();
        assert_eq!(due_keys(&db, "dr", 10), vec![(1, "a".to_string())]);
        let txn = db.begin_read().unwrap();
        let targets = queued_targets(&txn.open_table(REPLICATION_SCHEDULE).unwrap()).unwrap();
        assert_eq!(
            targets.into_iter().collect::<Vec<_>>(),
            vec!["dr".to_string(), "up".to_string()]
        );
    }

    #[test]
    fn a_retry_that_fell_due_comes_before_later_writes() {
        let (_dir, db) = db();
        push(&db, &[task("dr", "a", "1", 1)]); // 1
        let mut retry = task("dr", "a", "1", 1);
        retry.attempts = 1;
        retry.next_attempt_ms = 50;
        with_queue(&db, |q| q.reschedule(1, &retry).unwrap());
        // Written at 60, after the retry fell due.
        let later: Vec<_> = ["b", "c", "d"]
            .iter()
            .map(|k| {
                let mut t = task("dr", k, "1", 1);
                t.next_attempt_ms = 60;
                t
            })
            .collect();
        push(&db, &later); // 2, 3, 4
        assert_eq!(
            due_keys_limited(&db, "dr", 100, 2),
            vec![(1, "a".to_string()), (2, "b".to_string())]
        );
        assert_eq!(
            due_keys_limited(&db, "dr", 55, 2),
            vec![(1, "a".to_string())]
        );
    }

    #[test]
    fn queued_targets_tells_apart_names_that_share_a_prefix() {
        let (_dir, db) = db();
        push(
            &db,
            &[
                task("dr-2", "a", "1", 1),
                task("dr", "a", "1", 1),
                task("d", "b", "1", 1),
                task("dr", "c", "1", 1),
            ],
        );
        let txn = db.begin_read().unwrap();
        let targets = queued_targets(&txn.open_table(REPLICATION_SCHEDULE).unwrap()).unwrap();
        assert_eq!(
            targets.into_iter().collect::<Vec<_>>(),
            vec!["d".to_string(), "dr".to_string(), "dr-2".to_string()]
        );
        drop(txn);
        assert_eq!(due_keys(&db, "dr", 10).len(), 2);
        assert_eq!(due_keys(&db, "dr-2", 10), vec![(1, "a".to_string())]);
    }
}
