//! Stored bucket settings answered as AWS does for a bucket owner: ownership controls, public
//! access block and request payment.

use axum::body::Body;
use http::{Response, StatusCode};
use serde::Deserialize;

use super::error::{ErrorCode, S3Error, S3Result};
use super::xml::{self, XmlWriter};
use super::{RequestCtx, empty_response, xml_response};

const MAX_CONFIG_BODY: u64 = 64 * 1024;
const OWNERSHIP: &str = "ownershipControls";
const PUBLIC_ACCESS_BLOCK: &str = "publicAccessBlock";
const REQUEST_PAYMENT: &str = "requestPayment";

#[derive(Debug, Deserialize)]
struct OwnershipControlsDoc {
    #[serde(rename = "Rule", default)]
    rules: Vec<OwnershipRuleDoc>,
}

#[derive(Debug, Deserialize)]
struct OwnershipRuleDoc {
    #[serde(rename = "ObjectOwnership")]
    object_ownership: String,
}

const OWNERSHIP_VALUES: &[&str] = &[
    "BucketOwnerEnforced",
    "BucketOwnerPreferred",
    "ObjectWriter",
];

pub async fn put_ownership_controls(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    let info = ctx.existing_bucket(bucket).await?;
    let body = ctx.read_small_body(MAX_CONFIG_BODY).await?;
    let doc: OwnershipControlsDoc = xml::parse(&body, "OwnershipControls")?;
    let [rule] = doc.rules.as_slice() else {
        return Err(S3Error::malformed_xml());
    };
    if !OWNERSHIP_VALUES.contains(&rule.object_ownership.as_str()) {
        return Err(S3Error::malformed_xml());
    }
    // Disabling ACLs over an ACL that grants others would leave grants nobody can see or
    // change: S3 refuses it until the ACL is reset.
    if rule.object_ownership == "BucketOwnerEnforced"
        && super::acl::bucket_acl_grants_others(ctx.app.store.as_ref(), &info).await?
    {
        return Err(super::acl::acl_conflicts_with_enforced_ownership());
    }
    ctx.app
        .store
        .put_bucket_config(
            bucket,
            OWNERSHIP,
            Some(rule.object_ownership.clone().into_bytes()),
        )
        .await?;
    Ok(empty_response(StatusCode::OK))
}

pub async fn get_ownership_controls(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    ctx.existing_bucket(bucket).await?;
    let value = match ctx.app.store.bucket_config(bucket, OWNERSHIP).await? {
        // New buckets enforce bucket-owner ownership, as on AWS since 2023.
        None => "BucketOwnerEnforced".to_string(),
        Some(v) if v.is_empty() => {
            return Err(S3Error::new(
                ErrorCode::OwnershipControlsNotFoundError,
                "The bucket ownership controls were not found",
            )
            .with("BucketName", bucket));
        }
        Some(v) => String::from_utf8_lossy(&v).into_owned(),
    };
    let mut w = XmlWriter::new("OwnershipControls");
    w.open("Rule").elem("ObjectOwnership", &value).close("Rule");
    Ok(xml_response(StatusCode::OK, w.finish("OwnershipControls")))
}

pub async fn delete_ownership_controls(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    // An empty value records "deleted", distinct from the default of a new bucket.
    ctx.set_bucket_config(bucket, OWNERSHIP, Some(Vec::new()))
        .await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

#[derive(Debug, Deserialize)]
struct PublicAccessBlockDoc {
    #[serde(rename = "BlockPublicAcls")]
    block_public_acls: Option<bool>,
    #[serde(rename = "IgnorePublicAcls")]
    ignore_public_acls: Option<bool>,
    #[serde(rename = "BlockPublicPolicy")]
    block_public_policy: Option<bool>,
    #[serde(rename = "RestrictPublicBuckets")]
    restrict_public_buckets: Option<bool>,
}

/// The four public-access-block switches, in AWS's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// New buckets block all public access, as on AWS since 2023.
    pub const NEW_BUCKET: PublicAccessBlock = PublicAccessBlock {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    };
}

