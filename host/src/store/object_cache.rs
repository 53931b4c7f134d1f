//! Objects as last read from the metadata store: each one's record and, when it is stored inline
//! and small, its body, so that a GET or HEAD of an object read recently opens no read
//! transaction and decodes no record.
//!
//! Coherence works by generations, per key. A reader takes the published generation before its
//! read transaction and keeps what it read under that generation. Before each commit the commit
//! thread stamps the next generation on the change slot of each key the batch may write (or on
//! every key, for a batch that may touch any); after the commit, and before it answers any
//! writer, it publishes that generation. An entry is answered only while no change was stamped
//! on its slot after the generation it was read at. So from the moment a commit can be seen in
//! redb, nothing kept from before it is answered for the keys it changed, and what was read
//! while it happened (either state) is disowned too; keys that share a change slot only miss
//! more often.
//!
//! Memory is bounded: at most [`SHARDS`] × [`ENTRIES_PER_SHARD`] entries and [`SHARDS`] ×
//! [`BYTES_PER_SHARD`] bytes, counting each record at twice its stored length (what it takes
//! decoded, roughly) and each body at its length. Records larger than [`LARGEST_RECORD`] (many
//! parts, much metadata) are not kept, nor bodies larger than [`LARGEST_BODY`]. When a shard is
//! full, whichever entry its map yields first makes room.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::{BodyLocation, ObjectMeta};
use crate::locks::lock;

const SHARDS: usize = 32;
const ENTRIES_PER_SHARD: usize = 512;
/// 16 MiB in all.
const BYTES_PER_SHARD: usize = 512 * 1024;
/// Larger inline bodies are not kept (their records still are).
const LARGEST_BODY: usize = 64 * 1024;
/// Objects whose record counts for more are not kept at all.
const LARGEST_RECORD: usize = 64 * 1024;
/// What an entry is counted as besides its record, names and body.
const ENTRY_OVERHEAD: usize = 256;
const CHANGE_SLOTS: usize = 1 << 16;

/// What one committed operation may have changed in the objects table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ObjectChange<'a> {
    Nothing,
    Key {
        bucket: &'a str,
        key: &'a str,
    },
    /// Any object (operations on whole buckets).
    Any,
}

/// A kept object: its record and, for a body stored inline, the body when it was kept.
pub(super) struct Kept {
    pub meta: ObjectMeta,
    pub body: KeptBody,
}

pub(super) enum KeptBody {
    /// The body is not inline (a file or parts): there are no bytes to keep.
    NotInline,
    Inline(Bytes),
    /// Inline, but not kept (read for a HEAD, or too large).
    InlineNotKept,
}

struct Entry {
    at: u64,
    bucket: Box<str>,
    key: Box<str>,
    meta: ObjectMeta,
    body: Option<Bytes>,
    cost: usize,
}

#[derive(Default)]
struct Shard {
    entries: HashMap<u64, Entry>,
    bytes: usize,
}

impl Shard {
    fn remove(&mut self, hash: u64) {
        if let Some(old) = self.entries.remove(&hash) {
            self.bytes -= old.cost;
        }
    }
}

pub(super) struct ObjectCache {
    hasher: RandomState,
    generation: AtomicU64,
    /// The generation of the last commit that may have changed any object.
    any_changed: AtomicU64,
    /// Per slot, the generation of the last commit that may have changed a key hashing to it.
    changed: Box<[AtomicU64]>,
    shards: Box<[Mutex<Shard>]>,
}

