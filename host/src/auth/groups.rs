//! IAM groups and the Cedar policies attached to users, groups and roles, in redb beside the
//! users. A policy is validated (and bound to its principal) before it is stored.

use std::collections::HashMap;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::iam::{Iam, IamError, now_rfc3339};
use crate::policy::attached::{self, AttachTarget};

/// group name -> `GroupRecord`
const GROUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("iam_groups");
/// "<kind>/<target id>/<policy name>" -> `AttachedRecord`
const POLICIES: TableDefinition<&str, &[u8]> = TableDefinition::new("iam_policies");

#[derive(Debug, Clone, Serialize, Deserialize)]
struct GroupRecord {
    name: String,
    /// Canonical ids of the member users.
    members: Vec<String>,
    created: String,
}

/// A policy attached to a principal, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttachedRecord {
    /// "user", "group" or "role".
    pub kind: String,
    /// User id, group name or role name.
    pub target: String,
    /// User, group or role name.
    pub target_name: String,
    pub name: String,
    pub text: String,
    pub created: String,
}

impl AttachedRecord {
    pub fn target(&self) -> AttachTarget {
        match self.kind.as_str() {
            "user" => AttachTarget::User {
                id: self.target.clone(),
                name: self.target_name.clone(),
            },
            "role" => AttachTarget::Role {
                name: self.target.clone(),
            },
            _ => AttachTarget::Group {
                name: self.target.clone(),
            },
        }
    }

    fn json(&self) -> Value {
        json!({
            "kind": self.kind,
            self.kind.as_str(): self.target_name,
            "name": self.name,
            "policy": self.text,
            "created": self.created,
        })
    }
}

/// Group and policy names: IAM's rule, up to 128 characters.
fn valid_group_or_policy_name(name: &str) -> bool {
    super::iam::valid_iam_name(name, 128)
}

fn policy_key(kind: &str, target: &str, name: &str) -> String {
    format!("{kind}/{target}/{name}")
}

