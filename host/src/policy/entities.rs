//! The Cedar side of a request: entity UIDs built without the parser, the principal, bucket and
//! object entities, and the request context, as `policies/sluice.cedarschema` declares them.

use std::collections::HashSet;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::OnceLock;

use cedar_policy::{
    Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression,
};
use cedar_policy_core::ast::{self, PartialValue, Value};
use cedar_policy_core::entities::{Entities as CoreEntities, NoEntitiesSchema, TCComputation};
use cedar_policy_core::extensions::Extensions;

use crate::auth::Principal;

pub const ALL_USERS: &str = "AllUsers";
pub const AUTHENTICATED_USERS: &str = "AuthenticatedUsers";

/// Entity types of the `Sluice` namespace, parsed once.
pub struct Types {
    pub user: EntityTypeName,
    pub group: EntityTypeName,
    pub role: EntityTypeName,
    pub anonymous: EntityTypeName,
    pub node: EntityTypeName,
    pub bucket: EntityTypeName,
    pub object: EntityTypeName,
    pub key: EntityTypeName,
    pub action: EntityTypeName,
}

pub fn types() -> &'static Types {
    static TYPES: OnceLock<Types> = OnceLock::new();
    TYPES.get_or_init(|| {
        let t = |name: &str| EntityTypeName::from_str(name).expect("constant entity type name");
        Types {
            user: t("Sluice::User"),
            group: t("Sluice::Group"),
            role: t("Sluice::Role"),
            anonymous: t("Sluice::Anonymous"),
            node: t("Sluice::Node"),
            bucket: t("Sluice::Bucket"),
            object: t("Sluice::Object"),
            key: t("Sluice::Key"),
            action: t("Sluice::Action"),
        }
    })
}

fn uid(kind: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(kind.clone(), EntityId::new(id))
}

pub fn user_uid(id: &str) -> EntityUid {
    uid(&types().user, id)
}
pub fn group_uid(name: &str) -> EntityUid {
    uid(&types().group, name)
}
pub fn role_uid(name: &str) -> EntityUid {
    uid(&types().role, name)
}
pub fn anonymous_uid() -> EntityUid {
    uid(&types().anonymous, "anonymous")
}
pub fn node_uid() -> EntityUid {
    uid(&types().node, "sluice")
}
pub fn bucket_uid(name: &str) -> EntityUid {
    uid(&types().bucket, name)
}
/// `Sluice::Object::"<bucket>/<key>"`.
pub fn object_uid(bucket: &str, key: &str) -> EntityUid {
    let mut id = String::with_capacity(bucket.len() + 1 + key.len());
    id.push_str(bucket);
    id.push('/');
    id.push_str(key);
    uid(&types().object, &id)
}
pub fn key_uid(id: &str) -> EntityUid {
    uid(&types().key, id)
}
pub fn action_uid(name: &str) -> EntityUid {
    uid(&types().action, name)
}

/// The bucket a resource UID belongs to (`Bucket::"b"` and `Object::"b/k"` -> `b`).
pub fn bucket_of(resource: &EntityUid) -> Option<String> {
    let t = types();
    let id: &str = resource.id().unescaped();
    if resource.type_name() == &t.bucket {
        Some(id.to_string())
    } else if resource.type_name() == &t.object {
        id.split_once('/').map(|(b, _)| b.to_string())
    } else {
        None
    }
}

/// The groups a principal belongs to: IAM groups by name, plugin groups as `<plugin>:<group>`.
pub fn principal_groups(principal: &Principal, iam_groups: &[String]) -> Vec<EntityUid> {
    let mut out: Vec<EntityUid> = iam_groups.iter().map(|g| group_uid(g)).collect();
    if let Principal::External { plugin, groups, .. } = principal {
        out.extend(groups.iter().map(|g| group_uid(&format!("{plugin}:{g}"))));
    }
    out
}