impl Default for ObjectCache {
    fn default() -> Self {
        ObjectCache {
            hasher: RandomState::new(),
            generation: AtomicU64::new(0),
            any_changed: AtomicU64::new(0),
            changed: (0..CHANGE_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl ObjectCache {
    fn hash(&self, bucket: &str, key: &str) -> u64 {
        self.hasher.hash_one((bucket, key))
    }

    fn shard(&self, hash: u64) -> &Mutex<Shard> {
        &self.shards[(hash >> 32) as usize % SHARDS]
    }

    fn change_slot(&self, hash: u64) -> &AtomicU64 {
        &self.changed[hash as usize % CHANGE_SLOTS]
    }

    /// The generation to read at: take it before the read transaction.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A commit that may make `changes` is about to happen: from now on nothing kept of those
    /// objects is answered. Returns the generation to publish with [`ObjectCache::changed`]
    /// once the commit is over.
    pub fn changing<'a>(&self, changes: impl IntoIterator<Item = ObjectChange<'a>>) -> u64 {
        // Only the commit thread moves the generation on.
        let next = self.generation.load(Ordering::Acquire) + 1;
        for change in changes {
            match change {
                ObjectChange::Nothing => {}
                ObjectChange::Key { bucket, key } => {
                    self.change_slot(self.hash(bucket, key))
                        .store(next, Ordering::Release);
                }
                ObjectChange::Any => self.any_changed.store(next, Ordering::Release),
            }
        }
        next
    }

    /// The commit that [`ObjectCache::changing`] returned `next` for is over (made or failed);
    /// call before answering its writers.
    pub fn changed(&self, next: u64) {
        self.generation.store(next, Ordering::Release);
    }

    /// The object as kept, if it is and nothing may have changed it since it was read.
    pub fn get(&self, bucket: &str, key: &str) -> Option<Kept> {
        let hash = self.hash(bucket, key);
        let shard = lock(self.shard(hash));
        let entry = shard.entries.get(&hash)?;
        if &*entry.bucket != bucket
            || &*entry.key != key
            || self.change_slot(hash).load(Ordering::Acquire) > entry.at
            || self.any_changed.load(Ordering::Acquire) > entry.at
        {
            return None;
        }
        let body = match (&entry.meta.body, &entry.body) {
            (BodyLocation::Inline(_), Some(bytes)) => KeptBody::Inline(bytes.clone()),
            (BodyLocation::Inline(_), None) => KeptBody::InlineNotKept,
            (BodyLocation::File(_) | BodyLocation::Multipart(_), _) => KeptBody::NotInline,
        };
        Some(Kept {
            meta: entry.meta.clone(),
            body,
        })
    }

    /// Keeps what a read transaction begun at generation `at` found: the record (`record_len`
    /// bytes stored) and, when read, the inline body. Absent objects are not kept.
    pub fn keep(
        &self,
        at: u64,
        bucket: &str,
        key: &str,
        meta: &ObjectMeta,
        record_len: usize,
        body: Option<&Bytes>,
    ) {
        let record_cost = ENTRY_OVERHEAD + bucket.len() + key.len() + 2 * record_len;
        if record_cost > LARGEST_RECORD {
            return;
        }
        let body = body.filter(|b| b.len() <= LARGEST_BODY);
        let cost = record_cost + body.map_or(0, |b| b.len());
        let hash = self.hash(bucket, key);
        let mut shard = lock(self.shard(hash));
        if shard.entries.get(&hash).is_some_and(|e| e.at > at) {
            return;
        }
        shard.remove(hash);
        while shard.entries.len() >= ENTRIES_PER_SHARD || shard.bytes + cost > BYTES_PER_SHARD {
            let Some(&victim) = shard.entries.keys().next() else {
                return;
            };
            shard.remove(victim);
        }
        shard.bytes += cost;
        shard.entries.insert(
            hash,
            Entry {
                at,
                bucket: bucket.into(),
                key: key.into(),
                meta: meta.clone(),
                body: body.cloned(),
                cost,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(etag: &str, inline: bool) -> ObjectMeta {
        let id = format!("id-{etag}");
        ObjectMeta {
            size: 3,
            etag: etag.into(),
            last_modified: 0,
            owner_id: "o".into(),
            headers: Vec::new(),
            user_meta: Vec::new(),
            checksum: None,
            body: if inline {
                BodyLocation::Inline(id)
            } else {
                BodyLocation::File(id)
            },
            tags: Vec::new(),
            acl: None,
            encryption: None,
            replication_status: None,
            written_ms: None,
        }
    }

    impl ObjectCache {
        /// A commit of `changes`, whole.
        fn changed_now<'a>(&self, changes: impl IntoIterator<Item = ObjectChange<'a>>) {
            let next = self.changing(changes);
            self.changed(next);
        }
    }

    fn etag_of(c: &ObjectCache, bucket: &str, key: &str) -> Option<String> {
        c.get(bucket, key).map(|k| k.meta.etag)
    }

    #[test]
    fn entries_read_before_a_change_to_their_key_are_never_answered_after_it() {
        let c = ObjectCache::default();
        let at = c.generation();
        c.keep(
            at,
            "b",
            "k",
            &meta("1", true),
            100,
            Some(&Bytes::from_static(b"abc")),
        );
        c.keep(at, "b", "other", &meta("2", false), 100, None);
        let kept = c.get("b", "k").unwrap();
        assert!(matches!(kept.body, KeptBody::Inline(ref b) if b.as_ref() == b"abc"));
        assert_eq!(etag_of(&c, "b", "k").as_deref(), Some("1"));
        assert!(c.get("b", "missing").is_none());
        assert!(c.get("c", "k").is_none());

        // A read that began before a change to b/k keeps what it saw under the old generation.
        let before = c.generation();
        c.changed_now([ObjectChange::Key {
            bucket: "b",
            key: "k",
        }]);
        assert!(c.get("b", "k").is_none());
        c.keep(before, "b", "k", &meta("stale", true), 100, None);
        assert!(c.get("b", "k").is_none());
        // Other keys stay (unless they share the change slot, which is a miss, never stale).
        let other = c.get("b", "other").map(|k| k.meta.etag);
        assert!(other.is_none() || other.as_deref() == Some("2"));
        assert!(matches!(
            c.get("b", "other").map(|k| k.body),
            None | Some(KeptBody::NotInline)
        ));

        // Read after the change: answered, and an older read does not replace it.
        let now = c.generation();
        c.keep(now, "b", "k", &meta("3", true), 100, None);
        assert!(matches!(
            c.get("b", "k").unwrap().body,
            KeptBody::InlineNotKept
        ));
        c.keep(before, "b", "k", &meta("stale", true), 100, None);
        assert_eq!(etag_of(&c, "b", "k").as_deref(), Some("3"));

        // A change to any object (a bucket operation) drops everything read before it.
        c.changed_now([ObjectChange::Nothing, ObjectChange::Any]);
        assert!(c.get("b", "k").is_none());
        assert!(c.get("b", "other").is_none());
        // A batch that changed nothing object-related still moves the generation on only.
        let at = c.generation();
        c.keep(at, "b", "k", &meta("4", false), 100, None);
        c.changed_now([ObjectChange::Nothing]);
        assert_eq!(etag_of(&c, "b", "k").as_deref(), Some("4"));
    }

    #[test]
    fn a_commit_in_progress_hides_what_it_changes_and_disowns_reads_made_meanwhile() {
        let c = ObjectCache::default();
        let at = c.generation();
        c.keep(at, "b", "k", &meta("old", false), 100, None);
        let next = c.changing([ObjectChange::Key {
            bucket: "b",
            key: "k",
        }]);
        // The commit may already be visible in redb: the old record is no longer answered.
        assert!(c.get("b", "k").is_none());
        // A read during the commit (it may have seen either state) is not answered later.
        let during = c.generation();
        c.keep(during, "b", "k", &meta("either", false), 100, None);
        assert!(c.get("b", "k").is_none());
        c.changed(next);
        assert!(c.get("b", "k").is_none());
        let after = c.generation();
        assert_eq!(after, next);
        c.keep(after, "b", "k", &meta("new", false), 100, None);
        assert_eq!(etag_of(&c, "b", "k").as_deref(), Some("new"));
    }

    #[test]
    fn memory_stays_bounded() {
        let c = ObjectCache::default();
        let body = Bytes::from(vec![7u8; LARGEST_BODY]);
        let big = Bytes::from(vec![7u8; LARGEST_BODY + 1]);
        c.keep(0, "b", "big", &meta("big", true), 100, Some(&big));
        assert!(matches!(
            c.get("b", "big").unwrap().body,
            KeptBody::InlineNotKept
        ));
        // A record of many parts is not kept at all.
        c.keep(0, "b", "parts", &meta("p", false), LARGEST_RECORD / 2, None);
        assert!(c.get("b", "parts").is_none());
        for i in 0..SHARDS * ENTRIES_PER_SHARD * 2 {
            c.keep(0, "b", &format!("k{i}"), &meta("x", true), 100, Some(&body));
        }
        let (mut entries, mut bytes) = (0, 0);
        for shard in c.shards.iter() {
            let shard = lock(shard);
            assert!(shard.entries.len() <= ENTRIES_PER_SHARD);
            assert!(shard.bytes <= BYTES_PER_SHARD);
            assert_eq!(
                shard.bytes,
                shard.entries.values().map(|e| e.cost).sum::<usize>()
            );
            entries += shard.entries.len();
            bytes += shard.bytes;
        }
        assert!(entries > 0);
        assert!(bytes <= SHARDS * BYTES_PER_SHARD);
    }
}
