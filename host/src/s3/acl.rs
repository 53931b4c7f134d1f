//! ACLs as S3 speaks them: canned ACLs (`x-amz-acl`), grant headers (`x-amz-grant-*`), the
//! AccessControlPolicy document, Get/Put Bucket/Object ACL, and the rules of object ownership
//! (`BucketOwnerEnforced` disables ACLs) and the public access block (`BlockPublicAcls`
//! refuses public grants, `IgnorePublicAcls` leaves them out of decisions). Decisions are
//! the policy engine's: ACLs become the `acl` attribute of bucket and object entities.

use std::collections::HashMap;

use axum::body::Body;
use http::{HeaderMap, Response, StatusCode};
use serde::Deserialize;

use super::error::{ErrorCode, S3Error, S3Result};
use super::xml::{self, XmlWriter};
use super::{App, RequestCtx, empty_response, xml_response};
use crate::policy::entities::{ALL_USERS, AUTHENTICATED_USERS, AclSets};
use crate::store::acl::{Acl, Grant, Grantee, Permission};
use crate::store::{BucketInfo, Store};

/// Bucket configuration kind of the bucket ACL.
const ACL: &str = "acl";
/// Bucket configuration kind of the ownership controls (shared with `bucket_config`).
const OWNERSHIP: &str = "ownershipControls";
const MAX_ACL_BODY: u64 = 64 * 1024;

const ALL_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTHENTICATED_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
const LOG_DELIVERY_URI: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

/// Object ownership (`ownershipControls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    BucketOwnerEnforced,
    BucketOwnerPreferred,
    ObjectWriter,
}

impl Ownership {
    pub fn parse(s: &str) -> Option<Ownership> {
        match s {
            "BucketOwnerEnforced" => Some(Ownership::BucketOwnerEnforced),
            "BucketOwnerPreferred" => Some(Ownership::BucketOwnerPreferred),
            "ObjectWriter" => Some(Ownership::ObjectWriter),
            _ => None,
        }
    }

    pub fn acls_enabled(self) -> bool {
        self != Ownership::BucketOwnerEnforced
    }
}

/// The bucket's object ownership: BucketOwnerEnforced for new buckets (as on AWS since 2023),
/// ObjectWriter once the controls are deleted.
pub async fn ownership(store: &dyn Store, bucket: &str) -> S3Result<Ownership> {
    Ok(match store.bucket_config(bucket, OWNERSHIP).await? {
        None => Ownership::BucketOwnerEnforced,
        Some(v) if v.is_empty() => Ownership::ObjectWriter,
        Some(v) => {
            Ownership::parse(&String::from_utf8_lossy(&v)).unwrap_or(Ownership::BucketOwnerEnforced)
        }
    })
}

/// Stores the ownership chosen at CreateBucket (`x-amz-object-ownership`).
pub async fn set_ownership(store: &dyn Store, bucket: &str, o: Ownership) -> S3Result<()> {
    let value = match o {
        Ownership::BucketOwnerEnforced => "BucketOwnerEnforced",
        Ownership::BucketOwnerPreferred => "BucketOwnerPreferred",
        Ownership::ObjectWriter => "ObjectWriter",
    };
    store
        .put_bucket_config(bucket, OWNERSHIP, Some(value.as_bytes().to_vec()))
        .await?;
    Ok(())
}

fn grantee_id(g: &Grantee) -> &str {
    match g {
        Grantee::User(id) => id,
        Grantee::AllUsers => ALL_USERS,
        Grantee::AuthenticatedUsers => AUTHENTICATED_USERS,
        Grantee::LogDelivery => "LogDelivery",
    }
}

