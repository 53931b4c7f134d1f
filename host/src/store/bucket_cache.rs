//! Buckets and their configuration as last read from the metadata store, so that a request
//! does not open a read transaction for each (a GET reads the bucket and its ownership setting).
//!
//! Every entry carries the generation it was read at. The commit thread moves the generation
//! on both before and after each commit that may change a bucket or its configuration (and
//! before it answers the writer). A reader takes the generation before its read transaction and
//! keeps what it read under that generation. So an entry read before a change is not answered
//! once the change may be visible in redb, and one read while it was being committed is not
//! answered after it: either carries an older generation and counts as missing.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use super::BucketInfo;
use crate::locks::{read, write};

/// Most buckets kept; the cache starts over when full (bucket names are the client's).
const MAX_BUCKETS: usize = 10_000;

type Configs = HashMap<String, (u64, Option<Vec<u8>>)>;

#[derive(Default)]
pub(super) struct BucketCache {
    generation: AtomicU64,
    buckets: RwLock<HashMap<String, (u64, Option<BucketInfo>)>>,
    /// Bucket name -> configuration kind -> value.
    configs: RwLock<HashMap<String, Configs>>,
}

impl BucketCache {
    /// The generation to read at: take it before the read transaction.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A commit that may change buckets or their configuration is about to happen, or is over.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The bucket (or its absence) read at generation `at`, if kept.
    pub fn bucket(&self, at: u64, name: &str) -> Option<Option<BucketInfo>> {
        match read(&self.buckets).get(name) {
            Some((generation, info)) if *generation == at => Some(info.clone()),
            _ => None,
        }
    }

    pub fn keep_bucket(&self, at: u64, name: &str, info: Option<BucketInfo>) {
        let mut buckets = write(&self.buckets);
        if buckets.len() >= MAX_BUCKETS {
            buckets.clear();
        }
        buckets.insert(name.to_string(), (at, info));
    }

    /// A configuration value (or its absence) read at generation `at`, if kept.
    pub fn config(&self, at: u64, bucket: &str, kind: &str) -> Option<Option<Vec<u8>>> {
        match read(&self.configs).get(bucket).and_then(|c| c.get(kind)) {
            Some((generation, value)) if *generation == at => Some(value.clone()),
            _ => None,
        }
    }

    pub fn keep_config(&self, at: u64, bucket: &str, kind: &str, value: Option<Vec<u8>>) {
        let mut configs = write(&self.configs);
        if configs.len() >= MAX_BUCKETS {
            configs.clear();
        }
        configs
            .entry(bucket.to_string())
            .or_default()
            .insert(kind.to_string(), (at, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(owner: &str) -> BucketInfo {
        BucketInfo {
            name: "b".into(),
            owner_id: owner.into(),
            created: 0,
            region: "us-east-1".into(),
        }
    }

    #[test]
    fn entries_read_before_a_change_are_never_answered_after_it() {
        let c = BucketCache::default();
        let at = c.generation();
        assert!(c.bucket(at, "b").is_none());
        c.keep_bucket(at, "b", Some(info("a")));
        c.keep_config(at, "b", "acl", None);
        assert_eq!(c.bucket(at, "b").unwrap().unwrap().owner_id, "a");
        assert_eq!(c.config(at, "b", "acl"), Some(None));
        assert_eq!(c.config(at, "b", "cors"), None);
        // A read that began before the change keeps what it saw under the old generation.
        let before = c.generation();
        c.changed();
        c.keep_config(before, "b", "acl", Some(b"old".to_vec()));
        let now = c.generation();
        assert_ne!(now, before);
        assert!(c.bucket(now, "b").is_none());
        assert!(c.config(now, "b", "acl").is_none());
        c.keep_config(now, "b", "acl", Some(b"new".to_vec()));
        assert_eq!(c.config(now, "b", "acl"), Some(Some(b"new".to_vec())));
    }
}
