//! Roles and STS sessions. A role has a name, an immutable id, an ARN
//! (`arn:aws:iam::sluice:role/NAME`) and a Cedar trust condition. Assuming it mints temporary
//! credentials (access key, secret, session token, expiration) kept in redb with the secret
//! sealed by the node master key and only a hash of the session token. Requests signed with them
//! must carry the token; expired ones are refused.

use base64::Engine as _;
use rand::RngCore;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::Principal;
use super::iam::{Iam, IamError, now_rfc3339, random_id, random_key_id, random_secret};

/// role name -> `RoleRecord`
const ROLES: TableDefinition<&str, &[u8]> = TableDefinition::new("sts_roles");
/// session access key -> `SessionRecord`
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sts_sessions");

pub const ACCOUNT: &str = "sluice";
pub const MIN_DURATION: u64 = 900;
pub const MAX_DURATION: u64 = 43_200;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoleRecord {
    pub id: String,
    pub name: String,
    pub trust: String,
    pub created: String,
}

impl RoleRecord {
    pub fn arn(&self) -> String {
        role_arn(&self.name)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "id": self.id,
            "arn": self.arn(),
            "trust": self.trust,
            "created": self.created,
        })
    }
}

pub fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

/// The role name an ARN names, if it is one of ours.
pub fn role_name_from_arn(arn: &str) -> Option<&str> {
    arn.strip_prefix(&format!("arn:aws:iam::{ACCOUNT}:role/"))
        .filter(|n| valid_role_name(n))
}

fn valid_role_name(name: &str) -> bool {
    super::iam::valid_iam_name(name, 64)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionRecord {
    access_key: String,
    sealed_secret: String,
    /// SHA-256 of the session token, hex.
    token_sha256: String,
    /// Unix seconds.
    expires: u64,
    role_id: String,
    role_name: String,
    session_name: String,
    source: String,
    created: String,
}

/// Temporary credentials, as minted (the only time the secret and token are seen).
pub struct Minted {
    pub access_key: String,
    pub secret_key: Zeroizing<String>,
    pub session_token: Zeroizing<String>,
    pub expires: u64,
    pub role: RoleRecord,
    pub session_name: String,
}

impl Minted {
    pub fn assumed_role_arn(&self) -> String {
        format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/{}/{}",
            self.role.name, self.session_name
        )
    }

    /// `AROA...:session`, as AWS spells an assumed role id.
    pub fn assumed_role_id(&self) -> String {
        format!(
            "AROA{}:{}",
            self.role.id[..16].to_ascii_uppercase(),
            self.session_name
        )
    }
}

