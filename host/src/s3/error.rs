//! S3 errors: the one place where an error becomes an S3 code, an HTTP status and an XML body.

use http::StatusCode;

use super::body::BodyError;
use crate::store::StoreError;

/// S3 error codes Sluice answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    AccessDenied,
    AccessForbidden,
    BadRequest,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    BadDigest,
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    ConditionalRequestConflict,
    EntityTooLarge,
    EntityTooSmall,
    IllegalLocationConstraintException,
    IncompleteBody,
    InternalError,
    InvalidAccessKeyId,
    InvalidArgument,
    ExpiredToken,
    InvalidToken,
    InvalidBucketName,
    InvalidDigest,
    InvalidLocationConstraint,
    InvalidPart,
    InvalidPartNumber,
    InvalidPartOrder,
    InvalidRange,
    InvalidRequest,
    InvalidStorageClass,
    InvalidTag,
    InvalidURI,
    KeyTooLongError,
    MalformedPOSTRequest,
    MalformedXML,
    MetadataTooLarge,
    MethodNotAllowed,
    MissingContentLength,
    MissingSecurityHeader,
    NoSuchBucket,
    NoSuchKey,
    NoSuchTagSet,
    NoSuchUpload,
    NoSuchVersion,
    NotImplemented,
    NotModified,
    PreconditionFailed,
    RequestTimeout,
    RequestTimeTooSkewed,
    ServiceUnavailable,
    SignatureDoesNotMatch,
    XAmzContentSHA256Mismatch,
    // Admin API
    NoSuchEntity,
    EntityAlreadyExists,
    NoSuchCORSConfiguration,
    NoSuchPublicAccessBlockConfiguration,
    OwnershipControlsNotFoundError,
    MalformedPolicy,
    NoSuchBucketPolicy,
    AccessControlListNotSupported,
    InvalidBucketAclWithObjectOwnership,
    UnresolvableGrantByEmailAddress,
    UnexpectedContent,
    // Server-side encryption
    ServerSideEncryptionConfigurationNotFoundError,
    ReplicationConfigurationNotFoundError,
    // Configurations Sluice has no support for (never set on any bucket).
    NoSuchLifecycleConfiguration,
    NoSuchWebsiteConfiguration,
    ObjectLockConfigurationNotFoundError,
    KmsDisabled,
    KmsNotFound,
    KmsInvalidState,
    KmsInvalidCiphertext,
    KmsInternal,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            AccessDenied
            | AccessForbidden
            | InvalidAccessKeyId
            | SignatureDoesNotMatch
            | RequestTimeTooSkewed => StatusCode::FORBIDDEN,
            NoSuchBucket
            | NoSuchKey
            | NoSuchTagSet
            | NoSuchUpload
            | NoSuchVersion
            | NoSuchEntity
            | NoSuchCORSConfiguration
            | NoSuchPublicAccessBlockConfiguration
            | OwnershipControlsNotFoundError
            | NoSuchBucketPolicy
            | ServerSideEncryptionConfigurationNotFoundError
            | ReplicationConfigurationNotFoundError
            | NoSuchLifecycleConfiguration
            | NoSuchWebsiteConfiguration
            | ObjectLockConfigurationNotFoundError => StatusCode::NOT_FOUND,
            BucketAlreadyExists
            | BucketAlreadyOwnedByYou
            | BucketNotEmpty
            | ConditionalRequestConflict
            | EntityAlreadyExists => StatusCode::CONFLICT,
            PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            NotModified => StatusCode::NOT_MODIFIED,
            InvalidRange | InvalidPartNumber => StatusCode::RANGE_NOT_SATISFIABLE,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            MissingContentLength => StatusCode::LENGTH_REQUIRED,
            NotImplemented => StatusCode::NOT_IMPLEMENTED,
            ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            InternalError | KmsInternal => StatusCode::INTERNAL_SERVER_ERROR,
            KmsInvalidCiphertext => StatusCode::FORBIDDEN,
            // Everything else is a client error in the request itself.
            _ => StatusCode::BAD_REQUEST,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            AccessDenied => "AccessDenied",
            AccessForbidden => "AccessForbidden",
            BadRequest => "BadRequest",
            NoSuchCORSConfiguration => "NoSuchCORSConfiguration",
            NoSuchPublicAccessBlockConfiguration => "NoSuchPublicAccessBlockConfiguration",
            OwnershipControlsNotFoundError => "OwnershipControlsNotFoundError",
            MalformedPolicy => "MalformedPolicy",
            NoSuchBucketPolicy => "NoSuchBucketPolicy",
            AccessControlListNotSupported => "AccessControlListNotSupported",
            InvalidBucketAclWithObjectOwnership => "InvalidBucketAclWithObjectOwnership",
            UnresolvableGrantByEmailAddress => "UnresolvableGrantByEmailAddress",
            UnexpectedContent => "UnexpectedContent",
            ServerSideEncryptionConfigurationNotFoundError => {
                "ServerSideEncryptionConfigurationNotFoundError"
            }
            ReplicationConfigurationNotFoundError => "ReplicationConfigurationNotFoundError",
            NoSuchLifecycleConfiguration => "NoSuchLifecycleConfiguration",
            NoSuchWebsiteConfiguration => "NoSuchWebsiteConfiguration",
            ObjectLockConfigurationNotFoundError => "ObjectLockConfigurationNotFoundError",
            KmsDisabled => "KMS.DisabledException",
            KmsNotFound => "KMS.NotFoundException",
            KmsInvalidState => "KMS.KMSInvalidStateException",
            KmsInvalidCiphertext => "KMS.InvalidCiphertextException",
            KmsInternal => "KMS.KMSInternalException",
            AuthorizationHeaderMalformed => "AuthorizationHeaderMalformed",
            AuthorizationQueryParametersError => "AuthorizationQueryParametersError",
            BadDigest => "BadDigest",
            BucketAlreadyExists => "BucketAlreadyExists",
            BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            BucketNotEmpty => "BucketNotEmpty",
            ConditionalRequestConflict => "ConditionalRequestConflict",
            EntityTooLarge => "EntityTooLarge",
            EntityTooSmall => "EntityTooSmall",
            IllegalLocationConstraintException => "IllegalLocationConstraintException",
            IncompleteBody => "IncompleteBody",
            InternalError => "InternalError",
            InvalidAccessKeyId => "InvalidAccessKeyId",
            ExpiredToken => "ExpiredToken",
            InvalidToken => "InvalidToken",
            InvalidArgument => "InvalidArgument",
            InvalidBucketName => "InvalidBucketName",
            InvalidDigest => "InvalidDigest",
            InvalidLocationConstraint => "InvalidLocationConstraint",
            InvalidPart => "InvalidPart",
            InvalidPartNumber => "InvalidPartNumber",
            InvalidPartOrder => "InvalidPartOrder",
            InvalidRange => "InvalidRange",
            InvalidRequest => "InvalidRequest",
            InvalidStorageClass => "InvalidStorageClass",
            InvalidTag => "InvalidTag",
            InvalidURI => "InvalidURI",
            KeyTooLongError => "KeyTooLongError",
            MalformedPOSTRequest => "MalformedPOSTRequest",
            MalformedXML => "MalformedXML",
            MetadataTooLarge => "MetadataTooLarge",
            MethodNotAllowed => "MethodNotAllowed",
            MissingContentLength => "MissingContentLength",
            MissingSecurityHeader => "MissingSecurityHeader",
            NoSuchBucket => "NoSuchBucket",
            NoSuchKey => "NoSuchKey",
            NoSuchTagSet => "NoSuchTagSet",
            NoSuchUpload => "NoSuchUpload",
            NoSuchVersion => "NoSuchVersion",
            NotImplemented => "NotImplemented",
            NotModified => "NotModified",
            PreconditionFailed => "PreconditionFailed",
            RequestTimeout => "RequestTimeout",
            RequestTimeTooSkewed => "RequestTimeTooSkewed",
            ServiceUnavailable => "ServiceUnavailable",
            SignatureDoesNotMatch => "SignatureDoesNotMatch",
            XAmzContentSHA256Mismatch => "XAmzContentSHA256Mismatch",
            NoSuchEntity => "NoSuchEntity",
            EntityAlreadyExists => "EntityAlreadyExists",
        }
    }
}

