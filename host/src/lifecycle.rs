//! Bucket lifecycle rules (behaviour): which objects and incomplete multipart uploads a
//! bucket's rules expire and when, and the sweep that removes them. The S3 XML for the rules
//! is in `s3::lifecycle`.
//!
//! As in S3, an object expires `Days` after it was written, rounded up to the next midnight
//! UTC (or on the rule's `Date`), and the sweep removes it some time after that. An object
//! removed by a rule is not replicated as a delete (S3 does not replicate lifecycle actions
//! either); a write made after the sweep read the object is never removed by it. A change of
//! tags only (PutObjectTagging) in the instant between the sweep's read and its delete does not
//! save an object that matched when read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::s3::App;
use crate::store::{ListQuery, Store, StoreError, UploadListQuery};

/// The bucket-config kind the rules are stored under.
pub const CONFIG: &str = "lifecycle";
/// Most rules one configuration may hold (as in S3).
pub const MAX_RULES: usize = 1000;
/// A lifecycle day as S3 counts it.
pub const DAY_MS: i64 = 86_400_000;
/// Listing page size of a sweep.
const PAGE: usize = 1000;

/// How the rule chose its objects, kept to answer GetBucketLifecycleConfiguration as the rule
/// was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FilterForm {
    /// The rule's own `<Prefix>` (the form before `<Filter>` existed).
    RulePrefix,
    /// `<Filter/>` with nothing in it: every object.
    Empty,
    Prefix,
    Tag,
    SizeGreaterThan,
    SizeLessThan,
    And,
}

/// Which objects a rule applies to: all of the given conditions must hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub form: FilterForm,
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// Only objects larger than this many bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_greater_than: Option<u64>,
    /// Only objects smaller than this many bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_less_than: Option<u64>,
}

impl Filter {
    /// Whether the size conditions hold for an object of `size` bytes.
    pub fn size_matches(&self, size: u64) -> bool {
        self.size_greater_than.is_none_or(|n| size > n)
            && self.size_less_than.is_none_or(|n| size < n)
    }

    pub fn matches(&self, key: &str, size: u64, tags: &[(String, String)]) -> bool {
        key.starts_with(&self.prefix)
            && self.size_matches(size)
            && self.tags.iter().all(|t| tags.contains(t))
    }
}

/// A rule's `<Expiration>` action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expiration {
    /// Days after the object was written, rounded up to the next day boundary.
    Days(u32),
    /// On this date (Unix milliseconds, midnight UTC).
    Date(i64),
    /// Removes delete markers left with no versions. Sluice keeps no versions, so there are
    /// none to remove; the action is kept and answered as given.
    ExpiredObjectDeleteMarker(bool),
}

/// A rule's `<NoncurrentVersionExpiration>`. Sluice keeps no noncurrent versions, so it
/// applies to nothing; it is kept and answered as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoncurrentExpiration {
    pub days: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newer_versions: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    pub enabled: bool,
    pub filter: Filter,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<Expiration>,
    /// `AbortIncompleteMultipartUpload`: uploads started this many days ago are aborted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_incomplete_after_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noncurrent_expiration: Option<NoncurrentExpiration>,
}

/// `days` days after `t`, rounded up to a multiple of `day_ms` (with real days: to the next
/// midnight UTC), as S3 counts both expiry and abort times.
fn days_after(t: i64, days: u32, day_ms: i64) -> i64 {
    let t = t.saturating_add(i64::from(days).saturating_mul(day_ms));
    match t.rem_euclid(day_ms) {
        0 => t,
        r => t - r + day_ms,
    }
}

impl Rule {
    /// When an object written at `written_ms` expires under this rule, if the rule expires
    /// objects.
    pub fn object_expiry_ms(&self, written_ms: i64, day_ms: i64) -> Option<i64> {
        match self.expiration? {
            Expiration::Days(days) => Some(days_after(written_ms, days, day_ms)),
            Expiration::Date(at) => Some(at),
            Expiration::ExpiredObjectDeleteMarker(_) => None,
        }
    }

    /// Whether the rule removes objects (`Expiration` by `Days` or `Date`).
    pub fn expires_objects(&self) -> bool {
        matches!(
            self.expiration,
            Some(Expiration::Days(_) | Expiration::Date(_))
        )
    }