/// The sets the policies test (`resource.acl`), FULL_CONTROL folded into all four.
pub fn sets(acl: &Acl, ignore_public: bool) -> AclSets {
    let mut s = AclSets {
        owner: acl.owner.clone(),
        ..AclSets::default()
    };
    for g in &acl.grants {
        if ignore_public && g.grantee.is_public() {
            continue;
        }
        let id = grantee_id(&g.grantee).to_string();
        let targets: &mut [&mut Vec<String>] = match g.permission {
            Permission::FullControl => {
                &mut [&mut s.read, &mut s.write, &mut s.read_acp, &mut s.write_acp]
            }
            Permission::Read => &mut [&mut s.read],
            Permission::Write => &mut [&mut s.write],
            Permission::ReadAcp => &mut [&mut s.read_acp],
            Permission::WriteAcp => &mut [&mut s.write_acp],
        };
        for t in targets.iter_mut() {
            if !t.contains(&id) {
                t.push(id.clone());
            }
        }
    }
    s
}

/// How ACLs apply in a bucket, as the policies need it.
#[derive(Debug, Clone, Copy)]
pub struct AclMode {
    pub enabled: bool,
    pub ignore_public: bool,
}

/// The bucket's ACL mode and its ACL sets (empty when ACLs are disabled).
pub async fn bucket_acl(store: &dyn Store, info: &BucketInfo) -> S3Result<(AclMode, AclSets)> {
    if !ownership(store, &info.name).await?.acls_enabled() {
        return Ok((
            AclMode {
                enabled: false,
                ignore_public: true,
            },
            AclSets::default(),
        ));
    }
    let ignore_public = super::bucket_config::public_access_block_of(store, &info.name)
        .await?
        .is_some_and(|p| p.ignore_public_acls);
    let acl = stored_bucket_acl(store, info).await?;
    Ok((
        AclMode {
            enabled: true,
            ignore_public,
        },
        sets(&acl, ignore_public),
    ))
}

async fn stored_bucket_acl(store: &dyn Store, info: &BucketInfo) -> S3Result<Acl> {
    Ok(match store.bucket_config(&info.name, ACL).await? {
        Some(v) => serde_json::from_slice(&v).map_err(S3Error::internal)?,
        None => Acl::private(&info.owner_id),
    })
}

fn canned(name: &str, owner: &str, bucket_owner: &str) -> S3Result<Acl> {
    let mut acl = Acl::private(owner);
    let mut add = |grantee: Grantee, permission: Permission| {
        acl.grants.push(Grant {
            grantee,
            permission,
        })
    };
    match name {
        "private" | "aws-exec-read" => {}
        "public-read" => add(Grantee::AllUsers, Permission::Read),
        "public-read-write" => {
            add(Grantee::AllUsers, Permission::Read);
            add(Grantee::AllUsers, Permission::Write);
        }
        "authenticated-read" => add(Grantee::AuthenticatedUsers, Permission::Read),
        "bucket-owner-read" => {
            if bucket_owner != owner {
                add(Grantee::User(bucket_owner.to_string()), Permission::Read)
            }
        }
        "bucket-owner-full-control" => {
            if bucket_owner != owner {
                add(
                    Grantee::User(bucket_owner.to_string()),
                    Permission::FullControl,
                )
            }
        }
        "log-delivery-write" => {
            add(Grantee::LogDelivery, Permission::Write);
            add(Grantee::LogDelivery, Permission::ReadAcp);
        }
        _ => {
            return Err(S3Error::invalid_argument("")
                .with("ArgumentName", "x-amz-acl")
                .with("ArgumentValue", name));
        }
    }
    Ok(acl)
}

fn grantee_from_uri(uri: &str) -> S3Result<Grantee> {
    match uri {
        ALL_USERS_URI => Ok(Grantee::AllUsers),
        AUTHENTICATED_USERS_URI => Ok(Grantee::AuthenticatedUsers),
        LOG_DELIVERY_URI => Ok(Grantee::LogDelivery),
        _ => Err(S3Error::invalid_argument("Invalid group uri")
            .with("ArgumentName", "uri")
            .with("ArgumentValue", uri)),
    }
}

fn grantee_from_id(id: &str) -> S3Result<Grantee> {
    let id = id.trim();
    let canonical = id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit());
    let plugin = id
        .split_once(':')
        .is_some_and(|(p, s)| !p.is_empty() && !s.is_empty());
    if !canonical && !plugin {
        return Err(S3Error::invalid_argument("Invalid id")
            .with("ArgumentName", "CanonicalUser/ID")
            .with("ArgumentValue", id));
    }
    Ok(Grantee::User(if canonical {
        id.to_ascii_lowercase()
    } else {
        id.to_string()
    }))
}