fn no_tags() -> std::iter::Empty<(String, RestrictedExpression)> {
    std::iter::empty()
}

fn string(s: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(s.to_string())
}

fn string_set<'a>(items: impl IntoIterator<Item = &'a str>) -> RestrictedExpression {
    RestrictedExpression::new_set(items.into_iter().map(string))
}

/// The principal's UID and entity; `iam_groups` are the IAM groups of an IAM user.
pub fn principal_entity(
    principal: &Principal,
    iam_groups: &[String],
) -> Result<(EntityUid, Entity), String> {
    let parents = principal_groups(principal, iam_groups);
    let err = |e: cedar_policy::EntityAttrEvaluationError| e.to_string();
    match principal {
        Principal::Anonymous => {
            let uid = anonymous_uid();
            let e = Entity::new_with_tags(
                uid.clone(),
                [("grantees".to_string(), string_set([ALL_USERS]))],
                [],
                no_tags(),
            )
            .map_err(err)?;
            Ok((uid, e))
        }
        Principal::Role {
            id,
            role,
            session,
            source,
            ..
        } => {
            let uid = role_uid(role);
            let e = Entity::new_with_tags(
                uid.clone(),
                [
                    ("id".to_string(), string(id)),
                    ("name".to_string(), string(role)),
                    ("session".to_string(), string(session)),
                    ("source".to_string(), string(source)),
                    (
                        "grantees".to_string(),
                        string_set([id.as_str(), AUTHENTICATED_USERS, ALL_USERS]),
                    ),
                ],
                [],
                no_tags(),
            )
            .map_err(err)?;
            Ok((uid, e))
        }
        Principal::Root { id, .. } => user_entity(id, "root", "", id, "root", &[], parents),
        Principal::User { id, name, .. } => user_entity(id, "iam", "", id, name, &[], parents),
        Principal::External {
            id,
            plugin,
            subject,
            name,
            attributes,
            ..
        } => user_entity(id, "plugin", plugin, subject, name, attributes, parents),
    }
}

/// A `Sluice::User` (root, an IAM user or a plugin principal); a plugin's claims are tags.
fn user_entity(
    id: &str,
    kind: &str,
    plugin: &str,
    subject: &str,
    name: &str,
    claims: &[(String, String)],
    groups: Vec<EntityUid>,
) -> Result<(EntityUid, Entity), String> {
    let uid = user_uid(id);
    let e = Entity::new_with_tags(
        uid.clone(),
        [
            ("id".to_string(), string(id)),
            ("name".to_string(), string(name)),
            ("kind".to_string(), string(kind)),
            ("plugin".to_string(), string(plugin)),
            ("subject".to_string(), string(subject)),
            (
                "grantees".to_string(),
                string_set([id, AUTHENTICATED_USERS, ALL_USERS]),
            ),
        ],
        groups,
        claims.iter().map(|(k, v)| (k.clone(), string(v))),
    )
    .map_err(|e| e.to_string())?;
    Ok((uid, e))
}

/// One ACL as the policies see it (FULL_CONTROL already folded into the four sets), with the
/// owner it belongs to: an object's owner reaches the policies this way wherever ACLs apply,
/// without the object's other metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AclSets {
    pub owner: String,
    pub read: Vec<String>,
    pub write: Vec<String>,
    pub read_acp: Vec<String>,
    pub write_acp: Vec<String>,
}

impl AclSets {
    fn expression(&self) -> RestrictedExpression {
        let set = |v: &Vec<String>| string_set(v.iter().map(String::as_str));
        RestrictedExpression::new_record([
            ("owner".to_string(), string(&self.owner)),
            ("read".to_string(), set(&self.read)),
            ("write".to_string(), set(&self.write)),
            ("read_acp".to_string(), set(&self.read_acp)),
            ("write_acp".to_string(), set(&self.write_acp)),
        ])
        .expect("distinct record keys")
    }

