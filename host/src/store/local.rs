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
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::oneshot;

use super::files::{self, body_path};
use super::list::{Feed, PageBuilder};
use super::tables::{BUCKETS, INLINE_BODIES, OBJECTS};
use super::{
    BodyLocation, BodyStream, BucketInfo, ByteRange, ListPage, ListQuery, NewObject, ObjectMeta,
    StagedBody, Store, StoreError, WriteCondition,
};
use crate::checksum::{ChecksumAlgorithm, ChecksumHasher, Md5Hasher};

/// Bytes gathered before a write to the body file.
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
    },
    CreateBucket(BucketInfo),
    DeleteBucket(String),
}

#[derive(Default)]
struct Outcome {
    /// The operation found something to replace or remove.
    existed: bool,
    /// A body file no longer referenced once the commit is durable.
    freed: Option<String>,
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

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
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
            txn.commit()?;
        }
        let removed = Self::collect_orphans(&db, root)?;
        if removed > 0 {
            tracing::info!(removed, "removed orphaned body files");
        }
        let (tx, rx) = mpsc::channel();
        let thread_db = db.clone();
        let thread_root = root.to_path_buf();
        std::thread::Builder::new()
            .name("sluice-commit".into())
            .spawn(move || commit_loop(thread_db, thread_root, rx))?;
        Ok(LocalStore {
            db,
            root: root.to_path_buf(),
            inline_threshold,
            commits: tx,
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
            let meta: ObjectMeta = decode(v.value())?;
            if let BodyLocation::File(id) = meta.body {
                referenced.insert(id);
            }
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

    fn read_bucket(&self, name: &str) -> Result<Option<BucketInfo>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(BUCKETS)?;
        match t.get(name)? {
            Some(v) => Ok(Some(decode(v.value())?)),
            None => Ok(None),
        }
    }
}

/// Writes body bytes to a file off the async threads, in large chunks. One write may be in
/// flight while the next chunk is received and hashed.
struct BodyFile {
    file: Option<std::fs::File>,
    in_flight: Option<tokio::task::JoinHandle<std::io::Result<std::fs::File>>>,
    path: PathBuf,
    guard: UncommittedFile,
}

fn join_error(e: tokio::task::JoinError) -> StoreError {
    StoreError::Io(std::io::Error::other(e))
}

