//! `sluice policy explain`: one decision with the policies that made it, for a principal,
//! action and resource written the way policies name them.

use std::str::FromStr;

use cedar_policy::EntityUid;
use serde_json::{Value, json};

use super::entities::{BucketFacts, ObjectFacts, RequestContext, types};
use super::{AccessRequest, PolicyEngine, Resource};
use crate::auth::Principal;
use crate::auth::iam::{Iam, ROOT_NAME};
use crate::store::Store;

/// What to explain, as the CLI takes it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ExplainInput {
    /// `Sluice::User::"alice"` (a user name or canonical id), `Sluice::Role::"name"`,
    /// `Sluice::Anonymous::"anonymous"`.
    pub principal: String,
    /// `s3:GetObject` (or `Sluice::Action::"s3:GetObject"`).
    pub action: String,
    /// `bucket/key`, `bucket`, `*` (the server) or `key:ID` (a KMS key).
    pub resource: String,
    /// Context attributes to set (`source_ip`, `secure_transport`, `now`, `auth_method`,
    /// `prefix`, `delimiter`, `max_keys` and the condition-key headers).
    #[serde(default)]
    pub context: Option<Value>,
}

fn principal_of(iam: &Iam, spec: &str) -> Result<Principal, String> {
    let uid = EntityUid::from_str(spec.trim())
        .map_err(|e| format!("principal `{spec}` is not a Cedar entity UID: {e}"))?;
    let id = uid.id().unescaped().to_string();
    let t = types();
    if uid.type_name() == &t.anonymous {
        return Ok(Principal::Anonymous);
    }
    if uid.type_name() == &t.role {
        let role = iam.role(&id).map_err(|e| e.to_string())?;
        return Ok(Principal::Role {
            id: role.id,
            role: role.name,
            session: "explain".into(),
            source: String::new(),
            access_key: String::new(),
        });
    }
    if uid.type_name() != &t.user {
        return Err(format!(
            "principal `{spec}` must be a Sluice::User, Sluice::Role or Sluice::Anonymous"
        ));
    }
    let root_id = iam.root_id().ok();
    if id == ROOT_NAME || root_id.as_deref() == Some(id.as_str()) {
        return Ok(Principal::Root {
            id: root_id.unwrap_or(id),
            access_key: String::new(),
        });
    }
    if let Ok(user_id) = iam.user_id(&id) {
        return Ok(Principal::User {
            id: user_id,
            name: id,
            access_key: String::new(),
        });
    }
    if let Some((plugin, subject)) = id.split_once(':') {
        return Ok(Principal::External {
            id: id.clone(),
            plugin: plugin.to_string(),
            subject: subject.to_string(),
            name: subject.to_string(),
            groups: Vec::new(),
            attributes: Vec::new(),
            access_key: None,
        });
    }
    let name = iam.display_name(&id).map_err(|e| e.to_string())?;
    match name {
        Some(name) => Ok(Principal::User {
            id,
            name,
            access_key: String::new(),
        }),
        None => Err(format!("no user, role or plugin principal `{id}`")),
    }
}

fn context_of(value: Option<&Value>) -> Result<RequestContext, String> {
    let mut c = RequestContext::new("sigv4-header");
    let Some(value) = value else {
        return Ok(c);
    };
    let obj = value.as_object().ok_or("--context must be a JSON object")?;
    for (k, v) in obj {
        let s = || {
            v.as_str()
                .map(str::to_string)
                .ok_or(format!("context `{k}` must be a string"))
        };
        match k.as_str() {
            "source_ip" => c.source_ip = Some(s()?.parse().map_err(|_| "bad source_ip")?),
            "secure_transport" => {
                c.secure_transport = v.as_bool().ok_or("secure_transport must be a boolean")?
            }
            "now" => c.now = v.as_i64().ok_or("now must be epoch seconds")?,
            "auth_method" => {
                c.auth_method = match s()?.as_str() {
                    "sigv4-header" => "sigv4-header",
                    "presigned" => "presigned",
                    "sts" => "sts",
                    "plugin" => "plugin",
                    "anonymous" => "anonymous",
                    other => return Err(format!("unknown auth_method `{other}`")),
                }
            }
            "prefix" => c.prefix = Some(s()?),
            "delimiter" => c.delimiter = Some(s()?),
            "max_keys" => c.max_keys = Some(v.as_i64().ok_or("max_keys must be a number")?),
            other => match super::entities::CONTEXT_HEADERS
                .iter()
                .find(|h| **h == other)
            {
                Some(h) => c.headers.push((h, s()?)),
                None => return Err(format!("unknown context attribute `{other}`")),
            },
        }
    }
    Ok(c)
}