    /// The same record as a value (for entities built without the evaluator).
    fn value(&self) -> Value {
        let set = |v: &Vec<String>| Value::set(v.iter().map(|s| Value::from(s.as_str())), None);
        Value::record(
            [
                ("owner", Value::from(self.owner.as_str())),
                ("read", set(&self.read)),
                ("write", set(&self.write)),
                ("read_acp", set(&self.read_acp)),
                ("write_acp", set(&self.write_acp)),
            ],
            None,
        )
    }
}

/// A KMS key's entity.
pub fn key_entity(id: &str) -> Result<Entity, String> {
    Entity::new_with_tags(key_uid(id), [("id".to_string(), string(id))], [], no_tags())
        .map_err(|e| e.to_string())
}

/// What the policies may know about a bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct BucketFacts {
    pub name: String,
    /// Canonical id of the owner; "" while the bucket does not exist.
    pub owner: String,
    pub acl: AclSets,
}

pub fn bucket_entity(b: &BucketFacts) -> Result<Entity, String> {
    Entity::new_with_tags(
        bucket_uid(&b.name),
        [
            ("name".to_string(), string(&b.name)),
            ("owner".to_string(), string(&b.owner)),
            ("acl".to_string(), b.acl.expression()),
        ],
        [],
        no_tags(),
    )
    .map_err(|e| e.to_string())
}

/// What the policies may know about an object (metadata only when the operation reads it).
#[derive(Debug, Clone, Default)]
pub struct ObjectFacts {
    pub key: String,
    pub owner: Option<String>,
    pub size: Option<u64>,
    pub tags: Vec<(String, String)>,
    /// `None` where ACLs do not apply (disabled, or metadata not read).
    pub acl: Option<AclSets>,
}

impl ObjectFacts {
    /// Only the key is known: the entity has no attribute but `key` and `bucket`, and no tags.
    pub fn is_blank(&self) -> bool {
        self.owner.is_none() && self.size.is_none() && self.tags.is_empty() && self.acl.is_none()
    }
}

/// The object's entity, built from values directly: its attributes are plain strings, a long,
/// sets and a record, so Cedar's expression evaluator (what `Entity::new_with_tags` runs on
/// every attribute) has nothing to do. It is built for every object request.
pub fn object_core_entity(bucket: &str, o: &ObjectFacts) -> ast::Entity {
    let mut attrs = vec![
        ("key".into(), PartialValue::from(o.key.as_str())),
        (
            "bucket".into(),
            PartialValue::from(ast::EntityUID::from(bucket_uid(bucket))),
        ),
    ];
    if let Some(acl) = &o.acl {
        attrs.push(("acl".into(), PartialValue::from(acl.value())));
    }
    if let Some(owner) = &o.owner {
        attrs.push(("owner".into(), PartialValue::from(owner.as_str())));
    }
    if let Some(size) = o.size {
        attrs.push((
            "size".into(),
            PartialValue::from(i64::try_from(size).unwrap_or(i64::MAX)),
        ));
    }
    ast::Entity::new_with_attr_partial_value(
        ast::EntityUID::from(object_uid(bucket, &o.key)),
        attrs,
        HashSet::new(),
        HashSet::from([ast::EntityUID::from(bucket_uid(bucket))]),
        o.tags
            .iter()
            .map(|(k, v)| (k.into(), PartialValue::from(v.as_str()))),
    )
}

/// One request's entity store.
///
/// Cedar's public constructors recompute the transitive closure of the hierarchy every time
/// (8 % of a 4 KiB GET's CPU). It is already closed here: every hierarchy Sluice builds is one
/// level deep (an object in its bucket, a user in its groups, nothing above a bucket or a
/// group), and the schema's action entities come closed. So each entity's parents are all its
/// ancestors, and the store is built as it is. Debug builds (what the tests run) have Cedar
/// check that instead, on every request: a deeper hierarchy fails the request there.
pub fn request_store(list: Vec<ast::Entity>) -> Result<Entities, String> {
    let closure = if cfg!(debug_assertions) {
        TCComputation::EnforceAlreadyComputed
    } else {
        TCComputation::AssumeAlreadyComputed
    };
    CoreEntities::from_entities(
        list,
        None::<&NoEntitiesSchema>,
        closure,
        Extensions::all_available(),
    )
    .map(Entities::from)
    .map_err(|e| e.to_string())
}

