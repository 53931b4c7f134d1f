// The AWS SDK for JavaScript v3 against a Sluice server: node s3_client.mjs ENDPOINT AK SK BUCKET.
// Exits non-zero at the first step that does not answer as S3 does; on success prints one JSON
// line with what it left in the bucket (key -> sha256), for the caller to read back.
import {
  S3Client, PutObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command,
  DeleteObjectsCommand, CopyObjectCommand, PutObjectTaggingCommand, GetObjectTaggingCommand,
  PutBucketLifecycleConfigurationCommand, GetBucketLifecycleConfigurationCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import crypto from "node:crypto";
import { Readable } from "node:stream";

const [endpoint, accessKeyId, secretAccessKey, Bucket] = process.argv.slice(2);
const s3 = new S3Client({
  endpoint, region: "us-east-1", forcePathStyle: true, maxAttempts: 1,
  credentials: { accessKeyId, secretAccessKey },
});
const sha256 = (b) => crypto.createHash("sha256").update(b).digest("hex");
function check(ok, what) {
  if (!ok) {
    console.error(`FAILED: ${what}`);
    process.exit(1);
  }
}

// A small object with metadata, read back with its checksum (the SDK sends CRC32 by default).
await s3.send(new PutObjectCommand({
  Bucket, Key: "a.txt", Body: "hello js", ContentType: "text/plain", Metadata: { who: "js" },
}));
const a = await s3.send(new GetObjectCommand({ Bucket, Key: "a.txt", ChecksumMode: "ENABLED" }));
check(await a.Body.transformToString() === "hello js", "GET body");
check(a.Metadata.who === "js" && a.ContentType === "text/plain", "GET metadata");
check(typeof a.ChecksumCRC32 === "string" || typeof a.ChecksumCRC64NVME === "string", "GET checksum");

// Multipart through lib-storage, then a range of it.
const big = crypto.randomBytes(12 * 1024 * 1024 + 7);
await new Upload({ client: s3, params: { Bucket, Key: "big.bin", Body: big }, partSize: 5 * 1024 * 1024 }).done();
const range = await s3.send(new GetObjectCommand({ Bucket, Key: "big.bin", Range: "bytes=100-199" }));
check(Buffer.from(await range.Body.transformToByteArray()).equals(big.subarray(100, 200)), "GET range");

// A stream of unknown length (one part, sent aws-chunked with a checksum trailer).
const streamed = Buffer.from("abcdef".repeat(1000));
await new Upload({
  client: s3,
  params: { Bucket, Key: "stream.bin", Body: Readable.from([streamed.subarray(0, 100), streamed.subarray(100)]) },
}).done();

// Copy, tags, lifecycle rules.
await s3.send(new CopyObjectCommand({ Bucket, Key: "copy.txt", CopySource: `${Bucket}/a.txt` }));
await s3.send(new PutObjectTaggingCommand({ Bucket, Key: "copy.txt", Tagging: { TagSet: [{ Key: "k", Value: "v" }] } }));
const tags = await s3.send(new GetObjectTaggingCommand({ Bucket, Key: "copy.txt" }));
check(tags.TagSet.length === 1 && tags.TagSet[0].Key === "k" && tags.TagSet[0].Value === "v", "tags");
await s3.send(new PutBucketLifecycleConfigurationCommand({
  Bucket,
  LifecycleConfiguration: { Rules: [{ ID: "r", Status: "Enabled", Filter: { Prefix: "logs/" }, Expiration: { Days: 3 } }] },
}));
const rules = await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket }));
check(rules.Rules.length === 1 && rules.Rules[0].Expiration.Days === 3, "lifecycle rules");

// Presigned GET and PUT with plain fetch.
const getUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket, Key: "a.txt" }), { expiresIn: 60 });
const got = await fetch(getUrl);
check(got.ok && (await got.text()) === "hello js", `presigned GET ${got.status}`);
const putUrl = await getSignedUrl(s3, new PutObjectCommand({ Bucket, Key: "p.txt" }), { expiresIn: 60 });
const put = await fetch(putUrl, { method: "PUT", body: "presigned put" });
check(put.ok, `presigned PUT ${put.status}`);

const listed = await s3.send(new ListObjectsV2Command({ Bucket }));
const keys = (listed.Contents || []).map((o) => o.Key).sort();
check(JSON.stringify(keys) === JSON.stringify(["a.txt", "big.bin", "copy.txt", "p.txt", "stream.bin"]), `list ${keys}`);

// Bulk delete of two, then a HEAD of one of them is a 404.
const del = await s3.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: [{ Key: "a.txt" }, { Key: "copy.txt" }] } }));
check((del.Deleted || []).length === 2 && !del.Errors, `DeleteObjects ${JSON.stringify(del.Errors)}`);
try {
  await s3.send(new HeadObjectCommand({ Bucket, Key: "a.txt" }));
  check(false, "HEAD after delete answered");
} catch (e) {
  check(e.$metadata?.httpStatusCode === 404, `HEAD after delete: ${e.name}`);
}
console.log(JSON.stringify({ "big.bin": sha256(big), "stream.bin": sha256(streamed), "p.txt": sha256(Buffer.from("presigned put")) }));
