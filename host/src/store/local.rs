//! The embedded engine: metadata in redb, bodies as files in a hashed fan-out (or inline in redb
//! when small). Writers share metadata commits through one group-commit thread.

use std::collections::HashSet;
use std::io::Write;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use redb::{Database, Durability, ReadableDatabase, ReadableTable};
use tokio::sync::oneshot;

use super::bucket_cache::BucketCache;
use super::files::{self, body_path};
use super::list::{Feed, PageBuilder};
use super::object_cache::{KeptBody, ObjectCache, ObjectChange};
use super::record;
use super::replication_queue::{self, ReplicationTask};
use super::tables::{
    BUCKET_CONFIG, BUCKETS, COMPLETED, INLINE_BODIES, OBJECTS, PARTS, REPLICATION_KEY_ORDER,
    REPLICATION_QUEUE, REPLICATION_RETRYING, REPLICATION_SCHEDULE, TOMBSTONES, UPLOAD_KEYS,
    UPLOADS,
};
use super::uploads::{self, CompleteArgs};
use super::{
    BodyLocation, BodyStream, BucketInfo, ByteRange, CompletedPart, ListPage, ListQuery, NewObject,
    NewUpload, ObjectMeta, PartInfo, StagedBody, Store, StoreError, UploadInfo, UploadListPage,
    UploadListQuery, WriteCondition,
};
use crate::checksum::{ChecksumAlgorithm, ChecksumHasher, Md5Hasher};
use crate::crypto::segments::{OpenStream, sealed_range};
use crate::crypto::{ObjectCipher, PieceSeal, Sealer};

/// The least a body file's write or hash works on at a time (but for a body's last bytes), and
/// what sealed pieces are gathered to before they go to the file.
const WRITE_CHUNK: usize = 1024 * 1024;
/// Read size when streaming a body file out.
const READ_CHUNK: usize = 256 * 1024;
/// Most operations folded into one metadata commit.
const MAX_BATCH: usize = 256;

pub struct LocalStore {
    db: Arc<Database>,
    root: PathBuf,
    inline_threshold: usize,
    commits: mpsc::Sender<CommitJob>,
    buckets: Arc<BucketCache>,
    objects: Arc<ObjectCache>,
}

/// Removes a body file that was written but never committed (client gone, checks failed).
#[derive(Debug)]
pub(crate) struct UncommittedFile {
    path: Option<PathBuf>,
}

impl UncommittedFile {
    fn disarm(&mut self) {
        self.path = None;
    }
}

impl Drop for UncommittedFile {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

enum MetaOp {
    PutObject {
        bucket: String,
        key: String,
        meta: Box<ObjectMeta>,
        inline: Option<Bytes>,
        condition: WriteCondition,
    },
    DeleteObject {
        bucket: String,
        key: String,
        if_match: Option<String>,
        replica_time: Option<i64>,
    },
    CreateBucket(BucketInfo),
    DeleteBucket(String),
    CreateUpload(Box<UploadInfo>),
    PutPart {
        bucket: String,
        key: String,
        upload_id: String,
        part: Box<PartInfo>,
    },
    CompleteUpload {
        bucket: String,
        key: String,
        upload_id: String,
        parts: Vec<CompletedPart>,
        condition: WriteCondition,
    },
    AbortUpload {
        bucket: String,
        key: String,
        upload_id: String,
    },
    SetObjectTags {
        bucket: String,
        key: String,
        tags: Vec<(String, String)>,
    },
    SetObjectAcl {
        bucket: String,
        key: String,
        acl: super::acl::Acl,
    },
    PutBucketConfig {
        bucket: String,
        kind: String,
        value: Option<Vec<u8>>,
    },
    FinishReplication {
        seq: u64,
        task: Box<ReplicationTask>,
        status: Option<String>,
    },
    RescheduleReplication {
        seq: u64,
        task: Box<ReplicationTask>,
    },
    /// Removes these tombstones if they were still recorded before `before_ms`.
    PruneTombstones {
        keys: Vec<(String, String)>,
        before_ms: i64,
    },
}

impl MetaOp {
    /// Whether the operation may change a bucket or its configuration (what [`BucketCache`]
    /// keeps).
    fn changes_buckets(&self) -> bool {
        match self {
            MetaOp::CreateBucket(_) | MetaOp::DeleteBucket(_) | MetaOp::PutBucketConfig { .. } => {
                true
            }
            MetaOp::PutObject { .. }
            | MetaOp::DeleteObject { .. }
            | MetaOp::CreateUpload(_)
            | MetaOp::PutPart { .. }
            | MetaOp::CompleteUpload { .. }
            | MetaOp::AbortUpload { .. }
            | MetaOp::SetObjectTags { .. }
            | MetaOp::SetObjectAcl { .. }
            | MetaOp::FinishReplication { .. }
            | MetaOp::RescheduleReplication { .. }
            | MetaOp::PruneTombstones { .. } => false,
        }
    }

    /// Which objects the operation may change (what [`ObjectCache`] keeps).
    fn object_change(&self) -> ObjectChange<'_> {
        match self {
            MetaOp::PutObject { bucket, key, .. }
            | MetaOp::DeleteObject { bucket, key, .. }
            | MetaOp::CompleteUpload { bucket, key, .. }
            | MetaOp::SetObjectTags { bucket, key, .. }
            | MetaOp::SetObjectAcl { bucket, key, .. } => ObjectChange::Key { bucket, key },
            MetaOp::FinishReplication { task, .. } => ObjectChange::Key {
                bucket: &task.bucket,
                key: &task.key,
            },
            MetaOp::CreateBucket(_) | MetaOp::DeleteBucket(_) => ObjectChange::Any,
            MetaOp::CreateUpload(_)
            | MetaOp::PutPart { .. }
            | MetaOp::AbortUpload { .. }
            | MetaOp::PutBucketConfig { .. }
            | MetaOp::RescheduleReplication { .. }
            | MetaOp::PruneTombstones { .. } => ObjectChange::Nothing,
        }
    }
}

#[derive(Default)]
struct Outcome {
    /// The operation found something to replace or remove.
    existed: bool,
    /// Body files no longer referenced once the commit is durable.
    freed: Vec<String>,
    /// The object a completion produced.
    completed: Option<ObjectMeta>,
}

struct CommitJob {
    op: MetaOp,
    reply: oneshot::Sender<Result<Outcome, StoreError>>,
}

/// Now in Unix milliseconds, truncated to whole seconds: S3 keeps object times to the second, so
/// listings (`.000Z`) and `Last-Modified` agree.
fn now_millis() -> i64 {
    chrono::Utc::now().timestamp() * 1000
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("metadata serializes")
}

impl LocalStore {
    /// Opens the engine over `db` and `root`, creating tables, and removes orphaned body files.
    pub fn open(
        db: Arc<Database>,
        root: &Path,
        inline_threshold: usize,
    ) -> Result<LocalStore, StoreError> {
        if !root.join(files::OBJECTS_DIR).is_dir() {
            std::fs::create_dir_all(root.join(files::OBJECTS_DIR))?;
            files::fsync_dir(root)?;
        }
        {
            let txn = db.begin_write()?;
            txn.open_table(BUCKETS)?;
            txn.open_table(OBJECTS)?;
            txn.open_table(INLINE_BODIES)?;
            txn.open_table(UPLOADS)?;
            txn.open_table(UPLOAD_KEYS)?;
            txn.open_table(PARTS)?;
            txn.open_table(COMPLETED)?;
            txn.open_table(BUCKET_CONFIG)?;
            txn.open_table(REPLICATION_QUEUE)?;
            txn.open_table(TOMBSTONES)?;
            let queued = replication_queue::Queue::reindex(&txn)?;
            txn.commit()?;
            if queued > 0 {
                tracing::info!(queued, "replication tasks waiting");
            }
        }
        let removed = Self::collect_orphans(&db, root)?;
        if removed > 0 {
            tracing::info!(removed, "removed orphaned body files");
        }
        let (tx, rx) = mpsc::channel();
        let thread_db = db.clone();
        let thread_root = root.to_path_buf();
        let buckets = Arc::new(BucketCache::default());
        let objects = Arc::new(ObjectCache::default());
        let caches = Caches {
            buckets: buckets.clone(),
            objects: objects.clone(),
        };
        std::thread::Builder::new()
            .name("sluice-commit".into())
            .spawn(move || commit_loop(thread_db, thread_root, caches, rx))?;
        Ok(LocalStore {
            db,
            root: root.to_path_buf(),
            inline_threshold,
            commits: tx,
            buckets,
            objects,
        })
    }