impl BodyFile {
    async fn create(path: PathBuf) -> Result<BodyFile, StoreError> {
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
            file: Some(file),
            in_flight: None,
            guard: UncommittedFile {
                path: Some(path.clone()),
            },
            path,
        })
    }

    /// Waits for the write in flight, if any, and takes the file back.
    async fn settle(&mut self) -> Result<std::fs::File, StoreError> {
        if let Some(h) = self.in_flight.take() {
            return Ok(h.await.map_err(join_error)??);
        }
        self.file
            .take()
            .ok_or_else(|| StoreError::Meta("body file used after failure".into()))
    }

    async fn write(&mut self, buf: Bytes) -> Result<(), StoreError> {
        let mut file = self.settle().await?;
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            file.write_all(&buf).map(|_| file)
        }));
        Ok(())
    }

    /// Makes the data and the directory entry durable.
    async fn sync(&mut self) -> Result<(), StoreError> {
        let file = self.settle().await?;
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
        Ok(())
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
    ) -> Result<StagedBody, StoreError> {
        let mut md5 = Md5Hasher::default();
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
            md5.update(&chunk);
            hasher.update(&chunk);
            buf.extend_from_slice(&chunk);
            if file.is_none() && buf.len() > self.inline_threshold {
                file = Some(BodyFile::create(body_path(&self.root, &id)).await?);
            }
            if let Some(f) = file.as_mut()
                && buf.len() >= WRITE_CHUNK
            {
                f.write(buf.split().freeze()).await?;
            }
        }
        let (location, inline, guard) = match file {
            None => (BodyLocation::Inline(id), Some(buf.freeze()), None),
            Some(mut f) => {
                if !buf.is_empty() {
                    f.write(buf.split().freeze()).await?;
                }
                f.sync().await?;
                (BodyLocation::File(id), None, Some(f.guard))
            }
        };
        Ok(StagedBody {
            size,
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
        let txn = self.db.begin_read()?;
        let t = txn.open_table(OBJECTS)?;
        match t.get((bucket, key))? {
            Some(v) => Ok(Some(decode(v.value())?)),
            None => Ok(None),
        }
    }

    async fn open_body(
        &self,
        meta: &ObjectMeta,
        range: Option<ByteRange>,
    ) -> Result<BodyStream, StoreError> {
        let (start, len) = match range {
            Some(r) => (r.start, r.end + 1 - r.start),
            None => (0, meta.size),
        };
        match &meta.body {
            BodyLocation::Inline(id) => {
                let txn = self.db.begin_read()?;
                let t = txn.open_table(INLINE_BODIES)?;
                let bytes = match t.get(id.as_str())? {
                    Some(v) => Bytes::copy_from_slice(v.value()),
                    None => return Err(StoreError::NoSuchKey),
                };
                let end = (start + len).min(bytes.len() as u64) as usize;
                let part = bytes.slice((start as usize).min(end)..end);
                Ok(Box::pin(futures::stream::once(async move { Ok(part) })))
            }
            BodyLocation::File(id) => {
                let path = body_path(&self.root, id);
                let mut f = match tokio::fs::File::open(&path).await {
                    Ok(f) => f,
                    // Replaced and removed since the metadata was read.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(StoreError::NoSuchKey);
                    }
                    Err(e) => return Err(e.into()),
                };
                if start > 0 {
                    f.seek(std::io::SeekFrom::Start(start)).await?;
                }
                let reader = f.take(len);
                Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(
                    reader, READ_CHUNK,
                )))
            }
        }
    }

    async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.submit(MetaOp::DeleteObject {
            bucket: bucket.to_string(),
            key: key.to_string(),
            if_match: if_match.map(str::to_string),
        })
        .await
        .map(|o| o.existed)
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
            let feed = builder.feed(key, || match decode::<ObjectMeta>(v.value()) {
                Ok(m) => Some(m),
                Err(e) => {
                    decode_err = Some(e);
                    None
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

/// The group-commit thread: takes every job waiting, applies them in one redb transaction with
/// immediate durability, then answers each.
fn commit_loop(db: Arc<Database>, root: PathBuf, rx: mpsc::Receiver<CommitJob>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
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
        let mut freed = Vec::new();
        for (job, result) in batch.into_iter().zip(results) {
            if let Ok(Outcome {
                freed: Some(id), ..
            }) = &result
            {
                freed.push(id.clone());
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
        let mut buckets = txn.open_table(BUCKETS)?;
        let mut objects = txn.open_table(OBJECTS)?;
        let mut inline = txn.open_table(INLINE_BODIES)?;
        for job in batch {
            let r = apply_one(&job.op, &mut buckets, &mut objects, &mut inline);
            // A failure of the metadata store itself aborts the whole batch.
            if let Err(e @ (StoreError::Meta(_) | StoreError::Io(_))) = &r {
                return Err(StoreError::Meta(e.to_string()));
            }
            results.push(r);
        }
    }
    txn.commit()?;
    Ok(results)
}

type Table<'t, K, V> = redb::Table<'t, K, V>;

fn apply_one(
    op: &MetaOp,
    buckets: &mut Table<&'static str, &'static [u8]>,
    objects: &mut Table<(&'static str, &'static str), &'static [u8]>,
    inline: &mut Table<&'static str, &'static [u8]>,
) -> Result<Outcome, StoreError> {
    match op {
        MetaOp::CreateBucket(info) => {
            if let Some(existing) = buckets.get(info.name.as_str())? {
                let existing: BucketInfo = decode(existing.value())?;
                return Err(StoreError::BucketExists {
                    bucket: info.name.clone(),
                    owner_id: existing.owner_id,
                });
            }
            buckets.insert(info.name.as_str(), encode(info).as_slice())?;
            Ok(Outcome::default())
        }
        MetaOp::DeleteBucket(name) => {
            if buckets.get(name.as_str())?.is_none() {
                return Err(StoreError::NoSuchBucket(name.clone()));
            }
            let mut range = objects.range::<(&str, &str)>((name.as_str(), "")..)?;
            if let Some(row) = range.next() {
                let (k, _) = row?;
                if k.value().0 == name.as_str() {
                    return Err(StoreError::BucketNotEmpty(name.clone()));
                }
            }
            drop(range);
            buckets.remove(name.as_str())?;
            Ok(Outcome {
                existed: true,
                freed: None,
            })
        }
        MetaOp::PutObject {
            bucket,
            key,
            meta,
            inline: body,
            condition,
        } => {
            if buckets.get(bucket.as_str())?.is_none() {
                return Err(StoreError::NoSuchBucket(bucket.clone()));
            }
            let old: Option<ObjectMeta> = match objects.get((bucket.as_str(), key.as_str()))? {
                Some(v) => Some(decode(v.value())?),
                None => None,
            };
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
            if let Some(bytes) = body {
                inline.insert(meta.body.id(), bytes.as_ref())?;
            }
            objects.insert((bucket.as_str(), key.as_str()), encode(meta).as_slice())?;
            Ok(release(old, inline)?)
        }
        MetaOp::DeleteObject {
            bucket,
            key,
            if_match,
        } => {
            if buckets.get(bucket.as_str())?.is_none() {
                return Err(StoreError::NoSuchBucket(bucket.clone()));
            }
            if let Some(expected) = if_match {
                let current: Option<ObjectMeta> =
                    match objects.get((bucket.as_str(), key.as_str()))? {
                        Some(v) => Some(decode(v.value())?),
                        None => None,
                    };
                match current {
                    None => return Err(StoreError::NoSuchKey),
                    Some(c) if !etag_matches(expected, &c.etag) => {
                        return Err(StoreError::PreconditionFailed);
                    }
                    Some(_) => {}
                }
            }
            let old: Option<ObjectMeta> = match objects.remove((bucket.as_str(), key.as_str()))? {
                Some(v) => Some(decode(v.value())?),
                None => None,
            };
            Ok(release(old, inline)?)
        }
    }
}

/// Frees the body of a replaced or deleted object: inline rows go in the same transaction,
/// files after the commit is durable.
fn release(
    old: Option<ObjectMeta>,
    inline: &mut Table<&'static str, &'static [u8]>,
) -> Result<Outcome, StoreError> {
    let Some(old) = old else {
        return Ok(Outcome::default());
    };
    let freed = match old.body {
        BodyLocation::Inline(id) => {
            inline.remove(id.as_str())?;
            None
        }
        BodyLocation::File(id) => Some(id),
    };
    Ok(Outcome {
        existed: true,
        freed,
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
