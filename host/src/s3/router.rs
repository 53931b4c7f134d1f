//! Routing: from method, host, path and query to one [`Endpoint`], a variant per S3 operation,
//! each naming the action it needs. Path style and virtual-hosted style (configured domains).

use http::Method;

use super::error::{ErrorCode, S3Error, S3Result};

/// Query parameters, decoded, in request order.
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

fn decode_component(s: &str) -> S3Result<String> {
    let plus_as_space = s.replace('+', " ");
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(&plus_as_space).collect();
    String::from_utf8(bytes).map_err(|_| {
        S3Error::new(
            ErrorCode::InvalidURI,
            "Couldn't parse the specified URI: the query is not valid UTF-8",
        )
    })
}

impl Query {
    pub fn parse(raw: &str) -> S3Result<Query> {
        let mut out = Vec::new();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            out.push((decode_component(k)?, decode_component(v)?));
        }
        Ok(Query(out))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// One S3 operation with its bucket and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    ListBuckets,
    CreateBucket {
        bucket: String,
    },
    HeadBucket {
        bucket: String,
    },
    DeleteBucket {
        bucket: String,
    },
    GetBucketLocation {
        bucket: String,
    },
    GetBucketVersioning {
        bucket: String,
    },
    ListObjects {
        bucket: String,
    },
    ListObjectsV2 {
        bucket: String,
    },
    ListObjectVersions {
        bucket: String,
    },
    DeleteObjects {
        bucket: String,
    },
    PutObject {
        bucket: String,
        key: String,
    },
    CopyObject {
        bucket: String,
        key: String,
        source: CopySource,
    },
    GetObject {
        bucket: String,
        key: String,
    },
    HeadObject {
        bucket: String,
        key: String,
    },
    GetObjectAttributes {
        bucket: String,
        key: String,
    },
    DeleteObject {
        bucket: String,
        key: String,
    },
    CreateMultipartUpload {
        bucket: String,
        key: String,
    },
    UploadPart {
        bucket: String,
        key: String,
    },
    UploadPartCopy {
        bucket: String,
        key: String,
        source: CopySource,
    },
    CompleteMultipartUpload {
        bucket: String,
        key: String,
    },
    AbortMultipartUpload {
        bucket: String,
        key: String,
    },
    ListParts {
        bucket: String,
        key: String,
    },
    ListMultipartUploads {
        bucket: String,
    },
    PutObjectTagging {
        bucket: String,
        key: String,
    },
    GetObjectTagging {
        bucket: String,
        key: String,
    },
    DeleteObjectTagging {
        bucket: String,
        key: String,
    },
    PutBucketTagging {
        bucket: String,
    },
    GetBucketTagging {
        bucket: String,
    },
    DeleteBucketTagging {
        bucket: String,
    },
    PutBucketCors {
        bucket: String,
    },
    GetBucketCors {
        bucket: String,
    },
    DeleteBucketCors {
        bucket: String,
    },
    PutBucketReplication {
        bucket: String,
    },
    GetBucketReplication {
        bucket: String,
    },
    DeleteBucketReplication {
        bucket: String,
    },
    PutBucketEncryption {
        bucket: String,
    },
    GetBucketEncryption {
        bucket: String,
    },
    DeleteBucketEncryption {
        bucket: String,
    },
    PutBucketOwnershipControls {
        bucket: String,
    },
    GetBucketOwnershipControls {
        bucket: String,
    },
    DeleteBucketOwnershipControls {
        bucket: String,
    },
    PutPublicAccessBlock {
        bucket: String,
    },
    GetPublicAccessBlock {
        bucket: String,
    },
    DeletePublicAccessBlock {
        bucket: String,
    },
    PutBucketRequestPayment {
        bucket: String,
    },
    GetBucketRequestPayment {
        bucket: String,
    },
    PutBucketPolicy {
        bucket: String,
    },
    GetBucketPolicy {
        bucket: String,
    },
    DeleteBucketPolicy {
        bucket: String,
    },
    GetBucketPolicyStatus {
        bucket: String,
    },
    GetBucketAcl {
        bucket: String,
    },
    PutBucketAcl {
        bucket: String,
    },
    GetObjectAcl {
        bucket: String,
        key: String,
    },
    PutObjectAcl {
        bucket: String,
        key: String,
    },
    /// Browser form upload; authenticated by the signed policy inside the form.
    PostObject {
        bucket: String,
    },
    /// GET of a bucket configuration Sluice cannot hold: answered as AWS answers for a bucket
    /// that has none.
    GetUnsupportedConfig {
        bucket: String,
        config: UnsupportedConfig,
    },
    PutBucketLifecycle {
        bucket: String,
    },
    GetBucketLifecycle {
        bucket: String,
    },
    DeleteBucketLifecycle {
        bucket: String,
    },
    DeleteBucketWebsite {
        bucket: String,
    },
}

/// Bucket configurations Sluice has no support for: no bucket ever has one, so reading one
/// answers as AWS does for a bucket without it (tools such as s3cmd, rclone and Terraform read
/// them to describe a bucket), deleting one succeeds, and setting one is `NotImplemented`
/// (accepting an object-lock rule that is never enforced would lose the operator's intent
/// silently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsupportedConfig {
    Website,
    ObjectLock,
    Logging,
    Notification,
    Accelerate,
}

impl UnsupportedConfig {
    pub const ALL: [UnsupportedConfig; 5] = [
        UnsupportedConfig::Website,
        UnsupportedConfig::ObjectLock,
        UnsupportedConfig::Logging,
        UnsupportedConfig::Notification,
        UnsupportedConfig::Accelerate,
    ];