    /// When an upload started at `initiated_ms` is aborted under this rule, if it aborts any.
    pub fn upload_expiry_ms(&self, initiated_ms: i64, day_ms: i64) -> Option<i64> {
        Some(days_after(
            initiated_ms,
            self.abort_incomplete_after_days?,
            day_ms,
        ))
    }
}

/// A bucket's lifecycle configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleConfig {
    pub rules: Vec<Rule>,
}

impl LifecycleConfig {
    /// The earliest time an enabled rule expires this object, and that rule's id (S3's
    /// `x-amz-expiration` header).
    pub fn object_expiry(
        &self,
        key: &str,
        size: u64,
        tags: &[(String, String)],
        written_ms: i64,
        day_ms: i64,
    ) -> Option<(i64, &str)> {
        self.rules
            .iter()
            .filter(|r| r.enabled && r.filter.matches(key, size, tags))
            .filter_map(|r| Some((r.object_expiry_ms(written_ms, day_ms)?, r.id.as_str())))
            .min_by_key(|(at, _)| *at)
    }
}

/// Most stored rules documents, in bytes, whose parsed rules are kept (the parsed form takes a
/// few times as much); the cache starts over when it would hold more.
const MAX_PARSED_BYTES: usize = 16 * 1024 * 1024;

/// Bucket -> the stored rules document and the rules parsed from it, so the `x-amz-expiration`
/// of a GET costs a comparison rather than a parse (a parse of 100 rules per GET took GETs
/// from 66 000 to 28 000 a second). An entry answers only while the stored document is the same.
#[derive(Default)]
struct Parsed {
    by_bucket: HashMap<String, (Vec<u8>, Arc<LifecycleConfig>)>,
    bytes: usize,
}
static PARSED: LazyLock<RwLock<Parsed>> = LazyLock::new(Default::default);

/// The bucket's lifecycle configuration, if it has one, parsed once per stored document.
pub async fn config_of(
    store: &dyn Store,
    bucket: &str,
) -> Result<Option<Arc<LifecycleConfig>>, StoreError> {
    let Some(raw) = store.bucket_config(bucket, CONFIG).await? else {
        // Most buckets have no rules: their GETs only read the cache, never lock it to write.
        if crate::locks::read(&PARSED).by_bucket.contains_key(bucket) {
            let mut kept = crate::locks::write(&PARSED);
            if let Some((old, _)) = kept.by_bucket.remove(bucket) {
                kept.bytes -= old.len();
            }
        }
        return Ok(None);
    };
    if let Some((kept, parsed)) = crate::locks::read(&PARSED).by_bucket.get(bucket)
        && *kept == raw
    {
        return Ok(Some(parsed.clone()));
    }
    let parsed: Arc<LifecycleConfig> =
        Arc::new(serde_json::from_slice(&raw).map_err(|e| StoreError::Corrupt(e.to_string()))?);
    let mut kept = crate::locks::write(&PARSED);
    if kept.bytes + raw.len() > MAX_PARSED_BYTES {
        *kept = Parsed::default();
    }
    if raw.len() <= MAX_PARSED_BYTES {
        kept.bytes += raw.len();
        if let Some((old, _)) = kept
            .by_bucket
            .insert(bucket.to_string(), (raw, parsed.clone()))
        {
            kept.bytes -= old.len();
        }
    }
    Ok(Some(parsed))
}

/// What the sweeps removed since start-up (for `/_sluice/metrics`).
#[derive(Debug, Default)]
pub struct LifecycleMetrics {
    pub objects_expired: AtomicU64,
    pub uploads_aborted: AtomicU64,
}

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepOutcome {
    pub objects_expired: u64,
    pub uploads_aborted: u64,
}

/// Runs [`sweep`] every `interval`, the first time shortly after start-up.
pub fn spawn(app: Arc<App>) {
    let interval = Duration::from_secs(app.config.lifecycle_interval_secs);
    let day_ms = app.config.lifecycle_day_ms();
    tokio::spawn(async move {
        tokio::time::sleep(interval.min(Duration::from_secs(10))).await;
        loop {
            let now = crate::store::precise_now_ms();
            let outcome = sweep(app.store.as_ref(), now, day_ms).await;
            let m = &app.metrics.lifecycle;
            m.objects_expired
                .fetch_add(outcome.objects_expired, Ordering::Relaxed);
            m.uploads_aborted
                .fetch_add(outcome.uploads_aborted, Ordering::Relaxed);
            if outcome != SweepOutcome::default() {
                tracing::info!(
                    objects_expired = outcome.objects_expired,
                    uploads_aborted = outcome.uploads_aborted,
                    "lifecycle rules applied"
                );
            }
            tokio::time::sleep(interval).await;
        }
    });
}

