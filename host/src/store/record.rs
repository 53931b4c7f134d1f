//! How an object's metadata is stored in the objects table.
//!
//! A record is a fixed binary head holding what a listing shows, followed by the whole
//! [`ObjectMeta`] as JSON. A listing reads only the head, so it never runs a JSON parser; reading
//! one object parses the JSON after the head. Records written before the head existed are plain
//! JSON (they start with `{`) and are still read.
//!
//! Head layout:
//!
//! | bytes | field |
//! |---|---|
//! | 1 | [`TAG`] |
//! | 8 | size, u64 little-endian |
//! | 8 | last modified, Unix milliseconds, i64 little-endian |
//! | 1 | checksum algorithm: 0 none, else 1 + its index in [`ChecksumAlgorithm::ALL`] |
//! | 1 | checksum type: 0 full object, 1 composite |
//! | 1 | storage class: its index in [`StorageClass::ALL`] (heads that start with [`TAG`] only) |
//! | 4 + n | ETag (hex, no quotes): length u32 little-endian, then UTF-8 |
//! | 4 + n | owner id: length u32 little-endian, then UTF-8 |
//!
//! A STANDARD object's head starts with [`TAG_V1`] and has no storage-class byte: the layout
//! written before storage classes were kept, so a binary from before them still reads every
//! record but those of other classes.

use redb::{ReadableTable, Table};

use super::list::{ListedChecksum, ListedObject};
use super::local;
use super::{ObjectMeta, StorageClass, StoreError};
use crate::checksum::{ChecksumAlgorithm, ChecksumType};

/// First byte of a record whose head holds a storage class (a JSON record starts with `{`).
const TAG: u8 = 0xB2;

/// First byte of a head without a storage class (a STANDARD object).
const TAG_V1: u8 = 0xB1;

/// The objects table's key: (bucket, object key).
type ObjectKey = (&'static str, &'static str);

/// The object stored under `bucket`/`key` in the objects table.
pub fn get(
    objects: &impl ReadableTable<ObjectKey, &'static [u8]>,
    bucket: &str,
    key: &str,
) -> Result<Option<ObjectMeta>, StoreError> {
    Ok(get_sized(objects, bucket, key)?.map(|(meta, _)| meta))
}

/// [`get`], with the stored record's length in bytes.
pub fn get_sized(
    objects: &impl ReadableTable<ObjectKey, &'static [u8]>,
    bucket: &str,
    key: &str,
) -> Result<Option<(ObjectMeta, usize)>, StoreError> {
    objects
        .get((bucket, key))?
        .map(|v| Ok((decode(v.value())?, v.value().len())))
        .transpose()
}

/// Stores `meta` under `bucket`/`key` in the objects table.
pub fn put(
    objects: &mut Table<'_, ObjectKey, &'static [u8]>,
    bucket: &str,
    key: &str,
    meta: &ObjectMeta,
) -> Result<(), StoreError> {
    objects.insert((bucket, key), encode(meta).as_slice())?;
    Ok(())
}

/// The stored form of `meta`.
fn encode(meta: &ObjectMeta) -> Vec<u8> {
    let json = local::encode(meta);
    let class = StorageClass::of(&meta.headers);
    let mut out = Vec::with_capacity(28 + meta.etag.len() + meta.owner_id.len() + json.len());
    out.push(if class == StorageClass::Standard {
        TAG_V1
    } else {
        TAG
    });
    out.extend_from_slice(&meta.size.to_le_bytes());
    out.extend_from_slice(&meta.last_modified.to_le_bytes());
    match &meta.checksum {
        None => out.extend_from_slice(&[0, 0]),
        Some(c) => {
            let index = ChecksumAlgorithm::ALL
                .iter()
                .position(|a| *a == c.algorithm)
                .expect("every algorithm is in ALL");
            out.push(1 + index as u8);
            out.push(match c.kind {
                ChecksumType::FullObject => 0,
                ChecksumType::Composite => 1,
            });
        }
    }
    if class != StorageClass::Standard {
        out.push(class.code());
    }
    put_str(&mut out, &meta.etag);
    put_str(&mut out, &meta.owner_id);
    out.extend_from_slice(&json);
    out
}

/// The whole object record.
pub fn decode(bytes: &[u8]) -> Result<ObjectMeta, StoreError> {
    let json = match bytes.first() {
        Some(b'{') => bytes,
        _ => read_head(bytes, true)?.1,
    };
    local::decode(json)
}