    /// Body files that no metadata references: writes cut off by a crash, or replaced bodies
    /// whose removal did not happen before one.
    fn collect_orphans(db: &Database, root: &Path) -> Result<usize, StoreError> {
        let (on_disk, strays) = files::scan_bodies(root)?;
        let mut referenced = HashSet::new();
        let txn = db.begin_read()?;
        let objects = txn.open_table(OBJECTS)?;
        for row in objects.iter()? {
            let (_, v) = row?;
            let meta = record::decode(v.value())?;
            referenced.extend(meta.body.file_ids().into_iter().map(String::from));
        }
        let parts = txn.open_table(PARTS)?;
        for row in parts.iter()? {
            let (_, v) = row?;
            let part: PartInfo = decode(v.value())?;
            referenced.insert(part.body_id);
        }
        let mut removed = 0;
        for id in on_disk {
            if !referenced.contains(&id) {
                files::remove_body(root, &id);
                removed += 1;
            }
        }
        for stray in strays {
            tracing::warn!(path = %stray.display(), "removing stray entry in the objects directory");
            let _ = std::fs::remove_file(&stray).or_else(|_| std::fs::remove_dir_all(&stray));
            removed += 1;
        }
        Ok(removed)
    }

    async fn submit(&self, op: MetaOp) -> Result<Outcome, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.commits
            .send(CommitJob { op, reply })
            .map_err(|_| StoreError::Meta("commit thread stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Meta("commit thread dropped a job".into()))?
    }

    /// A new body file for `id`; with `md5_at_writer` the running MD5 moves into it.
    async fn body_file(
        &self,
        id: &str,
        md5: &mut Md5Hasher,
        md5_at_writer: bool,
    ) -> Result<BodyFile, StoreError> {
        let md5 = md5_at_writer.then(|| std::mem::take(md5));
        BodyFile::create(body_path(&self.root, id), md5).await
    }

    /// The object's record and, `with_body`, its inline body (if stored inline), from the
    /// object cache or else from one read transaction (and then kept).
    fn read_object(
        &self,
        bucket: &str,
        key: &str,
        with_body: bool,
    ) -> Result<Option<(ObjectMeta, Option<Bytes>)>, StoreError> {
        if let Some(kept) = self.objects.get(bucket, key) {
            match kept.body {
                KeptBody::NotInline => return Ok(Some((kept.meta, None))),
                KeptBody::Inline(bytes) => return Ok(Some((kept.meta, Some(bytes)))),
                KeptBody::InlineNotKept if !with_body => return Ok(Some((kept.meta, None))),
                KeptBody::InlineNotKept => {}
            }
        }
        let at = self.objects.generation();
        let txn = self.db.begin_read()?;
        let t = txn.open_table(OBJECTS)?;
        let Some((meta, record_len)) = record::get_sized(&t, bucket, key)? else {
            return Ok(None);
        };
        let inline = match &meta.body {
            BodyLocation::Inline(id) if with_body => read_inline(&txn, id)?,
            BodyLocation::Inline(_) | BodyLocation::File(_) | BodyLocation::Multipart(_) => None,
        };
        self.objects
            .keep(at, bucket, key, &meta, record_len, inline.as_ref());
        Ok(Some((meta, inline)))
    }

    fn read_bucket(&self, name: &str) -> Result<Option<BucketInfo>, StoreError> {
        let at = self.buckets.generation();
        if let Some(kept) = self.buckets.bucket(at, name) {
            return Ok(kept);
        }
        let txn = self.db.begin_read()?;
        let t = txn.open_table(BUCKETS)?;
        let info: Option<BucketInfo> = match t.get(name)? {
            Some(v) => Some(decode(v.value())?),
            None => None,
        };
        self.buckets.keep_bucket(at, name, info.clone());
        Ok(info)
    }
}

/// Writes body bytes to a file off the async threads; when the file keeps the body's MD5
/// (plaintext bodies), hashes the same bytes beside the writes. The write and the hash are each
/// a [`Stage`]: they run on blocking threads, each in order, over the chunks as received (no
/// copy), and each may fall a few MiB behind the receive. So a write that waits on the disk does
/// not hold up the hash, nor a slow spell of the hash the next write: MD5 is the slowest step of
/// a large PUT and the only one that cannot be split, and it runs back to back while bytes are
/// queued for it.
///
/// A large body is also flushed to the disk while it arrives (see [`FLUSH_EVERY`]).
struct BodyFile {
    writer: Stage<FileWriter>,
    /// The MD5 of every byte handed to [`BodyFile::write`], when the file keeps it.
    hasher: Option<Stage<Md5Hasher>>,
    /// The descriptor of the background flushes while none runs: a read-only open of its own,
    /// made by the first flush, so a body that never flushes early holds one descriptor, and a
    /// write error that a flush hears of is still reported to the final fsync.
    flush_file: Option<std::fs::File>,
    /// The background flush under way, if any; it hands its descriptor back.
    flushing: Option<tokio::task::JoinHandle<std::io::Result<std::fs::File>>>,
    /// Bytes handed to [`BodyFile::write`], and how many of them had been when the last
    /// background flush began.
    pushed: u64,
    flush_mark: u64,
    path: PathBuf,
    guard: UncommittedFile,
}

/// Bytes a large body takes between background flushes: once that many more have been handed
/// to the file, an `fdatasync` of what is written so far runs beside the writes (one at a time).
///
/// The writeback that each write starts only hands pages to the disk, which may keep them in a
/// volatile cache (on this VM, it seems, the host's page cache); the flush that makes them
/// durable then waits for the disk to store all of it. Left to the final fsync, that wait came
/// after the whole body had arrived: 206-244 ms of a 256 MiB PUT's 711-946 ms here. Flushed as
/// the body arrives, the final fsync took 21-22 ms, and rounds of four 256 MiB PUTs at c=1 went
/// from 296-376 MiB/s (ten rounds) to 368-471 MiB/s (six). In `make bench-peers` (issue 9),
/// 432 MiB/s = 120 % of the disk's dd probe, against 84-91 % before. Bodies under this size
/// (1 MiB objects, typical multipart parts) never flush early.
const FLUSH_EVERY: u64 = 32 * 1024 * 1024;

/// Bytes a stage may hold, queued or being worked on, before the receive waits for it: the most
/// an upload holds in memory, whatever the body's size.
const BYTES_AHEAD: usize = 4 * WRITE_CHUNK;

/// A step over a body's chunks that runs on blocking threads, one task at a time and in order:
/// a task takes every chunk queued so far (at least [`WRITE_CHUNK`] bytes, or the last ones),
/// and the next starts when it is done and enough is queued again. No thread is held while the
/// stage has nothing to do (a slow client's upload costs no thread between its chunks).
struct Stage<S> {
    /// The stage's state (the file, the hasher) while no task runs.
    idle: Option<S>,
    running: Option<tokio::task::JoinHandle<std::io::Result<S>>>,
    running_bytes: usize,
    queued: Vec<Bytes>,
    queued_bytes: usize,
    step: fn(&mut S, &[Bytes]) -> std::io::Result<()>,
}

impl<S: Send + 'static> Stage<S> {
    fn new(state: S, step: fn(&mut S, &[Bytes]) -> std::io::Result<()>) -> Self {
        Stage {
            idle: Some(state),
            running: None,
            running_bytes: 0,
            queued: Vec::new(),
            queued_bytes: 0,
            step,
        }
    }

    /// Queues `chunk`; starts a task when a chunk's worth is queued and none runs, and waits for
    /// the running one when the stage holds [`BYTES_AHEAD`].
    async fn push(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        self.queued_bytes += chunk.len();
        self.queued.push(chunk);
        if self.queued_bytes + self.running_bytes >= BYTES_AHEAD {
            self.pump(true).await
        } else if self.queued_bytes >= WRITE_CHUNK {
            self.pump(false).await
        } else {
            Ok(())
        }
    }

