//! GetObject and HeadObject: conditional requests, ranges, `response-*` overrides and the
//! stored headers, checksums on request.

use axum::body::Body;
use http::{HeaderMap, Response, StatusCode};

use super::error::{ErrorCode, S3Error, S3Result};
use super::{RequestCtx, check_null_version, empty_response, set_header};
use crate::store::local::etag_matches;
use crate::store::{ByteRange, ObjectMeta, StoreError};

/// Outcome of a `Range` header against an object of known size.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: answer the whole object.
    Whole,
    Partial(ByteRange),
    Unsatisfiable,
}

/// Parses `bytes=a-b`, `bytes=a-` and `bytes=-n`. Syntactically invalid or multi-range headers
/// are ignored, as S3 does.
pub fn parse_range(header: &str, size: u64) -> RangeRequest {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (a.is_empty(), b.is_empty()) {
        (true, true) => RangeRequest::Whole,
        (true, false) => match parse(b) {
            None => RangeRequest::Whole,
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if size == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Partial(ByteRange {
                start: size.saturating_sub(n),
                end: size - 1,
            }),
        },
        (false, _) => {
            let Some(start) = parse(a) else {
                return RangeRequest::Whole;
            };
            let end = if b.is_empty() {
                None
            } else {
                match parse(b) {
                    Some(e) if e >= start => Some(e),
                    _ => return RangeRequest::Whole,
                }
            };
            if start >= size {
                return RangeRequest::Unsatisfiable;
            }
            RangeRequest::Partial(ByteRange {
                start,
                end: end.map_or(size - 1, |e| e.min(size - 1)),
            })
        }
    }
}

pub(super) fn http_date(millis: i64) -> String {
    // HTTP dates end at 9999-12-31 23:59:59 (the formatter panics past it): a lifecycle expiry
    // can be that far out.
    const LAST_HTTP_DATE: u64 = 253_402_300_799;
    let secs = ((millis.max(0) / 1000) as u64).min(LAST_HTTP_DATE);
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// Seconds since the epoch of an HTTP date; `None` when it is not one.
pub fn http_date_secs(s: &str) -> Option<i64> {
    let t = httpdate::parse_http_date(s.trim()).ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64)
}

/// What the conditional headers decide before any body is sent.
enum Conditional {
    Proceed,
    NotModified,
}

fn evaluate_conditions(ctx: &RequestCtx<'_>, meta: &ObjectMeta) -> S3Result<Conditional> {
    let modified_secs = meta.last_modified / 1000;
    let if_match = ctx.header("if-match");
    if let Some(m) = if_match {
        if !etag_matches(m, &meta.etag) {
            return Err(S3Error::precondition_failed("If-Match"));
        }
    } else if let Some(since) = ctx.header("if-unmodified-since").and_then(http_date_secs)
        && modified_secs > since
    {
        return Err(S3Error::precondition_failed("If-Unmodified-Since"));
    }
    if let Some(m) = ctx.header("if-none-match") {
        if etag_matches(m, &meta.etag) {
            return Ok(Conditional::NotModified);
        }
    } else if let Some(since) = ctx.header("if-modified-since").and_then(http_date_secs)
        && modified_secs <= since
    {
        return Ok(Conditional::NotModified);
    }
    Ok(Conditional::Proceed)
}

/// Headers describing the object (shared by 200, 206 and 304 answers).
fn object_headers(h: &mut HeaderMap, meta: &ObjectMeta) {
    set_header(h, "etag", &format!("\"{}\"", meta.etag));
    set_header(h, "last-modified", &http_date(meta.last_modified));
    super::encryption::response_headers(h, meta.encryption.as_ref(), false);
    if let Some(s) = &meta.replication_status {
        set_header(h, "x-amz-replication-status", s);
    }
}

/// `response-*` query parameters and the header each overrides.
const OVERRIDES: &[(&str, &str)] = &[
    ("response-content-type", "content-type"),
    ("response-content-language", "content-language"),
    ("response-expires", "expires"),
    ("response-cache-control", "cache-control"),
    ("response-content-disposition", "content-disposition"),
    ("response-content-encoding", "content-encoding"),
];

pub async fn get_object(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
    key: &str,
    head: bool,
) -> S3Result<Response<Body>> {
    check_null_version(&ctx.query)?;
    super::encryption::refuse_write_headers(ctx.headers())?;
    let info = ctx.existing_bucket(bucket).await?;
    // S3 lets only a signed request choose the headers of its answer.
    if ctx.auth_method == super::auth::AuthMethod::Anonymous
        && OVERRIDES
            .iter()
            .any(|(param, _)| ctx.query.get(param).is_some())
    {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "Request specific response headers cannot be used for anonymous GET requests.",
        ));
    }
    // A body removed by a concurrent overwrite is retried against the new metadata.
    for _ in 0..3 {
        let store = &ctx.app.store;
        // A GET takes an inline body in the same read as the metadata; a HEAD needs none.
        let found = if head {
            store.object(bucket, key).await?.map(|m| (m, None))
        } else {
            store.object_for_read(bucket, key).await?
        };
        let Some((meta, inline)) = found else {
            return Err(super::access::missing_object(ctx.app, &ctx.caller(), &info, key).await);
        };
        match answer(ctx, bucket, key, &meta, inline, head).await {
            Err(RetryOrError::Retry) => continue,
            Err(RetryOrError::Error(e)) => return Err(e),
            Ok(r) => return Ok(r),
        }
    }
    Err(S3Error::new(
        ErrorCode::ServiceUnavailable,
        "The object changed while it was being read; please retry",
    ))
}

