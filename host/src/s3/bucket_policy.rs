//! PutBucketPolicy, GetBucketPolicy, DeleteBucketPolicy and GetBucketPolicyStatus. The JSON is
//! stored as given and its Cedar translation beside it; the engine holds the translation.

use axum::body::Body;
use http::{HeaderValue, Response, StatusCode};
use serde::{Deserialize, Serialize};

use super::error::{ErrorCode, S3Error, S3Result};
use super::xml::XmlWriter;
use super::{App, RequestCtx, empty_response, xml_response};
use crate::auth::iam::Iam;
use crate::policy::bucket_policy::{self, Directory, MAX_POLICY_BYTES};
use crate::policy::{BucketPolicySet, PolicyEngine};
use crate::store::Store;

/// The policy JSON as the client sent it.
const POLICY: &str = "policy";
/// Its translation (`StoredTranslation`).
const POLICY_CEDAR: &str = "policy-cedar";

#[derive(Serialize, Deserialize)]
struct StoredTranslation {
    cedar: String,
    public: bool,
}

/// Names in a policy resolved against the IAM store.
struct IamDirectory<'a>(&'a Iam);

impl Directory for IamDirectory<'_> {
    fn user_id(&self, name: &str) -> Option<String> {
        self.0.user_id(name).ok()
    }
    fn root_id(&self) -> Option<String> {
        self.0.root_id().ok()
    }
    fn role_exists(&self, name: &str) -> bool {
        matches!(self.0.find_role(name), Ok(Some(_)))
    }
}

fn no_policy(bucket: &str) -> S3Error {
    S3Error::new(
        ErrorCode::NoSuchBucketPolicy,
        "The bucket policy does not exist",
    )
    .with("BucketName", bucket)
}

async fn stored_translation(
    store: &dyn Store,
    bucket: &str,
) -> S3Result<Option<StoredTranslation>> {
    match store.bucket_config(bucket, POLICY_CEDAR).await? {
        Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(S3Error::internal)?)),
        None => Ok(None),
    }
}

/// Hands the engine the bucket's current policy (with its public access block applied).
pub async fn refresh(app: &App, bucket: &str) -> S3Result<()> {
    refresh_in(app.store.as_ref(), &app.policy, bucket).await
}

/// [`refresh`] for a store and an engine (the offline `policy explain` has no `App`).
/// Reading the store and setting the engine happen under the engine's bucket-policy lock, so
/// the last refresh to start always sets what the store holds after every earlier change.
pub async fn refresh_in(store: &dyn Store, engine: &PolicyEngine, bucket: &str) -> S3Result<()> {
    let _serial = engine.bucket_policy_lock.lock().await;
    let Some(stored) = stored_translation(store, bucket).await? else {
        engine.set_bucket_policies(bucket, None);
        return Ok(());
    };
    let pab = super::bucket_config::public_access_block_of(store, bucket).await?;
    let policies = bucket_policy::from_stored(&stored.cedar).map_err(S3Error::internal)?;
    engine.set_bucket_policies(
        bucket,
        Some(BucketPolicySet {
            policies,
            restrict_public: stored.public && pab.is_some_and(|p| p.restrict_public_buckets),
        }),
    );
    Ok(())
}

/// Loads every bucket's policy into the engine (at start-up).
pub async fn load_all(store: &dyn Store, engine: &PolicyEngine) -> S3Result<usize> {
    let mut n = 0;
    for b in store.list_buckets().await? {
        refresh_in(store, engine, &b.name).await?;
        n += usize::from(stored_translation(store, &b.name).await?.is_some());
    }
    Ok(n)
}

pub async fn put(ctx: &mut RequestCtx<'_>, bucket: &str) -> S3Result<Response<Body>> {
    ctx.existing_bucket(bucket).await?;
    let body = ctx.read_small_body(MAX_POLICY_BYTES as u64 + 1).await?;
    let malformed = |m: String| S3Error::new(ErrorCode::MalformedPolicy, m);
    let text = std::str::from_utf8(&body)
        .map_err(|_| malformed("Policies must be valid UTF-8 JSON".into()))?;
    let translated = bucket_policy::translate(bucket, text, &IamDirectory(&ctx.app.iam))
        .map_err(|e| malformed(e.0))?;
    let pab = super::bucket_config::public_access_block(ctx, bucket).await?;
    if translated.public && pab.is_some_and(|p| p.block_public_policy) {
        return Err(S3Error::new(
            ErrorCode::AccessDenied,
            "User is not authorized to perform: s3:PutBucketPolicy on resource because public policies are blocked by the BlockPublicPolicy block public access setting.",
        ));
    }
    let stored = serde_json::to_vec(&StoredTranslation {
        cedar: translated.cedar,
        public: translated.public,
    })
    .map_err(S3Error::internal)?;
    let store = &ctx.app.store;
    store
        .put_bucket_config(bucket, POLICY_CEDAR, Some(stored))
        .await?;
    store
        .put_bucket_config(bucket, POLICY, Some(body.to_vec()))
        .await?;
    refresh(ctx.app, bucket).await?;
    tracing::info!(
        bucket,
        statements = translated.policies.len(),
        public = translated.public,
        "bucket policy set"
    );
    Ok(empty_response(StatusCode::NO_CONTENT))
}

pub async fn get(ctx: &mut RequestCtx<'_>, bucket: &str) -> S3Result<Response<Body>> {
    ctx.existing_bucket(bucket).await?;
    let Some(json) = ctx.app.store.bucket_config(bucket, POLICY).await? else {
        return Err(no_policy(bucket));
    };
    let mut r = Response::new(Body::from(json));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

pub async fn delete(ctx: &mut RequestCtx<'_>, bucket: &str) -> S3Result<Response<Body>> {
    ctx.existing_bucket(bucket).await?;
    let store = &ctx.app.store;
    store.put_bucket_config(bucket, POLICY, None).await?;
    store.put_bucket_config(bucket, POLICY_CEDAR, None).await?;
    refresh(ctx.app, bucket).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

pub async fn status(ctx: &mut RequestCtx<'_>, bucket: &str) -> S3Result<Response<Body>> {
    ctx.existing_bucket(bucket).await?;
    let Some(stored) = stored_translation(ctx.app.store.as_ref(), bucket).await? else {
        return Err(no_policy(bucket));
    };
    let mut w = XmlWriter::new("PolicyStatus");
    w.elem("IsPublic", if stored.public { "true" } else { "false" });
    Ok(xml_response(StatusCode::OK, w.finish("PolicyStatus")))
}