    /// Takes the state back from a finished task (or from the running one, with `wait`), then
    /// starts a task over the queued chunks.
    async fn pump(&mut self, wait: bool) -> Result<(), StoreError> {
        if let Some(task) = self.running.take_if(|t| wait || t.is_finished()) {
            self.idle = Some(task.await.map_err(join_error)??);
            self.running_bytes = 0;
        }
        if self.running.is_none() && !self.queued.is_empty() {
            let mut state = self.idle.take().ok_or_else(stage_lost)?;
            let chunks = std::mem::take(&mut self.queued);
            let step = self.step;
            self.running_bytes = std::mem::take(&mut self.queued_bytes);
            self.running = Some(tokio::task::spawn_blocking(move || {
                step(&mut state, &chunks)?;
                Ok(state)
            }));
        }
        Ok(())
    }

    /// Waits until every chunk has been through the stage; hands back its state.
    async fn finish(&mut self) -> Result<S, StoreError> {
        while self.running.is_some() || !self.queued.is_empty() {
            self.pump(true).await?;
        }
        self.idle.take().ok_or_else(stage_lost)
    }
}

/// A stage's state went with a task that failed; the stage is not used after a failure.
fn stage_lost() -> StoreError {
    StoreError::Meta("body file used after a failure".into())
}

/// The body file and where the next write lands.
struct FileWriter {
    file: std::fs::File,
    written: u64,
}

impl FileWriter {
    /// Writes `chunks` in order with vectored writes, then starts their writeback.
    fn step(&mut self, chunks: &[Bytes]) -> std::io::Result<()> {
        let mut slices: Vec<std::io::IoSlice<'_>> =
            chunks.iter().map(|c| std::io::IoSlice::new(c)).collect();
        let mut rest = &mut slices[..];
        let start = self.written;
        while !rest.is_empty() {
            let n = self.file.write_vectored(rest)?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            std::io::IoSlice::advance_slices(&mut rest, n);
            self.written += n as u64;
        }
        files::start_writeback(&self.file, start, self.written - start);
        Ok(())
    }
}

fn md5_step(md5: &mut Md5Hasher, chunks: &[Bytes]) -> std::io::Result<()> {
    for chunk in chunks {
        md5.update(chunk);
    }
    Ok(())
}

fn join_error(e: tokio::task::JoinError) -> StoreError {
    StoreError::Io(std::io::Error::other(e))
}

impl BodyFile {
    /// Creates the file; `md5`, when given, is continued over every byte written.
    async fn create(path: PathBuf, md5: Option<Md5Hasher>) -> Result<BodyFile, StoreError> {
        let p = path.clone();
        let file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
            files::ensure_parent(&p)?;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&p)
        })
        .await
        .map_err(join_error)??;
        Ok(BodyFile {
            writer: Stage::new(FileWriter { file, written: 0 }, FileWriter::step),
            flush_file: None,
            flushing: None,
            pushed: 0,
            flush_mark: 0,
            hasher: md5.map(|h| Stage::new(h, md5_step)),
            guard: UncommittedFile {
                path: Some(path.clone()),
            },
            path,
        })
    }

    async fn write(&mut self, buf: Bytes) -> Result<(), StoreError> {
        self.pushed += buf.len() as u64;
        if let Some(h) = self.hasher.as_mut() {
            h.push(buf.clone()).await?;
        }
        self.writer.push(buf).await?;
        if self.pushed - self.flush_mark >= FLUSH_EVERY {
            self.start_flush().await?;
        }
        Ok(())
    }

    /// Starts a background flush of what the file holds so far, unless one is still running.
    /// A finished flush's error fails the body at once.
    async fn start_flush(&mut self) -> Result<(), StoreError> {
        if let Some(done) = self.flushing.take_if(|f| f.is_finished()) {
            self.flush_file = Some(done.await.map_err(join_error)??);
        }
        if self.flushing.is_none() {
            self.flush_mark = self.pushed;
            let file = self.flush_file.take();
            let path = self.path.clone();
            self.flushing = Some(tokio::task::spawn_blocking(move || {
                let file = match file {
                    Some(f) => f,
                    None => std::fs::File::open(&path)?,
                };
                file.sync_data()?;
                Ok(file)
            }));
        }
        Ok(())
    }

    /// Makes the data and the directory entry durable; hands back the MD5 the file kept.
    async fn sync(&mut self) -> Result<Option<Md5Hasher>, StoreError> {
        // The last bytes' hash and write start together, then both are waited for.
        if let Some(h) = self.hasher.as_mut() {
            h.pump(false).await?;
        }
        self.writer.pump(false).await?;
        let md5 = match self.hasher.as_mut() {
            Some(h) => Some(h.finish().await?),
            None => None,
        };
        let FileWriter { file, .. } = self.writer.finish().await?;
        if let Some(flush) = self.flushing.take() {
            flush.await.map_err(join_error)??;
        }
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            file.sync_all()?;
            if let Some(dir) = path.parent() {
                files::fsync_dir(dir)?;
            }
            Ok(())
        })
        .await
        .map_err(join_error)??;
        Ok(md5)
    }
}

#[async_trait::async_trait]
impl Store for LocalStore {
    async fn create_bucket(
        &self,
        name: &str,
        owner_id: &str,
        region: &str,
    ) -> Result<(), StoreError> {
        self.submit(MetaOp::CreateBucket(BucketInfo {
            name: name.to_string(),
            owner_id: owner_id.to_string(),
            created: now_millis(),
            region: region.to_string(),
        }))
        .await
        .map(|_| ())
    }

    async fn delete_bucket(&self, name: &str) -> Result<(), StoreError> {
        self.submit(MetaOp::DeleteBucket(name.to_string()))
            .await
            .map(|_| ())
    }

    async fn bucket(&self, name: &str) -> Result<Option<BucketInfo>, StoreError> {
        self.read_bucket(name)
    }

    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(BUCKETS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (_, v) = row?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    async fn stage_body(
        &self,
        mut body: BodyStream,
        algorithm: Option<ChecksumAlgorithm>,
        max_size: u64,
        as_file: bool,
        mut sealer: Option<Sealer>,
    ) -> Result<StagedBody, StoreError> {
        let piece = sealer.as_ref().map(Sealer::piece);
        let inline_limit = if as_file { 0 } else { self.inline_threshold };
        let mut md5 = Md5Hasher::default();
        // A plaintext body reaches the inline buffer or the file exactly as received, so its MD5
        // is taken there: over the buffer at the end, or by the file as its chunks are written.
        let md5_at_writer = sealer.is_none();
        let mut hasher = ChecksumHasher::new(algorithm.unwrap_or(ChecksumAlgorithm::Crc64Nvme));
        let mut size: u64 = 0;
        let mut buf = BytesMut::new();
        let mut file: Option<BodyFile> = None;
        let id = files::new_body_id();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(StoreError::Body)?;
            size += chunk.len() as u64;
            if size > max_size {
                return Err(StoreError::TooLarge(max_size));
            }
            if !md5_at_writer {
                md5.update(&chunk);
            }
            hasher.update(&chunk);
            match (sealer.as_mut(), file.as_mut()) {
                // A plaintext body already in its file: the chunk goes on as received, uncopied.
                (None, Some(f)) => {
                    f.write(chunk).await?;
                    continue;
                }
                (Some(s), _) => s.push(&chunk, &mut buf),
                (None, None) => buf.extend_from_slice(&chunk),
            }
            if file.is_none() && buf.len() > inline_limit {
                file = Some(self.body_file(&id, &mut md5, md5_at_writer).await?);
            }
            // What a plaintext body gathered before its file existed goes at once; sealed
            // pieces go a chunk at a time.
            if let Some(f) = file.as_mut()
                && !buf.is_empty()
                && (sealer.is_none() || buf.len() >= WRITE_CHUNK)
            {
                f.write(buf.split().freeze()).await?;
            }
        }
        if let Some(s) = sealer {
            s.finish(&mut buf);
            if file.is_none() && buf.len() > inline_limit {
                file = Some(self.body_file(&id, &mut md5, md5_at_writer).await?);
            }
        }
        if file.is_none() && as_file {
            // An empty part still needs its (empty) file.
            file = Some(self.body_file(&id, &mut md5, md5_at_writer).await?);
        }
        let (location, inline, guard) = match file {
            None => {
                if md5_at_writer {
                    md5.update(&buf);
                }
                (BodyLocation::Inline(id), Some(buf.freeze()), None)
            }
            Some(mut f) => {
                if !buf.is_empty() {
                    f.write(buf.split().freeze()).await?;
                }
                if let Some(kept) = f.sync().await? {
                    md5 = kept;
                }
                (BodyLocation::File(id), None, Some(f.guard))
            }
        };
        Ok(StagedBody {
            size,
            piece,
            md5: md5.finish(),
            checksum: hasher.finish(),
            location,
            inline,
            guard,
        })
    }

