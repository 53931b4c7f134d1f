//! Server-side encryption on the wire: the SSE headers of a request (SSE-S3, SSE-KMS, SSE-C and
//! the copy-source SSE-C headers), the headers S3 answers with, and Put/Get/DeleteBucketEncryption.
//! The keys themselves come from `crypto::KeyService`.

use std::collections::BTreeMap;

use axum::body::Body;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use http::{HeaderMap, Response, StatusCode};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::access::Caller;
use super::error::{ErrorCode, S3Error, S3Result};
use super::xml::{self, XmlWriter};
use super::{App, RequestCtx, empty_response, set_header, xml_response};
use crate::checksum::Md5Hasher;
use crate::crypto::{
    CustomerKey, Encryption, KeyRequest, ObjectCipher, PieceSeal, Sealer, SseMode,
};
use crate::policy::Resource;
use crate::store::StagedBody;

/// The SSE-C headers of the object a request reads or writes.
pub const CUSTOMER: &str = "x-amz-server-side-encryption-customer";
/// The SSE-C headers of a copy source.
pub const COPY_SOURCE_CUSTOMER: &str = "x-amz-copy-source-server-side-encryption-customer";
const SSE: &str = "x-amz-server-side-encryption";
const KMS_KEY: &str = "x-amz-server-side-encryption-aws-kms-key-id";
const CONTEXT: &str = "x-amz-server-side-encryption-context";
const BUCKET_KEY: &str = "x-amz-server-side-encryption-bucket-key-enabled";
const CONFIG: &str = "encryption";
const MAX_CONFIG_BODY: u64 = 64 * 1024;

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn bad(message: &str, argument: &str) -> S3Error {
    S3Error::invalid_argument(message).with("ArgumentName", argument.to_string())
}

/// The customer key under `prefix` (`-algorithm`, `-key`, `-key-MD5`), checked as S3 does.
pub fn customer_key(headers: &HeaderMap, prefix: &str) -> S3Result<Option<CustomerKey>> {
    // Most requests carry none: a pass over the names costs less than three lookups.
    if !headers.keys().any(|k| k.as_str().starts_with(prefix)) {
        return Ok(None);
    }
    let alg_name = format!("{prefix}-algorithm");
    let key_name = format!("{prefix}-key");
    let md5_name = format!("{prefix}-key-md5");
    let (alg, key, md5) = (
        header(headers, &alg_name),
        header(headers, &key_name),
        header(headers, &md5_name),
    );
    if alg.is_none() && key.is_none() && md5.is_none() {
        return Ok(None);
    }
    let Some(alg) = alg else {
        return Err(bad(
            "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.",
            &alg_name,
        ));
    };
    if alg != "AES256" {
        return Err(bad(
            "The encryption algorithm specified is not valid.",
            &alg_name,
        ));
    }
    let Some(key) = key else {
        return Err(bad(
            "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.",
            &key_name,
        ));
    };
    let raw = Zeroizing::new(B64.decode(key).unwrap_or_default());
    if raw.len() != 32 {
        return Err(bad(
            "The secret key was invalid for the specified algorithm.",
            &key_name,
        ));
    }
    let actual = B64.encode(Md5Hasher::digest(raw.as_slice()));
    match md5 {
        None => {
            return Err(bad(
                "Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key.",
                &md5_name,
            ));
        }
        Some(given) if given != actual => {
            return Err(bad(
                "The calculated MD5 hash of the key did not match the hash that was provided.",
                &md5_name,
            ));
        }
        Some(_) => {}
    }
    let mut k = Zeroizing::new([0u8; 32]);
    k.copy_from_slice(&raw);
    Ok(Some(CustomerKey {
        key: k,
        md5: actual,
    }))
}

/// What a write asks for in its headers.
#[derive(Default)]
pub struct SseRequest {
    pub mode: Option<SseMode>,
    pub kms_key_id: Option<String>,
    pub context: Option<BTreeMap<String, String>>,
    pub bucket_key: Option<bool>,
    pub customer: Option<CustomerKey>,
    pub dsse: bool,
}

