//! Bucket policies: the AWS JSON policy language translated into Cedar at PutBucketPolicy time,
//! one Cedar policy per statement (`permit` for Allow, `forbid` for Deny), scoped to the
//! bucket, with the statement's Sid in its id (`bucket/<bucket>#<Sid>`).
//!
//! Supported: Version, Id, Statement (object or list), Sid, Effect, Principal / NotPrincipal
//! (`"*"`, `{"AWS": ...}` with user, root and role ARNs, canonical ids and `<plugin>:<subject>`
//! ids, `{"CanonicalUser": ...}`), Action / NotAction and Resource / NotResource with `*` and `?`
//! wildcards (a `?` in a Resource key is refused: Cedar's `like` has no single-character
//! wildcard), and Condition with the String, IP address, Bool, Date, Numeric and Null
//! operators (each optionally `...IfExists`, `ForAnyValue:` or `ForAllValues:`) over
//! `aws:SourceIp`, `aws:SecureTransport`, `aws:CurrentTime`, `aws:EpochTime`, `aws:username`,
//! `aws:userid`, `s3:prefix`, `s3:delimiter`, `s3:max-keys`, `s3:x-amz-acl`,
//! `s3:x-amz-server-side-encryption`, `s3:x-amz-server-side-encryption-aws-kms-key-id`,
//! `s3:x-amz-copy-source`, `s3:x-amz-metadata-directive`, `s3:x-amz-content-sha256`,
//! `s3:x-amz-storage-class`, `s3:x-amz-server-side-encryption-customer-algorithm`,
//! `s3:x-amz-grant-{read,write,read-acp,write-acp,full-control}`, `aws:Referer`,
//! `aws:UserAgent`, `s3:authType` and `s3:ExistingObjectTag/<key>`.
//!
//! Every attribute a translated policy reads is guarded (`context has prefix && ...`), so a
//! translated policy never fails to evaluate: a Deny is never skipped by an evaluation error.

use cedar_policy::{Policy, PolicyId};
use serde_json::Value;

use super::schema;

/// Largest bucket policy AWS accepts.
pub const MAX_POLICY_BYTES: usize = 20 * 1024;

/// Why a policy was refused (the message of a `MalformedPolicy` error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

fn bad(msg: impl Into<String>) -> Malformed {
    Malformed(msg.into())
}

/// A principal named in a policy, resolved to Sluice's identities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyPrincipal {
    /// `"*"`: everyone, anonymous included.
    Everyone,
    /// A user by canonical id (IAM users, root, `<plugin>:<subject>`).
    User(String),
    /// A role, or one session of it.
    Role {
        name: String,
        session: Option<String>,
    },
    /// The account (`arn:aws:iam::ACCOUNT:root` or a bare account id): every signed-in
    /// principal of this Sluice (users, plugin principals, roles), as AWS lets an account
    /// principal stand for everyone in it.
    Account,
    /// A principal Sluice has no counterpart for (a service): matches nobody.
    Nobody,
}

/// Looks up the names a policy uses.
pub trait Directory {
    /// Canonical id of the IAM user `name`.
    fn user_id(&self, name: &str) -> Option<String>;
    fn root_id(&self) -> Option<String>;
    fn role_exists(&self, name: &str) -> bool;
}

/// The result of translating one bucket policy.
#[derive(Debug, Clone)]
pub struct Translated {
    pub policies: Vec<Policy>,
    /// The Cedar text of `policies`, as stored next to the JSON.
    pub cedar: String,
    /// Whether AWS would call the policy public (an Allow to everyone without a fixed-value
    /// condition such as a source IP range).
    pub public: bool,
}

/// `s` quoted as Cedar source. In a string literal a `*` is just a star; in a `like` pattern
/// an unescaped `*` is the wildcard, so `pattern` leaves stars alone and AWS patterns (where
/// only `*` is a wildcard here) keep their meaning.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A Cedar string literal.
pub fn cedar_string(s: &str) -> String {
    quoted(s)
}

/// A Cedar `like` pattern from an AWS pattern where only `*` is a wildcard.
fn cedar_like(pattern: &str) -> String {
    quoted(pattern)
}

/// AWS wildcard match (`*` any run, `?` one character), optionally ignoring ASCII case.
pub fn wildcard_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let eq = |a: char, b: char| {
        if ignore_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && eq(p[pi], t[ti]))) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// A string or a list of strings (AWS allows either almost everywhere).
fn strings(v: &Value, what: &str) -> Result<Vec<String>, Malformed> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                _ => Err(bad(format!("{what} must be a string or a list of strings"))),
            })
            .collect(),
        _ => Err(bad(format!("{what} must be a string or a list of strings"))),
    }
}

/// Condition values may be strings, numbers or booleans, alone or in a list.
fn condition_values(v: &Value) -> Result<Vec<String>, Malformed> {
    let one = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(bad("Condition values must be strings, numbers or booleans")),
    };
    match v {
        Value::Array(items) if !items.is_empty() => items.iter().map(one).collect(),
        Value::Array(_) => Err(bad("Condition value list is empty")),
        other => Ok(vec![one(other)?]),
    }
}

/// The actions bucket policies can name: those on buckets and objects.
fn bucket_actions() -> Vec<(String, bool)> {
    let s = schema::schema();
    let t = super::entities::types();
    schema::action_names()
        .into_iter()
        .filter_map(|a| {
            let uid = super::entities::action_uid(&a);
            let kinds: Vec<_> = s.resources_for_action(&uid)?.cloned().collect();
            let object = kinds.contains(&t.object);
            let bucket = kinds.contains(&t.bucket);
            (object || bucket).then_some((a, object))
        })
        .collect()
}

/// Expands action patterns into the schema's bucket and object actions.
fn expand_actions(patterns: &[String]) -> Result<Vec<(String, bool)>, Malformed> {
    let all = bucket_actions();
    let mut out: Vec<(String, bool)> = Vec::new();
    for p in patterns {
        let valid = p == "*"
            || p.split_once(':').is_some_and(|(svc, name)| {
                svc.eq_ignore_ascii_case("s3")
                    && !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
            });
        if !valid {
            return Err(bad(format!("Policy has invalid action: {p}")));
        }
        // Actions S3 has and Sluice does not are accepted and can never be requested here.
        for (a, object) in &all {
            if wildcard_match(p, a, true) && !out.iter().any(|(x, _)| x == a) {
                out.push((a.clone(), *object));
            }
        }
    }
    Ok(out)
}

/// What one Resource entry covers in this bucket: the bucket itself, and the keys matching
/// any of the residual patterns (what is left of the ARN pattern once `<bucket>/` is read).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ResourceRef {
    everything: bool,
    bucket: bool,
    key_patterns: Vec<String>,
}