/// The request context (`Sluice::RequestContext`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub source_ip: Option<IpAddr>,
    pub secure_transport: bool,
    /// Seconds since the Unix epoch.
    pub now: i64,
    pub auth_method: &'static str,
    pub prefix: Option<String>,
    pub delimiter: Option<String>,
    pub max_keys: Option<i64>,
    /// Request headers that condition keys use, lower-case names.
    pub headers: Vec<(&'static str, String)>,
}

/// Headers a policy can test (`context["x-amz-acl"]`, ...).
pub const CONTEXT_HEADERS: &[&str] = &[
    "x-amz-acl",
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-copy-source",
    "x-amz-metadata-directive",
    "x-amz-content-sha256",
    "x-amz-storage-class",
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
    "referer",
    "user-agent",
];

impl RequestContext {
    pub fn new(auth_method: &'static str) -> RequestContext {
        RequestContext {
            source_ip: None,
            secure_transport: false,
            now: chrono::Utc::now().timestamp(),
            auth_method,
            prefix: None,
            delimiter: None,
            max_keys: None,
            headers: Vec::new(),
        }
    }

    /// Takes the condition-key headers from a request.
    pub fn with_headers(mut self, headers: &http::HeaderMap) -> RequestContext {
        // Looked up by prepared names: a `&str` is parsed into a header name at every lookup.
        static NAMES: OnceLock<Vec<(&'static str, http::HeaderName)>> = OnceLock::new();
        let names = NAMES.get_or_init(|| {
            CONTEXT_HEADERS
                .iter()
                .map(|n| (*n, http::HeaderName::from_static(n)))
                .collect()
        });
        for (name, header) in names {
            if let Some(v) = headers.get(header).and_then(|v| v.to_str().ok()) {
                self.headers.push((name, v.to_string()));
            }
        }
        self
    }

    /// The context as JSON (what authorizer plugins see).
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert(
            "source_ip".into(),
            self.source_ip
                .map(|i| i.to_canonical().to_string())
                .unwrap_or_else(|| "0.0.0.0".into())
                .into(),
        );
        m.insert("secure_transport".into(), self.secure_transport.into());
        m.insert("now".into(), self.now.into());
        m.insert("auth_method".into(), self.auth_method.into());
        if let Some(p) = &self.prefix {
            m.insert("prefix".into(), p.as_str().into());
        }
        if let Some(d) = &self.delimiter {
            m.insert("delimiter".into(), d.as_str().into());
        }
        if let Some(k) = self.max_keys {
            m.insert("max_keys".into(), k.into());
        }
        for (n, v) in &self.headers {
            m.insert((*n).into(), v.as_str().into());
        }
        serde_json::Value::Object(m)
    }

