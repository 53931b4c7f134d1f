//! Role trust conditions: a Cedar `when` condition over the principal that asks to assume a
//! role, e.g. `principal.plugin == "oidc" && principal.groups.contains("admins")`.
//!
//! The principal entity (`Sluice::User`) has the attributes `kind` (`iam` or `plugin`), `plugin`
//! (the vouching plugin, "" for IAM users), `subject`, `name`, `groups` (a set of strings) and
//! `claims` (a record of the plugin's attributes). Conditions should name `plugin` and
//! `subject`: a plugin's `name` comes from its identity provider. The context carries
//! `external_id` when the caller gave one. The resource is `Sluice::Role::"<name>"`, the action
//! `Sluice::Action::"sts:AssumeRole"` or `"sts:AssumeRoleWithWebIdentity"`.

use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, EntityId, EntityTypeName, EntityUid, PolicySet,
    Request,
};
use serde_json::{Map, Value, json};

use crate::auth::Principal;

/// The one policy a trust condition becomes.
fn policy_text(condition: &str) -> String {
    format!("permit(principal, action, resource) when {{ {condition} }};")
}

/// Checks that `condition` is one well-formed Cedar condition.
pub fn validate(condition: &str) -> Result<(), String> {
    if condition.trim().is_empty() {
        return Err("the trust condition is empty (use `true` to trust everyone)".into());
    }
    let set = PolicySet::from_str(&policy_text(condition))
        .map_err(|e| format!("not a Cedar condition: {e}"))?;
    // `a }; permit(...) when { b` would smuggle in a second policy.
    if set.num_of_policies() != 1 || set.policies().any(|p| p.annotations().count() > 0) {
        return Err("the trust condition must be a single condition".into());
    }
    Ok(())
}

fn uid(kind: &str, id: &str) -> Result<EntityUid, String> {
    let kind = EntityTypeName::from_str(kind).map_err(|e| e.to_string())?;
    Ok(EntityUid::from_type_name_and_id(kind, EntityId::new(id)))
}

/// Whether `principal` may assume role `role` under `condition`.
pub fn allows(
    condition: &str,
    principal: &Principal,
    role: &str,
    action: &str,
    external_id: Option<&str>,
) -> Result<bool, String> {
    validate(condition)?;
    let policies =
        PolicySet::from_str(&policy_text(condition)).map_err(|e| format!("trust policy: {e}"))?;
    let (id, plugin, subject, name, groups, claims) = match principal {
        Principal::External {
            id,
            plugin,
            subject,
            name,
            groups,
            attributes,
            ..
        } => {
            let claims: Map<String, Value> = attributes
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            (
                id,
                plugin.as_str(),
                subject.as_str(),
                name.as_str(),
                groups.clone(),
                claims,
            )
        }
        Principal::User { id, name, .. } => {
            (id, "", id.as_str(), name.as_str(), Vec::new(), Map::new())
        }
        _ => return Ok(false),
    };
    let entities = Entities::from_json_value(
        json!([{
            "uid": { "type": "Sluice::User", "id": id },
            "attrs": {
                "kind": if plugin.is_empty() { "iam" } else { "plugin" },
                "plugin": plugin,
                "subject": subject,
                "name": name,
                "groups": groups,
                "claims": claims,
            },
            "parents": [],
        }]),
        None,
    )
    .map_err(|e| format!("trust entities: {e}"))?;
    let request = Request::new(
        uid("Sluice::User", id)?,
        uid("Sluice::Action", action)?,
        uid("Sluice::Role", role)?,
        Context::from_json_value(
            match external_id {
                Some(e) => json!({ "external_id": e }),
                None => json!({}),
            },
            None,
        )
        .map_err(|e| format!("trust context: {e}"))?,
        None,
    )
    .map_err(|e| format!("trust request: {e}"))?;
    let response = Authorizer::new().is_authorized(&request, &policies, &entities);
    for error in response.diagnostics().errors() {
        tracing::info!(role, "trust condition failed to evaluate: {error}");
    }
    Ok(response.decision() == Decision::Allow)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oidc(groups: &[&str]) -> Principal {
        Principal::External {
            id: "oidc:carol".into(),
            plugin: "oidc".into(),
            subject: "carol".into(),
            name: "Carol".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            attributes: vec![("email".into(), "carol@example.com".into())],
            access_key: None,
        }
    }

    #[test]
    fn conditions_decide_on_principal_attributes() {
        let c = r#"principal.plugin == "oidc" && principal.groups.contains("admins")"#;
        assert!(
            allows(
                c,
                &oidc(&["admins"]),
                "r",
                "sts:AssumeRoleWithWebIdentity",
                None
            )
            .unwrap()
        );
        assert!(
            !allows(
                c,
                &oidc(&["users"]),
                "r",
                "sts:AssumeRoleWithWebIdentity",
                None
            )
            .unwrap()
        );
        let by_claim = r#"principal.claims.email like "*@example.com""#;
        assert!(allows(by_claim, &oidc(&[]), "r", "sts:AssumeRole", None).unwrap());
        assert!(!allows("false", &oidc(&[]), "r", "sts:AssumeRole", None).unwrap());
        let ext = r#"principal.kind == "plugin" && context.external_id == "x1""#;
        assert!(allows(ext, &oidc(&[]), "r", "sts:AssumeRole", Some("x1")).unwrap());
        assert!(!allows(ext, &oidc(&[]), "r", "sts:AssumeRole", Some("x2")).unwrap());
        assert!(!allows(ext, &oidc(&[]), "r", "sts:AssumeRole", None).unwrap());
        // A condition on a missing attribute is an error, hence no allow.
        assert!(
            !allows(
                "principal.claims.nope == 1",
                &oidc(&[]),
                "r",
                "sts:AssumeRole",
                None
            )
            .unwrap()
        );
    }

    #[test]
    fn smuggled_policies_and_garbage_are_refused() {
        assert!(validate("true").is_ok());
        assert!(validate("").is_err());
        assert!(validate("true }; permit(principal, action, resource) when { true").is_err());
        assert!(validate("principal.plugin ==").is_err());
    }
}