/// The suffixes of `pattern` (`*` and `?` wildcards) that must match what follows `prefix`
/// for the whole pattern to match `prefix` + suffix.
fn residuals(pattern: &str, prefix: &str) -> Vec<String> {
    // Runs of `*` match what one `*` matches; collapsing them keeps the state set small.
    let mut p: Vec<char> = Vec::with_capacity(pattern.len());
    for c in pattern.chars() {
        if !(c == '*' && p.last() == Some(&'*')) {
            p.push(c);
        }
    }
    // States are positions in `p`; a `*` at position i also stands for position i + 1.
    let close = |states: &[bool]| {
        let mut out = states.to_vec();
        for i in 0..p.len() {
            if out[i] && p[i] == '*' {
                out[i + 1] = true;
            }
        }
        out
    };
    let mut states = vec![false; p.len() + 1];
    states[0] = true;
    states = close(&states);
    for c in prefix.chars() {
        let mut next = vec![false; p.len() + 1];
        for i in 0..p.len() {
            if states[i] {
                if p[i] == '*' {
                    next[i] = true;
                } else if p[i] == '?' || p[i] == c {
                    next[i + 1] = true;
                }
            }
        }
        states = close(&next);
        if !states.iter().any(|s| *s) {
            return Vec::new();
        }
    }
    let mut out: Vec<String> = (0..=p.len())
        .filter(|&i| states[i])
        .map(|i| p[i..].iter().collect())
        .collect();
    out.sort();
    out.dedup();
    // A residual that is a bare `*` covers every other one.
    if out.iter().any(|r| r == "*") {
        return vec!["*".to_string()];
    }
    out
}

fn parse_resource(bucket: &str, r: &str) -> Result<ResourceRef, Malformed> {
    if r == "*" {
        return Ok(ResourceRef {
            everything: true,
            bucket: true,
            key_patterns: vec!["*".into()],
        });
    }
    let rest = r
        .strip_prefix("arn:aws:s3:::")
        .ok_or_else(|| bad(format!("Policy has invalid resource: {r}")))?;
    if rest.contains("${") {
        return Err(bad(format!(
            "Policy variables (`${{...}}`) are not supported: {r}"
        )));
    }
    let matches_bucket = wildcard_match(rest, bucket, false);
    let key_patterns = residuals(rest, &format!("{bucket}/"));
    if !matches_bucket && key_patterns.is_empty() {
        return Err(bad(format!("Policy has invalid resource: {r}")));
    }
    if key_patterns.iter().any(|k| k.contains('?')) {
        return Err(bad(format!(
            "Policy has invalid resource: {r}: `?` (any one character) in a key cannot be expressed exactly; use `*`"
        )));
    }
    Ok(ResourceRef {
        everything: false,
        bucket: matches_bucket,
        key_patterns,
    })
}

fn resource_expr(r: &ResourceRef) -> String {
    if r.everything {
        return "true".into();
    }
    let mut parts = Vec::new();
    if r.bucket {
        parts.push("resource is Sluice::Bucket".to_string());
    }
    for k in &r.key_patterns {
        parts.push(if k == "*" {
            "resource is Sluice::Object".to_string()
        } else {
            format!(
                "(resource is Sluice::Object && resource.key like {})",
                cedar_like(k)
            )
        });
    }
    any_of(parts)
}

fn parse_principal(p: &str, dir: &dyn Directory) -> Result<PolicyPrincipal, Malformed> {
    let invalid = || bad(format!("Invalid principal in policy: {p}"));
    if p == "*" {
        return Ok(PolicyPrincipal::Everyone);
    }
    if p.len() == 64 && p.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(PolicyPrincipal::User(p.to_ascii_lowercase()));
    }
    if p.len() == 12 && p.chars().all(|c| c.is_ascii_digit()) {
        return Ok(PolicyPrincipal::Account);
    }
    if let Some(rest) = p.strip_prefix("arn:aws:iam::") {
        let (_account, what) = rest.split_once(':').ok_or_else(invalid)?;
        if what == "root" {
            return Ok(PolicyPrincipal::Account);
        }
        if let Some(path) = what.strip_prefix("user/") {
            let name = path.rsplit('/').next().unwrap_or(path);
            return dir
                .user_id(name)
                .map(PolicyPrincipal::User)
                .ok_or_else(invalid);
        }
        if let Some(path) = what.strip_prefix("role/") {
            let name = path.rsplit('/').next().unwrap_or(path);
            return if dir.role_exists(name) {
                Ok(PolicyPrincipal::Role {
                    name: name.to_string(),
                    session: None,
                })
            } else {
                Err(invalid())
            };
        }
        return Err(invalid());
    }
    if let Some(rest) = p.strip_prefix("arn:aws:sts::") {
        let (_account, what) = rest.split_once(':').ok_or_else(invalid)?;
        let mut parts = what.splitn(3, '/');
        return match (parts.next(), parts.next(), parts.next()) {
            (Some("assumed-role"), Some(name), session) if dir.role_exists(name) => {
                Ok(PolicyPrincipal::Role {
                    name: name.to_string(),
                    session: session.map(str::to_string),
                })
            }
            _ => Err(invalid()),
        };
    }
    if let Some((plugin, subject)) = p.split_once(':')
        && !plugin.is_empty()
        && !subject.is_empty()
        && !plugin.contains('/')
    {
        return Ok(PolicyPrincipal::User(p.to_string()));
    }
    Err(invalid())
}

/// The principals of a `Principal` / `NotPrincipal` element.
fn principals(v: &Value, dir: &dyn Directory) -> Result<Vec<PolicyPrincipal>, Malformed> {
    match v {
        Value::String(s) if s == "*" => Ok(vec![PolicyPrincipal::Everyone]),
        Value::Object(map) if !map.is_empty() => {
            let mut out = Vec::new();
            for (kind, ids) in map {
                let ids = strings(ids, "Principal")?;
                match kind.as_str() {
                    "AWS" | "CanonicalUser" => {
                        for id in ids {
                            out.push(parse_principal(&id, dir)?);
                        }
                    }
                    "Service" | "Federated" => out.push(PolicyPrincipal::Nobody),
                    _ => return Err(bad(format!("Invalid principal in policy: {kind}"))),
                }
            }
            Ok(out)
        }
        _ => Err(bad("Invalid principal in policy")),
    }
}