    pub fn to_cedar(&self) -> Result<Context, String> {
        // IPv4 clients of a dual-stack listener arrive as ::ffff:a.b.c.d; policies name them
        // as IPv4 (and Cedar's isInRange never matches across families).
        let ip = match self.source_ip {
            Some(ip) => ip.to_canonical().to_string(),
            None => "0.0.0.0".to_string(),
        };
        let mut pairs = vec![
            ("source_ip".to_string(), RestrictedExpression::new_ip(ip)),
            (
                "secure_transport".to_string(),
                RestrictedExpression::new_bool(self.secure_transport),
            ),
            ("now".to_string(), RestrictedExpression::new_long(self.now)),
            ("auth_method".to_string(), string(self.auth_method)),
        ];
        if let Some(p) = &self.prefix {
            pairs.push(("prefix".to_string(), string(p)));
        }
        if let Some(d) = &self.delimiter {
            pairs.push(("delimiter".to_string(), string(d)));
        }
        if let Some(m) = self.max_keys {
            pairs.push(("max_keys".to_string(), RestrictedExpression::new_long(m)));
        }
        for (name, value) in &self.headers {
            pairs.push((name.to_string(), string(value)));
        }
        Context::from_pairs(pairs).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> (BucketFacts, ObjectFacts) {
        let acl = AclSets {
            owner: "u2".into(),
            read: vec![ALL_USERS.into()],
            write: vec!["u1".into()],
            read_acp: vec![],
            write_acp: vec!["u1".into(), "u2".into()],
        };
        let bucket = BucketFacts {
            name: "b".into(),
            owner: "u1".into(),
            acl: acl.clone(),
        };
        let object = ObjectFacts {
            key: "dir/k".into(),
            owner: Some("u2".into()),
            size: Some(4096),
            tags: vec![("team".into(), "blue".into())],
            acl: Some(acl),
        };
        (bucket, object)
    }

    #[test]
    fn object_entity_built_from_values_matches_the_evaluated_one() {
        let (_, o) = facts();
        let acl = o.acl.as_ref().unwrap();
        let evaluated = Entity::new_with_tags(
            object_uid("b", &o.key),
            [
                ("key".to_string(), string(&o.key)),
                (
                    "bucket".to_string(),
                    RestrictedExpression::new_entity_uid(bucket_uid("b")),
                ),
                ("acl".to_string(), acl.expression()),
                ("owner".to_string(), string("u2")),
                ("size".to_string(), RestrictedExpression::new_long(4096)),
            ],
            [bucket_uid("b")],
            [("team".to_string(), string("blue"))],
        )
        .unwrap();
        assert!(object_core_entity("b", &o).deep_eq(evaluated.as_ref()));
        // A different size is a different entity: the comparison can fail.
        let other = ObjectFacts {
            size: Some(1),
            ..o.clone()
        };
        assert!(!object_core_entity("b", &other).deep_eq(evaluated.as_ref()));
    }

    #[test]
    #[cfg(debug_assertions)]
    fn a_deeper_hierarchy_fails_the_store_in_debug_builds() {
        let (b, o) = facts();
        let object = object_core_entity("b", &o);
        let mut bucket = bucket_entity(&b).unwrap().as_ref().clone();
        let ok = request_store(vec![object.clone(), bucket.clone()]);
        assert!(ok.is_ok());
        // A bucket with a parent of its own: the object would need it as an ancestor too.
        bucket.add_parent(node_uid().into());
        let node = ast::Entity::with_uid(node_uid().into());
        assert!(request_store(vec![object, bucket, node]).is_err());
    }

    #[test]
    fn request_store_equals_the_transitively_closed_one() {
        let (b, o) = facts();
        let user = Principal::User {
            id: "u1".into(),
            name: "alice".into(),
            access_key: "AK".into(),
        };
        let (_, principal) = principal_entity(&user, &["devs".into(), "ops".into()]).unwrap();
        for action in crate::policy::schema::action_entities() {
            let list = vec![
                principal.as_ref().clone(),
                action.as_ref().clone(),
                bucket_entity(&b).unwrap().as_ref().clone(),
                object_core_entity("b", &o),
            ];
            let closed =
                Entities::from_entities(list.iter().cloned().map(Entity::from), None).unwrap();
            let built = request_store(list).unwrap();
            assert_eq!(closed.iter().count(), built.iter().count());
            for e in closed.iter() {
                let same = built.get(&e.uid()).unwrap();
                assert!(same.as_ref().deep_eq(e.as_ref()), "{}", e.uid());
            }
        }
    }
}
