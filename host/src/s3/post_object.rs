//! Browser POST uploads (POST Object): a multipart/form-data body whose fields carry a policy
//! document signed with SigV4 (or SigV2). The policy's conditions must cover every form field
//! (except those AWS exempts); the file streams into the store like a PUT.

use axum::body::Body;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures::StreamExt;
use http::{Response, StatusCode};
use serde_json::Value;

use super::error::{ErrorCode, S3Error, S3Result};
use super::sigv4::{self, Credential, SigningKey};
use super::xml::XmlWriter;
use super::{App, empty_response, set_header, xml_response};
use crate::auth::Principal;
use crate::checksum::ChecksumAlgorithm;
use crate::store::{BodyStream, NewObject, WriteCondition};

/// Form fields every POST may carry without a policy condition. A checksum field
/// (`x-amz-checksum-<algorithm>`) only tests the file, and is taken without one, as ceph's
/// s3-tests expect.
fn exempt(field: &str) -> bool {
    matches!(
        field,
        "x-amz-signature" | "signature" | "file" | "policy" | "awsaccesskeyid"
    ) || field.starts_with("x-ignore-")
        || ChecksumAlgorithm::ALL.iter().any(|a| a.header() == field)
}

/// Largest form field other than the file.
const MAX_FIELD_BYTES: u64 = 64 * 1024;

fn policy_failed(message: &str) -> S3Error {
    S3Error::new(
        ErrorCode::AccessDenied,
        format!("Invalid according to Policy: {message}"),
    )
}

/// A parsed policy document: its expiry and conditions.
struct Policy {
    conditions: Vec<Condition>,
    length_range: Option<(u64, u64)>,
}

enum Condition {
    Eq(String, String),
    StartsWith(String, String),
}

impl Condition {
    fn field(&self) -> &str {
        match self {
            Condition::Eq(f, _) | Condition::StartsWith(f, _) => f,
        }
    }
}

fn parse_policy(b64: &str) -> S3Result<Policy> {
    let bad = || {
        S3Error::invalid_argument("Invalid Policy: Invalid JSON.").with("ArgumentName", "policy")
    };
    let raw = B64.decode(b64.trim()).map_err(|_| bad())?;
    let doc: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let expiration = doc
        .get("expiration")
        .and_then(Value::as_str)
        .ok_or_else(|| S3Error::invalid_argument("Invalid Policy: Policy missing expiration."))?;
    // ISO 8601 in GMT only (`2030-01-01T00:00:00Z`, optional fraction), as S3 requires.
    let expires = chrono::NaiveDateTime::parse_from_str(expiration, "%Y-%m-%dT%H:%M:%S%.fZ")
        .map_err(|_| S3Error::invalid_argument("Invalid Policy: Invalid 'expiration' value."))?
        .and_utc();
    if expires < chrono::Utc::now() {
        return Err(policy_failed("Policy expired."));
    }
    let mut conditions = Vec::new();
    let mut length_range = None;
    let list = doc
        .get("conditions")
        .and_then(Value::as_array)
        .ok_or_else(|| S3Error::invalid_argument("Invalid Policy: Policy missing conditions."))?;
    for c in list {
        match c {
            Value::Object(map) => {
                if map.is_empty() {
                    return Err(bad());
                }
                for (k, v) in map {
                    let v = v.as_str().ok_or_else(bad)?;
                    conditions.push(Condition::Eq(k.to_ascii_lowercase(), v.to_string()));
                }
            }
            Value::Array(items) => {
                let op = items.first().and_then(Value::as_str).unwrap_or("");
                match op.to_ascii_lowercase().as_str() {
                    "content-length-range" => {
                        let n = |i: usize| {
                            items.get(i).and_then(|v| {
                                v.as_u64()
                                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                            })
                        };
                        let (Some(min), Some(max)) = (n(1), n(2)) else {
                            return Err(bad());
                        };
                        length_range = Some((min, max));
                    }
                    "eq" | "starts-with" => {
                        let field = items
                            .get(1)
                            .and_then(Value::as_str)
                            .and_then(|f| f.strip_prefix('$'))
                            .ok_or_else(bad)?
                            .to_ascii_lowercase();
                        let value = items.get(2).and_then(Value::as_str).ok_or_else(bad)?;
                        conditions.push(if op.eq_ignore_ascii_case("eq") {
                            Condition::Eq(field, value.to_string())
                        } else {
                            Condition::StartsWith(field, value.to_string())
                        });
                    }
                    _ => return Err(bad()),
                }
            }
            _ => return Err(bad()),
        }
    }
    Ok(Policy {
        conditions,
        length_range,
    })
}