fn principal_expr(p: &PolicyPrincipal) -> String {
    match p {
        PolicyPrincipal::Everyone => "true".into(),
        PolicyPrincipal::Nobody => "false".into(),
        PolicyPrincipal::Account => {
            "(principal is Sluice::User || principal is Sluice::Role)".into()
        }
        PolicyPrincipal::User(id) => format!("principal == Sluice::User::{}", cedar_string(id)),
        PolicyPrincipal::Role {
            name,
            session: None,
        } => format!("principal == Sluice::Role::{}", cedar_string(name)),
        PolicyPrincipal::Role {
            name,
            session: Some(s),
        } => format!(
            "(principal == Sluice::Role::{} && principal.session == {})",
            cedar_string(name),
            cedar_string(s)
        ),
    }
}

fn any_of(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().collect();
    match items.len() {
        0 => "false".into(),
        1 => items.into_iter().next().unwrap_or_default(),
        _ => format!("({})", items.join(" || ")),
    }
}

fn all_of(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().filter(|i| i != "true").collect();
    match items.len() {
        0 => "true".into(),
        1 => items.into_iter().next().unwrap_or_default(),
        _ => format!("({})", items.join(" && ")),
    }
}

/// What a condition key is in Cedar: its value, the guard that says it is present, its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyType {
    String,
    Ip,
    Bool,
    Date,
    Numeric,
}

struct KeyRef {
    value: String,
    present: String,
    ty: KeyType,
}

fn condition_key(key: &str) -> Result<KeyRef, Malformed> {
    let lower = key.to_ascii_lowercase();
    let k = |value: &str, present: &str, ty| KeyRef {
        value: value.to_string(),
        present: present.to_string(),
        ty,
    };
    let header = |name: &str| {
        k(
            &format!("context[{}]", cedar_string(name)),
            &format!("context has {}", cedar_string(name)),
            KeyType::String,
        )
    };
    Ok(match lower.as_str() {
        "aws:sourceip" => k("context.source_ip", "true", KeyType::Ip),
        "aws:securetransport" => k("context.secure_transport", "true", KeyType::Bool),
        "aws:currenttime" => k("context.now", "true", KeyType::Date),
        "aws:epochtime" => k("context.now", "true", KeyType::Numeric),
        "aws:username" => k(
            "principal.name",
            "(principal is Sluice::User && principal.kind == \"iam\")",
            KeyType::String,
        ),
        "aws:userid" => k(
            "principal.id",
            "(principal is Sluice::User || principal is Sluice::Role)",
            KeyType::String,
        ),
        "s3:prefix" => k("context.prefix", "context has prefix", KeyType::String),
        "s3:delimiter" => k(
            "context.delimiter",
            "context has delimiter",
            KeyType::String,
        ),
        "s3:max-keys" => k("context.max_keys", "context has max_keys", KeyType::Numeric),
        "s3:authtype" => k(
            "(if context.auth_method == \"presigned\" then \"REST-QUERY-STRING\" else \"REST-HEADER\")",
            "context.auth_method != \"anonymous\"",
            KeyType::String,
        ),
        "s3:x-amz-acl"
        | "s3:x-amz-server-side-encryption"
        | "s3:x-amz-server-side-encryption-aws-kms-key-id"
        | "s3:x-amz-copy-source"
        | "s3:x-amz-metadata-directive"
        | "s3:x-amz-content-sha256"
        | "s3:x-amz-storage-class"
        | "s3:x-amz-server-side-encryption-customer-algorithm"
        | "s3:x-amz-grant-read"
        | "s3:x-amz-grant-write"
        | "s3:x-amz-grant-read-acp"
        | "s3:x-amz-grant-write-acp"
        | "s3:x-amz-grant-full-control" => header(&lower["s3:".len()..]),
        "aws:referer" => header("referer"),
        "aws:useragent" => header("user-agent"),
        _ => {
            if let Some(tag) = lower
                .strip_prefix("s3:existingobjecttag/")
                .map(|_| &key["s3:ExistingObjectTag/".len()..])
            {
                return Ok(k(
                    &format!("resource.getTag({})", cedar_string(tag)),
                    &format!(
                        "(resource is Sluice::Object && resource.hasTag({}))",
                        cedar_string(tag)
                    ),
                    KeyType::String,
                ));
            }
            return Err(bad(format!("Policy has an invalid condition key: {key}")));
        }
    })
}

/// Seconds since the epoch of an AWS date value (ISO 8601 or epoch seconds).
fn parse_date(v: &str) -> Result<i64, Malformed> {
    if let Ok(n) = v.parse::<i64>() {
        return Ok(n);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc().timestamp());
    }
    for f in [
        "%Y-%m-%dT%H:%M:%SZ",
        "%Y-%m-%dT%H:%M:%S%.fZ",
        "%Y-%m-%dT%H:%MZ",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, f) {
            return Ok(t.and_utc().timestamp());
        }
    }
    Err(bad(format!("Invalid date in condition: {v}")))
}

fn parse_cidr(v: &str) -> Result<String, Malformed> {
    let (addr, len) = match v.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (v, None),
    };
    let ip: std::net::IpAddr = addr
        .parse()
        .map_err(|_| bad(format!("Invalid IP address in condition: {v}")))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len: u8 = match len {
        Some(l) => l
            .parse()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| bad(format!("Invalid IP address in condition: {v}")))?,
        None => max,
    };
    Ok(format!("{ip}/{len}"))
}