    async fn discard(&self, staged: StagedBody) {
        drop(staged);
    }

    async fn commit_object(
        &self,
        bucket: &str,
        key: &str,
        object: NewObject,
        mut staged: StagedBody,
        condition: WriteCondition,
    ) -> Result<ObjectMeta, StoreError> {
        let meta = ObjectMeta {
            size: staged.size,
            etag: hex::encode(staged.md5),
            last_modified: now_millis(),
            owner_id: object.owner_id,
            headers: object.headers,
            user_meta: object.user_meta,
            tags: object.tags,
            acl: object.acl,
            encryption: object.encryption.map(|mut e| {
                e.piece = staged.piece;
                e
            }),
            replication_status: None,
            written_ms: Some(super::precise_now_ms()),
            checksum: Some(staged.checksum.clone()),
            body: staged.location.clone(),
        };

        self.submit(MetaOp::PutObject {
            bucket: bucket.to_string(),
            key: key.to_string(),
            meta: Box::new(meta.clone()),
            inline: staged.inline.take(),
            condition,
        })
        .await?;
        if let Some(g) = staged.guard.as_mut() {
            g.disarm();
        }
        Ok(meta)
    }

    async fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        Ok(self.read_object(bucket, key, false)?.map(|(meta, _)| meta))
    }

    async fn object_for_read(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(ObjectMeta, Option<Bytes>)>, StoreError> {
        self.read_object(bucket, key, true)
    }

    async fn open_body_read(
        &self,
        meta: &ObjectMeta,
        inline: Option<Bytes>,
        range: Option<ByteRange>,
        cipher: Option<&ObjectCipher>,
    ) -> Result<BodyStream, StoreError> {
        let (start, len) = match range {
            Some(r) => (r.start, r.end + 1 - r.start),
            None => (0, meta.size),
        };
        let cipher = match (&meta.encryption, cipher) {
            (Some(_), None) => return Err(StoreError::Encrypted),
            (Some(_), Some(c)) => Some(c.clone()),
            (None, _) => None,
        };
        let seal = meta.encryption.as_ref().and_then(|e| e.piece);
        match &meta.body {
            BodyLocation::Inline(id) => {
                let bytes = match inline {
                    Some(b) => b,
                    None => {
                        read_inline(&self.db.begin_read()?, id)?.ok_or(StoreError::NoSuchKey)?
                    }
                };
                let (from, n) = match &cipher {
                    Some(_) => {
                        let r = sealed_range(meta.size, start, len);
                        (r.offset, r.len)
                    }
                    None => (start, len),
                };
                let end = (from + n).min(bytes.len() as u64) as usize;
                let raw = bytes.slice((from as usize).min(end)..end);
                let raw: BodyStream = Box::pin(futures::stream::once(async move { Ok(raw) }));
                match (cipher, seal) {
                    (None, _) => Ok(raw),
                    (Some(c), Some(seal)) => {
                        let r = sealed_range(meta.size, start, len);
                        Ok(Box::pin(OpenStream::new(raw, c, seal, meta.size, r, len)))
                    }
                    (Some(_), None) => Err(StoreError::Corrupt(
                        "encrypted body without its seal".into(),
                    )),
                }
            }
            BodyLocation::File(id) => {
                open_piece(&self.root, id, meta.size, seal, cipher, start, len)
                    .await
                    .map_err(not_found_is_replaced)
            }
            BodyLocation::Multipart(parts) => {
                // The part files that overlap [start, start+len), with offsets inside each.
                let mut segments = Vec::new();
                let mut part_start = 0u64;
                let end = start + len;
                for p in parts {
                    let part_end = part_start + p.size;
                    if part_end > start && part_start < end && p.size > 0 {
                        let from = start.max(part_start) - part_start;
                        let to = end.min(part_end) - part_start;
                        segments.push((p.clone(), from, to - from));
                    }
                    part_start = part_end;
                }
                let mut segments = segments.into_iter();
                let Some((p, off, n)) = segments.next() else {
                    return Ok(Box::pin(futures::stream::empty()));
                };
                // The first file is opened now so that a replaced object is noticed up front.
                let first = open_piece(&self.root, &p.id, p.size, p.seal, cipher.clone(), off, n)
                    .await
                    .map_err(not_found_is_replaced)?;
                let root = self.root.clone();
                let rest = futures::stream::iter(segments)
                    .then(move |(p, off, n)| {
                        let root = root.clone();
                        let cipher = cipher.clone();
                        async move { open_piece(&root, &p.id, p.size, p.seal, cipher, off, n).await }
                    })
                    .map(|opened| match opened {
                        Ok(stream) => stream,
                        Err(e) => {
                            Box::pin(futures::stream::once(async move { Err(e) })) as BodyStream
                        }
                    })
                    .flatten();
                Ok(Box::pin(first.chain(rest)))
            }
        }
    }

    async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        if_match: Option<&str>,
        replica_time: Option<i64>,
    ) -> Result<bool, StoreError> {
        self.submit(MetaOp::DeleteObject {
            bucket: bucket.to_string(),
            key: key.to_string(),
            if_match: if_match.map(str::to_string),
            replica_time,
        })
        .await
        .map(|o| o.existed)
    }

    async fn set_object_tags(
        &self,
        bucket: &str,
        key: &str,
        tags: Vec<(String, String)>,
    ) -> Result<(), StoreError> {
        self.submit(MetaOp::SetObjectTags {
            bucket: bucket.to_string(),
            key: key.to_string(),
            tags,
        })
        .await
        .map(|_| ())
    }

    async fn set_object_acl(
        &self,
        bucket: &str,
        key: &str,
        acl: super::acl::Acl,
    ) -> Result<(), StoreError> {
        self.submit(MetaOp::SetObjectAcl {
            bucket: bucket.to_string(),
            key: key.to_string(),
            acl,
        })
        .await
        .map(|_| ())
    }

    async fn bucket_config(&self, bucket: &str, kind: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let at = self.buckets.generation();
        if let Some(kept) = self.buckets.config(at, bucket, kind) {
            return Ok(kept);
        }
        let txn = self.db.begin_read()?;
        let t = txn.open_table(BUCKET_CONFIG)?;
        let value = t.get((bucket, kind))?.map(|v| v.value().to_vec());
        self.buckets.keep_config(at, bucket, kind, value.clone());
        Ok(value)
    }

    async fn put_bucket_config(
        &self,
        bucket: &str,
        kind: &str,
        value: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        self.submit(MetaOp::PutBucketConfig {
            bucket: bucket.to_string(),
            kind: kind.to_string(),
            value,
        })
        .await
        .map(|_| ())
    }

    async fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        upload: NewUpload,
    ) -> Result<String, StoreError> {
        let info = UploadInfo {
            upload_id: uploads::new_upload_id(chrono::Utc::now().timestamp_millis()),
            bucket: bucket.to_string(),
            key: key.to_string(),
            initiated: now_millis(),
            initiator_id: (upload.initiator_id != upload.owner_id).then_some(upload.initiator_id),
            owner_id: upload.owner_id,
            headers: upload.headers,
            user_meta: upload.user_meta,
            tags: upload.tags,
            acl: upload.acl,
            checksum_algorithm: upload.checksum_algorithm,
            checksum_type: upload.checksum_type,
            encryption: upload.encryption,
        };
        let id = info.upload_id.clone();
        self.submit(MetaOp::CreateUpload(Box::new(info))).await?;
        Ok(id)
    }

    async fn upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<UploadInfo, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(UPLOADS)?;
        uploads::read_upload(&t, bucket, key, upload_id)
    }

    async fn put_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        mut staged: StagedBody,
    ) -> Result<PartInfo, StoreError> {
        let BodyLocation::File(body_id) = staged.location.clone() else {
            return Err(StoreError::Meta("a part body must be a file".into()));
        };
        let part = PartInfo {
            part_number,
            size: staged.size,
            etag: hex::encode(staged.md5),
            last_modified: now_millis(),
            checksum: staged.checksum.clone(),
            body_id,
            seal: staged.piece,
        };
        self.submit(MetaOp::PutPart {
            bucket: bucket.to_string(),
            key: key.to_string(),
            upload_id: upload_id.to_string(),
            part: Box::new(part.clone()),
        })
        .await?;
        if let Some(g) = staged.guard.as_mut() {
            g.disarm();
        }
        Ok(part)
    }

    async fn list_parts(
        &self,
        upload_id: &str,
        after: u32,
        max: usize,
    ) -> Result<(Vec<PartInfo>, bool), StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(PARTS)?;
        uploads::list_parts(&t, upload_id, after, max)
    }

    async fn list_uploads(
        &self,
        bucket: &str,
        query: &UploadListQuery,
    ) -> Result<UploadListPage, StoreError> {
        let txn = self.db.begin_read()?;
        if txn.open_table(BUCKETS)?.get(bucket)?.is_none() {
            return Err(StoreError::NoSuchBucket(bucket.to_string()));
        }
        let keys = txn.open_table(UPLOAD_KEYS)?;
        let ups = txn.open_table(UPLOADS)?;
        uploads::list(&keys, &ups, bucket, query)
    }

    async fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
        condition: WriteCondition,
    ) -> Result<ObjectMeta, StoreError> {
        let outcome = self
            .submit(MetaOp::CompleteUpload {
                bucket: bucket.to_string(),
                key: key.to_string(),
                upload_id: upload_id.to_string(),
                parts,
                condition,
            })
            .await?;
        outcome
            .completed
            .ok_or_else(|| StoreError::Meta("completion produced no object".into()))
    }

    async fn replication_due(
        &self,
        target: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<(u64, ReplicationTask)>, StoreError> {
        let txn = self.db.begin_read()?;
        replication_queue::due(
            &txn.open_table(REPLICATION_QUEUE)?,
            &txn.open_table(REPLICATION_SCHEDULE)?,
            &txn.open_table(REPLICATION_KEY_ORDER)?,
            &txn.open_table(BUCKET_CONFIG)?,
            target,
            now_ms,
            limit,
        )
    }

    async fn prune_tombstones(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut pruned = 0u64;
        let mut from: Option<(String, String)> = None;
        loop {
            let db = self.db.clone();
            let start = from.take();
            let (stale, next) =
                tokio::task::spawn_blocking(move || stale_tombstones(&db, start, before_ms))
                    .await
                    .map_err(|e| StoreError::Meta(format!("tombstone scan: {e}")))??;
            if !stale.is_empty() {
                pruned += stale.len() as u64;
                self.submit(MetaOp::PruneTombstones {
                    keys: stale,
                    before_ms,
                })
                .await?;
            }
            match next {
                Some(n) => from = Some(n),
                None => return Ok(pruned),
            }
        }
    }

    async fn replication_targets_queued(
        &self,
    ) -> Result<std::collections::BTreeSet<String>, StoreError> {
        let txn = self.db.begin_read()?;
        replication_queue::queued_targets(&txn.open_table(REPLICATION_SCHEDULE)?)
    }

    async fn finish_replication(
        &self,
        seq: u64,
        task: &ReplicationTask,
        status: Option<&str>,
    ) -> Result<(), StoreError> {
        self.submit(MetaOp::FinishReplication {
            seq,
            task: Box::new(task.clone()),
            status: status.map(str::to_string),
        })
        .await
        .map(|_| ())
    }

    async fn reschedule_replication(
        &self,
        seq: u64,
        task: &ReplicationTask,
    ) -> Result<(), StoreError> {
        self.submit(MetaOp::RescheduleReplication {
            seq,
            task: Box::new(task.clone()),
        })
        .await
        .map(|_| ())
    }

    async fn replication_backlog(
        &self,
        bucket: Option<&str>,
    ) -> Result<replication_queue::Backlog, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(REPLICATION_QUEUE)?;
        match bucket {
            None => replication_queue::totals(&t, &txn.open_table(REPLICATION_RETRYING)?),
            Some(_) => replication_queue::backlog(&t, bucket),
        }
    }

    async fn abort_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), StoreError> {
        self.submit(MetaOp::AbortUpload {
            bucket: bucket.to_string(),
            key: key.to_string(),
            upload_id: upload_id.to_string(),
        })
        .await
        .map(|_| ())
    }

    async fn list_objects(&self, bucket: &str, query: &ListQuery) -> Result<ListPage, StoreError> {
        let db = self.db.clone();
        let bucket = bucket.to_string();
        let query = query.clone();
        tokio::task::spawn_blocking(move || list_blocking(&db, &bucket, &query))
            .await
            .map_err(|e| StoreError::Meta(e.to_string()))?
    }
}

