//! The IAM store: users, access keys and the root credentials in redb, every secret sealed with
//! the node master key. Both the offline CLI and the admin API drive it through [`AdminCommand`].

use std::sync::Arc;

use base64::Engine as _;
use rand::{Rng, RngCore};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::Principal;
use super::groups::PolicyTarget;
use crate::crypto::master_key::MasterKey;
use crate::locks;

/// user name -> `UserRecord`
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("iam_users");
/// access key -> `KeyRecord`
const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("iam_keys");
/// "root" -> `KeyRecord` of the root user
const SYSTEM: TableDefinition<&str, &[u8]> = TableDefinition::new("system");

pub const ROOT_NAME: &str = "root";

#[derive(Debug, thiserror::Error)]
pub enum IamError {
    #[error("user `{0}` already exists")]
    UserExists(String),
    #[error("no such user `{0}`")]
    NoSuchUser(String),
    #[error("no such access key `{0}`")]
    NoSuchKey(String),
    #[error("no such role `{0}`")]
    NoSuchRole(String),
    #[error("no such group `{0}`")]
    NoSuchGroup(String),
    #[error("no such attached policy `{0}`")]
    NoSuchPolicy(String),
    #[error("{0} already exists")]
    Exists(String),
    #[error("invalid user name `{0}`: use 1..64 of letters, digits and +=,.@_-")]
    InvalidName(String),
    #[error("{0}")]
    Invalid(String),
    #[error("metadata: {0}")]
    Meta(String),
    #[error("sealed secret: {0}")]
    Seal(#[from] crate::crypto::master_key::MasterKeyError),
}

macro_rules! iam_meta_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for IamError {
            fn from(e: $t) -> Self { IamError::Meta(e.to_string()) }
        }
    )*};
}
iam_meta_error_from!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    serde_json::Error
);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct UserRecord {
    id: String,
    name: String,
    created: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub enum KeyStatus {
    Active,
    Inactive,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyRecord {
    access_key: String,
    user_id: String,
    user_name: String,
    /// base64 of the sealed secret; the seal binds the access key.
    sealed_secret: String,
    status: KeyStatus,
    created: String,
}

/// What a signature is checked against: the secret and who it belongs to.
pub struct Credential {
    pub secret: Zeroizing<String>,
    pub principal: Principal,
}

/// Outcome of looking up an access key.
pub enum Lookup {
    Found(Credential),
    Disabled,
    Unknown,
}

/// Administrative operations, shared by the offline CLI and the admin API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum AdminCommand {
    UserCreate {
        name: String,
    },
    UserDelete {
        name: String,
    },
    UserList,
    UserShow {
        name: String,
    },
    KeyCreate {
        user: String,
    },
    KeyList {
        user: Option<String>,
    },
    KeyEnable {
        access_key: String,
    },
    KeyDisable {
        access_key: String,
    },
    KeyRotate {
        access_key: String,
    },
    KeyDelete {
        access_key: String,
    },
    RoleCreate {
        name: String,
        trust: String,
    },
    RoleDelete {
        name: String,
    },
    RoleList,
    RoleShow {
        name: String,
    },
    RoleRevokeSessions {
        name: String,
    },
    GroupCreate {
        name: String,
    },
    GroupDelete {
        name: String,
    },
    GroupList,
    GroupShow {
        name: String,
    },
    GroupAddUser {
        group: String,
        user: String,
    },
    GroupRemoveUser {
        group: String,
        user: String,
    },
    PolicyAttach {
        #[serde(flatten)]
        target: PolicyTarget,
        name: String,
        policy: String,
    },
    PolicyDetach {
        #[serde(flatten)]
        target: PolicyTarget,
        name: String,
    },
    PolicyList {
        #[serde(flatten)]
        target: PolicyTarget,
    },
}

impl AdminCommand {
    /// The Cedar action (group `iam`) a principal needs to run this command.
    pub fn action(&self) -> &'static str {
        match self {
            AdminCommand::UserCreate { .. } => "iam:CreateUser",
            AdminCommand::UserDelete { .. } => "iam:DeleteUser",
            AdminCommand::UserList => "iam:ListUsers",
            AdminCommand::UserShow { .. } => "iam:GetUser",
            AdminCommand::KeyCreate { .. } | AdminCommand::KeyRotate { .. } => {
                "iam:CreateAccessKey"
            }
            AdminCommand::KeyList { .. } => "iam:ListAccessKeys",
            AdminCommand::KeyEnable { .. } | AdminCommand::KeyDisable { .. } => {
                "iam:UpdateAccessKey"
            }
            AdminCommand::KeyDelete { .. } => "iam:DeleteAccessKey",
            AdminCommand::RoleCreate { .. } => "iam:CreateRole",
            AdminCommand::RoleDelete { .. } => "iam:DeleteRole",
            AdminCommand::RoleList => "iam:ListRoles",
            AdminCommand::RoleShow { .. } => "iam:GetRole",
            AdminCommand::RoleRevokeSessions { .. } => "iam:RevokeRoleSessions",
            AdminCommand::GroupCreate { .. } => "iam:CreateGroup",
            AdminCommand::GroupDelete { .. } => "iam:DeleteGroup",
            AdminCommand::GroupList => "iam:ListGroups",
            AdminCommand::GroupShow { .. } => "iam:GetGroup",
            AdminCommand::GroupAddUser { .. } => "iam:AddUserToGroup",
            AdminCommand::GroupRemoveUser { .. } => "iam:RemoveUserFromGroup",
            AdminCommand::PolicyAttach { .. } => "iam:AttachPolicy",
            AdminCommand::PolicyDetach { .. } => "iam:DetachPolicy",
            AdminCommand::PolicyList { .. } => "iam:ListPolicies",
        }
    }

    /// Whether the command changes users, groups, roles or policies.
    pub fn changes_identity(&self) -> bool {
        !matches!(
            self,
            AdminCommand::UserList
                | AdminCommand::UserShow { .. }
                | AdminCommand::KeyList { .. }
                | AdminCommand::RoleList
                | AdminCommand::RoleShow { .. }
                | AdminCommand::GroupList
                | AdminCommand::GroupShow { .. }
                | AdminCommand::PolicyList { .. }
        )
    }
}

