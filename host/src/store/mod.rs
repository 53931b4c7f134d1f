//! Behaviour behind the S3 protocol: buckets and objects. The engine sits behind [`Store`] so
//! that a gateway backend (an upstream S3 cluster) can replace the local one.

pub mod acl;
mod bucket_cache;
pub mod files;
pub mod list;
pub mod local;
mod object_cache;
mod record;
pub mod replication_queue;
pub mod storage_class;
mod tables;
pub mod uploads;

use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::checksum::{Checksum, ChecksumAlgorithm};
use crate::crypto::{Encryption, ObjectCipher, PieceSeal, Sealer};

pub use list::{ListPage, ListQuery, ListedObject};
pub use local::LocalStore;
pub use storage_class::StorageClass;
pub use uploads::{
    CompletedPart, NewUpload, PartInfo, UploadInfo, UploadListPage, UploadListQuery,
};

/// A body streamed through the store; errors end it.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no such bucket `{0}`")]
    NoSuchBucket(String),
    #[error("bucket `{bucket}` already exists")]
    BucketExists { bucket: String, owner_id: String },
    #[error("bucket `{0}` is not empty")]
    BucketNotEmpty(String),
    #[error("no such key")]
    NoSuchKey,
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("a conflicting conditional write happened during the upload")]
    ConditionalConflict,
    #[error("body exceeds the maximum size of {0} bytes")]
    TooLarge(u64),
    #[error("body is shorter than its declared length")]
    IncompleteBody,
    #[error("reading the request body failed: {0}")]
    Body(std::io::Error),
    #[error("storage i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("metadata: {0}")]
    Meta(String),
    #[error("metadata record is corrupt: {0}")]
    Corrupt(String),
    #[error("no such upload")]
    NoSuchUpload,
    #[error("part {0} was not found or its ETag does not match")]
    InvalidPart(u32),
    #[error("the list of parts was not in ascending order")]
    InvalidPartOrder,
    #[error("part {0} is smaller than the minimum allowed size")]
    EntityTooSmall(u32),
    #[error("the checksum of part {0} does not match")]
    InvalidPartChecksum(u32),
    #[error("the object is encrypted and no data key was given")]
    Encrypted,
}

macro_rules! meta_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Meta(e.to_string()) }
        }
    )*};
}
meta_error_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BucketInfo {
    pub name: String,
    pub owner_id: String,
    /// Unix milliseconds.
    pub created: i64,
    pub region: String,
}

/// Where an object's bytes live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BodyLocation {
    /// In redb, in the inline-bodies table under this id (small objects: one commit covers it).
    Inline(String),
    /// A file under the hashed fan-out, named by this id.
    File(String),
    /// The part files of a completed multipart upload, in order (linked, never copied).
    Multipart(Vec<PartBody>),
}

/// One part file of a multipart object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartBody {
    pub id: String,
    /// Plaintext bytes (an encrypted part takes `crypto::segments::sealed_len(size)` on disk).
    pub size: u64,
    /// How the part was sealed, when the object is encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<PieceSeal>,
    /// The part's own checksum, kept when the upload asked for an algorithm
    /// (GetObjectAttributes lists it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Checksum>,
}

impl BodyLocation {
    /// Body files this location references.
    pub fn file_ids(&self) -> Vec<&str> {
        match self {
            BodyLocation::Inline(_) => Vec::new(),
            BodyLocation::File(id) => vec![id.as_str()],
            BodyLocation::Multipart(parts) => parts.iter().map(|p| p.id.as_str()).collect(),
        }
    }

    /// Byte ranges of the parts (`start..=end`), for `partNumber` requests; one part otherwise.
    pub fn part_ranges(&self, size: u64) -> Vec<ByteRange> {
        match self {
            BodyLocation::Multipart(parts) => {
                let mut start = 0;
                parts
                    .iter()
                    .map(|p| {
                        let r = ByteRange {
                            start,
                            end: (start + p.size).saturating_sub(1),
                        };
                        start += p.size;
                        r
                    })
                    .collect()
            }
            _ => vec![ByteRange {
                start: 0,
                end: size.saturating_sub(1),
            }],
        }
    }
}

/// Everything stored about one object version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub size: u64,
    /// Hex MD5 (no quotes).
    pub etag: String,
    /// Unix milliseconds.
    pub last_modified: i64,
    pub owner_id: String,
    /// Standard headers stored with the object (content-type, cache-control, ...), lower-case.
    pub headers: Vec<(String, String)>,
    /// `x-amz-meta-*` entries, names lower-case without the prefix.
    pub user_meta: Vec<(String, String)>,
    pub checksum: Option<Checksum>,
    pub body: BodyLocation,
    /// Object tags (key, value), in the order given.
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// The object's ACL (`None`: private to its owner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<acl::Acl>,
    /// Server-side encryption (`None`: stored as sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    /// `x-amz-replication-status`: PENDING, COMPLETED or FAILED (`None`: no rule applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_status: Option<String>,
    /// When the write happened, Unix milliseconds (`last_modified` keeps whole seconds, as
    /// HTTP dates show it). Last-writer-wins between sites compares this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_ms: Option<i64>,
}