impl SseRequest {
    pub fn is_empty(&self) -> bool {
        self.mode.is_none() && self.customer.is_none()
    }
}

fn sse_algorithm(value: &str, argument: &str) -> S3Result<SseMode> {
    match value {
        "AES256" => Ok(SseMode::S3),
        "aws:kms" | "aws:kms:dsse" => Ok(SseMode::Kms),
        _ => Err(bad(
            "The encryption method specified is not supported",
            argument,
        )),
    }
}

/// The SSE headers of a write (PutObject, CopyObject, CreateMultipartUpload, POST).
pub fn write_request(headers: &HeaderMap) -> S3Result<SseRequest> {
    let mut req = SseRequest {
        customer: customer_key(headers, CUSTOMER)?,
        ..SseRequest::default()
    };
    if let Some(v) = header(headers, SSE) {
        req.mode = Some(sse_algorithm(v, SSE)?);
        req.dsse = v == "aws:kms:dsse";
    }
    if req.customer.is_some() && req.mode.is_some() {
        return Err(bad(
            "Server Side Encryption with Customer provided key is incompatible with the encryption method specified",
            SSE,
        ));
    }
    let kms = req.mode == Some(SseMode::Kms);
    if let Some(id) = header(headers, KMS_KEY) {
        if !kms {
            return Err(bad(
                "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms",
                KMS_KEY,
            ));
        }
        if id.is_empty() || id.len() > 2048 {
            return Err(bad("KMS key id is not valid", KMS_KEY));
        }
        req.kms_key_id = Some(id.to_string());
    }
    if let Some(v) = header(headers, CONTEXT) {
        if !kms {
            return Err(bad(
                "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms",
                CONTEXT,
            ));
        }
        let context = B64
            .decode(v)
            .ok()
            .and_then(|raw| serde_json::from_slice::<BTreeMap<String, String>>(&raw).ok())
            .filter(|c| c.len() <= 64)
            .ok_or_else(|| bad("The encryption context is not valid", CONTEXT))?;
        req.context = Some(context);
    }
    if let Some(v) = header(headers, BUCKET_KEY) {
        req.bucket_key = Some(match v.to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => return Err(bad("Invalid value for bucket key enabled", BUCKET_KEY)),
        });
    }
    Ok(req)
}

/// A bucket's default encryption, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BucketDefault {
    pub algorithm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub bucket_key: bool,
}

/// A bucket's default encryption; a stored value that does not parse fails the request rather
/// than letting writes go unencrypted.
pub async fn bucket_default(app: &App, bucket: &str) -> S3Result<Option<BucketDefault>> {
    super::json_bucket_config(app, bucket, CONFIG).await
}

/// The data key of a new object (or upload) in `bucket`: from the request's headers, else the
/// bucket's default encryption, else `fallback` (a copy of an encrypted source is SSE-S3, so
/// no plaintext of an encrypted object reaches the disk); `None` when nothing asks for it.
pub async fn new_object_key(
    app: &App,
    caller: &Caller<'_>,
    bucket: &str,
    key: &str,
    fallback: Option<SseMode>,
) -> S3Result<Option<(Encryption, ObjectCipher)>> {
    let mut req = write_request(caller.headers)?;
    if req.is_empty() {
        if let Some(d) = bucket_default(app, bucket).await? {
            req.mode = Some(sse_algorithm(&d.algorithm, SSE)?);
            req.dsse = d.algorithm == "aws:kms:dsse";
            req.kms_key_id = d.kms_key_id;
            req.bucket_key = req.bucket_key.or(Some(d.bucket_key));
        } else {
            req.mode = fallback;
        }
    }
    let mode = match (&req.customer, req.mode) {
        (Some(_), _) => SseMode::Customer,
        (None, Some(m)) => m,
        (None, None) => return Ok(None),
    };
    if mode == SseMode::Kms {
        let arn = app.keys.check_kms_key(req.kms_key_id.as_deref()).await?;
        authorize_key(app, caller, "kms:GenerateDataKey", &arn).await?;
        req.kms_key_id = Some(arn);
    }
    let made = app
        .keys
        .new_key(&KeyRequest {
            mode,
            kms_key_id: req.kms_key_id.as_deref(),
            context: req.context,
            customer: req.customer.as_ref(),
            bucket_key: req.bucket_key.unwrap_or(false) && mode == SseMode::Kms,
            dsse: req.dsse,
            bucket,
            key,
        })
        .await?;
    Ok(Some(made))
}

