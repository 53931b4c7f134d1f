//! Identity policies attached to a user, a group or a role (`sluice admin policy attach`).
//! An attached policy applies to the principal it is attached to: its principal scope must be
//! unconstrained (or already name that principal), and the host sets it to that principal.

use cedar_policy::{EntityUid, Policy, PrincipalConstraint};
use serde_json::{Value, json};

use super::entities::{group_uid, role_uid, types, user_uid};
use super::files::{self, PolicyLoadError};

/// Whom a policy is attached to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachTarget {
    /// An IAM user: canonical id and name.
    User {
        id: String,
        name: String,
    },
    /// An IAM group, or a plugin's group spelled `<plugin>:<group>`.
    Group {
        name: String,
    },
    Role {
        name: String,
    },
}

impl AttachTarget {
    pub fn kind(&self) -> &'static str {
        match self {
            AttachTarget::User { .. } => "user",
            AttachTarget::Group { .. } => "group",
            AttachTarget::Role { .. } => "role",
        }
    }

    /// The name the operator used (user, group or role name).
    pub fn name(&self) -> &str {
        match self {
            AttachTarget::User { name, .. }
            | AttachTarget::Group { name }
            | AttachTarget::Role { name } => name,
        }
    }

    pub fn uid(&self) -> EntityUid {
        match self {
            AttachTarget::User { id, .. } => user_uid(id),
            AttachTarget::Group { name } => group_uid(name),
            AttachTarget::Role { name } => role_uid(name),
        }
    }

    fn entity_json(&self) -> Value {
        let uid = self.uid();
        json!({ "type": uid.type_name().to_string(), "id": uid.id().unescaped() })
    }
}

/// Sets the principal scope of one policy to `target`, or refuses a scope naming anyone else.
fn bind(policy: &Policy, target: &AttachTarget) -> Result<Policy, String> {
    let t = types();
    let own_type = match target {
        AttachTarget::User { .. } => Some(&t.user),
        AttachTarget::Role { .. } => Some(&t.role),
        AttachTarget::Group { .. } => None,
    };
    let scope = match (policy.principal_constraint(), target) {
        (PrincipalConstraint::Any, AttachTarget::Group { .. }) => {
            json!({ "op": "in", "entity": target.entity_json() })
        }
        (PrincipalConstraint::Any, _) => json!({ "op": "==", "entity": target.entity_json() }),
        (PrincipalConstraint::Is(ty), AttachTarget::Group { .. }) => json!({
            "op": "is", "entity_type": ty.to_string(), "in": { "entity": target.entity_json() }
        }),
        (PrincipalConstraint::Is(ty), _) if Some(&ty) == own_type => {
            json!({ "op": "==", "entity": target.entity_json() })
        }
        (PrincipalConstraint::Eq(uid), _) if uid == target.uid() => {
            return Ok(policy.clone());
        }
        (PrincipalConstraint::In(uid), AttachTarget::Group { .. })
        | (PrincipalConstraint::IsIn(_, uid), AttachTarget::Group { .. })
            if uid == target.uid() =>
        {
            return Ok(policy.clone());
        }
        _ => {
            return Err(format!(
                "policy `{}` names another principal; an attached policy applies to the {} it is attached to, so leave its principal unconstrained",
                policy.id(),
                target.kind()
            ));
        }
    };
    let mut value = policy
        .to_json()
        .map_err(|e| format!("policy `{}`: {e}", policy.id()))?;
    value["principal"] = scope;
    Policy::from_json(Some(policy.id().clone()), value)
        .map_err(|e| format!("policy `{}`: {e}", policy.id()))
}

/// The id prefix of policies attached to `target` under `name`: `user/alice/readonly`.
pub fn prefix(target: &AttachTarget, name: &str) -> String {
    format!("{}/{}/{}", target.kind(), target.name(), name)
}

/// Parses, binds and validates Cedar text attached to `target` under `name`.
pub fn compile(target: &AttachTarget, name: &str, text: &str) -> Result<Vec<Policy>, String> {
    let label = prefix(target, name);
    let parsed = files::parse_text(&label, &label, text).map_err(|e| e.to_string())?;
    files::validate_text(&label, text, &parsed).map_err(|e| e.to_string())?;
    let bound = parsed
        .iter()
        .map(|p| bind(p, target))
        .collect::<Result<Vec<_>, _>>()?;
    // The bound scope must type-check too (e.g. `principal is Role` attached to a user).
    files::validate_text(&label, text, &bound).map_err(|e: PolicyLoadError| e.to_string())?;
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attached_policies_are_bound_to_their_principal() {
        let alice = AttachTarget::User {
            id: "a1".into(),
            name: "alice".into(),
        };
        let p = compile(
            &alice,
            "ro",
            "@id(\"get\") permit(principal, action == Sluice::Action::\"s3:GetObject\", resource);",
        )
        .unwrap();
        assert_eq!(p[0].id().to_string(), "user/alice/ro#get");
        assert_eq!(
            p[0].principal_constraint(),
            PrincipalConstraint::Eq(user_uid("a1"))
        );
        let g = AttachTarget::Group {
            name: "devs".into(),
        };
        let p = compile(
            &g,
            "x",
            "permit(principal is Sluice::User, action, resource);",
        )
        .unwrap();
        assert!(
            matches!(p[0].principal_constraint(), PrincipalConstraint::IsIn(_, u) if u == group_uid("devs"))
        );
        let other = "permit(principal == Sluice::User::\"bob\", action, resource);";
        assert!(compile(&alice, "x", other).is_err());
        assert!(
            compile(
                &alice,
                "x",
                "permit(principal is Sluice::Role, action, resource);"
            )
            .is_err()
        );
        assert!(
            compile(
                &alice,
                "x",
                "permit(principal, action, resource) when { nope };"
            )
            .is_err()
        );
    }
}
