//! Listing: ListObjects (v1), ListObjectsV2 and ListObjectVersions (every object is version
//! `null` until versioning exists).

use std::borrow::Cow;

use axum::body::Body;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use http::{Response, StatusCode};

use super::acl::ListedOwners;
use super::error::{S3Error, S3Result};
use super::sigv4::uri_encode;
use super::xml::XmlWriter;
use super::{RequestCtx, xml_response};
use crate::store::{ListPage, ListQuery, ListedObject};

const MAX_KEYS: usize = 1000;

/// `encoding-type=url` support: keys and prefixes are percent-encoded in the response.
struct Encoder {
    url: bool,
}

impl Encoder {
    fn from_ctx(ctx: &RequestCtx<'_>) -> S3Result<Encoder> {
        match ctx.query.get("encoding-type") {
            None => Ok(Encoder { url: false }),
            Some(t) if t.eq_ignore_ascii_case("url") => Ok(Encoder { url: true }),
            Some(_) => Err(S3Error::invalid_argument(
                "Invalid Encoding Method specified in Request",
            )
            .with("ArgumentName", "encoding-type")),
        }
    }

    fn enc<'s>(&self, s: &'s str) -> Cow<'s, str> {
        if self.url {
            Cow::Owned(uri_encode(s.as_bytes(), true))
        } else {
            Cow::Borrowed(s)
        }
    }

    fn write_type(&self, w: &mut XmlWriter) {
        if self.url {
            w.elem("EncodingType", "url");
        }
    }
}

/// A `max-keys`-style query parameter: a non-negative integer, capped at 1000 as S3 does.
pub fn parse_max(ctx: &RequestCtx<'_>, name: &str) -> S3Result<usize> {
    match ctx.query.get(name) {
        None => Ok(MAX_KEYS),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| (n as usize).min(MAX_KEYS))
            .ok_or_else(|| {
                S3Error::invalid_argument(format!(
                    "Provided {name} not an integer or within integer range"
                ))
                .with("ArgumentName", name.to_string())
                .with("ArgumentValue", v)
            }),
    }
}

fn write_object_fields(w: &mut XmlWriter, meta: &ListedObject) {
    w.time("LastModified", meta.last_modified)
        .open("ETag")
        .raw("&quot;")
        .text(&meta.etag)
        .raw("&quot;")
        .close("ETag");
    if let Some(c) = &meta.checksum {
        w.elem("ChecksumAlgorithm", c.algorithm.name())
            .elem("ChecksumType", c.kind.name());
    }
    w.open("Size").number(meta.size).close("Size");
}

fn write_common_prefixes(w: &mut XmlWriter, page: &ListPage, enc: &Encoder) {
    for p in &page.common_prefixes {
        w.open("CommonPrefixes")
            .elem("Prefix", &enc.enc(p))
            .close("CommonPrefixes");
    }
}

fn base_query(ctx: &RequestCtx<'_>) -> S3Result<ListQuery> {
    Ok(ListQuery {
        prefix: ctx.query.get("prefix").unwrap_or("").to_string(),
        delimiter: ctx
            .query
            .get("delimiter")
            .filter(|d| !d.is_empty())
            .map(str::to_string),
        start_after: None,
        max_keys: parse_max(ctx, "max-keys")?,
        skip_owner: false,
    })
}

fn write_header(w: &mut XmlWriter, bucket: &str, q: &ListQuery, enc: &Encoder) {
    w.elem("Name", bucket).elem("Prefix", &enc.enc(&q.prefix));
}

pub async fn list_objects_v1(ctx: &mut RequestCtx<'_>, bucket: &str) -> S3Result<Response<Body>> {
    let enc = Encoder::from_ctx(ctx)?;
    let mut q = base_query(ctx)?;
    let marker = ctx.query.get("marker").unwrap_or("").to_string();
    q.start_after = Some(marker.clone()).filter(|m| !m.is_empty());
    let page = ctx.app.store.list_objects(bucket, &q).await?;

    let mut w = XmlWriter::new("ListBucketResult");
    write_header(&mut w, bucket, &q, &enc);
    w.elem("Marker", &enc.enc(&marker));
    if page.is_truncated
        && q.delimiter.is_some()
        && let Some(last) = &page.last
    {
        w.elem("NextMarker", &enc.enc(last));
    }
    w.elem("MaxKeys", &q.max_keys.to_string());
    if let Some(d) = &q.delimiter {
        w.elem("Delimiter", &enc.enc(d));
    }
    w.elem(
        "IsTruncated",
        if page.is_truncated { "true" } else { "false" },
    );
    enc.write_type(&mut w);
    let mut owners = ListedOwners::new(ctx, bucket).await?;
    for (key, meta) in &page.objects {
        w.open("Contents").elem("Key", &enc.enc(key));
        write_object_fields(&mut w, meta);
        owners.owner(&mut w, &meta.owner_id);
        w.elem("StorageClass", meta.storage_class.name())
            .close("Contents");
    }
    write_common_prefixes(&mut w, &page, &enc);
    Ok(xml_response(StatusCode::OK, w.finish("ListBucketResult")))
}

