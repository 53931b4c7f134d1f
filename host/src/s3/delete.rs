//! DeleteObject and DeleteObjects (multi-object delete with quiet mode and per-key errors).

use axum::body::Body;
use futures::StreamExt;
use http::{Response, StatusCode};

use super::error::{ErrorCode, S3Error, S3Result};
use super::router::MAX_KEY_LEN;
use super::xml::{self, XmlWriter};
use super::{RequestCtx, check_null_version, empty_response, xml_response};

/// Most keys in one DeleteObjects request.
const MAX_DELETE_KEYS: usize = 1000;
/// Largest DeleteObjects document (1000 keys of 1 KiB each, escaped, plus markup).
const MAX_DELETE_BODY: u64 = 8 * 1024 * 1024;

pub async fn delete_object(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
    key: &str,
) -> S3Result<Response<Body>> {
    check_null_version(&ctx.query)?;
    let if_match = ctx.header("if-match").map(|s| s.trim().to_string());
    let replica_time =
        super::replication::replica_time(ctx, bucket, key, "s3:ReplicateDelete").await?;
    ctx.app
        .store
        .delete_object(bucket, key, if_match.as_deref(), replica_time)
        .await
        .map_err(|e| S3Error::for_key(e, key))?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// DeleteObjects must carry an integrity check: Content-MD5 or an `x-amz-checksum-*` header
/// (or trailer). `read_small_body` has checked whichever came.
fn require_integrity(ctx: &RequestCtx<'_>) -> S3Result<()> {
    if ctx.header("content-md5").is_none() && super::put::document_checksums(ctx).is_empty() {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "Missing required header for this request: Content-MD5",
        ));
    }
    Ok(())
}

pub async fn delete_objects(ctx: &mut RequestCtx<'_>, bucket: &str) -> S3Result<Response<Body>> {
    let info = ctx.existing_bucket(bucket).await?;
    let body = ctx.read_small_body(MAX_DELETE_BODY).await?;
    require_integrity(ctx)?;
    let doc: xml::Delete = xml::parse(&body, "Delete")?;
    if doc.objects.is_empty() || doc.objects.len() > MAX_DELETE_KEYS {
        return Err(S3Error::malformed_xml());
    }
    let quiet = doc.quiet.unwrap_or(false);
    let store = ctx.app.store.clone();
    let bucket_name = bucket.to_string();
    // Deletes run concurrently so that the group commit folds them into few transactions.
    let entries: Vec<(String, Option<String>, Option<String>)> = doc
        .objects
        .iter()
        .map(|e| (e.key.clone(), e.version_id.clone(), e.etag.clone()))
        .collect();
    // As in S3, each key is authorized as its own DeleteObject; a denied key is a per-key error.
    let mut denied = Vec::with_capacity(entries.len());
    {
        let caller = ctx.caller();
        for (key, _, _) in &entries {
            let allowed = key.is_empty()
                || key.len() > MAX_KEY_LEN
                || super::access::authorize_object(
                    ctx.app,
                    &caller,
                    None,
                    "s3:DeleteObject",
                    &info,
                    key,
                )
                .await
                .is_ok();
            denied.push(!allowed);
        }
    }
    let entries: Vec<_> = entries.into_iter().zip(denied).collect();
    let failures: Vec<Option<(ErrorCode, String)>> = futures::stream::iter(entries)
        .map(move |((key, version, etag), denied)| {
            let store = store.clone();
            let bucket = bucket_name.clone();
            async move {
                if denied {
                    Some((ErrorCode::AccessDenied, "Access Denied".to_string()))
                } else if key.is_empty() || key.len() > MAX_KEY_LEN {
                    Some((
                        ErrorCode::KeyTooLongError,
                        "Your key is too long".to_string(),
                    ))
                } else if version.as_deref().is_some_and(|v| v != "null") {
                    Some((
                        ErrorCode::NoSuchVersion,
                        "The specified version does not exist.".to_string(),
                    ))
                } else {
                    match store
                        .delete_object(&bucket, &key, etag.as_deref(), None)
                        .await
                    {
                        Ok(_) => None,
                        Err(e) => {
                            let e = S3Error::from(e);
                            Some((e.code, e.message))
                        }
                    }
                }
            }
        })
        .buffered(64)
        .collect()
        .await;
    let mut w = XmlWriter::new("DeleteResult");
    for (entry, failure) in doc.objects.iter().zip(failures) {
        match failure {
            None if quiet => {}
            None => {
                w.open("Deleted").elem("Key", &entry.key);
                w.opt("VersionId", entry.version_id.as_deref());
                w.close("Deleted");
            }
            Some((code, message)) => {
                w.open("Error").elem("Key", &entry.key);
                w.opt("VersionId", entry.version_id.as_deref());
                w.elem("Code", code.as_str())
                    .elem("Message", &message)
                    .close("Error");
            }
        }
    }
    Ok(xml_response(StatusCode::OK, w.finish("DeleteResult")))
}
