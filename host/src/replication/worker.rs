//! Replication workers: take due tasks from the durable queue, stream each object from the store
//! (decrypted with its data key) to the target's plugin, and finish or reschedule the task.
//!
//! - A task whose object changed since (another ETag or time) is dropped: the newer write has
//!   its own task, so a later version supersedes a pending earlier one.
//! - Transient failures (a target that is down, traps, time limits) are retried with exponential
//!   backoff and jitter, for as long as it takes; a target that refuses the object (`invalid`,
//!   `denied`) marks it FAILED. SSE-C objects cannot be replicated (the host never holds their
//!   key): they are marked FAILED with that reason.
//! - Tasks for one key are never in flight together.
//! - Each target has its own loop and `workers`, so a slow or broken target delays only its own
//!   queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use rand::Rng;

use crate::crypto::SseMode;
use crate::plugins::PluginError;
use crate::plugins::bindings::replication_target::exports::sluice::plugin::replication::{
    DeleteInfo, ObjectInfo, TargetInfo,
};
use crate::replication::TargetSpec;
use crate::s3::App;
use crate::store::precise_now_ms as now_ms;
use crate::store::replication_queue::{COMPLETED, FAILED, ReplicationTask, TaskOp};

/// Tasks taken from the queue at a time.
const BATCH: usize = 64;
const IDLE: Duration = Duration::from_millis(200);
/// How often tasks for targets no longer configured are looked for.
const ORPHAN_SWEEP: Duration = Duration::from_secs(60);
/// How long a delete's tombstone is kept after this store recorded it (it refuses a replica
/// older than the delete; see `store::tables::TOMBSTONES`): a write queued at another site that
/// arrives later than this after the delete is taken like any other.
pub const TOMBSTONE_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// How often tombstones past their retention are removed.
const TOMBSTONE_SWEEP: Duration = Duration::from_secs(3600);
const BACKOFF_BASE_MS: i64 = 500;
const BACKOFF_MAX_MS: i64 = 60_000;
/// The longest a target's loop rests after rounds in which it took nothing (see `run_target`).
const TARGET_REST_MAX_MS: i64 = 10_000;

enum Delivery {
    /// Done: set this status on the object (none when the object moved on).
    Done(Option<&'static str>),
    Retry(String),
}

/// Counters for `/_sluice/metrics` (queue depth and lag are read from the queue itself).
#[derive(Default)]
pub struct ReplicationMetrics {
    /// Writes and deletes a target took.
    pub completed: AtomicU64,
    /// Tasks given up as FAILED.
    pub failed: AtomicU64,
    /// Deliveries that failed and were rescheduled.
    pub retries: AtomicU64,
    /// Object bytes targets took.
    pub bytes: AtomicU64,
}

/// Delay before attempt `attempts + 1`: exponential, capped, with ±50 % jitter.
pub fn backoff_ms(attempts: u32) -> i64 {
    let exp = BACKOFF_BASE_MS.saturating_mul(1i64 << attempts.min(10));
    let capped = exp.min(BACKOFF_MAX_MS);
    let jitter = rand::thread_rng().gen_range(0.5..1.5);
    (capped as f64 * jitter) as i64
}

/// Starts one delivery loop per configured target, and ends the tasks of targets no longer
/// configured as FAILED (at start, then every minute).
pub fn spawn(app: Arc<App>) {
    for spec in app.config.replication_targets.clone() {
        let app = app.clone();
        tokio::spawn(async move { run_target(app, spec).await });
    }
    // Tombstones of buckets with rules would otherwise grow with every key ever deleted.
    let sweeper = app.clone();
    tokio::spawn(async move {
        loop {
            let before = now_ms() - TOMBSTONE_RETENTION.as_millis() as i64;
            match sweeper.store.prune_tombstones(before).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(found = n, "replication tombstones past retention pruned")
                }
                Err(e) => tracing::error!(error = %e, "pruning replication tombstones failed"),
            }
            tokio::time::sleep(TOMBSTONE_SWEEP).await;
        }
    });
    // Rules stored before a target left the config still enqueue for it: look again now and
    // then.
    tokio::spawn(async move {
        loop {
            fail_orphans(&app).await;
            tokio::time::sleep(ORPHAN_SWEEP).await;
        }
    });
}

async fn fail_orphans(app: &App) {
    let queued = match app.store.replication_targets_queued().await {
        Ok(targets) => targets,
        Err(e) => {
            tracing::error!(error = %e, "replication queue unreadable");
            return;
        }
    };
    let configured = &app.config.replication_targets;
    for name in queued
        .iter()
        .filter(|n| !configured.iter().any(|t| &t.name == *n))
    {
        loop {
            let due = match app.store.replication_due(name, i64::MAX, BATCH).await {
                Ok(d) if !d.is_empty() => d,
                _ => break,
            };
            for (seq, task) in due {
                log_failure(&task, "the target is no longer configured");
                if let Err(e) = finish(app, seq, &task, Some(FAILED)).await {
                    tracing::error!(error = %e, "replication queue update failed");
                    return;
                }
            }
        }
    }
}

