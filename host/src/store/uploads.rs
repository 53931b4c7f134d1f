//! Multipart uploads in the local engine: upload and part records in redb, part bodies as files,
//! and completion that links the part files into the object in one metadata transaction.

use redb::{ReadableTable, Table};
use serde::{Deserialize, Serialize};

use super::local::{decode, encode, etag_matches};
use super::{BodyLocation, ObjectMeta, PartBody, StoreError, WriteCondition};
use crate::checksum::{self, Checksum, ChecksumAlgorithm, ChecksumType, Md5Hasher};

/// Smallest part allowed except the last, as S3 enforces.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct NewUpload {
    /// Who will own the completed object.
    pub owner_id: String,
    /// Who started the upload: the owner, except where the bucket owner takes the object
    /// (BucketOwnerPreferred with `bucket-owner-full-control`).
    pub initiator_id: String,
    pub headers: Vec<(String, String)>,
    pub user_meta: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    pub acl: Option<super::acl::Acl>,
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    pub checksum_type: Option<ChecksumType>,
    pub encryption: Option<crate::crypto::Encryption>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadInfo {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    /// Unix milliseconds.
    pub initiated: i64,
    pub owner_id: String,
    /// Who started the upload, where that is not `owner_id` (see `initiator`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator_id: Option<String>,
    pub headers: Vec<(String, String)>,
    pub user_meta: Vec<(String, String)>,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<super::acl::Acl>,
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    pub checksum_type: Option<ChecksumType>,
    /// Encryption shared by every part (each part has its own nonce prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<crate::crypto::Encryption>,
}