/// A session's credential, or why it is refused.
pub enum SessionLookup {
    Found {
        secret: Zeroizing<String>,
        principal: Principal,
    },
    /// The session ended.
    Expired,
    /// The request did not carry the session's token.
    BadToken,
    Unknown,
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn session_access_key() -> String {
    random_key_id("ASIA", 16)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Iam {
    /// Creates the role and session tables and drops sessions that ended.
    pub(super) fn open_sts(&self) -> Result<(), IamError> {
        let now = now_unix();
        let txn = self.db.begin_write()?;
        txn.open_table(ROLES)?;
        {
            let mut sessions = txn.open_table(SESSIONS)?;
            let mut ended = Vec::new();
            for row in sessions.iter()? {
                let (k, v) = row?;
                let expired = serde_json::from_slice::<SessionRecord>(v.value())
                    .map(|s| s.expires <= now)
                    .unwrap_or(true);
                if expired {
                    ended.push(k.value().to_string());
                }
            }
            for k in ended {
                sessions.remove(k.as_str())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    pub fn role(&self, name: &str) -> Result<RoleRecord, IamError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(ROLES)?;
        let v = t
            .get(name)?
            .ok_or_else(|| IamError::NoSuchRole(name.to_string()))?;
        Ok(serde_json::from_slice(v.value())?)
    }

    pub fn find_role(&self, name: &str) -> Result<Option<RoleRecord>, IamError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(ROLES)?;
        Ok(match t.get(name)? {
            Some(v) => Some(serde_json::from_slice(v.value())?),
            None => None,
        })
    }

    pub(super) fn create_role(&self, name: &str, trust: &str) -> Result<Value, IamError> {
        if !valid_role_name(name) {
            return Err(IamError::Invalid(format!(
                "invalid role name `{name}`: use 1..64 of letters, digits and +=,.@_-"
            )));
        }
        crate::policy::trust::validate(trust).map_err(IamError::Invalid)?;
        let role = RoleRecord {
            id: random_id(),
            name: name.to_string(),
            trust: trust.to_string(),
            created: now_rfc3339(),
        };
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(ROLES)?;
            if t.get(name)?.is_some() {
                return Err(IamError::Invalid(format!("role `{name}` already exists")));
            }
            t.insert(name, serde_json::to_vec(&role)?.as_slice())?;
        }
        txn.commit()?;
        Ok(role.to_json())
    }

    /// Deletes a role and ends its sessions.
    pub(super) fn delete_role(&self, name: &str) -> Result<Value, IamError> {
        let txn = self.db.begin_write()?;
        let ended;
        {
            let mut roles = txn.open_table(ROLES)?;
            let role: RoleRecord = match roles.remove(name)? {
                Some(v) => serde_json::from_slice(v.value())?,
                None => return Err(IamError::NoSuchRole(name.to_string())),
            };
            let mut sessions = txn.open_table(SESSIONS)?;
            let mut doomed = Vec::new();
            for row in sessions.iter()? {
                let (k, v) = row?;
                if serde_json::from_slice::<SessionRecord>(v.value())
                    .map(|s| s.role_id == role.id)
                    .unwrap_or(true)
                {
                    doomed.push(k.value().to_string());
                }
            }
            ended = doomed.len();
            for k in doomed {
                sessions.remove(k.as_str())?;
            }
        }
        txn.commit()?;
        self.forget_role(name)?;
        Ok(json!({ "deleted": name, "sessions_ended": ended }))
    }

    /// Ends every session of a role now; requests signed with them get `ExpiredToken`.
    pub(super) fn revoke_sessions(&self, name: &str) -> Result<Value, IamError> {
        let role = self.role(name)?;
        let now = now_unix();
        let txn = self.db.begin_write()?;
        let mut revoked = 0;
        {
            let mut sessions = txn.open_table(SESSIONS)?;
            let mut updates = Vec::new();
            for row in sessions.iter()? {
                let (k, v) = row?;
                let mut s: SessionRecord = serde_json::from_slice(v.value())?;
                if s.role_id == role.id && s.expires > now {
                    s.expires = now;
                    updates.push((k.value().to_string(), s));
                }
            }
            for (k, s) in updates {
                sessions.insert(k.as_str(), serde_json::to_vec(&s)?.as_slice())?;
                revoked += 1;
            }
        }
        txn.commit()?;
        Ok(json!({ "role": name, "sessions_revoked": revoked }))
    }

    pub(super) fn list_roles(&self) -> Result<Value, IamError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(ROLES)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (_, v) = row?;
            out.push(serde_json::from_slice::<RoleRecord>(v.value())?.to_json());
        }
        Ok(Value::Array(out))
    }

    /// Mints temporary credentials for a session of `role`.
    pub fn mint_session(
        &self,
        role: &RoleRecord,
        session_name: &str,
        source: &str,
        duration: u64,
    ) -> Result<Minted, IamError> {
        let access_key = session_access_key();
        let secret_key = random_secret();
        let mut raw = Zeroizing::new([0u8; 48]);
        rand::rngs::OsRng.fill_bytes(raw.as_mut());
        let session_token = Zeroizing::new(format!(
            "SLUICE{}",
            base64::engine::general_purpose::STANDARD.encode(raw.as_ref())
        ));
        let expires = now_unix() + duration;
        let record = SessionRecord {
            sealed_secret: base64::engine::general_purpose::STANDARD.encode(
                self.master
                    .seal(access_key.as_bytes(), secret_key.as_bytes()),
            ),
            access_key: access_key.clone(),
            token_sha256: token_hash(&session_token),
            expires,
            role_id: role.id.clone(),
            role_name: role.name.clone(),
            session_name: session_name.to_string(),
            source: source.to_string(),
            created: now_rfc3339(),
        };
        let now = now_unix();
        let txn = self.db.begin_write()?;
        {
            let mut sessions = txn.open_table(SESSIONS)?;
            // Sessions that ended are dropped a few at a time, so the table stays the size of
            // what is live without a sweeper.
            let mut ended = Vec::new();
            for row in sessions.iter()? {
                let (k, v) = row?;
                if serde_json::from_slice::<SessionRecord>(v.value())
                    .map(|s| s.expires + 60 <= now)
                    .unwrap_or(true)
                {
                    ended.push(k.value().to_string());
                    if ended.len() >= 16 {
                        break;
                    }
                }
            }
            for k in ended {
                sessions.remove(k.as_str())?;
            }
            sessions.insert(access_key.as_str(), serde_json::to_vec(&record)?.as_slice())?;
        }
        txn.commit()?;
        Ok(Minted {
            access_key,
            secret_key,
            session_token,
            expires,
            role: role.clone(),
            session_name: session_name.to_string(),
        })
    }

