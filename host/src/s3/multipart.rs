//! Multipart uploads: CreateMultipartUpload, UploadPart, UploadPartCopy,
//! CompleteMultipartUpload, AbortMultipartUpload, ListParts, ListMultipartUploads.

use axum::body::Body;
use http::{Response, StatusCode};
use serde::Deserialize;

use super::acl::ListedOwners;
use super::copy::{checksum_element, source_object};
use super::error::{ErrorCode, S3Error, S3Result};
use super::list::parse_max;
use super::put::{content_md5, object_headers, requested_checksum, verify_staged, write_condition};
use super::router::CopySource;
use super::xml::{self, XmlWriter};
use super::{RequestCtx, empty_response, encryption, set_header, xml_response};
use crate::checksum::{ChecksumAlgorithm, ChecksumType};
use crate::store::{CompletedPart, NewUpload, StorageClass, UploadInfo, UploadListQuery};

/// Largest CompleteMultipartUpload document (10000 parts with checksums, plus markup).
const MAX_COMPLETE_BODY: u64 = 4 * 1024 * 1024;

fn upload_id(ctx: &RequestCtx<'_>) -> S3Result<String> {
    ctx.query
        .get("uploadId")
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .ok_or_else(|| S3Error::from(crate::store::StoreError::NoSuchUpload))
}

fn part_number(ctx: &RequestCtx<'_>) -> S3Result<u32> {
    ctx.query
        .get("partNumber")
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|n| (1..=ctx.app.config.max_parts).contains(n))
        .ok_or_else(|| {
            S3Error::invalid_argument(
                "Part number must be an integer between 1 and 10000, inclusive",
            )
            .with("ArgumentName", "partNumber")
            .with("ArgumentValue", ctx.query.get("partNumber").unwrap_or(""))
        })
}

fn write_checksum_headers(r: &mut Response<Body>, info: &UploadInfo) {
    if let Some(a) = info.checksum_algorithm {
        set_header(r.headers_mut(), "x-amz-checksum-algorithm", a.name());
    }
    if let Some(t) = info.checksum_type {
        set_header(r.headers_mut(), "x-amz-checksum-type", t.name());
    }
}

pub async fn create_multipart_upload(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
    key: &str,
) -> S3Result<Response<Body>> {
    let bucket_info = ctx.existing_bucket(bucket).await?;
    let super::acl::NewObjectAcl {
        owner: owner_id,
        acl,
    } = ctx.new_object_acl(&bucket_info).await?;
    super::put::refuse_object_lock(ctx)?;
    let (headers, user_meta) = object_headers(ctx)?;
    let tags = super::tagging::from_header(ctx)?;
    let algorithm = super::put::algorithm_header(ctx, "x-amz-checksum-algorithm")?;
    let kind = match ctx.header("x-amz-checksum-type") {
        None => None,
        Some(t) => Some(ChecksumType::from_name(t).ok_or_else(|| {
            S3Error::new(
                ErrorCode::InvalidRequest,
                "Value for x-amz-checksum-type header is invalid.",
            )
        })?),
    };
    match (algorithm, kind) {
        (None, Some(_)) => {
            return Err(S3Error::new(
                ErrorCode::InvalidRequest,
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.",
            ));
        }
        (Some(a), Some(ChecksumType::FullObject)) if !a.supports_full_object() => {
            return Err(S3Error::new(
                ErrorCode::InvalidRequest,
                format!(
                    "The FULL_OBJECT checksum type cannot be used with the {} checksum algorithm.",
                    a.name()
                ),
            ));
        }
        (Some(ChecksumAlgorithm::Crc64Nvme), Some(ChecksumType::Composite)) => {
            return Err(S3Error::new(
                ErrorCode::InvalidRequest,
                "The COMPOSITE checksum type cannot be used with the CRC64NVME checksum algorithm.",
            ));
        }
        _ => {}
    }
    // The type a CRC64NVME upload gets is always full-object; others default to composite.
    let kind = kind.or(algorithm.map(|a| {
        if a == ChecksumAlgorithm::Crc64Nvme {
            ChecksumType::FullObject
        } else {
            ChecksumType::Composite
        }
    }));
    let sse = encryption::new_object_key(ctx.app, &ctx.caller(), bucket, key, None).await?;
    let id = ctx
        .app
        .store
        .create_upload(
            bucket,
            key,
            NewUpload {
                owner_id,
                initiator_id: ctx.principal.id().unwrap_or("").to_string(),
                headers,
                user_meta,
                tags,
                acl,
                checksum_algorithm: algorithm,
                checksum_type: kind,
                encryption: sse.as_ref().map(|(e, _)| e.clone()),
            },
        )
        .await?;
    let mut w = XmlWriter::new("InitiateMultipartUploadResult");
    w.elem("Bucket", bucket)
        .elem("Key", key)
        .elem("UploadId", &id);
    let mut r = xml_response(StatusCode::OK, w.finish("InitiateMultipartUploadResult"));
    encryption::response_headers(r.headers_mut(), sse.as_ref().map(|(e, _)| e), true);
    if let Some(a) = algorithm {
        set_header(r.headers_mut(), "x-amz-checksum-algorithm", a.name());
    }
    if let Some(t) = kind {
        set_header(r.headers_mut(), "x-amz-checksum-type", t.name());
    }
    Ok(r)
}

