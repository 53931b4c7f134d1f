//! PutObject: stream the body into the store while hashing, verify Content-MD5 and any
//! additional checksum (header or trailer), then commit under the write conditions.

use axum::body::Body;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use http::{Response, StatusCode};

use super::error::{ErrorCode, S3Error, S3Result};
use super::{RequestCtx, empty_response, encryption, set_header};
use crate::checksum::{ChecksumAlgorithm, ChecksumHasher, Md5Hasher};
use crate::store::{NewObject, StagedBody, StorageClass, WriteCondition};

/// Headers stored with an object and returned on GET/HEAD.
pub const STORED_HEADERS: &[&str] = &[
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
    "x-amz-website-redirect-location",
];

/// Most bytes of user metadata (names and values), as AWS limits it.
pub const MAX_USER_METADATA: usize = 2048;

/// Where the client's additional checksum comes from.
pub enum ExpectedChecksum {
    None,
    Header(String),
    Trailer,
}

/// A header naming a checksum algorithm (`x-amz-checksum-algorithm`, ...), if present.
pub fn algorithm_header(ctx: &RequestCtx<'_>, name: &str) -> S3Result<Option<ChecksumAlgorithm>> {
    match ctx.header(name) {
        None => Ok(None),
        Some(value) => ChecksumAlgorithm::from_name(value.trim()).map(Some).ok_or_else(|| {
            S3Error::new(
                ErrorCode::InvalidRequest,
                "Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]",
            )
        }),
    }
}

/// The one `x-amz-checksum-<algorithm>` value a request (or a POST form, through `get`)
/// carries: more than one, or a value that is not the algorithm's base64, is InvalidRequest.
pub fn given_checksum<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
) -> S3Result<Option<(ChecksumAlgorithm, String)>> {
    let mut found: Option<(ChecksumAlgorithm, String)> = None;
    for alg in ChecksumAlgorithm::ALL {
        if let Some(v) = get(alg.header()) {
            if found.is_some() {
                return Err(S3Error::new(
                    ErrorCode::InvalidRequest,
                    "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
                ));
            }
            if !alg.is_valid_value(v.trim()) {
                return Err(S3Error::new(
                    ErrorCode::InvalidRequest,
                    format!("Value for {} header is invalid.", alg.header()),
                ));
            }
            found = Some((alg, v.trim().to_string()));
        }
    }
    Ok(found)
}

/// BadDigest for a checksum value that is not the body's.
pub fn checksum_mismatch(alg: ChecksumAlgorithm) -> S3Error {
    S3Error::new(
        ErrorCode::BadDigest,
        format!(
            "The {} you specified did not match the calculated checksum.",
            alg.name()
        ),
    )
}

/// BadDigest for a Content-MD5 that is not the body's. S3 gives the digest it was sent in hex
/// and the one it calculated in base64 (as seen in its answers from 2023 on).
pub fn content_md5_mismatch(expected: [u8; 16], calculated: [u8; 16]) -> S3Error {
    S3Error::new(
        ErrorCode::BadDigest,
        "The Content-MD5 you specified did not match what we received.",
    )
    .with("ExpectedDigest", hex::encode(expected))
    .with("CalculatedDigest", B64.encode(calculated))
}

/// Every `x-amz-checksum-<algorithm>` value a small request document came with, from a header
/// or, read after the body, from a trailer.
pub fn document_checksums(ctx: &RequestCtx<'_>) -> Vec<(ChecksumAlgorithm, String)> {
    ChecksumAlgorithm::ALL
        .into_iter()
        .filter_map(|alg| {
            let value = ctx
                .header(alg.header())
                .map(|s| s.trim().to_string())
                .or_else(|| ctx.trailer(alg.header()));
            value.map(|v| (alg, v))
        })
        .collect()
}