    /// The query sub-resource that addresses it.
    pub fn subresource(self) -> &'static str {
        match self {
            UnsupportedConfig::Website => "website",
            UnsupportedConfig::ObjectLock => "object-lock",
            UnsupportedConfig::Logging => "logging",
            UnsupportedConfig::Notification => "notification",
            UnsupportedConfig::Accelerate => "accelerate",
        }
    }

    /// The operation that reads it (as in the AWS API reference).
    fn get_operation(self) -> &'static str {
        match self {
            UnsupportedConfig::Website => "GetBucketWebsite",
            UnsupportedConfig::ObjectLock => "GetObjectLockConfiguration",
            UnsupportedConfig::Logging => "GetBucketLogging",
            UnsupportedConfig::Notification => "GetBucketNotificationConfiguration",
            UnsupportedConfig::Accelerate => "GetBucketAccelerateConfiguration",
        }
    }

    /// The policy action that reading it needs.
    fn get_action(self) -> &'static str {
        match self {
            UnsupportedConfig::Website => "s3:GetBucketWebsite",
            UnsupportedConfig::ObjectLock => "s3:GetBucketObjectLockConfiguration",
            UnsupportedConfig::Logging => "s3:GetBucketLogging",
            UnsupportedConfig::Notification => "s3:GetBucketNotification",
            UnsupportedConfig::Accelerate => "s3:GetAccelerateConfiguration",
        }
    }
}

/// The object named by `x-amz-copy-source` (`bucket/key` or `/bucket/key`, URL-encoded, with an
/// optional `?versionId=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySource {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
}

impl CopySource {
    pub fn parse(header: &str) -> S3Result<CopySource> {
        let invalid = || {
            S3Error::invalid_argument("Invalid copy source object key")
                .with("ArgumentName", "x-amz-copy-source")
                .with("ArgumentValue", header)
        };
        let (path, query) = header.split_once('?').unwrap_or((header, ""));
        let path = path.strip_prefix('/').unwrap_or(path);
        let bytes: Vec<u8> = percent_encoding::percent_decode_str(path).collect();
        let decoded = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (bucket, key) = decoded.split_once('/').ok_or_else(invalid)?;
        if bucket.is_empty() || key.is_empty() {
            return Err(invalid());
        }
        check_key(key)?;
        let version_id = Query::parse(query)?.get("versionId").map(str::to_string);
        Ok(CopySource {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id,
        })
    }
}