fn unresolvable_email() -> S3Error {
    S3Error::new(
        ErrorCode::UnresolvableGrantByEmailAddress,
        "The email address you provided does not match any account on record.",
    )
}

const GRANT_HEADERS: &[(&str, Permission)] = &[
    ("x-amz-grant-read", Permission::Read),
    ("x-amz-grant-write", Permission::Write),
    ("x-amz-grant-read-acp", Permission::ReadAcp),
    ("x-amz-grant-write-acp", Permission::WriteAcp),
    ("x-amz-grant-full-control", Permission::FullControl),
];

/// The ACL a request's headers ask for: a canned ACL or grant headers (not both), if any.
pub fn from_headers(headers: &HeaderMap, owner: &str, bucket_owner: &str) -> S3Result<Option<Acl>> {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let canned_name = h("x-amz-acl");
    let has_grants = GRANT_HEADERS.iter().any(|(n, _)| headers.contains_key(*n));
    if canned_name.is_some() && has_grants {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "Specifying both Canned ACLs and Header Grants is not allowed",
        ));
    }
    if let Some(name) = canned_name {
        return canned(name.trim(), owner, bucket_owner).map(Some);
    }
    if !has_grants {
        return Ok(None);
    }
    let mut acl = Acl {
        owner: owner.to_string(),
        grants: Vec::new(),
    };
    for (name, permission) in GRANT_HEADERS {
        let Some(value) = h(name) else { continue };
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (kind, v) = item.split_once('=').ok_or_else(|| {
                S3Error::invalid_argument("Invalid grant header")
                    .with("ArgumentName", *name)
                    .with("ArgumentValue", value)
            })?;
            let v = v.trim().trim_matches('"');
            let grantee = match kind.trim().to_ascii_lowercase().as_str() {
                "id" => grantee_from_id(v)?,
                "uri" => grantee_from_uri(v)?,
                "emailaddress" => return Err(unresolvable_email()),
                _ => {
                    return Err(S3Error::invalid_argument("Invalid grant header")
                        .with("ArgumentName", *name)
                        .with("ArgumentValue", value));
                }
            };
            acl.grants.push(Grant {
                grantee,
                permission: *permission,
            });
        }
    }
    Ok(Some(acl))
}

#[derive(Debug, Deserialize)]
struct PolicyDoc {
    #[serde(rename = "Owner")]
    owner: Option<OwnerDoc>,
    #[serde(rename = "AccessControlList")]
    list: Option<ListDoc>,
}

#[derive(Debug, Deserialize)]
struct OwnerDoc {
    #[serde(rename = "ID")]
    id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ListDoc {
    #[serde(rename = "Grant", default)]
    grants: Vec<GrantDoc>,
}

#[derive(Debug, Deserialize)]
struct GrantDoc {
    #[serde(rename = "Grantee")]
    grantee: GranteeDoc,
    #[serde(rename = "Permission")]
    permission: String,
}

#[derive(Debug, Deserialize)]
struct GranteeDoc {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "URI")]
    uri: Option<String>,
    #[serde(rename = "EmailAddress")]
    email: Option<String>,
}

/// An AccessControlPolicy document; its Owner, when given, must be the resource's owner.
fn from_xml(body: &[u8], owner: &str) -> S3Result<Acl> {
    let doc: PolicyDoc = xml::parse(body, "AccessControlPolicy")?;
    if let Some(id) = doc.owner.and_then(|o| o.id)
        && id.trim() != owner
    {
        return Err(S3Error::access_denied());
    }
    let mut acl = Acl {
        owner: owner.to_string(),
        grants: Vec::new(),
    };
    for g in doc.list.map(|l| l.grants).unwrap_or_default() {
        let grantee = match (g.grantee.id, g.grantee.uri, g.grantee.email) {
            (Some(id), None, None) => grantee_from_id(&id)?,
            (None, Some(uri), None) => grantee_from_uri(uri.trim())?,
            (None, None, Some(_)) => return Err(unresolvable_email()),
            _ => return Err(S3Error::malformed_xml()),
        };
        let permission = match g.permission.trim() {
            "FULL_CONTROL" => Permission::FullControl,
            "READ" => Permission::Read,
            "WRITE" => Permission::Write,
            "READ_ACP" => Permission::ReadAcp,
            "WRITE_ACP" => Permission::WriteAcp,
            _ => return Err(S3Error::malformed_xml()),
        };
        acl.grants.push(Grant {
            grantee,
            permission,
        });
    }
    Ok(acl)
}

