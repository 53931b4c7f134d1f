//! Listing semantics shared by every engine: prefix, delimiter grouping into common prefixes,
//! start-after and max-keys, in UTF-8 binary key order.

use serde::Deserialize;

use super::StorageClass;
use crate::checksum::{ChecksumAlgorithm, ChecksumType};

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Keys (and common prefixes) up to and including this are skipped.
    pub start_after: Option<String>,
    pub max_keys: usize,
    /// The page's objects need no owner (ListObjectsV2 without fetch-owner): their owner ids
    /// are left empty instead of copied.
    pub skip_owner: bool,
}

/// What a listing shows of an object. It is read straight from the stored
/// [`ObjectMeta`](super::ObjectMeta) record: the fields a listing never shows (headers, user
/// metadata, tags, ACL, body location, encryption) are skipped by the parser, not built.
#[derive(Debug, Clone, Deserialize)]
pub struct ListedObject {
    pub size: u64,
    /// Hex MD5 (no quotes).
    pub etag: String,
    /// Unix milliseconds.
    pub last_modified: i64,
    pub owner_id: String,
    #[serde(default)]
    pub checksum: Option<ListedChecksum>,
    /// From the record's head; records still in JSON predate storage classes (STANDARD).
    #[serde(skip)]
    pub storage_class: StorageClass,
}

/// The part of a stored [`Checksum`](crate::checksum::Checksum) a listing shows: its value is
/// skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct ListedChecksum {
    pub algorithm: ChecksumAlgorithm,
    #[serde(default)]
    pub kind: ChecksumType,
}

#[derive(Debug, Default)]
pub struct ListPage {
    pub objects: Vec<(String, ListedObject)>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// The last key or common prefix returned (the next marker when truncated).
    pub last: Option<String>,
}

impl ListQuery {
    /// The common prefix `key` rolls up into, if the query has a delimiter that occurs after the
    /// prefix.
    pub fn common_prefix<'k>(&self, key: &'k str) -> Option<&'k str> {
        let d = self.delimiter.as_deref().filter(|d| !d.is_empty())?;
        let rest = key.get(self.prefix.len()..)?;
        rest.find(d)
            .map(|pos| &key[..self.prefix.len() + pos + d.len()])
    }
}

/// Accumulates a page from keys fed in ascending order. Returns `false` once the page is full
/// and one more entry proved it truncated.
pub struct PageBuilder<'q> {
    query: &'q ListQuery,
    page: ListPage,
}

pub enum Feed {
    /// Keep going with the next key.
    Next,
    /// Skip every key that starts with this common prefix.
    SkipPrefix(String),
    /// The page is complete.
    Done,
}

impl<'q> PageBuilder<'q> {
    pub fn new(query: &'q ListQuery) -> Self {
        PageBuilder {
            query,
            page: ListPage::default(),
        }
    }

    fn count(&self) -> usize {
        self.page.objects.len() + self.page.common_prefixes.len()
    }

    pub fn feed(&mut self, key: &str, meta: impl FnOnce() -> Option<ListedObject>) -> Feed {
        if let Some(sa) = &self.query.start_after
            && key <= sa.as_str()
        {
            return Feed::Next;
        }
        match self.query.common_prefix(key) {
            Some(cp) => {
                let skip = self.query.start_after.as_deref().is_some_and(|sa| cp <= sa)
                    || self.page.common_prefixes.last().map(String::as_str) == Some(cp);
                if !skip {
                    if self.count() >= self.query.max_keys {
                        self.page.is_truncated = true;
                        return Feed::Done;
                    }
                    self.page.common_prefixes.push(cp.to_string());
                }
                Feed::SkipPrefix(cp.to_string())
            }
            None => {
                if self.count() >= self.query.max_keys {
                    self.page.is_truncated = true;
                    return Feed::Done;
                }
                if let Some(m) = meta() {
                    self.page.objects.push((key.to_string(), m));
                }
                Feed::Next
            }
        }
    }

    /// The page, with `last` the greater of its last key and its last common prefix: entries
    /// come in ascending order, a key added before a prefix does not start with it (it would
    /// have rolled up) and so sorts below it, and a key added after one sorts above every key
    /// under it.
    pub fn finish(mut self) -> ListPage {
        let last_key = self.page.objects.last().map(|(k, _)| k.as_str());
        let last_prefix = self.page.common_prefixes.last().map(String::as_str);
        self.page.last = last_key.max(last_prefix).map(str::to_string);
        self.page
    }
}