/// The part number, upload id and upload a part request addresses.
async fn part_target(
    ctx: &RequestCtx<'_>,
    bucket: &str,
    key: &str,
) -> S3Result<(u32, String, UploadInfo)> {
    let number = part_number(ctx)?;
    let id = upload_id(ctx)?;
    ctx.existing_bucket(bucket).await?;
    let info = ctx.app.store.upload(bucket, key, &id).await?;
    Ok((number, id, info))
}

pub async fn upload_part(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
    key: &str,
) -> S3Result<Response<Body>> {
    let (number, id, info) = part_target(ctx, bucket, key).await?;
    let declared = ctx.declared_length()?;
    if declared.is_some_and(|n| n > ctx.app.config.max_put_size) {
        return Err(S3Error::new(
            ErrorCode::EntityTooLarge,
            "Your proposed upload exceeds the maximum allowed size",
        )
        .with("MaxSizeAllowed", ctx.app.config.max_put_size.to_string()));
    }
    super::put::require_length(ctx, declared)?;
    let md5 = content_md5(ctx)?;
    let (requested, expected) = requested_checksum(ctx)?;
    if let (Some(r), Some(u)) = (requested, info.checksum_algorithm)
        && r != u
    {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            format!(
                "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
                u.name().to_ascii_lowercase(),
                r.name().to_ascii_lowercase()
            ),
        ));
    }
    let algorithm = requested.or(info.checksum_algorithm);
    let cipher = upload_cipher(ctx, &info).await?;
    let body = ctx.take_body()?;
    let sealer = cipher.as_ref().map(|c| encryption::sealer(c, number));
    let mut staged = ctx
        .app
        .store
        .stage_body(body, algorithm, ctx.app.config.max_put_size, true, sealer)
        .await?;
    if let Some(n) = declared
        && n != staged.size
    {
        return Err(S3Error::new(
            ErrorCode::IncompleteBody,
            "You did not provide the number of bytes specified by the Content-Length HTTP header",
        ));
    }
    verify_staged(ctx, &staged, md5, &expected)?;
    if let Some(enc) = &info.encryption {
        encryption::opaque_etag(&mut staged, enc);
    }
    let part = ctx
        .app
        .store
        .put_part(bucket, key, &id, number, staged)
        .await?;
    let mut r = empty_response(StatusCode::OK);
    set_header(r.headers_mut(), "etag", &format!("\"{}\"", part.etag));
    encryption::response_headers(r.headers_mut(), info.encryption.as_ref(), false);
    if requested.is_some() || info.checksum_algorithm.is_some() {
        set_header(
            r.headers_mut(),
            part.checksum.algorithm.header(),
            &part.checksum.value,
        );
    }
    Ok(r)
}