/// The Owner and Initiator elements of listings (objects, versions, uploads, parts), with ids
/// resolved to display names once per request. In a BucketOwnerEnforced bucket the bucket owner
/// owns every object, whoever wrote it, as GetObjectAcl shows too; an upload's initiator stays
/// who started it.
pub struct ListedOwners<'a> {
    app: &'a App,
    bucket_owner: Option<String>,
    names: HashMap<String, String>,
}

impl<'a> ListedOwners<'a> {
    pub async fn new(ctx: &RequestCtx<'a>, bucket: &str) -> S3Result<ListedOwners<'a>> {
        let enforced = !ownership(ctx.app.store.as_ref(), bucket)
            .await?
            .acls_enabled();
        let bucket_owner = if enforced {
            Some(ctx.existing_bucket(bucket).await?.owner_id)
        } else {
            None
        };
        Ok(ListedOwners {
            app: ctx.app,
            bucket_owner,
            names: HashMap::new(),
        })
    }

    /// `<Owner>` of something `writer_id` wrote.
    pub fn owner(&mut self, w: &mut XmlWriter, writer_id: &str) {
        let id = self.bucket_owner.as_deref().unwrap_or(writer_id);
        write_named(self.app, &mut self.names, w, "Owner", id);
    }

    /// `<Initiator>` of a multipart upload.
    pub fn initiator(&mut self, w: &mut XmlWriter, id: &str) {
        write_named(self.app, &mut self.names, w, "Initiator", id);
    }
}

/// `<tag><ID>id</ID><DisplayName>..</DisplayName></tag>`, the name looked up once per id.
fn write_named(
    app: &App,
    names: &mut HashMap<String, String>,
    w: &mut XmlWriter,
    tag: &str,
    id: &str,
) {
    if !names.contains_key(id) {
        let name = app.iam.display_name(id).ok().flatten().unwrap_or_default();
        names.insert(id.to_string(), name);
    }
    w.open(tag)
        .elem("ID", id)
        .elem("DisplayName", names.get(id).map_or("", String::as_str))
        .close(tag);
}

/// An AccessControlPolicy answer.
fn to_xml(app: &App, acl: &Acl) -> String {
    let name = |id: &str| {
        app.iam
            .display_name(id)
            .ok()
            .flatten()
            .unwrap_or_else(|| id.to_string())
    };
    let mut w = XmlWriter::new("AccessControlPolicy");
    w.open("Owner")
        .elem("ID", &acl.owner)
        .elem("DisplayName", &name(&acl.owner))
        .close("Owner");
    w.open("AccessControlList");
    for g in &acl.grants {
        w.open("Grant");
        let xsi = "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"";
        match &g.grantee {
            Grantee::User(id) => {
                w.raw(&format!("<Grantee {xsi} xsi:type=\"CanonicalUser\">"));
                w.elem("ID", id).elem("DisplayName", &name(id));
            }
            other => {
                let uri = match other {
                    Grantee::AllUsers => ALL_USERS_URI,
                    Grantee::AuthenticatedUsers => AUTHENTICATED_USERS_URI,
                    _ => LOG_DELIVERY_URI,
                };
                w.raw(&format!("<Grantee {xsi} xsi:type=\"Group\">"));
                w.elem("URI", uri);
            }
        }
        w.close("Grantee");
        let permission = match g.permission {
            Permission::FullControl => "FULL_CONTROL",
            Permission::Read => "READ",
            Permission::Write => "WRITE",
            Permission::ReadAcp => "READ_ACP",
            Permission::WriteAcp => "WRITE_ACP",
        };
        w.elem("Permission", permission).close("Grant");
    }
    w.close("AccessControlList");
    w.finish("AccessControlPolicy")
}

/// Whether an ACL only gives the owners full control (all a BucketOwnerEnforced bucket takes).
/// An empty grant list is not that: it would take the owner's own control away.
fn owner_only(acl: &Acl, bucket_owner: &str) -> bool {
    !acl.grants.is_empty()
        && acl.grants.iter().all(|g| {
            g.permission == Permission::FullControl
                && (g.grantee == Grantee::User(bucket_owner.to_string())
                    || g.grantee == Grantee::User(acl.owner.clone()))
        })
}

/// Whether the bucket's stored ACL grants anyone but its owner, which BucketOwnerEnforced
/// ownership cannot be set over (S3: InvalidBucketAclWithObjectOwnership). Grants to the owner
/// alone, whatever their permissions (or no grants), give nobody else anything.
pub async fn bucket_acl_grants_others(store: &dyn Store, info: &BucketInfo) -> S3Result<bool> {
    let owner = Grantee::User(info.owner_id.clone());
    Ok(stored_bucket_acl(store, info)
        .await?
        .grants
        .iter()
        .any(|g| g.grantee != owner))
}

fn acls_not_supported() -> S3Error {
    S3Error::new(
        ErrorCode::AccessControlListNotSupported,
        "The bucket does not allow ACLs",
    )
}

/// BucketOwnerEnforced ownership together with an ACL that grants others (on CreateBucket, or
/// when ownership is changed over a stored ACL).
pub fn acl_conflicts_with_enforced_ownership() -> S3Error {
    S3Error::new(
        ErrorCode::InvalidBucketAclWithObjectOwnership,
        "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
    )
}

/// Checks that `acl` may be set in `bucket`: ACLs must be enabled (or the ACL owner-only),
/// and public grants need BlockPublicAcls off. Returns the bucket's ownership, read for the check.
async fn check_settable(app: &App, bucket: &BucketInfo, acl: &Acl) -> S3Result<Ownership> {
    let store = app.store.as_ref();
    let ownership = ownership(store, &bucket.name).await?;
    if !ownership.acls_enabled() && !owner_only(acl, &bucket.owner_id) {
        return Err(acls_not_supported());
    }
    if acl.is_public()
        && super::bucket_config::public_access_block_of(store, &bucket.name)
            .await?
            .is_some_and(|p| p.block_public_acls)
    {
        return Err(S3Error::new(
            ErrorCode::AccessDenied,
            "Access Denied: public ACLs are blocked by the BlockPublicAcls block public access setting.",
        ));
    }
    Ok(ownership)
}

/// Who owns a new object and the ACL it gets.
#[derive(Debug, Clone)]
pub struct NewObjectAcl {
    pub owner: String,
    /// `None` means private to `owner`.
    pub acl: Option<Acl>,
}

impl NewObjectAcl {
    /// The writer's, private to it: what an object gets when its request asks for no ACL.
    pub fn private_to(writer: &str) -> NewObjectAcl {
        NewObjectAcl {
            owner: writer.to_string(),
            acl: None,
        }
    }
}

/// The owner and ACL of an object `writer` writes into `bucket`, from the request's headers
/// (checked against the bucket's rules). The writer owns it, except where the bucket's ownership
/// is BucketOwnerPreferred and the writer gave the `bucket-owner-full-control` canned ACL: then
/// the bucket owner owns it, with full control, as on S3.
pub async fn for_new_object(
    app: &App,
    headers: &HeaderMap,
    bucket: &BucketInfo,
    writer: &str,
) -> S3Result<NewObjectAcl> {
    let Some(acl) = from_headers(headers, writer, &bucket.owner_id)? else {
        return Ok(NewObjectAcl::private_to(writer));
    };
    let ownership = check_settable(app, bucket, &acl).await?;
    let full_control_to_bucket_owner = headers
        .get("x-amz-acl")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "bucket-owner-full-control");
    if full_control_to_bucket_owner
        && writer != bucket.owner_id
        && ownership == Ownership::BucketOwnerPreferred
    {
        return Ok(NewObjectAcl {
            owner: bucket.owner_id.clone(),
            acl: Some(Acl::private(&bucket.owner_id)),
        });
    }
    Ok(NewObjectAcl {
        owner: writer.to_string(),
        acl: Some(acl),
    })
}