/// A body read from a missing file means the object was replaced since its metadata was read.
fn not_found_is_replaced(e: std::io::Error) -> StoreError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StoreError::NoSuchKey
    } else {
        StoreError::Io(e)
    }
}

/// Opens plaintext `from..from+len` of one stored piece (a body file), reading and opening only
/// the sealed segments that cover it when the piece is encrypted.
async fn open_piece(
    root: &Path,
    id: &str,
    piece_len: u64,
    seal: Option<PieceSeal>,
    cipher: Option<ObjectCipher>,
    from: u64,
    len: u64,
) -> Result<BodyStream, std::io::Error> {
    match (cipher, seal) {
        (None, _) => open_file_range(root, id, from, len, READ_CHUNK).await,
        (Some(c), Some(seal)) => {
            let r = sealed_range(piece_len, from, len);
            // Reads of whole sealed segments, so each chunk opens without copying.
            let chunk =
                4 * (crate::crypto::segments::SEGMENT_LEN + crate::crypto::segments::TAG_LEN);
            let raw = open_file_range(root, id, r.offset, r.len, chunk).await?;
            Ok(Box::pin(OpenStream::new(raw, c, seal, piece_len, r, len)))
        }
        (Some(_), None) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "encrypted body without its seal",
        )),
    }
}

/// Streams `len` bytes of body file `id` from `offset`, in chunks of `chunk` bytes.
async fn open_file_range(
    root: &Path,
    id: &str,
    offset: u64,
    len: u64,
    chunk: usize,
) -> Result<BodyStream, std::io::Error> {
    let path = body_path(root, id);
    let file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        use std::io::{Seek, SeekFrom};
        let mut f = std::fs::File::open(path)?;
        if offset > 0 {
            f.seek(SeekFrom::Start(offset))?;
        }
        Ok(f)
    })
    .await
    .map_err(std::io::Error::other)??;
    Ok(Box::pin(files::FileChunks::new(file, len, chunk)))
}

/// An inline body's stored bytes.
fn read_inline(txn: &redb::ReadTransaction, id: &str) -> Result<Option<Bytes>, StoreError> {
    let t = txn.open_table(INLINE_BODIES)?;
    Ok(t.get(id)?.map(|v| Bytes::copy_from_slice(v.value())))
}

