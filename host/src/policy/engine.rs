//! The policy engine: every validated policy (policy files, policies attached to users, groups
//! and roles, bucket policies) indexed by the scope it can apply to, so that a decision
//! evaluates only the slices that can match the request.
//!
//! A policy whose principal scope names one entity (`principal == User::"u"`, `principal in
//! Group::"g"`) sits in that entity's slice; otherwise one whose resource scope names a bucket
//! or an object in it sits in that bucket's slice; everything else is general. A request
//! evaluates the general slice, the slices of its principal and the principal's groups, and the
//! slice of its bucket. The decision combines them exactly as one policy set would: any
//! satisfied `forbid` denies, otherwise any satisfied `permit` allows, otherwise deny.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use std::collections::HashSet;
use std::str::FromStr;

use cedar_policy_core::ast;

use cedar_policy::{
    ActionConstraint, Authorizer, EntityTypeName, EntityUid, Policy, PolicySet,
    PrincipalConstraint, Request, ResourceConstraint,
};

use super::entities::{
    self, BucketFacts, ObjectFacts, RequestContext, action_uid, bucket_of, principal_entity,
};
use super::schema;
use crate::auth::Principal;
use crate::locks::{read, write};

/// What a request addresses.
#[derive(Debug, Clone, Copy)]
pub enum Resource<'a> {
    /// The server itself (ListAllMyBuckets, the admin API).
    Node,
    Bucket(&'a BucketFacts),
    Object(&'a BucketFacts, &'a ObjectFacts),
    Key(&'a str),
}

/// One question for the engine.
pub struct AccessRequest<'a> {
    pub principal: &'a Principal,
    pub action: &'a str,
    pub resource: Resource<'a>,
    pub context: &'a RequestContext,
}

/// The answer, with the ids of the policies that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The satisfied `forbid` policies (deny) or `permit` policies (allow); empty for the
    /// default deny.
    pub determining: Vec<String>,
    /// Policies that failed to evaluate (skipped, as Cedar does) and request-building errors.
    pub errors: Vec<String>,
}

impl Decision {
    fn deny(error: String) -> Decision {
        Decision {
            allowed: false,
            determining: Vec::new(),
            errors: vec![error],
        }
    }
}

/// Where a slice applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SliceKey {
    General,
    Principal(EntityUid),
    Bucket(String),
}

fn slice_key(policy: &Policy) -> SliceKey {
    match policy.principal_constraint() {
        PrincipalConstraint::Eq(uid)
        | PrincipalConstraint::In(uid)
        | PrincipalConstraint::IsIn(_, uid) => return SliceKey::Principal(uid),
        PrincipalConstraint::Any | PrincipalConstraint::Is(_) => {}
    }
    match policy.resource_constraint() {
        ResourceConstraint::Eq(uid)
        | ResourceConstraint::In(uid)
        | ResourceConstraint::IsIn(_, uid) => match bucket_of(&uid) {
            Some(b) => SliceKey::Bucket(b),
            None => SliceKey::General,
        },
        ResourceConstraint::Any | ResourceConstraint::Is(_) => SliceKey::General,
    }
}

/// A bucket's translated bucket policy.
#[derive(Debug, Clone)]
pub struct BucketPolicySet {
    pub policies: Vec<Policy>,
    /// RestrictPublicBuckets is on and the policy is public: its Allows do not apply to
    /// anonymous requests (its Denies still do).
    pub restrict_public: bool,
}

/// One policy with what can be known about it without evaluating it: the actions it can
/// apply to (its action scope, groups expanded), the principal and resource types its scope
/// allows, and, for bucket-policy statements, the principals it names (`@principals`).
#[derive(Clone)]
struct Entry {
    policy: Policy,
    actions: Option<Arc<HashSet<String>>>,
    principal_type: Option<EntityTypeName>,
    resource_type: Option<EntityTypeName>,
    principals: Option<Arc<HashSet<EntityUid>>>,
    /// The policy may read an object's metadata attributes (`owner`, `size`, tags), so a
    /// request it may apply to must carry them.
    object_meta: bool,
    /// See [`key_blind`].
    key_blind: bool,
}

/// Whether a policy's text may read an object's `owner`, `size` or tags. Errs towards yes:
/// any mention of those words after the annotations counts (comments too), except the
/// bucket's owner (`.bucket.owner`) and an ACL's (`.acl.owner`): an object's ACL, owner
/// included, is given wherever ACLs apply, whether or not a policy reads it.
fn mentions_object_meta(text: &str) -> bool {
    let start = ["permit", "forbid"]
        .iter()
        .filter_map(|k| text.find(k))
        .min()
        .unwrap_or(0);
    let body = text[start..]
        .replace(".bucket.owner", "")
        .replace(".acl.owner", "");
    body.contains("owner") || body.contains("size") || body.contains("Tag")
}