/// A sealer for a new piece (a single PUT is part 0) under `cipher`.
pub fn sealer(cipher: &ObjectCipher, part_number: u32) -> Sealer {
    Sealer::new(cipher.clone(), PieceSeal::fresh(part_number))
}

/// SSE-KMS and SSE-C ETags are not the MD5 of the plaintext (as on S3): the staged MD5 is
/// replaced by one that also covers the object's binding and the piece's nonce.
pub fn opaque_etag(staged: &mut StagedBody, enc: &Encryption) {
    if enc.mode == SseMode::S3 {
        return;
    }
    let mut h = Md5Hasher::default();
    h.update(&staged.md5);
    h.update(enc.binding.as_bytes());
    if let Some(p) = staged.piece {
        h.update(&p.nonce_prefix);
        h.update(&p.part_number.to_be_bytes());
    }
    staged.md5 = h.finish();
}

/// Checks the SSE-C headers under `prefix` against a stored object's encryption and returns
/// its data key when `need_key` (a HEAD of an SSE-S3/KMS object needs none).
pub async fn read_cipher(
    app: &App,
    caller: &Caller<'_>,
    enc: Option<&Encryption>,
    prefix: &str,
    need_key: bool,
) -> S3Result<Option<ObjectCipher>> {
    let customer = customer_key(caller.headers, prefix)?;
    let not_applicable = || {
        S3Error::new(
            ErrorCode::InvalidRequest,
            "The encryption parameters are not applicable to this object.",
        )
    };
    match (enc, &customer) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(not_applicable()),
        (Some(e), None) if e.mode == SseMode::Customer => Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.",
        )),
        (Some(e), Some(_)) if e.mode != SseMode::Customer => Err(not_applicable()),
        (Some(e), c) => {
            if !need_key && e.mode != SseMode::Customer {
                return Ok(None);
            }
            if e.mode == SseMode::Kms {
                let arn = e.kms_key_id.as_deref().unwrap_or("");
                authorize_key(app, caller, "kms:Decrypt", arn).await?;
            }
            Ok(Some(app.keys.open(e, c.as_ref()).await?))
        }
    }
}

/// The data key of a copy source, with its `x-amz-copy-source-…-customer-*` headers checked.
pub async fn copy_source_cipher(
    ctx: &RequestCtx<'_>,
    src: &crate::store::ObjectMeta,
) -> S3Result<Option<ObjectCipher>> {
    read_cipher(
        ctx.app,
        &ctx.caller(),
        src.encryption.as_ref(),
        COPY_SOURCE_CUSTOMER,
        true,
    )
    .await
}

/// SSE-KMS uses a key only when Cedar allows the caller `action` (`kms:GenerateDataKey` to
/// write, `kms:Decrypt` to read) on it, as AWS requires both the S3 and the KMS permission.
async fn authorize_key(app: &App, caller: &Caller<'_>, action: &str, arn: &str) -> S3Result<()> {
    let context = caller.context(None);
    super::access::decide(app, caller.principal, action, Resource::Key(arn), &context).await
}

/// Refuses SSE-S3/KMS headers on a read, as S3 does (only SSE-C headers belong there).
pub fn refuse_write_headers(headers: &HeaderMap) -> S3Result<()> {
    for name in [SSE, KMS_KEY, CONTEXT] {
        if headers.contains_key(name) {
            return Err(bad(
                "x-amz-server-side-encryption header is not supported for this operation.",
                name,
            ));
        }
    }
    Ok(())
}