/// The bucket's public access block, if any.
pub async fn public_access_block(
    ctx: &RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Option<PublicAccessBlock>> {
    public_access_block_of(ctx.app.store.as_ref(), bucket).await
}

/// The public access block of `bucket`, if any.
pub async fn public_access_block_of(
    store: &dyn crate::store::Store,
    bucket: &str,
) -> S3Result<Option<PublicAccessBlock>> {
    Ok(
        match store.bucket_config(bucket, PUBLIC_ACCESS_BLOCK).await? {
            None => Some(PublicAccessBlock::NEW_BUCKET),
            Some(v) if v.is_empty() => None,
            Some(v) => Some(serde_json::from_slice(&v).map_err(S3Error::internal)?),
        },
    )
}

pub async fn put_public_access_block(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    ctx.existing_bucket(bucket).await?;
    let body = ctx.read_small_body(MAX_CONFIG_BODY).await?;
    let doc: PublicAccessBlockDoc = xml::parse(&body, "PublicAccessBlockConfiguration")?;
    let pab = PublicAccessBlock {
        block_public_acls: doc.block_public_acls.unwrap_or(false),
        ignore_public_acls: doc.ignore_public_acls.unwrap_or(false),
        block_public_policy: doc.block_public_policy.unwrap_or(false),
        restrict_public_buckets: doc.restrict_public_buckets.unwrap_or(false),
    };
    let stored = serde_json::to_vec(&pab).map_err(S3Error::internal)?;
    ctx.app
        .store
        .put_bucket_config(bucket, PUBLIC_ACCESS_BLOCK, Some(stored))
        .await?;
    super::bucket_policy::refresh(ctx.app, bucket).await?;
    Ok(empty_response(StatusCode::OK))
}

pub async fn get_public_access_block(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    ctx.existing_bucket(bucket).await?;
    let Some(pab) = public_access_block(ctx, bucket).await? else {
        return Err(S3Error::new(
            ErrorCode::NoSuchPublicAccessBlockConfiguration,
            "The public access block configuration was not found",
        )
        .with("BucketName", bucket));
    };
    let b = |v: bool| if v { "true" } else { "false" };
    let mut w = XmlWriter::new("PublicAccessBlockConfiguration");
    w.elem("BlockPublicAcls", b(pab.block_public_acls))
        .elem("IgnorePublicAcls", b(pab.ignore_public_acls))
        .elem("BlockPublicPolicy", b(pab.block_public_policy))
        .elem("RestrictPublicBuckets", b(pab.restrict_public_buckets));
    Ok(xml_response(
        StatusCode::OK,
        w.finish("PublicAccessBlockConfiguration"),
    ))
}

pub async fn delete_public_access_block(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    ctx.set_bucket_config(bucket, PUBLIC_ACCESS_BLOCK, Some(Vec::new()))
        .await?;
    super::bucket_policy::refresh(ctx.app, bucket).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

#[derive(Debug, Deserialize)]
struct RequestPaymentDoc {
    #[serde(rename = "Payer")]
    payer: String,
}

pub async fn put_request_payment(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    ctx.existing_bucket(bucket).await?;
    let body = ctx.read_small_body(MAX_CONFIG_BODY).await?;
    let doc: RequestPaymentDoc = xml::parse(&body, "RequestPaymentConfiguration")?;
    if doc.payer != "BucketOwner" && doc.payer != "Requester" {
        return Err(S3Error::malformed_xml());
    }
    ctx.app
        .store
        .put_bucket_config(bucket, REQUEST_PAYMENT, Some(doc.payer.into_bytes()))
        .await?;
    Ok(empty_response(StatusCode::OK))
}

pub async fn get_request_payment(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    ctx.existing_bucket(bucket).await?;
    let payer = ctx
        .app
        .store
        .bucket_config(bucket, REQUEST_PAYMENT)
        .await?
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_else(|| "BucketOwner".to_string());
    let mut w = XmlWriter::new("RequestPaymentConfiguration");
    w.elem("Payer", &payer);
    Ok(xml_response(
        StatusCode::OK,
        w.finish("RequestPaymentConfiguration"),
    ))
}