/// Whether a policy decides every object of a bucket alike when the objects carry no metadata
/// (an object entity with only `key` and `bucket`): the policy never reads `resource.key`, never
/// compares the resource with anything, and tests it only for its type, its attributes being
/// there (`has`), its `bucket` and other attributes (absent on such objects, an error whatever
/// the key), and membership in literal entities that are not objects (the object's only
/// parent is its bucket). Errs towards no: any other use of `resource`, any template slot and
/// any object literal (the request's entity store holds only the object asked about) counts
/// as reading the key.
fn key_blind(e: &ast::Expr) -> bool {
    use ast::ExprKind as K;
    let is_resource = |x: &ast::Expr| matches!(x.expr_kind(), K::Var(ast::Var::Resource));
    let object: &ast::EntityType = entities::types().object.as_ref();
    let not_objects = |x: &ast::Expr| {
        let lit = |x: &ast::Expr| match x.expr_kind() {
            K::Lit(ast::Literal::EntityUID(uid)) => uid.entity_type() != object,
            _ => false,
        };
        match x.expr_kind() {
            K::Set(items) => items.iter().all(lit),
            _ => lit(x),
        }
    };
    match e.expr_kind() {
        K::Var(ast::Var::Resource) | K::Slot(_) | K::Unknown(_) => false,
        // The request's store holds only the object asked about: what an object literal has,
        // or whether it is `in` something, depends on which object that is.
        K::Lit(ast::Literal::EntityUID(uid)) => uid.entity_type() != object,
        K::Lit(_) | K::Var(_) => true,
        K::GetAttr { expr, attr } if is_resource(expr) => attr != "key",
        K::HasAttr { expr, .. } | K::ExtHasAttr { expr, .. } | K::Is { expr, .. }
            if is_resource(expr) =>
        {
            true
        }
        K::BinaryApp {
            op: ast::BinaryOp::In,
            arg1,
            arg2,
        } if is_resource(arg1) => not_objects(arg2),
        K::If {
            test_expr,
            then_expr,
            else_expr,
        } => key_blind(test_expr) && key_blind(then_expr) && key_blind(else_expr),
        K::And { left, right } | K::Or { left, right } => key_blind(left) && key_blind(right),
        K::BinaryApp { arg1, arg2, .. } => key_blind(arg1) && key_blind(arg2),
        K::UnaryApp { arg, .. } => key_blind(arg),
        K::ExtensionFunctionApp { args, .. } | K::Set(args) => args.iter().all(key_blind),
        K::GetAttr { expr, .. }
        | K::HasAttr { expr, .. }
        | K::ExtHasAttr { expr, .. }
        | K::Like { expr, .. }
        | K::Is { expr, .. } => key_blind(expr),
        K::Record(fields) => fields.values().all(key_blind),
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

/// [`key_blind`] of a whole policy: its scope and conditions.
fn policy_key_blind(policy: &Policy) -> bool {
    key_blind(&AsRef::<ast::Policy>::as_ref(policy).condition())
}

impl Entry {
    /// `bucket_policy`: a translated bucket-policy statement, whose `@principals` annotation
    /// (written by the translator) narrows whom it is evaluated for.
    fn new(policy: Policy, bucket_policy: bool) -> Entry {
        let actions = match policy.action_constraint() {
            ActionConstraint::Any => None,
            ActionConstraint::Eq(a) => Some(schema::actions_under(std::slice::from_ref(&a))),
            ActionConstraint::In(list) => Some(schema::actions_under(&list)),
        }
        .map(Arc::new);
        let principal_type = match policy.principal_constraint() {
            PrincipalConstraint::Is(t) | PrincipalConstraint::IsIn(t, _) => Some(t),
            PrincipalConstraint::Eq(uid) => Some(uid.type_name().clone()),
            PrincipalConstraint::Any | PrincipalConstraint::In(_) => None,
        };
        let resource_type = match policy.resource_constraint() {
            ResourceConstraint::Is(t) | ResourceConstraint::IsIn(t, _) => Some(t),
            ResourceConstraint::Eq(uid) => Some(uid.type_name().clone()),
            ResourceConstraint::Any | ResourceConstraint::In(_) => None,
        };
        // Any UID that does not parse means no narrowing at all (never a skipped policy).
        let principals = policy
            .annotation(PRINCIPALS_ANNOTATION)
            .filter(|_| bucket_policy)
            .and_then(|v| serde_json::from_str::<Vec<String>>(v).ok())
            .and_then(|ids| {
                ids.iter()
                    .map(|id| EntityUid::from_str(id).ok())
                    .collect::<Option<HashSet<_>>>()
            })
            .map(Arc::new);
        let object_meta = resource_type
            .as_ref()
            .is_none_or(|t| *t == entities::types().object)
            && mentions_object_meta(&policy.to_string());
        let key_blind = policy_key_blind(&policy);
        Entry {
            policy,
            actions,
            principal_type,
            resource_type,
            principals,
            object_meta,
            key_blind,
        }
    }

    /// Whether the policy can apply at all; `false` means its scope (or the principals it
    /// names) excludes the request, so evaluating it could only give "not satisfied".
    fn may_apply(&self, q: &Query<'_>) -> bool {
        self.actions.as_ref().is_none_or(|a| a.contains(q.action))
            && self
                .principal_type
                .as_ref()
                .is_none_or(|t| t == q.principal.type_name())
            && self
                .resource_type
                .as_ref()
                .is_none_or(|t| t == q.resource_type)
            && self
                .principals
                .as_ref()
                .is_none_or(|p| p.contains(q.principal))
    }
}

/// The annotation on translated bucket-policy statements listing the principals they name
/// (a JSON list of entity UIDs); absent when a statement applies to everyone.
pub const PRINCIPALS_ANNOTATION: &str = "principals";

/// What the filtered sets are chosen by.
struct Query<'a> {
    action: &'a str,
    principal: &'a EntityUid,
    resource_type: &'a EntityTypeName,
}

/// Cache key of the candidate policies for one kind of request: who (with groups), which
/// bucket, which action on which type of resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CandidateKey {
    principal: EntityUid,
    groups: Vec<EntityUid>,
    bucket: Option<String>,
    action: String,
    resource_type: EntityTypeName,
    /// Leave the bucket policy out (root managing a bucket policy that locks everyone out).
    skip_bucket_policy: bool,
}

/// The policies that may apply to a kind of request, in one set; and, for anonymous requests
/// to a bucket whose public policy RestrictPublicBuckets neutralises, that policy's
/// statements, whose Denies still count but whose Allows do not.
#[derive(Default)]
struct Candidates {
    policies: PolicySet,
    forbid_only: Option<PolicySet>,
    /// A policy could not be added (a duplicate id): decide nothing, deny.
    broken: Option<String>,
    /// Some candidate may read the object's metadata attributes.
    object_meta: bool,
    /// Every candidate is [`key_blind`].
    key_blind: bool,
    /// The last decision made with these candidates, and what it was made for.
    last: RwLock<Option<Arc<Memo>>>,
}