impl UploadInfo {
    /// Who started the upload (ListParts' and ListMultipartUploads' `Initiator`).
    pub fn initiator(&self) -> &str {
        self.initiator_id.as_deref().unwrap_or(&self.owner_id)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartInfo {
    pub part_number: u32,
    pub size: u64,
    /// Hex MD5 of the part.
    pub etag: String,
    pub last_modified: i64,
    pub checksum: Checksum,
    pub body_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<crate::crypto::PieceSeal>,
}

/// A part as listed in a CompleteMultipartUpload request.
#[derive(Debug, Clone)]
pub struct CompletedPart {
    pub part_number: u32,
    pub etag: String,
    /// A checksum the client sent for this part, checked against the stored one.
    pub checksum: Option<(ChecksumAlgorithm, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct UploadListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: Option<String>,
    pub upload_id_marker: Option<String>,
    pub max_uploads: usize,
}

#[derive(Debug, Default)]
pub struct UploadListPage {
    pub uploads: Vec<UploadInfo>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_upload_id_marker: Option<String>,
}

/// Upload ids sort by creation time, so that uploads of one key list oldest first.
pub fn new_upload_id(now_millis: i64) -> String {
    format!(
        "{:012x}{}",
        now_millis.max(0),
        &uuid::Uuid::new_v4().simple().to_string()[..20]
    )
}

type BytesTable<'t, K> = Table<'t, K, &'static [u8]>;

pub(super) fn read_upload(
    uploads: &impl ReadableTable<&'static str, &'static [u8]>,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<UploadInfo, StoreError> {
    let Some(v) = uploads.get(upload_id)? else {
        return Err(StoreError::NoSuchUpload);
    };
    let info: UploadInfo = decode(v.value())?;
    if info.bucket != bucket || info.key != key {
        return Err(StoreError::NoSuchUpload);
    }
    Ok(info)
}

pub(super) fn insert_upload(
    uploads: &mut BytesTable<&'static str>,
    keys: &mut BytesTable<(&'static str, &'static str, &'static str)>,
    info: &UploadInfo,
) -> Result<(), StoreError> {
    uploads.insert(info.upload_id.as_str(), encode(info).as_slice())?;
    keys.insert(
        (
            info.bucket.as_str(),
            info.key.as_str(),
            info.upload_id.as_str(),
        ),
        [].as_slice(),
    )?;
    Ok(())
}

/// Records a part; returns the body file of the part it replaced, if any.
pub(super) fn insert_part(
    uploads: &BytesTable<&'static str>,
    parts: &mut BytesTable<(&'static str, u32)>,
    bucket: &str,
    key: &str,
    upload_id: &str,
    part: &PartInfo,
) -> Result<Option<String>, StoreError> {
    read_upload(uploads, bucket, key, upload_id)?;
    let old = parts
        .insert((upload_id, part.part_number), encode(part).as_slice())?
        .map(|v| decode::<PartInfo>(v.value()))
        .transpose()?;
    Ok(old.map(|p| p.body_id))
}

/// Removes an upload and its parts; returns every part body file to free.
pub(super) fn remove_upload(
    uploads: &mut BytesTable<&'static str>,
    keys: &mut BytesTable<(&'static str, &'static str, &'static str)>,
    parts: &mut BytesTable<(&'static str, u32)>,
    info: &UploadInfo,
) -> Result<Vec<PartInfo>, StoreError> {
    uploads.remove(info.upload_id.as_str())?;
    keys.remove((
        info.bucket.as_str(),
        info.key.as_str(),
        info.upload_id.as_str(),
    ))?;
    let mut removed = Vec::new();
    let numbers: Vec<u32> = {
        let range = parts.range::<(&str, u32)>(
            (info.upload_id.as_str(), 0)..=(info.upload_id.as_str(), u32::MAX),
        )?;
        let mut out = Vec::new();
        for row in range {
            let (k, v) = row?;
            out.push(k.value().1);
            removed.push(decode::<PartInfo>(v.value())?);
        }
        out
    };
    for n in numbers {
        parts.remove((info.upload_id.as_str(), n))?;
    }
    Ok(removed)
}

/// What a completed upload left behind, kept so that completing it again answers the same.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CompletedRecord {
    pub bucket: String,
    pub key: String,
    pub meta: ObjectMeta,
}

/// The S3 multipart ETag: MD5 of the concatenated binary part MD5s, then `-N`.
fn multipart_etag(parts: &[&PartInfo]) -> String {
    let mut h = Md5Hasher::default();
    for p in parts {
        if let Ok(raw) = hex::decode(&p.etag) {
            h.update(&raw);
        }
    }
    format!("{}-{}", hex::encode(h.finish()), parts.len())
}

/// The object's checksum from its parts: composite (`-N`) or full-object, as the upload asked;
/// a full-object CRC64NVME when it asked for none.
fn object_checksum(info: &UploadInfo, parts: &[&PartInfo]) -> Option<Checksum> {
    let algorithm = info
        .checksum_algorithm
        .unwrap_or(ChecksumAlgorithm::Crc64Nvme);
    let kind = info.checksum_type.unwrap_or(
        if algorithm.supports_full_object()
            && (info.checksum_algorithm.is_none() || algorithm == ChecksumAlgorithm::Crc64Nvme)
        {
            ChecksumType::FullObject
        } else {
            ChecksumType::Composite
        },
    );
    if parts.iter().any(|p| p.checksum.algorithm != algorithm) {
        return None;
    }
    match kind {
        ChecksumType::FullObject => {
            let values: Vec<(&str, u64)> = parts
                .iter()
                .map(|p| (p.checksum.value.as_str(), p.size))
                .collect();
            checksum::combine_full_object(algorithm, &values)
        }
        ChecksumType::Composite => {
            let values: Vec<&str> = parts.iter().map(|p| p.checksum.value.as_str()).collect();
            checksum::composite(algorithm, &values)
        }
    }
}

pub(super) struct Completion {
    pub meta: ObjectMeta,
    /// The upload had completed before: nothing was written this time.
    pub replay: bool,
    /// Body files to remove once the commit is durable (unused parts, the replaced object).
    pub freed: Vec<String>,
    /// Inline body of the replaced object, removed in the same transaction by the caller.
    pub replaced: Option<ObjectMeta>,
}

pub(super) struct CompleteArgs<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub upload_id: &'a str,
    pub parts: &'a [CompletedPart],
    pub condition: &'a WriteCondition,
    pub now: i64,
    /// When the key was last deleted (a replication tombstone), if it was.
    pub deleted_at: Option<i64>,
}

/// Completes an upload inside a write transaction.
pub(super) fn complete(
    args: &CompleteArgs<'_>,
    objects: &mut BytesTable<(&'static str, &'static str)>,
    uploads: &mut BytesTable<&'static str>,
    keys: &mut BytesTable<(&'static str, &'static str, &'static str)>,
    parts_table: &mut BytesTable<(&'static str, u32)>,
    completed: &mut BytesTable<&'static str>,
) -> Result<Completion, StoreError> {
    let info = match read_upload(uploads, args.bucket, args.key, args.upload_id) {
        Ok(info) => info,
        Err(StoreError::NoSuchUpload) => {
            // Completing again answers what the first completion did.
            if let Some(v) = completed.get(args.upload_id)? {
                let rec: CompletedRecord = decode(v.value())?;
                if rec.bucket == args.bucket && rec.key == args.key {
                    return Ok(Completion {
                        meta: rec.meta,
                        replay: true,
                        freed: Vec::new(),
                        replaced: None,
                    });
                }
            }
            return Err(StoreError::NoSuchUpload);
        }
        Err(e) => return Err(e),
    };
    if args.parts.is_empty() {
        return Err(StoreError::InvalidPart(0));
    }
    let mut last = 0;
    for p in args.parts {
        if p.part_number <= last {
            return Err(StoreError::InvalidPartOrder);
        }
        last = p.part_number;
    }
    let old = super::record::get(objects, args.bucket, args.key)?;
    if args.condition.if_none_match_any && old.is_some() {
        return Err(StoreError::PreconditionFailed);
    }
    if let Some(expected) = &args.condition.if_match {
        match &old {
            None => return Err(StoreError::NoSuchKey),
            Some(o) if !etag_matches(expected, &o.etag) => {
                return Err(StoreError::PreconditionFailed);
            }
            Some(_) => {}
        }
    }
    let (stored, _) = list_parts(parts_table, args.upload_id, 0, usize::MAX)?;
    let mut chosen: Vec<&PartInfo> = Vec::with_capacity(args.parts.len());
    for (i, want) in args.parts.iter().enumerate() {
        let Some(have) = stored.iter().find(|s| s.part_number == want.part_number) else {
            return Err(StoreError::InvalidPart(want.part_number));
        };
        if !etag_matches(&want.etag, &have.etag) {
            return Err(StoreError::InvalidPart(want.part_number));
        }
        if let Some((alg, value)) = &want.checksum
            && (*alg != have.checksum.algorithm || *value != have.checksum.value)
        {
            return Err(StoreError::InvalidPartChecksum(want.part_number));
        }
        if i + 1 < args.parts.len() && have.size < MIN_PART_SIZE {
            return Err(StoreError::EntityTooSmall(want.part_number));
        }
        chosen.push(have);
    }
    let meta = ObjectMeta {
        size: chosen.iter().map(|p| p.size).sum(),
        etag: multipart_etag(&chosen),
        last_modified: args.now,
        owner_id: info.owner_id.clone(),
        headers: info.headers.clone(),
        user_meta: info.user_meta.clone(),
        checksum: object_checksum(&info, &chosen),
        tags: info.tags.clone(),
        acl: info.acl.clone(),
        encryption: info.encryption.clone(),
        replication_status: None,
        written_ms: Some(super::precise_now_ms()),
        body: BodyLocation::Multipart(
            chosen
                .iter()
                .map(|p| PartBody {
                    id: p.body_id.clone(),
                    size: p.size,
                    seal: p.seal,
                    checksum: info.checksum_algorithm.map(|_| p.checksum.clone()),
                })
                .collect(),
        ),
    };
    let mut meta = meta;
    args.condition
        .check_replica(&meta.etag, old.as_ref(), args.deleted_at)?;
    args.condition
        .stamp(&mut meta, old.as_ref(), args.deleted_at);
    remove_upload(uploads, keys, parts_table, &info)?;
    let mut freed: Vec<String> = stored
        .iter()
        .filter(|s| !chosen.iter().any(|c| c.part_number == s.part_number))
        .map(|s| s.body_id.clone())
        .collect();
    if let Some(o) = &old {
        freed.extend(o.body.file_ids().into_iter().map(String::from));
    }
    super::record::put(objects, args.bucket, args.key, &meta)?;
    completed.insert(
        args.upload_id,
        encode(&CompletedRecord {
            bucket: args.bucket.to_string(),
            key: args.key.to_string(),
            meta: meta.clone(),
        })
        .as_slice(),
    )?;
    Ok(Completion {
        meta,
        freed,
        replaced: old,
        replay: false,
    })
}

/// Lists uploads of a bucket in key order (then creation order), with prefix, delimiter and
/// the key / upload-id markers.
pub(super) fn list(
    keys: &impl ReadableTable<(&'static str, &'static str, &'static str), &'static [u8]>,
    uploads: &impl ReadableTable<&'static str, &'static [u8]>,
    bucket: &str,
    q: &UploadListQuery,
) -> Result<UploadListPage, StoreError> {
    let mut page = UploadListPage::default();
    if q.max_uploads == 0 {
        return Ok(page);
    }
    let start = match &q.key_marker {
        Some(m) if m.as_str() > q.prefix.as_str() => m.clone(),
        _ => q.prefix.clone(),
    };
    let range = keys.range::<(&str, &str, &str)>((bucket, start.as_str(), "")..)?;
    let mut count = 0;
    for row in range {
        let (k, _) = row?;
        let (b, key, upload_id) = k.value();
        if b != bucket {
            break;
        }
        if !key.starts_with(q.prefix.as_str()) {
            break;
        }
        if let Some(m) = &q.key_marker {
            let after = match &q.upload_id_marker {
                Some(u) => key > m.as_str() || (key == m.as_str() && upload_id > u.as_str()),
                None => key > m.as_str(),
            };
            if !after {
                continue;
            }
        }
        let cp = q
            .delimiter
            .as_deref()
            .filter(|d| !d.is_empty())
            .and_then(|d| {
                key[q.prefix.len()..]
                    .find(d)
                    .map(|pos| &key[..q.prefix.len() + pos + d.len()])
            });
        if let Some(cp) = cp {
            // A prefix at or before the key marker was returned on an earlier page.
            if page.common_prefixes.last().map(String::as_str) == Some(cp)
                || q.key_marker.as_deref().is_some_and(|m| cp <= m)
            {
                continue;
            }
            if count >= q.max_uploads {
                page.is_truncated = true;
                break;
            }
            page.common_prefixes.push(cp.to_string());
            page.next_key_marker = Some(cp.to_string());
            page.next_upload_id_marker = None;
            count += 1;
            continue;
        }
        if count >= q.max_uploads {
            page.is_truncated = true;
            break;
        }
        if let Some(v) = uploads.get(upload_id)? {
            page.uploads.push(decode(v.value())?);
            page.next_key_marker = Some(key.to_string());
            page.next_upload_id_marker = Some(upload_id.to_string());
            count += 1;
        }
    }
    Ok(page)
}

/// Parts of an upload after `after`, up to `max`.
pub(super) fn list_parts(
    parts: &impl ReadableTable<(&'static str, u32), &'static [u8]>,
    upload_id: &str,
    after: u32,
    max: usize,
) -> Result<(Vec<PartInfo>, bool), StoreError> {
    let mut out = Vec::new();
    if after == u32::MAX {
        return Ok((out, false));
    }
    for row in parts.range::<(&str, u32)>((upload_id, after + 1)..=(upload_id, u32::MAX))? {
        let (_, v) = row?;
        if out.len() >= max {
            return Ok((out, true));
        }
        out.push(decode(v.value())?);
    }
    Ok((out, false))
}