fn list_blocking(db: &Database, bucket: &str, query: &ListQuery) -> Result<ListPage, StoreError> {
    {
        let txn = db.begin_read()?;
        let buckets = txn.open_table(BUCKETS)?;
        if buckets.get(bucket)?.is_none() {
            return Err(StoreError::NoSuchBucket(bucket.to_string()));
        }
    }
    if query.max_keys == 0 {
        return Ok(ListPage::default());
    }
    let txn = db.begin_read()?;
    let t = txn.open_table(OBJECTS)?;
    let mut builder = PageBuilder::new(query);
    let mut from: Bound<String> = match &query.start_after {
        Some(sa) if sa.as_str() >= query.prefix.as_str() => Bound::Excluded(sa.clone()),
        _ => Bound::Included(query.prefix.clone()),
    };
    let mut skip: Option<String> = None;
    'seek: loop {
        let lower = match &from {
            Bound::Included(k) => Bound::Included((bucket, k.as_str())),
            Bound::Excluded(k) => Bound::Excluded((bucket, k.as_str())),
            Bound::Unbounded => Bound::Unbounded,
        };
        let range = t.range::<(&str, &str)>((lower, Bound::Unbounded))?;
        for row in range {
            let (k, v) = row?;
            let (b, key) = k.value();
            if b != bucket || !key.starts_with(query.prefix.as_str()) {
                break 'seek;
            }
            if let Some(cp) = &skip {
                if key.starts_with(cp.as_str()) {
                    continue;
                }
                skip = None;
            }
            let mut decode_err = None;
            let feed = builder.feed(key, || {
                match record::decode_listed(v.value(), !query.skip_owner) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        decode_err = Some(e);
                        None
                    }
                }
            });
            if let Some(e) = decode_err {
                return Err(e);
            }
            match feed {
                Feed::Next => {}
                Feed::Done => break 'seek,
                Feed::SkipPrefix(cp) => {
                    // Jump past every key under this prefix rather than walking them.
                    let mut next = cp.clone();
                    next.push(char::MAX);
                    from = Bound::Included(next);
                    skip = Some(cp);
                    continue 'seek;
                }
            }
        }
        break;
    }
    Ok(builder.finish())
}

/// What the commit thread tells of each commit: see [`commit_loop`].
struct Caches {
    buckets: Arc<BucketCache>,
    objects: Arc<ObjectCache>,
}

/// The group-commit thread: takes every job waiting, applies them in one redb transaction with
/// immediate durability, then answers each.
///
/// The caches learn of a commit on both sides of it. Before it, whatever they hold of what the
/// batch may change stops being answered, so that nothing read from them after the commit
/// became visible (to a listing, to the replication worker it wakes) is older than what redb
/// shows. After it, and before any writer is answered, reads that began meanwhile (and may have
/// seen either state) are disowned too. Both happen even when the commit fails.
fn commit_loop(db: Arc<Database>, root: PathBuf, caches: Caches, rx: mpsc::Receiver<CommitJob>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let buckets_change = batch.iter().any(|job| job.op.changes_buckets());
        if buckets_change {
            caches.buckets.changed();
        }
        let next = caches
            .objects
            .changing(batch.iter().map(|job| job.op.object_change()));
        let results = match apply_batch(&db, &batch) {
            Ok(results) => results,
            Err(e) => {
                tracing::error!(error = %e, "metadata commit failed");
                let msg = e.to_string();
                batch
                    .iter()
                    .map(|_| Err(StoreError::Meta(msg.clone())))
                    .collect()
            }
        };
        if buckets_change {
            caches.buckets.changed();
        }
        caches.objects.changed(next);
        let mut freed = Vec::new();
        for (job, result) in batch.into_iter().zip(results) {
            if let Ok(outcome) = &result {
                freed.extend(outcome.freed.iter().cloned());
            }
            let _ = job.reply.send(result);
        }
        for id in freed {
            files::remove_body(&root, &id);
        }
    }
}

fn apply_batch(
    db: &Database,
    batch: &[CommitJob],
) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    let mut results = Vec::with_capacity(batch.len());
    {
        let mut t = Tables {
            buckets: txn.open_table(BUCKETS)?,
            objects: txn.open_table(OBJECTS)?,
            inline: txn.open_table(INLINE_BODIES)?,
            uploads: txn.open_table(UPLOADS)?,
            upload_keys: txn.open_table(UPLOAD_KEYS)?,
            parts: txn.open_table(PARTS)?,
            completed: txn.open_table(COMPLETED)?,
            config: txn.open_table(BUCKET_CONFIG)?,
            queue: replication_queue::Queue::open(&txn)?,
            tombstones: txn.open_table(TOMBSTONES)?,
        };
        let now = now_millis();
        for job in batch {
            let r = apply_one(&job.op, &mut t, now);
            // A failure of the metadata store itself aborts the whole batch.
            if let Err(e @ (StoreError::Meta(_) | StoreError::Io(_))) = &r {
                return Err(StoreError::Meta(e.to_string()));
            }
            results.push(r);
        }
    }
    txn.commit()?;
    replication_queue::wake_after_commit();
    Ok(results)
}

type Table<'t, K> = redb::Table<'t, K, &'static [u8]>;

/// Every table a metadata operation may touch, open in one write transaction.
struct Tables<'t> {
    buckets: Table<'t, &'static str>,
    objects: Table<'t, (&'static str, &'static str)>,
    inline: Table<'t, &'static str>,
    uploads: Table<'t, &'static str>,
    upload_keys: Table<'t, (&'static str, &'static str, &'static str)>,
    parts: Table<'t, (&'static str, u32)>,
    completed: Table<'t, &'static str>,
    config: Table<'t, (&'static str, &'static str)>,
    queue: replication_queue::Queue<'t>,
    tombstones: Table<'t, (&'static str, &'static str)>,
}

/// The second halves of the (bucket, _) keys of a table, for `bucket`.
fn second_keys(
    table: &Table<'_, (&'static str, &'static str)>,
    bucket: &str,
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for row in table.range::<(&str, &str)>((bucket, "")..)? {
        let (k, _) = row?;
        let (b, second) = k.value();
        if b != bucket {
            break;
        }
        out.push(second.to_string());
    }
    Ok(out)
}

/// Tombstones recorded before `before_ms`, from `start` on (a read transaction over at most
/// SCAN rows, at most BATCH found; each batch is then removed in one commit, which checks the
/// time again), and where the next scan starts, if the table goes on.
#[allow(clippy::type_complexity)]
fn stale_tombstones(
    db: &Database,
    start: Option<(String, String)>,
    before_ms: i64,
) -> Result<(Vec<(String, String)>, Option<(String, String)>), StoreError> {
    const BATCH: usize = 10_000;
    const SCAN: usize = 200_000;
    let txn = db.begin_read()?;
    let table = txn.open_table(TOMBSTONES)?;
    let rows = match &start {
        Some((b, k)) => table.range::<(&str, &str)>((b.as_str(), k.as_str())..)?,
        None => table.range::<(&str, &str)>(..)?,
    };
    let mut stale = Vec::new();
    for (scanned, row) in rows.enumerate() {
        let (k, v) = row?;
        let (bucket, key) = k.value();
        if stale.len() >= BATCH || scanned >= SCAN {
            return Ok((stale, Some((bucket.to_string(), key.to_string()))));
        }
        if tombstone_times(v.value()).is_some_and(|(_, recorded)| recorded < before_ms) {
            stale.push((bucket.to_string(), key.to_string()));
        }
    }
    Ok((stale, None))
}

/// A tombstone's value: the delete's time (what replicas are compared with), then when this
/// store recorded it (what its retention counts from), both Unix ms, big-endian.
fn tombstone(deleted_at: i64, recorded_at: i64) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&deleted_at.to_be_bytes());
    v[8..].copy_from_slice(&recorded_at.to_be_bytes());
    v
}

/// (deleted at, recorded at) of a tombstone's value; tombstones written before the second time
/// was kept hold only the first, which then stands for both.
fn tombstone_times(v: &[u8]) -> Option<(i64, i64)> {
    let at = i64::from_be_bytes(v.get(..8)?.try_into().ok()?);
    let recorded = v
        .get(8..16)
        .and_then(|r| <[u8; 8]>::try_from(r).ok())
        .map_or(at, i64::from_be_bytes);
    Some((at, recorded))
}

/// (deleted at, recorded at) of `key`'s tombstone, if there is one.
fn tombstone_of(t: &Tables<'_>, bucket: &str, key: &str) -> Result<Option<(i64, i64)>, StoreError> {
    Ok(t.tombstones
        .get((bucket, key))?
        .and_then(|v| tombstone_times(v.value())))
}

