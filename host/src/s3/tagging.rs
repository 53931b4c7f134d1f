//! Object and bucket tagging: Put/Get/DeleteObjectTagging, Put/Get/DeleteBucketTagging and the
//! `x-amz-tagging` header, with S3's limits (`InvalidTag`).

use std::collections::HashSet;

use axum::body::Body;
use http::{Response, StatusCode};
use serde::Deserialize;

use super::error::{ErrorCode, S3Error, S3Result};
use super::xml::{self, XmlWriter};
use super::{RequestCtx, empty_response, xml_response};

pub const MAX_OBJECT_TAGS: usize = 10;
pub const MAX_BUCKET_TAGS: usize = 50;
const MAX_KEY_CHARS: usize = 128;
const MAX_VALUE_CHARS: usize = 256;
const MAX_TAGGING_BODY: u64 = 64 * 1024;
/// Bucket configuration kind under which bucket tags are stored.
const BUCKET_TAGS: &str = "tagging";

pub type Tags = Vec<(String, String)>;

fn invalid_tag(message: impl Into<String>) -> S3Error {
    S3Error::new(ErrorCode::InvalidTag, message)
}

/// Checks S3's tag rules: count, key and value lengths, unique keys, no `aws:` prefix.
pub fn validate(tags: &Tags, max: usize) -> S3Result<()> {
    if tags.len() > max {
        return Err(invalid_tag(format!(
            "Object tags cannot be greater than {max}"
        )));
    }
    let mut seen = HashSet::new();
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > MAX_KEY_CHARS {
            return Err(invalid_tag("The TagKey you have provided is invalid").with("TagKey", k));
        }
        if v.chars().count() > MAX_VALUE_CHARS {
            return Err(invalid_tag("The TagValue you have provided is invalid").with("TagKey", k));
        }
        if k.starts_with("aws:") {
            return Err(invalid_tag("Your TagKey cannot be prefixed with aws:").with("TagKey", k));
        }
        if !seen.insert(k.as_str()) {
            return Err(
                invalid_tag("Cannot provide multiple Tags with the same key").with("TagKey", k),
            );
        }
    }
    Ok(())
}

/// Tags from the `x-amz-tagging` header (`k1=v1&k2=v2`, URL-encoded).
pub fn from_header(ctx: &RequestCtx<'_>) -> S3Result<Tags> {
    let Some(h) = ctx.header("x-amz-tagging") else {
        return Ok(Vec::new());
    };
    let q = super::router::Query::parse(h)
        .map_err(|_| invalid_tag("The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates."))?;
    let tags: Tags = q
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    validate(&tags, MAX_OBJECT_TAGS)?;
    Ok(tags)
}

#[derive(Debug, Deserialize)]
struct TaggingDoc {
    #[serde(rename = "TagSet")]
    tag_set: TagSetDoc,
}

#[derive(Debug, Default, Deserialize)]
struct TagSetDoc {
    #[serde(rename = "Tag", default)]
    tags: Vec<TagDoc>,
}

/// A `<Tag><Key/><Value/></Tag>` element (also in replication rule filters).
#[derive(Debug, Deserialize)]
pub struct TagDoc {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value", default)]
    pub value: String,
}

async fn read_tagging(ctx: &mut RequestCtx<'_>, max: usize) -> S3Result<Tags> {
    let body = ctx.read_small_body(MAX_TAGGING_BODY).await?;
    from_document(&body, max)
}

/// Tags from a `<Tagging>` document (a request body, or a POST form's `tagging` field), at most
/// `max` of them.
pub fn from_document(body: &[u8], max: usize) -> S3Result<Tags> {
    let doc: TaggingDoc = xml::parse(body, "Tagging")?;
    let tags: Tags = doc
        .tag_set
        .tags
        .into_iter()
        .map(|t| (t.key, t.value))
        .collect();
    validate(&tags, max)?;
    Ok(tags)
}

/// A `<Tagging>` document, tags sorted by key: AWS does not define the order (its answers are
/// neither insertion nor key order), and clients that compare tag sets whole (ceph's s3-tests
/// before it sorted both sides) expect key order.
fn tagging_xml(tags: &Tags) -> String {
    let mut sorted: Vec<&(String, String)> = tags.iter().collect();
    sorted.sort();
    let mut w = XmlWriter::new("Tagging");
    w.open("TagSet");
    for (k, v) in sorted {
        w.open("Tag").elem("Key", k).elem("Value", v).close("Tag");
    }
    w.close("TagSet");
    w.finish("Tagging")
}

async fn set_tags(ctx: &RequestCtx<'_>, bucket: &str, key: &str, tags: Tags) -> S3Result<()> {
    ctx.app
        .store
        .set_object_tags(bucket, key, tags)
        .await
        .map_err(|e| S3Error::for_key(e, key))
}

pub async fn put_object_tagging(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
    key: &str,
) -> S3Result<Response<Body>> {
    super::check_null_version(&ctx.query)?;
    ctx.existing_bucket(bucket).await?;
    let tags = read_tagging(ctx, MAX_OBJECT_TAGS).await?;
    set_tags(ctx, bucket, key, tags).await?;
    Ok(empty_response(StatusCode::OK))
}

pub async fn get_object_tagging(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
    key: &str,
) -> S3Result<Response<Body>> {
    super::check_null_version(&ctx.query)?;
    let (_, meta) = ctx.existing_object(bucket, key).await?;
    Ok(xml_response(StatusCode::OK, tagging_xml(&meta.tags)))
}

pub async fn delete_object_tagging(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
    key: &str,
) -> S3Result<Response<Body>> {
    super::check_null_version(&ctx.query)?;
    ctx.existing_bucket(bucket).await?;
    set_tags(ctx, bucket, key, Vec::new()).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

pub async fn put_bucket_tagging(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    ctx.existing_bucket(bucket).await?;
    let tags = read_tagging(ctx, MAX_BUCKET_TAGS).await?;
    let stored = serde_json::to_vec(&tags).map_err(S3Error::internal)?;
    ctx.app
        .store
        .put_bucket_config(bucket, BUCKET_TAGS, Some(stored))
        .await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

pub async fn get_bucket_tagging(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    ctx.existing_bucket(bucket).await?;
    let stored = ctx.app.store.bucket_config(bucket, BUCKET_TAGS).await?;
    let tags: Tags = match stored {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(S3Error::internal)?,
        None => Vec::new(),
    };
    if tags.is_empty() {
        return Err(
            S3Error::new(ErrorCode::NoSuchTagSet, "The TagSet does not exist")
                .with("BucketName", bucket),
        );
    }
    Ok(xml_response(StatusCode::OK, tagging_xml(&tags)))
}

pub async fn delete_bucket_tagging(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    ctx.set_bucket_config(bucket, BUCKET_TAGS, None).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn limits_are_enforced() {
        assert!(validate(&tags(&[("a", "1"), ("b", "")]), 10).is_ok());
        let eleven: Tags = (0..11).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(validate(&eleven, MAX_OBJECT_TAGS).is_err());
        assert!(validate(&eleven, MAX_BUCKET_TAGS).is_ok());
        assert!(validate(&tags(&[(&"k".repeat(129), "v")]), 10).is_err());
        assert!(validate(&tags(&[("k", &"v".repeat(257))]), 10).is_err());
        assert!(validate(&tags(&[("a", "1"), ("a", "2")]), 10).is_err());
        assert!(validate(&tags(&[("aws:x", "1")]), 10).is_err());
    }
}