/// Root credentials as first start makes them, to print once.
pub struct GeneratedRoot {
    pub access_key: String,
    pub secret_key: Zeroizing<String>,
}

pub struct Iam {
    pub(super) db: Arc<Database>,
    pub(super) master: Arc<MasterKey>,
    /// Root credentials given by configuration; they take precedence over stored ones.
    configured_root: Option<(String, Zeroizing<String>)>,
    /// The stored root record with its secret opened, read once: every signed request by root
    /// needs it, and only [`Iam::ensure_root`] writes it (which refreshes this).
    root: std::sync::RwLock<Option<Arc<RootCredential>>>,
}

/// The root user's record and its opened secret.
struct RootCredential {
    record: KeyRecord,
    secret: Zeroizing<String>,
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn random_access_key() -> String {
    random_key_id("SK", 18)
}

/// `prefix` followed by `len` random base32 characters (the shape of an access key id).
pub(super) fn random_key_id(prefix: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rngs::OsRng;
    let mut s = String::from(prefix);
    for _ in 0..len {
        s.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
    }
    s
}

pub(super) fn random_secret() -> Zeroizing<String> {
    let mut raw = Zeroizing::new([0u8; 30]);
    rand::rngs::OsRng.fill_bytes(raw.as_mut());
    Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_ref()))
}

pub(super) fn random_id() -> String {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    hex::encode(raw)
}

/// IAM's name rule (users, roles, groups, policies): 1..=`max` of letters, digits and
/// `+=,.@_-`.
pub(super) fn valid_iam_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

fn valid_user_name(name: &str) -> bool {
    valid_iam_name(name, 64) && name != ROOT_NAME
}

impl Iam {
    pub fn open(
        db: Arc<Database>,
        master: Arc<MasterKey>,
        configured_root: Option<(String, String)>,
    ) -> Result<Iam, IamError> {
        let txn = db.begin_write()?;
        txn.open_table(USERS)?;
        txn.open_table(KEYS)?;
        txn.open_table(SYSTEM)?;
        txn.commit()?;
        let iam = Iam {
            db,
            master,
            configured_root: configured_root.map(|(a, s)| (a, Zeroizing::new(s))),
            root: std::sync::RwLock::new(None),
        };
        iam.open_sts()?;
        iam.open_groups()?;
        Ok(iam)
    }

