//! A node's durable state opened together: the data-dir lock, redb, the master key, the IAM
//! store and the storage engine. Used by `serve` and by the offline admin CLI.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::Database;

use crate::auth::iam::{Iam, IamError};
use crate::config::Config;
use crate::crypto::master_key::{MasterKey, MasterKeyError};
use crate::store::{LocalStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(
        "the data dir `{0}` is in use by a running sluice server; pass --endpoint URL to manage it through the admin API"
    )]
    DataDirInUse(PathBuf),
    #[error("data dir `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("metadata database: {0}")]
    Database(String),
    #[error(transparent)]
    MasterKey(#[from] MasterKeyError),
    #[error(transparent)]
    Iam(#[from] IamError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An exclusive advisory lock on the data dir, held for the life of the process.
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    pub fn acquire(dir: &Path) -> Result<DataDirLock, NodeError> {
        let io = |source| NodeError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("sluice.lock"))
            .map_err(io)?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(NodeError::DataDirInUse(dir.to_path_buf()));
            }
            return Err(io(err));
        }
        Ok(DataDirLock { _file: file })
    }
}

pub struct Node {
    pub db: Arc<Database>,
    pub master: Arc<MasterKey>,
    pub iam: Arc<Iam>,
    _lock: DataDirLock,
}

impl Node {
    /// Opens the data dir of `config` for exclusive use.
    pub fn open(config: &Config) -> Result<Node, NodeError> {
        let lock = DataDirLock::acquire(&config.data_dir)?;
        let master = Arc::new(MasterKey::load_or_create(
            config.master_key.as_deref(),
            &config.master_key_file,
        )?);
        let db = Arc::new(
            Database::create(config.data_dir.join("meta.redb"))
                .map_err(|e| NodeError::Database(e.to_string()))?,
        );
        let root = match (&config.root_access_key, &config.root_secret_key) {
            (Some(a), Some(s)) => Some((a.clone(), s.clone())),
            _ => None,
        };
        let iam = Arc::new(Iam::open(db.clone(), master.clone(), root)?);
        Ok(Node {
            db,
            master,
            iam,
            _lock: lock,
        })
    }

    /// Opens the local storage engine (collecting orphans left by a crash).
    pub fn local_store(&self, config: &Config) -> Result<LocalStore, NodeError> {
        Ok(LocalStore::open(
            self.db.clone(),
            &config.data_dir,
            config.inline_threshold as usize,
        )?)
    }
}