/// Checks a small request document against its Content-MD5 and, with `checksums`, against
/// every `x-amz-checksum-*` value it came with; a mismatch is BadDigest.
pub fn verify_document(ctx: &RequestCtx<'_>, body: &[u8], checksums: bool) -> S3Result<()> {
    if let Some(m) = content_md5(ctx)? {
        let actual = Md5Hasher::digest(body);
        if actual != m {
            return Err(content_md5_mismatch(m, actual));
        }
    }
    if checksums {
        for (alg, given) in document_checksums(ctx) {
            let mut h = ChecksumHasher::new(alg);
            h.update(body);
            if h.finish().value != given {
                return Err(checksum_mismatch(alg));
            }
        }
    }
    Ok(())
}

/// The checksum the client asked for: algorithm and where its value is.
pub fn requested_checksum(
    ctx: &RequestCtx<'_>,
) -> S3Result<(Option<ChecksumAlgorithm>, ExpectedChecksum)> {
    let found = given_checksum(|name| ctx.header(name))?;
    let sdk = algorithm_header(ctx, "x-amz-sdk-checksum-algorithm")?;
    let trailer = match ctx.header("x-amz-trailer") {
        None => None,
        Some(name) => Some(ChecksumAlgorithm::from_header(name.trim()).ok_or_else(|| {
            S3Error::new(
                ErrorCode::InvalidRequest,
                format!("The value specified in the x-amz-trailer header is not supported: {name}"),
            )
        })?),
    };
    match (found, trailer, sdk) {
        (Some(_), Some(_), _) => Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        )),
        (Some((alg, v)), None, sdk) => {
            if sdk.is_some_and(|s| s != alg) {
                return Err(S3Error::new(
                    ErrorCode::InvalidRequest,
                    "Value for x-amz-sdk-checksum-algorithm header is invalid.",
                ));
            }
            Ok((Some(alg), ExpectedChecksum::Header(v)))
        }
        (None, Some(alg), sdk) => {
            if sdk.is_some_and(|s| s != alg) {
                return Err(S3Error::new(
                    ErrorCode::InvalidRequest,
                    "Value for x-amz-sdk-checksum-algorithm header is invalid.",
                ));
            }
            Ok((Some(alg), ExpectedChecksum::Trailer))
        }
        (None, None, Some(_)) => Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found.",
        )),
        (None, None, None) => Ok((None, ExpectedChecksum::None)),
    }
}

/// Parses `Content-MD5`: 16 bytes of base64, else `InvalidDigest`.
pub fn content_md5(ctx: &RequestCtx<'_>) -> S3Result<Option<[u8; 16]>> {
    let Some(v) = ctx.header("content-md5") else {
        return Ok(None);
    };
    B64.decode(v.trim())
        .ok()
        .and_then(|raw| <[u8; 16]>::try_from(raw).ok())
        .map(Some)
        .ok_or_else(|| {
            S3Error::new(
                ErrorCode::InvalidDigest,
                "The Content-MD5 you specified was invalid.",
            )
            .with("Content-MD5", v)
        })
}

/// Checks a staged body against Content-MD5 and the client's checksum.
pub fn verify_staged(
    ctx: &RequestCtx<'_>,
    staged: &StagedBody,
    md5: Option<[u8; 16]>,
    expected: &ExpectedChecksum,
) -> S3Result<()> {
    if let Some(m) = md5
        && m != staged.md5
    {
        return Err(content_md5_mismatch(m, staged.md5));
    }
    let alg = staged.checksum.algorithm;
    let given = match expected {
        ExpectedChecksum::None => return Ok(()),
        ExpectedChecksum::Header(v) => v.clone(),
        ExpectedChecksum::Trailer => ctx.trailer(alg.header()).ok_or_else(|| {
            S3Error::new(
                ErrorCode::InvalidRequest,
                format!(
                    "The trailing checksum {} was declared but not sent.",
                    alg.header()
                ),
            )
        })?,
    };
    if given != staged.checksum.value {
        return Err(checksum_mismatch(alg));
    }
    Ok(())
}

/// Name/value pairs as stored with an object.
pub type HeaderPairs = Vec<(String, String)>;