/// When `key` was deleted, if a tombstone says so.
fn deleted_at(t: &Tables<'_>, bucket: &str, key: &str) -> Result<Option<i64>, StoreError> {
    Ok(tombstone_of(t, bucket, key)?.map(|(at, _)| at))
}

/// Changes one stored object's metadata in place (`NoSuchKey` when there is no object).
fn update_object(
    t: &mut Tables<'_>,
    bucket: &str,
    key: &str,
    change: impl FnOnce(&mut ObjectMeta),
) -> Result<Outcome, StoreError> {
    require_bucket(t, bucket)?;
    let mut meta = record::get(&t.objects, bucket, key)?.ok_or(StoreError::NoSuchKey)?;
    change(&mut meta);
    record::put(&mut t.objects, bucket, key, &meta)?;
    Ok(Outcome::default())
}

fn require_bucket(t: &Tables<'_>, bucket: &str) -> Result<(), StoreError> {
    if t.buckets.get(bucket)?.is_none() {
        return Err(StoreError::NoSuchBucket(bucket.to_string()));
    }
    Ok(())
}

/// Applies one operation. Logical failures (preconditions, missing things) are detected before
/// anything is written, so a failed operation leaves the transaction as it found it.
fn apply_one(op: &MetaOp, t: &mut Tables<'_>, now: i64) -> Result<Outcome, StoreError> {
    match op {
        MetaOp::CreateBucket(info) => {
            if let Some(existing) = t.buckets.get(info.name.as_str())? {
                let existing: BucketInfo = decode(existing.value())?;
                return Err(StoreError::BucketExists {
                    bucket: info.name.clone(),
                    owner_id: existing.owner_id,
                });
            }
            t.buckets
                .insert(info.name.as_str(), encode(info).as_slice())?;
            Ok(Outcome::default())
        }
        MetaOp::DeleteBucket(name) => {
            require_bucket(t, name)?;
            {
                let mut range = t.objects.range::<(&str, &str)>((name.as_str(), "")..)?;
                if let Some(row) = range.next() {
                    let (k, _) = row?;
                    if k.value().0 == name.as_str() {
                        return Err(StoreError::BucketNotEmpty(name.clone()));
                    }
                }
            }
            // In-progress uploads go with the bucket.
            let page = uploads::list(
                &t.upload_keys,
                &t.uploads,
                name,
                &UploadListQuery {
                    max_uploads: usize::MAX,
                    ..Default::default()
                },
            )?;
            let mut freed = Vec::new();
            for info in &page.uploads {
                let removed =
                    uploads::remove_upload(&mut t.uploads, &mut t.upload_keys, &mut t.parts, info)?;
                freed.extend(removed.into_iter().map(|p| p.body_id));
            }
            for kind in second_keys(&t.config, name)? {
                t.config.remove((name.as_str(), kind.as_str()))?;
            }
            for key in second_keys(&t.tombstones, name)? {
                t.tombstones.remove((name.as_str(), key.as_str()))?;
            }
            t.buckets.remove(name.as_str())?;
            Ok(Outcome {
                existed: true,
                freed,
                completed: None,
            })
        }
        MetaOp::PutObject {
            bucket,
            key,
            meta,
            inline: body,
            condition,
        } => {
            require_bucket(t, bucket)?;
            let old = record::get(&t.objects, bucket, key)?;
            if condition.if_none_match_any && old.is_some() {
                return Err(StoreError::PreconditionFailed);
            }
            if let Some(expected) = &condition.if_match {
                match &old {
                    None => return Err(StoreError::ConditionalConflict),
                    Some(o) if !etag_matches(expected, &o.etag) => {
                        return Err(StoreError::PreconditionFailed);
                    }
                    Some(_) => {}
                }
            }
            let deleted = deleted_at(t, bucket, key)?;
            condition.check_replica(&meta.etag, old.as_ref(), deleted)?;
            if let (Some(bytes), BodyLocation::Inline(id)) = (body, &meta.body) {
                t.inline.insert(id.as_str(), bytes.as_ref())?;
            }
            let mut stored = (**meta).clone();
            condition.stamp(&mut stored, old.as_ref(), deleted);
            if deleted.is_some() {
                t.tombstones.remove((bucket.as_str(), key.as_str()))?;
            }
            replication_queue::enqueue_put(&t.config, &mut t.queue, bucket, key, &mut stored, now)?;
            record::put(&mut t.objects, bucket, key, &stored)?;
            release(old, &mut t.inline)
        }
        MetaOp::DeleteObject {
            bucket,
            key,
            if_match,
            replica_time,
        } => {
            require_bucket(t, bucket)?;
            if if_match.is_some() || replica_time.is_some() {
                let current = record::get(&t.objects, bucket, key)?;
                if let Some(expected) = if_match {
                    match &current {
                        None => return Err(StoreError::NoSuchKey),
                        Some(c) if !etag_matches(expected, &c.etag) => {
                            return Err(StoreError::PreconditionFailed);
                        }
                        Some(_) => {}
                    }
                }
                // A replicated delete never removes a newer write (last writer wins).
                if let (Some(at), Some(c)) = (replica_time, &current)
                    && c.write_time_ms() > *at
                {
                    return Err(StoreError::PreconditionFailed);
                }
            }
            let old = match t.objects.remove((bucket.as_str(), key.as_str()))? {
                Some(v) => Some(record::decode(v.value())?),
                None => None,
            };
            if let Some(o) = &old {
                // The delete's time: a replica's source time, or a time after the object's.
                let at = replica_time
                    .unwrap_or_else(|| super::precise_now_ms().max(o.write_time_ms() + 1));
                if replication_queue::has_rules(&t.config, bucket)? {
                    t.tombstones.insert(
                        (bucket.as_str(), key.as_str()),
                        tombstone(at, super::precise_now_ms()).as_slice(),
                    )?;
                }
                if replica_time.is_none() {
                    replication_queue::enqueue_delete(&t.config, &mut t.queue, bucket, key, o, at)?;
                }
            }
            release(old, &mut t.inline)
        }
        MetaOp::CreateUpload(info) => {
            require_bucket(t, &info.bucket)?;
            uploads::insert_upload(&mut t.uploads, &mut t.upload_keys, info)?;
            Ok(Outcome::default())
        }
        MetaOp::PutPart {
            bucket,
            key,
            upload_id,
            part,
        } => {
            let replaced =
                uploads::insert_part(&t.uploads, &mut t.parts, bucket, key, upload_id, part)?;
            Ok(Outcome {
                existed: replaced.is_some(),
                freed: replaced.into_iter().collect(),
                completed: None,
            })
        }
        MetaOp::CompleteUpload {
            bucket,
            key,
            upload_id,
            parts,
            condition,
        } => {
            require_bucket(t, bucket)?;
            let deleted = deleted_at(t, bucket, key)?;
            let done = uploads::complete(
                &CompleteArgs {
                    bucket,
                    key,
                    upload_id,
                    parts,
                    condition,
                    now,
                    deleted_at: deleted,
                },
                &mut t.objects,
                &mut t.uploads,
                &mut t.upload_keys,
                &mut t.parts,
                &mut t.completed,
            )?;
            if deleted.is_some() && !done.replay {
                t.tombstones.remove((bucket.as_str(), key.as_str()))?;
            }
            let mut outcome = release(done.replaced, &mut t.inline)?;
            // The replaced object's files are already in `done.freed`.
            outcome.freed = done.freed;
            let mut meta = done.meta;
            // A repeated completion answers the first one and writes nothing (the object may
            // have been replaced or deleted since).
            if !done.replay
                && replication_queue::enqueue_put(
                    &t.config,
                    &mut t.queue,
                    bucket,
                    key,
                    &mut meta,
                    now,
                )?
            {
                record::put(&mut t.objects, bucket, key, &meta)?;
            }
            outcome.completed = Some(meta);
            Ok(outcome)
        }
        MetaOp::SetObjectTags { bucket, key, tags } => {
            update_object(t, bucket, key, |meta| meta.tags = tags.clone())
        }
        MetaOp::SetObjectAcl { bucket, key, acl } => {
            update_object(t, bucket, key, |meta| meta.acl = Some(acl.clone()))
        }
        MetaOp::PutBucketConfig {
            bucket,
            kind,
            value,
        } => {
            require_bucket(t, bucket)?;
            match value {
                Some(v) => {
                    t.config
                        .insert((bucket.as_str(), kind.as_str()), v.as_slice())?;
                }
                None => {
                    t.config.remove((bucket.as_str(), kind.as_str()))?;
                }
            }
            Ok(Outcome::default())
        }
        MetaOp::FinishReplication { seq, task, status } => {
            t.queue.remove(*seq)?;
            // With several destinations the object stays PENDING until the last one is done,
            // and a FAILED one is not overwritten by a later success.
            let waiting = t.queue.has_siblings(*seq, task)?;
            let status = status
                .as_ref()
                .filter(|s| s.as_str() == replication_queue::FAILED || !waiting);
            if let Some(status) = status {
                let current = record::get(&t.objects, &task.bucket, &task.key)?;
                if let Some(mut m) = current
                    && m.etag == task.etag
                    && m.last_modified == task.last_modified
                    && m.replication_status.as_deref() != Some(replication_queue::FAILED)
                {
                    m.replication_status = Some(status.clone());
                    record::put(&mut t.objects, &task.bucket, &task.key, &m)?;
                }
            }
            Ok(Outcome::default())
        }
        MetaOp::RescheduleReplication { seq, task } => {
            t.queue.reschedule(*seq, task)?;
            Ok(Outcome::default())
        }
        MetaOp::PruneTombstones { keys, before_ms } => {
            let mut outcome = Outcome::default();
            for (bucket, key) in keys {
                // A delete made since the scan recorded the tombstone again: keep it.
                if tombstone_of(t, bucket, key)?.is_some_and(|(_, recorded)| recorded < *before_ms)
                {
                    t.tombstones.remove((bucket.as_str(), key.as_str()))?;
                    outcome.existed = true;
                }
            }
            Ok(outcome)
        }
        MetaOp::AbortUpload {
            bucket,
            key,
            upload_id,
        } => {
            let info = uploads::read_upload(&t.uploads, bucket, key, upload_id)?;
            let removed =
                uploads::remove_upload(&mut t.uploads, &mut t.upload_keys, &mut t.parts, &info)?;
            Ok(Outcome {
                existed: true,
                freed: removed.into_iter().map(|p| p.body_id).collect(),
                completed: None,
            })
        }
    }
}