/// A decision and every input it was made from but the object's key: the principal, its IAM
/// groups, the resource (bucket facts; for objects, only when they carry no metadata and the
/// candidates are key-blind), the action (the candidates are per action) and the context.
/// The policies are the candidates it is kept in, rebuilt whenever any policy changes. So a
/// request that matches it would be decided the same way, and is answered with it.
struct Memo {
    principal: Principal,
    iam_groups: Vec<String>,
    resource: MemoResource,
    context: RequestContext,
    decision: Decision,
}

#[derive(PartialEq)]
enum MemoResource {
    Node,
    Key(String),
    Bucket(BucketFacts),
    /// Any object without metadata in this bucket.
    BlankObject(BucketFacts),
}

impl MemoResource {
    /// What `r` is remembered as; `None` when its decision may depend on more than is kept.
    fn of(r: &Resource<'_>, key_blind: bool) -> Option<MemoResource> {
        Some(match r {
            Resource::Node => MemoResource::Node,
            Resource::Key(id) => MemoResource::Key(id.to_string()),
            Resource::Bucket(b) => MemoResource::Bucket((*b).clone()),
            Resource::Object(b, o) if key_blind && o.is_blank() => {
                MemoResource::BlankObject((*b).clone())
            }
            Resource::Object(..) => return None,
        })
    }

    /// Whether `r` is what was remembered. A `BlankObject` is only ever kept in key-blind
    /// candidates (see [`MemoResource::of`]), so any blank object of its bucket matches.
    fn matches(&self, r: &Resource<'_>) -> bool {
        match (self, r) {
            (MemoResource::Node, Resource::Node) => true,
            (MemoResource::Key(a), Resource::Key(b)) => a == b,
            (MemoResource::Bucket(a), Resource::Bucket(b)) => a == *b,
            (MemoResource::BlankObject(a), Resource::Object(b, o)) => o.is_blank() && a == *b,
            _ => false,
        }
    }
}

impl Memo {
    fn matches(&self, req: &AccessRequest<'_>, iam_groups: &[String]) -> bool {
        self.principal == *req.principal
            && self.iam_groups == iam_groups
            && self.context == *req.context
            && self.resource.matches(&req.resource)
    }
}

/// Most candidate sets kept; the cache starts over when full.
const MAX_CANDIDATES: usize = 50_000;

/// The policies in force, sliced.
#[derive(Default)]
struct Slices {
    general: Vec<Entry>,
    by_principal: HashMap<EntityUid, Vec<Entry>>,
    by_bucket: HashMap<String, Vec<Entry>>,
    bucket_policies: HashMap<String, (Vec<Entry>, bool)>,
    count: usize,
    candidates: RwLock<HashMap<CandidateKey, Arc<Candidates>>>,
}

impl Slices {
    fn build<'a>(
        policies: impl Iterator<Item = &'a Policy>,
        buckets: &HashMap<String, Arc<BucketPolicySet>>,
    ) -> Slices {
        let mut s = Slices::default();
        for (bucket, bp) in buckets {
            let entries: Vec<Entry> = bp
                .policies
                .iter()
                .cloned()
                .map(|p| Entry::new(p, true))
                .collect();
            s.count += entries.len();
            s.bucket_policies
                .insert(bucket.clone(), (entries, bp.restrict_public));
        }
        for p in policies {
            let list = match slice_key(p) {
                SliceKey::General => &mut s.general,
                SliceKey::Principal(uid) => s.by_principal.entry(uid).or_default(),
                SliceKey::Bucket(b) => s.by_bucket.entry(b).or_default(),
            };
            list.push(Entry::new(p.clone(), false));
            s.count += 1;
        }
        s
    }

    /// The candidate policies for `q` (built once per kind of request, then cached).
    fn candidates(
        &self,
        q: &Query<'_>,
        groups: Vec<EntityUid>,
        bucket: Option<&str>,
        anonymous: bool,
        skip_bucket_policy: bool,
    ) -> Arc<Candidates> {
        let key = CandidateKey {
            principal: q.principal.clone(),
            groups,
            bucket: bucket.map(str::to_string),
            action: q.action.to_string(),
            resource_type: q.resource_type.clone(),
            skip_bucket_policy,
        };
        if let Some(c) = read(&self.candidates).get(&key) {
            return c.clone();
        }
        let mut c = Candidates::default();
        let mut broken = None;
        let mut object_meta = false;
        let mut key_blind = true;
        let mut add = |set: &mut PolicySet, entries: Option<&Vec<Entry>>| {
            for e in entries.into_iter().flatten().filter(|e| e.may_apply(q)) {
                object_meta |= e.object_meta;
                key_blind &= e.key_blind;
                // Ids are unique by construction (every source prefixes its own); should two
                // ever meet, the decision is a deny rather than one of them silently missing.
                if let Err(err) = set.add(e.policy.clone()) {
                    broken = Some(format!("policy {}: {err}", e.policy.id()));
                }
            }
        };
        add(&mut c.policies, Some(&self.general));
        add(&mut c.policies, self.by_principal.get(q.principal));
        for g in &key.groups {
            add(&mut c.policies, self.by_principal.get(g));
        }
        if let Some(b) = bucket {
            add(&mut c.policies, self.by_bucket.get(b));
            if let Some((entries, restrict)) = self.bucket_policies.get(b)
                && !skip_bucket_policy
            {
                if *restrict && anonymous {
                    let mut only = PolicySet::new();
                    add(&mut only, Some(entries));
                    c.forbid_only = Some(only);
                } else {
                    add(&mut c.policies, Some(entries));
                }
            }
        }
        c.broken = broken;
        c.object_meta = object_meta;
        c.key_blind = key_blind;
        let c = Arc::new(c);
        let mut cache = write(&self.candidates);
        if cache.len() >= MAX_CANDIDATES {
            cache.clear();
        }
        cache.insert(key, c.clone());
        c
    }
}