/// The SSE headers S3 answers with for an object (or upload) encrypted as `enc`; the KMS
/// context only where S3 returns it (writes).
pub fn response_headers(h: &mut HeaderMap, enc: Option<&Encryption>, with_context: bool) {
    let Some(enc) = enc else {
        return;
    };
    if let Some(v) = enc.header_value() {
        set_header(h, SSE, v);
    }
    match enc.mode {
        SseMode::Kms => {
            if let Some(k) = &enc.kms_key_id {
                set_header(h, KMS_KEY, k);
            }
            if with_context && let Some(c) = &enc.context {
                set_header(h, CONTEXT, &B64.encode(c));
            }
            if enc.bucket_key {
                set_header(h, BUCKET_KEY, "true");
            }
        }
        SseMode::Customer => {
            set_header(h, &format!("{CUSTOMER}-algorithm"), "AES256");
            if let Some(m) = &enc.customer_key_md5 {
                set_header(h, &format!("{CUSTOMER}-key-md5"), m);
            }
        }
        SseMode::S3 => {}
    }
}

#[derive(Debug, Deserialize)]
struct ConfigDoc {
    #[serde(rename = "Rule", default)]
    rules: Vec<RuleDoc>,
}

#[derive(Debug, Deserialize)]
struct RuleDoc {
    #[serde(rename = "ApplyServerSideEncryptionByDefault")]
    default: Option<DefaultDoc>,
    #[serde(rename = "BucketKeyEnabled")]
    bucket_key: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct DefaultDoc {
    #[serde(rename = "SSEAlgorithm")]
    algorithm: String,
    #[serde(rename = "KMSMasterKeyID")]
    kms_key_id: Option<String>,
}

pub async fn put_bucket_encryption(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    ctx.existing_bucket(bucket).await?;
    let body = ctx.read_small_body(MAX_CONFIG_BODY).await?;
    let doc: ConfigDoc = xml::parse(&body, "ServerSideEncryptionConfiguration")?;
    let [rule] = doc.rules.as_slice() else {
        return Err(S3Error::malformed_xml());
    };
    let Some(d) = &rule.default else {
        return Err(S3Error::malformed_xml());
    };
    let mode =
        sse_algorithm(d.algorithm.trim(), "SSEAlgorithm").map_err(|_| S3Error::malformed_xml())?;
    let kms_key_id = d
        .kms_key_id
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string);
    if kms_key_id.is_some() && mode != SseMode::Kms {
        return Err(S3Error::invalid_argument(
            "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms or aws:kms:dsse",
        )
        .with("ArgumentName", "ApplyServerSideEncryptionByDefault"));
    }
    if mode == SseMode::Kms {
        // The key must exist now, not on the first write.
        ctx.app.keys.check_kms_key(kms_key_id.as_deref()).await?;
    }
    let stored = BucketDefault {
        algorithm: d.algorithm.trim().to_string(),
        kms_key_id,
        bucket_key: rule.bucket_key.unwrap_or(false),
    };
    let raw = serde_json::to_vec(&stored).map_err(S3Error::internal)?;
    ctx.set_bucket_config(bucket, CONFIG, Some(raw)).await?;
    Ok(empty_response(StatusCode::OK))
}

pub async fn get_bucket_encryption(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    ctx.existing_bucket(bucket).await?;
    let Some(d) = bucket_default(ctx.app, bucket).await? else {
        return Err(S3Error::new(
            ErrorCode::ServerSideEncryptionConfigurationNotFoundError,
            "The server side encryption configuration was not found",
        )
        .with("BucketName", bucket));
    };
    let root = "ServerSideEncryptionConfiguration";
    let mut w = XmlWriter::new(root);
    w.open("Rule")
        .open("ApplyServerSideEncryptionByDefault")
        .elem("SSEAlgorithm", &d.algorithm)
        .opt("KMSMasterKeyID", d.kms_key_id.as_deref())
        .close("ApplyServerSideEncryptionByDefault")
        .elem(
            "BucketKeyEnabled",
            if d.bucket_key { "true" } else { "false" },
        )
        .close("Rule");
    Ok(xml_response(StatusCode::OK, w.finish(root)))
}

pub async fn delete_bucket_encryption(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
) -> S3Result<Response<Body>> {
    ctx.set_bucket_config(bucket, CONFIG, None).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}