/// One condition operator over one key, as a Cedar expression.
fn condition(op: &str, key: &str, values: &[String]) -> Result<(String, bool), Malformed> {
    // `ForAnyValue:` / `ForAllValues:` make no difference for single-valued keys, except that
    // ForAllValues holds when the key is absent.
    let (op, for_all, for_any) = if let Some(o) = op.strip_prefix("ForAnyValue:") {
        (o, false, true)
    } else if let Some(o) = op.strip_prefix("ForAllValues:") {
        (o, true, false)
    } else {
        (op, false, false)
    };
    if values.iter().any(|v| v.contains("${")) {
        return Err(bad(format!(
            "Policy variables (`${{...}}`) are not supported: {key}"
        )));
    }
    let (base, if_exists) = match op.strip_suffix("IfExists") {
        Some(b) => (b, true),
        None => (op, false),
    };
    let k = condition_key(key)?;
    let expect = |ty: KeyType| {
        if k.ty == ty {
            Ok(())
        } else {
            Err(bad(format!(
                "Condition operator {op} does not apply to the key {key}"
            )))
        }
    };
    if base == "Null" {
        if if_exists || for_all || for_any {
            return Err(bad(format!("Invalid condition operator: {op}")));
        }
        let mut exprs = Vec::new();
        for v in values {
            match v.as_str() {
                "true" => exprs.push(format!("!({})", k.present)),
                "false" => exprs.push(k.present.clone()),
                _ => return Err(bad("The Null condition takes true or false")),
            }
        }
        return Ok((any_of(exprs), false));
    }
    let (negated, each): (bool, Vec<String>) = match base {
        "StringEquals" | "StringNotEquals" => {
            expect(KeyType::String)?;
            (
                base == "StringNotEquals",
                values
                    .iter()
                    .map(|v| format!("{} == {}", k.value, cedar_string(v)))
                    .collect(),
            )
        }
        "StringLike" | "StringNotLike" => {
            expect(KeyType::String)?;
            let mut out = Vec::new();
            for v in values {
                if v.contains('?') {
                    return Err(bad(format!(
                        "{base} pattern `{v}` uses `?` (any one character), which cannot be expressed exactly; use `*`"
                    )));
                }
                out.push(format!("{} like {}", k.value, cedar_like(v)));
            }
            (base == "StringNotLike", out)
        }
        "IpAddress" | "NotIpAddress" => {
            if k.ty != KeyType::Ip {
                return Err(bad(format!(
                    "Condition operator {op} does not apply to the key {key}"
                )));
            }
            let mut out = Vec::new();
            for v in values {
                out.push(format!(
                    "{}.isInRange(ip({}))",
                    k.value,
                    cedar_string(&parse_cidr(v)?)
                ));
            }
            (base == "NotIpAddress", out)
        }
        "Bool" => {
            let mut out = Vec::new();
            for v in values {
                let b = match v.to_ascii_lowercase().as_str() {
                    "true" => "true",
                    "false" => "false",
                    _ => return Err(bad(format!("Bool condition value `{v}` is not a boolean"))),
                };
                out.push(match k.ty {
                    KeyType::Bool => format!("{} == {b}", k.value),
                    _ => format!("{} == {}", k.value, cedar_string(b)),
                });
            }
            (false, out)
        }
        "DateEquals"
        | "DateNotEquals"
        | "DateLessThan"
        | "DateLessThanEquals"
        | "DateGreaterThan"
        | "DateGreaterThanEquals" => {
            // aws:EpochTime is a number of seconds, which the Date operators also take.
            if k.ty != KeyType::Date && !key.eq_ignore_ascii_case("aws:epochtime") {
                return Err(bad(format!(
                    "Condition operator {op} does not apply to the key {key}"
                )));
            }
            let cmp = compare_op(base.trim_start_matches("Date"));
            let mut out = Vec::new();
            for v in values {
                out.push(format!("{} {cmp} {}", k.value, parse_date(v)?));
            }
            (base == "DateNotEquals", out)
        }
        "NumericEquals"
        | "NumericNotEquals"
        | "NumericLessThan"
        | "NumericLessThanEquals"
        | "NumericGreaterThan"
        | "NumericGreaterThanEquals" => {
            if k.ty != KeyType::Numeric {
                return Err(bad(format!(
                    "Condition operator {op} does not apply to the key {key}"
                )));
            }
            let cmp = compare_op(base.trim_start_matches("Numeric"));
            let mut out = Vec::new();
            for v in values {
                let n: i64 = v
                    .parse()
                    .map_err(|_| bad(format!("Numeric condition value `{v}` is not an integer")))?;
                out.push(format!("{} {cmp} {n}", k.value));
            }
            (base == "NumericNotEquals", out)
        }
        "StringEqualsIgnoreCase" | "StringNotEqualsIgnoreCase" => {
            return Err(bad(format!(
                "Condition operator {op} is not supported by this server; use StringEquals or StringLike"
            )));
        }
        _ => {
            return Err(bad(format!(
                "Policy has an invalid condition operator: {op}"
            )));
        }
    };
    // Positive operators: any value matches, and an absent key never does. Negated operators:
    // no value matches, and an absent key always does (as AWS evaluates them).
    let matched = if negated {
        format!("!({})", any_of(each))
    } else {
        any_of(each)
    };
    // ForAnyValue over an absent key is false even for a negated operator.
    let absent_holds = if_exists || for_all || (negated && !for_any);
    let expr = if k.present == "true" {
        matched
    } else if absent_holds {
        format!("(!({}) || {matched})", k.present)
    } else {
        format!("({} && {matched})", k.present)
    };
    // A fixed source range or user id makes an Allow non-public (as AWS judges it), unless an
    // absent key also satisfies the condition or the range is everything.
    let everything = values.iter().any(|v| v.trim().ends_with("/0"));
    let absent_satisfies = absent_holds && k.present != "true";
    let restricts = matches!(
        key.to_ascii_lowercase().as_str(),
        "aws:sourceip" | "aws:userid"
    ) && !negated
        && !absent_satisfies
        && !everything;
    Ok((expr, restricts))
}

fn compare_op(suffix: &str) -> &'static str {
    match suffix {
        "Equals" => "==",
        "NotEquals" => "!=",
        "LessThan" => "<",
        "LessThanEquals" => "<=",
        "GreaterThan" => ">",
        _ => ">=",
    }
}

fn conditions(v: &Value) -> Result<(String, bool), Malformed> {
    let map = v
        .as_object()
        .ok_or_else(|| bad("Condition must be an object"))?;
    let mut exprs = Vec::new();
    let mut restricts = false;
    for (op, keys) in map {
        let keys = keys
            .as_object()
            .ok_or_else(|| bad(format!("Condition {op} must map keys to values")))?;
        for (key, values) in keys {
            let (e, r) = condition(op, key, &condition_values(values)?)?;
            exprs.push(e);
            restricts |= r;
        }
    }
    Ok((all_of(exprs), restricts))
}

fn field<'a>(
    stmt: &'a serde_json::Map<String, Value>,
    a: &str,
    not: &str,
) -> Result<(Option<&'a Value>, bool), Malformed> {
    match (stmt.get(a), stmt.get(not)) {
        (Some(_), Some(_)) => Err(bad(format!("A statement cannot have both {a} and {not}"))),
        (Some(v), None) => Ok((Some(v), false)),
        (None, Some(v)) => Ok((Some(v), true)),
        (None, None) => Ok((None, false)),
    }
}

const KNOWN_FIELDS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