/// Which principal a policy command names (exactly one of the three).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PolicyTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl Iam {
    pub(super) fn open_groups(&self) -> Result<(), IamError> {
        let txn = self.db.begin_write()?;
        txn.open_table(GROUPS)?;
        txn.open_table(POLICIES)?;
        txn.commit()?;
        Ok(())
    }

    fn group(&self, name: &str) -> Result<GroupRecord, IamError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(GROUPS)?;
        match t.get(name)? {
            Some(v) => Ok(serde_json::from_slice(v.value())?),
            None => Err(IamError::NoSuchGroup(name.to_string())),
        }
    }

    fn put_group(&self, g: &GroupRecord) -> Result<(), IamError> {
        let txn = self.db.begin_write()?;
        txn.open_table(GROUPS)?
            .insert(g.name.as_str(), serde_json::to_vec(g)?.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    fn groups(&self) -> Result<Vec<GroupRecord>, IamError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(GROUPS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (_, v) = row?;
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }

    /// IAM user id -> names of the groups it is in.
    pub fn group_memberships(&self) -> Result<HashMap<String, Vec<String>>, IamError> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for g in self.groups()? {
            for m in g.members {
                out.entry(m).or_default().push(g.name.clone());
            }
        }
        Ok(out)
    }

    /// Every attached policy.
    pub fn attached_policies(&self) -> Result<Vec<AttachedRecord>, IamError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(POLICIES)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (_, v) = row?;
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }

    pub(super) fn group_create(&self, name: &str) -> Result<Value, IamError> {
        if !valid_group_or_policy_name(name) || name.contains(':') {
            return Err(IamError::Invalid(format!(
                "invalid group name `{name}`: use 1..128 of letters, digits and +=,.@_-"
            )));
        }
        let g = GroupRecord {
            name: name.to_string(),
            members: Vec::new(),
            created: now_rfc3339(),
        };
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(GROUPS)?;
            if t.get(name)?.is_some() {
                return Err(IamError::Exists(format!("group `{name}`")));
            }
            t.insert(name, serde_json::to_vec(&g)?.as_slice())?;
        }
        txn.commit()?;
        Ok(json!({ "name": name, "created": g.created }))
    }

    pub(super) fn group_delete(&self, name: &str) -> Result<Value, IamError> {
        self.group(name)?;
        let txn = self.db.begin_write()?;
        {
            txn.open_table(GROUPS)?.remove(name)?;
            Self::remove_policies_of(&txn, "group", name)?;
        }
        txn.commit()?;
        Ok(json!({ "deleted": name }))
    }

    pub(super) fn group_show(&self, name: &str) -> Result<Value, IamError> {
        let g = self.group(name)?;
        let members: Vec<Value> = g
            .members
            .iter()
            .map(|id| {
                let name = self.display_name(id).ok().flatten().unwrap_or_default();
                json!({ "id": id, "name": name })
            })
            .collect();
        Ok(json!({ "name": g.name, "created": g.created, "members": members }))
    }

    pub(super) fn group_list(&self) -> Result<Value, IamError> {
        Ok(Value::Array(
            self.groups()?
                .iter()
                .map(
                    |g| json!({ "name": g.name, "members": g.members.len(), "created": g.created }),
                )
                .collect(),
        ))
    }

    pub(super) fn group_membership(
        &self,
        group: &str,
        user: &str,
        add: bool,
    ) -> Result<Value, IamError> {
        let mut g = self.group(group)?;
        let id = self.user_id(user)?;
        if add {
            if !g.members.contains(&id) {
                g.members.push(id);
            }
        } else {
            g.members.retain(|m| *m != id);
        }
        self.put_group(&g)?;
        Ok(json!({ "group": group, "user": user, "member": add }))
    }

    /// Removes a deleted user from every group and drops its attached policies.
    pub(super) fn forget_user(&self, id: &str) -> Result<(), IamError> {
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(GROUPS)?;
            let mut changed = Vec::new();
            for row in t.iter()? {
                let (_, v) = row?;
                let mut g: GroupRecord = serde_json::from_slice(v.value())?;
                if g.members.iter().any(|m| m == id) {
                    g.members.retain(|m| m != id);
                    changed.push(g);
                }
            }
            for g in changed {
                t.insert(g.name.as_str(), serde_json::to_vec(&g)?.as_slice())?;
            }
        }
        Self::remove_policies_of(&txn, "user", id)?;
        txn.commit()?;
        Ok(())
    }

    /// Drops the policies attached to a deleted role.
    pub(super) fn forget_role(&self, name: &str) -> Result<(), IamError> {
        let txn = self.db.begin_write()?;
        Self::remove_policies_of(&txn, "role", name)?;
        txn.commit()?;
        Ok(())
    }

    fn remove_policies_of(
        txn: &redb::WriteTransaction,
        kind: &str,
        target: &str,
    ) -> Result<(), IamError> {
        let mut t = txn.open_table(POLICIES)?;
        let prefix = format!("{kind}/{target}/");
        let doomed: Vec<String> = t
            .iter()?
            .filter_map(|row| row.ok())
            .map(|(k, _)| k.value().to_string())
            .filter(|k| k.starts_with(&prefix))
            .collect();
        for k in doomed {
            t.remove(k.as_str())?;
        }
        Ok(())
    }

    /// Resolves a policy command's target; a plugin group (`<plugin>:<group>`) need not exist.
    fn attach_target(&self, t: &PolicyTarget) -> Result<AttachTarget, IamError> {
        match (&t.user, &t.group, &t.role) {
            (Some(user), None, None) => Ok(AttachTarget::User {
                id: self.user_id(user)?,
                name: user.clone(),
            }),
            (None, Some(group), None) => {
                if !group.contains(':') {
                    self.group(group)?;
                } else if !valid_group_or_policy_name(&group.replace(':', "")) {
                    return Err(IamError::Invalid(format!("invalid group name `{group}`")));
                }
                Ok(AttachTarget::Group {
                    name: group.clone(),
                })
            }
            (None, None, Some(role)) => {
                self.role(role)?;
                Ok(AttachTarget::Role { name: role.clone() })
            }
            _ => Err(IamError::Invalid(
                "name exactly one of --user, --group and --role".into(),
            )),
        }
    }

    pub(super) fn policy_attach(
        &self,
        target: &PolicyTarget,
        name: &str,
        text: &str,
    ) -> Result<Value, IamError> {
        if !valid_group_or_policy_name(name) {
            return Err(IamError::Invalid(format!(
                "invalid policy name `{name}`: use 1..128 of letters, digits and +=,.@_-"
            )));
        }
        let target = self.attach_target(target)?;
        let policies = attached::compile(&target, name, text).map_err(IamError::Invalid)?;
        let (kind, id) = match &target {
            AttachTarget::User { id, .. } => ("user", id.clone()),
            AttachTarget::Group { name } => ("group", name.clone()),
            AttachTarget::Role { name } => ("role", name.clone()),
        };
        let record = AttachedRecord {
            kind: kind.to_string(),
            target: id.clone(),
            target_name: target.name().to_string(),
            name: name.to_string(),
            text: text.to_string(),
            created: now_rfc3339(),
        };
        let txn = self.db.begin_write()?;
        txn.open_table(POLICIES)?.insert(
            policy_key(kind, &id, name).as_str(),
            serde_json::to_vec(&record)?.as_slice(),
        )?;
        txn.commit()?;
        let ids: Vec<String> = policies.iter().map(|p| p.id().to_string()).collect();
        Ok(json!({ "attached": name, kind: target.name(), "policies": ids }))
    }

    pub(super) fn policy_detach(
        &self,
        target: &PolicyTarget,
        name: &str,
    ) -> Result<Value, IamError> {
        let target = self.attach_target(target)?;
        let id = match &target {
            AttachTarget::User { id, .. } => id.clone(),
            AttachTarget::Group { name } | AttachTarget::Role { name } => name.clone(),
        };
        let txn = self.db.begin_write()?;
        let removed = txn
            .open_table(POLICIES)?
            .remove(policy_key(target.kind(), &id, name).as_str())?
            .is_some();
        txn.commit()?;
        if !removed {
            return Err(IamError::NoSuchPolicy(format!(
                "{}/{}/{name}",
                target.kind(),
                target.name()
            )));
        }
        Ok(json!({ "detached": name, target.kind(): target.name() }))
    }

    pub(super) fn policy_list(&self, target: &PolicyTarget) -> Result<Value, IamError> {
        let filter = match (&target.user, &target.group, &target.role) {
            (None, None, None) => None,
            _ => Some(self.attach_target(target)?),
        };
        Ok(Value::Array(
            self.attached_policies()?
                .iter()
                .filter(|r| filter.as_ref().is_none_or(|f| r.target() == *f))
                .map(AttachedRecord::json)
                .collect(),
        ))
    }
}
