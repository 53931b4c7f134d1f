//! From an S3 request to a Cedar decision: the action its endpoint names, the resource (the
//! server, a bucket, or an object in it) with the facts policies may test, and the context.
//! The decision itself is the policy engine's; this module only gathers the inputs.

use std::net::IpAddr;

use http::HeaderMap;

use super::App;
use super::acl::AclMode;
use super::auth::AuthMethod;
use super::error::{S3Error, S3Result};
use super::router::{Endpoint, Query};
use crate::auth::Principal;
use crate::plugins::bindings::authorizer::exports::sluice::plugin::authorization::AccessRequest as AuthzRequest;
use crate::policy::entities::{BucketFacts, ObjectFacts, RequestContext};
use crate::policy::{AccessRequest, Resource};
use crate::store::{BucketInfo, Store};

/// Who asks, and how the request reached us.
pub struct Caller<'a> {
    pub principal: &'a Principal,
    pub method: AuthMethod,
    pub source_ip: Option<IpAddr>,
    pub secure: bool,
    pub headers: &'a HeaderMap,
    pub query: Option<&'a Query>,
}

impl Caller<'_> {
    fn auth_method(&self) -> &'static str {
        match (self.method, self.principal) {
            (AuthMethod::Anonymous, _) => "anonymous",
            (AuthMethod::Plugin, _) => "plugin",
            (_, Principal::Role { .. }) => "sts",
            (AuthMethod::Presigned, _) => "presigned",
            (AuthMethod::Header, _) => "sigv4-header",
        }
    }

    /// The Cedar context of this request (`endpoint` adds the listing parameters).
    pub fn context(&self, endpoint: Option<&Endpoint>) -> RequestContext {
        let mut c = RequestContext::new(self.auth_method()).with_headers(self.headers);
        c.source_ip = self.source_ip;
        c.secure_transport = self.secure;
        let listing = matches!(
            endpoint,
            Some(
                Endpoint::ListObjects { .. }
                    | Endpoint::ListObjectsV2 { .. }
                    | Endpoint::ListObjectVersions { .. }
                    | Endpoint::ListMultipartUploads { .. }
            )
        );
        if let (true, Some(q)) = (listing, self.query) {
            c.prefix = Some(q.get("prefix").unwrap_or("").to_string());
            c.delimiter = q.get("delimiter").map(str::to_string);
            c.max_keys = q.get("max-keys").and_then(|m| m.parse().ok());
        }
        c
    }
}

/// The facts policies see about an existing bucket, and how ACLs apply in it.
pub async fn bucket_facts(
    store: &dyn Store,
    info: &BucketInfo,
) -> S3Result<(BucketFacts, AclMode)> {
    let (mode, acl) = super::acl::bucket_acl(store, info).await?;
    Ok((
        BucketFacts {
            name: info.name.clone(),
            owner: info.owner_id.clone(),
            acl,
        },
        mode,
    ))
}

/// Whether an operation reads the object's metadata anyway, so its owner, size and tags are
/// worth giving the policies.
fn reads_object(action: &str) -> bool {
    matches!(
        action,
        "s3:GetObject"
            | "s3:GetObjectAttributes"
            | "s3:GetObjectTagging"
            | "s3:PutObjectTagging"
            | "s3:DeleteObjectTagging"
            | "s3:GetObjectAcl"
            | "s3:PutObjectAcl"
    )
}

/// The facts policies see about an object.
pub async fn object_facts(
    store: &dyn Store,
    bucket: &str,
    key: &str,
    action: &str,
    acl_mode: AclMode,
    needs_meta: bool,
) -> ObjectFacts {
    let mut facts = ObjectFacts {
        key: key.to_string(),
        ..ObjectFacts::default()
    };
    if reads_object(action)
        && (acl_mode.enabled || needs_meta)
        && let Ok(Some(meta)) = store.object(bucket, key).await
    {
        if acl_mode.enabled {
            let acl = meta
                .acl
                .clone()
                .unwrap_or_else(|| crate::store::acl::Acl::private(&meta.owner_id));
            facts.acl = Some(super::acl::sets(&acl, acl_mode.ignore_public));
        }
        facts.owner = Some(meta.owner_id);
        facts.size = Some(meta.size);
        facts.tags = meta.tags;
    }
    facts
}