/// Form fields as (lower-case name, value), in order.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn check_conditions(policy: &Policy, fields: &Fields, bucket: &str) -> S3Result<()> {
    for c in &policy.conditions {
        let actual = if c.field() == "bucket" {
            Some(bucket)
        } else {
            fields.get(c.field())
        };
        let ok = match (c, actual) {
            (Condition::Eq(_, want), Some(v)) => v == want,
            (Condition::StartsWith(f, prefix), Some(v)) if f == "content-type" => v
                .split(',')
                .all(|part| part.trim().starts_with(prefix.as_str())),
            (Condition::StartsWith(_, prefix), Some(v)) => v.starts_with(prefix.as_str()),
            (Condition::StartsWith(_, prefix), None) => prefix.is_empty(),
            (Condition::Eq(_, _), None) => false,
        };
        if !ok {
            return Err(policy_failed(&format!(
                "Policy Condition failed: [\"{}\", \"${}\", \"{}\"]",
                match c {
                    Condition::Eq(..) => "eq",
                    Condition::StartsWith(..) => "starts-with",
                },
                c.field(),
                match c {
                    Condition::Eq(_, v) | Condition::StartsWith(_, v) => v,
                }
            )));
        }
    }
    for (name, _) in &fields.0 {
        if !exempt(name) && !policy.conditions.iter().any(|c| c.field() == name) {
            return Err(policy_failed(&format!("Extra input fields: {name}")));
        }
    }
    Ok(())
}

/// The fields that sign a form (SigV4, then SigV2).
const SIGNATURE_FIELDS: [&str; 5] = [
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-algorithm",
    "awsaccesskeyid",
    "signature",
];

/// Verifies the policy signature and returns who signed it.
async fn authenticate(app: &App, fields: &Fields, policy_b64: &str) -> S3Result<Principal> {
    let mismatch = || {
        S3Error::new(
            ErrorCode::SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        )
    };
    if let Some(sig) = fields.get("x-amz-signature") {
        if fields.get("x-amz-algorithm") != Some(sigv4::ALGORITHM) {
            return Err(S3Error::invalid_argument(
                "Only AWS4-HMAC-SHA256 is supported for x-amz-algorithm",
            ));
        }
        let cred = fields
            .get("x-amz-credential")
            .and_then(Credential::parse)
            .ok_or_else(|| S3Error::invalid_argument("Invalid x-amz-credential"))?;
        if cred.region != app.config.region || cred.service != "s3" {
            return Err(S3Error::new(
                ErrorCode::AuthorizationQueryParametersError,
                format!(
                    "the region '{}' is wrong; expecting '{}'",
                    cred.region, app.config.region
                ),
            ));
        }
        let c = super::auth::lookup(
            app.sources(),
            &cred.access_key,
            fields.get("x-amz-security-token"),
        )
        .await?;
        let expected = SigningKey::derive(&c.secret, &cred).sign(policy_b64);
        if !sigv4::signatures_equal(&expected, &sig.to_ascii_lowercase()) {
            return Err(mismatch());
        }
        return Ok(c.principal);
    }
    let missing = |name: &str| {
        S3Error::invalid_argument(format!("Bucket POST must contain a field named '{name}'."))
            .with("ArgumentName", name.to_string())
    };
    match (fields.get("awsaccesskeyid"), fields.get("signature")) {
        (Some(_), None) => return Err(missing("Signature")),
        (None, Some(_)) => return Err(missing("AWSAccessKeyId")),
        _ => {}
    }
    if fields.get("x-amz-credential").is_some() || fields.get("x-amz-algorithm").is_some() {
        return Err(missing("X-Amz-Signature"));
    }
    if let (Some(ak), Some(sig)) = (fields.get("awsaccesskeyid"), fields.get("signature")) {
        let c = super::auth::lookup(app.sources(), ak, fields.get("x-amz-security-token")).await?;
        let expected = super::sigv2::sign(&c.secret, policy_b64);
        if !sigv4::signatures_equal(&expected, sig) {
            return Err(mismatch());
        }
        return Ok(c.principal);
    }
    Err(S3Error::access_denied())
}