    fn root_record(&self) -> Result<Option<KeyRecord>, IamError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(SYSTEM)?;
        Ok(match t.get("root")? {
            Some(v) => Some(serde_json::from_slice(v.value())?),
            None => None,
        })
    }

    /// The root credential, from memory after the first read.
    fn root(&self) -> Result<Option<Arc<RootCredential>>, IamError> {
        let cached = locks::read(&self.root).clone();
        if cached.is_some() {
            return Ok(cached);
        }
        let Some(record) = self.root_record()? else {
            return Ok(None);
        };
        let secret = match &self.configured_root {
            Some((ak, sk)) if *ak == record.access_key => sk.clone(),
            _ => self.open_secret(&record)?,
        };
        let root = Arc::new(RootCredential { record, secret });
        *locks::write(&self.root) = Some(root.clone());
        Ok(Some(root))
    }

    /// The root user's canonical id; made once and kept.
    pub fn root_id(&self) -> Result<String, IamError> {
        self.root()?
            .map(|r| r.record.user_id.clone())
            .ok_or_else(|| IamError::Meta("root user not initialised".into()))
    }

    /// Makes sure root credentials exist. Returns them when they were generated just now, so the
    /// caller prints them this once.
    pub fn ensure_root(&self) -> Result<Option<GeneratedRoot>, IamError> {
        let existing = self.root_record()?;
        let (access_key, secret, generated) = match (&self.configured_root, &existing) {
            (Some((ak, sk)), _) => (ak.clone(), sk.clone(), false),
            (None, Some(_)) => return Ok(None),
            (None, None) => (random_access_key(), random_secret(), true),
        };
        let id = existing
            .as_ref()
            .map(|r| r.user_id.clone())
            .unwrap_or_else(random_id);
        let unchanged = existing.as_ref().is_some_and(|r| {
            r.access_key == access_key
                && self.open_secret(r).map(|s| *s == *secret).unwrap_or(false)
        });
        if !unchanged {
            let record = KeyRecord {
                sealed_secret: self.seal_secret(&access_key, &secret),
                access_key: access_key.clone(),
                user_id: id,
                user_name: ROOT_NAME.into(),
                status: KeyStatus::Active,
                created: now_rfc3339(),
            };
            let txn = self.db.begin_write()?;
            txn.open_table(SYSTEM)?
                .insert("root", serde_json::to_vec(&record)?.as_slice())?;
            txn.commit()?;
            *locks::write(&self.root) = None;
        }
        Ok(generated.then_some(GeneratedRoot {
            access_key,
            secret_key: secret,
        }))
    }

    fn seal_secret(&self, access_key: &str, secret: &str) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(self.master.seal(access_key.as_bytes(), secret.as_bytes()))
    }

    fn open_secret(&self, record: &KeyRecord) -> Result<Zeroizing<String>, IamError> {
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(&record.sealed_secret)
            .map_err(|_| IamError::Meta("sealed secret is not base64".into()))?;
        let plain = self.master.open(record.access_key.as_bytes(), &sealed)?;
        let s = std::str::from_utf8(&plain)
            .map_err(|_| IamError::Meta("secret is not UTF-8".into()))?;
        Ok(Zeroizing::new(s.to_string()))
    }

    /// Finds the secret and principal for an access key (root or IAM user).
    pub fn lookup(&self, access_key: &str) -> Result<Lookup, IamError> {
        if let Some(root) = self.root()?
            && root.record.access_key == access_key
        {
            return Ok(Lookup::Found(Credential {
                secret: root.secret.clone(),
                principal: Principal::Root {
                    id: root.record.user_id.clone(),
                    access_key: access_key.to_string(),
                },
            }));
        }
        let txn = self.db.begin_read()?;
        let t = txn.open_table(KEYS)?;
        let Some(v) = t.get(access_key)? else {
            return Ok(Lookup::Unknown);
        };
        let record: KeyRecord = serde_json::from_slice(v.value())?;
        if record.status != KeyStatus::Active {
            return Ok(Lookup::Disabled);
        }
        Ok(Lookup::Found(Credential {
            secret: self.open_secret(&record)?,
            principal: Principal::User {
                id: record.user_id,
                name: record.user_name,
                access_key: access_key.to_string(),
            },
        }))
    }

    /// Canonical id -> user name, for DisplayName in S3 responses.
    pub fn display_name(&self, id: &str) -> Result<Option<String>, IamError> {
        if self.root()?.is_some_and(|r| r.record.user_id == id) {
            return Ok(Some(ROOT_NAME.into()));
        }
        let txn = self.db.begin_read()?;
        let t = txn.open_table(USERS)?;
        for row in t.iter()? {
            let (_, v) = row?;
            let u: UserRecord = serde_json::from_slice(v.value())?;
            if u.id == id {
                return Ok(Some(u.name));
            }
        }
        Ok(None)
    }

    /// A user's canonical id.
    pub fn user_id(&self, name: &str) -> Result<String, IamError> {
        self.user(name).map(|u| u.id)
    }

    fn user(&self, name: &str) -> Result<UserRecord, IamError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(USERS)?;
        match t.get(name)? {
            Some(v) => Ok(serde_json::from_slice(v.value())?),
            None => Err(IamError::NoSuchUser(name.into())),
        }
    }

    fn key(&self, access_key: &str) -> Result<KeyRecord, IamError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(KEYS)?;
        match t.get(access_key)? {
            Some(v) => Ok(serde_json::from_slice(v.value())?),
            None => Err(IamError::NoSuchKey(access_key.into())),
        }
    }

    fn keys_of(&self, user: Option<&str>) -> Result<Vec<KeyRecord>, IamError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(KEYS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (_, v) = row?;
            let k: KeyRecord = serde_json::from_slice(v.value())?;
            if user.is_none_or(|u| u == k.user_name) {
                out.push(k);
            }
        }
        Ok(out)
    }

    fn put_key(&self, record: &KeyRecord) -> Result<(), IamError> {
        let txn = self.db.begin_write()?;
        txn.open_table(KEYS)?.insert(
            record.access_key.as_str(),
            serde_json::to_vec(record)?.as_slice(),
        )?;
        txn.commit()?;
        Ok(())
    }

    fn new_key(&self, user: &UserRecord) -> Result<(KeyRecord, Zeroizing<String>), IamError> {
        let access_key = random_access_key();
        let secret = random_secret();
        let record = KeyRecord {
            sealed_secret: self.seal_secret(&access_key, &secret),
            access_key,
            user_id: user.id.clone(),
            user_name: user.name.clone(),
            status: KeyStatus::Active,
            created: now_rfc3339(),
        };
        self.put_key(&record)?;
        Ok((record, secret))
    }

    fn key_json(k: &KeyRecord) -> Value {
        json!({
            "access_key": k.access_key,
            "user": k.user_name,
            "status": k.status,
            "created": k.created,
        })
    }

    fn set_status(&self, access_key: &str, status: KeyStatus) -> Result<Value, IamError> {
        let mut k = self.key(access_key)?;
        k.status = status;
        self.put_key(&k)?;
        Ok(Self::key_json(&k))
    }

    /// Runs one administrative command and returns the JSON the CLI prints.
    pub fn run(&self, cmd: &AdminCommand) -> Result<Value, IamError> {
        match cmd {
            AdminCommand::RoleCreate { name, trust } => self.create_role(name, trust),
            AdminCommand::RoleDelete { name } => self.delete_role(name),
            AdminCommand::RoleList => self.list_roles(),
            AdminCommand::RoleShow { name } => self.role(name).map(|r| r.to_json()),
            AdminCommand::RoleRevokeSessions { name } => self.revoke_sessions(name),
            AdminCommand::GroupCreate { name } => self.group_create(name),
            AdminCommand::GroupDelete { name } => self.group_delete(name),
            AdminCommand::GroupList => self.group_list(),
            AdminCommand::GroupShow { name } => self.group_show(name),
            AdminCommand::GroupAddUser { group, user } => self.group_membership(group, user, true),
            AdminCommand::GroupRemoveUser { group, user } => {
                self.group_membership(group, user, false)
            }
            AdminCommand::PolicyAttach {
                target,
                name,
                policy,
            } => self.policy_attach(target, name, policy),
            AdminCommand::PolicyDetach { target, name } => self.policy_detach(target, name),
            AdminCommand::PolicyList { target } => self.policy_list(target),
            AdminCommand::UserCreate { name } => {
                if !valid_user_name(name) {
                    return Err(IamError::InvalidName(name.clone()));
                }
                let user = UserRecord {
                    id: random_id(),
                    name: name.clone(),
                    created: now_rfc3339(),
                };
                {
                    let txn = self.db.begin_write()?;
                    {
                        let mut t = txn.open_table(USERS)?;
                        if t.get(name.as_str())?.is_some() {
                            return Err(IamError::UserExists(name.clone()));
                        }
                        t.insert(name.as_str(), serde_json::to_vec(&user)?.as_slice())?;
                    }
                    txn.commit()?;
                }
                let (key, secret) = self.new_key(&user)?;
                Ok(json!({
                    "name": user.name,
                    "id": user.id,
                    "access_key": key.access_key,
                    "secret_key": secret.as_str(),
                }))
            }
            AdminCommand::UserDelete { name } => {
                let user = self.user(name)?;
                let keys = self.keys_of(Some(name))?;
                let txn = self.db.begin_write()?;
                {
                    let mut users = txn.open_table(USERS)?;
                    users.remove(name.as_str())?;
                    let mut t = txn.open_table(KEYS)?;
                    for k in &keys {
                        t.remove(k.access_key.as_str())?;
                    }
                }
                txn.commit()?;
                self.forget_user(&user.id)?;
                Ok(json!({ "deleted": user.name, "id": user.id }))
            }
            AdminCommand::UserList => {
                let txn = self.db.begin_read()?;
                let t = txn.open_table(USERS)?;
                let mut out = Vec::new();
                for row in t.iter()? {
                    let (_, v) = row?;
                    let u: UserRecord = serde_json::from_slice(v.value())?;
                    out.push(json!({ "name": u.name, "id": u.id, "created": u.created }));
                }
                Ok(Value::Array(out))
            }
            AdminCommand::UserShow { name } => {
                let u = self.user(name)?;
                let keys: Vec<Value> = self
                    .keys_of(Some(name))?
                    .iter()
                    .map(Self::key_json)
                    .collect();
                Ok(json!({ "name": u.name, "id": u.id, "created": u.created, "keys": keys }))
            }
            AdminCommand::KeyCreate { user } => {
                let u = self.user(user)?;
                let (key, secret) = self.new_key(&u)?;
                Ok(json!({
                    "access_key": key.access_key,
                    "secret_key": secret.as_str(),
                    "user": u.name,
                }))
            }
            AdminCommand::KeyList { user } => {
                if let Some(u) = user {
                    self.user(u)?;
                }
                Ok(Value::Array(
                    self.keys_of(user.as_deref())?
                        .iter()
                        .map(Self::key_json)
                        .collect(),
                ))
            }
            AdminCommand::KeyEnable { access_key } => {
                self.set_status(access_key, KeyStatus::Active)
            }
            AdminCommand::KeyDisable { access_key } => {
                self.set_status(access_key, KeyStatus::Inactive)
            }
            AdminCommand::KeyRotate { access_key } => {
                let old = self.key(access_key)?;
                let user = self.user(&old.user_name)?;
                let (key, secret) = self.new_key(&user)?;
                self.delete_key(access_key)?;
                Ok(json!({
                    "access_key": key.access_key,
                    "secret_key": secret.as_str(),
                    "user": user.name,
                    "replaced": old.access_key,
                }))
            }
            AdminCommand::KeyDelete { access_key } => {
                self.key(access_key)?;
                self.delete_key(access_key)?;
                Ok(json!({ "deleted": access_key }))
            }
        }
    }

    fn delete_key(&self, access_key: &str) -> Result<(), IamError> {
        let txn = self.db.begin_write()?;
        txn.open_table(KEYS)?.remove(access_key)?;
        txn.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iam() -> (tempfile::TempDir, Iam) {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("m.redb")).unwrap());
        let mk = Arc::new(MasterKey::load_or_create(None, &dir.path().join("k")).unwrap());
        let iam = Iam::open(db, mk, None).unwrap();
        (dir, iam)
    }

    #[test]
    fn root_is_generated_once() {
        let (_d, iam) = iam();
        let first = iam.ensure_root().unwrap().expect("generated");
        assert!(iam.ensure_root().unwrap().is_none());
        match iam.lookup(&first.access_key).unwrap() {
            Lookup::Found(c) => {
                assert!(c.principal.is_root());
                assert_eq!(*c.secret, *first.secret_key);
            }
            _ => panic!("root key not found"),
        }
    }

    #[test]
    fn users_keys_and_status() {
        let (_d, iam) = iam();
        iam.ensure_root().unwrap();
        let created = iam
            .run(&AdminCommand::UserCreate {
                name: "alice".into(),
            })
            .unwrap();
        let ak = created["access_key"].as_str().unwrap().to_string();
        assert_eq!(created["id"].as_str().unwrap().len(), 64);
        assert!(matches!(iam.lookup(&ak).unwrap(), Lookup::Found(_)));
        iam.run(&AdminCommand::KeyDisable {
            access_key: ak.clone(),
        })
        .unwrap();
        assert!(matches!(iam.lookup(&ak).unwrap(), Lookup::Disabled));
        let shown = iam
            .run(&AdminCommand::UserShow {
                name: "alice".into(),
            })
            .unwrap();
        assert!(!shown.to_string().contains("secret"));
        let rotated = iam
            .run(&AdminCommand::KeyRotate {
                access_key: ak.clone(),
            })
            .unwrap();
        assert!(matches!(iam.lookup(&ak).unwrap(), Lookup::Unknown));
        let new_ak = rotated["access_key"].as_str().unwrap();
        assert!(matches!(iam.lookup(new_ak).unwrap(), Lookup::Found(_)));
        assert!(matches!(
            iam.run(&AdminCommand::UserCreate {
                name: "alice".into()
            }),
            Err(IamError::UserExists(_))
        ));
    }
}