/// Stored standard headers and `x-amz-meta-*` from the request.
pub fn object_headers(ctx: &RequestCtx<'_>) -> S3Result<(HeaderPairs, HeaderPairs)> {
    let mut headers = Vec::new();
    for name in STORED_HEADERS {
        let Some(v) = ctx.headers().get(*name) else {
            continue;
        };
        let mut value = super::header_text(v).trim().to_string();
        if *name == "content-encoding" {
            // aws-chunked describes the transfer, not the object.
            value = value
                .split(',')
                .map(str::trim)
                .filter(|e| !e.eq_ignore_ascii_case("aws-chunked") && !e.is_empty())
                .collect::<Vec<_>>()
                .join(",");
            if value.is_empty() {
                continue;
            }
        }
        headers.push((name.to_string(), value));
    }
    if let Some(class) = storage_class(ctx.header(StorageClass::HEADER))? {
        class.store_in(&mut headers);
    }
    let mut user = Vec::new();
    let mut size = 0;
    for (name, v) in ctx.headers() {
        if let Some(meta) = name.as_str().strip_prefix("x-amz-meta-") {
            let value = super::header_text(v);
            size += meta.len() + value.len();
            user.push((meta.to_string(), value));
        }
    }
    if size > MAX_USER_METADATA {
        return Err(S3Error::new(
            ErrorCode::MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size.",
        )
        .with("Size", size.to_string())
        .with("MaxSizeAllowed", MAX_USER_METADATA.to_string()));
    }
    Ok((headers, user))
}

/// The storage class a write names (`x-amz-storage-class`, or a POST form's field), if any.
/// Only classes whose objects are readable at once are offered; another name, the archive
/// classes included, is InvalidStorageClass.
pub fn storage_class(value: Option<&str>) -> S3Result<Option<StorageClass>> {
    value
        .map(|v| {
            StorageClass::from_name(v).ok_or_else(|| {
                S3Error::new(
                    ErrorCode::InvalidStorageClass,
                    "The storage class you specified is not valid",
                )
                .with("StorageClassRequested", v.trim())
            })
        })
        .transpose()
}

/// A body of unknown length (no Content-Length, no chunked framing, no declared decoded
/// length) is refused before it is read, as S3 refuses it (411).
pub fn require_length(ctx: &RequestCtx<'_>, declared: Option<u64>) -> S3Result<()> {
    if declared.is_none()
        && !ctx.headers().contains_key(http::header::CONTENT_LENGTH)
        && !ctx.headers().contains_key(http::header::TRANSFER_ENCODING)
    {
        return Err(S3Error::new(
            ErrorCode::MissingContentLength,
            "You must provide the Content-Length HTTP header.",
        ));
    }
    Ok(())
}

/// Object Lock headers on a write. No bucket has Object Lock (it needs versioning, which Sluice
/// does not implement), so a retention or legal hold is refused as AWS refuses it on a bucket
/// without Object Lock, rather than stored without the protection the writer asked for.
pub fn refuse_object_lock(ctx: &RequestCtx<'_>) -> S3Result<()> {
    refuse_object_lock_in(|name| ctx.headers().contains_key(name))
}

/// The same refusal for a request whose settings are not headers (a POST form's fields):
/// `present` says whether the request sets the named header.
pub fn refuse_object_lock_in(present: impl Fn(&str) -> bool) -> S3Result<()> {
    const LOCK_HEADERS: [&str; 3] = [
        "x-amz-object-lock-mode",
        "x-amz-object-lock-retain-until-date",
        "x-amz-object-lock-legal-hold",
    ];
    if LOCK_HEADERS.into_iter().any(present) {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "Bucket is missing Object Lock Configuration",
        ));
    }
    Ok(())
}

