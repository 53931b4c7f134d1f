//! GetObjectAttributes (`GET /bucket/key?attributes`): what HeadObject and ListParts tell of an
//! object, in one XML answer holding only the attributes `x-amz-object-attributes` names.

use axum::body::Body;
use http::{Response, StatusCode};

use super::copy::checksum_element;
use super::error::{S3Error, S3Result};
use super::xml::XmlWriter;
use super::{RequestCtx, set_header, xml_response};
use crate::store::{BodyLocation, PartBody};

/// Parts listed when `x-amz-max-parts` does not say, and the most listed in one answer.
const MAX_PARTS: u32 = 1000;

/// The attributes a request asks for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Wanted {
    etag: bool,
    checksum: bool,
    parts: bool,
    storage_class: bool,
    size: bool,
}

/// Reads `x-amz-object-attributes`: one or more header lines of comma-separated names, at
/// least one name, each one S3 knows.
fn wanted(ctx: &RequestCtx<'_>) -> S3Result<Wanted> {
    let invalid = |value: &str| {
        S3Error::invalid_argument("Invalid attribute name specified.")
            .with("ArgumentName", "x-amz-object-attributes")
            .with("ArgumentValue", value)
    };
    let mut w = Wanted::default();
    let mut any = false;
    for line in ctx.headers().get_all("x-amz-object-attributes") {
        let line = line.to_str().map_err(|_| invalid(""))?;
        for name in line.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let flag = match name {
                "ETag" => &mut w.etag,
                "Checksum" => &mut w.checksum,
                "ObjectParts" => &mut w.parts,
                "StorageClass" => &mut w.storage_class,
                "ObjectSize" => &mut w.size,
                other => return Err(invalid(other)),
            };
            *flag = true;
            any = true;
        }
    }
    if !any {
        return Err(invalid(""));
    }
    Ok(w)
}

/// A non-negative integer header, `default` when absent.
fn number_header(ctx: &RequestCtx<'_>, name: &str, default: u32) -> S3Result<u32> {
    match ctx.header(name) {
        None => Ok(default),
        Some(v) => v.trim().parse::<u32>().map_err(|_| {
            S3Error::invalid_argument(format!(
                "Provided {name} not an integer or within integer range"
            ))
            .with("ArgumentName", name.to_string())
            .with("ArgumentValue", v)
        }),
    }
}

pub async fn get_object_attributes(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
    key: &str,
) -> S3Result<Response<Body>> {
    super::check_null_version(&ctx.query)?;
    let wanted = wanted(ctx)?;
    let max_parts = number_header(ctx, "x-amz-max-parts", MAX_PARTS)?.min(MAX_PARTS);
    let marker = number_header(ctx, "x-amz-part-number-marker", 0)?;
    let info = ctx.existing_bucket(bucket).await?;
    let Some(meta) = ctx.app.store.object(bucket, key).await? else {
        return Err(super::access::missing_object(ctx.app, &ctx.caller(), &info, key).await);
    };
    // An SSE-C object tells its attributes only to a caller holding its key, as a HEAD does.
    super::encryption::read_cipher(
        ctx.app,
        &ctx.caller(),
        meta.encryption.as_ref(),
        super::encryption::CUSTOMER,
        false,
    )
    .await?;

    let mut w = XmlWriter::new("GetObjectAttributesResponse");
    if wanted.etag {
        w.elem("ETag", &meta.etag);
    }
    if wanted.checksum
        && let Some(c) = &meta.checksum
    {
        w.open("Checksum")
            .elem(&checksum_element(c.algorithm), &c.value)
            .elem("ChecksumType", c.kind.name())
            .close("Checksum");
    }
    if wanted.parts
        && let BodyLocation::Multipart(parts) = &meta.body
    {
        write_parts(&mut w, parts, marker, max_parts);
    }
    if wanted.storage_class {
        w.elem(
            "StorageClass",
            crate::store::StorageClass::of(&meta.headers).name(),
        );
    }
    if wanted.size {
        w.open("ObjectSize").number(meta.size).close("ObjectSize");
    }
    let mut r = xml_response(StatusCode::OK, w.finish("GetObjectAttributesResponse"));
    set_header(
        r.headers_mut(),
        "last-modified",
        &super::get::http_date(meta.last_modified),
    );
    Ok(r)
}

/// `ObjectParts`: the part count, then up to `max_parts` parts numbered above `marker`, each
/// with its size and, when the upload asked for one, its checksum. (S3 lists parts only for
/// objects with additional checksums; listing them always gives every client the sizes.)
fn write_parts(w: &mut XmlWriter, parts: &[PartBody], marker: u32, max_parts: u32) {
    let after = usize::try_from(marker).unwrap_or(usize::MAX);
    let page: Vec<(usize, &PartBody)> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| (i + 1, p))
        .skip(after)
        .take(max_parts as usize)
        .collect();
    let truncated = after.saturating_add(page.len()) < parts.len();
    w.open("ObjectParts")
        .open("PartsCount")
        .number(parts.len() as u64)
        .close("PartsCount")
        .open("PartNumberMarker")
        .number(u64::from(marker))
        .close("PartNumberMarker");
    if truncated && let Some((last, _)) = page.last() {
        w.open("NextPartNumberMarker")
            .number(*last as u64)
            .close("NextPartNumberMarker");
    }
    w.open("MaxParts")
        .number(u64::from(max_parts))
        .close("MaxParts")
        .elem("IsTruncated", if truncated { "true" } else { "false" });
    for (number, part) in page {
        w.open("Part")
            .open("PartNumber")
            .number(number as u64)
            .close("PartNumber")
            .open("Size")
            .number(part.size)
            .close("Size");
        if let Some(c) = &part.checksum {
            w.elem(&checksum_element(c.algorithm), &c.value);
        }
        w.close("Part");
    }
    w.close("ObjectParts");
}