/// The bucket as requests see it (owner, ACL); a bucket that does not exist has no owner.
async fn bucket_facts(
    store: &dyn Store,
    name: &str,
) -> Result<(BucketFacts, Option<crate::s3::acl::AclMode>), String> {
    match store.bucket(name).await.map_err(|e| e.to_string())? {
        Some(info) => {
            let (facts, mode) = crate::s3::access::bucket_facts(store, &info)
                .await
                .map_err(|e| e.message)?;
            Ok((facts, Some(mode)))
        }
        None => Ok((
            BucketFacts {
                name: name.to_string(),
                ..BucketFacts::default()
            },
            None,
        )),
    }
}

/// Decides `input` with the engine, the IAM store and the store's buckets and objects.
pub async fn explain(
    engine: &PolicyEngine,
    iam: &Iam,
    store: &dyn Store,
    input: &ExplainInput,
) -> Result<Value, String> {
    let principal = principal_of(iam, &input.principal)?;
    let action = input
        .action
        .trim()
        .strip_prefix("Sluice::Action::")
        .map(|a| a.trim_matches('"'))
        .unwrap_or(input.action.trim())
        .to_string();
    let context = context_of(input.context.as_ref())?;
    let spec = input.resource.trim().trim_start_matches('/');
    let (decision, resource) = if spec.is_empty() || spec == "*" {
        let d = engine.decide(&AccessRequest {
            principal: &principal,
            action: &action,
            resource: Resource::Node,
            context: &context,
        });
        (d, "Sluice::Node::\"sluice\"".to_string())
    } else if let Some(key_id) = spec.strip_prefix("key:") {
        let d = engine.decide(&AccessRequest {
            principal: &principal,
            action: &action,
            resource: Resource::Key(key_id),
            context: &context,
        });
        (d, format!("Sluice::Key::{key_id:?}"))
    } else {
        match spec.split_once('/') {
            Some((b, key)) if !key.is_empty() => {
                let (bf, mode) = bucket_facts(store, b).await?;
                let o = match mode {
                    Some(mode) => {
                        crate::s3::access::object_facts(store, b, key, &action, mode, true).await
                    }
                    None => ObjectFacts {
                        key: key.to_string(),
                        ..ObjectFacts::default()
                    },
                };
                let d = engine.decide(&AccessRequest {
                    principal: &principal,
                    action: &action,
                    resource: Resource::Object(&bf, &o),
                    context: &context,
                });
                (d, format!("Sluice::Object::{:?}", format!("{b}/{key}")))
            }
            _ => {
                let b = spec.trim_end_matches('/');
                let (bf, _) = bucket_facts(store, b).await?;
                let d = engine.decide(&AccessRequest {
                    principal: &principal,
                    action: &action,
                    resource: Resource::Bucket(&bf),
                    context: &context,
                });
                (d, format!("Sluice::Bucket::{b:?}"))
            }
        }
    };
    Ok(json!({
        "decision": if decision.allowed { "allow" } else { "deny" },
        "determining_policies": decision.determining,
        "errors": decision.errors,
        "principal": serde_json::to_value(&principal).unwrap_or(Value::Null),
        "action": action,
        "resource": resource,
    }))
}