/// The ACL a new bucket asks for, checked against the ownership it will have and the public
/// access block every new bucket starts with. Returns the ownership to store, if given.
pub fn for_new_bucket(
    headers: &HeaderMap,
    owner: &str,
) -> S3Result<(Option<Acl>, Option<Ownership>)> {
    let requested = match headers
        .get("x-amz-object-ownership")
        .and_then(|v| v.to_str().ok())
    {
        Some(v) => Some(Ownership::parse(v.trim()).ok_or_else(|| {
            S3Error::invalid_argument("Invalid x-amz-object-ownership header")
                .with("ArgumentName", "x-amz-object-ownership")
                .with("ArgumentValue", v)
        })?),
        None => None,
    };
    let acl = from_headers(headers, owner, owner)?;
    let ownership = requested.unwrap_or(Ownership::BucketOwnerEnforced);
    if let Some(a) = &acl {
        if !ownership.acls_enabled() && !owner_only(a, owner) {
            return Err(acl_conflicts_with_enforced_ownership());
        }
        if a.is_public() {
            // New buckets block public ACLs until the public access block is changed.
            return Err(S3Error::new(
                ErrorCode::AccessDenied,
                "Access Denied: new buckets block public ACLs (BlockPublicAcls); create the bucket, change its public access block, then set the ACL.",
            ));
        }
    }
    Ok((acl, requested))
}