/// The resource as an ARN, for authorizer plugins.
fn resource_arn(resource: &Resource<'_>) -> String {
    match resource {
        Resource::Node => "*".to_string(),
        Resource::Key(id) => format!("arn:aws:kms:::key/{id}"),
        Resource::Bucket(b) => format!("arn:aws:s3:::{}", b.name),
        Resource::Object(b, o) => format!("arn:aws:s3:::{}/{}", b.name, o.key),
    }
}

/// Asks the authorizer plugins, in order, about a request Cedar allowed. Any deny wins (its
/// reason is logged; the client sees AccessDenied); a plugin that fails fails closed.
pub async fn consult_authorizers(
    app: &App,
    principal: &Principal,
    action: &str,
    resource: &Resource<'_>,
    context: &RequestContext,
) -> S3Result<()> {
    if !app.plugins.has_authorizers() {
        return Ok(());
    }
    let groups = match principal {
        Principal::User { id, .. } => app.policy.groups_of(id),
        Principal::External { groups, .. } => groups.clone(),
        _ => Vec::new(),
    };
    let (uid, _) =
        crate::policy::entities::principal_entity(principal, &[]).map_err(S3Error::internal)?;
    let view = principal
        .id()
        .map(|id| crate::plugins::bindings::types::Principal {
            subject: id.to_string(),
            display_name: principal.display_name().to_string(),
            groups,
            attributes: match principal {
                Principal::External { attributes, .. } => attributes.clone(),
                _ => Vec::new(),
            },
        });
    let request = AuthzRequest {
        principal_uid: uid.to_string(),
        principal: view,
        action: action.to_string(),
        resource: resource_arn(resource),
        context_json: context.to_json().to_string(),
    };
    for plugin in app.plugins.authorizers() {
        match plugin.authorize(&request).await {
            Ok(None) => {}
            Ok(Some(reason)) => {
                tracing::info!(
                    plugin = plugin.name(),
                    action,
                    principal = principal.display_name(),
                    resource = %request.resource,
                    reason,
                    "authorizer plugin denied"
                );
                return Err(S3Error::access_denied());
            }
            Err(e) => {
                tracing::warn!(plugin = plugin.name(), action, "authorizer failed: {e}");
                return Err(if e.is_transient() {
                    S3Error::new(
                        super::error::ErrorCode::ServiceUnavailable,
                        "An authorization service is unavailable; please retry.",
                    )
                } else {
                    S3Error::access_denied()
                });
            }
        }
    }
    Ok(())
}

/// Asks the engine, then the authorizer plugins; a deny is `AccessDenied`, with the deciding
/// policies (or the plugin's reason) in the log.
pub async fn decide(
    app: &App,
    principal: &Principal,
    action: &str,
    resource: Resource<'_>,
    context: &RequestContext,
) -> S3Result<()> {
    let decision = app.policy.decide(&AccessRequest {
        principal,
        action,
        resource,
        context,
    });
    for e in &decision.errors {
        tracing::debug!(action, "policy evaluation error: {e}");
    }
    if !decision.allowed {
        tracing::debug!(
            action,
            principal = principal.display_name(),
            policies = ?decision.determining,
            "denied"
        );
        return Err(S3Error::access_denied());
    }
    tracing::debug!(action, policies = ?decision.determining, "allowed");
    consult_authorizers(app, principal, action, &resource, context).await
}

/// Authorizes `action` on an object of an existing bucket.
pub async fn authorize_object(
    app: &App,
    caller: &Caller<'_>,
    endpoint: Option<&Endpoint>,
    action: &str,
    bucket: &BucketInfo,
    key: &str,
) -> S3Result<()> {
    let context = caller.context(endpoint);
    authorize_object_in(app, caller, action, bucket, key, &context).await
}

