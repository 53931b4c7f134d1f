//! The Cedar schema (`policies/sluice.cedarschema`, compiled in) and the default policies used
//! when no policies directory is configured.

use std::sync::OnceLock;

use cedar_policy::{Entity, Schema, ValidationMode, Validator};

/// The schema text, as shipped in `policies/`.
pub const SCHEMA_TEXT: &str = include_str!("../../../policies/sluice.cedarschema");

/// The shipped policy files, used when `policies_dir` is not set.
pub const DEFAULT_POLICIES: &[(&str, &str)] = &[
    (
        "default.cedar",
        include_str!("../../../policies/default.cedar"),
    ),
    ("acl.cedar", include_str!("../../../policies/acl.cedar")),
];

struct Compiled {
    schema: Schema,
    validator: Validator,
    actions: Vec<Entity>,
    /// Action (or group) name -> every action name it covers (itself and its members).
    covers: std::collections::HashMap<String, Vec<String>>,
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        // The schema is a constant of this build; a unit test proves that it parses.
        let (schema, _warnings) =
            Schema::from_cedarschema_str(SCHEMA_TEXT).expect("the built-in schema parses");
        let entities = schema
            .action_entities()
            .expect("the built-in schema's actions form entities");
        let actions: Vec<Entity> = entities.iter().cloned().collect();
        let mut covers: std::collections::HashMap<String, Vec<String>> = Default::default();
        for a in &actions {
            let name = a.uid().id().unescaped().to_string();
            covers.entry(name.clone()).or_default().push(name.clone());
            for group in entities.ancestors(&a.uid()).into_iter().flatten() {
                covers
                    .entry(group.id().unescaped().to_string())
                    .or_default()
                    .push(name.clone());
            }
        }
        Compiled {
            covers,
            validator: Validator::new(schema.clone()),
            schema,
            actions,
        }
    })
}

pub fn schema() -> &'static Schema {
    &compiled().schema
}

/// Action entities (with their groups as parents).
pub fn action_entities() -> &'static [Entity] {
    &compiled().actions
}

/// Every action name the schema declares that applies to requests (groups excluded).
pub fn action_names() -> Vec<String> {
    schema()
        .actions()
        .map(|a| a.id().unescaped().to_string())
        .filter(|a| a.contains(':'))
        .collect()
}

/// The action names covered by `uids` (actions and action groups), for slicing by action.
/// Names the schema does not know stand for themselves.
pub fn actions_under(uids: &[cedar_policy::EntityUid]) -> std::collections::HashSet<String> {
    let covers = &compiled().covers;
    let mut out = std::collections::HashSet::new();
    for uid in uids {
        let name = uid.id().unescaped();
        match covers.get(name) {
            Some(list) => out.extend(list.iter().cloned()),
            None => {
                out.insert(name.to_string());
            }
        }
    }
    out
}

pub fn validate(set: &cedar_policy::PolicySet) -> cedar_policy::ValidationResult {
    compiled().validator.validate(set, ValidationMode::Strict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_parses_and_has_groups() {
        let names = action_names();
        assert!(names.iter().any(|a| a == "s3:GetObject"));
        assert!(names.iter().any(|a| a == "iam:CreateUser"));
        assert!(!names.iter().any(|a| a == "read"));
        assert!(action_entities().len() > names.len());
    }
}