/// Translates the policy `text` of `bucket` into Cedar.
pub fn translate(bucket: &str, text: &str, dir: &dyn Directory) -> Result<Translated, Malformed> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(bad("Policies cannot exceed 20480 characters"));
    }
    if !text.trim_start().starts_with('{') {
        return Err(bad(
            "Policies must be valid JSON and the first byte must be '{'",
        ));
    }
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| bad(format!("This policy contains invalid Json: {e}")))?;
    let doc = doc
        .as_object()
        .ok_or_else(|| bad("Policies must be valid JSON and the first byte must be '{'"))?;
    for k in doc.keys() {
        if !["Version", "Id", "Statement"].contains(&k.as_str()) {
            return Err(bad(format!("Unknown field {k}")));
        }
    }
    match doc.get("Version").and_then(Value::as_str) {
        Some("2012-10-17") | Some("2008-10-17") | None => {}
        Some(v) => {
            return Err(bad(format!(
                "The policy must contain a valid version string: {v}"
            )));
        }
    }
    let statements: Vec<&Value> = match doc.get("Statement") {
        Some(Value::Array(items)) if !items.is_empty() => items.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => return Err(bad("Missing required field Statement")),
    };
    let mut cedar = String::new();
    let mut policies = Vec::new();
    let mut sids = std::collections::HashSet::new();
    let mut public = false;
    for (i, stmt) in statements.into_iter().enumerate() {
        let stmt = stmt
            .as_object()
            .ok_or_else(|| bad("Each Statement must be an object"))?;
        for k in stmt.keys() {
            if !KNOWN_FIELDS.contains(&k.as_str()) {
                return Err(bad(format!("Unknown field {k}")));
            }
        }
        let sid = match stmt.get("Sid") {
            Some(Value::String(s)) => {
                if !s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-' || c == '_')
                {
                    return Err(bad(format!(
                        "Statement IDs (SID) must be alpha-numeric: {s}"
                    )));
                }
                if !s.is_empty() && !sids.insert(s.clone()) {
                    return Err(bad("Statement IDs (SID) in a single policy must be unique"));
                }
                (!s.is_empty()).then(|| s.clone())
            }
            Some(_) => return Err(bad("Sid must be a string")),
            None => None,
        };
        let effect = match stmt.get("Effect").and_then(Value::as_str) {
            Some("Allow") => "permit",
            Some("Deny") => "forbid",
            Some(e) => return Err(bad(format!("Invalid effect: {e}"))),
            None => return Err(bad("Missing required field Effect")),
        };
        let (principal, not_principal) = field(stmt, "Principal", "NotPrincipal")?;
        // AWS documents NotPrincipal with Allow as unsupported ("Allow everyone but these"
        // reads as a grant to the world); it is a Deny's exception list.
        if not_principal && effect == "permit" {
            return Err(bad(
                "NotPrincipal is supported only in statements with \"Effect\": \"Deny\"",
            ));
        }
        let principal = principal.ok_or_else(|| bad("Missing required field Principal"))?;
        let who = principals(principal, dir)?;
        let everyone = who.contains(&PolicyPrincipal::Everyone);
        let mut principal_expr = any_of(who.iter().map(principal_expr));
        if not_principal {
            principal_expr = format!("!({principal_expr})");
        }
        let (action, not_action) = field(stmt, "Action", "NotAction")?;
        let action = action.ok_or_else(|| bad("Missing required field Action"))?;
        let actions = expand_actions(&strings(action, "Action")?)?;
        let action_set = |subset: &[&(String, bool)]| {
            let uids: Vec<String> = subset
                .iter()
                .map(|(a, _)| format!("Sluice::Action::{}", cedar_string(a)))
                .collect();
            if uids.is_empty() {
                "false".to_string()
            } else {
                format!("action in [{}]", uids.join(", "))
            }
        };
        let all_refs: Vec<&(String, bool)> = actions.iter().collect();
        // Named actions go into the scope, where the engine can slice by them.
        let (action_scope, action_expr) = if not_action {
            (
                "action".to_string(),
                format!("!({})", action_set(&all_refs)),
            )
        } else if actions.is_empty() {
            ("action".to_string(), "false".to_string())
        } else {
            (action_set(&all_refs), "true".to_string())
        };
        let (resource, not_resource) = field(stmt, "Resource", "NotResource")?;
        let resource = resource.ok_or_else(|| bad("Missing required field Resource"))?;
        let refs = strings(resource, "Resource")?
            .iter()
            .map(|r| parse_resource(bucket, r))
            .collect::<Result<Vec<_>, _>>()?;
        if !not_action && !not_resource {
            // As AWS: at least one action must apply to at least one resource.
            let applies = refs.iter().any(|r| {
                (r.bucket && actions.iter().any(|(_, object)| !object))
                    || (!r.key_patterns.is_empty() && actions.iter().any(|(_, object)| *object))
            });
            let named_only_unknown = actions.is_empty();
            if !applies && !named_only_unknown {
                return Err(bad("Action does not apply to any resource(s) in statement"));
            }
        }
        let mut resource_expr = any_of(refs.iter().map(resource_expr));
        if not_resource {
            resource_expr = format!("!({resource_expr})");
        }
        let (condition_expr, restricts) = match stmt.get("Condition") {
            Some(c) => conditions(c)?,
            None => ("true".to_string(), false),
        };
        if effect == "permit" && everyone && !restricts {
            public = true;
        }
        // Sids are alphanumeric (with space, - and _), so `[n]` can never be one.
        let local = sid.unwrap_or_else(|| format!("[{i}]"));
        let id = format!("bucket/{bucket}#{local}");
        let body = all_of([principal_expr, action_expr, resource_expr, condition_expr]);
        // The principals a statement names, so that the engine evaluates it only for them.
        let account = who.contains(&PolicyPrincipal::Account);
        let annotation = if not_principal || everyone || account {
            String::new()
        } else {
            let uids: Vec<String> = who
                .iter()
                .filter_map(|p| match p {
                    PolicyPrincipal::User(id) => {
                        Some(format!("Sluice::User::{}", cedar_string(id)))
                    }
                    PolicyPrincipal::Role { name, .. } => {
                        Some(format!("Sluice::Role::{}", cedar_string(name)))
                    }
                    PolicyPrincipal::Everyone
                    | PolicyPrincipal::Account
                    | PolicyPrincipal::Nobody => None,
                })
                .collect();
            let json = serde_json::to_string(&uids).unwrap_or_else(|_| "[]".into());
            format!(
                "@{}({})\n",
                super::engine::PRINCIPALS_ANNOTATION,
                cedar_string(&json)
            )
        };
        let text = format!(
            "{annotation}{effect} (principal, {action_scope}, resource in Sluice::Bucket::{})\nwhen {{ {body} }};\n",
            cedar_string(bucket)
        );
        let policy = Policy::parse(Some(PolicyId::new(&id)), &text)
            .map_err(|e| bad(format!("statement {local} cannot be translated: {e}")))?;
        cedar.push_str(&format!("// {id}\n{text}\n"));
        policies.push(policy);
    }
    Ok(Translated {
        policies,
        cedar,
        public,
    })
}

