//! Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation,
//! GetBucketVersioning.

use axum::body::Body;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use http::{Response, StatusCode};

use super::error::{ErrorCode, S3Error, S3Result};
use super::router::valid_bucket_name;
use super::xml::{self, XmlWriter};
use super::{RequestCtx, empty_response, set_header, xml_response};
use crate::auth::Principal;
use crate::store::StoreError;

/// Largest CreateBucketConfiguration document accepted.
const MAX_CONFIG_BODY: u64 = 64 * 1024;

pub async fn list_buckets(ctx: &mut RequestCtx<'_>) -> S3Result<Response<Body>> {
    let max_buckets: usize = match ctx.query.get("max-buckets") {
        None => 10_000,
        Some(v) => v
            .parse()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| S3Error::invalid_argument("max-buckets must be 1..10000"))?,
    };
    let prefix = ctx.query.get("prefix").unwrap_or("").to_string();
    let after = match ctx.query.get("continuation-token") {
        None => None,
        Some(t) => Some(
            B64.decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    S3Error::invalid_argument("The continuation token provided is incorrect")
                })?,
        ),
    };
    let mut buckets = ctx.app.store.list_buckets().await?;
    buckets.retain(|b| {
        b.name.starts_with(&prefix)
            && after.as_ref().is_none_or(|a| b.name.as_str() > a.as_str())
            && match &ctx.principal {
                Principal::Root { .. } => true,
                p => p.id() == Some(b.owner_id.as_str()),
            }
    });
    buckets.sort_by(|a, b| a.name.cmp(&b.name));
    let truncated = buckets.len() > max_buckets;
    buckets.truncate(max_buckets);

    let mut w = XmlWriter::new("ListAllMyBucketsResult");
    w.open("Owner")
        .elem("ID", ctx.principal.id().unwrap_or(""))
        .elem("DisplayName", ctx.principal.display_name())
        .close("Owner");
    w.open("Buckets");
    for b in &buckets {
        w.open("Bucket")
            .elem("Name", &b.name)
            .time("CreationDate", b.created)
            .elem("BucketRegion", &b.region)
            .close("Bucket");
    }
    w.close("Buckets");
    if truncated && let Some(last) = buckets.last() {
        w.elem("ContinuationToken", &B64.encode(&last.name));
    }
    if ctx.query.has("prefix") {
        w.elem("Prefix", &prefix);
    }
    Ok(xml_response(
        StatusCode::OK,
        w.finish("ListAllMyBucketsResult"),
    ))
}

pub async fn create_bucket(ctx: &mut RequestCtx<'_>, bucket: &str) -> S3Result<Response<Body>> {
    if !valid_bucket_name(bucket) {
        return Err(S3Error::new(
            ErrorCode::InvalidBucketName,
            "The specified bucket is not valid.",
        )
        .with("BucketName", bucket));
    }
    // Object Lock needs versioning, which Sluice does not implement: a bucket created without
    // the protection its creator asked for would be worse than no bucket.
    if ctx
        .header("x-amz-bucket-object-lock-enabled")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    {
        return Err(S3Error::not_implemented("Object Lock")
            .with("Header", "x-amz-bucket-object-lock-enabled"));
    }
    let body = ctx.read_small_body(MAX_CONFIG_BODY).await?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let config: xml::CreateBucketConfiguration =
            xml::parse(&body, "CreateBucketConfiguration")?;
        if let Some(lc) = config.location_constraint.filter(|s| !s.is_empty())
            && lc != ctx.app.config.region
        {
            let looks_like_region = lc.len() <= 32
                && lc
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            return Err(if looks_like_region {
                S3Error::new(
                    ErrorCode::IllegalLocationConstraintException,
                    format!(
                        "The {lc} location constraint is incompatible for the region specific endpoint this request was sent to."
                    ),
                )
            } else {
                S3Error::new(
                    ErrorCode::InvalidLocationConstraint,
                    "The specified location-constraint is not valid",
                )
                .with("LocationConstraint", lc)
            });
        }
    }
    let owner = ctx
        .principal
        .id()
        .ok_or_else(S3Error::access_denied)?
        .to_string();
    let (acl, ownership) = super::acl::for_new_bucket(ctx.headers(), &owner)?;
    match ctx
        .app
        .store
        .create_bucket(bucket, &owner, &ctx.app.config.region)
        .await
    {
        Ok(()) => {}
        // Outside us-east-1 S3 refuses to create a bucket its caller owns; in us-east-1 it
        // keeps its legacy answer, 200 with the ACL reset, which clients and suites expect
        // there (`aws s3 mb` on an existing bucket, ceph s3-tests' test_bucket_create_exists).
        Err(StoreError::BucketExists { owner_id, .. })
            if owner_id == owner && ctx.app.config.region == "us-east-1" =>
        {
            let info = ctx.existing_bucket(bucket).await?;
            super::acl::reset_bucket_acl(ctx.app, &info, acl).await?;
            let mut r = empty_response(StatusCode::OK);
            set_header(r.headers_mut(), "location", &format!("/{bucket}"));
            return Ok(r);
        }
        Err(StoreError::BucketExists { owner_id, .. }) if owner_id == owner => {
            return Err(S3Error::new(
                ErrorCode::BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it.",
            )
            .with("BucketName", bucket));
        }
        Err(e) => return Err(e.into()),
    }
    let store = ctx.app.store.as_ref();
    // Whatever the engine may still hold for a bucket of this name is dropped.
    super::bucket_policy::refresh(ctx.app, bucket).await?;
    if let Some(o) = ownership {
        super::acl::set_ownership(store, bucket, o).await?;
    }
    if let Some(a) = &acl {
        super::acl::set_bucket_acl(store, bucket, a).await?;
    }
    let mut r = empty_response(StatusCode::OK);
    set_header(r.headers_mut(), "location", &format!("/{bucket}"));
    Ok(r)
}

pub async fn head_bucket(ctx: &mut RequestCtx<'_>, bucket: &str) -> S3Result<Response<Body>> {
    let info = ctx.existing_bucket(bucket).await?;
    let mut r = empty_response(StatusCode::OK);
    set_header(r.headers_mut(), "x-amz-bucket-region", &info.region);
    Ok(r)
}

pub async fn delete_bucket(ctx: &mut RequestCtx<'_>, bucket: &str) -> S3Result<Response<Body>> {
    ctx.app.store.delete_bucket(bucket).await?;
    // The bucket's policy goes with it (its configuration is gone from the store, so the
    // refresh clears the engine's copy); a bucket made again under the name starts clean.
    super::bucket_policy::refresh(ctx.app, bucket).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

pub async fn get_bucket_location(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    let info = ctx.existing_bucket(bucket).await?;
    // us-east-1 is reported as an empty constraint, as AWS does.
    let region = if info.region == "us-east-1" {
        ""
    } else {
        info.region.as_str()
    };
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"{}\">{}</LocationConstraint>",
        xml::S3_NS,
        xml::escape(region)
    );
    Ok(xml_response(StatusCode::OK, xml))
}

pub async fn get_bucket_versioning(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    ctx.existing_bucket(bucket).await?;
    // Never versioned: the configuration has no Status, as on AWS.
    let w = XmlWriter::new("VersioningConfiguration");
    Ok(xml_response(
        StatusCode::OK,
        w.finish("VersioningConfiguration"),
    ))
}