pub async fn upload_part_copy(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
    key: &str,
    source: &CopySource,
) -> S3Result<Response<Body>> {
    let (number, id, info) = part_target(ctx, bucket, key).await?;
    let src = source_object(ctx, source).await?;
    let range = match ctx.header("x-amz-copy-source-range") {
        None => None,
        Some(h) => Some(copy_source_range(h, src.size)?),
    };
    let src_cipher = encryption::copy_source_cipher(ctx, &src).await?;
    let cipher = upload_cipher(ctx, &info).await?;
    if src_cipher.is_some() && cipher.is_none() {
        // The part would hold the decrypted source in plaintext.
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "The copy source is encrypted; copy it into an upload created with server-side encryption (or a bucket with default encryption).",
        ));
    }
    let body = ctx
        .app
        .store
        .open_body(&src, range, src_cipher.as_ref())
        .await?;
    let sealer = cipher.as_ref().map(|c| encryption::sealer(c, number));
    let mut staged = ctx
        .app
        .store
        .stage_body(
            body,
            info.checksum_algorithm,
            ctx.app.config.max_put_size,
            true,
            sealer,
        )
        .await?;
    if let Some(enc) = &info.encryption {
        encryption::opaque_etag(&mut staged, enc);
    }
    let part = ctx
        .app
        .store
        .put_part(bucket, key, &id, number, staged)
        .await?;
    let mut w = XmlWriter::new("CopyPartResult");
    w.time("LastModified", part.last_modified)
        .elem("ETag", &format!("\"{}\"", part.etag));
    if info.checksum_algorithm.is_some() {
        w.elem(
            &checksum_element(part.checksum.algorithm),
            &part.checksum.value,
        );
    }
    let mut r = xml_response(StatusCode::OK, w.finish("CopyPartResult"));
    encryption::response_headers(r.headers_mut(), info.encryption.as_ref(), false);
    Ok(r)
}

/// The data key of an encrypted upload; an SSE-C upload needs the same customer key on every
/// part, as S3 requires.
async fn upload_cipher(
    ctx: &RequestCtx<'_>,
    info: &UploadInfo,
) -> S3Result<Option<crate::crypto::ObjectCipher>> {
    encryption::read_cipher(
        ctx.app,
        &ctx.caller(),
        info.encryption.as_ref(),
        encryption::CUSTOMER,
        true,
    )
    .await
}

/// `x-amz-copy-source-range`: only `bytes=first-last`, inside the source object.
fn copy_source_range(header: &str, size: u64) -> S3Result<crate::store::ByteRange> {
    let parsed = header
        .trim()
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .and_then(|(a, b)| Some((a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?)));
    let Some((start, end)) = parsed.filter(|(a, b)| a <= b) else {
        return Err(S3Error::new(
            ErrorCode::InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
        )
        .with("ArgumentName", "x-amz-copy-source-range")
        .with("ArgumentValue", header));
    };
    if end >= size {
        return Err(S3Error::new(
            ErrorCode::InvalidRange,
            "The requested range is not satisfiable",
        )
        .with("RangeRequested", header)
        .with("ActualObjectSize", size.to_string()));
    }
    Ok(crate::store::ByteRange { start, end })
}

#[derive(Debug, Deserialize)]
#[serde(rename = "CompleteMultipartUpload")]
struct CompleteDoc {
    #[serde(rename = "Part", default)]
    parts: Vec<CompleteDocPart>,
}

#[derive(Debug, Deserialize)]
struct CompleteDocPart {
    #[serde(rename = "PartNumber")]
    part_number: u32,
    #[serde(rename = "ETag")]
    etag: String,
    #[serde(rename = "ChecksumCRC32")]
    crc32: Option<String>,
    #[serde(rename = "ChecksumCRC32C")]
    crc32c: Option<String>,
    #[serde(rename = "ChecksumCRC64NVME")]
    crc64nvme: Option<String>,
    #[serde(rename = "ChecksumSHA1")]
    sha1: Option<String>,
    #[serde(rename = "ChecksumSHA256")]
    sha256: Option<String>,
}

impl CompleteDocPart {
    fn checksum(&self) -> Option<(ChecksumAlgorithm, String)> {
        [
            (ChecksumAlgorithm::Crc32, &self.crc32),
            (ChecksumAlgorithm::Crc32c, &self.crc32c),
            (ChecksumAlgorithm::Crc64Nvme, &self.crc64nvme),
            (ChecksumAlgorithm::Sha1, &self.sha1),
            (ChecksumAlgorithm::Sha256, &self.sha256),
        ]
        .into_iter()
        .find_map(|(a, v)| v.as_ref().map(|v| (a, v.trim().to_string())))
    }
}

