//! Authorization step of the pipeline. Until Cedar arrives: root may do everything, a user (an
//! IAM user or a principal an authenticator plugin vouched for) may create buckets and do
//! everything on the buckets it owns, anonymous may do nothing.
//! `bucket` is the addressed bucket as it exists now (`None` when it does not).

pub mod trust;

use crate::auth::Principal;
use crate::s3::error::{S3Error, S3Result};
use crate::s3::router::Endpoint;
use crate::store::BucketInfo;

/// Decides whether `principal` may perform `endpoint` on the addressed bucket.
pub fn authorize(
    principal: &Principal,
    endpoint: &Endpoint,
    bucket: Option<&BucketInfo>,
) -> S3Result<()> {
    if let Endpoint::ListBuckets | Endpoint::CreateBucket { .. } = endpoint {
        return match principal {
            Principal::Anonymous => Err(S3Error::access_denied()),
            Principal::Root { .. }
            | Principal::User { .. }
            | Principal::External { .. }
            | Principal::Role { .. } => Ok(()),
        };
    }
    // A missing bucket answers NoSuchBucket to everyone, as S3 does; deciding here (rather than
    // letting the request through) means a bucket created meanwhile is never written unchecked.
    let Some(bucket) = bucket else {
        return Err(S3Error::no_such_bucket(endpoint.bucket().unwrap_or("")));
    };
    match principal {
        Principal::Root { .. } => Ok(()),
        Principal::User { id, .. }
        | Principal::External { id, .. }
        | Principal::Role { id, .. }
            if bucket.owner_id == *id =>
        {
            Ok(())
        }
        Principal::User { .. }
        | Principal::External { .. }
        | Principal::Role { .. }
        | Principal::Anonymous => Err(S3Error::access_denied()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(owner: &str) -> BucketInfo {
        BucketInfo {
            name: "b".into(),
            owner_id: owner.into(),
            created: 0,
            region: "us-east-1".into(),
        }
    }

    #[test]
    fn owners_root_and_anonymous() {
        let alice = Principal::User {
            id: "a".into(),
            name: "alice".into(),
            access_key: "AK".into(),
        };
        let get = Endpoint::GetObject {
            bucket: "b".into(),
            key: "k".into(),
        };
        assert!(authorize(&alice, &get, Some(&bucket("a"))).is_ok());
        assert!(authorize(&alice, &get, Some(&bucket("z"))).is_err());
        assert!(authorize(&Principal::Anonymous, &get, Some(&bucket("a"))).is_err());
        let root = Principal::Root {
            id: "r".into(),
            access_key: "R".into(),
        };
        assert!(authorize(&root, &get, Some(&bucket("a"))).is_ok());
    }
}