/// Frees the body of a replaced or deleted object: inline rows go in the same transaction,
/// files after the commit is durable.
fn release(
    old: Option<ObjectMeta>,
    inline: &mut Table<&'static str>,
) -> Result<Outcome, StoreError> {
    let Some(old) = old else {
        return Ok(Outcome::default());
    };
    if let BodyLocation::Inline(id) = &old.body {
        inline.remove(id.as_str())?;
    }
    Ok(Outcome {
        existed: true,
        freed: old.body.file_ids().into_iter().map(String::from).collect(),
        completed: None,
    })
}

/// Compares an `If-Match`-style list (`"etag"`, `etag`, `*`, comma-separated) with a stored ETag.
pub fn etag_matches(header: &str, etag: &str) -> bool {
    header.split(',').any(|candidate| {
        let c = candidate.trim();
        let c = c.strip_prefix("W/").unwrap_or(c);
        c == "*" || c.trim_matches('"') == etag
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunks of uneven sizes, some far below and some above a stage's batch, the way a socket
    /// hands them over.
    fn uneven_chunks(total: usize) -> Vec<Bytes> {
        let mut chunks = Vec::new();
        let (mut made, mut i) = (0usize, 0usize);
        while made < total {
            let len = [1, 7, 4093, 65_536, 1_300_000, 333][i % 6].min(total - made);
            chunks.push(Bytes::from(
                (made..made + len)
                    .map(|b| (b % 251) as u8)
                    .collect::<Vec<u8>>(),
            ));
            made += len;
            i += 1;
        }
        chunks
    }

    /// Syncs `f` and checks that its file and its MD5 are those of `chunks`, in order.
    async fn assert_synced_whole(mut f: BodyFile, path: &Path, chunks: &[Bytes]) {
        let md5 = f
            .sync()
            .await
            .expect("sync")
            .expect("the file kept the MD5");
        let whole: Vec<u8> = chunks.concat();
        assert_eq!(std::fs::read(path).expect("read back"), whole);
        assert_eq!(md5.finish(), Md5Hasher::digest(&whole));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn body_file_writes_and_hashes_every_byte_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("objects/ab/cd/body");
        let chunks = uneven_chunks(11 * WRITE_CHUNK + 12_345);
        let mut f = BodyFile::create(path.clone(), Some(Md5Hasher::default()))
            .await
            .expect("create");
        for c in &chunks {
            f.write(c.clone()).await.expect("write");
        }
        assert_synced_whole(f, &path, &chunks).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_body_is_flushed_while_it_arrives_and_kept_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("body");
        let total = 2 * FLUSH_EVERY as usize + 12_345;
        let chunks = uneven_chunks(total);
        let mut f = BodyFile::create(path.clone(), Some(Md5Hasher::default()))
            .await
            .expect("create");
        let mut flushes = 0;
        for c in &chunks {
            let before = f.flush_mark;
            f.write(c.clone()).await.expect("write");
            flushes += usize::from(f.flush_mark != before);
        }
        // One flush at each FLUSH_EVERY mark, unless the one before was still running.
        assert!(flushes >= 1, "no background flush over {total} bytes");
        assert_synced_whole(f, &path, &chunks).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_body_is_not_flushed_before_its_end() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("body");
        let mut f = BodyFile::create(path.clone(), None).await.expect("create");
        for c in uneven_chunks(FLUSH_EVERY as usize - 1) {
            f.write(c).await.expect("write");
        }
        assert!(f.flushing.is_none() && f.flush_file.is_none() && f.flush_mark == 0);
        f.sync().await.expect("sync");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn body_file_without_md5_still_writes_everything() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("body");
        let chunks = uneven_chunks(3 * WRITE_CHUNK + 1);
        let mut f = BodyFile::create(path.clone(), None).await.expect("create");
        for c in &chunks {
            f.write(c.clone()).await.expect("write");
        }
        assert!(f.sync().await.expect("sync").is_none());
        assert_eq!(std::fs::read(&path).expect("read back"), chunks.concat());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_body_file_leaves_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("body");
        let mut f = BodyFile::create(path.clone(), Some(Md5Hasher::default()))
            .await
            .expect("create");
        for c in uneven_chunks(5 * WRITE_CHUNK) {
            f.write(c).await.expect("write");
        }
        // The client went away before the end: the half-written file goes with it.
        drop(f);
        assert!(!path.exists());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tombstones_past_the_cutoff_are_pruned_and_newer_ones_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Arc::new(Database::create(dir.path().join("meta.redb")).expect("redb"));
        let store = LocalStore::open(db.clone(), &dir.path().join("data"), 0).expect("open");
        // More than one scan batch of old ones (8-byte values, as tombstones were first
        // written), and among them a delete made long ago but recorded recently (a replicated
        // delete that arrived late), which counts from when it was recorded.
        let txn = db.begin_write().expect("txn");
        {
            let mut t = txn.open_table(TOMBSTONES).expect("table");
            for i in 0..25_000i64 {
                let key = format!("k{i:05}");
                if i % 5 == 0 {
                    t.insert(("b", key.as_str()), tombstone(500, 2_000).as_slice())
                } else {
                    t.insert(("b", key.as_str()), 1_000i64.to_be_bytes().as_slice())
                }
                .expect("insert");
            }
        }
        txn.commit().expect("commit");
        assert_eq!(store.prune_tombstones(1_500).await.expect("prune"), 20_000);
        let txn = db.begin_read().expect("txn");
        let t = txn.open_table(TOMBSTONES).expect("table");
        let left: Vec<String> = t
            .iter()
            .expect("iter")
            .map(|r| r.expect("row").0.value().1.to_string())
            .collect();
        assert_eq!(left.len(), 5_000);
        assert!(
            left.iter()
                .all(|k| k[1..].parse::<i64>().expect("n") % 5 == 0)
        );
        drop(t);
        drop(txn);
        assert_eq!(store.prune_tombstones(1_500).await.expect("again"), 0);
    }
}