pub async fn complete_multipart_upload(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
    key: &str,
) -> S3Result<Response<Body>> {
    let id = upload_id(ctx)?;
    ctx.existing_bucket(bucket).await?;
    let mut condition = write_condition(ctx)?;
    condition.replica_time =
        super::replication::replica_time(ctx, bucket, key, "s3:ReplicateObject").await?;
    let body = ctx.read_complete_body(MAX_COMPLETE_BODY).await?;
    let doc: CompleteDoc = xml::parse(&body, "CompleteMultipartUpload")?;
    if doc.parts.is_empty() {
        return Err(S3Error::malformed_xml());
    }
    let parts: Vec<CompletedPart> = doc
        .parts
        .into_iter()
        .map(|p| CompletedPart {
            part_number: p.part_number,
            checksum: p.checksum(),
            etag: p.etag,
        })
        .collect();
    // A completed upload answers again from its record; checks apply to one in progress.
    let info = ctx.app.store.upload(bucket, key, &id).await.ok();
    let stored = match &info {
        Some(info) => {
            let (stored, _) = ctx.app.store.list_parts(&id, 0, usize::MAX).await?;
            check_complete_checksums(ctx, info, &parts, &stored)?;
            stored
        }
        None => Vec::new(),
    };
    // The assembled object may not exceed the configured maximum (S3: 5 TiB).
    let total: u64 = parts
        .iter()
        .filter_map(|p| stored.iter().find(|s| s.part_number == p.part_number))
        .map(|s| s.size)
        .sum();
    if total > ctx.app.config.max_object_size {
        return Err(S3Error::new(
            ErrorCode::EntityTooLarge,
            "Your proposed upload exceeds the maximum allowed size",
        )
        .with("ProposedSize", total.to_string())
        .with("MaxSizeAllowed", ctx.app.config.max_object_size.to_string()));
    }
    let meta = ctx
        .app
        .store
        .complete_upload(bucket, key, &id, parts, condition.clone())
        .await
        .map_err(|e| match e {
            crate::store::StoreError::PreconditionFailed if condition.if_none_match_any => {
                S3Error::precondition_failed("If-None-Match")
            }
            other => S3Error::for_key(other, key),
        })?;
    let mut w = XmlWriter::new("CompleteMultipartUploadResult");
    w.elem("Location", &ctx.origin.object_url(bucket, key))
        .elem("Bucket", bucket)
        .elem("Key", key)
        .elem("ETag", &format!("\"{}\"", meta.etag));
    if let Some(c) = &meta.checksum {
        w.elem(&checksum_element(c.algorithm), &c.value)
            .elem("ChecksumType", c.kind.name());
    }
    let mut r = xml_response(StatusCode::OK, w.finish("CompleteMultipartUploadResult"));
    encryption::response_headers(r.headers_mut(), meta.encryption.as_ref(), false);
    super::lifecycle::expiration_header(ctx, r.headers_mut(), bucket, key, &meta).await;
    Ok(r)
}

/// Composite uploads need every part's checksum in the Complete request; a full-object checksum
/// sent with it must equal the one derived from the parts.
fn check_complete_checksums(
    ctx: &RequestCtx<'_>,
    info: &UploadInfo,
    parts: &[CompletedPart],
    stored: &[crate::store::PartInfo],
) -> S3Result<()> {
    if let (Some(alg), Some(ChecksumType::Composite)) =
        (info.checksum_algorithm, info.checksum_type)
        && let Some(missing) = parts.iter().find(|p| p.checksum.is_none())
    {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            format!(
                "The upload was created using a {} checksum. The complete request must include the checksum for each part. It was missing for part {} in the request.",
                alg.name().to_ascii_lowercase(),
                missing.part_number
            ),
        ));
    }
    if let Some(t) = ctx.header("x-amz-checksum-type") {
        let given = ChecksumType::from_name(t);
        if given.is_none() || given != info.checksum_type {
            return Err(S3Error::new(
                ErrorCode::InvalidRequest,
                format!(
                    "The upload was created using the {} checksum mode. The complete request must use the same checksum mode.",
                    info.checksum_type.map(|t| t.name()).unwrap_or("default")
                ),
            ));
        }
    }
    if info.checksum_type == Some(ChecksumType::Composite) {
        return check_composite_on_complete(ctx, info, parts, stored);
    }
    let (requested, expected) = requested_checksum(ctx)?;
    let (Some(alg), super::put::ExpectedChecksum::Header(value)) = (requested, expected) else {
        return Ok(());
    };
    if info.checksum_algorithm.is_some_and(|a| a != alg) {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            format!(
                "The upload was created using the {} checksum algorithm, not {}",
                info.checksum_algorithm.map(|a| a.name()).unwrap_or(""),
                alg.name()
            ),
        ));
    }
    // A missing or mismatched part is the completion's own error (InvalidPart), reported next.
    let Some(chosen) = stored_checksums(parts, stored, alg) else {
        return Ok(());
    };
    let values: Vec<(&str, u64)> = chosen
        .iter()
        .map(|s| (s.checksum.value.as_str(), s.size))
        .collect();
    if crate::checksum::combine_full_object(alg, &values).is_some_and(|c| c.value != value) {
        return Err(super::put::checksum_mismatch(alg));
    }
    Ok(())
}