/// What a listing shows of the record; `with_owner: false` leaves the owner id empty (records
/// still in JSON have it anyway).
pub fn decode_listed(bytes: &[u8], with_owner: bool) -> Result<ListedObject, StoreError> {
    match bytes.first() {
        Some(b'{') => local::decode(bytes),
        _ => Ok(read_head(bytes, with_owner)?.0),
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = u32::try_from(s.len()).expect("metadata strings are far below 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("object record: {what}"))
}

/// Reads a record's head: what it holds and the JSON after it.
fn read_head(bytes: &[u8], with_owner: bool) -> Result<(ListedObject, &[u8]), StoreError> {
    let mut r = Reader(bytes);
    let [tag] = r.array()?;
    if tag != TAG && tag != TAG_V1 {
        return Err(corrupt("unknown format"));
    }
    let size = u64::from_le_bytes(r.array()?);
    let last_modified = i64::from_le_bytes(r.array()?);
    let [algorithm, kind] = r.array()?;
    let checksum = match algorithm {
        0 => None,
        n => Some(ListedChecksum {
            algorithm: *ChecksumAlgorithm::ALL
                .get(usize::from(n) - 1)
                .ok_or_else(|| corrupt("unknown checksum algorithm"))?,
            kind: match kind {
                0 => ChecksumType::FullObject,
                1 => ChecksumType::Composite,
                _ => return Err(corrupt("unknown checksum type")),
            },
        }),
    };
    let storage_class = if tag == TAG {
        let [code] = r.array()?;
        StorageClass::from_code(code).ok_or_else(|| corrupt("unknown storage class"))?
    } else {
        StorageClass::Standard
    };
    let etag = r.string()?;
    let owner_id = if with_owner {
        r.string()?
    } else {
        r.skip_string()?;
        String::new()
    };
    let listed = ListedObject {
        size,
        etag,
        last_modified,
        owner_id,
        checksum,
        storage_class,
    };
    Ok((listed, r.0))
}

/// Consumes a record from the front, failing on a short one.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.0.len() < n {
            return Err(corrupt("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn string(&mut self) -> Result<String, StoreError> {
        std::str::from_utf8(self.string_bytes()?)
            .map(str::to_string)
            .map_err(|_| corrupt("string is not UTF-8"))
    }

    /// Passes over a string without copying it (its length is still checked).
    fn skip_string(&mut self) -> Result<(), StoreError> {
        self.string_bytes().map(|_| ())
    }

    fn string_bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let len = u32::from_le_bytes(self.array()?);
        let len = usize::try_from(len).map_err(|_| corrupt("string length"))?;
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::Checksum;
    use crate::store::BodyLocation;

    fn sample() -> ObjectMeta {
        ObjectMeta {
            size: 4096,
            etag: "9e107d9d372bb6826bd81d3542a419d6-3".into(),
            last_modified: 1_764_600_000_000,
            owner_id: "owner-é".into(),
            headers: vec![("content-type".into(), "text/plain".into())],
            user_meta: vec![("a".into(), "{\"nested\": [1, 2]}".into())],
            checksum: Some(Checksum {
                algorithm: ChecksumAlgorithm::Crc64Nvme,
                value: "yZRlqg==-3".into(),
                kind: ChecksumType::Composite,
            }),
            body: BodyLocation::File("id".into()),
            tags: vec![("t".into(), "v".into())],
            acl: None,
            encryption: None,
            replication_status: Some("PENDING".into()),
            written_ms: Some(1_764_600_000_123),
        }
    }

    fn listed_of(meta: &ObjectMeta) -> ListedObject {
        ListedObject {
            size: meta.size,
            etag: meta.etag.clone(),
            last_modified: meta.last_modified,
            owner_id: meta.owner_id.clone(),
            checksum: meta.checksum.as_ref().map(|c| ListedChecksum {
                algorithm: c.algorithm,
                kind: c.kind,
            }),
            storage_class: StorageClass::of(&meta.headers),
        }
    }

    fn same(a: &ListedObject, b: &ListedObject) -> bool {
        a.size == b.size
            && a.etag == b.etag
            && a.last_modified == b.last_modified
            && a.owner_id == b.owner_id
            && a.checksum == b.checksum
            && a.storage_class == b.storage_class
    }

    #[test]
    fn a_record_reads_back_whole_and_as_listed() {
        let mut metas = vec![sample()];
        for algorithm in ChecksumAlgorithm::ALL {
            let mut m = sample();
            m.checksum = Some(Checksum {
                algorithm,
                value: "v".into(),
                kind: ChecksumType::FullObject,
            });
            metas.push(m);
        }
        for class in StorageClass::ALL {
            let mut m = sample();
            class.store_in(&mut m.headers);
            metas.push(m);
        }
        metas.push(ObjectMeta {
            checksum: None,
            size: u64::MAX,
            last_modified: -1,
            owner_id: String::new(),
            ..sample()
        });
        for meta in metas {
            let stored = encode(&meta);
            let standard = StorageClass::of(&meta.headers) == StorageClass::Standard;
            assert_eq!(stored[0], if standard { TAG_V1 } else { TAG });
            let whole = decode(&stored).unwrap();
            assert_eq!(
                serde_json::to_value(&whole).unwrap(),
                serde_json::to_value(&meta).unwrap()
            );
            assert!(same(
                &decode_listed(&stored, true).unwrap(),
                &listed_of(&meta)
            ));
            // Without the owner: the same but for it.
            let no_owner = ListedObject {
                owner_id: String::new(),
                ..listed_of(&meta)
            };
            assert!(same(&decode_listed(&stored, false).unwrap(), &no_owner));
        }
    }

    /// Records written as plain JSON, before the head existed, still read both ways: a listing
    /// picks its fields out of the whole record and skips the rest.
    #[test]
    fn a_json_record_still_reads() {
        let plain = ObjectMeta {
            checksum: None,
            ..sample()
        };
        for meta in [sample(), plain] {
            let stored = serde_json::to_vec(&meta).unwrap();
            assert_eq!(decode(&stored).unwrap().etag, meta.etag);
            assert!(same(
                &decode_listed(&stored, true).unwrap(),
                &listed_of(&meta)
            ));
        }
    }

    /// A STANDARD object keeps the head written before storage classes (no class byte), so an
    /// older binary still reads it; another class's head carries its class.
    #[test]
    fn only_other_classes_carry_a_class_byte() {
        let standard = encode(&sample());
        let mut classed = sample();
        StorageClass::OnezoneIa.store_in(&mut classed.headers);
        let classed = encode(&classed);
        assert_eq!((standard[0], classed[0]), (TAG_V1, TAG));
        assert_eq!(classed[19], StorageClass::OnezoneIa.code());
        assert_eq!(standard[19..23], classed[20..24]);
        assert_eq!(
            decode_listed(&classed, true).unwrap().storage_class,
            StorageClass::OnezoneIa
        );
        assert_eq!(
            decode_listed(&standard, true).unwrap().storage_class,
            StorageClass::Standard
        );
    }

    #[test]
    fn a_damaged_record_is_corrupt_not_a_panic() {
        let mut classed = sample();
        StorageClass::GlacierIr.store_in(&mut classed.headers);
        // Each record with the offset of its ETag's length (after the class byte, if any).
        for (stored, head) in [(encode(&sample()), 19), (encode(&classed), 20)] {
            for cut in 0..stored.len() {
                assert!(decode(&stored[..cut]).is_err(), "cut at {cut}");
            }
            for cut in 0..head + 8 {
                assert!(decode_listed(&stored[..cut], true).is_err(), "cut at {cut}");
                assert!(
                    decode_listed(&stored[..cut], false).is_err(),
                    "cut at {cut}"
                );
            }
            let mut damaged = vec![];
            let mut bad = stored.clone();
            bad[0] = 0x02;
            damaged.push(bad);
            let mut bad = stored.clone();
            bad[17] = 9;
            damaged.push(bad);
            let mut bad = stored.clone();
            bad[18] = 7;
            damaged.push(bad);
            if head == 20 {
                let mut bad = stored.clone();
                bad[19] = 6;
                damaged.push(bad);
            }
            let mut bad = stored;
            bad[head..head + 4].copy_from_slice(&u32::MAX.to_le_bytes());
            damaged.push(bad);
            for bad in damaged {
                assert!(matches!(
                    decode_listed(&bad, true),
                    Err(StoreError::Corrupt(_))
                ));
            }
        }
    }
}