    /// The credential of an STS session access key, checked against the request's token.
    pub fn session_lookup(
        &self,
        access_key: &str,
        token: Option<&str>,
    ) -> Result<SessionLookup, IamError> {
        if !access_key.starts_with("ASIA") {
            return Ok(SessionLookup::Unknown);
        }
        let txn = self.db.begin_read()?;
        let t = txn.open_table(SESSIONS)?;
        let Some(v) = t.get(access_key)? else {
            return Ok(SessionLookup::Unknown);
        };
        let record: SessionRecord = serde_json::from_slice(v.value())?;
        if record.expires <= now_unix() {
            return Ok(SessionLookup::Expired);
        }
        let given = token.map(token_hash).unwrap_or_default();
        if !bool::from(given.as_bytes().ct_eq(record.token_sha256.as_bytes())) {
            return Ok(SessionLookup::BadToken);
        }
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(&record.sealed_secret)
            .map_err(|_| IamError::Meta("sealed secret is not base64".into()))?;
        let plain = self.master.open(access_key.as_bytes(), &sealed)?;
        let secret = Zeroizing::new(
            String::from_utf8(plain.to_vec())
                .map_err(|_| IamError::Meta("secret is not UTF-8".into()))?,
        );
        Ok(SessionLookup::Found {
            secret,
            principal: Principal::Role {
                id: record.role_id,
                role: record.role_name,
                session: record.session_name,
                source: record.source,
                access_key: access_key.to_string(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::crypto::master_key::MasterKey;

    fn iam(dir: &std::path::Path) -> Iam {
        let db = Arc::new(redb::Database::create(dir.join("meta.redb")).unwrap());
        let master = Arc::new(MasterKey::load_or_create(None, &dir.join("mk")).unwrap());
        Iam::open(db, master, None).unwrap()
    }

    #[test]
    fn sessions_need_their_token_and_end_when_they_expire() {
        let dir = tempfile::tempdir().unwrap();
        let iam = iam(dir.path());
        iam.create_role("r", "true").unwrap();
        let role = iam.role("r").unwrap();
        let live = iam.mint_session(&role, "s1", "oidc:carol", 900).unwrap();
        match iam
            .session_lookup(&live.access_key, Some(&live.session_token))
            .unwrap()
        {
            SessionLookup::Found { secret, principal } => {
                assert_eq!(*secret, *live.secret_key);
                assert_eq!(principal.id(), Some(role.id.as_str()));
            }
            _ => panic!("live session not found"),
        }
        assert!(matches!(
            iam.session_lookup(&live.access_key, None).unwrap(),
            SessionLookup::BadToken
        ));
        assert!(matches!(
            iam.session_lookup(&live.access_key, Some("SLUICEforged"))
                .unwrap(),
            SessionLookup::BadToken
        ));
        // A session whose time is up is refused as expired, whatever token it brings.
        let ended = iam.mint_session(&role, "s2", "oidc:carol", 0).unwrap();
        assert!(matches!(
            iam.session_lookup(&ended.access_key, Some(&ended.session_token))
                .unwrap(),
            SessionLookup::Expired
        ));
        // The secret is sealed at rest: its bytes do not appear in the database file.
        drop(iam);
        let file = std::fs::read(dir.path().join("meta.redb")).unwrap();
        let secret = live.secret_key.as_bytes();
        assert!(!file.windows(secret.len()).any(|w| w == secret));
        let token = live.session_token.as_bytes();
        assert!(!file.windows(token.len()).any(|w| w == token));
    }
}