/// The stored parts a Complete names, when every one of them has a checksum of `alg`.
fn stored_checksums<'a>(
    parts: &[CompletedPart],
    stored: &'a [crate::store::PartInfo],
    alg: crate::checksum::ChecksumAlgorithm,
) -> Option<Vec<&'a crate::store::PartInfo>> {
    parts
        .iter()
        .map(|p| {
            stored
                .iter()
                .find(|s| s.part_number == p.part_number && s.checksum.algorithm == alg)
        })
        .collect()
}

/// A whole-object value on the complete of a COMPOSITE upload is the checksum of the parts'
/// checksums, with or without the `-<parts>` suffix S3 writes after it; another value is a
/// BadDigest, as on S3 (which checks it: clients that send a checksum of the request body there
/// get that error). Headers of other algorithms are not this upload's and are ignored.
fn check_composite_on_complete(
    ctx: &RequestCtx<'_>,
    info: &UploadInfo,
    parts: &[CompletedPart],
    stored: &[crate::store::PartInfo],
) -> S3Result<()> {
    let Some(alg) = info.checksum_algorithm else {
        return Ok(());
    };
    let Some(given) = ctx.header(alg.header()).map(str::trim) else {
        return Ok(());
    };
    let Some(chosen) = stored_checksums(parts, stored, alg) else {
        return Ok(());
    };
    let values: Vec<&str> = chosen.iter().map(|s| s.checksum.value.as_str()).collect();
    let Some(computed) = crate::checksum::composite(alg, &values) else {
        return Ok(());
    };
    // Base64 has no '-', so the suffix is what follows the last one.
    let bare = computed
        .value
        .rsplit_once('-')
        .map_or(computed.value.as_str(), |(v, _)| v);
    if given != computed.value && given != bare {
        return Err(super::put::checksum_mismatch(alg));
    }
    Ok(())
}