async fn run_target(app: Arc<App>, spec: TargetSpec) {
    // Rounds in a row in which every delivery failed. A target that is down fails every task
    // it is offered, so trying each new write as it comes would cost an attempt and a queue
    // update per write for nothing: after such a round the loop rests (exponentially longer,
    // up to TARGET_REST_MAX_MS) and then offers one round again.
    let mut failed_rounds: u32 = 0;
    let mut rest_due = false;
    loop {
        // Once after each failed round; a poll that found nothing does not rest again.
        if std::mem::take(&mut rest_due) {
            let rest = backoff_ms(failed_rounds.saturating_sub(1)).min(TARGET_REST_MAX_MS);
            tokio::time::sleep(Duration::from_millis(rest.max(0) as u64)).await;
        }
        // Listen before looking, so a commit between the look and the wait is not missed.
        let woken = crate::store::replication_queue::WAKE.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let due = match app.store.replication_due(&spec.name, now_ms(), BATCH).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(target = %spec.name, error = %e, "replication queue unreadable");
                tokio::time::sleep(IDLE * 5).await;
                continue;
            }
        };
        if due.is_empty() {
            // New tasks wake the loop; the poll still comes round for retries whose backoff
            // ran out.
            tokio::select! {
                _ = &mut woken => {}
                _ = tokio::time::sleep(IDLE) => {}
            }
            continue;
        }
        // The sealed credentials are opened once per round, not per object (a change made with
        // `sluice admin replication credentials` applies from the next round).
        let target = target_info(&app, &spec);
        // `due` holds at most one task per key, so a key's writes stay in order.
        let took = AtomicU64::new(0);
        futures::stream::iter(due)
            .for_each_concurrent(spec.workers, |(seq, task)| {
                let app = app.clone();
                let (spec, target, took) = (&spec, &target, &took);
                async move {
                    if process(&app, spec, target, seq, task).await {
                        took.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
            .await;
        if took.load(Ordering::Relaxed) == 0 {
            failed_rounds = failed_rounds.saturating_add(1);
            rest_due = true;
        } else {
            failed_rounds = 0;
        }
    }
}

/// Removes a task that is done, setting `status` on its object and counting failures.
async fn finish(
    app: &App,
    seq: u64,
    task: &ReplicationTask,
    status: Option<&'static str>,
) -> Result<(), crate::store::StoreError> {
    if status == Some(FAILED) {
        app.metrics
            .replication
            .failed
            .fetch_add(1, Ordering::Relaxed);
    }
    app.store.finish_replication(seq, task, status).await
}

/// Delivers one task and finishes or reschedules it; false when it is to be retried.
async fn process(
    app: &App,
    spec: &TargetSpec,
    target: &Result<TargetInfo, String>,
    seq: u64,
    mut task: ReplicationTask,
) -> bool {
    let delivery = deliver(app, spec, target, &task).await;
    let done = matches!(delivery, Delivery::Done(_));
    let result = match delivery {
        Delivery::Done(status) => finish(app, seq, &task, status).await,
        Delivery::Retry(reason) => {
            app.metrics
                .replication
                .retries
                .fetch_add(1, Ordering::Relaxed);
            task.attempts = task.attempts.saturating_add(1);
            task.next_attempt_ms = now_ms() + backoff_ms(task.attempts);
            tracing::warn!(
                bucket = %task.bucket,
                key = %task.key,
                target = %task.target,
                attempts = task.attempts,
                %reason,
                "replication will be retried"
            );
            task.last_error = Some(reason);
            app.store.reschedule_replication(seq, &task).await
        }
    };
    if let Err(e) = result {
        tracing::error!(error = %e, "replication queue update failed");
        // The task is still due: do not spin on it.
        tokio::time::sleep(IDLE * 5).await;
    }
    done
}

/// A target that refused the object itself; anything else is worth another try.
fn refused(e: &PluginError) -> bool {
    use crate::plugins::bindings::types::Error as E;
    matches!(
        e,
        PluginError::Plugin {
            error: E::Invalid(_) | E::Denied(_),
            ..
        }
    )
}

fn log_failure(task: &ReplicationTask, reason: &str) {
    tracing::warn!(bucket = %task.bucket, key = %task.key, target = %task.target, %reason, "replication failed");
}

fn failed(task: &ReplicationTask, reason: &str) -> Delivery {
    log_failure(task, reason);
    Delivery::Done(Some(FAILED))
}

/// What the plugin is told about the target, with its sealed credentials opened.
fn target_info(app: &App, spec: &TargetSpec) -> Result<TargetInfo, String> {
    let creds = app
        .iam
        .target_credentials(&spec.name)
        .map_err(|e| format!("target credentials: {e}"))?;
    let (access_key, secret_key) = match creds {
        Some(c) => (c.access_key, c.secret_key.to_string()),
        None => (String::new(), String::new()),
    };
    Ok(TargetInfo {
        name: spec.name.clone(),
        endpoint: spec.endpoint.clone(),
        region: spec.region.clone(),
        access_key,
        secret_key,
    })
}

async fn deliver(
    app: &App,
    spec: &TargetSpec,
    target: &Result<TargetInfo, String>,
    task: &ReplicationTask,
) -> Delivery {
    let Some(plugin) = app.plugins.named(&spec.plugin) else {
        return Delivery::Retry(format!("plugin `{}` is not loaded", spec.plugin));
    };
    let target = match target {
        Ok(t) => t.clone(),
        Err(e) => return Delivery::Retry(e.clone()),
    };
    match task.op {
        TaskOp::Put => {
            let meta = match app.store.object(&task.bucket, &task.key).await {
                Ok(Some(m)) => m,
                Ok(None) => return Delivery::Done(None),
                Err(e) => return Delivery::Retry(e.to_string()),
            };
            if meta.etag != task.etag || meta.last_modified != task.last_modified {
                return Delivery::Done(None);
            }
            let cipher = match &meta.encryption {
                None => None,
                Some(e) if e.mode == SseMode::Customer => {
                    return failed(
                        task,
                        "SSE-C objects cannot be replicated: the server never holds their key",
                    );
                }
                Some(e) => match app.keys.open(e, None).await {
                    Ok(c) => Some(c),
                    Err(e) => return Delivery::Retry(e.to_string()),
                },
            };
            let body = match app.store.open_body(&meta, None, cipher.as_ref()).await {
                Ok(b) => b,
                Err(crate::store::StoreError::NoSuchKey) => return Delivery::Done(None),
                Err(e) => return Delivery::Retry(e.to_string()),
            };
            let info = ObjectInfo {
                bucket: task.dest_bucket.clone(),
                key: task.key.clone(),
                version_id: None,
                size: meta.size,
                etag: meta.etag.clone(),
                headers: meta.headers.clone(),
                last_modified: meta.write_time_ms().max(0) as u64,
                user_metadata: meta.user_meta.clone(),
                tags: meta.tags.clone(),
                checksum: meta
                    .checksum
                    .as_ref()
                    .filter(|c| c.kind == crate::checksum::ChecksumType::FullObject)
                    .map(|c| (c.algorithm.name().to_ascii_lowercase(), c.value.clone())),
                encrypted: meta.encryption.is_some(),
            };
            match plugin.replicate_put(target, info, body).await {
                Ok(()) => {
                    let m = &app.metrics.replication;
                    m.completed.fetch_add(1, Ordering::Relaxed);
                    m.bytes.fetch_add(meta.size, Ordering::Relaxed);
                    Delivery::Done(Some(COMPLETED))
                }
                Err(e) if refused(&e) => failed(task, &e.to_string()),
                Err(e) => Delivery::Retry(e.to_string()),
            }
        }
        TaskOp::Delete => {
            // The key was written again after the delete: the newer object's own task carries
            // it. (An older replica that arrived since does not cancel the delete.)
            match app.store.object(&task.bucket, &task.key).await {
                Ok(Some(m)) if m.write_time_ms() > task.enqueued_ms => {
                    return Delivery::Done(None);
                }
                Ok(_) => {}
                Err(e) => return Delivery::Retry(e.to_string()),
            }
            let info = DeleteInfo {
                bucket: task.dest_bucket.clone(),
                key: task.key.clone(),
                version_id: None,
                delete_marker: false,
                deleted_at: task.enqueued_ms.max(0) as u64,
            };
            match plugin.replicate_delete(target, info).await {
                Ok(()) => {
                    app.metrics
                        .replication
                        .completed
                        .fetch_add(1, Ordering::Relaxed);
                    Delivery::Done(None)
                }
                Err(e) if refused(&e) => failed(task, &e.to_string()),
                Err(e) => Delivery::Retry(e.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let first = super::backoff_ms(1);
        assert!((500..=1500).contains(&first), "{first}");
        for _ in 0..50 {
            let late = super::backoff_ms(30);
            assert!((30_000..=90_000).contains(&late), "{late}");
        }
    }
}