/// An error answered to an S3 client.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct S3Error {
    pub code: ErrorCode,
    pub message: String,
    /// Extra elements for the XML body (e.g. `BucketName`, `Key`).
    pub details: Vec<(&'static str, String)>,
}

pub type S3Result<T> = Result<T, S3Error>;

impl S3Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> S3Error {
        S3Error {
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> S3Error {
        self.details.push((name, value.into()));
        self
    }

    pub fn access_denied() -> S3Error {
        S3Error::new(ErrorCode::AccessDenied, "Access Denied")
    }

    pub fn internal(e: impl std::fmt::Display) -> S3Error {
        tracing::error!(error = %e, "internal error");
        S3Error::new(
            ErrorCode::InternalError,
            "We encountered an internal error. Please try again.",
        )
    }

    pub fn no_such_bucket(bucket: &str) -> S3Error {
        S3Error::new(
            ErrorCode::NoSuchBucket,
            "The specified bucket does not exist",
        )
        .with("BucketName", bucket)
    }

    pub fn no_such_key(key: &str) -> S3Error {
        S3Error::new(ErrorCode::NoSuchKey, "The specified key does not exist.").with("Key", key)
    }

    pub fn malformed_xml() -> S3Error {
        S3Error::new(
            ErrorCode::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema",
        )
    }

    pub fn malformed_post() -> S3Error {
        S3Error::new(
            ErrorCode::MalformedPOSTRequest,
            "The body of your POST request is not well-formed multipart/form-data.",
        )
    }

    pub fn precondition_failed(condition: &str) -> S3Error {
        S3Error::new(
            ErrorCode::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold",
        )
        .with("Condition", condition)
    }

    pub fn invalid_argument(message: impl Into<String>) -> S3Error {
        S3Error::new(ErrorCode::InvalidArgument, message)
    }

    /// A header or query asks for something Sluice does not implement (`what` names it).
    pub fn not_implemented(what: &str) -> S3Error {
        S3Error::new(
            ErrorCode::NotImplemented,
            format!(
                "A header or query you provided implies functionality that is not implemented: {what}"
            ),
        )
    }
}

impl S3Error {
    /// A store error about object `key`: `NoSuchKey` names the key, as S3 does.
    pub fn for_key(e: StoreError, key: &str) -> S3Error {
        match e {
            StoreError::NoSuchKey => S3Error::no_such_key(key),
            other => other.into(),
        }
    }
}

impl From<crate::crypto::KeyError> for S3Error {
    fn from(e: crate::crypto::KeyError) -> S3Error {
        use crate::crypto::KeyError;
        match e {
            KeyError::NoProvider => S3Error::invalid_argument(
                "Server Side Encryption with KMS is not available: no key provider is configured",
            )
            .with("ArgumentName", "x-amz-server-side-encryption"),
            KeyError::Kms { code, message } => {
                let known = match code.as_str() {
                    "KMS.DisabledException" => Some(ErrorCode::KmsDisabled),
                    "KMS.NotFoundException" => Some(ErrorCode::KmsNotFound),
                    "KMS.KMSInvalidStateException" => Some(ErrorCode::KmsInvalidState),
                    "KMS.InvalidCiphertextException" => Some(ErrorCode::KmsInvalidCiphertext),
                    _ => None,
                };
                match known {
                    Some(code) => S3Error::new(code, message),
                    // Internal failures are logged; the client gets no provider internals.
                    None => {
                        tracing::error!(%code, %message, "key provider error");
                        S3Error::new(ErrorCode::KmsInternal, "The key provider failed.")
                    }
                }
            }
            KeyError::CustomerKeyMismatch => S3Error::new(
                ErrorCode::AccessDenied,
                "The SSE-C key provided does not match the key the object was encrypted with.",
            ),
            KeyError::Plugin(p) if p.is_transient() => {
                tracing::warn!(error = %p, "key provider unavailable");
                S3Error::new(
                    ErrorCode::ServiceUnavailable,
                    "The key provider is unavailable; please retry.",
                )
            }
            KeyError::Plugin(p) => {
                tracing::error!(error = %p, "key provider failed");
                S3Error::new(ErrorCode::KmsInternal, "The key provider failed.")
            }
            other @ KeyError::Corrupt(_) => S3Error::internal(other),
        }
    }
}

impl From<StoreError> for S3Error {
    fn from(e: StoreError) -> S3Error {
        match e {
            StoreError::NoSuchBucket(b) => S3Error::no_such_bucket(&b),
            StoreError::BucketExists { bucket, .. } => S3Error::new(
                ErrorCode::BucketAlreadyExists,
                "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.",
            )
            .with("BucketName", bucket),
            StoreError::BucketNotEmpty(b) => S3Error::new(
                ErrorCode::BucketNotEmpty,
                "The bucket you tried to delete is not empty",
            )
            .with("BucketName", b),
            StoreError::NoSuchKey => {
                S3Error::new(ErrorCode::NoSuchKey, "The specified key does not exist.")
            }
            StoreError::PreconditionFailed => S3Error::precondition_failed("If-Match"),
            StoreError::ConditionalConflict => S3Error::new(
                ErrorCode::ConditionalRequestConflict,
                "A conflicting operation occurred. If using PutObject you can retry the request.",
            ),
            StoreError::TooLarge(max) => S3Error::new(
                ErrorCode::EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed size",
            )
            .with("MaxSizeAllowed", max.to_string()),
            StoreError::IncompleteBody => S3Error::new(
                ErrorCode::IncompleteBody,
                "You did not provide the number of bytes specified by the Content-Length HTTP header",
            ),
            StoreError::Body(io) => match io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<BodyError>())
            {
                Some(be) => be.to_s3(),
                None => S3Error::new(
                    ErrorCode::IncompleteBody,
                    "The request body ended before it was complete",
                ),
            },
            StoreError::NoSuchUpload => S3Error::new(
                ErrorCode::NoSuchUpload,
                "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
            ),
            StoreError::InvalidPart(n) => S3Error::new(
                ErrorCode::InvalidPart,
                "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
            )
            .with("PartNumber", n.to_string()),
            StoreError::InvalidPartChecksum(n) => S3Error::new(
                ErrorCode::InvalidPart,
                format!("The checksum of part {n} does not match the checksum of the uploaded part"),
            )
            .with("PartNumber", n.to_string()),
            StoreError::InvalidPartOrder => S3Error::new(
                ErrorCode::InvalidPartOrder,
                "The list of parts was not in ascending order. Parts must be ordered by part number.",
            ),
            StoreError::EntityTooSmall(n) => S3Error::new(
                ErrorCode::EntityTooSmall,
                "Your proposed upload is smaller than the minimum allowed object size.",
            )
            .with("PartNumber", n.to_string())
            .with("MinSizeAllowed", "5242880"),
            other @ (StoreError::Io(_)
            | StoreError::Meta(_)
            | StoreError::Corrupt(_)
            | StoreError::Encrypted) => {
                S3Error::internal(other)
            }
        }
    }
}