pub async fn abort_multipart_upload(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
    key: &str,
) -> S3Result<Response<Body>> {
    let id = upload_id(ctx)?;
    ctx.existing_bucket(bucket).await?;
    ctx.app.store.abort_upload(bucket, key, &id).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

pub async fn list_parts(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
    key: &str,
) -> S3Result<Response<Body>> {
    let id = upload_id(ctx)?;
    ctx.existing_bucket(bucket).await?;
    let info = ctx.app.store.upload(bucket, key, &id).await?;
    let max = parse_max(ctx, "max-parts")?;
    let marker: u32 = match ctx.query.get("part-number-marker") {
        None | Some("") => 0,
        Some(v) => v.parse().map_err(|_| {
            S3Error::invalid_argument(
                "Provided part-number-marker not an integer or within integer range",
            )
            .with("ArgumentName", "part-number-marker")
        })?,
    };
    let (parts, truncated) = ctx.app.store.list_parts(&id, marker, max).await?;
    let mut w = XmlWriter::new("ListPartsResult");
    w.elem("Bucket", bucket)
        .elem("Key", key)
        .elem("UploadId", &id);
    let mut owners = ListedOwners::new(ctx, bucket).await?;
    owners.initiator(&mut w, info.initiator());
    owners.owner(&mut w, &info.owner_id);
    w.elem("StorageClass", StorageClass::of(&info.headers).name())
        .elem("PartNumberMarker", &marker.to_string());
    if let Some(last) = parts.last() {
        w.elem("NextPartNumberMarker", &last.part_number.to_string());
    }
    w.elem("MaxParts", &max.to_string())
        .elem("IsTruncated", if truncated { "true" } else { "false" });
    if let Some(a) = info.checksum_algorithm {
        w.elem("ChecksumAlgorithm", a.name());
    }
    if let Some(t) = info.checksum_type {
        w.elem("ChecksumType", t.name());
    }
    for p in &parts {
        w.open("Part")
            .elem("PartNumber", &p.part_number.to_string())
            .time("LastModified", p.last_modified)
            .elem("ETag", &format!("\"{}\"", p.etag))
            .elem("Size", &p.size.to_string());
        if info.checksum_algorithm.is_some() {
            w.elem(&checksum_element(p.checksum.algorithm), &p.checksum.value);
        }
        w.close("Part");
    }
    let mut r = xml_response(StatusCode::OK, w.finish("ListPartsResult"));
    write_checksum_headers(&mut r, &info);
    Ok(r)
}

pub async fn list_multipart_uploads(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    let url = match ctx.query.get("encoding-type") {
        None => false,
        Some(t) if t.eq_ignore_ascii_case("url") => true,
        Some(_) => {
            return Err(
                S3Error::invalid_argument("Invalid Encoding Method specified in Request")
                    .with("ArgumentName", "encoding-type"),
            );
        }
    };
    let enc = |s: &str| {
        if url {
            super::sigv4::uri_encode(s.as_bytes(), true)
        } else {
            s.to_string()
        }
    };
    let q = UploadListQuery {
        prefix: ctx.query.get("prefix").unwrap_or("").to_string(),
        delimiter: ctx
            .query
            .get("delimiter")
            .filter(|d| !d.is_empty())
            .map(str::to_string),
        key_marker: ctx
            .query
            .get("key-marker")
            .filter(|m| !m.is_empty())
            .map(str::to_string),
        upload_id_marker: ctx
            .query
            .get("upload-id-marker")
            .filter(|m| !m.is_empty())
            .map(str::to_string),
        max_uploads: parse_max(ctx, "max-uploads")?,
    };
    let page = ctx.app.store.list_uploads(bucket, &q).await?;
    let mut w = XmlWriter::new("ListMultipartUploadsResult");
    w.elem("Bucket", bucket)
        .elem("KeyMarker", &enc(q.key_marker.as_deref().unwrap_or("")))
        .elem(
            "UploadIdMarker",
            q.upload_id_marker.as_deref().unwrap_or(""),
        );
    if page.is_truncated {
        w.elem(
            "NextKeyMarker",
            &enc(page.next_key_marker.as_deref().unwrap_or("")),
        )
        .elem(
            "NextUploadIdMarker",
            page.next_upload_id_marker.as_deref().unwrap_or(""),
        );
    }
    if let Some(d) = &q.delimiter {
        w.elem("Delimiter", &enc(d));
    }
    w.elem("Prefix", &enc(&q.prefix))
        .elem("MaxUploads", &q.max_uploads.to_string())
        .elem(
            "IsTruncated",
            if page.is_truncated { "true" } else { "false" },
        );
    if url {
        w.elem("EncodingType", "url");
    }
    let mut owners = ListedOwners::new(ctx, bucket).await?;
    for u in &page.uploads {
        w.open("Upload")
            .elem("Key", &enc(&u.key))
            .elem("UploadId", &u.upload_id);
        owners.initiator(&mut w, u.initiator());
        owners.owner(&mut w, &u.owner_id);
        w.elem("StorageClass", StorageClass::of(&u.headers).name())
            .time("Initiated", u.initiated);
        if let Some(a) = u.checksum_algorithm {
            w.elem("ChecksumAlgorithm", a.name());
        }
        if let Some(t) = u.checksum_type {
            w.elem("ChecksumType", t.name());
        }
        w.close("Upload");
    }
    for p in &page.common_prefixes {
        w.open("CommonPrefixes")
            .elem("Prefix", &enc(p))
            .close("CommonPrefixes");
    }
    Ok(xml_response(
        StatusCode::OK,
        w.finish("ListMultipartUploadsResult"),
    ))
}
