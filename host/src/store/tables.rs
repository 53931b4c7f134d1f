//! redb tables of the local engine. Values are JSON so that records can grow fields.

use redb::TableDefinition;

/// bucket name -> `BucketInfo`
pub const BUCKETS: TableDefinition<&str, &[u8]> = TableDefinition::new("buckets");
/// (bucket, key) -> `ObjectMeta`; the tuple orders keys by UTF-8 bytes within a bucket.
pub const OBJECTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("objects");
/// body id -> bytes of a small object stored inline.
pub const INLINE_BODIES: TableDefinition<&str, &[u8]> = TableDefinition::new("inline_bodies");
/// (bucket, configuration kind) -> the configuration document (tagging, cors, ...)
pub const BUCKET_CONFIG: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("bucket_config");
/// upload id -> `UploadInfo`
pub const UPLOADS: TableDefinition<&str, &[u8]> = TableDefinition::new("uploads");
/// (bucket, key, upload id) -> empty; lists uploads in key order.
pub const UPLOAD_KEYS: TableDefinition<(&str, &str, &str), &[u8]> =
    TableDefinition::new("upload_keys");
/// (upload id, part number) -> `PartInfo`
pub const PARTS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("parts");
/// upload id -> `CompletedRecord` (so completing twice answers the same)
pub const COMPLETED: TableDefinition<&str, &[u8]> = TableDefinition::new("completed_uploads");
/// sequence number -> `ReplicationTask`, committed with the write it replicates.
pub const REPLICATION_QUEUE: TableDefinition<u64, &[u8]> =
    TableDefinition::new("replication_queue");
/// (target, next attempt in Unix ms, sequence number) -> (bucket, key): each queued task once, in
/// the order its target may try it, so finding the due tasks reads only those (and a task held
/// back by its key or a paused bucket is passed over without reading it).
pub const REPLICATION_SCHEDULE: TableDefinition<(&str, i64, u64), (&str, &str)> =
    TableDefinition::new("replication_schedule");
/// (target, bucket, key, sequence number) -> nothing: each queued task once, so the oldest task
/// for a key and target is one look-up (a key's writes reach a target in the order made).
pub const REPLICATION_KEY_ORDER: TableDefinition<(&str, &str, &str, u64), ()> =
    TableDefinition::new("replication_key_order");
/// Sequence number -> nothing: the queued tasks that failed at least once, so the metrics count
/// them without reading the queue.
pub const REPLICATION_RETRYING: TableDefinition<u64, ()> =
    TableDefinition::new("replication_retrying");
/// (bucket, key) -> when it was deleted, then when this store recorded that (Unix ms, big-endian
/// i64 each; older tombstones hold only the first), kept for keys of buckets with replication
/// rules so a replica older than the delete is refused (last writer wins); removed when the key
/// is written again, with its bucket, or 30 days after it was recorded
/// (`replication::worker::TOMBSTONE_RETENTION`).
pub const TOMBSTONES: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("replication_tombstones");