pub async fn post_object(
    app: &App,
    bucket: &str,
    content_type: &str,
    body: Body,
    origin: &super::Origin,
    source_ip: Option<std::net::IpAddr>,
) -> S3Result<Response<Body>> {
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        S3Error::new(
            ErrorCode::InvalidRequest,
            "POST requires a multipart/form-data body with a boundary",
        )
    })?;
    let stream = super::body::raw_stream(body);
    let mut form = multer::Multipart::with_constraints(
        stream,
        boundary,
        multer::Constraints::new().size_limit(
            // Only the file may be large; every other field is read into memory before the
            // signature is checked, so it stays small (AWS caps them at about 20 KB).
            multer::SizeLimit::new()
                .per_field(MAX_FIELD_BYTES)
                .for_field("file", app.config.post_max_size.saturating_add(1)),
        ),
    );
    let mut fields = Fields(Vec::new());
    let mut file = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|_| S3Error::malformed_post())?
    {
        let name = field.name().unwrap_or("").to_ascii_lowercase();
        if name == "file" {
            file = Some(field);
            break;
        }
        if fields.0.len() > 100 {
            return Err(S3Error::malformed_post());
        }
        let value = field.text().await.map_err(|_| S3Error::malformed_post())?;
        fields.0.push((name, value));
    }
    let Some(file) = file else {
        return Err(S3Error::new(
            ErrorCode::InvalidArgument,
            "POST requires exactly one file upload per request.",
        )
        .with("ArgumentName", "file"));
    };
    // A form with no policy and no signature is anonymous, as on S3: it gets no further than
    // what anonymous writes may do in the bucket (nothing, unless a bucket policy or ACL opens
    // it).
    let policy_b64 = fields.get("policy").map(str::to_string);
    let principal = match &policy_b64 {
        Some(policy_b64) => authenticate(app, &fields, policy_b64).await?,
        None if SIGNATURE_FIELDS.iter().all(|f| fields.get(f).is_none()) => Principal::Anonymous,
        None => {
            return Err(S3Error::invalid_argument(
                "Bucket POST must contain a field named 'policy'.",
            )
            .with("ArgumentName", "policy"));
        }
    };
    let filename = file.file_name().unwrap_or("").to_string();
    let key = fields
        .get("key")
        .ok_or_else(|| {
            S3Error::invalid_argument("Bucket POST must contain a field named 'key'.")
                .with("ArgumentName", "key")
        })?
        .replace("${filename}", &filename);
    // The policy's conditions on `$key` see the key as it will be stored, `${filename}`
    // replaced, as on S3 (so such a key can only be held to a prefix).
    if let Some(slot) = fields.0.iter_mut().find(|(name, _)| name == "key") {
        slot.1.clone_from(&key);
    }
    if key.is_empty() || key.contains('\0') {
        return Err(
            S3Error::invalid_argument("User key must have a length greater than 0.")
                .with("ArgumentName", "key"),
        );
    }
    if key.len() > super::router::MAX_KEY_LEN {
        return Err(S3Error::new(
            ErrorCode::KeyTooLongError,
            "Your key is too long",
        ));
    }
    // Authorized on the key as it will be stored (after `${filename}`).
    let bucket_info = app.store.bucket(bucket).await?;
    let put = super::router::Endpoint::PutObject {
        bucket: bucket.to_string(),
        key: key.clone(),
    };
    // Condition keys see the form's fields as the headers they stand for.
    let mut condition_headers = http::HeaderMap::new();
    for (field, header) in [
        ("acl", "x-amz-acl"),
        (
            "x-amz-server-side-encryption",
            "x-amz-server-side-encryption",
        ),
        (
            "x-amz-server-side-encryption-aws-kms-key-id",
            "x-amz-server-side-encryption-aws-kms-key-id",
        ),
        ("x-amz-storage-class", "x-amz-storage-class"),
        (
            "x-amz-server-side-encryption-context",
            "x-amz-server-side-encryption-context",
        ),
        (
            "x-amz-server-side-encryption-bucket-key-enabled",
            "x-amz-server-side-encryption-bucket-key-enabled",
        ),
        (
            "x-amz-server-side-encryption-customer-algorithm",
            "x-amz-server-side-encryption-customer-algorithm",
        ),
        (
            "x-amz-server-side-encryption-customer-key",
            "x-amz-server-side-encryption-customer-key",
        ),
        (
            "x-amz-server-side-encryption-customer-key-md5",
            "x-amz-server-side-encryption-customer-key-md5",
        ),
    ] {
        if let Some(v) = fields
            .get(field)
            .and_then(|v| http::HeaderValue::from_str(v).ok())
        {
            condition_headers.insert(header, v);
        }
    }
    let caller = super::access::Caller {
        principal: &principal,
        method: if principal == crate::auth::Principal::Anonymous {
            super::auth::AuthMethod::Anonymous
        } else {
            super::auth::AuthMethod::Presigned
        },
        source_ip,
        secure: origin.secure,
        headers: &condition_headers,
        query: None,
    };
    super::access::authorize(app, &caller, &put, bucket_info.as_ref()).await?;
    let writer = principal.id().unwrap_or("");
    let super::acl::NewObjectAcl {
        owner: owner_id,
        acl,
    } = match &bucket_info {
        Some(info) => super::acl::for_new_object(app, &condition_headers, info, writer).await?,
        None => super::acl::NewObjectAcl::private_to(writer),
    };
    let policy = policy_b64.as_deref().map(parse_policy).transpose()?;
    if let Some(policy) = &policy {
        check_conditions(policy, &fields, bucket)?;
    }
    // Form fields name the headers they stand for, so the PUT's refusal applies as is.
    super::put::refuse_object_lock_in(|name| fields.get(name).is_some())?;
    let class = super::put::storage_class(fields.get(crate::store::StorageClass::HEADER))?;
    // The `tagging` field is a `<Tagging>` document, as PutObjectTagging's body.
    let tags = match fields.get("tagging") {
        Some(doc) => {
            super::tagging::from_document(doc.as_bytes(), super::tagging::MAX_OBJECT_TAGS)?
        }
        None => Vec::new(),
    };
    if super::carries_secret_insecurely(
        &condition_headers,
        origin.secure,
        source_ip,
        app.config.allow_insecure_secrets,
    ) {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.",
        ));
    }
    // A checksum field is read and checked as a PUT's header is.
    let checksum = super::put::given_checksum(|name| fields.get(name))?;
    let sse = super::encryption::new_object_key(app, &caller, bucket, &key, None).await?;
    let (min, max) = policy
        .and_then(|p| p.length_range)
        .unwrap_or((0, app.config.post_max_size));
    let max = max.min(app.config.post_max_size);
    let body: BodyStream = Box::pin(file.map(|r| r.map_err(std::io::Error::other)));
    let sealer = sse.as_ref().map(|(_, c)| super::encryption::sealer(c, 0));
    let mut staged = app
        .store
        .stage_body(body, checksum.as_ref().map(|(a, _)| *a), max, false, sealer)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::TooLarge(_) => S3Error::new(
                ErrorCode::EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed size",
            )
            .with("MaxSizeAllowed", max.to_string()),
            other => other.into(),
        })?;
    if staged.size < min {
        return Err(S3Error::new(
            ErrorCode::EntityTooSmall,
            "Your proposed upload is smaller than the minimum allowed size",
        )
        .with("MinSizeAllowed", min.to_string()));
    }
    if let Some((alg, given)) = &checksum
        && *given != staged.checksum.value
    {
        return Err(super::put::checksum_mismatch(*alg));
    }
    if let Some((enc, _)) = &sse {
        super::encryption::opaque_etag(&mut staged, enc);
    }
    let mut headers = Vec::new();
    for name in super::put::STORED_HEADERS {
        if let Some(v) = fields.get(name) {
            headers.push((name.to_string(), v.to_string()));
        }
    }
    class.unwrap_or_default().store_in(&mut headers);
    let user_meta: Vec<(String, String)> = fields
        .0
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("x-amz-meta-")
                .map(|m| (m.to_string(), v.clone()))
        })
        .collect();
    let meta_size: usize = user_meta.iter().map(|(k, v)| k.len() + v.len()).sum();
    if meta_size > super::put::MAX_USER_METADATA {
        return Err(S3Error::new(
            ErrorCode::MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size.",
        ));
    }
    let meta = app
        .store
        .commit_object(
            bucket,
            &key,
            NewObject {
                owner_id,
                headers,
                user_meta,
                tags,
                acl,
                encryption: sse.map(|(e, _)| e),
            },
            staged,
            WriteCondition::default(),
        )
        .await?;
    let etag = format!("\"{}\"", meta.etag);
    let location = origin.object_url(bucket, &key);
    if let Some(redirect) = fields
        .get("success_action_redirect")
        .filter(|r| !r.is_empty())
    {
        let sep = if redirect.contains('?') { '&' } else { '?' };
        let target = format!(
            "{redirect}{sep}bucket={}&key={}&etag={}",
            sigv4::uri_encode(bucket.as_bytes(), false),
            sigv4::uri_encode(key.as_bytes(), false),
            sigv4::uri_encode(etag.as_bytes(), false)
        );
        let mut r = empty_response(StatusCode::SEE_OTHER);
        set_header(r.headers_mut(), "location", &target);
        set_header(r.headers_mut(), "etag", &etag);
        return Ok(r);
    }
    let mut r = match fields.get("success_action_status") {
        Some("200") => empty_response(StatusCode::OK),
        Some("201") => {
            let mut w = XmlWriter::bare("PostResponse");
            w.elem("Location", &location)
                .elem("Bucket", bucket)
                .elem("Key", &key)
                .elem("ETag", &etag);
            xml_response(StatusCode::CREATED, w.finish("PostResponse"))
        }
        _ => empty_response(StatusCode::NO_CONTENT),
    };
    set_header(r.headers_mut(), "etag", &etag);
    set_header(r.headers_mut(), "location", &location);
    super::encryption::response_headers(r.headers_mut(), meta.encryption.as_ref(), true);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(conditions: &str) -> String {
        let exp = (chrono::Utc::now() + chrono::Duration::hours(1))
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        B64.encode(format!(
            "{{\"expiration\":\"{exp}\",\"conditions\":{conditions}}}"
        ))
    }

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn conditions_cover_fields() {
        let p = parse_policy(&policy(
            r#"[{"bucket":"b"},["starts-with","$key","up/"],["content-length-range",1,10]]"#,
        ))
        .unwrap();
        assert_eq!(p.length_range, Some((1, 10)));
        assert!(check_conditions(&p, &fields(&[("key", "up/a"), ("policy", "x")]), "b").is_ok());
        assert!(check_conditions(&p, &fields(&[("key", "down/a")]), "b").is_err());
        assert!(check_conditions(&p, &fields(&[("key", "up/a")]), "other").is_err());
        // A field no condition covers is refused.
        assert!(
            check_conditions(&p, &fields(&[("key", "up/a"), ("x-amz-meta-a", "1")]), "b").is_err()
        );
        assert!(
            check_conditions(&p, &fields(&[("key", "up/a"), ("x-ignore-me", "1")]), "b").is_ok()
        );
    }

    #[test]
    fn expired_policy_is_refused() {
        let doc = B64.encode(r#"{"expiration":"2000-01-01T00:00:00Z","conditions":[]}"#);
        assert!(parse_policy(&doc).is_err());
    }
}