impl Endpoint {
    /// The operation name (as in the AWS API reference).
    pub fn name(&self) -> &'static str {
        match self {
            Endpoint::ListBuckets => "ListBuckets",
            Endpoint::CreateBucket { .. } => "CreateBucket",
            Endpoint::HeadBucket { .. } => "HeadBucket",
            Endpoint::DeleteBucket { .. } => "DeleteBucket",
            Endpoint::GetBucketLocation { .. } => "GetBucketLocation",
            Endpoint::GetBucketVersioning { .. } => "GetBucketVersioning",
            Endpoint::ListObjects { .. } => "ListObjects",
            Endpoint::ListObjectsV2 { .. } => "ListObjectsV2",
            Endpoint::ListObjectVersions { .. } => "ListObjectVersions",
            Endpoint::DeleteObjects { .. } => "DeleteObjects",
            Endpoint::PutObject { .. } => "PutObject",
            Endpoint::GetObject { .. } => "GetObject",
            Endpoint::HeadObject { .. } => "HeadObject",
            Endpoint::GetObjectAttributes { .. } => "GetObjectAttributes",
            Endpoint::DeleteObject { .. } => "DeleteObject",
            Endpoint::CopyObject { .. } => "CopyObject",
            Endpoint::CreateMultipartUpload { .. } => "CreateMultipartUpload",
            Endpoint::UploadPart { .. } => "UploadPart",
            Endpoint::UploadPartCopy { .. } => "UploadPartCopy",
            Endpoint::CompleteMultipartUpload { .. } => "CompleteMultipartUpload",
            Endpoint::AbortMultipartUpload { .. } => "AbortMultipartUpload",
            Endpoint::ListParts { .. } => "ListParts",
            Endpoint::ListMultipartUploads { .. } => "ListMultipartUploads",
            Endpoint::PutObjectTagging { .. } => "PutObjectTagging",
            Endpoint::GetObjectTagging { .. } => "GetObjectTagging",
            Endpoint::DeleteObjectTagging { .. } => "DeleteObjectTagging",
            Endpoint::PutBucketTagging { .. } => "PutBucketTagging",
            Endpoint::GetBucketTagging { .. } => "GetBucketTagging",
            Endpoint::DeleteBucketTagging { .. } => "DeleteBucketTagging",
            Endpoint::PutBucketCors { .. } => "PutBucketCors",
            Endpoint::GetBucketCors { .. } => "GetBucketCors",
            Endpoint::DeleteBucketCors { .. } => "DeleteBucketCors",
            Endpoint::PutBucketReplication { .. } => "PutBucketReplication",
            Endpoint::GetBucketReplication { .. } => "GetBucketReplication",
            Endpoint::DeleteBucketReplication { .. } => "DeleteBucketReplication",
            Endpoint::PutBucketEncryption { .. } => "PutBucketEncryption",
            Endpoint::GetBucketEncryption { .. } => "GetBucketEncryption",
            Endpoint::DeleteBucketEncryption { .. } => "DeleteBucketEncryption",
            Endpoint::PutBucketOwnershipControls { .. } => "PutBucketOwnershipControls",
            Endpoint::GetBucketOwnershipControls { .. } => "GetBucketOwnershipControls",
            Endpoint::DeleteBucketOwnershipControls { .. } => "DeleteBucketOwnershipControls",
            Endpoint::PutPublicAccessBlock { .. } => "PutPublicAccessBlock",
            Endpoint::GetPublicAccessBlock { .. } => "GetPublicAccessBlock",
            Endpoint::DeletePublicAccessBlock { .. } => "DeletePublicAccessBlock",
            Endpoint::PutBucketRequestPayment { .. } => "PutBucketRequestPayment",
            Endpoint::GetBucketRequestPayment { .. } => "GetBucketRequestPayment",
            Endpoint::PostObject { .. } => "PostObject",
            Endpoint::PutBucketPolicy { .. } => "PutBucketPolicy",
            Endpoint::GetBucketPolicy { .. } => "GetBucketPolicy",
            Endpoint::DeleteBucketPolicy { .. } => "DeleteBucketPolicy",
            Endpoint::GetBucketPolicyStatus { .. } => "GetBucketPolicyStatus",
            Endpoint::GetBucketAcl { .. } => "GetBucketAcl",
            Endpoint::PutBucketAcl { .. } => "PutBucketAcl",
            Endpoint::GetObjectAcl { .. } => "GetObjectAcl",
            Endpoint::PutObjectAcl { .. } => "PutObjectAcl",
            Endpoint::GetUnsupportedConfig { config, .. } => config.get_operation(),
            Endpoint::PutBucketLifecycle { .. } => "PutBucketLifecycleConfiguration",
            Endpoint::GetBucketLifecycle { .. } => "GetBucketLifecycleConfiguration",
            Endpoint::DeleteBucketLifecycle { .. } => "DeleteBucketLifecycle",
            Endpoint::DeleteBucketWebsite { .. } => "DeleteBucketWebsite",
        }
    }

    /// The policy action this operation needs (`s3:GetObject`, ...).
    pub fn action(&self) -> &'static str {
        match self {
            Endpoint::ListBuckets => "s3:ListAllMyBuckets",
            Endpoint::CreateBucket { .. } => "s3:CreateBucket",
            Endpoint::HeadBucket { .. }
            | Endpoint::ListObjects { .. }
            | Endpoint::ListObjectsV2 { .. } => "s3:ListBucket",
            Endpoint::DeleteBucket { .. } => "s3:DeleteBucket",
            Endpoint::GetBucketLocation { .. } => "s3:GetBucketLocation",
            Endpoint::GetBucketVersioning { .. } => "s3:GetBucketVersioning",
            Endpoint::ListObjectVersions { .. } => "s3:ListBucketVersions",
            Endpoint::DeleteObjects { .. } | Endpoint::DeleteObject { .. } => "s3:DeleteObject",
            Endpoint::PutObject { .. }
            | Endpoint::PostObject { .. }
            | Endpoint::CopyObject { .. }
            | Endpoint::CreateMultipartUpload { .. }
            | Endpoint::UploadPart { .. }
            | Endpoint::UploadPartCopy { .. }
            | Endpoint::CompleteMultipartUpload { .. } => "s3:PutObject",
            Endpoint::AbortMultipartUpload { .. } => "s3:AbortMultipartUpload",
            Endpoint::ListParts { .. } => "s3:ListMultipartUploadParts",
            Endpoint::ListMultipartUploads { .. } => "s3:ListBucketMultipartUploads",
            Endpoint::PutObjectTagging { .. } => "s3:PutObjectTagging",
            Endpoint::GetObjectTagging { .. } => "s3:GetObjectTagging",
            Endpoint::DeleteObjectTagging { .. } => "s3:DeleteObjectTagging",
            // AWS authorizes DeleteBucketTagging with s3:PutBucketTagging.
            Endpoint::PutBucketTagging { .. } | Endpoint::DeleteBucketTagging { .. } => {
                "s3:PutBucketTagging"
            }
            Endpoint::GetBucketTagging { .. } => "s3:GetBucketTagging",
            // As in AWS, deleting a configuration needs the permission to put it.
            Endpoint::PutBucketCors { .. } | Endpoint::DeleteBucketCors { .. } => {
                "s3:PutBucketCORS"
            }
            Endpoint::GetBucketCors { .. } => "s3:GetBucketCORS",
            Endpoint::PutBucketReplication { .. } | Endpoint::DeleteBucketReplication { .. } => {
                "s3:PutReplicationConfiguration"
            }
            Endpoint::GetBucketReplication { .. } => "s3:GetReplicationConfiguration",
            Endpoint::PutBucketEncryption { .. } | Endpoint::DeleteBucketEncryption { .. } => {
                "s3:PutEncryptionConfiguration"
            }
            Endpoint::GetBucketEncryption { .. } => "s3:GetEncryptionConfiguration",
            Endpoint::PutBucketOwnershipControls { .. }
            | Endpoint::DeleteBucketOwnershipControls { .. } => "s3:PutBucketOwnershipControls",
            Endpoint::GetBucketOwnershipControls { .. } => "s3:GetBucketOwnershipControls",
            Endpoint::PutPublicAccessBlock { .. } | Endpoint::DeletePublicAccessBlock { .. } => {
                "s3:PutBucketPublicAccessBlock"
            }
            Endpoint::GetPublicAccessBlock { .. } => "s3:GetBucketPublicAccessBlock",
            Endpoint::PutBucketRequestPayment { .. } => "s3:PutBucketRequestPayment",
            Endpoint::GetBucketRequestPayment { .. } => "s3:GetBucketRequestPayment",
            Endpoint::GetObject { .. } | Endpoint::HeadObject { .. } => "s3:GetObject",
            Endpoint::GetObjectAttributes { .. } => "s3:GetObjectAttributes",
            Endpoint::PutBucketPolicy { .. } => "s3:PutBucketPolicy",
            Endpoint::GetBucketPolicy { .. } => "s3:GetBucketPolicy",
            Endpoint::DeleteBucketPolicy { .. } => "s3:DeleteBucketPolicy",
            Endpoint::GetBucketPolicyStatus { .. } => "s3:GetBucketPolicyStatus",
            Endpoint::GetBucketAcl { .. } => "s3:GetBucketAcl",
            Endpoint::PutBucketAcl { .. } => "s3:PutBucketAcl",
            Endpoint::GetObjectAcl { .. } => "s3:GetObjectAcl",
            Endpoint::PutObjectAcl { .. } => "s3:PutObjectAcl",
            Endpoint::GetUnsupportedConfig { config, .. } => config.get_action(),
            // AWS has no separate action for deleting a lifecycle configuration.
            Endpoint::PutBucketLifecycle { .. } | Endpoint::DeleteBucketLifecycle { .. } => {
                "s3:PutLifecycleConfiguration"
            }
            Endpoint::GetBucketLifecycle { .. } => "s3:GetLifecycleConfiguration",
            Endpoint::DeleteBucketWebsite { .. } => "s3:DeleteBucketWebsite",
        }
    }

    pub fn bucket(&self) -> Option<&str> {
        match self {
            Endpoint::ListBuckets => None,
            Endpoint::CreateBucket { bucket }
            | Endpoint::HeadBucket { bucket }
            | Endpoint::DeleteBucket { bucket }
            | Endpoint::GetBucketLocation { bucket }
            | Endpoint::GetBucketVersioning { bucket }
            | Endpoint::ListObjects { bucket }
            | Endpoint::ListObjectsV2 { bucket }
            | Endpoint::ListObjectVersions { bucket }
            | Endpoint::DeleteObjects { bucket }
            | Endpoint::ListMultipartUploads { bucket }
            | Endpoint::PutBucketCors { bucket }
            | Endpoint::GetBucketCors { bucket }
            | Endpoint::DeleteBucketCors { bucket }
            | Endpoint::PutBucketReplication { bucket }
            | Endpoint::GetBucketReplication { bucket }
            | Endpoint::DeleteBucketReplication { bucket }
            | Endpoint::PutBucketEncryption { bucket }
            | Endpoint::GetBucketEncryption { bucket }
            | Endpoint::DeleteBucketEncryption { bucket }
            | Endpoint::PutBucketOwnershipControls { bucket }
            | Endpoint::GetBucketOwnershipControls { bucket }
            | Endpoint::DeleteBucketOwnershipControls { bucket }
            | Endpoint::PutPublicAccessBlock { bucket }
            | Endpoint::GetPublicAccessBlock { bucket }
            | Endpoint::DeletePublicAccessBlock { bucket }
            | Endpoint::PutBucketRequestPayment { bucket }
            | Endpoint::GetBucketRequestPayment { bucket }
            | Endpoint::PostObject { bucket }
            | Endpoint::GetUnsupportedConfig { bucket, .. }
            | Endpoint::PutBucketLifecycle { bucket }
            | Endpoint::GetBucketLifecycle { bucket }
            | Endpoint::DeleteBucketLifecycle { bucket }
            | Endpoint::DeleteBucketWebsite { bucket }
            | Endpoint::PutBucketPolicy { bucket }
            | Endpoint::GetBucketPolicy { bucket }
            | Endpoint::DeleteBucketPolicy { bucket }
            | Endpoint::GetBucketPolicyStatus { bucket }
            | Endpoint::GetBucketAcl { bucket }
            | Endpoint::PutBucketAcl { bucket }
            | Endpoint::GetObjectAcl { bucket, .. }
            | Endpoint::PutObjectAcl { bucket, .. }
            | Endpoint::PutBucketTagging { bucket }
            | Endpoint::GetBucketTagging { bucket }
            | Endpoint::DeleteBucketTagging { bucket }
            | Endpoint::PutObjectTagging { bucket, .. }
            | Endpoint::GetObjectTagging { bucket, .. }
            | Endpoint::DeleteObjectTagging { bucket, .. }
            | Endpoint::CopyObject { bucket, .. }
            | Endpoint::CreateMultipartUpload { bucket, .. }
            | Endpoint::UploadPart { bucket, .. }
            | Endpoint::UploadPartCopy { bucket, .. }
            | Endpoint::CompleteMultipartUpload { bucket, .. }
            | Endpoint::AbortMultipartUpload { bucket, .. }
            | Endpoint::ListParts { bucket, .. }
            | Endpoint::PutObject { bucket, .. }
            | Endpoint::GetObject { bucket, .. }
            | Endpoint::HeadObject { bucket, .. }
            | Endpoint::GetObjectAttributes { bucket, .. }
            | Endpoint::DeleteObject { bucket, .. } => Some(bucket),
        }
    }

    pub fn key(&self) -> Option<&str> {
        match self {
            Endpoint::PutObject { key, .. }
            | Endpoint::CopyObject { key, .. }
            | Endpoint::CreateMultipartUpload { key, .. }
            | Endpoint::UploadPart { key, .. }
            | Endpoint::UploadPartCopy { key, .. }
            | Endpoint::CompleteMultipartUpload { key, .. }
            | Endpoint::AbortMultipartUpload { key, .. }
            | Endpoint::ListParts { key, .. }
            | Endpoint::PutObjectTagging { key, .. }
            | Endpoint::GetObjectTagging { key, .. }
            | Endpoint::DeleteObjectTagging { key, .. }
            | Endpoint::GetObject { key, .. }
            | Endpoint::HeadObject { key, .. }
            | Endpoint::GetObjectAttributes { key, .. }
            | Endpoint::DeleteObject { key, .. }
            | Endpoint::GetObjectAcl { key, .. }
            | Endpoint::PutObjectAcl { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// Where the request addressed: bucket and key as decoded from host and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// The bucket came from the Host header (virtual-hosted style).
    pub virtual_host: bool,
}

/// Splits host and path into bucket and key. `domains` enables virtual-hosted style.
pub fn target(host: Option<&str>, raw_path: &str, domains: &[String]) -> S3Result<Target> {
    let host = host.map(|h| {
        // Strip a port, keeping IPv6 literals intact.
        match h.rfind(':') {
            Some(i) if !h.ends_with(']') && h[..i].find(':').is_none() => &h[..i],
            _ => h,
        }
    });
    let vhost_bucket = host.and_then(|h| {
        let h = h.to_ascii_lowercase();
        domains.iter().find_map(|d| {
            h.strip_suffix(d.as_str())
                .and_then(|rest| rest.strip_suffix('.'))
                .filter(|b| !b.is_empty())
                .map(str::to_string)
        })
    });
    let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
    let decode = |s: &str| -> S3Result<String> {
        let bytes: Vec<u8> = percent_encoding::percent_decode_str(s).collect();
        String::from_utf8(bytes).map_err(|_| {
            S3Error::new(
                ErrorCode::InvalidURI,
                "Couldn't parse the specified URI: the path is not valid UTF-8",
            )
        })
    };
    let non_empty = |s: String| if s.is_empty() { None } else { Some(s) };
    match vhost_bucket {
        Some(bucket) => Ok(Target {
            bucket: Some(bucket),
            key: non_empty(decode(path)?),
            virtual_host: true,
        }),
        None => {
            let (bucket, key) = match path.split_once('/') {
                Some((b, k)) => (b, Some(k)),
                None => (path, None),
            };
            Ok(Target {
                bucket: non_empty(decode(bucket)?),
                key: match key {
                    Some(k) => non_empty(decode(k)?),
                    None => None,
                },
                virtual_host: false,
            })
        }
    }
}

pub const MAX_KEY_LEN: usize = 1024;

fn check_key(key: &str) -> S3Result<()> {
    if key.len() > MAX_KEY_LEN {
        return Err(
            S3Error::new(ErrorCode::KeyTooLongError, "Your key is too long")
                .with("Size", key.len().to_string())
                .with("MaxSizeAllowed", MAX_KEY_LEN.to_string()),
        );
    }
    if key.contains('\0') {
        return Err(S3Error::invalid_argument(
            "Object key must not contain the NUL character",
        ));
    }
    Ok(())
}

fn method_not_allowed() -> S3Error {
    S3Error::new(
        ErrorCode::MethodNotAllowed,
        "The specified method is not allowed against this resource.",
    )
}

/// Bucket sub-resources that select another operation; those not handled yet are refused
/// rather than mistaken for a listing.
const BUCKET_SUBRESOURCES: &[&str] = &[
    "analytics",
    "intelligent-tiering",
    "inventory",
    "metadataConfiguration",
    "metrics",
    "session",
];

const OBJECT_SUBRESOURCES: &[&str] = &["legal-hold", "restore", "retention", "select", "torrent"];

/// Picks the endpoint for a request.
pub fn route(
    method: &Method,
    target: &Target,
    query: &Query,
    copy_source: Option<&str>,
) -> S3Result<Endpoint> {
    let Some(bucket) = target.bucket.clone() else {
        return match *method {
            Method::GET => Ok(Endpoint::ListBuckets),
            _ => Err(method_not_allowed()),
        };
    };
    match &target.key {
        None => {
            if *method == Method::GET && query.has("location") {
                return Ok(Endpoint::GetBucketLocation { bucket });
            }
            if *method == Method::GET && query.has("versioning") {
                return Ok(Endpoint::GetBucketVersioning { bucket });
            }
            if *method == Method::GET && query.has("versions") {
                return Ok(Endpoint::ListObjectVersions { bucket });
            }
            if *method == Method::POST && query.has("delete") {
                return Ok(Endpoint::DeleteObjects { bucket });
            }
            if *method == Method::GET && query.has("uploads") {
                return Ok(Endpoint::ListMultipartUploads { bucket });
            }
            if query.has("cors") {
                return match *method {
                    Method::PUT => Ok(Endpoint::PutBucketCors { bucket }),
                    Method::GET => Ok(Endpoint::GetBucketCors { bucket }),
                    Method::DELETE => Ok(Endpoint::DeleteBucketCors { bucket }),
                    _ => Err(method_not_allowed()),
                };
            }
            if query.has("replication") {
                return match *method {
                    Method::PUT => Ok(Endpoint::PutBucketReplication { bucket }),
                    Method::GET => Ok(Endpoint::GetBucketReplication { bucket }),
                    Method::DELETE => Ok(Endpoint::DeleteBucketReplication { bucket }),
                    _ => Err(method_not_allowed()),
                };
            }
            if query.has("encryption") {
                return match *method {
                    Method::PUT => Ok(Endpoint::PutBucketEncryption { bucket }),
                    Method::GET => Ok(Endpoint::GetBucketEncryption { bucket }),
                    Method::DELETE => Ok(Endpoint::DeleteBucketEncryption { bucket }),
                    _ => Err(method_not_allowed()),
                };
            }
            if query.has("ownershipControls") {
                return match *method {
                    Method::PUT => Ok(Endpoint::PutBucketOwnershipControls { bucket }),
                    Method::GET => Ok(Endpoint::GetBucketOwnershipControls { bucket }),
                    Method::DELETE => Ok(Endpoint::DeleteBucketOwnershipControls { bucket }),
                    _ => Err(method_not_allowed()),
                };
            }
            if query.has("publicAccessBlock") {
                return match *method {
                    Method::PUT => Ok(Endpoint::PutPublicAccessBlock { bucket }),
                    Method::GET => Ok(Endpoint::GetPublicAccessBlock { bucket }),
                    Method::DELETE => Ok(Endpoint::DeletePublicAccessBlock { bucket }),
                    _ => Err(method_not_allowed()),
                };
            }
            if query.has("requestPayment") {
                return match *method {
                    Method::PUT => Ok(Endpoint::PutBucketRequestPayment { bucket }),
                    Method::GET => Ok(Endpoint::GetBucketRequestPayment { bucket }),
                    _ => Err(method_not_allowed()),
                };
            }
            if query.has("acl") {
                return match *method {
                    Method::PUT => Ok(Endpoint::PutBucketAcl { bucket }),
                    Method::GET => Ok(Endpoint::GetBucketAcl { bucket }),
                    _ => Err(method_not_allowed()),
                };
            }
            if query.has("policyStatus") {
                return match *method {
                    Method::GET => Ok(Endpoint::GetBucketPolicyStatus { bucket }),
                    _ => Err(method_not_allowed()),
                };
            }
            if query.has("policy") {
                return match *method {
                    Method::PUT => Ok(Endpoint::PutBucketPolicy { bucket }),
                    Method::GET => Ok(Endpoint::GetBucketPolicy { bucket }),
                    Method::DELETE => Ok(Endpoint::DeleteBucketPolicy { bucket }),
                    _ => Err(method_not_allowed()),
                };
            }
            if query.has("tagging") {
                return match *method {
                    Method::PUT => Ok(Endpoint::PutBucketTagging { bucket }),
                    Method::GET => Ok(Endpoint::GetBucketTagging { bucket }),
                    Method::DELETE => Ok(Endpoint::DeleteBucketTagging { bucket }),
                    _ => Err(method_not_allowed()),
                };
            }
            if query.has("lifecycle") {
                return match *method {
                    Method::PUT => Ok(Endpoint::PutBucketLifecycle { bucket }),
                    Method::GET => Ok(Endpoint::GetBucketLifecycle { bucket }),
                    Method::DELETE => Ok(Endpoint::DeleteBucketLifecycle { bucket }),
                    _ => Err(method_not_allowed()),
                };
            }
            if let Some(config) = UnsupportedConfig::ALL
                .into_iter()
                .find(|c| query.has(c.subresource()))
            {
                return match (method.clone(), config) {
                    (Method::GET, _) => Ok(Endpoint::GetUnsupportedConfig { bucket, config }),
                    (Method::DELETE, UnsupportedConfig::Website) => {
                        Ok(Endpoint::DeleteBucketWebsite { bucket })
                    }
                    (Method::PUT, _) => Err(S3Error::not_implemented(&format!(
                        "PUT ?{} (Sluice keeps no {} configuration)",
                        config.subresource(),
                        config.subresource()
                    ))),
                    _ => Err(method_not_allowed()),
                };
            }
            if let Some(sub) = BUCKET_SUBRESOURCES
                .iter()
                .chain(["versioning", "versions", "delete", "location", "uploads"].iter())
                .find(|s| query.has(s))
            {
                return Err(S3Error::not_implemented(&format!("?{sub}")));
            }
            match *method {
                Method::PUT => Ok(Endpoint::CreateBucket { bucket }),
                Method::HEAD => Ok(Endpoint::HeadBucket { bucket }),
                Method::DELETE => Ok(Endpoint::DeleteBucket { bucket }),
                Method::GET if query.get("list-type") == Some("2") => {
                    Ok(Endpoint::ListObjectsV2 { bucket })
                }
                Method::GET => Ok(Endpoint::ListObjects { bucket }),
                Method::POST => Ok(Endpoint::PostObject { bucket }),
                _ => Err(method_not_allowed()),
            }
        }
        Some(key) => {
            check_key(key)?;
            if let Some(sub) = OBJECT_SUBRESOURCES.iter().find(|s| query.has(s)) {
                return Err(S3Error::not_implemented(&format!("?{sub}")));
            }
            let key = key.clone();
            if query.has("acl") {
                return match *method {
                    Method::PUT => Ok(Endpoint::PutObjectAcl { bucket, key }),
                    Method::GET => Ok(Endpoint::GetObjectAcl { bucket, key }),
                    _ => Err(method_not_allowed()),
                };
            }
            let source = copy_source.map(CopySource::parse).transpose()?;
            if query.has("uploadId") {
                return match (method.clone(), source) {
                    (Method::PUT, Some(source)) if query.has("partNumber") => {
                        Ok(Endpoint::UploadPartCopy {
                            bucket,
                            key,
                            source,
                        })
                    }
                    (Method::PUT, None) if query.has("partNumber") => {
                        Ok(Endpoint::UploadPart { bucket, key })
                    }
                    (Method::POST, _) => Ok(Endpoint::CompleteMultipartUpload { bucket, key }),
                    (Method::DELETE, _) => Ok(Endpoint::AbortMultipartUpload { bucket, key }),
                    (Method::GET, _) => Ok(Endpoint::ListParts { bucket, key }),
                    _ => Err(method_not_allowed()),
                };
            }
            if query.has("attributes") {
                return match *method {
                    Method::GET => Ok(Endpoint::GetObjectAttributes { bucket, key }),
                    _ => Err(method_not_allowed()),
                };
            }
            if query.has("tagging") {
                return match *method {
                    Method::PUT => Ok(Endpoint::PutObjectTagging { bucket, key }),
                    Method::GET => Ok(Endpoint::GetObjectTagging { bucket, key }),
                    Method::DELETE => Ok(Endpoint::DeleteObjectTagging { bucket, key }),
                    _ => Err(method_not_allowed()),
                };
            }
            if *method == Method::POST && query.has("uploads") {
                return Ok(Endpoint::CreateMultipartUpload { bucket, key });
            }
            match *method {
                Method::PUT => match source {
                    Some(source) => Ok(Endpoint::CopyObject {
                        bucket,
                        key,
                        source,
                    }),
                    None => Ok(Endpoint::PutObject { bucket, key }),
                },
                Method::GET => Ok(Endpoint::GetObject { bucket, key }),
                Method::HEAD => Ok(Endpoint::HeadObject { bucket, key }),
                Method::DELETE => Ok(Endpoint::DeleteObject { bucket, key }),
                _ => Err(method_not_allowed()),
            }
        }
    }
}

/// AWS bucket naming rules for new buckets.
pub fn valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    if !(3..=63).contains(&bytes.len()) {
        return false;
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
    {
        return false;
    }
    let edge_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !edge_ok(bytes[0]) || !edge_ok(bytes[bytes.len() - 1]) {
        return false;
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return false;
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return false;
    }
    let reserved_prefix = ["xn--", "sthree-", "amzn-s3-demo-"];
    let reserved_suffix = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];
    !(reserved_prefix.iter().any(|p| name.starts_with(p))
        || reserved_suffix.iter().any(|s| name.ends_with(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Position of each variant; adding a variant fails to compile here until it has one.
    fn ordinal(e: &Endpoint) -> usize {
        match e {
            Endpoint::ListBuckets => 0,
            Endpoint::CreateBucket { .. } => 1,
            Endpoint::HeadBucket { .. } => 2,
            Endpoint::DeleteBucket { .. } => 3,
            Endpoint::GetBucketLocation { .. } => 4,
            Endpoint::GetBucketVersioning { .. } => 5,
            Endpoint::ListObjects { .. } => 6,
            Endpoint::ListObjectsV2 { .. } => 7,
            Endpoint::ListObjectVersions { .. } => 8,
            Endpoint::DeleteObjects { .. } => 9,
            Endpoint::PutObject { .. } => 10,
            Endpoint::CopyObject { .. } => 11,
            Endpoint::GetObject { .. } => 12,
            Endpoint::HeadObject { .. } => 13,
            Endpoint::DeleteObject { .. } => 14,
            Endpoint::CreateMultipartUpload { .. } => 15,
            Endpoint::UploadPart { .. } => 16,
            Endpoint::UploadPartCopy { .. } => 17,
            Endpoint::CompleteMultipartUpload { .. } => 18,
            Endpoint::AbortMultipartUpload { .. } => 19,
            Endpoint::ListParts { .. } => 20,
            Endpoint::ListMultipartUploads { .. } => 21,
            Endpoint::PutObjectTagging { .. } => 22,
            Endpoint::GetObjectTagging { .. } => 23,
            Endpoint::DeleteObjectTagging { .. } => 24,
            Endpoint::PutBucketTagging { .. } => 25,
            Endpoint::GetBucketTagging { .. } => 26,
            Endpoint::DeleteBucketTagging { .. } => 27,
            Endpoint::PutBucketCors { .. } => 28,
            Endpoint::GetBucketCors { .. } => 29,
            Endpoint::DeleteBucketCors { .. } => 30,
            Endpoint::PutBucketOwnershipControls { .. } => 31,
            Endpoint::GetBucketOwnershipControls { .. } => 32,
            Endpoint::DeleteBucketOwnershipControls { .. } => 33,
            Endpoint::PutPublicAccessBlock { .. } => 34,
            Endpoint::GetPublicAccessBlock { .. } => 35,
            Endpoint::DeletePublicAccessBlock { .. } => 36,
            Endpoint::PutBucketRequestPayment { .. } => 37,
            Endpoint::GetBucketRequestPayment { .. } => 38,
            Endpoint::PostObject { .. } => 39,
            Endpoint::PutBucketPolicy { .. } => 40,
            Endpoint::GetBucketPolicy { .. } => 41,
            Endpoint::DeleteBucketPolicy { .. } => 42,
            Endpoint::GetBucketPolicyStatus { .. } => 43,
            Endpoint::GetBucketAcl { .. } => 44,
            Endpoint::PutBucketAcl { .. } => 45,
            Endpoint::GetObjectAcl { .. } => 46,
            Endpoint::PutObjectAcl { .. } => 47,
            Endpoint::PutBucketEncryption { .. } => 48,
            Endpoint::GetBucketEncryption { .. } => 49,
            Endpoint::DeleteBucketEncryption { .. } => 50,
            Endpoint::PutBucketReplication { .. } => 51,
            Endpoint::GetBucketReplication { .. } => 52,
            Endpoint::DeleteBucketReplication { .. } => 53,
            Endpoint::GetObjectAttributes { .. } => 54,
            Endpoint::GetUnsupportedConfig { .. } => 55,
            Endpoint::DeleteBucketLifecycle { .. } => 56,
            Endpoint::DeleteBucketWebsite { .. } => 57,
            Endpoint::PutBucketLifecycle { .. } => 58,
            Endpoint::GetBucketLifecycle { .. } => 59,
        }
    }
    const ENDPOINTS: usize = 60;

    fn samples() -> Vec<Endpoint> {
        vec![
            Endpoint::ListBuckets,
            Endpoint::CreateBucket { bucket: "b".into() },
            Endpoint::HeadBucket { bucket: "b".into() },
            Endpoint::DeleteBucket { bucket: "b".into() },
            Endpoint::GetBucketLocation { bucket: "b".into() },
            Endpoint::GetBucketVersioning { bucket: "b".into() },
            Endpoint::ListObjects { bucket: "b".into() },
            Endpoint::ListObjectsV2 { bucket: "b".into() },
            Endpoint::ListObjectVersions { bucket: "b".into() },
            Endpoint::DeleteObjects { bucket: "b".into() },
            Endpoint::PutObject {
                bucket: "b".into(),
                key: "k".into(),
            },
            Endpoint::CopyObject {
                bucket: "b".into(),
                key: "k".into(),
                source: CopySource {
                    bucket: "s".into(),
                    key: "k".into(),
                    version_id: None,
                },
            },
            Endpoint::GetObject {
                bucket: "b".into(),
                key: "k".into(),
            },
            Endpoint::HeadObject {
                bucket: "b".into(),
                key: "k".into(),
            },
            Endpoint::DeleteObject {
                bucket: "b".into(),
                key: "k".into(),
            },
            Endpoint::CreateMultipartUpload {
                bucket: "b".into(),
                key: "k".into(),
            },
            Endpoint::UploadPart {
                bucket: "b".into(),
                key: "k".into(),
            },
            Endpoint::UploadPartCopy {
                bucket: "b".into(),
                key: "k".into(),
                source: CopySource {
                    bucket: "s".into(),
                    key: "k".into(),
                    version_id: None,
                },
            },
            Endpoint::CompleteMultipartUpload {
                bucket: "b".into(),
                key: "k".into(),
            },
            Endpoint::AbortMultipartUpload {
                bucket: "b".into(),
                key: "k".into(),
            },
            Endpoint::ListParts {
                bucket: "b".into(),
                key: "k".into(),
            },
            Endpoint::ListMultipartUploads { bucket: "b".into() },
            Endpoint::PutObjectTagging {
                bucket: "b".into(),
                key: "k".into(),
            },
            Endpoint::GetObjectTagging {
                bucket: "b".into(),
                key: "k".into(),
            },
            Endpoint::DeleteObjectTagging {
                bucket: "b".into(),
                key: "k".into(),
            },
            Endpoint::PutBucketTagging { bucket: "b".into() },
            Endpoint::GetBucketTagging { bucket: "b".into() },
            Endpoint::DeleteBucketTagging { bucket: "b".into() },
            Endpoint::PutBucketCors { bucket: "b".into() },
            Endpoint::GetBucketCors { bucket: "b".into() },
            Endpoint::DeleteBucketCors { bucket: "b".into() },
            Endpoint::PutBucketReplication { bucket: "b".into() },
            Endpoint::GetBucketReplication { bucket: "b".into() },
            Endpoint::DeleteBucketReplication { bucket: "b".into() },
            Endpoint::PutBucketEncryption { bucket: "b".into() },
            Endpoint::GetBucketEncryption { bucket: "b".into() },
            Endpoint::DeleteBucketEncryption { bucket: "b".into() },
            Endpoint::PutBucketOwnershipControls { bucket: "b".into() },
            Endpoint::GetBucketOwnershipControls { bucket: "b".into() },
            Endpoint::DeleteBucketOwnershipControls { bucket: "b".into() },
            Endpoint::PutPublicAccessBlock { bucket: "b".into() },
            Endpoint::GetPublicAccessBlock { bucket: "b".into() },
            Endpoint::DeletePublicAccessBlock { bucket: "b".into() },
            Endpoint::PutBucketRequestPayment { bucket: "b".into() },
            Endpoint::GetBucketRequestPayment { bucket: "b".into() },
            Endpoint::PostObject { bucket: "b".into() },
            Endpoint::PutBucketPolicy { bucket: "b".into() },
            Endpoint::GetBucketPolicy { bucket: "b".into() },
            Endpoint::DeleteBucketPolicy { bucket: "b".into() },
            Endpoint::GetBucketPolicyStatus { bucket: "b".into() },
            Endpoint::GetBucketAcl { bucket: "b".into() },
            Endpoint::PutBucketAcl { bucket: "b".into() },
            Endpoint::GetObjectAcl {
                bucket: "b".into(),
                key: "k".into(),
            },
            Endpoint::PutObjectAcl {
                bucket: "b".into(),
                key: "k".into(),
            },
            Endpoint::GetObjectAttributes {
                bucket: "b".into(),
                key: "k".into(),
            },
            Endpoint::PutBucketLifecycle { bucket: "b".into() },
            Endpoint::GetBucketLifecycle { bucket: "b".into() },
            Endpoint::DeleteBucketLifecycle { bucket: "b".into() },
            Endpoint::DeleteBucketWebsite { bucket: "b".into() },
        ]
        .into_iter()
        .chain(
            UnsupportedConfig::ALL
                .into_iter()
                .map(|config| Endpoint::GetUnsupportedConfig {
                    bucket: "b".into(),
                    config,
                }),
        )
        .collect()
    }

    #[test]
    fn every_endpoint_has_an_action_in_the_schema() {
        let actions = crate::policy::schema::action_names();
        let mut seen = [false; ENDPOINTS];
        for e in samples() {
            seen[ordinal(&e)] = true;
            assert!(
                actions.iter().any(|a| a == e.action()),
                "{} needs `{}`, which the schema does not declare",
                e.name(),
                e.action()
            );
        }
        assert!(seen.iter().all(|s| *s), "samples() misses an endpoint");
    }

    fn t(host: Option<&str>, path: &str) -> Target {
        target(host, path, &["s3.localhost".to_string()]).unwrap()
    }

    #[test]
    fn path_style_keeps_key_bytes_literal() {
        let x = t(Some("127.0.0.1:9000"), "/b/a//b/../c%20d");
        assert_eq!(x.bucket.as_deref(), Some("b"));
        assert_eq!(x.key.as_deref(), Some("a//b/../c d"));
        assert_eq!(t(None, "/b/").key, None);
        assert_eq!(t(None, "/").bucket, None);
    }

    #[test]
    fn virtual_hosted_style_uses_domains() {
        let x = t(Some("photos.s3.localhost:9000"), "/a/b");
        assert_eq!(x.bucket.as_deref(), Some("photos"));
        assert_eq!(x.key.as_deref(), Some("a/b"));
        let y = t(Some("s3.localhost:9000"), "/photos/a");
        assert_eq!(y.bucket.as_deref(), Some("photos"));
    }

    #[test]
    fn bucket_names_follow_aws_rules() {
        for ok in ["abc", "my-bucket.1", "a1b"] {
            assert!(valid_bucket_name(ok), "{ok}");
        }
        for bad in [
            "ab",
            "Abc",
            "-abc",
            "abc-",
            "a..b",
            "192.168.1.1",
            "xn--abc",
            "a_b",
            "_sluice",
        ] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
    }

    #[test]
    fn long_and_nul_keys_are_refused() {
        let q = Query::default();
        let long = Target {
            bucket: Some("b".into()),
            key: Some("k".repeat(1025)),
            virtual_host: false,
        };
        let e = route(&Method::PUT, &long, &q, None).unwrap_err();
        assert_eq!(e.code, ErrorCode::KeyTooLongError);
        let nul = Target {
            bucket: Some("b".into()),
            key: Some("a\0b".into()),
            virtual_host: false,
        };
        assert!(route(&Method::PUT, &nul, &q, None).is_err());
    }

    #[test]
    fn unsupported_configurations_read_and_delete_but_never_set() {
        let bucket = Target {
            bucket: Some("b".into()),
            key: None,
            virtual_host: false,
        };
        for config in UnsupportedConfig::ALL {
            let q = Query::parse(config.subresource()).unwrap();
            assert_eq!(
                route(&Method::GET, &bucket, &q, None).unwrap(),
                Endpoint::GetUnsupportedConfig {
                    bucket: "b".into(),
                    config
                }
            );
            let put = route(&Method::PUT, &bucket, &q, None).unwrap_err();
            assert_eq!(put.code, ErrorCode::NotImplemented, "{config:?}");
            let post = route(&Method::POST, &bucket, &q, None).unwrap_err();
            assert_eq!(post.code, ErrorCode::MethodNotAllowed, "{config:?}");
            let delete = route(&Method::DELETE, &bucket, &q, None);
            match config {
                UnsupportedConfig::Website => assert_eq!(
                    delete.unwrap(),
                    Endpoint::DeleteBucketWebsite { bucket: "b".into() }
                ),
                _ => assert_eq!(delete.unwrap_err().code, ErrorCode::MethodNotAllowed),
            }
        }
    }
}