pub async fn list_objects_v2(ctx: &mut RequestCtx<'_>, bucket: &str) -> S3Result<Response<Body>> {
    let enc = Encoder::from_ctx(ctx)?;
    let mut q = base_query(ctx)?;
    let start_after = ctx.query.get("start-after").map(str::to_string);
    let token = ctx.query.get("continuation-token").map(str::to_string);
    let token_key = match &token {
        None => None,
        Some(t) => Some(
            B64.decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    S3Error::invalid_argument("The continuation token provided is incorrect")
                        .with("ArgumentName", "continuation-token")
                })?,
        ),
    };
    // The token wins over start-after, as S3 documents.
    q.start_after = token_key.or_else(|| start_after.clone().filter(|s| !s.is_empty()));
    let fetch_owner = ctx.query.get("fetch-owner") == Some("true");
    q.skip_owner = !fetch_owner;
    let page = ctx.app.store.list_objects(bucket, &q).await?;

    let mut w = XmlWriter::new("ListBucketResult");
    write_header(&mut w, bucket, &q, &enc);
    if let Some(t) = &token {
        w.elem("ContinuationToken", t);
    }
    if page.is_truncated
        && let Some(last) = &page.last
    {
        w.elem("NextContinuationToken", &B64.encode(last));
    }
    w.elem(
        "KeyCount",
        &(page.objects.len() + page.common_prefixes.len()).to_string(),
    )
    .elem("MaxKeys", &q.max_keys.to_string());
    if let Some(d) = &q.delimiter {
        w.elem("Delimiter", &enc.enc(d));
    }
    w.elem(
        "IsTruncated",
        if page.is_truncated { "true" } else { "false" },
    );
    if let Some(sa) = &start_after {
        w.elem("StartAfter", &enc.enc(sa));
    }
    enc.write_type(&mut w);
    let mut owners = if fetch_owner && !page.objects.is_empty() {
        Some(ListedOwners::new(ctx, bucket).await?)
    } else {
        None
    };
    for (key, meta) in &page.objects {
        w.open("Contents").elem("Key", &enc.enc(key));
        write_object_fields(&mut w, meta);
        if let Some(owners) = &mut owners {
            owners.owner(&mut w, &meta.owner_id);
        }
        w.elem("StorageClass", meta.storage_class.name())
            .close("Contents");
    }
    write_common_prefixes(&mut w, &page, &enc);
    Ok(xml_response(StatusCode::OK, w.finish("ListBucketResult")))
}

pub async fn list_object_versions(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    let enc = Encoder::from_ctx(ctx)?;
    let mut q = base_query(ctx)?;
    let key_marker = ctx.query.get("key-marker").unwrap_or("").to_string();
    let version_marker = ctx.query.get("version-id-marker").unwrap_or("").to_string();
    if !version_marker.is_empty() && key_marker.is_empty() {
        return Err(S3Error::invalid_argument(
            "A version-id marker cannot be specified without a key marker.",
        ));
    }
    q.start_after = Some(key_marker.clone()).filter(|m| !m.is_empty());
    let page = ctx.app.store.list_objects(bucket, &q).await?;

    let mut w = XmlWriter::new("ListVersionsResult");
    write_header(&mut w, bucket, &q, &enc);
    w.elem("KeyMarker", &enc.enc(&key_marker))
        .elem("VersionIdMarker", &version_marker);
    if page.is_truncated
        && let Some(last) = &page.last
    {
        w.elem("NextKeyMarker", &enc.enc(last));
        if page.objects.last().is_some_and(|(k, _)| k == last) {
            w.elem("NextVersionIdMarker", "null");
        }
    }
    w.elem("MaxKeys", &q.max_keys.to_string());
    if let Some(d) = &q.delimiter {
        w.elem("Delimiter", &enc.enc(d));
    }
    w.elem(
        "IsTruncated",
        if page.is_truncated { "true" } else { "false" },
    );
    enc.write_type(&mut w);
    let mut owners = ListedOwners::new(ctx, bucket).await?;
    for (key, meta) in &page.objects {
        w.open("Version")
            .elem("Key", &enc.enc(key))
            .elem("VersionId", "null")
            .elem("IsLatest", "true");
        write_object_fields(&mut w, meta);
        owners.owner(&mut w, &meta.owner_id);
        w.elem("StorageClass", meta.storage_class.name())
            .close("Version");
    }
    write_common_prefixes(&mut w, &page, &enc);
    Ok(xml_response(StatusCode::OK, w.finish("ListVersionsResult")))
}
