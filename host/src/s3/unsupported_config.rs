//! Bucket configurations Sluice has no support for (website, object lock, logging,
//! event notification, transfer acceleration; see [`UnsupportedConfig`]). No bucket ever has
//! one, so a read answers exactly what AWS answers for a bucket without it and a delete
//! succeeds; the router refuses a PUT as `NotImplemented`.

use axum::body::Body;
use http::{Response, StatusCode};

use super::error::{ErrorCode, S3Error, S3Result};
use super::router::UnsupportedConfig;
use super::xml::XmlWriter;
use super::{RequestCtx, empty_response, xml_response};

/// GetBucketWebsite, GetObjectLockConfiguration: 404 with the
/// configuration's own error code; GetBucketLogging, GetBucketNotificationConfiguration,
/// GetBucketAccelerateConfiguration: an empty document (logging off, no notifications, no
/// acceleration status), as AWS answers those.
pub async fn get_unsupported_config(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
    config: UnsupportedConfig,
) -> S3Result<Response<Body>> {
    ctx.existing_bucket(bucket).await?;
    let missing = |code: ErrorCode, message: &str| -> S3Result<Response<Body>> {
        Err(S3Error::new(code, message).with("BucketName", bucket))
    };
    let empty = |root: &str| -> S3Result<Response<Body>> {
        Ok(xml_response(
            StatusCode::OK,
            XmlWriter::new(root).finish(root),
        ))
    };
    match config {
        UnsupportedConfig::Website => missing(
            ErrorCode::NoSuchWebsiteConfiguration,
            "The specified bucket does not have a website configuration",
        ),
        UnsupportedConfig::ObjectLock => missing(
            ErrorCode::ObjectLockConfigurationNotFoundError,
            "Object Lock configuration does not exist for this bucket",
        ),
        UnsupportedConfig::Logging => empty("BucketLoggingStatus"),
        UnsupportedConfig::Notification => empty("NotificationConfiguration"),
        UnsupportedConfig::Accelerate => empty("AccelerateConfiguration"),
    }
}

/// DeleteBucketWebsite: there is nothing to delete, which AWS also
/// answers with 204.
pub async fn delete_unsupported_config(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    ctx.existing_bucket(bucket).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}