async fn authorize_object_in(
    app: &App,
    caller: &Caller<'_>,
    action: &str,
    bucket: &BucketInfo,
    key: &str,
    context: &RequestContext,
) -> S3Result<()> {
    let store = app.store.as_ref();
    let (b, mode) = bucket_facts(store, bucket).await?;
    let needs_meta = app
        .policy
        .needs_object_facts(caller.principal, action, &bucket.name);
    let o = object_facts(store, &bucket.name, key, action, mode, needs_meta).await;
    decide(
        app,
        caller.principal,
        action,
        Resource::Object(&b, &o),
        context,
    )
    .await
}

/// The answer to a GET, HEAD or GetObjectAttributes of a missing object, or to a copy from a
/// missing source, as S3 gives it: 404 NoSuchKey to a caller who may list the bucket (a listing
/// would show the key is absent anyway), 403 AccessDenied to anyone else, so that these reads
/// cannot probe which keys exist.
pub async fn missing_object(
    app: &App,
    caller: &Caller<'_>,
    bucket: &BucketInfo,
    key: &str,
) -> S3Error {
    let facts = match bucket_facts(app.store.as_ref(), bucket).await {
        Ok((facts, _)) => facts,
        Err(e) => return e,
    };
    let context = caller.context(None);
    match decide(
        app,
        caller.principal,
        "s3:ListBucket",
        Resource::Bucket(&facts),
        &context,
    )
    .await
    {
        Ok(()) => S3Error::no_such_key(key),
        Err(e) => e,
    }
}

/// The answer to a denied read of `key`: when the key is missing, that of a read of a missing
/// object (see `missing_object`), so that a denial says no more about which keys exist than a
/// miss does; otherwise the denial itself. The existence check costs a lookup on denials only.
pub async fn denied_read(
    app: &App,
    caller: &Caller<'_>,
    bucket: &BucketInfo,
    key: &str,
    denied: S3Error,
) -> S3Error {
    if denied.code != super::error::ErrorCode::AccessDenied {
        return denied;
    }
    match app.store.object(&bucket.name, key).await {
        Ok(None) => missing_object(app, caller, bucket, key).await,
        Ok(Some(_)) => denied,
        Err(e) => e.into(),
    }
}

/// Authorizes one endpoint. `bucket` is the addressed bucket as it exists now (`None` when it
/// does not); a missing bucket answers NoSuchBucket to everyone, as S3 does. Deciding here
/// (rather than letting the request through) means a bucket created meanwhile is never
/// written unchecked. DeleteObjects is decided per key by the operation itself.
pub async fn authorize(
    app: &App,
    caller: &Caller<'_>,
    endpoint: &Endpoint,
    bucket: Option<&BucketInfo>,
) -> S3Result<()> {
    let action = endpoint.action();
    let context = caller.context(Some(endpoint));
    match endpoint {
        Endpoint::ListBuckets => {
            return decide(app, caller.principal, action, Resource::Node, &context).await;
        }
        Endpoint::CreateBucket { bucket } => {
            let b = BucketFacts {
                name: bucket.clone(),
                ..BucketFacts::default()
            };
            return decide(
                app,
                caller.principal,
                action,
                Resource::Bucket(&b),
                &context,
            )
            .await;
        }
        _ => {}
    }
    let Some(info) = bucket else {
        return Err(S3Error::no_such_bucket(endpoint.bucket().unwrap_or("")));
    };
    if let Endpoint::DeleteObjects { .. } = endpoint {
        return Ok(());
    }
    match endpoint.key() {
        Some(key) => {
            let decided = authorize_object_in(app, caller, action, info, key, &context).await;
            // A read of a missing object is answered by whether the caller may list the bucket,
            // whatever it may read (see `missing_object`).
            match decided {
                Err(e)
                    if matches!(
                        endpoint,
                        Endpoint::GetObject { .. }
                            | Endpoint::HeadObject { .. }
                            | Endpoint::GetObjectAttributes { .. }
                    ) =>
                {
                    Err(denied_read(app, caller, info, key, e).await)
                }
                decided => decided,
            }
        }
        None => {
            let (b, _) = bucket_facts(app.store.as_ref(), info).await?;
            decide(
                app,
                caller.principal,
                action,
                Resource::Bucket(&b),
                &context,
            )
            .await
        }
    }
}