/// Every policy source, as last loaded.
#[derive(Default, Clone)]
struct Sources {
    files: Arc<Vec<Policy>>,
    attached: Arc<Vec<Policy>>,
    buckets: Arc<HashMap<String, Arc<BucketPolicySet>>>,
}

struct State {
    /// Unique among every state this process builds (a new one at each policy change).
    id: u64,
    sources: Sources,
    slices: Slices,
    /// IAM user id -> the IAM groups it is in.
    groups: Arc<HashMap<String, Vec<String>>>,
}

pub struct PolicyEngine {
    state: RwLock<Arc<State>>,
    action_entities: HashMap<EntityUid, ast::Entity>,
    authorizer: Authorizer,
    /// Why the last reload of the policy files was refused, until one succeeds.
    reload_error: std::sync::Mutex<Option<String>>,
    /// Principal entities by a hash of (principal, IAM groups), built once.
    principal_entities: RwLock<HashMap<u64, Arc<CachedPrincipal>>>,
    /// Bucket entities by a hash of their facts, built once.
    bucket_entities: RwLock<HashMap<u64, Arc<(BucketFacts, ast::Entity)>>>,
    /// Held while a bucket's policy is read from the store and handed to the engine, so that
    /// a refresh can never overwrite a newer one (a DeleteBucket racing a PutBucketPolicy).
    pub bucket_policy_lock: tokio::sync::Mutex<()>,
}

struct CachedPrincipal {
    principal: Principal,
    groups: Vec<String>,
    uid: EntityUid,
    entity: ast::Entity,
}

/// Most entities of each kind kept; a cache starts over when full.
const MAX_ENTITIES: usize = 10_000;

fn hash_of(v: &impl std::hash::Hash) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(v)
}

impl State {
    /// The IAM groups of an IAM user (none for other principals).
    fn iam_groups(&self, principal: &Principal) -> &[String] {
        match principal {
            Principal::User { id, .. } => self.groups.get(id).map(Vec::as_slice).unwrap_or(&[]),
            _ => &[],
        }
    }
}

fn next_state_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The last answer of `needs_object_facts` on this thread, with what it was asked for.
struct LastNeeds {
    state: u64,
    principal: Principal,
    action: String,
    bucket: String,
    answer: bool,
}

thread_local! {
    static LAST_NEEDS: std::cell::RefCell<Option<LastNeeds>> = const { std::cell::RefCell::new(None) };

    /// The last context built on this thread: requests from one client within one second
    /// share it.
    static LAST_CONTEXT: std::cell::RefCell<Option<(RequestContext, cedar_policy::Context)>> =
        const { std::cell::RefCell::new(None) };
}

fn cedar_context(c: &RequestContext) -> Result<cedar_policy::Context, String> {
    LAST_CONTEXT.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((k, v)) = last.as_ref()
            && k == c
        {
            return Ok(v.clone());
        }
        let built = c.to_cedar()?;
        *last = Some((c.clone(), built.clone()));
        Ok(built)
    })
}

impl PolicyEngine {
    /// An engine over the given file policies (already validated).
    pub fn new(files: Vec<Policy>) -> PolicyEngine {
        let action_entities = schema::action_entities()
            .iter()
            .map(|e| (e.uid(), e.as_ref().clone()))
            .collect();
        let sources = Sources {
            files: Arc::new(files),
            ..Sources::default()
        };
        let engine = PolicyEngine {
            state: RwLock::new(Arc::new(State {
                id: next_state_id(),
                slices: Slices::default(),
                sources: sources.clone(),
                groups: Arc::default(),
            })),
            action_entities,
            authorizer: Authorizer::new(),
            reload_error: std::sync::Mutex::new(None),
            principal_entities: RwLock::default(),
            bucket_entities: RwLock::default(),
            bucket_policy_lock: tokio::sync::Mutex::new(()),
        };
        engine.update(|s| s);
        engine
    }

    fn current(&self) -> Arc<State> {
        read(&self.state).clone()
    }

    /// Replaces sources through `change` and rebuilds the slices.
    fn update(&self, change: impl FnOnce(Sources) -> Sources) {
        self.update_with_groups(change, None);
    }

    fn update_with_groups(
        &self,
        change: impl FnOnce(Sources) -> Sources,
        groups: Option<Arc<HashMap<String, Vec<String>>>>,
    ) {
        let mut guard = write(&self.state);
        let sources = change(guard.sources.clone());
        let all = sources.files.iter().chain(sources.attached.iter());
        let slices = Slices::build(all, &sources.buckets);
        *guard = Arc::new(State {
            id: next_state_id(),
            slices,
            sources,
            groups: groups.unwrap_or_else(|| guard.groups.clone()),
        });
    }

    /// Swaps in a new validated set of policy files.
    pub fn replace_files(&self, files: Vec<Policy>) {
        self.update(|s| Sources {
            files: Arc::new(files),
            ..s
        });
    }

    /// Swaps in the attached policies and group memberships (after any IAM change).
    pub fn replace_identity(&self, attached: Vec<Policy>, groups: HashMap<String, Vec<String>>) {
        self.update_with_groups(
            |s| Sources {
                attached: Arc::new(attached),
                ..s
            },
            Some(Arc::new(groups)),
        );
    }

