//! CopyObject, and the copy-source handling UploadPartCopy shares with it: the source object,
//! its `x-amz-copy-source-if-*` conditionals and the metadata/tagging directives.

use axum::body::Body;
use http::{Response, StatusCode};

use super::error::{ErrorCode, S3Error, S3Result};
use super::get::http_date_secs;
use super::put::{object_headers, requested_checksum, write_condition};
use super::router::CopySource;
use super::xml::XmlWriter;
use super::{RequestCtx, encryption, xml_response};
use crate::store::local::etag_matches;
use crate::store::{NewObject, ObjectMeta, StorageClass};

/// Looks up the copy source and applies the `x-amz-copy-source-if-*` conditions.
pub async fn source_object(ctx: &RequestCtx<'_>, source: &CopySource) -> S3Result<ObjectMeta> {
    if let Some(v) = &source.version_id
        && v != "null"
    {
        return Err(
            S3Error::new(ErrorCode::InvalidArgument, "Invalid version id specified")
                .with("ArgumentName", "x-amz-copy-source"),
        );
    }
    let bucket = ctx.existing_bucket(&source.bucket).await?;
    let Some(meta) = ctx.app.store.object(&source.bucket, &source.key).await? else {
        // Told as a GET would tell it: 404 only to who may list the source bucket.
        let caller = ctx.caller();
        return Err(super::access::missing_object(ctx.app, &caller, &bucket, &source.key).await);
    };
    let modified = meta.last_modified / 1000;
    let failed = |what: &str| S3Error::precondition_failed(what);
    let if_match = ctx.header("x-amz-copy-source-if-match");
    let if_none_match = ctx.header("x-amz-copy-source-if-none-match");
    let since = |name: &str| ctx.header(name).and_then(http_date_secs);
    if let Some(m) = if_match {
        if !etag_matches(m, &meta.etag) {
            return Err(failed("x-amz-copy-source-If-Match"));
        }
    } else if let Some(t) = since("x-amz-copy-source-if-unmodified-since")
        && modified > t
    {
        return Err(failed("x-amz-copy-source-If-Unmodified-Since"));
    }
    if let Some(m) = if_none_match {
        if etag_matches(m, &meta.etag) {
            return Err(failed("x-amz-copy-source-If-None-Match"));
        }
    } else if let Some(t) = since("x-amz-copy-source-if-modified-since")
        && modified <= t
    {
        return Err(failed("x-amz-copy-source-If-Modified-Since"));
    }
    Ok(meta)
}

fn directive(ctx: &RequestCtx<'_>, name: &str) -> S3Result<bool> {
    match ctx.header(name).map(|v| v.trim().to_ascii_uppercase()) {
        None => Ok(false),
        Some(v) if v == "COPY" => Ok(false),
        Some(v) if v == "REPLACE" => Ok(true),
        Some(_) => Err(S3Error::invalid_argument(format!("Unknown {name}"))
            .with("ArgumentName", name.to_string())),
    }
}

pub async fn copy_object(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
    key: &str,
    source: &CopySource,
) -> S3Result<Response<Body>> {
    let bucket_info = ctx.existing_bucket(bucket).await?;
    let super::acl::NewObjectAcl {
        owner: owner_id,
        acl,
    } = ctx.new_object_acl(&bucket_info).await?;
    let replace_meta = directive(ctx, "x-amz-metadata-directive")?;
    let replace_tags = directive(ctx, "x-amz-tagging-directive")?;
    let src = source_object(ctx, source).await?;
    let changes_encryption = !encryption::write_request(ctx.headers())?.is_empty();
    // A storage class named on the copy counts as a change, as on S3 (even the same class).
    let class = super::put::storage_class(ctx.header(StorageClass::HEADER))?;
    if source.bucket == bucket
        && source.key == key
        && !replace_meta
        && !changes_encryption
        && class.is_none()
    {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    let (algorithm, _) = requested_checksum(ctx)?;
    let algorithm = algorithm
        .or(super::put::algorithm_header(
            ctx,
            "x-amz-checksum-algorithm",
        )?)
        .or(src.checksum.as_ref().map(|c| c.algorithm));
    let (mut headers, user_meta) = if replace_meta {
        object_headers(ctx)?
    } else {
        (src.headers.clone(), src.user_meta.clone())
    };
    // The class is the copy's own, never the source's: STANDARD unless the request names one.
    class.unwrap_or_default().store_in(&mut headers);
    let tags = if replace_tags {
        super::tagging::from_header(ctx)?
    } else {
        src.tags.clone()
    };
    let condition = write_condition(ctx)?;
    super::put::refuse_object_lock(ctx)?;
    super::put::fail_fast(ctx, bucket, key, &condition).await?;
    let src_cipher = encryption::copy_source_cipher(ctx, &src).await?;
    let sse = encryption::new_object_key(
        ctx.app,
        &ctx.caller(),
        bucket,
        key,
        src.encryption.as_ref().map(|_| crate::crypto::SseMode::S3),
    )
    .await?;
    let body = ctx
        .app
        .store
        .open_body(&src, None, src_cipher.as_ref())
        .await?;
    let sealer = sse.as_ref().map(|(_, c)| encryption::sealer(c, 0));
    let mut staged = ctx
        .app
        .store
        .stage_body(body, algorithm, ctx.app.config.max_put_size, false, sealer)
        .await?;
    if let Some((enc, _)) = &sse {
        encryption::opaque_etag(&mut staged, enc);
    }
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
            condition,
        )
        .await?;
    let mut w = XmlWriter::new("CopyObjectResult");
    w.time("LastModified", meta.last_modified)
        .elem("ETag", &format!("\"{}\"", meta.etag));
    if let Some(c) = &meta.checksum {
        w.elem(&checksum_element(c.algorithm), &c.value)
            .elem("ChecksumType", c.kind.name());
    }
    let mut r = xml_response(StatusCode::OK, w.finish("CopyObjectResult"));
    encryption::response_headers(r.headers_mut(), meta.encryption.as_ref(), true);
    super::lifecycle::expiration_header(ctx, r.headers_mut(), bucket, key, &meta).await;
    Ok(r)
}

/// The XML element of a checksum value (`ChecksumCRC32`, ...).
pub fn checksum_element(algorithm: crate::checksum::ChecksumAlgorithm) -> String {
    format!("Checksum{}", algorithm.name())
}