/// What CreateBucket does to a bucket its caller already owns in us-east-1: S3's legacy answer
/// there is 200 OK with the bucket's ACL reset, to the one the request asks for or else private.
pub async fn reset_bucket_acl(app: &App, bucket: &BucketInfo, acl: Option<Acl>) -> S3Result<()> {
    let acl = acl.unwrap_or_else(|| Acl::private(&bucket.owner_id));
    check_settable(app, bucket, &acl).await?;
    set_bucket_acl(app.store.as_ref(), &bucket.name, &acl).await
}

/// Stores a new bucket's ACL.
pub async fn set_bucket_acl(store: &dyn Store, bucket: &str, acl: &Acl) -> S3Result<()> {
    let v = serde_json::to_vec(acl).map_err(S3Error::internal)?;
    store.put_bucket_config(bucket, ACL, Some(v)).await?;
    Ok(())
}

/// The ACL a PutBucketAcl / PutObjectAcl request sets: headers or body, not both.
async fn requested_acl(ctx: &mut RequestCtx<'_>, owner: &str, bucket_owner: &str) -> S3Result<Acl> {
    let from_h = from_headers(ctx.headers(), owner, bucket_owner)?;
    let body = ctx.read_small_body(MAX_ACL_BODY).await?;
    let has_body = !body.iter().all(u8::is_ascii_whitespace);
    match (from_h, has_body) {
        (Some(_), true) => Err(S3Error::new(
            ErrorCode::UnexpectedContent,
            "This request does not support content",
        )),
        (Some(acl), false) => Ok(acl),
        (None, true) => from_xml(&body, owner),
        (None, false) => Err(S3Error::new(
            ErrorCode::MissingSecurityHeader,
            "Your request was missing a required header",
        )
        .with("MissingHeaderName", "x-amz-acl")),
    }
}

pub async fn get_bucket_acl(ctx: &mut RequestCtx<'_>, bucket: &str) -> S3Result<Response<Body>> {
    let info = ctx.existing_bucket(bucket).await?;
    let store = ctx.app.store.as_ref();
    let acl = if ownership(store, bucket).await?.acls_enabled() {
        stored_bucket_acl(store, &info).await?
    } else {
        Acl::private(&info.owner_id)
    };
    Ok(xml_response(StatusCode::OK, to_xml(ctx.app, &acl)))
}