/// Applies every bucket's enabled rules at `now_ms`: removes the objects they expire and
/// aborts the uploads they abort. A bucket that fails (gone mid-sweep, unreadable rules) is
/// logged and skipped; the others are still swept.
pub async fn sweep(store: &dyn Store, now_ms: i64, day_ms: i64) -> SweepOutcome {
    let mut outcome = SweepOutcome::default();
    let buckets = match store.list_buckets().await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "lifecycle sweep: buckets unreadable");
            return outcome;
        }
    };
    for bucket in buckets {
        if let Err(e) = sweep_bucket(store, &bucket.name, now_ms, day_ms, &mut outcome).await {
            tracing::error!(bucket = %bucket.name, error = %e, "lifecycle sweep failed");
        }
    }
    outcome
}

async fn sweep_bucket(
    store: &dyn Store,
    bucket: &str,
    now_ms: i64,
    day_ms: i64,
    outcome: &mut SweepOutcome,
) -> Result<(), StoreError> {
    let Some(config) = config_of(store, bucket).await? else {
        return Ok(());
    };
    for rule in config.rules.iter().filter(|r| r.enabled) {
        if rule.expires_objects() {
            outcome.objects_expired += expire_objects(store, bucket, rule, now_ms, day_ms).await?;
        }
        if rule.abort_incomplete_after_days.is_some() {
            outcome.uploads_aborted += abort_uploads(store, bucket, rule, now_ms, day_ms).await?;
        }
    }
    Ok(())
}

/// Whether `rule` is still in force in `bucket`, unchanged and enabled: a sweep through a large
/// bucket looks again before every page, so a rule removed, changed or disabled meanwhile (or a
/// bucket deleted) stops it.
async fn still_in_force(store: &dyn Store, bucket: &str, rule: &Rule) -> Result<bool, StoreError> {
    Ok(config_of(store, bucket)
        .await?
        .is_some_and(|c| c.rules.iter().any(|r| r == rule && r.enabled)))
}

async fn expire_objects(
    store: &dyn Store,
    bucket: &str,
    rule: &Rule,
    now_ms: i64,
    day_ms: i64,
) -> Result<u64, StoreError> {
    let due = |written_ms: i64| {
        rule.object_expiry_ms(written_ms, day_ms)
            .is_some_and(|at| at <= now_ms)
    };
    let mut removed = 0;
    let mut query = ListQuery {
        prefix: rule.filter.prefix.clone(),
        delimiter: None,
        start_after: None,
        max_keys: PAGE,
        skip_owner: true,
    };
    while still_in_force(store, bucket, rule).await? {
        let page = store.list_objects(bucket, &query).await?;
        for (key, listed) in &page.objects {
            if !rule.filter.size_matches(listed.size) || !due(listed.last_modified) {
                continue;
            }
            // The full record has the tags and the exact write time the delete is bound to.
            let Some(meta) = store.object(bucket, key).await? else {
                continue;
            };
            if !rule.filter.matches(key, meta.size, &meta.tags) || !due(meta.write_time_ms()) {
                continue;
            }
            // Removes this write only: the ETag and the write time must still be the ones read
            // here, so an object written since survives. Bound to the object's own time, the
            // delete is not replicated onwards (S3 does not replicate lifecycle deletes).
            match store
                .delete_object(bucket, key, Some(&meta.etag), Some(meta.write_time_ms()))
                .await
            {
                Ok(true) => removed += 1,
                Ok(false) | Err(StoreError::NoSuchKey) | Err(StoreError::PreconditionFailed) => {}
                Err(e) => return Err(e),
            }
        }
        if !page.is_truncated {
            break;
        }
        query.start_after = page.last;
    }
    Ok(removed)
}