/// Fails a conditional write whose condition already fails, before its body is read; the
/// commit checks again atomically. A missing object fails `If-Match` as NoSuchKey, as on S3.
pub async fn fail_fast(
    ctx: &RequestCtx<'_>,
    bucket: &str,
    key: &str,
    condition: &WriteCondition,
) -> S3Result<()> {
    if !condition.if_none_match_any && condition.if_match.is_none() {
        return Ok(());
    }
    let current = ctx.app.store.object(bucket, key).await?;
    match (&current, &condition.if_match) {
        (Some(_), _) if condition.if_none_match_any => {
            Err(S3Error::precondition_failed("If-None-Match"))
        }
        (None, Some(_)) => Err(S3Error::no_such_key(key)),
        (Some(o), Some(m)) if !crate::store::local::etag_matches(m, &o.etag) => {
            Err(S3Error::precondition_failed("If-Match"))
        }
        _ => Ok(()),
    }
}

/// `If-None-Match: *` and `If-Match` on a write.
pub fn write_condition(ctx: &RequestCtx<'_>) -> S3Result<WriteCondition> {
    let if_none_match_any = match ctx.header("if-none-match") {
        None => false,
        Some(v) if v.trim() == "*" => true,
        Some(_) => {
            return Err(S3Error::new(
                ErrorCode::NotImplemented,
                "If-None-Match on a write supports only the value *",
            ));
        }
    };
    Ok(WriteCondition {
        if_none_match_any,
        if_match: ctx.header("if-match").map(|s| s.trim().to_string()),
        replica_time: None,
    })
}

pub async fn put_object(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
    key: &str,
) -> S3Result<Response<Body>> {
    let bucket_info = ctx.existing_bucket(bucket).await?;
    let super::acl::NewObjectAcl {
        owner: owner_id,
        acl,
    } = ctx.new_object_acl(&bucket_info).await?;
    let max = ctx.app.config.max_put_size;
    let declared = ctx.declared_length()?;
    if declared.is_some_and(|n| n > max) {
        return Err(S3Error::new(
            ErrorCode::EntityTooLarge,
            "Your proposed upload exceeds the maximum allowed size",
        )
        .with("ProposedSize", declared.unwrap_or(0).to_string())
        .with("MaxSizeAllowed", max.to_string()));
    }
    require_length(ctx, declared)?;
    refuse_object_lock(ctx)?;
    let md5 = content_md5(ctx)?;
    let (algorithm, expected) = requested_checksum(ctx)?;
    let mut condition = write_condition(ctx)?;
    condition.replica_time =
        super::replication::replica_time(ctx, bucket, key, "s3:ReplicateObject").await?;
    let (headers, user_meta) = object_headers(ctx)?;
    let tags = super::tagging::from_header(ctx)?;

    fail_fast(ctx, bucket, key, &condition).await?;

    let sse = encryption::new_object_key(ctx.app, &ctx.caller(), bucket, key, None).await?;
    let body = ctx.take_body()?;
    let sealer = sse.as_ref().map(|(_, c)| encryption::sealer(c, 0));
    let mut staged = ctx
        .app
        .store
        .stage_body(body, algorithm, max, false, sealer)
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
    if let Some((enc, _)) = &sse {
        encryption::opaque_etag(&mut staged, enc);
    }
    ctx.app
        .metrics
        .bytes_in
        .fetch_add(staged.size, std::sync::atomic::Ordering::Relaxed);
    let meta = ctx
        .app
        .store
        .commit_object(
            bucket,
            key,
            NewObject {
                owner_id,
                headers,
                user_meta,
                tags,
                acl,
                encryption: sse.map(|(e, _)| e),
            },
            staged,
            condition.clone(),
        )
        .await
        .map_err(|e| match e {
            crate::store::StoreError::PreconditionFailed if condition.if_none_match_any => {
                S3Error::precondition_failed("If-None-Match")
            }
            other => other.into(),
        })?;

    let mut r = empty_response(StatusCode::OK);
    let h = r.headers_mut();
    set_header(h, "etag", &format!("\"{}\"", meta.etag));
    encryption::response_headers(h, meta.encryption.as_ref(), true);
    super::lifecycle::expiration_header(ctx, h, bucket, key, &meta).await;
    if algorithm.is_some()
        && let Some(c) = &meta.checksum
    {
        set_header(h, c.algorithm.header(), &c.value);
        set_header(h, "x-amz-checksum-type", c.kind.name());
    }
    Ok(r)
}