pub async fn put_bucket_acl(ctx: &mut RequestCtx<'_>, bucket: &str) -> S3Result<Response<Body>> {
    let info = ctx.existing_bucket(bucket).await?;
    let acl = requested_acl(ctx, &info.owner_id, &info.owner_id).await?;
    check_settable(ctx.app, &info, &acl).await?;
    set_bucket_acl(ctx.app.store.as_ref(), bucket, &acl).await?;
    Ok(empty_response(StatusCode::OK))
}

pub async fn get_object_acl(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
    key: &str,
) -> S3Result<Response<Body>> {
    let (info, meta) = ctx.existing_object(bucket, key).await?;
    let acl = if ownership(ctx.app.store.as_ref(), bucket)
        .await?
        .acls_enabled()
    {
        meta.acl.unwrap_or_else(|| Acl::private(&meta.owner_id))
    } else {
        Acl::private(&info.owner_id)
    };
    Ok(xml_response(StatusCode::OK, to_xml(ctx.app, &acl)))
}

pub async fn put_object_acl(
    ctx: &mut RequestCtx<'_>,
    bucket: &str,
    key: &str,
) -> S3Result<Response<Body>> {
    let (info, meta) = ctx.existing_object(bucket, key).await?;
    let acl = requested_acl(ctx, &meta.owner_id, &info.owner_id).await?;
    check_settable(ctx.app, &info, &acl).await?;
    ctx.app
        .store
        .set_object_acl(bucket, key, acl)
        .await
        .map_err(|e| S3Error::for_key(e, key))?;
    Ok(empty_response(StatusCode::OK))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: &str = "1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn canned_and_grant_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-acl", "public-read".parse().unwrap());
        let acl = from_headers(&h, OWNER, OWNER).unwrap().unwrap();
        assert!(acl.is_public());
        let s = sets(&acl, false);
        assert!(s.read.contains(&ALL_USERS.to_string()));
        assert!(s.write_acp.contains(&OWNER.to_string()));
        assert!(sets(&acl, true).read.iter().all(|g| g == OWNER));
        h.insert("x-amz-grant-read", "id=\"abc\"".parse().unwrap());
        assert!(from_headers(&h, OWNER, OWNER).is_err());
        let mut g = HeaderMap::new();
        g.insert(
            "x-amz-grant-write",
            format!("uri=\"{AUTHENTICATED_USERS_URI}\", id=\"{OWNER}\"")
                .parse()
                .unwrap(),
        );
        let acl = from_headers(&g, OWNER, OWNER).unwrap().unwrap();
        assert_eq!(acl.grants.len(), 2);
        assert!(!owner_only(&acl, OWNER));
        assert!(owner_only(&Acl::private(OWNER), OWNER));
        let mut empty = Acl::private(OWNER);
        empty.grants.clear();
        assert!(!owner_only(&empty, OWNER));
        let mut bad = HeaderMap::new();
        bad.insert("x-amz-acl", "nope".parse().unwrap());
        assert!(from_headers(&bad, OWNER, OWNER).is_err());
    }

    #[test]
    fn xml_documents() {
        let doc = format!(
            r#"<AccessControlPolicy><Owner><ID>{OWNER}</ID></Owner><AccessControlList>
            <Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group"><URI>{ALL_USERS_URI}</URI></Grantee><Permission>READ</Permission></Grant>
            </AccessControlList></AccessControlPolicy>"#
        );
        let acl = from_xml(doc.as_bytes(), OWNER).unwrap();
        assert_eq!(acl.grants[0].grantee, Grantee::AllUsers);
        assert!(from_xml(doc.as_bytes(), "someone-else").is_err());
        assert!(from_xml(b"<AccessControlPolicy><AccessControlList><Grant><Grantee><ID>x</ID></Grantee><Permission>EAT</Permission></Grant></AccessControlList></AccessControlPolicy>", OWNER).is_err());
    }
}