async fn abort_uploads(
    store: &dyn Store,
    bucket: &str,
    rule: &Rule,
    now_ms: i64,
    day_ms: i64,
) -> Result<u64, StoreError> {
    let mut aborted = 0;
    let mut query = UploadListQuery {
        prefix: rule.filter.prefix.clone(),
        delimiter: None,
        key_marker: None,
        upload_id_marker: None,
        max_uploads: PAGE,
    };
    while still_in_force(store, bucket, rule).await? {
        let page = store.list_uploads(bucket, &query).await?;
        for upload in &page.uploads {
            if rule
                .upload_expiry_ms(upload.initiated, day_ms)
                .is_none_or(|at| at > now_ms)
            {
                continue;
            }
            match store
                .abort_upload(bucket, &upload.key, &upload.upload_id)
                .await
            {
                Ok(()) => aborted += 1,
                Err(StoreError::NoSuchUpload) => {}
                Err(e) => return Err(e),
            }
        }
        if !page.is_truncated {
            break;
        }
        query.key_marker = page.next_key_marker;
        query.upload_id_marker = page.next_upload_id_marker;
    }
    Ok(aborted)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = DAY_MS;

    fn rule(id: &str, prefix: &str, expiration: Option<Expiration>) -> Rule {
        Rule {
            id: id.into(),
            enabled: true,
            filter: Filter {
                form: FilterForm::Prefix,
                prefix: prefix.into(),
                tags: Vec::new(),
                size_greater_than: None,
                size_less_than: None,
            },
            expiration,
            abort_incomplete_after_days: None,
            noncurrent_expiration: None,
        }
    }

    #[test]
    fn days_round_up_to_the_next_midnight() {
        let r = rule("r", "", Some(Expiration::Days(3)));
        // 2026-01-15 10:30 UTC + 3 days = 01-18 10:30, expiring at 01-19 00:00.
        let written = 1_768_473_000_000;
        assert_eq!(r.object_expiry_ms(written, DAY), Some(1_768_780_800_000));
        // Written at midnight: exactly three days later.
        let midnight = 1_768_435_200_000;
        assert_eq!(r.object_expiry_ms(midnight, DAY), Some(midnight + 3 * DAY));
        let date = rule("d", "", Some(Expiration::Date(midnight)));
        assert_eq!(date.object_expiry_ms(0, DAY), Some(midnight));
        let marker = rule("m", "", Some(Expiration::ExpiredObjectDeleteMarker(true)));
        assert_eq!(marker.object_expiry_ms(written, DAY), None);
    }

    #[test]
    fn the_earliest_matching_enabled_rule_answers() {
        let mut tagged = rule("tagged", "logs/", Some(Expiration::Days(1)));
        tagged.filter.tags = vec![("class".into(), "tmp".into())];
        let mut off = rule("off", "", Some(Expiration::Days(1)));
        off.enabled = false;
        let mut big = rule("big", "", Some(Expiration::Days(2)));
        big.filter.size_greater_than = Some(100);
        let config = LifecycleConfig {
            rules: vec![
                rule("all", "", Some(Expiration::Days(30))),
                rule("logs", "logs/", Some(Expiration::Days(7))),
                tagged,
                off,
                big,
            ],
        };
        let tmp = [("class".to_string(), "tmp".to_string())];
        let at = |key, size, tags: &[(String, String)]| {
            config
                .object_expiry(key, size, tags, 0, DAY)
                .map(|(t, id)| (t / DAY, id.to_string()))
        };
        assert_eq!(at("a", 1, &[]), Some((30, "all".into())));
        assert_eq!(at("logs/a", 1, &[]), Some((7, "logs".into())));
        assert_eq!(at("logs/a", 1, &tmp), Some((1, "tagged".into())));
        assert_eq!(at("a", 101, &[]), Some((2, "big".into())));
        // Size bounds are strict, as in S3.
        assert_eq!(at("a", 100, &[]), Some((30, "all".into())));
        assert_eq!(
            LifecycleConfig::default().object_expiry("a", 1, &[], 0, DAY),
            None
        );
    }

    async fn put(store: &crate::store::LocalStore, key: &str, body: &'static [u8]) {
        let stream: crate::store::BodyStream =
            Box::pin(futures::stream::iter([Ok(bytes::Bytes::from_static(body))]));
        let staged = store
            .stage_body(stream, None, u64::MAX, false, None)
            .await
            .expect("stage");
        let object = crate::store::NewObject {
            owner_id: "owner".into(),
            headers: Vec::new(),
            user_meta: Vec::new(),
            tags: Vec::new(),
            acl: None,
            encryption: None,
        };
        store
            .commit_object("b", key, object, staged, Default::default())
            .await
            .expect("commit");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parsed_rules_follow_the_stored_ones() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Arc::new(redb::Database::create(dir.path().join("meta.redb")).expect("redb"));
        let store =
            crate::store::LocalStore::open(db, &dir.path().join("data"), 65_536).expect("open");
        store
            .create_bucket("cached", "owner", "us-east-1")
            .await
            .expect("bucket");
        let set = |days| {
            let config = LifecycleConfig {
                rules: vec![rule("r", "", Some(Expiration::Days(days)))],
            };
            let store = &store;
            async move {
                store
                    .put_bucket_config(
                        "cached",
                        CONFIG,
                        Some(serde_json::to_vec(&config).expect("json")),
                    )
                    .await
                    .expect("config")
            }
        };
        let days = |c: Option<Arc<LifecycleConfig>>| c.and_then(|c| c.rules[0].expiration);
        assert!(config_of(&store, "cached").await.expect("read").is_none());
        set(3).await;
        assert_eq!(
            days(config_of(&store, "cached").await.expect("read")),
            Some(Expiration::Days(3))
        );
        // Kept: the same rules again (the very same parse); replaced: rules that differ.
        let first = config_of(&store, "cached").await.expect("read");
        let again = config_of(&store, "cached").await.expect("read");
        assert!(matches!((&first, &again), (Some(a), Some(b)) if Arc::ptr_eq(a, b)));
        set(5).await;
        assert_eq!(
            days(config_of(&store, "cached").await.expect("read")),
            Some(Expiration::Days(5))
        );
        store
            .put_bucket_config("cached", CONFIG, None)
            .await
            .expect("delete");
        assert!(config_of(&store, "cached").await.expect("read").is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sweep_removes_only_the_write_it_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Arc::new(redb::Database::create(dir.path().join("meta.redb")).expect("redb"));
        let store =
            crate::store::LocalStore::open(db, &dir.path().join("data"), 65_536).expect("open");
        store
            .create_bucket("b", "owner", "us-east-1")
            .await
            .expect("bucket");
        put(&store, "old/k", b"same").await;
        put(&store, "new/k", b"x").await;
        // The delete a sweep makes is bound to the write it read: the same bytes written again
        // (same ETag) are a newer write, which that delete leaves.
        let read = store
            .object("b", "old/k")
            .await
            .expect("read")
            .expect("object");
        put(&store, "old/k", b"same").await;
        let again = store
            .object("b", "old/k")
            .await
            .expect("read")
            .expect("object");
        assert_eq!(read.etag, again.etag);
        let bound = store
            .delete_object("b", "old/k", Some(&read.etag), Some(read.write_time_ms()))
            .await;
        assert!(
            matches!(bound, Err(StoreError::PreconditionFailed)),
            "{bound:?}"
        );
        // A rule whose date has passed removes what it matches, and nothing else.
        let mut dated = rule("dated", "old/", Some(Expiration::Date(0)));
        let config = |rules| serde_json::to_vec(&LifecycleConfig { rules }).expect("json");
        store
            .put_bucket_config("b", CONFIG, Some(config(vec![dated.clone()])))
            .await
            .expect("config");
        let now = crate::store::precise_now_ms();
        let outcome = sweep(&store, now, DAY_MS).await;
        assert_eq!(outcome.objects_expired, 1);
        assert!(store.object("b", "old/k").await.expect("read").is_none());
        assert!(store.object("b", "new/k").await.expect("read").is_some());
        // A disabled rule removes nothing.
        dated.filter.prefix = "new/".into();
        dated.enabled = false;
        store
            .put_bucket_config("b", CONFIG, Some(config(vec![dated])))
            .await
            .expect("config");
        assert_eq!(sweep(&store, now, DAY_MS).await, SweepOutcome::default());
        assert!(store.object("b", "new/k").await.expect("read").is_some());
    }
}