    /// Sets (or, with `None`, removes) the translated policy of one bucket.
    pub fn set_bucket_policies(&self, bucket: &str, policies: Option<BucketPolicySet>) {
        self.update(|s| {
            let mut buckets = (*s.buckets).clone();
            match policies {
                Some(p) => {
                    buckets.insert(bucket.to_string(), Arc::new(p));
                }
                None => {
                    buckets.remove(bucket);
                }
            }
            Sources {
                buckets: Arc::new(buckets),
                ..s
            }
        });
    }

    pub fn set_reload_error(&self, error: Option<String>) {
        match self.reload_error.lock() {
            Ok(mut g) => *g = error,
            Err(p) => *p.into_inner() = error,
        }
    }

    pub fn reload_error(&self) -> Option<String> {
        match self.reload_error.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Number of policies in force.
    pub fn policy_count(&self) -> usize {
        self.current().slices.count
    }

    /// The IAM groups an IAM user is in.
    pub fn groups_of(&self, user_id: &str) -> Vec<String> {
        self.current()
            .groups
            .get(user_id)
            .cloned()
            .unwrap_or_default()
    }

    /// The principal's UID and entity, from the cache when it was built before.
    fn principal_entity(
        &self,
        principal: &Principal,
        groups: &[String],
    ) -> Result<Arc<CachedPrincipal>, String> {
        let key = hash_of(&(principal, groups));
        if let Some(c) = read(&self.principal_entities).get(&key)
            && c.principal == *principal
            && c.groups == groups
        {
            return Ok(c.clone());
        }
        let (uid, entity) = principal_entity(principal, groups)?;
        let cached = Arc::new(CachedPrincipal {
            principal: principal.clone(),
            groups: groups.to_vec(),
            uid,
            entity: entity.as_ref().clone(),
        });
        let mut cache = write(&self.principal_entities);
        if cache.len() >= MAX_ENTITIES {
            cache.clear();
        }
        cache.insert(key, cached.clone());
        Ok(cached)
    }

    /// The bucket's entity, from the cache when its facts are unchanged.
    fn bucket_entity(&self, facts: &BucketFacts) -> Result<ast::Entity, String> {
        let key = hash_of(facts);
        if let Some(c) = read(&self.bucket_entities).get(&key)
            && c.0 == *facts
        {
            return Ok(c.1.clone());
        }
        let entity = entities::bucket_entity(facts)?.as_ref().clone();
        let mut cache = write(&self.bucket_entities);
        if cache.len() >= MAX_ENTITIES {
            cache.clear();
        }
        cache.insert(key, Arc::new((facts.clone(), entity.clone())));
        Ok(entity)
    }

    /// The candidate policies of a request (cached per kind of request).
    fn candidates_for(
        state: &State,
        req: &AccessRequest<'_>,
        q: &Query<'_>,
        iam_groups: &[String],
        bucket: Option<&str>,
    ) -> Arc<Candidates> {
        let groups = entities::principal_groups(req.principal, iam_groups);
        let anonymous = matches!(req.principal, Principal::Anonymous);
        // As on AWS, root can always read, replace and delete a bucket policy, whatever it says.
        let skip_bucket_policy = matches!(req.principal, Principal::Root { .. })
            && matches!(
                req.action,
                "s3:GetBucketPolicy" | "s3:PutBucketPolicy" | "s3:DeleteBucketPolicy"
            );
        state
            .slices
            .candidates(q, groups, bucket, anonymous, skip_bucket_policy)
    }

    /// Whether deciding `action` on an object of `bucket` for `principal` may need the
    /// object's metadata (owner, size, tags): some policy that may apply reads them. When
    /// not, the caller can skip reading the object before the decision.
    pub fn needs_object_facts(&self, principal: &Principal, action: &str, bucket: &str) -> bool {
        let state = self.current();
        let hit = LAST_NEEDS.with(|last| {
            last.borrow().as_ref().and_then(|l| {
                (l.state == state.id
                    && l.action == action
                    && l.bucket == bucket
                    && l.principal == *principal)
                    .then_some(l.answer)
            })
        });
        if let Some(answer) = hit {
            return answer;
        }
        let answer = self.find_needs_object_facts(&state, principal, action, bucket);
        LAST_NEEDS.with(|last| {
            *last.borrow_mut() = Some(LastNeeds {
                state: state.id,
                principal: principal.clone(),
                action: action.to_string(),
                bucket: bucket.to_string(),
                answer,
            })
        });
        answer
    }

    fn find_needs_object_facts(
        &self,
        state: &State,
        principal: &Principal,
        action: &str,
        bucket: &str,
    ) -> bool {
        let iam_groups = state.iam_groups(principal);
        let Ok(cached) = self.principal_entity(principal, iam_groups) else {
            return true;
        };
        let facts = BucketFacts {
            name: bucket.to_string(),
            ..BucketFacts::default()
        };
        let object = ObjectFacts::default();
        let req = AccessRequest {
            principal,
            action,
            resource: Resource::Object(&facts, &object),
            context: &RequestContext::new("anonymous"),
        };
        let q = Query {
            action,
            principal: &cached.uid,
            resource_type: &entities::types().object,
        };
        Self::candidates_for(state, &req, &q, iam_groups, Some(bucket)).object_meta
    }

    /// Decides one request.
    pub fn decide(&self, req: &AccessRequest<'_>) -> Decision {
        let state = self.current();
        let iam_groups = state.iam_groups(req.principal);
        let principal = match self.principal_entity(req.principal, iam_groups) {
            Ok(p) => p,
            Err(e) => return Decision::deny(format!("principal entity: {e}")),
        };
        let action = action_uid(req.action);
        let Some(action_entity) = self.action_entities.get(&action) else {
            return Decision::deny(format!("`{}` is not an action of the schema", req.action));
        };
        let t = entities::types();
        let (resource_type, bucket) = match req.resource {
            Resource::Node => (&t.node, None),
            Resource::Key(_) => (&t.key, None),
            Resource::Bucket(b) => (&t.bucket, Some(b.name.as_str())),
            Resource::Object(b, _) => (&t.object, Some(b.name.as_str())),
        };
        let q = Query {
            action: req.action,
            principal: &principal.uid,
            resource_type,
        };
        let candidates = Self::candidates_for(&state, req, &q, iam_groups, bucket);
        if let Some(why) = &candidates.broken {
            return Decision::deny(why.clone());
        }
        if let Some(m) = read(&candidates.last).as_ref()
            && m.matches(req, iam_groups)
        {
            return m.decision.clone();
        }
        let decision = self.evaluate(req, &principal, action, action_entity, &candidates);
        // A decision with errors is not kept: their text may name the object.
        if decision.errors.is_empty()
            && let Some(resource) = MemoResource::of(&req.resource, candidates.key_blind)
        {
            *write(&candidates.last) = Some(Arc::new(Memo {
                principal: req.principal.clone(),
                iam_groups: iam_groups.to_vec(),
                resource,
                context: req.context.clone(),
                decision: decision.clone(),
            }));
        }
        decision
    }

    /// Evaluates the candidate policies for one request.
    fn evaluate(
        &self,
        req: &AccessRequest<'_>,
        principal: &CachedPrincipal,
        action: EntityUid,
        action_entity: &ast::Entity,
        candidates: &Candidates,
    ) -> Decision {
        let mut list = vec![principal.entity.clone(), action_entity.clone()];
        let resource_uid = match req.resource {
            Resource::Node => {
                list.push(ast::Entity::with_uid(entities::node_uid().into()));
                entities::node_uid()
            }
            Resource::Key(id) => {
                match entities::key_entity(id) {
                    Ok(e) => list.push(e.as_ref().clone()),
                    Err(e) => return Decision::deny(format!("key entity: {e}")),
                }
                entities::key_uid(id)
            }
            Resource::Bucket(b) => {
                match self.bucket_entity(b) {
                    Ok(e) => list.push(e),
                    Err(e) => return Decision::deny(format!("bucket entity: {e}")),
                }
                entities::bucket_uid(&b.name)
            }
            Resource::Object(b, o) => {
                match self.bucket_entity(b) {
                    Ok(be) => {
                        list.push(be);
                        list.push(entities::object_core_entity(&b.name, o));
                    }
                    Err(e) => return Decision::deny(format!("bucket entity: {e}")),
                }
                entities::object_uid(&b.name, &o.key)
            }
        };
        let context = match cedar_context(req.context) {
            Ok(c) => c,
            Err(e) => return Decision::deny(format!("context: {e}")),
        };
        let store = match entities::request_store(list) {
            Ok(s) => s,
            Err(e) => return Decision::deny(format!("entities: {e}")),
        };
        let request = match Request::new(principal.uid.clone(), action, resource_uid, context, None)
        {
            Ok(r) => r,
            Err(e) => return Decision::deny(format!("request: {e}")),
        };

        let sets = [
            Some((&candidates.policies, true)),
            candidates.forbid_only.as_ref().map(|s| (s, false)),
        ];
        let mut forbids = Vec::new();
        let mut permits = Vec::new();
        let mut errors = Vec::new();
        for (set, permits_count) in sets.into_iter().flatten() {
            if set.num_of_policies() == 0 {
                continue;
            }
            let response = self.authorizer.is_authorized(&request, set, &store);
            let reasons: Vec<String> = response
                .diagnostics()
                .reason()
                .map(|id| AsRef::<str>::as_ref(id).to_owned())
                .collect();
            // A forbid that failed to evaluate is treated as satisfied: an error never turns
            // a deny into an allow.
            for e in response.diagnostics().errors() {
                let cedar_policy::AuthorizationError::PolicyEvaluationError(pe) = e;
                if set
                    .policy(pe.policy_id())
                    .is_some_and(|p| p.effect() == cedar_policy::Effect::Forbid)
                {
                    forbids.push(pe.policy_id().to_string());
                }
                errors.push(e.to_string());
            }
            match response.decision() {
                cedar_policy::Decision::Allow if permits_count => permits.extend(reasons),
                cedar_policy::Decision::Allow => {}
                cedar_policy::Decision::Deny => forbids.extend(reasons),
            }
        }
        if !forbids.is_empty() {
            Decision {
                allowed: false,
                determining: forbids,
                errors,
            }
        } else {
            Decision {
                allowed: !permits.is_empty(),
                determining: permits,
                errors,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::files;
    use cedar_policy::{Entities, Entity};

    fn user(id: &str) -> Principal {
        Principal::User {
            id: id.into(),
            name: id.into(),
            access_key: "AK".into(),
        }
    }

    fn bucket(name: &str, owner: &str) -> BucketFacts {
        BucketFacts {
            name: name.into(),
            owner: owner.into(),
            acl: Default::default(),
        }
    }

    fn object(key: &str) -> ObjectFacts {
        ObjectFacts {
            key: key.into(),
            ..ObjectFacts::default()
        }
    }

    fn ask(e: &PolicyEngine, p: &Principal, action: &str, b: &BucketFacts, key: &str) -> bool {
        ask_about(e, p, action, b, &object(key))
    }

    fn ask_about(
        e: &PolicyEngine,
        p: &Principal,
        action: &str,
        b: &BucketFacts,
        o: &ObjectFacts,
    ) -> bool {
        e.decide(&AccessRequest {
            principal: p,
            action,
            resource: Resource::Object(b, o),
            context: &RequestContext::new("sigv4-header"),
        })
        .allowed
    }

    #[test]
    fn defaults_owner_root_and_anonymous() {
        let e = PolicyEngine::new(files::load_defaults().unwrap());
        let b = bucket("b", "alice");
        assert!(ask(&e, &user("alice"), "s3:GetObject", &b, "k"));
        assert!(!ask(&e, &user("bob"), "s3:GetObject", &b, "k"));
        assert!(!ask(&e, &Principal::Anonymous, "s3:GetObject", &b, "k"));
        let root = Principal::Root {
            id: "r".into(),
            access_key: "R".into(),
        };
        assert!(ask(&e, &root, "s3:DeleteObject", &b, "k"));
        let ctx = RequestContext::new("sigv4-header");
        let new = bucket("new", "");
        let create = |p: &Principal| {
            e.decide(&AccessRequest {
                principal: p,
                action: "s3:CreateBucket",
                resource: Resource::Bucket(&new),
                context: &ctx,
            })
            .allowed
        };
        assert!(create(&user("bob")));
        assert!(!create(&Principal::Anonymous));
        let d = e.decide(&AccessRequest {
            principal: &user("alice"),
            action: "s3:NoSuchAction",
            resource: Resource::Node,
            context: &ctx,
        });
        assert!(!d.allowed && !d.errors.is_empty());
    }

    #[test]
    fn failing_forbids_deny_and_root_keeps_the_bucket_policy() {
        // Unvalidated on purpose: the forbid fails to evaluate (no such attribute).
        let text = r#"
            @id("all") permit(principal, action, resource);
            @id("broken") forbid(principal, action, resource) when { resource.nope == 1 };
        "#;
        let e = PolicyEngine::new(files::parse_text("t", "t", text).unwrap());
        let b = bucket("b", "alice");
        assert!(!ask(&e, &user("alice"), "s3:GetObject", &b, "k"));
        // A bucket policy that denies everything still lets root manage the bucket policy.
        let e = PolicyEngine::new(files::load_defaults().unwrap());
        let lockout = files::parse_text(
            "bp",
            "bucket/b",
            "forbid(principal, action, resource in Sluice::Bucket::\"b\");",
        )
        .unwrap();
        e.set_bucket_policies(
            "b",
            Some(BucketPolicySet {
                policies: lockout,
                restrict_public: false,
            }),
        );
        let root = Principal::Root {
            id: "r".into(),
            access_key: "R".into(),
        };
        let ctx = RequestContext::new("sigv4-header");
        let on_bucket = |action: &str| {
            e.decide(&AccessRequest {
                principal: &root,
                action,
                resource: Resource::Bucket(&b),
                context: &ctx,
            })
            .allowed
        };
        assert!(on_bucket("s3:DeleteBucketPolicy"));
        assert!(!on_bucket("s3:ListBucket"));
        assert!(!ask(&e, &root, "s3:GetObject", &b, "k"));
    }

    #[test]
    fn object_metadata_is_read_only_when_a_policy_may_use_it() {
        let e = PolicyEngine::new(files::load_defaults().unwrap());
        assert!(!e.needs_object_facts(&user("alice"), "s3:GetObject", "b"));
        let mut p = files::load_defaults().unwrap();
        p.extend(
            files::load_text(
                "t.cedar",
                "forbid(principal, action, resource is Sluice::Object) when { resource has size && resource.size > 10 };",
            )
            .unwrap(),
        );
        let e = PolicyEngine::new(p);
        assert!(e.needs_object_facts(&user("alice"), "s3:GetObject", "b"));
    }

    #[test]
    fn key_blind_policies_are_those_that_cannot_tell_objects_apart() {
        let blind = |text: &str| policy_key_blind(&files::parse_text("t", "t", text).unwrap()[0]);
        for p in files::load_defaults().unwrap() {
            assert!(policy_key_blind(&p), "{}", p.id());
        }
        for text in [
            r#"permit(principal, action, resource in Sluice::Bucket::"b") when { resource has acl && resource.acl.read.containsAny(principal.grantees) };"#,
            r#"permit(principal, action, resource is Sluice::Object in Sluice::Bucket::"b");"#,
            r#"permit(principal, action, resource) when { resource in [Sluice::Bucket::"b", Sluice::Bucket::"c"] && context.now > 5 };"#,
            r#"forbid(principal, action, resource) unless { resource has size && resource.size < 10 };"#,
        ] {
            assert!(blind(text), "{text}");
        }
        for text in [
            r#"permit(principal, action, resource) when { resource.key like "a*" };"#,
            r#"permit(principal, action, resource == Sluice::Object::"b/k");"#,
            r#"permit(principal, action, resource in Sluice::Object::"b/k");"#,
            r#"permit(principal, action, resource) when { resource in [Sluice::Bucket::"b", Sluice::Object::"b/k"] };"#,
            r#"permit(principal, action, resource) when { principal.home == resource };"#,
            r#"permit(principal, action, resource) when { resource in principal.homes };"#,
            r#"permit(principal, action, resource) when { if resource.bucket.owner == "a" then resource.key == "k" else false };"#,
            r#"permit(principal, action, resource) when { {r: resource}.r.key == "k" };"#,
            r#"permit(principal, action, resource) when { Sluice::Object::"b/x" has key };"#,
            r#"permit(principal, action, resource) when { Sluice::Object::"b/x" in Sluice::Bucket::"b" };"#,
            r#"permit(principal, action, resource) when { Sluice::Object::"b/x".key == "x" };"#,
        ] {
            assert!(!blind(text), "{text}");
        }
    }

    /// A remembered decision answers only a request with the same inputs: another key where
    /// the policies cannot tell keys apart, never another principal, bucket, context or
    /// policy set, and never another key where a policy reads it.
    #[test]
    fn remembered_decisions_follow_every_input() {
        let text = r#"
            @id("tmp") permit(principal, action == Sluice::Action::"s3:GetObject", resource in Sluice::Bucket::"k") when { resource.key like "tmp/*" };
            @id("big") forbid(principal, action, resource) when { resource has size && resource.size > 10 };
            @id("early") forbid(principal == Sluice::User::"erin", action, resource) when { context.now < 1000 };
        "#;
        let mut policies = files::load_defaults().unwrap();
        policies.extend(files::parse_text("t", "t", text).unwrap());
        let e = PolicyEngine::new(policies);
        let b = bucket("b", "alice");
        assert!(ask(&e, &user("alice"), "s3:GetObject", &b, "one"));
        assert!(ask(&e, &user("alice"), "s3:GetObject", &b, "two"));
        assert!(!ask(&e, &user("bob"), "s3:GetObject", &b, "two"));
        assert!(!ask(
            &e,
            &user("alice"),
            "s3:GetObject",
            &bucket("b", "bob"),
            "two"
        ));
        // The bucket "k" has a policy reading the key: nothing is shared between keys.
        let k = bucket("k", "carol");
        assert!(ask(&e, &user("bob"), "s3:GetObject", &k, "tmp/a"));
        assert!(!ask(&e, &user("bob"), "s3:GetObject", &k, "other"));
        assert!(ask(&e, &user("bob"), "s3:GetObject", &k, "tmp/b"));
        // The context: the same request an instant apart in time.
        let at = |now: i64| {
            let mut ctx = RequestContext::new("sigv4-header");
            ctx.now = now;
            let o = object("x");
            e.decide(&AccessRequest {
                principal: &user("erin"),
                action: "s3:GetObject",
                resource: Resource::Object(&bucket("b", "erin"), &o),
                context: &ctx,
            })
            .allowed
        };
        assert!(!at(999));
        assert!(at(1000));
        assert!(!at(999));
        // An object with metadata is never answered from a blank object's decision.
        let big = |size: Option<u64>| {
            let o = ObjectFacts {
                size,
                ..object("x")
            };
            ask_about(&e, &user("alice"), "s3:GetObject", &b, &o)
        };
        assert!(big(None));
        assert!(!big(Some(20)));
        assert!(big(Some(5)));
        // A policy change drops what was remembered.
        assert!(ask(&e, &user("alice"), "s3:GetObject", &b, "three"));
        let mut p = files::load_defaults().unwrap();
        p.extend(files::parse_text("t", "t", r#"forbid(principal, action, resource);"#).unwrap());
        e.replace_files(p);
        assert!(!ask(&e, &user("alice"), "s3:GetObject", &b, "three"));
    }

    /// The sliced engine decides exactly as one policy set holding every policy would.
    #[test]
    fn slicing_matches_the_whole_set() {
        let text = r#"
            @id("bob-reads-b") permit(principal == Sluice::User::"bob", action == Sluice::Action::"s3:GetObject", resource in Sluice::Bucket::"b");
            @id("devs-write") permit(principal in Sluice::Group::"devs", action in Sluice::Action::"write", resource);
            @id("no-secret") forbid(principal, action, resource in Sluice::Bucket::"b") when { resource has key && resource.key like "secret/*" };
            @id("carol-nothing") forbid(principal == Sluice::User::"carol", action, resource);
            @id("public-c") permit(principal, action == Sluice::Action::"s3:GetObject", resource in Sluice::Bucket::"c");
            @id("obj-eq") permit(principal is Sluice::User, action, resource == Sluice::Object::"c/x");
            @id("anyone-put-tmp") permit(principal, action == Sluice::Action::"s3:PutObject", resource) when { resource.key like "tmp/*" };
        "#;
        let mut policies = files::load_defaults().unwrap();
        policies.extend(files::load_text("t.cedar", text).unwrap());
        let e = PolicyEngine::new(policies.clone());
        let mut groups = HashMap::new();
        groups.insert("dave".to_string(), vec!["devs".to_string()]);
        e.replace_identity(Vec::new(), groups);
        let mut whole = PolicySet::new();
        for p in &policies {
            whole.add(p.clone()).unwrap();
        }
        let principals = [
            user("alice"),
            user("bob"),
            user("carol"),
            user("dave"),
            Principal::Anonymous,
        ];
        let buckets = [bucket("b", "alice"), bucket("c", "carol"), bucket("d", "x")];
        let keys = ["k", "secret/a", "tmp/z", "x"];
        let actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"];
        let mut allowed = 0;
        for p in &principals {
            for b in &buckets {
                for k in keys {
                    for a in actions {
                        let sliced = ask(&e, p, a, b, k);
                        let groups: Vec<String> = e.groups_of(p.id().unwrap_or(""));
                        let (puid, pe) = principal_entity(p, &groups).unwrap();
                        let o = object(k);
                        let ents = Entities::from_entities(
                            [
                                pe,
                                entities::bucket_entity(b).unwrap(),
                                Entity::from(entities::object_core_entity(&b.name, &o)),
                                Entity::from(e.action_entities[&action_uid(a)].clone()),
                            ],
                            None,
                        )
                        .unwrap();
                        let req = Request::new(
                            puid,
                            action_uid(a),
                            entities::object_uid(&b.name, k),
                            RequestContext::new("x").to_cedar().unwrap(),
                            None,
                        )
                        .unwrap();
                        let whole_says = Authorizer::new()
                            .is_authorized(&req, &whole, &ents)
                            .decision()
                            == cedar_policy::Decision::Allow;
                        assert_eq!(sliced, whole_says, "{p:?} {a} {}/{k}", b.name);
                        allowed += usize::from(sliced);
                    }
                }
            }
        }
        // Both outcomes occur, so the comparison means something.
        assert!(allowed > 10 && allowed < 150, "{allowed}");
    }
}