/// The current time in Unix milliseconds, at full precision.
pub fn precise_now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl ObjectMeta {
    /// When the object was written, to the millisecond where known.
    pub fn write_time_ms(&self) -> i64 {
        self.written_ms.unwrap_or(self.last_modified)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the caller knows about a new object besides its body.
#[derive(Debug, Clone)]
pub struct NewObject {
    pub owner_id: String,
    pub headers: Vec<(String, String)>,
    pub user_meta: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    pub acl: Option<acl::Acl>,
    /// Set when the staged body was sealed; its piece is filled in at commit.
    pub encryption: Option<Encryption>,
}

/// A body written to stable storage but not yet referenced by metadata.
#[derive(Debug)]
pub struct StagedBody {
    /// Plaintext bytes.
    pub size: u64,
    /// How the body was sealed, if it was.
    pub piece: Option<PieceSeal>,
    pub md5: [u8; 16],
    pub checksum: Checksum,
    pub(crate) location: BodyLocation,
    pub(crate) inline: Option<Bytes>,
    /// Removes the body file if this staged body is dropped before its commit.
    pub(crate) guard: Option<local::UncommittedFile>,
}

/// Preconditions a write must meet at commit time (`If-None-Match: *`, `If-Match`).
#[derive(Debug, Clone, Default)]
pub struct WriteCondition {
    pub if_none_match_any: bool,
    pub if_match: Option<String>,
    /// A replica from another site, stamped with the source's time (Unix ms): it is stored with
    /// that time and status REPLICA, is never replicated onwards, and applies only over an older
    /// object (last writer wins; equal times are ordered by ETag so both sites agree).
    pub replica_time: Option<i64>,
}

/// Status of an object written by replication from another site.
pub const REPLICA: &str = "REPLICA";

impl WriteCondition {
    /// Fails a replica write that is not newer than `old`, or (no object) than the key's
    /// delete at `deleted_at`.
    pub fn check_replica(
        &self,
        etag: &str,
        old: Option<&ObjectMeta>,
        deleted_at: Option<i64>,
    ) -> Result<(), StoreError> {
        match (self.replica_time, old, deleted_at) {
            (Some(t), Some(o), _) if (t, etag) <= (o.write_time_ms(), o.etag.as_str()) => {
                Err(StoreError::PreconditionFailed)
            }
            (Some(t), None, Some(d)) if t <= d => Err(StoreError::PreconditionFailed),
            _ => Ok(()),
        }
    }

    /// Stamps the write time on the object about to replace `old`: a replica's source time and
    /// status; for a local write, a time after `old`'s, so a write made over a replica is newer
    /// than it on every site even when the clocks disagree.
    pub fn stamp(&self, meta: &mut ObjectMeta, old: Option<&ObjectMeta>, deleted_at: Option<i64>) {
        if let Some(t) = self.replica_time {
            meta.last_modified = t - t.rem_euclid(1000);
            meta.written_ms = Some(t);
            meta.replication_status = Some(REPLICA.to_string());
            return;
        }
        let floor = old.map(ObjectMeta::write_time_ms).max(deleted_at);
        if let Some(f) = floor {
            let t = meta.write_time_ms().max(f + 1);
            meta.written_ms = Some(t);
            meta.last_modified = meta.last_modified.max(t - t.rem_euclid(1000));
        }
    }
}

/// A byte range already resolved against the object size: `start..=end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

#[async_trait::async_trait]
pub trait Store: Send + Sync {
    async fn create_bucket(
        &self,
        name: &str,
        owner_id: &str,
        region: &str,
    ) -> Result<(), StoreError>;
    async fn delete_bucket(&self, name: &str) -> Result<(), StoreError>;
    async fn bucket(&self, name: &str) -> Result<Option<BucketInfo>, StoreError>;
    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, StoreError>;

    /// Streams `body` to stable storage, computing MD5 and `algorithm` (CRC64NVME when the
    /// client asked for none, as S3 does). Fails with `TooLarge` past `max_size`. Small bodies
    /// may be kept inline unless `as_file` (multipart parts are always files). With a `sealer`
    /// the hashes cover the plaintext and only sealed segments are written.
    async fn stage_body(
        &self,
        body: BodyStream,
        algorithm: Option<ChecksumAlgorithm>,
        max_size: u64,
        as_file: bool,
        sealer: Option<Sealer>,
    ) -> Result<StagedBody, StoreError>;
    /// Drops a staged body that will not be committed.
    async fn discard(&self, staged: StagedBody);
    /// Makes a staged body the object's current version, durably, and returns its metadata.
    async fn commit_object(
        &self,
        bucket: &str,
        key: &str,
        object: NewObject,
        staged: StagedBody,
        condition: WriteCondition,
    ) -> Result<ObjectMeta, StoreError>;
    async fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectMeta>, StoreError>;
    /// The object as [`Store::object`] gives it and, when its body is stored inline, that
    /// body's stored bytes, read at the same instant: for [`Store::open_body_read`].
    async fn object_for_read(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(ObjectMeta, Option<Bytes>)>, StoreError>;
    /// Opens the body of `meta` (as returned by [`Store::object`]), optionally a range of it.
    /// An encrypted body needs its data key (`Encrypted` otherwise); only the segments that
    /// cover the range are read and opened.
    async fn open_body(
        &self,
        meta: &ObjectMeta,
        range: Option<ByteRange>,
        cipher: Option<&ObjectCipher>,
    ) -> Result<BodyStream, StoreError> {
        self.open_body_read(meta, None, range, cipher).await
    }
    /// [`Store::open_body`] with the inline bytes [`Store::object_for_read`] returned beside
    /// `meta` (`None`: read them now).
    async fn open_body_read(
        &self,
        meta: &ObjectMeta,
        inline: Option<Bytes>,
        range: Option<ByteRange>,
        cipher: Option<&ObjectCipher>,
    ) -> Result<BodyStream, StoreError>;
    /// Deletes the object; `Ok(false)` when there was none. `if_match` makes it conditional on
    /// the current ETag (`NoSuchKey` when there is no object, `PreconditionFailed` on mismatch).
    /// `replica_time`: a delete replicated from another site at that time (Unix ms); it removes
    /// only an object not newer than that and is never replicated onwards.
    async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        if_match: Option<&str>,
        replica_time: Option<i64>,
    ) -> Result<bool, StoreError>;
    async fn list_objects(&self, bucket: &str, query: &ListQuery) -> Result<ListPage, StoreError>;

    /// Replaces an object's tags (`NoSuchKey` when there is no object).
    async fn set_object_tags(
        &self,
        bucket: &str,
        key: &str,
        tags: Vec<(String, String)>,
    ) -> Result<(), StoreError>;
    /// Replaces an object's ACL (`NoSuchKey` when there is no object).
    async fn set_object_acl(
        &self,
        bucket: &str,
        key: &str,
        acl: acl::Acl,
    ) -> Result<(), StoreError>;
    /// A bucket configuration document of one kind (`tagging`, `cors`, ...), if set.
    async fn bucket_config(&self, bucket: &str, kind: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets (`Some`) or removes (`None`) a bucket configuration document.
    async fn put_bucket_config(
        &self,
        bucket: &str,
        kind: &str,
        value: Option<Vec<u8>>,
    ) -> Result<(), StoreError>;

    /// Starts a multipart upload and returns its id.
    async fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        upload: NewUpload,
    ) -> Result<String, StoreError>;
    /// The upload, which must belong to `bucket`/`key` (`NoSuchUpload` otherwise).
    async fn upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<UploadInfo, StoreError>;
    /// Makes a staged body part `part_number` of the upload, replacing an earlier one.
    async fn put_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        staged: StagedBody,
    ) -> Result<PartInfo, StoreError>;
    /// Parts after `after`, at most `max`; the flag says whether more follow.
    async fn list_parts(
        &self,
        upload_id: &str,
        after: u32,
        max: usize,
    ) -> Result<(Vec<PartInfo>, bool), StoreError>;
    async fn list_uploads(
        &self,
        bucket: &str,
        query: &UploadListQuery,
    ) -> Result<UploadListPage, StoreError>;
    /// Assembles the listed parts into the object, atomically and durably. Completing an upload
    /// that already completed returns the same object metadata.
    async fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
        condition: WriteCondition,
    ) -> Result<ObjectMeta, StoreError>;
    async fn abort_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), StoreError>;

    /// Replication tasks due at `now_ms` (Unix milliseconds), oldest first.
    async fn replication_due(
        &self,
        target: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<(u64, replication_queue::ReplicationTask)>, StoreError>;
    /// Removes task `seq`; with a `status`, sets it on the object when the object is still the
    /// version the task was for.
    async fn finish_replication(
        &self,
        seq: u64,
        task: &replication_queue::ReplicationTask,
        status: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Stores a task's new attempt count and time.
    async fn reschedule_replication(
        &self,
        seq: u64,
        task: &replication_queue::ReplicationTask,
    ) -> Result<(), StoreError>;
    /// Removes the replication tombstones recorded before `before_ms` (Unix ms); returns how
    /// many it found.
    async fn prune_tombstones(&self, before_ms: i64) -> Result<u64, StoreError>;
    /// The targets that tasks wait for.
    async fn replication_targets_queued(
        &self,
    ) -> Result<std::collections::BTreeSet<String>, StoreError>;
    /// Tasks waiting: of one bucket, read task by task (status), or of the whole queue from the
    /// indexes' sizes, without the latest failure reason (metrics).
    async fn replication_backlog(
        &self,
        bucket: Option<&str>,
    ) -> Result<replication_queue::Backlog, StoreError>;
}