/// Parses stored translated text back into policies (ids from the `// id` lines).
pub fn from_stored(cedar: &str) -> Result<Vec<Policy>, String> {
    let mut out = Vec::new();
    let mut id: Option<String> = None;
    let mut text = String::new();
    let flush = |id: &mut Option<String>, text: &mut String, out: &mut Vec<Policy>| {
        if let Some(i) = id.take() {
            let p = Policy::parse(Some(PolicyId::new(&i)), text.as_str())
                .map_err(|e| format!("{i}: {e}"))?;
            out.push(p);
        }
        text.clear();
        Ok::<_, String>(())
    };
    for line in cedar.lines() {
        if let Some(i) = line.strip_prefix("// ") {
            flush(&mut id, &mut text, &mut out)?;
            id = Some(i.to_string());
        } else {
            text.push_str(line);
            text.push('\n');
        }
    }
    flush(&mut id, &mut text, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Principal;
    use crate::policy::entities::{BucketFacts, ObjectFacts, RequestContext};
    use crate::policy::{AccessRequest, BucketPolicySet, PolicyEngine, Resource};
    use serde_json::json;

    const ALICE: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const BOB: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    struct Dir;
    impl Directory for Dir {
        fn user_id(&self, name: &str) -> Option<String> {
            match name {
                "alice" => Some(ALICE.into()),
                "bob" => Some(BOB.into()),
                _ => None,
            }
        }
        fn root_id(&self) -> Option<String> {
            Some("r".repeat(64))
        }
        fn role_exists(&self, name: &str) -> bool {
            name == "reader"
        }
    }

    fn tr(policy: Value) -> Result<Translated, Malformed> {
        translate("b", &policy.to_string(), &Dir)
    }

    #[test]
    fn malformed_policies_say_why() {
        let stmt = |extra: Value| {
            let mut s = json!({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                               "Resource": "arn:aws:s3:::b/*"});
            for (k, v) in extra.as_object().unwrap() {
                s[k] = v.clone();
            }
            json!({"Version": "2012-10-17", "Statement": [s]})
        };
        assert!(tr(stmt(json!({}))).unwrap().public);
        let e = tr(stmt(json!({"Resource": "arn:aws:s3:::b/a?c"}))).unwrap_err();
        assert!(e.0.contains('?'), "{e}");
        let e = tr(stmt(
            json!({"Condition": {"StringLike": {"s3:prefix": "a?"}}}),
        ))
        .unwrap_err();
        assert!(e.0.contains('?'), "{e}");
        assert!(tr(stmt(json!({"Resource": "arn:aws:s3:::other/*"}))).is_err());
        assert!(tr(stmt(json!({"Action": "ec2:RunInstances"}))).is_err());
        assert!(tr(stmt(json!({"Effect": "Maybe"}))).is_err());
        assert!(
            tr(stmt(
                json!({"Principal": {"AWS": "arn:aws:iam::1:user/nobody"}})
            ))
            .is_err()
        );
        assert!(
            tr(stmt(
                json!({"Condition": {"StringEquals": {"aws:Nope": "x"}}})
            ))
            .is_err()
        );
        assert!(
            tr(stmt(
                json!({"Condition": {"IpAddress": {"aws:SourceIp": "10.0.0/8"}}})
            ))
            .is_err()
        );
        assert!(tr(stmt(json!({"Resource": "arn:aws:s3:::b"}))).is_err());
        assert!(translate("b", "[]", &Dir).is_err());
        assert!(translate("b", "{nope", &Dir).is_err());
        let ip = tr(stmt(
            json!({"Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}),
        ));
        assert!(!ip.unwrap().public);
        let two = json!({"Statement": [
            {"Sid": "A", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
            {"Sid": "A", "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
        ]});
        assert!(tr(two).is_err());
        // NotPrincipal: a Deny's exceptions; with Allow it is refused, as AWS documents.
        let except = |effect: &str| {
            tr(
                json!({"Statement": [{"Effect": effect, "NotPrincipal": {"AWS": "arn:aws:iam::123:user/bob"},
                "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]}),
            )
        };
        assert!(except("Deny").is_ok());
        let refused = except("Allow").unwrap_err();
        assert!(refused.0.contains("NotPrincipal"), "{refused}");
        // Header condition keys read the request header of that name.
        for (key, header) in [
            ("aws:Referer", "referer"),
            ("aws:UserAgent", "user-agent"),
            ("s3:x-amz-grant-read", "x-amz-grant-read"),
            ("s3:x-amz-grant-full-control", "x-amz-grant-full-control"),
        ] {
            let (e, _) = condition("StringEquals", key, &["x".into()]).unwrap();
            assert!(
                e.contains(&format!("context has \"{header}\"")),
                "{key}: {e}"
            );
        }
    }

    #[test]
    fn ids_keep_the_sid_and_round_trip() {
        let t = tr(json!({"Statement": [
            {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
            {"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::123:user/bob"}, "Action": "s3:*", "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]}
        ]}))
        .unwrap();
        let ids: Vec<String> = t.policies.iter().map(|p| p.id().to_string()).collect();
        assert_eq!(ids, ["bucket/b#PublicRead", "bucket/b#[1]"]);
        let back = from_stored(&t.cedar).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].to_string().trim(), t.policies[0].to_string().trim());
    }

    #[test]
    fn hostile_patterns_and_ids() {
        // A 20 KB run of stars must not blow up the residual computation.
        let started = std::time::Instant::now();
        let stars = "*".repeat(19_000);
        let r = parse_resource("b", &format!("arn:aws:s3:::{stars}")).unwrap();
        assert!(r.bucket && r.key_patterns == ["*"]);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // A statement without a Sid never shares an id with one whose Sid is a number.
        let t = tr(json!({"Statement": [
            {"Sid": "1", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
        ]}))
        .unwrap();
        let ids: Vec<String> = t.policies.iter().map(|p| p.id().to_string()).collect();
        assert_eq!(ids, ["bucket/b#1", "bucket/b#[1]"]);
        // Policy variables are refused rather than taken literally.
        assert!(
            tr(
                json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::b/${aws:username}/*"}]})
            )
            .is_err()
        );
        // An account principal stands for every signed-in principal, so it is not narrowed.
        let t = tr(json!({"Statement": [{"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]})).unwrap();
        assert!(
            t.cedar
                .contains("principal is Sluice::User || principal is Sluice::Role")
        );
        assert!(!t.cedar.contains("@principals"));
        // ForAnyValue with a negated operator does not hold for an absent key.
        let (e, _) = condition("ForAnyValue:StringNotEquals", "s3:prefix", &["x".into()]).unwrap();
        assert!(e.starts_with("(context has prefix &&"), "{e}");
        let (e, _) = condition("StringNotEquals", "s3:prefix", &["x".into()]).unwrap();
        assert!(e.starts_with("(!(context has prefix) ||"), "{e}");
        // A /0 range or an IfExists user id does not make an Allow to everyone private.
        for c in [
            json!({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}),
            json!({"StringEqualsIfExists": {"aws:userid": "x"}}),
        ] {
            let t = tr(
                json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::b/*", "Condition": c}]}),
            )
            .unwrap();
            assert!(t.public, "{c}");
        }
    }

    #[test]
    fn residual_patterns() {
        assert_eq!(residuals("b/*", "b/"), ["*"]);
        assert_eq!(residuals("b*", "b/"), ["*"]);
        assert_eq!(residuals("*/x*", "b/"), ["*/x*", "/x*", "x*"]);
        assert!(residuals("c/*", "b/").is_empty());
        assert_eq!(residuals("b/pre*", "b/"), ["pre*"]);
    }

    // ---- Property test: the Cedar translation decides as the JSON semantics do. ----

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[(self.next() % items.len() as u64) as usize]
        }
        fn chance(&mut self, percent: u64) -> bool {
            self.next() % 100 < percent
        }
    }

    fn some_of(rng: &mut Rng, items: &[&str]) -> Value {
        let n = 1 + (rng.next() % 2) as usize;
        let picked: Vec<Value> = (0..n).map(|_| json!(rng.pick(items))).collect();
        if n == 1 {
            picked[0].clone()
        } else {
            Value::Array(picked)
        }
    }

    fn random_statement(rng: &mut Rng, i: usize) -> Value {
        let mut s = serde_json::Map::new();
        s.insert("Sid".into(), json!(format!("S{i}")));
        let deny = rng.chance(35);
        s.insert("Effect".into(), json!(if deny { "Deny" } else { "Allow" }));
        let who = rng
            .pick(&[
                json!("*"),
                json!({"AWS": "*"}),
                json!({"AWS": "arn:aws:iam::123456789012:user/alice"}),
                json!({"AWS": ["arn:aws:iam::123456789012:user/bob", ALICE]}),
                json!({"CanonicalUser": BOB}),
            ])
            .clone();
        // NotPrincipal only in a Deny: with Allow the policy is refused.
        s.insert(
            if deny && rng.chance(30) {
                "NotPrincipal"
            } else {
                "Principal"
            }
            .into(),
            who,
        );
        let actions = some_of(
            rng,
            &[
                "s3:GetObject",
                "s3:PutObject",
                "s3:Get*",
                "s3:*",
                "*",
                "s3:List*",
                "s3:DeleteObject",
                "s3:ListBucket",
                "s3:getobject",
                "s3:?etObject",
            ],
        );
        s.insert(
            if rng.chance(15) {
                "NotAction"
            } else {
                "Action"
            }
            .into(),
            actions,
        );
        let resources = some_of(
            rng,
            &[
                "arn:aws:s3:::b",
                "arn:aws:s3:::b/*",
                "arn:aws:s3:::b/pub/*",
                "arn:aws:s3:::b*",
                "arn:aws:s3:::*/x*",
                "*",
                "arn:aws:s3:::b/a*b",
                "arn:aws:s3:::?/*",
            ],
        );
        s.insert(
            if rng.chance(15) {
                "NotResource"
            } else {
                "Resource"
            }
            .into(),
            resources,
        );
        if rng.chance(60) {
            let c = rng.pick(&[
                json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
                json!({"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "172.16.0.0/12"]}}),
                json!({"Bool": {"aws:SecureTransport": "true"}}),
                json!({"Bool": {"aws:SecureTransport": false}}),
                json!({"StringLike": {"s3:prefix": ["pub/*", "x"]}}),
                json!({"StringEquals": {"s3:prefix": ""}}),
                json!({"StringNotEquals": {"s3:x-amz-acl": "public-read"}}),
                json!({"StringNotLike": {"s3:prefix": "pub*"}}),
                json!({"Null": {"s3:x-amz-acl": "true"}}),
                json!({"Null": {"s3:x-amz-acl": false}}),
                json!({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}),
                json!({"DateGreaterThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}),
                json!({"NumericLessThan": {"s3:max-keys": "10"}}),
                json!({"StringEqualsIfExists": {"s3:prefix": "x"}}),
                json!({"StringEquals": {"s3:x-amz-acl": "private"}, "Bool": {"aws:SecureTransport": "true"}}),
            ]).clone();
            s.insert("Condition".into(), c);
        }
        Value::Object(s)
    }

    /// A request as the direct evaluator sees it.
    struct Req {
        principal: Option<&'static str>,
        action: &'static str,
        key: Option<&'static str>,
        ip: &'static str,
        secure: bool,
        now: i64,
        prefix: Option<&'static str>,
        acl: Option<&'static str>,
        max_keys: Option<i64>,
    }

    fn list(v: &Value) -> Vec<String> {
        match v {
            Value::Array(a) => a
                .iter()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
            Value::String(s) => vec![s.clone()],
            other => vec![other.to_string()],
        }
    }

    fn in_cidr(ip: &str, cidr: &str) -> bool {
        let (net, len) = cidr.split_once('/').unwrap();
        let ip: std::net::Ipv4Addr = ip.parse().unwrap();
        let net: std::net::Ipv4Addr = net.parse().unwrap();
        let len: u32 = len.parse().unwrap();
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        u32::from(ip) & mask == u32::from(net) & mask
    }

    /// AWS condition semantics, written from the documentation, independent of the translator.
    fn condition_holds(op: &str, key: &str, values: &[String], r: &Req) -> bool {
        let (op, if_exists) = match op.strip_suffix("IfExists") {
            Some(o) => (o, true),
            None => (op, false),
        };
        let value: Option<String> = match key {
            "aws:SourceIp" => Some(r.ip.to_string()),
            "aws:SecureTransport" => Some(r.secure.to_string()),
            "aws:CurrentTime" => Some(r.now.to_string()),
            "s3:prefix" => r.prefix.map(str::to_string),
            "s3:x-amz-acl" => r.acl.map(str::to_string),
            "s3:max-keys" => r.max_keys.map(|m| m.to_string()),
            _ => panic!("{key}"),
        };
        if op == "Null" {
            return values.iter().any(|v| (v == "true") == value.is_none());
        }
        let negated = op.starts_with("StringNot") || op == "NotIpAddress";
        let Some(value) = value else {
            return negated || if_exists;
        };
        let any = |f: &dyn Fn(&str) -> bool| values.iter().any(|v| f(v));
        match op {
            "StringEquals" => any(&|v| v == value),
            "StringNotEquals" => !any(&|v| v == value),
            "StringLike" => any(&|v| wildcard_match(v, &value, false)),
            "StringNotLike" => !any(&|v| wildcard_match(v, &value, false)),
            "IpAddress" => any(&|v| in_cidr(&value, v)),
            "NotIpAddress" => !any(&|v| in_cidr(&value, v)),
            "Bool" => any(&|v| v.eq_ignore_ascii_case(&value)),
            "DateLessThan" => any(&|v| value.parse::<i64>().unwrap() < parse_date(v).unwrap()),
            "DateGreaterThan" => any(&|v| value.parse::<i64>().unwrap() > parse_date(v).unwrap()),
            "NumericLessThan" => {
                any(&|v| value.parse::<i64>().unwrap() < v.parse::<i64>().unwrap())
            }
            _ => panic!("{op}"),
        }
    }

    fn statement_matches(s: &Value, r: &Req) -> bool {
        let principal_match = |p: &Value| match p {
            Value::String(s) => s == "*",
            Value::Object(m) => m.iter().any(|(kind, ids)| {
                list(ids).iter().any(|id| {
                    id == "*"
                        || match (kind.as_str(), r.principal) {
                            (_, None) => false,
                            (_, Some(who)) => {
                                let named = if id.ends_with(":user/alice") {
                                    ALICE
                                } else if id.ends_with(":user/bob") {
                                    BOB
                                } else {
                                    id.as_str()
                                };
                                named == who
                            }
                        }
                })
            }),
            _ => false,
        };
        let p_ok = match (s.get("Principal"), s.get("NotPrincipal")) {
            (Some(p), _) => principal_match(p),
            (_, Some(p)) => !principal_match(p),
            _ => false,
        };
        let a_ok = match (s.get("Action"), s.get("NotAction")) {
            (Some(a), _) => list(a).iter().any(|p| wildcard_match(p, r.action, true)),
            (_, Some(a)) => !list(a).iter().any(|p| wildcard_match(p, r.action, true)),
            _ => false,
        };
        let arn = match r.key {
            Some(k) => format!("arn:aws:s3:::b/{k}"),
            None => "arn:aws:s3:::b".to_string(),
        };
        let r_match = |v: &Value| list(v).iter().any(|p| wildcard_match(p, &arn, false));
        let r_ok = match (s.get("Resource"), s.get("NotResource")) {
            (Some(v), _) => r_match(v),
            (_, Some(v)) => !r_match(v),
            _ => false,
        };
        let c_ok = match s.get("Condition") {
            None => true,
            Some(c) => c.as_object().unwrap().iter().all(|(op, keys)| {
                keys.as_object()
                    .unwrap()
                    .iter()
                    .all(|(k, v)| condition_holds(op, k, &list(v), r))
            }),
        };
        p_ok && a_ok && r_ok && c_ok
    }

    fn json_allows(doc: &Value, r: &Req) -> bool {
        let stmts = doc["Statement"].as_array().unwrap();
        let matching = |effect: &str| {
            stmts
                .iter()
                .any(|s| s["Effect"] == effect && statement_matches(s, r))
        };
        !matching("Deny") && matching("Allow")
    }

    #[test]
    fn translation_decides_as_the_json_semantics() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut compared, mut allowed, mut translated) = (0usize, 0usize, 0usize);
        for round in 0..400 {
            let n = 1 + (rng.next() % 3) as usize;
            let doc = json!({"Version": "2012-10-17",
                "Statement": (0..n).map(|i| random_statement(&mut rng, i)).collect::<Vec<_>>()});
            let Ok(t) = translate("b", &doc.to_string(), &Dir) else {
                continue;
            };
            translated += 1;
            let engine = PolicyEngine::new(Vec::new());
            engine.set_bucket_policies(
                "b",
                Some(BucketPolicySet {
                    policies: t.policies.clone(),
                    restrict_public: false,
                }),
            );
            for _ in 0..40 {
                let principal = *rng.pick(&[Some(ALICE), Some(BOB), None]);
                let (action, key) = *rng.pick(&[
                    ("s3:GetObject", true),
                    ("s3:PutObject", true),
                    ("s3:DeleteObject", true),
                    ("s3:ListBucket", false),
                    ("s3:GetBucketPolicy", false),
                ]);
                let key = key.then(|| *rng.pick(&["pub/x", "a1b", "x", "xylophone", "ab"]));
                let r = Req {
                    principal,
                    action,
                    key,
                    ip: ["10.1.2.3", "192.168.0.1", "172.20.0.1"][(rng.next() % 3) as usize],
                    secure: rng.chance(50),
                    now: *rng.pick(&[1_800_000_000, 1_950_000_000]),
                    prefix: if action == "s3:ListBucket" {
                        Some(*rng.pick(&["pub/", "", "x"]))
                    } else {
                        None
                    },
                    acl: *rng.pick(&[None, Some("public-read"), Some("private")]),
                    max_keys: if action == "s3:ListBucket" {
                        *rng.pick(&[Some(5), Some(50), None])
                    } else {
                        None
                    },
                };
                let expected = json_allows(&doc, &r);
                let p = match r.principal {
                    Some(id) => Principal::User {
                        id: id.into(),
                        name: "u".into(),
                        access_key: "A".into(),
                    },
                    None => Principal::Anonymous,
                };
                let mut ctx = RequestContext::new("sigv4-header");
                ctx.source_ip = Some(r.ip.parse().unwrap());
                ctx.secure_transport = r.secure;
                ctx.now = r.now;
                ctx.prefix = r.prefix.map(str::to_string);
                ctx.max_keys = r.max_keys;
                if let Some(a) = r.acl {
                    ctx.headers.push(("x-amz-acl", a.to_string()));
                }
                let b = BucketFacts {
                    name: "b".into(),
                    owner: "o".into(),
                    acl: Default::default(),
                };
                let o = ObjectFacts {
                    key: key.unwrap_or("").into(),
                    ..ObjectFacts::default()
                };
                let resource = if key.is_some() {
                    Resource::Object(&b, &o)
                } else {
                    Resource::Bucket(&b)
                };
                let d = engine.decide(&AccessRequest {
                    principal: &p,
                    action,
                    resource,
                    context: &ctx,
                });
                assert!(d.errors.is_empty(), "{:?}\n{}", d.errors, t.cedar);
                assert_eq!(
                    d.allowed, expected,
                    "round {round}\npolicy {doc}\ncedar {}\nprincipal {:?} {action} {:?} ip {} secure {} prefix {:?} acl {:?} max {:?} now {}",
                    t.cedar, r.principal, r.key, r.ip, r.secure, r.prefix, r.acl, r.max_keys, r.now
                );
                compared += 1;
                allowed += usize::from(expected);
            }
        }
        assert!(translated > 150, "only {translated} policies translated");
        assert!(
            allowed > compared / 20 && allowed < compared * 19 / 20,
            "{allowed}/{compared}"
        );
    }
}