enum RetryOrError {
    Retry,
    Error(S3Error),
}

impl From<S3Error> for RetryOrError {
    fn from(e: S3Error) -> Self {
        RetryOrError::Error(e)
    }
}

async fn answer(
    ctx: &RequestCtx<'_>,
    bucket: &str,
    key: &str,
    meta: &ObjectMeta,
    inline: Option<bytes::Bytes>,
    head: bool,
) -> Result<Response<Body>, RetryOrError> {
    let cipher = super::encryption::read_cipher(
        ctx.app,
        &ctx.caller(),
        meta.encryption.as_ref(),
        super::encryption::CUSTOMER,
        !head,
    )
    .await?;
    if let Conditional::NotModified = evaluate_conditions(ctx, meta)? {
        let mut r = empty_response(StatusCode::NOT_MODIFIED);
        object_headers(r.headers_mut(), meta);
        return Ok(r);
    }
    let mut range = match ctx.header("range") {
        None => RangeRequest::Whole,
        Some(h) => parse_range(h, meta.size),
    };
    let mut parts_count = None;
    if let Some(pn) = ctx.query.get("partNumber") {
        let parts = meta.body.part_ranges(meta.size);
        let n = pn
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| {
                S3Error::invalid_argument(
                    "Part number must be an integer between 1 and 10000, inclusive",
                )
                .with("ArgumentName", "partNumber")
            })?;
        if ctx.header("range").is_some() {
            return Err(S3Error::new(
                ErrorCode::InvalidRequest,
                "Cannot specify both Range header and partNumber query parameter",
            )
            .into());
        }
        let Some(part) = parts.get(n - 1) else {
            return Err(S3Error::new(
                ErrorCode::InvalidPartNumber,
                "The requested partnumber is not satisfiable",
            )
            .with("PartNumberRequested", pn)
            .with("ActualPartCount", parts.len().to_string())
            .into());
        };
        // PartsCount is reported for objects uploaded in parts only, as S3 does.
        if matches!(meta.body, crate::store::BodyLocation::Multipart(_)) {
            parts_count = Some(parts.len());
        }
        if meta.size > 0 {
            range = RangeRequest::Partial(*part);
        }
    }
    let range = match range {
        RangeRequest::Unsatisfiable => {
            return Err(S3Error::new(
                ErrorCode::InvalidRange,
                "The requested range is not satisfiable",
            )
            .with("RangeRequested", ctx.header("range").unwrap_or(""))
            .with("ActualObjectSize", meta.size.to_string())
            .into());
        }
        RangeRequest::Whole => None,
        RangeRequest::Partial(r) => Some(r),
    };

    let body = if head {
        Body::empty()
    } else {
        let opened = ctx
            .app
            .store
            .open_body_read(meta, inline, range, cipher.as_ref())
            .await;
        match opened {
            Ok(stream) => Body::from_stream(stream),
            Err(StoreError::NoSuchKey) => return Err(RetryOrError::Retry),
            Err(e) => return Err(S3Error::from(e).into()),
        }
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    object_headers(h, meta);
    set_header(h, "accept-ranges", "bytes");
    if meta.header("content-type").is_none() {
        set_header(h, "content-type", "binary/octet-stream");
    }
    for (name, value) in &meta.headers {
        set_header(h, name, value);
    }
    for (name, value) in &meta.user_meta {
        set_header(h, &format!("x-amz-meta-{name}"), value);
    }
    for (param, header) in OVERRIDES {
        if let Some(v) = ctx.query.get(param) {
            set_header(h, header, v);
        }
    }
    if !meta.tags.is_empty() {
        set_header(h, "x-amz-tagging-count", &meta.tags.len().to_string());
    }
    if let Some(n) = parts_count {
        set_header(h, "x-amz-mp-parts-count", &n.to_string());
    }
    super::lifecycle::expiration_header(ctx, h, bucket, key, meta).await;
    let length = match range {
        Some(part) => {
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            set_header(
                r.headers_mut(),
                "content-range",
                &format!("bytes {}-{}/{}", part.start, part.end, meta.size),
            );
            part.end + 1 - part.start
        }
        None => {
            let wants_checksum = ctx
                .header("x-amz-checksum-mode")
                .is_some_and(|m| m.eq_ignore_ascii_case("ENABLED"));
            if wants_checksum && let Some(c) = &meta.checksum {
                set_header(r.headers_mut(), c.algorithm.header(), &c.value);
                set_header(r.headers_mut(), "x-amz-checksum-type", c.kind.name());
            }
            meta.size
        }
    };
    set_header(r.headers_mut(), "content-length", &length.to_string());
    if !head {
        ctx.app
            .metrics
            .bytes_out
            .fetch_add(length, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: u64, b: u64) -> RangeRequest {
        RangeRequest::Partial(ByteRange { start: a, end: b })
    }

    #[test]
    fn ranges_resolve_like_s3() {
        assert_eq!(parse_range("bytes=0-9", 100), p(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), p(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), p(90, 99));
        assert_eq!(parse_range("bytes=-1000", 100), p(0, 99));
        assert_eq!(parse_range("bytes=50-1000", 100), p(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 100), RangeRequest::Whole);
        assert_eq!(parse_range("items=0-1", 100), RangeRequest::Whole);
        assert_eq!(parse_range("bytes=0-1,3-4", 100), RangeRequest::Whole);
    }
}
